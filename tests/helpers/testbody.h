/* testbody.h -- deterministic message bodies for end-to-end tests. */
#ifndef S3RING_TESTBODY_H
#define S3RING_TESTBODY_H

#include <stddef.h>
#include <stdint.h>

/* Fills b with the body of message seq of producer proc: its length is
 * drawn from [minlen, maxlen] and its bytes from a PRNG seeded by both, so
 * a checker can regenerate it from the key alone. Returns the length. */
size_t testbody_fill(uint8_t *b, unsigned proc, unsigned long seq,
    size_t minlen, size_t maxlen);

/* The same as text for newline-delimited batches: the message's key, a
 * space, then lowercase letters up to the drawn length (at least the key
 * and the space), no newline. Returns the length. */
size_t testbody_text(uint8_t *b, unsigned proc, unsigned long seq,
    size_t minlen, size_t maxlen, const char *key);

/* The key of that message: PREFIXp<proc>/<seq>. Returns its length. */
int testbody_key(char *buf, size_t cap, const char *prefix, unsigned proc,
    unsigned long seq);

#endif
