/* s3.c -- S3 requests over libcurl: PUT, HEAD bucket, GET, multipart */
/*
 * A client's memory is fixed when it is created: the URL, the response
 * body (S3_BODY_MAX), the multipart XML chunk and the signer's scratch are
 * arrays inside the client, and the only per-request allocation is curl's
 * header list, which is freed before the next request. So memory does not
 * grow with the number of requests, whatever the server answers: bodies
 * beyond the cap are counted and dropped.
 *
 * Every prepare starts from curl_easy_reset(), which forgets all options
 * of the previous request but keeps the live connection, so no option can
 * leak from one kind of request into the next, and keep-alive still works.
 * The URL path and query are exactly the strings the signer canonicalized
 * (CURLOPT_PATH_AS_IS stops curl from folding "/../" in keys), and the Host
 * header is set explicitly to the value that was signed.
 */
#include "s3.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "crc32c.h"
#include "log.h"
#include "sigbus.h"
#include "sigv4.h"

#define URL_MAX		16384
#define HOST_MAX	320
#define PATH_RAW_MAX	(1 + S3_BUCKET_MAX + 1 + S3_KEY_MAX + 1)
#define XML_CHUNK_MAX	1024

enum op {
	OP_NONE,
	OP_PUT,
	OP_HEAD_BUCKET,
	OP_GET,
	OP_CREATE_MP,
	OP_UPLOAD_PART,
	OP_COMPLETE_MP,
	OP_ABORT_MP,
	OP_LIST_MP,
};

/* The CompleteMultipartUpload body, generated chunk by chunk: chunk 0 is
 * the opening tag, 1..nparts are the parts, nparts + 1 the closing tag. */
struct xmlgen {
	const struct s3_part *parts;
	size_t nparts;
	size_t next;		/* next chunk to render */
	char chunk[XML_CHUNK_MAX];
	size_t chunk_len;
	size_t chunk_off;
};

/* Bodies up to this size are copied from the ring into the client and
 * handed to curl whole (CURLOPT_POSTFIELDS): curl appends them to the
 * request's headers and sends both in one write, with no read callback (a
 * quarter less CPU per 1 KiB upload). The copy is checked against the
 * producer's CRC before it is hashed and sent, so the bytes sent are the
 * bytes checked, as with the read callback. */
#define INLINE_BODY_MAX 4096

struct s3_client {
	CURL *easy;
	struct curl_slist *headers;	/* the request's header lines */
	bool headers_owned;		/* allocated (else in the arena) */
	unsigned char *hdr_next;	/* the arena's free space: see add_header() */
	unsigned char *hdr_end;
	struct curl_slist **hdr_tail;
	struct curl_slist *resolve;
	struct sigv4_signer *signer;
	bool own_signer;
	struct creds *creds;

	/* Configuration, fixed at creation. */
	char scheme[8];
	char host[HOST_MAX];		/* endpoint host[:port] */
	char region[SIGV4_REGION_MAX];
	char bucket[S3_BUCKET_MAX];
	char user_agent[128];
	bool path_style;
	bool tls_insecure;
	bool aws_endpoint;		/* no endpoint given: s3.REGION.amazonaws.com */
	long connect_timeout_ms;
	long low_speed_bytes;
	long low_speed_time_s;
	long timeout_ms;

	/* The request in flight. */
	enum op op;
	const char *given_sha256;	/* s3_prepare_put_hashed()'s, for one prepare */
	bool base_ready;		/* the options every request has are set */
	char host_header[HOST_MAX + S3_BUCKET_MAX];
	char path_raw[PATH_RAW_MAX];
	const unsigned char *body;
	size_t body_len;
	size_t body_off;
	bool body_is_xml;
	bool body_check;		/* compare what is sent with body_crc */
	bool body_inline;		/* body is inline_body, as POSTFIELDS */
	bool inline_opts;		/* the handle has POSTFIELDS options */
	uint32_t body_crc;
	uint32_t sent_crc;		/* of body[0, body_off) as sent */
	unsigned char *get_buf;
	size_t get_cap;
	size_t get_len;
	bool get_overflow;
	long header_status;		/* from the last status line seen */
	char retry_after[64];
	char *upload_id_out;
	size_t upload_id_cap;
	struct s3_part *part_out;
	void *multi_user;		/* s3_multi_start()'s */
	struct s3_multi *multi;		/* the last it was started in */
	uint64_t multi_gen;		/* that multi's gen */
	unsigned shard;			/* its shard there */
	int xq;				/* enum xfer_q: where it is in the multi */
	CURLcode xresult;		/* the transport thread's result */
	struct s3_client *xnext;	/* in a transport loop's starts or done */
	struct s3_client *xcancel;	/* in a transport loop's cancels */

	/* Last, the large arrays, of which a request touches the start. A
	 * small PUT writes three pages of the client: the first, with the
	 * fields above, the keys and the token's first byte (the token is the
	 * last field of secret); the second, with resp's start and its body's
	 * first byte (the body is the last field of resp); and inline_body's,
	 * which starts a page of its own. */
	struct creds_secret secret;
	struct s3_response resp;
	_Alignas(4096) unsigned char inline_body[INLINE_BODY_MAX];
	struct xmlgen xml;
	char ca_file[1024];		/* written over https only */
};

_Static_assert(CURL_ERROR_SIZE <= sizeof(((struct s3_response *)0)->curl_error),
    "curl_error holds CURL_ERROR_SIZE bytes");

static void headers_free(struct s3_client *c);

/* ------------------------------------------------------------ helpers */

void
s3_crc32c_base64(uint32_t crc, char out[9])
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char b[4] = { (unsigned char)(crc >> 24),
	    (unsigned char)(crc >> 16), (unsigned char)(crc >> 8),
	    (unsigned char)crc };

	out[0] = b64[b[0] >> 2];
	out[1] = b64[((b[0] & 3) << 4) | (b[1] >> 4)];
	out[2] = b64[((b[1] & 15) << 2) | (b[2] >> 6)];
	out[3] = b64[b[2] & 63];
	out[4] = b64[b[3] >> 2];
	out[5] = b64[(b[3] & 3) << 4];
	out[6] = '=';
	out[7] = '=';
	out[8] = '\0';
}

int
s3_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void
s3_global_cleanup(void)
{
	curl_global_cleanup();
}

static int
copy_str(char *dst, size_t cap, const char *src)
{
	int n = snprintf(dst, cap, "%s", src);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static bool
valid_bucket(const char *b)
{
	size_t n = strlen(b);

	if (n == 0 || n >= S3_BUCKET_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = b[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		    ch == '_'))
			return false;
	}
	return true;
}

/* Splits the endpoint URL into scheme and host[:port] with curl's own URL
 * parser, so that what we sign is what curl will connect to. */
static int
parse_endpoint(struct s3_client *c, const char *endpoint)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL,
	    *query = NULL;
	CURLU *u;
	int rc = -EINVAL;

	u = curl_url();
	if (u == NULL)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		log_msg(LOG_LEVEL_ERROR, "endpoint %s is not a URL", endpoint);
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		log_msg(LOG_LEVEL_ERROR, "endpoint %s: scheme must be http or "
		    "https", endpoint);
		goto out;
	}
	(void)curl_url_get(u, CURLUPART_PORT, &port, 0);
	(void)curl_url_get(u, CURLUPART_PATH, &path, 0);
	(void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if ((path != NULL && strcmp(path, "/") != 0 && path[0] != '\0') ||
	    query != NULL) {
		log_msg(LOG_LEVEL_ERROR, "endpoint %s must not have a path or "
		    "query", endpoint);
		goto out;
	}
	snprintf(c->scheme, sizeof(c->scheme), "%s", scheme);
	if (snprintf(c->host, sizeof(c->host), "%s%s%s", host, port ? ":" : "",
	    port ? port : "") >= (int)sizeof(c->host)) {
		log_msg(LOG_LEVEL_ERROR, "endpoint host is too long");
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

struct s3_client *
s3_client_new(const struct s3_config *cfg, struct creds *creds)
{
	char def_endpoint[128];
	const char *endpoint;
	struct s3_client *c;
	int rc = -EINVAL;

	if (cfg == NULL || creds == NULL || cfg->bucket == NULL) {
		errno = EINVAL;
		return NULL;
	}
	/* Mapped, not allocated: zero pages that stay untouched until a
	 * request writes them, so a client costs the pages it uses (about
	 * three), not its size (40 KiB), and a thousand of them fit in a few
	 * MiB. calloc() would clear recycled heap memory, touching it all. */
	c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	c->creds = creds;
	if (copy_str(c->region, sizeof(c->region),
	    cfg->region && cfg->region[0] ? cfg->region : "us-east-1") < 0) {
		log_msg(LOG_LEVEL_ERROR, "region is too long");
		goto out_free;
	}
	if (!valid_bucket(cfg->bucket)) {
		log_msg(LOG_LEVEL_ERROR, "bucket name \"%s\" is not valid "
		    "(1 to 63 of A-Z a-z 0-9 . - _)", cfg->bucket);
		goto out_free;
	}
	snprintf(c->bucket, sizeof(c->bucket), "%s", cfg->bucket);
	endpoint = cfg->endpoint;
	c->aws_endpoint = endpoint == NULL || endpoint[0] == '\0';
	if (c->aws_endpoint) {
		snprintf(def_endpoint, sizeof(def_endpoint),
		    "https://s3.%s.amazonaws.com", c->region);
		endpoint = def_endpoint;
	}
	rc = parse_endpoint(c, endpoint);
	if (rc < 0)
		goto out_free;
	if (strcmp(c->scheme, "https") == 0 && cfg->ca_file != NULL &&
	    copy_str(c->ca_file, sizeof(c->ca_file), cfg->ca_file) < 0) {
		rc = -EINVAL;
		goto out_free;
	}
	snprintf(c->user_agent, sizeof(c->user_agent), "%s",
	    cfg->user_agent ? cfg->user_agent : "s3ring");
	c->path_style = cfg->path_style;
	c->tls_insecure = cfg->tls_insecure;
	c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ?
	    cfg->connect_timeout_ms : 5000;
	c->low_speed_bytes = cfg->low_speed_bytes > 0 ? cfg->low_speed_bytes : 1024;
	c->low_speed_time_s = cfg->low_speed_time_s > 0 ? cfg->low_speed_time_s : 30;
	c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 0;
	if (c->tls_insecure && strcmp(c->scheme, "https") == 0)
		log_msg(LOG_LEVEL_WARN, "TLS certificate verification is OFF for "
		    "%s (insecure option): anyone on the path can read and "
		    "change uploads", c->host);

	c->own_signer = cfg->signer == NULL;
	c->signer = c->own_signer ? sigv4_signer_new() : cfg->signer;
	if (c->signer == NULL) {
		rc = -ENOMEM;
		goto out_free;
	}
	c->easy = curl_easy_init();
	if (c->easy == NULL) {
		rc = -EIO;
		goto out_signer;
	}
	if (cfg->resolve != NULL && cfg->resolve[0] != '\0') {
		c->resolve = curl_slist_append(NULL, cfg->resolve);
		if (c->resolve == NULL) {
			rc = -ENOMEM;
			goto out_easy;
		}
	}
	rc = creds_get(creds, &c->secret);
	if (rc < 0)
		goto out_easy;
	return c;

out_easy:
	curl_slist_free_all(c->resolve);
	curl_easy_cleanup(c->easy);
out_signer:
	if (c->own_signer)
		sigv4_signer_free(c->signer);
out_free:
	explicit_bzero(&c->secret, sizeof(c->secret));
	munmap(c, sizeof(*c));
	errno = -rc;
	return NULL;
}

static bool
valid_region(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n >= SIGV4_REGION_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') ||
		    r[i] == '-'))
			return false;
	return true;
}

int
s3_set_region(struct s3_client *c, const char *region)
{
	char endpoint[128];

	if (region == NULL || !valid_region(region))
		return -EINVAL;
	snprintf(c->region, sizeof(c->region), "%s", region);
	if (!c->aws_endpoint)
		return 0;
	snprintf(endpoint, sizeof(endpoint), "https://s3.%s.amazonaws.com", region);
	return parse_endpoint(c, endpoint);
}

const char *
s3_region(const struct s3_client *c)
{
	return c->region;
}

void
s3_client_free(struct s3_client *c)
{
	if (c == NULL)
		return;
	headers_free(c);
	curl_slist_free_all(c->resolve);
	curl_easy_cleanup(c->easy);
	if (c->own_signer)
		sigv4_signer_free(c->signer);
	explicit_bzero(&c->secret, sizeof(c->secret));
	munmap(c, sizeof(*c));
}

const struct s3_response *
s3_response(const struct s3_client *c)
{
	return &c->resp;
}

/* ------------------------------------------------------------ callbacks */

static void
trim_line(char **s, size_t *n)
{
	while (*n > 0 && ((*s)[*n - 1] == '\r' || (*s)[*n - 1] == '\n' ||
	    (*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
}

static void
header_value(char *dst, size_t cap, const char *line, size_t n, size_t name_len)
{
	char *v = (char *)line + name_len + 1;
	size_t vn = n - name_len - 1;

	trim_line(&v, &vn);
	if (vn >= cap)
		vn = cap - 1;
	memcpy(dst, v, vn);
	dst[vn] = '\0';
}

static size_t
on_header(char *line, size_t size, size_t nitems, void *arg)
{
	struct s3_client *c = arg;
	size_t n = size * nitems;

	if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		/* A new response (e.g. after "100 Continue"): forget the
		 * headers of the previous one. */
		const char *sp = memchr(line, ' ', n);

		c->header_status = sp ? strtol(sp + 1, NULL, 10) : 0;
		c->resp.etag[0] = '\0';
		c->resp.request_id[0] = '\0';
		c->resp.bucket_region[0] = '\0';
		c->retry_after[0] = '\0';
		return n;
	}
	if (n > 5 && strncasecmp(line, "ETag:", 5) == 0)
		header_value(c->resp.etag, sizeof(c->resp.etag), line, n, 4);
	else if (n > 12 && strncasecmp(line, "Retry-After:", 12) == 0)
		header_value(c->retry_after, sizeof(c->retry_after), line, n, 11);
	else if (n > 17 && strncasecmp(line, "x-amz-request-id:", 17) == 0)
		header_value(c->resp.request_id, sizeof(c->resp.request_id),
		    line, n, 16);
	else if (n > 20 && strncasecmp(line, "x-amz-bucket-region:", 20) == 0)
		header_value(c->resp.bucket_region, sizeof(c->resp.bucket_region),
		    line, n, 19);
	return n;
}

/* Bodies are never refused (that would abort the transfer and lose the
 * connection); what does not fit is counted and dropped. */
static size_t
on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct s3_client *c = arg;
	size_t n = size * nmemb, room, take;

	if (c->op == OP_GET && c->header_status >= 200 && c->header_status < 300) {
		room = c->get_cap - c->get_len;
		take = n < room ? n : room;
		if (take > 0)
			memcpy(c->get_buf + c->get_len, data, take);
		c->get_len += take;
		if (take < n)
			c->get_overflow = true;
		return n;
	}
	room = S3_BODY_MAX - c->resp.body_len;
	take = n < room ? n : room;
	memcpy(c->resp.body + c->resp.body_len, data, take);
	c->resp.body_len += take;
	c->resp.body[c->resp.body_len] = '\0';
	if (take < n)
		c->resp.body_truncated = true;
	return n;
}

static size_t
xml_escape(char *dst, size_t cap, const char *s)
{
	size_t o = 0;

	for (; *s; s++) {
		const char *rep = NULL;
		char one[2] = { *s, '\0' };

		if (*s == '&')
			rep = "&amp;";
		else if (*s == '<')
			rep = "&lt;";
		else if (*s == '>')
			rep = "&gt;";
		else
			rep = one;
		for (; *rep && o + 1 < cap; rep++)
			dst[o++] = *rep;
	}
	dst[o] = '\0';
	return o;
}

/* Renders chunk `i` of the XML; returns false past the end. */
static bool
xml_render(struct xmlgen *x, size_t i)
{
	char etag[S3_ETAG_MAX * 5], crc[9];
	int n;

	if (i == 0) {
		n = snprintf(x->chunk, sizeof(x->chunk),
		    "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/"
		    "doc/2006-03-01/\">");
	} else if (i <= x->nparts) {
		const struct s3_part *p = &x->parts[i - 1];

		xml_escape(etag, sizeof(etag), p->etag);
		s3_crc32c_base64(p->crc32c, crc);
		n = snprintf(x->chunk, sizeof(x->chunk),
		    "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>%s%s%s"
		    "</Part>", p->number, etag,
		    p->has_crc32c ? "<ChecksumCRC32C>" : "",
		    p->has_crc32c ? crc : "",
		    p->has_crc32c ? "</ChecksumCRC32C>" : "");
	} else if (i == x->nparts + 1) {
		n = snprintf(x->chunk, sizeof(x->chunk),
		    "</CompleteMultipartUpload>");
	} else {
		return false;
	}
	/* The ETag is capped at S3_ETAG_MAX, so a chunk always fits. */
	x->chunk_len = n > 0 && (size_t)n < sizeof(x->chunk) ? (size_t)n : 0;
	x->chunk_off = 0;
	return true;
}

static void
xml_rewind(struct xmlgen *x)
{
	x->next = 0;
	x->chunk_len = 0;
	x->chunk_off = 0;
}

static size_t
xml_read(struct xmlgen *x, char *dst, size_t cap)
{
	size_t o = 0;

	while (o < cap) {
		size_t take;

		if (x->chunk_off == x->chunk_len) {
			if (!xml_render(x, x->next))
				break;
			x->next++;
		}
		take = x->chunk_len - x->chunk_off;
		if (take > cap - o)
			take = cap - o;
		memcpy(dst + o, x->chunk + x->chunk_off, take);
		x->chunk_off += take;
		o += take;
	}
	return o;
}

static size_t
on_read(char *dst, size_t size, size_t nitems, void *arg)
{
	struct s3_client *c = arg;
	size_t cap = size * nitems, take;

	if (c->body_is_xml)
		return xml_read(&c->xml, dst, cap);
	take = c->body_len - c->body_off;
	if (take > cap)
		take = cap;
	if (take > 0)
		memcpy(dst, c->body + c->body_off, take);
	c->body_off += take;
	if (c->body_check) {
		/* The CRC of the bytes as curl sends them, not as they were
		 * when checked: a body that changed meanwhile never gets its
		 * last byte sent, so no server stores it. */
		c->sent_crc = crc32c(c->sent_crc, dst, take);
		if (c->body_off == c->body_len && c->sent_crc != c->body_crc) {
			c->resp.body_changed = true;
			return CURL_READFUNC_ABORT;
		}
	}
	return take;
}

/* curl rewinds the body when it must resend on a new connection (a
 * keep-alive connection that the server had closed). */
static int
on_seek(void *arg, curl_off_t offset, int origin)
{
	struct s3_client *c = arg;
	char sink[512];

	if (origin != SEEK_SET || offset < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	if (!c->body_is_xml) {
		if ((size_t)offset > c->body_len)
			return CURL_SEEKFUNC_FAIL;
		c->body_off = (size_t)offset;
		c->sent_crc = crc32c(0, c->body, c->body_off);
		return CURL_SEEKFUNC_OK;
	}
	xml_rewind(&c->xml);
	while (offset > 0) {
		size_t want = (size_t)offset < sizeof(sink) ? (size_t)offset :
		    sizeof(sink);
		size_t got = xml_read(&c->xml, sink, want);

		if (got == 0)
			return CURL_SEEKFUNC_FAIL;
		offset -= (curl_off_t)got;
	}
	return CURL_SEEKFUNC_OK;
}

/* ------------------------------------------------------------ requests */

static int
setopt_failed(struct s3_client *c, CURLcode rc)
{
	snprintf(c->resp.curl_error, sizeof(c->resp.curl_error), "%s",
	    curl_easy_strerror(rc));
	return rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

/* Resets the handle and the response, and applies the options every
 * request has. */
static int
begin(struct s3_client *c, enum op op)
{
	CURL *e = c->easy;
	CURLcode rc = CURLE_OK;

	/* A PUT after a PUT keeps the handle's options: it sets every option
	 * a PUT changes (URL, headers, upload size and buffer) itself, and the
	 * reset and the two dozen options below cost as much as the rest of
	 * the request. Any other pair starts from a reset, so no option leaks
	 * from one kind of request into another. */
	bool keep = c->base_ready && c->op == OP_PUT && op == OP_PUT;

	headers_free(c);
	if (!keep) {
		curl_easy_reset(e);
		c->base_ready = false;
		c->inline_opts = false;
	}
	/* Not the body buffer: the pages a short answer never touched stay
	 * untouched, which is most of the client with 1,000 of them. */
	memset(&c->resp, 0, offsetof(struct s3_response, body));
	if (c->resp.body[0] != '\0')	/* a read leaves a zero page unmapped */
		c->resp.body[0] = '\0';
	c->op = op;
	c->body = NULL;
	c->body_len = c->body_off = 0;
	c->body_is_xml = false;
	c->body_check = false;
	c->body_inline = false;
	c->sent_crc = 0;
	c->get_buf = NULL;
	c->get_cap = c->get_len = 0;
	c->get_overflow = false;
	c->header_status = 0;
	c->retry_after[0] = '\0';
	c->upload_id_out = NULL;
	c->part_out = NULL;

	/* The credentials file is checked at most once a second per thread
	 * (one stat), not per client: the uploader's loop has a client per
	 * upload in flight. A failure is logged by creds and the old keys
	 * stay. */
	{
		static __thread const struct creds *checked_creds;
		static __thread time_t checked_at;
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		if (ts.tv_sec != checked_at || checked_creds != c->creds) {
			checked_at = ts.tv_sec;
			checked_creds = c->creds;
			if (creds_reload(c->creds, false) < 0)
				log_msg(LOG_LEVEL_DEBUG, "using the previous keys");
		}
	}
	/* Keys may have changed (reload after a file change or an
	 * ExpiredToken); take the new copy before signing. */
	if (creds_generation(c->creds) != c->secret.generation &&
	    creds_get(c->creds, &c->secret) < 0)
		return -EIO;

	if (keep)
		return 0;
#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_ERRORBUFFER, c->resp.curl_error);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_PATH_AS_IS, 1L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	SET(CURLOPT_LOW_SPEED_LIMIT, c->low_speed_bytes);
	SET(CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
	SET(CURLOPT_TIMEOUT_MS, c->timeout_ms);
	SET(CURLOPT_SSL_VERIFYPEER, c->tls_insecure ? 0L : 1L);
	SET(CURLOPT_SSL_VERIFYHOST, c->tls_insecure ? 0L : 2L);
	if (c->ca_file[0] != '\0')
		SET(CURLOPT_CAINFO, c->ca_file);
	SET(CURLOPT_USERAGENT, c->user_agent);
	if (c->resolve != NULL)
		SET(CURLOPT_RESOLVE, c->resolve);
	/* Answers to PUTs are headers and at most an error document, read
	 * in pieces of curl's smallest receive buffer (1 KiB): the default
	 * 16 KiB would be most of a client's memory (GETs are for tests and
	 * tools). */
	if (op != OP_GET)
		SET(CURLOPT_BUFFERSIZE, 1024L);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, c);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_READFUNCTION, on_read);
	SET(CURLOPT_READDATA, c);
	SET(CURLOPT_SEEKFUNCTION, on_seek);
	SET(CURLOPT_SEEKDATA, c);
#undef SET
	if (rc != CURLE_OK)
		return setopt_failed(c, rc);
	c->base_ready = true;
	return 0;
}

/*
 * A small PUT's header lines and their list nodes are laid out in the part
 * of inline_body that its copied body does not use: no allocation per
 * request, and the page is the one the body's copy writes anyway. curl
 * reads the list during the transfer and never frees it. Other requests
 * (and lines that do not fit: a long session token, many object options)
 * use curl_slist_append()'s list, so that a client that only sends large
 * bodies never writes that page.
 */
static void
headers_free(struct s3_client *c)
{
	if (c->headers_owned)
		curl_slist_free_all(c->headers);
	c->headers = NULL;
	c->headers_owned = false;
	c->hdr_tail = &c->headers;
	c->hdr_next = c->hdr_end = NULL;
}

static void
headers_start(struct s3_client *c)
{
	size_t used = (c->body_len + 7) & ~(size_t)7;

	headers_free(c);
	if (!c->body_inline || used >= INLINE_BODY_MAX)
		return;
	c->hdr_next = c->inline_body + used;
	c->hdr_end = c->inline_body + INLINE_BODY_MAX;
}

/* The arena's list, copied into an allocated one. */
static int
headers_to_heap(struct s3_client *c)
{
	struct curl_slist *l = NULL;

	for (const struct curl_slist *n = c->headers; n != NULL; n = n->next) {
		struct curl_slist *t = curl_slist_append(l, n->data);

		if (t == NULL) {
			curl_slist_free_all(l);
			return -ENOMEM;
		}
		l = t;
	}
	c->headers = l;
	c->headers_owned = true;
	c->hdr_next = c->hdr_end = NULL;
	return 0;
}

/* Appends "name: value" ("name:" for an empty value, which tells curl to
 * drop its own header of that name). On the allocated path the line is
 * wiped after curl copied it, since it may hold the session token (in the
 * arena it stays in the client, which holds the token anyway). */
static int
add_header(struct s3_client *c, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value), n = nl + vl + 3;
	size_t need = sizeof(struct curl_slist) + n;
	struct curl_slist *l;
	char *line;

	if (!c->headers_owned && c->hdr_next != NULL &&
	    (size_t)(c->hdr_end - c->hdr_next) >= need) {
		struct curl_slist *node = (struct curl_slist *)(void *)c->hdr_next;

		line = (char *)(node + 1);
		memcpy(line, name, nl);
		line[nl] = ':';
		if (vl > 0) {
			line[nl + 1] = ' ';
			memcpy(line + nl + 2, value, vl);
			line[nl + 2 + vl] = '\0';
		}
		else
			line[nl + 1] = '\0';
		node->data = line;
		node->next = NULL;
		*c->hdr_tail = node;
		c->hdr_tail = &node->next;
		/* The next node at a multiple of 8 from the arena's start. */
		/* The space left is a multiple of 8, so the rounded step fits. */
		c->hdr_next += (need + 7) & ~(size_t)7;
		return 0;
	}
	if (!c->headers_owned && headers_to_heap(c) < 0)
		return -ENOMEM;
	line = malloc(n);
	if (line == NULL)
		return -ENOMEM;
	snprintf(line, n, "%s%s%s", name, value[0] ? ": " : ":", value);
	l = curl_slist_append(c->headers, line);
	explicit_bzero(line, n);
	free(line);
	if (l == NULL)
		return -ENOMEM;
	c->headers = l;
	return 0;
}

static int
check_key(const char *key)
{
	size_t n;

	if (key == NULL || key[0] == '\0')
		return -EINVAL;
	n = strnlen(key, S3_KEY_MAX + 1);
	return n > S3_KEY_MAX ? -ENAMETOOLONG : 0;
}

/*
 * Signs and installs method, URL and headers. key may be NULL (bucket
 * requests). extra are headers to sign and send besides the ones the
 * signer adds. The body, if any, has been set up by the caller.
 */
static __thread char url_scratch[URL_MAX];

static bool
has_header(const struct sigv4_kv *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(h[i].name, name) == 0)
			return true;
	return false;
}

static int
sign_and_set(struct s3_client *c, const char *method, const char *key,
    const struct sigv4_kv *query, size_t nquery, const struct sigv4_kv *extra,
    size_t nextra, const char *payload_sha256)
{
	struct sigv4_kv headers[SIGV4_MAX_HEADERS];
	struct sigv4_credentials sc = {
		c->secret.access_key_id, c->secret.secret_access_key,
		c->secret.session_token,
	};
	struct sigv4_request req = { 0 };
	struct sigv4_result res;
	size_t nh = 0;
	int n, rc;

	if (c->path_style) {
		n = snprintf(c->host_header, sizeof(c->host_header), "%s", c->host);
		n = snprintf(c->path_raw, sizeof(c->path_raw), "/%s%s%s",
		    c->bucket, key ? "/" : "", key ? key : "");
	} else {
		n = snprintf(c->host_header, sizeof(c->host_header), "%s.%s",
		    c->bucket, c->host);
		n = snprintf(c->path_raw, sizeof(c->path_raw), "/%s",
		    key ? key : "");
	}
	if (n < 0 || (size_t)n >= sizeof(c->path_raw))
		return -ENAMETOOLONG;

	if (nextra >= SIGV4_MAX_HEADERS)
		return -E2BIG;
	headers[nh++] = (struct sigv4_kv){ "host", c->host_header };
	for (size_t i = 0; i < nextra; i++)
		headers[nh++] = extra[i];
	req.mode = SIGV4_MODE_S3;
	req.method = method;
	req.path = c->path_raw;
	req.query = query;
	req.nquery = nquery;
	req.headers = headers;
	req.nheaders = nh;
	req.payload_sha256 = payload_sha256;
	req.region = c->region;
	req.service = "s3";
	rc = sigv4_sign(c->signer, &sc, &req, time(NULL), &res);
	if (rc < 0)
		return rc;

	/* curl keeps its own copy of the URL: one buffer serves every client
	 * of the thread. */
	n = snprintf(url_scratch, sizeof(url_scratch), "%s://%s%s%s%s", c->scheme,
	    c->host_header, res.canonical_path, nquery ? "?" : "",
	    nquery ? res.canonical_query : "");
	if (n < 0 || (size_t)n >= sizeof(url_scratch))
		return -ENAMETOOLONG;
	if (curl_easy_setopt(c->easy, CURLOPT_URL, url_scratch) != CURLE_OK)
		return -ENOMEM;

	headers_start(c);
	rc = add_header(c, "Host", c->host_header);
	for (size_t i = 0; rc == 0 && i < nextra; i++)
		rc = add_header(c, extra[i].name, extra[i].value);
	if (rc == 0)
		rc = add_header(c, "x-amz-date", res.amz_date);
	if (rc == 0)
		rc = add_header(c, "x-amz-content-sha256", payload_sha256);
	if (rc == 0 && sc.session_token[0] != '\0')
		rc = add_header(c, "x-amz-security-token", sc.session_token);
	if (rc == 0)
		rc = add_header(c, "Authorization", res.authorization);
	/* No "Expect: 100-continue" round trip (S3 answers errors after the
	 * body anyway), and no default form Content-Type on POST or on a PUT
	 * of POSTFIELDS (where the caller gave none). */
	if (rc == 0)
		rc = add_header(c, "Expect", "");
	if (rc == 0 && (strcmp(method, "POST") == 0 ||
	    (c->body_inline && !has_header(extra, nextra, "content-type"))))
		rc = add_header(c, "Content-Type", "");
	if (rc < 0)
		return rc;
	if (curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers) != CURLE_OK)
		return -ENOMEM;
	return 0;
}

static int
set_upload_body(struct s3_client *c, bool post, size_t len)
{
	CURLcode rc;

	if (post) {
		rc = curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)len);
	} else {
		rc = CURLE_OK;
		if (c->inline_opts) {
			/* POSTFIELDS makes the method POST; UPLOAD makes it PUT. */
			rc = curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, NULL);
			if (rc == CURLE_OK)
				rc = curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, NULL);
			c->inline_opts = false;
		}
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(c->easy, CURLOPT_UPLOAD, 1L);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(c->easy, CURLOPT_INFILESIZE_LARGE,
			    (curl_off_t)len);
	}
	return rc == CURLE_OK ? 0 : setopt_failed(c, rc);
}

/* A PUT of inline_body, sent with the headers (see INLINE_BODY_MAX). */
static int
set_inline_body(struct s3_client *c, size_t len)
{
	CURLcode rc;

	c->inline_opts = true;
	rc = curl_easy_setopt(c->easy, CURLOPT_UPLOAD, 0L);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->inline_body);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, "PUT");
	return rc == CURLE_OK ? 0 : setopt_failed(c, rc);
}

static int
put_like(struct s3_client *c, enum op op, const char *key,
    const struct sigv4_kv *query, size_t nquery, const void *body, size_t len,
    bool with_crc, uint32_t body_crc, const struct sigv4_kv *hdrs, size_t nhdrs)
{
	char hash[SIGV4_SHA256_HEX_LEN + 1], crc[9];
	struct sigv4_kv extra[1 + S3_PUT_HEADERS_MAX];
	size_t nextra = 0;
	int rc;

	if (nhdrs > S3_PUT_HEADERS_MAX)
		return -E2BIG;
	rc = check_key(key);
	if (rc < 0)
		return rc;
	if (body == NULL && len > 0)
		return -EINVAL;
	rc = begin(c, op);
	if (rc < 0)
		return rc;
	/* A small body is copied and checked first. A copy that does not match
	 * (the producer wrote over the record after it was checked) goes the
	 * read callback's way, which sends the bytes only if they match when
	 * curl takes them. */
	if (with_crc && len > 0 && len <= INLINE_BODY_MAX) {
		memcpy(c->inline_body, body, len);
		if (crc32c(0, c->inline_body, len) == body_crc) {
			body = c->inline_body;
			c->body_inline = true;
		}
	}
	/* Over https, a body whose CRC-32C S3 verifies needs no signed
	 * SHA-256 (one pass over it saved): TLS protects it in transit, the
	 * checksum end to end. Over http the payload stays signed. */
	if (with_crc && strcmp(c->scheme, "https") == 0)
		snprintf(hash, sizeof(hash), "%s", SIGV4_UNSIGNED_PAYLOAD);
	else if (c->given_sha256 != NULL)
		snprintf(hash, sizeof(hash), "%s", c->given_sha256);
	else if ((rc = sigv4_sha256_hex(body ? body : "", len, hash)) < 0)
		return rc;
	if (with_crc) {
		s3_crc32c_base64(body_crc, crc);
		extra[nextra++] = (struct sigv4_kv){ "x-amz-checksum-crc32c", crc };
		c->body_check = !c->body_inline;
		c->body_crc = body_crc;
	}
	for (size_t i = 0; i < nhdrs; i++)
		extra[nextra++] = hdrs[i];
	c->body = body;
	c->body_len = len;
	/* curl's send buffer: its smallest for small bodies (a thousand
	 * clients at 64 KiB each would be most of the uploader's memory), the
	 * default 64 KiB for the rest. */
	if (curl_easy_setopt(c->easy, CURLOPT_UPLOAD_BUFFERSIZE,
	    len < 65536 ? 16384L : 65536L) != CURLE_OK)
		return -ENOMEM;
	rc = c->body_inline ? set_inline_body(c, len) : set_upload_body(c, false, len);
	if (rc == 0)
		rc = sign_and_set(c, "PUT", key, query, nquery, extra, nextra, hash);
	return rc;
}

int
s3_prepare_put(struct s3_client *c, const char *key, const void *body,
    size_t len, uint32_t crc32c)
{
	return put_like(c, OP_PUT, key, NULL, 0, body, len, true, crc32c, NULL, 0);
}

int
s3_prepare_put_headers(struct s3_client *c, const char *key, const void *body,
    size_t len, uint32_t crc32c, const struct sigv4_kv *hdrs, size_t nhdrs)
{
	return put_like(c, OP_PUT, key, NULL, 0, body, len, true, crc32c, hdrs, nhdrs);
}

int
s3_prepare_put_hashed(struct s3_client *c, const char *key, const void *body,
    size_t len, uint32_t crc32c, const struct sigv4_kv *hdrs, size_t nhdrs,
    const char *sha256_hex)
{
	int rc;

	if (sha256_hex == NULL || strlen(sha256_hex) != SIGV4_SHA256_HEX_LEN)
		return -EINVAL;
	c->given_sha256 = sha256_hex;
	rc = put_like(c, OP_PUT, key, NULL, 0, body, len, true, crc32c, hdrs, nhdrs);
	c->given_sha256 = NULL;
	return rc;
}

bool
s3_signs_payload(const struct s3_client *c)
{
	return strcmp(c->scheme, "https") != 0;
}

int
s3_put_object(struct s3_client *c, const char *key, const void *body,
    size_t len, uint32_t crc32c)
{
	int rc = s3_prepare_put(c, key, body, len, crc32c);

	return rc < 0 ? rc : s3_perform(c);
}

void
s3_check_body(struct s3_client *c, uint32_t crc32c)
{
	c->body_check = c->body != NULL || c->body_len == 0;
	c->body_crc = crc32c;
}

int
s3_prepare_head_bucket(struct s3_client *c)
{
	int rc = begin(c, OP_HEAD_BUCKET);

	if (rc == 0 && curl_easy_setopt(c->easy, CURLOPT_NOBODY, 1L) != CURLE_OK)
		rc = -EINVAL;
	if (rc == 0)
		rc = sign_and_set(c, "HEAD", NULL, NULL, 0, NULL, 0,
		    SIGV4_EMPTY_SHA256);
	return rc;
}

int
s3_head_bucket(struct s3_client *c)
{
	int rc = s3_prepare_head_bucket(c);

	return rc < 0 ? rc : s3_perform(c);
}

int
s3_get_object(struct s3_client *c, const char *key, void *buf, size_t cap,
    size_t *len)
{
	int rc = check_key(key);

	if (rc == 0 && buf == NULL && cap > 0)
		rc = -EINVAL;
	if (rc == 0)
		rc = begin(c, OP_GET);
	if (rc < 0)
		return rc;
	c->get_buf = buf;
	c->get_cap = cap;
	if (curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L) != CURLE_OK)
		return -EINVAL;
	rc = sign_and_set(c, "GET", key, NULL, 0, NULL, 0, SIGV4_EMPTY_SHA256);
	if (rc == 0)
		rc = s3_perform(c);
	if (len != NULL)
		*len = c->get_len;
	if (rc == 0 && c->get_overflow)
		return -EFBIG;
	return rc;
}

int
s3_prepare_create_multipart(struct s3_client *c, const char *key,
    bool with_crc32c, const struct sigv4_kv *hdrs, size_t nhdrs,
    char *upload_id, size_t cap)
{
	struct sigv4_kv q[] = { { "uploads", "" } };
	struct sigv4_kv extra[1 + S3_PUT_HEADERS_MAX];
	size_t nextra = 0;
	int rc = check_key(key);

	if (rc == 0 && (upload_id == NULL || cap == 0 ||
	    (hdrs == NULL && nhdrs > 0)))
		rc = -EINVAL;
	if (rc == 0 && nhdrs > S3_PUT_HEADERS_MAX)
		rc = -E2BIG;
	if (rc == 0)
		rc = begin(c, OP_CREATE_MP);
	if (rc < 0)
		return rc;
	if (with_crc32c)
		extra[nextra++] = (struct sigv4_kv){ "x-amz-checksum-algorithm",
		    "CRC32C" };
	for (size_t i = 0; i < nhdrs; i++)
		extra[nextra++] = hdrs[i];
	upload_id[0] = '\0';
	c->upload_id_out = upload_id;
	c->upload_id_cap = cap;
	rc = set_upload_body(c, true, 0);
	if (rc == 0)
		rc = sign_and_set(c, "POST", key, q, 1, extra, nextra,
		    SIGV4_EMPTY_SHA256);
	return rc;
}

int
s3_create_multipart(struct s3_client *c, const char *key, bool with_crc32c,
    char *upload_id, size_t cap)
{
	int rc = s3_prepare_create_multipart(c, key, with_crc32c, NULL, 0,
	    upload_id, cap);

	return rc < 0 ? rc : s3_perform(c);
}

int
s3_prepare_upload_part(struct s3_client *c, const char *key,
    const char *upload_id, int part_number, const void *body, size_t len,
    bool with_crc32c, uint32_t crc32c, struct s3_part *part)
{
	char num[16];
	struct sigv4_kv q[] = { { "partNumber", num }, { "uploadId", upload_id } };
	int rc;

	if (upload_id == NULL || upload_id[0] == '\0' || part == NULL ||
	    part_number < 1 || part_number > S3_MAX_PARTS)
		return -EINVAL;
	snprintf(num, sizeof(num), "%d", part_number);
	rc = put_like(c, OP_UPLOAD_PART, key, q, 2, body, len, with_crc32c,
	    crc32c, NULL, 0);
	if (rc < 0)
		return rc;
	memset(part, 0, sizeof(*part));
	part->number = part_number;
	part->has_crc32c = with_crc32c;
	part->crc32c = crc32c;
	/* After put_like(): begin() forgets the previous request's part. */
	c->part_out = part;
	return 0;
}

int
s3_upload_part(struct s3_client *c, const char *key, const char *upload_id,
    int part_number, const void *body, size_t len, bool with_crc32c,
    uint32_t crc32c, struct s3_part *part)
{
	int rc = s3_prepare_upload_part(c, key, upload_id, part_number, body,
	    len, with_crc32c, crc32c, part);

	return rc < 0 ? rc : s3_perform(c);
}

int
s3_prepare_complete_multipart(struct s3_client *c, const char *key,
    const char *upload_id, const struct s3_part *parts, size_t nparts)
{
	struct sigv4_kv q[] = { { "uploadId", upload_id } };
	unsigned char md[EVP_MAX_MD_SIZE];
	char hash[SIGV4_SHA256_HEX_LEN + 1], chunk[XML_CHUNK_MAX];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	size_t total = 0, got;
	int rc, ok;

	if (upload_id == NULL || upload_id[0] == '\0' || parts == NULL ||
	    nparts == 0 || nparts > S3_MAX_PARTS)
		return -EINVAL;
	for (size_t i = 0; i < nparts; i++) {
		if (parts[i].number < 1 || parts[i].number > S3_MAX_PARTS ||
		    (i > 0 && parts[i].number <= parts[i - 1].number) ||
		    parts[i].etag[0] == '\0' ||
		    strnlen(parts[i].etag, S3_ETAG_MAX) == S3_ETAG_MAX)
			return -EINVAL;
	}
	rc = check_key(key);
	if (rc == 0)
		rc = begin(c, OP_COMPLETE_MP);
	if (rc < 0)
		return rc;

	/* One pass to hash and measure the body, a second (curl's reads)
	 * to send it: constant memory whatever the part count. */
	c->xml.parts = parts;
	c->xml.nparts = nparts;
	xml_rewind(&c->xml);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while (ok && (got = xml_read(&c->xml, chunk, sizeof(chunk))) > 0) {
		ok = EVP_DigestUpdate(ctx, chunk, got);
		total += got;
	}
	if (ok)
		ok = EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok || mdlen != 32)
		return -EIO;
	for (unsigned i = 0; i < 32; i++)
		snprintf(hash + 2 * i, 3, "%02x", md[i]);
	xml_rewind(&c->xml);
	c->body_is_xml = true;

	rc = set_upload_body(c, true, total);
	if (rc == 0)
		rc = sign_and_set(c, "POST", key, q, 1, NULL, 0, hash);
	return rc;
}

int
s3_complete_multipart(struct s3_client *c, const char *key,
    const char *upload_id, const struct s3_part *parts, size_t nparts)
{
	int rc = s3_prepare_complete_multipart(c, key, upload_id, parts, nparts);

	return rc < 0 ? rc : s3_perform(c);
}

int
s3_prepare_abort_multipart(struct s3_client *c, const char *key,
    const char *upload_id)
{
	struct sigv4_kv q[] = { { "uploadId", upload_id } };
	int rc;

	if (upload_id == NULL || upload_id[0] == '\0')
		return -EINVAL;
	rc = check_key(key);
	if (rc == 0)
		rc = begin(c, OP_ABORT_MP);
	if (rc < 0)
		return rc;
	if (curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, "DELETE") != CURLE_OK)
		return -EINVAL;
	return sign_and_set(c, "DELETE", key, q, 1, NULL, 0, SIGV4_EMPTY_SHA256);
}

int
s3_abort_multipart(struct s3_client *c, const char *key, const char *upload_id)
{
	int rc = s3_prepare_abort_multipart(c, key, upload_id);

	return rc < 0 ? rc : s3_perform(c);
}

/* ------------------------------------------------------------ listing */

static int xml_text(const char *body, size_t len, const char *name, char *out,
    size_t cap);

/* The first page asks for this many uploads. A page must fit in
 * S3_BODY_MAX: AWS describes each upload in about 600 bytes besides its
 * key and UploadId (initiator, owner, storage class, date), so ten short
 * keys fit; a page that does not fit is asked for again with half as many. */
#define LIST_UPLOADS_FIRST	10

/* One GET /BUCKET?uploads page into the response buffer. */
static int
list_uploads_page(struct s3_client *c, const char *prefix,
    const char *key_marker, const char *id_marker, int max_uploads)
{
	char max[16];
	struct sigv4_kv q[5];
	size_t nq = 0;
	int rc = begin(c, OP_LIST_MP);

	if (rc < 0)
		return rc;
	snprintf(max, sizeof(max), "%d", max_uploads);
	q[nq++] = (struct sigv4_kv){ "uploads", "" };
	q[nq++] = (struct sigv4_kv){ "max-uploads", max };
	if (prefix[0] != '\0')
		q[nq++] = (struct sigv4_kv){ "prefix", prefix };
	if (key_marker[0] != '\0') {
		q[nq++] = (struct sigv4_kv){ "key-marker", key_marker };
		if (id_marker[0] != '\0')
			q[nq++] = (struct sigv4_kv){ "upload-id-marker", id_marker };
	}
	if (curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L) != CURLE_OK)
		return -EINVAL;
	rc = sign_and_set(c, "GET", NULL, q, nq, NULL, 0, SIGV4_EMPTY_SHA256);
	return rc < 0 ? rc : s3_perform(c);
}

/* The text of <name> in [s, s + len), "" when the element is absent or
 * empty (<NextKeyMarker/>). */
static int
xml_text_or_empty(const char *s, size_t len, const char *name, char *out,
    size_t cap)
{
	int rc = xml_text(s, len, name, out, cap);

	if (rc == -ENOENT) {
		out[0] = '\0';
		rc = 0;
	}
	return rc;
}

int
s3_list_multipart_uploads(struct s3_client *c, const char *prefix,
    int (*cb)(const char *key, const char *upload_id, void *arg), void *arg)
{
	/* The page is copied out of the response, so that the callback may
	 * use this client (to abort what it was given). */
	char page[S3_BODY_MAX + 1], trunc[8];
	char key[S3_KEY_MAX + 1], id[S3_UPLOAD_ID_MAX];
	char key_marker[S3_KEY_MAX + 1] = "", id_marker[S3_UPLOAD_ID_MAX] = "";
	int max_uploads = LIST_UPLOADS_FIRST, rc;

	if (cb == NULL)
		return -EINVAL;
	if (prefix == NULL)
		prefix = "";
	if (strnlen(prefix, S3_KEY_MAX + 1) > S3_KEY_MAX)
		return -ENAMETOOLONG;
	for (;;) {
		const struct s3_response *r;
		const char *p, *end;
		size_t len;

		rc = list_uploads_page(c, prefix, key_marker, id_marker,
		    max_uploads);
		if (rc < 0)
			return rc;
		r = &c->resp;
		if (r->body_truncated) {
			if (max_uploads == 1)
				return -EFBIG;
			max_uploads /= 2;
			continue;
		}
		len = r->body_len;
		memcpy(page, r->body, len);
		page[len] = '\0';
		if (memmem(page, len, "<ListMultipartUploadsResult", 27) == NULL)
			return -EPROTO;
		if (xml_text_or_empty(page, len, "IsTruncated", trunc,
		    sizeof(trunc)) < 0)
			return -EPROTO;

		/* Keys are XML text, so "<Upload>" cannot occur inside one. */
		key[0] = id[0] = '\0';
		for (p = page, end = page + len;
		    (p = memmem(p, (size_t)(end - p), "<Upload>", 8)) != NULL;) {
			const char *e = memmem(p, (size_t)(end - p), "</Upload>", 9);

			if (e == NULL || xml_text(p, (size_t)(e - p), "Key", key,
			    sizeof(key)) < 0 || xml_text(p, (size_t)(e - p),
			    "UploadId", id, sizeof(id)) < 0 || key[0] == '\0' ||
			    id[0] == '\0')
				return -EPROTO;
			rc = cb(key, id, arg);
			if (rc != 0)
				return rc;
			p = e + 9;
		}
		if (strcmp(trunc, "true") != 0)
			return 0;

		/* The next page starts after Next*Marker, or after the last
		 * upload of this one where the server leaves them empty
		 * (Swift's s3api does on a page of one). A marker that does
		 * not move would list the same page forever. */
		{
			char nk[S3_KEY_MAX + 1], ni[S3_UPLOAD_ID_MAX];

			if (xml_text_or_empty(page, len, "NextKeyMarker", nk,
			    sizeof(nk)) < 0 || xml_text_or_empty(page, len,
			    "NextUploadIdMarker", ni, sizeof(ni)) < 0)
				return -EPROTO;
			if (nk[0] == '\0') {
				snprintf(nk, sizeof(nk), "%s", key);
				snprintf(ni, sizeof(ni), "%s", id);
			}
			if (nk[0] == '\0' || (strcmp(nk, key_marker) == 0 &&
			    strcmp(ni, id_marker) == 0))
				return -EPROTO;
			snprintf(key_marker, sizeof(key_marker), "%s", nk);
			snprintf(id_marker, sizeof(id_marker), "%s", ni);
		}
	}
}

/* ------------------------------------------------------------ results */

/* Copies the text of the first <name>...</name> in the body, decoding the
 * five XML entities. Returns 0, or -ENOENT / -ENAMETOOLONG. */
static int
xml_text(const char *body, size_t len, const char *name, char *out, size_t cap)
{
	char open[64], close[64];
	const char *s, *e;
	size_t o = 0;

	snprintf(open, sizeof(open), "<%s>", name);
	snprintf(close, sizeof(close), "</%s>", name);
	s = memmem(body, len, open, strlen(open));
	if (s == NULL)
		return -ENOENT;
	s += strlen(open);
	e = memmem(s, len - (size_t)(s - body), close, strlen(close));
	if (e == NULL)
		return -ENOENT;
	while (s < e) {
		static const struct {
			const char *ent;
			char c;
		} ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		    { "&quot;", '"' }, { "&apos;", '\'' } };
		char ch = *s++;

		if (ch == '&') {
			for (size_t i = 0; i < 5; i++) {
				size_t n = strlen(ents[i].ent);

				if ((size_t)(e - s) + 1 >= n &&
				    memcmp(s - 1, ents[i].ent, n) == 0) {
					ch = ents[i].c;
					s += n - 1;
					break;
				}
			}
		}
		if (o + 1 >= cap)
			return -ENAMETOOLONG;
		out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

/* The region in an S3 endpoint host: "b.s3.eu-west-1.amazonaws.com",
 * "s3.eu-west-1.amazonaws.com", "s3-eu-west-1.amazonaws.com" or
 * "s3.dualstack.eu-west-1.amazonaws.com". Returns 0 or -ENOENT. */
static int
endpoint_region(const char *host, char *out, size_t cap)
{
	const char *end = strstr(host, ".amazonaws.com"), *s;
	size_t n;

	if (end == NULL)
		return -ENOENT;
	for (s = end; s > host && s[-1] != '.'; s--)
		;
	n = (size_t)(end - s);
	if (n == 2 && strncmp(s, "s3", 2) == 0) {
		/* s3.amazonaws.com, the global endpoint, is us-east-1. */
		s = "us-east-1";
		n = strlen(s);
	} else if (n > 3 && strncmp(s, "s3-", 3) == 0) {
		s += 3;
		n -= 3;
	}
	if (n == 0 || n >= cap)
		return -ENOENT;
	memcpy(out, s, n);
	out[n] = '\0';
	return valid_region(out) ? 0 : -ENOENT;
}

static void
find_bucket_region(struct s3_response *r)
{
	char ep[256];

	if (r->bucket_region[0] != '\0' && valid_region(r->bucket_region))
		return;
	r->bucket_region[0] = '\0';
	if (r->body_len == 0)
		return;
	if (xml_text(r->body, r->body_len, "Region", r->bucket_region,
	    sizeof(r->bucket_region)) == 0 && valid_region(r->bucket_region))
		return;
	r->bucket_region[0] = '\0';
	if (xml_text(r->body, r->body_len, "Endpoint", ep, sizeof(ep)) == 0 &&
	    endpoint_region(ep, r->bucket_region, sizeof(r->bucket_region)) == 0)
		return;
	r->bucket_region[0] = '\0';
}

static const char *
op_name(enum op op)
{
	switch (op) {
	case OP_PUT:
		return "put";
	case OP_HEAD_BUCKET:
		return "head_bucket";
	case OP_GET:
		return "get";
	case OP_CREATE_MP:
		return "create_multipart";
	case OP_UPLOAD_PART:
		return "upload_part";
	case OP_COMPLETE_MP:
		return "complete_multipart";
	case OP_ABORT_MP:
		return "abort_multipart";
	case OP_LIST_MP:
		return "list_multipart_uploads";
	case OP_NONE:
		break;
	}
	return "none";
}

static int
s3_finish(struct s3_client *c, CURLcode result)
{
	struct s3_response *r = &c->resp;
	long status = 0, conns = 0;
	bool error_doc = false;
	char st[16];

	r->curl_code = (int)result;
	(void)curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	(void)curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &conns);
	r->status = status;
	r->new_connections = conns;
	if (result != CURLE_OK && r->curl_error[0] == '\0')
		snprintf(r->curl_error, sizeof(r->curl_error), "%s",
		    curl_easy_strerror(result));

	if (r->body_len > 0)
		error_doc = s3err_parse(r->body, r->body_len, &r->error) == 0;
	r->verdict = s3err_classify((int)result, status,
	    error_doc ? r->error.code : NULL);
	/* S3 can answer 200 and still fail (CompleteMultipartUpload): an
	 * <Error> document always means failure, retryable unless its code
	 * says otherwise. */
	if (error_doc && r->verdict.cls == S3ERR_OK) {
		r->verdict.cls = S3ERR_TRANSIENT;
		r->verdict.reason = "error in a 2xx response";
	}
	if (r->body_changed) {
		r->verdict = (struct s3err_verdict){ .cls = S3ERR_MESSAGE,
		    .reason = "the body changed while it was sent" };
		snprintf(r->curl_error, sizeof(r->curl_error),
		    "its bytes no longer match their CRC-32C; aborted before the last byte");
	}
	if (c->retry_after[0] != '\0' && s3err_parse_retry_after(c->retry_after,
	    time(NULL), &r->retry_after_ms) == 0)
		r->has_retry_after = true;

	if (r->verdict.cls == S3ERR_OK) {
		if (c->op == OP_CREATE_MP && xml_text(r->body, r->body_len,
		    "UploadId", c->upload_id_out, c->upload_id_cap) < 0) {
			r->verdict.cls = S3ERR_TRANSIENT;
			r->verdict.reason = "no UploadId in the answer";
		}
		if (c->op == OP_UPLOAD_PART && c->part_out != NULL) {
			if (r->etag[0] == '\0') {
				r->verdict.cls = S3ERR_TRANSIENT;
				r->verdict.reason = "no ETag in the answer";
			}
			snprintf(c->part_out->etag, sizeof(c->part_out->etag),
			    "%s", r->etag);
		}
	}

	if (r->verdict.cls == S3ERR_OK)
		return 0;
	find_bucket_region(r);
	snprintf(st, sizeof(st), "%ld", status);
	log_kv(LOG_LEVEL_DEBUG, "s3 request failed", "op", op_name(c->op),
	    "status", st, "code", r->error.code, "class",
	    s3err_class_name(r->verdict.cls), "reason", r->verdict.reason,
	    "curl", result != CURLE_OK ? r->curl_error : "",
	    "request_id", r->request_id, (char *)NULL);
	if (r->verdict.reload_credentials) {
		int rc = creds_reload(c->creds, true);

		log_msg(LOG_LEVEL_INFO, "S3 answered %s; credentials %s",
		    r->verdict.reason, rc == 1 ? "reloaded" : rc == 2 ?
		    "refresh requested" : "re-read but unchanged");
	}
	return -EIO;
}

int
s3_perform(struct s3_client *c)
{
	return s3_finish(c, curl_easy_perform(c->easy));
}

/* ------------------------------------------------------------ multi */

/*
 * libcurl's socket interface over epoll: curl says which sockets it wants
 * watched (on_socket) and when it wants to be called back (on_timer); a
 * wait is one epoll_wait() and a curl_multi_socket_action() per ready
 * socket, so its cost grows with the sockets that are ready, not with the
 * transfers in flight. An eventfd in the same epoll set is the wake-up.
 *
 * The transfers are spread over shards, one curl multi handle per
 * MULTI_SHARD connections: curl looks for a connection to reuse by
 * walking its pool for the host, so with a thousand connections in one
 * pool that walk was most of the cost of a request. A client stays in the
 * shard it first went to, with the connections it made there.
 *
 * With more than one shard and more than one CPU, the shards are split
 * between two loops: the
 * caller's, which runs in s3_multi_wait(), and a transport thread's
 * (shard_loop()). Most
 * of a small upload's cost is curl and the kernel's TCP, and one thread
 * was a core's worth of it with a thousand uploads in flight. Each loop
 * has its own epoll set and share (TLS sessions), and only its thread
 * calls curl on its shards. The caller hands a transfer to the transport
 * thread through `starts` and gets it back, finished, through `done`; a
 * cancel waits for the thread to take the handle out of its multi. The
 * queues are linked through the clients (xnext; xcancel for the cancels,
 * as a transfer being reaped may be cancelled) and guarded by the
 * transport loop's mutex, which also guards every client's xq there.
 */
#define MULTI_SHARD	64
#define MULTI_SHARDS_MAX 64

/* Where a client stands in its multi. */
enum xfer_q {
	XQ_IDLE,	/* not started, or returned */
	XQ_STARTING,	/* queued for the transport thread */
	XQ_RUNNING,	/* in its shard's curl multi handle */
	XQ_DONE,	/* finished, queued for s3_multi_done() */
};

struct multi_loop {
	struct s3_multi *m;
	unsigned index;		/* 0: the caller's, 1: the transport thread's */
	int epfd;
	int evfd;		/* wakes this loop's epoll_wait() */
	CURLSH *share;		/* used by this loop's thread only */

	/* The transport loop's, guarded by mu. */
	pthread_mutex_t mu;
	pthread_cond_t cancelled;
	pthread_t thread;
	bool thread_started;
	bool quit;
	bool sleeping;		/* it waits, with starts and cancels empty */
	bool caller_sleeping;	/* the caller waits, with done empty */
	struct s3_client *starts, **starts_tail;
	struct s3_client *cancels;
	struct s3_client *done, **done_tail;
};

struct multi_shard {
	struct multi_loop *loop;
	CURLM *multi;
	uint64_t timer_due_ns;	/* CLOCK_MONOTONIC; 0: no timer */
};

struct s3_multi {
	uint64_t gen;		/* tells a multi from one made at its address */
	unsigned count;		/* started, not yet returned */
	unsigned nshards;
	unsigned nloops;	/* 1, or 2 with the transport thread */
	unsigned next_shard;	/* for clients new to the multi */
	unsigned done_from;	/* the shard s3_multi_done() reads first */
	struct multi_loop loop[2];
	struct multi_shard shard[MULTI_SHARDS_MAX];
};

/* The epoll data of a socket: its shard and its descriptor. A shard of
 * MULTI_SHARDS_MAX is the loop's eventfd. */
static uint64_t
ev_key(unsigned shard, int fd)
{
	return (uint64_t)shard << 32 | (uint32_t)fd;
}

static uint64_t
multi_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
loop_wake(struct multi_loop *l)
{
	uint64_t one = 1;

	(void)!write(l->evfd, &one, sizeof(one));
}

static int
on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct multi_shard *sh = userp;
	struct s3_multi *m = sh->loop->m;
	int epfd = sh->loop->epfd;
	struct epoll_event ev = { 0 };

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		/* curl may have closed it already: then it left the set. */
		(void)epoll_ctl(epfd, EPOLL_CTL_DEL, s, NULL);
		(void)curl_multi_assign(sh->multi, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
	    (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
	ev.data.u64 = ev_key((unsigned)(sh - m->shard), s);
	if (epoll_ctl(epfd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) < 0) {
		/* A descriptor number reused before curl said REMOVE. */
		if (errno == ENOENT)
			(void)epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev);
		else if (errno == EEXIST)
			(void)epoll_ctl(epfd, EPOLL_CTL_MOD, s, &ev);
	}
	(void)curl_multi_assign(sh->multi, s, sh);
	return 0;
}

static int
on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct multi_shard *sh = userp;

	(void)multi;
	sh->timer_due_ns = timeout_ms < 0 ? 0 :
	    multi_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	return 0;
}

/* c was last started in m, not in a multi freed before m was made at the
 * same address. */
static bool
in_multi(const struct s3_multi *m, const struct s3_client *c)
{
	return c->multi == m && c->multi_gen == m->gen;
}

static struct multi_loop *
loop_of(struct s3_multi *m, const struct s3_client *c)
{
	return m->shard[c->shard].loop;
}

/* Waits up to timeout_ms on loop l's sockets and timers, and runs curl on
 * the shards of l. Only l's thread calls it. */
static int
loop_wait(struct s3_multi *m, struct multi_loop *l, int timeout_ms)
{
	struct epoll_event ev[64];
	uint64_t now = multi_now_ns();
	int running, n;

	for (unsigned i = 0; i < m->nshards; i++) {
		uint64_t due;

		if (m->shard[i].loop != l)
			continue;
		due = m->shard[i].timer_due_ns;
		if (due != 0) {
			uint64_t left = due > now ? (due - now + 999999) / 1000000 : 0;
			if (left < (uint64_t)timeout_ms)
				timeout_ms = (int)left;
		}
	}
	n = epoll_wait(l->epfd, ev, 64, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		unsigned sh = (unsigned)(ev[i].data.u64 >> 32);
		int fd = (int)(uint32_t)ev[i].data.u64, mask = 0;

		if (sh >= m->nshards) {
			uint64_t v;
			(void)!read(l->evfd, &v, sizeof(v));
			continue;
		}
		if (ev[i].events & (EPOLLIN | EPOLLHUP))
			mask |= CURL_CSELECT_IN;
		if (ev[i].events & EPOLLOUT)
			mask |= CURL_CSELECT_OUT;
		if (ev[i].events & EPOLLERR)
			mask |= CURL_CSELECT_ERR;
		(void)curl_multi_socket_action(m->shard[sh].multi, fd, mask, &running);
	}
	now = multi_now_ns();
	for (unsigned i = 0; i < m->nshards; i++) {
		struct multi_shard *sh = &m->shard[i];

		if (sh->loop == l && sh->timer_due_ns != 0 && now >= sh->timer_due_ns) {
			sh->timer_due_ns = 0;
			(void)curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
	}
	return 0;
}

/* Unlinks c from the list at *head; false if it is not there. */
static bool
xq_unlink(struct s3_client **head, struct s3_client ***tail, struct s3_client *c)
{
	for (struct s3_client **p = head; *p != NULL; p = &(*p)->xnext) {
		if (*p != c)
			continue;
		*p = c->xnext;
		if (tail != NULL && *tail == &c->xnext)
			*tail = p;
		c->xnext = NULL;
		return true;
	}
	return false;
}

/* ------------------------------------------------ the transport thread */

/* Under t->mu: wakes the caller if it waits with done empty. */
static void
caller_poke(struct s3_multi *m, struct multi_loop *t)
{
	if (t->caller_sleeping) {
		t->caller_sleeping = false;
		loop_wake(&m->loop[0]);
	}
}

/* Under t->mu: the cancels, then the starts, into the thread's shards. A
 * start curl refuses is finished at once, as a transient failure. */
static void
transport_take(struct s3_multi *m, struct multi_loop *t)
{
	bool any = false, failed = false;
	struct s3_client *c;

	while ((c = t->cancels) != NULL) {
		t->cancels = c->xcancel;
		c->xcancel = NULL;
		if (c->xq == XQ_RUNNING) {
			(void)curl_multi_remove_handle(m->shard[c->shard].multi, c->easy);
			(void)curl_easy_setopt(c->easy, CURLOPT_SHARE, NULL);
		}
		else if (c->xq == XQ_DONE)
			(void)xq_unlink(&t->done, &t->done_tail, c);
		c->xq = XQ_IDLE;
		any = true;
	}
	if (any)
		pthread_cond_broadcast(&t->cancelled);
	while ((c = t->starts) != NULL) {
		t->starts = c->xnext;
		c->xnext = NULL;
		if (curl_easy_setopt(c->easy, CURLOPT_SHARE, t->share) == CURLE_OK &&
		    curl_multi_add_handle(m->shard[c->shard].multi, c->easy) == CURLM_OK) {
			c->xq = XQ_RUNNING;
			continue;
		}
		(void)curl_easy_setopt(c->easy, CURLOPT_SHARE, NULL);
		c->xresult = CURLE_OUT_OF_MEMORY;
		c->xq = XQ_DONE;
		*t->done_tail = c;
		t->done_tail = &c->xnext;
		failed = true;
	}
	t->starts_tail = &t->starts;
	if (failed)
		caller_poke(m, t);
}

/* The finished transfers of the thread's shards, out of their multi
 * handles and onto done; wakes the caller if it waits. */
static void
transport_reap(struct s3_multi *m, struct multi_loop *t)
{
	struct s3_client *head = NULL, **tail = &head;

	for (unsigned i = 0; i < m->nshards; i++) {
		CURLM *multi = m->shard[i].multi;
		CURLMsg *msg;
		int left;

		if (m->shard[i].loop != t)
			continue;
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			struct s3_client *c = NULL;
			CURLcode result = msg->data.result;
			CURL *easy = msg->easy_handle;

			if (msg->msg != CURLMSG_DONE)
				continue;
			(void)curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
			(void)curl_multi_remove_handle(multi, easy);
			(void)curl_easy_setopt(easy, CURLOPT_SHARE, NULL);
			if (c == NULL)
				continue;
			c->xresult = result;
			*tail = c;
			tail = &c->xnext;
		}
	}
	if (head == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	for (struct s3_client *c = head; c != NULL; c = c->xnext)
		c->xq = XQ_DONE;
	*t->done_tail = head;
	t->done_tail = tail;
	caller_poke(m, t);
	pthread_mutex_unlock(&t->mu);
}

static void *
transport_main(void *arg)
{
	struct multi_loop *t = arg;
	struct s3_multi *m = t->m;

	for (;;) {
		pthread_mutex_lock(&t->mu);
		if (t->quit) {
			pthread_mutex_unlock(&t->mu);
			return NULL;
		}
		transport_take(m, t);
		t->sleeping = true;
		pthread_mutex_unlock(&t->mu);
		/* 50 ms at most: curl's timers are in loop_wait's reckoning. */
		(void)loop_wait(m, t, 50);
		pthread_mutex_lock(&t->mu);
		t->sleeping = false;
		pthread_mutex_unlock(&t->mu);
		transport_reap(m, t);
	}
}

/* Under t->mu: wakes the transport thread if it waits. */
static void
transport_poke(struct multi_loop *t)
{
	if (t->sleeping) {
		t->sleeping = false;
		loop_wake(t);
	}
}

/* ------------------------------------------------------------ set-up */

/* The loop of shard i: the caller's loop also reads the ring, signs every
 * request and finishes every transfer, so it runs a third of the shards
 * (the first, fourth, ...) and the transport thread the rest. */
static unsigned
shard_loop(const struct s3_multi *m, unsigned i)
{
	return m->nloops == 1 || i % 3 == 0 ? 0 : 1;
}

static int
shard_init(struct multi_shard *sh, struct multi_loop *l, long max_conns)
{
	CURLMcode mc = CURLM_OK;

	sh->loop = l;
	sh->multi = curl_multi_init();
	if (sh->multi == NULL)
		return -ENOMEM;
#define MSET(opt, val) do { if (mc == CURLM_OK) mc = curl_multi_setopt(sh->multi, opt, val); } while (0)
	MSET(CURLMOPT_SOCKETFUNCTION, on_socket);
	MSET(CURLMOPT_SOCKETDATA, sh);
	MSET(CURLMOPT_TIMERFUNCTION, on_timer);
	MSET(CURLMOPT_TIMERDATA, sh);
	MSET(CURLMOPT_MAX_HOST_CONNECTIONS, max_conns);
	/* Idle connections kept for reuse: as many as may be in use. */
	MSET(CURLMOPT_MAXCONNECTS, max_conns);
#undef MSET
	return mc == CURLM_OK ? 0 : -ENOMEM;
}

static int
loop_init(struct s3_multi *m, unsigned index)
{
	struct multi_loop *l = &m->loop[index];
	struct epoll_event ev = { .events = EPOLLIN };

	l->m = m;
	l->index = index;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->share = curl_share_init();
	if (l->epfd < 0 || l->evfd < 0 || l->share == NULL)
		return -ENOMEM;
	ev.data.u64 = ev_key(MULTI_SHARDS_MAX, l->evfd);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev) < 0)
		return -errno;
	/* One thread uses a loop's share, so it needs no lock callbacks.
	 * TLS sessions are resumed by every client of the loop; DNS answers
	 * are shared within each shard's multi handle. */
	if (curl_share_setopt(l->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
		return -ENOMEM;
	l->starts_tail = &l->starts;
	l->done_tail = &l->done;
	return 0;
}

/* The CPUs this thread may run on: a second loop on one CPU would only
 * add the hand-offs. */
static int
cpus_usable(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	return CPU_COUNT(&set);
}

static int
transport_spawn(struct multi_loop *t)
{
	int rc;

	if ((rc = pthread_mutex_init(&t->mu, NULL)) != 0)
		return -rc;
	if ((rc = pthread_cond_init(&t->cancelled, NULL)) != 0) {
		pthread_mutex_destroy(&t->mu);
		return -rc;
	}
	/* Signals stay with the caller's thread, except the faults: the read
	 * callback reads bodies from the ring, under the SIGBUS guard. */
	rc = -ring_guard_spawn(&t->thread, transport_main, t);
	if (rc != 0) {
		pthread_cond_destroy(&t->cancelled);
		pthread_mutex_destroy(&t->mu);
		return -rc;
	}
	t->thread_started = true;
	return 0;
}

struct s3_multi *
s3_multi_new(unsigned max_host_connections)
{
	struct s3_multi *m = calloc(1, sizeof(*m));
	unsigned n = max_host_connections ? max_host_connections : MULTI_SHARD;

	static _Atomic uint64_t gens;

	if (m == NULL)
		return NULL;
	m->gen = atomic_fetch_add(&gens, 1) + 1;
	for (unsigned i = 0; i < 2; i++)
		m->loop[i].epfd = m->loop[i].evfd = -1;
	m->nshards = (n + MULTI_SHARD - 1) / MULTI_SHARD;
	if (m->nshards > MULTI_SHARDS_MAX)
		m->nshards = MULTI_SHARDS_MAX;
	m->nloops = m->nshards > 1 && cpus_usable() > 1 ? 2 : 1;
	for (unsigned i = 0; i < m->nloops; i++)
		if (loop_init(m, i) < 0)
			goto fail;
	for (unsigned i = 0; i < m->nshards; i++) {
		long per = (long)((n + m->nshards - 1) / m->nshards);

		if (shard_init(&m->shard[i], &m->loop[shard_loop(m, i)],
		    max_host_connections ? per : 0) < 0)
			goto fail;
	}
	if (m->nloops > 1 && transport_spawn(&m->loop[1]) < 0)
		goto fail;
	return m;
fail:
	s3_multi_free(m);
	errno = ENOMEM;
	return NULL;
}

void
s3_multi_free(struct s3_multi *m)
{
	struct multi_loop *t;

	if (m == NULL)
		return;
	t = &m->loop[1];
	if (t->thread_started) {
		pthread_mutex_lock(&t->mu);
		t->quit = true;
		loop_wake(t);
		pthread_mutex_unlock(&t->mu);
		pthread_join(t->thread, NULL);
		pthread_cond_destroy(&t->cancelled);
		pthread_mutex_destroy(&t->mu);
	}
	for (unsigned i = 0; i < m->nshards; i++)
		if (m->shard[i].multi != NULL)
			curl_multi_cleanup(m->shard[i].multi);
	for (unsigned i = 0; i < 2; i++) {
		struct multi_loop *l = &m->loop[i];

		if (l->share != NULL)
			curl_share_cleanup(l->share);
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->evfd >= 0)
			close(l->evfd);
	}
	free(m);
}

/* ------------------------------------------------------------ use */

int
s3_multi_start(struct s3_multi *m, struct s3_client *c, void *user)
{
	struct multi_loop *l;
	CURLcode rc = curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);

	if (rc != CURLE_OK)
		return setopt_failed(c, rc);
	if (!in_multi(m, c)) {
		c->multi = m;
		c->multi_gen = m->gen;
		c->shard = m->next_shard;
		c->xq = XQ_IDLE;
		m->next_shard = (m->next_shard + 1) % m->nshards;
	}
	c->multi_user = user;
	l = loop_of(m, c);
	if (l->index == 0) {
		rc = curl_easy_setopt(c->easy, CURLOPT_SHARE, l->share);
		if (rc != CURLE_OK)
			return setopt_failed(c, rc);
		if (curl_multi_add_handle(m->shard[c->shard].multi, c->easy) != CURLM_OK)
			return -ENOMEM;
		c->xq = XQ_RUNNING;
	}
	else {
		pthread_mutex_lock(&l->mu);
		c->xq = XQ_STARTING;
		c->xnext = NULL;
		*l->starts_tail = c;
		l->starts_tail = &c->xnext;
		transport_poke(l);
		pthread_mutex_unlock(&l->mu);
	}
	m->count++;
	return 0;
}

void
s3_multi_cancel(struct s3_multi *m, struct s3_client *c)
{
	struct multi_loop *l;
	bool was = false;

	if (!in_multi(m, c))
		goto out;
	l = loop_of(m, c);
	if (l->index == 0) {
		if (c->xq == XQ_RUNNING)
			(void)curl_multi_remove_handle(m->shard[c->shard].multi, c->easy);
		was = c->xq != XQ_IDLE;
		c->xq = XQ_IDLE;
	}
	else {
		pthread_mutex_lock(&l->mu);
		was = c->xq != XQ_IDLE;
		if (c->xq == XQ_STARTING)
			(void)xq_unlink(&l->starts, &l->starts_tail, c);
		else if (c->xq == XQ_DONE)
			(void)xq_unlink(&l->done, &l->done_tail, c);
		else if (c->xq == XQ_RUNNING) {
			/* Only the thread calls curl on its multi handles. */
			c->xcancel = l->cancels;
			l->cancels = c;
			transport_poke(l);
			while (c->xq != XQ_IDLE)
				pthread_cond_wait(&l->cancelled, &l->mu);
		}
		c->xq = XQ_IDLE;
		pthread_mutex_unlock(&l->mu);
	}
	if (was && m->count > 0)
		m->count--;
out:
	/* A handle out of the multi lets go of its share, so that the
	 * multi can be freed before its clients. */
	(void)curl_easy_setopt(c->easy, CURLOPT_SHARE, NULL);
}

int
s3_multi_wait(struct s3_multi *m, int timeout_ms)
{
	struct multi_loop *t = &m->loop[1];
	int rc;

	if (m->nloops == 1)
		return loop_wait(m, &m->loop[0], timeout_ms);
	pthread_mutex_lock(&t->mu);
	if (t->done != NULL)
		timeout_ms = 0;
	t->caller_sleeping = timeout_ms != 0;
	pthread_mutex_unlock(&t->mu);
	rc = loop_wait(m, &m->loop[0], timeout_ms);
	if (timeout_ms != 0) {
		pthread_mutex_lock(&t->mu);
		t->caller_sleeping = false;
		pthread_mutex_unlock(&t->mu);
	}
	return rc;
}

/* The next transfer the transport thread finished, or NULL. */
static struct s3_client *
transport_done(struct s3_multi *m)
{
	struct multi_loop *t = &m->loop[1];
	struct s3_client *c;

	if (m->nloops == 1)
		return NULL;
	pthread_mutex_lock(&t->mu);
	if ((c = t->done) != NULL) {
		t->done = c->xnext;
		if (t->done == NULL)
			t->done_tail = &t->done;
		c->xnext = NULL;
		c->xq = XQ_IDLE;
	}
	pthread_mutex_unlock(&t->mu);
	return c;
}

struct s3_client *
s3_multi_done(struct s3_multi *m, int *rc, void **user)
{
	struct s3_client *c;

	for (unsigned k = 0; k < m->nshards; k++) {
		struct multi_shard *sh = &m->shard[(m->done_from + k) % m->nshards];
		CURLMsg *msg;
		int left;

		if (sh->loop->index != 0)
			continue;
		while ((msg = curl_multi_info_read(sh->multi, &left)) != NULL) {
			CURLcode result = msg->data.result;
			CURL *easy = msg->easy_handle;

			c = NULL;
			/* msg is not to be read after the handle leaves the multi. */
			if (msg->msg != CURLMSG_DONE)
				continue;
			(void)curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
			(void)curl_multi_remove_handle(sh->multi, easy);
			(void)curl_easy_setopt(easy, CURLOPT_SHARE, NULL);
			if (m->count > 0)
				m->count--;
			if (c == NULL)
				continue;
			c->xq = XQ_IDLE;
			/* The next call starts here: no shard waits behind a busy one. */
			m->done_from = (unsigned)(sh - m->shard);
			*rc = s3_finish(c, result);
			*user = c->multi_user;
			return c;
		}
	}
	if ((c = transport_done(m)) == NULL)
		return NULL;
	if (m->count > 0)
		m->count--;
	*rc = s3_finish(c, c->xresult);
	*user = c->multi_user;
	return c;
}

unsigned
s3_multi_count(const struct s3_multi *m)
{
	return m->count;
}

void
s3_multi_wakeup(struct s3_multi *m)
{
	loop_wake(&m->loop[0]);
}
