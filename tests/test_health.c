/* test_health.c -- tests uploader/health.c: the outage log's rate limit,
 * error classes, latency buckets and the give-up rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "health.h"
#include "ring_layout.h"

#define SEC UINT64_C(1000000000)
#define T0 (UINT64_C(1000) * SEC)

static void
first_failure_is_reported_at_once_with_its_error(void **state)
{
	struct health h;
	struct health_line l;

	health_init(&h);
	assert_int_equal(health_failure(&h, T0, "HTTP 503", &l), HEALTH_STARTED);
	assert_string_equal(l.last_error, "HTTP 503");
	assert_int_equal(l.failures, 1);
}

static void
failures_in_an_outage_give_one_line_per_30_seconds_with_counts(void **state)
{
	struct health h;
	struct health_line l;
	unsigned lines = 0;

	health_init(&h);
	(void)health_failure(&h, T0, "first", &l);
	/* 100 failures a second for 95 s: a line at 30, 60 and 90 s. */
	for (uint64_t t = T0 + SEC / 100; t <= T0 + 95 * SEC; t += SEC / 100) {
		enum health_report r = health_failure(&h, t, "Couldn't connect", &l);
		if (r != HEALTH_QUIET) {
			assert_int_equal(r, HEALTH_ONGOING);
			assert_true(l.failures >= 2999 && l.failures <= 3001);
			assert_string_equal(l.last_error, "Couldn't connect");
			assert_true(l.failing_for_ns >= 30 * SEC * (lines + 1) - SEC);
			lines++;
		}
	}
	assert_int_equal(lines, 3);
}

static void
tick_reports_an_outage_that_makes_no_new_attempts(void **state)
{
	struct health h;
	struct health_line l;

	health_init(&h);
	(void)health_failure(&h, T0, "down", &l);
	assert_int_equal(health_tick(&h, T0 + 29 * SEC, &l), HEALTH_QUIET);
	assert_int_equal(health_tick(&h, T0 + 30 * SEC, &l), HEALTH_ONGOING);
	assert_string_equal(l.last_error, "down");
	assert_int_equal(l.outage_failures, 1);
	assert_int_equal(health_tick(&h, T0 + 31 * SEC, &l), HEALTH_QUIET);
}

static void
success_after_a_reported_failure_is_reported_once_as_recovery(void **state)
{
	struct health h;
	struct health_line l;

	health_init(&h);
	assert_int_equal(health_success(&h, T0, &l), HEALTH_QUIET);
	(void)health_failure(&h, T0 + SEC, "x", &l);
	assert_int_equal(health_success(&h, T0 + 2 * SEC, &l), HEALTH_RECOVERED);
	assert_int_equal(health_success(&h, T0 + 3 * SEC, &l), HEALTH_QUIET);
	assert_int_equal(health_tick(&h, T0 + 100 * SEC, &l), HEALTH_QUIET);
}

static void
a_flapping_service_logs_at_most_two_lines_per_interval(void **state)
{
	struct health h;
	struct health_line l;
	unsigned lines = 0;

	health_init(&h);
	/* 30% failures, 10 attempts a second, for 300 s. */
	for (unsigned i = 0; i < 3000; i++) {
		uint64_t t = T0 + (uint64_t)i * SEC / 10;
		enum health_report r = (i % 10) < 3 ? health_failure(&h, t, "e", &l) :
		    health_success(&h, t, &l);
		if (r != HEALTH_QUIET)
			lines++;
		if (health_tick(&h, t, &l) != HEALTH_QUIET)
			lines++;
	}
	assert_true(lines >= 2);
	assert_true(lines <= 2 * (300 / 30 + 1));
}

static void
error_classes_follow_status_curl_code_and_verdict(void **state)
{
	assert_int_equal(health_errclass(7, 0, S3ERR_TRANSIENT, NULL), RING_ERR_NETWORK);
	assert_int_equal(health_errclass(28, 0, S3ERR_TRANSIENT, ""), RING_ERR_NETWORK);
	assert_int_equal(health_errclass(0, 503, S3ERR_TRANSIENT, "SlowDown"), RING_ERR_THROTTLED);
	assert_int_equal(health_errclass(0, 429, S3ERR_TRANSIENT, NULL), RING_ERR_THROTTLED);
	assert_int_equal(health_errclass(0, 500, S3ERR_TRANSIENT, "InternalError"), RING_ERR_SERVER);
	assert_int_equal(health_errclass(0, 400, S3ERR_TRANSIENT, "RequestTimeout"), RING_ERR_SERVER);
	assert_int_equal(health_errclass(0, 403, S3ERR_CONFIG, "AccessDenied"), RING_ERR_CONFIG);
	assert_int_equal(health_errclass(0, 400, S3ERR_MESSAGE, "KeyTooLongError"), RING_ERR_MESSAGE);
}

static void
latency_buckets_have_inclusive_upper_bounds(void **state)
{
	assert_int_equal(health_lat_bucket(0), 0);
	assert_int_equal(health_lat_bucket(1000), 0);
	assert_int_equal(health_lat_bucket(1001), 1);
	assert_int_equal(health_lat_bucket(10000), 3);
	assert_int_equal(health_lat_bucket(60000000), RING_LAT_BUCKETS - 2);
	assert_int_equal(health_lat_bucket(60000001), RING_LAT_BUCKETS - 1);
	assert_int_equal(health_lat_bucket(UINT64_MAX), RING_LAT_BUCKETS - 1);
}

static void
max_age_never_gives_up_a_message_during_an_outage(void **state)
{
	uint64_t old = 3600 * SEC, max_age = 3 * SEC;

	/* Failures that did not count (the service was down): never. */
	assert_false(health_give_up(0, 10, false, old, max_age));
	/* The same message failing on its own: given up once too old. */
	assert_true(health_give_up(1, 10, true, old, max_age));
	assert_false(health_give_up(1, 10, true, 2 * SEC, max_age));
	/* No age limit. */
	assert_false(health_give_up(1, 10, true, old, 0));
	/* max-attempts, counted failures only. */
	assert_true(health_give_up(10, 10, false, 0, 0));
	assert_false(health_give_up(9, 10, true, 0, 0));
}

static void
any_non_5xx_answer_to_a_probe_proves_the_service_up(void **state)
{
	assert_true(health_probe_answered(0, 200));
	assert_true(health_probe_answered(-5, 403));  /* no s3:ListBucket */
	assert_true(health_probe_answered(-5, 404));
	assert_true(health_probe_answered(-5, 301));
	assert_false(health_probe_answered(-5, 503));
	assert_false(health_probe_answered(-5, 500));
	assert_false(health_probe_answered(-5, 429));
	assert_false(health_probe_answered(-5, 0));  /* no answer at all */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_failure_is_reported_at_once_with_its_error),
		cmocka_unit_test(failures_in_an_outage_give_one_line_per_30_seconds_with_counts),
		cmocka_unit_test(tick_reports_an_outage_that_makes_no_new_attempts),
		cmocka_unit_test(success_after_a_reported_failure_is_reported_once_as_recovery),
		cmocka_unit_test(a_flapping_service_logs_at_most_two_lines_per_interval),
		cmocka_unit_test(error_classes_follow_status_curl_code_and_verdict),
		cmocka_unit_test(latency_buckets_have_inclusive_upper_bounds),
		cmocka_unit_test(max_age_never_gives_up_a_message_during_an_outage),
		cmocka_unit_test(any_non_5xx_answer_to_a_probe_proves_the_service_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
