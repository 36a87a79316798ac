/* test_s3err.c -- tests uploader/s3err.c: error bodies, classes, backoff */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "s3err.h"

/* Parses s from an exact-size heap copy so ASan catches any read past the
 * end (the parser must not rely on a NUL). */
static int
parse(const char *s, struct s3err_body *b)
{
	size_t n = strlen(s);
	char *copy = malloc(n ? n : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, s, n);
	rc = s3err_parse(copy, n, b);
	free(copy);
	return rc;
}

static void
parse_extracts_code_message_and_request_id(void **state)
{
	struct s3err_body b;

	(void)state;
	assert_int_equal(parse(
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<Error><Code>NoSuchBucket</Code>"
	    "<Message>The specified bucket does not exist</Message>"
	    "<BucketName>nope</BucketName>"
	    "<RequestId>4442587FB7D0A2F9</RequestId>"
	    "<HostId>abc</HostId></Error>", &b), 0);
	assert_string_equal(b.code, "NoSuchBucket");
	assert_string_equal(b.message, "The specified bucket does not exist");
	assert_string_equal(b.request_id, "4442587FB7D0A2F9");
}

static void
parse_accepts_namespace_comments_and_whitespace(void **state)
{
	struct s3err_body b;

	(void)state;
	assert_int_equal(parse(
	    "\xef\xbb\xbf  <!-- hi --><Error xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	    "  <Code>\n  SlowDown \n</Code>\n  <Message>Reduce your\n request rate.</Message>\n"
	    "</Error>", &b), 0);
	assert_string_equal(b.code, "SlowDown");
	assert_string_equal(b.message, "Reduce your  request rate.");
}

static void
parse_decodes_entities(void **state)
{
	struct s3err_body b;

	(void)state;
	assert_int_equal(parse("<Error><Code>A&amp;B</Code><Message>&lt;x&gt; "
	    "&quot;&apos; &#65;&#x42; &#xE9; &#x1F600; &bogus; &#xD800;"
	    "</Message></Error>", &b), 0);
	assert_string_equal(b.code, "A&B");
	assert_string_equal(b.message,
	    "<x> \"' AB \xc3\xa9 \xf0\x9f\x98\x80 &bogus; ?");
}

static void
parse_ignores_code_nested_below_the_root(void **state)
{
	struct s3err_body b;

	(void)state;
	assert_int_equal(parse("<Error><Details><Code>Inner</Code></Details>"
	    "<Code>Outer</Code></Error>", &b), 0);
	assert_string_equal(b.code, "Outer");
}

static void
parse_rejects_documents_that_are_not_errors(void **state)
{
	struct s3err_body b;

	(void)state;
	assert_int_equal(parse("<CompleteMultipartUploadResult><Code>X</Code>"
	    "</CompleteMultipartUploadResult>", &b), -ENOENT);
	assert_int_equal(parse("<Errors><Code>X</Code></Errors>", &b), -ENOENT);
	assert_int_equal(parse("<Error/>", &b), -ENOENT);
	assert_int_equal(parse("<html><body>502 Bad Gateway</body></html>", &b),
	    -ENOENT);
	assert_string_equal(b.code, "");
}

static void
parse_returns_enoent_for_truncated_bodies(void **state)
{
	static const char full[] = "<?xml version=\"1.0\"?><Error><Code>"
	    "InternalError</Code><Message>We encountered an internal error"
	    "</Message></Error>";
	struct s3err_body b;
	char cut[sizeof(full)];

	(void)state;
	/* Every prefix either has the complete code or reports none. */
	for (size_t n = 0; n < sizeof(full) - 1; n++) {
		int rc;

		memcpy(cut, full, n);
		cut[n] = '\0';
		rc = parse(cut, &b);
		if (n < strlen("<?xml version=\"1.0\"?><Error><Code>InternalError</Code>"))
			assert_int_equal(rc, -ENOENT);
		else
			assert_int_equal(rc, 0);
		if (rc == 0)
			assert_string_equal(b.code, "InternalError");
	}
}

static void
parse_survives_garbage(void **state)
{
	static const char *bad[] = {
		"", "<", "<E", "<Error", "<Error>", "<Error><", "<Error><Code",
		"<Error><Code>", "<Error><Code>x", "<Error><Code>x</Cod",
		"<?", "<!--", "<Error><!--", "<Error></", "<<<<>>>>", "\xff\xfe",
		"<Error><Code></Code></Error>",
	};
	struct s3err_body b;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &b), -ENOENT);
	assert_int_equal(s3err_parse(NULL, 0, &b), -ENOENT);
}

static void
parse_caps_fields_and_strips_control_characters(void **state)
{
	struct s3err_body b;
	char body[4096];
	size_t o;

	(void)state;
	o = (size_t)snprintf(body, sizeof(body), "<Error><Code>A\x01" "B\xc3\xa9"
	    "</Code><Message>");
	for (int i = 0; i < 1000; i++)
		body[o++] = "\xc3\xa9"[i % 2];	/* 500 x U+00E9 */
	o += (size_t)snprintf(body + o, sizeof(body) - o,
	    "</Message><RequestId>r\x1b[31m</RequestId></Error>");
	body[o] = '\0';
	assert_int_equal(parse(body, &b), 0);
	assert_string_equal(b.code, "A B??");
	assert_int_equal(strlen(b.message), S3ERR_MESSAGE_MAX - 1);
	assert_string_equal(b.request_id, "r [31m");
}

/* ------------------------------------------------------------- classes */

static void
expect(int curl_code, long status, const char *code, enum s3err_class cls)
{
	struct s3err_verdict v = s3err_classify(curl_code, status, code);

	if (v.cls != cls)
		fail_msg("curl %d status %ld code %s: got %s, want %s", curl_code,
		    status, code ? code : "-", s3err_class_name(v.cls),
		    s3err_class_name(cls));
	assert_non_null(v.reason);
}

static void
classify_200_is_ok(void **state)
{
	(void)state;
	expect(CURLE_OK, 200, NULL, S3ERR_OK);
	expect(CURLE_OK, 204, "", S3ERR_OK);
}

static void
classify_503_slowdown_is_transient(void **state)
{
	struct s3err_verdict v = s3err_classify(CURLE_OK, 503, "SlowDown");

	(void)state;
	assert_int_equal(v.cls, S3ERR_TRANSIENT);
	assert_string_equal(v.reason, "SlowDown");
	assert_false(v.reload_credentials);
}

static void
classify_500_internal_error_is_transient(void **state)
{
	(void)state;
	expect(CURLE_OK, 500, "InternalError", S3ERR_TRANSIENT);
	expect(CURLE_OK, 502, NULL, S3ERR_TRANSIENT);
	expect(CURLE_OK, 504, "", S3ERR_TRANSIENT);
	expect(CURLE_OK, 429, NULL, S3ERR_TRANSIENT);
}

static void
classify_error_inside_200_by_its_code(void **state)
{
	/* CompleteMultipartUpload can fail with 200 and an <Error> body. */
	(void)state;
	expect(CURLE_OK, 200, "InternalError", S3ERR_TRANSIENT);
}

static void
classify_request_timeout_is_transient(void **state)
{
	(void)state;
	expect(CURLE_OK, 400, "RequestTimeout", S3ERR_TRANSIENT);
}

static void
classify_expired_token_reloads_credentials(void **state)
{
	struct s3err_verdict v = s3err_classify(CURLE_OK, 400, "ExpiredToken");

	(void)state;
	assert_int_equal(v.cls, S3ERR_TRANSIENT);
	assert_true(v.reload_credentials);
}

static void
classify_no_such_upload_restarts_upload(void **state)
{
	struct s3err_verdict v = s3err_classify(CURLE_OK, 404, "NoSuchUpload");

	(void)state;
	assert_int_equal(v.cls, S3ERR_TRANSIENT);
	assert_true(v.restart_upload);
}

static void
classify_no_such_bucket_is_config(void **state)
{
	(void)state;
	expect(CURLE_OK, 404, "NoSuchBucket", S3ERR_CONFIG);
	/* HEAD has no body: the status alone decides. */
	expect(CURLE_OK, 404, NULL, S3ERR_CONFIG);
}

static void
classify_access_denied_is_config(void **state)
{
	(void)state;
	expect(CURLE_OK, 403, "AccessDenied", S3ERR_CONFIG);
	expect(CURLE_OK, 403, NULL, S3ERR_CONFIG);
}

static void
classify_signature_does_not_match_is_config(void **state)
{
	(void)state;
	expect(CURLE_OK, 403, "SignatureDoesNotMatch", S3ERR_CONFIG);
}

static void
classify_invalid_access_key_id_is_config(void **state)
{
	(void)state;
	expect(CURLE_OK, 403, "InvalidAccessKeyId", S3ERR_CONFIG);
}

static void
classify_request_time_too_skewed_is_config(void **state)
{
	(void)state;
	expect(CURLE_OK, 403, "RequestTimeTooSkewed", S3ERR_CONFIG);
}

static void
classify_key_too_long_is_message(void **state)
{
	(void)state;
	expect(CURLE_OK, 400, "KeyTooLongError", S3ERR_MESSAGE);
}

static void
classify_entity_too_large_is_message(void **state)
{
	(void)state;
	expect(CURLE_OK, 400, "EntityTooLarge", S3ERR_MESSAGE);
	expect(CURLE_OK, 413, NULL, S3ERR_MESSAGE);
}

static void
classify_bad_digest_is_message(void **state)
{
	(void)state;
	expect(CURLE_OK, 400, "BadDigest", S3ERR_MESSAGE);
	expect(CURLE_OK, 400, "XAmzContentSHA256Mismatch", S3ERR_MESSAGE);
	expect(CURLE_OK, 400, "InvalidDigest", S3ERR_MESSAGE);
}

static void
classify_unknown_code_falls_back_to_status(void **state)
{
	(void)state;
	expect(CURLE_OK, 503, "SomethingNew", S3ERR_TRANSIENT);
	expect(CURLE_OK, 403, "SomethingNew", S3ERR_CONFIG);
	expect(CURLE_OK, 400, "SomethingNew", S3ERR_MESSAGE);
	expect(CURLE_OK, 301, NULL, S3ERR_CONFIG);
	expect(CURLE_OK, 307, NULL, S3ERR_TRANSIENT);
}

static void
classify_curl_couldnt_connect_is_transient(void **state)
{
	(void)state;
	expect(CURLE_COULDNT_CONNECT, 0, NULL, S3ERR_TRANSIENT);
	expect(CURLE_COULDNT_RESOLVE_HOST, 0, NULL, S3ERR_TRANSIENT);
}

static void
classify_curl_timeout_is_transient(void **state)
{
	(void)state;
	expect(CURLE_OPERATION_TIMEDOUT, 0, NULL, S3ERR_TRANSIENT);
}

static void
classify_curl_reset_and_recv_error_are_transient(void **state)
{
	(void)state;
	expect(CURLE_RECV_ERROR, 0, NULL, S3ERR_TRANSIENT);
	expect(CURLE_SEND_ERROR, 0, NULL, S3ERR_TRANSIENT);
	expect(CURLE_GOT_NOTHING, 0, NULL, S3ERR_TRANSIENT);
	expect(CURLE_PARTIAL_FILE, 200, NULL, S3ERR_TRANSIENT);
}

static void
classify_curl_ssl_cert_problem_is_config(void **state)
{
	(void)state;
	expect(CURLE_PEER_FAILED_VERIFICATION, 0, NULL, S3ERR_CONFIG);
	expect(CURLE_SSL_CACERT_BADFILE, 0, NULL, S3ERR_CONFIG);
	expect(CURLE_SSL_CERTPROBLEM, 0, NULL, S3ERR_CONFIG);
	expect(CURLE_URL_MALFORMAT, 0, NULL, S3ERR_CONFIG);
}

static void
classify_curl_error_wins_over_status(void **state)
{
	(void)state;
	expect(CURLE_RECV_ERROR, 403, "AccessDenied", S3ERR_TRANSIENT);
}

/* ------------------------------------------------------------- backoff */

static void
backoff_is_full_jitter_below_exponential_ceiling(void **state)
{
	(void)state;
	/* rnd % (ceiling + 1): 0 and ceiling are both reachable. */
	assert_int_equal(s3err_backoff_ms(0, 100, 20000, 0, 0), 0);
	assert_int_equal(s3err_backoff_ms(0, 100, 20000, 0, 100), 100);
	assert_int_equal(s3err_backoff_ms(3, 100, 20000, 0, 800), 800);
	assert_int_equal(s3err_backoff_ms(3, 100, 20000, 0, 801), 0);
	for (uint64_t r = 0; r < 5000; r += 7)
		assert_true(s3err_backoff_ms(4, 100, 20000, 0, r * 977) <= 1600);
}

static void
backoff_saturates_at_cap_for_large_attempts(void **state)
{
	(void)state;
	assert_int_equal(s3err_backoff_ms(8, 100, 20000, 0, 20000), 20000);
	assert_int_equal(s3err_backoff_ms(63, 100, 20000, 0, 20000), 20000);
	assert_int_equal(s3err_backoff_ms(1000, 100, 20000, 0, UINT64_MAX),
	    UINT64_MAX % 20001);
	assert_true(s3err_backoff_default_ms(1000, 0) <= S3ERR_BACKOFF_MAX_MS);
}

static void
backoff_honours_retry_after(void **state)
{
	(void)state;
	assert_int_equal(s3err_backoff_ms(0, 100, 20000, 5000, 7), 5000);
	/* A longer jitter wins over a short Retry-After. */
	assert_int_equal(s3err_backoff_ms(10, 100, 20000, 5, 9000), 9000);
	/* Retry-After is honoured beyond the backoff cap, up to its own. */
	assert_int_equal(s3err_backoff_ms(0, 100, 20000, 60000, 0), 60000);
	assert_int_equal(s3err_backoff_ms(0, 100, 20000, UINT64_MAX, 0),
	    S3ERR_RETRY_AFTER_MAX_MS);
}

static void
retry_after_parses_seconds_and_http_dates(void **state)
{
	/* Wed, 21 Oct 2015 07:28:00 GMT */
	time_t when = 1445412480;
	uint64_t ms = 1;

	(void)state;
	assert_int_equal(s3err_parse_retry_after("120", 0, &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(s3err_parse_retry_after(" 0 ", 0, &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(s3err_parse_retry_after(
	    "Wed, 21 Oct 2015 07:28:00 GMT", when - 30, &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(s3err_parse_retry_after(
	    "Wed, 21 Oct 2015 07:28:00 GMT", when + 30, &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(s3err_parse_retry_after("99999999999999999999999", 0,
	    &ms), 0);
	assert_true(ms >= 86400ULL * 365 * 1000);
}

static void
retry_after_rejects_garbage(void **state)
{
	uint64_t ms;

	(void)state;
	assert_int_equal(s3err_parse_retry_after("", 0, &ms), -EINVAL);
	assert_int_equal(s3err_parse_retry_after("-5", 0, &ms), -EINVAL);
	assert_int_equal(s3err_parse_retry_after("12x", 0, &ms), -EINVAL);
	assert_int_equal(s3err_parse_retry_after("tomorrow", 0, &ms), -EINVAL);
	assert_int_equal(s3err_parse_retry_after(NULL, 0, &ms), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_extracts_code_message_and_request_id),
		cmocka_unit_test(parse_accepts_namespace_comments_and_whitespace),
		cmocka_unit_test(parse_decodes_entities),
		cmocka_unit_test(parse_ignores_code_nested_below_the_root),
		cmocka_unit_test(parse_rejects_documents_that_are_not_errors),
		cmocka_unit_test(parse_returns_enoent_for_truncated_bodies),
		cmocka_unit_test(parse_survives_garbage),
		cmocka_unit_test(parse_caps_fields_and_strips_control_characters),
		cmocka_unit_test(classify_200_is_ok),
		cmocka_unit_test(classify_503_slowdown_is_transient),
		cmocka_unit_test(classify_500_internal_error_is_transient),
		cmocka_unit_test(classify_error_inside_200_by_its_code),
		cmocka_unit_test(classify_request_timeout_is_transient),
		cmocka_unit_test(classify_expired_token_reloads_credentials),
		cmocka_unit_test(classify_no_such_upload_restarts_upload),
		cmocka_unit_test(classify_no_such_bucket_is_config),
		cmocka_unit_test(classify_access_denied_is_config),
		cmocka_unit_test(classify_signature_does_not_match_is_config),
		cmocka_unit_test(classify_invalid_access_key_id_is_config),
		cmocka_unit_test(classify_request_time_too_skewed_is_config),
		cmocka_unit_test(classify_key_too_long_is_message),
		cmocka_unit_test(classify_entity_too_large_is_message),
		cmocka_unit_test(classify_bad_digest_is_message),
		cmocka_unit_test(classify_unknown_code_falls_back_to_status),
		cmocka_unit_test(classify_curl_couldnt_connect_is_transient),
		cmocka_unit_test(classify_curl_timeout_is_transient),
		cmocka_unit_test(classify_curl_reset_and_recv_error_are_transient),
		cmocka_unit_test(classify_curl_ssl_cert_problem_is_config),
		cmocka_unit_test(classify_curl_error_wins_over_status),
		cmocka_unit_test(backoff_is_full_jitter_below_exponential_ceiling),
		cmocka_unit_test(backoff_saturates_at_cap_for_large_attempts),
		cmocka_unit_test(backoff_honours_retry_after),
		cmocka_unit_test(retry_after_parses_seconds_and_http_dates),
		cmocka_unit_test(retry_after_rejects_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
