/* fuzz_spool.c -- libFuzzer harness for the dead-letter spool parser */
/*
 * spool_parse() reads a spool file that may have been truncated, edited or
 * damaged on disk. Whatever the bytes, it must stay inside the exact-size
 * input and return 0 or -EBADMSG. On success the key and the body lie
 * inside the input, end exactly at its end, the key is a valid S3 key of
 * 1..RING_MAX_KEY bytes, and the reason is NUL-terminated within its cap.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_msg m;
	uint8_t *copy;
	int rc;

	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	rc = spool_parse(copy, size, &m);
	CHECK(rc == 0 || rc == -EBADMSG);
	if (rc == 0) {
		const uint8_t *k = (const uint8_t *)m.key;
		CHECK(k >= copy && k <= copy + size);
		CHECK(m.key_len >= 1 && m.key_len <= RING_MAX_KEY);
		CHECK(m.key_len <= (size_t)(copy + size - k));
		CHECK(m.body == k + m.key_len);
		CHECK(m.body + m.body_len == copy + size);
		CHECK(ring_key_valid(m.key, m.key_len));
		CHECK(strnlen(m.reason, sizeof(m.reason)) < sizeof(m.reason));
		/* The parser never writes the caller's bytes. */
		CHECK(memcmp(copy, data, size) == 0);
	}
	free(copy);
	return 0;
}
