/* batch_codec.h -- one batch object's bytes: framing, then compression.
 *
 * A batch object is a stream of framed messages, compressed as one stream
 * (one gzip member; zstd frames, one for each batch_codec_write() and one
 * for a run of puts, which concatenate into one stream that zstd(1) and
 * ZSTD_decompress() read whole), cut into parts wherever the caller likes:
 * the parts of a multipart upload concatenate back into the stream.
 * The codec owns the compressor state only; its output goes into a buffer
 * the caller owns, which never grows: a call that would overflow it fails.
 *
 *   struct batch_codec *c = batch_codec_new(BATCH_COMP_ZSTD, 0);
 *   batch_codec_begin(c);
 *   for each message:
 *           if (out.cap - out.len < batch_codec_bound(c, key_len, body_len))
 *                   hand out.buf[0..out.len) on as a part, out.len = 0;
 *           batch_codec_put(c, BATCH_FRAME_LINES, key, key_len, body, body_len, &out);
 *   batch_codec_end(c, &out);   (out.cap - out.len >= batch_codec_bound(c, 0, 0))
 */
#ifndef S3RING_BATCH_CODEC_H
#define S3RING_BATCH_CODEC_H

#include <stddef.h>
#include <stdint.h>

enum batch_framing {
	/* The body, then "\n" unless the body already ends with one
	 * (newline-delimited, for text: JSON lines, log lines). */
	BATCH_FRAME_LINES = 0,
	/* For binary bodies: the key's length (2 bytes, big-endian), the key,
	 * the body's length (4 bytes, big-endian), the body. */
	BATCH_FRAME_LENGTH = 1,
};

enum batch_compression {
	BATCH_COMP_NONE = 0,
	BATCH_COMP_GZIP = 1,  /* zlib, one gzip member (RFC 1952) */
	BATCH_COMP_ZSTD = 2,  /* libzstd, one frame with its content checksum */
};

struct batch_out {
	uint8_t *buf;
	size_t len, cap;
};

struct batch_codec;

/* level 0 is the tool's default (gzip -6, zstd -3); gzip takes 1..9, zstd
 * 1..19, none only 0. Returns NULL if memory or the level is refused (errno
 * ENOMEM or EINVAL). The codec is ready for a first stream without a
 * begin. Its memory (the compressor's state for the level) is allocated
 * here once and never grows; batch_codec_free() releases it (NULL is
 * ignored). */
struct batch_codec *batch_codec_new(enum batch_compression comp, int level);
void batch_codec_free(struct batch_codec *c);

/* Starts a new stream (a new object), dropping any state of the last. */
int batch_codec_begin(struct batch_codec *c);

/* The most bytes the next put of such a message (or, with 0 and 0, the
 * end) can add to the output, counting what the compressor holds back.
 * It assumes the length framing, the larger, so it holds for either; and
 * the value for 0 and 0 also covers the put of an empty message. */
size_t batch_codec_bound(const struct batch_codec *c, size_t key_len,
    size_t body_len);

/* Frames one message and feeds it to the compressor, appending whatever
 * output comes to out. Returns the framed (uncompressed) bytes added, or
 * -ENOBUFS if out had less room than batch_codec_bound() (checked first:
 * nothing is fed, and the put can be made again with more room; should a
 * compressor overrun the bound all the same, the stream is unusable: begin
 * again), -EIO if the compressor failed (begin again), or -EINVAL if the
 * stream has ended or failed, f is unknown, or the length framing cannot
 * hold the key (over 65,535 bytes) or the body (over 4 GiB). */
long batch_codec_put(struct batch_codec *c, enum batch_framing f,
    const char *key, size_t key_len, const void *body, size_t body_len,
    struct batch_out *out);

/* The same in two steps, so that framing and compression can happen in
 * different places: batch_frame() frames one message into dst (cap bytes)
 * and returns its framed length, or -ENOBUFS if cap is short (nothing
 * written; the lines framing always asks for body_len + 1, since whether
 * the body ends its line is read from the copy) or -EINVAL as
 * batch_codec_put() does; batch_codec_write() feeds
 * n framed bytes (any number of messages) to the compressor, with the same
 * returns as a put, against the bound batch_codec_bound_raw(c, n). */
long batch_frame(enum batch_framing f, const char *key, size_t key_len,
    const void *body, size_t body_len, uint8_t *dst, size_t cap);
size_t batch_codec_bound_raw(const struct batch_codec *c, size_t n);
int batch_codec_write(struct batch_codec *c, const void *framed, size_t n,
    struct batch_out *out);

/* Ends the stream: everything the compressor holds, and its trailer.
 * Returns 0, -ENOBUFS or -EIO as a put does, or -EINVAL if the stream has
 * already ended or failed. */
int batch_codec_end(struct batch_codec *c, struct batch_out *out);

/* "none", "gzip", "zstd"; the file name extension (".gz", ".zst", ""). */
const char *batch_compression_name(enum batch_compression comp);
const char *batch_compression_ext(enum batch_compression comp);
/* Parses those names. Returns 0 or -EINVAL. */
int batch_compression_parse(const char *s, enum batch_compression *out);
/* "lines", "length". */
const char *batch_framing_name(enum batch_framing f);
int batch_framing_parse(const char *s, enum batch_framing *out);

#endif
