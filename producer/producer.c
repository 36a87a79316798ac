/* producer.c -- the s3ring_* API that applications link: open, put, close.
 *
 * This file runs inside other people's programs. It never prints, exits or
 * aborts, and after s3ring_open() it never allocates: s3ring_put() is a
 * validation, a CAS, a memcpy and a CAS, plus one FUTEX_WAKE when the
 * uploader sleeps. Every failure is a negative errno the caller can act on.
 */
#include "s3ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "proc.h"
#include "producer_internal.h"
#include "ring.h"

/* The reservation's opaque words hold the ring position and the slot. */
_Static_assert(sizeof(((struct s3ring_reservation *)0)->opaque_) >= 2 * sizeof(uint64_t),
    "reservation has room for the position and the slot");

/* Forks. A child shares its parent's open file description, and so its
 * slot lock: the uploader could not tell their records apart, nor see the
 * child die while the parent lives. So a handle used in a process other
 * than the one that opened it first opens the ring again for itself. The
 * count is bumped in the child by pthread_atfork(), so a put pays two
 * loads, not a getpid(). */
static _Atomic unsigned forks;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
count_fork(void)
{
	atomic_fetch_add_explicit(&forks, 1, memory_order_relaxed);
}

static void
install_atfork(void)
{
	(void)pthread_atfork(NULL, NULL, count_fork);
}

/* The slow path of own_handle(): this process is a child of the one that
 * claimed p's slot. Drops the inherited mapping (not the parent's slot or
 * lock) and opens the ring again with a slot of our own. Once per child. */
static int
reopen_after_fork(struct s3ring_producer *p)
{
	char name[RING_NAME_MAX + 1];
	unsigned now;
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	now = atomic_load_explicit(&forks, memory_order_relaxed);
	/* Relaxed: broken is written under mu, which we hold. */
	if (atomic_load_explicit(&p->broken, memory_order_relaxed) != 0) {
		rc = atomic_load_explicit(&p->broken, memory_order_relaxed);
		goto out_unlock;
	}
	if (atomic_load_explicit(&p->forks, memory_order_relaxed) == now)
		goto out_unlock; /* another thread of ours did it */
	snprintf(name, sizeof(name), "%s", p->ring.name);
	ring_close(&p->ring);
	rc = ring_open(&p->ring, name, 0, NULL);
	if (rc == 0) {
		rc = ring_slot_claim(&p->ring, getpid(), proc_start_time(getpid()));
		if (rc < 0)
			ring_close(&p->ring);
	}
	if (rc < 0) {
		atomic_store_explicit(&p->broken, rc, memory_order_relaxed);
		goto out_unlock;
	}
	p->slot = (unsigned)rc;
	p->owner = getpid();
	rc = 0;
	/* Release: a thread that sees the new count sees the new ring. */
	atomic_store_explicit(&p->forks, now, memory_order_release);
out_unlock:
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* 0 if p belongs to this process (the common case: two loads), else the
 * result of opening the ring again for it. */
static inline int
own_handle(struct s3ring_producer *p)
{
	/* Acquire: pairs with the release in reopen_after_fork(). */
	if (atomic_load_explicit(&p->forks, memory_order_acquire) ==
	    atomic_load_explicit(&forks, memory_order_relaxed) &&
	    atomic_load_explicit(&p->broken, memory_order_relaxed) == 0)
		return 0;
	return reopen_after_fork(p);
}

S3RING_API struct s3ring_producer *
s3ring_open(const char *ring_name, unsigned flags)
{
	struct s3ring_producer *p;
	int rc, saved;

	if (flags & ~S3RING_CREATE) {
		errno = EINVAL;
		return NULL;
	}
	(void)pthread_once(&atfork_once, install_atfork);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	atomic_store_explicit(&p->forks, atomic_load(&forks), memory_order_relaxed);
	pthread_mutex_init(&p->mu, NULL);
	rc = ring_open(&p->ring, ring_name,
	    (flags & S3RING_CREATE) ? RING_OPEN_CREATE : 0, NULL);
	if (rc < 0)
		goto out_free;
	rc = ring_slot_claim(&p->ring, getpid(), proc_start_time(getpid()));
	if (rc < 0)
		goto out_close;
	p->slot = (unsigned)rc;
	p->owner = getpid();
	return p;

out_close:
	ring_close(&p->ring);
out_free:
	saved = -rc;
	pthread_mutex_destroy(&p->mu);
	free(p);
	errno = saved;
	return NULL;
}

/* The key must be a C string of at most S3RING_MAX_KEY bytes: strnlen stops
 * one past the limit, so an unterminated buffer is never overrun. */
static int
key_check(struct s3ring_producer *p, const char *key, size_t *klen)
{
	if (key == NULL)
		return -EINVAL;
	*klen = strnlen(key, S3RING_MAX_KEY + 1);
	if (!ring_key_valid(key, *klen)) {
		atomic_fetch_add_explicit(&p->ring.hdr->slots[p->slot].rejected, 1,
		    memory_order_relaxed);
		return -EINVAL;
	}
	return 0;
}

S3RING_API int
s3ring_put(struct s3ring_producer *p, const char *key, const void *body,
    size_t len, int timeout_ms)
{
	size_t klen;
	int rc;

	if (p == NULL || (body == NULL && len != 0))
		return -EINVAL;
	if ((rc = own_handle(p)) < 0)
		return rc;
	if ((rc = key_check(p, key, &klen)) < 0)
		return rc;
	return ring_put(&p->ring, p->slot, key, klen, body, len, timeout_ms);
}

S3RING_API int
s3ring_reserve(struct s3ring_producer *p, const char *key, size_t len,
    struct s3ring_reservation *r, int timeout_ms)
{
	struct ring_resv rv;
	size_t klen;
	int rc;

	if (p == NULL || r == NULL)
		return -EINVAL;
	if ((rc = own_handle(p)) < 0)
		return rc;
	if ((rc = key_check(p, key, &klen)) < 0)
		return rc;
	rc = ring_reserve(&p->ring, p->slot, key, klen, len, timeout_ms, &rv);
	if (rc < 0)
		return rc;
	r->data = rv.body;
	r->len = len;
	r->opaque_[0] = rv.pos;
	r->opaque_[1] = (unsigned long long)rv.len << 32 |
	    (unsigned long long)rv.key_len << 16 | (unsigned)rv.gen << 8 | rv.slot;
	return 0;
}

/* True if rv could have come from p's ring: consistent sizes, and the body
 * pointer the one this mapping handed out (the checksum in commit reads
 * body_len bytes from it). A reservation made before a fork() is not the
 * child's: its mapping was replaced. */
static bool
resv_ours(const struct s3ring_producer *p, const struct ring_resv *rv)
{
	return ring_resv_valid(&p->ring, rv) &&
	    rv->body == p->ring.data + (rv->pos & p->ring.mask) +
	    sizeof(struct ring_record) + rv->key_len;
}

static void
resv_unpack(const struct s3ring_reservation *r, struct ring_resv *rv)
{
	rv->pos = r->opaque_[0];
	rv->body = r->data;
	rv->body_len = r->len > UINT32_MAX ? UINT32_MAX : (uint32_t)r->len;
	rv->len = (uint32_t)(r->opaque_[1] >> 32);
	rv->key_len = (uint16_t)(r->opaque_[1] >> 16);
	rv->gen = (uint8_t)(r->opaque_[1] >> 8);
	rv->slot = (uint8_t)r->opaque_[1];
}

S3RING_API int
s3ring_commit(struct s3ring_producer *p, struct s3ring_reservation *r)
{
	struct ring_resv rv;

	if (p == NULL || r == NULL || r->data == NULL)
		return -EINVAL;
	if (own_handle(p) < 0)
		return -EINVAL;
	resv_unpack(r, &rv);
	r->data = NULL;
	if (!resv_ours(p, &rv))
		return -EINVAL;
	return ring_commit(&p->ring, &rv, crc32c(0, rv.body, rv.body_len));
}

S3RING_API void
s3ring_abort(struct s3ring_producer *p, struct s3ring_reservation *r)
{
	struct ring_resv rv;

	if (p == NULL || r == NULL || r->data == NULL || own_handle(p) < 0)
		return;
	resv_unpack(r, &rv);
	r->data = NULL;
	if (resv_ours(p, &rv))
		ring_abort(&p->ring, &rv);
}

S3RING_API size_t
s3ring_max_body(const struct s3ring_producer *p, size_t key_len)
{
	if (p == NULL || key_len >= p->ring.max_message)
		return 0;
	return p->ring.max_message - key_len;
}

S3RING_API void
s3ring_close(struct s3ring_producer *p)
{
	if (p == NULL)
		return;
	/* A forked child shares its parent's open file description, and so
	 * its slot lock: closing the child's handle must leave both alone. */
	if (p->owner == getpid() &&
	    atomic_load_explicit(&p->broken, memory_order_relaxed) == 0)
		ring_slot_release(&p->ring, p->slot);
	ring_close(&p->ring);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

S3RING_API const char *
s3ring_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return "success";
	case EAGAIN:
		return "ring is full";
	case ETIMEDOUT:
		return "timed out: the ring stayed full, or the put was too slow and was given up";
	case EMSGSIZE:
		return "message too large for this ring (key + body > max_message)";
	case EINVAL:
		return "invalid argument: key must be 1-1024 bytes of UTF-8 without control characters";
	case EPROTO:
		return "ring has a different layout version than this library";
	case ENOENT:
		return "no such ring (is s3ring-uploader running?)";
	case EACCES:
		return "permission denied on the ring";
	case EBADMSG:
		return "ring is corrupt, or was truncated under the put";
	case ESTALE:
		return "ring was removed or replaced (retired): open it again";
	case EUSERS:
		return "all producer slots of the ring are in use";
	case ENOSPC:
		return "not enough room in /dev/shm for the ring (see --ring-size)";
	case ENOMEM:
		return "out of memory";
	default:
		return "unknown error";
	}
}
