/* sigv4.h -- AWS Signature Version 4 request signing (HMAC-SHA256) */
#ifndef S3RING_SIGV4_H
#define S3RING_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/*
 * Two canonicalization modes.
 *
 * SIGV4_MODE_S3: the path is the unencoded object path ("/bucket/key" or
 * "/key"), taken byte for byte: no dot-segment removal, no slash merging,
 * each byte outside the unreserved set encoded exactly once. The encoded
 * path is also what goes on the wire. `x-amz-content-sha256` is always
 * added and signed.
 *
 * SIGV4_MODE_GENERIC: what other AWS services (and the AWS test vectors)
 * expect: the path is the request-target path as it is sent, which is
 * normalized (RFC 3986 dot segments, repeated slashes) and then encoded
 * again, so an escaped "%20" on the wire becomes "%2520" in the canonical
 * request. No `x-amz-content-sha256` is added.
 */
enum sigv4_mode {
	SIGV4_MODE_S3 = 0,
	SIGV4_MODE_GENERIC = 1,
};

/* Caps. A request that exceeds one is refused with -ENOSPC (or -E2BIG for
 * the counts); nothing grows per request. */
#define SIGV4_CANONICAL_MAX	32768	/* canonical request, bytes */
#define SIGV4_AUTH_MAX		2048	/* Authorization value incl. NUL */
#define SIGV4_MAX_HEADERS	48	/* caller headers, before the 3 added */
#define SIGV4_MAX_QUERY		32	/* query parameters */
#define SIGV4_REGION_MAX	64	/* incl. NUL */
#define SIGV4_SERVICE_MAX	32	/* incl. NUL */
#define SIGV4_AMZ_DATE_LEN	16	/* "20150830T123600Z" */
#define SIGV4_SHA256_HEX_LEN	64

#define SIGV4_UNSIGNED_PAYLOAD	"UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Borrowed strings; the signer never copies the secret. session_token may
 * be NULL or "" when there is none. */
struct sigv4_credentials {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;
};

/* A header (any case in the name) or a query parameter (unencoded name and
 * value; a NULL value signs as "name="). */
struct sigv4_kv {
	const char *name;
	const char *value;
};

struct sigv4_request {
	enum sigv4_mode mode;
	const char *method;		/* "PUT", "GET", ... */
	const char *path;		/* see enum sigv4_mode; starts with '/' */
	const struct sigv4_kv *query;
	size_t nquery;
	/* Must contain "host". Must not contain x-amz-date,
	 * x-amz-security-token or (S3 mode) x-amz-content-sha256: the signer
	 * adds those itself and returns their values. Every header given is
	 * signed, so do not pass User-Agent or Expect. */
	const struct sigv4_kv *headers;
	size_t nheaders;
	/* Lowercase hex SHA-256 of the body, or SIGV4_UNSIGNED_PAYLOAD. */
	const char *payload_sha256;
	const char *region;		/* "us-east-1" */
	const char *service;		/* "s3" */
};

/*
 * What the caller must send. The pointers point into the signer and stay
 * valid until the next sigv4_sign() on the same signer.
 */
struct sigv4_result {
	char authorization[SIGV4_AUTH_MAX];
	char amz_date[SIGV4_AMZ_DATE_LEN + 1];	/* send as x-amz-date */
	/* The encoded path and query string, to build the URL from: in S3 mode
	 * exactly what was signed, so the server computes the same request. */
	const char *canonical_path;
	const char *canonical_query;
	const char *canonical_request;	/* for tests and debug logs */
	const char *string_to_sign;
};

/* One signer per thread; it holds scratch space and the derived-key cache
 * and is not safe to share. */
struct sigv4_signer;

/* Returns a signer, or NULL with errno ENOMEM. */
struct sigv4_signer *sigv4_signer_new(void)
	__attribute__((warn_unused_result));

/* Wipes the cached signing keys and frees. NULL is allowed. */
void sigv4_signer_free(struct sigv4_signer *s);

/*
 * Signs req as of `when` (UTC seconds). Returns 0 and fills *out, or:
 * -EINVAL (missing host, a header the signer owns, empty credentials,
 * region or service too long, a header value with CR/LF), -E2BIG (too many
 * headers or parameters), -ENOSPC (a cap above exceeded), -EIO (OpenSSL
 * failure). On failure *out is unspecified.
 */
int sigv4_sign(struct sigv4_signer *s, const struct sigv4_credentials *creds,
    const struct sigv4_request *req, time_t when, struct sigv4_result *out)
	__attribute__((warn_unused_result));

/* How many signing keys this signer has derived (HMAC chains run). The
 * key is cached per (date, region, service, secret). */
uint64_t sigv4_signer_derivations(const struct sigv4_signer *s);

/*
 * Percent-encodes len bytes of src into dst (cap bytes, NUL included): the
 * RFC 3986 unreserved set A-Z a-z 0-9 - . _ ~ is kept, and '/' too when
 * keep_slash; every other byte becomes %XX with uppercase hex. Returns the
 * length written without the NUL, or -ENOSPC.
 */
ssize_t sigv4_uri_encode(char *dst, size_t cap, const void *src, size_t len,
    bool keep_slash) __attribute__((warn_unused_result));

/* Writes the lowercase hex SHA-256 of buf and a NUL into hex. Returns 0 or
 * -EIO. */
int sigv4_sha256_hex(const void *buf, size_t len,
    char hex[SIGV4_SHA256_HEX_LEN + 1]) __attribute__((warn_unused_result));

/* Formats `when` as "YYYYMMDDTHHMMSSZ". Returns 0 or -EOVERFLOW. */
int sigv4_amz_date(time_t when, char out[SIGV4_AMZ_DATE_LEN + 1])
	__attribute__((warn_unused_result));

#endif /* S3RING_SIGV4_H */
