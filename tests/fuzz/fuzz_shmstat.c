/* fuzz_shmstat.c -- libFuzzer harness: shmstat's snapshot and renderers over arbitrary ring images.
 *
 * Input layout: 1 byte of mode, then the ring image itself (header, then a
 * 64 KiB data region), zero-filled past the input. The mode bits repair
 * parts of the image so that the fuzzer spends its time past the checks
 * that reject almost every random input:
 *   bit 0  valid geometry: magic, version, header size, 64 KiB capacity
 *   bit 1  head, cursor and tail brought into range (offsets kept)
 *   bit 2  a walk budget of the next byte's value, to reach the cut-off
 * The snapshot must never read outside the image, never loop, and whatever
 * the image holds, the JSON it renders must be valid (checked here by a
 * strict RFC 8259 validator) and the text and Prometheus output printable:
 * ASCII, and UTF-8 where a batch prefix was printable UTF-8 in the ring.
 *
 * Seeds in tests/fuzz/corpus/shmstat/ are real ring images made with the
 * ring code (`build/tests/test_shmstat ring seeds DIR`).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ring.h"
#include "tools/shmstat.h"
#include "utf8.h"


#define CAP RING_MIN_CAPACITY
#define IMAGE_LEN (RING_HEADER_SIZE + CAP)

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

static uint8_t *image;
static struct shmstat_snap fsnap;

/* ------------------------------------------- a strict JSON validator */

struct js {
	const unsigned char *p, *end;
	int depth;
};

static int js_value(struct js *j);

static void
js_ws(struct js *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' ||
	    *j->p == '\t'))
		j->p++;
}

static int
js_string(struct js *j)
{
	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	while (j->p < j->end) {
		unsigned char c = *j->p;
		if (c == '"') {
			j->p++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (++j->p >= j->end)
				return -1;
			if (*j->p == 'u') {
				for (int k = 1; k <= 4; k++)
					if (j->p + k >= j->end || !((j->p[k] >= '0' && j->p[k] <= '9') ||
					    (j->p[k] >= 'a' && j->p[k] <= 'f') ||
					    (j->p[k] >= 'A' && j->p[k] <= 'F')))
						return -1;
				j->p += 5;
			} else if (strchr("\"\\/bfnrt", *j->p) != NULL && *j->p != '\0') {
				j->p++;
			} else {
				return -1;
			}
			continue;
		}
		if (c >= 0x80) {
			size_t k = shmstat_utf8_seq(j->p, (size_t)(j->end - j->p));
			if (k == 0)
				return -1; /* invalid UTF-8 (or a raw U+2028) */
			j->p += k;
			continue;
		}
		j->p++;
	}
	return -1;
}

static int
js_number(struct js *j)
{
	const unsigned char *s = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return -1;
	if (*j->p == '0')
		j->p++;
	else
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return -1;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	return j->p > s ? 0 : -1;
}

static int
js_lit(struct js *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return -1;
	j->p += n;
	return 0;
}

static int
js_container(struct js *j, char close, bool object)
{
	j->p++;
	if (++j->depth > 16)
		return -1;
	js_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		js_ws(j);
		if (object) {
			if (js_string(j) < 0)
				return -1;
			js_ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return -1;
		}
		if (js_value(j) < 0)
			return -1;
		js_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p++ != close)
			return -1;
		j->depth--;
		return 0;
	}
}

static int
js_value(struct js *j)
{
	js_ws(j);
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '{': return js_container(j, '}', true);
	case '[': return js_container(j, ']', false);
	case '"': return js_string(j);
	case 't': return js_lit(j, "true");
	case 'f': return js_lit(j, "false");
	case 'n': return js_lit(j, "null");
	default: return js_number(j);
	}
}

static void
must_be_json(const char *buf, size_t len)
{
	struct js j = { (const unsigned char *)buf, (const unsigned char *)buf + len, 0 };

	if (js_value(&j) < 0)
		abort();
	js_ws(&j);
	if (j.p != j.end)
		abort();
}

static void
must_be_printable(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c != '\n' && (c < 0x20 || c >= 0x7f))
			abort();
	}
}

/* Printable UTF-8: nothing a terminal or a line-oriented reader could take
 * for a control (C0, DEL, C1, U+2028, U+2029) but the newlines. */
static void
must_be_printable_utf8(const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t k = utf8_seq(p + i, len - i, &cp);

		if (k == 0 || (cp != '\n' && (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) ||
		    cp == 0x2028 || cp == 0x2029)))
			abort();
		i += k;
	}
}

/* ---------------------------------------------------------- harness */

static void
render_all(const struct shmstat_snap *s)
{
	static const struct shmstat_check_cfg cfg = { 80, 10000, 0 };
	struct shmstat_rates r;
	char *buf = NULL, line[1024];
	size_t len = 0;
	FILE *f;

	shmstat_rates(&r, s, s, 1.0);
	f = open_memstream(&buf, &len);
	shmstat_render_json(f, s, &r);
	fclose(f);
	must_be_json(buf, len);
	free(buf);

	f = open_memstream(&buf, &len);
	shmstat_render_text(f, s);
	shmstat_render_watch_line(f, s, &r, true);
	shmstat_render_prometheus(f, s);
	fclose(f);
	must_be_printable_utf8(buf, len);
	free(buf);

	(void)shmstat_check(s, &cfg, line, sizeof(line));
	must_be_printable(line, strlen(line));
}

int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	struct shmstat_env env = { .now_mono_ns = UINT64_C(1) << 50,
	    .now_real_ns = UINT64_C(1) << 60 };
	struct ring_header *h;
	uint8_t mode = 0;

	if (image == NULL) {
		image = mmap(NULL, IMAGE_LEN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (image == MAP_FAILED)
			abort();
	}
	if (n > 0) {
		mode = in[0];
		in++;
		n--;
	}
	if (n > IMAGE_LEN)
		n = IMAGE_LEN;
	memcpy(image, in, n);
	memset(image + n, 0, IMAGE_LEN - n);
	h = (struct ring_header *)image;

	if (mode & 1) {
		atomic_store(&h->magic, RING_MAGIC);
		h->layout_version = RING_LAYOUT_VERSION;
		h->header_size = RING_HEADER_SIZE;
		h->capacity = CAP;
		if (h->max_message == 0 || h->max_message > CAP / 8)
			h->max_message = CAP / 8;
		h->max_producers = RING_MAX_PRODUCERS;
	}
	if (mode & 2) {
		uint64_t head = RING_POS_BASE + (atomic_load(&h->head) & ~(uint64_t)63 &
		    ((UINT64_C(1) << 30) - 1));
		uint64_t used = (atomic_load(&h->tail) % (CAP + 1)) & ~(uint64_t)63;
		uint64_t off = used ? (atomic_load(&h->cursor) % (used + 1)) & ~(uint64_t)63 : 0;
		atomic_store(&h->head, head);
		atomic_store(&h->tail, head + used);
		atomic_store(&h->cursor, head + off);
	}
	if ((mode & 4) && n > 0)
		env.walk_budget = in[0];
	/* Zero-length and odd lengths too: the snapshot must reject them. */
	if (shmstat_snapshot(&fsnap, (mode & 8) ? "\"\\\x01\xff" : "fuzz", image,
	    (mode & 16) ? n : IMAGE_LEN, &env) == 0)
		render_all(&fsnap);
	return 0;
}
