/* test_batch_codec.c -- tests uploader/batch_codec.c: each framing with each
 * compression read back by zlib, libzstd and the command-line tools, parts
 * cut anywhere, the bound, and the refusals. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "batch_codec.h"

#define GUARD 64 /* bytes after cap that must stay untouched */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

struct msg {
	const char *key;
	const void *body;
	size_t len;
};

/* A growing byte buffer, for the test's own expectations only. */
struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static void
bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* The framing, written out independently of the codec. */
static void
frame_expect(struct bytes *b, enum batch_framing f, const struct msg *m)
{
	const uint8_t *body = m->body;
	size_t kl = strlen(m->key);
	uint8_t h[4];

	if (f == BATCH_FRAME_LINES) {
		bytes_add(b, m->body, m->len);
		if (m->len == 0 || body[m->len - 1] != '\n')
			bytes_add(b, "\n", 1);
		return;
	}
	h[0] = kl >> 8, h[1] = kl;
	bytes_add(b, h, 2);
	bytes_add(b, m->key, kl);
	h[0] = m->len >> 24, h[1] = m->len >> 16, h[2] = m->len >> 8, h[3] = m->len;
	bytes_add(b, h, 4);
	bytes_add(b, m->body, m->len);
}

static void
gunzip(const struct bytes *in, struct bytes *out)
{
	uint8_t buf[65536];
	z_stream z;
	int rc;

	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = in->p;
	z.avail_in = (uInt)in->len;
	do {
		z.next_out = buf;
		z.avail_out = sizeof(buf);
		rc = inflate(&z, Z_NO_FLUSH);
		assert_true(rc == Z_OK || rc == Z_STREAM_END);
		bytes_add(out, buf, sizeof(buf) - z.avail_out);
	} while (rc != Z_STREAM_END);
	assert_int_equal(z.avail_in, 0); /* one member, nothing after it */
	inflateEnd(&z);
}

static void
unzstd(const struct bytes *in, struct bytes *out)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer i = { in->p, in->len, 0 };
	uint8_t buf[65536];
	size_t left;

	assert_non_null(d);
	do {
		ZSTD_outBuffer o = { buf, sizeof(buf), 0 };

		left = ZSTD_decompressStream(d, &o, &i);
		assert_false(ZSTD_isError(left));
		bytes_add(out, buf, o.pos);
	} while (left != 0 || i.pos < i.size);
	ZSTD_freeDCtx(d);
}

static void
decompress(enum batch_compression comp, const struct bytes *in,
    struct bytes *out)
{
	if (comp == BATCH_COMP_GZIP)
		gunzip(in, out);
	else if (comp == BATCH_COMP_ZSTD)
		unzstd(in, out);
	else
		bytes_add(out, in->p, in->len);
}

/* Encodes msgs as the header's example does, into a part buffer of
 * part_cap bytes (0: a random size for each part, and parts handed on at
 * random too), and concatenates the parts into stream. */
static void
encode(struct batch_codec *c, enum batch_framing f, const struct msg *m,
    size_t n, size_t part_cap, struct bytes *stream, size_t *framed)
{
	size_t max = part_cap ? part_cap : 2u << 20;
	uint8_t *buf = malloc(max);
	struct batch_out out = { buf, 0, part_cap };

	assert_non_null(buf);
	*framed = 0;
	assert_int_equal(batch_codec_begin(c), 0);
	for (size_t i = 0; i <= n; i++) {
		size_t kl = i < n ? strlen(m[i].key) : 0;
		size_t bl = i < n ? m[i].len : 0;
		size_t need = batch_codec_bound(c, kl, bl);

		if (out.cap - out.len < need || (part_cap == 0 && rng() % 7 == 0)) {
			bytes_add(stream, out.buf, out.len);
			out.len = 0;
			if (part_cap == 0)
				out.cap = need + rng() % (max - need + 1);
		}
		assert_true(out.cap - out.len >= need);
		if (i == n) {
			assert_int_equal(batch_codec_end(c, &out), 0);
		} else {
			long r = batch_codec_put(c, f, m[i].key, kl, m[i].body, bl, &out);

			assert_true(r >= (long)bl);
			*framed += (size_t)r;
		}
	}
	bytes_add(stream, out.buf, out.len);
	free(buf);
}

/* Encodes, decodes and compares with the framing done by hand. */
static void
round_trip(enum batch_compression comp, int level, enum batch_framing f,
    const struct msg *m, size_t n, size_t part_cap)
{
	struct batch_codec *c = batch_codec_new(comp, level);
	struct bytes want = { 0 }, stream = { 0 }, got = { 0 };
	size_t framed;

	assert_non_null(c);
	for (size_t i = 0; i < n; i++)
		frame_expect(&want, f, &m[i]);
	encode(c, f, m, n, part_cap, &stream, &framed);
	decompress(comp, &stream, &got);
	assert_int_equal(framed, want.len);
	assert_int_equal(got.len, want.len);
	assert_true(want.len == 0 || memcmp(got.p, want.p, want.len) == 0);
	batch_codec_free(c);
	free(want.p);
	free(stream.p);
	free(got.p);
}

/* A log line of about 100 bytes, with the varying numbers of a real one. */
static size_t
log_line(char *buf, size_t cap, uint64_t i)
{
	uint64_t r = rng();

	return (size_t)snprintf(buf, cap,
	    "10.%u.%u.%u - - [01/Dec/2026:18:%02u:%02u +0000] \"GET /api/v1/items/%u HTTP/1.1\" %u %u\n",
	    (unsigned)(r & 0xff), (unsigned)(r >> 8 & 0xff), (unsigned)(r >> 16 & 0xff),
	    (unsigned)(i / 60 % 60), (unsigned)(i % 60), (unsigned)(r >> 24 & 0xfffff),
	    r >> 44 & 1 ? 200u : 404u, (unsigned)(r >> 45 & 0xffff));
}

/* Many messages: log lines (about half without their newline), then an
 * empty body, a body of 1 MiB of random bytes, and some that end with a
 * newline. The caller frees *store and *m. */
static size_t
make_msgs(struct msg **m, char **store, size_t nlines)
{
	size_t n = nlines + 4, off = 0, big = 1u << 20;
	char *s = malloc(nlines * 128 + big);
	struct msg *v = calloc(n, sizeof(*v));

	assert_non_null(s);
	assert_non_null(v);
	for (size_t i = 0; i < nlines; i++) {
		size_t len = log_line(s + off, 128, i);

		v[i] = (struct msg){ i % 3 ? "logs/app" : "k", s + off, len - (i & 1) };
		off += len;
	}
	for (size_t i = 0; i < big; i++)
		s[off + i] = (char)rng();
	v[nlines] = (struct msg){ "empty", "", 0 };
	v[nlines + 1] = (struct msg){ "big/one", s + off, big };
	v[nlines + 2] = (struct msg){ "nl", "\n", 1 };
	v[nlines + 3] = (struct msg){ "", "two lines\nend\n", 14 };
	*m = v;
	*store = s;
	return n;
}

static const enum batch_compression comps[] = {
	BATCH_COMP_NONE, BATCH_COMP_GZIP, BATCH_COMP_ZSTD
};
static const enum batch_framing framings[] = {
	BATCH_FRAME_LINES, BATCH_FRAME_LENGTH
};

/* The messages of make_msgs(), made once for the group. */
static struct msg *msgs;
static char *msg_store;
static size_t nmsgs;

static int
msgs_make(void **state)
{
	nmsgs = make_msgs(&msgs, &msg_store, 20000);
	return 0;
}

static int
msgs_free(void **state)
{
	free(msgs);
	free(msg_store);
	return 0;
}

static void
round_trip_all(const struct msg *m, size_t n, size_t part_cap)
{
	for (size_t ci = 0; ci < 3; ci++)
		for (size_t fi = 0; fi < 2; fi++)
			round_trip(comps[ci], 0, framings[fi], m, n, part_cap);
}

static void
every_framing_and_compression_round_trips(void **state)
{
	round_trip_all(msgs, nmsgs, 4u << 20);
	/* The last four alone (an empty body, 1 MiB, newlines), and none. */
	for (size_t i = nmsgs - 4; i < nmsgs; i++)
		round_trip_all(msgs + i, 1, 4u << 20);
	round_trip_all(msgs, 0, 4u << 20);
}

static void
parts_cut_anywhere_concatenate_to_one_stream(void **state)
{
	round_trip_all(msgs, nmsgs, 0);
	/* The smallest part buffer that fits the largest bound. */
	round_trip_all(msgs, nmsgs, (1u << 20) + (200u << 10));
}

static void
levels_at_both_ends_round_trip(void **state)
{
	round_trip(BATCH_COMP_GZIP, 1, BATCH_FRAME_LINES, msgs, nmsgs, 0);
	round_trip(BATCH_COMP_GZIP, 9, BATCH_FRAME_LENGTH, msgs, nmsgs, 0);
	round_trip(BATCH_COMP_ZSTD, 1, BATCH_FRAME_LINES, msgs, nmsgs, 0);
	round_trip(BATCH_COMP_ZSTD, 19, BATCH_FRAME_LENGTH, msgs + nmsgs - 3000, 3000, 0);
}

static void
fill_guard(uint8_t *p)
{
	memset(p, 0xa5, GUARD);
}

static void
assert_guard(const uint8_t *p)
{
	for (size_t i = 0; i < GUARD; i++)
		assert_int_equal(p[i], 0xa5);
}

/* Gives each put exactly its bound as room, the guard bytes right after:
 * no put may be refused, add more than the bound, or touch the guard. */
static void
bound_holds(enum batch_compression comp, int level, const struct msg *m,
    size_t n)
{
	struct batch_codec *c = batch_codec_new(comp, level);
	size_t max = 4u << 20;
	uint8_t *buf = malloc(max + GUARD);
	struct batch_out out = { buf, 0, 0 };
	struct bytes stream = { 0 }, got = { 0 };

	assert_non_null(c);
	assert_non_null(buf);
	for (size_t i = 0; i <= n; i++) {
		size_t kl = i < n ? strlen(m[i].key) : 0;
		size_t bl = i < n ? m[i].len : 0;
		size_t need = batch_codec_bound(c, kl, bl), len0;

		if (max - out.len < need) {
			bytes_add(&stream, buf, out.len);
			out.len = 0;
		}
		out.cap = out.len + need;
		fill_guard(buf + out.cap);
		len0 = out.len;
		if (i < n)
			assert_true(batch_codec_put(c, BATCH_FRAME_LENGTH, m[i].key, kl,
			    m[i].body, bl, &out) > 0);
		else
			assert_int_equal(batch_codec_end(c, &out), 0);
		assert_true(out.len - len0 <= need);
		assert_guard(buf + out.cap);
	}
	bytes_add(&stream, buf, out.len);
	decompress(comp, &stream, &got); /* and it is still a valid stream */
	batch_codec_free(c);
	free(buf);
	free(stream.p);
	free(got.p);
}

static void
room_of_the_bound_is_always_enough(void **state)
{
	/* Random bodies of up to 300 KiB: incompressible, so each block comes
	 * out at its largest, and across the compressors' block sizes. */
	size_t nr = 40, off = 0;
	struct msg *r = calloc(nr, sizeof(*r));
	char *rs = malloc(nr * 300 * 1024);

	assert_non_null(r);
	assert_non_null(rs);
	for (size_t i = 0; i < nr; i++) {
		size_t len = rng() % (300 * 1024);

		for (size_t j = 0; j < len; j++)
			rs[off + j] = (char)rng();
		r[i] = (struct msg){ "rand", rs + off, len };
		off += len;
	}
	for (size_t ci = 0; ci < 3; ci++) {
		bound_holds(comps[ci], 0, msgs, nmsgs);
		bound_holds(comps[ci], 0, r, nr);
	}
	bound_holds(BATCH_COMP_GZIP, 1, r, nr);
	bound_holds(BATCH_COMP_GZIP, 9, msgs, nmsgs);
	bound_holds(BATCH_COMP_ZSTD, 1, r, nr);
	bound_holds(BATCH_COMP_ZSTD, 19, r, 8);
	free(r);
	free(rs);
}

static void
less_room_than_the_bound_gives_enobufs_and_nothing_past_cap(void **state)
{
	uint8_t buf[4096 + GUARD];
	char body[1000];

	memset(body, 'x', sizeof(body));
	for (size_t ci = 0; ci < 3; ci++) {
		struct batch_codec *c = batch_codec_new(comps[ci], 0);
		struct batch_out out = { buf, 0, 0 };
		size_t need = batch_codec_bound(c, 3, sizeof(body));

		assert_non_null(c);
		out.cap = need - 1 < 4096 ? need - 1 : 4096;
		fill_guard(buf + out.cap);
		assert_int_equal(batch_codec_put(c, BATCH_FRAME_LENGTH, "key", 3, body,
		    sizeof(body), &out), -ENOBUFS);
		assert_guard(buf + out.cap);
		out.cap = 0;
		fill_guard(buf);
		assert_int_equal(batch_codec_end(c, &out), -ENOBUFS);
		assert_guard(buf);
		batch_codec_free(c);
	}
}

static void
a_level_out_of_range_gives_null(void **state)
{
	static const struct { enum batch_compression comp; int level; } bad[] = {
		{ BATCH_COMP_GZIP, -1 }, { BATCH_COMP_GZIP, 10 },
		{ BATCH_COMP_ZSTD, -1 }, { BATCH_COMP_ZSTD, 20 },
		{ BATCH_COMP_NONE, 1 }, { (enum batch_compression)7, 0 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_null(batch_codec_new(bad[i].comp, bad[i].level));
		assert_int_equal(errno, EINVAL);
	}
	batch_codec_free(NULL);
}

/* Sanitizers and valgrind reserve address space of their own, so a limit
 * on it says nothing about the codec there. */
static bool
address_space_is_ours(void)
{
	const char *pre = getenv("LD_PRELOAD");

	return !SANITIZED && (pre == NULL || strstr(pre, "vgpreload") == NULL);
}

/* A child whose address space is capped 32 MiB above its size: zstd at
 * level 19 needs some 90 MiB, and must be refused by batch_codec_new()
 * (libzstd would otherwise allocate at the first put), where level 1 needs
 * under 2 MiB and fits. */
static void
memory_is_refused_by_new_not_by_a_put(void **state)
{
	int status;
	pid_t pid;

	if (!address_space_is_ours())
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned long pages = 0;
		FILE *f = fopen("/proc/self/statm", "r");
		struct batch_codec *c;
		struct rlimit rl;

		if (f == NULL || fscanf(f, "%lu", &pages) != 1)
			_exit(2);
		fclose(f);
		rl.rlim_cur = rl.rlim_max = pages * (unsigned long)sysconf(_SC_PAGESIZE) +
		    (32ul << 20);
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(3);
		errno = 0;
		if (batch_codec_new(BATCH_COMP_ZSTD, 19) != NULL || errno != ENOMEM)
			_exit(4);
		c = batch_codec_new(BATCH_COMP_ZSTD, 1);
		_exit(c != NULL ? 0 : 5);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Two objects from one codec: the second holds only its own message. */
static void
begin_after_end_starts_a_fresh_stream(void **state)
{
	struct msg a = { "a", "first object", 12 }, b = { "b", "second", 6 };

	for (size_t ci = 0; ci < 3; ci++) {
		struct batch_codec *c = batch_codec_new(comps[ci], 0);
		struct bytes s1 = { 0 }, s2 = { 0 }, got = { 0 };
		size_t framed;
		uint8_t buf[1 << 18];
		struct batch_out out = { buf, 0, sizeof(buf) };

		assert_non_null(c);
		encode(c, BATCH_FRAME_LINES, &a, 1, 1u << 20, &s1, &framed);
		/* A stream dropped half-way leaves nothing in the next. */
		assert_int_equal(batch_codec_begin(c), 0);
		assert_true(batch_codec_put(c, BATCH_FRAME_LINES, "x", 1, "dropped", 7, &out) > 0);
		encode(c, BATCH_FRAME_LINES, &b, 1, 1u << 20, &s2, &framed);
		decompress(comps[ci], &s2, &got);
		assert_int_equal(got.len, 7);
		assert_memory_equal(got.p, "second\n", 7);
		batch_codec_free(c);
		free(s1.p);
		free(s2.p);
		free(got.p);
	}
}

/* A codec and an output buffer of 256 KiB, for the small cases. */
static uint8_t small_buf[1 << 18];

static struct batch_codec *
codec_with_buf(enum batch_compression comp, struct batch_out *out)
{
	struct batch_codec *c = batch_codec_new(comp, 0);

	assert_non_null(c);
	*out = (struct batch_out){ small_buf, 0, sizeof(small_buf) };
	return c;
}

static void
put_or_end_after_the_end_is_refused(void **state)
{
	struct batch_out out;
	struct batch_codec *c = codec_with_buf(BATCH_COMP_ZSTD, &out);

	assert_int_equal(batch_codec_end(c, &out), 0);
	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LINES, "k", 1, "b", 1, &out), -EINVAL);
	assert_int_equal(batch_codec_end(c, &out), -EINVAL);
	assert_int_equal(batch_codec_begin(c), 0);
	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LINES, "k", 1, "b", 1, &out), 2);
	batch_codec_free(c);
}

static void
length_framing_refuses_a_key_over_65535_bytes(void **state)
{
	static char key[65536];
	struct batch_out out;
	struct batch_codec *c = codec_with_buf(BATCH_COMP_NONE, &out);

	memset(key, 'k', sizeof(key));
	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LENGTH, key, sizeof(key), "b", 1, &out),
	    -EINVAL);
	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LENGTH, key, sizeof(key) - 1, "b", 1, &out),
	    6 + 65535 + 1);
	assert_int_equal(out.buf[0], 0xff);
	assert_int_equal(out.buf[1], 0xff);
	assert_int_equal(batch_codec_put(c, (enum batch_framing)2, "k", 1, "b", 1, &out), -EINVAL);
	batch_codec_free(c);
}

/* The framing byte for byte, uncompressed: the count put returns is what
 * it added. */
static void
framing_is_exactly_as_documented(void **state)
{
	static const uint8_t want[] = "one\ntwo\n\n"
	    "\x00\x02" "ab" "\x00\x00\x00\x03" "x\ny" "\x00\x00" "\x00\x00\x00\x00";
	struct batch_out out;
	struct batch_codec *c = codec_with_buf(BATCH_COMP_NONE, &out);

	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LINES, "k", 1, "one", 3, &out), 4);
	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LINES, "k", 1, "two\n", 4, &out), 4);
	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LINES, "k", 1, "", 0, &out), 1);
	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LENGTH, "ab", 2, "x\ny", 3, &out), 11);
	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LENGTH, "", 0, NULL, 0, &out), 6);
	assert_int_equal(batch_codec_end(c, &out), 0);
	assert_int_equal(out.len, sizeof(want) - 1);
	assert_memory_equal(out.buf, want, sizeof(want) - 1);
	batch_codec_free(c);
}

static void
zstd_frame_carries_a_content_checksum(void **state)
{
	struct batch_out out;
	struct batch_codec *c = codec_with_buf(BATCH_COMP_ZSTD, &out);

	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LINES, "k", 1, "hello", 5, &out), 6);
	assert_int_equal(batch_codec_end(c, &out), 0);
	assert_memory_equal(out.buf, "\x28\xb5\x2f\xfd", 4);
	assert_true(out.buf[4] & 0x04); /* Frame_Header_Descriptor: Content_Checksum_flag */
	batch_codec_free(c);
}

/* Writes stream to a temporary file and reads it back through cmd. */
static void
tool_reads(const char *tool, const struct bytes *stream, const struct bytes *want)
{
	char path[] = "/tmp/test_batch_codec.XXXXXX", cmd[128];
	struct bytes got = { 0 };
	uint8_t buf[65536];
	size_t n;
	FILE *p;
	int fd;

	if (system("command -v zstd >/dev/null && command -v gzip >/dev/null") != 0) {
		print_message("zstd or gzip is not installed: the tool check is skipped\n");
		return;
	}
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, stream->p, stream->len), (ssize_t)stream->len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s -dc %s", tool, path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		bytes_add(&got, buf, n);
	assert_int_equal(pclose(p), 0);
	unlink(path);
	assert_int_equal(got.len, want->len);
	assert_memory_equal(got.p, want->p, want->len);
	free(got.p);
}

static void
the_zstd_and_gzip_tools_read_the_output(void **state)
{
	struct bytes want = { 0 };
	size_t framed;

	for (size_t i = 0; i < nmsgs; i++)
		frame_expect(&want, BATCH_FRAME_LINES, &msgs[i]);
	for (size_t ci = 1; ci < 3; ci++) {
		struct batch_codec *c = batch_codec_new(comps[ci], 0);
		struct bytes stream = { 0 };

		assert_non_null(c);
		encode(c, BATCH_FRAME_LINES, msgs, nmsgs, 0, &stream, &framed);
		tool_reads(comps[ci] == BATCH_COMP_ZSTD ? "zstd -q" : "gzip", &stream, &want);
		batch_codec_free(c);
		free(stream.p);
	}
	free(want.p);
}

/* Frames msgs into a stage of stage_cap bytes with batch_frame(), and
 * writes each full stage with batch_codec_write(); a message larger than
 * the stage goes by batch_codec_put() (as batch.c does). */
static void
encode_staged(struct batch_codec *c, enum batch_framing f, const struct msg *m,
    size_t n, size_t stage_cap, struct bytes *stream, size_t *framed)
{
	size_t cap = 8u << 20, staged = 0;
	uint8_t *buf = malloc(cap), *stage = malloc(stage_cap);
	struct batch_out out = { buf, 0, cap };

	assert_non_null(buf);
	assert_non_null(stage);
	*framed = 0;
	assert_int_equal(batch_codec_begin(c), 0);
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(m[i].key);
		long r = batch_frame(f, m[i].key, kl, m[i].body, m[i].len,
		    stage + staged, stage_cap - staged);

		if (r == -ENOBUFS) {
			assert_int_equal(batch_codec_write(c, stage, staged, &out), 0);
			staged = 0;
			r = batch_frame(f, m[i].key, kl, m[i].body, m[i].len, stage, stage_cap);
			if (r == -ENOBUFS)
				r = batch_codec_put(c, f, m[i].key, kl, m[i].body, m[i].len, &out);
			else
				staged = (size_t)r;
		} else {
			staged += (size_t)r;
		}
		assert_true(r >= (long)m[i].len);
		*framed += (size_t)r;
		if (out.len > (4u << 20)) {
			bytes_add(stream, out.buf, out.len);
			out.len = 0;
		}
	}
	assert_int_equal(batch_codec_write(c, stage, staged, &out), 0);
	assert_int_equal(batch_codec_end(c, &out), 0);
	bytes_add(stream, out.buf, out.len);
	free(stage);
	free(buf);
}

static void
frame_then_write_is_the_stream_a_put_makes(void **state)
{
	for (size_t ci = 0; ci < 3; ci++) {
		for (size_t fi = 0; fi < 2; fi++) {
			struct batch_codec *c = batch_codec_new(comps[ci], 0);
			struct bytes want = { 0 }, stream = { 0 }, got = { 0 };
			size_t framed;

			assert_non_null(c);
			for (size_t i = 0; i < nmsgs; i++)
				frame_expect(&want, framings[fi], &msgs[i]);
			/* The messages include one of 1 MiB: larger than the stage. */
			encode_staged(c, framings[fi], msgs, nmsgs, 128u << 10, &stream, &framed);
			decompress(comps[ci], &stream, &got);
			assert_int_equal(framed, want.len);
			assert_int_equal(got.len, want.len);
			assert_memory_equal(got.p, want.p, want.len);
			batch_codec_free(c);
			free(want.p);
			free(stream.p);
			free(got.p);
		}
	}
}

static void
frame_into_too_little_room_gives_enobufs_and_writes_nothing(void **state)
{
	uint8_t dst[32 + GUARD];
	struct bytes want = { 0 };
	struct msg m = { "k/1", "0123456789", 10 };

	fill_guard(dst);
	/* lines: the body and a newline, 11 bytes; length: 2 + 3 + 4 + 10. */
	assert_int_equal(batch_frame(BATCH_FRAME_LINES, m.key, 3, m.body, 10, dst, 10), -ENOBUFS);
	assert_int_equal(batch_frame(BATCH_FRAME_LENGTH, m.key, 3, m.body, 10, dst, 18), -ENOBUFS);
	assert_guard(dst);
	/* A body that ends its own line still asks for the newline's room:
	 * its last byte is read from the copy (it may lie in shared memory). */
	assert_int_equal(batch_frame(BATCH_FRAME_LINES, m.key, 3, "x\n", 2, dst, 2), -ENOBUFS);
	assert_guard(dst);
	assert_int_equal(batch_frame(BATCH_FRAME_LINES, m.key, 3, "x\n", 2, dst, 3), 2);
	assert_memory_equal(dst, "x\n", 2);
	assert_int_equal(batch_frame(BATCH_FRAME_LENGTH, m.key, 3, m.body, 10, dst, 19), 19);
	frame_expect(&want, BATCH_FRAME_LENGTH, &m);
	assert_int_equal(want.len, 19);
	assert_memory_equal(dst, want.p, 19);
	assert_int_equal(batch_frame((enum batch_framing)7, m.key, 3, m.body, 10, dst, 32), -EINVAL);
	free(want.p);
}

static void
write_with_less_room_than_its_bound_gives_enobufs(void **state)
{
	static uint8_t in[200000];
	size_t cap = 1u << 20;
	uint8_t *buf = malloc(cap);

	assert_non_null(buf);
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)rng();
	for (size_t ci = 0; ci < 3; ci++) {
		struct batch_codec *c = batch_codec_new(comps[ci], 0);
		size_t need = batch_codec_bound_raw(c, sizeof(in));
		struct batch_out out = { buf, 0, need - 1 };

		assert_true(need >= sizeof(in));
		assert_int_equal(batch_codec_write(c, in, sizeof(in), &out), -ENOBUFS);
		assert_int_equal(out.len, 0);
		out.cap = need;
		/* Random bytes do not compress: the bound is what they need. */
		assert_int_equal(batch_codec_write(c, in, sizeof(in), &out), 0);
		assert_true(out.len <= need);
		batch_codec_free(c);
	}
	free(buf);
}

/* zstd compresses each write as a frame of its own, in one pass, and a run
 * of puts as one streamed frame; the frames read back as one stream, and
 * a write right after puts fits the bound with what the puts held back. */
static void
zstd_write_is_a_frame_of_its_own_and_the_frames_one_stream(void **state)
{
	static uint8_t a[300000], b[200000];
	size_t cap = 4u << 20, off = 0, nframes = 0;
	struct batch_out out = { malloc(cap), 0, 0 };
	struct batch_codec *c = batch_codec_new(BATCH_COMP_ZSTD, 0);
	struct bytes want = { 0 }, stream = { 0 }, got = { 0 };
	unsigned long long sizes[8];
	struct msg m = { "k/1", "a line", 6 };

	assert_non_null(out.buf);
	assert_non_null(c);
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)rng();
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)('a' + i % 7);
	assert_int_equal(batch_codec_begin(c), 0);
	out.cap = batch_codec_bound(c, 3, 6);
	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LINES, m.key, 3, m.body, 6, &out), 7);
	/* Random bytes: the put's frame held back, then a frame that does
	 * not compress, in exactly the bound's room. */
	out.cap = out.len + batch_codec_bound_raw(c, sizeof(a));
	assert_int_equal(batch_codec_write(c, a, sizeof(a), &out), 0);
	out.cap = cap;
	assert_int_equal(batch_codec_write(c, b, sizeof(b), &out), 0);
	assert_int_equal(batch_codec_put(c, BATCH_FRAME_LINES, m.key, 3, m.body, 6, &out), 7);
	assert_int_equal(batch_codec_end(c, &out), 0);
	while (off < out.len) {
		size_t n = ZSTD_findFrameCompressedSize(out.buf + off, out.len - off);

		assert_false(ZSTD_isError(n));
		assert_true(nframes < 8);
		sizes[nframes++] = ZSTD_getFrameContentSize(out.buf + off, out.len - off);
		off += n;
	}
	assert_int_equal(nframes, 4);
	assert_true(sizes[0] == ZSTD_CONTENTSIZE_UNKNOWN);
	assert_true(sizes[1] == sizeof(a));
	assert_true(sizes[2] == sizeof(b));
	assert_true(sizes[3] == ZSTD_CONTENTSIZE_UNKNOWN);
	frame_expect(&want, BATCH_FRAME_LINES, &m);
	bytes_add(&want, a, sizeof(a));
	bytes_add(&want, b, sizeof(b));
	frame_expect(&want, BATCH_FRAME_LINES, &m);
	bytes_add(&stream, out.buf, out.len);
	decompress(BATCH_COMP_ZSTD, &stream, &got);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.p, want.p, want.len);
	tool_reads("zstd -q", &stream, &want);
	/* A stream with nothing in it is still one (empty) frame. */
	out.len = 0;
	assert_int_equal(batch_codec_begin(c), 0);
	assert_int_equal(batch_codec_end(c, &out), 0);
	assert_int_equal(ZSTD_findFrameCompressedSize(out.buf, out.len), out.len);
	batch_codec_free(c);
	free(out.buf);
	free(want.p);
	free(stream.p);
	free(got.p);
}

static void
names_and_extensions_parse_back(void **state)
{
	enum batch_compression comp;
	enum batch_framing f;

	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(batch_compression_parse(batch_compression_name(comps[i]), &comp), 0);
		assert_int_equal(comp, comps[i]);
	}
	assert_string_equal(batch_compression_ext(BATCH_COMP_NONE), "");
	assert_string_equal(batch_compression_ext(BATCH_COMP_GZIP), ".gz");
	assert_string_equal(batch_compression_ext(BATCH_COMP_ZSTD), ".zst");
	assert_string_equal(batch_compression_name(BATCH_COMP_ZSTD), "zstd");
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(batch_framing_parse(batch_framing_name(framings[i]), &f), 0);
		assert_int_equal(f, framings[i]);
	}
	assert_string_equal(batch_framing_name(BATCH_FRAME_LENGTH), "length");
	assert_int_equal(batch_compression_parse("lz4", &comp), -EINVAL);
	assert_int_equal(batch_compression_parse("", &comp), -EINVAL);
	assert_int_equal(batch_framing_parse("json", &f), -EINVAL);
	assert_int_equal(batch_framing_parse(NULL, &f), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(framing_is_exactly_as_documented),
		cmocka_unit_test(every_framing_and_compression_round_trips),
		cmocka_unit_test(parts_cut_anywhere_concatenate_to_one_stream),
		cmocka_unit_test(levels_at_both_ends_round_trip),
		cmocka_unit_test(room_of_the_bound_is_always_enough),
		cmocka_unit_test(less_room_than_the_bound_gives_enobufs_and_nothing_past_cap),
		cmocka_unit_test(a_level_out_of_range_gives_null),
		cmocka_unit_test(memory_is_refused_by_new_not_by_a_put),
		cmocka_unit_test(begin_after_end_starts_a_fresh_stream),
		cmocka_unit_test(put_or_end_after_the_end_is_refused),
		cmocka_unit_test(length_framing_refuses_a_key_over_65535_bytes),
		cmocka_unit_test(zstd_frame_carries_a_content_checksum),
		cmocka_unit_test(the_zstd_and_gzip_tools_read_the_output),
		cmocka_unit_test(names_and_extensions_parse_back),
		cmocka_unit_test(frame_then_write_is_the_stream_a_put_makes),
		cmocka_unit_test(frame_into_too_little_room_gives_enobufs_and_writes_nothing),
		cmocka_unit_test(write_with_less_room_than_its_bound_gives_enobufs),
		cmocka_unit_test(zstd_write_is_a_frame_of_its_own_and_the_frames_one_stream),
	};

	return cmocka_run_group_tests(tests, msgs_make, msgs_free);
}
