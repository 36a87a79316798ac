/* creds_doc.h -- the documents credential sources answer with: JSON, STS XML, times */
#ifndef S3RING_CREDS_DOC_H
#define S3RING_CREDS_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "creds.h"

/*
 * Every parser here takes len bytes that need not be NUL-terminated and
 * may be hostile (a credential_process, a metadata service, an STS
 * stand-in), reads nothing past len, never allocates, and leaves every
 * output field NUL-terminated within its cap. They are fuzzed by
 * tests/fuzz/fuzz_creds.c. No parser logs: the caller names the source.
 */

#define CDOC_DOC_MAX	(64 * 1024)	/* longest document accepted */
#define CDOC_ERROR_MAX	256		/* incl. NUL */

/* Which JSON document: the field names differ, the meaning does not. */
enum cdoc_kind {
	/* credential_process stdout: Version (must be 1), AccessKeyId,
	 * SecretAccessKey, SessionToken, Expiration (ISO 8601, optional). */
	CDOC_PROCESS = 0,
	/* ECS container endpoint: AccessKeyId, SecretAccessKey, Token,
	 * Expiration. */
	CDOC_ECS = 1,
	/* EC2 IMDS role document: Code ("Success"), AccessKeyId,
	 * SecretAccessKey, Token, Expiration. */
	CDOC_IMDS = 2,
	/* SSO portal GetRoleCredentials: roleCredentials.{accessKeyId,
	 * secretAccessKey, sessionToken, expiration (epoch milliseconds)}. */
	CDOC_SSO_ROLE = 3,
};

/* One set of temporary or static keys. expiration is 0 when the source
 * gave none (the keys never expire). Wipe with cdoc_creds_wipe(). */
struct cdoc_creds {
	struct creds_secret keys;	/* generation unused */
	time_t expiration;
	/* What went wrong, for the log; never holds a secret. */
	char error[CDOC_ERROR_MAX];
};

void cdoc_creds_wipe(struct cdoc_creds *c);

/* Sets c->error from a format; the arguments may include c->error itself
 * (to prefix it). Cut at CDOC_ERROR_MAX: an error line is for people. */
void cdoc_errorf(struct cdoc_creds *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Parses a JSON credentials document of the given kind. Returns 0 with
 * out->keys and out->expiration set, or -EINVAL (malformed JSON, a
 * missing or mistyped field, Version not 1, Code not Success, a bad
 * Expiration) or -E2BIG (a value over its cap, a document over
 * CDOC_DOC_MAX), with out->error saying which.
 */
int cdoc_parse_json_creds(enum cdoc_kind kind, const char *buf, size_t len,
    struct cdoc_creds *out) __attribute__((warn_unused_result));

/*
 * Parses an STS AssumeRole or AssumeRoleWithWebIdentity answer: the
 * <Credentials> element (AccessKeyId, SecretAccessKey, SessionToken,
 * Expiration) of a success body, or the <Error> (Code, Message) of an
 * <ErrorResponse>. Returns 0 for credentials, -EACCES for an error
 * document (out->error is "Code: Message"), -EINVAL for anything else.
 */
int cdoc_parse_sts(const char *buf, size_t len, struct cdoc_creds *out)
	__attribute__((warn_unused_result));

/*
 * Reads an SSO token cache file (~/.aws/sso/cache/<sha1>.json): copies
 * accessToken into token (cap bytes) and sets *expires from expiresAt.
 * Returns 0, -EINVAL or -E2BIG; error (CDOC_ERROR_MAX bytes) says why.
 */
int cdoc_parse_sso_cache(const char *buf, size_t len, char *token,
    size_t cap, time_t *expires, char *error)
	__attribute__((warn_unused_result));

/*
 * Parses an ISO 8601 / RFC 3339 UTC time as AWS writes it:
 * "2026-12-01T10:00:00Z", with optional fractional seconds, and "Z",
 * "UTC" or a +HH:MM / -HH:MM offset. Returns 0 or -EINVAL.
 */
int cdoc_parse_time(const char *s, size_t len, time_t *out)
	__attribute__((warn_unused_result));

/*
 * Finds the value of the string or number member at path (names[0] in
 * the top-level object, names[1] in the object that is its value, ...)
 * and copies it, unescaped, into out. The whole document is validated
 * first. Returns 0, -ENOENT (no such member), -EINVAL (malformed
 * document, or the value is not a string or number), -E2BIG (value over
 * cap). Exposed for the tests and the fuzzer.
 */
int cdoc_json_get(const char *buf, size_t len, const char *const *names,
    size_t depth, char *out, size_t cap) __attribute__((warn_unused_result));

#endif /* S3RING_CREDS_DOC_H */
