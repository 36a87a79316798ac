/* creds_ini.c -- the shared config and credentials files: INI parsing and loading */
/*
 * The parser is bounded: lines over CREDS_LINE_MAX and files over
 * CREDS_FILE_MAX are refused, it reads nothing past the given length, and
 * a value longer than its field is an error, never cut (it is fuzzed by
 * tests/fuzz/fuzz_creds.c). Every buffer a file passes through is wiped
 * before it is freed. Logs name the file, the section and the line
 * number, never a line's text.
 */
#include "creds_ini.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

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

/* The keys a section may set, and where each goes. */
#define FIELD(name, member) { name, offsetof(struct creds_profile, member), \
	sizeof(((struct creds_profile *)0)->member) }
static const struct ini_key {
	const char *name;
	size_t off, cap;
} ini_keys[] = {
	FIELD("aws_access_key_id", keys.access_key_id),
	FIELD("aws_secret_access_key", keys.secret_access_key),
	FIELD("aws_session_token", keys.session_token),
	FIELD("aws_security_token", keys.session_token),
	FIELD("region", region),
	FIELD("endpoint_url", endpoint_url),
	FIELD("role_arn", role_arn),
	FIELD("source_profile", source_profile),
	FIELD("credential_source", credential_source),
	FIELD("web_identity_token_file", web_identity_token_file),
	FIELD("role_session_name", role_session_name),
	FIELD("external_id", external_id),
	FIELD("duration_seconds", duration_seconds),
	FIELD("credential_process", credential_process),
	FIELD("sso_session", sso_session),
	FIELD("sso_start_url", sso_start_url),
	FIELD("sso_region", sso_region),
	FIELD("sso_account_id", sso_account_id),
	FIELD("sso_role_name", sso_role_name),
};
#undef FIELD

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
			for (size_t i = 0; i < sizeof(ini_keys) /
			    sizeof(ini_keys[0]); i++) {
				if (span_eq_ci(ks, ke, ini_keys[i].name)) {
					rc = copy_value((char *)out +
					    ini_keys[i].off, ini_keys[i].cap,
					    vs, ve);
					break;
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

int
creds_expand_home(const char *in, char *out, size_t cap)
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

void
creds_ident_from_stat(struct creds_file_ident *id, const struct stat *st)
{
	id->valid = true;
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
}

bool
creds_ident_equal(const struct creds_file_ident *a, const struct creds_file_ident *b)
{
	return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino &&
	    a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/*
 * Reads and parses the file into *prof and records its identity from the
 * descriptor actually read (no stat/open race). what names the file in
 * logs ("credentials file"). A missing file and a missing section are
 * not logged (the caller knows whether they matter); quiet suppresses the
 * other logs too.
 */
int
creds_load_file(const char *path, const char *what, const char *profile,
    struct creds_profile *prof, struct creds_file_ident *ident, bool quiet)
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
		if (!quiet && rc != -ENOENT)
			log_msg(LOG_LEVEL_ERROR, "cannot open %s %s: %s", what,
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
			log_msg(LOG_LEVEL_ERROR, "%s %s is not a regular file",
			    what, path);
		goto out_close;
	}
	if (st.st_size > CREDS_FILE_MAX) {
		rc = -EFBIG;
		if (!quiet)
			log_msg(LOG_LEVEL_ERROR, "%s %s is larger than %d bytes",
			    what, path, CREDS_FILE_MAX);
		goto out_close;
	}
	/* Like ssh with a private key, but only a warning: refusing would
	 * stop uploads on hosts that have always worked this way. The config
	 * file holds settings, and is often world-readable by design. */
	if (!quiet && strcmp(what, "credentials file") == 0 &&
	    (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		log_msg(LOG_LEVEL_WARN,
		    "%s %s is accessible by group or others "
		    "(mode %04o); run chmod 600 on it", what, path,
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
	if (rc < 0 && rc != -ENOENT && !quiet)
		log_msg(LOG_LEVEL_ERROR, "%s %s: %s at line %u", what, path,
		    rc == -E2BIG ? "line or value too long" : "syntax error",
		    prof->error_line);
	if (rc == 0)
		creds_ident_from_stat(ident, &st);

out_free:
	explicit_bzero(buf, (size_t)st.st_size + 1);
	free(buf);
out_close:
	close(fd);
	return rc;
}

/* Copies every non-empty field of from over into. */
void
creds_merge_profile(struct creds_profile *into, const struct creds_profile *from)
{
	for (size_t i = 0; i < sizeof(ini_keys) / sizeof(ini_keys[0]); i++) {
		const char *v = (const char *)from + ini_keys[i].off;

		if (v[0] != '\0')
			memcpy((char *)into + ini_keys[i].off, v, ini_keys[i].cap);
	}
}

