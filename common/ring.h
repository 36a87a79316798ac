/* ring.h -- open, produce into and consume from an s3ring shared-memory ring.
 *
 * This is the one implementation of the protocol in ring_layout.h, in three
 * files: ring_open.c (naming, creation, attaching, retirement),
 * ring_produce.c (slots and puts) and ring_consume.c (the consumer and the
 * one record check that shmstat uses too). The producer shim, the uploader
 * and shmstat all build on it; none of them walks records by itself.
 *
 * Ownership: a struct ring is a process-local view of one mapping. It is
 * filled in by ring_open() and released by ring_close(); it may be shared by
 * threads for producing. A struct ring_consumer belongs to one thread.
 */
#ifndef S3RING_RING_H
#define S3RING_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crc32c.h"
#include "ring_layout.h"

#define RING_NAME_MAX 200 /* bytes of NAME in /dev/shm/s3ring.NAME */
#define RING_SHM_PREFIX "/s3ring."

#define RING_OPEN_CREATE 0x1u /* create if absent (O_EXCL, then attach) */
#define RING_OPEN_RDONLY 0x2u /* map read-only (shmstat) */

struct ring {
	struct ring_header *hdr;
	uint8_t *data;
	uint64_t capacity;
	uint64_t mask;
	uint32_t max_message;
	uint64_t max_record;  /* ring_record_size(0, max_message) */
	uint64_t ring_id;
	size_t map_len;
	int fd;
	int lock_fd;          /* our own description for F_OFD_GETLK, or -1 */
	bool readonly;
	bool created;         /* this ring_open() created the object */
	bool guarded;         /* registered with the SIGBUS guard */
	_Atomic int lost;     /* the object was truncated under us (sigbus.h) */
	/* The ring's tail as ring_scan() last read it: it only grows, so a
	 * span below it lies below tail. */
	_Atomic uint64_t scan_tail_seen;
	/* The generation of each slot this process claimed through this
	 * mapping, stamped into its records' tags (process-local: a scribbled
	 * header cannot make us stamp another owner's generation). */
	uint8_t slot_gen[RING_MAX_PRODUCERS];
	uint32_t slot_gen32[RING_MAX_PRODUCERS];
	bool slot_owned[RING_MAX_PRODUCERS];
	char name[RING_NAME_MAX + 1];
};

struct ring_config {
	uint64_t capacity;    /* power of two; 0 means the default */
	uint32_t max_message; /* 0 means min(default, capacity / 8) */
	mode_t mode;          /* 0 means 0600 */
	gid_t gid;            /* (gid_t)-1 keeps the creator's group */
};

/* The ring name to use when the caller gives none: $S3RING_RING, or
 * "default". */
const char *ring_default_name(void);

/* True if name is 1..RING_NAME_MAX bytes of [A-Za-z0-9._-], not starting
 * with a dot. */
bool ring_name_valid(const char *name);

/* True if key (len bytes) is a usable S3 key: 1..RING_MAX_KEY bytes of valid
 * UTF-8 (no overlong forms, no surrogates) without control characters. */
bool ring_key_valid(const char *key, size_t len);

/* Opens the ring called name (NULL: ring_default_name()). With
 * RING_OPEN_CREATE it is created with cfg's geometry if absent, safely
 * against a concurrent creator: the object is built unnamed (O_TMPFILE in
 * /dev/shm, or under a temporary name where that is not supported), fully
 * allocated with posix_fallocate and initialised, and only then linked in
 * under its name, so a creator killed half-way leaves nothing behind. The
 * mapping is registered with the SIGBUS guard (sigbus.h), which is
 * installed if it is not yet. Returns 0, or -ENOENT (no such ring),
 * -EACCES, -EPROTO (another layout version), -EBADMSG (corrupt header),
 * -EINVAL (bad name or geometry), -ENOSPC (/dev/shm too small for the
 * ring), or another -errno. On failure *r is left closed. */
__attribute__((warn_unused_result)) int
ring_open(struct ring *r, const char *name, unsigned flags,
    const struct ring_config *cfg);

/* Unmaps and closes. Safe to call again, and after a failed ring_open(). */
void ring_close(struct ring *r);

/* Removes the shm object of ring name. Returns 0 or -errno. */
int ring_unlink(const char *name);

/* Retirement. A ring whose object was removed, or replaced by another under
 * the same name, is marked retired by the uploader: from then on every put
 * into it fails with -ESTALE (a put checks the word after its tail CAS, so
 * none returns 0 for a record the uploader did not see). */
enum ring_identity { RING_SAME = 0, RING_REMOVED = 1, RING_REPLACED = 2 };
/* Compares the object r maps with what the name points to now (one fstat
 * and one stat). Returns a ring_identity, or -errno. */
int ring_identity(const struct ring *r);
void ring_retire(struct ring *r);
bool ring_retired(const struct ring *r);

/* The header CRC of a record: over the tag with its state bits cleared, the
 * rest of the first RING_HDR_CRC_SPAN bytes of hdr, and the key. The key is
 * covered, so a damaged key is never uploaded under another name. The tag
 * is taken from the caller, never read from hdr: in the ring it is an
 * atomic that others CAS. Inline: every put and every record read needs
 * it. */
static inline uint32_t
ring_record_crc(const struct ring_record *hdr, uint64_t tag, const void *key,
    size_t key_len)
{
	uint64_t t = ring_tag_with_state(tag, 0);
	uint32_t crc = crc32c(0, &t, sizeof(t));

	crc = crc32c(crc, (const uint8_t *)hdr + sizeof(t),
	    RING_HDR_CRC_SPAN - sizeof(t));
	return crc32c(crc, key, key_len);
}

/* Checks a header read from shared memory against what this build
 * understands and against the mapped size (0: not checked). Returns 0,
 * -EBADMSG or -EPROTO. */
int ring_check_header(const struct ring_header *h, size_t map_len);

/* ------------------------------------------------------------ producers */

/* Claims a producer slot: takes the OFD lock on the slot's bytes of the
 * object (held until ring_slot_release() or the process's death), bumps the
 * slot's generation and records pid and start_time for display. Prefers a
 * never-used slot, so a dead owner's slot keeps its figures for a while.
 * Returns the slot index, -EUSERS when every slot is locked by a live
 * handle, or -errno if locking fails. */
__attribute__((warn_unused_result)) int
ring_slot_claim(struct ring *r, pid_t pid, uint64_t start_time);
/* Drops the lock and frees the slot. Only the process that claimed it may
 * call this (a forked child must not: the lock belongs to the open file
 * description it shares with its parent). */
void ring_slot_release(struct ring *r, unsigned slot);

/* True if the record owner (slot, gen of its tag) may still write: the
 * slot's generation is still gen and some open file description holds the
 * slot's lock. The test is made through a description of r's object of our
 * own (a lock is invisible to the description that holds it, and a
 * producer in this very process may share r's), opened on first use and
 * closed by ring_close(). */
bool ring_slot_alive(struct ring *r, unsigned slot, unsigned gen);
/* The same with the whole 32-bit generation (from a sealed header). */
bool ring_slot_alive_gen(struct ring *r, unsigned slot, uint32_t gen);

/* 1 if some open file description other than fd's holds slot's lock, 0 if
 * none does, or -errno. For readers without a struct ring (shmstat). */
int ring_slot_locked(int fd, unsigned slot);

/* The uploader holds a lock on its state line while attached
 * (ring_uploader_lock(), 0 or -errno: -EAGAIN if another holds it), and
 * ring_uploader_locked() tells whether someone does (1, 0 or -errno), in
 * any PID namespace. */
int ring_uploader_lock(struct ring *r);
int ring_uploader_locked(int fd);

/* A reservation: room for one record, between ring_reserve() and
 * ring_commit() or ring_abort(). */
/* It keeps its own sizes: nothing about the reservation is read back
 * from shared memory, where another process may have changed it. */
struct ring_resv {
	uint64_t pos;
	uint8_t *body;
	uint32_t body_len;
	uint32_t len;
	uint16_t key_len;
	uint8_t slot;
	uint8_t gen;
};

/* Claims room for a record of key (key_len bytes, already validated) and a
 * body of body_len bytes, and writes the header and key. timeout_ms: 0 fails
 * at once when full, > 0 waits that long, < 0 forever. Returns 0, -EAGAIN
 * (full, no wait), -ETIMEDOUT (full until the deadline, or the consumer gave
 * the record up before we claimed it), -EMSGSIZE (key_len + body_len over
 * max_message, however large body_len is), -ESTALE (the ring is retired),
 * -EBADMSG (the ring's control words are corrupt, or the object was
 * truncated). No allocation, no system call unless waiting. */
__attribute__((warn_unused_result)) int
ring_reserve(struct ring *r, unsigned slot, const char *key, size_t key_len,
    size_t body_len, int timeout_ms, struct ring_resv *rv);

/* Publishes a reserved record whose body has been written, with body_crc
 * the CRC32C of the body. Returns 0, or -ESTALE if the record was given up
 * because the ring was retired meanwhile, or -EBADMSG if the object was
 * truncated (the record is lost with it). Wakes the consumer if it sleeps. */
__attribute__((warn_unused_result)) int
ring_commit(struct ring *r, struct ring_resv *rv, uint32_t body_crc);

/* True if rv is a reservation this ring could have handed out: a caller
 * that scribbled on its copy (the public s3ring_reservation) is refused
 * before anything reads body_len bytes. */
bool ring_resv_valid(const struct ring *r, const struct ring_resv *rv);

/* Turns a reservation into padding the consumer skips. */
void ring_abort(struct ring *r, struct ring_resv *rv);

/* ring_reserve + copy + ring_commit. */
__attribute__((warn_unused_result)) int
ring_put(struct ring *r, unsigned slot, const char *key, size_t key_len,
    const void *body, size_t len, int timeout_ms);

/* ------------------------------------------------------------- consumer */

/* A record the cursor read past while its owner, alive, was still writing
 * it: head must stay at or below it until it is committed or abandoned. */
struct ring_hole {
	uint64_t pos, end;
	uint64_t tag;           /* the WRITING tag it was left with */
	uint64_t next_check_ns;
};

#define RING_MAX_HOLES 64

struct ring_consumer {
	struct ring *r;
	uint64_t cursor;        /* next position to read */
	uint64_t tail_seen;     /* the ring's tail as last read (ring_consume()) */
	uint64_t stuck_pos;     /* record the cursor has been waiting on */
	uint64_t stuck_since_ns;
	uint64_t next_check_ns; /* when to look at a stuck record again */
	uint64_t owner_wait_ns; /* WRITING this long: check the owner (10 ms) */
	uint64_t stale_wait_ns; /* no header this long: rescan (1 s) */
	/* WRITING this long with a live owner: read past it (200 ms). Records
	 * are delivered in commit order unless a producer stalls this long in
	 * the middle of a put. */
	uint64_t hole_wait_ns;
	uint64_t heartbeat_ns;  /* last store of upstats.heartbeat_mono_ns */
	uint64_t calls;         /* ring_consume*() calls, for the heartbeat */
	unsigned nholes;
	struct ring_hole holes[RING_MAX_HOLES];
	/* ring_consume_view() leaves the body's CRC of a record to the caller
	 * (m->body_checked false) if leave_body(leave_body_arg, key, key_len)
	 * is true: for a caller that reads the body again later and checks
	 * that copy (batch mode), the check at the cursor is a second pass
	 * over the same bytes. NULL (ring_consumer_init()): always checked. */
	bool (*leave_body)(void *arg, const char *key, size_t key_len);
	void *leave_body_arg;
};

/* A record copied out of the ring. key and body point into the caller's
 * buffer; key is NUL-terminated there. */
struct ring_msg {
	uint64_t pos, end;      /* the record's span in the ring */
	uint64_t seq;
	uint64_t put_ns;        /* CLOCK_MONOTONIC of the put */
	unsigned slot;
	uint32_t key_len;
	uint32_t body_len;
	uint32_t body_crc;      /* the producer's CRC of the body */
	/* body_crc was verified against body. False where the check is left
	 * to the caller (ring_consumer.leave_body, ring_scan()), who verifies
	 * its own copy, or sends body_crc with the bytes for S3 to verify. */
	bool body_checked;
	uint64_t tag;           /* the record's tag as read (ring_give_up()) */
	char *key;
	uint8_t *body;
};

/* Starts consuming at position from (0: the ring's head). A position that
 * is not 64-byte aligned or not within [head, tail] is replaced by head. */
void ring_consumer_init(struct ring_consumer *c, struct ring *r, uint64_t from);

/* The lowest position the consumer still needs: the oldest hole, or the
 * cursor. Head may be released up to it, never past it. */
uint64_t ring_consumer_floor(const struct ring_consumer *c);

/* Gives up every record still WRITING at or after the cursor's floor,
 * whatever its owner's state (their commits then fail with -ESTALE). Only
 * for a retired ring. The cursor stays: records already committed (their
 * puts returned 0), holes committed meanwhile included, are still for
 * ring_consume() to deliver. Returns how many were given up. */
unsigned ring_consumer_abandon_rest(struct ring_consumer *c);

/* The verdict of ring_record_check() on one record header. */
enum ring_verdict {
	RING_V_NOT_READY,   /* unstamped, or WRITING: not (yet) a record */
	RING_V_SKIP,        /* ABANDONED block, or a PAD: skip len bytes */
	RING_V_RECORD,      /* COMMITTED with consistent lengths */
	RING_V_CORRUPT,     /* stamped but inconsistent: len is not to be trusted */
};

/* The geometry a record check needs, copied from a checked header. */
struct ring_geometry {
	uint64_t capacity;
	uint32_t max_message;
	uint64_t max_record;
};

/* The one record check, used by the consumer and by shmstat. hd is a
 * private copy of the 64-byte header at pos, tag the tag read (acquire)
 * before the copy, tail the bound read from the ring. Checks everything the
 * header claims against the geometry: alignment, the record's end within
 * [pos, tail] and within the data region (a record never crosses the end:
 * the producer pads instead), sums that cannot wrap. The CRCs are not
 * checked here (they need the key and body). On RING_V_SKIP and
 * RING_V_RECORD, *len is the record's length. */
enum ring_verdict ring_record_check(const struct ring_geometry *g,
    uint64_t pos, uint64_t tail, uint64_t tag, const struct ring_record *hd,
    uint64_t *len);

/* Reads the next committed record at the cursor into buf (cap bytes, at
 * least ring->max_message + 1) and advances the cursor past it. Padding,
 * abandoned records and corrupt records are skipped and counted on the way;
 * records of dead producers are abandoned. Returns 1 with *m filled in, 0 if
 * nothing is ready yet, -EFAULT if the mapping faulted (the object was
 * truncated), -EBADMSG if the control words are out of range. */
__attribute__((warn_unused_result)) int
ring_consume(struct ring_consumer *c, struct ring_msg *m, void *buf,
    size_t cap);

/* ring_consume(), except that only the key is copied (into keybuf, keycap
 * bytes, at least RING_MAX_KEY + 1): m->body points into the ring, where
 * its CRC was checked (unless c->leave_body left it to the caller). It stays valid until head is released past m->end.
 * The bytes may still be changed by a writer after the check; a caller
 * that sends them must send m->body_crc with them for the receiver to
 * verify (x-amz-checksum-crc32c). */
__attribute__((warn_unused_result)) int
ring_consume_view(struct ring_consumer *c, struct ring_msg *m, char *keybuf,
    size_t keycap);

/* Reads again, changing nothing, the records in [*pos, end) that a
 * consumer has already read past (a batch is sent from the ring this way,
 * long after its records were consumed). Skips padding, abandoned blocks
 * and whatever does not check out; copies the next record's key into
 * keybuf (keycap bytes, at least RING_MAX_KEY + 1) and checks the header
 * and the key there. The body is not copied and its CRC not checked: it
 * stays in the ring (m->body, m->body_checked false), and a caller copies
 * it and checks its copy against m->body_crc before it uses it, so what
 * it uses is what was checked (and ring_give_up()s it if it does not
 * check out). Returns 1 with *m filled in and *pos past it; 0 once *pos
 * reached end; -EAGAIN if the record at *pos is still being written (*pos
 * unchanged: a hole the consumer read past, or a scribbled tag; skip it
 * by RING_ALIGN if the consumer has no hole there); -EILSEQ for a record
 * whose header or key no longer checks out (changed since it was read;
 * *pos is past it, call again); -EBADMSG if tail is out of range; -EFAULT
 * if the mapping faulted. Counts nothing. */
__attribute__((warn_unused_result)) int
ring_scan(struct ring *r, uint64_t *pos, uint64_t end, struct ring_msg *m,
    char *keybuf, size_t keycap);

/* Gives up the record m (read by ring_consume_view() or ring_scan()) whose
 * body did not check out: its blocks become ABANDONED, so that a later
 * scan or a restarted consumer skips it instead of counting it again.
 * Counts nothing (the caller counts it corrupt). Does nothing if its tag
 * changed meanwhile. Returns 0 or -EFAULT if the mapping faulted. */
int ring_give_up(struct ring *r, const struct ring_msg *m);

/* Sleeps until a producer commits, or until deadline_ns (CLOCK_MONOTONIC),
 * or until a stuck record is due for another look, or at most 50 ms. It
 * naps RING_CONSUMER_NAP_NS first (plus the thread's timer slack, 50 us by
 * default), unknown to producers, so that a record committed in that time
 * is read that much later but costs its producer no FUTEX_WAKE. */
#define RING_CONSUMER_NAP_NS (50ull * 1000)
void ring_consumer_wait(struct ring_consumer *c, uint64_t deadline_ns);

/* ring_consumer_wait(), except that it also does not sleep while
 * other(arg) is true. Whatever makes other() true must call
 * ring_wake_consumer() afterwards (seq_cst), so no wake-up is lost; an
 * event during the nap is seen when the nap ends. other() may be called
 * more than once per call, so it must only look. */
void ring_consumer_wait_or(struct ring_consumer *c, uint64_t deadline_ns,
    bool (*other)(void *), void *arg);

/* Wakes the consumer if it sleeps in ring_consumer_wait*(): one FUTEX_WAKE,
 * or nothing when it is awake. Producers call it after each commit. */
void ring_wake_consumer(struct ring *r);

/* Publishes new_head (the end of the contiguous prefix of finished records)
 * and wakes producers waiting for space. */
void ring_release(struct ring *r, uint64_t new_head);

/* Drops this process's mapping of the data pages wholly inside positions
 * [from, to), which the caller has released (below head): the bytes stay in
 * the shm object for everyone else, and the next access maps them again.
 * The consumer calls it as head advances, so that its RSS (and the OOM
 * killer's view of it) holds its own memory and the few pages in flight,
 * not the whole ring. */
void ring_drop_pages(struct ring *r, uint64_t from, uint64_t to);

/* True once the object was truncated under r (see sigbus.h): the caller
 * must stop trusting r. Inline: every put asks. Acquire: pairs with the
 * handler's store after it replaced the mapping. */
static inline bool
ring_mapping_lost(const struct ring *r)
{
	return atomic_load_explicit(&((struct ring *)r)->lost, memory_order_acquire) != 0;
}

#endif
