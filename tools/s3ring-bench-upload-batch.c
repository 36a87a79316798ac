/* s3ring-bench-upload-batch.c -- `s3ring-bench upload --batch CODEC`: log
 * lines through one batch rule, end to end, against the compressor's tool.
 *
 * One run: nginx (the EP_NGINX of -server.c) is the sink, and the uploader
 * runs on a fresh ring with one rule, logs/ with framing=lines, the codec
 * asked for, max-bytes 16M (or --batch-max-bytes) and max-age 1000 ms.
 * Forked producers (-run.c, with batch_produce() as their loop) put the
 * lines with an infinite timeout, so none is dropped; the run is timed from
 * their release until the ring's uploaded counter, which counts every
 * message of a confirmed batch object, has grown by the count. A warm-up of
 * WARM_LINES lines first opens the connections and checks the bucket.
 *
 * Every line is a function of its global index alone (log_line()), so the
 * baseline writes the very lines of the run, framed as the rule frames them
 * (the line and "\n"), to a file under the work directory, and times the
 * codec's command-line tool on it (single thread, its default level), best
 * of three, with the CPU time of the child from getrusage(). The file holds
 * the run's lines up to BASELINE_BYTES and is removed at once.
 *
 * The figures of the rule (uploaded and stored bytes, objects) are read
 * from the ring's upstats before and after the run, so the warm-up is not
 * counted. The targets are reported, never enforced.
 */
#include "s3ring-bench-upload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "futex.h"
#include "s3ring-bench.h"
#include "s3ring.h"

#define RULE_PREFIX     "logs/"
#define WARM_LINES      20000
#define BASELINE_BYTES  (512ull << 20)
#define BASELINE_RUNS   3
#define LINE_MAX_LEN    256
#define CHUNK           (1u << 20)
/* The targets of the issue. */
#define TARGET_LINES_S  1e6
#define TARGET_VS_TOOL  0.70
#define TARGET_PRIV_KIB (64 * 1024)
#define TARGET_GROWTH   1.0

/* ------------------------------------------------------------ log lines */

static uint64_t
mix64(uint64_t x)
{
	/* splitmix64's finaliser: every bit of the index moves every bit. */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static char *
put_str(char *p, const char *s, size_t len)
{
	memcpy(p, s, len);
	return p + len;
}

#define PUT_LIT(p, s) put_str((p), (s), sizeof(s) - 1)

static char *
put_u32(char *p, uint32_t v)
{
	char tmp[10];
	unsigned n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

static char *
put_2digits(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

struct str {
	const char *s;
	unsigned len;
};

#define S(x) { x, sizeof(x) - 1 }

/* Weighted by repetition: a table of 32 entries read with 5 bits. */
static const struct str methods[32] = {
	S("GET"), S("GET"), S("GET"), S("GET"), S("GET"), S("GET"), S("GET"), S("GET"),
	S("GET"), S("GET"), S("GET"), S("GET"), S("GET"), S("GET"), S("GET"), S("GET"),
	S("GET"), S("GET"), S("GET"), S("GET"), S("GET"), S("GET"), S("GET"), S("GET"),
	S("GET"), S("GET"), S("POST"), S("POST"), S("POST"), S("PUT"), S("DELETE"), S("HEAD"),
};

static const struct str statuses[32] = {
	S("200"), S("200"), S("200"), S("200"), S("200"), S("200"), S("200"), S("200"),
	S("200"), S("200"), S("200"), S("200"), S("200"), S("200"), S("200"), S("200"),
	S("200"), S("200"), S("200"), S("200"), S("200"), S("200"), S("304"), S("304"),
	S("304"), S("201"), S("301"), S("302"), S("404"), S("404"), S("500"), S("503"),
};

/* A path, and whether a number follows it (an id, a page). */
static const struct { struct str s; bool id; } paths[16] = {
	{ S("/"), false }, { S("/index.html"), false }, { S("/api/v1/users/"), true },
	{ S("/api/v1/orders/"), true }, { S("/api/v1/items?page="), true },
	{ S("/static/js/app.js"), false }, { S("/static/css/main.css"), false },
	{ S("/images/products/"), true }, { S("/healthz"), false },
	{ S("/api/v2/search?q=shoes&p="), true }, { S("/login"), false },
	{ S("/cart/add/"), true }, { S("/favicon.ico"), false }, { S("/robots.txt"), false },
	{ S("/api/v1/sessions/"), true }, { S("/checkout"), false },
};

/* Writes line g (no newline) to out, which holds LINE_MAX_LEN bytes, and
 * returns its length: an nginx access-log line of about 100 bytes, from
 * one of 4096 clients, at a clock that moves one second every 25,000
 * lines. Cheap by design (tables and digit loops): the producers must not
 * be what limits the run. */
static size_t
log_line(uint64_t g, char *out)
{
	uint64_t h = mix64(g), c = mix64(h & 4095);
	uint32_t t = (uint32_t)(g / 25000) + 18 * 3600 + 41 * 60;
	unsigned pi = (unsigned)(h >> 12) & 15;
	char *p = out;

	p = put_u32(p, 10 + (uint32_t)(c & 0x7f));
	*p++ = '.';
	p = put_u32(p, (uint32_t)(c >> 8) & 0xff);
	*p++ = '.';
	p = put_u32(p, (uint32_t)(c >> 16) & 0xff);
	*p++ = '.';
	p = put_u32(p, 1 + (uint32_t)(c >> 24) % 254);
	p = PUT_LIT(p, " - - [01/Dec/2026:");
	p = put_2digits(p, t / 3600 % 24);
	*p++ = ':';
	p = put_2digits(p, t / 60 % 60);
	*p++ = ':';
	p = put_2digits(p, t % 60);
	p = PUT_LIT(p, " +0000] \"");
	p = put_str(p, methods[(h >> 16) & 31].s, methods[(h >> 16) & 31].len);
	*p++ = ' ';
	p = put_str(p, paths[pi].s.s, paths[pi].s.len);
	if (paths[pi].id)
		p = put_u32(p, (uint32_t)(h >> 21) % 100000);
	p = PUT_LIT(p, " HTTP/1.1\" ");
	p = put_str(p, statuses[(h >> 38) & 31].s, 3);
	*p++ = ' ';
	p = put_u32(p, (uint32_t)(h >> 43) % 60000);
	/* The request time, 0.010 to 0.073 s. */
	p = PUT_LIT(p, " 0.0");
	p = put_2digits(p, 10 + (unsigned)(h >> 58));
	return (size_t)(p - out);
}

/* The producers' loop (bup_run_spec.produce): every nprod-th line from id,
 * under logs/app/<id>, with an infinite timeout. */
static int
batch_produce(struct s3ring_producer *p, const struct bup_run_spec *rs, unsigned id,
    unsigned nprod)
{
	char line[LINE_MAX_LEN], key[32];

	snprintf(key, sizeof(key), RULE_PREFIX "app/%u", id);
	for (uint64_t g = id; g < rs->n; g += nprod) {
		size_t len = log_line(rs->first + g, line);
		int rc = s3ring_put(p, key, line, len, -1);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------- baseline */

struct baseline {
	uint64_t lines, bytes;
	double gen_ns_per_line;     /* log_line() alone, one core */
	double tool_mbps;           /* input MB per wall second, best run */
	double tool_mb_per_cpu_s;   /* input MB per CPU second, best run */
	double tool_cpu_s;
	bool ok;
};

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Writes the run's lines from first, framed, to path: count lines or
 * BASELINE_BYTES, whichever is less. Returns 0 or -errno. */
static int
baseline_write(const char *path, uint64_t first, uint64_t count, struct baseline *b)
{
	static char buf[CHUNK + LINE_MAX_LEN];
	uint64_t gen_ns = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0)
		return -errno;
	b->lines = b->bytes = 0;
	while (b->lines < count && b->bytes < BASELINE_BYTES && rc == 0 && !bup_interrupted) {
		uint64_t t = mono_ns();
		size_t n = 0;

		while (n < CHUNK && b->lines < count) {
			n += log_line(first + b->lines++, buf + n);
			buf[n++] = '\n';
		}
		gen_ns += mono_ns() - t;
		b->bytes += n;
		rc = write_all(fd, buf, n);
	}
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	b->gen_ns_per_line = b->lines ? (double)gen_ns / (double)b->lines : NAN;
	return bup_interrupted ? -EINTR : rc;
}

static double
children_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_CHILDREN, &ru) < 0)
		return NAN;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* `zstd -3 -c FILE` or `gzip -6 -c FILE` into /dev/null, best of
 * BASELINE_RUNS, with the environment's options for them removed (zstd
 * stays on one thread, its default). Returns 0 or -errno. */
static int
baseline_tool(const char *codec, const char *path, struct baseline *b)
{
	char err[PATH_MAX];
	char *zstd[] = { "zstd", "-3", "-q", "-c", (char *)path, NULL };
	char *gzip[] = { "gzip", "-6", "-c", (char *)path, NULL };
	char *env[] = { "ZSTD_CLEVEL", "ZSTD_NBTHREADS", "GZIP", NULL };
	double best_wall = INFINITY, best_cpu = INFINITY;

	snprintf(err, sizeof(err), "%s/%s.err", bup_workdir, codec);
	for (int i = 0; i < BASELINE_RUNS; i++) {
		double cpu0 = children_cpu_s(), cpu;
		uint64_t t0 = mono_ns();
		int rc = bup_run_cmd(strcmp(codec, "zstd") == 0 ? zstd : gzip, env, NULL, err, 600);
		double wall = (double)(mono_ns() - t0) / 1e9;

		if (rc != 0) {
			fprintf(stderr, "%s: %s on the baseline file failed (%d), see %s\n",
			    bench_prog, codec, rc, err);
			return rc < 0 ? rc : -EIO;
		}
		cpu = children_cpu_s() - cpu0;
		if (wall < best_wall)
			best_wall = wall;
		if (cpu < best_cpu)
			best_cpu = cpu;
	}
	b->tool_mbps = (double)b->bytes / 1e6 / best_wall;
	b->tool_mb_per_cpu_s = (double)b->bytes / 1e6 / best_cpu;
	b->tool_cpu_s = best_cpu;
	b->ok = true;
	return 0;
}

/* ------------------------------------------------------------- the run */

/* The uploader's threads from /proc/PID/task/TID/schedstat: seconds on a
 * CPU and seconds runnable but waiting for one. The wait says whether the
 * machine, not the uploader, set the pace. Returns 0 or -errno. */
static int
sched_sample(pid_t pid, double *run_s, double *wait_s)
{
	char path[64], line[128];
	struct dirent *de;
	DIR *d;

	*run_s = *wait_s = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		unsigned long long on = 0, wait = 0;
		char file[PATH_MAX];

		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s/schedstat", path, de->d_name);
		if (bup_read_first_line(file, line, sizeof(line)) == 0 &&
		    sscanf(line, "%llu %llu", &on, &wait) == 2) {
			*run_s += (double)on / 1e9;
			*wait_s += (double)wait / 1e9;
		}
	}
	closedir(d);
	return 0;
}

/* The rule's counters (and the batch totals) at one moment. */
struct rule_counts {
	uint64_t objects, uploaded_bytes, stored_bytes, messages;
};

static void
read_rule(const struct bup_uploader *up, struct rule_counts *rc)
{
	const struct ring_upstats *us = &up->r.hdr->upstats;

	/* Relaxed: statistics, written by the uploader alone; nothing is
	 * read through them. */
	rc->objects = atomic_load_explicit(&us->batch_objects, memory_order_relaxed);
	rc->messages = atomic_load_explicit(&us->batch_messages, memory_order_relaxed);
	rc->uploaded_bytes = atomic_load_explicit(&us->batch[0].uploaded_bytes,
	    memory_order_relaxed);
	rc->stored_bytes = atomic_load_explicit(&us->batch[0].stored_bytes, memory_order_relaxed);
}

struct batch_result {
	struct bup_run_result run;
	struct rule_counts d;       /* over the measured run */
	double uploader_cpu_s, producer_cpu_s;
	double sched_run_s, sched_wait_s;   /* the uploader, NAN if unknown */
	bool rule_ok;               /* the ring names logs/ as rule 0 */
	struct baseline base;
};

/* The uploader's flags: the rule, then --uploader-args. */
static void
rule_flags(const struct bup_opts *o, char *buf, size_t cap)
{
	char max[32];

	if (o->batch_max_bytes != 0)
		snprintf(max, sizeof(max), "%" PRIu64, o->batch_max_bytes);
	else
		snprintf(max, sizeof(max), "16M");
	snprintf(buf, cap, "--batch " RULE_PREFIX ":compression=%s,framing=lines,max-bytes=%s,"
	    "max-age=1000%s%s", o->batch, max, o->extra_args ? " " : "",
	    o->extra_args ? o->extra_args : "");
}

/* The warm-up and the measured run on a started uploader. */
static int
batch_runs(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_uploader *up,
    struct batch_result *br)
{
	uint64_t cps[2] = { o->count / 10 ? o->count / 10 : 1, o->count };
	struct bup_run_spec rs = { .n = WARM_LINES, .sample = 1u << 30, .keyspace = 1,
		.produce = batch_produce };
	struct rule_counts c0, c1;
	double pcpu0, run0, wait0, run1, wait1;
	bool sched;
	int rc;

	if ((rc = bup_run(o, ep, up, &rs, &br->run)) < 0)
		return rc;
	read_rule(up, &c0);
	rs.n = o->count;
	rs.first = WARM_LINES;
	rs.run_id = 1;
	rs.checkpoints = cps;
	rs.ncheckpoints = 2;
	rs.perf_out = o->perf_out;
	pcpu0 = children_cpu_s();
	sched = sched_sample(up->pid, &run0, &wait0) == 0;
	if ((rc = bup_run(o, ep, up, &rs, &br->run)) < 0)
		return rc;
	sched = sched && sched_sample(up->pid, &run1, &wait1) == 0;
	br->sched_run_s = sched ? run1 - run0 : NAN;
	br->sched_wait_s = sched ? wait1 - wait0 : NAN;
	/* The producers were reaped by bup_run(): their CPU time is here. */
	br->producer_cpu_s = children_cpu_s() - pcpu0;
	read_rule(up, &c1);
	br->d = (struct rule_counts){ c1.objects - c0.objects,
		c1.uploaded_bytes - c0.uploaded_bytes, c1.stored_bytes - c0.stored_bytes,
		c1.messages - c0.messages };
	br->uploader_cpu_s = br->run.cpu_per_1k * (double)o->count / 1000.0;
	br->rule_ok = atomic_load_explicit(&up->r.hdr->upstats.batch_rules,
	    memory_order_relaxed) >= 1 &&
	    strncmp(up->r.hdr->upstats.batch[0].prefix, RULE_PREFIX, RING_BATCH_PREFIX) == 0;
	return 0;
}

/* ------------------------------------------------------------ the report */

static double
safe_div(double a, double b)
{
	return b > 0 ? a / b : NAN;
}

/* The figures derived from a run, for both outputs. */
struct batch_figures {
	double lines_s, raw_mbps, puts_per_m, ratio, cpu_per_mb, mb_per_cpu_s, growth;
	double peak_growth;         /* of the peak up to 10% to the peak up to 100% */
	double vs_tool_cpu, vs_tool_wall, avg_line;
};

static void
figures(const struct bup_opts *o, const struct batch_result *br, struct batch_figures *f)
{
	double raw_mb = (double)br->d.uploaded_bytes / 1e6;

	f->lines_s = br->run.ups;
	f->raw_mbps = safe_div(raw_mb, br->run.secs);
	f->puts_per_m = (double)br->d.objects / (double)o->count * 1e6;
	f->ratio = safe_div((double)br->d.uploaded_bytes, (double)br->d.stored_bytes);
	f->cpu_per_mb = safe_div(br->uploader_cpu_s, raw_mb);
	f->mb_per_cpu_s = safe_div(raw_mb, br->uploader_cpu_s);
	f->growth = bup_growth_pct(br->run.private_at[0], br->run.private_at[1]);
	f->peak_growth = bup_growth_pct(br->run.peak_at[0], br->run.peak_at[1]);
	f->avg_line = safe_div((double)br->d.uploaded_bytes, (double)o->count);
	f->vs_tool_cpu = br->base.ok ? safe_div(f->mb_per_cpu_s, br->base.tool_mb_per_cpu_s) : NAN;
	f->vs_tool_wall = br->base.ok ? safe_div(f->raw_mbps, br->base.tool_mbps) : NAN;
}

static void
report_json(const struct bup_opts *o, const struct batch_result *br,
    const struct batch_figures *f, const char *cpu, double load0, double load1)
{
	const struct baseline *b = &br->base;

	printf("{\"measure\":\"batch\",\"endpoint\":\"nginx\",\"compression\":\"%s\","
	    "\"count\":%" PRIu64 ",\"producers\":%u,\"workers\":%u,\"ring_size\":%" PRIu64 ","
	    "\"max_bytes\":%" PRIu64 ",\"objects\":%" PRIu64 ",\"uploaded_bytes\":%" PRIu64 ","
	    "\"stored_bytes\":%" PRIu64 ",\"uploader_private_kib_10pct\":%ld,"
	    "\"uploader_private_kib_100pct\":%ld,\"uploader_private_kib\":%ld,"
	    "\"uploader_peak_kib_10pct\":%ld,\"uploader_peak_kib_100pct\":%ld,",
	    o->batch, o->count, o->producers, o->workers, o->ring_size,
	    o->batch_max_bytes ? o->batch_max_bytes : (uint64_t)16 << 20, br->d.objects,
	    br->d.uploaded_bytes, br->d.stored_bytes, br->run.private_at[0],
	    br->run.private_at[1], br->run.private_peak, br->run.peak_at[0], br->run.peak_at[1]);
	bup_json_num("seconds", br->run.secs, false);
	bup_json_num("lines_per_s", f->lines_s, false);
	bup_json_num("raw_mb_per_s", f->raw_mbps, false);
	bup_json_num("avg_line_bytes", f->avg_line, false);
	bup_json_num("puts_per_million", f->puts_per_m, false);
	bup_json_num("compression_ratio", f->ratio, false);
	bup_json_num("uploader_cpu_s", br->uploader_cpu_s, false);
	bup_json_num("uploader_cpu_s_per_raw_mb", f->cpu_per_mb, false);
	bup_json_num("raw_mb_per_uploader_cpu_s", f->mb_per_cpu_s, false);
	bup_json_num("producer_cpu_s", br->producer_cpu_s, false);
	bup_json_num("uploader_sched_run_s", br->sched_run_s, false);
	bup_json_num("uploader_sched_wait_s", br->sched_wait_s, false);
	/* Growths are signed: null only when a reading is missing. */
	printf("\"uploader_peak_growth_pct\":");
	printf(isfinite(f->peak_growth) ? "%.3f," : "null,", f->peak_growth);
	printf("\"uploader_private_growth_pct\":");
	printf(isfinite(f->growth) ? "%.3f}\n" : "null}\n", f->growth);
	printf("{\"measure\":\"batch_baseline\",\"tool\":\"%s\",\"lines\":%" PRIu64 ","
	    "\"bytes\":%" PRIu64 ",\"runs\":%d,", o->batch, b->lines, b->bytes, BASELINE_RUNS);
	bup_json_num("generator_ns_per_line", b->gen_ns_per_line, false);
	bup_json_num("mb_per_s", b->ok ? b->tool_mbps : NAN, false);
	bup_json_num("mb_per_cpu_s", b->ok ? b->tool_mb_per_cpu_s : NAN, false);
	bup_json_num("uploader_vs_tool_cpu", f->vs_tool_cpu, false);
	bup_json_num("end_to_end_vs_tool", f->vs_tool_wall, true);
	printf("{\"measure\":\"config\",\"nproc\":%ld,\"cpu\":\"%s\",\"workers\":%u,"
	    "\"producers\":%u,", sysconf(_SC_NPROCESSORS_ONLN), cpu, o->workers, o->producers);
	bup_json_num("loadavg_before", load0, false);
	bup_json_num("loadavg_after", load1, true);
}

static void
report_text(const struct bup_opts *o, const struct batch_result *br,
    const struct batch_figures *f, const char *cpu, double load0, double load1)
{
	const struct baseline *b = &br->base;
	const char *tool = strcmp(o->batch, "zstd") == 0 ? "zstd -3" : "gzip -6";

	printf("\nbatch %s to nginx: %" PRIu64 " lines of %.1f bytes on average, %u producers, "
	    "%u workers, ring %" PRIu64 " MiB\n", o->batch, o->count, f->avg_line, o->producers,
	    o->workers, o->ring_size >> 20);
	printf("  end to end      %.2f s: %.0f lines/s, %.1f MB/s raw\n", br->run.secs,
	    f->lines_s, f->raw_mbps);
	printf("  PUTs            %" PRIu64 " objects: %.2f per million lines\n", br->d.objects,
	    f->puts_per_m);
	printf("  compression     ratio %.2f (%.1f MB framed, %.1f MB stored)\n", f->ratio,
	    (double)br->d.uploaded_bytes / 1e6, (double)br->d.stored_bytes / 1e6);
	printf("  uploader CPU    %.2f s: %.4f s per raw MB, %.1f raw MB per CPU s\n",
	    br->uploader_cpu_s, f->cpu_per_mb, f->mb_per_cpu_s);
	printf("  uploader sched  %.2f s on a CPU, %.2f s runnable waiting for one "
	    "(/proc schedstat)\n", br->sched_run_s, br->sched_wait_s);
	printf("  uploader memory private (RssAnon) at 10%%: %.1f MiB, at 100%%: %.1f MiB "
	    "(%+.2f%%), peak %.1f MiB\n", (double)br->run.private_at[0] / 1024.0,
	    (double)br->run.private_at[1] / 1024.0, f->growth,
	    (double)br->run.private_peak / 1024.0);
	printf("                  its peak up to 10%%: %.1f MiB, up to 100%%: %.1f MiB (%+.2f%%)\n",
	    (double)br->run.peak_at[0] / 1024.0, (double)br->run.peak_at[1] / 1024.0,
	    f->peak_growth);
	printf("  producers       %.2f CPU s (%.0f ns a line, put included); the generator "
	    "alone %.0f ns a line\n", br->producer_cpu_s,
	    br->producer_cpu_s * 1e9 / (double)o->count, b->gen_ns_per_line);
	if (b->ok)
		printf("  %-15s %.1f MB of the same lines: %.1f MB/s, %.1f MB per CPU s "
		    "(best of %d)\n", tool, (double)b->bytes / 1e6, b->tool_mbps,
		    b->tool_mb_per_cpu_s, BASELINE_RUNS);
	printf("  vs the tool     uploader MB per CPU s / tool's: %.2f; end-to-end MB/s / "
	    "tool's MB/s: %.2f\n", f->vs_tool_cpu, f->vs_tool_wall);
	printf("\nmachine: %ld CPUs, %s; load average %.2f before, %.2f after\n",
	    sysconf(_SC_NPROCESSORS_ONLN), cpu, load0, load1);
}

static void
report(const struct bup_opts *o, const struct batch_result *br, double load0, double load1)
{
	struct batch_figures f;
	char cpu[128], name[64];

	bench_cpu_model(cpu, sizeof(cpu));
	figures(o, br, &f);
	if (o->json)
		report_json(o, br, &f, cpu, load0, load1);
	else
		report_text(o, br, &f, cpu, load0, load1);
	snprintf(name, sizeof(name), "batch_%s_lines_per_s", o->batch);
	bup_print_target(o->json, name, f.lines_s, TARGET_LINES_S, true);
	snprintf(name, sizeof(name), "batch_%s_vs_tool_per_cpu_s", o->batch);
	bup_print_target(o->json, name, f.vs_tool_cpu, TARGET_VS_TOOL, true);
	snprintf(name, sizeof(name), "batch_%s_private_kib", o->batch);
	bup_print_target(o->json, name, (double)br->run.private_peak, TARGET_PRIV_KIB, false);
	snprintf(name, sizeof(name), "batch_%s_private_growth_pct", o->batch);
	bup_print_target(o->json, name, f.growth, TARGET_GROWTH, false);
	/* The readings at 10% and 100% fall wherever the compressor's buffer
	 * happens to be (it is touched as the compressed bytes grow and given
	 * back after the PUT): the peaks are the steadier measure of growth. */
	snprintf(name, sizeof(name), "batch_%s_peak_growth_pct", o->batch);
	bup_print_target(o->json, name, f.peak_growth, TARGET_GROWTH, false);
}

int
bup_batch_main(const struct bup_opts *o0, double load0)
{
	static char flags[2048];
	struct bup_opts o = *o0;
	struct bup_endpoint ep = { .name = "nginx", .kind = EP_NGINX };
	static struct batch_result br;
	struct bup_uploader up;
	char path[PATH_MAX];
	int rc;

	rule_flags(o0, flags, sizeof(flags));
	o.extra_args = flags;
	if (!o.json)
		fprintf(stderr, "%s upload --batch %s: %" PRIu64 " log lines, %u producers, "
		    "%u workers, load %.2f; work dir %s\n", bench_prog, o.batch, o.count,
		    o.producers, o.workers, load0, bup_workdir);
	memset(&up, 0, sizeof(up));
	if ((rc = bup_server_start(&o, &ep)) < 0)
		goto out_server;
	if ((rc = bup_uploader_start(&o, &ep, 0, &up)) < 0)
		goto out_up;
	rc = batch_runs(&o, &ep, &up, &br);
	if (rc == 0 && !br.rule_ok)
		fprintf(stderr, "%s: the ring names no rule %s: the uploader ignored --batch?\n",
		    bench_prog, RULE_PREFIX);
out_up:
	bup_uploader_stop(&up);
out_server:
	bup_server_stop(&o, &ep);
	if (rc < 0)
		goto out;
	/* The tool runs alone: the uploader and nginx are gone. */
	snprintf(path, sizeof(path), "%s/lines.log", bup_workdir);
	rc = baseline_write(path, WARM_LINES, o.count, &br.base);
	if (rc == 0)
		rc = baseline_tool(o.batch, path, &br.base);
	(void)unlink(path);
	if (rc == -EINTR)
		goto out;
	if (rc < 0)
		fprintf(stderr, "%s: no baseline: %s\n", bench_prog, strerror(-rc));
	report(&o, &br, load0, bup_loadavg1());
	return 0;
out:
	if (rc < 0 && rc != -EINTR)
		fprintf(stderr, "%s upload --batch: %s\n", bench_prog, strerror(-rc));
	return rc;
}
