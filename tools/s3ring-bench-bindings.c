/* s3ring-bench-bindings.c -- `s3ring-bench bindings`: the JVM and Python
 * bindings' benchmarks.
 *
 * The measuring is done by the bindings' own languages (producer/java's
 * Bench, producer/python/bench.py), driven by tools/bench/bindings.sh; this
 * subcommand only finds that script in the source tree this binary was
 * built in (BUILD/bin/s3ring-bench, with BUILD inside the tree) or in the
 * current directory, and runs it with BUILD set to this binary's build.
 *
 * It is also the reader at the far end of the Python baseline's socket
 * (`s3ring-bench bindings --read-dgram COUNT SIZE`, the socket on standard
 * input). It is C, as the ring's consumer is, because a reader's speed
 * moves its sender's rate: one that often sleeps costs the sender a
 * wake-up per send, one that falls behind blocks it on a full queue. Each
 * side faces a reader of the same kind.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "s3ring-bench.h"

static const char script_rel[] = "tools/bench/bindings.sh";

/* The source tree above exe's build directory: the first ancestor of
 * BUILD/bin that holds the script. Returns 0 with top filled in. */
static int
find_top(const char *exe, char *top, size_t cap, char *build, size_t bcap)
{
	char dir[PATH_MAX], path[PATH_MAX + sizeof(script_rel) + 1];
	char *slash;

	if (strlcpy(dir, exe, sizeof(dir)) >= sizeof(dir))
		return -ENAMETOOLONG;
	if ((slash = strrchr(dir, '/')) == NULL)
		return -ENOENT;
	*slash = '\0'; /* BUILD/bin */
	if ((slash = strrchr(dir, '/')) == NULL)
		return -ENOENT;
	*slash = '\0'; /* BUILD */
	if (strlcpy(build, dir, bcap) >= bcap)
		return -ENAMETOOLONG;
	while ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		snprintf(path, sizeof(path), "%s/%s", dir, script_rel);
		if (access(path, X_OK) == 0)
			return strlcpy(top, dir, cap) < cap ? 0 : -ENAMETOOLONG;
	}
	return -ENOENT;
}

/* Receives count datagrams from fd 0 into one buffer, each of which must be
 * size bytes. Returns the exit status: 0 if all were, 1 otherwise (with a
 * message), 2 on bad arguments. */
static int
read_dgram(const char *count_arg, const char *size_arg)
{
	static char buf[65536];
	const char *err = NULL;
	long long count, size;

	count = strtonum(count_arg, 1, LLONG_MAX, &err);
	if (err == NULL)
		size = strtonum(size_arg, 0, (long long)sizeof(buf) - 1, &err);
	if (err != NULL) {
		fprintf(stderr, "%s bindings --read-dgram: COUNT or SIZE is %s\n", bench_prog, err);
		return 2;
	}
	for (long long i = 0; i < count;) {
		/* One more byte than expected, so a longer datagram shows. */
		ssize_t n = recv(0, buf, (size_t)size + 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n != size) {
			fprintf(stderr, "%s bindings --read-dgram: datagram %lld: %s\n", bench_prog, i,
			    n < 0 ? strerror(errno) : "wrong length");
			return 1;
		}
		i++;
	}
	return 0;
}

int
bench_bindings_main(int argc, char **argv)
{
	char exe[PATH_MAX], top[PATH_MAX], build[PATH_MAX], script[PATH_MAX + sizeof(script_rel) + 1];
	ssize_t n;
	char **args;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: %s bindings [--json] [--puts N] [--reps R]\n"
		    "       %s bindings --read-dgram COUNT SIZE   (the baseline's reader)\n\n"
		    "The JVM binding against ArrayBlockingQueue.offer of a Pair(key, bytes), and\n"
		    "the Python binding against socket.send on a Unix datagram socket, in one\n"
		    "run (tools/bench/bindings.sh, from the source tree of this build).\n", bench_prog, bench_prog);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "--read-dgram") == 0)
		return read_dgram(argv[2], argv[3]);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0) {
		fprintf(stderr, "%s bindings: /proc/self/exe: %s\n", bench_prog, strerror(errno));
		return 1;
	}
	exe[n] = '\0';
	if (find_top(exe, top, sizeof(top), build, sizeof(build)) < 0) {
		fprintf(stderr, "%s bindings: no %s above %s: run the build tree's s3ring-bench\n",
		    bench_prog, script_rel, exe);
		return 1;
	}
	snprintf(script, sizeof(script), "%s/%s", top, script_rel);
	if (setenv("BUILD", build, 1) < 0) {
		fprintf(stderr, "%s bindings: setenv: %s\n", bench_prog, strerror(errno));
		return 1;
	}
	if ((args = calloc((size_t)argc + 1, sizeof(*args))) == NULL)
		return 1;
	args[0] = script;
	for (int i = 1; i < argc; i++)
		args[i] = argv[i];
	execv(script, args);
	fprintf(stderr, "%s bindings: %s: %s\n", bench_prog, script, strerror(errno));
	free(args);
	return 1;
}
