/* creds.c -- the AWS SDKs' credential chain, its refresher, region and endpoint */
/*
 * Secrets are held in struct creds (the current keys under its mutex, the
 * static keys of the chain's steps), in the struct creds_secret copies
 * that callers take, and briefly in the fetch buffers of creds_fetch.c.
 * All are wiped with explicit_bzero when they die, and so is every buffer
 * a credentials file or token passes through; struct creds is kept out of
 * core dumps. Log lines and error paths name the source, the file, the
 * profile and a masked access key id, never a value (the files
 * themselves are read by creds_ini.c, the services' answers parsed by
 * creds_doc.c and fetched by creds_fetch.c). The chain is resolved once,
 * in creds_new(), and immutable afterwards, so the refresher reads it
 * without the lock. The keys only ever change as a whole, under the lock,
 * with the generation bumped, and the lock is never held across I/O: an
 * upload that takes a copy never waits for a refresh.
 */
#include "creds.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "creds_doc.h"
#include "creds_fetch.h"
#include "creds_ini.h"
#include "log.h"

#define DEFAULT_REGION	"us-east-1"
#define DEFAULT_PROFILE	"default"
#define PROFILE_MAX	128


/* The ways to obtain keys. */
enum src_kind {
	SRC_ENV = 0,		/* static, from the environment */
	SRC_STATIC,		/* static, from a profile */
	SRC_WEB_IDENTITY,	/* STS AssumeRoleWithWebIdentity */
	SRC_ASSUME_ROLE,	/* STS AssumeRole, signed by the source before */
	SRC_PROCESS,		/* credential_process */
	SRC_SSO,		/* SSO portal GetRoleCredentials */
	SRC_ECS,		/* container credentials endpoint */
	SRC_IMDS,		/* EC2 instance metadata, IMDSv2 */
};

/* Longest chain: a source and up to four role_arn hops. */
#define CHAIN_MAX	5

/* One step of the chain. Filled by creds_new() and immutable after it,
 * so the refresher reads it without the lock. */
struct source {
	enum src_kind kind;
	char profile[PROFILE_MAX];
	struct creds_secret keys;		/* SRC_ENV, SRC_STATIC */
	char role_arn[CREDS_ARN_MAX];
	char session_name[80];
	char external_id[1280];
	char duration[16];
	char token_file[PATH_MAX];		/* web identity, ECS token */
	char command[CREDS_LINE_MAX];		/* SRC_PROCESS */
	char url[CREDS_ENDPOINT_MAX];		/* STS, SSO, ECS or IMDS */
	char ecs_token[CREDS_TOKEN_MAX];	/* when no token file */
	char sso_cache[PATH_MAX];
	char sso_account[32];
	char sso_role[128];
};

struct creds {
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* kick or stop, under lock */
	struct creds_secret cur;	/* guarded by lock */
	int64_t expiration;		/* guarded by lock; 0: never */
	char last_error[CDOC_ERROR_MAX];	/* guarded by lock */
	bool kick;			/* guarded by lock */
	bool stop;			/* guarded by lock */
	bool expiry_logged;		/* refresher only */
	bool have_thread;
	pthread_t thread;
	/* Static keys from a file: its identity, and the last file that
	 * failed to load, and whether the last stat failed: periodic checks
	 * then stay quiet until something changes, instead of logging the
	 * same error every second. */
	struct creds_file_ident ident;	/* guarded by lock */
	struct creds_file_ident failed;	/* guarded by lock */
	bool stat_failed;		/* guarded by lock */
	/* chain[nchain - 1] gives the keys; an assume-role step signs with
	 * the keys of the step before it. */
	struct source chain[CHAIN_MAX];
	size_t nchain;
	bool from_profile;		/* the chain came from a profile */
	char source_name[PROFILE_MAX + 16];
	char profile[PROFILE_MAX];
	char path[PATH_MAX];		/* the file of SRC_STATIC keys */
	char section[PROFILE_MAX + 16];	/* their section in it */
	char region[CREDS_REGION_MAX];
	char endpoint[CREDS_ENDPOINT_MAX];
};

void
creds_secret_wipe(struct creds_secret *s)
{
	if (s != NULL)
		explicit_bzero(s, sizeof(*s));
}

void
creds_mask_key_id(const char *key_id, char *out, size_t cap)
{
	size_t n = key_id ? strlen(key_id) : 0;

	if (cap == 0)
		return;
	/* Access key ids are not secret, but half of one is plenty to tell
	 * two apart in a log. */
	if (n < 12)
		snprintf(out, cap, "****");
	else
		snprintf(out, cap, "%.4s...%s", key_id, key_id + n - 4);
}

/* ------------------------------------------------------------ helpers */

static const char *
env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

static const char *
first_of(const char *a, const char *b, const char *c)
{
	return a ? a : b ? b : c;
}

static const char *
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

static int
set_string(char *dst, size_t cap, const char *src, const char *what)
{
	if (snprintf(dst, cap, "%s", src) >= (int)cap) {
		log_msg(LOG_LEVEL_ERROR, "%s is longer than %zu bytes", what,
		    cap - 1);
		return -EINVAL;
	}
	return 0;
}

static void
format_time(int64_t t, char *out, size_t cap)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(out, cap, "never");
	else
		strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * Reads a small file (a web identity or ECS token) into buf, without the
 * trailing line break. Returns 0, or -errno with err set.
 */
static int
read_token_file(const char *path, const char *what, char *buf, size_t cap,
    struct cdoc_creds *out)
{
	size_t got = 0;
	int fd, rc = 0;

	do {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		rc = -errno;
		cdoc_errorf(out, "cannot read %s %s: %s", what, path,
		    strerror(-rc));
		return rc;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			cdoc_errorf(out, "cannot read %s %s: %s", what,
			    path, strerror(-rc));
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == cap) {
			rc = -E2BIG;
			cdoc_errorf(out, "%s %s is larger than %zu bytes",
			    what, path, cap - 1);
			break;
		}
	}
	close(fd);
	while (rc == 0 && got > 0 && (buf[got - 1] == '\n' ||
	    buf[got - 1] == '\r' || buf[got - 1] == ' ' || buf[got - 1] == '\t'))
		got--;
	if (rc == 0 && got == 0) {
		rc = -EINVAL;
		cdoc_errorf(out, "%s %s is empty", what, path);
	}
	if (rc == 0 && memchr(buf, '\0', got) != NULL) {
		rc = -EINVAL;
		cdoc_errorf(out, "%s %s holds a NUL byte", what, path);
	}
	if (rc < 0)
		explicit_bzero(buf, cap);
	else
		buf[got] = '\0';
	return rc;
}

/* ------------------------------------------------------------ refresh */

int64_t
creds_refresh_due(int64_t obtained, int64_t expiration)
{
	int64_t life, window;

	if (expiration == 0)
		return INT64_MAX;
	/* botocore's advisory window is 15 minutes before expiry. Keys that
	 * live less than 30 minutes (a short STS session, a test) are
	 * refreshed at half their life instead, so they are never refreshed
	 * in a loop and never used until their last second. */
	life = expiration - obtained;
	window = life / 2 < CREDS_ADVISORY_S ? life / 2 : CREDS_ADVISORY_S;
	if (window < 1)
		window = 1;
	return expiration - window;
}

unsigned
creds_retry_delay(unsigned attempt, int64_t now, int64_t expiration)
{
	unsigned d = attempt >= 6 ? 60 : 1u << attempt;

	/* Keys that have expired stop all uploads: try again every few
	 * seconds, a cheap request, so uploads resume soon after the
	 * service does. */
	if (expiration != 0 && expiration <= now && d > 5)
		d = 5;

	/* Closer to expiry, retry more often, so a service that recovers
	 * is used before the keys run out; never faster than once a second. */
	if (expiration != 0 && expiration > now &&
	    (int64_t)d > (expiration - now) / 4)
		d = (unsigned)((expiration - now) / 4);
	return d < 1 ? 1 : d;
}

static int fetch(const struct creds *c, size_t i, struct cdoc_creds *out);

static int
fetch_sts(const struct creds *c, size_t i, struct cdoc_creds *out)
{
	const struct source *s = &c->chain[i];
	struct cfetch_sts req = {
		.endpoint = s->url, .region = c->region,
		.role_arn = s->role_arn, .session_name = s->session_name,
		.external_id = nonempty(s->external_id),
		.duration_s = nonempty(s->duration),
	};
	struct cdoc_creds *base = NULL;
	char *token = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (s->kind == SRC_WEB_IDENTITY) {
		/* Re-read every time: the kubelet rotates the file. */
		token = malloc(CREDS_TOKEN_MAX * 4);
		if (token == NULL)
			return -ENOMEM;
		rc = read_token_file(s->token_file, "web identity token file",
		    token, CREDS_TOKEN_MAX * 4, out);
		if (rc < 0)
			goto out_free;
		req.web_identity_token = token;
	} else {
		base = calloc(1, sizeof(*base));
		if (base == NULL)
			return -ENOMEM;
		rc = fetch(c, i - 1, base);
		if (rc < 0) {
			cdoc_errorf(out, "source credentials for %s: %s",
			    s->role_arn, base->error);
			goto out_free;
		}
		req.source = &base->keys;
	}
	rc = cfetch_sts(&req, out);
out_free:
	if (token != NULL)
		explicit_bzero(token, CREDS_TOKEN_MAX * 4);
	free(token);
	cdoc_creds_wipe(base);
	free(base);
	return rc;
}

static int
fetch_sso(const struct source *s, struct cdoc_creds *out)
{
	char *buf = malloc(CDOC_DOC_MAX + 1);
	char *token = malloc(CREDS_TOKEN_MAX);
	time_t expires = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (buf == NULL || token == NULL) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = read_token_file(s->sso_cache, "SSO token cache", buf,
	    CDOC_DOC_MAX + 1, out);
	if (rc == -ENOENT)
		cdoc_errorf(out, "no SSO token cache "
		    "%s for profile [%s]; run aws sso login", s->sso_cache,
		    s->profile);
	if (rc < 0)
		goto out_free;
	rc = cdoc_parse_sso_cache(buf, strlen(buf), token, CREDS_TOKEN_MAX,
	    &expires, out->error);
	if (rc < 0) {
		cdoc_errorf(out, "SSO token cache %s: %s",
		    s->sso_cache, out->error);
		goto out_free;
	}
	if (expires <= time(NULL)) {
		char when[32];

		format_time(expires, when, sizeof(when));
		cdoc_errorf(out, "the SSO token of "
		    "profile [%s] expired at %s; run aws sso login", s->profile,
		    when);
		rc = -EKEYEXPIRED;
		goto out_free;
	}
	rc = cfetch_sso(s->url, token, s->sso_account, s->sso_role, out);
out_free:
	if (buf != NULL)
		explicit_bzero(buf, CDOC_DOC_MAX + 1);
	if (token != NULL)
		explicit_bzero(token, CREDS_TOKEN_MAX);
	free(buf);
	free(token);
	return rc;
}

static int
fetch_ecs(const struct source *s, struct cdoc_creds *out)
{
	char *tok = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (s->token_file[0] != '\0') {
		tok = malloc(CREDS_TOKEN_MAX);
		if (tok == NULL)
			return -ENOMEM;
		rc = read_token_file(s->token_file, "ECS authorization token file",
		    tok, CREDS_TOKEN_MAX, out);
		if (rc == 0)
			rc = cfetch_ecs(s->url, tok, out);
		explicit_bzero(tok, CREDS_TOKEN_MAX);
		free(tok);
		return rc;
	}
	return cfetch_ecs(s->url, nonempty(s->ecs_token), out);
}

/* Obtains the keys of chain[i]. Blocking; called by creds_new() and the
 * refresher only. */
static int
fetch(const struct creds *c, size_t i, struct cdoc_creds *out)
{
	const struct source *s = &c->chain[i];

	switch (s->kind) {
	case SRC_ENV:
	case SRC_STATIC:
		memset(out, 0, sizeof(*out));
		memcpy(&out->keys, &s->keys, sizeof(out->keys));
		return 0;
	case SRC_WEB_IDENTITY:
	case SRC_ASSUME_ROLE:
		return fetch_sts(c, i, out);
	case SRC_PROCESS:
		return cfetch_process(s->command, CREDS_PROCESS_TIMEOUT_S, out);
	case SRC_SSO:
		return fetch_sso(s, out);
	case SRC_ECS:
		return fetch_ecs(s, out);
	case SRC_IMDS:
		return cfetch_imds(s->url, out);
	}
	return -EINVAL;
}

/* Takes new keys: a new generation, the expiry alarm over. */
static void
install(struct creds *c, const struct cdoc_creds *got)
{
	pthread_mutex_lock(&c->lock);
	memcpy(c->cur.access_key_id, got->keys.access_key_id,
	    sizeof(c->cur.access_key_id));
	memcpy(c->cur.secret_access_key, got->keys.secret_access_key,
	    sizeof(c->cur.secret_access_key));
	memcpy(c->cur.session_token, got->keys.session_token,
	    sizeof(c->cur.session_token));
	c->cur.generation++;
	c->expiration = got->expiration;
	c->last_error[0] = '\0';
	pthread_mutex_unlock(&c->lock);
}

static void *
refresher(void *arg)
{
	struct creds *c = arg;
	struct cdoc_creds *got = calloc(1, sizeof(*got));
	int64_t obtained = time(NULL), due;
	unsigned attempt = 0;

	if (got == NULL)
		return NULL;
	pthread_mutex_lock(&c->lock);
	due = creds_refresh_due(obtained, c->expiration);
	while (!c->stop) {
		int64_t now = time(NULL), exp = c->expiration;
		char masked[32], when[32];
		struct timespec ts;
		int rc;

		if (!c->expiry_logged && exp != 0 && now >= exp &&
		    c->last_error[0] != '\0') {
			c->expiry_logged = true;
			format_time(exp, when, sizeof(when));
			log_kv(LOG_LEVEL_ERROR, "credentials expired and could "
			    "not be refreshed", "source", c->source_name,
			    "expired", when, "error", c->last_error, (char *)NULL);
		}
		if (!c->kick && now < due) {
			/* Wake at least every second: the clock may jump, and
			 * the expiry above must be noticed on time. */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&c->wake, &c->lock, &ts);
			continue;
		}
		c->kick = false;
		pthread_mutex_unlock(&c->lock);

		rc = fetch(c, c->nchain - 1, got);
		now = time(NULL);
		if (rc == 0 && got->expiration != 0 && got->expiration <= now) {
			format_time(got->expiration, when, sizeof(when));
			snprintf(got->error, sizeof(got->error),
			    "the new credentials had already expired (at %s)",
			    when);
			rc = -EKEYEXPIRED;
		}
		if (rc == 0) {
			install(c, got);
			attempt = 0;
			obtained = now;
			due = creds_refresh_due(obtained, got->expiration);
			creds_mask_key_id(got->keys.access_key_id, masked,
			    sizeof(masked));
			format_time(got->expiration, when, sizeof(when));
			log_kv(LOG_LEVEL_INFO, "credentials refreshed", "source",
			    c->source_name, "key_id", masked, "expires", when,
			    (char *)NULL);
			pthread_mutex_lock(&c->lock);
			c->expiry_logged = false;
			continue;
		}
		pthread_mutex_lock(&c->lock);
		snprintf(c->last_error, sizeof(c->last_error), "%s", got->error);
		exp = c->expiration;
		pthread_mutex_unlock(&c->lock);
		due = now + creds_retry_delay(attempt, now, exp);
		attempt++;
		format_time(exp, when, sizeof(when));
		log_kv(LOG_LEVEL_WARN, "credentials refresh failed; the current "
		    "keys stay in use", "source", c->source_name, "error",
		    got->error, "expires", when, "retry_in_s",
		    (snprintf(masked, sizeof(masked), "%lld",
		    (long long)(due - now)), masked), (char *)NULL);
		cdoc_creds_wipe(got);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	cdoc_creds_wipe(got);
	free(got);
	return NULL;
}

/* ------------------------------------------------------------ the chain */

/* Paths and values the resolution needs, fixed at creds_new(). */
struct ctx {
	char cred_path[PATH_MAX];
	char config_path[PATH_MAX];
	char home_aws[PATH_MAX];	/* ~/.aws, for the SSO cache */
	char sts_url[CREDS_ENDPOINT_MAX];
	char session_name[80];
};

static struct source *
add_source(struct creds *c, enum src_kind kind, const char *profile)
{
	struct source *s;

	if (c->nchain == CHAIN_MAX) {
		log_msg(LOG_LEVEL_ERROR, "profile [%s]: more than %d role_arn "
		    "hops; check source_profile for a loop", profile,
		    CHAIN_MAX - 1);
		return NULL;
	}
	s = &c->chain[c->nchain++];
	s->kind = kind;
	snprintf(s->profile, sizeof(s->profile), "%s", profile);
	return s;
}

/* Keys from the environment. Returns 1 if set, 0 if not, -EINVAL if half. */
static int
keys_from_env(struct creds_secret *out)
{
	const char *ak = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *sk = env_nonempty("AWS_SECRET_ACCESS_KEY");
	const char *tok = env_nonempty("AWS_SESSION_TOKEN");

	if (ak == NULL && sk == NULL)
		return 0;
	if (ak == NULL || sk == NULL) {
		log_msg(LOG_LEVEL_ERROR, "%s is set but %s is not",
		    ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		    ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	if (set_string(out->access_key_id, sizeof(out->access_key_id), ak,
	    "AWS_ACCESS_KEY_ID") < 0 ||
	    set_string(out->secret_access_key,
	    sizeof(out->secret_access_key), sk, "AWS_SECRET_ACCESS_KEY") < 0 ||
	    set_string(out->session_token, sizeof(out->session_token),
	    tok ? tok : "", "AWS_SESSION_TOKEN") < 0)
		return -EINVAL;
	return 1;
}

/* ECS from the environment: 1 configured, 0 not, -EINVAL refused. */
static int
ecs_from_env(struct creds *c, const char *profile)
{
	const char *rel = env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tf = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	struct source *s;
	int n;

	if (rel == NULL && full == NULL)
		return 0;
	if (rel == NULL && !cfetch_ecs_url_allowed(full)) {
		log_msg(LOG_LEVEL_ERROR, "AWS_CONTAINER_CREDENTIALS_FULL_URI "
		    "%s is neither HTTPS nor a loopback or ECS/EKS agent "
		    "address", full);
		return -EINVAL;
	}
	s = add_source(c, SRC_ECS, profile);
	if (s == NULL)
		return -EINVAL;
	n = rel ? snprintf(s->url, sizeof(s->url), "http://169.254.170.2%s%s",
	    rel[0] == '/' ? "" : "/", rel) :
	    snprintf(s->url, sizeof(s->url), "%s", full);
	if (n < 0 || (size_t)n >= sizeof(s->url) ||
	    (tf && set_string(s->token_file, sizeof(s->token_file), tf,
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") < 0) ||
	    (!tf && tok && set_string(s->ecs_token, sizeof(s->ecs_token), tok,
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN") < 0)) {
		log_msg(LOG_LEVEL_ERROR, "the ECS credentials URI or token is "
		    "too long");
		return -EINVAL;
	}
	return 1;
}

/* IMDS unless disabled: 1 added, 0 disabled. */
static int
imds_from_env(struct creds *c, const char *profile)
{
	const char *dis = env_nonempty("AWS_EC2_METADATA_DISABLED");
	const char *ep = first_of(env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT"),
	    NULL, "http://169.254.169.254");
	struct source *s;
	size_t n;

	if (dis != NULL && strcasecmp(dis, "true") == 0)
		return 0;
	s = add_source(c, SRC_IMDS, profile);
	if (s == NULL || set_string(s->url, sizeof(s->url), ep,
	    "AWS_EC2_METADATA_SERVICE_ENDPOINT") < 0)
		return -EINVAL;
	n = strlen(s->url);
	while (n > 0 && s->url[n - 1] == '/')
		s->url[--n] = '\0';
	return 1;
}

/*
 * Loads profile name from both files, the credentials file's values
 * winning. Returns 0 (found in either), -ENOENT (in neither) or -errno
 * for a broken file (logged unless quiet). keys_in tells which file gave
 * the static keys and under which section.
 */
static int
load_profile(const struct ctx *x, const char *name, struct creds_profile *out,
    bool quiet, const char **keys_in, char *section, size_t seccap)
{
	struct creds_profile *tmp = calloc(1, sizeof(*tmp));
	struct creds_file_ident id;
	char sec[PROFILE_MAX + 16];
	bool found = false;
	int rc;

	memset(out, 0, sizeof(*out));
	if (tmp == NULL)
		return -ENOMEM;
	*keys_in = NULL;
	snprintf(sec, sizeof(sec), "profile %s", name);
	rc = creds_load_file(x->config_path, "config file", sec, tmp, &id, quiet);
	if (rc == -ENOENT && strcmp(name, DEFAULT_PROFILE) == 0) {
		snprintf(sec, sizeof(sec), "%s", name);
		rc = creds_load_file(x->config_path, "config file", sec, tmp, &id,
		    quiet);
	}
	if (rc == 0) {
		found = true;
		creds_merge_profile(out, tmp);
		if (out->keys.access_key_id[0] != '\0') {
			*keys_in = x->config_path;
			snprintf(section, seccap, "%s", sec);
		}
	} else if (rc != -ENOENT) {
		goto out_free;
	}
	rc = creds_load_file(x->cred_path, "credentials file", name, tmp, &id, quiet);
	if (rc == 0) {
		found = true;
		creds_merge_profile(out, tmp);
		if (tmp->keys.access_key_id[0] != '\0') {
			*keys_in = x->cred_path;
			snprintf(section, seccap, "%s", name);
		}
	} else if (rc != -ENOENT) {
		goto out_free;
	}
	rc = found ? 0 : -ENOENT;
out_free:
	explicit_bzero(tmp, sizeof(*tmp));
	free(tmp);
	return rc;
}

static int
sha1_hex(const char *s, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_Digest(s, strlen(s), md, &n, EVP_sha1(), NULL) != 1 || n != 20)
		return -EIO;
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* An sso_* profile: the token cache file and the portal endpoint. */
static int
add_sso(struct creds *c, const struct ctx *x, const char *name,
    const struct creds_profile *p)
{
	struct creds_profile *ss = NULL;
	const char *start = p->sso_start_url, *region = p->sso_region;
	const char *keys_in;
	char sec[PROFILE_MAX + 16], sha[41];
	struct source *s;
	int rc = -EINVAL;

	if (p->sso_account_id[0] == '\0' || p->sso_role_name[0] == '\0') {
		log_msg(LOG_LEVEL_ERROR, "profile [%s] is an SSO profile "
		    "without sso_account_id or sso_role_name", name);
		return -EINVAL;
	}
	if (p->sso_session[0] != '\0') {
		struct creds_file_ident id;

		ss = calloc(1, sizeof(*ss));
		if (ss == NULL)
			return -ENOMEM;
		snprintf(sec, sizeof(sec), "sso-session %s", p->sso_session);
		rc = creds_load_file(x->config_path, "config file", sec, ss, &id, false);
		if (rc < 0) {
			log_msg(LOG_LEVEL_ERROR, "profile [%s] names sso_session "
			    "%s, but %s has no [%s]", name, p->sso_session,
			    x->config_path, sec);
			goto out_free;
		}
		start = ss->sso_start_url;
		region = ss->sso_region;
	}
	(void)keys_in;
	rc = -EINVAL;
	if (start[0] == '\0' || region[0] == '\0') {
		log_msg(LOG_LEVEL_ERROR, "profile [%s]: no sso_start_url or "
		    "sso_region", name);
		goto out_free;
	}
	s = add_source(c, SRC_SSO, name);
	if (s == NULL)
		goto out_free;
	/* The AWS CLI names the cache after the SHA-1 of the session name
	 * (sso_session) or of the start URL (legacy profiles). */
	if (sha1_hex(p->sso_session[0] ? p->sso_session : start, sha) < 0)
		goto out_free;
	if (snprintf(s->sso_cache, sizeof(s->sso_cache), "%.*s/sso/cache/%s.json",
	    (int)(sizeof(s->sso_cache) - 64), x->home_aws, sha) < 0)
		goto out_free;
	snprintf(s->sso_account, sizeof(s->sso_account), "%s", p->sso_account_id);
	snprintf(s->sso_role, sizeof(s->sso_role), "%s", p->sso_role_name);
	if (nonempty(getenv("AWS_ENDPOINT_URL_SSO")) ||
	    nonempty(getenv("AWS_ENDPOINT_URL")))
		snprintf(s->url, sizeof(s->url), "%s", first_of(
		    env_nonempty("AWS_ENDPOINT_URL_SSO"),
		    env_nonempty("AWS_ENDPOINT_URL"), ""));
	else
		snprintf(s->url, sizeof(s->url),
		    "https://portal.sso.%s.amazonaws.com", region);
	rc = 0;
out_free:
	if (ss != NULL)
		explicit_bzero(ss, sizeof(*ss));
	free(ss);
	return rc;
}

static int resolve_profile(struct creds *c, const struct ctx *x,
    const char *name, unsigned depth);

/* The source keys of a role_arn profile. */
static int
resolve_role_source(struct creds *c, const struct ctx *x, const char *name,
    const struct creds_profile *p, unsigned depth)
{
	struct source *s;
	int rc;

	if (p->source_profile[0] != '\0') {
		if (strcmp(p->source_profile, name) == 0) {
			/* A profile that is its own source: its static keys. */
			if (p->keys.access_key_id[0] == '\0' ||
			    p->keys.secret_access_key[0] == '\0') {
				log_msg(LOG_LEVEL_ERROR, "profile [%s] is its own "
				    "source_profile but has no static keys", name);
				return -EINVAL;
			}
			s = add_source(c, SRC_STATIC, name);
			if (s == NULL)
				return -EINVAL;
			memcpy(&s->keys, &p->keys, sizeof(s->keys));
			return 0;
		}
		return resolve_profile(c, x, p->source_profile, depth + 1);
	}
	if (strcasecmp(p->credential_source, "Environment") == 0) {
		s = add_source(c, SRC_ENV, name);
		if (s == NULL)
			return -EINVAL;
		rc = keys_from_env(&s->keys);
		if (rc == 0)
			log_msg(LOG_LEVEL_ERROR, "profile [%s] has "
			    "credential_source = Environment, but "
			    "AWS_ACCESS_KEY_ID is not set", name);
		return rc > 0 ? 0 : -EINVAL;
	}
	if (strcasecmp(p->credential_source, "Ec2InstanceMetadata") == 0) {
		rc = imds_from_env(c, name);
		if (rc == 0)
			log_msg(LOG_LEVEL_ERROR, "profile [%s] has "
			    "credential_source = Ec2InstanceMetadata, but "
			    "AWS_EC2_METADATA_DISABLED is true", name);
		return rc > 0 ? 0 : -EINVAL;
	}
	if (strcasecmp(p->credential_source, "EcsContainer") == 0) {
		rc = ecs_from_env(c, name);
		if (rc == 0)
			log_msg(LOG_LEVEL_ERROR, "profile [%s] has "
			    "credential_source = EcsContainer, but no "
			    "AWS_CONTAINER_CREDENTIALS_*_URI is set", name);
		return rc > 0 ? 0 : -EINVAL;
	}
	if (p->credential_source[0] != '\0')
		log_msg(LOG_LEVEL_ERROR, "profile [%s]: credential_source %s is "
		    "not one of Environment, Ec2InstanceMetadata, EcsContainer",
		    name, p->credential_source);
	else
		log_msg(LOG_LEVEL_ERROR, "profile [%s] has role_arn but neither "
		    "source_profile, credential_source nor "
		    "web_identity_token_file", name);
	return -EINVAL;
}

static void
role_fields(struct source *s, const struct ctx *x,
    const struct creds_profile *p)
{
	snprintf(s->role_arn, sizeof(s->role_arn), "%s", p->role_arn);
	snprintf(s->session_name, sizeof(s->session_name), "%s",
	    p->role_session_name[0] ? p->role_session_name : x->session_name);
	snprintf(s->external_id, sizeof(s->external_id), "%s", p->external_id);
	snprintf(s->duration, sizeof(s->duration), "%s", p->duration_seconds);
	snprintf(s->url, sizeof(s->url), "%s", x->sts_url);
}

/* True if the profile says anything about credentials. */
static bool
has_credential_settings(const struct creds_profile *p)
{
	return p->keys.access_key_id[0] || p->keys.secret_access_key[0] ||
	    p->keys.session_token[0] || p->role_arn[0] ||
	    p->source_profile[0] || p->credential_source[0] ||
	    p->web_identity_token_file[0] || p->credential_process[0] ||
	    p->sso_session[0] || p->sso_start_url[0] ||
	    p->sso_account_id[0] || p->sso_role_name[0];
}

/*
 * Appends the steps that give profile name's keys to c->chain. Every
 * refusal is logged in one line naming the profile. Returns 0, -ENOENT
 * (no such profile), -EINVAL, or -ENODATA, not logged, for a top-level
 * profile that has no credential settings at all.
 */
static int
resolve_profile(struct creds *c, const struct ctx *x, const char *name,
    unsigned depth)
{
	struct creds_profile *p = calloc(1, sizeof(*p));
	const char *keys_in = NULL;
	char section[PROFILE_MAX + 16] = "";
	struct source *s;
	int rc;

	if (p == NULL)
		return -ENOMEM;
	rc = load_profile(x, name, p, false, &keys_in, section, sizeof(section));
	if (rc == -ENOENT)
		log_msg(LOG_LEVEL_ERROR, "profile [%s] not found in %s or %s",
		    name, x->cred_path, x->config_path);
	if (rc < 0)
		goto out_free;
	rc = -EINVAL;
	if (depth >= CHAIN_MAX - 1) {
		log_msg(LOG_LEVEL_ERROR, "profile [%s]: more than %d role_arn "
		    "hops; check source_profile for a loop", name, CHAIN_MAX - 1);
		goto out_free;
	}
	if (p->role_arn[0] != '\0' && p->web_identity_token_file[0] != '\0') {
		s = add_source(c, SRC_WEB_IDENTITY, name);
		if (s == NULL)
			goto out_free;
		role_fields(s, x, p);
		if (creds_expand_home(p->web_identity_token_file, s->token_file,
		    sizeof(s->token_file)) < 0)
			goto out_free;
		rc = 0;
	} else if (p->role_arn[0] != '\0') {
		rc = resolve_role_source(c, x, name, p, depth);
		if (rc < 0)
			goto out_free;
		rc = -EINVAL;
		s = add_source(c, SRC_ASSUME_ROLE, name);
		if (s == NULL)
			goto out_free;
		role_fields(s, x, p);
		rc = 0;
	} else if (p->sso_session[0] || p->sso_start_url[0] ||
	    p->sso_account_id[0] || p->sso_role_name[0]) {
		rc = add_sso(c, x, name, p);
	} else if (p->keys.access_key_id[0] != '\0' &&
	    p->keys.secret_access_key[0] != '\0') {
		s = add_source(c, SRC_STATIC, name);
		if (s == NULL)
			goto out_free;
		memcpy(&s->keys, &p->keys, sizeof(s->keys));
		if (depth == 0 && keys_in != NULL) {
			snprintf(c->path, sizeof(c->path), "%s", keys_in);
			snprintf(c->section, sizeof(c->section), "%s", section);
		}
		rc = 0;
	} else if (p->credential_process[0] != '\0') {
		s = add_source(c, SRC_PROCESS, name);
		if (s == NULL)
			goto out_free;
		snprintf(s->command, sizeof(s->command), "%s",
		    p->credential_process);
		rc = 0;
	} else if (depth == 0 && !has_credential_settings(p)) {
		/* A profile of settings only ([default] with a region, as on
		 * many EC2 hosts): the chain goes on, as in the SDKs. */
		rc = -ENODATA;
	} else {
		log_msg(LOG_LEVEL_ERROR, "profile [%s] in %s / %s lacks "
		    "aws_access_key_id or aws_secret_access_key (and has no "
		    "role_arn, sso_*, or credential_process)", name,
		    x->cred_path, x->config_path);
	}
out_free:
	explicit_bzero(p, sizeof(*p));
	free(p);
	return rc;
}

static void
name_source(struct creds *c)
{
	static const char *const names[] = {
		[SRC_ENV] = "env", [SRC_STATIC] = "profile",
		[SRC_WEB_IDENTITY] = "web-identity",
		[SRC_ASSUME_ROLE] = "assume-role", [SRC_PROCESS] = "process",
		[SRC_SSO] = "sso", [SRC_ECS] = "ecs", [SRC_IMDS] = "imds",
	};
	const struct source *s = &c->chain[c->nchain - 1];

	if (s->kind == SRC_STATIC)
		snprintf(c->source_name, sizeof(c->source_name), "profile:%s",
		    s->profile);
	else
		snprintf(c->source_name, sizeof(c->source_name), "%s",
		    names[s->kind]);
}

/* Fills x and the region and endpoint; prof is the top profile (quietly
 * loaded, for its region and endpoint_url). */
static int
setup_ctx(struct creds *c, const struct creds_options *opt, struct ctx *x,
    struct creds_profile *prof, bool *profile_found)
{
	const char *file, *cfg, *region, *endpoint, *sts, *keys_in;
	char section[PROFILE_MAX + 16];
	int rc;

	file = first_of(opt->file, env_nonempty("AWS_SHARED_CREDENTIALS_FILE"),
	    "~/.aws/credentials");
	cfg = first_of(env_nonempty("AWS_CONFIG_FILE"), NULL, "~/.aws/config");
	rc = creds_expand_home(file, x->cred_path, sizeof(x->cred_path));
	if (rc == 0)
		rc = creds_expand_home(cfg, x->config_path, sizeof(x->config_path));
	if (rc == 0)
		rc = creds_expand_home("~/.aws", x->home_aws, sizeof(x->home_aws));
	if (rc < 0) {
		log_msg(LOG_LEVEL_ERROR, "cannot resolve the AWS file paths: %s",
		    strerror(-rc));
		return rc;
	}
	*profile_found = load_profile(x, c->profile, prof, true, &keys_in,
	    section, sizeof(section)) == 0;
	if (!*profile_found)
		memset(prof, 0, sizeof(*prof));

	region = first_of(opt->region, env_nonempty("AWS_REGION"),
	    first_of(env_nonempty("AWS_DEFAULT_REGION"),
	    nonempty(prof->region), DEFAULT_REGION));
	endpoint = first_of(opt->endpoint, env_nonempty("AWS_ENDPOINT_URL_S3"),
	    first_of(env_nonempty("AWS_ENDPOINT_URL"),
	    nonempty(prof->endpoint_url), ""));
	rc = set_string(c->region, sizeof(c->region), region, "region");
	if (rc == 0)
		rc = set_string(c->endpoint, sizeof(c->endpoint), endpoint,
		    "endpoint");
	if (rc < 0)
		return rc;
	sts = first_of(env_nonempty("AWS_ENDPOINT_URL_STS"),
	    env_nonempty("AWS_ENDPOINT_URL"), NULL);
	if (sts != NULL)
		rc = set_string(x->sts_url, sizeof(x->sts_url), sts,
		    "AWS_ENDPOINT_URL_STS");
	else
		snprintf(x->sts_url, sizeof(x->sts_url),
		    "https://sts.%s.amazonaws.com", c->region);
	snprintf(x->session_name, sizeof(x->session_name), "s3ring-%lld",
	    (long long)time(NULL));
	return rc;
}

/* Builds the chain. Returns 0, or -errno with the reason logged. */
static int
resolve(struct creds *c, const struct creds_options *opt, const struct ctx *x,
    bool profile_found)
{
	const char *wi_file = env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *wi_role = env_nonempty("AWS_ROLE_ARN");
	struct source *s;
	int rc;

	s = add_source(c, SRC_ENV, c->profile);
	rc = keys_from_env(&s->keys);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	c->nchain = 0;
	memset(s, 0, sizeof(*s));

	if (wi_file != NULL && wi_role != NULL) {
		const char *sn = env_nonempty("AWS_ROLE_SESSION_NAME");

		s = add_source(c, SRC_WEB_IDENTITY, c->profile);
		snprintf(s->role_arn, sizeof(s->role_arn), "%s", wi_role);
		snprintf(s->session_name, sizeof(s->session_name), "%s",
		    sn ? sn : x->session_name);
		snprintf(s->url, sizeof(s->url), "%s", x->sts_url);
		if (snprintf(s->token_file, sizeof(s->token_file), "%s",
		    wi_file) >= (int)sizeof(s->token_file))
			return -ENAMETOOLONG;
		return 0;
	}
	if (profile_found) {
		c->from_profile = true;
		rc = resolve_profile(c, x, c->profile, 0);
		if (rc != -ENODATA)
			return rc;
		c->from_profile = false;
		c->nchain = 0;
	} else if (opt->profile != NULL || env_nonempty("AWS_PROFILE") != NULL) {
		log_msg(LOG_LEVEL_ERROR, "profile [%s] not found in %s or %s",
		    c->profile, x->cred_path, x->config_path);
		return -ENOENT;
	}
	rc = ecs_from_env(c, c->profile);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	rc = imds_from_env(c, c->profile);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	/* One line that says what to do, not two. */
	log_msg(LOG_LEVEL_ERROR, "no credentials: set AWS_ACCESS_KEY_ID and "
	    "AWS_SECRET_ACCESS_KEY, or create %s (or a profile in %s)",
	    x->cred_path, x->config_path);
	return -ENOENT;
}

/* ------------------------------------------------------------ the API */

/* struct creds on pages of its own, left out of core dumps: a crash
 * report must not carry the keys. */
static size_t
creds_alloc_size(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t p = pg > 0 ? (size_t)pg : 4096;

	return (sizeof(struct creds) + p - 1) / p * p;
}

static struct creds *
creds_alloc(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t sz = creds_alloc_size();
	void *p = NULL;

	if (posix_memalign(&p, pg > 0 ? (size_t)pg : 4096, sz) != 0)
		return NULL;
	memset(p, 0, sz);
	/* Best effort: without it the keys are merely dumpable, as before. */
	(void)madvise(p, sz, MADV_DONTDUMP);
	return p;
}

struct creds *
creds_new(const struct creds_options *opt)
{
	static const struct creds_options none;
	struct creds_profile *prof = NULL;
	struct cdoc_creds *got = NULL;
	struct ctx *x = NULL;
	struct creds *c;
	char masked[32], when[32];
	bool found = false;
	int rc;

	if (opt == NULL)
		opt = &none;
	c = creds_alloc();
	prof = calloc(1, sizeof(*prof));
	got = calloc(1, sizeof(*got));
	x = calloc(1, sizeof(*x));
	if (c == NULL || prof == NULL || got == NULL || x == NULL) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = -pthread_mutex_init(&c->lock, NULL);
	if (rc < 0)
		goto out_free;
	rc = -pthread_cond_init(&c->wake, NULL);
	if (rc < 0)
		goto out_mutex;

	rc = set_string(c->profile, sizeof(c->profile), first_of(opt->profile,
	    env_nonempty("AWS_PROFILE"), DEFAULT_PROFILE), "profile name");
	if (rc == 0)
		rc = setup_ctx(c, opt, x, prof, &found);
	if (rc == 0)
		rc = resolve(c, opt, x, found);
	if (rc < 0)
		goto out_cond;
	name_source(c);

	rc = fetch(c, c->nchain - 1, got);
	if (rc == 0 && got->expiration != 0 && got->expiration <= time(NULL)) {
		format_time(got->expiration, when, sizeof(when));
		snprintf(got->error, sizeof(got->error),
		    "the credentials had already expired (at %s)", when);
		rc = -EKEYEXPIRED;
	}
	if (rc < 0) {
		if (c->chain[c->nchain - 1].kind == SRC_IMDS && c->nchain == 1) {
			/* Nothing else was configured: say what to do first. */
			log_msg(LOG_LEVEL_ERROR, "no credentials: set "
			    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
			    "create %s (or a profile in %s); %s", x->cred_path,
			    x->config_path, got->error);
			rc = -ENOENT;
		} else {
			log_kv(LOG_LEVEL_ERROR, "cannot obtain credentials",
			    "source", c->source_name, "error", got->error,
			    (char *)NULL);
		}
		goto out_cond;
	}
	c->cur.generation = 0;
	install(c, got);
	if (c->chain[c->nchain - 1].kind == SRC_STATIC && c->path[0] != '\0')
			if (creds_reload(c, false) < 0)	/* records the file identity */
			log_msg(LOG_LEVEL_DEBUG, "credentials file not noted");
	if (c->chain[c->nchain - 1].kind != SRC_ENV &&
	    c->chain[c->nchain - 1].kind != SRC_STATIC) {
		rc = -pthread_create(&c->thread, NULL, refresher, c);
		if (rc < 0) {
			log_msg(LOG_LEVEL_ERROR, "cannot start the credentials "
			    "refresher: %s", strerror(-rc));
			goto out_cond;
		}
		c->have_thread = true;
	}

	creds_mask_key_id(got->keys.access_key_id, masked, sizeof(masked));
	format_time(got->expiration, when, sizeof(when));
	log_kv(LOG_LEVEL_INFO, "credentials loaded", "source", c->source_name,
	    "profile", c->from_profile ? c->profile : "-", "key_id", masked, "session_token",
	    got->keys.session_token[0] ? "yes" : "no", "expires", when,
	    "region", c->region, "endpoint", c->endpoint[0] ? c->endpoint :
	    "aws", (char *)NULL);
	cdoc_creds_wipe(got);
	free(got);
	explicit_bzero(prof, sizeof(*prof));
	free(prof);
	free(x);
	return c;

out_cond:
	pthread_cond_destroy(&c->wake);
out_mutex:
	pthread_mutex_destroy(&c->lock);
out_free:
	if (prof != NULL)
		explicit_bzero(prof, sizeof(*prof));
	free(prof);
	cdoc_creds_wipe(got);
	free(got);
	free(x);
	if (c != NULL)
		explicit_bzero(c, sizeof(*c));
	free(c);
	errno = -rc;
	return NULL;
}

void
creds_free(struct creds *c)
{
	if (c == NULL)
		return;
	if (c->have_thread) {
		struct timespec ts;

		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->lock);
		/* A fetch in progress ends within its timeout (up to 30 s),
		 * longer than a stop may take. Past 2 s, the thread is left to
		 * finish on its own and c is not freed (it still uses it):
		 * only the exit of the process follows a creds_free(). */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		if (pthread_timedjoin_np(c->thread, NULL, &ts) != 0) {
			log_msg(LOG_LEVEL_DEBUG, "credentials refresher still "
			    "fetching; not waiting for it");
			return;
		}
	}
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

/* Copies a NUL-terminated secret over the previous one in an array of
 * size bytes: the bytes of the string and the old string's tail, not the
 * whole array, whose untouched pages (most of a 4 KiB token field) then
 * stay unallocated in the clients that hold copies. Both lengths are
 * bounded by the array, so an array that holds no string is no overrun. */
static void
secret_field(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1), old = strnlen(dst, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
	if (old > n)
		explicit_bzero(dst + n + 1, old - n);
}

#define SECRET_FIELD(dst, src) secret_field((dst), sizeof(dst), (src))

int
creds_get(struct creds *c, struct creds_secret *out)
{
	pthread_mutex_lock(&c->lock);
	SECRET_FIELD(out->access_key_id, c->cur.access_key_id);
	SECRET_FIELD(out->secret_access_key, c->cur.secret_access_key);
	SECRET_FIELD(out->session_token, c->cur.session_token);
	out->generation = c->cur.generation;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

uint64_t
creds_generation(struct creds *c)
{
	uint64_t g;

	pthread_mutex_lock(&c->lock);
	g = c->cur.generation;
	pthread_mutex_unlock(&c->lock);
	return g;
}

int64_t
creds_expiration(struct creds *c)
{
	int64_t e;

	pthread_mutex_lock(&c->lock);
	e = c->expiration;
	pthread_mutex_unlock(&c->lock);
	return e;
}

bool
creds_expired(struct creds *c, char *why, size_t cap)
{
	char when[32], err[CDOC_ERROR_MAX];
	int64_t exp;

	pthread_mutex_lock(&c->lock);
	exp = c->expiration;
	memcpy(err, c->last_error, sizeof(err));
	pthread_mutex_unlock(&c->lock);
	if (exp == 0 || time(NULL) < exp)
		return false;
	format_time(exp, when, sizeof(when));
	snprintf(why, cap, "ExpiredToken: the credentials from %s expired at "
	    "%s and were not refreshed%s%s", c->source_name, when,
	    err[0] ? ": " : "", err);
	return true;
}

/* Static keys of a profile: the file changed, or force. */
static int
reload_file(struct creds *c, bool force)
{
	struct creds_profile *prof;
	struct creds_file_ident now = { 0 }, loaded = { 0 };
	struct stat st;
	char masked[32];
	bool same;
	int rc;

	if (stat(c->path, &st) < 0) {
		bool first;

		rc = -errno;
		pthread_mutex_lock(&c->lock);
		first = !c->stat_failed;
		c->stat_failed = true;
		pthread_mutex_unlock(&c->lock);
		if (first || force)
			log_msg(LOG_LEVEL_WARN,
			    "cannot stat credentials file %s: %s; keeping the "
			    "current keys", c->path, strerror(-rc));
		return rc;
	}
	creds_ident_from_stat(&now, &st);
	pthread_mutex_lock(&c->lock);
	c->stat_failed = false;
	same = creds_ident_equal(&now, &c->ident) || creds_ident_equal(&now, &c->failed);
	if (!c->ident.valid && c->cur.generation == 1 && !force) {
		/* The first call, from creds_new(): just note the file. */
		c->ident = now;
		same = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (same && !force)
		return 0;

	prof = calloc(1, sizeof(*prof));
	if (prof == NULL)
		return -ENOMEM;
	rc = creds_load_file(c->path, "credentials file", c->section, prof, &loaded,
	    false);
	if (rc == -ENOENT)
		log_msg(LOG_LEVEL_ERROR, "profile [%s] not found in %s",
		    c->section, c->path);
	if (rc == 0 && (prof->keys.access_key_id[0] == '\0' ||
	    prof->keys.secret_access_key[0] == '\0')) {
		log_msg(LOG_LEVEL_ERROR, "profile [%s] in %s lacks "
		    "aws_access_key_id or aws_secret_access_key", c->section,
		    c->path);
		rc = -EINVAL;
	}
	if (rc < 0) {
		log_msg(LOG_LEVEL_WARN, "credentials file %s not reloaded; "
		    "keeping the current keys", c->path);
		pthread_mutex_lock(&c->lock);
		c->failed = now;
		pthread_mutex_unlock(&c->lock);
		goto out_wipe;
	}

	pthread_mutex_lock(&c->lock);
	c->ident = loaded;
	if (strcmp(c->cur.access_key_id, prof->keys.access_key_id) == 0 &&
	    strcmp(c->cur.secret_access_key, prof->keys.secret_access_key) == 0 &&
	    strcmp(c->cur.session_token, prof->keys.session_token) == 0) {
		rc = 0;
	} else {
		memcpy(c->cur.access_key_id, prof->keys.access_key_id,
		    sizeof(c->cur.access_key_id));
		memcpy(c->cur.secret_access_key, prof->keys.secret_access_key,
		    sizeof(c->cur.secret_access_key));
		memcpy(c->cur.session_token, prof->keys.session_token,
		    sizeof(c->cur.session_token));
		c->cur.generation++;
		rc = 1;
	}
	creds_mask_key_id(c->cur.access_key_id, masked, sizeof(masked));
	pthread_mutex_unlock(&c->lock);
	log_kv(LOG_LEVEL_INFO, rc == 1 ? "credentials reloaded" :
	    "credentials file re-read, keys unchanged", "file", c->path,
	    "key_id", masked, (char *)NULL);

out_wipe:
	explicit_bzero(prof, sizeof(*prof));
	free(prof);
	return rc;
}

int
creds_reload(struct creds *c, bool force)
{
	if (c->have_thread) {
		if (force) {
			pthread_mutex_lock(&c->lock);
			c->kick = true;
			pthread_cond_signal(&c->wake);
			pthread_mutex_unlock(&c->lock);
			return 2;
		}
		return 0;
	}
	if (c->chain[c->nchain - 1].kind != SRC_STATIC || c->path[0] == '\0')
		return 0;
	return reload_file(c, force);
}

const char *
creds_region(const struct creds *c)
{
	return c->region;
}

const char *
creds_endpoint(const struct creds *c)
{
	return c->endpoint[0] != '\0' ? c->endpoint : NULL;
}

const char *
creds_source(const struct creds *c)
{
	return c->source_name;
}

const char *
creds_profile(const struct creds *c)
{
	return c->profile;
}
