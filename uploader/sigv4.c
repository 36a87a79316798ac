/* sigv4.c -- AWS Signature Version 4 request signing (HMAC-SHA256) */
/*
 * A signer turns a request description into the canonical request, the
 * string to sign and the Authorization value, using only memory it owns:
 * fixed scratch buffers sized by the SIGV4_* caps, so signing never
 * allocates and a hostile key or header can only earn -ENOSPC, never a
 * larger buffer. The signing key (four chained HMACs) is cached per
 * (date, region, service, secret); the secret itself is never stored,
 * only its SHA-256, and every cache entry is wiped with explicit_bzero
 * when it is replaced or the signer is freed. A signer is used by one
 * thread at a time.
 */
#include "sigv4.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define KEY_CACHE_SLOTS	4
#define DATE_LEN	8			/* "20150830" */
#define PATH_MAX_BYTES	(SIGV4_CANONICAL_MAX / 4) /* before encoding */
#define CPATH_MAX	(3 * PATH_MAX_BYTES + 1)
#define CQUERY_MAX	8192
#define QSCRATCH_MAX	8192
#define HSCRATCH_MAX	16384
#define SIGNED_MAX	1024
#define STS_MAX		256
#define NHDR_MAX	(SIGV4_MAX_HEADERS + 3)

struct key_slot {
	bool valid;
	char date[DATE_LEN + 1];
	char region[SIGV4_REGION_MAX];
	char service[SIGV4_SERVICE_MAX];
	unsigned char secret_digest[32];
	unsigned char key[32];
};

struct hdr {
	const char *name;	/* lowercase, NUL-terminated, in hscratch */
	const char *value;	/* trimmed, NUL-terminated, in hscratch */
	unsigned order;		/* input position: duplicates keep it */
};

struct qparam {
	const char *name;	/* encoded, in qscratch */
	const char *value;
};

/* An append-only view of a fixed buffer; overflow is sticky. */
struct buf {
	char *p;
	size_t cap;
	size_t len;
	bool overflow;
};

struct sigv4_signer {
	struct key_slot cache[KEY_CACHE_SLOTS];
	unsigned cache_next;
	uint64_t derivations;

	struct hdr hdrs[NHDR_MAX];
	struct qparam params[SIGV4_MAX_QUERY];
	char path_norm[PATH_MAX_BYTES];
	char cpath[CPATH_MAX];
	char cquery[CQUERY_MAX];
	char qscratch[QSCRATCH_MAX];
	char hscratch[HSCRATCH_MAX];
	char signed_headers[SIGNED_MAX];
	char creq[SIGV4_CANONICAL_MAX];
	char sts[STS_MAX];

	EVP_MD_CTX *md;		/* SHA-256, reused for every digest */
	EVP_MAC_CTX *mac;	/* HMAC with SHA-256 set once */
};

static void
buf_init(struct buf *b, char *p, size_t cap)
{
	b->p = p;
	b->cap = cap;
	b->len = 0;
	b->overflow = false;
	p[0] = '\0';
}

/* Appends n bytes and keeps the buffer NUL-terminated. */
static void
buf_put(struct buf *b, const char *s, size_t n)
{
	if (b->overflow)
		return;
	if (n >= b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static void
buf_putc(struct buf *b, char c)
{
	buf_put(b, &c, 1);
}

/* Reserves a NUL-terminated copy slot of n bytes; returns its start. */
static char *
buf_reserve(struct buf *b, size_t n)
{
	char *start;

	if (b->overflow || n + 1 > b->cap - b->len) {
		b->overflow = true;
		return NULL;
	}
	start = b->p + b->len;
	b->len += n + 1;
	start[n] = '\0';
	return start;
}

static bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

ssize_t
sigv4_uri_encode(char *dst, size_t cap, const void *src, size_t len,
    bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = src;
	size_t o = 0;

	if (cap == 0)
		return -ENOSPC;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			if (cap - o < 2)
				return -ENOSPC;
			dst[o++] = (char)c;
		} else {
			if (cap - o < 4)
				return -ENOSPC;
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return (ssize_t)o;
}

static void
to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/*
 * SHA-256 and HMAC, fetched from the provider once per process. Named by
 * EVP_sha256() or HMAC(), OpenSSL 3 looks each algorithm up again for
 * every digest (a lock and a reference count, then a context allocated and
 * freed): that was 15% of an upload's CPU against nginx, four digests and
 * an HMAC per request. A signer keeps its own contexts; sigv4_sha256_hex(),
 * which has none, shares the fetched digest. Both are released at exit
 * (before OpenSSL's own clean-up, which was registered first).
 */
static EVP_MD *sha256_alg;
static EVP_MAC *hmac_alg;
static pthread_once_t alg_once = PTHREAD_ONCE_INIT;

static void
free_algs(void)
{
	EVP_MD_free(sha256_alg);
	EVP_MAC_free(hmac_alg);
	sha256_alg = NULL;
	hmac_alg = NULL;
}

static void
fetch_algs(void)
{
	sha256_alg = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	/* If atexit() fails they are kept for the life of the process. */
	(void)atexit(free_algs);
}

static const EVP_MD *
sha256_md(void)
{
	(void)pthread_once(&alg_once, fetch_algs);
	return sha256_alg != NULL ? sha256_alg : EVP_sha256();
}

static int
sha256(struct sigv4_signer *s, const void *buf, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	if (EVP_DigestInit_ex(s->md, sha256_md(), NULL) != 1 ||
	    EVP_DigestUpdate(s->md, buf, len) != 1 ||
	    EVP_DigestFinal_ex(s->md, out, &n) != 1 || n != 32)
		return -EIO;
	return 0;
}

int
sigv4_sha256_hex(const void *buf, size_t len, char hex[SIGV4_SHA256_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (EVP_Digest(buf, len, md, &n, sha256_md(), NULL) != 1 || n != 32)
		return -EIO;
	to_hex(md, sizeof(md), hex);
	return 0;
}

static int
hmac(struct sigv4_signer *s, const void *key, size_t keylen, const void *msg,
    size_t len, unsigned char out[32])
{
	size_t n = 0;

	if (EVP_MAC_init(s->mac, key, keylen, NULL) != 1 ||
	    EVP_MAC_update(s->mac, msg, len) != 1 ||
	    EVP_MAC_final(s->mac, out, &n, 32) != 1 || n != 32)
		return -EIO;
	return 0;
}

int
sigv4_amz_date(time_t when, char out[SIGV4_AMZ_DATE_LEN + 1])
{
	struct tm tm;

	if (gmtime_r(&when, &tm) == NULL)
		return -EOVERFLOW;
	if (strftime(out, SIGV4_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) !=
	    SIGV4_AMZ_DATE_LEN)
		return -EOVERFLOW;
	return 0;
}

struct sigv4_signer *
sigv4_signer_new(void)
{
	struct sigv4_signer *s;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA2-256", 0),
		OSSL_PARAM_construct_end(),
	};

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	(void)sha256_md();
	s->md = EVP_MD_CTX_new();
	s->mac = hmac_alg != NULL ? EVP_MAC_CTX_new(hmac_alg) : NULL;
	if (s->md == NULL || s->mac == NULL) {
		sigv4_signer_free(s);
		errno = ENOMEM;
		return NULL;
	}
	if (EVP_MAC_CTX_set_params(s->mac, params) != 1) {
		sigv4_signer_free(s);
		errno = EIO;
		return NULL;
	}
	return s;
}

void
sigv4_signer_free(struct sigv4_signer *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s->cache, sizeof(s->cache));
	/* The canonical request and string to sign are not secret, but the
	 * scratch may hold a session token, which is. */
	explicit_bzero(s->hscratch, sizeof(s->hscratch));
	explicit_bzero(s->creq, sizeof(s->creq));
	EVP_MD_CTX_free(s->md);
	EVP_MAC_CTX_free(s->mac);	/* cleanses the key it holds */
	free(s);
}

uint64_t
sigv4_signer_derivations(const struct sigv4_signer *s)
{
	return s->derivations;
}

/*
 * Returns the signing key for (date, region, service, secret), deriving it
 * on a miss: kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date),
 * region), service), "aws4_request").
 */
static int
signing_key(struct sigv4_signer *s, const char *secret, const char *date,
    const char *region, const char *service, const unsigned char **key)
{
	unsigned char digest[32], k1[32], k2[32];
	char seed[8 + 256];
	struct key_slot *slot;
	size_t slen = strlen(secret);
	int rc;

	rc = sha256(s, secret, slen, digest);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < KEY_CACHE_SLOTS; i++) {
		slot = &s->cache[i];
		if (slot->valid && strcmp(slot->date, date) == 0 &&
		    strcmp(slot->region, region) == 0 &&
		    strcmp(slot->service, service) == 0 &&
		    memcmp(slot->secret_digest, digest, sizeof(digest)) == 0) {
			*key = slot->key;
			return 0;
		}
	}

	if (slen + 4 > sizeof(seed))
		return -EINVAL;
	slot = &s->cache[s->cache_next];
	s->cache_next = (s->cache_next + 1) % KEY_CACHE_SLOTS;
	explicit_bzero(slot, sizeof(*slot));

	memcpy(seed, "AWS4", 4);
	memcpy(seed + 4, secret, slen);
	rc = hmac(s, seed, 4 + slen, date, strlen(date), k1);
	if (rc == 0)
		rc = hmac(s, k1, sizeof(k1), region, strlen(region), k2);
	if (rc == 0)
		rc = hmac(s, k2, sizeof(k2), service, strlen(service), k1);
	if (rc == 0)
		rc = hmac(s, k1, sizeof(k1), "aws4_request", 12, slot->key);
	explicit_bzero(seed, sizeof(seed));
	explicit_bzero(k1, sizeof(k1));
	explicit_bzero(k2, sizeof(k2));
	if (rc < 0) {
		explicit_bzero(slot, sizeof(*slot));
		return rc;
	}
	memcpy(slot->date, date, DATE_LEN + 1);
	/* Lengths were checked against these sizes by check_request(). */
	snprintf(slot->region, sizeof(slot->region), "%s", region);
	snprintf(slot->service, sizeof(slot->service), "%s", service);
	memcpy(slot->secret_digest, digest, sizeof(digest));
	slot->valid = true;
	s->derivations++;
	*key = slot->key;
	return 0;
}

/*
 * The generic services' path normalization, as botocore and the test
 * vectors do it: drop empty and "." segments, let ".." remove the previous
 * one, keep a trailing slash if anything is left.
 */
static int
normalize_path(const char *path, char *out, size_t cap)
{
	struct buf b;
	const char *p = path;
	size_t plen = strlen(path);

	buf_init(&b, out, cap);
	while (*p != '\0') {
		const char *seg;
		size_t n;

		while (*p == '/')
			p++;
		seg = p;
		while (*p != '\0' && *p != '/')
			p++;
		n = (size_t)(p - seg);
		if (n == 0 || (n == 1 && seg[0] == '.'))
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			char *slash = memrchr(b.p, '/', b.len);

			if (slash != NULL) {
				b.len = (size_t)(slash - b.p);
				b.p[b.len] = '\0';
			}
			continue;
		}
		buf_putc(&b, '/');
		buf_put(&b, seg, n);
	}
	if (b.len == 0)
		buf_putc(&b, '/');
	else if (plen > 0 && path[plen - 1] == '/')
		buf_putc(&b, '/');
	return b.overflow ? -ENOSPC : 0;
}

static int
cmp_param(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* Sorts by name; equal names keep their input order so their values join
 * in the order they were given, as SigV4 requires. */
static int
cmp_hdr(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int
canonical_query(struct sigv4_signer *s, const struct sigv4_request *req)
{
	struct buf scratch, q;

	if (req->nquery > SIGV4_MAX_QUERY)
		return -E2BIG;
	buf_init(&scratch, s->qscratch, sizeof(s->qscratch));
	for (size_t i = 0; i < req->nquery; i++) {
		const char *name = req->query[i].name;
		const char *value = req->query[i].value ? req->query[i].value : "";
		char *dst[2];
		const char *src[2] = { name, value };

		if (name == NULL)
			return -EINVAL;
		for (int k = 0; k < 2; k++) {
			size_t room = scratch.cap - scratch.len;
			ssize_t n;

			n = sigv4_uri_encode(scratch.p + scratch.len, room,
			    src[k], strlen(src[k]), false);
			if (n < 0)
				return -ENOSPC;
			dst[k] = scratch.p + scratch.len;
			scratch.len += (size_t)n + 1;
		}
		s->params[i].name = dst[0];
		s->params[i].value = dst[1];
	}
	qsort(s->params, req->nquery, sizeof(s->params[0]), cmp_param);

	buf_init(&q, s->cquery, sizeof(s->cquery));
	for (size_t i = 0; i < req->nquery; i++) {
		if (i > 0)
			buf_putc(&q, '&');
		buf_puts(&q, s->params[i].name);
		buf_putc(&q, '=');
		buf_puts(&q, s->params[i].value);
	}
	return q.overflow ? -ENOSPC : 0;
}

static bool
is_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

/* The whitespace that botocore's str.split() collapses, over ASCII. */
static bool
is_hspace(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' ||
	    (c >= 0x1c && c <= 0x1f);
}

/* Adds one header: lowercase name, value trimmed with inner runs of
 * whitespace collapsed to one space. */
static int
add_header(struct sigv4_signer *s, struct buf *scratch, size_t *n,
    const char *name, const char *value)
{
	size_t nlen = strlen(name), vlen, o = 0;
	char *lname, *cval;
	bool space = false;

	if (*n >= NHDR_MAX)
		return -E2BIG;
	if (nlen == 0)
		return -EINVAL;
	lname = buf_reserve(scratch, nlen);
	if (lname == NULL)
		return -ENOSPC;
	for (size_t i = 0; i < nlen; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!is_token_char(c))
			return -EINVAL;
		lname[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
	}

	vlen = strlen(value);
	cval = buf_reserve(scratch, vlen);
	if (cval == NULL)
		return -ENOSPC;
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)value[i];

		/* CR and LF would let a value smuggle in another header. */
		if (c == '\r' || c == '\n')
			return -EINVAL;
		if (is_hspace(c)) {
			space = o > 0;
			continue;
		}
		if (space)
			cval[o++] = ' ';
		space = false;
		cval[o++] = (char)c;
	}
	cval[o] = '\0';

	s->hdrs[*n].name = lname;
	s->hdrs[*n].value = cval;
	s->hdrs[*n].order = (unsigned)*n;
	(*n)++;
	return 0;
}

static bool
owned_by_signer(const char *lname, enum sigv4_mode mode)
{
	return strcmp(lname, "x-amz-date") == 0 ||
	    strcmp(lname, "x-amz-security-token") == 0 ||
	    strcmp(lname, "authorization") == 0 ||
	    (mode == SIGV4_MODE_S3 && strcmp(lname, "x-amz-content-sha256") == 0);
}

static int
canonical_headers(struct sigv4_signer *s, const struct sigv4_credentials *creds,
    const struct sigv4_request *req, const char *amz_date, struct buf *creq)
{
	struct buf scratch, sh;
	bool have_host = false;
	size_t n = 0;
	int rc;

	if (req->nheaders > SIGV4_MAX_HEADERS)
		return -E2BIG;
	buf_init(&scratch, s->hscratch, sizeof(s->hscratch));
	for (size_t i = 0; i < req->nheaders; i++) {
		if (req->headers[i].name == NULL || req->headers[i].value == NULL)
			return -EINVAL;
		rc = add_header(s, &scratch, &n, req->headers[i].name,
		    req->headers[i].value);
		if (rc < 0)
			return rc;
		if (owned_by_signer(s->hdrs[n - 1].name, req->mode))
			return -EINVAL;
		if (strcmp(s->hdrs[n - 1].name, "host") == 0)
			have_host = true;
	}
	if (!have_host)
		return -EINVAL;

	rc = add_header(s, &scratch, &n, "x-amz-date", amz_date);
	if (rc == 0 && creds->session_token != NULL &&
	    creds->session_token[0] != '\0')
		rc = add_header(s, &scratch, &n, "x-amz-security-token",
		    creds->session_token);
	if (rc == 0 && req->mode == SIGV4_MODE_S3)
		rc = add_header(s, &scratch, &n, "x-amz-content-sha256",
		    req->payload_sha256);
	if (rc < 0)
		return rc;

	qsort(s->hdrs, n, sizeof(s->hdrs[0]), cmp_hdr);
	buf_init(&sh, s->signed_headers, sizeof(s->signed_headers));
	for (size_t i = 0; i < n; i++) {
		bool dup = i > 0 && strcmp(s->hdrs[i].name, s->hdrs[i - 1].name) == 0;

		if (dup) {
			buf_putc(creq, ',');
		} else {
			if (i > 0) {
				buf_putc(creq, '\n');
				buf_putc(&sh, ';');
			}
			buf_puts(creq, s->hdrs[i].name);
			buf_putc(creq, ':');
			buf_puts(&sh, s->hdrs[i].name);
		}
		buf_puts(creq, s->hdrs[i].value);
	}
	buf_putc(creq, '\n');
	return sh.overflow ? -ENOSPC : 0;
}

static int
check_request(const struct sigv4_credentials *creds,
    const struct sigv4_request *req)
{
	if (creds == NULL || creds->access_key_id == NULL ||
	    creds->secret_access_key == NULL ||
	    creds->access_key_id[0] == '\0' ||
	    creds->secret_access_key[0] == '\0')
		return -EINVAL;
	if (strchr(creds->access_key_id, '/') != NULL)
		return -EINVAL;
	if (req->method == NULL || req->method[0] == '\0' ||
	    req->path == NULL || req->path[0] != '/' ||
	    req->payload_sha256 == NULL || req->payload_sha256[0] == '\0' ||
	    req->region == NULL || req->region[0] == '\0' ||
	    req->service == NULL || req->service[0] == '\0')
		return -EINVAL;
	if (req->mode != SIGV4_MODE_S3 && req->mode != SIGV4_MODE_GENERIC)
		return -EINVAL;
	if (strlen(req->region) >= SIGV4_REGION_MAX ||
	    strlen(req->service) >= SIGV4_SERVICE_MAX)
		return -EINVAL;
	if (strchr(req->region, '/') != NULL || strchr(req->service, '/') != NULL)
		return -EINVAL;
	if (req->nheaders > 0 && req->headers == NULL)
		return -EINVAL;
	if (req->nquery > 0 && req->query == NULL)
		return -EINVAL;
	return 0;
}

int
sigv4_sign(struct sigv4_signer *s, const struct sigv4_credentials *creds,
    const struct sigv4_request *req, time_t when, struct sigv4_result *out)
{
	unsigned char md[32], sig[32];
	char md_hex[65], sig_hex[65], date[DATE_LEN + 1];
	const unsigned char *key;
	const char *path = req->path;
	struct buf creq, sts;
	ssize_t n;
	int rc, len;

	rc = check_request(creds, req);
	if (rc < 0)
		return rc;
	rc = sigv4_amz_date(when, out->amz_date);
	if (rc < 0)
		return rc;
	memcpy(date, out->amz_date, DATE_LEN);
	date[DATE_LEN] = '\0';

	if (req->mode == SIGV4_MODE_GENERIC) {
		rc = normalize_path(req->path, s->path_norm, sizeof(s->path_norm));
		if (rc < 0)
			return rc;
		path = s->path_norm;
	}
	n = sigv4_uri_encode(s->cpath, sizeof(s->cpath), path, strlen(path),
	    true);
	if (n < 0)
		return (int)n;
	rc = canonical_query(s, req);
	if (rc < 0)
		return rc;

	buf_init(&creq, s->creq, sizeof(s->creq));
	buf_puts(&creq, req->method);
	buf_putc(&creq, '\n');
	buf_puts(&creq, s->cpath);
	buf_putc(&creq, '\n');
	buf_puts(&creq, s->cquery);
	buf_putc(&creq, '\n');
	rc = canonical_headers(s, creds, req, out->amz_date, &creq);
	if (rc < 0)
		return rc;
	buf_putc(&creq, '\n');
	buf_puts(&creq, s->signed_headers);
	buf_putc(&creq, '\n');
	buf_puts(&creq, req->payload_sha256);
	if (creq.overflow)
		return -ENOSPC;

	rc = sha256(s, creq.p, creq.len, md);
	if (rc < 0)
		return rc;
	to_hex(md, sizeof(md), md_hex);
	buf_init(&sts, s->sts, sizeof(s->sts));
	buf_puts(&sts, "AWS4-HMAC-SHA256\n");
	buf_puts(&sts, out->amz_date);
	buf_putc(&sts, '\n');
	buf_puts(&sts, date);
	buf_putc(&sts, '/');
	buf_puts(&sts, req->region);
	buf_putc(&sts, '/');
	buf_puts(&sts, req->service);
	buf_puts(&sts, "/aws4_request\n");
	buf_puts(&sts, md_hex);
	if (sts.overflow)
		return -ENOSPC;

	rc = signing_key(s, creds->secret_access_key, date, req->region,
	    req->service, &key);
	if (rc < 0)
		return rc;
	rc = hmac(s, key, 32, sts.p, sts.len, sig);
	if (rc < 0)
		return rc;
	to_hex(sig, sizeof(sig), sig_hex);

	len = snprintf(out->authorization, sizeof(out->authorization),
	    "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
	    "SignedHeaders=%s, Signature=%s", creds->access_key_id, date,
	    req->region, req->service, s->signed_headers, sig_hex);
	if (len < 0 || (size_t)len >= sizeof(out->authorization))
		return -ENOSPC;

	out->canonical_path = s->cpath;
	out->canonical_query = s->cquery;
	out->canonical_request = s->creq;
	out->string_to_sign = s->sts;
	return 0;
}
