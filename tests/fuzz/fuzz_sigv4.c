/* fuzz_sigv4.c -- libFuzzer harness for SigV4 key canonicalization */
/*
 * The input is an object key (any bytes). Properties checked:
 *  - sigv4_uri_encode() emits only unreserved characters, '/' (when kept)
 *    and %XX with uppercase hex, never more than 3 bytes per input byte,
 *    and decoding its output gives the input back exactly;
 *  - in S3 mode the signed path is "/bucket/" followed by that encoding,
 *    byte for byte, whatever dots and slashes the key holds;
 *  - in generic mode the normalized path starts with '/' and has no empty,
 *    "." or ".." segments;
 *  - the canonical query of (key, key) sorts and encodes without overflow.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;	/* lowercase hex is a bug too */
}

static void
check_encoding(const uint8_t *in, size_t n, const char *enc, size_t elen,
    bool keep_slash)
{
	size_t o = 0;

	if (elen > 3 * n)
		abort();
	for (size_t i = 0; i < elen; i++) {
		unsigned char c = (unsigned char)enc[i];
		bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~';

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= elen)
				abort();
			hi = hexv(enc[i + 1]);
			lo = hexv(enc[i + 2]);
			if (hi < 0 || lo < 0 || o >= n ||
			    in[o] != (uint8_t)(hi * 16 + lo))
				abort();
			/* An unreserved byte must not be escaped. */
			if ((in[o] >= 'A' && in[o] <= 'Z') ||
			    (in[o] >= 'a' && in[o] <= 'z') ||
			    (in[o] >= '0' && in[o] <= '9') || in[o] == '-' ||
			    in[o] == '.' || in[o] == '_' || in[o] == '~' ||
			    (keep_slash && in[o] == '/'))
				abort();
			i += 2;
		} else if (unreserved || (keep_slash && c == '/')) {
			if (o >= n || in[o] != c)
				abort();
		} else {
			abort();
		}
		o++;
	}
	if (o != n)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sigv4_signer *s;
	static char enc[3 * 4096 + 1], path[4096 + 16], key[4096 + 1];
	struct sigv4_credentials creds = { "AKIDEXAMPLE", "secret", NULL };
	struct sigv4_kv headers[] = { { "host", "example.com" } };
	struct sigv4_kv query[1];
	struct sigv4_request req = {
		.method = "PUT", .headers = headers, .nheaders = 1,
		.payload_sha256 = SIGV4_EMPTY_SHA256, .region = "us-east-1",
		.service = "s3", .query = query, .nquery = 1,
	};
	struct sigv4_result res;
	ssize_t n;
	size_t klen = 0;

	if (size > 4096)
		return 0;
	if (s == NULL && (s = sigv4_signer_new()) == NULL)
		abort();

	for (int keep = 0; keep < 2; keep++) {
		n = sigv4_uri_encode(enc, sizeof(enc), data, size, keep);
		if (n < 0)
			abort();
		check_encoding(data, size, enc, (size_t)n, keep);
	}

	/* Keys are C strings in the signer: drop NULs. */
	for (size_t i = 0; i < size; i++)
		if (data[i] != 0)
			key[klen++] = (char)data[i];
	key[klen] = '\0';
	memcpy(path, "/bucket/", 8);
	memcpy(path + 8, key, klen + 1);
	query[0] = (struct sigv4_kv){ key, key };

	req.mode = SIGV4_MODE_S3;
	req.path = path;
	if (sigv4_sign(s, &creds, &req, 1440938160, &res) == 0) {
		n = sigv4_uri_encode(enc, sizeof(enc), key, klen, true);
		if (n < 0 || strncmp(res.canonical_path, "/bucket/", 8) != 0 ||
		    strcmp(res.canonical_path + 8, enc) != 0)
			abort();
	}

	req.mode = SIGV4_MODE_GENERIC;
	if (sigv4_sign(s, &creds, &req, 1440938160, &res) == 0) {
		const char *p = res.canonical_path;

		if (p[0] != '/' || strstr(p, "//") != NULL ||
		    strstr(p, "/./") != NULL || strstr(p, "/../") != NULL)
			abort();
		n = (ssize_t)strlen(p);
		if ((n >= 2 && strcmp(p + n - 2, "/.") == 0) ||
		    (n >= 3 && strcmp(p + n - 3, "/..") == 0))
			abort();
	}
	return 0;
}
