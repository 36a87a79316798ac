/* test_s3.c -- tests uploader/s3.c against a scripted HTTP server */
/*
 * A small HTTP/1.1 server runs in a thread on 127.0.0.1: it records every
 * request (request line, headers, body hash and the first bytes of the
 * body) and answers from a script of canned responses, which can also
 * delay, reset or close the connection. Every request the client sends is
 * re-signed from what arrived on the wire and must carry the same
 * signature, so what was signed is what was sent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "crc32c.h"
#include "creds.h"
#include "log.h"
#include "s3.h"
#include "sigbus.h"
#include "sigv4.h"

#define AK "AKIAS3TESTS3TEST0000"
#define SK "s3TestSecretKeyThatMustNeverBeLogged/+="

/* ------------------------------------------------------------ the server */

struct canned {
	int status;
	const char *headers;	/* extra header lines, each ending "\r\n" */
	const char *body;
	size_t body_len;	/* 0: strlen(body) */
	int delay_ms;
	bool close_after;	/* "Connection: close", then close */
	bool reset;		/* close without answering */
};

#define REC_MAX 8
#define REC_BODY 16384

struct rec {
	char line[8192];
	char headers[16384];
	size_t body_len;
	char body_sha[65];
	char body[REC_BODY + 1];
};

#define CONN_MAX 4
#define CONN_BUF (1 << 20)

struct conn {
	int fd;
	char *buf;
	size_t len;
};

struct server {
	int lfd;
	int port;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t mu;
	struct canned script[64];
	size_t nscript;
	size_t next;
	struct rec recs[REC_MAX];	/* the last REC_MAX requests */
	size_t nreq;			/* all requests so far */
	int accepts;
	struct conn conns[CONN_MAX];
};

static struct server *srv;

static void
server_script(const struct canned *c)
{
	pthread_mutex_lock(&srv->mu);
	assert_true(srv->nscript < 64);
	srv->script[srv->nscript++] = *c;
	pthread_mutex_unlock(&srv->mu);
}

static const struct rec *
server_rec(size_t i)	/* i-th request, from 0 */
{
	assert_true(i < srv->nreq && srv->nreq - i <= REC_MAX);
	return &srv->recs[i % REC_MAX];
}

static void
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

/* Handles the complete requests in c's buffer; returns false if the
 * connection was closed. */
static bool
serve(struct conn *c)
{
	for (;;) {
		char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		size_t hlen, clen = 0, total;
		struct canned resp = { 200, "", "", 0, 0, false, false };
		char head[1024], hex[65];
		unsigned char md[32];
		const char *cl;
		struct rec *r;
		bool is_head;

		if (end == NULL)
			return true;
		hlen = (size_t)(end - c->buf) + 4;
		c->buf[hlen - 1] = '\0';
		cl = strcasestr(c->buf, "\r\nContent-Length:");
		if (cl != NULL)
			clen = strtoul(cl + 17, NULL, 10);
		c->buf[hlen - 1] = '\n';
		total = hlen + clen;
		if (c->len < total)
			return true;

		pthread_mutex_lock(&srv->mu);
		r = &srv->recs[srv->nreq % REC_MAX];
		memset(r, 0, sizeof(*r));
		{
			char *eol = memmem(c->buf, hlen, "\r\n", 2);
			size_t n = (size_t)(eol - c->buf);

			snprintf(r->line, sizeof(r->line), "%.*s", (int)n, c->buf);
			snprintf(r->headers, sizeof(r->headers), "%.*s",
			    (int)(hlen - n - 2), eol + 2);
		}
		r->body_len = clen;
		memcpy(r->body, c->buf + hlen, clen < REC_BODY ? clen : REC_BODY);
		assert_int_equal(sigv4_sha256_hex(c->buf + hlen, clen, hex), 0);
		memcpy(r->body_sha, hex, sizeof(hex));
		(void)md;
		srv->nreq++;
		if (srv->next < srv->nscript)
			resp = srv->script[srv->next++];
		pthread_mutex_unlock(&srv->mu);

		is_head = strncmp(r->line, "HEAD ", 5) == 0;
		memmove(c->buf, c->buf + total, c->len - total);
		c->len -= total;
		if (resp.delay_ms > 0)
			usleep((useconds_t)resp.delay_ms * 1000);
		if (resp.reset) {
			conn_close(c);
			return false;
		}
		if (resp.headers == NULL)
			resp.headers = "";
		if (resp.body == NULL)
			resp.body = "";
		if (resp.body_len == 0)
			resp.body_len = strlen(resp.body);
		snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: "
		    "%zu\r\n%s%s\r\n", resp.status, resp.body_len, resp.headers,
		    resp.close_after ? "Connection: close\r\n" : "");
		write_all(c->fd, head, strlen(head));
		if (!is_head)
			write_all(c->fd, resp.body, resp.body_len);
		if (resp.close_after) {
			conn_close(c);
			return false;
		}
	}
}

static void *
server_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&srv->stop)) {
		struct pollfd p[1 + CONN_MAX];
		int n = 0;

		p[n++] = (struct pollfd){ srv->lfd, POLLIN, 0 };
		for (int i = 0; i < CONN_MAX; i++)
			p[n++] = (struct pollfd){ srv->conns[i].fd, POLLIN, 0 };
		if (poll(p, (nfds_t)n, 50) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			int fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);

			for (int i = 0; fd >= 0 && i < CONN_MAX; i++) {
				if (srv->conns[i].fd < 0) {
					srv->conns[i].fd = fd;
					srv->conns[i].len = 0;
					fd = -1;
					pthread_mutex_lock(&srv->mu);
					srv->accepts++;
					pthread_mutex_unlock(&srv->mu);
				}
			}
			if (fd >= 0)
				close(fd);
		}
		for (int i = 0; i < CONN_MAX; i++) {
			struct conn *c = &srv->conns[i];
			ssize_t got;

			if (c->fd < 0 || !(p[1 + i].revents & (POLLIN | POLLHUP)))
				continue;
			got = recv(c->fd, c->buf + c->len, CONN_BUF - c->len, 0);
			if (got <= 0) {
				conn_close(c);
				continue;
			}
			c->len += (size_t)got;
			serve(c);
		}
	}
	return NULL;
}

static int
server_start(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	(void)state;
	srv = calloc(1, sizeof(*srv));
	assert_non_null(srv);
	pthread_mutex_init(&srv->mu, NULL);
	for (int i = 0; i < CONN_MAX; i++) {
		srv->conns[i].fd = -1;
		srv->conns[i].buf = malloc(CONN_BUF);
		assert_non_null(srv->conns[i].buf);
	}
	srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(srv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(srv->lfd, 16), 0);
	assert_int_equal(getsockname(srv->lfd, (struct sockaddr *)&a, &alen), 0);
	srv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&srv->thread, NULL, server_main, NULL), 0);

	setenv("AWS_ACCESS_KEY_ID", AK, 1);
	setenv("AWS_SECRET_ACCESS_KEY", SK, 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	return 0;
}

static int
server_stop(void **state)
{
	(void)state;
	atomic_store(&srv->stop, true);
	pthread_join(srv->thread, NULL);
	for (int i = 0; i < CONN_MAX; i++) {
		conn_close(&srv->conns[i]);
		free(srv->conns[i].buf);
	}
	close(srv->lfd);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
	srv = NULL;
	return 0;
}

/* ------------------------------------------------------------ fixtures */

struct fx {
	struct creds *creds;
	struct s3_client *c;
	char endpoint[64];
};

static struct s3_client *
make_client(struct fx *f, bool path_style)
{
	struct s3_config cfg = {
		.endpoint = f->endpoint,
		.region = "us-east-1",
		.bucket = "bucket",
		.path_style = path_style,
		.connect_timeout_ms = 2000,
		.low_speed_time_s = 5,
	};

	return s3_client_new(&cfg, f->creds);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	pthread_mutex_lock(&srv->mu);
	srv->nscript = srv->next = 0;
	srv->nreq = 0;
	srv->accepts = 0;
	pthread_mutex_unlock(&srv->mu);
	snprintf(f->endpoint, sizeof(f->endpoint), "http://127.0.0.1:%d",
	    srv->port);
	f->creds = creds_new(NULL);
	if (f->creds == NULL)
		return -1;
	f->c = make_client(f, true);
	if (f->c == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	s3_client_free(f->c);
	creds_free(f->creds);
	free(f);
	return 0;
}

/* Returns the value of header `name` in a recorded request, or NULL. */
static const char *
rec_header(const struct rec *r, const char *name, char *out, size_t cap)
{
	const char *p = r->headers;

	while (*p) {
		const char *eol = strstr(p, "\r\n");
		size_t n = strlen(name);

		if (eol == NULL)
			break;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;

			while (*v == ' ')
				v++;
			snprintf(out, cap, "%.*s", (int)(eol - v), v);
			return out;
		}
		p = eol + 2;
	}
	return NULL;
}

static int
hexv(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ?
	    c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void
pct_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n + 1 && hexv(s[i + 1]) >= 0 &&
		    hexv(s[i + 2]) >= 0) {
			out[o++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
}

/* Re-signs the recorded request from the wire and compares signatures. */
static void
assert_signature_valid(const struct rec *r)
{
	static char path[8192], qbuf[8192], hv[16][4096], auth[4096],
	    date[64], sha[128], tok[4096];
	struct sigv4_kv headers[16], query[8];
	struct sigv4_credentials sc = { AK, SK, NULL };
	struct sigv4_request req = { .mode = SIGV4_MODE_S3, .service = "s3",
	    .region = "us-east-1" };
	struct sigv4_signer *s = sigv4_signer_new();
	struct sigv4_result res;
	char method[16], target[8192], *q, *sh, *save = NULL, *name;
	size_t nh = 0, nq = 0;
	struct tm tm = { 0 };

	assert_non_null(s);
	assert_int_equal(sscanf(r->line, "%15s %8191s", method, target), 2);
	q = strchr(target, '?');
	if (q != NULL)
		*q++ = '\0';
	pct_decode(target, strlen(target), path);
	if (q != NULL) {
		char *pair, *psave = NULL, *o = qbuf;

		for (pair = strtok_r(q, "&", &psave); pair;
		    pair = strtok_r(NULL, "&", &psave)) {
			char *eq = strchr(pair, '=');

			*eq++ = '\0';
			pct_decode(pair, strlen(pair), o);
			query[nq].name = o;
			o += strlen(o) + 1;
			pct_decode(eq, strlen(eq), o);
			query[nq].value = o;
			o += strlen(o) + 1;
			nq++;
		}
	}
	assert_non_null(rec_header(r, "Authorization", auth, sizeof(auth)));
	assert_non_null(rec_header(r, "x-amz-date", date, sizeof(date)));
	assert_non_null(rec_header(r, "x-amz-content-sha256", sha, sizeof(sha)));
	if (rec_header(r, "x-amz-security-token", tok, sizeof(tok)) != NULL)
		sc.session_token = tok;
	assert_non_null(strptime(date, "%Y%m%dT%H%M%SZ", &tm));
	sh = strstr(auth, "SignedHeaders=");
	assert_non_null(sh);
	sh += 14;
	sh[strcspn(sh, ",")] = '\0';
	for (name = strtok_r(sh, ";", &save); name;
	    name = strtok_r(NULL, ";", &save)) {
		if (strcmp(name, "x-amz-date") == 0 ||
		    strcmp(name, "x-amz-content-sha256") == 0 ||
		    strcmp(name, "x-amz-security-token") == 0)
			continue;
		assert_non_null(rec_header(r, name, hv[nh], sizeof(hv[nh])));
		headers[nh].name = name;
		headers[nh].value = hv[nh];
		nh++;
	}
	req.method = method;
	req.path = path;
	req.query = query;
	req.nquery = nq;
	req.headers = headers;
	req.nheaders = nh;
	req.payload_sha256 = sha;
	assert_int_equal(sigv4_sign(s, &sc, &req, timegm(&tm), &res), 0);
	{
		char again[4096];

		assert_non_null(rec_header(r, "Authorization", again,
		    sizeof(again)));
		assert_string_equal(res.authorization, again);
	}
	sigv4_signer_free(s);
}

/* ------------------------------------------------------------ tests */

static void
crc32c_base64_is_big_endian(void **state)
{
	char out[9];

	(void)state;
	s3_crc32c_base64(0xe3069283, out);	/* crc32c("123456789") */
	assert_string_equal(out, "4waSgw==");
	s3_crc32c_base64(0, out);
	assert_string_equal(out, "AAAAAA==");
}

static void
put_sends_signed_sha256_and_crc32c(void **state)
{
	struct fx *f = *state;
	static const char body[] = "hello, world";
	char v[512], hash[65], crc[9], expect[128];
	uint32_t c = crc32c(0, body, strlen(body));
	const struct rec *r;

	assert_int_equal(s3_put_object(f->c, "dir/a b+c/~x.y", body,
	    strlen(body), c), 0);
	r = server_rec(0);
	snprintf(expect, sizeof(expect),
	    "PUT /bucket/dir/a%%20b%%2Bc/~x.y HTTP/1.1");
	assert_string_equal(r->line, expect);
	snprintf(expect, sizeof(expect), "127.0.0.1:%d", srv->port);
	assert_string_equal(rec_header(r, "Host", v, sizeof(v)), expect);
	assert_int_equal(sigv4_sha256_hex(body, strlen(body), hash), 0);
	assert_string_equal(rec_header(r, "x-amz-content-sha256", v, sizeof(v)),
	    hash);
	assert_string_equal(r->body_sha, hash);
	s3_crc32c_base64(c, crc);
	assert_string_equal(rec_header(r, "x-amz-checksum-crc32c", v, sizeof(v)),
	    crc);
	assert_non_null(strstr(rec_header(r, "Authorization", v, sizeof(v)),
	    "SignedHeaders=host;x-amz-checksum-crc32c;x-amz-content-sha256;"
	    "x-amz-date,"));
	assert_null(rec_header(r, "Expect", v, sizeof(v)));
	assert_int_equal(s3_response(f->c)->status, 200);
	assert_int_equal(s3_response(f->c)->verdict.cls, S3ERR_OK);
	assert_signature_valid(r);
}

static void
put_keeps_dot_segments_and_reserved_characters(void **state)
{
	struct fx *f = *state;
	static const char *keys[] = {
		"a/../b/./c//d",
		"sp ace/+=&@:,;!$'()*/~tilde",
		"\xe2\x82\xac/\xf0\x9f\x98\x80/\xe4\xb8\xad\xe6\x96\x87",
		"q?x=1#frag%41",
	};

	for (size_t i = 0; i < 4; i++) {
		char raw[512];
		const struct rec *r;
		char target[1024];

		assert_int_equal(s3_put_object(f->c, keys[i], "x", 1, crc32c(0, "x", 1)), 0);
		r = server_rec(i);
		assert_int_equal(sscanf(r->line, "PUT %1023s", target), 1);
		pct_decode(target, strlen(target), raw);
		assert_true(strncmp(raw, "/bucket/", 8) == 0);
		assert_string_equal(raw + 8, keys[i]);
		assert_signature_valid(r);
	}
}

static void
virtual_hosted_addressing_puts_bucket_in_host(void **state)
{
	struct fx *f = *state;
	char resolve[128], endpoint[64], v[256], expect[128];
	struct s3_config cfg = { .endpoint = endpoint, .bucket = "bucket",
	    .path_style = false, .resolve = resolve };
	struct s3_client *c;
	const struct rec *r;

	snprintf(resolve, sizeof(resolve), "bucket.s3.test:%d:127.0.0.1",
	    srv->port);
	snprintf(endpoint, sizeof(endpoint), "http://s3.test:%d", srv->port);
	c = s3_client_new(&cfg, f->creds);
	assert_non_null(c);
	assert_int_equal(s3_put_object(c, "k/ey", "x", 1, crc32c(0, "x", 1)), 0);
	r = server_rec(0);
	assert_string_equal(r->line, "PUT /k/ey HTTP/1.1");
	snprintf(expect, sizeof(expect), "bucket.s3.test:%d", srv->port);
	assert_string_equal(rec_header(r, "Host", v, sizeof(v)), expect);
	assert_signature_valid(r);
	assert_int_equal(s3_head_bucket(c), 0);
	assert_string_equal(server_rec(1)->line, "HEAD / HTTP/1.1");
	s3_client_free(c);
}

static void
head_bucket_404_is_config(void **state)
{
	struct fx *f = *state;

	server_script(&(struct canned){ .status = 404 });
	assert_int_equal(s3_head_bucket(f->c), -EIO);
	assert_string_equal(server_rec(0)->line, "HEAD /bucket HTTP/1.1");
	assert_int_equal(s3_response(f->c)->status, 404);
	assert_int_equal(s3_response(f->c)->verdict.cls, S3ERR_CONFIG);
	assert_signature_valid(server_rec(0));
}

static void
put_503_slowdown_is_transient_with_retry_after(void **state)
{
	struct fx *f = *state;
	const struct s3_response *r;

	server_script(&(struct canned){ .status = 503,
	    .headers = "Retry-After: 3\r\nx-amz-request-id: REQ123\r\n",
	    .body = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>"
	    "<Message>Please reduce your request rate.</Message></Error>" });
	assert_int_equal(s3_put_object(f->c, "k", "x", 1, crc32c(0, "x", 1)), -EIO);
	r = s3_response(f->c);
	assert_int_equal(r->status, 503);
	assert_string_equal(r->error.code, "SlowDown");
	assert_int_equal(r->verdict.cls, S3ERR_TRANSIENT);
	assert_true(r->has_retry_after);
	assert_int_equal(r->retry_after_ms, 3000);
	assert_string_equal(r->request_id, "REQ123");
	/* The next request starts from a clean response. */
	assert_int_equal(s3_put_object(f->c, "k", "x", 1, crc32c(0, "x", 1)), 0);
	assert_false(s3_response(f->c)->has_retry_after);
	assert_string_equal(s3_response(f->c)->error.code, "");
}

static void
signature_mismatch_403_is_config(void **state)
{
	struct fx *f = *state;

	server_script(&(struct canned){ .status = 403,
	    .body = "<Error><Code>SignatureDoesNotMatch</Code></Error>" });
	assert_int_equal(s3_put_object(f->c, "k", "x", 1, crc32c(0, "x", 1)), -EIO);
	assert_int_equal(s3_response(f->c)->verdict.cls, S3ERR_CONFIG);
}

static void
put_with_object_headers_signs_every_header_it_sends(void **state)
{
	struct fx *f = *state;
	const struct sigv4_kv hdrs[] = {
		{ "Content-Type", "text/plain; charset=utf-8" },
		{ "Cache-Control", "no-cache,  max-age=0" },
		{ "Content-Encoding", "gzip" },
		{ "x-amz-storage-class", "STANDARD_IA" },
		{ "x-amz-server-side-encryption", "aws:kms" },
		{ "x-amz-server-side-encryption-aws-kms-key-id", "alias/logs" },
		{ "x-amz-acl", "bucket-owner-full-control" },
		{ "x-amz-tagging", "env=prod%20%26%20more" },
		{ "x-amz-meta-Team", "Platform" },
	};
	char v[512], auth[4096];

	assert_int_equal(s3_prepare_put_headers(f->c, "logs/a.txt", "hi", 2, crc32c(0, "hi", 2), hdrs,
	    sizeof(hdrs) / sizeof(hdrs[0])), 0);
	assert_int_equal(s3_perform(f->c), 0);
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		assert_non_null(rec_header(server_rec(0), hdrs[i].name, v, sizeof(v)));
		assert_string_equal(v, hdrs[i].value);
	}
	assert_non_null(rec_header(server_rec(0), "Authorization", auth, sizeof(auth)));
	assert_non_null(strstr(auth, "SignedHeaders=cache-control;content-encoding;content-type;"
	    "host;x-amz-acl;x-amz-checksum-crc32c;x-amz-content-sha256;x-amz-date;"
	    "x-amz-meta-team;x-amz-server-side-encryption;"
	    "x-amz-server-side-encryption-aws-kms-key-id;x-amz-storage-class;x-amz-tagging,"));
	assert_signature_valid(server_rec(0));
	/* Over the cap: refused, nothing sent. */
	{
		struct sigv4_kv many[S3_PUT_HEADERS_MAX + 1];
		for (size_t i = 0; i < S3_PUT_HEADERS_MAX + 1; i++)
			many[i] = hdrs[0];
		assert_int_equal(s3_prepare_put_headers(f->c, "k", "x", 1, crc32c(0, "x", 1), many,
		    S3_PUT_HEADERS_MAX + 1), -E2BIG);
	}
}

static void
wrong_region_answers_name_the_bucket_region(void **state)
{
	struct fx *f = *state;
	char auth[4096];

	/* HEAD: no body, the header only. */
	server_script(&(struct canned){ .status = 301,
	    .headers = "x-amz-bucket-region: eu-west-1\r\n" });
	assert_int_equal(s3_head_bucket(f->c), -EIO);
	assert_string_equal(s3_response(f->c)->bucket_region, "eu-west-1");
	assert_int_equal(s3_response(f->c)->verdict.cls, S3ERR_CONFIG);
	/* PUT: the XML's Endpoint only. */
	server_script(&(struct canned){ .status = 301,
	    .body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PermanentRedirect</Code>"
	    "<Message>The bucket you are attempting to access must be addressed using the specified endpoint."
	    "</Message><Endpoint>bucket.s3.ap-southeast-2.amazonaws.com</Endpoint>"
	    "<Bucket>bucket</Bucket></Error>" });
	assert_int_equal(s3_put_object(f->c, "k", "x", 1, crc32c(0, "x", 1)), -EIO);
	assert_string_equal(s3_response(f->c)->bucket_region, "ap-southeast-2");
	/* 400 AuthorizationHeaderMalformed names it in <Region>. */
	server_script(&(struct canned){ .status = 400,
	    .body = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' "
	    "is wrong; expecting 'eu-central-1'</Message><Region>eu-central-1</Region></Error>" });
	assert_int_equal(s3_put_object(f->c, "k", "x", 1, crc32c(0, "x", 1)), -EIO);
	assert_string_equal(s3_response(f->c)->bucket_region, "eu-central-1");
	assert_int_equal(s3_response(f->c)->verdict.cls, S3ERR_CONFIG);
	/* A hostile region is not taken. */
	server_script(&(struct canned){ .status = 301,
	    .headers = "x-amz-bucket-region: ../../evil\r\n" });
	assert_int_equal(s3_head_bucket(f->c), -EIO);
	assert_string_equal(s3_response(f->c)->bucket_region, "");
	/* Switching signs for the new region. */
	assert_int_equal(s3_set_region(f->c, "eu-west-1"), 0);
	assert_string_equal(s3_region(f->c), "eu-west-1");
	assert_int_equal(s3_put_object(f->c, "k", "x", 1, crc32c(0, "x", 1)), 0);
	assert_non_null(rec_header(server_rec(4), "Authorization", auth, sizeof(auth)));
	assert_non_null(strstr(auth, "/eu-west-1/s3/aws4_request"));
	assert_int_equal(s3_set_region(f->c, "Bad Region"), -EINVAL);
}

static void
keep_alive_reuses_one_connection(void **state)
{
	struct fx *f = *state;
	long total = 0;

	for (int i = 0; i < 20; i++) {
		assert_int_equal(s3_put_object(f->c, "k", "abc", 3, crc32c(0, "abc", 3)), 0);
		total += s3_response(f->c)->new_connections;
		if (i == 0)
			assert_int_equal(s3_response(f->c)->new_connections, 1);
	}
	assert_int_equal(total, 1);
	assert_int_equal(srv->accepts, 1);
	/* Other request kinds on the same handle reuse it too. */
	assert_int_equal(s3_head_bucket(f->c), 0);
	assert_int_equal(s3_response(f->c)->new_connections, 0);
	assert_int_equal(srv->accepts, 1);
}

static void
reconnects_after_server_closes_connection(void **state)
{
	struct fx *f = *state;

	server_script(&(struct canned){ .status = 200, .close_after = true });
	assert_int_equal(s3_put_object(f->c, "k", "abc", 3, crc32c(0, "abc", 3)), 0);
	assert_int_equal(s3_put_object(f->c, "k", "abc", 3, crc32c(0, "abc", 3)), 0);
	assert_int_equal(s3_response(f->c)->new_connections, 1);
	assert_int_equal(srv->accepts, 2);
}

static void
response_body_is_capped(void **state)
{
	struct fx *f = *state;
	static char big[100000];
	const struct s3_response *r;
	int n;

	n = snprintf(big, sizeof(big), "<Error><Code>InternalError</Code>"
	    "<Message>");
	memset(big + n, 'm', sizeof(big) - (size_t)n - 1);
	server_script(&(struct canned){ .status = 500, .body = big });
	assert_int_equal(s3_put_object(f->c, "k", "x", 1, crc32c(0, "x", 1)), -EIO);
	r = s3_response(f->c);
	assert_int_equal(r->body_len, S3_BODY_MAX);
	assert_true(r->body_truncated);
	assert_string_equal(r->error.code, "InternalError");
	assert_int_equal(r->verdict.cls, S3ERR_TRANSIENT);
	/* The connection survived the drop of the excess. */
	assert_int_equal(s3_put_object(f->c, "k", "x", 1, crc32c(0, "x", 1)), 0);
	assert_int_equal(s3_response(f->c)->new_connections, 0);
}

static void
memory_does_not_grow_per_request(void **state)
{
	struct fx *f = *state;
	struct mallinfo2 before, after;
	char body[4096];

	memset(body, 'b', sizeof(body));
	/* Warm up: curl's caches and the connection. */
	for (int i = 0; i < 50; i++)
		assert_int_equal(s3_put_object(f->c, "warm", body, sizeof(body),
		    crc32c(0, body, sizeof(body))), 0);
	before = mallinfo2();
	for (int i = 0; i < 2000; i++) {
		char key[64];

		snprintf(key, sizeof(key), "k/%d", i);
		assert_int_equal(s3_put_object(f->c, key, body, sizeof(body),
		    crc32c(0, body, sizeof(body))), 0);
	}
	after = mallinfo2();
	print_message("figure: s3 heap in use before=%zu after=%zu bytes "
	    "(2000 PUTs)\n", before.uordblks, after.uordblks);
	/* Sanitizer allocators do not report through mallinfo. */
	if (before.uordblks == 0)
		return;
	assert_true(after.uordblks < before.uordblks + 16384);
}

static void
connect_refused_is_transient(void **state)
{
	struct fx *f = *state;
	struct s3_config cfg = { .bucket = "bucket", .path_style = true };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	char endpoint[64];
	struct s3_client *c;
	int fd;

	/* A port that was just free: nothing listens there. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d",
	    ntohs(a.sin_port));
	cfg.endpoint = endpoint;
	c = s3_client_new(&cfg, f->creds);
	assert_non_null(c);
	assert_int_equal(s3_put_object(c, "k", "x", 1, crc32c(0, "x", 1)), -EIO);
	assert_int_equal(s3_response(c)->curl_code, CURLE_COULDNT_CONNECT);
	assert_int_equal(s3_response(c)->verdict.cls, S3ERR_TRANSIENT);
	s3_client_free(c);
}

static void
stalled_response_times_out_as_transient(void **state)
{
	struct fx *f = *state;
	struct s3_config cfg = { .endpoint = f->endpoint, .bucket = "bucket",
	    .path_style = true, .low_speed_time_s = 1 };
	struct s3_client *c = s3_client_new(&cfg, f->creds);

	assert_non_null(c);
	server_script(&(struct canned){ .status = 200, .delay_ms = 2500 });
	assert_int_equal(s3_put_object(c, "k", "x", 1, crc32c(0, "x", 1)), -EIO);
	assert_int_equal(s3_response(c)->curl_code, CURLE_OPERATION_TIMEDOUT);
	assert_int_equal(s3_response(c)->verdict.cls, S3ERR_TRANSIENT);
	s3_client_free(c);
}

static void
server_reset_without_answer_is_transient(void **state)
{
	struct fx *f = *state;

	server_script(&(struct canned){ .reset = true });
	assert_int_equal(s3_put_object(f->c, "k", "x", 1, crc32c(0, "x", 1)), -EIO);
	assert_int_equal(s3_response(f->c)->curl_code, CURLE_GOT_NOTHING);
	assert_int_equal(s3_response(f->c)->verdict.cls, S3ERR_TRANSIENT);
	assert_int_equal(s3_put_object(f->c, "k", "x", 1, crc32c(0, "x", 1)), 0);
}

static void
insecure_tls_option_logs_a_warning(void **state)
{
	struct fx *f = *state;
	struct s3_config cfg = { .endpoint = "https://s3.example.com",
	    .bucket = "bucket", .tls_insecure = true };
	char path[] = "/tmp/test_s3_log.XXXXXX";
	struct s3_client *c;
	char buf[4096];
	ssize_t n;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	log_set_fd(fd);
	c = s3_client_new(&cfg, f->creds);
	log_set_fd(2);
	assert_non_null(c);
	s3_client_free(c);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "level=warn"));
	assert_non_null(strstr(buf, "verification is OFF"));
	close(fd);
	unlink(path);
}

static void
tls_verification_rejects_a_plain_http_server(void **state)
{
	struct fx *f = *state;
	char endpoint[64];
	struct s3_config cfg = { .endpoint = endpoint, .bucket = "bucket",
	    .path_style = true };
	struct s3_client *c;

	snprintf(endpoint, sizeof(endpoint), "https://127.0.0.1:%d", srv->port);
	c = s3_client_new(&cfg, f->creds);
	assert_non_null(c);
	assert_int_equal(s3_put_object(c, "k", "x", 1, crc32c(0, "x", 1)), -EIO);
	assert_int_not_equal(s3_response(c)->curl_code, CURLE_OK);
	s3_client_free(c);
}

static void
multipart_create_upload_complete(void **state)
{
	struct fx *f = *state;
	char upload_id[S3_UPLOAD_ID_MAX], v[256], crc[9];
	struct s3_part parts[2];
	const struct rec *r;

	server_script(&(struct canned){ .status = 200, .body =
	    "<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>b"
	    "</Bucket><Key>k</Key><UploadId>up/1&amp;2</UploadId>"
	    "</InitiateMultipartUploadResult>" });
	server_script(&(struct canned){ .status = 200,
	    .headers = "ETag: \"etag-one\"\r\n" });
	server_script(&(struct canned){ .status = 200,
	    .headers = "ETag: \"etag-<two>\"\r\n" });
	server_script(&(struct canned){ .status = 200, .body =
	    "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag>"
	    "</CompleteMultipartUploadResult>" });

	assert_int_equal(s3_create_multipart(f->c, "big obj", true, upload_id,
	    sizeof(upload_id)), 0);
	assert_string_equal(upload_id, "up/1&2");
	r = server_rec(0);
	assert_string_equal(r->line, "POST /bucket/big%20obj?uploads= HTTP/1.1");
	assert_string_equal(rec_header(r, "x-amz-checksum-algorithm", v,
	    sizeof(v)), "CRC32C");
	assert_null(rec_header(r, "Content-Type", v, sizeof(v)));
	assert_signature_valid(r);

	assert_int_equal(s3_upload_part(f->c, "big obj", upload_id, 1, "aaaa", 4,
	    true, crc32c(0, "aaaa", 4), &parts[0]), 0);
	assert_string_equal(parts[0].etag, "\"etag-one\"");
	r = server_rec(1);
	assert_string_equal(r->line, "PUT /bucket/big%20obj?partNumber=1&"
	    "uploadId=up%2F1%262 HTTP/1.1");
	assert_signature_valid(r);
	assert_int_equal(s3_upload_part(f->c, "big obj", upload_id, 2, "bb", 2,
	    true, crc32c(0, "bb", 2), &parts[1]), 0);

	assert_int_equal(s3_complete_multipart(f->c, "big obj", upload_id,
	    parts, 2), 0);
	r = server_rec(3);
	assert_string_equal(r->line,
	    "POST /bucket/big%20obj?uploadId=up%2F1%262 HTTP/1.1");
	{
		char expect[1024], c2[9];

		s3_crc32c_base64(crc32c(0, "aaaa", 4), crc);
		s3_crc32c_base64(crc32c(0, "bb", 2), c2);
		snprintf(expect, sizeof(expect),
		    "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/"
		    "doc/2006-03-01/\"><Part><PartNumber>1</PartNumber><ETag>"
		    "\"etag-one\"</ETag><ChecksumCRC32C>%s</ChecksumCRC32C>"
		    "</Part><Part><PartNumber>2</PartNumber><ETag>"
		    "\"etag-&lt;two&gt;\"</ETag><ChecksumCRC32C>%s"
		    "</ChecksumCRC32C></Part></CompleteMultipartUpload>", crc, c2);
		assert_string_equal(r->body, expect);
	}
	assert_signature_valid(r);
}

static void
complete_with_error_inside_200_fails(void **state)
{
	struct fx *f = *state;
	struct s3_part p = { .number = 1, .etag = "\"e\"" };

	server_script(&(struct canned){ .status = 200, .body =
	    "<?xml version=\"1.0\"?>\n\n<Error><Code>InternalError</Code>"
	    "</Error>" });
	assert_int_equal(s3_complete_multipart(f->c, "k", "id", &p, 1), -EIO);
	assert_int_equal(s3_response(f->c)->verdict.cls, S3ERR_TRANSIENT);
	server_script(&(struct canned){ .status = 200, .body =
	    "<Error><Code>SomethingUnheardOf</Code></Error>" });
	assert_int_equal(s3_complete_multipart(f->c, "k", "id", &p, 1), -EIO);
	assert_int_equal(s3_response(f->c)->verdict.cls, S3ERR_TRANSIENT);
}

static void
complete_refuses_unordered_parts(void **state)
{
	struct fx *f = *state;
	struct s3_part p[2] = { { .number = 2, .etag = "a" },
	    { .number = 1, .etag = "b" } };

	assert_int_equal(s3_complete_multipart(f->c, "k", "id", p, 2), -EINVAL);
	assert_int_equal(s3_complete_multipart(f->c, "k", "id", p, 0), -EINVAL);
	assert_int_equal(srv->nreq, 0);
}

static void
abort_multipart_sends_delete(void **state)
{
	struct fx *f = *state;

	server_script(&(struct canned){ .status = 204 });
	assert_int_equal(s3_abort_multipart(f->c, "k", "u p"), 0);
	assert_string_equal(server_rec(0)->line,
	    "DELETE /bucket/k?uploadId=u%20p HTTP/1.1");
	assert_signature_valid(server_rec(0));
}

/* The prepare-only forms send nothing; the caller performs, and the
 * results (UploadId, ETags) are filled in when the transfer finishes. */
static void
prepared_multipart_sends_nothing_until_performed(void **state)
{
	struct fx *f = *state;
	const struct sigv4_kv hdrs[] = {
		{ "Content-Type", "image/png" },
		{ "x-amz-meta-team", "Platform" },
	};
	char upload_id[S3_UPLOAD_ID_MAX], v[512];
	static const char body[] = "aaaabbbbcc";
	struct s3_part parts[3];
	const struct rec *r;

	server_script(&(struct canned){ .status = 200, .body =
	    "<InitiateMultipartUploadResult><UploadId>id&lt;7&gt;</UploadId>"
	    "</InitiateMultipartUploadResult>" });
	for (int i = 0; i < 3; i++)
		server_script(&(struct canned){ .status = 200, .headers =
		    i == 0 ? "ETag: \"e1\"\r\n" : i == 1 ? "ETag: \"e2\"\r\n" :
		    "ETag: \"e3\"\r\n" });
	server_script(&(struct canned){ .status = 200, .body =
	    "<CompleteMultipartUploadResult><ETag>\"x-3\"</ETag>"
	    "</CompleteMultipartUploadResult>" });

	assert_int_equal(s3_prepare_create_multipart(f->c, "img/a.png", false,
	    hdrs, 2, upload_id, sizeof(upload_id)), 0);
	assert_int_equal(srv->nreq, 0);
	assert_string_equal(upload_id, "");
	assert_int_equal(s3_perform(f->c), 0);
	assert_string_equal(upload_id, "id<7>");
	r = server_rec(0);
	assert_string_equal(r->line, "POST /bucket/img/a.png?uploads= HTTP/1.1");
	assert_string_equal(rec_header(r, "Content-Type", v, sizeof(v)),
	    "image/png");
	assert_null(strstr(strcasestr(r->headers, "Content-Type:") + 1,
	    "Content-Type:"));
	assert_string_equal(rec_header(r, "x-amz-meta-team", v, sizeof(v)),
	    "Platform");
	assert_null(rec_header(r, "x-amz-checksum-algorithm", v, sizeof(v)));
	assert_non_null(strstr(rec_header(r, "Authorization", v, sizeof(v)),
	    "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;"
	    "x-amz-meta-team,"));
	assert_signature_valid(r);

	for (int i = 0; i < 3; i++) {
		const char *p = body + 4 * i;
		size_t n = i < 2 ? 4 : 2;

		assert_int_equal(s3_prepare_upload_part(f->c, "img/a.png",
		    upload_id, i + 1, p, n, false, 0, &parts[i]), 0);
		assert_int_equal(srv->nreq, (size_t)(1 + i));
		assert_int_equal(s3_perform(f->c), 0);
		assert_int_equal(parts[i].number, i + 1);
		assert_false(parts[i].has_crc32c);
		assert_int_equal(server_rec((size_t)(1 + i))->body_len, n);
		assert_memory_equal(server_rec((size_t)(1 + i))->body, p, n);
	}
	assert_string_equal(parts[0].etag, "\"e1\"");
	assert_string_equal(parts[2].etag, "\"e3\"");
	assert_string_equal(server_rec(3)->line, "PUT /bucket/img/a.png?"
	    "partNumber=3&uploadId=id%3C7%3E HTTP/1.1");
	assert_signature_valid(server_rec(3));

	assert_int_equal(s3_prepare_complete_multipart(f->c, "img/a.png",
	    upload_id, parts, 3), 0);
	assert_int_equal(srv->nreq, 4);
	assert_int_equal(s3_perform(f->c), 0);
	assert_non_null(strstr(server_rec(4)->body, "<Part><PartNumber>3"
	    "</PartNumber><ETag>\"e3\"</ETag></Part></CompleteMultipartUpload>"));
	assert_signature_valid(server_rec(4));

	assert_int_equal(s3_prepare_abort_multipart(f->c, "img/a.png",
	    upload_id), 0);
	assert_int_equal(srv->nreq, 5);
	assert_int_equal(s3_perform(f->c), 0);
	assert_string_equal(server_rec(5)->line,
	    "DELETE /bucket/img/a.png?uploadId=id%3C7%3E HTTP/1.1");
	assert_signature_valid(server_rec(5));
}

static void
prepared_create_without_upload_id_in_answer_fails(void **state)
{
	struct fx *f = *state;
	char upload_id[S3_UPLOAD_ID_MAX];
	struct sigv4_kv many[S3_PUT_HEADERS_MAX + 1];

	server_script(&(struct canned){ .status = 200, .body =
	    "<InitiateMultipartUploadResult></InitiateMultipartUploadResult>" });
	assert_int_equal(s3_prepare_create_multipart(f->c, "k", true, NULL, 0,
	    upload_id, sizeof(upload_id)), 0);
	assert_int_equal(s3_perform(f->c), -EIO);
	assert_int_equal(s3_response(f->c)->verdict.cls, S3ERR_TRANSIENT);
	assert_string_equal(upload_id, "");
	for (size_t i = 0; i < S3_PUT_HEADERS_MAX + 1; i++)
		many[i] = (struct sigv4_kv){ "x-amz-meta-a", "b" };
	assert_int_equal(s3_prepare_create_multipart(f->c, "k", true, many,
	    S3_PUT_HEADERS_MAX + 1, upload_id, sizeof(upload_id)), -E2BIG);
	assert_int_equal(s3_prepare_upload_part(f->c, "k", "", 1, "x", 1,
	    false, 0, &(struct s3_part){ 0 }), -EINVAL);
	assert_int_equal(s3_prepare_abort_multipart(f->c, "k", NULL), -EINVAL);
	assert_int_equal(srv->nreq, 1);
}

struct listed {
	struct s3_client *abort_with;	/* aborts each upload when set */
	int stop_after;			/* 0: never */
	size_t n;
	char keys[8][64];
	char ids[8][64];
};

static int
on_listed(const char *key, const char *upload_id, void *arg)
{
	struct listed *l = arg;

	assert_true(l->n < 8);
	snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
	snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", upload_id);
	l->n++;
	if (l->abort_with != NULL)
		assert_int_equal(s3_abort_multipart(l->abort_with, key,
		    upload_id), 0);
	return l->stop_after != 0 && (int)l->n == l->stop_after ? -ECANCELED : 0;
}

#define LIST_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
	"<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/" \
	"2006-03-01/\"><Bucket>bucket</Bucket>"
#define UPLOAD(k, id) "<Upload><Key>" k "</Key><UploadId>" id "</UploadId>" \
	"<Initiator><ID>i</ID></Initiator><StorageClass>STANDARD" \
	"</StorageClass></Upload>"

static void
list_multipart_uploads_follows_pages_and_decodes_keys(void **state)
{
	struct fx *f = *state;
	struct listed l = { 0 };

	server_script(&(struct canned){ .status = 200, .body = LIST_HEAD
	    "<KeyMarker></KeyMarker><NextKeyMarker>p/b&amp;c</NextKeyMarker>"
	    "<NextUploadIdMarker>id+2</NextUploadIdMarker><IsTruncated>true"
	    "</IsTruncated>" UPLOAD("p/a&lt;1&gt;", "id1")
	    UPLOAD("p/b&amp;c", "id+2") "</ListMultipartUploadsResult>" });
	server_script(&(struct canned){ .status = 200, .body = LIST_HEAD
	    "<NextKeyMarker/><IsTruncated>false</IsTruncated>"
	    UPLOAD("p/&quot;d&apos;", "id3") "</ListMultipartUploadsResult>" });

	assert_int_equal(s3_list_multipart_uploads(f->c, "p/", on_listed, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.keys[0], "p/a<1>");
	assert_string_equal(l.ids[0], "id1");
	assert_string_equal(l.keys[1], "p/b&c");
	assert_string_equal(l.ids[1], "id+2");
	assert_string_equal(l.keys[2], "p/\"d'");
	assert_int_equal(srv->nreq, 2);
	assert_string_equal(server_rec(0)->line,
	    "GET /bucket?max-uploads=10&prefix=p%2F&uploads= HTTP/1.1");
	assert_string_equal(server_rec(1)->line,
	    "GET /bucket?key-marker=p%2Fb%26c&max-uploads=10&prefix=p%2F&"
	    "upload-id-marker=id%2B2&uploads= HTTP/1.1");
	assert_signature_valid(server_rec(0));
	assert_signature_valid(server_rec(1));
}

/* Swift's s3api leaves the Next*Marker empty on a truncated page of one
 * upload: the listing goes on after the last upload it saw. */
static void
list_without_next_markers_goes_on_after_the_last_upload(void **state)
{
	struct fx *f = *state;
	struct listed l = { 0 };

	server_script(&(struct canned){ .status = 200, .body = LIST_HEAD
	    "<NextKeyMarker></NextKeyMarker><NextUploadIdMarker>"
	    "</NextUploadIdMarker><IsTruncated>true</IsTruncated>"
	    UPLOAD("k1", "u1") "</ListMultipartUploadsResult>" });
	server_script(&(struct canned){ .status = 200, .body = LIST_HEAD
	    "<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>" });
	assert_int_equal(s3_list_multipart_uploads(f->c, NULL, on_listed, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(server_rec(0)->line,
	    "GET /bucket?max-uploads=10&uploads= HTTP/1.1");
	assert_string_equal(server_rec(1)->line, "GET /bucket?key-marker=k1&"
	    "max-uploads=10&upload-id-marker=u1&uploads= HTTP/1.1");
}

static void
list_whose_markers_do_not_move_fails_with_eproto(void **state)
{
	struct fx *f = *state;
	struct listed l = { 0 };
	const char *same = LIST_HEAD "<NextKeyMarker>k</NextKeyMarker>"
	    "<NextUploadIdMarker>u</NextUploadIdMarker><IsTruncated>true"
	    "</IsTruncated></ListMultipartUploadsResult>";

	server_script(&(struct canned){ .status = 200, .body = same });
	server_script(&(struct canned){ .status = 200, .body = same });
	assert_int_equal(s3_list_multipart_uploads(f->c, "", on_listed, &l),
	    -EPROTO);
	assert_int_equal(srv->nreq, 2);
	/* A truncated page with no upload and no marker cannot go on. */
	server_script(&(struct canned){ .status = 200, .body = LIST_HEAD
	    "<IsTruncated>true</IsTruncated></ListMultipartUploadsResult>" });
	assert_int_equal(s3_list_multipart_uploads(f->c, "", on_listed, &l),
	    -EPROTO);
	/* Not a listing at all. */
	server_script(&(struct canned){ .status = 200, .body = "<Other/>" });
	assert_int_equal(s3_list_multipart_uploads(f->c, "", on_listed, &l),
	    -EPROTO);
	/* An upload without its id. */
	server_script(&(struct canned){ .status = 200, .body = LIST_HEAD
	    "<IsTruncated>false</IsTruncated><Upload><Key>k</Key></Upload>"
	    "</ListMultipartUploadsResult>" });
	assert_int_equal(s3_list_multipart_uploads(f->c, "", on_listed, &l),
	    -EPROTO);
	assert_int_equal(l.n, 0);
}

/* A page that overflows the response buffer is never half-reported: it is
 * asked for again with half as many uploads, down to one. */
static void
list_asks_for_fewer_uploads_when_a_page_does_not_fit(void **state)
{
	struct fx *f = *state;
	static char big[S3_BODY_MAX + 512];
	struct listed l = { 0 };
	int n;

	n = snprintf(big, sizeof(big), LIST_HEAD "<IsTruncated>false"
	    "</IsTruncated>" UPLOAD("k", "u") "<Upload><Key>");
	memset(big + n, 'x', sizeof(big) - (size_t)n - 1);
	server_script(&(struct canned){ .status = 200, .body = big });
	server_script(&(struct canned){ .status = 200, .body = LIST_HEAD
	    "<IsTruncated>false</IsTruncated>" UPLOAD("k", "u")
	    "</ListMultipartUploadsResult>" });
	assert_int_equal(s3_list_multipart_uploads(f->c, "", on_listed, &l), 0);
	assert_int_equal(l.n, 1);
	assert_non_null(strstr(server_rec(1)->line, "max-uploads=5&"));

	for (int i = 0; i < 4; i++)	/* 10, 5, 2, 1 */
		server_script(&(struct canned){ .status = 200, .body = big });
	assert_int_equal(s3_list_multipart_uploads(f->c, "", on_listed, &l),
	    -EFBIG);
	assert_int_equal(l.n, 1);
	assert_non_null(strstr(server_rec(5)->line, "max-uploads=1&"));
}

static void
list_callback_may_abort_with_the_same_client_or_stop(void **state)
{
	struct fx *f = *state;
	struct listed l = { .abort_with = f->c };
	const char *page = LIST_HEAD "<IsTruncated>false</IsTruncated>"
	    UPLOAD("a", "1") UPLOAD("b", "2") UPLOAD("c", "3")
	    "</ListMultipartUploadsResult>";

	server_script(&(struct canned){ .status = 200, .body = page });
	for (int i = 0; i < 3; i++)
		server_script(&(struct canned){ .status = 204 });
	assert_int_equal(s3_list_multipart_uploads(f->c, "", on_listed, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(server_rec(3)->line,
	    "DELETE /bucket/c?uploadId=3 HTTP/1.1");

	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	server_script(&(struct canned){ .status = 200, .body = page });
	assert_int_equal(s3_list_multipart_uploads(f->c, "", on_listed, &l),
	    -ECANCELED);
	assert_int_equal(l.n, 2);
}

static void
list_on_a_server_without_it_fails_with_eio(void **state)
{
	struct fx *f = *state;
	struct listed l = { 0 };
	char prefix[S3_KEY_MAX + 2];

	server_script(&(struct canned){ .status = 501, .body = "<Error><Code>"
	    "NotImplemented</Code></Error>" });
	assert_int_equal(s3_list_multipart_uploads(f->c, "", on_listed, &l),
	    -EIO);
	assert_string_equal(s3_response(f->c)->error.code, "NotImplemented");
	memset(prefix, 'p', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	assert_int_equal(s3_list_multipart_uploads(f->c, prefix, on_listed, &l),
	    -ENAMETOOLONG);
	assert_int_equal(s3_list_multipart_uploads(f->c, "", NULL, &l), -EINVAL);
	assert_int_equal(srv->nreq, 1);
}

static void
get_object_reads_body_and_refuses_overflow(void **state)
{
	struct fx *f = *state;
	char buf[64];
	size_t len = 0;

	server_script(&(struct canned){ .status = 200, .body = "0123456789" });
	server_script(&(struct canned){ .status = 200, .body = "0123456789" });
	server_script(&(struct canned){ .status = 404, .body =
	    "<Error><Code>NoSuchKey</Code></Error>" });
	assert_int_equal(s3_get_object(f->c, "k", buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 10);
	assert_memory_equal(buf, "0123456789", 10);
	assert_int_equal(s3_get_object(f->c, "k", buf, 4, &len), -EFBIG);
	assert_int_equal(len, 4);
	assert_int_equal(s3_get_object(f->c, "k", buf, sizeof(buf), &len), -EIO);
	assert_int_equal(len, 0);
	assert_string_equal(s3_response(f->c)->error.code, "NoSuchKey");
}

static void
key_checks_send_nothing(void **state)
{
	struct fx *f = *state;
	char key[S3_KEY_MAX + 2];

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_int_equal(s3_put_object(f->c, "", "x", 1, crc32c(0, "x", 1)), -EINVAL);
	assert_int_equal(s3_put_object(f->c, NULL, "x", 1, crc32c(0, "x", 1)), -EINVAL);
	assert_int_equal(s3_put_object(f->c, key, "x", 1, crc32c(0, "x", 1)), -ENAMETOOLONG);
	key[S3_KEY_MAX] = '\0';
	assert_int_equal(s3_put_object(f->c, "k", NULL, 1, 0), -EINVAL);
	assert_int_equal(srv->nreq, 0);
	assert_int_equal(s3_put_object(f->c, key, "x", 1, crc32c(0, "x", 1)), 0);
}

/* Writes a credentials file; keep_identity rewrites it in place with the
 * old mtime, so that only a forced reload can notice the change. */
static void
write_creds(const char *path, const char *ak, const char *sk, const char *tok,
    bool keep_identity)
{
	struct timespec times[2];
	struct stat st;
	FILE *fp;

	if (keep_identity)
		assert_int_equal(stat(path, &st), 0);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n"
	    "aws_session_token=%s\n", ak, sk, tok);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);
	if (keep_identity) {
		times[0] = st.st_atim;
		times[1] = st.st_mtim;
		assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
	}
}

static struct creds *
file_creds(char *dir, char *path, size_t cap)
{
	struct creds *cr;

	assert_non_null(mkdtemp(dir));
	snprintf(path, cap, "%s/credentials", dir);
	write_creds(path, "AKIAOLDOLDOLDOLD", "old", "tok1", false);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	cr = creds_new(&(struct creds_options){ .file = path });
	setenv("AWS_ACCESS_KEY_ID", AK, 1);
	setenv("AWS_SECRET_ACCESS_KEY", SK, 1);
	assert_non_null(cr);
	return cr;
}

static void
expired_token_reloads_credentials(void **state)
{
	struct fx *f = *state;
	char dir[] = "/tmp/test_s3_creds.XXXXXX", path[128], v[512];
	struct s3_client *c;
	struct creds *cr = file_creds(dir, path, sizeof(path));

	c = s3_client_new(&(struct s3_config){ .endpoint = f->endpoint,
	    .bucket = "bucket", .path_style = true }, cr);
	assert_non_null(c);
	assert_int_equal(s3_put_object(c, "k", "x", 1, crc32c(0, "x", 1)), 0);

	/* A credential helper rewrites the file in place within the same
	 * second (nothing a stat can see), then S3 says the token expired. */
	write_creds(path, "AKIANEWNEWNEWNEW", "new", "tok2", true);
	server_script(&(struct canned){ .status = 400, .body =
	    "<Error><Code>ExpiredToken</Code></Error>" });
	assert_int_equal(s3_put_object(c, "k", "x", 1, crc32c(0, "x", 1)), -EIO);
	assert_true(s3_response(c)->verdict.reload_credentials);
	assert_string_equal(rec_header(server_rec(1), "x-amz-security-token", v,
	    sizeof(v)), "tok1");
	assert_int_equal(creds_generation(cr), 2);
	assert_int_equal(s3_put_object(c, "k", "x", 1, crc32c(0, "x", 1)), 0);
	assert_non_null(strstr(rec_header(server_rec(2), "Authorization", v,
	    sizeof(v)), "Credential=AKIANEWNEWNEWNEW/"));
	assert_string_equal(rec_header(server_rec(2), "x-amz-security-token", v,
	    sizeof(v)), "tok2");

	s3_client_free(c);
	creds_free(cr);
	unlink(path);
	rmdir(dir);
}

static void
changed_credentials_file_is_used_within_a_second(void **state)
{
	struct fx *f = *state;
	char dir[] = "/tmp/test_s3_creds.XXXXXX", path[128], tmp[160], v[512];
	struct s3_client *c;
	struct creds *cr = file_creds(dir, path, sizeof(path));

	c = s3_client_new(&(struct s3_config){ .endpoint = f->endpoint,
	    .bucket = "bucket", .path_style = true }, cr);
	assert_non_null(c);
	assert_int_equal(s3_put_object(c, "k", "x", 1, crc32c(0, "x", 1)), 0);
	/* Replaced by rename, as credential helpers do: a new inode. */
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	write_creds(tmp, "AKIANEWNEWNEWNEW", "new", "tok2", false);
	assert_int_equal(rename(tmp, path), 0);
	usleep(1100 * 1000);
	assert_int_equal(s3_put_object(c, "k", "x", 1, crc32c(0, "x", 1)), 0);
	assert_non_null(strstr(rec_header(server_rec(1), "Authorization", v,
	    sizeof(v)), "Credential=AKIANEWNEWNEWNEW/"));
	assert_int_equal(creds_generation(cr), 2);

	s3_client_free(c);
	creds_free(cr);
	unlink(path);
	rmdir(dir);
}

static void
client_new_refuses_bad_configuration(void **state)
{
	struct fx *f = *state;
	static const struct s3_config bad[] = {
		{ .endpoint = "ftp://127.0.0.1", .bucket = "b" },
		{ .endpoint = "http://127.0.0.1/prefix", .bucket = "b" },
		{ .endpoint = "not a url at all", .bucket = "b" },
		{ .endpoint = "http://127.0.0.1", .bucket = "" },
		{ .endpoint = "http://127.0.0.1", .bucket = "a/b" },
		{ .endpoint = "http://127.0.0.1", .bucket = NULL },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_null(s3_client_new(&bad[i], f->creds));
		assert_int_equal(errno, EINVAL);
	}
}

/* Runs m until every transfer came back; returns how many did, and the
 * clients in the order they finished. */
static size_t
multi_run(struct s3_multi *m, struct s3_client **done, int *rcs, size_t cap)
{
	size_t n = 0;
	int spins = 0;

	while (s3_multi_count(m) > 0 && spins++ < 500) {
		struct s3_client *c;
		void *user;
		int rc;

		assert_int_equal(s3_multi_wait(m, 20), 0);
		while ((c = s3_multi_done(m, &rc, &user)) != NULL) {
			assert_ptr_equal(user, c);
			assert_true(n < cap);
			done[n] = c;
			rcs[n++] = rc;
		}
	}
	return n;
}

static void
multi_runs_several_clients_at_once(void **state)
{
	struct fx *f = *state;
	struct s3_client *c2 = make_client(f, true), *done[2];
	struct s3_multi *m = s3_multi_new(4);
	int rcs[2];

	assert_non_null(c2);
	assert_non_null(m);
	assert_int_equal(s3_prepare_put(f->c, "m1", "one", 3, crc32c(0, "one", 3)), 0);
	assert_int_equal(s3_prepare_put(c2, "m2", "two", 3, crc32c(0, "two", 3)), 0);
	assert_int_equal(s3_multi_start(m, f->c, f->c), 0);
	assert_int_equal(s3_multi_start(m, c2, c2), 0);
	assert_int_equal(s3_multi_count(m), 2);
	assert_int_equal(multi_run(m, done, rcs, 2), 2);
	assert_int_equal(rcs[0], 0);
	assert_int_equal(rcs[1], 0);
	assert_true((done[0] == f->c && done[1] == c2) || (done[0] == c2 && done[1] == f->c));
	assert_int_equal(srv->nreq, 2);
	s3_multi_free(m);
	s3_client_free(c2);
}

/* Prepares a PUT of body with crc, sets byte change_at (if not -1) to 'b'
 * between the prepare and the send, runs it, and returns its result. */
static int
put_changed_after_prepare(struct fx *f, const char *key, char *body,
    size_t len, uint32_t crc, long change_at)
{
	struct s3_multi *m = s3_multi_new(4);
	struct s3_client *done[1];
	int rcs[1];

	assert_non_null(m);
	assert_int_equal(s3_prepare_put(f->c, key, body, len, crc), 0);
	if (change_at >= 0)
		body[change_at] = 'b';
	assert_int_equal(s3_multi_start(m, f->c, f->c), 0);
	assert_int_equal(multi_run(m, done, rcs, 1), 1);
	s3_multi_free(m);
	return rcs[0];
}

/* The bytes change between the CRC check and the send (a producer
 * scribbling over a record that is being uploaded): the transfer is
 * aborted before its last byte, so the server has no complete request to
 * store, and the answer says why. The body is larger than the ones copied
 * at the prepare (those are checked on the copy, below). */
static void
multi_aborts_a_body_that_no_longer_matches_its_crc(void **state)
{
	struct fx *f = *state;
	static char body[5000];

	memset(body, 'a', sizeof(body));
	assert_int_equal(put_changed_after_prepare(f, "changed", body,
	    sizeof(body), crc32c(0, body, sizeof(body)), sizeof(body) - 1), -EIO);
	assert_true(s3_response(f->c)->body_changed);
	assert_int_equal(s3_response(f->c)->verdict.cls, S3ERR_MESSAGE);
	assert_int_equal(srv->nreq, 0);
}

/* A small body is copied at the prepare and checked on the copy: bytes
 * that change after it are not what is sent, and the object is the one
 * the CRC was computed over, sent as one PUT without a form
 * Content-Type. */
static void
small_body_sends_the_copy_it_checked(void **state)
{
	struct fx *f = *state;
	static char body[1000], want[1000];
	const struct rec *r;
	char v[64];

	memset(body, 'a', sizeof(body));
	memcpy(want, body, sizeof(want));
	assert_int_equal(put_changed_after_prepare(f, "small", body,
	    sizeof(body), crc32c(0, body, sizeof(body)), sizeof(body) - 1), 0);
	assert_int_equal(srv->nreq, 1);
	r = server_rec(0);
	assert_string_equal(r->line, "PUT /bucket/small HTTP/1.1");
	assert_int_equal(r->body_len, sizeof(want));
	assert_memory_equal(r->body, want, sizeof(want));
	assert_null(rec_header(r, "Content-Type", v, sizeof(v)));
	assert_signature_valid(r);
}

/* A small body that no longer matches its CRC at the prepare is not sent
 * from the copy: it goes the read callback's way, which aborts it. */
static void
small_body_changed_before_the_prepare_is_aborted(void **state)
{
	struct fx *f = *state;
	static char body[1000];
	uint32_t crc;

	memset(body, 'a', sizeof(body));
	crc = crc32c(0, body, sizeof(body));
	body[0] = 'b';
	assert_int_equal(put_changed_after_prepare(f, "small", body,
	    sizeof(body), crc, -1), -EIO);
	assert_true(s3_response(f->c)->body_changed);
	assert_int_equal(srv->nreq, 0);
}

/* Threads of this process, from /proc/self/task. */
static int
thread_count(void)
{
	char line[256];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

static size_t
server_requests(void)
{
	size_t n;

	pthread_mutex_lock(&srv->mu);
	n = srv->nreq;
	pthread_mutex_unlock(&srv->mu);
	return n;
}

/* As many connections as the server takes (CONN_MAX): shards 0 and 3 are
 * the caller's loop, 1 and 2 the transport thread's. */
#define SPREAD CONN_MAX

/* Prepares a PUT on each of n clients and starts them on m. */
static void
start_puts(struct s3_multi *m, struct s3_client **c, int n)
{
	for (int i = 0; i < n; i++) {
		char key[32];

		snprintf(key, sizeof(key), "spread-%d", i);
		assert_int_equal(s3_prepare_put(c[i], key, "body", 4, crc32c(0, "body", 4)), 0);
		assert_int_equal(s3_multi_start(m, c[i], c[i]), 0);
	}
}

/* Over 64 connections the multi has a transport thread that runs two
 * shards in three: clients started one after the other go to both loops,
 * and every transfer comes back once, finished, to the caller. */
static void
multi_over_64_connections_shares_the_transfers_with_a_transport_thread(void **state)
{
	struct fx *f = *state;
	struct s3_client *c[SPREAD], *done[SPREAD];
	int before = thread_count(), rcs[SPREAD];
	struct s3_multi *m = s3_multi_new(192);
	cpu_set_t cpus;
	size_t n;

	assert_non_null(m);
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) < 2) {
		s3_multi_free(m);
		skip();	/* one CPU: no transport thread */
	}
	assert_int_equal(thread_count(), before + 1);
	for (int i = 0; i < SPREAD; i++)
		assert_non_null(c[i] = make_client(f, true));
	for (int round = 0; round < 2; round++) {
		start_puts(m, c, SPREAD);
		assert_int_equal(s3_multi_count(m), SPREAD);
		n = multi_run(m, done, rcs, SPREAD);
		assert_int_equal(n, SPREAD);
		assert_int_equal(s3_multi_count(m), 0);
		for (int i = 0; i < SPREAD; i++) {
			int seen = 0;

			assert_int_equal(rcs[i], 0);
			for (size_t k = 0; k < n; k++)
				seen += done[k] == c[i];
			assert_int_equal(seen, 1);
		}
	}
	assert_int_equal(server_requests(), 2 * SPREAD);
	for (int i = 0; i < SPREAD; i++)
		s3_multi_cancel(m, c[i]);
	s3_multi_free(m);
	assert_int_equal(thread_count(), before);
	for (int i = 0; i < SPREAD; i++)
		s3_client_free(c[i]);
}

/* A cancel takes a transfer back wherever it is: queued for the transport
 * thread, in its multi waiting for an answer, or finished and not yet
 * read. None of them comes back from s3_multi_done(), the count goes to
 * zero, and the clients work again afterwards. */
static void
multi_cancel_takes_transfers_back_from_the_transport_thread(void **state)
{
	struct fx *f = *state;
	struct s3_client *c[SPREAD], *done[SPREAD];
	struct s3_multi *m = s3_multi_new(192);
	int rcs[SPREAD], spins = 0;
	struct timespec a, b;

	assert_non_null(m);
	for (int i = 0; i < SPREAD; i++)
		assert_non_null(c[i] = make_client(f, true));

	/* Queued: cancelled before any wait. */
	start_puts(m, c, SPREAD);
	for (int i = 0; i < SPREAD; i++)
		s3_multi_cancel(m, c[i]);
	assert_int_equal(s3_multi_count(m), 0);
	assert_int_equal(multi_run(m, done, rcs, SPREAD), 0);

	/* In flight: the server holds every answer for 300 ms. */
	for (int i = 0; i < SPREAD; i++)
		server_script(&(struct canned){ .status = 200, .delay_ms = 300 });
	start_puts(m, c, SPREAD);
	while (server_requests() == 0 && spins++ < 200)
		assert_int_equal(s3_multi_wait(m, 10), 0);
	assert_true(server_requests() > 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < SPREAD; i++)
		s3_multi_cancel(m, c[i]);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 5);
	assert_int_equal(s3_multi_count(m), 0);
	for (int i = 0; i < 20; i++) {
		struct s3_client *got;
		void *user;
		int rc;

		assert_int_equal(s3_multi_wait(m, 20), 0);
		got = s3_multi_done(m, &rc, &user);
		assert_null(got);
	}

	/* Afterwards: every client uploads again. The test server, asleep in
	 * the answers it still holds, may not have seen the cancelled
	 * connections close, and refuses connections over CONN_MAX (an empty
	 * reply): a client that got one tries again, in later rounds. */
	{
		bool ok[SPREAD] = { false };
		int left = SPREAD;

		for (int round = 0; round < 20 && left > 0; round++) {
			struct s3_client *again[SPREAD];
			int n = 0;
			size_t got;

			for (int i = 0; i < SPREAD; i++)
				if (!ok[i])
					again[n++] = c[i];
			start_puts(m, again, n);
			got = multi_run(m, done, rcs, SPREAD);
			assert_int_equal(got, (size_t)n);
			for (size_t k = 0; k < got; k++)
				for (int i = 0; i < SPREAD; i++)
					if (done[k] == c[i] && rcs[k] == 0 && !ok[i]) {
						ok[i] = true;
						left--;
					}
			if (left > 0)
				(void)s3_multi_wait(m, 200);
		}
		assert_int_equal(left, 0);
	}
	s3_multi_free(m);
	for (int i = 0; i < SPREAD; i++)
		s3_client_free(c[i]);
}

/* One handle, kept from PUT to PUT, sends a copied body, then one read
 * from the caller's buffer, then a copied one again: each request carries
 * its own bytes, length and headers, none left over from the one before. */
static void
one_handle_sends_copied_and_streamed_bodies_in_turn(void **state)
{
	struct fx *f = *state;
	static char body[3][8000];
	static const size_t len[3] = { 1000, 8000, 1000 };
	char v[64];

	for (int i = 0; i < 3; i++) {
		const struct rec *r;

		memset(body[i], 'x' + i, len[i]);
		assert_int_equal(s3_put_object(f->c, "turn", body[i], len[i],
		    crc32c(0, body[i], len[i])), 0);
		r = server_rec((size_t)i);
		assert_int_equal(r->body_len, len[i]);
		assert_memory_equal(r->body, body[i], len[i]);
		assert_null(rec_header(r, "Content-Type", v, sizeof(v)));
		assert_null(rec_header(r, "Expect", v, sizeof(v)));
		assert_signature_valid(r);
	}
}

/* A request's headers are laid out next to a small body's copy; a session
 * token too long for the space left moves them to a list of their own,
 * part way through, and the request goes out whole and signed. */
static void
headers_too_long_for_the_body_page_are_sent_whole(void **state)
{
	struct fx *f = *state;
	char dir[] = "/tmp/test_s3_creds.XXXXXX", path[128];
	static char tok[3601], v[4096], body[1000];
	struct s3_client *c;
	struct creds *cr = file_creds(dir, path, sizeof(path));

	memset(tok, 'T', sizeof(tok) - 1);
	write_creds(path, AK, SK, tok, false);
	assert_true(creds_reload(cr, true) >= 0);
	c = s3_client_new(&(struct s3_config){ .endpoint = f->endpoint,
	    .bucket = "bucket", .path_style = true }, cr);
	assert_non_null(c);
	memset(body, 'b', sizeof(body));
	for (int i = 0; i < 2; i++) {
		const struct rec *r;

		assert_int_equal(s3_put_object(c, "long", body, sizeof(body),
		    crc32c(0, body, sizeof(body))), 0);
		r = server_rec((size_t)i);
		assert_string_equal(rec_header(r, "x-amz-security-token", v,
		    sizeof(v)), tok);
		assert_int_equal(r->body_len, sizeof(body));
		assert_memory_equal(r->body, body, sizeof(body));
		assert_signature_valid(r);
	}
	s3_client_free(c);
	creds_free(cr);
	unlink(path);
	rmdir(dir);
}

/* A body read from a shared mapping that is truncated while the transport
 * thread sends it (a ring's shm object that a producer truncates): the
 * ring's SIGBUS guard puts zero pages there, as on the caller's thread,
 * the bytes no longer match their CRC, and the transfer is aborted; the
 * process lives on. With every signal blocked on that thread, the fault
 * killed it. */
static void
transport_thread_survives_a_body_truncated_under_it(void **state)
{
	struct fx *f = *state;
	const size_t len = 256 * 1024;
	struct s3_client *c[2], *done[2];
	struct s3_multi *m;
	_Atomic int lost = 0;
	unsigned char *p;
	cpu_set_t cpus;
	int fd, rcs[2];
	size_t n;

	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) < 2)
		skip();	/* one CPU: no transport thread */
	/* Under valgrind this needs --vex-iropt-register-updates=
	 * allregs-at-mem-access: by default the copy that the fault
	 * interrupts resumes with stale registers, and memcheck reports
	 * writes past curl's buffer that the plain build and ASan never see. */
	fd = memfd_create("test_s3_truncated", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	memset(p, 'r', len);
	assert_int_equal(ring_guard_install(), 0);
	assert_int_equal(ring_guard_add(p, len, &lost), 0);
	m = s3_multi_new(192);
	assert_non_null(m);
	for (int i = 0; i < 2; i++)
		assert_non_null(c[i] = make_client(f, true));

	/* The first client goes to shard 0 (the caller's loop), the second
	 * to shard 1 (the transport thread's). */
	assert_int_equal(s3_prepare_put(c[0], "whole", "x", 1, crc32c(0, "x", 1)), 0);
	assert_int_equal(s3_multi_start(m, c[0], c[0]), 0);
	assert_int_equal(s3_prepare_put(c[1], "truncated", p, len, crc32c(0, p, len)), 0);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(s3_multi_start(m, c[1], c[1]), 0);
	n = multi_run(m, done, rcs, 2);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (done[i] == c[0]) {
			assert_int_equal(rcs[i], 0);
			continue;
		}
		assert_int_equal(rcs[i], -EIO);
		assert_true(s3_response(c[1])->body_changed);
	}
	assert_int_equal(atomic_load(&lost), 1);

	s3_multi_free(m);
	for (int i = 0; i < 2; i++)
		s3_client_free(c[i]);
	ring_guard_remove(p);
	munmap(p, len);
	close(fd);
}

static void
multi_wakeup_interrupts_a_wait(void **state)
{
	struct s3_multi *m = s3_multi_new(1);
	struct timespec a, b;

	(void)state;
	assert_non_null(m);
	s3_multi_wakeup(m);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(s3_multi_wait(m, 10000), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 5);
	s3_multi_free(m);
}

/* The engine's path for a large message: the create, then the parts in
 * flight together on their own clients, then the complete, each through
 * an s3_multi; the UploadId and every part's ETag are filled in when the
 * multi hands the client back. */
static void
prepared_multipart_parts_run_in_parallel_through_a_multi(void **state)
{
	struct fx *f = *state;
	struct s3_multi *m = s3_multi_new(4);
	/* Its own clients, freed before the multi: a client that still
	 * holds the multi's share keeps curl_share_cleanup() from freeing it. */
	struct s3_client *mc = make_client(f, true), *pc[3], *done[3];
	char upload_id[S3_UPLOAD_ID_MAX];
	static char body[3][2000];
	struct s3_part parts[3];
	bool seen[3] = { false };
	int rcs[3];

	assert_non_null(m);
	assert_non_null(mc);
	server_script(&(struct canned){ .status = 200, .body =
	    "<InitiateMultipartUploadResult><UploadId>up-9</UploadId>"
	    "</InitiateMultipartUploadResult>" });
	server_script(&(struct canned){ .status = 200, .headers = "ETag: \"e1\"\r\n" });
	server_script(&(struct canned){ .status = 200, .headers = "ETag: \"e2\"\r\n" });
	server_script(&(struct canned){ .status = 200, .headers = "ETag: \"e3\"\r\n" });
	server_script(&(struct canned){ .status = 200, .body =
	    "<CompleteMultipartUploadResult/>" });

	assert_int_equal(s3_prepare_create_multipart(mc, "big", true, NULL, 0,
	    upload_id, sizeof(upload_id)), 0);
	assert_int_equal(s3_multi_start(m, mc, mc), 0);
	assert_int_equal(multi_run(m, done, rcs, 1), 1);
	assert_int_equal(rcs[0], 0);
	assert_string_equal(upload_id, "up-9");

	for (int i = 0; i < 3; i++) {
		memset(body[i], 'a' + i, sizeof(body[i]));
		pc[i] = make_client(f, true);
		assert_non_null(pc[i]);
		assert_int_equal(s3_prepare_upload_part(pc[i], "big", upload_id,
		    i + 1, body[i], sizeof(body[i]), true,
		    crc32c(0, body[i], sizeof(body[i])), &parts[i]), 0);
		assert_int_equal(s3_multi_start(m, pc[i], pc[i]), 0);
	}
	assert_int_equal(s3_multi_count(m), 3);
	assert_int_equal(multi_run(m, done, rcs, 3), 3);
	for (int i = 0; i < 3; i++) {
		int e;

		assert_int_equal(rcs[i], 0);
		assert_int_equal(parts[i].number, i + 1);
		assert_true(parts[i].has_crc32c);
		/* The server answers in arrival order: which part got which
		 * ETag is not fixed, but each got one of its own. */
		assert_int_equal(sscanf(parts[i].etag, "\"e%d\"", &e), 1);
		assert_true(e >= 1 && e <= 3 && !seen[e - 1]);
		seen[e - 1] = true;
	}

	assert_int_equal(s3_prepare_complete_multipart(mc, "big", upload_id,
	    parts, 3), 0);
	assert_int_equal(s3_multi_start(m, mc, mc), 0);
	assert_int_equal(multi_run(m, done, rcs, 1), 1);
	assert_int_equal(rcs[0], 0);
	assert_string_equal(server_rec(4)->line,
	    "POST /bucket/big?uploadId=up-9 HTTP/1.1");
	for (int i = 0; i < 3; i++) {
		char want[64];

		snprintf(want, sizeof(want), "<PartNumber>%d</PartNumber><ETag>%s",
		    i + 1, parts[i].etag);
		assert_non_null(strstr(server_rec(4)->body, want));
		s3_client_free(pc[i]);
	}
	assert_signature_valid(server_rec(4));
	s3_client_free(mc);
	s3_multi_free(m);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc32c_base64_is_big_endian),
		T(put_sends_signed_sha256_and_crc32c),
		T(put_keeps_dot_segments_and_reserved_characters),
		T(virtual_hosted_addressing_puts_bucket_in_host),
		T(head_bucket_404_is_config),
		T(put_503_slowdown_is_transient_with_retry_after),
		T(signature_mismatch_403_is_config),
		T(put_with_object_headers_signs_every_header_it_sends),
		T(wrong_region_answers_name_the_bucket_region),
		T(keep_alive_reuses_one_connection),
		T(reconnects_after_server_closes_connection),
		T(response_body_is_capped),
		T(memory_does_not_grow_per_request),
		T(connect_refused_is_transient),
		T(stalled_response_times_out_as_transient),
		T(server_reset_without_answer_is_transient),
		T(insecure_tls_option_logs_a_warning),
		T(tls_verification_rejects_a_plain_http_server),
		T(multipart_create_upload_complete),
		T(complete_with_error_inside_200_fails),
		T(complete_refuses_unordered_parts),
		T(abort_multipart_sends_delete),
		T(prepared_multipart_sends_nothing_until_performed),
		T(prepared_create_without_upload_id_in_answer_fails),
		T(list_multipart_uploads_follows_pages_and_decodes_keys),
		T(list_without_next_markers_goes_on_after_the_last_upload),
		T(list_whose_markers_do_not_move_fails_with_eproto),
		T(list_asks_for_fewer_uploads_when_a_page_does_not_fit),
		T(list_callback_may_abort_with_the_same_client_or_stop),
		T(list_on_a_server_without_it_fails_with_eio),
		T(prepared_multipart_parts_run_in_parallel_through_a_multi),
		T(get_object_reads_body_and_refuses_overflow),
		T(key_checks_send_nothing),
		T(expired_token_reloads_credentials),
		T(changed_credentials_file_is_used_within_a_second),
		T(client_new_refuses_bad_configuration),
		T(multi_runs_several_clients_at_once),
		T(multi_aborts_a_body_that_no_longer_matches_its_crc),
		T(small_body_sends_the_copy_it_checked),
		T(small_body_changed_before_the_prepare_is_aborted),
		T(multi_wakeup_interrupts_a_wait),
		T(transport_thread_survives_a_body_truncated_under_it),
		T(one_handle_sends_copied_and_streamed_bodies_in_turn),
		T(headers_too_long_for_the_body_page_are_sent_whole),
		T(multi_over_64_connections_shares_the_transfers_with_a_transport_thread),
		T(multi_cancel_takes_transfers_back_from_the_transport_thread),
	};
	int rc;

	if (s3_global_init() != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, server_start, server_stop);
	s3_global_cleanup();
	return rc;
}
