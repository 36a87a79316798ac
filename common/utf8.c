/* utf8.c -- strict UTF-8 decoding of one sequence.
 *
 * One decoder for every place that judges bytes from another process: key
 * validation in the ring, and the JSON and text escaping of shmstat.
 */
#include "utf8.h"

size_t
utf8_seq(const unsigned char *s, size_t n, uint32_t *cpp)
{
	unsigned char c = s[0];
	size_t need;
	uint32_t cp;

	if (c < 0x80) {
		if (cpp != NULL)
			*cpp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		cp = c & 0x07;
	} else {
		return 0; /* a continuation byte, an overlong lead, > U+10FFFF */
	}
	if (n <= need)
		return 0;
	for (size_t k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (cpp != NULL)
		*cpp = cp;
	return need + 1;
}
