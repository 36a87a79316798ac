/* creds.h -- the AWS SDKs' credential chain, its refresher, region and endpoint */
#ifndef S3RING_CREDS_H
#define S3RING_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The AWS SDKs' default credential chain, in their order; the first
 * source that is configured is used (a configured source that fails is an
 * error, it does not fall through to the next):
 *  env           AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 *  web-identity  AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *                (+ AWS_ROLE_SESSION_NAME): STS AssumeRoleWithWebIdentity,
 *                the token re-read from the file at each refresh;
 *  the profile   (creds_options.profile, AWS_PROFILE, "default") of the
 *                config file (AWS_CONFIG_FILE, ~/.aws/config, sections
 *                [profile NAME] and [default]) and the credentials file
 *                (creds_options.file, AWS_SHARED_CREDENTIALS_FILE,
 *                ~/.aws/credentials, sections [NAME]; its values win):
 *                role_arn with source_profile or credential_source
 *                (STS AssumeRole signed by the source's keys) or with
 *                web_identity_token_file -> "assume-role"/"web-identity";
 *                sso_account_id + sso_role_name with sso_start_url or
 *                sso_session -> "sso" (token from ~/.aws/sso/cache);
 *                aws_access_key_id + aws_secret_access_key ->
 *                "profile:NAME"; credential_process -> "process";
 *  ecs           AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on 169.254.170.2)
 *                or _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
 *                or AWS_CONTAINER_AUTHORIZATION_TOKEN;
 *  imds          EC2 IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT or
 *                http://169.254.169.254, unless AWS_EC2_METADATA_DISABLED=true.
 * STS is at AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL or
 * https://sts.REGION.amazonaws.com; the SSO portal at AWS_ENDPOINT_URL_SSO,
 * AWS_ENDPOINT_URL or https://portal.sso.SSO_REGION.amazonaws.com.
 *  region    creds_options.region, AWS_REGION, AWS_DEFAULT_REGION, the
 *            profile's "region", "us-east-1";
 *  endpoint  creds_options.endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
 *            the profile's "endpoint_url", else none (AWS itself).
 *
 * Temporary credentials are refreshed by a thread of their own, ahead of
 * their expiration (15 minutes before, or half their lifetime when that is
 * shorter), with backoff after a failure; callers keep signing with the
 * current keys meanwhile, so a refresh never blocks an upload. Keys only
 * change as a whole, under a lock held for a copy and never during I/O.
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
#define CREDS_PROFILE_MAX	128
#define CREDS_ARN_MAX		2048
#define CREDS_PATH_MAX		1024

/* A consistent copy of one set of keys. generation grows by one each time
 * the keys change, so a holder can tell whether its copy is current. The
 * token is last: a copy without one writes only its first byte, and the
 * pages under the rest of the array stay untouched. */
struct creds_secret {
	uint64_t generation;
	char access_key_id[CREDS_KEY_ID_MAX];
	char secret_access_key[CREDS_SECRET_MAX];
	char session_token[CREDS_TOKEN_MAX];	/* "" when none */
};

void creds_secret_wipe(struct creds_secret *s);

struct creds_options {
	const char *profile;
	const char *file;
	const char *region;
	const char *endpoint;
};

/* Loaded state; thread-safe: any thread may get, reload or ask. */
struct creds;

/*
 * Resolves everything above and fetches the first credentials (blocking:
 * it runs at start-up). Returns NULL with errno: ENOENT (no source
 * configured, or AWS_PROFILE names a profile that exists nowhere), EINVAL
 * (half-set environment, syntax error, profile without a credential
 * source, value too long), EACCES (STS, SSO, ECS or IMDS refused),
 * EKEYEXPIRED (the SSO login expired), EIO (a service unreachable),
 * ECHILD (credential_process failed), ENOMEM. The reason is logged in one
 * line. opt may be NULL.
 */
struct creds *creds_new(const struct creds_options *opt)
	__attribute__((warn_unused_result));

/* Stops the refresher, wipes and frees. A fetch in progress is waited
 * for 2 s at most; after that the refresher is left to end on its own and
 * c is not freed (meant for the exit of the process). NULL is allowed. */
void creds_free(struct creds *c);

/* Copies the current keys into *out, which holds an earlier copy or
 * zeros: of the old keys, only the tails past the new ones are wiped.
 * Returns 0. */
int creds_get(struct creds *c, struct creds_secret *out)
	__attribute__((warn_unused_result));

/* The generation creds_get() would return now. */
uint64_t creds_generation(struct creds *c);

/*
 * Static keys from a profile: re-reads the file that holds them if its
 * identity (inode, device, size, mtime) changed since the last read, or
 * unconditionally with force (S3 answered ExpiredToken). Temporary
 * credentials: with force, asks the refresher for a refresh now and
 * returns 2 at once (the new keys show up as a new generation); without,
 * returns 0. Returns 1 when the keys changed, 0 when they did not (or
 * they come from the environment, which cannot change), or -errno
 * when the file cannot be read or parsed: the previous keys stay in use.
 * A file that failed to load is not retried (nor logged again) until its
 * identity changes, so calling this every second is cheap and quiet; the
 * S3 client does exactly that before its requests.
 */
int creds_reload(struct creds *c, bool force)
	__attribute__((warn_unused_result));

/*
 * True when the current keys have expired and no refresh has replaced
 * them: a configuration alarm for the caller (uploads cannot succeed).
 * why (cap bytes) then names the source, the expiration and the last
 * refresh error. False for keys that do not expire.
 */
bool creds_expired(struct creds *c, char *why, size_t cap);

/* When the current keys expire (UTC seconds), 0 if they do not. */
int64_t creds_expiration(struct creds *c);

/* Fixed at creds_new(); valid until creds_free(). endpoint is NULL when
 * the default AWS endpoint applies. source is one of "env",
 * "web-identity", "profile:NAME", "process", "assume-role", "sso", "ecs",
 * "imds". */
const char *creds_region(const struct creds *c);
const char *creds_endpoint(const struct creds *c);
const char *creds_source(const struct creds *c);
const char *creds_profile(const struct creds *c);

/* Refresh timing, exposed for the tests. botocore refreshes 15 minutes
 * before expiry (advisory) and blocks for it at 10 (mandatory); here no
 * caller ever blocks, so only the advisory point matters. */
#define CREDS_ADVISORY_S	(15 * 60)
#define CREDS_PROCESS_TIMEOUT_S	30

/* When keys obtained at `obtained` that expire at `expiration` (UTC
 * seconds; 0 never) are due for refresh: 15 minutes before expiry, or at
 * half their life if that is earlier. INT64_MAX for keys that never
 * expire. */
int64_t creds_refresh_due(int64_t obtained, int64_t expiration);

/* Seconds to wait before the next attempt after `attempt` failed ones
 * (0, 1, ...): 1, 2, 4 ... 60, but at most a quarter of the time left
 * before expiration, at most 5 once the keys have expired, and at least 1. */
unsigned creds_retry_delay(unsigned attempt, int64_t now, int64_t expiration);

/* Writes a loggable form of an access key id ("AKIA...MPLE"). */
void creds_mask_key_id(const char *key_id, char *out, size_t cap);

/* ------------------------------------------------------------ the parser */

/* One section of a credentials or config file. Every field is "" when
 * the section does not set it. */
struct creds_profile {
	struct creds_secret keys;	/* generation unused */
	char region[CREDS_REGION_MAX];
	char endpoint_url[CREDS_ENDPOINT_MAX];
	char role_arn[CREDS_ARN_MAX];
	char source_profile[CREDS_PROFILE_MAX];
	char credential_source[32];
	char web_identity_token_file[CREDS_PATH_MAX];
	char role_session_name[80];
	char external_id[1280];
	char duration_seconds[16];
	char credential_process[CREDS_LINE_MAX];
	char sso_session[CREDS_PROFILE_MAX];
	char sso_start_url[CREDS_ENDPOINT_MAX];
	char sso_region[CREDS_REGION_MAX];
	char sso_account_id[32];
	char sso_role_name[128];
	/* The line of the first error, 0 if none. */
	unsigned error_line;
};

/*
 * Parses len bytes of INI text (need not be NUL-terminated) and fills *out
 * from section [profile] (the whole name between the brackets, e.g.
 * "dev", "profile dev" or "sso-session corp"; surrounding blanks ignored):
 * '#' and ';' start comment lines, keys are
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
