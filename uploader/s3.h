/* s3.h -- S3 requests over libcurl: PUT, HEAD bucket, GET, multipart */
#ifndef S3RING_S3_H
#define S3RING_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "creds.h"
#include "s3err.h"
#include "sigv4.h"

/*
 * One struct s3_client owns one curl easy handle, one signer, one capped
 * response buffer and a copy of the credentials; the uploader has one per
 * upload in flight, and a client is used by one thread at a time.
 * Connections are kept alive, so consecutive requests reuse one TCP/TLS
 * connection (and, under an s3_multi, any idle one to the endpoint).
 *
 * Each operation is "prepare" (build URL, headers and signature into the
 * easy handle) followed by "perform" (the transfer, then s3_finish). A
 * caller that drives many clients at once calls s3_prepare_*() and hands
 * the client to an s3_multi (below), which performs and finishes it.
 * Request bodies are borrowed: they must stay valid until the transfer
 * ends. A body sent with its CRC-32C is checked while it is sent: if the
 * bytes curl reads differ from that CRC (the memory changed after it was
 * checked), the transfer is aborted before its last byte, so the server
 * never stores it, and s3_response()->body_changed is set.
 *
 * Return values of the operations: 0 on success; -EIO when the request was
 * sent (or attempted) and failed: s3_response() then says why and how to
 * react (verdict TRANSIENT, CONFIG or MESSAGE); any other -errno when
 * nothing was sent: -EINVAL (bad argument, key with NUL or empty),
 * -ENAMETOOLONG (key over S3_KEY_MAX bytes), -ENOSPC (a signing cap),
 * -ENOMEM.
 */

#define S3_KEY_MAX		1024	/* bytes, S3's limit */
#define S3_BODY_MAX		8192	/* captured response body */
#define S3_ETAG_MAX		128
#define S3_UPLOAD_ID_MAX	1024
#define S3_MAX_PARTS		10000
#define S3_BUCKET_MAX		64	/* incl. NUL */

struct s3_config {
	/* "http://127.0.0.1:9000" or "https://s3.example.com"; NULL or ""
	 * for AWS itself: https://s3.REGION.amazonaws.com. A path in the
	 * endpoint is refused. */
	const char *endpoint;
	const char *region;		/* NULL: "us-east-1" */
	const char *bucket;
	/* Path-style: ENDPOINT/BUCKET/KEY. Virtual-hosted (false):
	 * BUCKET.ENDPOINT-HOST/KEY. */
	bool path_style;
	/* Turns off TLS peer and host verification. Logged as a warning on
	 * every s3_client_new(): it is never a silent default. */
	bool tls_insecure;
	const char *ca_file;		/* NULL: the system store */
	long connect_timeout_ms;	/* 0: 5000 */
	/* A transfer slower than low_speed_bytes per second for
	 * low_speed_time_s seconds is aborted (CURLE_OPERATION_TIMEDOUT):
	 * this catches stalls without limiting large uploads. */
	long low_speed_bytes;		/* 0: 1024 */
	long low_speed_time_s;		/* 0: 30 */
	long timeout_ms;		/* whole request; 0: none */
	const char *user_agent;		/* NULL: "s3ring" */
	/* "HOST:PORT:ADDRESS" pins a name to an address, as curl --resolve
	 * does: virtual-hosted buckets on a private endpoint, and tests. */
	const char *resolve;
	/* A signer to share (borrowed; it must outlive the clients), for
	 * clients that are all used from one thread: its scratch (60 KiB)
	 * then exists once, not once per client. NULL: the client has its
	 * own. */
	struct sigv4_signer *signer;
};

struct s3_response {
	int curl_code;			/* CURLcode; 0 is CURLE_OK */
	/* The body no longer matched its CRC-32C as it was sent: aborted. */
	bool body_changed;
	long status;			/* HTTP status, 0 if none */
	struct s3err_verdict verdict;
	struct s3err_body error;	/* parsed <Error>, or empty fields */
	size_t body_len;
	bool body_truncated;		/* more arrived and was dropped */
	char etag[S3_ETAG_MAX];
	char request_id[128];		/* x-amz-request-id */
	bool has_retry_after;
	uint64_t retry_after_ms;
	long new_connections;		/* CURLINFO_NUM_CONNECTS */
	/* The bucket's region when the server named it: the
	 * x-amz-bucket-region header, else <Region> of the error body, else
	 * the region in its <Endpoint> (s3.REGION.amazonaws.com); "" if
	 * none. A 301 PermanentRedirect or a 400 AuthorizationHeaderMalformed
	 * names it when the request was signed for another region. */
	char bucket_region[64];
	char curl_error[256];		/* CURL_ERROR_SIZE */
	/* Last, so that a request resets the fields above only. */
	char body[S3_BODY_MAX + 1];	/* NUL-terminated, capped */
};

struct s3_part {
	int number;			/* 1..S3_MAX_PARTS */
	char etag[S3_ETAG_MAX];
	bool has_crc32c;
	uint32_t crc32c;
};

struct s3_client;

/*
 * Creates a client. creds is borrowed and must outlive the client; the
 * client copies the keys and refreshes its copy when the creds generation
 * changes (and reloads creds itself when S3 answers ExpiredToken). Returns
 * NULL with errno EINVAL (bad config, logged), ENOMEM, or EIO (curl).
 * curl_global_init() must have run (s3_global_init()).
 */
struct s3_client *s3_client_new(const struct s3_config *cfg, struct creds *creds)
	__attribute__((warn_unused_result));

/*
 * Signs the next requests for region (and, when the client was made for
 * AWS itself, with no endpoint, sends them to s3.REGION.amazonaws.com).
 * Returns 0, or -EINVAL for a region that is empty, too long or not of
 * [a-z0-9-]. Not thread-safe: the client's own thread calls it.
 */
int s3_set_region(struct s3_client *c, const char *region)
	__attribute__((warn_unused_result));

/* The region the client signs for. */
const char *s3_region(const struct s3_client *c);

/* Closes the connection, wipes the keys and frees. NULL is allowed. */
void s3_client_free(struct s3_client *c);

/* curl_global_init for the process; call once from main before threads. */
int s3_global_init(void) __attribute__((warn_unused_result));
void s3_global_cleanup(void);

/* The last request's outcome; valid until the next prepare. */
const struct s3_response *s3_response(const struct s3_client *c);

/* Performs the prepared request and finishes it (reads status and
 * headers, parses an error body, classifies). Returns 0 or -EIO. */
int s3_perform(struct s3_client *c) __attribute__((warn_unused_result));

/*
 * PUT object. crc32c is the CRC-32C of the body (the ring's), sent as
 * x-amz-checksum-crc32c so that S3 verifies the bytes end to end; the
 * SHA-256 is computed here and signed. body may be NULL if len is 0.
 */
int s3_prepare_put(struct s3_client *c, const char *key, const void *body,
    size_t len, uint32_t crc32c) __attribute__((warn_unused_result));
int s3_put_object(struct s3_client *c, const char *key, const void *body,
    size_t len, uint32_t crc32c) __attribute__((warn_unused_result));

/* The same PUT with up to S3_PUT_HEADERS_MAX more headers (object options:
 * Content-Type, x-amz-meta-*, ...), all sent and signed. The strings are
 * borrowed until the request is prepared. -E2BIG for too many. */
#define S3_PUT_HEADERS_MAX 32
int s3_prepare_put_headers(struct s3_client *c, const char *key, const void *body,
    size_t len, uint32_t crc32c, const struct sigv4_kv *hdrs, size_t nhdrs)
	__attribute__((warn_unused_result));

/* After a prepare: compare the body as curl sends it with crc32c, and
 * abort before its last byte on a mismatch (body_changed), as a PUT does
 * with its own CRC. For a part sent without its CRC (a server that knows
 * no part checksums), whose bytes are in memory that others can write. */
void s3_check_body(struct s3_client *c, uint32_t crc32c);

/* The same PUT with the body's SHA-256 (64 hex digits) computed by the
 * caller, on another thread say: a PUT over http signs it, and hashing a
 * large body would hold up the thread that drives the transfers. Over
 * https the hash is not used (UNSIGNED-PAYLOAD). -EINVAL for a malformed
 * hash. */
int s3_prepare_put_hashed(struct s3_client *c, const char *key, const void *body,
    size_t len, uint32_t crc32c, const struct sigv4_kv *hdrs, size_t nhdrs,
    const char *sha256_hex) __attribute__((warn_unused_result));

/* True if the client's PUTs sign their payload's SHA-256 (http). */
bool s3_signs_payload(const struct s3_client *c);

/* HEAD bucket: the start-up check. 404 is CONFIG (no such bucket). */
int s3_prepare_head_bucket(struct s3_client *c)
	__attribute__((warn_unused_result));
int s3_head_bucket(struct s3_client *c) __attribute__((warn_unused_result));

/*
 * GET object into buf (cap bytes); *len gets the object's size. An object
 * larger than cap fails with -EFBIG after the transfer (nothing beyond cap
 * is stored). Error bodies go to the response buffer as usual.
 */
int s3_get_object(struct s3_client *c, const char *key, void *buf, size_t cap,
    size_t *len) __attribute__((warn_unused_result));

/*
 * Multipart upload. create writes the UploadId into upload_id (cap
 * S3_UPLOAD_ID_MAX); with_crc32c asks for CRC-32C part checksums, after
 * which every part must carry one. upload_part writes the part's ETag into
 * part->etag and fills its number and CRC. complete sends the parts (in
 * ascending order, 1 to S3_MAX_PARTS of them); its XML body is generated
 * while it is sent, so it needs no buffer. A 200 answer that carries an
 * <Error> is a failure, classified by its code. Not every server knows
 * part checksums: Swift's s3api (Debian bookworm) ignores the part CRCs
 * and answers MalformedXML to the <ChecksumCRC32C> elements of the
 * completion, so with_crc32c is for servers that implement them.
 *
 * Each s3_prepare_*() builds and signs the request without sending it,
 * for a caller that hands the client to an s3_multi (s3_multi_start());
 * the blocking forms are prepare + s3_perform(). The prepare functions
 * return 0 or the -errno of "nothing was sent"; the outputs (upload_id,
 * part->etag) are filled when the transfer is finished (s3_perform(), or
 * s3_multi_done() returning the client), so upload_id, part, parts and
 * body are borrowed until then.
 * upload_id is set to "" by the prepare, and stays "" on failure.
 * hdrs of create are object options (Content-Type, x-amz-meta-*, ...):
 * up to S3_PUT_HEADERS_MAX, signed and sent on the create, which is where
 * S3 takes them for the object (-E2BIG for more); the strings are
 * borrowed until the request is prepared.
 */
int s3_prepare_create_multipart(struct s3_client *c, const char *key,
    bool with_crc32c, const struct sigv4_kv *hdrs, size_t nhdrs,
    char *upload_id, size_t cap) __attribute__((warn_unused_result));
int s3_create_multipart(struct s3_client *c, const char *key, bool with_crc32c,
    char *upload_id, size_t cap) __attribute__((warn_unused_result));
int s3_prepare_upload_part(struct s3_client *c, const char *key,
    const char *upload_id, int part_number, const void *body, size_t len,
    bool with_crc32c, uint32_t crc32c, struct s3_part *part)
	__attribute__((warn_unused_result));
int s3_upload_part(struct s3_client *c, const char *key, const char *upload_id,
    int part_number, const void *body, size_t len, bool with_crc32c,
    uint32_t crc32c, struct s3_part *part) __attribute__((warn_unused_result));
int s3_prepare_complete_multipart(struct s3_client *c, const char *key,
    const char *upload_id, const struct s3_part *parts, size_t nparts)
	__attribute__((warn_unused_result));
int s3_complete_multipart(struct s3_client *c, const char *key,
    const char *upload_id, const struct s3_part *parts, size_t nparts)
	__attribute__((warn_unused_result));
int s3_prepare_abort_multipart(struct s3_client *c, const char *key,
    const char *upload_id) __attribute__((warn_unused_result));
int s3_abort_multipart(struct s3_client *c, const char *key,
    const char *upload_id) __attribute__((warn_unused_result));

/*
 * ListMultipartUploads: calls cb(key, upload_id, arg) for every multipart
 * upload open in the bucket whose key starts with prefix (NULL or "": all
 * of them), in the server's order, following the pages (IsTruncated,
 * NextKeyMarker, NextUploadIdMarker). The strings passed to cb are
 * decoded from the XML and valid during the call only. cb returns 0 to go
 * on, anything else stops the listing and is returned; cb may use c (to
 * abort the upload it was given): a page is copied out of the response
 * before its uploads are reported. A prefix matches more keys than
 * itself: to find one key's uploads, compare the key in cb.
 *
 * Memory is constant: a page must fit in S3_BODY_MAX, so pages are asked
 * for ten uploads at a time, and for half as many again when one does not
 * fit; a page of one upload that does not fit fails with -EFBIG (keys near
 * S3_KEY_MAX with many characters to escape). Returns 0 when the last page
 * was read; -EIO when a request failed (s3_response() says why: servers
 * that do not implement the call answer NotImplemented); -EPROTO for an
 * answer that is not a listing, or whose markers do not move; -EINVAL
 * (no cb), -ENAMETOOLONG (prefix over S3_KEY_MAX); or cb's value. Uploads
 * reported before a failure stay reported: cb must tolerate seeing one
 * again on a retry.
 */
int s3_list_multipart_uploads(struct s3_client *c, const char *prefix,
    int (*cb)(const char *key, const char *upload_id, void *arg), void *arg)
	__attribute__((warn_unused_result));

/*
 * Many transfers at once: an s3_multi drives the prepared requests of any
 * number of clients over an event loop (epoll), sharing connections
 * (keep-alive), the DNS cache and TLS sessions between them. Over 64
 * connections, a transport thread of the multi's own runs two thirds of
 * the transfers; every call below is still made by the one thread that
 * owns the multi, and a client is not to be touched between its start and
 * its return from s3_multi_done() or s3_multi_cancel(). Not thread-safe,
 * except s3_multi_wakeup().
 */
struct s3_multi;

/* max_host_connections: at most this many connections to the endpoint
 * (the uploads in flight); 0 for no limit. NULL with errno on failure. */
struct s3_multi *s3_multi_new(unsigned max_host_connections)
	__attribute__((warn_unused_result));
void s3_multi_free(struct s3_multi *m);

/* Starts c's prepared request; user comes back with it from
 * s3_multi_done(). A client is in at most one transfer. Returns 0, or
 * -ENOMEM (then c is not started). A start handed to the transport thread
 * that curl refuses there comes back from s3_multi_done() instead, as a
 * transient failure (-EIO, CURLE_OUT_OF_MEMORY). */
int s3_multi_start(struct s3_multi *m, struct s3_client *c, void *user)
	__attribute__((warn_unused_result));

/* Aborts c's transfer; it will not come back from s3_multi_done(). */
void s3_multi_cancel(struct s3_multi *m, struct s3_client *c);

/* Waits up to timeout_ms (0: not at all) for sockets to be ready, for
 * libcurl's own timers, or for s3_multi_wakeup(), and moves the transfers
 * on. Returns 0 or -errno (epoll). */
int s3_multi_wait(struct s3_multi *m, int timeout_ms);

/* The next finished transfer: its client, finished (*rc is 0 or -EIO, as
 * s3_perform() returns), and its user pointer; NULL when none is left. */
struct s3_client *s3_multi_done(struct s3_multi *m, int *rc, void **user);

/* Transfers started and not yet returned by s3_multi_done(). */
unsigned s3_multi_count(const struct s3_multi *m);

/* Interrupts s3_multi_wait(), from any thread (an eventfd write). */
void s3_multi_wakeup(struct s3_multi *m);

/* Writes the base64 of the big-endian CRC (8 characters and a NUL), the
 * form of x-amz-checksum-crc32c. */
void s3_crc32c_base64(uint32_t crc, char out[9]);

#endif /* S3RING_S3_H */
