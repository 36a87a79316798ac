/* tool_keycheck.c -- a test tool: check a list of tool_produce-style keys.
 *
 *   tool_keycheck [--dir DIR] PREFIX MINLEN MAXLEN < KEYS
 *
 * Each stdin line is a key PREFIXp<proc>/<seq> (as tool_produce and
 * tool_dieput make them). GETs it from $S3_ENDPOINT / $S3_BUCKET
 * (path-style, credentials from the environment) and compares the bytes
 * with testbody_fill(proc, seq, MINLEN, MAXLEN). Prints "checked N missing
 * M wrong W" and exits 0 only if M and W are 0. A line that is not such a
 * key counts as wrong.
 *
 * --dir DIR reads the object from s3rver's own storage instead, the file
 * DIR/KEY._S3rver_object (s3rver 3.7 keeps the body there as is; DIR is
 * its data directory plus the bucket). An object counts as stored only if
 * DIR/KEY._S3rver_metadata.json exists too: s3rver streams a PUT's body
 * straight into the object file and writes the metadata after the last
 * byte, so an upload aborted halfway (the uploader does that to a body that
 * changed while it was sent) leaves a truncated object file behind, where
 * S3 stores nothing. Such a key is missing, as it would be on S3. It checks 100,000 keys in seconds
 * where GETs take minutes; the scripts still GET a sample to keep the two
 * honest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "s3.h"
#include "testbody.h"

#include <unistd.h>

/* Reads DIR/KEY._S3rver_object into got. Returns 0, -1 if missing, or -2
 * if only the body of an unfinished PUT is there (no metadata). */
static int
read_object(const char *dir, const char *key, uint8_t *got, size_t cap, size_t *len)
{
	char path[4096];
	ssize_t n;
	bool done;
	int fd;

	snprintf(path, sizeof(path), "%s/%s._S3rver_metadata.json", dir, key);
	done = access(path, F_OK) == 0;
	snprintf(path, sizeof(path), "%s/%s._S3rver_object", dir, key);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!done) {
		close(fd);
		return -2;
	}
	*len = 0;
	while (*len < cap && (n = read(fd, got + *len, cap - *len)) > 0)
		*len += (size_t)n;
	close(fd);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *endpoint = getenv("S3_ENDPOINT"), *bucket = getenv("S3_BUCKET");
	const char *dir = NULL;
	struct creds *cr = NULL;
	struct s3_client *c = NULL;
	unsigned long missing = 0, wrong = 0, checked = 0;
	size_t minlen, maxlen, plen;
	uint8_t *want, *got;
	char line[1200];

	if (argc > 2 && strcmp(argv[1], "--dir") == 0) {
		dir = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 4 || (dir == NULL && (endpoint == NULL || bucket == NULL))) {
		fprintf(stderr, "usage: S3_ENDPOINT=.. S3_BUCKET=.. tool_keycheck [--dir DIR] PREFIX MINLEN MAXLEN < KEYS\n");
		return 2;
	}
	plen = strlen(argv[1]);
	minlen = strtoul(argv[2], NULL, 10);
	maxlen = strtoul(argv[3], NULL, 10);
	struct s3_config cfg = { .endpoint = endpoint, .bucket = bucket, .path_style = true };
	if (dir == NULL && (s3_global_init() != 0 || (cr = creds_new(NULL)) == NULL ||
	    (c = s3_client_new(&cfg, cr)) == NULL)) {
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
		for (int attempt = 0; dir == NULL && attempt < 5; attempt++) {
			rc = s3_get_object(c, line, got, maxlen + 1, &gl);
			if (rc == 0 || s3_response(c)->status == 404)
				break;
		}
		if (dir != NULL)
			rc = read_object(dir, line, got, maxlen + 1, &gl);
		if (rc != 0) {
			if (missing < 10)
				fprintf(stderr, "missing: %s (%s %ld)\n", line,
				    dir ? (rc == -2 ? "an unfinished PUT's body only" :
				    "no file") : "HTTP", dir ? 0L : s3_response(c)->status);
			missing++;
		} else if (gl != wl || memcmp(got, want, wl) != 0) {
			if (wrong < 10)
				fprintf(stderr, "wrong bytes: %s (%zu bytes, want %zu)\n", line, gl, wl);
			wrong++;
		}
	}
	printf("checked %lu missing %lu wrong %lu\n", checked, missing, wrong);
	if (c != NULL)
		s3_client_free(c);
	if (cr != NULL)
		creds_free(cr);
	free(want);
	free(got);
	return missing == 0 && wrong == 0 ? 0 : 1;
}
