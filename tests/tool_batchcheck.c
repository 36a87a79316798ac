/* tool_batchcheck.c -- a test tool: checks what batch objects hold.
 *
 *   tool_batchcheck FRAMING PROCS MSGS PREFIX MINLEN MAXLEN FILE...
 *
 * Each FILE is one batch object, decompressed. FRAMING is "length" (the
 * messages of tool_produce) or "lines" (those of tool_produce with
 * S3RING_TEST_TEXT=1, whose lines start with their key). Every message
 * PREFIXp<p>/<seq> for p < PROCS and 1 <= seq <= MSGS must be found exactly
 * once across the files, with its bytes, and within one file the messages
 * of one producer must come in the order they were put. Prints one line of
 * figures; exit 0 if all holds, 1 if not (the first few faults are named).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testbody.h"

static unsigned procs;
static unsigned long msgs;
static size_t minlen, maxlen;
static const char *prefix;
static uint8_t *seen;           /* procs * msgs counts */
static unsigned long faults, found, twice, unknown;
static uint8_t *want;

static int lines;

static void
fault(const char *what, const char *where, unsigned long n)
{
	if (faults++ < 10)
		fprintf(stderr, "tool_batchcheck: %s: %s (%lu)\n", where, what, n);
}

/* One message of file f: its key (klen bytes) and body. last[] holds the
 * last seq per producer within this file. */
static void
message(const char *f, const char *key, size_t klen, const uint8_t *body,
    size_t blen, unsigned long *last)
{
	char k[1100];
	unsigned p;
	unsigned long seq;
	size_t plen = strlen(prefix);
	int used = 0;

	if (klen >= sizeof(k) || klen < plen || memcmp(key, prefix, plen) != 0) {
		unknown++;
		fault("a message whose key is not ours, bytes", f, (unsigned long)klen);
		return;
	}
	memcpy(k, key, klen);
	k[klen] = '\0';
	if (sscanf(k + plen, "p%u/%lu%n", &p, &seq, &used) != 2 || k[plen + (size_t)used] != '\0' ||
	    p >= procs || seq < 1 || seq > msgs) {
		unknown++;
		fault("unknown key at message", f, found);
		return;
	}
	size_t wl = lines ? testbody_text(want, p, seq, minlen, maxlen, k) :
	    testbody_fill(want, p, seq, minlen, maxlen);
	if (wl != blen || memcmp(want, body, blen) != 0)
		fault("wrong bytes", k, seq);
	if (seq <= last[p])
		fault("out of order within its object, after", k, last[p]);
	last[p] = seq;
	found++;
	if (seen[(size_t)p * msgs + (seq - 1)]++ != 0) {
		twice++;
		fault("found again", k, seq);
	}
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *b = NULL;
	size_t cap = 0, n = 0, r;

	if (fp == NULL)
		return NULL;
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 20;
			uint8_t *nb = realloc(b, cap);
			if (nb == NULL) {
				free(b);
				fclose(fp);
				return NULL;
			}
			b = nb;
		}
		r = fread(b + n, 1, cap - n, fp);
		n += r;
	} while (r > 0);
	fclose(fp);
	*len = n;
	return b;
}

static void
check_length(const char *f, const uint8_t *b, size_t n, unsigned long *last)
{
	size_t i = 0;

	while (i < n) {
		if (n - i < 2) {
			fault("truncated at byte", f, (unsigned long)i);
			return;
		}
		size_t kl = (size_t)b[i] << 8 | b[i + 1];
		if (n - i - 2 < kl + 4) {
			fault("truncated at byte", f, (unsigned long)i);
			return;
		}
		const uint8_t *q = b + i + 2 + kl;
		size_t bl = (size_t)q[0] << 24 | (size_t)q[1] << 16 | (size_t)q[2] << 8 | q[3];
		if (n - i - 2 - kl - 4 < bl) {
			fault("truncated at byte", f, (unsigned long)i);
			return;
		}
		message(f, (const char *)b + i + 2, kl, q + 4, bl, last);
		i += 2 + kl + 4 + bl;
	}
}

static void
check_lines(const char *f, const uint8_t *b, size_t n, unsigned long *last)
{
	size_t i = 0;

	while (i < n) {
		const uint8_t *nl = memchr(b + i, '\n', n - i);
		size_t ll = nl ? (size_t)(nl - (b + i)) : n - i;
		const uint8_t *sp = memchr(b + i, ' ', ll);

		if (nl == NULL)
			fault("last line without its newline, byte", f, (unsigned long)i);
		if (sp == NULL)
			fault("a line without a key, byte", f, (unsigned long)i);
		else
			message(f, (const char *)b + i, (size_t)(sp - (b + i)), b + i, ll, last);
		i += ll + 1;
	}
}

int
main(int argc, char **argv)
{
	unsigned long missing = 0;

	if (argc < 7) {
		fprintf(stderr, "usage: tool_batchcheck length|lines PROCS MSGS PREFIX MINLEN MAXLEN FILE...\n");
		return 2;
	}
	lines = strcmp(argv[1], "lines") == 0;
	procs = (unsigned)strtoul(argv[2], NULL, 10);
	msgs = strtoul(argv[3], NULL, 10);
	prefix = argv[4];
	minlen = strtoul(argv[5], NULL, 10);
	maxlen = strtoul(argv[6], NULL, 10);
	seen = calloc((size_t)procs * msgs + 1, 1);
	want = malloc(maxlen + 1100);
	if (seen == NULL || want == NULL)
		return 2;
	for (int a = 7; a < argc; a++) {
		unsigned long *last = calloc(procs + 1, sizeof(*last));
		size_t n = 0;
		uint8_t *b = slurp(argv[a], &n);

		if (b == NULL || last == NULL) {
			fprintf(stderr, "tool_batchcheck: %s: %s\n", argv[a], strerror(errno));
			return 2;
		}
		if (lines)
			check_lines(argv[a], b, n, last);
		else
			check_length(argv[a], b, n, last);
		free(b);
		free(last);
	}
	for (size_t i = 0; i < (size_t)procs * msgs; i++)
		if (seen[i] == 0 && missing++ < 5)
			fprintf(stderr, "tool_batchcheck: missing %sp%lu/%lu\n", prefix,
			    (unsigned long)(i / msgs), (unsigned long)(i % msgs + 1));
	printf("objects=%d messages=%lu found=%lu missing=%lu twice=%lu unknown=%lu faults=%lu\n",
	    argc - 7, (unsigned long)procs * msgs, found, missing, twice, unknown, faults);
	return missing == 0 && twice == 0 && unknown == 0 && faults == 0 ? 0 : 1;
}
