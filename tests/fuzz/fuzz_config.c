/* fuzz_config.c -- libFuzzer harness for the uploader's config-file parser */
/*
 * config_parse_file_text() reads `key = value` lines from an exact-size,
 * unterminated buffer. Whatever the bytes, it must stay inside them,
 * return 0 or -EINVAL, leave every string setting NUL-terminated within its
 * buffer, keep every numeric setting inside the range the option table
 * allows, and name the file in a one-line error message when it fails.
 *
 * After the first "\0\0" the input is --batch flag values, one per NUL:
 * they are applied over the file's rules as config_load() would, and a
 * rule set that config_check_batch() accepts must then hold rules whose
 * every field is in range and of which no prefix starts another.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ring_layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define FLAGS_MAX 4

static void
check_str(const char *s, size_t cap)
{
	CHECK(strnlen(s, cap) < cap);
}

static void
check_batch_rule(const struct batch_rule *r, bool complete)
{
	static const int level_max[] = { 0, 9, 19 };

	check_str(r->prefix, sizeof(r->prefix));
	check_str(r->key, sizeof(r->key));
	CHECK(r->max_bytes >= 1024 && r->max_bytes <= (4ull << 30));
	CHECK(r->max_age_ms >= 10 && r->max_age_ms <= 86400000);
	CHECK(r->framing == BATCH_FRAME_LINES || r->framing == BATCH_FRAME_LENGTH);
	CHECK((unsigned)r->compression <= BATCH_COMP_ZSTD);
	CHECK(r->level >= 0 && r->level <= 99);
	CHECK(strstr(r->key, "{ring}") != NULL && strstr(r->key, "{pos}") != NULL);
	if (complete)
		CHECK(r->level <= level_max[r->compression]);
}

/* Applies the --batch values in flags[0..nflags) (NUL-separated copies)
 * to c, then checks the whole set. */
static void
apply_flags(struct config *c, char *flags, size_t len)
{
	char err[CONFIG_ERR_MAX];
	size_t i = 0;

	for (unsigned k = 0; k < FLAGS_MAX && i < len; k++) {
		const char *v = flags + i;

		i += strlen(v) + 1;
		memset(err, 0, sizeof(err));
		if (config_set(c, "batch", v, err, sizeof(err)) != 0) {
			CHECK(err[0] != '\0' && strnlen(err, sizeof(err)) < sizeof(err));
			return;
		}
	}
	memset(err, 0, sizeof(err));
	if (config_check_batch(c, err, sizeof(err)) != 0) {
		CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
		return;
	}
	CHECK(c->nbatch <= CONFIG_BATCH_RULES);
	for (unsigned a = 0; a < c->nbatch; a++) {
		check_batch_rule(&c->batch[a], true);
		for (unsigned b = 0; b < c->nbatch; b++) {
			size_t la = strlen(c->batch[a].prefix);

			if (a != b)
				CHECK(strncmp(c->batch[a].prefix, c->batch[b].prefix, la) != 0);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[CONFIG_ERR_MAX];
	char *text, *flags = NULL;
	const uint8_t *sep = memmem(data, size, "\0\0", 2);
	size_t tlen = sep != NULL ? (size_t)(sep - data) : size;
	int rc;

	/* An exact-size heap copy: ASan flags any read past the end. */
	text = malloc(tlen ? tlen : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, tlen);
	config_defaults(&c);
	memset(err, 0, sizeof(err));
	rc = config_parse_file_text(&c, text, tlen, "fuzz.conf", err, sizeof(err));
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
	CHECK(c.batch_flushes >= 1 && c.batch_flushes <= 16);
	CHECK(c.nbatch <= CONFIG_BATCH_RULES);
	for (unsigned k = 0; k < c.nbatch; k++)
		check_batch_rule(&c.batch[k], rc == 0);
	if (rc == 0 && sep != NULL) {
		size_t flen = size - tlen - 2;

		flags = malloc(flen + 1);
		if (flags != NULL) {
			memcpy(flags, sep + 2, flen);
			flags[flen] = '\0';
			apply_flags(&c, flags, flen);
		}
	}
	free(flags);
	free(text);
	return 0;
}
