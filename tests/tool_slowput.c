/* tool_slowput.c -- a test tool: one producer with a window between reserve and commit.
 *
 *   tool_slowput RING ID PREFIX LOG count N MAXLEN SLOW_EVERY
 *       N zero-copy puts (s3ring_reserve, body, s3ring_commit); every
 *       SLOW_EVERY-th waits 1 to 50 ms between the body and the commit
 *       (0: none waits).
 *   tool_slowput RING ID PREFIX LOG loop MAXLEN
 *       puts until SIGTERM or SIGINT, then exits 0.
 *   tool_slowput RING ID PREFIX LOG stop
 *       one put that stops itself (SIGSTOP) between reserve and commit,
 *       and commits once it is continued; exits 0 only if the commit
 *       returned 0.
 *
 * Message seq (from 1) has key PREFIXp<ID>/<seq> and body
 * testbody_fill(ID, seq, 1, MAXLEN) (MAXLEN 1024 in stop mode), so a
 * checker regenerates it from the key; ID is given, not the pid, which
 * means nothing outside the producer's PID namespace. Each key whose
 * commit returned 0 is appended to LOG (O_APPEND, one write a line) after
 * the commit returned, so every logged key was committed.
 *
 * A put that fails with -ESTALE (the ring was removed or replaced) is not
 * logged: the handle is closed, the ring opened again (waiting up to 30 s
 * for it to exist) and the same message put into the new ring. Any other
 * error ends the tool with status 1. On exit it prints one line on
 * stdout: "puts P estale E reopens R slow S".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3ring.h"
#include "testbody.h"

#define REOPEN_WAIT_MS 30000

static volatile sig_atomic_t got_stop;

static void
on_stop(int sig)
{
	(void)sig;
	got_stop = 1;
}

struct slowput {
	const char *ring;
	struct s3ring_producer *p;
	int log_fd;
	unsigned long puts, estale, reopens, slow;
};

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !got_stop)
		;
}

/* Opens the ring, waiting for it while it does not exist (the uploader
 * creates it again after a removal). Returns 0 or -errno. */
static int
open_ring(struct slowput *s)
{
	for (unsigned waited = 0;; waited += 10) {
		s->p = s3ring_open(s->ring, 0);
		if (s->p != NULL)
			return 0;
		if (errno != ENOENT || waited >= REOPEN_WAIT_MS)
			return -errno;
		sleep_ms(10);
	}
}

static int
log_key(int fd, const char *key)
{
	char line[1200];
	int n = snprintf(line, sizeof(line), "%s\n", key);

	return write(fd, line, (size_t)n) == n ? 0 : -1;
}

/* One zero-copy put of body (len bytes) under key, waiting wait_ms
 * between the body and the commit (or stopping itself when stop).
 * Returns 0 or the put's -errno. */
static int
put_once(struct slowput *s, const char *key, const uint8_t *b, size_t len,
    unsigned wait_ms, bool stop)
{
	struct s3ring_reservation r;
	int rc = s3ring_reserve(s->p, key, len, &r, -1);

	if (rc < 0)
		return rc;
	memcpy(r.data, b, len);
	if (stop)
		raise(SIGSTOP);
	else if (wait_ms != 0)
		sleep_ms(wait_ms);
	return s3ring_commit(s->p, &r);
}

/* Puts one message until it is in a ring that is not retired. Returns 0
 * or -errno. */
static int
put_message(struct slowput *s, const char *key, const uint8_t *b, size_t len,
    unsigned wait_ms, bool stop)
{
	for (;;) {
		int rc = put_once(s, key, b, len, wait_ms, stop);

		if (rc != -ESTALE)
			return rc;
		s->estale++;
		s3ring_close(s->p);
		s->p = NULL;
		if ((rc = open_ring(s)) < 0)
			return rc;
		s->reopens++;
	}
}

int
main(int argc, char **argv)
{
	struct slowput s = { .log_fd = -1 };
	unsigned long n = 1, slow_every = 0;
	unsigned id;
	size_t maxlen = 1024;
	const char *mode;
	uint8_t *b = NULL;
	char key[1100];
	bool loop, stop;
	int rc = 0;

	if (argc < 6) {
		fprintf(stderr, "usage: tool_slowput RING ID PREFIX LOG count N MAXLEN SLOW_EVERY | loop MAXLEN | stop\n");
		return 2;
	}
	s.ring = argv[1];
	id = (unsigned)strtoul(argv[2], NULL, 10);
	mode = argv[5];
	loop = strcmp(mode, "loop") == 0;
	stop = strcmp(mode, "stop") == 0;
	if (strcmp(mode, "count") == 0 && argc == 9) {
		n = strtoul(argv[6], NULL, 10);
		maxlen = strtoul(argv[7], NULL, 10);
		slow_every = strtoul(argv[8], NULL, 10);
	} else if (loop && argc == 7) {
		maxlen = strtoul(argv[6], NULL, 10);
	} else if (!stop || argc != 6) {
		fprintf(stderr, "tool_slowput: bad mode or arguments\n");
		return 2;
	}
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	srand(id * 2654435761u);
	s.log_fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	b = malloc(maxlen + 1);
	if (s.log_fd < 0 || b == NULL || (rc = open_ring(&s)) < 0) {
		fprintf(stderr, "tool_slowput: %s: %s\n", s.ring,
		    rc < 0 ? s3ring_strerror(rc) : strerror(errno));
		return 1;
	}
	for (unsigned long seq = 1; loop ? !got_stop : seq <= n; seq++) {
		size_t len = testbody_fill(b, id, seq, 1, maxlen);
		unsigned wait_ms = 0;

		if (slow_every != 0 && seq % slow_every == 0) {
			wait_ms = 1 + (unsigned)(rand() % 50);
			s.slow++;
		}
		testbody_key(key, sizeof(key), argv[3], id, seq);
		rc = put_message(&s, key, b, len, wait_ms, stop);
		if (rc < 0) {
			fprintf(stderr, "tool_slowput: %s: %s\n", key, s3ring_strerror(rc));
			break;
		}
		s.puts++;
		if (log_key(s.log_fd, key) < 0) {
			rc = -errno;
			fprintf(stderr, "tool_slowput: %s: %s\n", argv[4], strerror(errno));
			break;
		}
	}
	printf("puts %lu estale %lu reopens %lu slow %lu\n", s.puts, s.estale,
	    s.reopens, s.slow);
	s3ring_close(s.p);
	close(s.log_fd);
	free(b);
	return rc < 0 ? 1 : 0;
}
