/* fuzz_config.c -- libFuzzer harness for the uploader's config-file parser */
/*
 * config_parse_file_text() reads `key = value` lines from an exact-size,
 * unterminated buffer. Whatever the bytes, it must stay inside them,
 * return 0 or -EINVAL, leave every string setting NUL-terminated within its
 * buffer, keep every numeric setting inside the range the option table
 * allows, and name the file in a one-line error message when it fails.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ring_layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static void
check_str(const char *s, size_t cap)
{
	CHECK(strnlen(s, cap) < cap);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[CONFIG_ERR_MAX];
	char *text;
	int rc;

	/* An exact-size heap copy: ASan flags any read past the end. */
	text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	config_defaults(&c);
	memset(err, 0, sizeof(err));
	rc = config_parse_file_text(&c, text, size, "fuzz.conf", err, sizeof(err));
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc != 0) {
		CHECK(err[0] != '\0');
		CHECK(strnlen(err, sizeof(err)) < sizeof(err));
		CHECK(strchr(err, '\n') == NULL);
		CHECK(strstr(err, "fuzz.conf") != NULL);
	}
	check_str(c.ring, sizeof(c.ring));
	check_str(c.bucket, sizeof(c.bucket));
	check_str(c.endpoint, sizeof(c.endpoint));
	check_str(c.region, sizeof(c.region));
	check_str(c.key_prefix, sizeof(c.key_prefix));
	check_str(c.spool, sizeof(c.spool));
	check_str(c.ca_file, sizeof(c.ca_file));
	check_str(c.log_level, sizeof(c.log_level));
	check_str(c.replay, sizeof(c.replay));
	check_str(c.config_file, sizeof(c.config_file));
	CHECK(c.workers >= 1 && c.workers <= 4096);
	CHECK(c.multipart_threshold == 0 || c.multipart_threshold >= (5u << 20));
	CHECK(c.part_size >= (5u << 20) && c.part_size <= (5ull << 30));
	CHECK(c.multipart_parallel >= 1 && c.multipart_parallel <= 64);
	CHECK(c.max_attempts >= 1 && c.max_attempts <= 1000000);
	CHECK(c.recheck_s >= 1 && c.recheck_s <= 86400);
	CHECK(c.max_age_s <= 30 * 86400);
	CHECK(c.ring_size >= RING_MIN_CAPACITY && c.ring_size <= RING_MAX_CAPACITY &&
	    (c.ring_size & (c.ring_size - 1)) == 0);
	CHECK(c.max_message <= RING_MAX_CAPACITY / 8);
	CHECK((c.ring_mode & 0600) == 0600 && c.ring_mode <= 0777);
	free(text);
	return 0;
}
