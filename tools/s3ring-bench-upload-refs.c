/* s3ring-bench-upload-refs.c -- the reference clients of `s3ring-bench
 * upload`, run against the same endpoint in the same run, with the
 * uploader stopped so that it costs them nothing.
 *
 * Each gets the uploader's message size and concurrency: wrk with as many
 * connections as the uploader has workers (nginx, nginx-https, the sink;
 * no signing), curl --parallel with --aws-sigv4 uploading as many files as
 * the uploader did (s3rver, and every local endpoint for large messages),
 * and `aws s3 cp --recursive` with max_concurrent_requests, under GNU time
 * for its peak RSS. Each runs under timeout(1) and writes its output into
 * the work directory.
 */
#include "s3ring-bench-upload.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "futex.h"
#include "s3ring-bench.h"
#include "sigv4.h"

/* curl refuses a --parallel-max above this. */
#define CURL_PARALLEL_MAX 300

/* -------------------------------------------------------------- wrk */

static double
parse_wrk_rps(const char *path, uint64_t *errors)
{
	char line[512];
	double rps = NAN;
	FILE *f = fopen(path, "re");

	*errors = 0;
	if (f == NULL)
		return NAN;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *se = strstr(line, "Socket errors:");

		if (strncmp(line, "Requests/sec:", 13) == 0) {
			rps = strtod(line + 13, NULL);
		} else if (strstr(line, "Non-2xx or 3xx responses:") != NULL) {
			*errors += strtoull(strchr(line, ':') + 1, NULL, 10);
		} else if (se != NULL) {
			unsigned long long a = 0, b = 0, c = 0, d = 0;

			if (sscanf(se, "Socket errors: connect %llu, read %llu, write %llu, timeout %llu",
			    &a, &b, &c, &d) == 4)
				*errors += a + b + c + d;
		}
	}
	fclose(f);
	return rps;
}

int
bup_ref_wrk(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_result *er)
{
	char lua[PATH_MAX], out[PATH_MAX], err[PATH_MAX], conns[16], threads[16];
	char dur[16], lifetime[16], size_env[48];
	char *argv[] = { "timeout", "-k", "5", lifetime, "wrk", "-t", threads, "-c", conns,
		"-d", dur, "-s", lua, (char *)ep->url, NULL };
	char *env[] = { size_env, "WRK_PREFIX=/wrk/", NULL };
	int rc;

	snprintf(lua, sizeof(lua), "%s/tests/servers/wrk-put.lua", o->top);
	snprintf(out, sizeof(out), "%s/wrk.out", bup_workdir);
	snprintf(err, sizeof(err), "%s/wrk.err", bup_workdir);
	snprintf(conns, sizeof(conns), "%u", o->workers);
	snprintf(threads, sizeof(threads), "%u", o->workers < 2 ? 1 : 2);
	snprintf(dur, sizeof(dur), "%us", o->ref_seconds);
	snprintf(lifetime, sizeof(lifetime), "%u", o->ref_seconds + 30);
	snprintf(size_env, sizeof(size_env), "WRK_BODY_SIZE=%zu", o->size);
	rc = bup_run_cmd(argv, env, out, err, o->ref_seconds + 40);
	if (rc != 0) {
		fprintf(stderr, "%s: wrk failed (%d; %s)\n", bench_prog, rc, err);
		return rc < 0 ? rc : -EIO;
	}
	er->wrk_rps = parse_wrk_rps(out, &er->wrk_errors);
	return isnan(er->wrk_rps) ? -EIO : 0;
}

/* ------------------------------------------------------------- curl */

static int
write_body_file(const char *path, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	int fd, rc = 0;

	if (buf == NULL)
		return -ENOMEM;
	bup_fill_body(buf, size);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, size) != (ssize_t)size)
		rc = -EIO;
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* The x-amz-content-sha256 header of the common body. */
static int
body_hash_header(size_t size, char *hdr, size_t cap)
{
	char hash[SIGV4_SHA256_HEX_LEN + 1];
	uint8_t *buf = malloc(size ? size : 1);
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	bup_fill_body(buf, size);
	rc = sigv4_sha256_hex(buf, size, hash);
	free(buf);
	if (rc < 0)
		return rc;
	snprintf(hdr, cap, "x-amz-content-sha256: %s", hash);
	return 0;
}

/* A curl config with one upload of body per message (-T and -o are per
 * URL, so each entry names both): the keys cycle
 * through keyspace, as the uploader's do, so that a server on tmpfs holds
 * at most keyspace bodies. */
static int
write_curl_config(const char *path, const char *body, const char *url, uint64_t count,
    uint64_t keyspace)
{
	FILE *f = fopen(path, "we");

	if (f == NULL)
		return -errno;
	for (uint64_t i = 0; i < count; i++)
		fprintf(f, "upload-file = \"%s\"\noutput = \"/dev/null\"\n"
		    "url = \"%s/%s/c/%" PRIu64 "\"\n", body, url, BUP_BUCKET, i % keyspace);
	return fclose(f) == 0 ? 0 : -EIO;
}

/* Counts the 2xx lines of curl's -w output. */
static uint64_t
count_good(const char *path)
{
	char line[64];
	uint64_t good = 0;
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (line[0] == '2')
			good++;
	fclose(f);
	return good;
}

int
bup_ref_curl(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_result *er)
{
	char body[PATH_MAX], conf[PATH_MAX], out[PATH_MAX], err[PATH_MAX], par[16];
	char hdr[128], user[128], lifetime[16];
	char *argv[] = { "timeout", "-k", "5", lifetime, "curl", "-sS", "--parallel",
		"--parallel-max", par, "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", user,
		"-H", hdr, "-w", "%{http_code}\\n", "-K", conf,
		/* Without a CA file the list ends here. */
		ep->ca_file[0] ? "--cacert" : NULL, (char *)ep->ca_file, NULL };
	uint64_t t0, t1, good;
	int rc;

	snprintf(body, sizeof(body), "%s/body.bin", bup_workdir);
	snprintf(conf, sizeof(conf), "%s/curl.conf", bup_workdir);
	snprintf(out, sizeof(out), "%s/curl.out", bup_workdir);
	snprintf(err, sizeof(err), "%s/curl.err", bup_workdir);
	er->curl_parallel = o->workers < CURL_PARALLEL_MAX ? o->workers : CURL_PARALLEL_MAX;
	snprintf(par, sizeof(par), "%u", er->curl_parallel);
	snprintf(user, sizeof(user), "%s:%s", ep->key_id, ep->secret);
	snprintf(lifetime, sizeof(lifetime), "%u", 900);
	if ((rc = write_body_file(body, o->size)) < 0 ||
	    (rc = body_hash_header(o->size, hdr, sizeof(hdr))) < 0 ||
	    (rc = write_curl_config(conf, body, ep->url, o->count, o->keyspace)) < 0)
		return rc;
	t0 = mono_ns();
	rc = bup_run_cmd(argv, NULL, out, err, 900);
	t1 = mono_ns();
	if (rc != 0) {
		fprintf(stderr, "%s: curl failed (%d; %s)\n", bench_prog, rc, err);
		return rc < 0 ? rc : -EIO;
	}
	good = count_good(out);
	er->curl_bad = o->count - (good < o->count ? good : o->count);
	er->curl_ups = (double)good / ((double)(t1 - t0) / 1e9);
	return 0;
}

/* ------------------------------------------------------------ AWS CLI */

/* The source directory of n bodies and the CLI's config file. */
static int
aws_prepare(const struct bup_opts *o, uint64_t n, const char *dir, const char *conf)
{
	char path[PATH_MAX + 32];
	FILE *f;
	int rc;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	for (uint64_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%07" PRIu64, dir, i);
		if ((rc = write_body_file(path, o->size)) < 0)
			return rc;
	}
	f = fopen(conf, "we");
	if (f == NULL)
		return -errno;
	/* One PUT per file, as the uploader sends: nginx does not speak
	 * multipart, and the CLI's default threshold is 8 MiB. */
	fprintf(f, "[default]\nregion = us-east-1\ns3 =\n    max_concurrent_requests = %u\n"
	    "    addressing_style = path\n    multipart_threshold = %zu\n", o->workers,
	    o->size + 1);
	return fclose(f) == 0 ? 0 : -EIO;
}

/* GNU time's "Maximum resident set size (kbytes)", or 0. */
static long
time_max_rss(const char *path)
{
	char line[256];
	long kib = 0;
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *m = strstr(line, "Maximum resident set size (kbytes):");

		if (m != NULL)
			kib = strtol(strchr(m, ':') + 1, NULL, 10);
	}
	fclose(f);
	return kib;
}

int
bup_ref_aws(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_result *er)
{
	char dir[PATH_MAX], conf[PATH_MAX], tout[PATH_MAX], err[PATH_MAX], dest[128];
	char key_env[128], secret_env[128], conf_env[PATH_MAX + 32], ca_env[PATH_MAX + 32];
	char lifetime[16];
	char *argv[] = { "timeout", "-k", "5", lifetime, "/usr/bin/time", "-v", "-o", tout,
		(char *)o->aws, "--endpoint-url", (char *)ep->url, "s3", "cp", "--recursive",
		"--only-show-errors", "--no-progress", dir, dest, NULL };
	char *env[] = { key_env, secret_env, conf_env, "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_SESSION_TOKEN",
		"AWS_PROFILE", ep->ca_file[0] ? ca_env : "AWS_CA_BUNDLE", NULL };
	uint64_t t0, t1, n = o->aws_count;
	int rc;

	/* Large messages: no more files than the uploader sent (tmpfs). */
	if (o->size > BUP_LARGE_SIZE && n > o->count)
		n = o->count;
	snprintf(dir, sizeof(dir), "%s/aws-src", bup_workdir);
	snprintf(conf, sizeof(conf), "%s/aws.config", bup_workdir);
	snprintf(tout, sizeof(tout), "%s/aws.time", bup_workdir);
	snprintf(err, sizeof(err), "%s/aws.err", bup_workdir);
	snprintf(dest, sizeof(dest), "s3://%s/aws/", BUP_BUCKET);
	snprintf(key_env, sizeof(key_env), "AWS_ACCESS_KEY_ID=%s", ep->key_id);
	snprintf(secret_env, sizeof(secret_env), "AWS_SECRET_ACCESS_KEY=%s", ep->secret);
	snprintf(conf_env, sizeof(conf_env), "AWS_CONFIG_FILE=%s", conf);
	snprintf(ca_env, sizeof(ca_env), "AWS_CA_BUNDLE=%s", ep->ca_file);
	snprintf(lifetime, sizeof(lifetime), "%u", 1800);
	if (access(o->aws, X_OK) != 0 || access("/usr/bin/time", X_OK) != 0) {
		fprintf(stderr, "%s: %s or /usr/bin/time missing (tests/install-deps.sh installs awscli and time)\n",
		    bench_prog, o->aws);
		return -ENOENT;
	}
	if ((rc = aws_prepare(o, n, dir, conf)) < 0)
		return rc;
	t0 = mono_ns();
	rc = bup_run_cmd(argv, env, NULL, err, 1800);
	t1 = mono_ns();
	if (rc != 0) {
		fprintf(stderr, "%s: aws s3 cp failed (%d; %s)\n", bench_prog, rc, err);
		return rc < 0 ? rc : -EIO;
	}
	er->aws_count = n;
	er->aws_ups = (double)n / ((double)(t1 - t0) / 1e9);
	er->aws_rss_kib = time_max_rss(tout);
	er->aws_ok = er->aws_rss_kib > 0;
	return 0;
}
