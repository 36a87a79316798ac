/* utf8.h -- strict UTF-8 decoding of one sequence. */
#ifndef S3RING_UTF8_H
#define S3RING_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1 to 4) of the valid UTF-8 sequence at s, which has n >= 1
 * bytes, or 0 if it is not one: no overlong forms, no surrogates, nothing
 * above U+10FFFF. If cp is not NULL, the code point is stored there. */
size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp);

#endif
