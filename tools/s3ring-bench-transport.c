/* s3ring-bench-transport.c -- s3ring, POSIX mq and Unix datagram sockets
 * behind one interface, for s3ring-bench ring.
 *
 * The three are set up the way a user would get them without tuning: the
 * ring at its default geometry, the message queue with the system's default
 * attributes (mq_open with a NULL attr: /proc/sys/fs/mqueue/msg_default and
 * msgsize_default), and sockets with the default buffer sizes. Each send is
 * blocking, so a full transport slows the producer down and never loses a
 * message. On the s3ring side the producers use the public API
 * (s3ring_put, timeout -1) and the consumer the one the uploader uses
 * (ring_consume, ring_consumer_wait, ring_release); the consumer copies
 * each record out before releasing it, so the head it publishes never
 * covers bytes it still reads.
 */
#include "s3ring-bench.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ring.h"
#include "s3ring.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older headers lack it */
#endif

/* Records the consumer takes before it publishes a new head. Releasing is a
 * seq_cst store and a load; batching it is what the uploader does too. */
#define RELEASE_BATCH 64

int
bench_prefault_mapping(const char *suffix)
{
	char line[512];
	size_t slen = strlen(suffix);
	FILE *f = fopen("/proc/self/maps", "re");
	int rc = -ENOENT;

	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		char perms[8];
		size_t n = strcspn(line, "\n");

		line[n] = '\0';
		if (n < slen || strcmp(line + n - slen, suffix) != 0)
			continue;
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 ||
		    perms[1] != 'w')
			continue;
		/* MADV_POPULATE_WRITE maps every page writable without
		 * touching its contents, so the run measures puts, not the
		 * first-touch page faults a fresh mapping takes once. */
		rc = madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) < 0 ? -errno : 0;
		break;
	}
	fclose(f);
	return rc;
}

/* ---------------------------------------------------------------- s3ring */

struct s3_prod {
	struct s3ring_producer *p;
	char key[32];
};

struct s3_cons {
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	uint8_t *buf;
	size_t cap;
	unsigned unreleased;
};

static int
s3_setup(void *venv, size_t size, char *note, size_t note_cap)
{
	struct bench_env *env = venv;
	struct ring_config cfg = { env->ring_capacity, 0, 0600, (gid_t)-1 };
	struct ring r;
	int rc;

	(void)ring_unlink(env->ring_name); /* a leftover of a killed run */
	if ((rc = ring_open(&r, env->ring_name, RING_OPEN_CREATE, &cfg)) < 0)
		return rc;
	if (size + 16 > r.max_message) {
		ring_close(&r);
		(void)ring_unlink(env->ring_name);
		return -EMSGSIZE;
	}
	snprintf(note, note_cap, "capacity %" PRIu64 " B, max_message %" PRIu32 " B",
	    r.capacity, r.max_message);
	ring_close(&r);
	return 0;
}

static void
s3_teardown(void *venv)
{
	struct bench_env *env = venv;

	(void)ring_unlink(env->ring_name);
}

static int
s3_prod_open(void *venv, unsigned id, void **st)
{
	struct bench_env *env = venv;
	char path[128];
	struct s3_prod *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	if ((s->p = s3ring_open(env->ring_name, 0)) == NULL) {
		int rc = -errno;
		free(s);
		return rc;
	}
	snprintf(s->key, sizeof(s->key), "bench/p%u", id);
	snprintf(path, sizeof(path), "/dev/shm/s3ring.%s", env->ring_name);
	(void)bench_prefault_mapping(path);
	*st = s;
	return 0;
}

static int
s3_send(void *vs, const void *msg, size_t len)
{
	struct s3_prod *s = vs;

	return s3ring_put(s->p, s->key, msg, len, -1);
}

static void
s3_prod_close(void *vs)
{
	struct s3_prod *s = vs;

	s3ring_close(s->p);
	free(s);
}

static int
s3_cons_open(void *venv, size_t size, void **st)
{
	struct bench_env *env = venv;
	struct s3_cons *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	if ((rc = ring_open(&s->r, env->ring_name, 0, NULL)) < 0)
		goto out_free;
	s->cap = (size_t)s->r.max_message + 1;
	if ((s->buf = malloc(s->cap)) == NULL) {
		rc = -ENOMEM;
		goto out_close;
	}
	(void)madvise(s->r.hdr, s->r.map_len, MADV_POPULATE_WRITE);
	ring_consumer_init(&s->c, &s->r, 0);
	*st = s;
	return 0;

out_close:
	ring_close(&s->r);
out_free:
	free(s);
	return rc;
}

static int
s3_recv(void *vs, const uint8_t **msg, size_t *len)
{
	struct s3_cons *s = vs;

	for (;;) {
		int rc = ring_consume(&s->c, &s->m, s->buf, s->cap);

		if (rc == 1) {
			/* The record is in our buffer now: its ring bytes can
			 * go back to the producers. */
			if (++s->unreleased >= RELEASE_BATCH) {
				ring_release(&s->r, ring_consumer_floor(&s->c));
				s->unreleased = 0;
			}
			*msg = s->m.body;
			*len = s->m.body_len;
			return 0;
		}
		if (rc < 0)
			return rc;
		/* Empty: give everything back before sleeping, or producers
		 * waiting for space would wait for us while we wait for them. */
		ring_release(&s->r, ring_consumer_floor(&s->c));
		s->unreleased = 0;
		ring_consumer_wait(&s->c, 0);
	}
}

static void
s3_cons_counters(void *vs, uint64_t *wakes, uint64_t *sleeps)
{
	struct s3_cons *s = vs;

	*wakes = atomic_load_explicit(&s->r.hdr->wakes, memory_order_relaxed);
	*sleeps = atomic_load_explicit(&s->r.hdr->consumer_wakeups,
	    memory_order_relaxed);
}

static void
s3_cons_close(void *vs)
{
	struct s3_cons *s = vs;

	ring_release(&s->r, ring_consumer_floor(&s->c));
	ring_close(&s->r);
	free(s->buf);
	free(s);
}

const struct bench_transport bench_s3ring = {
	"s3ring", s3_setup, s3_teardown, s3_prod_open, s3_send, s3_prod_close,
	s3_cons_open, s3_recv, s3_cons_counters, s3_cons_close,
};

/* -------------------------------------------------------------- POSIX mq */

struct mq_state {
	mqd_t q;
	uint8_t *buf;
	size_t cap;
};

static int
mq_setup(void *venv, size_t size, char *note, size_t note_cap)
{
	struct bench_env *env = venv;
	struct mq_attr a;
	mqd_t q;

	(void)mq_unlink(env->mq_name);
	/* NULL attributes: the system's defaults, as a user would get them. */
	q = mq_open(env->mq_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, NULL);
	if (q == (mqd_t)-1)
		return -errno;
	if (mq_getattr(q, &a) < 0) {
		int rc = -errno;
		mq_close(q);
		mq_unlink(env->mq_name);
		return rc;
	}
	mq_close(q);
	env->mq_maxmsg = a.mq_maxmsg;
	env->mq_msgsize = a.mq_msgsize;
	snprintf(note, note_cap, "mq_maxmsg %ld, mq_msgsize %ld B (system defaults)",
	    a.mq_maxmsg, a.mq_msgsize);
	if ((long)size > a.mq_msgsize) {
		mq_unlink(env->mq_name);
		return -EMSGSIZE;
	}
	return 0;
}

static void
mq_teardown(void *venv)
{
	struct bench_env *env = venv;

	(void)mq_unlink(env->mq_name);
}

static int
mq_prod_open(void *venv, unsigned id, void **st)
{
	struct bench_env *env = venv;
	struct mq_state *s = calloc(1, sizeof(*s));

	(void)id;
	if (s == NULL)
		return -ENOMEM;
	s->q = mq_open(env->mq_name, O_WRONLY | O_CLOEXEC);
	if (s->q == (mqd_t)-1) {
		int rc = -errno;
		free(s);
		return rc;
	}
	*st = s;
	return 0;
}

static int
mq_send_one(void *vs, const void *msg, size_t len)
{
	struct mq_state *s = vs;

	while (mq_send(s->q, msg, len, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static void
mq_close_one(void *vs)
{
	struct mq_state *s = vs;

	mq_close(s->q);
	free(s->buf);
	free(s);
}

static int
mq_cons_open(void *venv, size_t size, void **st)
{
	struct bench_env *env = venv;
	struct mq_state *s = calloc(1, sizeof(*s));

	(void)size;
	if (s == NULL)
		return -ENOMEM;
	/* mq_receive insists on a buffer of at least mq_msgsize. */
	s->cap = (size_t)env->mq_msgsize;
	if ((s->buf = malloc(s->cap)) == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->q = mq_open(env->mq_name, O_RDONLY | O_CLOEXEC);
	if (s->q == (mqd_t)-1) {
		int rc = -errno;
		free(s->buf);
		free(s);
		return rc;
	}
	*st = s;
	return 0;
}

static int
mq_recv(void *vs, const uint8_t **msg, size_t *len)
{
	struct mq_state *s = vs;
	ssize_t n;

	while ((n = mq_receive(s->q, (char *)s->buf, s->cap, NULL)) < 0)
		if (errno != EINTR)
			return -errno;
	*msg = s->buf;
	*len = (size_t)n;
	return 0;
}

const struct bench_transport bench_posix_mq = {
	"posix_mq", mq_setup, mq_teardown, mq_prod_open, mq_send_one, mq_close_one,
	mq_cons_open, mq_recv, NULL, mq_close_one,
};

/* ---------------------------------------------------- Unix datagram socket */

struct dg_state {
	int fd;
	uint8_t *buf;
	size_t cap;
};

/* An abstract-namespace address: nothing to clean up in the file system,
 * and gone with the last socket. */
static socklen_t
dg_addr(const struct bench_env *env, struct sockaddr_un *sa)
{
	size_t n = strlen(env->sock_name);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, env->sock_name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static int
dg_setup(void *venv, size_t size, char *note, size_t note_cap)
{
	struct bench_env *env = venv;
	struct sockaddr_un sa;
	socklen_t salen = dg_addr(env, &sa), olen;
	int fd, rcv = 0, rc;

	/* The consumer's socket is bound here, before any producer exists,
	 * so that no producer can try to connect too early. */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, salen) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	olen = sizeof(rcv);
	(void)getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, &olen);
	(void)size;
	snprintf(note, note_cap, "default buffers (SO_RCVBUF %d B)", rcv);
	env->sock_fd = fd;
	return 0;
}

static void
dg_teardown(void *venv)
{
	struct bench_env *env = venv;

	if (env->sock_fd >= 0)
		close(env->sock_fd);
	env->sock_fd = -1;
}

static int
dg_prod_open(void *venv, unsigned id, void **st)
{
	struct bench_env *env = venv;
	struct sockaddr_un sa;
	socklen_t salen = dg_addr(env, &sa);
	struct dg_state *s = calloc(1, sizeof(*s));
	int rc;

	(void)id;
	if (s == NULL)
		return -ENOMEM;
	if (env->sock_fd >= 0)
		close(env->sock_fd); /* the consumer's; not ours to hold */
	env->sock_fd = -1;
	s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = -errno;
		goto out_free;
	}
	if (connect(s->fd, (struct sockaddr *)&sa, salen) < 0) {
		rc = -errno;
		goto out_close;
	}
	*st = s;
	return 0;

out_close:
	close(s->fd);
out_free:
	free(s);
	return rc;
}

static int
dg_send(void *vs, const void *msg, size_t len)
{
	struct dg_state *s = vs;
	ssize_t n;

	while ((n = send(s->fd, msg, len, 0)) < 0)
		if (errno != EINTR)
			return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

static void
dg_close(void *vs)
{
	struct dg_state *s = vs;

	close(s->fd);
	free(s->buf);
	free(s);
}

static int
dg_cons_open(void *venv, size_t size, void **st)
{
	struct bench_env *env = venv;
	struct dg_state *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	/* One byte more than a message, so a longer datagram shows up as a
	 * wrong length instead of being cut to the right one. */
	s->cap = size + 1;
	if ((s->buf = malloc(s->cap)) == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->fd = env->sock_fd;
	env->sock_fd = -1;
	*st = s;
	return 0;
}

static int
dg_recv(void *vs, const uint8_t **msg, size_t *len)
{
	struct dg_state *s = vs;
	ssize_t n;

	while ((n = recv(s->fd, s->buf, s->cap, 0)) < 0)
		if (errno != EINTR)
			return -errno;
	*msg = s->buf;
	*len = (size_t)n;
	return 0;
}

const struct bench_transport bench_unix_dgram = {
	"unix_dgram", dg_setup, dg_teardown, dg_prod_open, dg_send, dg_close,
	dg_cons_open, dg_recv, NULL, dg_close,
};
