/* tool_keycheck.c -- a test tool: check a list of tool_produce-style keys.
 *
 *   tool_keycheck PREFIX MINLEN MAXLEN < KEYS
 *
 * Each stdin line is a key PREFIXp<proc>/<seq> (as tool_produce and
 * tool_dieput make them). GETs it from $S3_ENDPOINT / $S3_BUCKET
 * (path-style, credentials from the environment) and compares the bytes
 * with testbody_fill(proc, seq, MINLEN, MAXLEN). Prints "checked N missing
 * M wrong W" and exits 0 only if M and W are 0. A line that is not such a
 * key counts as wrong.
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
	unsigned long missing = 0, wrong = 0, checked = 0;
	size_t minlen, maxlen, plen;
	struct creds *cr;
	struct s3_client *c;
	uint8_t *want, *got;
	char line[1200];

	if (argc < 4 || endpoint == NULL || bucket == NULL) {
		fprintf(stderr, "usage: S3_ENDPOINT=.. S3_BUCKET=.. tool_keycheck PREFIX MINLEN MAXLEN < KEYS\n");
		return 2;
	}
	plen = strlen(argv[1]);
	minlen = strtoul(argv[2], NULL, 10);
	maxlen = strtoul(argv[3], NULL, 10);
	struct s3_config cfg = { .endpoint = endpoint, .bucket = bucket, .path_style = true };
	if (s3_global_init() != 0 || (cr = creds_new(NULL)) == NULL ||
	    (c = s3_client_new(&cfg, cr)) == NULL) {
		fprintf(stderr, "tool_keycheck: cannot set up the client\n");
		return 2;
	}
	want = malloc(maxlen + 1);
	got = malloc(maxlen + 1);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		unsigned proc;
		unsigned long seq;
		size_t wl, gl = 0;
		int rc = -1, used = 0;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			continue;
		checked++;
		if (strncmp(line, argv[1], plen) != 0 ||
		    sscanf(line + plen, "p%u/%lu%n", &proc, &seq, &used) != 2 ||
		    line[plen + (size_t)used] != '\0') {
			if (wrong < 10)
				fprintf(stderr, "not a test key: %s\n", line);
			wrong++;
			continue;
		}
		wl = testbody_fill(want, proc, seq, minlen, maxlen);
		for (int attempt = 0; attempt < 5; attempt++) {
			rc = s3_get_object(c, line, got, maxlen + 1, &gl);
			if (rc == 0 || s3_response(c)->status == 404)
				break;
		}
		if (rc != 0) {
			if (missing < 10)
				fprintf(stderr, "missing: %s (HTTP %ld)\n", line, s3_response(c)->status);
			missing++;
		} else if (gl != wl || memcmp(got, want, wl) != 0) {
			if (wrong < 10)
				fprintf(stderr, "wrong bytes: %s (%zu bytes, want %zu)\n", line, gl, wl);
			wrong++;
		}
	}
	printf("checked %lu missing %lu wrong %lu\n", checked, missing, wrong);
	s3_client_free(c);
	creds_free(cr);
	free(want);
	free(got);
	return missing == 0 && wrong == 0 ? 0 : 1;
}
