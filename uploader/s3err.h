/* s3err.h -- S3 error bodies, error classes and retry backoff */
#ifndef S3RING_S3ERR_H
#define S3RING_S3ERR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * What the uploader does with a failed request:
 *  TRANSIENT  retry the same request after s3err_backoff_ms();
 *  CONFIG     stop consuming, raise the alarm, re-check periodically: the
 *             messages stay in the ring (wrong bucket, credentials, TLS);
 *  MESSAGE    this message can never succeed: dead-letter it with reason.
 */
enum s3err_class {
	S3ERR_OK = 0,
	S3ERR_TRANSIENT = 1,
	S3ERR_CONFIG = 2,
	S3ERR_MESSAGE = 3,
};

#define S3ERR_CODE_MAX		64	/* incl. NUL; S3 codes are < 40 */
#define S3ERR_MESSAGE_MAX	256
#define S3ERR_REQUEST_ID_MAX	128

/* The interesting fields of an S3 <Error> document. Each is NUL-terminated,
 * cut to its cap, and holds no control characters. */
struct s3err_body {
	char code[S3ERR_CODE_MAX];
	char message[S3ERR_MESSAGE_MAX];
	char request_id[S3ERR_REQUEST_ID_MAX];
};

/*
 * Parses an S3 XML error body of len bytes (not NUL-terminated; may be
 * truncated, garbage or hostile). Returns 0 when the root element is
 * <Error> and it holds a complete <Code>; -ENOENT otherwise. *out is always
 * initialised, with empty strings for missing fields. Reads no byte past
 * len and never allocates.
 */
int s3err_parse(const void *body, size_t len, struct s3err_body *out)
	__attribute__((warn_unused_result));

struct s3err_verdict {
	enum s3err_class cls;
	/* TRANSIENT ExpiredToken and friends: reload the credentials first. */
	bool reload_credentials;
	/* TRANSIENT NoSuchUpload: the multipart upload is gone; start over. */
	bool restart_upload;
	/* A static string for logs and stats: the S3 code, the curl error
	 * name or "HTTP 503". Never NULL. */
	const char *reason;
};

/*
 * Classifies one attempt. curl_code is the CURLcode of the transfer (0 for
 * CURLE_OK); http_status is the response status (0 if none); s3_code is the
 * <Code> of the body or NULL/"" when there was none. A known S3 code wins
 * over the status (S3 can answer 200 with an <Error>); an unknown one falls
 * back to the status. Unknown curl errors are TRANSIENT: retrying never
 * loses a message, while a wrong CONFIG verdict only delays it.
 */
struct s3err_verdict s3err_classify(int curl_code, long http_status,
    const char *s3_code);

const char *s3err_class_name(enum s3err_class cls);

/* Caps of the backoff: no single wait exceeds S3ERR_BACKOFF_MAX_MS unless
 * the server asked for longer with Retry-After, which is honoured up to
 * S3ERR_RETRY_AFTER_MAX_MS. */
#define S3ERR_BACKOFF_BASE_MS		100
#define S3ERR_BACKOFF_MAX_MS		20000
#define S3ERR_RETRY_AFTER_MAX_MS	(15 * 60 * 1000)

/*
 * Exponential backoff with full jitter: a delay uniform in
 * [0, min(max_ms, base_ms * 2^attempt)], computed from the caller's random
 * value `rnd` so that tests are deterministic; then raised to retry_after_ms
 * (0 when there was no Retry-After) if that is longer, capped at
 * S3ERR_RETRY_AFTER_MAX_MS. attempt counts from 0.
 */
uint64_t s3err_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms,
    uint64_t retry_after_ms, uint64_t rnd);

/* s3err_backoff_ms() with the default base and cap and a random value from
 * arc4random. */
uint64_t s3err_backoff_default_ms(unsigned attempt, uint64_t retry_after_ms);

/*
 * Parses a Retry-After value: delta-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", relative to `now`). Returns 0 and the
 * delay in *ms (0 for a date in the past), or -EINVAL.
 */
int s3err_parse_retry_after(const char *value, time_t now, uint64_t *ms)
	__attribute__((warn_unused_result));

#endif /* S3RING_S3ERR_H */
