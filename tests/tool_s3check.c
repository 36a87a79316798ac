/* tool_s3check.c -- a test tool: check that every message is in the bucket.
 *
 *   tool_s3check PROCS MSGS PREFIX [MINLEN MAXLEN]
 *
 * GETs every key tool_produce would have put (with the same arguments),
 * from $S3_ENDPOINT / $S3_BUCKET (path-style) with the credentials of the
 * environment, and compares the bytes. Prints "checked N missing M wrong W"
 * and exits 0 only if M and W are 0. S3CHECK_KEY_PREFIX is prepended to the
 * keys (the uploader's --key-prefix).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "s3.h"
#include "testbody.h"

int
main(int argc, char **argv)
{
	const char *endpoint = getenv("S3_ENDPOINT"), *bucket = getenv("S3_BUCKET");
	const char *kp = getenv("S3CHECK_KEY_PREFIX");
	unsigned procs;
	unsigned long msgs, missing = 0, wrong = 0, checked = 0;
	size_t minlen = 1, maxlen = 1024;
	struct creds *cr;
	struct s3_client *c;
	uint8_t *want, *got;
	char prefix[1100];

	if (argc < 4 || endpoint == NULL || bucket == NULL) {
		fprintf(stderr, "usage: S3_ENDPOINT=.. S3_BUCKET=.. tool_s3check PROCS MSGS PREFIX [MINLEN MAXLEN]\n");
		return 2;
	}
	procs = (unsigned)strtoul(argv[1], NULL, 10);
	msgs = strtoul(argv[2], NULL, 10);
	if (argc > 5) {
		minlen = strtoul(argv[4], NULL, 10);
		maxlen = strtoul(argv[5], NULL, 10);
	}
	snprintf(prefix, sizeof(prefix), "%s%s", kp ? kp : "", argv[3]);
	struct s3_config cfg = { .endpoint = endpoint, .bucket = bucket, .path_style = true };
	if (s3_global_init() != 0 || (cr = creds_new(NULL)) == NULL ||
	    (c = s3_client_new(&cfg, cr)) == NULL) {
		fprintf(stderr, "tool_s3check: cannot set up the client\n");
		return 2;
	}
	want = malloc(maxlen + 1);
	got = malloc(maxlen + 1);
	for (unsigned p = 0; p < procs; p++) {
		for (unsigned long i = 1; i <= msgs; i++) {
			char key[1200];
			size_t wl = testbody_fill(want, p, i, minlen, maxlen), gl = 0;
			int rc = -1;
			testbody_key(key, sizeof(key), prefix, p, i);
			for (int attempt = 0; attempt < 5; attempt++) {
				rc = s3_get_object(c, key, got, maxlen + 1, &gl);
				if (rc == 0 || s3_response(c)->status == 404)
					break;
			}
			checked++;
			if (rc != 0) {
				if (missing < 10)
					fprintf(stderr, "missing: %s (HTTP %ld)\n", key, s3_response(c)->status);
				missing++;
			} else if (gl != wl || memcmp(got, want, wl) != 0) {
				if (wrong < 10)
					fprintf(stderr, "wrong bytes: %s (%zu bytes, want %zu)\n", key, gl, wl);
				wrong++;
			}
		}
	}
	printf("checked %lu missing %lu wrong %lu\n", checked, missing, wrong);
	s3_client_free(c);
	creds_free(cr);
	free(want);
	free(got);
	return missing == 0 && wrong == 0 ? 0 : 1;
}
