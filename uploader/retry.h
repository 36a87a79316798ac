/* retry.h -- what to do after one upload attempt: a pure decision.
 *
 * The engine gathers the facts (the answer, whether the service worked
 * meanwhile, the message's age, whether the region was followed) and
 * retry_decide() says what happens next. It does no I/O and reads no
 * clock, so every rule is tested on its own (tests/test_retry.c).
 */
#ifndef S3RING_RETRY_H
#define S3RING_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3.h"

enum retry_action {
	RETRY_UPLOADED,     /* confirmed: mark it done */
	RETRY_AGAIN,        /* transient: try again after delay_ms */
	RETRY_NOW,          /* the region was followed: try again at once */
	RETRY_PAUSE,        /* configuration: alarm, re-check after delay_ms */
	RETRY_DEAD_LETTER,  /* the message's own fault, or given up: spool it */
	RETRY_CORRUPT,      /* its bytes changed in the ring: count, drop */
	RETRY_HAND_BACK,    /* stopping: leave it in the ring */
};

struct retry_policy {
	unsigned max_attempts;
	uint64_t max_age_ns;        /* 0: none */
	uint64_t recheck_ms;        /* configuration re-check interval */
};

/* Per message, zero before its first attempt. */
struct retry_state {
	unsigned attempts;          /* failures while the service worked */
	unsigned tries;             /* transient failures, all of them */
	uint64_t prev_fail_ns;      /* of the previous transient failure */
};

struct retry_facts {
	int rc;                     /* the attempt's: 0, -EIO (answered or
	                               failed in transit), other -errno: not sent */
	const struct s3_response *r;/* when rc is -EIO */
	bool region_followed;       /* r named the bucket's region; switched */
	bool ring_bytes_intact;     /* the record still matches its CRC now */
	bool stopping;
	uint64_t now_ns, put_ns;    /* CLOCK_MONOTONIC */
	uint64_t last_success_ns;   /* of any upload */
	/* A HEAD of the bucket answered within the last second (1), failed
	 * (0), or none is that fresh (-1). */
	int probe;
	uint64_t rnd;               /* for the backoff's jitter */
};

struct retry_decision {
	enum retry_action action;
	uint64_t delay_ms;
	bool retried;               /* counts in the ring's `retried` */
	bool want_probe;            /* a fresh HEAD would have decided better */
	bool slow_down;             /* 503 SlowDown or 429: fewer in flight */
	char why[512];              /* the failure in one line (logs, alarm) */
	char reason[600];           /* for the dead-letter spool */
};

void retry_decide(const struct retry_policy *p, struct retry_state *st,
    const struct retry_facts *f, struct retry_decision *d);

/* True if this failure is transient and nothing proves the service
 * works: retry_decide() would not count it toward max-attempts, though a
 * HEAD of the bucket might. The engine then probes first and decides when
 * the probe answered (f->probe 0 or 1), so that a message's own failures
 * are counted from the first. */
bool retry_needs_probe(const struct retry_state *st, const struct retry_facts *f);

/* One line for a failed answer: the S3 code and message, the curl error,
 * or the status; names the bucket's region when that is the error. */
const char *retry_describe(const struct s3_response *r, char *buf, size_t cap);

/* The answer says the bucket is in another region (and names it). */
bool retry_is_region_error(const struct s3_response *r);

#endif
