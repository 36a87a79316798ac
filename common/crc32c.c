/* crc32c.c -- CRC-32C with the SSE4.2 instruction, or an 8-way slicing table.
 *
 * Both paths compute the reflected CRC-32C (polynomial 0x82f63b78) with the
 * customary pre- and post-inversion, so they are interchangeable and a CRC
 * started on one machine can be checked on another. The table is filled by a
 * constructor before main() runs, so nothing here allocates or initialises
 * lazily on the put path, and crc32c() is safe from any thread.
 */
#include "crc32c.h"

#include <string.h>

#define POLY 0x82f63b78u

/* crc32c_table[k][b]: the CRC of byte b followed by k zero bytes. */
static uint32_t crc32c_table[8][256];
static int crc32c_table_ready;

static void
crc32c_table_init(void)
{
	for (unsigned n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		crc32c_table[0][n] = c;
	}
	for (unsigned n = 0; n < 256; n++) {
		uint32_t c = crc32c_table[0][n];
		for (int k = 1; k < 8; k++) {
			c = crc32c_table[0][c & 0xff] ^ (c >> 8);
			crc32c_table[k][n] = c;
		}
	}
}

/* Runs before main() and before any thread exists, so the table is ready
 * and read-only by the time anyone calls crc32c_sw(). */
__attribute__((constructor)) static void
crc32c_init(void)
{
	crc32c_table_init();
	__atomic_store_n(&crc32c_table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t
crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	if (!__atomic_load_n(&crc32c_table_ready, __ATOMIC_ACQUIRE))
		crc32c_init(); /* only if called from another constructor */
	crc = ~crc;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc32c_table[7][w & 0xff] ^
		    crc32c_table[6][(w >> 8) & 0xff] ^
		    crc32c_table[5][(w >> 16) & 0xff] ^
		    crc32c_table[4][(w >> 24) & 0xff] ^
		    crc32c_table[3][(w >> 32) & 0xff] ^
		    crc32c_table[2][(w >> 40) & 0xff] ^
		    crc32c_table[1][(w >> 48) & 0xff] ^
		    crc32c_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}

int
crc32c_hw_available(void)
{
	return __builtin_cpu_supports("sse4.2");
}

uint32_t
crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (__builtin_cpu_supports("sse4.2"))
		return crc32c_hw(crc, buf, len);
	return crc32c_sw(crc, buf, len);
}
#else
int
crc32c_hw_available(void)
{
	return 0;
}

uint32_t
crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_sw(crc, buf, len);
}
#endif
