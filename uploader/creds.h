/* creds.h -- AWS credentials, region and endpoint, the AWS CLI way */
#ifndef S3RING_CREDS_H
#define S3RING_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Where things come from, first match wins (as in the AWS CLI and SDKs):
 *  keys      AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN),
 *            else aws_access_key_id / aws_secret_access_key /
 *            aws_session_token of the profile in the credentials file;
 *  profile   creds_options.profile, AWS_PROFILE, "default";
 *  file      creds_options.file, AWS_SHARED_CREDENTIALS_FILE,
 *            $HOME/.aws/credentials ("~/" is expanded);
 *  region    creds_options.region, AWS_REGION, AWS_DEFAULT_REGION, the
 *            profile's "region", "us-east-1";
 *  endpoint  creds_options.endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
 *            the profile's "endpoint_url", else none (AWS itself).
 *
 * Secrets live only in struct creds (wiped on free) and in the
 * struct creds_secret copies callers take (wiped by creds_secret_wipe()).
 * No function here logs a secret or a session token, and error messages
 * never quote a line of the credentials file.
 */

#define CREDS_KEY_ID_MAX	128	/* incl. NUL */
#define CREDS_SECRET_MAX	128
#define CREDS_TOKEN_MAX		4096	/* STS tokens are ~1-2 KiB */
#define CREDS_REGION_MAX	64
#define CREDS_ENDPOINT_MAX	512
#define CREDS_LINE_MAX		8192	/* longest credentials-file line */
#define CREDS_FILE_MAX		(1 << 20)

/* A consistent copy of one set of keys. generation grows by one each time
 * the keys change, so a holder can tell whether its copy is current. */
struct creds_secret {
	char access_key_id[CREDS_KEY_ID_MAX];
	char secret_access_key[CREDS_SECRET_MAX];
	char session_token[CREDS_TOKEN_MAX];	/* "" when none */
	uint64_t generation;
};

void creds_secret_wipe(struct creds_secret *s);

struct creds_options {
	const char *profile;
	const char *file;
	const char *region;
	const char *endpoint;
};

/* Loaded state; thread-safe: any thread may get or reload. */
struct creds;

/*
 * Resolves everything above. Returns NULL with errno: ENOENT (no keys in
 * the environment and no such file or profile), EINVAL (half-set
 * environment, syntax error, profile without keys, value too long),
 * EACCES/EFBIG/... from reading the file, ENOMEM. The reason is logged.
 * opt may be NULL.
 */
struct creds *creds_new(const struct creds_options *opt)
	__attribute__((warn_unused_result));

/* Wipes and frees. NULL is allowed. */
void creds_free(struct creds *c);

/* Copies the current keys into *out. Returns 0. */
int creds_get(struct creds *c, struct creds_secret *out)
	__attribute__((warn_unused_result));

/* The generation creds_get() would return now. */
uint64_t creds_generation(struct creds *c);

/*
 * Re-reads the credentials file if its identity (inode, device, size,
 * mtime) changed since the last read, or unconditionally with force (S3
 * answered ExpiredToken). Returns 1 when the keys changed, 0 when they did
 * not (or they come from the environment, which cannot change), or -errno
 * when the file cannot be read or parsed: the previous keys stay in use.
 * A file that failed to load is not retried (nor logged again) until its
 * identity changes, so calling this every second is cheap and quiet; the
 * S3 client does exactly that before its requests.
 */
int creds_reload(struct creds *c, bool force)
	__attribute__((warn_unused_result));

/* Fixed at creds_new(); valid until creds_free(). endpoint is NULL when
 * the default AWS endpoint applies. source is "environment" or "file". */
const char *creds_region(const struct creds *c);
const char *creds_endpoint(const struct creds *c);
const char *creds_source(const struct creds *c);
const char *creds_profile(const struct creds *c);

/* Writes a loggable form of an access key id ("AKIA...MPLE"). */
void creds_mask_key_id(const char *key_id, char *out, size_t cap);

/* ------------------------------------------------------------ the parser */

/* One profile of a credentials file. */
struct creds_profile {
	struct creds_secret keys;	/* generation unused */
	char region[CREDS_REGION_MAX];
	char endpoint_url[CREDS_ENDPOINT_MAX];
	/* A key that asks for a credential source s3ring does not implement
	 * (credential_process, role_arn, sso_start_url, ...), or "". */
	char unsupported[32];
	/* The line of the first error, 0 if none. */
	unsigned error_line;
};

/*
 * Parses len bytes of INI text (need not be NUL-terminated) and fills *out
 * from section [profile]: '#' and ';' start comment lines, keys are
 * case-insensitive, "key = value" or "key: value" with surrounding
 * whitespace trimmed, CRLF accepted, later values win, indented
 * continuation lines are ignored. Returns 0 if the profile exists, -ENOENT
 * if not, -EINVAL for a syntax error and -E2BIG for a line over
 * CREDS_LINE_MAX or a value over its field, with out->error_line set.
 * *out is always initialised; the caller wipes it (creds_secret_wipe on
 * out->keys).
 */
int creds_parse_ini(const char *buf, size_t len, const char *profile,
    struct creds_profile *out) __attribute__((warn_unused_result));

#endif /* S3RING_CREDS_H */
