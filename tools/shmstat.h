/* shmstat.h -- snapshot and rendering of an s3ring ring, for shmstat.
 *
 * The logic is split from the program (tools/shmstat.c) so that unit tests
 * and the fuzz harness can run it on a plain memory buffer: nothing here
 * opens, maps or signals anything. A snapshot is taken once from memory that
 * another process may be writing (or may have filled with garbage); every
 * field is read once, checked against the geometry, and the renderers only
 * ever look at the snapshot, never at the ring.
 */
#ifndef S3RING_SHMSTAT_H
#define S3RING_SHMSTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "ring.h"

/* Nagios plugin exit codes, also shmstat's exit codes in every mode. */
enum {
	SHMSTAT_OK = 0,
	SHMSTAT_WARNING = 1,
	SHMSTAT_CRITICAL = 2,
	SHMSTAT_UNKNOWN = 3,
};

/* The most records (or 64-byte blocks) the pending walk looks at. A 64 MiB
 * ring of minimum-size records holds 1 Mi of them; past this the walk stops
 * and the pending figure is reported as inexact. */
#define SHMSTAT_WALK_BUDGET (UINT64_C(1) << 22)

struct shmstat_env {
	uint64_t now_mono_ns;   /* CLOCK_MONOTONIC: ages of records */
	uint64_t now_real_ns;   /* CLOCK_REALTIME: heartbeat age */
	/* Liveness of a process (pid + start time); proc_alive() in the
	 * program, a scripted answer in the unit tests and the fuzz harness. */
	bool (*alive)(pid_t pid, uint64_t start_time);
	/* Whether a producer slot's lock is held (the authority on producer
	 * liveness, in any PID namespace); NULL: judge by pid instead. */
	bool (*slot_locked)(unsigned slot, void *arg);
	/* Whether the uploader's presence lock is held; NULL: by pid only. */
	bool (*uploader_locked)(void *arg);
	void *slot_arg;
	uint64_t walk_budget;   /* 0 means SHMSTAT_WALK_BUDGET */
};

struct shmstat_producer {
	unsigned slot;
	uint32_t pid;           /* 0: the slot was released by its owner */
	uint64_t start_time;
	bool alive;
	uint64_t produced;      /* the current (or last) owner's own figures */
	uint64_t dropped_full;
	uint64_t slot_produced; /* cumulative for the slot, never decreases */
	uint64_t slot_dropped_full;
	uint64_t rejected;
	uint64_t failed;
	uint64_t bytes;
};

/* One batch rule's figures (struct ring_batch_stats). prefix is copied
 * with a byte to spare, so it is terminated here whatever the ring held;
 * prefix_ok says the ring's copy was NUL-terminated and printable UTF-8,
 * and only then is it shown as it is (see shmstat_render_text()). */
struct shmstat_batch_rule {
	char prefix[RING_BATCH_PREFIX + 1];
	bool prefix_ok;
	uint64_t messages, bytes, objects, uploaded_bytes, stored_bytes, alone;
	bool have_oldest;           /* a message of the rule awaits upload */
	uint64_t oldest_age_ms;
};

struct shmstat_snap {
	char ring[RING_NAME_MAX + 1];
	uint32_t layout_version;
	uint64_t capacity;
	uint32_t max_message;
	uint32_t creator_uid;
	uint64_t created_realtime_ns;

	uint64_t head, cursor, tail;
	uint64_t used_bytes;        /* tail - head */
	uint64_t pending;           /* committed records in [cursor, tail) */
	uint64_t pending_bytes;     /* tail - cursor */
	uint64_t writing;           /* records still being written */
	bool pending_exact;         /* the walk saw every record */
	bool have_oldest;
	uint64_t oldest_pending_age_ms;
	/* The oldest record still being written (its owner alive but slow or
	 * stopped holds head there), by its sealed header. */
	bool have_oldest_writing;
	uint64_t oldest_writing_age_ms;
	unsigned oldest_writing_slot;

	uint64_t produced, dropped_full, rejected, failed, produced_bytes;
	uint64_t uploaded, uploaded_bytes, retried, dead_lettered, in_flight;
	uint64_t abandoned, abandoned_hard, corrupt, resynced, config_errors;
	uint64_t consumed;

	uint32_t uploader_pid;
	uint64_t uploader_start_time;
	bool uploader_alive;
	uint64_t uploader_epoch;
	uint32_t uploader_workers;
	uint32_t concurrency_limit;     /* adaptive, 0: not published */
	uint64_t slowdowns;
	uint64_t multipart_started, multipart_completed, multipart_aborted;
	/* Batch mode: the ring's count of rules, clamped to the array, and
	 * every rule's figures in configuration order. */
	unsigned batch_rules;
	uint64_t batch_objects, batch_messages;
	struct shmstat_batch_rule batch[RING_BATCH_RULES];
	uint32_t uploader_flags;
	bool have_heartbeat;
	uint64_t heartbeat_age_ms;
	bool have_last_error;
	uint64_t last_error_age_ms;
	char last_error[RING_LINE + 1]; /* raw bytes, NUL-terminated here */

	/* The uploader's visibility block (struct ring_upstats). */
	bool failing;               /* every attempt failed since failing_for_ms */
	uint64_t failing_for_ms;
	bool have_last_success;
	uint64_t last_success_age_ms;
	uint64_t failed_attempts;
	uint64_t errors[RING_ERR_NCLASSES];
	uint64_t lat_count, lat_sum_us;
	uint64_t lat_bucket[RING_LAT_BUCKETS]; /* per bucket, not cumulative */

	unsigned nproducers;
	struct shmstat_producer producers[RING_MAX_PRODUCERS];
};

/* Per-second rates between two snapshots (watch mode). */
struct shmstat_rates {
	bool valid;
	double interval_s;
	double put_s, upload_s, drop_s, in_bytes_s, out_bytes_s;
};

/* Fills *s from the ring image at base (len bytes: the size of the object,
 * header and data). Reads only; base may be changing underneath. Returns 0,
 * -EBADMSG (not a ring, truncated, or control words out of range) or
 * -EPROTO (a layout version this build does not know). *s is fully
 * initialised only on success. */
__attribute__((warn_unused_result)) int
shmstat_snapshot(struct shmstat_snap *s, const char *ring_name,
    const void *base, size_t len, const struct shmstat_env *env);

/* Rates from prev to cur, taken interval_s apart. Counters that went
 * backwards (a recreated ring) give rates of 0. */
void shmstat_rates(struct shmstat_rates *r, const struct shmstat_snap *prev,
    const struct shmstat_snap *cur, double interval_s);

/* The human summary (vmstat/df style). */
void shmstat_render_text(FILE *f, const struct shmstat_snap *s);

/* One line of watch output; a header line first when header is true. */
void shmstat_render_watch_line(FILE *f, const struct shmstat_snap *s,
    const struct shmstat_rates *r, bool header);

/* One JSON object and a newline. r may be NULL. */
void shmstat_render_json(FILE *f, const struct shmstat_snap *s,
    const struct shmstat_rates *r);

/* The Prometheus text exposition format (version 0.0.4). */
void shmstat_render_prometheus(FILE *f, const struct shmstat_snap *s);

/* Writes len bytes of src (stopping at a NUL) as a JSON string with its
 * quotes: control characters, quotes and backslashes are escaped, invalid
 * UTF-8 becomes U+FFFD, so the output is valid whatever src holds. */

/* Length of the valid multi-byte UTF-8 sequence at s (n >= 1 bytes), or 0
 * for ASCII, an invalid sequence, U+2028 or U+2029. */
size_t shmstat_utf8_seq(const unsigned char *s, size_t n);
void shmstat_json_string(FILE *f, const char *src, size_t len);

/* Copies len bytes of src (stopping at a NUL) into dst (cap > 0 bytes,
 * always NUL-terminated) with every byte outside printable ASCII replaced
 * by '?', so a hostile string cannot move a terminal cursor or break a
 * line-oriented format. Returns dst. */
char *shmstat_printable(char *dst, size_t cap, const char *src, size_t len);

/* The names of the error classes, for every output format. */
const char *shmstat_errclass_name(unsigned cls);

struct shmstat_check_cfg {
	unsigned full_warn_pct;      /* WARNING above this use (80) */
	uint64_t heartbeat_max_ms;   /* CRITICAL when older (10 s) */
	uint64_t writing_warn_ms;    /* WARNING: a record written this long (10 s) */
	uint64_t drops_baseline;     /* dropped_full at the last check */
	/* Oldest pending message: WARNING / CRITICAL when older (60 s,
	 * 300 s); 0 turns the level off. */
	uint64_t age_warn_ms, age_crit_ms;
	/* An uploader whose every attempt has failed for this long (60 s,
	 * 300 s); 0 turns the level off. */
	uint64_t failing_warn_ms, failing_crit_ms;
	/* Dead letters since the last check: WARNING when any, CRITICAL
	 * when at least dead_crit of them (0: never critical). */
	uint64_t dead_baseline;
	uint64_t dead_crit;
};

/* Evaluates the ring's state for --check and writes one status line
 * (without newline) into line. Returns SHMSTAT_OK, _WARNING or _CRITICAL. */
int shmstat_check(const struct shmstat_snap *s,
    const struct shmstat_check_cfg *cfg, char *line, size_t cap);

#endif
