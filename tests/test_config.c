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

#include "batch_key.h"
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

/* ------------------------------------------------------------ batch rules */

static int
parse(struct config *c, const char *text)
{
	config_defaults(c);
	return config_parse_file_text(c, text, strlen(text), "u.conf", err, sizeof(err));
}

/* Writes text to a new temporary file; path (a "/tmp/...XXXXXX" buffer)
 * gets its name. */
static void
write_conf(char *path, const char *text)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
batch_section_sets_every_field(void **state)
{
	static struct config c;
	const char *t = "bucket = b\n"
	    "[batch \"logs/\"]\n"
	    "max-bytes = 64M\n"
	    "max_age = 10000\n"
	    "framing = length\n"
	    "compression = gzip\n"
	    "level = 9\n"
	    "key = \"logs/%Y/%m/%d/%H/{host}-{ring}-{pos}{ext}\"\n";

	(void)state;
	assert_int_equal(parse(&c, t), 0);
	assert_int_equal(c.nbatch, 1);
	assert_string_equal(c.batch[0].prefix, "logs/");
	assert_int_equal(c.batch[0].max_bytes, 64 << 20);
	assert_int_equal(c.batch[0].max_age_ms, 10000);
	assert_int_equal(c.batch[0].framing, BATCH_FRAME_LENGTH);
	assert_int_equal(c.batch[0].compression, BATCH_COMP_GZIP);
	assert_int_equal(c.batch[0].level, 9);
	assert_string_equal(c.batch[0].key, "logs/%Y/%m/%d/%H/{host}-{ring}-{pos}{ext}");
	assert_int_equal(c.nobj, 1); /* no object rule came of it */
	assert_int_equal(config_check_batch(&c, err, sizeof(err)), 0);
}

static void
batch_defaults_apply_to_a_bare_section(void **state)
{
	static struct config c;

	(void)state;
	assert_int_equal(parse(&c, "[batch metrics/]\n"), 0);
	assert_int_equal(c.nbatch, 1);
	assert_string_equal(c.batch[0].prefix, "metrics/");
	assert_int_equal(c.batch[0].max_bytes, 16 << 20);
	assert_int_equal(c.batch[0].max_age_ms, 5000);
	assert_int_equal(c.batch[0].framing, BATCH_FRAME_LINES);
	assert_int_equal(c.batch[0].compression, BATCH_COMP_ZSTD);
	assert_int_equal(c.batch[0].level, 0);
	assert_string_equal(c.batch[0].key, BATCH_KEY_DEFAULT);
	assert_int_equal(c.batch_flushes, 2);
}

static void
a_repeated_batch_section_continues_its_rule(void **state)
{
	static struct config c;
	const char *t = "[batch \"logs/\"]\ncompression = gzip\n"
	    "[batch \"raw/\"]\nframing = length\n"
	    "[batch 'logs/']\nmax-bytes = 1K\n";

	(void)state;
	assert_int_equal(parse(&c, t), 0);
	assert_int_equal(c.nbatch, 2);
	assert_int_equal(c.batch[0].compression, BATCH_COMP_GZIP);
	assert_int_equal(c.batch[0].max_bytes, 1024);
	assert_int_equal(c.batch[1].framing, BATCH_FRAME_LENGTH);
}

static void
prefix_sections_keep_working_beside_batch_sections(void **state)
{
	static struct config c;
	const char *t = "cache-control = max-age=60\n"
	    "[prefix \"logs/\"]\ncontent-type = text/plain\n"
	    "[batch \"logs/\"]\ncompression = none\n"
	    "[prefix \"logs/\"]\ncontent-encoding = gzip\n";
	const char *t2 = "[batch \"logs/\"]\ncontent-type = text/plain\n";
	const char *t3 = "[prefix \"logs/\"]\ncompression = gzip\n";

	(void)state;
	assert_int_equal(parse(&c, t), 0);
	assert_int_equal(c.nobj, 2);
	assert_string_equal(c.obj[1].content_type, "text/plain");
	assert_string_equal(c.obj[1].content_encoding, "gzip");
	assert_int_equal(c.nbatch, 1);
	assert_int_equal(c.batch[0].compression, BATCH_COMP_NONE);
	/* A line belongs to the section it is in. */
	assert_int_equal(parse(&c, t2), -EINVAL);
	assert_non_null(strstr(err, "u.conf:2: [batch \"logs/\"]: unknown key 'content-type'"));
	assert_int_equal(parse(&c, t3), -EINVAL);
	assert_non_null(strstr(err, "u.conf:2: 'compression' is not an object option"));
}

static void
unknown_key_in_a_batch_section_is_rejected(void **state)
{
	static struct config c;
	const char *argv[] = { "u", "--bucket", "b", "--batch", "logs/:compression=gzip,colour=red" };

	(void)state;
	clear_env();
	assert_int_equal(parse(&c, "[batch \"logs/\"]\nworkers = 4\n"), -EINVAL);
	assert_string_equal(err, "u.conf:2: [batch \"logs/\"]: unknown key 'workers' "
	    "(the keys are max-bytes, max-age, framing, compression, level, key)");
	assert_int_equal(load(&c, 5, argv), -EINVAL);
	assert_non_null(strstr(err, "--batch \"logs/\": unknown key 'colour'"));
	assert_null(strchr(err, '\n'));
}

static void
nested_batch_prefixes_are_rejected(void **state)
{
	static struct config c;
	const char *nest[] = { "u", "--bucket", "b", "--batch", "logs/app/:", "--batch", "logs/:" };
	const char *all[] = { "u", "--bucket", "b", "--batch", ":", "--batch", "raw/:" };
	const char *alone[] = { "u", "--bucket", "b", "--batch", ":compression=gzip" };
	const char *apart[] = { "u", "--bucket", "b", "--batch", "logs/:", "--batch", "log/:",
		"--batch", "logs-old/:" };

	(void)state;
	clear_env();
	assert_int_equal(load(&c, 7, nest), -EINVAL);
	assert_string_equal(err, "batch rules \"logs/\" and \"logs/app/\" nest (\"logs/\" starts "
	    "\"logs/app/\"): a key must match one batch rule at most");
	assert_int_equal(load(&c, 7, all), -EINVAL);
	assert_non_null(strstr(err, "batch rule \"\" matches every key, so it must be the only batch rule"));
	assert_non_null(strstr(err, "\"raw/\""));
	assert_int_equal(load(&c, 5, alone), 0);
	assert_int_equal(c.nbatch, 1);
	assert_string_equal(c.batch[0].prefix, "");
	assert_int_equal(c.batch[0].compression, BATCH_COMP_GZIP);
	assert_int_equal(load(&c, 9, apart), 0);
	assert_int_equal(c.nbatch, 3);

	/* In the file as well, and a rule set built by hand with two equal
	 * prefixes (which no parser makes) is refused too. */
	assert_int_equal(parse(&c, "[batch a/b]\n[batch a/]\n"), 0);
	assert_int_equal(config_check_batch(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "\"a/\" and \"a/b\" nest"));
	assert_int_equal(parse(&c, "[batch a/]\n[batch b/]\n"), 0);
	c.batch[1] = c.batch[0];
	assert_int_equal(config_check_batch(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "batch rule \"a/\" is given twice"));
}

static void
batch_level_out_of_range_for_its_compression_is_rejected(void **state)
{
	static struct config c;
	const char *flag[] = { "u", "--bucket", "b", "--batch", "logs/:level=12,compression=gzip" };
	const char *ok[] = { "u", "--bucket", "b", "--batch", "logs/:level=19" };

	(void)state;
	clear_env();
	/* The level comes before the compression that refuses it: the check
	 * waits for the whole file and names the later line. */
	assert_int_equal(parse(&c, "[batch \"logs/\"]\nlevel = 15\nmax-age = 1s\ncompression = gzip\n"), -EINVAL);
	assert_string_equal(err, "u.conf:4: [batch \"logs/\"]: level 15 is out of range for gzip "
	    "(1 to 9, or 0 for its default)");
	assert_int_equal(parse(&c, "[batch \"logs/\"]\nlevel = 20\n"), -EINVAL);
	assert_non_null(strstr(err, "u.conf:2: [batch \"logs/\"]: level 20 is out of range for zstd (1 to 19"));
	assert_int_equal(parse(&c, "[batch x/]\ncompression = none\nlevel = 3\n"), -EINVAL);
	assert_non_null(strstr(err, "level 3 needs compression = gzip or zstd"));
	assert_int_equal(parse(&c, "[batch x/]\nlevel = 15\n[batch y/]\ncompression = gzip\n[batch x/]\ncompression = zstd\n"), 0);
	assert_int_equal(parse(&c, "[batch x/]\nlevel = -1\n"), -EINVAL);
	assert_int_equal(load(&c, 5, flag), -EINVAL);
	assert_non_null(strstr(err, "--batch \"logs/\": level 12 is out of range for gzip"));
	assert_int_equal(load(&c, 5, ok), 0);
	assert_int_equal(c.batch[0].level, 19);
}

static void
batch_flag_overrides_the_files_rule_of_the_same_prefix(void **state)
{
	static struct config c;
	char path[] = "/tmp/test-config-XXXXXX";
	const char *text = "bucket = b\n"
	    "[batch \"logs/\"]\ncompression = gzip\nlevel = 9\nmax-bytes = 1M\n"
	    "[batch \"raw/\"]\nframing = length\n";
	const char *argv[] = { "u", "--config", path, "--batch", "logs/:max-age=250,compression=none",
		"--batch", "app/:" };

	(void)state;
	clear_env();
	write_conf(path, text);
	assert_int_equal(load(&c, 7, argv), 0);
	unlink(path);
	assert_int_equal(c.nbatch, 3);
	/* The flag's rule is whole: the keys it leaves out are the defaults,
	 * not the file's. */
	assert_string_equal(c.batch[0].prefix, "logs/");
	assert_int_equal(c.batch[0].compression, BATCH_COMP_NONE);
	assert_int_equal(c.batch[0].level, 0);
	assert_int_equal(c.batch[0].max_age_ms, 250);
	assert_int_equal(c.batch[0].max_bytes, 16 << 20);
	assert_string_equal(c.batch[1].prefix, "raw/");
	assert_int_equal(c.batch[1].framing, BATCH_FRAME_LENGTH);
	assert_string_equal(c.batch[2].prefix, "app/");
	assert_int_equal(c.batch[2].compression, BATCH_COMP_ZSTD);
}

static void
a_later_batch_flag_replaces_an_earlier_one_of_the_same_prefix(void **state)
{
	static struct config c;
	const char *argv[] = { "u", "--bucket", "b", "--batch", "logs/:compression=gzip",
		"--batch", "logs/:framing=length" };

	(void)state;
	clear_env();
	assert_int_equal(load(&c, 7, argv), 0);
	assert_int_equal(c.nbatch, 1);
	assert_int_equal(c.batch[0].framing, BATCH_FRAME_LENGTH);
	assert_int_equal(c.batch[0].compression, BATCH_COMP_ZSTD);
}

static void
batch_flag_takes_every_key_and_spaces_around_them(void **state)
{
	static struct config c;
	const char *argv[] = { "u", "--bucket", "b", "--batch",
		"my logs/: max-bytes = 2G , max_age=2m,framing=lines,compression=ZSTD,level=3,"
		"key={prefix}{ring}/{pos}.ndjson{ext}" };

	(void)state;
	clear_env();
	assert_int_equal(load(&c, 5, argv), 0);
	assert_string_equal(c.batch[0].prefix, "my logs/");
	assert_int_equal(c.batch[0].max_bytes, 2ull << 30);
	assert_int_equal(c.batch[0].max_age_ms, 120000);
	assert_int_equal(c.batch[0].compression, BATCH_COMP_ZSTD);
	assert_int_equal(c.batch[0].level, 3);
	assert_string_equal(c.batch[0].key, "{prefix}{ring}/{pos}.ndjson{ext}");
}

static void
bad_batch_values_are_rejected_with_the_key_named(void **state)
{
	static struct config c;
	static const struct { const char *flag, *want; } cases[] = {
		{ "logs/:max-bytes=1023", "max-bytes: '1023' is not a size from 1K to 4G" },
		{ "logs/:max-bytes=5G", "max-bytes: '5G'" },
		{ "logs/:max-bytes=", "max-bytes: ''" },
		{ "logs/:max-age=9", "max-age: '9' is not a time from 10 ms to 24 h" },
		{ "logs/:max-age=86400001", "max-age: '86400001'" },
		{ "logs/:max-age=1441m", "max-age: '1441m'" },
		{ "logs/:max-age=5h", "max-age: '5h'" },
		{ "logs/:max-age=99999999999999999999999", "max-age: '9999" },
		{ "logs/:framing=csv", "framing: 'csv' is not lines or length" },
		{ "logs/:compression=lz4", "compression: 'lz4' is not none, gzip or zstd" },
		{ "logs/:level=x", "level: 'x' is not a compression level" },
		{ "logs/:key=logs/{ring}", "key: 'logs/{ring}': " },
		{ "logs/:compression=gzip,,level=1", "'' is not key=value" },
		{ "logs/:gzip", "'gzip' is not key=value" },
		{ "logs/", "'logs/' has no ':'" },
	};

	(void)state;
	clear_env();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[] = { "u", "--bucket", "b", "--batch", cases[i].flag };

		assert_int_equal(load(&c, 5, argv), -EINVAL);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("--batch %s: got \"%s\", want \"%s\"", cases[i].flag, err, cases[i].want);
		assert_non_null(strstr(err, "--batch"));
		assert_null(strchr(err, '\n'));
	}
	assert_int_equal(parse(&c, "[batch a/]\nmax-bytes = lots\n"), -EINVAL);
	assert_string_equal(err, "u.conf:2: [batch \"a/\"]: max-bytes: 'lots' is not a size from 1K to 4G");
	assert_int_equal(parse(&c, "[batch a/]\nmax-bytes = 4G\nmax-age = 86400000\n"), 0);
	assert_int_equal(c.batch[0].max_bytes, 4ull << 30);
	assert_int_equal(parse(&c, "[batch]\n"), -EINVAL);
	assert_non_null(strstr(err, "needs a prefix"));
}

static void
batch_max_age_is_milliseconds_or_takes_ms_s_and_m(void **state)
{
	static struct config c;

	(void)state;
	assert_int_equal(parse(&c, "[batch a/]\nmax-age = 10\n[batch b/]\nmax-age = 750ms\n"
	    "[batch c/]\nmax-age = 30s\n[batch d/]\nmax-age = 1440m\n"), 0);
	assert_int_equal(c.batch[0].max_age_ms, 10);
	assert_int_equal(c.batch[1].max_age_ms, 750);
	assert_int_equal(c.batch[2].max_age_ms, 30000);
	assert_int_equal(c.batch[3].max_age_ms, 86400000);
}

static void
batch_prefixes_must_be_utf8_without_controls_and_fit(void **state)
{
	static struct config c;
	char longp[300];
	const char *ctl[] = { "u", "--bucket", "b", "--batch", "a\tb:" };
	const char *bad8[] = { "u", "--bucket", "b", "--batch", "a\xff:" };
	const char *utf8[] = { "u", "--bucket", "b", "--batch", "journ\xc3\xa9" "e/:" };
	const char *lng[] = { "u", "--bucket", "b", "--batch", longp };

	(void)state;
	clear_env();
	assert_int_equal(load(&c, 5, ctl), -EINVAL);
	assert_string_equal(err, "--batch prefix \"a\\x09b\": not valid UTF-8, or a control character");
	assert_int_equal(load(&c, 5, bad8), -EINVAL);
	assert_non_null(strstr(err, "\"a\\xff\": not valid UTF-8"));
	assert_int_equal(load(&c, 5, utf8), 0);
	assert_string_equal(c.batch[0].prefix, "journ\xc3\xa9" "e/");
	memset(longp, 'p', 256);
	memcpy(longp + 256, ":", 2);
	assert_int_equal(load(&c, 5, lng), -EINVAL);
	assert_non_null(strstr(err, "longer than 255 bytes"));
	longp[255] = ':';
	longp[256] = '\0';
	assert_int_equal(load(&c, 5, lng), 0);
	assert_int_equal(strlen(c.batch[0].prefix), 255);
	assert_int_equal(parse(&c, "[batch \"a\x7f\"]\n"), -EINVAL);
	assert_non_null(strstr(err, "u.conf:1: batch prefix \"a\\x7f\""));
	assert_int_equal(parse(&c, "[batch \"\"]\n"), 0); /* every key */
	assert_int_equal(c.nbatch, 1);
	assert_string_equal(c.batch[0].prefix, "");
}

static void
too_many_batch_rules_are_rejected(void **state)
{
	enum { R = CONFIG_BATCH_RULES };
	static struct config c;
	char text[2048], flags[R + 1][16], want[96];
	const char *argv[3 + 2 * (R + 1)] = { "u", "--bucket", "b" };
	size_t n = 0;

	(void)state;
	clear_env();
	for (int i = 0; i < R; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[batch \"r%02d/\"]\n", i);
	assert_int_equal(parse(&c, text), 0);
	assert_int_equal(c.nbatch, R);
	snprintf(text + n, sizeof(text) - n, "[batch \"r00/\"]\n[batch \"extra/\"]\n");
	assert_int_equal(parse(&c, text), -EINVAL);
	snprintf(want, sizeof(want), "u.conf:%d: batch \"extra/\": more than %d batch rules",
	    R + 2, R);
	assert_string_equal(err, want);

	for (int i = 0; i <= R; i++) {
		snprintf(flags[i], sizeof(flags[i]), "f%02d/:", i);
		argv[3 + 2 * i] = "--batch";
		argv[4 + 2 * i] = flags[i];
	}
	assert_int_equal(load(&c, 3 + 2 * R, argv), 0);
	assert_int_equal(c.nbatch, R);
	assert_int_equal(load(&c, 3 + 2 * (R + 1), argv), -EINVAL);
	snprintf(want, sizeof(want), "--batch \"f%02d/\": more than %d batch rules", R, R);
	assert_non_null(strstr(err, want));
}

static void
batch_is_set_by_sections_not_by_a_file_setting(void **state)
{
	static struct config c;

	(void)state;
	assert_int_equal(parse(&c, "batch = logs/:compression=gzip\n"), -EINVAL);
	assert_non_null(strstr(err, "u.conf:1: 'batch' is the flag's form"));
}

static void
batch_flushes_is_a_setting_from_1_to_16(void **state)
{
	static struct config c;
	const char *ok[] = { "u", "--bucket", "b", "--batch-flushes", "16" };
	const char *zero[] = { "u", "--bucket", "b", "--batch-flushes", "0" };
	const char *big[] = { "u", "--bucket", "b", "--batch-flushes", "17" };

	(void)state;
	clear_env();
	assert_int_equal(load(&c, 5, ok), 0);
	assert_int_equal(c.batch_flushes, 16);
	assert_int_equal(load(&c, 5, zero), -EINVAL);
	assert_non_null(strstr(err, "batch-flushes: '0' is not a number from 1 to 16"));
	assert_int_equal(load(&c, 5, big), -EINVAL);
	assert_int_equal(parse(&c, "batch_flushes = 5\n"), 0);
	assert_int_equal(c.batch_flushes, 5);
}

static void
reload_applies_batch_rules_and_batch_flushes(void **state)
{
	static struct config live, fresh;
	char applied[256], restart[256];

	(void)state;
	assert_int_equal(parse(&live, "[batch \"logs/\"]\nkey = {prefix}x-{ring}-{pos}-long\n"), 0);
	/* The same rule, reached by another way: no change. */
	assert_int_equal(parse(&fresh, "[batch \"logs/\"]\nkey = {prefix}{ring}-{pos}\n"
	    "[batch \"logs/\"]\nkey = {prefix}x-{ring}-{pos}-long\n"), 0);
	config_reload_diff(&live, &fresh, applied, restart, sizeof(applied));
	assert_string_equal(applied, "");
	assert_string_equal(restart, "");

	assert_int_equal(parse(&fresh, "batch-flushes = 4\n[batch \"logs/\"]\ncompression = gzip\n"
	    "[batch \"raw/\"]\n"), 0);
	config_reload_diff(&live, &fresh, applied, restart, sizeof(applied));
	assert_string_equal(applied, "batch,batch-flushes");
	assert_string_equal(restart, "");
	config_apply_runtime(&live, &fresh);
	assert_int_equal(live.nbatch, 2);
	assert_int_equal(live.batch[0].compression, BATCH_COMP_GZIP);
	assert_string_equal(live.batch[1].prefix, "raw/");
	assert_int_equal(live.batch_flushes, 4);
	config_reload_diff(&live, &fresh, applied, restart, sizeof(applied));
	assert_string_equal(applied, "");

	assert_int_equal(parse(&fresh, "[batch \"logs/\"]\ncompression = gzip\n"), 0);
	fresh.batch_flushes = 4;
	config_reload_diff(&live, &fresh, applied, restart, sizeof(applied));
	assert_string_equal(applied, "batch"); /* a rule removed */
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
		cmocka_unit_test(batch_section_sets_every_field),
		cmocka_unit_test(batch_defaults_apply_to_a_bare_section),
		cmocka_unit_test(a_repeated_batch_section_continues_its_rule),
		cmocka_unit_test(prefix_sections_keep_working_beside_batch_sections),
		cmocka_unit_test(unknown_key_in_a_batch_section_is_rejected),
		cmocka_unit_test(nested_batch_prefixes_are_rejected),
		cmocka_unit_test(batch_level_out_of_range_for_its_compression_is_rejected),
		cmocka_unit_test(batch_flag_overrides_the_files_rule_of_the_same_prefix),
		cmocka_unit_test(a_later_batch_flag_replaces_an_earlier_one_of_the_same_prefix),
		cmocka_unit_test(batch_flag_takes_every_key_and_spaces_around_them),
		cmocka_unit_test(bad_batch_values_are_rejected_with_the_key_named),
		cmocka_unit_test(batch_max_age_is_milliseconds_or_takes_ms_s_and_m),
		cmocka_unit_test(batch_prefixes_must_be_utf8_without_controls_and_fit),
		cmocka_unit_test(too_many_batch_rules_are_rejected),
		cmocka_unit_test(batch_is_set_by_sections_not_by_a_file_setting),
		cmocka_unit_test(batch_flushes_is_a_setting_from_1_to_16),
		cmocka_unit_test(reload_applies_batch_rules_and_batch_flushes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
