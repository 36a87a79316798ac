/* testbody.c -- deterministic message bodies for end-to-end tests. */
#include "testbody.h"

#include <stdio.h>
#include <string.h>

static uint32_t
xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

size_t
testbody_fill(uint8_t *b, unsigned proc, unsigned long seq, size_t minlen,
    size_t maxlen)
{
	uint32_t s = (uint32_t)(proc * 2654435761u) ^ (uint32_t)(seq * 40503u) ^ 0x9e3779b9u;
	size_t len;

	if (s == 0)
		s = 1;
	len = minlen + (maxlen > minlen ? xorshift(&s) % (maxlen - minlen + 1) : 0);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)xorshift(&s);
	return len;
}

size_t
testbody_text(uint8_t *b, unsigned proc, unsigned long seq, size_t minlen,
    size_t maxlen, const char *key)
{
	size_t len = testbody_fill(b, proc, seq, minlen, maxlen);
	size_t k = strlen(key);

	if (len < k + 1)
		len = k + 1;
	for (size_t i = k + 1; i < len; i++)
		b[i] = (uint8_t)('a' + b[i] % 26);
	memcpy(b, key, k);
	b[k] = ' ';
	return len;
}

int
testbody_key(char *buf, size_t cap, const char *prefix, unsigned proc,
    unsigned long seq)
{
	return snprintf(buf, cap, "%sp%u/%lu", prefix, proc, seq);
}
