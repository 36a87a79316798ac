/* s3err.c -- S3 error bodies, error classes and retry backoff */
/*
 * The XML reader here is not an XML parser: it walks tags from left to
 * right over at most `len` bytes and picks the text of three children of
 * the root <Error> element. Every read is bounded by the end pointer and
 * every loop advances, so truncated, garbage or hostile bodies (they come
 * from the network, and tests/fuzz/fuzz_s3err.c fuzzes this) end in
 * -ENOENT or partial fields, never in an overrun or a loop. Output fields
 * are capped, NUL-terminated and free of control characters, because they
 * end up in log lines. The classification tables only ever grow; a code
 * that is not in them falls back to its HTTP status.
 */
#include "s3err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* ------------------------------------------------------------ XML fields */

struct field {
	const char *name;
	size_t name_len;
	char *out;
	size_t cap;
	bool ascii_only;
	bool done;
};

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends the UTF-8 encoding of cp, or '?' for one that is not a valid
 * scalar value. Returns the new length; never writes past cap - 1. */
static size_t
put_codepoint(char *out, size_t o, size_t cap, unsigned long cp, bool ascii_only)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x20 || cp == 0x7f) {
		b[0] = ' ';
		n = 1;
	} else if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (ascii_only || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		b[0] = '?';
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	/* Whole characters only: a cut never leaves half a sequence. */
	if (n > cap - 1 - o)
		return o;
	memcpy(out + o, b, n);
	return o + n;
}

/* Decodes one entity at p (which points at '&'); returns the bytes used,
 * or 0 when it is not a well-formed entity. */
static size_t
decode_entity(const char *p, const char *end, unsigned long *cp)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	size_t avail = (size_t)(end - p);

	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);

		if (avail >= n && memcmp(p, named[i].name, n) == 0) {
			*cp = (unsigned char)named[i].c;
			return n;
		}
	}
	if (avail >= 4 && p[1] == '#') {
		bool hex = p[2] == 'x' || p[2] == 'X';
		const char *q = p + (hex ? 3 : 2);
		unsigned long v = 0;
		size_t digits = 0;

		/* Eight digits are more than any code point needs and keep v
		 * far from overflow. */
		for (; q < end && digits < 8; q++, digits++) {
			int d;

			if (*q >= '0' && *q <= '9')
				d = *q - '0';
			else if (hex && *q >= 'a' && *q <= 'f')
				d = *q - 'a' + 10;
			else if (hex && *q >= 'A' && *q <= 'F')
				d = *q - 'A' + 10;
			else
				break;
			v = v * (hex ? 16 : 10) + (unsigned long)d;
		}
		if (digits > 0 && q < end && *q == ';') {
			*cp = v;
			return (size_t)(q - p) + 1;
		}
	}
	return 0;
}

/* Copies the text between p and end into f, decoding entities, trimming
 * whitespace and replacing control characters. */
static void
field_set(struct field *f, const char *p, const char *end)
{
	size_t o = 0;

	while (p < end && is_space((unsigned char)*p))
		p++;
	while (end > p && is_space((unsigned char)end[-1]))
		end--;
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		unsigned long cp;
		size_t used;

		if (c == '&' && (used = decode_entity(p, end, &cp)) > 0) {
			o = put_codepoint(f->out, o, f->cap, cp, f->ascii_only);
			p += used;
			continue;
		}
		if (c >= 0x80) {
			/* Raw UTF-8 is copied as it is, except where ASCII is
			 * required; a cut at the cap may only split it if the
			 * input itself was not valid UTF-8. */
			if (f->ascii_only)
				c = '?';
			if (o < f->cap - 1)
				f->out[o++] = (char)c;
			p++;
			continue;
		}
		o = put_codepoint(f->out, o, f->cap, c, f->ascii_only);
		p++;
	}
	f->out[o] = '\0';
	f->done = true;
}

static const char *
find(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);

	if (p >= end)
		return NULL;
	return memmem(p, (size_t)(end - p), needle, n);
}

/* Skips a BOM, whitespace, <?...?>, <!--...--> and <!...> before the root.
 * Returns NULL if the body ends first. */
static const char *
skip_prolog(const char *p, const char *end)
{
	if (end - p >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	for (;;) {
		const char *q;

		while (p < end && is_space((unsigned char)*p))
			p++;
		if (end - p < 2 || *p != '<')
			return NULL;
		if (p[1] == '?') {
			q = find(p + 2, end, "?>");
			if (q == NULL)
				return NULL;
			p = q + 2;
		} else if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
			q = find(p + 4, end, "-->");
			if (q == NULL)
				return NULL;
			p = q + 3;
		} else if (p[1] == '!') {
			q = memchr(p, '>', (size_t)(end - p));
			if (q == NULL)
				return NULL;
			p = q + 1;
		} else {
			return p;
		}
	}
}

/* Returns the length of the tag name starting at p. */
static size_t
tag_name_len(const char *p, const char *end)
{
	const char *q = p;

	while (q < end && *q != '>' && *q != '/' && !is_space((unsigned char)*q))
		q++;
	return (size_t)(q - p);
}

int
s3err_parse(const void *body, size_t len, struct s3err_body *out)
{
	struct field fields[] = {
		{ "Code", 4, out->code, sizeof(out->code), true, false },
		{ "Message", 7, out->message, sizeof(out->message), false, false },
		{ "RequestId", 9, out->request_id, sizeof(out->request_id), true,
		    false },
	};
	const char *p = body, *end = p + len, *gt;
	size_t nlen;
	int depth;

	out->code[0] = out->message[0] = out->request_id[0] = '\0';
	if (body == NULL)
		return -ENOENT;
	p = skip_prolog(p, end);
	if (p == NULL)
		return -ENOENT;
	nlen = tag_name_len(p + 1, end);
	if (nlen != 5 || memcmp(p + 1, "Error", 5) != 0)
		return -ENOENT;
	gt = memchr(p, '>', (size_t)(end - p));
	if (gt == NULL || gt[-1] == '/')
		return -ENOENT;
	p = gt + 1;
	depth = 1;

	while (p < end && depth > 0) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		const char *name, *q;
		bool self_closing;

		if (lt == NULL || end - lt < 2)
			break;
		if (lt[1] == '/') {
			gt = memchr(lt, '>', (size_t)(end - lt));
			if (gt == NULL)
				break;
			depth--;
			p = gt + 1;
			continue;
		}
		if (end - lt >= 4 && memcmp(lt, "<!--", 4) == 0) {
			q = find(lt + 4, end, "-->");
			if (q == NULL)
				break;
			p = q + 3;
			continue;
		}
		gt = memchr(lt, '>', (size_t)(end - lt));
		if (gt == NULL)
			break;
		if (lt[1] == '?' || lt[1] == '!') {
			p = gt + 1;
			continue;
		}
		name = lt + 1;
		nlen = tag_name_len(name, gt);
		self_closing = gt[-1] == '/';
		p = gt + 1;
		if (self_closing)
			continue;
		if (depth == 1) {
			struct field *f = NULL;

			for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
				if (!fields[i].done && fields[i].name_len == nlen &&
				    memcmp(fields[i].name, name, nlen) == 0)
					f = &fields[i];
			}
			if (f != NULL) {
				/* A field is text up to its own end tag; one
				 * with child elements or cut short is skipped. */
				const char *text_end = memchr(p, '<',
				    (size_t)(end - p));

				if (text_end == NULL)
					break;
				if ((size_t)(end - text_end) >= nlen + 3 &&
				    text_end[1] == '/' &&
				    memcmp(text_end + 2, name, nlen) == 0 &&
				    text_end[2 + nlen] == '>') {
					field_set(f, p, text_end);
					p = text_end + 3 + nlen;
					continue;
				}
			}
		}
		depth++;
	}
	return fields[0].done && out->code[0] != '\0' ? 0 : -ENOENT;
}

/* ------------------------------------------------------- classification */

enum {
	F_RELOAD = 1,
	F_RESTART = 2,
};

struct code_rule {
	const char *code;
	enum s3err_class cls;
	int flags;
};

/*
 * Why some codes sit where they do:
 *  - RequestTimeTooSkewed is CONFIG: the signature is older than 15
 *    minutes, i.e. this host's clock is wrong, and retrying cannot help
 *    until someone fixes NTP.
 *  - BadDigest, XAmzContentSHA256Mismatch and InvalidDigest are MESSAGE:
 *    the body does not match the checksum computed when it was put, so
 *    sending the same bytes again gives the same answer; the dead-letter
 *    spool keeps the bytes for inspection.
 *  - ExpiredToken is TRANSIENT with a credential reload: new temporary
 *    credentials make the very same request succeed.
 *  - NoSuchUpload is TRANSIENT with a restart: someone (a lifecycle rule)
 *    aborted our multipart upload; creating a new one fixes it.
 */
static const struct code_rule code_rules[] = {
	/* TRANSIENT */
	{ "SlowDown", S3ERR_TRANSIENT, 0 },
	{ "InternalError", S3ERR_TRANSIENT, 0 },
	{ "ServiceUnavailable", S3ERR_TRANSIENT, 0 },
	{ "RequestTimeout", S3ERR_TRANSIENT, 0 },
	{ "RequestTimeoutException", S3ERR_TRANSIENT, 0 },
	{ "IncompleteBody", S3ERR_TRANSIENT, 0 },
	{ "OperationAborted", S3ERR_TRANSIENT, 0 },
	{ "Throttling", S3ERR_TRANSIENT, 0 },
	{ "ThrottlingException", S3ERR_TRANSIENT, 0 },
	{ "TooManyRequests", S3ERR_TRANSIENT, 0 },
	{ "TooManyRequestsException", S3ERR_TRANSIENT, 0 },
	{ "RequestLimitExceeded", S3ERR_TRANSIENT, 0 },
	{ "RequestThrottled", S3ERR_TRANSIENT, 0 },
	{ "BandwidthLimitExceeded", S3ERR_TRANSIENT, 0 },
	{ "TemporaryRedirect", S3ERR_TRANSIENT, 0 },
	{ "ExpiredToken", S3ERR_TRANSIENT, F_RELOAD },
	{ "ExpiredTokenException", S3ERR_TRANSIENT, F_RELOAD },
	{ "TokenRefreshRequired", S3ERR_TRANSIENT, F_RELOAD },
	{ "NoSuchUpload", S3ERR_TRANSIENT, F_RESTART },
	/* CONFIG */
	{ "NoSuchBucket", S3ERR_CONFIG, 0 },
	{ "AccessDenied", S3ERR_CONFIG, 0 },
	{ "AllAccessDisabled", S3ERR_CONFIG, 0 },
	{ "AccountProblem", S3ERR_CONFIG, 0 },
	{ "InvalidAccessKeyId", S3ERR_CONFIG, 0 },
	{ "SignatureDoesNotMatch", S3ERR_CONFIG, 0 },
	{ "InvalidToken", S3ERR_CONFIG, 0 },
	{ "InvalidSecurity", S3ERR_CONFIG, 0 },
	{ "MissingSecurityHeader", S3ERR_CONFIG, 0 },
	{ "NotSignedUp", S3ERR_CONFIG, 0 },
	{ "AuthorizationHeaderMalformed", S3ERR_CONFIG, 0 },
	{ "AuthorizationQueryParametersError", S3ERR_CONFIG, 0 },
	{ "RequestTimeTooSkewed", S3ERR_CONFIG, 0 },
	{ "InvalidBucketName", S3ERR_CONFIG, 0 },
	{ "InvalidBucketState", S3ERR_CONFIG, 0 },
	{ "PermanentRedirect", S3ERR_CONFIG, 0 },
	{ "IllegalLocationConstraintException", S3ERR_CONFIG, 0 },
	{ "InvalidStorageClass", S3ERR_CONFIG, 0 },
	{ "InvalidRegion", S3ERR_CONFIG, 0 },
	{ "NotImplemented", S3ERR_CONFIG, 0 },
	{ "MethodNotAllowed", S3ERR_CONFIG, 0 },
	{ "QuotaExceeded", S3ERR_CONFIG, 0 },
	/* MESSAGE */
	{ "KeyTooLongError", S3ERR_MESSAGE, 0 },
	{ "KeyTooLong", S3ERR_MESSAGE, 0 },
	{ "EntityTooLarge", S3ERR_MESSAGE, 0 },
	{ "EntityTooSmall", S3ERR_MESSAGE, 0 },
	{ "MetadataTooLarge", S3ERR_MESSAGE, 0 },
	{ "BadDigest", S3ERR_MESSAGE, 0 },
	{ "InvalidDigest", S3ERR_MESSAGE, 0 },
	{ "XAmzContentSHA256Mismatch", S3ERR_MESSAGE, 0 },
	{ "InvalidArgument", S3ERR_MESSAGE, 0 },
	{ "InvalidRequest", S3ERR_MESSAGE, 0 },
	{ "InvalidObjectName", S3ERR_MESSAGE, 0 },
	{ "InvalidURI", S3ERR_MESSAGE, 0 },
	{ "MalformedXML", S3ERR_MESSAGE, 0 },
	{ "InvalidPart", S3ERR_MESSAGE, 0 },
	{ "InvalidPartOrder", S3ERR_MESSAGE, 0 },
	{ "MissingContentLength", S3ERR_MESSAGE, 0 },
	{ "UnexpectedContent", S3ERR_MESSAGE, 0 },
	{ "UserKeyMustBeSpecified", S3ERR_MESSAGE, 0 },
};

struct curl_rule {
	int code;
	enum s3err_class cls;
};

/*
 * curl failures that a retry cannot fix: certificate and TLS setup
 * problems, a malformed endpoint, redirect loops. CURLE_SSL_CONNECT_ERROR
 * is deliberately absent (hence TRANSIENT): mid-handshake resets are
 * common on busy paths, and the start-up HEAD bucket check catches a
 * permanent TLS mismatch as a CONFIG error through the certificate codes.
 */
static const struct curl_rule curl_rules[] = {
	{ CURLE_UNSUPPORTED_PROTOCOL, S3ERR_CONFIG },
	{ CURLE_URL_MALFORMAT, S3ERR_CONFIG },
	{ CURLE_NOT_BUILT_IN, S3ERR_CONFIG },
	{ CURLE_PEER_FAILED_VERIFICATION, S3ERR_CONFIG },
	{ CURLE_SSL_ENGINE_NOTFOUND, S3ERR_CONFIG },
	{ CURLE_SSL_ENGINE_SETFAILED, S3ERR_CONFIG },
	{ CURLE_SSL_CERTPROBLEM, S3ERR_CONFIG },
	{ CURLE_SSL_CIPHER, S3ERR_CONFIG },
	{ CURLE_SSL_CACERT_BADFILE, S3ERR_CONFIG },
	{ CURLE_SSL_ENGINE_INITFAILED, S3ERR_CONFIG },
	{ CURLE_SSL_CRL_BADFILE, S3ERR_CONFIG },
	{ CURLE_SSL_ISSUER_ERROR, S3ERR_CONFIG },
	{ CURLE_SSL_PINNEDPUBKEYNOTMATCH, S3ERR_CONFIG },
	{ CURLE_SSL_INVALIDCERTSTATUS, S3ERR_CONFIG },
	{ CURLE_SSL_CLIENTCERT, S3ERR_CONFIG },
	{ CURLE_TOO_MANY_REDIRECTS, S3ERR_CONFIG },
	{ CURLE_LOGIN_DENIED, S3ERR_CONFIG },
	{ CURLE_REMOTE_ACCESS_DENIED, S3ERR_CONFIG },
	{ CURLE_FILESIZE_EXCEEDED, S3ERR_MESSAGE },
};

const char *
s3err_class_name(enum s3err_class cls)
{
	switch (cls) {
	case S3ERR_OK:
		return "ok";
	case S3ERR_TRANSIENT:
		return "transient";
	case S3ERR_CONFIG:
		return "config";
	case S3ERR_MESSAGE:
		return "message";
	}
	return "unknown";
}

static const char *
status_reason(long status)
{
	static const struct {
		long status;
		const char *reason;
	} known[] = {
		{ 301, "HTTP 301" }, { 307, "HTTP 307" }, { 400, "HTTP 400" },
		{ 401, "HTTP 401" }, { 403, "HTTP 403" }, { 404, "HTTP 404" },
		{ 405, "HTTP 405" }, { 408, "HTTP 408" }, { 409, "HTTP 409" },
		{ 411, "HTTP 411" }, { 413, "HTTP 413" }, { 414, "HTTP 414" },
		{ 429, "HTTP 429" }, { 500, "HTTP 500" }, { 501, "HTTP 501" },
		{ 502, "HTTP 502" }, { 503, "HTTP 503" }, { 504, "HTTP 504" },
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (known[i].status == status)
			return known[i].reason;
	}
	if (status >= 500 && status < 600)
		return "HTTP 5xx";
	if (status >= 400 && status < 500)
		return "HTTP 4xx";
	if (status >= 300 && status < 400)
		return "HTTP 3xx";
	if (status >= 200 && status < 300)
		return "HTTP 2xx";
	return "HTTP status unknown";
}

static enum s3err_class
status_class(long status)
{
	if (status >= 200 && status < 300)
		return S3ERR_OK;
	switch (status) {
	case 301:	/* wrong region or endpoint */
	case 401:
	case 403:
	case 404:	/* for PUT and HEAD bucket: no such bucket */
	case 405:
	case 501:
	case 505:
		return S3ERR_CONFIG;
	case 307:
	case 408:
	case 409:
	case 429:
		return S3ERR_TRANSIENT;
	}
	if (status >= 300 && status < 400)
		return S3ERR_CONFIG;
	if (status >= 400 && status < 500)
		return S3ERR_MESSAGE;
	/* 5xx, and anything else (no status at all, 1xx) is worth a retry. */
	return S3ERR_TRANSIENT;
}

struct s3err_verdict
s3err_classify(int curl_code, long http_status, const char *s3_code)
{
	struct s3err_verdict v = { S3ERR_OK, false, false, "ok" };

	if (curl_code != CURLE_OK) {
		v.cls = S3ERR_TRANSIENT;
		v.reason = curl_easy_strerror((CURLcode)curl_code);
		for (size_t i = 0; i < sizeof(curl_rules) / sizeof(curl_rules[0]); i++) {
			if (curl_rules[i].code == curl_code)
				v.cls = curl_rules[i].cls;
		}
		return v;
	}
	if (s3_code != NULL && s3_code[0] != '\0') {
		for (size_t i = 0; i < sizeof(code_rules) / sizeof(code_rules[0]); i++) {
			if (strcmp(code_rules[i].code, s3_code) == 0) {
				v.cls = code_rules[i].cls;
				v.reload_credentials = code_rules[i].flags & F_RELOAD;
				v.restart_upload = code_rules[i].flags & F_RESTART;
				v.reason = code_rules[i].code;
				return v;
			}
		}
	}
	v.cls = status_class(http_status);
	v.reason = v.cls == S3ERR_OK ? "ok" : status_reason(http_status);
	return v;
}

/* ------------------------------------------------------------- backoff */

uint64_t
s3err_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms,
    uint64_t retry_after_ms, uint64_t rnd)
{
	uint64_t ceiling, delay;

	if (base_ms == 0)
		base_ms = 1;
	/* base << attempt, saturating at max_ms without overflowing. */
	if (attempt >= 63 || base_ms > (max_ms >> attempt))
		ceiling = max_ms;
	else
		ceiling = base_ms << attempt;
	delay = ceiling == UINT64_MAX ? rnd : rnd % (ceiling + 1);
	if (retry_after_ms > S3ERR_RETRY_AFTER_MAX_MS)
		retry_after_ms = S3ERR_RETRY_AFTER_MAX_MS;
	return delay > retry_after_ms ? delay : retry_after_ms;
}

uint64_t
s3err_backoff_default_ms(unsigned attempt, uint64_t retry_after_ms)
{
	uint64_t rnd;

	arc4random_buf(&rnd, sizeof(rnd));
	return s3err_backoff_ms(attempt, S3ERR_BACKOFF_BASE_MS,
	    S3ERR_BACKOFF_MAX_MS, retry_after_ms, rnd);
}

int
s3err_parse_retry_after(const char *value, time_t now, uint64_t *ms)
{
	const char *p = value;
	uint64_t secs = 0;
	struct tm tm;
	time_t when;
	char *end;

	if (value == NULL)
		return -EINVAL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p >= '0' && *p <= '9') {
		for (; *p >= '0' && *p <= '9'; p++) {
			/* Saturate: a day is already beyond the cap. */
			if (secs < 86400 * 365)
				secs = secs * 10 + (uint64_t)(*p - '0');
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0')
			return -EINVAL;
		*ms = secs * 1000;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(p, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL)
		return -EINVAL;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end != '\0')
		return -EINVAL;
	when = timegm(&tm);
	if (when == (time_t)-1)
		return -EINVAL;
	*ms = when > now ? (uint64_t)(when - now) * 1000 : 0;
	return 0;
}
