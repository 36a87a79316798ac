/* creds.c -- AWS credentials, region and endpoint, the AWS CLI way */
/*
 * Secrets are held in exactly two places: struct creds (under its mutex)
 * and the struct creds_secret copies that callers take. Both are wiped
 * with explicit_bzero when they die, and so is every buffer the
 * credentials file passes through. Log lines and error paths name the
 * file, the profile, the line number and a masked access key id, never a
 * value. The parser is bounded: lines over CREDS_LINE_MAX and files over
 * CREDS_FILE_MAX are refused, and it reads nothing past the given length
 * (it is fuzzed by tests/fuzz/fuzz_creds.c). The keys only ever change as
 * a whole, under the lock, with the generation bumped.
 */
#include "creds.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define DEFAULT_REGION	"us-east-1"
#define DEFAULT_PROFILE	"default"
#define PROFILE_MAX	128

struct file_ident {
	bool valid;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct creds {
	pthread_mutex_t lock;
	struct creds_secret cur;	/* guarded by lock */
	struct file_ident ident;	/* guarded by lock */
	/* The last file that failed to load, and whether the last stat
	 * failed: periodic checks then stay quiet until something changes,
	 * instead of logging the same error every second. */
	struct file_ident failed;	/* guarded by lock */
	bool stat_failed;		/* guarded by lock */
	bool from_env;
	char profile[PROFILE_MAX];
	char path[PATH_MAX];
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

/* ------------------------------------------------------------ the parser */

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static void
trim(const char **s, const char **e)
{
	while (*s < *e && is_blank(**s))
		(*s)++;
	while (*e > *s && is_blank((*e)[-1]))
		(*e)--;
}

static bool
span_eq_ci(const char *s, const char *e, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(e - s) == n && strncasecmp(s, word, n) == 0;
}

static int
copy_value(char *dst, size_t cap, const char *s, const char *e)
{
	size_t n = (size_t)(e - s);

	if (n >= cap)
		return -E2BIG;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

static const char *const unsupported_keys[] = {
	"credential_process", "role_arn", "source_profile",
	"credential_source", "web_identity_token_file", "sso_start_url",
	"sso_session", "sso_account_id",
};

int
creds_parse_ini(const char *buf, size_t len, const char *profile,
    struct creds_profile *out)
{
	const char *p = buf, *end = buf + len;
	bool in_profile = false, found = false, any_section = false;
	unsigned lineno = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (buf == NULL || profile == NULL)
		return -ENOENT;
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *ls = p, *le = nl ? nl : end, *sep;
		bool indented;

		p = nl ? nl + 1 : end;
		lineno++;
		if ((size_t)(le - ls) > CREDS_LINE_MAX) {
			out->error_line = lineno;
			return -E2BIG;
		}
		if (memchr(ls, '\0', (size_t)(le - ls)) != NULL) {
			out->error_line = lineno;
			return -EINVAL;
		}
		indented = ls < le && (*ls == ' ' || *ls == '\t');
		trim(&ls, &le);
		if (ls == le || *ls == '#' || *ls == ';')
			continue;
		if (indented && any_section)
			continue;	/* a continuation: nested settings */
		if (*ls == '[') {
			const char *ns = ls + 1, *ne = le - 1;

			if (le - ls < 2 || *ne != ']') {
				out->error_line = lineno;
				return -EINVAL;
			}
			trim(&ns, &ne);
			any_section = true;
			in_profile = (size_t)(ne - ns) == strlen(profile) &&
			    memcmp(ns, profile, (size_t)(ne - ns)) == 0;
			found |= in_profile;
			continue;
		}
		for (sep = ls; sep < le && *sep != '=' && *sep != ':'; sep++)
			;
		if (sep == le || !any_section) {
			out->error_line = lineno;
			return -EINVAL;
		}
		{
			const char *ks = ls, *ke = sep, *vs = sep + 1, *ve = le;

			trim(&ks, &ke);
			trim(&vs, &ve);
			if (ks == ke) {
				out->error_line = lineno;
				return -EINVAL;
			}
			if (!in_profile)
				continue;
			rc = 0;
			if (span_eq_ci(ks, ke, "aws_access_key_id"))
				rc = copy_value(out->keys.access_key_id,
				    sizeof(out->keys.access_key_id), vs, ve);
			else if (span_eq_ci(ks, ke, "aws_secret_access_key"))
				rc = copy_value(out->keys.secret_access_key,
				    sizeof(out->keys.secret_access_key), vs, ve);
			else if (span_eq_ci(ks, ke, "aws_session_token") ||
			    span_eq_ci(ks, ke, "aws_security_token"))
				rc = copy_value(out->keys.session_token,
				    sizeof(out->keys.session_token), vs, ve);
			else if (span_eq_ci(ks, ke, "region"))
				rc = copy_value(out->region, sizeof(out->region),
				    vs, ve);
			else if (span_eq_ci(ks, ke, "endpoint_url"))
				rc = copy_value(out->endpoint_url,
				    sizeof(out->endpoint_url), vs, ve);
			else {
				for (size_t i = 0; i < sizeof(unsupported_keys) /
				    sizeof(unsupported_keys[0]); i++) {
					if (span_eq_ci(ks, ke, unsupported_keys[i]))
						snprintf(out->unsupported,
						    sizeof(out->unsupported), "%s",
						    unsupported_keys[i]);
				}
			}
			if (rc < 0) {
				out->error_line = lineno;
				return rc;
			}
		}
	}
	return found ? 0 : -ENOENT;
}

/* ------------------------------------------------------------ the file */

static int
expand_home(const char *in, char *out, size_t cap)
{
	const char *home;
	int n;

	if (in[0] != '~' || (in[1] != '/' && in[1] != '\0')) {
		n = snprintf(out, cap, "%s", in);
	} else {
		home = getenv("HOME");
		if (home == NULL || home[0] == '\0') {
			struct passwd pw, *res = NULL;
			char pwbuf[4096];

			if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) != 0 ||
			    res == NULL)
				return -ENOENT;
			home = res->pw_dir;
			n = snprintf(out, cap, "%s%s", home, in + 1);
		} else {
			n = snprintf(out, cap, "%s%s", home, in + 1);
		}
	}
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static void
ident_from_stat(struct file_ident *id, const struct stat *st)
{
	id->valid = true;
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
}

static bool
ident_equal(const struct file_ident *a, const struct file_ident *b)
{
	return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino &&
	    a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/*
 * Reads and parses the file into *prof and records its identity from the
 * descriptor actually read (no stat/open race). quiet suppresses the logs
 * for a file that is only consulted for the region.
 */
static int
load_file(const char *path, const char *profile, struct creds_profile *prof,
    struct file_ident *ident, bool quiet)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, rc;

	memset(prof, 0, sizeof(*prof));
	do {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		rc = -errno;
		if (!quiet)
			log_msg(LOG_LEVEL_ERROR, "cannot open credentials file %s: %s",
			    path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		if (!quiet)
			log_msg(LOG_LEVEL_ERROR,
			    "credentials file %s is not a regular file", path);
		goto out_close;
	}
	if (st.st_size > CREDS_FILE_MAX) {
		rc = -EFBIG;
		if (!quiet)
			log_msg(LOG_LEVEL_ERROR,
			    "credentials file %s is larger than %d bytes", path,
			    CREDS_FILE_MAX);
		goto out_close;
	}
	/* Like ssh with a private key, but only a warning: refusing would
	 * stop uploads on hosts that have always worked this way. */
	if (!quiet && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		log_msg(LOG_LEVEL_WARN,
		    "credentials file %s is accessible by group or others "
		    "(mode %04o); run chmod 600 on it", path,
		    (unsigned)(st.st_mode & 07777));

	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out_free;
		}
		if (n == 0)
			break;	/* shrank under us: parse what is there */
		got += (size_t)n;
	}
	rc = creds_parse_ini(buf, got, profile, prof);
	if (rc < 0 && !quiet) {
		if (rc == -ENOENT)
			log_msg(LOG_LEVEL_ERROR,
			    "profile [%s] not found in credentials file %s",
			    profile, path);
		else
			log_msg(LOG_LEVEL_ERROR,
			    "credentials file %s: %s at line %u", path,
			    rc == -E2BIG ? "line or value too long" :
			    "syntax error", prof->error_line);
	}
	if (rc == 0)
		ident_from_stat(ident, &st);

out_free:
	explicit_bzero(buf, (size_t)st.st_size + 1);
	free(buf);
out_close:
	close(fd);
	return rc;
}

/* Checks that a parsed profile has usable keys. */
static int
check_profile_keys(const struct creds *c, const struct creds_profile *prof)
{
	if (prof->keys.access_key_id[0] != '\0' &&
	    prof->keys.secret_access_key[0] != '\0')
		return 0;
	if (prof->unsupported[0] != '\0')
		log_msg(LOG_LEVEL_ERROR,
		    "profile [%s] in %s uses %s, which s3ring does not "
		    "support; give it aws_access_key_id and "
		    "aws_secret_access_key", c->profile, c->path,
		    prof->unsupported);
	else
		log_msg(LOG_LEVEL_ERROR,
		    "profile [%s] in %s lacks aws_access_key_id or "
		    "aws_secret_access_key", c->profile, c->path);
	return -EINVAL;
}

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

/* Keys from the environment. Returns 1 if set, 0 if not, -EINVAL if half. */
static int
keys_from_env(struct creds *c)
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
	if (set_string(c->cur.access_key_id, sizeof(c->cur.access_key_id), ak,
	    "AWS_ACCESS_KEY_ID") < 0 ||
	    set_string(c->cur.secret_access_key,
	    sizeof(c->cur.secret_access_key), sk, "AWS_SECRET_ACCESS_KEY") < 0 ||
	    set_string(c->cur.session_token, sizeof(c->cur.session_token),
	    tok ? tok : "", "AWS_SESSION_TOKEN") < 0)
		return -EINVAL;
	return 1;
}

struct creds *
creds_new(const struct creds_options *opt)
{
	static const struct creds_options none;
	struct creds_profile *prof = NULL;
	const char *profile, *file, *region, *endpoint;
	struct creds *c;
	char masked[32];
	int rc, env;

	if (opt == NULL)
		opt = &none;
	c = calloc(1, sizeof(*c));
	prof = calloc(1, sizeof(*prof));
	if (c == NULL || prof == NULL) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = pthread_mutex_init(&c->lock, NULL);
	if (rc != 0) {
		rc = -rc;
		goto out_free;
	}

	profile = first_of(opt->profile, env_nonempty("AWS_PROFILE"),
	    DEFAULT_PROFILE);
	file = first_of(opt->file, env_nonempty("AWS_SHARED_CREDENTIALS_FILE"),
	    "~/.aws/credentials");
	rc = set_string(c->profile, sizeof(c->profile), profile, "profile name");
	if (rc == 0)
		rc = expand_home(file, c->path, sizeof(c->path));
	if (rc < 0)
		goto out_destroy;

	env = keys_from_env(c);
	if (env < 0) {
		rc = env;
		goto out_destroy;
	}
	c->from_env = env > 0;
	if (c->from_env) {
		/* The file may still name a region or endpoint; it is
		 * optional here, so its absence is not an error. */
		if (load_file(c->path, c->profile, prof, &c->ident, true) < 0)
			memset(prof, 0, sizeof(*prof));
		c->ident.valid = false;
	} else {
		if (access(c->path, F_OK) < 0 && errno == ENOENT) {
			/* One line that says what to do, not two. */
			log_msg(LOG_LEVEL_ERROR,
			    "no credentials: set AWS_ACCESS_KEY_ID and "
			    "AWS_SECRET_ACCESS_KEY, or create %s", c->path);
			rc = -ENOENT;
		} else {
			rc = load_file(c->path, c->profile, prof, &c->ident, false);
		}
		if (rc == 0)
			rc = check_profile_keys(c, prof);
		if (rc < 0)
			goto out_destroy;
		memcpy(c->cur.access_key_id, prof->keys.access_key_id,
		    sizeof(c->cur.access_key_id));
		memcpy(c->cur.secret_access_key, prof->keys.secret_access_key,
		    sizeof(c->cur.secret_access_key));
		memcpy(c->cur.session_token, prof->keys.session_token,
		    sizeof(c->cur.session_token));
	}
	c->cur.generation = 1;

	region = first_of(opt->region, env_nonempty("AWS_REGION"),
	    first_of(env_nonempty("AWS_DEFAULT_REGION"),
	    prof->region[0] ? prof->region : NULL, DEFAULT_REGION));
	endpoint = first_of(opt->endpoint, env_nonempty("AWS_ENDPOINT_URL_S3"),
	    first_of(env_nonempty("AWS_ENDPOINT_URL"),
	    prof->endpoint_url[0] ? prof->endpoint_url : NULL, ""));
	rc = set_string(c->region, sizeof(c->region), region, "region");
	if (rc == 0)
		rc = set_string(c->endpoint, sizeof(c->endpoint), endpoint,
		    "endpoint");
	if (rc < 0)
		goto out_destroy;

	creds_mask_key_id(c->cur.access_key_id, masked, sizeof(masked));
	log_kv(LOG_LEVEL_INFO, "credentials loaded", "source",
	    creds_source(c), "profile", c->from_env ? "-" : c->profile,
	    "key_id", masked, "session_token",
	    c->cur.session_token[0] ? "yes" : "no", "region", c->region,
	    "endpoint", c->endpoint[0] ? c->endpoint : "aws", (char *)NULL);
	explicit_bzero(prof, sizeof(*prof));
	free(prof);
	return c;

out_destroy:
	pthread_mutex_destroy(&c->lock);
out_free:
	if (prof != NULL)
		explicit_bzero(prof, sizeof(*prof));
	free(prof);
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
	pthread_mutex_destroy(&c->lock);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

int
creds_get(struct creds *c, struct creds_secret *out)
{
	pthread_mutex_lock(&c->lock);
	memcpy(out, &c->cur, sizeof(*out));
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

int
creds_reload(struct creds *c, bool force)
{
	struct creds_profile *prof;
	struct file_ident now = { 0 }, loaded = { 0 };
	struct stat st;
	char masked[32];
	bool same;
	int rc;

	if (c->from_env)
		return 0;
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
	ident_from_stat(&now, &st);
	pthread_mutex_lock(&c->lock);
	c->stat_failed = false;
	same = ident_equal(&now, &c->ident) || ident_equal(&now, &c->failed);
	pthread_mutex_unlock(&c->lock);
	if (same && !force)
		return 0;

	prof = calloc(1, sizeof(*prof));
	if (prof == NULL)
		return -ENOMEM;
	rc = load_file(c->path, c->profile, prof, &loaded, false);
	if (rc == 0)
		rc = check_profile_keys(c, prof);
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
	return c->from_env ? "environment" : "file";
}

const char *
creds_profile(const struct creds *c)
{
	return c->profile;
}
