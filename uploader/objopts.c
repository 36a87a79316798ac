/* objopts.c -- object options: parsing, the Content-Type table, merging a
 * prefix rule over the global one, and the request headers.
 *
 * Invariants: every value that reaches a header was checked here to be
 * printable ASCII without CR or LF (so no header can be injected and the
 * signer's whitespace folding is the only change it undergoes), names are
 * from a fixed set or [A-Za-z0-9_-] for metadata, and tags are sent
 * URL-encoded. Headers are built in caller-provided storage: nothing is
 * allocated per request.
 */
#include "objopts.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *const option_names[] = {
	"content-type", "cache-control", "content-encoding", "storage-class",
	"sse", "sse-kms-key-id", "sse-bucket-key", "acl", "tag", "meta",
};

bool
objopts_is_option(const char *name)
{
	for (size_t i = 0; i < sizeof(option_names) / sizeof(option_names[0]); i++)
		if (strcmp(name, option_names[i]) == 0)
			return true;
	return false;
}

static bool
one_of(const char *v, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v, set[i]) == 0)
			return true;
	return false;
}

/* Printable ASCII (space included), no CR/LF/control bytes, no non-ASCII:
 * what an HTTP header value may carry without encoding. */
static bool
header_safe(const char *v)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v < 0x20 || (unsigned char)*v > 0x7e)
			return false;
	return true;
}

static int
copy_value(const char *opt, char *dst, size_t cap, const char *v, char *err,
    size_t errlen)
{
	if (!header_safe(v)) {
		seterr(err, errlen, "%s: only printable ASCII is allowed", opt);
		return -EINVAL;
	}
	if (strlen(v) >= cap) {
		seterr(err, errlen, "%s: longer than %zu bytes", opt, cap - 1);
		return -EINVAL;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* "NAME=VALUE" into a pair list (replacing an entry of the same name). */
static int
add_pair(const char *opt, struct objopts_pair *pairs, unsigned *n, const char *v,
    bool meta, char *err, size_t errlen)
{
	const char *eq = strchr(v, '=');
	size_t nl = eq ? (size_t)(eq - v) : 0;
	struct objopts_pair p;
	unsigned i;

	if (eq == NULL || nl == 0 || nl >= sizeof(p.name)) {
		seterr(err, errlen, "%s: '%s' is not NAME=VALUE (NAME of 1 to 128 bytes)", opt, v);
		return -EINVAL;
	}
	memcpy(p.name, v, nl);
	p.name[nl] = '\0';
	for (i = 0; i < nl; i++) {
		unsigned char ch = (unsigned char)p.name[i];
		if (meta ? !(isalnum(ch) || ch == '-' || ch == '_') : !(ch >= 0x20 && ch <= 0x7e)) {
			seterr(err, errlen, meta ? "%s: name '%s' may hold only A-Z a-z 0-9 - _" :
			    "%s: name '%s' holds a byte outside printable ASCII", opt, p.name);
			return -EINVAL;
		}
	}
	if (copy_value(opt, p.value, sizeof(p.value), eq + 1, err, errlen) < 0)
		return -EINVAL;
	for (i = 0; i < *n; i++)
		if (meta ? strcasecmp(pairs[i].name, p.name) == 0 : strcmp(pairs[i].name, p.name) == 0)
			break;
	if (i == OBJOPTS_PAIRS) {
		seterr(err, errlen, "%s: more than %d entries", opt, OBJOPTS_PAIRS);
		return -EINVAL;
	}
	pairs[i] = p;
	if (i == *n)
		(*n)++;
	return 0;
}

int
objopts_set(struct objopts *o, const char *name, const char *value, char *err,
    size_t errlen)
{
	static const char *const classes[] = { "STANDARD", "REDUCED_REDUNDANCY",
		"STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER",
		"DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "EXPRESS_ONEZONE" };
	static const char *const sses[] = { "AES256", "aws:kms", "aws:kms:dsse" };
	static const char *const acls[] = { "private", "public-read",
		"public-read-write", "authenticated-read", "aws-exec-read",
		"bucket-owner-read", "bucket-owner-full-control" };
	int rc;

	if (value == NULL) {
		seterr(err, errlen, "%s needs a value", name);
		return -EINVAL;
	}
	if (strcmp(name, "content-type") == 0) {
		rc = copy_value(name, o->content_type, sizeof(o->content_type), value, err, errlen);
		o->set |= rc == 0 ? OBJOPT_CONTENT_TYPE : 0;
	} else if (strcmp(name, "cache-control") == 0) {
		rc = copy_value(name, o->cache_control, sizeof(o->cache_control), value, err, errlen);
		o->set |= rc == 0 ? OBJOPT_CACHE_CONTROL : 0;
	} else if (strcmp(name, "content-encoding") == 0) {
		rc = copy_value(name, o->content_encoding, sizeof(o->content_encoding), value,
		    err, errlen);
		o->set |= rc == 0 ? OBJOPT_CONTENT_ENCODING : 0;
	} else if (strcmp(name, "storage-class") == 0) {
		if (!one_of(value, classes, sizeof(classes) / sizeof(classes[0]))) {
			seterr(err, errlen, "storage-class: '%s' is not an S3 storage class (STANDARD, STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, ...)", value);
			return -EINVAL;
		}
		snprintf(o->storage_class, sizeof(o->storage_class), "%s", value);
		o->set |= OBJOPT_STORAGE_CLASS;
		rc = 0;
	} else if (strcmp(name, "sse") == 0) {
		if (!one_of(value, sses, sizeof(sses) / sizeof(sses[0]))) {
			seterr(err, errlen, "sse: '%s' is not AES256, aws:kms or aws:kms:dsse", value);
			return -EINVAL;
		}
		snprintf(o->sse, sizeof(o->sse), "%s", value);
		o->set |= OBJOPT_SSE;
		rc = 0;
	} else if (strcmp(name, "sse-kms-key-id") == 0) {
		rc = copy_value(name, o->sse_kms_key_id, sizeof(o->sse_kms_key_id), value, err,
		    errlen);
		if (rc == 0 && (value[0] == '\0' || strchr(value, ' ') != NULL)) {
			seterr(err, errlen, "sse-kms-key-id: '%s' is not a key id, ARN or alias", value);
			rc = -EINVAL;
		}
		o->set |= rc == 0 ? OBJOPT_SSE_KMS_KEY_ID : 0;
	} else if (strcmp(name, "sse-bucket-key") == 0) {
		if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcmp(value, "1"))
			o->sse_bucket_key = true;
		else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcmp(value, "0"))
			o->sse_bucket_key = false;
		else {
			seterr(err, errlen, "sse-bucket-key: '%s' is not true or false", value);
			return -EINVAL;
		}
		o->set |= OBJOPT_SSE_BUCKET_KEY;
		rc = 0;
	} else if (strcmp(name, "acl") == 0) {
		if (!one_of(value, acls, sizeof(acls) / sizeof(acls[0]))) {
			seterr(err, errlen, "acl: '%s' is not a canned ACL (e.g. bucket-owner-full-control)", value);
			return -EINVAL;
		}
		snprintf(o->acl, sizeof(o->acl), "%s", value);
		o->set |= OBJOPT_ACL;
		rc = 0;
	} else if (strcmp(name, "tag") == 0) {
		rc = add_pair(name, o->tags, &o->ntags, value, false, err, errlen);
		o->set |= rc == 0 ? OBJOPT_TAGS : 0;
	} else if (strcmp(name, "meta") == 0) {
		rc = add_pair(name, o->meta, &o->nmeta, value, true, err, errlen);
		o->set |= rc == 0 ? OBJOPT_META : 0;
	} else {
		seterr(err, errlen, "unknown object option '%s'", name);
		rc = -EINVAL;
	}
	return rc;
}

/* The rule that applies to key over rules[0]: the longest matching
 * prefix, or NULL. */
static const struct objopts *
best_rule(const struct objopts *rules, size_t n, const char *key)
{
	const struct objopts *best = NULL;
	size_t best_len = 0;

	for (size_t i = 1; i < n; i++) {
		size_t l = strlen(rules[i].prefix);
		if (l > best_len && strncmp(key, rules[i].prefix, l) == 0) {
			best = &rules[i];
			best_len = l;
		}
	}
	return best;
}

/* The rule r's field if r sets it, else the global rule g's. */
#define PICK(g, r, field, bit) \
	((r) != NULL && ((r)->set & (bit)) ? (r)->field : (g)->field)

int
objopts_validate(const struct objopts *rules, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const struct objopts *g = &rules[0], *r = i ? &rules[i] : NULL;
		const char *sse = PICK(g, r, sse, OBJOPT_SSE);
		const char *kms = PICK(g, r, sse_kms_key_id, OBJOPT_SSE_KMS_KEY_ID);
		bool bk = PICK(g, r, sse_bucket_key, OBJOPT_SSE_BUCKET_KEY);
		const struct objopts *m = r != NULL && (r->set & OBJOPT_META) ? r : g;
		size_t meta = 0;
		const char *where = i ? rules[i].prefix : NULL;

		if ((kms[0] != '\0' || bk) && strncmp(sse, "aws:kms", 7) != 0) {
			seterr(err, errlen, "%s%s%ssse-kms-key-id and sse-bucket-key need sse = aws:kms",
			    where ? "[prefix " : "", where ? where : "", where ? "]: " : "");
			return -EINVAL;
		}
		for (unsigned k = 0; k < m->nmeta; k++)
			meta += strlen(m->meta[k].name) + strlen(m->meta[k].value);
		if (meta > OBJOPTS_META_MAX) {
			seterr(err, errlen, "%s%s%smetadata is %zu bytes, S3 allows %d",
			    where ? "[prefix " : "", where ? where : "", where ? "]: " : "",
			    meta, OBJOPTS_META_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

const char *
objopts_content_type_for_key(const char *key)
{
	static const struct {
		const char *ext, *type;
	} table[] = {
		{ "json", "application/json" },
		{ "ndjson", "application/x-ndjson" },
		{ "jsonl", "application/x-ndjson" },
		{ "txt", "text/plain; charset=utf-8" },
		{ "log", "text/plain; charset=utf-8" },
		{ "csv", "text/csv" },
		{ "tsv", "text/tab-separated-values" },
		{ "html", "text/html" },
		{ "xml", "application/xml" },
		{ "gz", "application/gzip" },
		{ "zst", "application/zstd" },
		{ "parquet", "application/vnd.apache.parquet" },
		{ "avro", "application/avro" },
		{ "pb", "application/x-protobuf" },
		{ "pdf", "application/pdf" },
		{ "png", "image/png" },
		{ "jpg", "image/jpeg" },
		{ "jpeg", "image/jpeg" },
		{ "tar", "application/x-tar" },
		{ "zip", "application/zip" },
	};
	const char *slash = strrchr(key, '/');
	const char *base = slash ? slash + 1 : key;
	const char *dot = strrchr(base, '.');

	/* "a/.hidden" has no extension; "a/b." has an empty one. */
	if (dot == NULL || dot == base || dot[1] == '\0')
		return "application/octet-stream";
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcasecmp(dot + 1, table[i].ext) == 0)
			return table[i].type;
	return "application/octet-stream";
}

/* URL-encodes one tag part onto out; returns the new length or -ENOSPC. */
static ssize_t
tag_part(char *out, size_t cap, size_t len, const char *s)
{
	ssize_t n = sigv4_uri_encode(out + len, cap - len, s, strlen(s), false);

	return n < 0 ? n : (ssize_t)len + n;
}

static void
hdr_add(struct objopts_headers *out, const char *name, const char *value)
{
	/* At most 9 fixed headers and OBJOPTS_PAIRS metadata: always fits. */
	out->h[out->n++] = (struct sigv4_kv){ name, value };
}

int
objopts_headers(const struct objopts *rules, size_t n, const char *key,
    struct objopts_headers *out)
{
	const struct objopts *g = &rules[0], *r = best_rule(rules, n, key);
	const struct objopts *t = r != NULL && (r->set & OBJOPT_TAGS) ? r : g;
	const struct objopts *m = r != NULL && (r->set & OBJOPT_META) ? r : g;
	const char *ct = PICK(g, r, content_type, OBJOPT_CONTENT_TYPE);
	const char *v;

	out->n = 0;
	hdr_add(out, "Content-Type", ct[0] != '\0' ? ct : objopts_content_type_for_key(key));
	if ((v = PICK(g, r, cache_control, OBJOPT_CACHE_CONTROL))[0] != '\0')
		hdr_add(out, "Cache-Control", v);
	if ((v = PICK(g, r, content_encoding, OBJOPT_CONTENT_ENCODING))[0] != '\0')
		hdr_add(out, "Content-Encoding", v);
	if ((v = PICK(g, r, storage_class, OBJOPT_STORAGE_CLASS))[0] != '\0')
		hdr_add(out, "x-amz-storage-class", v);
	if ((v = PICK(g, r, sse, OBJOPT_SSE))[0] != '\0') {
		hdr_add(out, "x-amz-server-side-encryption", v);
		if ((v = PICK(g, r, sse_kms_key_id, OBJOPT_SSE_KMS_KEY_ID))[0] != '\0')
			hdr_add(out, "x-amz-server-side-encryption-aws-kms-key-id", v);
		if (PICK(g, r, sse_bucket_key, OBJOPT_SSE_BUCKET_KEY))
			hdr_add(out, "x-amz-server-side-encryption-bucket-key-enabled", "true");
	}
	if ((v = PICK(g, r, acl, OBJOPT_ACL))[0] != '\0')
		hdr_add(out, "x-amz-acl", v);
	if (t->ntags > 0) {
		ssize_t len = 0;
		for (unsigned i = 0; i < t->ntags && len >= 0; i++) {
			if (i > 0 && (size_t)len + 1 < sizeof(out->tagging))
				out->tagging[len++] = '&';
			len = tag_part(out->tagging, sizeof(out->tagging), (size_t)len, t->tags[i].name);
			if (len >= 0 && (size_t)len + 1 < sizeof(out->tagging))
				out->tagging[len++] = '=';
			if (len >= 0)
				len = tag_part(out->tagging, sizeof(out->tagging), (size_t)len,
				    t->tags[i].value);
		}
		if (len < 0)
			return -ENOSPC;
		out->tagging[len] = '\0';
		hdr_add(out, "x-amz-tagging", out->tagging);
	}
	for (unsigned i = 0; i < m->nmeta; i++) {
		snprintf(out->meta_names[i], sizeof(out->meta_names[i]), "x-amz-meta-%s",
		    m->meta[i].name);
		hdr_add(out, out->meta_names[i], m->meta[i].value);
	}
	return 0;
}
#undef PICK
