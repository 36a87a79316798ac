/* spool.h -- the dead-letter spool: one file per message that cannot be sent. */
#ifndef S3RING_SPOOL_H
#define S3RING_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_MAGIC "s3ring-dead-letter 1\n"
#define SPOOL_REASON_MAX 256
#define SPOOL_SUFFIX ".dlq"

/* A spooled message, parsed. key and body point into the caller's buffer. */
struct spool_msg {
	const char *key;      /* NUL-terminated */
	size_t key_len;
	const uint8_t *body;
	size_t body_len;
	char reason[SPOOL_REASON_MAX];
	unsigned attempts;
};

/* Writes one message to dir atomically: a temporary file in dir, fsync,
 * rename to NAME.dlq, fsync of dir. The directory is created (0700) if
 * missing. name_hint makes the name unique (e.g. epoch and ring position).
 * Returns 0, or -errno (ENOSPC, EACCES, EROFS...) with nothing left behind
 * but, at worst, an unrenamed temporary file that replay ignores. */
int spool_write(const char *dir, const char *name_hint, const char *key,
    size_t key_len, const void *body, size_t body_len, const char *reason,
    unsigned attempts) __attribute__((warn_unused_result));

/* A dead letter written in pieces, for a body that is not in memory at
 * once (a batch object of several parts): open writes the header (with a
 * body-length of zeros) and the key to a temporary file; write appends to
 * the body (after a failure, the same piece may be written again: the
 * file's length is what was written successfully); commit writes the body's
 * length in place, then fsync and rename as spool_write(); abort unlinks
 * the temporary file. commit and abort free the stream. */
struct spool_stream;
struct spool_stream *spool_stream_open(const char *dir, const char *name_hint,
    const char *key, size_t key_len, const char *reason, unsigned attempts,
    int *err);
int spool_stream_write(struct spool_stream *s, const void *buf, size_t len)
    __attribute__((warn_unused_result));
int spool_stream_commit(struct spool_stream *s) __attribute__((warn_unused_result));
void spool_stream_abort(struct spool_stream *s);

/* Makes sure messages can be spooled to dir: creates it (0700, and its
 * missing parents 0755) and writes and removes a probe file. Returns 0,
 * or -errno (EACCES, EROFS, ENOTDIR, ENOSPC...). The start-up check: a
 * spool that cannot take a message is found before one needs it. */
int spool_check(const char *dir) __attribute__((warn_unused_result));

/* Parses a spool file's bytes. Returns 0, or -EBADMSG. The key must be a
 * valid S3 key; the reason is cut to SPOOL_REASON_MAX - 1 bytes. */
int spool_parse(const void *data, size_t len, struct spool_msg *m)
    __attribute__((warn_unused_result));

#endif
