/* creds_fetch.h -- one fetch from each credential source: STS, SSO, ECS, IMDS, a process */
#ifndef S3RING_CREDS_FETCH_H
#define S3RING_CREDS_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "creds_doc.h"

/*
 * Each function performs one blocking fetch (bounded by its timeout) and
 * fills *out, or returns -errno with out->error saying why in one line
 * that names the service and never a secret. They are called by the
 * refresher in creds.c, never from an upload path. curl_global_init()
 * must have run. Endpoints are URLs without a trailing path
 * ("https://sts.eu-west-1.amazonaws.com", "http://127.0.0.1:8080").
 *
 * Return values: -EACCES the service refused (STS error document, HTTP
 * 401/403), -EIO the service could not be reached or answered 5xx,
 * -EINVAL the answer was malformed, -ETIMEDOUT a process that did not
 * finish, -ECHILD a process that exited non-zero.
 */

/* What STS call to make. */
struct cfetch_sts {
	const char *endpoint;
	const char *region;		/* signing region */
	const char *role_arn;
	const char *session_name;
	const char *web_identity_token;	/* AssumeRoleWithWebIdentity if set */
	const struct creds_secret *source; /* AssumeRole: signs the request */
	const char *external_id;	/* or NULL */
	const char *duration_s;		/* or NULL */
};

int cfetch_sts(const struct cfetch_sts *req, struct cdoc_creds *out)
	__attribute__((warn_unused_result));

/* SSO portal GetRoleCredentials with the cached access token. */
int cfetch_sso(const char *endpoint, const char *access_token,
    const char *account_id, const char *role_name, struct cdoc_creds *out)
	__attribute__((warn_unused_result));

/* ECS container endpoint: a GET of url, with "Authorization: auth" if
 * auth is not NULL. */
int cfetch_ecs(const char *url, const char *auth, struct cdoc_creds *out)
	__attribute__((warn_unused_result));

/* EC2 IMDSv2: a token, the role name, the role's document. */
int cfetch_imds(const char *endpoint, struct cdoc_creds *out)
	__attribute__((warn_unused_result));

/* Runs command with /bin/sh -c, stdin from /dev/null, stderr inherited,
 * and parses its stdout (at most CDOC_DOC_MAX bytes) as credential_process
 * JSON. timeout_s bounds the run; the child is killed after it. */
int cfetch_process(const char *command, int timeout_s, struct cdoc_creds *out)
	__attribute__((warn_unused_result));

/* True if url may carry an ECS full-URI credential request: HTTPS, or
 * HTTP to a loopback address or the ECS/EKS link-local agents (the SDKs'
 * rule, so a token is not sent to an arbitrary host in clear text). */
bool cfetch_ecs_url_allowed(const char *url);

#endif /* S3RING_CREDS_FETCH_H */
