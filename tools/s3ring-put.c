/* s3ring-put.c -- put one message, or one message per stdin line, into a ring.
 *
 * Exit status: 0 when every message was put, 75 (EX_TEMPFAIL) when the ring
 * stayed full past --timeout, 64 (EX_USAGE) for bad arguments, 1 for any
 * other error. Each error is one line on stderr; in --lines mode it names
 * the line, and the lines before it have been put.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "s3ring.h"

#define DEFAULT_TIMEOUT_MS 1000

static const char *prog = "s3ring-put";

static void
usage(void)
{
	fprintf(stderr,
	    "usage: %s [--ring NAME] [--timeout MS] KEY [FILE]\n"
	    "       %s [--ring NAME] [--timeout MS] --lines PREFIX\n", prog, prog);
}

/* The key as it may be shown on a terminal: bytes below 0x20 and 0x7f
 * become \xHH, so a bad key cannot move the cursor or ring the bell. The
 * result is cut to fit buf. */
static const char *
shown(const char *key, char *buf, size_t cap)
{
	size_t n = 0;

	for (; *key != '\0' && n + 5 < cap; key++) {
		unsigned char c = (unsigned char)*key;
		if (c < 0x20 || c == 0x7f)
			n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
		else
			buf[n++] = (char)c;
	}
	buf[n] = '\0';
	return buf;
}

static int
exit_code(int err)
{
	return err == -EAGAIN || err == -ETIMEDOUT ? EX_TEMPFAIL : 1;
}

/* Reads all of f into a buffer of at most cap bytes. Returns the buffer
 * (caller frees) and its length in *len, or NULL with errno EMSGSIZE when
 * the input is longer than cap, or another errno. */
static void *
slurp(FILE *f, size_t cap, size_t *len)
{
	size_t n = 0, size = cap < 65536 ? cap + 1 : 65536;
	char *buf = malloc(size), *nb;

	if (buf == NULL)
		return NULL;
	for (;;) {
		size_t got = fread(buf + n, 1, size - n, f);
		n += got;
		if (n > cap) {
			free(buf);
			errno = EMSGSIZE;
			return NULL;
		}
		if (got == 0) {
			if (ferror(f)) {
				free(buf);
				errno = EIO;
				return NULL;
			}
			break;
		}
		if (n == size) {
			size = size * 2 > cap + 1 ? cap + 1 : size * 2;
			if ((nb = realloc(buf, size)) == NULL) {
				free(buf);
				return NULL;
			}
			buf = nb;
		}
	}
	*len = n;
	return buf;
}

static int
put_one(struct s3ring_producer *p, const char *key, const char *file,
    int timeout)
{
	FILE *f = stdin;
	size_t len = 0, klen = strlen(key);
	void *body;
	int rc;

	if (klen == 0 || klen > S3RING_MAX_KEY) {
		fprintf(stderr, "%s: invalid key: %s\n", prog, s3ring_strerror(-EINVAL));
		return 1;
	}
	if (file != NULL && strcmp(file, "-") != 0 && (f = fopen(file, "rb")) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", prog, file, strerror(errno));
		return 1;
	}
	body = slurp(f, s3ring_max_body(p, klen), &len);
	if (f != stdin)
		fclose(f);
	if (body == NULL) {
		if (errno == EMSGSIZE)
			fprintf(stderr, "%s: %s: body larger than the ring's limit of %zu bytes\n",
			    prog, file ? file : "stdin", s3ring_max_body(p, klen));
		else
			fprintf(stderr, "%s: %s: %s\n", prog, file ? file : "stdin",
			    strerror(errno));
		return 1;
	}
	rc = s3ring_put(p, key, body, len, timeout);
	free(body);
	if (rc < 0) {
		char sk[S3RING_MAX_KEY * 4 + 8];
		fprintf(stderr, "%s: %s: %s\n", prog, shown(key, sk, sizeof(sk)),
		    s3ring_strerror(rc));
		return exit_code(rc);
	}
	return 0;
}

static int
put_lines(struct s3ring_producer *p, const char *prefix, int timeout)
{
	char key[S3RING_MAX_KEY + 32];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long long lineno = 0;
	int rc = 0;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if ((size_t)snprintf(key, sizeof(key), "%s%llu", prefix, lineno) >=
		    sizeof(key)) {
			fprintf(stderr, "%s: line %llu: key too long\n", prog, lineno);
			rc = 1;
			break;
		}
		int err = s3ring_put(p, key, line, (size_t)n, timeout);
		if (err < 0) {
			char sk[S3RING_MAX_KEY * 4 + 8];
			fprintf(stderr, "%s: line %llu (%s): %s\n", prog, lineno,
			    shown(key, sk, sizeof(sk)), s3ring_strerror(err));
			rc = exit_code(err);
			break;
		}
	}
	if (rc == 0 && ferror(stdin)) {
		fprintf(stderr, "%s: stdin: %s\n", prog, strerror(errno));
		rc = 1;
	}
	free(line);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ring", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "lines", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ring = NULL, *prefix = NULL, *errstr = NULL;
	struct s3ring_producer *p;
	int timeout = DEFAULT_TIMEOUT_MS, ch, rc;

	while ((ch = getopt_long(argc, argv, "r:t:l:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			ring = optarg;
			break;
		case 't':
			timeout = (int)strtonum(optarg, -1, INT_MAX, &errstr);
			if (errstr != NULL) {
				fprintf(stderr, "%s: --timeout %s: %s (milliseconds, -1 waits forever)\n",
				    prog, optarg, errstr);
				return EX_USAGE;
			}
			break;
		case 'l':
			prefix = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if ((prefix != NULL && argc != 0) || (prefix == NULL && (argc < 1 || argc > 2))) {
		usage();
		return EX_USAGE;
	}

	p = s3ring_open(ring, 0);
	if (p == NULL) {
		/* s3ring_open's EINVAL is about the name (flags are ours and
		 * valid), and s3ring_strerror's EINVAL text speaks of keys. */
		fprintf(stderr, "%s: ring %s: %s\n", prog,
		    ring ? ring : (getenv("S3RING_RING") ? getenv("S3RING_RING") : "default"),
		    errno == EINVAL ? "not a valid ring name (1 to 200 of A-Z a-z 0-9 . _ -, "
		    "not starting with a dot)" : s3ring_strerror(errno));
		return 1;
	}
	rc = prefix != NULL ? put_lines(p, prefix, timeout) :
	    put_one(p, argv[0], argc == 2 ? argv[1] : NULL, timeout);
	s3ring_close(p);
	return rc;
}
