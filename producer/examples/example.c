/* example.c -- an application that hands its uploads to s3ring.
 *
 * Build against an installed s3ring:
 *     cc -o example example.c $(pkg-config --cflags --libs s3ring)
 * Run (s3ring-uploader must be running, or the ring must exist):
 *     ./example [-r RING] [-p PROCESSES] [-n MESSAGES_EACH] [-k KEY_PREFIX]
 *
 * Each process opens the ring, puts its messages and closes it. A put that
 * finds the ring full waits up to a second; a message that still does not
 * fit is counted as dropped, and the application carries on: that is the
 * point of s3ring, the application's memory never grows because uploads are
 * slow. Exit status 0 when no message was dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <s3ring.h>

static int
produce(const char *ring, int proc, long count, const char *prefix)
{
	struct s3ring_producer *p = s3ring_open(ring, 0);
	char key[256], body[256];
	long dropped = 0;

	if (p == NULL) {
		fprintf(stderr, "example: cannot open ring %s: %s\n",
		    ring ? ring : "default", s3ring_strerror(errno));
		return 1;
	}
	for (long i = 1; i <= count; i++) {
		int n = snprintf(body, sizeof(body),
		    "{\"process\":%d,\"seq\":%ld,\"pid\":%d,\"time\":%ld}\n",
		    proc, i, (int)getpid(), (long)time(NULL));
		snprintf(key, sizeof(key), "%sp%d/%06ld.json", prefix, proc, i);
		int rc = s3ring_put(p, key, body, (size_t)n, 1000);
		if (rc == -EAGAIN || rc == -ETIMEDOUT) {
			dropped++; /* the ring stayed full: counted by shmstat too */
		} else if (rc < 0) {
			fprintf(stderr, "example: %s: %s\n", key, s3ring_strerror(rc));
			s3ring_close(p);
			return 1;
		}
	}
	s3ring_close(p);
	if (dropped > 0)
		fprintf(stderr, "example: process %d dropped %ld messages\n", proc, dropped);
	return dropped > 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
	const char *ring = NULL, *prefix = "example/";
	int procs = 4, ch, failed = 0;
	long count = 2500;

	while ((ch = getopt(argc, argv, "r:p:n:k:")) != -1) {
		switch (ch) {
		case 'r':
			ring = optarg;
			break;
		case 'p':
			procs = atoi(optarg);
			break;
		case 'n':
			count = atol(optarg);
			break;
		case 'k':
			prefix = optarg;
			break;
		default:
			fprintf(stderr, "usage: example [-r RING] [-p PROCESSES] [-n MESSAGES] [-k PREFIX]\n");
			return 64;
		}
	}
	if (procs < 1 || procs > 64 || count < 0) {
		fprintf(stderr, "example: -p takes 1 to 64, -n a count\n");
		return 64;
	}
	for (int i = 0; i < procs; i++) {
		pid_t kid = fork();
		if (kid < 0) {
			perror("example: fork");
			return 1;
		}
		if (kid == 0)
			_exit(produce(ring, i, count, prefix));
	}
	for (int i = 0; i < procs; i++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	}
	if (!failed)
		printf("example: %d processes put %ld messages each\n", procs, count);
	return failed;
}
