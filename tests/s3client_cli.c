/* s3client_cli.c -- a command-line S3 client over uploader/s3.c, for tests */
/*
 * tests/it/s3client_*.sh build this against the uploader library and drive
 * it against real servers (Swift with s3api, s3rver). Credentials, region
 * and endpoint come from the usual AWS variables through creds.c. Every
 * command prints one result line that scripts grep:
 *   result=ok ...
 *   result=error class=CLASS status=N code=CODE curl=N reason="..."
 * and exits 0 for ok, 1 for a request that failed, 2 for a usage or local
 * error. Bodies are generated from the key's index, so a GET can be checked
 * byte for byte without storing anything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "creds.h"
#include "log.h"
#include "s3.h"

static const char usage[] =
	"usage: s3client [--bucket B] [--virtual-hosted] [--resolve H:P:A]\n"
	"                [--ca-file F] [--insecure] CMD ...\n"
	"  head-bucket\n"
	"  put KEY [SIZE]            body from the key, CRC and SHA-256 right\n"
	"  put-bad-crc KEY           sends a wrong x-amz-checksum-crc32c\n"
	"  put-bad-sha256 KEY        changes the body after signing it\n"
	"  roundtrip FILE            FILE: one hex-encoded key a line; PUT each,\n"
	"                            then GET each back and compare\n"
	"  multipart KEY PARTSIZE NPARTS [crc]   upload, complete, GET, compare\n"
	"  abort KEY                 create a multipart upload, then abort it\n"
	"  multipart-prepared KEY PARTSIZE NPARTS [crc]   the same as multipart,\n"
	"                            through the prepare-only calls and\n"
	"                            s3_perform, with a Content-Type on create\n"
	"  create-only KEY [N]       create N (1) multipart uploads of KEY, leave\n"
	"                            them open, print each \"upload_id=ID\"\n"
	"  abort-id KEY ID           abort one multipart upload\n"
	"  list-uploads [PREFIX]     print \"upload key=HEX id=ID\" for each open\n"
	"                            multipart upload (key hex-encoded)\n"
	"  abort-listed [PREFIX]     abort every upload the listing reports\n";

static struct s3_client *client;

/* Deterministic bytes: an xorshift stream seeded by the key and index. */
static void
fill_body(unsigned char *buf, size_t len, const char *key, size_t index)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t)index;

	for (const char *p = key; *p; p++)
		x = (x ^ (unsigned char)*p) * 0x100000001b3ULL;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

static int
report(int rc, const char *what)
{
	const struct s3_response *r = s3_response(client);

	if (rc == 0) {
		printf("result=ok %s\n", what);
		return 0;
	}
	if (rc != -EIO) {
		printf("result=local-error errno=%d %s\n", -rc, what);
		return 2;
	}
	printf("result=error class=%s status=%ld code=%s curl=%d reason=\"%s\" "
	    "%s\n", s3err_class_name(r->verdict.cls), r->status,
	    r->error.code[0] ? r->error.code : "-", r->curl_code,
	    r->verdict.reason, what);
	return 1;
}

static size_t
body_size(size_t index)
{
	/* Mostly small, some empty, some of a few hundred KiB. */
	static const size_t sizes[] = { 0, 1, 17, 1000, 4096, 65537, 300000 };

	return sizes[index % 7] + index % 13;
}

static int
unhex(const char *s, char *out, size_t cap)
{
	size_t n = strcspn(s, "\r\n");

	if (n % 2 != 0 || n / 2 >= cap)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	return 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmd_roundtrip(const char *file)
{
	static char keys[4096][S3_KEY_MAX + 1];
	unsigned char *want, *got;
	size_t nkeys = 0, cap = 512 * 1024, len;
	char line[4 * S3_KEY_MAX];
	long conns = 0;
	double t0, t1;
	FILE *f;
	int rc;

	f = fopen(file, "r");
	if (f == NULL) {
		perror(file);
		return 2;
	}
	while (nkeys < 4096 && fgets(line, sizeof(line), f) != NULL) {
		if (unhex(line, keys[nkeys], sizeof(keys[0])) < 0) {
			fprintf(stderr, "bad key line %zu\n", nkeys + 1);
			fclose(f);
			return 2;
		}
		nkeys++;
	}
	fclose(f);
	want = malloc(cap);
	got = malloc(cap);
	if (want == NULL || got == NULL) {
		rc = 2;
		goto out_free;
	}

	t0 = now();
	for (size_t i = 0; i < nkeys; i++) {
		size_t n = body_size(i);

		fill_body(want, n, keys[i], i);
		rc = s3_put_object(client, keys[i], want, n, crc32c(0, want, n));
		conns += s3_response(client)->new_connections;
		if (rc != 0) {
			char what[64];

			snprintf(what, sizeof(what), "op=put index=%zu", i);
			rc = report(rc, what);
			goto out_free;
		}
	}
	t1 = now();
	for (size_t i = 0; i < nkeys; i++) {
		size_t n = body_size(i);

		fill_body(want, n, keys[i], i);
		rc = s3_get_object(client, keys[i], got, cap, &len);
		if (rc != 0) {
			char what[64];

			snprintf(what, sizeof(what), "op=get index=%zu", i);
			rc = report(rc, what);
			goto out_free;
		}
		if (len != n || memcmp(got, want, n) != 0) {
			printf("result=mismatch index=%zu len=%zu want=%zu\n", i,
			    len, n);
			rc = 1;
			goto out_free;
		}
	}
	printf("figure: s3client roundtrip objects=%zu put_per_s=%.0f "
	    "get_per_s=%.0f put_connections=%ld\n", nkeys,
	    nkeys / (t1 - t0), nkeys / (now() - t1), conns);
	printf("result=ok op=roundtrip objects=%zu\n", nkeys);
	rc = 0;
out_free:
	free(want);
	free(got);
	return rc;
}

static int
cmd_put(const char *key, size_t n, int how)
{
	unsigned char *body = malloc(n ? n : 1);
	uint32_t crc;
	int rc;

	if (body == NULL)
		return 2;
	fill_body(body, n, key, 0);
	crc = crc32c(0, body, n);
	if (how == 1)
		crc ^= 1;
	if (how == 2) {
		/* Sign the body, then change one byte before it is sent: the
		 * signed x-amz-content-sha256 no longer matches, while the
		 * CRC header is that of the bytes actually sent, so only the
		 * SHA-256 check can fail. */
		body[0] ^= 0xff;
		crc = crc32c(0, body, n);
		body[0] ^= 0xff;
		rc = s3_prepare_put(client, key, body, n, crc);
		body[0] ^= 0xff;
		if (rc == 0)
			rc = s3_perform(client);
	} else {
		rc = s3_put_object(client, key, body, n, crc);
	}
	free(body);
	return report(rc, "op=put");
}

/*
 * Creates, uploads nparts parts, completes, GETs the object back and
 * compares. prepared: through the prepare-only calls, each request
 * performed by s3_perform() and its result read after it, as an event loop
 * drives them; the create also carries a Content-Type.
 */
static int
cmd_multipart(const char *key, size_t part_size, int nparts, bool with_crc,
    bool prepared)
{
	const struct sigv4_kv hdrs[] = { { "Content-Type", "application/x-test" } };
	struct s3_part *parts = calloc((size_t)(nparts > 0 ? nparts : 1),
	    sizeof(*parts));
	unsigned char *body = malloc(part_size * (size_t)nparts + 1);
	unsigned char *got = malloc(part_size * (size_t)nparts + 1);
	char upload_id[S3_UPLOAD_ID_MAX];
	size_t total = part_size * (size_t)nparts, len = 0;
	const char *op = "op=create_multipart";
	int rc = 2;

	if (parts == NULL || body == NULL || got == NULL || nparts < 1)
		goto out_free;
	fill_body(body, total, key, 7);
	if (prepared) {
		rc = s3_prepare_create_multipart(client, key, with_crc, hdrs, 1,
		    upload_id, sizeof(upload_id));
		if (rc == 0)
			rc = s3_perform(client);
	} else {
		rc = s3_create_multipart(client, key, with_crc, upload_id,
		    sizeof(upload_id));
	}
	for (int i = 0; rc == 0 && i < nparts; i++) {
		const unsigned char *p = body + (size_t)i * part_size;
		uint32_t crc = crc32c(0, p, part_size);

		op = "op=upload_part";
		if (prepared) {
			rc = s3_prepare_upload_part(client, key, upload_id, i + 1,
			    p, part_size, with_crc, crc, &parts[i]);
			if (rc == 0)
				rc = s3_perform(client);
		} else {
			rc = s3_upload_part(client, key, upload_id, i + 1, p,
			    part_size, with_crc, crc, &parts[i]);
		}
	}
	if (rc == 0) {
		op = "op=complete_multipart";
		if (prepared) {
			rc = s3_prepare_complete_multipart(client, key, upload_id,
			    parts, (size_t)nparts);
			if (rc == 0)
				rc = s3_perform(client);
		} else {
			rc = s3_complete_multipart(client, key, upload_id, parts,
			    (size_t)nparts);
		}
	}
	if (rc == 0) {
		op = "op=get";
		rc = s3_get_object(client, key, got, total + 1, &len);
	}
	if (rc == 0 && (len != total || memcmp(got, body, total) != 0)) {
		printf("result=mismatch len=%zu want=%zu\n", len, total);
		rc = 1;
		goto out_free;
	}
	rc = report(rc, rc != 0 ? op : prepared ? "op=multipart_prepared" :
	    "op=multipart");
out_free:
	free(parts);
	free(body);
	free(got);
	return rc;
}

static int
cmd_abort(const char *key)
{
	char upload_id[S3_UPLOAD_ID_MAX];
	int rc;

	rc = s3_create_multipart(client, key, false, upload_id,
	    sizeof(upload_id));
	if (rc != 0)
		return report(rc, "op=create_multipart");
	return report(s3_abort_multipart(client, key, upload_id), "op=abort");
}

static int
cmd_create_only(const char *key, int n)
{
	char upload_id[S3_UPLOAD_ID_MAX];

	for (int i = 0; i < n; i++) {
		int rc = s3_create_multipart(client, key, false, upload_id,
		    sizeof(upload_id));

		if (rc != 0)
			return report(rc, "op=create_multipart");
		printf("upload_id=%s\n", upload_id);
	}
	return report(0, "op=create_only");
}

struct listing {
	bool abort;
	size_t count;
};

static int
on_upload(const char *key, const char *upload_id, void *arg)
{
	struct listing *l = arg;

	l->count++;
	printf("upload key=");
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		printf("%02x", *p);
	printf(" id=%s\n", upload_id);
	if (!l->abort)
		return 0;
	return s3_abort_multipart(client, key, upload_id);
}

static int
cmd_list_uploads(const char *prefix, bool abort)
{
	struct listing l = { .abort = abort };
	char what[64];
	int rc = s3_list_multipart_uploads(client, prefix, on_upload, &l);

	snprintf(what, sizeof(what), "op=%s count=%zu",
	    abort ? "abort_listed" : "list_uploads", l.count);
	return report(rc, what);
}

int
main(int argc, char **argv)
{
	struct s3_config cfg = { .bucket = "s3ring-test", .path_style = true };
	struct creds *creds;
	int i = 1, rc = 2;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--bucket") == 0 && i + 1 < argc)
			cfg.bucket = argv[++i];
		else if (strcmp(argv[i], "--virtual-hosted") == 0)
			cfg.path_style = false;
		else if (strcmp(argv[i], "--resolve") == 0 && i + 1 < argc)
			cfg.resolve = argv[++i];
		else if (strcmp(argv[i], "--ca-file") == 0 && i + 1 < argc)
			cfg.ca_file = argv[++i];
		else if (strcmp(argv[i], "--insecure") == 0)
			cfg.tls_insecure = true;
		else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	log_set_level(LOG_LEVEL_DEBUG);
	if (s3_global_init() != 0)
		return 2;
	creds = creds_new(NULL);
	if (creds == NULL)
		return 2;
	cfg.endpoint = creds_endpoint(creds);
	cfg.region = creds_region(creds);
	client = s3_client_new(&cfg, creds);
	if (client == NULL) {
		creds_free(creds);
		return 2;
	}

	if (strcmp(argv[i], "head-bucket") == 0)
		rc = report(s3_head_bucket(client), "op=head_bucket");
	else if (strcmp(argv[i], "put") == 0 && i + 1 < argc)
		rc = cmd_put(argv[i + 1], i + 2 < argc ?
		    strtoul(argv[i + 2], NULL, 10) : 100, 0);
	else if (strcmp(argv[i], "put-bad-crc") == 0 && i + 1 < argc)
		rc = cmd_put(argv[i + 1], 100, 1);
	else if (strcmp(argv[i], "put-bad-sha256") == 0 && i + 1 < argc)
		rc = cmd_put(argv[i + 1], 100, 2);
	else if (strcmp(argv[i], "roundtrip") == 0 && i + 1 < argc)
		rc = cmd_roundtrip(argv[i + 1]);
	else if (strcmp(argv[i], "multipart") == 0 && i + 3 < argc)
		rc = cmd_multipart(argv[i + 1], strtoul(argv[i + 2], NULL, 10),
		    (int)strtol(argv[i + 3], NULL, 10), i + 4 < argc, false);
	else if (strcmp(argv[i], "abort") == 0 && i + 1 < argc)
		rc = cmd_abort(argv[i + 1]);
	else if (strcmp(argv[i], "multipart-prepared") == 0 && i + 3 < argc)
		rc = cmd_multipart(argv[i + 1], strtoul(argv[i + 2], NULL, 10),
		    (int)strtol(argv[i + 3], NULL, 10), i + 4 < argc, true);
	else if (strcmp(argv[i], "create-only") == 0 && i + 1 < argc)
		rc = cmd_create_only(argv[i + 1], i + 2 < argc ?
		    (int)strtol(argv[i + 2], NULL, 10) : 1);
	else if (strcmp(argv[i], "abort-id") == 0 && i + 2 < argc)
		rc = report(s3_abort_multipart(client, argv[i + 1], argv[i + 2]),
		    "op=abort");
	else if (strcmp(argv[i], "list-uploads") == 0)
		rc = cmd_list_uploads(i + 1 < argc ? argv[i + 1] : "", false);
	else if (strcmp(argv[i], "abort-listed") == 0)
		rc = cmd_list_uploads(i + 1 < argc ? argv[i + 1] : "", true);
	else
		fputs(usage, stderr);

	s3_client_free(client);
	creds_free(creds);
	s3_global_cleanup();
	return rc;
}
