/* test_retry.c -- the decision after one upload attempt (uploader/retry.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "retry.h"
#include "s3err.h"

#define SEC 1000000000ull

static const struct retry_policy pol = {
	.max_attempts = 3, .max_age_ns = 0, .recheck_ms = 30000,
};

static struct s3_response
answer(long status, const char *code, enum s3err_class cls)
{
	struct s3_response r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	snprintf(r.error.code, sizeof(r.error.code), "%s", code);
	r.verdict.cls = cls;
	r.verdict.reason = code[0] ? code : "HTTP error";
	return r;
}

static struct retry_facts
facts(const struct s3_response *r, uint64_t now)
{
	return (struct retry_facts){
		.rc = -EIO, .r = r, .ring_bytes_intact = true, .now_ns = now,
		.put_ns = 1, .probe = -1, .rnd = 12345,
	};
}

static void
success_is_uploaded(void **state)
{
	struct retry_state st = { 0 };
	struct retry_facts f = { .rc = 0 };
	struct retry_decision d;

	(void)state;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(d.action, RETRY_UPLOADED);
	assert_false(d.retried);
}

static void
request_not_sent_is_dead_lettered_with_the_errno(void **state)
{
	struct retry_state st = { 0 };
	struct retry_facts f = { .rc = -ENAMETOOLONG };
	struct retry_decision d;

	(void)state;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(d.action, RETRY_DEAD_LETTER);
	assert_non_null(strstr(d.reason, "request not sent"));
}

static void
transient_failure_in_an_outage_does_not_count_toward_max_attempts(void **state)
{
	struct s3_response r = answer(503, "", S3ERR_TRANSIENT);
	struct retry_state st = { 0 };
	struct retry_decision d;

	(void)state;
	/* No success anywhere and the bucket does not answer: an outage. */
	for (int i = 0; i < 20; i++) {
		struct retry_facts f = facts(&r, (uint64_t)(i + 1) * SEC);

		f.probe = 0;
		retry_decide(&pol, &st, &f, &d);
		assert_int_equal(d.action, RETRY_AGAIN);
		assert_true(d.retried);
	}
	assert_int_equal(st.attempts, 0);
	assert_int_equal(st.tries, 20);
}

static void
transient_failure_while_others_succeed_is_given_up_after_max_attempts(void **state)
{
	struct s3_response r = answer(500, "InternalError", S3ERR_TRANSIENT);
	struct retry_state st = { 0 };
	struct retry_decision d;

	(void)state;
	for (unsigned i = 0; i < pol.max_attempts; i++) {
		uint64_t now = (uint64_t)(i + 1) * 10 * SEC;
		struct retry_facts f = facts(&r, now);

		/* The first failure is proved by the bucket's answer, the
		 * next ones by successes after the previous failure. */
		f.probe = i == 0 ? 1 : -1;
		f.last_success_ns = now - SEC;
		retry_decide(&pol, &st, &f, &d);
		if (i + 1 < pol.max_attempts)
			assert_int_equal(d.action, RETRY_AGAIN);
	}
	assert_int_equal(d.action, RETRY_DEAD_LETTER);
	assert_non_null(strstr(d.reason, "gave up after 3 attempts"));
	assert_non_null(strstr(d.reason, "InternalError"));
}

static void
a_success_from_before_the_failure_proves_nothing(void **state)
{
	struct s3_response r = answer(500, "InternalError", S3ERR_TRANSIENT);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f = facts(&r, 100 * SEC);

	(void)state;
	f.last_success_ns = 50 * SEC;
	retry_decide(&pol, &st, &f, &d);
	f.now_ns = 200 * SEC;	/* still no success since the first failure */
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(st.attempts, 0);
	assert_true(d.want_probe);
}

static void
a_fresh_probe_answer_counts_the_failure(void **state)
{
	struct s3_response r = answer(500, "InternalError", S3ERR_TRANSIENT);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f = facts(&r, 100 * SEC);

	(void)state;
	f.probe = 1;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(st.attempts, 1);
	assert_false(d.want_probe);
}

static void
a_plain_transient_failure_without_proof_needs_a_probe(void **state)
{
	struct s3_response r = answer(503, "", S3ERR_TRANSIENT);
	struct s3_response cfg = answer(403, "AccessDenied", S3ERR_CONFIG);
	struct retry_state st = { 0 };
	struct retry_facts f = facts(&r, 10 * SEC);

	(void)state;
	assert_true(retry_needs_probe(&st, &f));
	f.probe = 1;
	assert_false(retry_needs_probe(&st, &f));
	f.probe = -1;
	f.last_success_ns = 11 * SEC;	/* a success after it: proof enough */
	assert_false(retry_needs_probe(&st, &f));
	f = facts(&cfg, 10 * SEC);
	assert_false(retry_needs_probe(&st, &f));
}

static void
backoff_grows_and_honours_retry_after(void **state)
{
	struct s3_response r = answer(503, "SlowDown", S3ERR_TRANSIENT);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f = facts(&r, SEC);

	(void)state;
	r.has_retry_after = true;
	r.retry_after_ms = 7000;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(d.action, RETRY_AGAIN);
	assert_true(d.delay_ms >= 7000);
	assert_true(d.slow_down);
}

static void
slow_down_and_429_ask_for_fewer_in_flight(void **state)
{
	struct s3_response a = answer(503, "SlowDown", S3ERR_TRANSIENT);
	struct s3_response b = answer(429, "", S3ERR_TRANSIENT);
	struct s3_response c = answer(500, "InternalError", S3ERR_TRANSIENT);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f;

	(void)state;
	f = facts(&a, SEC);
	retry_decide(&pol, &st, &f, &d);
	assert_true(d.slow_down);
	f = facts(&b, SEC);
	retry_decide(&pol, &st, &f, &d);
	assert_true(d.slow_down);
	f = facts(&c, SEC);
	retry_decide(&pol, &st, &f, &d);
	assert_false(d.slow_down);
}

static void
configuration_error_pauses_for_the_recheck_interval(void **state)
{
	struct s3_response r = answer(403, "InvalidAccessKeyId", S3ERR_CONFIG);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f = facts(&r, SEC);

	(void)state;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(d.action, RETRY_PAUSE);
	assert_int_equal(d.delay_ms, 30000);
	assert_non_null(strstr(d.why, "InvalidAccessKeyId"));
	assert_int_equal(st.attempts, 0);
}

static void
message_error_is_dead_lettered_at_once(void **state)
{
	struct s3_response r = answer(400, "InvalidArgument", S3ERR_MESSAGE);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f = facts(&r, SEC);

	(void)state;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(d.action, RETRY_DEAD_LETTER);
	assert_non_null(strstr(d.reason, "InvalidArgument"));
}

static void
changed_bytes_in_the_ring_are_corrupt_not_retried(void **state)
{
	struct s3_response r = answer(400, "BadDigest", S3ERR_MESSAGE);
	struct s3_response sent = answer(0, "", S3ERR_MESSAGE);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f = facts(&r, SEC);

	(void)state;
	f.ring_bytes_intact = false;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(d.action, RETRY_CORRUPT);
	/* Aborted by the sender itself (the bytes changed while sent). */
	sent.body_changed = true;
	f = facts(&sent, SEC);
	f.ring_bytes_intact = false;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(d.action, RETRY_CORRUPT);
}

static void
digest_refused_for_intact_bytes_is_sent_again(void **state)
{
	struct s3_response r = answer(400, "XAmzContentSHA256Mismatch", S3ERR_MESSAGE);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f = facts(&r, SEC);

	(void)state;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(d.action, RETRY_AGAIN);
	assert_true(d.retried);
}

static void
followed_region_is_retried_at_once(void **state)
{
	struct s3_response r = answer(301, "PermanentRedirect", S3ERR_CONFIG);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f = facts(&r, SEC);

	(void)state;
	snprintf(r.bucket_region, sizeof(r.bucket_region), "eu-west-1");
	f.region_followed = true;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(d.action, RETRY_NOW);
	assert_non_null(strstr(d.why, "eu-west-1"));
	assert_true(retry_is_region_error(&r));
}

static void
stopping_hands_the_record_back(void **state)
{
	struct s3_response r = answer(500, "InternalError", S3ERR_TRANSIENT);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f = facts(&r, SEC);

	(void)state;
	f.stopping = true;
	retry_decide(&pol, &st, &f, &d);
	assert_int_equal(d.action, RETRY_HAND_BACK);
}

static void
max_age_gives_up_only_on_a_failure_of_its_own(void **state)
{
	struct retry_policy p = pol;
	struct s3_response r = answer(500, "InternalError", S3ERR_TRANSIENT);
	struct retry_state st = { 0 };
	struct retry_decision d;
	struct retry_facts f = facts(&r, 1000 * SEC);

	(void)state;
	p.max_attempts = 100;
	p.max_age_ns = 60 * SEC;
	f.probe = 0;		/* an outage: old, but not given up */
	retry_decide(&p, &st, &f, &d);
	assert_int_equal(d.action, RETRY_AGAIN);
	f.now_ns = 1001 * SEC;
	f.probe = 1;		/* the service works: its own failure */
	retry_decide(&p, &st, &f, &d);
	assert_int_equal(d.action, RETRY_DEAD_LETTER);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(success_is_uploaded),
		cmocka_unit_test(request_not_sent_is_dead_lettered_with_the_errno),
		cmocka_unit_test(transient_failure_in_an_outage_does_not_count_toward_max_attempts),
		cmocka_unit_test(transient_failure_while_others_succeed_is_given_up_after_max_attempts),
		cmocka_unit_test(a_success_from_before_the_failure_proves_nothing),
		cmocka_unit_test(a_fresh_probe_answer_counts_the_failure),
		cmocka_unit_test(a_plain_transient_failure_without_proof_needs_a_probe),
		cmocka_unit_test(backoff_grows_and_honours_retry_after),
		cmocka_unit_test(slow_down_and_429_ask_for_fewer_in_flight),
		cmocka_unit_test(configuration_error_pauses_for_the_recheck_interval),
		cmocka_unit_test(message_error_is_dead_lettered_at_once),
		cmocka_unit_test(changed_bytes_in_the_ring_are_corrupt_not_retried),
		cmocka_unit_test(digest_refused_for_intact_bytes_is_sent_again),
		cmocka_unit_test(followed_region_is_retried_at_once),
		cmocka_unit_test(stopping_hands_the_record_back),
		cmocka_unit_test(max_age_gives_up_only_on_a_failure_of_its_own),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
