/* test_sigv4.c -- tests uploader/sigv4.c: AWS vectors, S3 rules, caps */
/*
 * The generic-mode tests replay the AWS SigV4 test suite copied into
 * tests/sigv4-testsuite (Apache-2.0, see its README for the cases that are
 * inconsistent in that copy). The S3-mode tests pin the S3 canonicalization
 * rules. The botocore comparison lives in
 * sign_matches_botocore_for_generated_requests, which reads the request
 * specs that tests/it/sigv4_botocore.sh generates and is skipped when
 * SIGV4_ORACLE_FILE is not set.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>

#include "sigv4.h"

/* 2015-08-30T12:36:00Z, the time of every vector. */
#define VECTOR_TIME ((time_t)1440938160)
#define VECTOR_AK "AKIDEXAMPLE"
#define VECTOR_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define VECTOR_TOKEN \
	"6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

enum {
	V_SKIP_CREQ = 1,		/* .creq disagrees with .sts */
	V_DROP_CONTENT_LENGTH = 2,	/* .sts signed without it */
	V_SESSION_TOKEN = 4,		/* token not in .req */
	V_SKIP_STS = 8,			/* .sts disagrees with .creq */
	V_SKIP_AUTHZ = 16,		/* .authz signs that .sts */
};

static char *
read_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len_out != NULL)
		*len_out = (size_t)n;
	return buf;
}

static char *
read_vector(const char *dir, const char *ext)
{
	const char *top = getenv("S3RING_TOP");
	const char *base = strrchr(dir, '/');
	char path[1024];
	char *s;
	size_t n = 0;

	base = base ? base + 1 : dir;
	snprintf(path, sizeof(path), "%s/tests/sigv4-testsuite/%s/%s.%s",
	    top ? top : ".", dir, base, ext);
	s = read_file(path, &n);
	if (s == NULL)
		fail_msg("cannot read %s", path);
	/* Some files end in a newline and some do not. */
	while (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	return s;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XX in place (the vectors' query is partly pre-encoded). */
static void
percent_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

struct parsed_req {
	char *text;
	char method[16];
	char *path;
	struct sigv4_kv query[16];
	size_t nquery;
	struct sigv4_kv headers[16];
	char *folded[16];	/* values rebuilt from continuation lines */
	size_t nheaders;
	const char *token;
	const char *body;
};

static void
parse_req(struct parsed_req *r, char *text, int flags)
{
	char *line, *save = NULL, *target, *q;
	bool in_body = false;

	memset(r, 0, sizeof(*r));
	r->text = text;
	r->body = "";

	/* The body, if any, follows the first empty line. */
	q = strstr(text, "\n\n");
	if (q != NULL) {
		*q = '\0';
		r->body = q + 2;
		in_body = true;
	}
	(void)in_body;

	line = strtok_r(text, "\n", &save);
	assert_non_null(line);
	target = strchr(line, ' ');
	assert_non_null(target);
	*target++ = '\0';
	snprintf(r->method, sizeof(r->method), "%s", line);
	q = strrchr(target, ' ');	/* " HTTP/1.1" */
	assert_non_null(q);
	*q = '\0';
	r->path = target;
	q = strchr(target, '?');
	if (q != NULL) {
		char *pair, *psave = NULL;

		*q++ = '\0';
		for (pair = strtok_r(q, "&", &psave); pair != NULL;
		    pair = strtok_r(NULL, "&", &psave)) {
			char *eq = strchr(pair, '=');

			assert_true(r->nquery < 16);
			if (eq != NULL)
				*eq++ = '\0';
			percent_decode(pair);
			if (eq != NULL)
				percent_decode(eq);
			r->query[r->nquery].name = pair;
			r->query[r->nquery].value = eq ? eq : "";
			r->nquery++;
		}
	}

	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *colon;

		if (line[0] == ' ' || line[0] == '\t') {
			/* obs-fold: the value continues, joined by a space. */
			size_t i = r->nheaders - 1, n;
			char *v;

			assert_true(r->nheaders > 0);
			n = strlen(r->headers[i].value) + strlen(line) + 2;
			v = malloc(n);
			assert_non_null(v);
			snprintf(v, n, "%s %s", r->headers[i].value, line);
			free(r->folded[i]);
			r->folded[i] = v;
			r->headers[i].value = v;
			continue;
		}
		colon = strchr(line, ':');
		assert_non_null(colon);
		*colon++ = '\0';
		if (strcasecmp(line, "X-Amz-Date") == 0) {
			/* The signer stamps the date from its time argument;
			 * check that it is the one in the file. */
			assert_string_equal(colon, "20150830T123600Z");
			continue;
		}
		if (strcasecmp(line, "X-Amz-Security-Token") == 0) {
			r->token = colon;
			continue;
		}
		if ((flags & V_DROP_CONTENT_LENGTH) &&
		    strcasecmp(line, "Content-Length") == 0)
			continue;
		assert_true(r->nheaders < 16);
		r->headers[r->nheaders].name = line;
		r->headers[r->nheaders].value = colon;
		r->nheaders++;
	}
	if (flags & V_SESSION_TOKEN)
		r->token = VECTOR_TOKEN;
}

static void
parsed_req_free(struct parsed_req *r)
{
	for (size_t i = 0; i < 16; i++)
		free(r->folded[i]);
	free(r->text);
}

static void
run_vector(const char *dir, int flags)
{
	struct sigv4_signer *s = sigv4_signer_new();
	struct sigv4_credentials creds = { VECTOR_AK, VECTOR_SK, NULL };
	struct sigv4_result res;
	struct sigv4_request req;
	struct parsed_req pr;
	char body_hash[65];
	char *creq, *sts, *authz;

	assert_non_null(s);
	parse_req(&pr, read_vector(dir, "req"), flags);
	creds.session_token = pr.token;
	assert_int_equal(sigv4_sha256_hex(pr.body, strlen(pr.body), body_hash), 0);

	req = (struct sigv4_request){
		.mode = SIGV4_MODE_GENERIC,
		.method = pr.method,
		.path = pr.path,
		.query = pr.query,
		.nquery = pr.nquery,
		.headers = pr.headers,
		.nheaders = pr.nheaders,
		.payload_sha256 = body_hash,
		.region = "us-east-1",
		.service = "service",
	};
	assert_int_equal(sigv4_sign(s, &creds, &req, VECTOR_TIME, &res), 0);

	creq = read_vector(dir, "creq");
	sts = read_vector(dir, "sts");
	authz = read_vector(dir, "authz");
	if (!(flags & V_SKIP_CREQ))
		assert_string_equal(res.canonical_request, creq);
	if (!(flags & V_SKIP_STS))
		assert_string_equal(res.string_to_sign, sts);
	if (!(flags & V_SKIP_AUTHZ))
		assert_string_equal(res.authorization, authz);
	free(creq);
	free(sts);
	free(authz);
	parsed_req_free(&pr);
	sigv4_signer_free(s);
}

/*
 * Every case of the suite. The two form-urlencoded cases are internally
 * inconsistent in this copy of the suite (see its README):
 * post-x-www-form-urlencoded's .sts and .authz were computed without the
 * content-length its .creq lists, so the test drops that header and checks
 * the .sts and .authz; post-x-www-form-urlencoded-parameters has an .sts
 * whose hash no canonical request we could construct produces, so only its
 * .creq is checked (our signature is the HMAC of the string to sign built
 * from that .creq).
 */
#define VECTORS(X)							\
	X(get_header_key_duplicate, "get-header-key-duplicate", 0)	\
	X(get_header_value_multiline, "get-header-value-multiline", 0)	\
	X(get_header_value_order, "get-header-value-order", 0)		\
	X(get_header_value_trim, "get-header-value-trim", 0)		\
	X(get_unreserved, "get-unreserved", 0)				\
	X(get_utf8, "get-utf8", 0)					\
	X(get_vanilla, "get-vanilla", 0)				\
	X(get_vanilla_empty_query_key, "get-vanilla-empty-query-key", 0) \
	X(get_vanilla_query, "get-vanilla-query", 0)			\
	X(get_vanilla_query_order_encoded,				\
	    "get-vanilla-query-order-encoded", 0)			\
	X(get_vanilla_query_order_key, "get-vanilla-query-order-key", 0) \
	X(get_vanilla_query_order_key_case,				\
	    "get-vanilla-query-order-key-case", 0)			\
	X(get_vanilla_query_order_value,				\
	    "get-vanilla-query-order-value", 0)			\
	X(get_vanilla_query_unreserved,					\
	    "get-vanilla-query-unreserved", 0)				\
	X(get_vanilla_utf8_query, "get-vanilla-utf8-query", 0)		\
	X(get_vanilla_with_session_token,				\
	    "get-vanilla-with-session-token", V_SESSION_TOKEN)		\
	X(get_relative, "normalize-path/get-relative", 0)		\
	X(get_relative_relative, "normalize-path/get-relative-relative", 0) \
	X(get_slash, "normalize-path/get-slash", 0)			\
	X(get_slash_dot_slash, "normalize-path/get-slash-dot-slash", 0)	\
	X(get_slash_pointless_dot,					\
	    "normalize-path/get-slash-pointless-dot", 0)		\
	X(get_slashes, "normalize-path/get-slashes", 0)			\
	X(get_space, "normalize-path/get-space", 0)			\
	X(post_header_key_case, "post-header-key-case", 0)		\
	X(post_header_key_sort, "post-header-key-sort", 0)		\
	X(post_header_value_case, "post-header-value-case", 0)		\
	X(post_sts_header_after, "post-sts-token/post-sts-header-after", 0) \
	X(post_sts_header_before,					\
	    "post-sts-token/post-sts-header-before", 0)			\
	X(post_vanilla, "post-vanilla", 0)				\
	X(post_vanilla_empty_query_value,				\
	    "post-vanilla-empty-query-value", 0)			\
	X(post_vanilla_query, "post-vanilla-query", 0)			\
	X(post_x_www_form_urlencoded, "post-x-www-form-urlencoded",	\
	    V_SKIP_CREQ | V_DROP_CONTENT_LENGTH)			\
	X(post_x_www_form_urlencoded_parameters,			\
	    "post-x-www-form-urlencoded-parameters", V_SKIP_STS | V_SKIP_AUTHZ)

#define DEFINE_VECTOR_TEST(fn, dir, flags)				\
	static void sign_matches_vector_##fn(void **state)		\
	{								\
		(void)state;						\
		run_vector(dir, flags);					\
	}
VECTORS(DEFINE_VECTOR_TEST)

/* ---------------------------------------------------------------- S3 mode */

#define DOC_TIME ((time_t)1369353600)	/* 2013-05-24T00:00:00Z */
static const struct sigv4_credentials doc_creds = {
	"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL,
};

static int
sign_s3(struct sigv4_signer *s, const struct sigv4_credentials *c,
    const char *method, const char *path, const struct sigv4_kv *q, size_t nq,
    const struct sigv4_kv *h, size_t nh, const char *payload,
    struct sigv4_result *out)
{
	struct sigv4_request req = {
		.mode = SIGV4_MODE_S3,
		.method = method,
		.path = path,
		.query = q,
		.nquery = nq,
		.headers = h,
		.nheaders = nh,
		.payload_sha256 = payload,
		.region = "us-east-1",
		.service = "s3",
	};

	return sigv4_sign(s, c, &req, DOC_TIME, out);
}

static int
setup_signer(void **state)
{
	*state = sigv4_signer_new();
	return *state == NULL ? -1 : 0;
}

static int
teardown_signer(void **state)
{
	sigv4_signer_free(*state);
	return 0;
}

/* The examples in the S3 API reference ("Signature Calculations for the
 * Authorization Header: Transferring Payload in a Single Chunk"). */
static void
s3_sign_matches_aws_docs_get_object_example(void **state)
{
	struct sigv4_kv h[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Range", "bytes=0-9" },
	};
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "GET", "/test.txt", NULL,
	    0, h, 2, SIGV4_EMPTY_SHA256, &r), 0);
	assert_string_equal(r.authorization,
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
	    "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
	    "x-amz-content-sha256;x-amz-date, Signature="
	    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	assert_string_equal(r.amz_date, "20130524T000000Z");
}

static void
s3_sign_matches_aws_docs_put_object_example(void **state)
{
	static const char body[] = "Welcome to Amazon S3.";
	struct sigv4_kv h[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
	};
	struct sigv4_result r;
	char hash[65];

	assert_int_equal(sigv4_sha256_hex(body, strlen(body), hash), 0);
	assert_string_equal(hash,
	    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	assert_int_equal(sign_s3(*state, &doc_creds, "PUT", "/test$file.text",
	    NULL, 0, h, 3, hash, &r), 0);
	assert_string_equal(r.canonical_path, "/test%24file.text");
	assert_string_equal(r.authorization,
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
	    "us-east-1/s3/aws4_request, SignedHeaders=date;host;"
	    "x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature="
	    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void
s3_sign_matches_aws_docs_list_objects_example(void **state)
{
	struct sigv4_kv h[] = { { "Host", "examplebucket.s3.amazonaws.com" } };
	struct sigv4_kv q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "GET", "/", q, 2, h, 1,
	    SIGV4_EMPTY_SHA256, &r), 0);
	assert_string_equal(r.canonical_query, "max-keys=2&prefix=J");
	assert_non_null(strstr(r.authorization, "Signature="
	    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
}

static void
s3_sign_matches_aws_docs_get_lifecycle_example(void **state)
{
	struct sigv4_kv h[] = { { "Host", "examplebucket.s3.amazonaws.com" } };
	struct sigv4_kv q[] = { { "lifecycle", NULL } };
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "GET", "/", q, 1, h, 1,
	    SIGV4_EMPTY_SHA256, &r), 0);
	assert_string_equal(r.canonical_query, "lifecycle=");
	assert_non_null(strstr(r.authorization, "Signature="
	    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
}

static void
s3_encodes_each_key_byte_once_and_keeps_slashes(void **state)
{
	struct sigv4_kv h[] = { { "host", "h" } };
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "PUT",
	    "/b/a b/+=&@:,;!$'()*~/%41/\xc3\xa9", NULL, 0, h, 1,
	    SIGV4_EMPTY_SHA256, &r), 0);
	assert_string_equal(r.canonical_path,
	    "/b/a%20b/%2B%3D%26%40%3A%2C%3B%21%24%27%28%29%2A~/%2541/%C3%A9");
}

static void
s3_does_not_normalize_dot_segments_or_slashes(void **state)
{
	struct sigv4_kv h[] = { { "host", "h" } };
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "GET",
	    "/b/my-object//example//photo.user/./../", NULL, 0, h, 1,
	    SIGV4_EMPTY_SHA256, &r), 0);
	assert_string_equal(r.canonical_path,
	    "/b/my-object//example//photo.user/./../");
}

static void
s3_always_signs_content_sha256(void **state)
{
	struct sigv4_kv h[] = { { "host", "h" } };
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "PUT", "/b/k", NULL, 0,
	    h, 1, SIGV4_UNSIGNED_PAYLOAD, &r), 0);
	assert_non_null(strstr(r.canonical_request,
	    "\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n"));
	assert_non_null(strstr(r.authorization,
	    "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
	assert_non_null(strstr(r.canonical_request, "\nUNSIGNED-PAYLOAD") );
}

static void
s3_signs_session_token_as_security_token_header(void **state)
{
	struct sigv4_credentials c = doc_creds;
	struct sigv4_kv h[] = { { "host", "h" } };
	struct sigv4_result r;

	c.session_token = "tok/en+=";
	assert_int_equal(sign_s3(*state, &c, "GET", "/b/k", NULL, 0, h, 1,
	    SIGV4_EMPTY_SHA256, &r), 0);
	assert_non_null(strstr(r.canonical_request,
	    "\nx-amz-security-token:tok/en+=\n"));
	assert_non_null(strstr(r.authorization,
	    "x-amz-date;x-amz-security-token,"));
}

static void
s3_sorts_and_encodes_query_parameters(void **state)
{
	struct sigv4_kv h[] = { { "host", "h" } };
	struct sigv4_kv q[] = {
		{ "uploadId", "a/b+c=d e" },
		{ "partNumber", "10" },
		{ "b", "2" },
		{ "b", "1" },
		{ "B", NULL },
	};
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "PUT", "/b/k", q, 5, h, 1,
	    SIGV4_EMPTY_SHA256, &r), 0);
	assert_string_equal(r.canonical_query,
	    "B=&b=1&b=2&partNumber=10&uploadId=a%2Fb%2Bc%3Dd%20e");
}

static void
sign_trims_and_joins_header_values(void **state)
{
	struct sigv4_kv h[] = {
		{ "host", "h" },
		{ "X-Amz-Meta-A", "  two   spaces\tand tab  " },
		{ "x-amz-meta-a", "second" },
		{ "x-amz-meta-empty", "   " },
	};
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "PUT", "/b/k", NULL, 0,
	    h, 4, SIGV4_EMPTY_SHA256, &r), 0);
	assert_non_null(strstr(r.canonical_request,
	    "\nx-amz-meta-a:two spaces and tab,second\n"
	    "x-amz-meta-empty:\n"));
}

static void
sign_caches_signing_key_per_date_region_and_secret(void **state)
{
	struct sigv4_signer *s = *state;
	struct sigv4_credentials other = doc_creds;
	struct sigv4_kv h[] = { { "host", "h" } };
	struct sigv4_request req = {
		.mode = SIGV4_MODE_S3, .method = "GET", .path = "/b/k",
		.headers = h, .nheaders = 1,
		.payload_sha256 = SIGV4_EMPTY_SHA256,
		.region = "us-east-1", .service = "s3",
	};
	struct sigv4_result r1, r2;

	assert_int_equal(sigv4_sign(s, &doc_creds, &req, DOC_TIME, &r1), 0);
	assert_int_equal(sigv4_sign(s, &doc_creds, &req, DOC_TIME + 3600, &r2), 0);
	assert_int_equal(sigv4_signer_derivations(s), 1);
	assert_int_equal(sigv4_sign(s, &doc_creds, &req, DOC_TIME + 86400, &r2), 0);
	assert_int_equal(sigv4_signer_derivations(s), 2);
	req.region = "eu-west-1";
	assert_int_equal(sigv4_sign(s, &doc_creds, &req, DOC_TIME, &r2), 0);
	assert_int_equal(sigv4_signer_derivations(s), 3);
	req.region = "us-east-1";
	other.secret_access_key = "another secret";
	assert_int_equal(sigv4_sign(s, &other, &req, DOC_TIME, &r2), 0);
	assert_int_equal(sigv4_signer_derivations(s), 4);
	assert_string_not_equal(r1.authorization, r2.authorization);
	/* The first key is still cached and still right. */
	assert_int_equal(sigv4_sign(s, &doc_creds, &req, DOC_TIME, &r2), 0);
	assert_int_equal(sigv4_signer_derivations(s), 4);
	assert_string_equal(r1.authorization, r2.authorization);
}

/* ---------------------------------------------------------------- refusals */

static void
sign_refuses_request_without_host(void **state)
{
	struct sigv4_kv h[] = { { "x-amz-meta-a", "1" } };
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "GET", "/b/k", NULL, 0,
	    h, 1, SIGV4_EMPTY_SHA256, &r), -EINVAL);
}

static void
sign_refuses_headers_the_signer_owns(void **state)
{
	static const char *owned[] = { "X-Amz-Date", "x-amz-security-token",
	    "X-Amz-Content-Sha256", "Authorization" };
	struct sigv4_result r;

	for (size_t i = 0; i < 4; i++) {
		struct sigv4_kv h[] = { { "host", "h" }, { owned[i], "v" } };

		assert_int_equal(sign_s3(*state, &doc_creds, "GET", "/b/k",
		    NULL, 0, h, 2, SIGV4_EMPTY_SHA256, &r), -EINVAL);
	}
}

static void
sign_refuses_header_value_with_newline(void **state)
{
	struct sigv4_kv h[] = { { "host", "h" }, { "x-amz-meta-a", "a\r\nb: c" } };
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "GET", "/b/k", NULL, 0,
	    h, 2, SIGV4_EMPTY_SHA256, &r), -EINVAL);
}

static void
sign_refuses_bad_header_name_and_empty_credentials(void **state)
{
	struct sigv4_kv h[] = { { "host", "h" }, { "bad name", "v" } };
	struct sigv4_credentials c = { "", "x", NULL };
	struct sigv4_result r;

	assert_int_equal(sign_s3(*state, &doc_creds, "GET", "/b/k", NULL, 0,
	    h, 2, SIGV4_EMPTY_SHA256, &r), -EINVAL);
	assert_int_equal(sign_s3(*state, &c, "GET", "/b/k", NULL, 0,
	    h, 1, SIGV4_EMPTY_SHA256, &r), -EINVAL);
	assert_int_equal(sign_s3(*state, &doc_creds, "GET", "b/k", NULL, 0,
	    h, 1, SIGV4_EMPTY_SHA256, &r), -EINVAL);
}

static void
sign_refuses_too_many_headers(void **state)
{
	struct sigv4_kv h[SIGV4_MAX_HEADERS + 1];
	struct sigv4_result r;

	for (size_t i = 0; i < SIGV4_MAX_HEADERS + 1; i++)
		h[i] = (struct sigv4_kv){ "host", "h" };
	assert_int_equal(sign_s3(*state, &doc_creds, "GET", "/b/k", NULL, 0,
	    h, SIGV4_MAX_HEADERS + 1, SIGV4_EMPTY_SHA256, &r), -E2BIG);
}

static void
sign_refuses_path_over_cap_without_overflow(void **state)
{
	struct sigv4_kv h[] = { { "host", "h" } };
	struct sigv4_result r;
	size_t n = SIGV4_CANONICAL_MAX;
	char *path = malloc(n + 1);

	assert_non_null(path);
	path[0] = '/';
	memset(path + 1, ' ', n - 1);	/* each becomes %20 */
	path[n] = '\0';
	assert_int_equal(sign_s3(*state, &doc_creds, "GET", path, NULL, 0,
	    h, 1, SIGV4_EMPTY_SHA256, &r), -ENOSPC);
	free(path);
}

/* ---------------------------------------------------------------- encoding */

static void
uri_encode_keeps_unreserved_and_uppercases_hex(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(sigv4_uri_encode(out, sizeof(out), "aZ09-._~", 8,
	    false), 8);
	assert_string_equal(out, "aZ09-._~");
	assert_int_equal(sigv4_uri_encode(out, sizeof(out), "a/b c\xff", 6,
	    false), 12);
	assert_string_equal(out, "a%2Fb%20c%FF");
	assert_int_equal(sigv4_uri_encode(out, sizeof(out), "a/b", 3, true), 3);
	assert_string_equal(out, "a/b");
}

static void
uri_encode_reports_enospc_at_exact_boundary(void **state)
{
	char out[8];

	(void)state;
	/* "%20%20" is 6 bytes plus NUL: fits in 7, not in 6. */
	assert_int_equal(sigv4_uri_encode(out, 7, "  ", 2, false), 6);
	assert_int_equal(sigv4_uri_encode(out, 6, "  ", 2, false), -ENOSPC);
	assert_int_equal(sigv4_uri_encode(out, 1, "", 0, false), 0);
	assert_int_equal(sigv4_uri_encode(out, 1, "a", 1, false), -ENOSPC);
}

static void
amz_date_formats_utc(void **state)
{
	char d[SIGV4_AMZ_DATE_LEN + 1];

	(void)state;
	assert_int_equal(sigv4_amz_date(VECTOR_TIME, d), 0);
	assert_string_equal(d, "20150830T123600Z");
}

/* ---------------------------------------------------------------- botocore */

static size_t
unhex(const char *s, char *out, size_t cap)
{
	size_t n = strlen(s) / 2;

	assert_true(n < cap);
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		assert_true(hi >= 0 && lo >= 0);
		out[i] = (char)(hi * 16 + lo);
	}
	out[n] = '\0';
	return n;
}

static char *
next_field(char **cursor)
{
	char *f = strsep(cursor, "\t");

	assert_non_null(f);
	return f;
}

/*
 * One line of the spec file, tab-separated, strings in hex where they may
 * hold any byte:
 *   ak sk token_hex region epoch method path_hex payload_sha256
 *   nquery {name_hex value_hex}... nheaders {name value_hex}... authz
 * Returns true when the signer agrees with the expected Authorization.
 */
static bool
check_oracle_line(struct sigv4_signer *s, char *line, size_t lineno)
{
	static char fields[64][4096];
	struct sigv4_kv q[SIGV4_MAX_QUERY], h[SIGV4_MAX_HEADERS];
	struct sigv4_credentials c;
	struct sigv4_request req = { .mode = SIGV4_MODE_S3, .service = "s3" };
	struct sigv4_result r;
	char *cur = line, *expect;
	long long epoch;
	size_t nf = 0, nq, nh;
	int rc;

	c.access_key_id = next_field(&cur);
	c.secret_access_key = next_field(&cur);
	unhex(next_field(&cur), fields[nf], sizeof(fields[0]));
	c.session_token = fields[nf++];
	req.region = next_field(&cur);
	epoch = strtoll(next_field(&cur), NULL, 10);
	req.method = next_field(&cur);
	unhex(next_field(&cur), fields[nf], sizeof(fields[0]));
	req.path = fields[nf++];
	req.payload_sha256 = next_field(&cur);
	nq = (size_t)strtoul(next_field(&cur), NULL, 10);
	assert_true(nq <= SIGV4_MAX_QUERY);
	for (size_t i = 0; i < nq; i++) {
		unhex(next_field(&cur), fields[nf], sizeof(fields[0]));
		q[i].name = fields[nf++];
		unhex(next_field(&cur), fields[nf], sizeof(fields[0]));
		q[i].value = fields[nf++];
	}
	nh = (size_t)strtoul(next_field(&cur), NULL, 10);
	assert_true(nh <= SIGV4_MAX_HEADERS);
	for (size_t i = 0; i < nh; i++) {
		h[i].name = next_field(&cur);
		unhex(next_field(&cur), fields[nf], sizeof(fields[0]));
		h[i].value = fields[nf++];
		assert_true(nf < 64);
	}
	expect = next_field(&cur);
	expect[strcspn(expect, "\r\n")] = '\0';
	req.query = q;
	req.nquery = nq;
	req.headers = h;
	req.nheaders = nh;

	rc = sigv4_sign(s, &c, &req, (time_t)epoch, &r);
	if (rc != 0 || strcmp(r.authorization, expect) != 0) {
		print_error("line %zu: rc=%d\n  got:    %s\n  expect: %s\n"
		    "canonical request:\n%s\n", lineno, rc,
		    rc == 0 ? r.authorization : "-", expect,
		    rc == 0 ? r.canonical_request : "-");
		return false;
	}
	return true;
}

static void
sign_matches_botocore_for_generated_requests(void **state)
{
	const char *path = getenv("SIGV4_ORACLE_FILE");
	size_t lineno = 0, bad = 0, cap = 0;
	char *line = NULL;
	FILE *f;

	if (path == NULL || path[0] == '\0')
		skip();
	f = fopen(path, "r");
	assert_non_null(f);
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		if (!check_oracle_line(*state, line, lineno) && ++bad >= 5)
			break;
	}
	free(line);
	fclose(f);
	print_message("figure: sigv4 botocore comparisons=%zu mismatches=%zu\n",
	    lineno, bad);
	assert_true(lineno > 0);
	assert_int_equal(bad, 0);
}

#define LIST_VECTOR_TEST(fn, dir, flags) \
	cmocka_unit_test(sign_matches_vector_##fn),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_signer, teardown_signer)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		VECTORS(LIST_VECTOR_TEST)
		T(s3_sign_matches_aws_docs_get_object_example),
		T(s3_sign_matches_aws_docs_put_object_example),
		T(s3_sign_matches_aws_docs_list_objects_example),
		T(s3_sign_matches_aws_docs_get_lifecycle_example),
		T(s3_encodes_each_key_byte_once_and_keeps_slashes),
		T(s3_does_not_normalize_dot_segments_or_slashes),
		T(s3_always_signs_content_sha256),
		T(s3_signs_session_token_as_security_token_header),
		T(s3_sorts_and_encodes_query_parameters),
		T(sign_trims_and_joins_header_values),
		T(sign_caches_signing_key_per_date_region_and_secret),
		T(sign_refuses_request_without_host),
		T(sign_refuses_headers_the_signer_owns),
		T(sign_refuses_header_value_with_newline),
		T(sign_refuses_bad_header_name_and_empty_credentials),
		T(sign_refuses_too_many_headers),
		T(sign_refuses_path_over_cap_without_overflow),
		cmocka_unit_test(uri_encode_keeps_unreserved_and_uppercases_hex),
		cmocka_unit_test(uri_encode_reports_enospc_at_exact_boundary),
		cmocka_unit_test(amz_date_formats_utc),
		T(sign_matches_botocore_for_generated_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
