/* creds_doc.c -- the documents credential sources answer with: JSON, STS XML, times */
/*
 * Everything here is a pure function of (buffer, length): no I/O, no
 * allocation, no logging, no global state. Input is untrusted: every read
 * is bounded by the given end, recursion is bounded by JSON_DEPTH_MAX,
 * every copy is bounded by its destination's cap and leaves it
 * NUL-terminated, and a value that does not fit is an error, never a
 * silent truncation (a cut token signs requests that fail much later,
 * far from the cause). Error texts name fields, never their values.
 */
#include "creds_doc.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEPTH_MAX	32
#define JSON_NAME_MAX	64	/* longest member name compared */

void
cdoc_creds_wipe(struct cdoc_creds *c)
{
	if (c != NULL)
		explicit_bzero(c, sizeof(*c));
}

void
cdoc_errorf(struct cdoc_creds *c, const char *fmt, ...)
{
	char tmp[CDOC_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(c->error, tmp, sizeof(tmp));
}

/* ------------------------------------------------------------ JSON */

struct jp {
	const char *p, *end;
	int depth;
};

/* What a lookup found: 0 nothing yet, 1 a value, or a negative errno for
 * a value of the wrong type or size. The last occurrence wins. */
struct jfind {
	const char *const *names;
	size_t depth;
	char *out;
	size_t cap;
	unsigned want;	/* JT_STRING | JT_NUMBER */
	int state;
};

#define JT_STRING	1u
#define JT_NUMBER	2u

static void
json_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
json_hex4(struct jp *j, unsigned *v)
{
	*v = 0;
	if (j->end - j->p < 4)
		return -EINVAL;
	for (int i = 0; i < 4; i++) {
		int h = hexval(j->p[i]);

		if (h < 0)
			return -EINVAL;
		*v = *v << 4 | (unsigned)h;
	}
	j->p += 4;
	return 0;
}

/* Appends one byte to out if it fits; *len counts what would be written. */
static void
put_byte(char *out, size_t cap, size_t *len, unsigned char c)
{
	if (out != NULL && *len + 1 < cap)
		out[*len] = (char)c;
	(*len)++;
}

static void
put_utf8(char *out, size_t cap, size_t *len, unsigned cp)
{
	if (cp < 0x80) {
		put_byte(out, cap, len, (unsigned char)cp);
	} else if (cp < 0x800) {
		put_byte(out, cap, len, (unsigned char)(0xc0 | cp >> 6));
		put_byte(out, cap, len, (unsigned char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		put_byte(out, cap, len, (unsigned char)(0xe0 | cp >> 12));
		put_byte(out, cap, len, (unsigned char)(0x80 | (cp >> 6 & 0x3f)));
		put_byte(out, cap, len, (unsigned char)(0x80 | (cp & 0x3f)));
	} else {
		put_byte(out, cap, len, (unsigned char)(0xf0 | cp >> 18));
		put_byte(out, cap, len, (unsigned char)(0x80 | (cp >> 12 & 0x3f)));
		put_byte(out, cap, len, (unsigned char)(0x80 | (cp >> 6 & 0x3f)));
		put_byte(out, cap, len, (unsigned char)(0x80 | (cp & 0x3f)));
	}
}

/*
 * Parses a string at j->p (which is at '"'). With out, copies the
 * unescaped text (cap bytes, NUL-terminated) and sets *len to its full
 * length, so the caller can tell a value that did not fit (*len >= cap).
 */
static int
json_string(struct jp *j, char *out, size_t cap, size_t *len)
{
	size_t n = 0;

	j->p++;
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = (unsigned char)*j->p++;
		unsigned cp, lo;

		if (c < 0x20)
			return -EINVAL;
		if (c != '\\') {
			put_byte(out, cap, &n, c);
			continue;
		}
		if (j->p >= j->end)
			return -EINVAL;
		c = (unsigned char)*j->p++;
		switch (c) {
		case '"': case '\\': case '/':
			put_byte(out, cap, &n, c);
			break;
		case 'b': put_byte(out, cap, &n, '\b'); break;
		case 'f': put_byte(out, cap, &n, '\f'); break;
		case 'n': put_byte(out, cap, &n, '\n'); break;
		case 'r': put_byte(out, cap, &n, '\r'); break;
		case 't': put_byte(out, cap, &n, '\t'); break;
		case 'u':
			if (json_hex4(j, &cp) < 0)
				return -EINVAL;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (j->end - j->p < 2 || j->p[0] != '\\' ||
				    j->p[1] != 'u')
					return -EINVAL;
				j->p += 2;
				if (json_hex4(j, &lo) < 0 || lo < 0xdc00 ||
				    lo >= 0xe000)
					return -EINVAL;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				return -EINVAL;
			}
			put_utf8(out, cap, &n, cp);
			break;
		default:
			return -EINVAL;
		}
	}
	if (j->p >= j->end)
		return -EINVAL;
	j->p++;
	if (out != NULL && cap > 0)
		out[n < cap ? n : cap - 1] = '\0';
	if (len != NULL)
		*len = n;
	return 0;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Validates a number (RFC 8259 grammar) and returns its span. */
static int
json_number(struct jp *j, const char **s, const char **e)
{
	*s = j->p;
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end || !is_digit(*j->p))
		return -EINVAL;
	if (*j->p == '0')
		j->p++;
	else
		while (j->p < j->end && is_digit(*j->p))
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || !is_digit(*j->p))
			return -EINVAL;
		while (j->p < j->end && is_digit(*j->p))
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || !is_digit(*j->p))
			return -EINVAL;
		while (j->p < j->end && is_digit(*j->p))
			j->p++;
	}
	*e = j->p;
	return 0;
}

static int json_value(struct jp *j, struct jfind *f);

/* An object; f, when not NULL, is the lookup still to match at this
 * level (f->depth names left). */
static int
json_object(struct jp *j, struct jfind *f)
{
	int rc;

	j->p++;
	json_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		char name[JSON_NAME_MAX];
		size_t nlen = 0;
		struct jfind sub, *next = NULL;

		json_ws(j);
		if (j->p >= j->end || *j->p != '"')
			return -EINVAL;
		rc = json_string(j, name, sizeof(name), &nlen);
		if (rc < 0)
			return rc;
		json_ws(j);
		if (j->p >= j->end || *j->p != ':')
			return -EINVAL;
		j->p++;
		json_ws(j);
		if (f != NULL && nlen < sizeof(name) &&
		    strcmp(name, f->names[0]) == 0) {
			if (f->depth == 1) {
				next = f;	/* the value itself is wanted */
			} else {
				sub = *f;
				sub.names++;
				sub.depth--;
				sub.state = 0;
				sub.want = f->want;
				next = &sub;
			}
		}
		if (next == f && f != NULL) {
			/* The wanted leaf: a string or a number. */
			const char *s, *e;
			size_t vlen = 0;

			if (j->p < j->end && *j->p == '"' &&
			    (f->want & JT_STRING)) {
				rc = json_string(j, f->out, f->cap, &vlen);
				if (rc < 0)
					return rc;
				f->state = vlen >= f->cap ? -E2BIG : 1;
			} else if (j->p < j->end && (*j->p == '-' ||
			    is_digit(*j->p)) && (f->want & JT_NUMBER)) {
				rc = json_number(j, &s, &e);
				if (rc < 0)
					return rc;
				vlen = (size_t)(e - s);
				if (vlen >= f->cap) {
					f->state = -E2BIG;
				} else {
					memcpy(f->out, s, vlen);
					f->out[vlen] = '\0';
					f->state = 1;
				}
			} else {
				rc = json_value(j, NULL);
				if (rc < 0)
					return rc;
				f->state = -EINVAL;
			}
		} else {
			rc = json_value(j, next);
			if (rc < 0)
				return rc;
			if (next != NULL && next->state != 0)
				f->state = next->state;
		}
		json_ws(j);
		if (j->p >= j->end)
			return -EINVAL;
		if (*j->p == '}') {
			j->p++;
			return 0;
		}
		if (*j->p != ',')
			return -EINVAL;
		j->p++;
	}
}

static int
json_literal(struct jp *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return -EINVAL;
	j->p += n;
	return 0;
}

/* Any value. f is a lookup to continue if the value is an object. */
static int
json_value(struct jp *j, struct jfind *f)
{
	const char *s, *e;
	int rc = 0;

	json_ws(j);
	if (j->p >= j->end)
		return -EINVAL;
	if (++j->depth > JSON_DEPTH_MAX)
		return -EINVAL;
	switch (*j->p) {
	case '{':
		rc = json_object(j, f);
		break;
	case '[':
		j->p++;
		json_ws(j);
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			break;
		}
		for (;;) {
			rc = json_value(j, NULL);
			if (rc < 0)
				break;
			json_ws(j);
			if (j->p >= j->end) {
				rc = -EINVAL;
				break;
			}
			if (*j->p == ']') {
				j->p++;
				break;
			}
			if (*j->p != ',') {
				rc = -EINVAL;
				break;
			}
			j->p++;
		}
		break;
	case '"':
		rc = json_string(j, NULL, 0, NULL);
		break;
	case 't':
		rc = json_literal(j, "true");
		break;
	case 'f':
		rc = json_literal(j, "false");
		break;
	case 'n':
		rc = json_literal(j, "null");
		break;
	default:
		rc = json_number(j, &s, &e);
		break;
	}
	j->depth--;
	return rc;
}

static int
json_get(const char *buf, size_t len, const char *const *names, size_t depth,
    char *out, size_t cap, unsigned want)
{
	struct jp j = { buf, buf + len, 0 };
	struct jfind f = { names, depth, out, cap, want, 0 };
	int rc;

	if (cap == 0 || depth == 0)
		return -EINVAL;
	out[0] = '\0';
	if (buf == NULL || len > CDOC_DOC_MAX)
		return len > CDOC_DOC_MAX ? -E2BIG : -EINVAL;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		j.p += 3;
	json_ws(&j);
	if (j.p >= j.end || *j.p != '{')
		return -EINVAL;
	rc = json_value(&j, &f);
	json_ws(&j);
	if (rc == 0 && j.p != j.end)
		rc = -EINVAL;
	if (rc == 0)
		rc = f.state == 1 ? 0 : f.state == 0 ? -ENOENT : f.state;
	if (rc < 0)
		explicit_bzero(out, cap);
	return rc;
}

int
cdoc_json_get(const char *buf, size_t len, const char *const *names,
    size_t depth, char *out, size_t cap)
{
	return json_get(buf, len, names, depth, out, cap, JT_STRING | JT_NUMBER);
}

/* ------------------------------------------------------------ times */

static int
digits(const char **p, const char *end, int n, int *out)
{
	*out = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (*p >= end || !is_digit(**p))
			return -EINVAL;
		*out = *out * 10 + (**p - '0');
	}
	return 0;
}

static int
expect(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return -EINVAL;
	(*p)++;
	return 0;
}

int
cdoc_parse_time(const char *s, size_t len, time_t *out)
{
	const char *p = s, *end = s + len;
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	time_t t;

	if (digits(&p, end, 4, &y) < 0 || expect(&p, end, '-') < 0 ||
	    digits(&p, end, 2, &mo) < 0 || expect(&p, end, '-') < 0 ||
	    digits(&p, end, 2, &d) < 0)
		return -EINVAL;
	if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
		return -EINVAL;
	p++;
	if (digits(&p, end, 2, &h) < 0 || expect(&p, end, ':') < 0 ||
	    digits(&p, end, 2, &mi) < 0 || expect(&p, end, ':') < 0 ||
	    digits(&p, end, 2, &sec) < 0)
		return -EINVAL;
	if (p < end && *p == '.') {
		p++;
		if (p >= end || !is_digit(*p))
			return -EINVAL;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'Z' || *p == 'z')) {
		p++;
	} else if (end - p == 3 && memcmp(p, "UTC", 3) == 0) {
		p += 3;
	} else if (p < end && (*p == '+' || *p == '-')) {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, end, 2, &oh) < 0)
			return -EINVAL;
		if (p < end && *p == ':')
			p++;
		if (digits(&p, end, 2, &om) < 0 || oh > 23 || om > 59)
			return -EINVAL;
	} else if (p != end) {
		return -EINVAL;
	}
	if (p != end || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60 || y < 1970)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = t - sign * (oh * 3600 + om * 60);
	return 0;
}

/* ------------------------------------------------------------ credentials */

struct field {
	const char *names[2];
	size_t depth;
	char *dst;
	size_t cap;
	bool required;
	unsigned want;
};

static int
get_field(const char *buf, size_t len, const struct field *fl,
    struct cdoc_creds *out)
{
	const char *name = fl->names[fl->depth - 1];
	int rc = json_get(buf, len, fl->names, fl->depth, fl->dst, fl->cap,
	    fl->want);

	if (rc == -ENOENT && !fl->required)
		return 0;
	if (rc == -ENOENT)
		cdoc_errorf(out, "no %s", name);
	else if (rc == -E2BIG)
		cdoc_errorf(out, "%s is too long", name);
	else if (rc < 0)
		cdoc_errorf(out,
		    "malformed JSON or %s is not a %s", name,
		    fl->want == JT_NUMBER ? "number" : "string");
	return rc == -ENOENT ? -EINVAL : rc;
}

int
cdoc_parse_json_creds(enum cdoc_kind kind, const char *buf, size_t len,
    struct cdoc_creds *out)
{
	static const char *const ak[] = { "AccessKeyId", "accessKeyId" };
	static const char *const sk[] = { "SecretAccessKey", "secretAccessKey" };
	bool sso = kind == CDOC_SSO_ROLE;
	char ver[16] = "", code[64] = "", exp[64] = "";
	struct field fields[] = {
		{ { sso ? "roleCredentials" : ak[0], ak[1] }, sso ? 2 : 1,
		  out->keys.access_key_id, sizeof(out->keys.access_key_id), true,
		  JT_STRING },
		{ { sso ? "roleCredentials" : sk[0], sk[1] }, sso ? 2 : 1,
		  out->keys.secret_access_key,
		  sizeof(out->keys.secret_access_key), true, JT_STRING },
		{ { sso ? "roleCredentials" :
		    kind == CDOC_PROCESS ? "SessionToken" : "Token",
		    "sessionToken" }, sso ? 2 : 1, out->keys.session_token,
		  sizeof(out->keys.session_token), kind != CDOC_PROCESS,
		  JT_STRING },
		{ { sso ? "roleCredentials" : "Expiration", "expiration" },
		  sso ? 2 : 1, exp, sizeof(exp), kind != CDOC_PROCESS,
		  sso ? JT_NUMBER : JT_STRING },
		{ { "Version" }, 1, ver, sizeof(ver), kind == CDOC_PROCESS,
		  JT_NUMBER },
		{ { "Code" }, 1, code, sizeof(code), false, JT_STRING },
	};
	size_t nf = kind == CDOC_PROCESS ? 5 : kind == CDOC_IMDS ? 6 : 4;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > CDOC_DOC_MAX) {
		cdoc_errorf(out,
		    "document is larger than %d bytes", CDOC_DOC_MAX);
		return -E2BIG;
	}
	/* Code first: an IMDS document that is not a success has no keys,
	 * and "Code is ..." says more than "no AccessKeyId". */
	for (size_t i = nf; i-- > 0;) {
		rc = get_field(buf, len, &fields[i], out);
		if (rc < 0)
			goto out_fail;
		if (i == 5 && code[0] != '\0' && strcmp(code, "Success") != 0) {
			cdoc_errorf(out,
			    "Code is %.40s, not Success", code);
			rc = -EINVAL;
			goto out_fail;
		}
		if (i == 4 && kind == CDOC_PROCESS && strcmp(ver, "1") != 0) {
			cdoc_errorf(out,
			    "Version is %.10s; only Version 1 is understood", ver);
			rc = -EINVAL;
			goto out_fail;
		}
	}
	if (out->keys.access_key_id[0] == '\0' ||
	    out->keys.secret_access_key[0] == '\0') {
		cdoc_errorf(out,
		    "empty AccessKeyId or SecretAccessKey");
		rc = -EINVAL;
		goto out_fail;
	}
	if (exp[0] != '\0' && sso) {
		/* Epoch milliseconds. */
		char *e = NULL;
		long long ms;

		errno = 0;
		ms = strtoll(exp, &e, 10);
		if (errno != 0 || e == exp || *e != '\0' || ms <= 0) {
			cdoc_errorf(out,
			    "expiration is not epoch milliseconds");
			rc = -EINVAL;
			goto out_fail;
		}
		out->expiration = (time_t)(ms / 1000);
	} else if (exp[0] != '\0' &&
	    cdoc_parse_time(exp, strlen(exp), &out->expiration) < 0) {
		cdoc_errorf(out,
		    "Expiration is not an ISO 8601 time");
		rc = -EINVAL;
		goto out_fail;
	}
	return 0;

out_fail:
	creds_secret_wipe(&out->keys);
	out->expiration = 0;
	return rc;
}

int
cdoc_parse_sso_cache(const char *buf, size_t len, char *token, size_t cap,
    time_t *expires, char *error)
{
	static const char *const tok_name[] = { "accessToken" };
	static const char *const exp_name[] = { "expiresAt" };
	char exp[64];
	int rc;

	error[0] = '\0';
	*expires = 0;
	rc = cdoc_json_get(buf, len, tok_name, 1, token, cap);
	if (rc < 0) {
		snprintf(error, CDOC_ERROR_MAX, "%s", rc == -ENOENT ?
		    "no accessToken" : rc == -E2BIG ? "accessToken is too long" :
		    "malformed JSON");
		return rc == -ENOENT ? -EINVAL : rc;
	}
	rc = cdoc_json_get(buf, len, exp_name, 1, exp, sizeof(exp));
	if (rc == 0)
		rc = cdoc_parse_time(exp, strlen(exp), expires);
	if (rc < 0) {
		snprintf(error, CDOC_ERROR_MAX, "no valid expiresAt");
		explicit_bzero(token, cap);
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------ STS XML */

/*
 * Finds the text of the first <tag>...</tag> within [s, e) and returns
 * its span. STS writes its elements without attributes below the root,
 * and never uses CDATA, so a plain search is the whole grammar needed.
 */
static bool
xml_element(const char *s, const char *e, const char *tag, const char **ts,
    const char **te)
{
	char open[48], close[48];
	size_t no, nc;
	const char *p;

	no = (size_t)snprintf(open, sizeof(open), "<%s>", tag);
	nc = (size_t)snprintf(close, sizeof(close), "</%s>", tag);
	p = memmem(s, (size_t)(e - s), open, no);
	if (p == NULL)
		return false;
	*ts = p + no;
	p = memmem(*ts, (size_t)(e - *ts), close, nc);
	if (p == NULL)
		return false;
	*te = p;
	return true;
}

/* Copies XML text, decoding the five predefined entities. */
static int
xml_text(const char *s, const char *e, char *out, size_t cap)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	size_t n = 0;

	while (s < e) {
		char c = *s++;

		if (c == '&') {
			size_t i;

			for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
				size_t l = strlen(ents[i].ent) - 1;

				if ((size_t)(e - s) >= l &&
				    memcmp(s, ents[i].ent + 1, l) == 0) {
					c = ents[i].c;
					s += l;
					break;
				}
			}
			if (i == sizeof(ents) / sizeof(ents[0]))
				return -EINVAL;
		} else if ((unsigned char)c < 0x20 && c != '\t' && c != '\n' &&
		    c != '\r') {
			return -EINVAL;
		}
		if (n + 1 >= cap)
			return -E2BIG;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

/* Keeps only printable ASCII of an error text, for the log. */
static void
sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

int
cdoc_parse_sts(const char *buf, size_t len, struct cdoc_creds *out)
{
	const char *end = buf + len, *cs, *ce, *ts, *te;
	static const char *const names[] = {
		"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration",
	};
	char exp[64];
	char *dst[] = {
		out->keys.access_key_id, out->keys.secret_access_key,
		out->keys.session_token, exp,
	};
	size_t caps[] = {
		sizeof(out->keys.access_key_id),
		sizeof(out->keys.secret_access_key),
		sizeof(out->keys.session_token), sizeof(exp),
	};
	int rc;

	memset(out, 0, sizeof(*out));
	if (buf == NULL || len > CDOC_DOC_MAX) {
		cdoc_errorf(out, "no or oversized body");
		return -EINVAL;
	}
	if (xml_element(buf, end, "Error", &cs, &ce)) {
		char code[64] = "", msg[160] = "";

		if (xml_element(cs, ce, "Code", &ts, &te))
			(void)xml_text(ts, te, code, sizeof(code));
		if (xml_element(cs, ce, "Message", &ts, &te))
			(void)xml_text(ts, te, msg, sizeof(msg));
		sanitize(code);
		sanitize(msg);
		cdoc_errorf(out, "%s: %s",
		    code[0] ? code : "unknown error", msg);
		return -EACCES;
	}
	if (!xml_element(buf, end, "Credentials", &cs, &ce)) {
		cdoc_errorf(out,
		    "no <Credentials> in the answer");
		return -EINVAL;
	}
	for (size_t i = 0; i < 4; i++) {
		if (!xml_element(cs, ce, names[i], &ts, &te)) {
			cdoc_errorf(out, "no <%s>",
			    names[i]);
			rc = -EINVAL;
			goto out_fail;
		}
		rc = xml_text(ts, te, dst[i], caps[i]);
		if (rc < 0) {
			cdoc_errorf(out, "<%s> is %s",
			    names[i], rc == -E2BIG ? "too long" : "malformed");
			rc = -EINVAL;
			goto out_fail;
		}
	}
	if (out->keys.access_key_id[0] == '\0' ||
	    out->keys.secret_access_key[0] == '\0' ||
	    cdoc_parse_time(exp, strlen(exp), &out->expiration) < 0) {
		cdoc_errorf(out,
		    "empty keys or a bad <Expiration>");
		rc = -EINVAL;
		goto out_fail;
	}
	return 0;

out_fail:
	creds_secret_wipe(&out->keys);
	out->expiration = 0;
	return rc;
}
