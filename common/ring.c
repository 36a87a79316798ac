/* ring.c -- the s3ring shared-memory ring protocol: create, put, consume.
 *
 * Invariants kept here:
 * - head <= cursor <= tail and tail - head <= capacity, all positions only
 *   grow. A producer never writes past head + capacity: it reads head
 *   (acquire) before it moves tail, so the consumer has finished with every
 *   byte it is about to overwrite.
 * - A record is claimed in two steps: a CAS on tail reserves the bytes, a CAS
 *   on the record's tag (stale -> WRITING, stamped with the record's own
 *   position) takes ownership of the header. Nothing else in the record is
 *   written before the second CAS succeeds, so a consumer that gave the space
 *   up first (by CAS on the same tag) always wins cleanly.
 * - The consumer gives space up only with CAS, 64 bytes at a time, stopping
 *   at the first header that carries its own stamp. A slow producer whose
 *   header lies in that span therefore loses its claim instead of writing a
 *   record nobody will read.
 * - Everything read from shared memory on the consumer side is untrusted:
 *   read once into locals, checked against the geometry, copied out, and
 *   verified by CRC on the copy.
 */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "futex.h"
#include "proc.h"
#include "utf8.h"

#define MS (1000ull * 1000)

/* ------------------------------------------------------------- naming */

const char *
ring_default_name(void)
{
	const char *n = getenv("S3RING_RING");

	return n != NULL && *n != '\0' ? n : "default";
}

bool
ring_name_valid(const char *name)
{
	size_t n = 0;

	if (name == NULL || name[0] == '.' || name[0] == '\0')
		return false;
	for (; name[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)name[n];
		if (n >= RING_NAME_MAX)
			return false;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		    ch == '-'))
			return false;
	}
	return true;
}

bool
ring_key_valid(const char *key, size_t len)
{
	const unsigned char *s = (const unsigned char *)key;
	size_t i = 0;

	if (key == NULL || len == 0 || len > RING_MAX_KEY)
		return false;
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_seq(s + i, len - i, &cp);

		/* C0 and C1 controls and DEL: S3 would take them, but they
		 * break logs, XML listings and terminals. */
		if (n == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
			return false;
		i += n;
	}
	return true;
}

/* ------------------------------------------------------ open and close */

static int
shm_name(char *buf, size_t cap, const char *name)
{
	if (!ring_name_valid(name))
		return -EINVAL;
	if ((size_t)snprintf(buf, cap, "%s%s", RING_SHM_PREFIX, name) >= cap)
		return -EINVAL;
	return 0;
}

int
ring_check_header(const struct ring_header *h, size_t map_len)
{
	uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
	uint64_t cap = h->capacity;
	uint32_t maxm = h->max_message;

	if (magic != RING_MAGIC)
		return -EBADMSG;
	if (h->layout_version != RING_LAYOUT_VERSION)
		return -EPROTO;
	if (h->header_size != RING_HEADER_SIZE)
		return -EBADMSG;
	if (cap < RING_MIN_CAPACITY || cap > RING_MAX_CAPACITY ||
	    (cap & (cap - 1)) != 0)
		return -EBADMSG;
	if (maxm == 0 || maxm > cap / 8)
		return -EBADMSG;
	if (h->max_producers != RING_MAX_PRODUCERS)
		return -EBADMSG;
	if (map_len != 0 && map_len < RING_HEADER_SIZE + cap)
		return -EBADMSG;
	return 0;
}

static void
ring_reset(struct ring *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

static int
ring_map(struct ring *r, size_t len)
{
	int prot = r->readonly ? PROT_READ : PROT_READ | PROT_WRITE;
	void *p = mmap(NULL, len, prot, MAP_SHARED, r->fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	r->hdr = p;
	r->map_len = len;
	return 0;
}

static void
ring_set_geometry(struct ring *r)
{
	r->capacity = r->hdr->capacity;
	r->mask = r->capacity - 1;
	r->max_message = r->hdr->max_message;
	r->max_record = ring_record_size(0, r->max_message);
	r->data = (uint8_t *)r->hdr + RING_HEADER_SIZE;
}

static int
ring_create(struct ring *r, const char *shm, const struct ring_config *cfg)
{
	uint64_t cap = cfg && cfg->capacity ? cfg->capacity : RING_DEFAULT_CAPACITY;
	uint32_t maxm = cfg && cfg->max_message ? cfg->max_message :
	    (uint32_t)(RING_DEFAULT_MAX_MESSAGE < cap / 8 ?
	    RING_DEFAULT_MAX_MESSAGE : cap / 8);
	mode_t mode = cfg && cfg->mode ? cfg->mode : 0600;
	struct ring_header *h;
	int rc;

	if (cap < RING_MIN_CAPACITY || cap > RING_MAX_CAPACITY ||
	    (cap & (cap - 1)) != 0 || maxm == 0 || maxm > cap / 8)
		return -EINVAL;
	r->fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (r->fd < 0)
		return -errno;
	/* shm_open applies the umask; the mode asked for is the mode meant. */
	if (fchmod(r->fd, mode) < 0 ||
	    (cfg && cfg->gid != (gid_t)-1 && fchown(r->fd, (uid_t)-1, cfg->gid) < 0)) {
		rc = -errno;
		goto out_unlink;
	}
	/* posix_fallocate makes a full /dev/shm fail here, with ENOSPC, rather
	 * than as a SIGBUS on the first write past what tmpfs could give. */
	rc = posix_fallocate(r->fd, 0, (off_t)(RING_HEADER_SIZE + cap));
	if (rc != 0) {
		rc = rc == EFBIG ? -ENOSPC : -rc;
		goto out_unlink;
	}
	rc = ring_map(r, RING_HEADER_SIZE + cap);
	if (rc < 0)
		goto out_unlink;
	h = r->hdr;
	h->layout_version = RING_LAYOUT_VERSION;
	h->header_size = RING_HEADER_SIZE;
	h->capacity = cap;
	h->max_message = maxm;
	h->creator_uid = (uint32_t)getuid();
	h->created_realtime_ns = realtime_ns();
	h->max_producers = RING_MAX_PRODUCERS;
	atomic_store_explicit(&h->tail, RING_POS_BASE, memory_order_relaxed);
	atomic_store_explicit(&h->head, RING_POS_BASE, memory_order_relaxed);
	atomic_store_explicit(&h->cursor, RING_POS_BASE, memory_order_relaxed);
	/* Release: pairs with the acquire load of magic in ring_check_header();
	 * an attacher that sees the magic sees the whole header. */
	atomic_store_explicit(&h->magic, RING_MAGIC, memory_order_release);
	r->created = true;
	ring_set_geometry(r);
	return 0;

out_unlink:
	if (r->hdr != NULL)
		munmap(r->hdr, r->map_len);
	r->hdr = NULL;
	shm_unlink(shm);
	close(r->fd);
	r->fd = -1;
	return rc;
}

/* Attaches to an existing object. A creator may be between O_EXCL and
 * storing the magic, so a short or magic-less object is waited for, up to a
 * second, before it is called corrupt. */
static int
ring_attach(struct ring *r, const char *shm)
{
	uint64_t deadline = mono_ns() + 1000 * MS;
	struct stat st;
	int rc;

	r->fd = shm_open(shm, (r->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
	if (r->fd < 0)
		return -errno;
	for (;;) {
		if (fstat(r->fd, &st) < 0) {
			rc = -errno;
			goto out_close;
		}
		if ((size_t)st.st_size >= RING_HEADER_SIZE) {
			const struct ring_header *h;
			if (r->hdr == NULL && (rc = ring_map(r, RING_HEADER_SIZE)) < 0)
				goto out_close;
			h = r->hdr;
			rc = ring_check_header(h, (size_t)st.st_size);
			if (rc == 0 || (rc == -EPROTO &&
			    atomic_load_explicit(&h->magic, memory_order_acquire) == RING_MAGIC))
				break;
		} else {
			rc = -EBADMSG;
		}
		if (mono_ns() >= deadline)
			goto out_unmap;
		usleep(1000);
	}
	if (rc < 0)
		goto out_unmap;
	/* Remap with the data region now that the geometry is known. */
	{
		size_t len = RING_HEADER_SIZE + r->hdr->capacity;
		munmap(r->hdr, r->map_len);
		r->hdr = NULL;
		if ((rc = ring_map(r, len)) < 0)
			goto out_close;
		if ((rc = ring_check_header(r->hdr, len)) < 0)
			goto out_unmap;
	}
	ring_set_geometry(r);
	return 0;

out_unmap:
	munmap(r->hdr, r->map_len);
	r->hdr = NULL;
out_close:
	close(r->fd);
	r->fd = -1;
	return rc;
}

int
ring_open(struct ring *r, const char *name, unsigned flags,
    const struct ring_config *cfg)
{
	char shm[sizeof(RING_SHM_PREFIX) + RING_NAME_MAX];
	int rc;

	ring_reset(r);
	if (name == NULL)
		name = ring_default_name();
	if ((rc = shm_name(shm, sizeof(shm), name)) < 0)
		return rc;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->readonly = (flags & RING_OPEN_RDONLY) != 0;

	if ((flags & RING_OPEN_CREATE) && !r->readonly) {
		rc = ring_create(r, shm, cfg);
		if (rc != -EEXIST) {
			if (rc < 0)
				ring_reset(r);
			return rc;
		}
	}
	rc = ring_attach(r, shm);
	if (rc < 0)
		ring_reset(r);
	return rc;
}

void
ring_close(struct ring *r)
{
	if (r->hdr != NULL)
		munmap(r->hdr, r->map_len);
	if (r->fd >= 0)
		close(r->fd);
	ring_reset(r);
}

int
ring_unlink(const char *name)
{
	char shm[sizeof(RING_SHM_PREFIX) + RING_NAME_MAX];
	int rc = shm_name(shm, sizeof(shm), name ? name : ring_default_name());

	if (rc < 0)
		return rc;
	return shm_unlink(shm) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------ producers */

int
ring_slot_claim(struct ring *r, pid_t pid, uint64_t start_time)
{
	struct ring_header *h = r->hdr;

	/* Two passes: never-used slots first, so that a slot whose owner just
	 * died keeps its identity long enough for the consumer to see the
	 * owner is dead; only then slots of dead owners. */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < RING_MAX_PRODUCERS; i++) {
			struct ring_slot *s = &h->slots[i];
			uint32_t cur = atomic_load_explicit(&s->pid, memory_order_acquire);
			uint64_t st = atomic_load_explicit(&s->start_time, memory_order_relaxed);

			if (pass == 0 && (cur != 0 || st != 0))
				continue;
			if (pass == 1 && cur != 0 && proc_alive((pid_t)cur, st))
				continue;
			if (!atomic_compare_exchange_strong_explicit(&s->pid, &cur,
			    (uint32_t)pid, memory_order_acq_rel, memory_order_relaxed))
				continue;
			atomic_store_explicit(&s->start_time, start_time, memory_order_relaxed);
			atomic_store_explicit(&s->base_produced,
			    atomic_load_explicit(&s->produced, memory_order_relaxed),
			    memory_order_relaxed);
			atomic_store_explicit(&s->base_dropped_full,
			    atomic_load_explicit(&s->dropped_full, memory_order_relaxed),
			    memory_order_relaxed);
			return (int)i;
		}
	}
	return -EUSERS;
}

void
ring_slot_release(struct ring *r, unsigned slot)
{
	if (slot >= RING_MAX_PRODUCERS)
		return;
	/* Release: the counters this owner wrote are visible to whoever
	 * claims the slot next (acquire in ring_slot_claim). start_time is
	 * kept, so the slot is recognisably used but free. */
	atomic_store_explicit(&r->hdr->slots[slot].pid, 0, memory_order_release);
}

static inline struct ring_record *
rec_at(const struct ring *r, uint64_t pos)
{
	return (struct ring_record *)(r->data + (pos & r->mask));
}

uint32_t
ring_record_crc(const struct ring_record *hdr, uint64_t tag, const void *key,
    size_t key_len)
{
	uint64_t t = tag & ~(uint64_t)0xf;
	uint32_t crc;

	/* The tag is taken from the caller, never read from hdr: in the ring
	 * it is an atomic that others CAS. */
	crc = crc32c(0, &t, sizeof(t));
	crc = crc32c(crc, (const uint8_t *)hdr + sizeof(t),
	    RING_HDR_CRC_SPAN - sizeof(t));
	return crc32c(crc, key, key_len);
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

int
ring_reserve(struct ring *r, unsigned slot, const char *key, size_t key_len,
    size_t body_len, int timeout_ms, struct ring_resv *rv)
{
	struct ring_header *h = r->hdr;
	struct ring_slot *s = &h->slots[slot];
	uint64_t need, pad, t, hd, pos, deadline = 0, old;
	uint64_t bad_hd = 0, bad_t = 0;
	struct ring_record *rec;

	if (key_len + body_len > r->max_message) {
		atomic_fetch_add_explicit(&s->rejected, 1, memory_order_relaxed);
		return -EMSGSIZE;
	}
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
		if (t < hd || t - hd > r->capacity) {
			/* Both move while we read them (we may have been
			 * preempted in between): only the same impossible pair
			 * twice in a row is corruption. */
			if (hd == bad_hd && t == bad_t)
				return -EBADMSG;
			bad_hd = hd;
			bad_t = t;
			continue;
		}
		pad = ((t & r->mask) + need > r->capacity) ?
		    r->capacity - (t & r->mask) : 0;
		if (t + pad + need - hd > r->capacity) {
			int rc;
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
		/* The CAS only reserves bytes; the record is published by its
		 * tag, so no ordering is needed here beyond the head load. */
		if (atomic_compare_exchange_weak_explicit(&h->tail, &t,
		    t + pad + need, memory_order_relaxed, memory_order_relaxed))
			break;
	}

	if (pad != 0) {
		rec = rec_at(r, t);
		old = atomic_load_explicit(&rec->tag, memory_order_relaxed);
		if (!ring_tag_stamped(old, t) &&
		    atomic_compare_exchange_strong_explicit(&rec->tag, &old,
		    ring_tag_make(t, slot, RING_WRITING), memory_order_relaxed,
		    memory_order_relaxed)) {
			rec->len = (uint32_t)pad;
			rec->body_len = 0;
			rec->key_len = 0;
			rec->flags = 0;
			rec->body_crc = 0;
			rec->put_ns = 0;
			rec->seq = 0;
			rec->reserved = 0;
			rec->hdr_crc = ring_record_crc(rec, ring_tag_make(t, slot, 0),
			    NULL, 0);
			/* Release: the pad's length is visible before its
			 * state; pairs with the acquire load in ring_consume. */
			uint64_t w = ring_tag_make(t, slot, RING_WRITING);
			atomic_compare_exchange_strong_explicit(&rec->tag, &w,
			    ring_tag_make(t, slot, RING_PAD), memory_order_release,
			    memory_order_relaxed);
		}
		/* If the consumer gave the pad up, it rescans from there and
		 * our record below is judged on its own. */
	}

	pos = t + pad;
	rec = rec_at(r, pos);
	old = atomic_load_explicit(&rec->tag, memory_order_relaxed);
	if (ring_tag_stamped(old, pos) ||
	    !atomic_compare_exchange_strong_explicit(&rec->tag, &old,
	    ring_tag_make(pos, slot, RING_WRITING), memory_order_acquire,
	    memory_order_relaxed)) {
		/* The consumer waited a second for this header and padded over
		 * it: the space is gone, and so is this put. */
		atomic_fetch_add_explicit(&s->failed, 1, memory_order_relaxed);
		return -ETIMEDOUT;
	}
	rec->len = (uint32_t)need;
	rec->body_len = (uint32_t)body_len;
	rec->key_len = (uint16_t)key_len;
	rec->flags = 0;
	rec->reserved = 0;
	/* The coarse clock (a vDSO read of the last tick, no TSC) costs a
	 * fraction of the precise one; put_ns only feeds ages in ms. */
	rec->put_ns = mono_coarse_ns();
	rec->seq = atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed) + 1;
	memcpy(rec + 1, key, key_len);

	rv->pos = pos;
	rv->body = (uint8_t *)(rec + 1) + key_len;
	rv->body_len = (uint32_t)body_len;
	rv->len = (uint32_t)need;
	rv->slot = slot;
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

int
ring_commit(struct ring *r, struct ring_resv *rv, uint32_t body_crc)
{
	struct ring_header *h = r->hdr;
	struct ring_slot *s = &h->slots[rv->slot];
	struct ring_record *rec = rec_at(r, rv->pos);
	uint64_t w = ring_tag_make(rv->pos, rv->slot, RING_WRITING);

	/* Read before the commit: once committed, the record belongs to the
	 * consumer and its space may be reused by another producer. */
	uint64_t put_ns = rec->put_ns;

	rec->body_crc = body_crc;
	rec->hdr_crc = ring_record_crc(rec, w, rec + 1, rec->key_len);
	/* seq_cst: a release for the record's bytes (pairs with the acquire
	 * load of the tag in ring_consume) and the first half of the Dekker
	 * pair in ring_wake_consumer(). */
	if (!atomic_compare_exchange_strong_explicit(&rec->tag, &w,
	    ring_tag_make(rv->pos, rv->slot, RING_COMMITTED),
	    memory_order_seq_cst, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&s->failed, 1, memory_order_relaxed);
		return -ETIMEDOUT;
	}
	atomic_fetch_add_explicit(&s->produced, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->bytes, rv->body_len, memory_order_relaxed);
	atomic_store_explicit(&s->last_put_ns, put_ns, memory_order_relaxed);
	ring_wake_consumer(r);
	return 0;
}

void
ring_abort(struct ring *r, struct ring_resv *rv)
{
	struct ring_record *rec = rec_at(r, rv->pos);
	uint64_t w = ring_tag_make(rv->pos, rv->slot, RING_WRITING);

	rec->body_len = 0;
	rec->key_len = 0;
	rec->body_crc = 0;
	rec->hdr_crc = ring_record_crc(rec, w, NULL, 0);
	/* Release: len and hdr_crc before the PAD state (ring_consume). */
	if (atomic_compare_exchange_strong_explicit(&rec->tag, &w,
	    ring_tag_make(rv->pos, rv->slot, RING_PAD), memory_order_seq_cst,
	    memory_order_relaxed))
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
	return ring_commit(r, &rv, crc);
}

/* ------------------------------------------------------------- consumer */

/* The SIGBUS guard. Another process can ftruncate the object under us;
 * touching a page past the new end raises SIGBUS. The handler turns that
 * into a return of -EFAULT from the guarded function instead of a crash.
 * This is the one signal handler that does more than set a flag: it must,
 * because the faulting instruction would otherwise be restarted forever. */
static __thread sigjmp_buf *sigbus_jmp;
/* sigsetjmp(jb, 0): the signal mask is not saved, because saving it would
 * cost an rt_sigprocmask system call per record. The handler asks for
 * SA_NODEFER, but a runtime that wraps handlers (ThreadSanitizer's does)
 * may still block SIGBUS while it runs, and a SIGBUS that arrives blocked
 * kills the process outright; so the rare path that leaves by siglongjmp
 * unblocks it itself: sigbus_recovered(). */

/* The mapping the handler may replace when a fault hits it outside a
 * guarded read (a write to the header, say): see ring_sigbus_protect(). */
static void *_Atomic protect_base;
static _Atomic size_t protect_len;
static _Atomic int mapping_lost;

static void
sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	sigjmp_buf *jb = sigbus_jmp;
	uint8_t *base = atomic_load(&protect_base);
	size_t len = atomic_load(&protect_len);

	(void)uc;
	if (jb != NULL) {
		sigbus_jmp = NULL;
		siglongjmp(*jb, 1);
	}
	if (base != NULL && (uint8_t *)si->si_addr >= base &&
	    (uint8_t *)si->si_addr < base + len) {
		/* The object was truncated under an unguarded access. Put
		 * private zero pages where the ring was, so that this and
		 * every later access succeeds, and say so; the owner of the
		 * mapping checks ring_mapping_lost() and stops using it.
		 * mmap is not on the async-signal-safe list, but it is a plain
		 * system call here, with no lock of the C library taken. */
		if (mmap(base, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
			atomic_store(&mapping_lost, 1);
			return;
		}
	}
	signal(sig, SIG_DFL); /* not ours: die as we would have */
}

static void
sigbus_recovered(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGBUS);
	(void)pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int
ring_sigbus_guard_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigbus_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

void
ring_sigbus_protect(struct ring *r)
{
	atomic_store(&protect_len, r->map_len);
	atomic_store(&protect_base, (void *)r->hdr);
}

bool
ring_mapping_lost(void)
{
	return atomic_load(&mapping_lost) != 0;
}

void
ring_consumer_init(struct ring_consumer *c, struct ring *r, uint64_t from)
{
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->cursor = from ? from :
	    atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	c->owner_wait_ns = 10 * MS;
	c->stale_wait_ns = 1000 * MS;
	c->hard_wait_ns = 30000 * MS;
	if (!r->readonly)
		atomic_store_explicit(&r->hdr->cursor, c->cursor, memory_order_relaxed);
}

/* Gives up [from, ...) 64 bytes at a time, by CAS from whatever stale tag
 * is there to an ABANDONED tag stamped with that position, until a header
 * carrying its own stamp (a live record) or limit. Returns where it stopped. */
static uint64_t
poison_until_header(struct ring *r, uint64_t from, uint64_t limit)
{
	uint64_t q = from;

	while (q < limit) {
		struct ring_record *rec = rec_at(r, q);
		uint64_t t = atomic_load_explicit(&rec->tag, memory_order_acquire);

		if (ring_tag_stamped(t, q))
			break;
		if (atomic_compare_exchange_strong_explicit(&rec->tag, &t,
		    ring_tag_make(q, RING_SLOT_NONE, RING_ABANDONED),
		    memory_order_acq_rel, memory_order_acquire))
			q += RING_ALIGN;
		/* else: a producer claimed q just now; look at it again. */
	}
	return q;
}

/* Gives up every 64-byte block of [from, to), whatever is there. */
static void
poison_span(struct ring *r, uint64_t from, uint64_t to)
{
	for (uint64_t q = from; q < to; q += RING_ALIGN)
		atomic_store_explicit(&rec_at(r, q)->tag,
		    ring_tag_make(q, RING_SLOT_NONE, RING_ABANDONED),
		    memory_order_release);
}

static bool
owner_dead(struct ring *r, unsigned slot)
{
	const struct ring_slot *s;
	uint32_t pid;

	if (slot >= RING_MAX_PRODUCERS)
		return true;
	s = &r->hdr->slots[slot];
	pid = atomic_load_explicit(&s->pid, memory_order_acquire);
	return pid == 0 || !proc_alive((pid_t)pid,
	    atomic_load_explicit(&s->start_time, memory_order_relaxed));
}

/* The cursor's record is not ready. Returns true if it was given up (and
 * the cursor moved), false to wait longer. */
static bool
handle_stuck(struct ring_consumer *c, uint64_t tag, uint64_t tail)
{
	struct ring *r = c->r;
	struct ring_header *h = r->hdr;
	uint64_t now = mono_ns(), pos = c->cursor, waited;

	if (c->stuck_pos != pos || c->stuck_since_ns == 0) {
		c->stuck_pos = pos;
		c->stuck_since_ns = now;
		c->next_check_ns = now + (ring_tag_stamped(tag, pos) ?
		    c->owner_wait_ns : c->stale_wait_ns);
		return false;
	}
	if (now < c->next_check_ns)
		return false;
	waited = now - c->stuck_since_ns;

	if (!ring_tag_stamped(tag, pos)) {
		/* Nobody has claimed this header although tail is past it: a
		 * producer died between its tail CAS and its header CAS (or is
		 * stalled there for a second). */
		if (waited < c->stale_wait_ns) {
			c->next_check_ns = c->stuck_since_ns + c->stale_wait_ns;
			return false;
		}
		uint64_t q = poison_until_header(r, pos, tail);
		if (q == pos)
			return false; /* claimed meanwhile */
		atomic_fetch_add_explicit(&h->resynced, 1, memory_order_relaxed);
		c->cursor = q;
		return true;
	}

	/* WRITING: give it up if its owner is dead, or after the hard
	 * timeout whatever the owner's state. */
	bool hard = waited >= c->hard_wait_ns;
	if (!hard && !owner_dead(r, ring_tag_slot(tag))) {
		c->next_check_ns = now + c->owner_wait_ns;
		if (c->next_check_ns > c->stuck_since_ns + c->hard_wait_ns)
			c->next_check_ns = c->stuck_since_ns + c->hard_wait_ns;
		return false;
	}
	uint64_t expect = tag;
	if (!atomic_compare_exchange_strong_explicit(&rec_at(r, pos)->tag,
	    &expect, ring_tag_make(pos, ring_tag_slot(tag), RING_ABANDONED),
	    memory_order_acq_rel, memory_order_acquire))
		return true; /* it changed (committed, most likely): look again */
	atomic_fetch_add_explicit(hard ? &h->abandoned_hard : &h->abandoned, 1,
	    memory_order_relaxed);
	/* Its length may never have been written: find its end by the next
	 * stamped header, giving up the blocks in between. */
	c->cursor = poison_until_header(r, pos + RING_ALIGN, tail);
	return true;
}

/* Skips a record that claims to be committed but does not check out. If its
 * header is intact, its length is trusted; otherwise its end is found by
 * rescanning. Either way its blocks are given up, so that a restarted
 * consumer skips it without counting it twice. */
static void
skip_corrupt(struct ring_consumer *c, uint64_t tag, uint64_t len_ok,
    uint64_t tail)
{
	struct ring *r = c->r;
	uint64_t pos = c->cursor;
	uint64_t expect = tag;

	atomic_fetch_add_explicit(&r->hdr->corrupt, 1, memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&rec_at(r, pos)->tag,
	    &expect, ring_tag_make(pos, RING_SLOT_NONE, RING_ABANDONED),
	    memory_order_acq_rel, memory_order_acquire))
		return;
	if (len_ok != 0) {
		poison_span(r, pos + RING_ALIGN, pos + len_ok);
		c->cursor = pos + len_ok;
	} else {
		c->cursor = poison_until_header(r, pos + RING_ALIGN, tail);
	}
}

struct consume_args {
	struct ring_consumer *c;
	struct ring_msg *m;
	uint8_t *buf;
	size_t cap;
};

static int
consume_unguarded(struct consume_args *a)
{
	struct ring_consumer *c = a->c;
	struct ring *r = c->r;
	struct ring_header *h = r->hdr;

	for (;;) {
		uint64_t pos = c->cursor;
		/* Acquire: pairs with the producers' tail CAS only for the
		 * bound; the record itself is published by its tag. */
		uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
		struct ring_record *rec;
		struct ring_record hd;
		uint64_t tag;

		if (tail < pos || tail - pos > r->capacity)
			return -EBADMSG;
		if (pos == tail) {
			/* Nothing is stuck at an empty cursor: without this,
			 * a deadline left from an abandoned record would make
			 * every wait return at once. */
			c->stuck_since_ns = 0;
			return 0;
		}
		rec = rec_at(r, pos);
		/* Acquire: pairs with the producer's commit CAS (and the
		 * release CAS that publishes a PAD). */
		tag = atomic_load_explicit(&rec->tag, memory_order_acquire);
		if (!ring_tag_stamped(tag, pos) ||
		    ring_tag_state(tag) == RING_WRITING) {
			if (!handle_stuck(c, tag, tail))
				return 0;
			c->stuck_since_ns = 0; /* the cursor moved past it */
			atomic_store_explicit(&h->cursor, c->cursor, memory_order_relaxed);
			continue;
		}
		c->stuck_since_ns = 0;

		/* Read the header once; everything below uses the copy. */
		memcpy((uint8_t *)&hd + sizeof(hd.tag), (const uint8_t *)rec + sizeof(hd.tag),
		    sizeof(hd) - sizeof(hd.tag));
		uint64_t len = hd.len;
		bool len_sane = len >= RING_ALIGN && len % RING_ALIGN == 0 &&
		    len <= tail - pos;

		switch (ring_tag_state(tag)) {
		case RING_ABANDONED:
			c->cursor = pos + RING_ALIGN;
			break;
		case RING_PAD:
			/* A wrap pad ends at the end of the ring; an aborted
			 * reservation is no longer than a record can be. */
			if (!len_sane || hd.key_len != 0 ||
			    ring_record_crc(&hd, tag, NULL, 0) != hd.hdr_crc ||
			    (len > r->max_record && ((pos + len) & r->mask) != 0)) {
				skip_corrupt(c, tag, 0, tail);
				break;
			}
			c->cursor = pos + len;
			break;
		case RING_COMMITTED: {
			uint64_t klen = hd.key_len, blen = hd.body_len;
			if (!len_sane || len > r->max_record || klen == 0 ||
			    klen > RING_MAX_KEY || klen + blen > r->max_message ||
			    ring_record_size(klen, blen) != len ||
			    klen + blen + 1 > a->cap) {
				skip_corrupt(c, tag, 0, tail);
				break;
			}
			/* The record never crosses the end of the ring: the
			 * producer padded instead. Everything is checked on
			 * the private copy. */
			const uint8_t *src = (const uint8_t *)(rec + 1);
			memcpy(a->buf, src, klen);
			a->buf[klen] = '\0';
			memcpy(a->buf + klen + 1, src + klen, blen);
			if (ring_record_crc(&hd, tag, a->buf, klen) != hd.hdr_crc) {
				/* Header or key damaged: its length is not to be
				 * trusted either. */
				skip_corrupt(c, tag, 0, tail);
				break;
			}
			if (crc32c(0, a->buf + klen + 1, blen) != hd.body_crc) {
				skip_corrupt(c, tag, len, tail);
				break;
			}
			a->m->pos = pos;
			a->m->end = pos + len;
			a->m->seq = hd.seq;
			a->m->put_ns = hd.put_ns;
			a->m->slot = ring_tag_slot(tag);
			a->m->key_len = (uint32_t)klen;
			a->m->body_len = (uint32_t)blen;
			a->m->body_crc = hd.body_crc;
			a->m->key = (char *)a->buf;
			a->m->body = a->buf + klen + 1;
			c->cursor = pos + len;
			atomic_store_explicit(&h->cursor, c->cursor, memory_order_relaxed);
			atomic_fetch_add_explicit(&h->consumed, 1, memory_order_relaxed);
			return 1;
		}
		default:
			skip_corrupt(c, tag, 0, tail);
			break;
		}
		atomic_store_explicit(&h->cursor, c->cursor, memory_order_relaxed);
	}
}

int
ring_consume(struct ring_consumer *c, struct ring_msg *m, void *buf,
    size_t cap)
{
	struct consume_args a = { c, m, buf, cap };
	sigjmp_buf jb;

	if (sigsetjmp(jb, 0) != 0) {
		sigbus_recovered();
		return -EFAULT;
	}
	sigbus_jmp = &jb;
	int rc = consume_unguarded(&a);
	sigbus_jmp = NULL;
	return rc;
}

static void
consumer_sleep(struct ring_consumer *c, uint32_t seq, uint64_t deadline_ns,
    bool (*other)(void *), void *arg)
{
	struct ring *r = c->r;
	struct ring_header *h = r->hdr;

	/* Dekker with ring_wake_consumer(): announce the sleep (seq_cst), then
	 * re-read the cursor's tag (seq_cst). */
	atomic_store_explicit(&h->consumer_sleeping, 1, memory_order_seq_cst);
	uint64_t tag = atomic_load_explicit(&rec_at(r, c->cursor)->tag,
	    memory_order_seq_cst);
	bool ready = ring_tag_stamped(tag, c->cursor) &&
	    ring_tag_state(tag) != RING_WRITING;
	if (!ready && other != NULL)
		ready = other(arg);
	if (!ready) {
		atomic_fetch_add_explicit(&h->consumer_wakeups, 1, memory_order_relaxed);
		(void)futex_wait(&h->data_seq, seq, deadline_ns);
	}
	atomic_store_explicit(&h->consumer_sleeping, 0, memory_order_relaxed);
}

static void
consumer_sleep_guarded(struct ring_consumer *c, uint32_t seq,
    uint64_t deadline_ns, bool (*other)(void *), void *arg)
{
	sigjmp_buf jb;

	if (sigsetjmp(jb, 0) != 0) {
		sigbus_recovered();
		return;
	}
	sigbus_jmp = &jb;
	consumer_sleep(c, seq, deadline_ns, other, arg);
	sigbus_jmp = NULL;
}

void
ring_consumer_wait_or(struct ring_consumer *c, uint64_t deadline_ns,
    bool (*other)(void *), void *arg)
{
	uint32_t seq = atomic_load_explicit(&c->r->hdr->data_seq,
	    memory_order_acquire);
	uint64_t now = mono_ns();

	if (deadline_ns == 0 || deadline_ns > now + FUTEX_MAX_WAIT_NS)
		deadline_ns = now + FUTEX_MAX_WAIT_NS;
	if (c->stuck_since_ns != 0 && c->next_check_ns < deadline_ns)
		deadline_ns = c->next_check_ns;
	consumer_sleep_guarded(c, seq, deadline_ns, other, arg);
}

void
ring_consumer_wait(struct ring_consumer *c, uint64_t deadline_ns)
{
	ring_consumer_wait_or(c, deadline_ns, NULL, NULL);
}

void
ring_release(struct ring *r, uint64_t new_head)
{
	struct ring_header *h = r->hdr;
	uint64_t cur = atomic_load_explicit(&h->head, memory_order_relaxed);
	uint32_t w;

	if (new_head <= cur)
		return;
	/* seq_cst: a release for producers' acquire load of head (the bytes
	 * below it are no longer read), and half of the Dekker pair with
	 * wait_space(). */
	atomic_store_explicit(&h->head, new_head, memory_order_seq_cst);
	w = atomic_load_explicit(&h->space_word, memory_order_seq_cst);
	if (w & 1u) {
		/* Clearing the bit heals it: a waiter that died with it set
		 * costs one wake-up, not one per release. */
		atomic_store_explicit(&h->space_word, (w + 2u) & ~1u,
		    memory_order_seq_cst);
		atomic_fetch_add_explicit(&h->space_wakes, 1, memory_order_relaxed);
		(void)futex_wake(&h->space_word, INT_MAX);
	}
}

void
ring_drop_pages(struct ring *r, uint64_t from, uint64_t to)
{
	const uint64_t page = 4096;
	uint64_t start = (from + page - 1) & ~(page - 1);
	uint64_t end = to & ~(page - 1);

	if (end <= start)
		return;
	if (end - start >= r->capacity) {
		(void)madvise(r->data, r->capacity, MADV_DONTNEED);
		return;
	}
	/* At most two pieces: up to the end of the data region, then from
	 * its start. The capacity is a power of two >= 64 KiB, so page
	 * boundaries in positions are page boundaries in the mapping. */
	uint64_t off = start & r->mask, len = end - start;
	uint64_t first = len < r->capacity - off ? len : r->capacity - off;
	(void)madvise(r->data + off, first, MADV_DONTNEED);
	if (len > first)
		(void)madvise(r->data, len - first, MADV_DONTNEED);
}

/* ----------------------------------------------------------- in flight */

void
inflight_init(struct inflight *t, struct inflight_entry *mem, uint32_t cap)
{
	t->e = mem;
	t->cap = cap;
	t->first = 0;
	t->count = 0;
}

bool
inflight_full(const struct inflight *t)
{
	return t->count == t->cap;
}

int
inflight_push(struct inflight *t, uint64_t pos, uint64_t end)
{
	uint32_t i;

	if (t->count == t->cap)
		return -ENOSPC;
	i = (t->first + t->count) % t->cap;
	t->e[i].pos = pos;
	t->e[i].end = end;
	t->e[i].state = INFLIGHT_CLAIMED;
	t->count++;
	return (int)i;
}

void
inflight_done(struct inflight *t, uint32_t idx)
{
	if (idx < t->cap)
		t->e[idx].state = INFLIGHT_DONE;
}

uint64_t
inflight_release(struct inflight *t, uint64_t cursor)
{
	while (t->count > 0 && t->e[t->first].state == INFLIGHT_DONE) {
		t->e[t->first].state = INFLIGHT_FREE;
		t->first = (t->first + 1) % t->cap;
		t->count--;
	}
	return t->count > 0 ? t->e[t->first].pos : cursor;
}
