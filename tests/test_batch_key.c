/* test_batch_key.c -- tests uploader/batch_key.c: each field, strftime
 * conversions in UTC, escapes, limits, and the template check's reasons. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "batch_key.h"
#include "s3.h"

/* 2026-03-07 09:05:02 UTC, a Saturday, day 066 of the year. */
#define T0 ((time_t)1772874302)

static const struct batch_key_fields fields = {
	.t = T0,
	.prefix = "logs/",
	.host = "web1",
	.ext = ".zst",
	.ring_id = 0xabcull,
	.pos = 0x123456789abcdef0ull,
};

static void
expands_to(const char *tmpl, const struct batch_key_fields *f, const char *want)
{
	char out[2048];

	assert_int_equal(batch_key_expand(tmpl, f, out, sizeof(out)), (int)strlen(want));
	assert_string_equal(out, want);
}

static void
every_field_expands(void **state)
{
	expands_to("{prefix}{host}/{ring}-{pos}{ext}", &fields,
	    "logs/web1/0000000000000abc-123456789abcdef0.zst");
	expands_to(BATCH_KEY_DEFAULT, &fields,
	    "logs/2026/03/07/09/web1-0000000000000abc-123456789abcdef0.zst");
}

static void
missing_prefix_and_ext_expand_to_nothing(void **state)
{
	struct batch_key_fields f = fields;

	f.prefix = NULL;
	f.ext = "";
	expands_to("{prefix}{ring}{pos}{ext}", &f, "0000000000000abc123456789abcdef0");
}

static void
host_defaults_to_the_short_host_name(void **state)
{
	struct batch_key_fields f = fields;
	char host[HOST_NAME_MAX + 1] = "", twice[2 * HOST_NAME_MAX + 2];

	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[strcspn(host, ".")] = '\0';
	f.host = NULL;
	expands_to("{host}", &f, host);
	snprintf(twice, sizeof(twice), "%s/%s", host, host);
	expands_to("{host}/{host}", &f, twice); /* the cached name, the same */
}

static void
strftime_conversions_are_in_utc_at_the_put_time(void **state)
{
	/* A zone far from UTC: a conversion done in local time would show. */
	setenv("TZ", "America/Los_Angeles", 1);
	tzset();
	expands_to("%Y/%m/%d/%H/%M/%S", &fields, "2026/03/07/09/05/02");
	expands_to("%j %F %T", &fields, "066 2026-03-07 09:05:02");
	expands_to("%a %b %e %y %C %u %V %G %p %I %z", &fields,
	    "Sat Mar  7 26 20 6 10 2026 AM 09 +0000");
	expands_to("%s", &fields, "1772874302");
	unsetenv("TZ");
	tzset();
}

static void
percent_percent_is_one_percent(void **state)
{
	expands_to("a%%b%%%Y%%", &fields, "a%b%2026%");
}

static void
a_prefix_with_percent_or_braces_is_copied_literally(void **state)
{
	struct batch_key_fields f = fields;

	f.prefix = "p%Y{ring}%/";
	f.host = "h{pos}";
	expands_to("{prefix}{host}-{ring}", &f, "p%Y{ring}%/h{pos}-0000000000000abc");
}

static void
a_key_over_the_cap_or_s3s_limit_gives_enametoolong(void **state)
{
	struct batch_key_fields f = fields;
	static char prefix[S3_KEY_MAX + 2], out[4096];
	const char *want = "logs/0000000000000abc";

	assert_int_equal(batch_key_expand("{prefix}{ring}", &f, out, strlen(want) + 1),
	    (int)strlen(want));
	assert_int_equal(batch_key_expand("{prefix}{ring}", &f, out, strlen(want)), -ENAMETOOLONG);
	assert_int_equal(batch_key_expand("{prefix}{ring}", &f, out, 0), -ENAMETOOLONG);
	memset(prefix, 'a', S3_KEY_MAX);
	f.prefix = prefix;
	assert_int_equal(batch_key_expand("{prefix}", &f, out, sizeof(out)), S3_KEY_MAX);
	assert_int_equal(batch_key_expand("{prefix}x", &f, out, sizeof(out)), -ENAMETOOLONG);
	assert_string_equal(out, "");
}

static void
an_invalid_key_gives_einval(void **state)
{
	struct batch_key_fields f = fields;
	char out[256];

	f.prefix = "bad\x01";
	assert_int_equal(batch_key_expand("{prefix}{ring}", &f, out, sizeof(out)), -EINVAL);
	f.prefix = "bad\xff";
	assert_int_equal(batch_key_expand("{prefix}{ring}", &f, out, sizeof(out)), -EINVAL);
	f.prefix = "";
	assert_int_equal(batch_key_expand("{prefix}", &f, out, sizeof(out)), -EINVAL);
	assert_int_equal(batch_key_expand("{ring}{nope}", &fields, out, sizeof(out)), -EINVAL);
	assert_string_equal(out, "");
	assert_int_equal(batch_key_expand("{ring}%", &fields, out, sizeof(out)), -EINVAL);
	assert_string_equal(out, "");
}

static void
check_rejects(const char *tmpl, const char *reason_part)
{
	char err[256] = "";

	assert_int_equal(batch_key_check(tmpl, err, sizeof(err)), -EINVAL);
	if (strstr(err, reason_part) == NULL)
		fail_msg("%s: \"%s\" does not mention \"%s\"", tmpl, err, reason_part);
	assert_null(strchr(err, '\n'));
}

static void
check_accepts_good_templates(void **state)
{
	char err[256] = "x";

	assert_int_equal(batch_key_check(BATCH_KEY_DEFAULT, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(batch_key_check("{pos}{ring}%%%s}", err, sizeof(err)), 0);
	assert_int_equal(batch_key_check("{ring}/{pos}", NULL, 0), 0);
}

static void
check_names_the_template_problem(void **state)
{
	check_rejects("{prefix}{ring}{pos}{hots}", "{hots}");
	check_rejects("{prefix}{ring}{pos", "no closing '}'");
	check_rejects("{ring}{pos}%", "lone '%'");
	check_rejects("{ring}{pos}%Q", "%Q");
	check_rejects("{ring}{pos}%n", "%n");
	check_rejects("{prefix}%Y/{pos}", "{ring}");
	check_rejects("{prefix}%Y/{ring}", "{pos}");
	check_rejects("", "empty");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_field_expands),
		cmocka_unit_test(missing_prefix_and_ext_expand_to_nothing),
		cmocka_unit_test(host_defaults_to_the_short_host_name),
		cmocka_unit_test(strftime_conversions_are_in_utc_at_the_put_time),
		cmocka_unit_test(percent_percent_is_one_percent),
		cmocka_unit_test(a_prefix_with_percent_or_braces_is_copied_literally),
		cmocka_unit_test(a_key_over_the_cap_or_s3s_limit_gives_enametoolong),
		cmocka_unit_test(an_invalid_key_gives_einval),
		cmocka_unit_test(check_accepts_good_templates),
		cmocka_unit_test(check_names_the_template_problem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
