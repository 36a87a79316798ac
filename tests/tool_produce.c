/* tool_produce.c -- a test tool: N producer processes put M messages each.
 *
 *   tool_produce RING PROCS MSGS PREFIX [MINLEN MAXLEN [TIMEOUT_MS]]
 *
 * Message seq (1..MSGS) of process p has key PREFIXp<p>/<seq> and the body
 * testbody_fill(p, seq), or testbody_text() with S3RING_TEST_TEXT=1 in the
 * environment. S3RING_TEST_RATE=N paces each process to N puts a second
 * (so that they stream for as long as a test needs). Puts wait for space
 * (timeout -1 by default), so nothing is dropped. Exit 0 when every put
 * succeeded.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "s3ring.h"
#include "testbody.h"

/* Sleeps until put i is due at rate puts a second from t0. */
static void
pace(const struct timespec *t0, unsigned long i, unsigned long rate)
{
	uint64_t due = (uint64_t)t0->tv_sec * 1000000000u + (uint64_t)t0->tv_nsec +
	    (uint64_t)i * 1000000000u / rate;
	struct timespec ts = { (time_t)(due / 1000000000u), (long)(due % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

int
main(int argc, char **argv)
{
	unsigned procs;
	unsigned long msgs;
	size_t minlen = 1, maxlen = 1024;
	int timeout = -1, failed = 0;
	bool text;
	unsigned long rate;

	if (argc < 5) {
		fprintf(stderr, "usage: tool_produce RING PROCS MSGS PREFIX [MINLEN MAXLEN [TIMEOUT_MS]]\n");
		return 2;
	}
	procs = (unsigned)strtoul(argv[2], NULL, 10);
	msgs = strtoul(argv[3], NULL, 10);
	if (argc > 6) {
		minlen = strtoul(argv[5], NULL, 10);
		maxlen = strtoul(argv[6], NULL, 10);
	}
	if (argc > 7)
		timeout = atoi(argv[7]);
	rate = getenv("S3RING_TEST_RATE") ? strtoul(getenv("S3RING_TEST_RATE"), NULL, 10) : 0;
	text = getenv("S3RING_TEST_TEXT") != NULL && strcmp(getenv("S3RING_TEST_TEXT"), "1") == 0;
	for (unsigned p = 0; p < procs; p++) {
		pid_t kid = fork();
		if (kid < 0)
			return 1;
		if (kid == 0) {
			struct s3ring_producer *pr = s3ring_open(argv[1], 0);
			uint8_t *b = malloc(maxlen + 1100);
			char key[1100];
			if (pr == NULL || b == NULL) {
				fprintf(stderr, "tool_produce: %s: %s\n", argv[1], s3ring_strerror(errno));
				_exit(1);
			}
			struct timespec t0;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			for (unsigned long i = 1; i <= msgs; i++) {
				if (rate != 0 && i % 16 == 0)
					pace(&t0, i, rate);
				size_t len;
				int rc;
				testbody_key(key, sizeof(key), argv[4], p, i);
				len = text ? testbody_text(b, p, i, minlen, maxlen, key) :
				    testbody_fill(b, p, i, minlen, maxlen);
				rc = s3ring_put(pr, key, b, len, timeout);
				if (rc < 0) {
					fprintf(stderr, "tool_produce: %s: %s\n", key, s3ring_strerror(rc));
					_exit(1);
				}
			}
			s3ring_close(pr);
			_exit(0);
		}
	}
	for (unsigned p = 0; p < procs; p++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	}
	return failed;
}
