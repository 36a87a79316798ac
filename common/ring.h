/* ring.h -- open, produce into and consume from an s3ring shared-memory ring.
 *
 * This is the one implementation of the protocol in ring_layout.h. The
 * producer shim and the uploader both build on it; neither touches the
 * layout directly except to read counters.
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
	size_t map_len;
	int fd;
	bool readonly;
	bool created;         /* this ring_open() created the object */
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
 * against a concurrent creator: the object is made with O_EXCL, fully
 * allocated with posix_fallocate, and its magic is stored last; an
 * attacher waits up to a second for the magic to appear. Returns 0, or
 * -ENOENT (no such ring), -EACCES, -EPROTO (another layout version),
 * -EBADMSG (corrupt or incomplete header), -EINVAL (bad name or geometry),
 * -ENOSPC (/dev/shm too small for the ring), or another -errno. On failure
 * *r is left closed. */
__attribute__((warn_unused_result)) int
ring_open(struct ring *r, const char *name, unsigned flags,
    const struct ring_config *cfg);

/* Unmaps and closes. Safe to call again, and after a failed ring_open(). */
void ring_close(struct ring *r);

/* Removes the shm object of ring name. Returns 0 or -errno. */
int ring_unlink(const char *name);

/* The header CRC of a record: over the tag with its state bits cleared, the
 * rest of the first RING_HDR_CRC_SPAN bytes of hdr, and the key. The key is
 * covered, so a damaged key is never uploaded under another name. */
uint32_t ring_record_crc(const struct ring_record *hdr, uint64_t tag,
    const void *key, size_t key_len);

/* Checks a header read from shared memory against what this build
 * understands and against the mapped size (0: not checked). Returns 0,
 * -EBADMSG or -EPROTO. */
int ring_check_header(const struct ring_header *h, size_t map_len);

/* ------------------------------------------------------------ producers */

/* Claims a producer slot for pid, whose start time is start_time. Prefers a
 * never-used slot, then one whose owner is dead. Returns the slot index or
 * -EUSERS when every slot belongs to a live process. */
__attribute__((warn_unused_result)) int
ring_slot_claim(struct ring *r, pid_t pid, uint64_t start_time);
void ring_slot_release(struct ring *r, unsigned slot);

/* A reservation: room for one record, between ring_reserve() and
 * ring_commit() or ring_abort(). */
struct ring_resv {
	uint64_t pos;
	uint8_t *body;
	uint32_t body_len;
	uint32_t len;
	unsigned slot;
};

/* Claims room for a record of key (key_len bytes, already validated) and a
 * body of body_len bytes, and writes the header and key. timeout_ms: 0 fails
 * at once when full, > 0 waits that long, < 0 forever. Returns 0, -EAGAIN
 * (full, no wait), -ETIMEDOUT (full until the deadline, or the consumer gave
 * the record up before we claimed it), -EMSGSIZE, -EBADMSG (the ring's
 * control words are corrupt). No allocation, no system call unless waiting. */
__attribute__((warn_unused_result)) int
ring_reserve(struct ring *r, unsigned slot, const char *key, size_t key_len,
    size_t body_len, int timeout_ms, struct ring_resv *rv);

/* Publishes a reserved record whose body has been written, with body_crc
 * the CRC32C of the body. Returns 0, or -ETIMEDOUT if the consumer gave the
 * record up meanwhile (hard timeout). Wakes the consumer if it sleeps. */
__attribute__((warn_unused_result)) int
ring_commit(struct ring *r, struct ring_resv *rv, uint32_t body_crc);

/* Turns a reservation into padding the consumer skips. */
void ring_abort(struct ring *r, struct ring_resv *rv);

/* ring_reserve + copy + ring_commit. */
__attribute__((warn_unused_result)) int
ring_put(struct ring *r, unsigned slot, const char *key, size_t key_len,
    const void *body, size_t len, int timeout_ms);

/* ------------------------------------------------------------- consumer */

struct ring_consumer {
	struct ring *r;
	uint64_t cursor;        /* next position to read */
	uint64_t stuck_pos;     /* record the cursor has been waiting on */
	uint64_t stuck_since_ns;
	uint64_t next_check_ns; /* when to look at a stuck record again */
	uint64_t owner_wait_ns; /* WRITING this long: check the owner (10 ms) */
	uint64_t stale_wait_ns; /* no header this long: rescan (1 s) */
	uint64_t hard_wait_ns;  /* WRITING this long: give up (30 s) */
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
	uint32_t body_crc;      /* verified against the copy */
	char *key;
	uint8_t *body;
};

/* Starts consuming at position from (0: the ring's head). */
void ring_consumer_init(struct ring_consumer *c, struct ring *r, uint64_t from);

/* Reads the next committed record at the cursor into buf (cap bytes, at
 * least ring->max_message + 1) and advances the cursor past it. Padding,
 * abandoned records and corrupt records are skipped and counted on the way;
 * records of dead producers are abandoned. Returns 1 with *m filled in, 0 if
 * nothing is ready yet, -EFAULT if the mapping faulted (the object was
 * truncated), -EBADMSG if the control words are out of range. */
__attribute__((warn_unused_result)) int
ring_consume(struct ring_consumer *c, struct ring_msg *m, void *buf,
    size_t cap);

/* Sleeps until a producer commits, or until deadline_ns (CLOCK_MONOTONIC),
 * or until a stuck record is due for another look, or at most 50 ms. */
void ring_consumer_wait(struct ring_consumer *c, uint64_t deadline_ns);

/* ring_consumer_wait(), except that it also does not sleep while
 * other(arg) is true. Whatever makes other() true must call
 * ring_wake_consumer() afterwards (seq_cst), so no wake-up is lost. */
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

/* Installs the process-wide SIGBUS handler that ring_consume() relies on to
 * survive a truncated object. Returns 0 or -errno. */
int ring_sigbus_guard_install(void);

/* Registers r's mapping (one per process) with the SIGBUS handler: a fault
 * there outside ring_consume(), such as a counter update after another
 * process truncated the object to nothing, replaces the mapping with
 * private zero pages instead of killing the process, and
 * ring_mapping_lost() turns true. The caller must then stop trusting r. */
void ring_sigbus_protect(struct ring *r);
bool ring_mapping_lost(void);

/* ----------------------------------------------------------- in flight */

/* Out-of-order completion, in-order release. The consumer pushes each
 * record it hands out; workers mark them done in any order; the head is the
 * position of the oldest unfinished record (or the cursor if none). The
 * entries live in caller-provided memory, so the uploader can keep them in
 * its journal. */
enum { INFLIGHT_FREE = 0, INFLIGHT_CLAIMED = 1, INFLIGHT_DONE = 2 };

struct inflight_entry {
	uint64_t pos, end;
	uint32_t state;
	uint32_t reserved;
};

struct inflight {
	struct inflight_entry *e;
	uint32_t cap;
	uint32_t first;   /* index of the oldest entry */
	uint32_t count;
};

void inflight_init(struct inflight *t, struct inflight_entry *mem,
    uint32_t cap);
bool inflight_full(const struct inflight *t);
/* Appends [pos, end). Returns its index, or -ENOSPC when full. */
int inflight_push(struct inflight *t, uint64_t pos, uint64_t end);
void inflight_done(struct inflight *t, uint32_t idx);
/* Drops finished entries from the front; returns the new head: the oldest
 * unfinished entry's pos, or cursor when none is left. */
uint64_t inflight_release(struct inflight *t, uint64_t cursor);

#endif
