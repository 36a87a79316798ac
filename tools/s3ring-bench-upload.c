/* s3ring-bench-upload.c -- `s3ring-bench upload`: the uploader end to end,
 * against the loopback ceiling, a slow sink, curl, the AWS CLI and its own
 * memory. This file holds the options and the order of the runs.
 *
 * Everything measured is started by this process, on 127.0.0.1, and
 * stopped by its own PID however the run ends (-proc.c). Per endpoint
 * (nginx with WebDAV PUT into tmpfs over HTTP or HTTPS, s3rver, the delay
 * sink, or any URL) the real s3ring-uploader is started on a ring of its
 * own (-server.c); forked producer processes put messages through the
 * library, and a run ends when the ring's `uploaded` counter has grown by
 * the count (-run.c). Reported (-report.c): uploads/s and MB/s over that
 * window; the uploader's CPU seconds per 1,000 uploads; its peak private
 * memory (RssAnon, sampled every 50 ms: uploader_private_kib), with VmHWM
 * as a secondary figure (it counts the shared ring's pages); put-to-stored
 * latency for one message in 64 (8 in the paced run), from the put to
 * inotify seeing the object in the server's data directory (local storing
 * endpoints only). In the saturated run the ring is full, and latency is
 * the ring's depth over the throughput (Little's law): the paced run, at a
 * fraction of the measured rate, is the figure that describes the uploader.
 * The references (-refs.c) get the same size, count and concurrency in the
 * same run: wrk (nginx, nginx-https, sink), curl --parallel with
 * --aws-sigv4 (s3rver, and every local endpoint for messages over 1 MiB),
 * and `aws s3 cp --recursive` (nginx, nginx-https, s3rver).
 */
#include "s3ring-bench-upload.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "s3ring-bench.h"

#define KEYSPACE        100000   /* distinct data keys: tmpfs stays bounded */
#define KEYSPACE_LARGE  16       /* the same for large messages */
#define SAMPLE_SAT      64       /* saturated run: time one put in 64 */
#define SAMPLE_PACED    8        /* paced run: one in 8 */
#define SOAK_COUNT      1000000
#define BATCH_COUNT     10000000  /* --batch: log lines */
#define BATCH_RING_SIZE (256ull << 20)
/* The uploader's limits on --ring-size and --max-message. */
#define RING_SIZE_MIN   (64ull << 10)
#define RING_SIZE_MAX   (1ull << 30)
#define MAX_MESSAGE_MAX (128ull << 20)
/* What a record adds to its body: the 64-byte header, the key, alignment. */
#define RECORD_SLACK    1024

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: %s upload [--json] [--size BYTES] [--count N] [--workers N]\n"
	    "         [--producers N] [--endpoint nginx|nginx-https|s3rver|sink|URL[,...]]\n"
	    "         [--sink-delay-ms D] [--ring-size BYTES] [--max-message BYTES]\n"
	    "         [--soak] [--no-refs] [--ref-seconds S] [--aws-count N] [--paced F]\n"
	    "         [--paced-seconds S] [--uploader PATH] [--aws PATH] [--top DIR]\n"
	    "         [--uploader-args 'FLAGS'] [--perf FILE] [--keep]\n"
	    "       %s upload --batch zstd|gzip [--json] [--count N] [--producers N]\n"
	    "         [--workers N] [--ring-size BYTES] [--batch-max-bytes BYTES]\n"
	    "         [--uploader PATH] [--top DIR] [--uploader-args 'FLAGS'] [--perf FILE]\n"
	    "         [--keep]\n"
	    "  Puts COUNT messages of SIZE bytes from PRODUCERS processes into a ring\n"
	    "  that a real s3ring-uploader with WORKERS (1..%u) uploads in flight drains\n"
	    "  to each endpoint (default: nginx,s3rver, started here on 127.0.0.1), and\n"
	    "  measures uploads/s, MB/s, the uploader's CPU per 1,000 uploads, its peak\n"
	    "  private memory (RssAnon) and put-to-stored latency; then the same load\n"
	    "  paced at F (default 0.5) of the measured rate for S seconds (default 5;\n"
	    "  --paced 0: none). References in the same run: wrk with WORKERS\n"
	    "  connections (nginx, nginx-https, sink), curl --parallel (s3rver, and all\n"
	    "  local endpoints when SIZE is over 1 MiB) and the AWS CLI (nginx,\n"
	    "  nginx-https, s3rver). sink answers every request D ms (default 30) after\n"
	    "  it arrived; nginx-https is nginx over TLS with a self-signed certificate\n"
	    "  (the uploader gets --ca-file). SIZE up to 64 MiB; over the uploader's\n"
	    "  default max-message the ring size and max-message are chosen to fit\n"
	    "  unless given. --soak: 1,000,000 uploads to nginx, private memory at 100k\n"
	    "  and 1M. A URL endpoint uses the AWS_* credentials of the environment and\n"
	    "  has no latency. --perf FILE: perf record -g the uploader during the main\n"
	    "  run. Defaults: size 1024, count 20000, workers 16, producers 2.\n"
	    "  --batch: COUNT log lines of about 100 bytes from PRODUCERS (default 4)\n"
	    "  into one batch rule (logs/, framing=lines, compression CODEC, max-bytes\n"
	    "  16M or --batch-max-bytes, max-age 1000) on nginx, on a ring of 256 MiB\n"
	    "  unless --ring-size; end to end until every line is uploaded (default\n"
	    "  count 10,000,000), against `zstd -3` or `gzip -6` on the same lines.\n",
	    bench_prog, bench_prog, BUP_MAX_WORKERS);
}

static int
parse_u64(const char *arg, const char *what, long long lo, long long hi, uint64_t *v)
{
	const char *errstr = NULL;
	long long x = strtonum(arg, lo, hi, &errstr);

	if (errstr != NULL) {
		fprintf(stderr, "%s upload: %s %s: %s\n", bench_prog, what, arg, errstr);
		return -1;
	}
	*v = (uint64_t)x;
	return 0;
}

static int
parse_unsigned(const char *arg, const char *what, long long lo, long long hi, unsigned *v)
{
	uint64_t x;

	if (parse_u64(arg, what, lo, hi, &x) < 0)
		return -1;
	*v = (unsigned)x;
	return 0;
}

static bool
known_endpoint(const char *s)
{
	static const char *const names[] = { "nginx", "nginx-https", "s3rver", "sink" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0)
			return true;
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* Splits --endpoint's comma-separated list into o->endpoints. */
static int
parse_endpoints(const char *arg, struct bup_opts *o)
{
	static char buf[1024];
	char *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", arg);
	o->nendpoints = 0;
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (o->nendpoints == BUP_MAX_ENDPOINTS) {
			fprintf(stderr, "%s upload: at most %d endpoints\n", bench_prog, BUP_MAX_ENDPOINTS);
			return -1;
		}
		if (!known_endpoint(tok)) {
			fprintf(stderr, "%s upload: --endpoint %s: nginx, nginx-https, s3rver, sink or a URL\n",
			    bench_prog, tok);
			return -1;
		}
		o->endpoints[o->nendpoints++] = tok;
	}
	return 0;
}

static int
parse_fraction(const char *arg, double *v)
{
	char *end;

	*v = strtod(arg, &end);
	if (*end != '\0' || arg[0] == '\0' || !(*v >= 0 && *v <= 1)) {
		fprintf(stderr, "%s upload: --paced %s: a fraction 0..1\n", bench_prog, arg);
		return -1;
	}
	return 0;
}

enum { O_SIZE = 256, O_COUNT, O_WORKERS, O_PRODUCERS, O_ENDPOINT, O_SOAK, O_NOREFS,
	O_REFSEC, O_AWSCOUNT, O_PACED, O_PACEDSEC, O_UPLOADER, O_AWS, O_TOP, O_UARGS,
	O_KEEP, O_PERF, O_SINKDELAY, O_RINGSIZE, O_MAXMSG, O_BATCH, O_BATCHMAX };

/* One option. Returns 0, or -1 (reported) for a bad value. */
static int
parse_one(int c, const char *arg, struct bup_opts *o)
{
	switch (c) {
	case 'j': o->json = true; return 0;
	case O_SIZE: return parse_u64(arg, "--size", 1, 64 << 20, &o->size_u64);
	case O_COUNT: return parse_u64(arg, "--count", 1, 1000000000, &o->count);
	case O_WORKERS: return parse_unsigned(arg, "--workers", 1, BUP_MAX_WORKERS, &o->workers);
	case O_PRODUCERS:
		return parse_unsigned(arg, "--producers", 1, BUP_MAX_PRODUCERS, &o->producers);
	case O_ENDPOINT: return parse_endpoints(arg, o);
	case O_SOAK: o->soak = true; return 0;
	case O_NOREFS: o->refs = false; return 0;
	case O_REFSEC: return parse_unsigned(arg, "--ref-seconds", 1, 3600, &o->ref_seconds);
	case O_AWSCOUNT: return parse_u64(arg, "--aws-count", 0, 1000000, &o->aws_count);
	case O_PACED: return parse_fraction(arg, &o->paced_fraction);
	case O_PACEDSEC: return parse_unsigned(arg, "--paced-seconds", 1, 3600, &o->paced_seconds);
	case O_SINKDELAY: return parse_unsigned(arg, "--sink-delay-ms", 0, 60000, &o->sink_delay_ms);
	case O_RINGSIZE:
		if (parse_u64(arg, "--ring-size", RING_SIZE_MIN, RING_SIZE_MAX, &o->ring_size) < 0)
			return -1;
		if ((o->ring_size & (o->ring_size - 1)) != 0) {
			fprintf(stderr, "%s upload: --ring-size %s: a power of two\n", bench_prog, arg);
			return -1;
		}
		return 0;
	case O_MAXMSG: return parse_u64(arg, "--max-message", 1, MAX_MESSAGE_MAX, &o->max_message);
	case O_UPLOADER: o->uploader = arg; return 0;
	case O_AWS: o->aws = arg; return 0;
	case O_TOP: o->top = arg; return 0;
	case O_UARGS: o->extra_args = arg; return 0;
	case O_KEEP: o->keep = true; return 0;
	case O_PERF: o->perf_out = arg; return 0;
	case O_BATCH:
		if (strcmp(arg, "zstd") != 0 && strcmp(arg, "gzip") != 0) {
			fprintf(stderr, "%s upload: --batch %s: zstd or gzip\n", bench_prog, arg);
			return -1;
		}
		o->batch = arg;
		return 0;
	case O_BATCHMAX:
		/* The uploader's range for a rule's max-bytes: 1K to 4G. */
		return parse_u64(arg, "--batch-max-bytes", 1024, 4ll << 30, &o->batch_max_bytes);
	}
	usage(stderr);
	return -1;
}

static int
parse_opts(int argc, char **argv, struct bup_opts *o)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "size", required_argument, NULL, O_SIZE },
		{ "count", required_argument, NULL, O_COUNT },
		{ "workers", required_argument, NULL, O_WORKERS },
		{ "producers", required_argument, NULL, O_PRODUCERS },
		{ "endpoint", required_argument, NULL, O_ENDPOINT },
		{ "sink-delay-ms", required_argument, NULL, O_SINKDELAY },
		{ "ring-size", required_argument, NULL, O_RINGSIZE },
		{ "max-message", required_argument, NULL, O_MAXMSG },
		{ "soak", no_argument, NULL, O_SOAK },
		{ "no-refs", no_argument, NULL, O_NOREFS },
		{ "ref-seconds", required_argument, NULL, O_REFSEC },
		{ "aws-count", required_argument, NULL, O_AWSCOUNT },
		{ "paced", required_argument, NULL, O_PACED },
		{ "paced-seconds", required_argument, NULL, O_PACEDSEC },
		{ "uploader", required_argument, NULL, O_UPLOADER },
		{ "aws", required_argument, NULL, O_AWS },
		{ "top", required_argument, NULL, O_TOP },
		{ "uploader-args", required_argument, NULL, O_UARGS },
		{ "keep", no_argument, NULL, O_KEEP },
		{ "perf", required_argument, NULL, O_PERF },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "batch-max-bytes", required_argument, NULL, O_BATCHMAX },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (parse_one(c, optarg, o) < 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "%s upload: unexpected argument %s\n", bench_prog, argv[optind]);
		return -1;
	}
	o->size = (size_t)o->size_u64;
	return 0;
}

/* Large messages: a max-message that holds one, and a ring of at least
 * eight of them (the uploader requires max_message <= capacity / 8), unless
 * given. Returns 0 or -1 (reported) when they cannot fit. */
static int
fit_geometry(struct bup_opts *o)
{
	uint64_t need = (uint64_t)o->size + RECORD_SLACK;

	if (o->size > BUP_LARGE_SIZE - RECORD_SLACK && o->max_message == 0)
		o->max_message = need;
	if (o->max_message != 0 && o->ring_size == 0) {
		o->ring_size = 64ull << 20;
		while (o->ring_size < 8 * o->max_message && o->ring_size < RING_SIZE_MAX)
			o->ring_size <<= 1;
	}
	if (o->max_message != 0 && o->max_message < need) {
		fprintf(stderr, "%s upload: --max-message %llu cannot hold a %zu-byte message\n",
		    bench_prog, (unsigned long long)o->max_message, o->size);
		return -1;
	}
	if (o->max_message != 0 && o->ring_size != 0 && o->max_message > o->ring_size / 8) {
		fprintf(stderr, "%s upload: --max-message %llu is more than --ring-size / 8\n",
		    bench_prog, (unsigned long long)o->max_message);
		return -1;
	}
	o->keyspace = o->size > BUP_LARGE_SIZE ? KEYSPACE_LARGE : KEYSPACE;
	return 0;
}

/* Walks up from dir until tests/servers/nginx.sh is there (BUILD/bin, or
 * build/asan/bin). */
static void
find_top(const char *dir, char *top, size_t cap)
{
	char probe[PATH_MAX + 64], *slash;

	snprintf(top, cap, "%s", dir);
	for (int up = 0; up < 4; up++) {
		snprintf(probe, sizeof(probe), "%s/tests/servers/nginx.sh", top);
		if (access(probe, X_OK) == 0)
			return;
		slash = strrchr(top, '/');
		if (slash == NULL || slash == top)
			return;
		*slash = '\0';
	}
}

static int
require(const char *path, int mode, const char *hint)
{
	if (access(path, mode) == 0)
		return 0;
	fprintf(stderr, "%s upload: %s: %s (%s)\n", bench_prog, path, strerror(errno), hint);
	return -ENOENT;
}

/* Finds the source tree (for tests/servers and tools/bench), the uploader
 * next to this binary (BUILD/bin/) and the sink in BUILD/tests/. */
static int
locate(struct bup_opts *o)
{
	static char top[PATH_MAX], upl[PATH_MAX + 32], sink[PATH_MAX + 32];
	char exe[PATH_MAX], probe[PATH_MAX + 64], *slash;
	const char *env = getenv("S3RING_TOP");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return -errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash != NULL)
		*slash = '\0';
	if (o->uploader == NULL) {
		snprintf(upl, sizeof(upl), "%s/s3ring-uploader", exe);
		o->uploader = upl;
	}
	snprintf(sink, sizeof(sink), "%s/../tests/delay_sink", exe);
	o->sink_bin = sink;
	if (o->top == NULL) {
		if (env != NULL && env[0] != '\0')
			snprintf(top, sizeof(top), "%s", env);
		else
			find_top(exe, top, sizeof(top));
		o->top = top;
	}
	snprintf(probe, sizeof(probe), "%s/tests/servers/nginx.sh", o->top);
	if (require(probe, X_OK, "--top DIR or S3RING_TOP") < 0 ||
	    require(o->uploader, X_OK, "--uploader PATH") < 0)
		return -ENOENT;
	for (unsigned i = 0; i < o->nendpoints; i++)
		if (strcmp(o->endpoints[i], "sink") == 0 && require(o->sink_bin, X_OK, "make") < 0)
			return -ENOENT;
	return 0;
}

/* ------------------------------------------------------------- runs */

static enum bup_kind
kind_of(const char *name)
{
	if (strcmp(name, "nginx") == 0)
		return EP_NGINX;
	if (strcmp(name, "nginx-https") == 0)
		return EP_NGINX_HTTPS;
	if (strcmp(name, "s3rver") == 0)
		return EP_S3RVER;
	if (strcmp(name, "sink") == 0)
		return EP_SINK;
	return EP_URL;
}

/* The uploader's runs: warm-up, then the soak or the saturated and the
 * paced runs. Returns 0 or -errno. */
static int
uploader_runs(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_uploader *up,
    struct bup_result *er)
{
	bool large = o->size > BUP_LARGE_SIZE;
	uint64_t warm = o->workers * 20u < 200 ? 200 : o->workers * 20u;
	uint64_t cps[2] = { 100000, SOAK_COUNT };
	struct bup_run_spec rs = { .sample = SAMPLE_SAT, .keyspace = o->keyspace };
	int rc;

	/* Large messages: every worker busy once, not 200 bodies of 64 MiB. */
	if (large)
		warm = o->workers < 8 ? 8 : o->workers > 64 ? 64 : o->workers;
	/* Warm-up: the bucket check is done, connections are open. */
	rs.n = warm;
	if ((rc = bup_run(o, ep, up, &rs, &er->sat)) < 0)
		return rc;
	rs.first = warm;
	rs.run_id = 1;
	if (o->soak) {
		rs.n = SOAK_COUNT;
		rs.sample = 1024;
		rs.checkpoints = cps;
		rs.ncheckpoints = 2;
		return bup_run(o, ep, up, &rs, &er->soak);
	}
	rs.n = o->count;
	rs.perf_out = o->perf_out;
	if ((rc = bup_run(o, ep, up, &rs, &er->sat)) < 0 || o->paced_fraction <= 0)
		return rc;
	rs.rate = er->sat.ups * o->paced_fraction;
	rs.n = (uint64_t)(rs.rate * o->paced_seconds);
	if (rs.n < (large ? warm : 100))
		rs.n = large ? warm : 100;
	rs.first = warm + o->count;
	rs.run_id = 2;
	rs.sample = SAMPLE_PACED;
	rs.perf_out = NULL;
	return bup_run(o, ep, up, &rs, &er->paced);
}

/* The references of ep's kind, with the uploader gone. */
static void
reference_runs(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_result *er)
{
	bool large = o->size > BUP_LARGE_SIZE;

	if (!o->refs || o->soak || ep->kind == EP_URL)
		return;
	if (!large && (ep->kind == EP_NGINX || ep->kind == EP_NGINX_HTTPS || ep->kind == EP_SINK))
		(void)bup_ref_wrk(o, ep, er);
	if (!bup_interrupted && (large || ep->kind == EP_S3RVER))
		(void)bup_ref_curl(o, ep, er);
	/* nginx ignores the signature, so the AWS CLI runs against it too:
	 * against s3rver the server is the ceiling, against nginx the client. */
	if (!bup_interrupted && ep->kind != EP_SINK && o->aws_count > 0)
		(void)bup_ref_aws(o, ep, er);
}

static long
max_long(long a, long b)
{
	return a > b ? a : b;
}

static int
measure_endpoint(const struct bup_opts *o, struct bup_endpoint *ep, unsigned idx,
    struct bup_result *er)
{
	struct bup_uploader up;
	struct bup_mem m;
	int rc;

	memset(er, 0, sizeof(*er));
	er->wrk_rps = er->curl_ups = er->aws_ups = NAN;
	if ((rc = bup_server_start(o, ep)) < 0)
		goto out;
	if ((rc = bup_uploader_start(o, ep, idx, &up)) < 0)
		goto out_up;
	er->max_message = up.r.max_message;
	er->ring_capacity = up.r.capacity;
	rc = uploader_runs(o, ep, &up, er);
	if (rc < 0)
		goto out_up;
	if (bup_mem_sample(up.pid, &m) == 0) {
		er->hwm_kib = m.hwm_kib;
		er->private_peak_kib = m.private_kib;
	}
	er->private_peak_kib = max_long(er->private_peak_kib, max_long(er->sat.private_peak,
	    max_long(er->paced.private_peak, er->soak.private_peak)));
	er->measured = true;
	bup_uploader_stop(&up);
	reference_runs(o, ep, er);
	rc = bup_interrupted ? -EINTR : 0;
	goto out;
out_up:
	bup_uploader_stop(&up);
out:
	bup_server_stop(o, ep);
	return rc;
}

/* Options, defaults and the places of the programs. Returns 0 or an exit
 * status. */
static int
setup(int argc, char **argv, struct bup_opts *o)
{
	if (parse_opts(argc, argv, o) < 0 || fit_geometry(o) < 0)
		return EX_USAGE;
	/* 0: not given (both options refuse 0). */
	if (o->count == 0)
		o->count = o->batch != NULL ? BATCH_COUNT : 20000;
	if (o->producers == 0)
		o->producers = o->batch != NULL ? 4 : 2;
	if (o->batch != NULL && o->ring_size == 0)
		o->ring_size = BATCH_RING_SIZE;
	if (o->nendpoints == 0) {
		o->endpoints[o->nendpoints++] = "nginx";
		if (!o->soak)
			o->endpoints[o->nendpoints++] = "s3rver";
	}
	if (o->aws == NULL)
		o->aws = access("/usr/bin/aws", X_OK) == 0 ? "/usr/bin/aws" : "aws";
	if (locate(o) < 0)
		return EX_UNAVAILABLE;
	snprintf(bup_workdir, sizeof(bup_workdir), "/dev/shm/s3ring-bench-upload.XXXXXX");
	if (mkdtemp(bup_workdir) == NULL) {
		fprintf(stderr, "%s upload: mkdtemp %s: %s\n", bench_prog, bup_workdir, strerror(errno));
		bup_workdir[0] = '\0';
		return EX_OSERR;
	}
	return 0;
}

int
bench_upload_main(int argc, char **argv)
{
	struct bup_opts o = {
		.size_u64 = 1024, .workers = 16,
		.refs = true, .ref_seconds = 5, .aws_count = 2000,
		.paced_fraction = 0.5, .paced_seconds = 5, .sink_delay_ms = 30,
	};
	static struct bup_endpoint eps[BUP_MAX_ENDPOINTS];
	static struct bup_result res[BUP_MAX_ENDPOINTS];
	double load0, load1;
	int rc;

	if ((rc = setup(argc, argv, &o)) != 0)
		return rc;
	bup_install_handlers();
	load0 = bup_loadavg1();
	if (o.batch != NULL) {
		rc = bup_batch_main(&o, load0);
		bup_cleanup_all(&o);
		if (bup_interrupted) {
			fprintf(stderr, "%s upload: interrupted\n", bench_prog);
			return 128 + bup_interrupted;
		}
		return rc < 0 ? 1 : 0;
	}
	if (!o.json)
		fprintf(stderr, "%s upload: %zu-byte messages, %u workers, %u producers, load %.2f; work dir %s\n",
		    bench_prog, o.size, o.workers, o.producers, load0, bup_workdir);
	for (unsigned i = 0; i < o.nendpoints; i++) {
		eps[i] = (struct bup_endpoint){ .name = o.endpoints[i], .kind = kind_of(o.endpoints[i]) };
		if (measure_endpoint(&o, &eps[i], i, &res[i]) < 0) {
			rc = 1;
			if (bup_interrupted)
				break;
		}
	}
	load1 = bup_loadavg1();
	bup_cleanup_all(&o);
	if (bup_interrupted) {
		fprintf(stderr, "%s upload: interrupted\n", bench_prog);
		return 128 + bup_interrupted;
	}
	bup_report(&o, eps, res, load0, load1);
	return rc;
}
