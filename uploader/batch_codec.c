/* batch_codec.c -- frames messages and compresses them into one stream.
 *
 * Invariants: the codec never writes past out->cap, and a put or an end is
 * refused with -ENOBUFS, before anything is fed, when the room left is less
 * than batch_codec_bound(); so the bound is the one thing that must be
 * right, and each compressor's section says why its bound holds. The
 * codec's memory is the compressor's state, allocated once by
 * batch_codec_new() for the level: nothing grows per message or per stream.
 */
#include "batch_codec.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ZLIB_CONST
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#define GZIP_LEVEL_DEFAULT 6  /* gzip(1)'s */
#define ZSTD_LEVEL_DEFAULT 3  /* zstd(1)'s */
#define ZSTD_LEVEL_MAX     19 /* beyond, --ultra levels need windows of 128 MiB */

/* The length framing's header: 2 bytes of key length, 4 of body length.
 * The bound assumes it for every message (it is larger than the lines
 * framing's one newline), so it need not know the framing. */
#define LENGTH_HDR 6

enum codec_state {
	CODEC_OPEN,   /* puts and the end are accepted */
	CODEC_ENDED,  /* the trailer is written: begin again */
	CODEC_BROKEN, /* a compressor failed mid-stream: begin again */
};

struct batch_codec {
	enum batch_compression comp;
	enum codec_state state;
	/* zstd: an upper bound on the input it holds and has not yet
	 * compressed (see zstd_bound()); whether puts have begun a frame
	 * that is not yet ended, and whether the stream has a frame. */
	size_t held;
	bool streaming, framed;
	z_stream z;
	ZSTD_CCtx *zc;
};

static size_t
add_sat(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t
room(const struct batch_out *out)
{
	return out->cap - out->len;
}

/* ------------------------------------------------------------------ gzip
 *
 * Why gzip_bound() holds (zlib 1.2.x, memLevel 8, any level 1..9). With
 * Z_NO_FLUSH, deflate() emits output only when a block is complete: its
 * symbol buffer holds 2^(memLevel+6) - 1 = 16,383 symbols. A block is
 * written as the smallest of stored, fixed-code and dynamic-code, so never
 * larger than with the fixed code, where a literal costs at most 9 bits and
 * a match (at least 3 bytes) at most 31 bits, and at most 25 bits when it
 * is 3 bytes long: at most 9 bits per input byte, and at most 31 bits per
 * symbol. So a put of n bytes can emit the held symbols (16,383 x 31 bits
 * = 63,485 bytes), the input still waiting for lookahead (under 262 bytes,
 * 295 bytes at 9 bits), 9/8 of n, and per block a 3-bit header and a
 * 7-bit end code, two bytes per 16,383 input bytes at the most; plus the
 * 10-byte gzip header on the first call, and the up to 16 bits carried
 * over in the bit buffer. The end adds the 8-byte trailer to the same
 * held data. GZIP_HELD rounds the held part up to 64 KiB.
 */
#define GZIP_HELD  65536
#define GZIP_EXTRA 32 /* the header, the trailer, the bit buffer */

static size_t
gzip_bound(size_t n)
{
	size_t b = add_sat(n, n >> 3);

	b = add_sat(b, n >> 12);
	return add_sat(b, GZIP_HELD + GZIP_EXTRA);
}

static int
gzip_init(struct batch_codec *c, int level)
{
	/* windowBits 15 + 16: a gzip wrapper, not a zlib one. */
	if (deflateInit2(&c->z, level ? level : GZIP_LEVEL_DEFAULT, Z_DEFLATED,
	    15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	return 0;
}

static size_t
gzip_pending(z_stream *z)
{
	unsigned pending = 0;
	int bits;

	if (deflatePending(z, &pending, &bits) != Z_OK)
		return 0;
	return pending;
}

/* Runs deflate() over n bytes (none, to finish) until they are all taken
 * and nothing waits in zlib's pending buffer, or until Z_STREAM_END with
 * Z_FINISH. zlib counts in uInt, so large sizes go in slices. */
static int
gzip_run(struct batch_codec *c, const uint8_t *p, size_t n, int flush,
    struct batch_out *out)
{
	z_stream *z = &c->z;

	for (;;) {
		uInt in = n > UINT_MAX ? UINT_MAX : (uInt)n;
		uInt avail = room(out) > UINT_MAX ? UINT_MAX : (uInt)room(out);
		int rc;

		if (flush == Z_NO_FLUSH && n == 0 && gzip_pending(z) == 0)
			return 0;
		if (avail == 0)
			return -ENOBUFS;
		z->next_in = p;
		z->avail_in = in;
		z->next_out = out->buf + out->len;
		z->avail_out = avail;
		rc = deflate(z, flush);
		out->len += avail - z->avail_out;
		p += in - z->avail_in;
		n -= in - z->avail_in;
		if (rc == Z_STREAM_END)
			return 0;
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -EIO;
	}
}

/* ------------------------------------------------------------------ zstd
 *
 * Why zstd_bound() holds. With ZSTD_e_continue, libzstd copies input into
 * its buffer and compresses it a full block (ZSTD_BLOCKSIZE_MAX, 128 KiB)
 * at a time; a block is never written larger than raw with its 3-byte
 * header, and the block splitter (levels 16 and up) cuts one into 196
 * pieces at the most, each with a header. So a put of n bytes can emit at
 * most held + n bytes of blocks, their headers and the frame header (18
 * bytes at the most), and the end emits held bytes as the last block, its
 * header and the 4-byte checksum. held is kept as an upper bound: a put
 * that emits nothing holds all it was given on top; a put that emits has
 * compressed k >= 1 blocks and leaves held + n - k x 128 KiB, which is less
 * than n since held was less than a block (libzstd compresses a block as
 * soon as it is full); and held is never more than a block.
 */
#define ZSTD_FRAME_HEADER_MAX 18
#define ZSTD_BLOCK_HEADERS    (3 * 196)
#define ZSTD_EXTRA            (ZSTD_FRAME_HEADER_MAX + 4 + ZSTD_BLOCK_HEADERS)

static size_t
zstd_bound(const struct batch_codec *c, size_t n)
{
	size_t in = add_sat(c->held, n);
	size_t blocks = in / ZSTD_BLOCKSIZE_MAX + 1;

	if (blocks > (SIZE_MAX - ZSTD_EXTRA) / ZSTD_BLOCK_HEADERS)
		return SIZE_MAX;
	return add_sat(in, blocks * ZSTD_BLOCK_HEADERS + ZSTD_EXTRA);
}

/* libzstd allocates its workspace (window, tables, buffers) on the first
 * compression, not at creation: one byte fed here and dropped by the reset
 * makes that happen now, so that batch_codec_new() is where memory can be
 * refused. The reset keeps the workspace, and every stream after has the
 * same parameters, so it is reused as it is. */
static int
zstd_init(struct batch_codec *c, int level)
{
	uint8_t dummy[ZSTD_FRAME_HEADER_MAX];
	ZSTD_outBuffer o = { dummy, sizeof(dummy), 0 };
	ZSTD_inBuffer in = { "", 1, 0 };
	int rc = -EINVAL;

	c->zc = ZSTD_createCCtx();
	if (c->zc == NULL)
		return -ENOMEM;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel,
	    level ? level : ZSTD_LEVEL_DEFAULT)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 1)))
		goto out_free;
	rc = -ENOMEM;
	if (ZSTD_isError(ZSTD_compressStream2(c->zc, &o, &in, ZSTD_e_continue)) ||
	    ZSTD_isError(ZSTD_CCtx_reset(c->zc, ZSTD_reset_session_only)))
		goto out_free;
	return 0;

out_free:
	ZSTD_freeCCtx(c->zc);
	c->zc = NULL;
	return rc;
}

/* Feeds n bytes with ZSTD_e_continue, or ends the frame with ZSTD_e_end,
 * appending the output. Filling out to its cap counts as overflow: with
 * the room the bound asks for, the output never gets there, and past it
 * libzstd could be holding output it has no room for. */
static int
zstd_run(struct batch_codec *c, const uint8_t *p, size_t n,
    ZSTD_EndDirective op, struct batch_out *out)
{
	ZSTD_inBuffer in = { p, n, 0 };

	for (;;) {
		ZSTD_outBuffer o = { out->buf + out->len, room(out), 0 };
		size_t left = ZSTD_compressStream2(c->zc, &o, &in, op);

		out->len += o.pos;
		if (ZSTD_isError(left))
			return -EIO;
		if (op == ZSTD_e_end && left == 0)
			return 0;
		if (room(out) == 0)
			return -ENOBUFS;
		if (op == ZSTD_e_continue && in.pos == in.size)
			return 0;
	}
}

/* Ends the frame puts began, if any. */
static int
zstd_end_frame(struct batch_codec *c, struct batch_out *out)
{
	int rc = 0;

	if (c->streaming)
		rc = zstd_run(c, NULL, 0, ZSTD_e_end, out);
	c->streaming = false;
	c->held = 0;
	return rc;
}

/* n framed bytes as one frame of their own, compressed in one pass: no
 * copy into libzstd's window buffer, and the parameters fitted to n. On
 * these bytes (log lines of 100 bytes) it is 15 to 20% less CPU than
 * feeding them to the open frame, at the same ratio from frames of 4 MiB
 * on. A frame puts began is ended first; the frames concatenate into one
 * stream, which zstd(1) and ZSTD_decompress() read whole. The bound holds
 * (see zstd_bound()): the end of the open frame takes at most held plus a
 * block's headers and the checksum, and a one-pass frame of n bytes at
 * most ZSTD_compressBound(n), n + n / 256 + 64, less than n plus a block
 * header of 588 bytes per 128 KiB. */
static int
zstd_write(struct batch_codec *c, const uint8_t *p, size_t n,
    struct batch_out *out)
{
	size_t r;

	if (zstd_end_frame(c, out) < 0)
		return -EIO;
	r = ZSTD_compress2(c->zc, out->buf + out->len, room(out), p, n);
	if (ZSTD_isError(r))
		return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ? -ENOBUFS : -EIO;
	out->len += r;
	c->framed = true;
	return 0;
}

/* ---------------------------------------------------------------- codec */

struct batch_codec *
batch_codec_new(enum batch_compression comp, int level)
{
	struct batch_codec *c;
	int rc = 0;

	if ((comp == BATCH_COMP_NONE && level != 0) ||
	    (comp == BATCH_COMP_GZIP && (level < 0 || level > 9)) ||
	    (comp == BATCH_COMP_ZSTD && (level < 0 || level > ZSTD_LEVEL_MAX)) ||
	    (comp != BATCH_COMP_NONE && comp != BATCH_COMP_GZIP &&
	    comp != BATCH_COMP_ZSTD)) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->comp = comp;
	if (comp == BATCH_COMP_GZIP)
		rc = gzip_init(c, level);
	else if (comp == BATCH_COMP_ZSTD)
		rc = zstd_init(c, level);
	if (rc < 0) {
		free(c);
		errno = -rc;
		return NULL;
	}
	return c;
}

void
batch_codec_free(struct batch_codec *c)
{
	if (c == NULL)
		return;
	if (c->comp == BATCH_COMP_GZIP)
		deflateEnd(&c->z);
	ZSTD_freeCCtx(c->zc);
	free(c);
}

int
batch_codec_begin(struct batch_codec *c)
{
	/* Both resets keep the level and the parameters, and the memory. */
	if (c->comp == BATCH_COMP_GZIP && deflateReset(&c->z) != Z_OK)
		return -EIO;
	if (c->comp == BATCH_COMP_ZSTD &&
	    ZSTD_isError(ZSTD_CCtx_reset(c->zc, ZSTD_reset_session_only)))
		return -EIO;
	c->held = 0;
	c->streaming = c->framed = false;
	c->state = CODEC_OPEN;
	return 0;
}

size_t
batch_codec_bound(const struct batch_codec *c, size_t key_len,
    size_t body_len)
{
	/* The framing of an empty message is counted even for the end (0
	 * and 0), so that one bound serves both the end and a put. */
	return batch_codec_bound_raw(c, add_sat(add_sat(LENGTH_HDR, key_len), body_len));
}

size_t
batch_codec_bound_raw(const struct batch_codec *c, size_t n)
{
	switch (c->comp) {
	case BATCH_COMP_GZIP:
		return gzip_bound(n);
	case BATCH_COMP_ZSTD:
		return zstd_bound(c, n);
	default:
		return n;
	}
}

/* Feeds n bytes of framed input to the compressor, or copies them. */
static int
codec_feed(struct batch_codec *c, const void *p, size_t n,
    struct batch_out *out)
{
	switch (c->comp) {
	case BATCH_COMP_GZIP:
		return gzip_run(c, p, n, Z_NO_FLUSH, out);
	case BATCH_COMP_ZSTD:
		return zstd_run(c, p, n, ZSTD_e_continue, out);
	default:
		if (room(out) < n)
			return -ENOBUFS;
		if (n > 0)
			memcpy(out->buf + out->len, p, n);
		out->len += n;
		return 0;
	}
}

/* Feeds the framing's pieces of one message; returns the framed length. */
static long
codec_frame(struct batch_codec *c, enum batch_framing f, const char *key,
    size_t key_len, const void *body, size_t body_len, struct batch_out *out)
{
	const uint8_t *b = body;
	uint8_t hdr[4];
	int rc;

	if (f == BATCH_FRAME_LINES) {
		if ((rc = codec_feed(c, body, body_len, out)) < 0)
			return rc;
		if (body_len > 0 && b[body_len - 1] == '\n')
			return (long)body_len;
		if ((rc = codec_feed(c, "\n", 1, out)) < 0)
			return rc;
		return (long)body_len + 1;
	}
	hdr[0] = key_len >> 8;
	hdr[1] = key_len & 0xff;
	if ((rc = codec_feed(c, hdr, 2, out)) < 0 ||
	    (rc = codec_feed(c, key, key_len, out)) < 0)
		return rc;
	hdr[0] = body_len >> 24;
	hdr[1] = (body_len >> 16) & 0xff;
	hdr[2] = (body_len >> 8) & 0xff;
	hdr[3] = body_len & 0xff;
	if ((rc = codec_feed(c, hdr, 4, out)) < 0 ||
	    (rc = codec_feed(c, body, body_len, out)) < 0)
		return rc;
	return (long)(LENGTH_HDR + key_len + body_len);
}

/* zstd: what the compressor holds back after n framed bytes were fed,
 * out having been at len0 before (see zstd_bound()). */
static void
note_held(struct batch_codec *c, size_t n, size_t len0, const struct batch_out *out)
{
	if (c->comp == BATCH_COMP_ZSTD) {
		size_t held = out->len > len0 ? n : add_sat(c->held, n);

		c->held = held < ZSTD_BLOCKSIZE_MAX ? held : ZSTD_BLOCKSIZE_MAX;
	}
}

static bool
frame_ok(enum batch_framing f, size_t key_len, size_t body_len)
{
	return (f == BATCH_FRAME_LINES || f == BATCH_FRAME_LENGTH) &&
	    !(f == BATCH_FRAME_LENGTH && (key_len > UINT16_MAX ||
	    body_len > UINT32_MAX)) && body_len <= LONG_MAX - LENGTH_HDR - 65535;
}

long
batch_frame(enum batch_framing f, const char *key, size_t key_len,
    const void *body, size_t body_len, uint8_t *dst, size_t cap)
{
	size_t n;

	if (!frame_ok(f, key_len, body_len))
		return -EINVAL;
	if (f == BATCH_FRAME_LINES) {
		/* body may lie in shared memory, where its last byte can
		 * change: whether it ends a line is read from the copy, which
		 * is what is framed. So room for the newline is asked for
		 * even when the body brings its own. */
		if (body_len + 1 > cap)
			return -ENOBUFS;
		if (body_len > 0)
			memcpy(dst, body, body_len);
		if (body_len > 0 && dst[body_len - 1] == '\n')
			return (long)body_len;
		dst[body_len] = '\n';
		return (long)body_len + 1;
	}
	n = LENGTH_HDR + key_len + body_len;
	if (n > cap)
		return -ENOBUFS;
	dst[0] = (uint8_t)(key_len >> 8);
	dst[1] = key_len & 0xff;
	memcpy(dst + 2, key, key_len);
	dst += 2 + key_len;
	dst[0] = (uint8_t)(body_len >> 24);
	dst[1] = (body_len >> 16) & 0xff;
	dst[2] = (body_len >> 8) & 0xff;
	dst[3] = body_len & 0xff;
	if (body_len > 0)
		memcpy(dst + 4, body, body_len);
	return (long)n;
}

int
batch_codec_write(struct batch_codec *c, const void *framed, size_t n,
    struct batch_out *out)
{
	int rc;

	if (c->state != CODEC_OPEN)
		return -EINVAL;
	if (room(out) < batch_codec_bound_raw(c, n))
		return -ENOBUFS;
	if (n == 0)
		return 0;
	if (c->comp == BATCH_COMP_ZSTD)
		rc = zstd_write(c, framed, n, out);
	else
		rc = codec_feed(c, framed, n, out);
	if (rc < 0) {
		c->state = CODEC_BROKEN;
		return rc;
	}
	return 0;
}

long
batch_codec_put(struct batch_codec *c, enum batch_framing f,
    const char *key, size_t key_len, const void *body, size_t body_len,
    struct batch_out *out)
{
	size_t len0 = out->len;
	long n;

	if (c->state != CODEC_OPEN)
		return -EINVAL;
	if (!frame_ok(f, key_len, body_len))
		return -EINVAL;
	if (room(out) < batch_codec_bound(c, key_len, body_len))
		return -ENOBUFS;
	n = codec_frame(c, f, key, key_len, body, body_len, out);
	if (n < 0) {
		c->state = CODEC_BROKEN;
		return n;
	}
	note_held(c, (size_t)n, len0, out);
	c->streaming = c->framed = true;
	return n;
}

int
batch_codec_end(struct batch_codec *c, struct batch_out *out)
{
	int rc = 0;

	if (c->state != CODEC_OPEN)
		return -EINVAL;
	if (room(out) < batch_codec_bound(c, 0, 0))
		return -ENOBUFS;
	if (c->comp == BATCH_COMP_GZIP)
		rc = gzip_run(c, NULL, 0, Z_FINISH, out);
	else if (c->comp == BATCH_COMP_ZSTD && (c->streaming || !c->framed))
		rc = zstd_run(c, NULL, 0, ZSTD_e_end, out); /* or an empty frame */
	c->streaming = false;
	c->state = rc < 0 ? CODEC_BROKEN : CODEC_ENDED;
	c->held = 0;
	return rc;
}

/* ---------------------------------------------------------------- names */

static const char *const comp_names[] = { "none", "gzip", "zstd" };
static const char *const comp_exts[] = { "", ".gz", ".zst" };
static const char *const framing_names[] = { "lines", "length" };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *
name_at(const char *const *names, size_t n, unsigned i, const char *none)
{
	return i < n ? names[i] : none;
}

/* The index of s in names (case does not matter), or -EINVAL. */
static int
name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcasecmp(names[i], s) == 0)
			return (int)i;
	return -EINVAL;
}

const char *
batch_compression_name(enum batch_compression comp)
{
	return name_at(comp_names, NELEM(comp_names), comp, "?");
}

const char *
batch_compression_ext(enum batch_compression comp)
{
	return name_at(comp_exts, NELEM(comp_exts), comp, "");
}

const char *
batch_framing_name(enum batch_framing f)
{
	return name_at(framing_names, NELEM(framing_names), f, "?");
}

int
batch_compression_parse(const char *s, enum batch_compression *out)
{
	int i = name_index(comp_names, NELEM(comp_names), s);

	return i < 0 ? i : (*out = (enum batch_compression)i, 0);
}

int
batch_framing_parse(const char *s, enum batch_framing *out)
{
	int i = name_index(framing_names, NELEM(framing_names), s);

	return i < 0 ? i : (*out = (enum batch_framing)i, 0);
}
