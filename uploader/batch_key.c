/* batch_key.c -- expands a batch rule's key template into an object key.
 *
 * Invariants: one parser (key_walk()) serves both the check and the
 * expansion, so a template that passes batch_key_check() expands without a
 * syntax error; a field's value ({prefix} above all) is copied as it is and
 * never read as template text; the output is written only within cap and
 * S3's limit, and a key is returned only when ring_key_valid() accepts it.
 */
#include "batch_key.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ring.h"
#include "s3.h"

/* The conversions glibc's strftime() knows, without flags, widths or the E
 * and O modifiers (which a key has no use for). %n and %t are left out:
 * they insert a newline and a tab, which no key may hold. */
static const char strftime_convs[] = "aAbBcCdDeFgGhHIjklmMpPrRsSTuUVwWxXyYzZ";

static const char *const field_names[] = { "prefix", "host", "ring", "pos", "ext" };
enum key_field { F_PREFIX, F_HOST, F_RING, F_POS, F_EXT, F_COUNT };

/* Where the expansion goes. len counts every byte the key needs, also past
 * the limit, so that a key too long is known without writing it. */
struct key_out {
	char *buf;
	size_t len, limit;
};

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
out_put(struct key_out *o, const char *s, size_t n)
{
	if (o != NULL && o->len < o->limit)
		memcpy(o->buf + o->len, s, n < o->limit - o->len ? n : o->limit - o->len);
	if (o != NULL)
		o->len = o->len > SIZE_MAX - n ? SIZE_MAX : o->len + n;
}

/* The short host name, computed on the first call: gethostname() up to the
 * first dot, or "localhost" if it fails. Not thread-safe, and need not be:
 * the first expansion happens while the configuration is read. */
static const char *
short_host(void)
{
	static char host[HOST_NAME_MAX + 1];
	static bool done;

	if (!done) {
		if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		host[strcspn(host, ".")] = '\0';
		done = true;
	}
	return host;
}

static void
out_hex(struct key_out *o, uint64_t v)
{
	char hex[17];

	snprintf(hex, sizeof(hex), "%016" PRIx64, v);
	out_put(o, hex, 16);
}

static void
out_field(struct key_out *o, enum key_field k, const struct batch_key_fields *f)
{
	const char *s = NULL;

	switch (k) {
	case F_PREFIX:
		s = f->prefix;
		break;
	case F_HOST:
		s = f->host != NULL ? f->host : short_host();
		break;
	case F_RING:
		out_hex(o, f->ring_id);
		return;
	case F_POS:
		out_hex(o, f->pos);
		return;
	default:
		s = f->ext;
		break;
	}
	if (s != NULL)
		out_put(o, s, strlen(s));
}

/* One conversion of t, in UTC. %s is done here: glibc's reads the struct
 * tm as local time, which would shift it by the zone's offset. The format
 * is built, not literal, but is one conversion from strftime_convs. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void
out_time(struct key_out *o, char conv, time_t t)
{
	char fmt[3] = { '%', conv, '\0' }, buf[256];
	struct tm tm;
	size_t n;

	if (conv == 's') {
		n = (size_t)snprintf(buf, sizeof(buf), "%lld", (long long)t);
	} else {
		if (gmtime_r(&t, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
		/* 0 is also an empty result (%p in some locales): either way
		 * nothing is added. */
		n = strftime(buf, sizeof(buf), fmt, &tm);
	}
	out_put(o, buf, n);
}
#pragma GCC diagnostic pop

static int
field_index(const char *name, size_t n)
{
	for (int i = 0; i < F_COUNT; i++)
		if (strlen(field_names[i]) == n && memcmp(field_names[i], name, n) == 0)
			return i;
	return -1;
}

/* The walk of a template: where it is, what it expands into (o, or NULL
 * for a check), and which fields it met (a bit per enum key_field). */
struct key_walk {
	const char *tmpl;
	const struct batch_key_fields *f;
	struct key_out *o;
	unsigned seen;
	char *err;
	size_t errlen;
};

/* The conversion after the '%' at *p. Returns 0 or -EINVAL. */
static int
walk_conv(struct key_walk *w, const char *p)
{
	if (*p == '\0') {
		seterr(w->err, w->errlen,
		    "key template ends with a lone '%%' (write %%%% for a '%%')");
		return -EINVAL;
	}
	if (*p == '%') {
		out_put(w->o, "%", 1);
	} else if (strchr(strftime_convs, *p) != NULL) {
		if (w->o != NULL)
			out_time(w->o, *p, w->f->t);
	} else {
		seterr(w->err, w->errlen,
		    "key template: %%%c is not a known strftime conversion", *p);
		return -EINVAL;
	}
	return 0;
}

/* The field whose '{' is at *p. Returns its closing '}', or NULL (and the
 * reason in err). */
static const char *
walk_field(struct key_walk *w, const char *p)
{
	const char *end = strchr(p, '}');
	int n, k;

	if (end == NULL) {
		seterr(w->err, w->errlen,
		    "key template: '{' at offset %zu has no closing '}'",
		    (size_t)(p - w->tmpl));
		return NULL;
	}
	n = end - p - 1 > 64 ? 64 : (int)(end - p - 1);
	k = field_index(p + 1, (size_t)(end - p - 1));
	if (k < 0) {
		seterr(w->err, w->errlen, "key template: unknown field {%.*s} "
		    "(known: {prefix} {host} {ring} {pos} {ext})", n, p + 1);
		return NULL;
	}
	w->seen |= 1u << k;
	if (w->o != NULL)
		out_field(w->o, (enum key_field)k, w->f);
	return end;
}

/* Walks the template, expanding it unless w->o is NULL. Returns 0 or
 * -EINVAL with the reason in w->err. */
static int
key_walk(struct key_walk *w)
{
	for (const char *p = w->tmpl; *p != '\0'; p++) {
		if (*p == '%') {
			if (walk_conv(w, ++p) < 0)
				return -EINVAL;
		} else if (*p == '{') {
			if ((p = walk_field(w, p)) == NULL)
				return -EINVAL;
		} else {
			out_put(w->o, p, 1);
		}
	}
	return 0;
}

int
batch_key_check(const char *tmpl, char *err, size_t errlen)
{
	struct key_walk w = { tmpl, NULL, NULL, 0, err, errlen };

	seterr(err, errlen, "%s", "");
	if (tmpl == NULL || *tmpl == '\0') {
		seterr(err, errlen, "key template is empty");
		return -EINVAL;
	}
	if (key_walk(&w) < 0)
		return -EINVAL;
	/* Without both, a batch rebuilt after a restart would get another
	 * key, and its re-upload would duplicate the object. */
	if (!(w.seen & (1u << F_RING)) || !(w.seen & (1u << F_POS))) {
		seterr(err, errlen, "key template lacks %s: {ring} and {pos} "
		    "make a batch's key unique and stable",
		    !(w.seen & (1u << F_RING)) ? "{ring}" : "{pos}");
		return -EINVAL;
	}
	return 0;
}

int
batch_key_expand(const char *tmpl, const struct batch_key_fields *f,
    char *out, size_t cap)
{
	struct key_out o = { out, 0, 0 };
	struct key_walk w = { tmpl, f, &o, 0, NULL, 0 };
	int rc;

	if (cap == 0)
		return -ENAMETOOLONG;
	if (tmpl == NULL) {
		out[0] = '\0';
		return -EINVAL;
	}
	o.limit = cap - 1 < S3_KEY_MAX ? cap - 1 : S3_KEY_MAX;
	rc = key_walk(&w);
	if (rc == 0 && o.len > o.limit)
		rc = -ENAMETOOLONG;
	if (rc == 0) {
		out[o.len] = '\0';
		if (!ring_key_valid(out, o.len))
			rc = -EINVAL;
	}
	if (rc < 0) {
		out[0] = '\0';
		return rc;
	}
	return (int)o.len;
}
