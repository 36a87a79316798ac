/* health.c -- the uploader's view of the service: outage summaries, error
 * classes, latency buckets and the give-up rule.
 *
 * Invariants: everything here is a pure function of its arguments and of
 * the struct health the caller serialises; nothing logs, sleeps or reads a
 * clock. The outage log says at most two lines per report interval,
 * however the failures and successes interleave (a flapping service at
 * 30% faults gives one "failing" and one "recovered" per interval), and
 * never stays silent for more than an interval while every upload fails.
 */
#include "health.h"

#include <stdio.h>
#include <string.h>

#include "ring_layout.h"

void
health_init(struct health *h)
{
	memset(h, 0, sizeof(*h));
}

static enum health_report
emit(struct health *h, enum health_report what, uint64_t now,
    struct health_line *line)
{
	memset(line, 0, sizeof(*line));
	line->what = what;
	line->failures = h->failures;
	line->successes = h->successes;
	line->outage_failures = h->outage_failures;
	line->failing_for_ns = h->since_ns != 0 && now > h->since_ns ?
	    now - h->since_ns : 0;
	snprintf(line->last_error, sizeof(line->last_error), "%s", h->last_error);
	h->last_line_ns = now;
	h->failures = h->successes = 0;
	return what;
}

static bool
interval_passed(const struct health *h, uint64_t now)
{
	return h->last_line_ns == 0 || now - h->last_line_ns >= HEALTH_REPORT_INTERVAL_NS;
}

enum health_report
health_failure(struct health *h, uint64_t now, const char *err,
    struct health_line *line)
{
	if (h->since_ns == 0) {
		h->since_ns = now;
		h->outage_failures = 0;
	}
	h->failures++;
	h->outage_failures++;
	snprintf(h->last_error, sizeof(h->last_error), "%s", err ? err : "");
	if (!interval_passed(h, now))
		return HEALTH_QUIET;
	if (!h->reported) {
		h->reported = true;
		return emit(h, HEALTH_STARTED, now, line);
	}
	return emit(h, HEALTH_ONGOING, now, line);
}

enum health_report
health_success(struct health *h, uint64_t now, struct health_line *line)
{
	enum health_report r = HEALTH_QUIET;

	h->successes++;
	if (h->reported) {
		h->reported = false;
		r = emit(h, HEALTH_RECOVERED, now, line);
	}
	h->since_ns = 0;
	h->outage_failures = 0;
	return r;
}

enum health_report
health_tick(struct health *h, uint64_t now, struct health_line *line)
{
	if (!h->reported || h->since_ns == 0 || !interval_passed(h, now))
		return HEALTH_QUIET;
	return emit(h, HEALTH_ONGOING, now, line);
}

unsigned
health_errclass(int curl_code, long status, enum s3err_class cls, const char *s3_code)
{
	if (cls == S3ERR_CONFIG)
		return RING_ERR_CONFIG;
	if (cls == S3ERR_MESSAGE)
		return RING_ERR_MESSAGE;
	if (status == 0 && curl_code != 0)
		return RING_ERR_NETWORK;
	if (status == 429 || status == 503 ||
	    (s3_code != NULL && (strcmp(s3_code, "SlowDown") == 0 ||
	    strcmp(s3_code, "Throttling") == 0 ||
	    strcmp(s3_code, "ThrottlingException") == 0 ||
	    strcmp(s3_code, "RequestLimitExceeded") == 0)))
		return RING_ERR_THROTTLED;
	return RING_ERR_SERVER;
}

unsigned
health_lat_bucket(uint64_t us)
{
	static const uint64_t bounds_ms[] = RING_LAT_BOUNDS_MS;
	unsigned i;

	_Static_assert(sizeof(bounds_ms) / sizeof(bounds_ms[0]) == RING_LAT_BUCKETS - 1,
	    "one bound per finite bucket");
	for (i = 0; i < RING_LAT_BUCKETS - 1; i++)
		if (us <= bounds_ms[i] * 1000)
			return i;
	return RING_LAT_BUCKETS - 1;
}

bool
health_give_up(unsigned attempts, unsigned max_attempts, bool counted,
    uint64_t age_ns, uint64_t max_age_ns)
{
	if (attempts >= max_attempts)
		return true;
	return counted && max_age_ns != 0 && age_ns > max_age_ns;
}

bool
health_probe_answered(int rc, long status)
{
	if (rc == 0)
		return true;
	return status >= 300 && status < 500 && status != 408 && status != 429;
}
