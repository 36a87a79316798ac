/* tool_dieput.c -- a test tool: producers that die in the middle of a put.
 *
 *   tool_dieput RING PREFIX LOG reserve [GOOD]
 *       puts GOOD (default 3) whole messages, then reserves one more, writes
 *       half of its body and kills itself with SIGKILL: a record left
 *       WRITING by a dead owner, deterministically.
 *   tool_dieput RING PREFIX LOG loop [MAXLEN]
 *       puts messages until it is killed (a busy producer for random
 *       kill -9 from outside).
 *
 * Message seq (from 1) of this process has key PREFIXp<pid>/<seq> and body
 * testbody_fill(pid, seq, 1, MAXLEN) (MAXLEN 1024 in reserve mode). Each
 * key whose s3ring_put() returned 0 is appended to LOG (O_APPEND, one
 * write per line) after the put returned: a kill between the two leaves a
 * committed message that is not logged, never a logged one that was not
 * committed. The abandoned reservation is never logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3ring.h"
#include "testbody.h"

static int
log_key(int fd, const char *key)
{
	char line[1200];
	int n = snprintf(line, sizeof(line), "%s\n", key);

	return write(fd, line, (size_t)n) == n ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct s3ring_producer *p;
	unsigned pid = (unsigned)getpid();
	size_t maxlen = 1024;
	unsigned long good = 3;
	uint8_t *b;
	char key[1100];
	int fd;
	bool loop;

	if (argc < 5 || (strcmp(argv[4], "reserve") != 0 && strcmp(argv[4], "loop") != 0)) {
		fprintf(stderr, "usage: tool_dieput RING PREFIX LOG reserve [GOOD] | loop [MAXLEN]\n");
		return 2;
	}
	loop = strcmp(argv[4], "loop") == 0;
	if (argc > 5) {
		if (loop)
			maxlen = strtoul(argv[5], NULL, 10);
		else
			good = strtoul(argv[5], NULL, 10);
	}
	fd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	p = s3ring_open(argv[1], 0);
	b = malloc(maxlen + 1);
	if (fd < 0 || p == NULL || b == NULL) {
		fprintf(stderr, "tool_dieput: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (unsigned long seq = 1; loop || seq <= good; seq++) {
		size_t len = testbody_fill(b, pid, seq, 1, maxlen);
		int rc;

		testbody_key(key, sizeof(key), argv[2], pid, seq);
		rc = s3ring_put(p, key, b, len, -1);
		if (rc < 0) {
			fprintf(stderr, "tool_dieput: %s: %s\n", key, s3ring_strerror(rc));
			return 1;
		}
		if (log_key(fd, key) < 0)
			return 1;
	}
	/* The put that never finishes. */
	{
		struct s3ring_reservation r;
		size_t len = testbody_fill(b, pid, good + 1, 1, maxlen);
		int rc;

		testbody_key(key, sizeof(key), argv[2], pid, good + 1);
		rc = s3ring_reserve(p, key, len, &r, -1);
		if (rc < 0) {
			fprintf(stderr, "tool_dieput: reserve %s: %s\n", key, s3ring_strerror(rc));
			return 1;
		}
		memcpy(r.data, b, len / 2);
		raise(SIGKILL);
	}
	return 1;
}
