/* test_crc32c.c -- tests for common/crc32c.c against published vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"

/* RFC 3720 (iSCSI) appendix B.4, and the customary "123456789" check. */
static void
crc_matches_rfc3720_vectors(void **state)
{
	uint8_t b[32];

	(void)state;
	memset(b, 0, sizeof(b));
	assert_int_equal(crc32c(0, b, 32), 0x8a9136aa);
	assert_int_equal(crc32c_sw(0, b, 32), 0x8a9136aa);
	memset(b, 0xff, sizeof(b));
	assert_int_equal(crc32c(0, b, 32), 0x62a8ab43);
	assert_int_equal(crc32c_sw(0, b, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	assert_int_equal(crc32c(0, b, 32), 0x46dd794e);
	assert_int_equal(crc32c_sw(0, b, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	assert_int_equal(crc32c(0, b, 32), 0x113fdb5c);
	assert_int_equal(crc32c_sw(0, b, 32), 0x113fdb5c);
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(crc32c(0, "", 0), 0);
}

static void
hardware_and_table_agree_on_every_length_and_alignment(void **state)
{
	static uint8_t b[4096 + 16];

	(void)state;
	srandom(1);
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)random();
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len < 300; len++)
			assert_int_equal(crc32c(0, b + off, len), crc32c_sw(0, b + off, len));
	assert_int_equal(crc32c(0, b, 4096), crc32c_sw(0, b, 4096));
}

/* Long buffers go through three interleaved streams, joined by shifts:
 * every length around the stream boundaries (3 x 64, 3 x 336 and
 * 3 x 2,048 bytes, and their sums) gives the table's CRC, from any start
 * value and alignment. */
static void
interleaved_streams_agree_with_the_table(void **state)
{
	static uint8_t b[5 * 6144 + 16];
	const size_t edges[] = { 192, 384, 1008, 1024, 1200, 2016, 6144, 7152, 12288,
	    5 * 6144 };

	(void)state;
	srandom(2);
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)random();
	for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++)
		for (size_t len = edges[e] - 9; len <= edges[e] + 9; len++)
			for (size_t off = 0; off < 8; off += 3)
				assert_int_equal(crc32c(0x12345678, b + off, len),
				    crc32c_sw(0x12345678, b + off, len));
	for (size_t len = 0; len < 2000; len += 7)
		assert_int_equal(crc32c(0, b, len), crc32c_sw(0, b, len));
}

static void
crc_can_be_extended_piecewise(void **state)
{
	const char *s = "The quick brown fox jumps over the lazy dog";
	uint32_t whole = crc32c(0, s, strlen(s));

	(void)state;
	assert_int_equal(whole, 0x22620404);
	for (size_t cut = 0; cut <= strlen(s); cut++)
		assert_int_equal(crc32c(crc32c(0, s, cut), s + cut, strlen(s) - cut), whole);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc_matches_rfc3720_vectors),
		cmocka_unit_test(hardware_and_table_agree_on_every_length_and_alignment),
		cmocka_unit_test(crc_can_be_extended_piecewise),
		cmocka_unit_test(interleaved_streams_agree_with_the_table),
	};

	print_message("crc32c: %s\n", crc32c_hw_available() ? "SSE4.2" : "table");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
