/* creds_fetch.c -- one fetch from each credential source: STS, SSO, ECS, IMDS, a process */
/*
 * Every fetch is bounded: in time (libcurl timeouts, a deadline for a
 * process), in size (answers over CDOC_DOC_MAX are refused) and in what
 * it follows (no redirects, http and https only). Every buffer that held
 * a secret (a request body with a web identity token, an answer with
 * keys, a bearer token header) is wiped before it is freed. Error texts
 * name the service, the URL and the HTTP status, never a header or body
 * value, except the Code and Message of an STS error document, which
 * hold none.
 */
#include "creds_fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sigv4.h"

extern char **environ;

#define HEADER_MAX	(CREDS_TOKEN_MAX + 64)
#define BODY_MAX	(CDOC_DOC_MAX)

struct sink {
	char *buf;
	size_t cap, len;
	bool overflow;
};

static size_t
on_data(char *p, size_t sz, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t len = sz * n;

	/* One byte stays free for the NUL. */
	if (len >= s->cap - s->len) {
		s->overflow = true;
		return 0;	/* aborts the transfer */
	}
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	return len;
}

struct http_req {
	const char *what;	/* "STS", "IMDS", ... for errors */
	const char *method;
	const char *url;
	const char *const *headers;
	size_t nheaders;
	const char *body;	/* POST body or NULL */
	size_t body_len;
	long connect_ms, total_ms;
	bool no_proxy;		/* link-local agents: never via a proxy */
};

/*
 * Performs the request into s (s->buf of s->cap bytes, NUL-terminated on
 * return). Returns the HTTP status (> 0), or -EIO with err set.
 */
static int
http(const struct http_req *r, struct sink *s, struct cdoc_creds *out)
{
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *hl = NULL, *t;
	CURL *e;
	CURLcode rc = CURLE_OK;
	long status = 0;

	s->len = 0;
	s->overflow = false;
	e = curl_easy_init();
	if (e == NULL) {
		cdoc_errorf(out, "%s: cannot create a request", r->what);
		return -EIO;
	}
	for (size_t i = 0; i < r->nheaders; i++) {
		t = curl_slist_append(hl, r->headers[i]);
		if (t == NULL) {
			rc = CURLE_OUT_OF_MEMORY;
			break;
		}
		hl = t;
	}
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_URL, r->url);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, cerr);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->connect_ms);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->total_ms);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
	if (rc == CURLE_OK && r->no_proxy)
		rc = curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	if (rc == CURLE_OK && r->body != NULL) {
		rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body_len);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
	}
	if (rc == CURLE_OK && strcmp(r->method, "PUT") == 0)
		rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
	if (rc == CURLE_OK)
		rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	/* The list may hold a bearer token or an authorization value. */
	for (t = hl; t != NULL; t = t->next)
		explicit_bzero(t->data, strlen(t->data));
	curl_slist_free_all(hl);
	s->buf[s->len] = '\0';
	if (s->overflow) {
		cdoc_errorf(out, "%s: the answer from %s is larger than "
		    "%zu bytes", r->what, r->url, s->cap - 1);
		return -EIO;
	}
	if (rc != CURLE_OK) {
		cdoc_errorf(out, "%s: %s: %s", r->what, r->url,
		    cerr[0] ? cerr : curl_easy_strerror(rc));
		return -EIO;
	}
	return (int)status;
}

static struct sink *
sink_new(void)
{
	struct sink *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->cap = BODY_MAX + 1;
	s->buf = malloc(s->cap);
	if (s->buf == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

static void
sink_free(struct sink *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s->buf, s->cap);
	free(s->buf);
	free(s);
}

/* Maps a non-2xx status to an errno and an error line. */
static int
status_error(int status, const char *what, const char *url,
    struct cdoc_creds *out)
{
	cdoc_errorf(out, "%s: %s answered HTTP %d", what, url, status);
	return status == 401 || status == 403 ? -EACCES : status >= 500 ||
	    status == 429 ? -EIO : -EINVAL;
}

/* ------------------------------------------------------------ STS */

/* Appends "&name=value" (value form-encoded) at *len. */
static int
form_add(char *buf, size_t cap, size_t *len, const char *name,
    const char *value)
{
	int n = snprintf(buf + *len, cap - *len, "%s%s=", *len ? "&" : "", name);
	ssize_t m;

	if (n < 0 || (size_t)n >= cap - *len)
		return -E2BIG;
	*len += (size_t)n;
	m = sigv4_uri_encode(buf + *len, cap - *len, value, strlen(value), false);
	if (m < 0)
		return -E2BIG;
	*len += (size_t)m;
	return 0;
}

/* The host[:port] of a URL, for signing. */
static int
url_host(const char *url, char *out, size_t cap)
{
	const char *p = strstr(url, "://"), *e;

	p = p ? p + 3 : url;
	e = p + strcspn(p, "/?#");
	if (e == p || (size_t)(e - p) >= cap)
		return -EINVAL;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return 0;
}

static int
sts_sign(const struct cfetch_sts *req, const char *body, size_t blen,
    char hdr[][HEADER_MAX], size_t *nh, struct cdoc_creds *out)
{
	struct sigv4_credentials sc = {
		req->source->access_key_id, req->source->secret_access_key,
		req->source->session_token,
	};
	char host[256], sha[SIGV4_SHA256_HEX_LEN + 1];
	struct sigv4_kv h[2];
	struct sigv4_request sr = { 0 };
	struct sigv4_result res;
	struct sigv4_signer *signer;
	int rc;

	if (url_host(req->endpoint, host, sizeof(host)) < 0 ||
	    sigv4_sha256_hex(body, blen, sha) < 0) {
		cdoc_errorf(out, "STS: cannot sign for endpoint %s",
		    req->endpoint);
		return -EINVAL;
	}
	h[0] = (struct sigv4_kv){ "host", host };
	h[1] = (struct sigv4_kv){ "content-type",
	    "application/x-www-form-urlencoded; charset=utf-8" };
	sr.mode = SIGV4_MODE_GENERIC;
	sr.method = "POST";
	sr.path = "/";
	sr.headers = h;
	sr.nheaders = 2;
	sr.payload_sha256 = sha;
	sr.region = req->region;
	sr.service = "sts";
	signer = sigv4_signer_new();
	if (signer == NULL)
		return -ENOMEM;
	rc = sigv4_sign(signer, &sc, &sr, time(NULL), &res);
	if (rc == 0) {
		snprintf(hdr[(*nh)++], HEADER_MAX, "Authorization: %s",
		    res.authorization);
		snprintf(hdr[(*nh)++], HEADER_MAX, "X-Amz-Date: %s", res.amz_date);
		if (sc.session_token != NULL && sc.session_token[0] != '\0')
			snprintf(hdr[(*nh)++], HEADER_MAX,
			    "X-Amz-Security-Token: %s", sc.session_token);
	} else {
		cdoc_errorf(out, "STS: cannot sign the request: %s",
		    strerror(-rc));
	}
	explicit_bzero(&res, sizeof(res));
	sigv4_signer_free(signer);
	return rc;
}

int
cfetch_sts(const struct cfetch_sts *req, struct cdoc_creds *out)
{
	bool wi = req->web_identity_token != NULL;
	char url[CREDS_ENDPOINT_MAX + 8];
	char (*hdr)[HEADER_MAX] = NULL;
	const char *hp[5];
	struct sink *s = NULL;
	char *body = NULL;
	size_t blen = 0, nh = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(url, sizeof(url), "%s/", req->endpoint);
	body = malloc(BODY_MAX);
	hdr = calloc(4, sizeof(*hdr));
	s = sink_new();
	if (body == NULL || hdr == NULL || s == NULL) {
		rc = -ENOMEM;
		cdoc_errorf(out, "STS: out of memory");
		goto out_free;
	}
	rc = form_add(body, BODY_MAX, &blen, "Action", wi ?
	    "AssumeRoleWithWebIdentity" : "AssumeRole");
	if (rc == 0)
		rc = form_add(body, BODY_MAX, &blen, "Version", "2011-06-15");
	if (rc == 0)
		rc = form_add(body, BODY_MAX, &blen, "RoleArn", req->role_arn);
	if (rc == 0)
		rc = form_add(body, BODY_MAX, &blen, "RoleSessionName",
		    req->session_name);
	if (rc == 0 && wi)
		rc = form_add(body, BODY_MAX, &blen, "WebIdentityToken",
		    req->web_identity_token);
	if (rc == 0 && req->external_id != NULL)
		rc = form_add(body, BODY_MAX, &blen, "ExternalId",
		    req->external_id);
	if (rc == 0 && req->duration_s != NULL)
		rc = form_add(body, BODY_MAX, &blen, "DurationSeconds",
		    req->duration_s);
	if (rc < 0) {
		cdoc_errorf(out,
		    "STS: the request is too large");
		goto out_free;
	}
	snprintf(hdr[nh++], HEADER_MAX, "Content-Type: %s",
	    "application/x-www-form-urlencoded; charset=utf-8");
	/* AssumeRoleWithWebIdentity is unsigned: the token is the proof. */
	if (!wi) {
		rc = sts_sign(req, body, blen, hdr, &nh, out);
		if (rc < 0)
			goto out_free;
	}
	for (size_t i = 0; i < nh; i++)
		hp[i] = hdr[i];
	rc = http(&(struct http_req){ "STS", "POST", url, hp, nh, body, blen,
	    5000, 30000, false }, s, out);
	if (rc < 0)
		goto out_free;
	{
		int status = rc;
		rc = cdoc_parse_sts(s->buf, s->len, out);
		if (rc == -EACCES || (rc < 0 && status / 100 != 2)) {
			cdoc_errorf(out, "STS %s: HTTP %d: %s", wi ?
			    "AssumeRoleWithWebIdentity" : "AssumeRole", status,
			    out->error);
			rc = status >= 500 ? -EIO : -EACCES;
		} else if (rc < 0) {
			cdoc_errorf(out, "STS: malformed answer: %s",
			    out->error);
		}
	}

out_free:
	if (body != NULL)
		explicit_bzero(body, BODY_MAX);
	free(body);
	if (hdr != NULL)
		explicit_bzero(hdr, 4 * sizeof(*hdr));
	free(hdr);
	sink_free(s);
	return rc;
}

/* ------------------------------------------------------------ JSON sources */

/* GETs url with the given headers and parses the JSON answer. */
static int
get_json(const char *what, const char *url, const char *const *hp, size_t nh,
    bool no_proxy, enum cdoc_kind kind, struct cdoc_creds *out)
{
	struct sink *s = sink_new();
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL) {
		cdoc_errorf(out, "%s: out of memory", what);
		return -ENOMEM;
	}
	rc = http(&(struct http_req){ what, "GET", url, hp, nh, NULL, 0, 2000,
	    10000, no_proxy }, s, out);
	if (rc > 0 && rc / 100 != 2)
		rc = status_error(rc, what, url, out);
	if (rc > 0) {
		rc = cdoc_parse_json_creds(kind, s->buf, s->len, out);
		if (rc < 0) {
			cdoc_errorf(out, "%s: malformed answer from %s: %s",
			    what, url, out->error);
		}
	}
	sink_free(s);
	return rc;
}

int
cfetch_sso(const char *endpoint, const char *access_token,
    const char *account_id, const char *role_name, struct cdoc_creds *out)
{
	char url[CREDS_ENDPOINT_MAX + 512], a[128], r[256];
	char *hdr = malloc(HEADER_MAX);
	const char *hp[1];
	int rc;

	memset(out, 0, sizeof(*out));
	if (hdr == NULL)
		return -ENOMEM;
	if (sigv4_uri_encode(a, sizeof(a), account_id, strlen(account_id),
	    false) < 0 || sigv4_uri_encode(r, sizeof(r), role_name,
	    strlen(role_name), false) < 0) {
		cdoc_errorf(out,
		    "SSO: sso_account_id or sso_role_name is too long");
		rc = -EINVAL;
		goto out_free;
	}
	snprintf(url, sizeof(url), "%s/federation/credentials?account_id=%s&"
	    "role_name=%s", endpoint, a, r);
	snprintf(hdr, HEADER_MAX, "x-amz-sso_bearer_token: %s", access_token);
	hp[0] = hdr;
	rc = get_json("SSO GetRoleCredentials", url, hp, 1, false,
	    CDOC_SSO_ROLE, out);
	if (rc == -EACCES) {
		/* The portal answers 401/403 for an expired or revoked token. */
		size_t n = strlen(out->error);

		snprintf(out->error + n, sizeof(out->error) - n,
		    "; run aws sso login");
	}
out_free:
	explicit_bzero(hdr, HEADER_MAX);
	free(hdr);
	return rc;
}

int
cfetch_ecs(const char *url, const char *auth, struct cdoc_creds *out)
{
	char *hdr = NULL;
	const char *hp[1] = { NULL };
	int rc;

	memset(out, 0, sizeof(*out));
	if (auth != NULL) {
		if (strpbrk(auth, "\r\n") != NULL) {
			cdoc_errorf(out, "ECS: the "
			    "authorization token contains a line break");
			return -EINVAL;
		}
		hdr = malloc(HEADER_MAX);
		if (hdr == NULL)
			return -ENOMEM;
		snprintf(hdr, HEADER_MAX, "Authorization: %s", auth);
		hp[0] = hdr;
	}
	rc = get_json("ECS", url, hp, auth ? 1 : 0, true, CDOC_ECS, out);
	if (hdr != NULL)
		explicit_bzero(hdr, HEADER_MAX);
	free(hdr);
	return rc;
}

static bool
role_name_ok(const char *s)
{
	size_t n = strlen(s);

	/* IAM role names: alphanumerics and +=,.@_- (no '/', no '..'). */
	return n > 0 && n <= 128 &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+=,.@_-") == n;
}

int
cfetch_imds(const char *endpoint, struct cdoc_creds *out)
{
	static const char ttl[] = "X-aws-ec2-metadata-token-ttl-seconds: 21600";
	char url[CREDS_ENDPOINT_MAX + 256], hdr[600], role[160];
	const char *hp[1];
	struct sink *s = sink_new();
	int rc;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return -ENOMEM;
	snprintf(url, sizeof(url), "%s/latest/api/token", endpoint);
	hp[0] = ttl;
	/* A short connect timeout: off EC2 the address is unreachable, and
	 * the chain must not hang there. */
	rc = http(&(struct http_req){ "IMDS", "PUT", url, hp, 1, NULL, 0, 1000,
	    5000, true }, s, out);
	if (rc > 0 && rc / 100 != 2)
		rc = status_error(rc, "IMDS token", url, out);
	if (rc < 0)
		goto out_free;
	if (s->len == 0 || s->len > 512 || strpbrk(s->buf, "\r\n") != NULL) {
		cdoc_errorf(out,
		    "IMDS: %s gave no usable token", url);
		rc = -EINVAL;
		goto out_free;
	}
	snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s", s->buf);
	hp[0] = hdr;
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/",
	    endpoint);
	rc = http(&(struct http_req){ "IMDS", "GET", url, hp, 1, NULL, 0, 1000,
	    5000, true }, s, out);
	if (rc == 404) {
		cdoc_errorf(out,
		    "IMDS: the instance has no IAM role (HTTP 404 on %s)", url);
		rc = -ENOENT;
		goto out_free;
	}
	if (rc > 0 && rc / 100 != 2)
		rc = status_error(rc, "IMDS role", url, out);
	if (rc < 0)
		goto out_free;
	/* The first line names the role. */
	s->buf[strcspn(s->buf, "\r\n")] = '\0';
	if (!role_name_ok(s->buf) || strlen(s->buf) >= sizeof(role)) {
		cdoc_errorf(out,
		    "IMDS: %s named no valid role", url);
		rc = -EINVAL;
		goto out_free;
	}
	snprintf(role, sizeof(role), "%s", s->buf);
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s",
	    endpoint, role);
	rc = http(&(struct http_req){ "IMDS", "GET", url, hp, 1, NULL, 0, 1000,
	    5000, true }, s, out);
	if (rc > 0 && rc / 100 != 2)
		rc = status_error(rc, "IMDS credentials", url, out);
	if (rc > 0) {
		rc = cdoc_parse_json_creds(CDOC_IMDS, s->buf, s->len, out);
		if (rc < 0) {
			cdoc_errorf(out, "IMDS: malformed answer from "
			    "%s: %s", url, out->error);
		}
	}
out_free:
	explicit_bzero(hdr, sizeof(hdr));
	sink_free(s);
	return rc;
}

bool
cfetch_ecs_url_allowed(const char *url)
{
	static const char *const hosts[] = {
		"localhost", "[::1]", "169.254.170.2", "169.254.170.23",
		"[fd00:ec2::23]",
	};
	struct in_addr a;
	char host[256];

	if (strncasecmp(url, "https://", 8) == 0)
		return true;
	if (strncasecmp(url, "http://", 7) != 0 ||
	    url_host(url, host, sizeof(host)) < 0)
		return false;
	if (host[0] != '[')
		host[strcspn(host, ":")] = '\0';
	else
		host[strcspn(host, "]") + 1] = '\0';
	/* Any address of 127.0.0.0/8, written as an address: a name that
	 * merely starts with "127." is not loopback. */
	if (inet_pton(AF_INET, host, &a) == 1)
		return (ntohl(a.s_addr) >> 24) == 127 ||
		    strcmp(host, "169.254.170.2") == 0 ||
		    strcmp(host, "169.254.170.23") == 0;
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		if (strcasecmp(host, hosts[i]) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------ a process */

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
cfetch_process(const char *command, int timeout_s, struct cdoc_creds *out)
{
	char *argv[] = { "sh", "-c", (char *)command, NULL };
	posix_spawn_file_actions_t fa;
	long long deadline = mono_ms() + (long long)timeout_s * 1000;
	struct sink *s = sink_new();
	int fds[2] = { -1, -1 }, status = 0, rc;
	bool timed_out = false;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return -ENOMEM;
	s->cap = CDOC_DOC_MAX + 1;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		rc = -errno;
		cdoc_errorf(out,
		    "credential_process: pipe: %s", strerror(-rc));
		goto out_free;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	rc = -posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc < 0) {
		cdoc_errorf(out,
		    "credential_process: cannot run /bin/sh: %s", strerror(-rc));
		goto out_close;
	}
	for (;;) {
		struct pollfd pfd = { fds[0], POLLIN, 0 };
		long long left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		rc = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;
		if (s->len >= s->cap - 1) {
			s->overflow = true;
			break;
		}
		n = read(fds[0], s->buf + s->len, s->cap - 1 - s->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		s->len += (size_t)n;
	}
	if (timed_out || s->overflow)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	s->buf[s->len] = '\0';
	if (timed_out) {
		cdoc_errorf(out,
		    "credential_process did not finish within %d s; killed",
		    timeout_s);
		rc = -ETIMEDOUT;
	} else if (s->overflow) {
		cdoc_errorf(out,
		    "credential_process wrote more than %d bytes", CDOC_DOC_MAX);
		rc = -E2BIG;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status))
			cdoc_errorf(out,
			    "credential_process exited with status %d",
			    WEXITSTATUS(status));
		else
			cdoc_errorf(out,
			    "credential_process was killed by signal %d",
			    WTERMSIG(status));
		rc = -ECHILD;
	} else {
		rc = cdoc_parse_json_creds(CDOC_PROCESS, s->buf, s->len, out);
		if (rc < 0) {
			cdoc_errorf(out,
			    "credential_process: malformed output: %s", out->error);
		}
	}
out_close:
	close(fds[0]);
out_free:
	sink_free(s);
	return rc;
}
