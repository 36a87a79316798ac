/* ring_layout.h -- the shared-memory layout of an s3ring ring, in one place.
 *
 * Everything a producer, the uploader and shmstat agree on lives here. The
 * object /dev/shm/s3ring.NAME is a struct ring_header followed by `capacity`
 * bytes of data. All integers are native-endian fixed-width types: a ring is
 * shared between processes of one host, never across hosts.
 *
 * Any change to a field's offset or meaning bumps RING_LAYOUT_VERSION. The
 * _Static_asserts below pin every offset, so an accidental change fails the
 * build instead of silently corrupting rings created by another version.
 *
 * Positions. head and tail are 64-bit byte positions that only grow. They
 * start at RING_POS_BASE (never 0), so a zeroed page never looks like a valid
 * record. The byte offset of position p in the data region is
 * p & (capacity - 1).
 *
 * Records. A record starts on a 64-byte boundary with a struct ring_record,
 * followed by the key and then the body, padded to 64 bytes. Its tag holds
 * the record's own position (its "stamp"), the owning producer slot and the
 * state. Because the stamp is part of the tag, bytes left over from an
 * earlier lap can never pass for a live record, and consumed space is never
 * zeroed.
 */
#ifndef S3RING_RING_LAYOUT_H
#define S3RING_RING_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RING_MAGIC          UINT64_C(0x31474e4952335333) /* "S3RING1" + '1' */
#define RING_LAYOUT_VERSION 2u
#define RING_LINE           128u   /* hot words each get a line of their own */
#define RING_ALIGN          64u    /* record alignment */
#define RING_POS_BASE       (UINT64_C(1) << 40)

#define RING_DEFAULT_CAPACITY    (UINT64_C(64) << 20)
#define RING_MIN_CAPACITY        (UINT64_C(64) << 10)
#define RING_MAX_CAPACITY        (UINT64_C(1) << 30)
#define RING_DEFAULT_MAX_MESSAGE (UINT32_C(1) << 20)
#define RING_MAX_KEY             1024u
#define RING_MAX_PRODUCERS       120u  /* header is then exactly 20 KiB */
#define RING_SLOT_NONE           0x7fu
#define RING_ERRMSG_LEN          120u

/* Record states, the low 4 bits of the tag. */
enum ring_state {
	RING_WRITING   = 1, /* claimed by a producer, being filled in */
	RING_COMMITTED = 2, /* complete: header and body CRCs are valid */
	RING_PAD       = 3, /* filler up to the end of the ring; len is valid */
	RING_ABANDONED = 4, /* given up by the consumer; skipped by rescanning */
};

/* tag = stamp << 18 | gen << 10 | slot << 3 | state, where stamp =
 * position / 64 modulo 2^46: a stamp repeats only after 2^52 bytes (4 PiB)
 * have passed. gen is the low 8 bits of the owning slot's generation when
 * the record was claimed, so a record left WRITING by a dead owner is never
 * mistaken for a record of the slot's next owner. */
#define RING_TAG_STATE_BITS 3
#define RING_TAG_SLOT_BITS  7
#define RING_TAG_GEN_BITS   8
#define RING_TAG_SHIFT      (RING_TAG_STATE_BITS + RING_TAG_SLOT_BITS + RING_TAG_GEN_BITS)
#define RING_TAG_GEN_MASK   ((1u << RING_TAG_GEN_BITS) - 1)
_Static_assert(RING_MAX_PRODUCERS < RING_SLOT_NONE, "slot fits the tag");

static inline uint64_t
ring_tag_make_gen(uint64_t pos, unsigned slot, unsigned gen, enum ring_state st)
{
	return ((pos / RING_ALIGN) << RING_TAG_SHIFT) |
	    ((uint64_t)(gen & RING_TAG_GEN_MASK) <<
	    (RING_TAG_STATE_BITS + RING_TAG_SLOT_BITS)) |
	    ((uint64_t)(slot & RING_SLOT_NONE) << RING_TAG_STATE_BITS) | (uint64_t)st;
}

static inline uint64_t
ring_tag_make(uint64_t pos, unsigned slot, enum ring_state st)
{
	return ring_tag_make_gen(pos, slot, 0, st);
}

/* The same tag in another state: owner and stamp are kept. */
static inline uint64_t
ring_tag_with_state(uint64_t tag, enum ring_state st)
{
	return (tag & ~(uint64_t)((1u << RING_TAG_STATE_BITS) - 1)) | (uint64_t)st;
}

static inline int
ring_tag_stamped(uint64_t tag, uint64_t pos)
{
	return (tag >> RING_TAG_SHIFT) ==
	    ((pos / RING_ALIGN) & ((UINT64_C(1) << (64 - RING_TAG_SHIFT)) - 1));
}

static inline unsigned
ring_tag_slot(uint64_t tag)
{
	return (unsigned)(tag >> RING_TAG_STATE_BITS) & RING_SLOT_NONE;
}

static inline unsigned
ring_tag_gen(uint64_t tag)
{
	return (unsigned)(tag >> (RING_TAG_STATE_BITS + RING_TAG_SLOT_BITS)) &
	    RING_TAG_GEN_MASK;
}

static inline enum ring_state
ring_tag_state(uint64_t tag)
{
	return (enum ring_state)(tag & ((1u << RING_TAG_STATE_BITS) - 1));
}

/* The record header: one 64-byte line. hdr_crc is a CRC32C over the first
 * 40 bytes with the tag's state bits cleared (so it stays valid when the
 * state changes from WRITING to COMMITTED), followed by the key.
 *
 * len_seal lets the consumer read past a record that is still WRITING (its
 * owner alive but slow or stopped): the owner stores len and owner_gen (the
 * whole 32-bit generation of its slot claim), then len_seal =
 * ring_len_seal(pos, len, owner_gen) with release, so a seal that matches
 * proves both were written in this lap, for this position. owner_gen
 * settles what the tag's 8 bits of generation cannot after 256 claims of
 * one slot: whether the slot's current owner is the record's. */
struct ring_record {
	_Atomic uint64_t tag;
	uint32_t len;        /* whole record, header included, multiple of 64 */
	uint32_t body_len;
	uint16_t key_len;
	uint16_t flags;      /* reserved, 0 */
	uint32_t body_crc;   /* CRC32C of the body alone */
	uint64_t put_ns;     /* CLOCK_MONOTONIC when the put began */
	uint64_t seq;        /* per-slot sequence number, from 1 */
	_Atomic uint32_t len_seal;
	uint32_t hdr_crc;
	uint32_t owner_gen;  /* sealed by len_seal; not covered by hdr_crc */
	uint8_t pad_[12];
};
_Static_assert(sizeof(struct ring_record) == RING_ALIGN, "record header");
_Static_assert(offsetof(struct ring_record, len) == 8, "len");
_Static_assert(offsetof(struct ring_record, body_len) == 12, "body_len");
_Static_assert(offsetof(struct ring_record, key_len) == 16, "key_len");
_Static_assert(offsetof(struct ring_record, body_crc) == 20, "body_crc");
_Static_assert(offsetof(struct ring_record, put_ns) == 24, "put_ns");
_Static_assert(offsetof(struct ring_record, seq) == 32, "seq");
_Static_assert(offsetof(struct ring_record, len_seal) == 40, "len_seal");
_Static_assert(offsetof(struct ring_record, hdr_crc) == 44, "hdr_crc");
_Static_assert(offsetof(struct ring_record, owner_gen) == 48, "owner_gen");
#define RING_HDR_CRC_SPAN 40u /* bytes of the header covered by hdr_crc */

static inline uint32_t
ring_len_seal(uint64_t pos, uint32_t len, uint32_t owner_gen)
{
	uint64_t x = ((pos / RING_ALIGN) ^ ((uint64_t)owner_gen << 32)) *
	    UINT64_C(0x9e3779b97f4a7c15);

	return len ^ (uint32_t)(x >> 32) ^ UINT32_C(0x5ea1ed00);
}

/* One producer handle. Its owner holds an open-file-description lock
 * (F_OFD_SETLK) on the slot's 128 bytes of the shm object for as long as the
 * handle is open; the kernel drops the lock when the process dies, in any
 * PID namespace, so the lock, not the pid, says whether the owner lives.
 * gen grows by one at each claim and is stamped into the tags of the
 * owner's records. pid and start_time are for display only (they mean
 * nothing in another PID namespace). Counters are written only by the
 * owner, read by anyone. */
struct ring_slot {
	_Atomic uint32_t pid;
	_Atomic uint32_t gen;
	_Atomic uint64_t start_time;   /* /proc/PID/stat field 22, clock ticks */
	_Atomic uint64_t produced;     /* committed records */
	_Atomic uint64_t dropped_full; /* puts refused because the ring was full */
	_Atomic uint64_t rejected;     /* puts refused for size or key */
	_Atomic uint64_t failed;       /* puts whose record the consumer gave up on */
	_Atomic uint64_t bytes;        /* body bytes committed */
	_Atomic uint64_t last_put_ns;
	_Atomic uint64_t seq;          /* last sequence number handed out */
	/* Counters are cumulative for the slot, so totals over all slots never
	 * go down; the current owner's own figures are counter - base. */
	_Atomic uint64_t base_produced;
	_Atomic uint64_t base_dropped_full;
	uint8_t pad_[RING_LINE - 88];
};
_Static_assert(sizeof(struct ring_slot) == RING_LINE, "slot is one line");

/* Error classes of failed upload attempts, the index of
 * ring_upstats.errors[]. One attempt counts in exactly one class. */
enum ring_errclass {
	RING_ERR_NETWORK   = 0, /* no HTTP answer: connect, reset, timeout, TLS */
	RING_ERR_THROTTLED = 1, /* 429, 503 SlowDown and the like */
	RING_ERR_SERVER    = 2, /* other 5xx, and transient 4xx (RequestTimeout) */
	RING_ERR_CONFIG    = 3, /* bucket, credentials, region, permissions */
	RING_ERR_MESSAGE   = 4, /* this message only: dead-lettered */
	RING_ERR_NCLASSES  = 5,
};
#define RING_ERR_SLOTS 8u

/* Upload latency histogram: the upper bounds of buckets 0..14 in
 * milliseconds; bucket 15 counts the rest (+Inf). Each attempt that got
 * an HTTP answer or a network error is counted once. */
#define RING_LAT_BUCKETS 16u
#define RING_LAT_BOUNDS_MS \
	{ 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000 }

/* The figures of one batch rule (upstats lines 6-21). prefix is the rule's,
 * cut to 71 bytes and NUL-terminated; a reader checks that it is, as with
 * every string in the ring. A message is batched when it is read into a
 * batch, uploaded once the object that holds it is confirmed. */
#define RING_BATCH_RULES 16u
#define RING_BATCH_PREFIX 72u
struct ring_batch_stats {
	char prefix[RING_BATCH_PREFIX];
	_Atomic uint64_t messages;        /* batched */
	_Atomic uint64_t bytes;           /* framed bytes batched */
	_Atomic uint64_t objects;         /* batch objects confirmed */
	_Atomic uint64_t uploaded_bytes;  /* framed bytes in those objects */
	_Atomic uint64_t stored_bytes;    /* their size as stored (compressed) */
	_Atomic uint64_t oldest_realtime_ns; /* oldest message not yet uploaded, 0: none */
	_Atomic uint64_t alone;           /* its messages uploaded one object each */
};
_Static_assert(sizeof(struct ring_batch_stats) == RING_LINE, "a line a rule");

/* The uploader's visibility figures, a block of its own after the
 * counters (layout version 2). Written by the uploader only, read by
 * anyone; every field is relaxed: they are statistics, not protocol. */
struct ring_upstats {
	/* Line 0: outage state. failing_since is the wall-clock time of the
	 * first failed attempt after the last success, 0 while uploads
	 * succeed; last_success is the time of the last confirmed upload. */
	_Atomic uint64_t failing_since_realtime_ns;
	_Atomic uint64_t last_success_realtime_ns;
	_Atomic uint64_t failed_attempts;   /* all classes together */
	_Atomic uint64_t errors[RING_ERR_SLOTS];
	uint8_t pad0_[RING_LINE - 88];

	/* Lines 1-2: latency of upload attempts, microseconds. */
	_Atomic uint64_t lat_count;
	_Atomic uint64_t lat_sum_us;
	_Atomic uint64_t lat_bucket[RING_LAT_BUCKETS];
	uint8_t pad1_[2 * RING_LINE - 144];

	/* Line 3: CLOCK_MONOTONIC of the uploader's last heartbeat, stored at
	 * most every 100 ms so that producers, which read it on every put,
	 * keep the line in their caches. A producer that finds it stale
	 * checks whether its object was removed while no uploader ran (see
	 * orphaned() in ring_produce.c). */
	_Atomic uint64_t heartbeat_mono_ns;
	uint8_t pad3_[RING_LINE - 8];

	/* Line 4: the engine's adaptive concurrency. concurrency_limit is how
	 * many uploads it lets be in flight now (1 to uploader.workers): it
	 * halves on 503 SlowDown or 429 (slowdowns counts those) and grows by
	 * one per window of successes. 0 from an uploader that predates it. */
	_Atomic uint32_t concurrency_limit;
	uint32_t pad4a_;
	_Atomic uint64_t slowdowns;
	/* Multipart uploads of large messages: started, completed, aborted. */
	_Atomic uint64_t multipart_started;
	_Atomic uint64_t multipart_completed;
	_Atomic uint64_t multipart_aborted;
	uint8_t pad4_[RING_LINE - 40];

	/* Line 5: batch mode. batch_rules is how many of the batch[] entries
	 * below are in use; batch_objects and batch_messages count the
	 * batch objects confirmed and the messages in them, all rules
	 * together (0 from an uploader that predates batch mode). */
	_Atomic uint32_t batch_rules;
	uint32_t pad5a_;
	_Atomic uint64_t batch_objects;
	_Atomic uint64_t batch_messages;
	uint8_t pad5_[RING_LINE - 24];

	/* Lines 6-21: one batch rule a line, in the order of the
	 * configuration. */
	struct ring_batch_stats batch[RING_BATCH_RULES];

	/* Lines 22-31: reserved, zero; they keep the data page aligned. */
	uint8_t reserved_[10 * RING_LINE];
};
_Static_assert(offsetof(struct ring_upstats, errors) == 24, "errors");
_Static_assert(offsetof(struct ring_upstats, lat_count) == RING_LINE, "latency");
_Static_assert(offsetof(struct ring_upstats, lat_bucket) == RING_LINE + 16, "buckets");
_Static_assert(offsetof(struct ring_upstats, heartbeat_mono_ns) == 3 * RING_LINE, "hb");
_Static_assert(offsetof(struct ring_upstats, concurrency_limit) == 4 * RING_LINE, "limit");
_Static_assert(offsetof(struct ring_upstats, batch_rules) == 5 * RING_LINE, "batch");
_Static_assert(offsetof(struct ring_upstats, batch) == 6 * RING_LINE, "batch rules");
_Static_assert(sizeof(struct ring_upstats) == 32 * RING_LINE, "upstats is 4 KiB");

/* Uploader flags, in uploader.flags. */
#define RING_UPLOADER_CONFIG_ALARM  (1u << 0) /* configuration error: paused */
#define RING_UPLOADER_SPOOL_ALARM   (1u << 1) /* dead-letter spool unusable */
#define RING_UPLOADER_CORRUPT_ALARM (1u << 2) /* the ring itself looks corrupt */
#define RING_UPLOADER_DRAINING      (1u << 3) /* SIGTERM received */

struct ring_header {
	/* Line 0: geometry, written once by the creator. magic is stored last
	 * (release), and attachers read it first (acquire). */
	_Atomic uint64_t magic;
	uint32_t layout_version;
	uint32_t header_size;       /* offset of the data region */
	uint64_t capacity;          /* data bytes, a power of two */
	uint32_t max_message;       /* key + body bytes */
	uint32_t creator_uid;
	uint64_t created_realtime_ns;
	uint32_t max_producers;
	uint32_t reserved0;
	uint64_t ring_id;           /* random, set at creation: the ring's identity */
	uint8_t pad0_[RING_LINE - 56];

	/* Line 1: producers' CAS target. retired is on the same line because a
	 * producer reads it right after its tail CAS, when it owns the line. */
	_Atomic uint64_t tail;
	_Atomic uint32_t retired;   /* nonzero: removed or replaced, see ring.h */
	uint8_t pad1_[RING_LINE - 12];

	/* Line 2: released by the uploader; producers read it. */
	_Atomic uint64_t head;
	uint8_t pad2_[RING_LINE - 8];

	/* Line 3: futex words. Futexes are 32-bit. data_seq is bumped by a
	 * producer that saw consumer_sleeping set. space_word is a counter in
	 * steps of 2 with bit 0 the waiters bit. */
	_Atomic uint32_t consumer_sleeping;
	_Atomic uint32_t data_seq;
	_Atomic uint32_t space_word;
	uint32_t reserved3;
	_Atomic uint64_t wakes;      /* FUTEX_WAKE calls made by producers */
	_Atomic uint64_t space_wakes;/* FUTEX_WAKE calls made by the consumer */
	uint8_t pad3_[RING_LINE - 32];

	/* Line 4: uploader state. */
	_Atomic uint32_t uploader_pid;
	_Atomic uint32_t uploader_flags;
	_Atomic uint64_t uploader_start_time;
	_Atomic uint64_t uploader_epoch;
	_Atomic uint64_t heartbeat_realtime_ns;
	_Atomic uint32_t uploader_workers;
	uint32_t reserved4;
	_Atomic uint64_t last_error_realtime_ns;
	uint8_t pad4_[RING_LINE - 48];

	/* Line 5: the uploader's last error, NUL-terminated (never a secret). */
	char last_error[RING_LINE];

	/* Lines 6-7: uploader counters. */
	_Atomic uint64_t uploaded;
	_Atomic uint64_t uploaded_bytes;
	_Atomic uint64_t retried;
	_Atomic uint64_t dead_lettered;
	_Atomic uint64_t in_flight;
	_Atomic uint64_t abandoned;      /* records of dead producers */
	_Atomic uint64_t abandoned_hard; /* records given up on a retired ring */
	_Atomic uint64_t corrupt;
	_Atomic uint64_t resynced;       /* gaps padded over by rescanning */
	_Atomic uint64_t config_errors;
	_Atomic uint64_t consumer_wakeups;
	_Atomic uint64_t cursor;         /* consumer's read position, >= head */
	_Atomic uint64_t consumed;       /* records handed to the uploader */
	uint8_t pad6_[2 * RING_LINE - 104];

	/* Lines 8-39: outage state, errors by class, latency (version 2). */
	struct ring_upstats upstats;

	/* Lines 40..: producer slots. */
	struct ring_slot slots[RING_MAX_PRODUCERS];
};

_Static_assert(offsetof(struct ring_header, magic) == 0, "magic");
_Static_assert(offsetof(struct ring_header, layout_version) == 8, "version");
_Static_assert(offsetof(struct ring_header, capacity) == 16, "capacity");
_Static_assert(offsetof(struct ring_header, max_message) == 24, "max_message");
_Static_assert(offsetof(struct ring_header, creator_uid) == 28, "creator_uid");
_Static_assert(offsetof(struct ring_header, ring_id) == 48, "ring_id");
_Static_assert(offsetof(struct ring_header, tail) == 1 * RING_LINE, "tail");
_Static_assert(offsetof(struct ring_header, retired) == 1 * RING_LINE + 8, "retired");
_Static_assert(offsetof(struct ring_header, head) == 2 * RING_LINE, "head");
_Static_assert(offsetof(struct ring_header, consumer_sleeping) == 3 * RING_LINE, "futex");
_Static_assert(offsetof(struct ring_header, data_seq) == 3 * RING_LINE + 4, "data_seq");
_Static_assert(offsetof(struct ring_header, space_word) == 3 * RING_LINE + 8, "space");
_Static_assert(offsetof(struct ring_header, uploader_pid) == 4 * RING_LINE, "uploader");
_Static_assert(offsetof(struct ring_header, last_error) == 5 * RING_LINE, "last_error");
_Static_assert(offsetof(struct ring_header, uploaded) == 6 * RING_LINE, "counters");
_Static_assert(offsetof(struct ring_header, upstats) == 8 * RING_LINE, "upstats");
_Static_assert(offsetof(struct ring_header, slots) == 40 * RING_LINE, "slots");
_Static_assert(sizeof(struct ring_header) ==
    40 * RING_LINE + RING_MAX_PRODUCERS * RING_LINE, "header size");
_Static_assert(sizeof(struct ring_header) % 4096 == 0, "data is page aligned");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "lock-free 64-bit atomics");

#define RING_HEADER_SIZE ((uint32_t)sizeof(struct ring_header))

/* Aligned size of a record holding key_len + body_len bytes. */
static inline uint64_t
ring_record_size(size_t key_len, size_t body_len)
{
	uint64_t n = sizeof(struct ring_record) + (uint64_t)key_len + body_len;
	return (n + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

#endif
