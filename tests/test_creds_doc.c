/* test_creds_doc.c -- tests uploader/creds_doc.c: credential JSON, STS XML, times */
/*
 * The documents are the ones the services really send (shapes from the
 * AWS documentation), then the same documents broken in the ways a
 * stand-in or a hostile process can break them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "creds_doc.h"

#define J(s) s, strlen(s)

static void
process_json_version_1_with_expiration(void **state)
{
	struct cdoc_creds c;

	(void)state;
	assert_int_equal(cdoc_parse_json_creds(CDOC_PROCESS, J("{\"Version\": 1,"
	    " \"AccessKeyId\": \"AKIAPROC\", \"SecretAccessKey\": \"s\\/k\","
	    " \"SessionToken\": \"t\\u00e9\", \"Expiration\": "
	    "\"2026-12-01T10:00:00Z\"}"), &c), 0);
	assert_string_equal(c.keys.access_key_id, "AKIAPROC");
	assert_string_equal(c.keys.secret_access_key, "s/k");
	assert_string_equal(c.keys.session_token, "t\xc3\xa9");
	assert_int_equal(c.expiration, 1796119200);
	/* No token and no expiration: static keys. */
	assert_int_equal(cdoc_parse_json_creds(CDOC_PROCESS, J("{\"Version\":1,"
	    "\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\"}"), &c), 0);
	assert_int_equal(c.expiration, 0);
	assert_string_equal(c.keys.session_token, "");
}

static void
process_json_errors_name_the_field(void **state)
{
	static const struct {
		const char *doc;
		int rc;
		const char *err;
	} cases[] = {
		{ "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\"}", -EINVAL,
		  "no Version" },
		{ "{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\"}",
		  -EINVAL, "Version 1" },
		{ "{\"Version\":1,\"SecretAccessKey\":\"B\"}", -EINVAL,
		  "no AccessKeyId" },
		{ "{\"Version\":1,\"AccessKeyId\":5,\"SecretAccessKey\":\"B\"}",
		  -EINVAL, NULL },
		{ "{\"Version\":1,\"AccessKeyId\":[],\"SecretAccessKey\":\"B\"}",
		  -EINVAL, "AccessKeyId is not a string" },
		{ "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\","
		  "\"Expiration\":\"tomorrow\"}", -EINVAL, "ISO 8601" },
		{ "{\"Version\":1,\"AccessKeyId\":\"A\"", -EINVAL, "malformed" },
		{ "{\"Version\":1,\"AccessKeyId\":\"A\",}", -EINVAL, "malformed" },
		{ "{\"Version\":1} trailing", -EINVAL, "malformed" },
		{ "[1]", -EINVAL, "malformed" },
		{ "", -EINVAL, "malformed" },
		{ "{\"Version\":1,\"AccessKeyId\":\"A\\x\"}", -EINVAL, "malformed" },
		{ "{\"Version\":1,\"AccessKeyId\":\"\\ud800\"}", -EINVAL, "malformed" },
	};
	struct cdoc_creds c;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(cdoc_parse_json_creds(CDOC_PROCESS,
		    J(cases[i].doc), &c), cases[i].rc);
		if (cases[i].err != NULL && strstr(c.error, cases[i].err) == NULL)
			fail_msg("case %zu: error \"%s\" lacks \"%s\"", i,
			    c.error, cases[i].err);
		assert_string_equal(c.keys.access_key_id, "");
	}
}

static void
overlong_values_are_refused_not_cut(void **state)
{
	static char doc[CREDS_TOKEN_MAX + 200];
	char tok[CREDS_TOKEN_MAX + 1];
	struct cdoc_creds c;

	(void)state;
	memset(tok, 'x', sizeof(tok) - 1);
	tok[sizeof(tok) - 1] = '\0';
	snprintf(doc, sizeof(doc), "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":"
	    "\"B\",\"Token\":\"%s\",\"Expiration\":\"2030-01-01T00:00:00Z\"}", tok);
	assert_int_equal(cdoc_parse_json_creds(CDOC_ECS, J(doc), &c), -E2BIG);
	assert_non_null(strstr(c.error, "Token is too long"));
	/* One byte less fits. */
	tok[sizeof(tok) - 2] = '\0';
	snprintf(doc, sizeof(doc), "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":"
	    "\"B\",\"Token\":\"%s\",\"Expiration\":\"2030-01-01T00:00:00Z\"}", tok);
	assert_int_equal(cdoc_parse_json_creds(CDOC_ECS, J(doc), &c), 0);
	assert_int_equal(strlen(c.keys.session_token), CREDS_TOKEN_MAX - 1);
}

static void
imds_document_needs_code_success(void **state)
{
	const char *ok = "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : "
	    "\"2026-12-01T09:00:00Z\",\n  \"Type\" : \"AWS-HMAC\",\n  "
	    "\"AccessKeyId\" : \"ASIAIMDS\",\n  \"SecretAccessKey\" : \"s\",\n"
	    "  \"Token\" : \"t\",\n  \"Expiration\" : \"2026-12-01T15:00:00Z\"\n}";
	struct cdoc_creds c;

	(void)state;
	assert_int_equal(cdoc_parse_json_creds(CDOC_IMDS, J(ok), &c), 0);
	assert_string_equal(c.keys.access_key_id, "ASIAIMDS");
	assert_int_equal(c.expiration, 1796137200);
	assert_int_equal(cdoc_parse_json_creds(CDOC_IMDS, J("{\"Code\":"
	    "\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no\"}"), &c), -EINVAL);
	assert_non_null(strstr(c.error, "AssumeRoleUnauthorizedAccess"));
	/* ECS and IMDS keys always expire. */
	assert_int_equal(cdoc_parse_json_creds(CDOC_ECS, J("{\"AccessKeyId\":"
	    "\"A\",\"SecretAccessKey\":\"B\",\"Token\":\"T\"}"), &c), -EINVAL);
	assert_non_null(strstr(c.error, "no Expiration"));
}

static void
sso_role_credentials_use_epoch_milliseconds(void **state)
{
	struct cdoc_creds c;

	(void)state;
	assert_int_equal(cdoc_parse_json_creds(CDOC_SSO_ROLE, J("{\"roleCredentials"
	    "\":{\"accessKeyId\":\"ASIASSO\",\"secretAccessKey\":\"s\","
	    "\"sessionToken\":\"t\",\"expiration\":1796119200000}}"), &c), 0);
	assert_string_equal(c.keys.access_key_id, "ASIASSO");
	assert_int_equal(c.expiration, 1796119200);
	/* The same names at the top level are not the answer. */
	assert_int_equal(cdoc_parse_json_creds(CDOC_SSO_ROLE, J("{\"accessKeyId\""
	    ":\"A\",\"secretAccessKey\":\"s\",\"sessionToken\":\"t\","
	    "\"expiration\":1}"), &c), -EINVAL);
}

static void
sso_cache_gives_token_and_expiry(void **state)
{
	char tok[64], err[CDOC_ERROR_MAX];
	time_t exp;

	(void)state;
	assert_int_equal(cdoc_parse_sso_cache(J("{\"startUrl\":\"https://x\","
	    "\"region\":\"eu-west-1\",\"accessToken\":\"aoa123\","
	    "\"expiresAt\":\"2026-12-01T10:00:00UTC\"}"), tok, sizeof(tok), &exp,
	    err), 0);
	assert_string_equal(tok, "aoa123");
	assert_int_equal(exp, 1796119200);
	assert_int_equal(cdoc_parse_sso_cache(J("{\"accessToken\":\"a\"}"), tok,
	    sizeof(tok), &exp, err), -EINVAL);
	assert_non_null(strstr(err, "expiresAt"));
}

static void
sts_success_and_error_documents(void **state)
{
	const char *ok = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts"
	    ".amazonaws.com/doc/2011-06-15/\">\n  <AssumeRoleWithWebIdentityResult>"
	    "\n    <SubjectFromWebIdentityToken>sub</SubjectFromWebIdentityToken>\n"
	    "    <Credentials>\n      <SessionToken>FQo&amp;x</SessionToken>\n"
	    "      <SecretAccessKey>wJal</SecretAccessKey>\n      <Expiration>"
	    "2026-12-01T10:00:00Z</Expiration>\n      <AccessKeyId>ASIASTS"
	    "</AccessKeyId>\n    </Credentials>\n  </AssumeRoleWithWebIdentityResult>"
	    "\n</AssumeRoleWithWebIdentityResponse>\n";
	const char *err = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/"
	    "2011-06-15/\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>"
	    "AccessDenied</Code>\n    <Message>Not authorized to perform "
	    "sts:AssumeRoleWithWebIdentity</Message>\n  </Error>\n  <RequestId>"
	    "r-1</RequestId>\n</ErrorResponse>\n";
	struct cdoc_creds c;

	(void)state;
	assert_int_equal(cdoc_parse_sts(J(ok), &c), 0);
	assert_string_equal(c.keys.access_key_id, "ASIASTS");
	assert_string_equal(c.keys.secret_access_key, "wJal");
	assert_string_equal(c.keys.session_token, "FQo&x");
	assert_int_equal(c.expiration, 1796119200);
	assert_int_equal(cdoc_parse_sts(J(err), &c), -EACCES);
	assert_string_equal(c.error, "AccessDenied: Not authorized to perform "
	    "sts:AssumeRoleWithWebIdentity");
	assert_int_equal(cdoc_parse_sts(J("<html>502 Bad Gateway</html>"), &c),
	    -EINVAL);
	assert_int_equal(cdoc_parse_sts(J("<Credentials><AccessKeyId>A"
	    "</AccessKeyId></Credentials>"), &c), -EINVAL);
	assert_non_null(strstr(c.error, "SecretAccessKey"));
	assert_string_equal(c.keys.access_key_id, "");
}

static void
times_in_the_forms_aws_writes(void **state)
{
	time_t t;

	(void)state;
	assert_int_equal(cdoc_parse_time(J("1970-01-01T00:00:00Z"), &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(cdoc_parse_time(J("2026-12-01T10:00:00.123Z"), &t), 0);
	assert_int_equal(t, 1796119200);
	assert_int_equal(cdoc_parse_time(J("2026-12-01T11:30:00+01:30"), &t), 0);
	assert_int_equal(t, 1796119200);
	assert_int_equal(cdoc_parse_time(J("2026-12-01T08:00:00-0200"), &t), 0);
	assert_int_equal(t, 1796119200);
	assert_int_equal(cdoc_parse_time(J("2026-12-01"), &t), -EINVAL);
	assert_int_equal(cdoc_parse_time(J("2026-13-01T00:00:00Z"), &t), -EINVAL);
	assert_int_equal(cdoc_parse_time(J("2026-12-01T10:00:00Zjunk"), &t), -EINVAL);
	assert_int_equal(cdoc_parse_time(J("2026-12-01T10:00:00."), &t), -EINVAL);
}

static void
json_get_reads_nested_members_and_rejects_deep_nesting(void **state)
{
	static const char *const path[] = { "a", "b" };
	char out[16], deep[200];

	(void)state;
	assert_int_equal(cdoc_json_get(J("{\"x\":[{\"b\":1}],\"a\":{\"b\":"
	    "\"v\",\"c\":null}}"), path, 2, out, sizeof(out)), 0);
	assert_string_equal(out, "v");
	assert_int_equal(cdoc_json_get(J("{\"a\":{\"c\":true}}"), path, 2, out,
	    sizeof(out)), -ENOENT);
	memset(deep, '[', sizeof(deep));
	memcpy(deep, "{\"a\":", 5);
	assert_int_equal(cdoc_json_get(deep, sizeof(deep), path, 1, out,
	    sizeof(out)), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(process_json_version_1_with_expiration),
		cmocka_unit_test(process_json_errors_name_the_field),
		cmocka_unit_test(overlong_values_are_refused_not_cut),
		cmocka_unit_test(imds_document_needs_code_success),
		cmocka_unit_test(sso_role_credentials_use_epoch_milliseconds),
		cmocka_unit_test(sso_cache_gives_token_and_expiry),
		cmocka_unit_test(sts_success_and_error_documents),
		cmocka_unit_test(times_in_the_forms_aws_writes),
		cmocka_unit_test(json_get_reads_nested_members_and_rejects_deep_nesting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
