/* s3ring.h -- put messages for S3 into a shared-memory ring.
 *
 * A producer opens a ring by name and puts messages: an S3 object key and a
 * body. A put copies the message into shared memory and returns; a separate
 * process, s3ring-uploader, sends it to S3. A put never allocates memory,
 * never prints, and makes no system call unless the uploader is asleep (one
 * FUTEX_WAKE) or the caller asked to wait for space.
 *
 * Errors are negative errno values:
 *   -EAGAIN     the ring is full and timeout_ms was 0 (counted as a drop)
 *   -ETIMEDOUT  the ring stayed full until the timeout, or the producer
 *               stalled for over a second between claiming space and
 *               claiming its record header, and the uploader padded over it
 *   -EMSGSIZE   key + body is larger than the ring's max_message
 *   -EINVAL     bad key: empty, over 1024 bytes, invalid UTF-8 or a control
 *               character; or a NULL argument
 *   -EPROTO     the ring has another layout version than this library
 *   -EBADMSG    the ring's control words are corrupt, or its shm object was
 *               truncated under the put (the put is lost with the ring)
 *   -ESTALE     the ring was retired: its shm object was removed or
 *               replaced (to resize it, say). Nothing will read it again;
 *               s3ring_close() the handle and s3ring_open() the new ring.
 * s3ring_strerror() turns any of them into a message. A put that returns 0
 * is in a ring an uploader will read.
 *
 * Liveness: an open handle holds a lock on its producer slot, which the
 * kernel drops when the process dies, in whatever PID namespace; the
 * uploader never gives up the record of a live producer, however long it
 * is stopped, and gives up a dead one's within milliseconds.
 *
 * Thread safety: one struct s3ring_producer may be used by any number of
 * threads at once. After fork(), the child may go on using the parent's
 * handle: its first call opens the ring again for the child (system calls
 * and a mapping, once), so that the uploader tells the two processes apart
 * and sees either die. A reservation made before fork() cannot be
 * committed in the child (-EINVAL). s3ring_close() in a child that never
 * used the handle leaves the parent's slot alone.
 */
#ifndef S3RING_H
#define S3RING_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define S3RING_API __attribute__((visibility("default")))
#define S3RING_WUR __attribute__((warn_unused_result))
#else
#define S3RING_API
#define S3RING_WUR
#endif

#define S3RING_VERSION_MAJOR 0
#define S3RING_VERSION_MINOR 1

/* Flags for s3ring_open(). */
#define S3RING_CREATE 0x1u /* create the ring at its default geometry if absent */

/* Longest key, in bytes. */
#define S3RING_MAX_KEY 1024

struct s3ring_producer;

/* A reservation for a zero-copy put: write len bytes to data, then commit or
 * abort it. The fields are read-only for the caller. */
struct s3ring_reservation {
	void *data;
	size_t len;
	unsigned long long opaque_[2];
};

/* Opens ring_name (NULL means $S3RING_RING, or "default"). Returns NULL and
 * sets errno on failure: ENOENT if there is no such ring (and no
 * S3RING_CREATE), EACCES, EPROTO for a ring of another layout version,
 * EBADMSG for a corrupt ring header, EUSERS if all producer slots are taken
 * by live processes, ENOMEM. The caller frees the result with
 * s3ring_close(). */
S3RING_API S3RING_WUR struct s3ring_producer *
s3ring_open(const char *ring_name, unsigned flags);

/* Puts one message. timeout_ms: 0 fails at once with -EAGAIN when the ring
 * is full, > 0 waits up to that many milliseconds for space, < 0 waits
 * forever. Returns 0 once the message is committed, or a negative errno
 * (above). The key and body are copied; the caller keeps ownership. */
S3RING_API S3RING_WUR int
s3ring_put(struct s3ring_producer *p, const char *key, const void *body,
    size_t len, int timeout_ms);

/* Zero-copy put, in two steps. s3ring_reserve() claims room for a body of
 * len bytes under key, with the same timeout rules and errors as
 * s3ring_put(), and fills in *r. The caller writes the body to r->data and
 * then calls s3ring_commit() (returns 0, or -ESTALE if the ring was
 * retired meanwhile, -EBADMSG if it was truncated, -EINVAL for a
 * reservation that is not one) or s3ring_abort() (the space is skipped,
 * nothing is uploaded). Until then the uploader uploads the records behind
 * this one but cannot release its space, so keep the window short. */
S3RING_API S3RING_WUR int
s3ring_reserve(struct s3ring_producer *p, const char *key, size_t len,
    struct s3ring_reservation *r, int timeout_ms);
S3RING_API S3RING_WUR int
s3ring_commit(struct s3ring_producer *p, struct s3ring_reservation *r);
S3RING_API void
s3ring_abort(struct s3ring_producer *p, struct s3ring_reservation *r);

/* The largest body a put accepts with a key of key_len bytes. */
S3RING_API size_t
s3ring_max_body(const struct s3ring_producer *p, size_t key_len);

/* Releases the producer slot and unmaps the ring. NULL is a no-op. */
S3RING_API void
s3ring_close(struct s3ring_producer *p);

/* A static message for err (negative or positive errno). Never NULL. */
S3RING_API const char *
s3ring_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
