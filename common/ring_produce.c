/* ring_produce.c -- producer slots and puts: reserve, commit, abort.
 *
 * Invariants kept here:
 * - head <= tail and tail - head <= capacity, both 64-byte aligned, and
 *   every position only grows. A producer never writes past head +
 *   capacity: it reads head (acquire) before it moves tail, so the consumer
 *   has finished with every byte it is about to overwrite. head and tail
 *   are checked for alignment and range before they are used, so a
 *   scribbled control word is an error, never a write outside the mapping.
 * - A record is claimed in two steps: a CAS on tail reserves the bytes, a
 *   CAS on the record's tag (stale -> WRITING, stamped with the record's own
 *   position and the owner's slot and generation) takes ownership of the
 *   header. Nothing else in the record is written before the second CAS
 *   succeeds, so a consumer that gave the space up first (by CAS on the same
 *   tag) always wins cleanly.
 * - Once the tag is ours, the consumer gives the record up only if our slot
 *   lock is gone (we are dead) or the ring is retired; so every later write
 *   into the record is a write into space nobody else owns. The reservation
 *   keeps its own sizes; nothing is read back from shared memory.
 * - The put path makes no system call unless it waits, and checks the
 *   retired word and the SIGBUS guard's lost flag before it returns 0.
 */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "futex.h"

#define MS (1000ull * 1000)

/* ------------------------------------------------------------ slots */

static void
slot_lock_range(struct flock *fl, short type, unsigned slot)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)(offsetof(struct ring_header, slots) +
	    (size_t)slot * sizeof(struct ring_slot));
	fl->l_len = (off_t)sizeof(struct ring_slot);
}

/* Takes slot's lock without waiting. Returns 0, -EAGAIN if another
 * description holds it, or -errno. */
static int
slot_trylock(struct ring *r, unsigned slot)
{
	struct flock fl;

	/* A ring in plain memory (tests, fuzzers) has no object to lock: a
	 * slot is free while its pid is 0. */
	if (r->fd < 0)
		return atomic_load_explicit(&r->hdr->slots[slot].pid,
		    memory_order_relaxed) == 0 ? 0 : -EAGAIN;
	slot_lock_range(&fl, F_WRLCK, slot);
	if (fcntl(r->fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
}

int
ring_slot_claim(struct ring *r, pid_t pid, uint64_t start_time)
{
	struct ring_header *h = r->hdr;

	/* Two passes: never-used slots first, so that a slot whose owner just
	 * died keeps its figures on display for a while; then any slot whose
	 * lock nobody holds. The lock is the arbiter: two claimers of one slot
	 * cannot both get it. */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < RING_MAX_PRODUCERS; i++) {
			struct ring_slot *s = &h->slots[i];
			int rc;

			/* Our own description's lock never conflicts with
			 * itself: a slot this mapping holds is skipped here. */
			if (r->slot_owned[i] ||
			    (pass == 0 && atomic_load_explicit(&s->gen, memory_order_relaxed) != 0))
				continue;
			rc = slot_trylock(r, i);
			if (rc == -EAGAIN)
				continue;
			if (rc < 0)
				return rc;
			/* acq_rel: the previous owner's counters (released by
			 * its unlock) are read below; our generation is seen
			 * before any record stamped with it. */
			uint32_t gen = atomic_fetch_add_explicit(&s->gen, 1,
			    memory_order_acq_rel) + 1;
			r->slot_gen[i] = (uint8_t)(gen & RING_TAG_GEN_MASK);
			r->slot_gen32[i] = gen;
			r->slot_owned[i] = true;
			atomic_store_explicit(&s->pid, (uint32_t)pid, memory_order_relaxed);
			atomic_store_explicit(&s->start_time, start_time, memory_order_relaxed);
			atomic_store_explicit(&s->base_produced,
			    atomic_load_explicit(&s->produced, memory_order_relaxed),
			    memory_order_relaxed);
			atomic_store_explicit(&s->base_dropped_full,
			    atomic_load_explicit(&s->dropped_full, memory_order_relaxed),
			    memory_order_release);
			return (int)i;
		}
	}
	return -EUSERS;
}

void
ring_slot_release(struct ring *r, unsigned slot)
{
	struct flock fl;

	if (slot >= RING_MAX_PRODUCERS)
		return;
	/* pid 0 marks the slot free for display; gen is kept, so records
	 * still stamped with it are recognisably the old owner's. */
	atomic_store_explicit(&r->hdr->slots[slot].pid, 0, memory_order_release);
	r->slot_owned[slot] = false;
	slot_lock_range(&fl, F_UNLCK, slot);
	if (r->fd >= 0)
		(void)fcntl(r->fd, F_OFD_SETLK, &fl);
}

/* A description of r's object of our own (see ring_slot_alive()). */
static int
open_lock_fd(const struct ring *r)
{
	char path[64];
	struct stat a, b;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &a) == 0 && fstat(r->fd, &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1; /* no /proc: r's own locks are unseen, others' are seen */
}

/* The uploader's presence: a lock on its state line, held while it is
 * attached, so that shmstat in another PID namespace can tell it lives. */
static void
uploader_lock_range(struct flock *fl, short type)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)offsetof(struct ring_header, uploader_pid);
	fl->l_len = (off_t)RING_LINE;
}

int
ring_uploader_lock(struct ring *r)
{
	struct flock fl;

	uploader_lock_range(&fl, F_WRLCK);
	return fcntl(r->fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

int
ring_uploader_locked(int fd)
{
	struct flock fl;

	uploader_lock_range(&fl, F_WRLCK);
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

int
ring_slot_locked(int fd, unsigned slot)
{
	struct flock fl;

	if (slot >= RING_MAX_PRODUCERS)
		return -EINVAL;
	slot_lock_range(&fl, F_WRLCK, slot);
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

/* The lock half of the liveness test, once the generation matched. */
static bool
slot_locked_now(struct ring *r, unsigned slot)
{
	const struct ring_slot *s = &r->hdr->slots[slot];
	int fd;

	if (r->fd < 0)
		return atomic_load_explicit(&s->pid, memory_order_relaxed) != 0;
	if (r->lock_fd < 0)
		r->lock_fd = open_lock_fd(r);
	fd = r->lock_fd >= 0 ? r->lock_fd : r->fd;
	/* Cannot tell (an error): never give up a live owner's record. */
	return ring_slot_locked(fd, slot) != 0;
}

bool
ring_slot_alive(struct ring *r, unsigned slot, unsigned gen)
{
	if (slot >= RING_MAX_PRODUCERS)
		return false;
	/* Acquire: pairs with the claim's fetch_add. A new generation means
	 * the owner of gen released the slot or died before it was taken. */
	if ((atomic_load_explicit(&r->hdr->slots[slot].gen, memory_order_acquire) &
	    RING_TAG_GEN_MASK) != gen)
		return false;
	return slot_locked_now(r, slot);
}

bool
ring_slot_alive_gen(struct ring *r, unsigned slot, uint32_t gen)
{
	if (slot >= RING_MAX_PRODUCERS)
		return false;
	/* Acquire: as in ring_slot_alive(), on the whole generation. */
	if (atomic_load_explicit(&r->hdr->slots[slot].gen, memory_order_acquire) != gen)
		return false;
	return slot_locked_now(r, slot);
}

/* ------------------------------------------------------------ records */

static inline struct ring_record *
rec_at(const struct ring *r, uint64_t pos)
{
	return (struct ring_record *)(r->data + (pos & r->mask));
}

/* Waits for the space word to change, bounded by deadline (0: forever, in
 * 50 ms steps). Returns 0 to re-check, or -ETIMEDOUT. */
static int
wait_space(struct ring *r, uint64_t need_pos, uint64_t deadline)
{
	struct ring_header *h = r->hdr;
	uint32_t w = atomic_load_explicit(&h->space_word, memory_order_acquire);
	uint64_t now = mono_ns();

	if (deadline != 0 && now >= deadline)
		return -ETIMEDOUT;
	/* Dekker with ring_release(): set the waiters bit (seq_cst), then
	 * re-read head (seq_cst). The consumer stores head (seq_cst) and
	 * then reads the space word: one of us sees the other. */
	atomic_fetch_or_explicit(&h->space_word, 1u, memory_order_seq_cst);
	if (atomic_load_explicit(&h->head, memory_order_seq_cst) >= need_pos)
		return 0;
	(void)futex_wait(&h->space_word, w | 1u,
	    deadline ? deadline : now + FUTEX_MAX_WAIT_NS);
	return 0;
}

/* Fills in the header of a record we own (its tag is our WRITING tag) and
 * seals its length, so the consumer may read past it while we write. */
static void
write_header(struct ring_record *rec, uint64_t pos, uint32_t len,
    uint32_t body_len, uint16_t key_len, uint64_t seq, uint64_t put_ns,
    uint32_t owner_gen)
{
	rec->len = len;
	rec->owner_gen = owner_gen;
	rec->body_len = body_len;
	rec->key_len = key_len;
	rec->flags = 0;
	rec->body_crc = 0;
	rec->put_ns = put_ns;
	rec->seq = seq;
	/* Release: len is visible before the seal that vouches for it; pairs
	 * with the acquire load of len_seal in the consumer's hole check. */
	atomic_store_explicit(&rec->len_seal, ring_len_seal(pos, len, owner_gen),
	    memory_order_release);
}

/* Claims the header at pos for (slot, gen). False if the consumer gave
 * the space up first (it waited a second for a header and padded over). */
static inline __attribute__((always_inline)) bool
claim_header(struct ring *r, uint64_t pos, unsigned slot, unsigned gen)
{
	struct ring_record *rec = rec_at(r, pos);
	uint64_t old = atomic_load_explicit(&rec->tag, memory_order_relaxed);

	/* Acquire: pairs with the consumer's release of the space (head);
	 * nothing of ours is written before this succeeds. */
	return !ring_tag_stamped(old, pos) &&
	    atomic_compare_exchange_strong_explicit(&rec->tag, &old,
	    ring_tag_make_gen(pos, slot, gen, RING_WRITING), memory_order_acquire,
	    memory_order_relaxed);
}

/* Turns our record at pos (WRITING, ours) into a PAD of len bytes. */
static bool
publish_pad(struct ring *r, uint64_t pos, uint32_t len, unsigned slot,
    unsigned gen)
{
	struct ring_record *rec = rec_at(r, pos);
	uint64_t w = ring_tag_make_gen(pos, slot, gen, RING_WRITING);

	write_header(rec, pos, len, 0, 0, 0, 0, r->slot_gen32[slot]);
	rec->hdr_crc = ring_record_crc(rec, w, NULL, 0);
	/* Release: the pad's length and CRC are visible before its state;
	 * pairs with the acquire load of the tag in ring_consume(). */
	return atomic_compare_exchange_strong_explicit(&rec->tag, &w,
	    ring_tag_with_state(w, RING_PAD), memory_order_seq_cst,
	    memory_order_relaxed);
}

/* With no uploader running (its heartbeat over a second old, or none ever),
 * nobody would retire this object if it were removed: a put would return 0
 * for a record no uploader can see. So a producer that finds the heartbeat
 * stale looks whether the object still has a name (one fstat per put, only
 * while no uploader runs: with a live uploader the put path makes no system
 * call) and retires it itself if not. Returns true if it is retired. A
 * removal at the very moment of a put, with no uploader running, can still
 * slip between the fstat and the commit: remove rings while the uploader
 * runs (README, "Resizing a ring"). */
static bool
orphaned(struct ring *r, uint64_t now)
{
	uint64_t hb = atomic_load_explicit(&r->hdr->upstats.heartbeat_mono_ns,
	    memory_order_relaxed);
	struct stat st;

	if (hb != 0 && now - hb < 1000 * MS)
		return false;
	if (r->fd < 0 || fstat(r->fd, &st) < 0 || st.st_nlink != 0)
		return false;
	ring_retire(r);
	return true;
}

int
ring_reserve(struct ring *r, unsigned slot, const char *key, size_t key_len,
    size_t body_len, int timeout_ms, struct ring_resv *rv)
{
	struct ring_header *h = r->hdr;
	struct ring_slot *s;
	uint64_t need, pad, t, hd, pos, deadline = 0;
	uint64_t bad_hd = 0, bad_t = 0;
	unsigned gen;

	if (slot >= RING_MAX_PRODUCERS)
		return -EINVAL;
	s = &h->slots[slot];
	gen = r->slot_gen[slot];
	/* Compared one at a time, so no sum can wrap: body_len may be
	 * anything a caller passes, SIZE_MAX included. */
	if (key_len > RING_MAX_KEY || body_len > r->max_message ||
	    key_len + body_len > r->max_message) {
		atomic_fetch_add_explicit(&s->rejected, 1, memory_order_relaxed);
		return -EMSGSIZE;
	}
	if (ring_mapping_lost(r))
		return -EBADMSG;
	need = ring_record_size(key_len, body_len);
	if (timeout_ms > 0)
		deadline = mono_ns() + (uint64_t)timeout_ms * MS;

	for (;;) {
		/* Acquire: pairs with the release store of head in
		 * ring_release(); the consumer is done reading everything
		 * below head before we overwrite it. Head is read before tail,
		 * so that head <= tail holds between the two reads. */
		hd = atomic_load_explicit(&h->head, memory_order_acquire);
		t = atomic_load_explicit(&h->tail, memory_order_relaxed);
		if (t < hd || t - hd > r->capacity || (t | hd) % RING_ALIGN != 0) {
			/* Both move while we read them (we may have been
			 * preempted in between): only the same impossible pair
			 * twice in a row is corruption. */
			if ((hd == bad_hd && t == bad_t) || ring_mapping_lost(r))
				return -EBADMSG;
			bad_hd = hd;
			bad_t = t;
			continue;
		}
		pad = ((t & r->mask) + need > r->capacity) ?
		    r->capacity - (t & r->mask) : 0;
		/* Positions start at RING_POS_BASE and grow by what is put:
		 * a tail (and head) this near the end of the 64-bit space was
		 * written by someone else, and the record would take tail
		 * round to below head, where nobody would read it. */
		if (t > UINT64_MAX - pad - need)
			return -EBADMSG;
		if (t + pad + need - hd > r->capacity) {
			int rc;
			/* Full: a ring removed while no uploader runs would
			 * stay full forever (orphaned() is a system call, but
			 * a full ring's put is on its slow path anyway). */
			if (ring_retired(r) || orphaned(r, mono_coarse_ns()))
				return -ESTALE;
			if (timeout_ms == 0) {
				atomic_fetch_add_explicit(&s->dropped_full, 1,
				    memory_order_relaxed);
				return -EAGAIN;
			}
			rc = wait_space(r, t + pad + need - r->capacity,
			    timeout_ms < 0 ? 0 : deadline);
			if (rc < 0) {
				atomic_fetch_add_explicit(&s->dropped_full, 1,
				    memory_order_relaxed);
				return rc;
			}
			continue;
		}
		/* seq_cst: besides reserving the bytes (the record itself is
		 * published by its tag), this is our half of the Dekker pair
		 * with ring_retire(): the load of retired below comes after
		 * it. On x86 the CAS is a full barrier anyway. */
		if (atomic_compare_exchange_weak_explicit(&h->tail, &t,
		    t + pad + need, memory_order_seq_cst, memory_order_relaxed))
			break;
	}

	/* If the consumer gave the pad up, it rescans from there and our
	 * record below is judged on its own. */
	if (pad != 0 && claim_header(r, t, slot, gen))
		(void)publish_pad(r, t, (uint32_t)pad, slot, gen);

	pos = t + pad;
	if (!claim_header(r, pos, slot, gen)) {
		/* The consumer waited a second for this header and padded over
		 * it: the space is gone, and so is this put. */
		if (ring_mapping_lost(r))
			return -EBADMSG;
		atomic_fetch_add_explicit(&s->failed, 1, memory_order_relaxed);
		return -ETIMEDOUT;
	}
	uint64_t now = mono_coarse_ns();
	if (atomic_load_explicit(&h->retired, memory_order_seq_cst) ||
	    orphaned(r, now)) {
		/* Retired after we looked at it: the consumer may or may not
		 * read this far, so the record becomes padding it skips. */
		(void)publish_pad(r, pos, (uint32_t)need, slot, gen);
		ring_wake_consumer(r);
		return -ESTALE;
	}
	struct ring_record *rec = rec_at(r, pos);
	/* The coarse clock (a vDSO read of the last tick, no TSC) costs a
	 * fraction of the precise one; put_ns only feeds ages in ms. */
	write_header(rec, pos, (uint32_t)need, (uint32_t)body_len,
	    (uint16_t)key_len,
	    atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed) + 1,
	    now, r->slot_gen32[slot]);
	memcpy(rec + 1, key, key_len);

	rv->pos = pos;
	rv->body = (uint8_t *)(rec + 1) + key_len;
	rv->body_len = (uint32_t)body_len;
	rv->len = (uint32_t)need;
	rv->key_len = (uint16_t)key_len;
	rv->slot = (uint8_t)slot;
	rv->gen = (uint8_t)gen;
	return 0;
}

void
ring_wake_consumer(struct ring *r)
{
	struct ring_header *h = r->hdr;

	/* Dekker with ring_consumer_wait(): our commit CAS (seq_cst) then this
	 * load (seq_cst), against its store of consumer_sleeping (seq_cst) and
	 * its re-read of the tag. The exchange clears the flag, so a consumer
	 * that died asleep costs one wake-up, not one per put. */
	if (atomic_load_explicit(&h->consumer_sleeping, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&h->consumer_sleeping, 0, memory_order_seq_cst)) {
		atomic_fetch_add_explicit(&h->data_seq, 1, memory_order_release);
		atomic_fetch_add_explicit(&h->wakes, 1, memory_order_relaxed);
		(void)futex_wake(&h->data_seq, 1);
	}
}

/* A reservation is only as good as its own fields: an impossible one (a
 * caller that scribbled on its s3ring_reservation) is refused before it
 * touches the ring. */
bool
ring_resv_valid(const struct ring *r, const struct ring_resv *rv)
{
	return rv->slot < RING_MAX_PRODUCERS && rv->pos % RING_ALIGN == 0 &&
	    rv->len == ring_record_size(rv->key_len, rv->body_len) &&
	    (uint64_t)rv->key_len + rv->body_len <= r->max_message &&
	    (rv->pos & r->mask) + rv->len <= r->capacity;
}

/* ring_commit() of a reservation known good (ring_put() made it). */
static inline __attribute__((always_inline)) int
commit_trusted(struct ring *r, const struct ring_resv *rv, uint32_t body_crc)
{
	struct ring_header *h = r->hdr;
	struct ring_slot *s = &h->slots[rv->slot];
	struct ring_record *rec = rec_at(r, rv->pos);
	uint64_t w = ring_tag_make_gen(rv->pos, rv->slot, rv->gen, RING_WRITING);

	/* Read before the commit: once committed, the record belongs to the
	 * consumer and its space may be reused by another producer. */
	uint64_t put_ns = rec->put_ns;
	/* The record is ours (see the invariants): its key and sizes are the
	 * ones we wrote, and the CRC is computed over our own copy of them. */
	rec->body_crc = body_crc;
	rec->hdr_crc = ring_record_crc(rec, w, rec + 1, rv->key_len);
	/* seq_cst: a release for the record's bytes (pairs with the acquire
	 * load of the tag in ring_consume) and the first half of the Dekker
	 * pair in ring_wake_consumer(). */
	if (!atomic_compare_exchange_strong_explicit(&rec->tag, &w,
	    ring_tag_with_state(w, RING_COMMITTED), memory_order_seq_cst,
	    memory_order_relaxed)) {
		/* Given up because the ring was retired. */
		atomic_fetch_add_explicit(&s->failed, 1, memory_order_relaxed);
		return ring_mapping_lost(r) ? -EBADMSG : -ESTALE;
	}
	if (ring_mapping_lost(r))
		return -EBADMSG;
	atomic_fetch_add_explicit(&s->produced, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->bytes, rv->body_len, memory_order_relaxed);
	atomic_store_explicit(&s->last_put_ns, put_ns, memory_order_relaxed);
	ring_wake_consumer(r);
	return 0;
}

int
ring_commit(struct ring *r, struct ring_resv *rv, uint32_t body_crc)
{
	if (!ring_resv_valid(r, rv))
		return -EINVAL;
	return commit_trusted(r, rv, body_crc);
}

void
ring_abort(struct ring *r, struct ring_resv *rv)
{
	if (!ring_resv_valid(r, rv))
		return;
	if (publish_pad(r, rv->pos, rv->len, rv->slot, rv->gen))
		ring_wake_consumer(r);
}

int
ring_put(struct ring *r, unsigned slot, const char *key, size_t key_len,
    const void *body, size_t len, int timeout_ms)
{
	struct ring_resv rv;
	uint32_t crc;
	int rc;

	rc = ring_reserve(r, slot, key, key_len, len, timeout_ms, &rv);
	if (rc < 0)
		return rc;
	/* CRC the caller's copy while it is hot in cache, then copy. */
	crc = crc32c(0, body, len);
	memcpy(rv.body, body, len);
	return commit_trusted(r, &rv, crc);
}
