/* test_config.c -- tests for uploader/config.c: flags, environment, file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char err[CONFIG_ERR_MAX];

static int
load(struct config *c, int argc, const char **argv)
{
	return config_load(c, argc, (char **)argv, err, sizeof(err));
}

static void
clear_env(void)
{
	unsetenv("S3RING_RING");
	unsetenv("S3RING_BUCKET");
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_CA_BUNDLE");
}

static void
defaults_apply_when_only_the_bucket_is_given(void **state)
{
	struct config c;
	const char *argv[] = { "s3ring-uploader", "--bucket", "b1" };

	(void)state;
	clear_env();
	assert_int_equal(load(&c, 3, argv), 0);
	assert_string_equal(c.bucket, "b1");
	assert_string_equal(c.ring, "default");
	assert_string_equal(c.region, ""); /* resolved later with the profile */
	assert_int_equal(c.workers, 64);
	assert_int_equal(c.ring_size, 64 << 20);
	assert_int_equal(c.max_message, 1 << 20);
	assert_int_equal(c.max_attempts, 10);
	assert_int_equal(c.recheck_s, 30);
	assert_false(c.path_style);
}

static void
missing_bucket_is_a_usage_error(void **state)
{
	struct config c;
	const char *argv[] = { "s3ring-uploader" };

	(void)state;
	clear_env();
	assert_int_equal(load(&c, 1, argv), -EINVAL);
	assert_non_null(strstr(err, "--bucket"));
	assert_null(strchr(err, '\n'));
}

static void
bad_values_are_refused_with_the_setting_named(void **state)
{
	struct config c;
	const char *a1[] = { "u", "--bucket", "b", "--workers", "0" };
	const char *a2[] = { "u", "--bucket", "b", "--workers", "12x" };
	const char *a3[] = { "u", "--bucket", "b", "--ring-size", "3M" };
	const char *a4[] = { "u", "--bucket", "b", "--log-level", "loud" };
	const char *a5[] = { "u", "--bucket", "b", "--no-such-flag" };
	const char *a6[] = { "u", "--bucket", "b", "--endpoint", "ftp://x" };
	const char *a7[] = { "u", "--bucket", "b", "--ring-size", "1M", "--max-message", "512K" };
	const char *a8[] = { "u", "--bucket", "b", "stray" };
	const char *a9[] = { "u", "--bucket" };
	const char *a10[] = { "u", "--bucket", "b", "--endpoint", "http://h:9000/some/path" };
	const char *a11[] = { "u", "--bucket", "b", "--endpoint", "http://h:9000/" };
	const char *a12[] = { "u", "--bucket", "b", "--workers", "4097" };
	const char *ok[] = { "u", "--bucket", "b", "--workers", "4096" };

	(void)state;
	clear_env();
	assert_int_equal(load(&c, 5, a1), -EINVAL);
	assert_non_null(strstr(err, "workers"));
	assert_int_equal(load(&c, 5, a2), -EINVAL);
	assert_non_null(strstr(err, "workers"));
	assert_int_equal(load(&c, 5, a12), -EINVAL);
	assert_non_null(strstr(err, "workers"));
	assert_int_equal(load(&c, 5, ok), 0);
	assert_int_equal(c.workers, 4096);
	assert_int_equal(load(&c, 5, a3), -EINVAL);
	assert_non_null(strstr(err, "power of two"));
	assert_int_equal(load(&c, 5, a4), -EINVAL);
	assert_non_null(strstr(err, "log-level"));
	assert_int_equal(load(&c, 4, a5), -EINVAL);
	assert_non_null(strstr(err, "--no-such-flag"));
	assert_int_equal(load(&c, 5, a6), -EINVAL);
	assert_int_equal(load(&c, 7, a7), -EINVAL);
	assert_non_null(strstr(err, "max-message"));
	assert_int_equal(load(&c, 4, a8), -EINVAL);
	assert_int_equal(load(&c, 2, a9), -EINVAL);
	assert_int_equal(load(&c, 5, a10), -EINVAL);
	assert_non_null(strstr(err, "must not have a path"));
	assert_int_equal(load(&c, 5, a11), 0);
}

static void
sizes_take_binary_suffixes(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(config_parse_size("65536", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(config_parse_size("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(config_parse_size("64MiB", &v), 0);
	assert_int_equal(v, 64 << 20);
	assert_int_equal(config_parse_size("1g", &v), 0);
	assert_int_equal(v, 1 << 30);
	assert_int_equal(config_parse_size("", &v), -EINVAL);
	assert_int_equal(config_parse_size("-1", &v), -EINVAL);
	assert_int_equal(config_parse_size("12Q", &v), -EINVAL);
	assert_int_equal(config_parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(config_parse_size("99999999999G", &v), -EINVAL);
}

static void
flags_override_environment_which_overrides_the_file(void **state)
{
	struct config c;
	char path[] = "/tmp/test-config-XXXXXX";
	int fd = mkstemp(path);
	const char *text = "# uploader settings\n"
	    "bucket = from-file\n"
	    "region = eu-west-1\n"
	    "workers = 3\n"
	    "  key_prefix = \"logs/\"  \n"
	    "; another comment\n"
	    "path-style = true\n";
	const char *argv[] = { "u", "--config", path, "--workers", "5" };

	(void)state;
	clear_env();
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	setenv("AWS_REGION", "ap-south-1", 1);
	assert_int_equal(load(&c, 5, argv), 0);
	assert_string_equal(c.bucket, "from-file");
	assert_string_equal(c.region, "ap-south-1");
	assert_int_equal(c.workers, 5);
	assert_string_equal(c.key_prefix, "logs/");
	assert_true(c.path_style);
	clear_env();
	unlink(path);
}

static void
endpoint_env_prefers_the_s3_specific_variable(void **state)
{
	struct config c;
	const char *argv[] = { "u", "--bucket", "b" };

	(void)state;
	clear_env();
	setenv("AWS_ENDPOINT_URL", "http://generic:1", 1);
	setenv("AWS_ENDPOINT_URL_S3", "http://s3:2", 1);
	setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
	assert_int_equal(load(&c, 3, argv), 0);
	assert_string_equal(c.endpoint, "http://s3:2");
	assert_string_equal(c.region, "us-west-2");
	clear_env();
}

static void
config_file_errors_name_the_file_and_line(void **state)
{
	struct config c;
	const char *t1 = "bucket = b\nthis line has no equals\n";
	const char *t2 = "bucket = b\n\nworkers = many\n";
	const char *t3 = "frobnicate = 1\n";
	const char *t4 = "replay = /tmp\n";

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_parse_file_text(&c, t1, strlen(t1), "u.conf", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "u.conf:2: expected 'key = value'");
	assert_int_equal(config_parse_file_text(&c, t2, strlen(t2), "u.conf", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "u.conf:3: workers"));
	assert_int_equal(config_parse_file_text(&c, t3, strlen(t3), "u.conf", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown setting"));
	assert_int_equal(config_parse_file_text(&c, t4, strlen(t4), "u.conf", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_parse_file_text(&c, "a\0b", 3, "u.conf", err, sizeof(err)), -EINVAL);
}

static void
prefix_sections_hold_object_options_for_their_keys(void **state)
{
	struct config c;
	const char *t = "bucket = b\ncache-control = max-age=60\nmeta = team=x\n"
	    "[prefix \"logs/\"]\ncontent-type = text/plain; charset=utf-8\n"
	    "tag = env=prod\n[prefix raw/]\nstorage_class = GLACIER_IR\n"
	    "[prefix \"logs/\"]\ncontent-encoding = gzip\n";

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_parse_file_text(&c, t, strlen(t), "u.conf", err, sizeof(err)), 0);
	assert_int_equal(c.nobj, 3);
	assert_string_equal(c.obj[0].cache_control, "max-age=60");
	assert_string_equal(c.obj[0].meta[0].name, "team");
	assert_string_equal(c.obj[1].prefix, "logs/");
	assert_string_equal(c.obj[1].content_type, "text/plain; charset=utf-8");
	assert_string_equal(c.obj[1].content_encoding, "gzip"); /* a repeated section continues */
	assert_string_equal(c.obj[1].tags[0].value, "prod");
	assert_string_equal(c.obj[2].prefix, "raw/");
	assert_string_equal(c.obj[2].storage_class, "GLACIER_IR");
}

static void
a_prefix_section_takes_only_object_options(void **state)
{
	struct config c;
	const char *t1 = "[prefix \"logs/\"]\nworkers = 4\n";
	const char *t2 = "[bucket x]\n";
	const char *t3 = "[prefix \"\"]\n";
	const char *t4 = "[prefix p/]\nstorage-class = FAST\n";

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_parse_file_text(&c, t1, strlen(t1), "u.conf", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "u.conf:2: 'workers' is not an object option"));
	assert_int_equal(config_parse_file_text(&c, t2, strlen(t2), "u.conf", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "u.conf:1: unknown section"));
	assert_int_equal(config_parse_file_text(&c, t3, strlen(t3), "u.conf", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_parse_file_text(&c, t4, strlen(t4), "u.conf", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "u.conf:2: storage-class"));
}

static void
object_options_work_as_flags_and_are_validated_together(void **state)
{
	struct config c;
	const char *ok[] = { "u", "--bucket", "b", "--content-type", "application/x-ndjson",
		"--tag", "a=1", "--tag", "b=2", "--sse", "aws:kms", "--sse-kms-key-id", "alias/k" };
	const char *bad[] = { "u", "--bucket", "b", "--sse-kms-key-id", "alias/k" };

	(void)state;
	clear_env();
	assert_int_equal(load(&c, 13, ok), 0);
	assert_string_equal(c.obj[0].content_type, "application/x-ndjson");
	assert_int_equal(c.obj[0].ntags, 2);
	assert_int_equal(load(&c, 5, bad), -EINVAL);
	assert_non_null(strstr(err, "need sse = aws:kms"));
}

static void
reload_applies_run_time_settings_and_names_the_rest(void **state)
{
	static struct config live, fresh;
	char applied[256], restart[256];

	(void)state;
	config_defaults(&live);
	fresh = live;
	config_reload_diff(&live, &fresh, applied, restart, sizeof(applied));
	assert_string_equal(applied, "");
	assert_string_equal(restart, "");

	fresh.max_attempts = 3;
	fresh.workers = 16;
	snprintf(fresh.bucket, sizeof(fresh.bucket), "other");
	snprintf(fresh.log_level, sizeof(fresh.log_level), "debug");
	assert_int_equal(objopts_set(&fresh.obj[0], "acl", "bucket-owner-full-control",
	    err, sizeof(err)), 0);
	config_reload_diff(&live, &fresh, applied, restart, sizeof(applied));
	assert_string_equal(applied, "log-level,object options,max-attempts");
	assert_string_equal(restart, "bucket,workers");

	config_apply_runtime(&live, &fresh);
	assert_int_equal(live.max_attempts, 3);
	assert_string_equal(live.log_level, "debug");
	assert_string_equal(live.obj[0].acl, "bucket-owner-full-control");
	assert_int_equal(live.workers, 64);          /* needs a restart: kept */
	assert_string_equal(live.bucket, "");
}

static void
missing_config_file_is_an_error(void **state)
{
	struct config c;
	const char *argv[] = { "u", "--config", "/nonexistent/s3ring.conf" };

	(void)state;
	clear_env();
	assert_int_equal(load(&c, 3, argv), -EINVAL);
	assert_non_null(strstr(err, "/nonexistent/s3ring.conf"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_apply_when_only_the_bucket_is_given),
		cmocka_unit_test(missing_bucket_is_a_usage_error),
		cmocka_unit_test(bad_values_are_refused_with_the_setting_named),
		cmocka_unit_test(sizes_take_binary_suffixes),
		cmocka_unit_test(flags_override_environment_which_overrides_the_file),
		cmocka_unit_test(endpoint_env_prefers_the_s3_specific_variable),
		cmocka_unit_test(config_file_errors_name_the_file_and_line),
		cmocka_unit_test(prefix_sections_hold_object_options_for_their_keys),
		cmocka_unit_test(a_prefix_section_takes_only_object_options),
		cmocka_unit_test(object_options_work_as_flags_and_are_validated_together),
		cmocka_unit_test(reload_applies_run_time_settings_and_names_the_rest),
		cmocka_unit_test(missing_config_file_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
