/* health.h -- the uploader's view of the service: outage summaries, error
 * classes, latency buckets and the give-up rule, as pure functions. */
#ifndef S3RING_HEALTH_H
#define S3RING_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3err.h"

/* Summary lines about failing uploads are at least this far apart. */
#define HEALTH_REPORT_INTERVAL_NS (UINT64_C(30) * 1000000000u)
#define HEALTH_ERR_MAX 256

/*
 * The state behind the rate-limited outage log. Not thread-safe: the
 * caller serialises the calls (the uploader holds a mutex). All times are
 * CLOCK_MONOTONIC nanoseconds, never 0 for a real event.
 */
struct health {
	uint64_t since_ns;      /* first failure after the last success; 0: none */
	uint64_t last_line_ns;  /* when the last line was due; 0: never */
	bool reported;          /* a "failing" line is out, no "recovered" yet */
	uint64_t failures;      /* attempts failed since the last line */
	uint64_t successes;     /* uploads confirmed since the last line */
	uint64_t outage_failures; /* failures since since_ns */
	char last_error[HEALTH_ERR_MAX];
};

enum health_report {
	HEALTH_QUIET = 0,       /* log nothing */
	HEALTH_STARTED,         /* "uploads failing": the first line */
	HEALTH_ONGOING,         /* "uploads still failing": every interval */
	HEALTH_RECOVERED,       /* "uploads recovered" */
};

/* A line to log: what, and the figures it carries, copied out of the
 * state when the report was decided (the window counts then restart). */
struct health_line {
	enum health_report what;
	uint64_t failures, successes, outage_failures;
	uint64_t failing_for_ns; /* 0 for RECOVERED after a flap */
	char last_error[HEALTH_ERR_MAX];
};

void health_init(struct health *h);

/* One attempt failed (a service failure: not a message error) at now
 * with error text err. Fills *line and returns what to log. The first
 * failure after a quiet interval is reported at once; then one line per
 * HEALTH_REPORT_INTERVAL_NS at most. */
enum health_report health_failure(struct health *h, uint64_t now, const char *err,
    struct health_line *line);

/* One upload was confirmed at now. Returns HEALTH_RECOVERED once after a
 * reported failure, else HEALTH_QUIET. */
enum health_report health_success(struct health *h, uint64_t now,
    struct health_line *line);

/* Called periodically: HEALTH_ONGOING when failures were reported, none
 * succeeded since, and the interval has passed since the last line. */
enum health_report health_tick(struct health *h, uint64_t now,
    struct health_line *line);

/*
 * The error class of a failed attempt (enum ring_errclass): network when
 * curl had no HTTP answer, throttled for 429, 503 and SlowDown, config and
 * message by the verdict, server for the rest.
 */
unsigned health_errclass(int curl_code, long status, enum s3err_class cls,
    const char *s3_code);

/* The histogram bucket (0..RING_LAT_BUCKETS-1) of a latency in
 * microseconds, against RING_LAT_BOUNDS_MS (a bound is inclusive). */
unsigned health_lat_bucket(uint64_t us);

/*
 * Whether a message whose attempt just failed transiently is given up
 * (dead-lettered). attempts counts the failures while the service worked;
 * counted says whether this one did. An outage never makes a message old:
 * max-age applies only to a failure of the message's own, like
 * max-attempts. max_age_ns 0 means no age limit.
 */
bool health_give_up(unsigned attempts, unsigned max_attempts, bool counted,
    uint64_t age_ns, uint64_t max_age_ns);

/* True if an answer to a probe (HEAD bucket) proves the service works: a
 * success, or any HTTP answer that is neither 5xx nor 408/429 (a 403 of a
 * policy without s3:ListBucket is an answer). rc is the operation's
 * return value. */
bool health_probe_answered(int rc, long status);

#endif
