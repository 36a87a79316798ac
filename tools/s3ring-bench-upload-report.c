/* s3ring-bench-upload-report.c -- the output of `s3ring-bench upload`:
 * JSON lines (--json) or a table, and the targets.
 *
 * Every JSON line names its "measure". The uploader's memory figure is
 * uploader_private_kib: the peak of its RssAnon, sampled during the runs.
 * peak_private_kib is the same number under its older name, and
 * peak_rss_kib is VmHWM, which also counts the shared ring's pages the
 * uploader has touched (so it grows with --ring-size): a secondary figure.
 * A target compares one figure with its limit; it is reported, never
 * enforced here.
 */
#include "s3ring-bench-upload.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3ring-bench.h"

#define MAX_TARGETS 48

struct target {
	char name[64];
	double value, limit;
	bool higher_is_better;
};

struct targets {
	struct target t[MAX_TARGETS];
	unsigned n;
};

double
bup_loadavg1(void)
{
	char buf[64];

	if (bup_read_first_line("/proc/loadavg", buf, sizeof(buf)) < 0)
		return NAN;
	return strtod(buf, NULL);
}

const char *
bup_kind_name(enum bup_kind k)
{
	switch (k) {
	case EP_NGINX: return "nginx";
	case EP_NGINX_HTTPS: return "nginx_https";
	case EP_S3RVER: return "s3rver";
	case EP_SINK: return "sink";
	case EP_URL: break;
	}
	return "url";
}

static void
add_target(struct targets *tg, const char *kind, const char *what, double v, double limit,
    bool higher)
{
	struct target *t;

	if (!isfinite(v) || tg->n == MAX_TARGETS)
		return;
	t = &tg->t[tg->n++];
	if (kind != NULL)
		snprintf(t->name, sizeof(t->name), "%s_%s", kind, what);
	else
		snprintf(t->name, sizeof(t->name), "%s", what);
	t->value = v;
	t->limit = limit;
	t->higher_is_better = higher;
}

static bool
target_pass(const struct target *t)
{
	return t->higher_is_better ? t->value >= t->limit : t->value <= t->limit;
}

void
bup_print_target(bool json, const char *name, double value, double limit, bool higher)
{
	const struct target t = { .value = value, .limit = limit, .higher_is_better = higher };

	if (json) {
		printf("{\"measure\":\"target\",\"name\":\"%s\",", name);
		/* A growth can be negative: only a missing value is null. */
		if (isfinite(value))
			printf("\"value\":%.3f,", value);
		else
			printf("\"value\":null,");
		bup_json_num("limit", limit, false);
		printf("\"pass\":%s}\n", target_pass(&t) ? "true" : "false");
	} else {
		printf("target %-40s %12.3f %s %-10.3f %s\n", name, value, higher ? ">=" : "<=",
		    limit, target_pass(&t) ? "PASS" : "FAIL");
	}
}

/* The uploader against the same-run reference of its endpoint, with the
 * targets of the engine: 0.8 of wrk against nginx over http and 0.7 over
 * https (the same connection count, SigV4 on); against the 30 ms sink, 0.9
 * of the lesser of wrk's rate and workers / delay (both are latency-bound);
 * large messages, 0.8 of curl --parallel uploading the same files. */
static void
reference_targets(const struct bup_opts *o, enum bup_kind kind, const struct bup_result *r,
    struct targets *tg)
{
	const char *k = bup_kind_name(kind);

	if (o->soak)
		return;
	if (kind == EP_NGINX)
		add_target(tg, k, "vs_wrk_ratio", r->sat.ups / r->wrk_rps, 0.80, true);
	if (kind == EP_NGINX_HTTPS)
		add_target(tg, k, "vs_wrk_ratio", r->sat.ups / r->wrk_rps, 0.70, true);
	if (kind == EP_SINK) {
		double ceiling = (double)o->workers * 1000.0 / (double)o->sink_delay_ms;

		if (r->wrk_rps < ceiling)
			ceiling = r->wrk_rps;
		add_target(tg, k, "vs_ceiling_ratio", r->sat.ups / ceiling, 0.90, true);
	}
	if (kind != EP_URL)
		add_target(tg, k, "vs_curl_ratio", r->sat.ups / r->curl_ups,
		    o->size >= BUP_LARGE_SIZE ? 0.80 : 0.90, true);
	if (kind == EP_URL || kind == EP_SINK)
		return;
	add_target(tg, k, "vs_aws_cli_rate", r->sat.ups / r->aws_ups, 5.0, true);
	if (r->aws_ok) {
		add_target(tg, k, "aws_cli_rss_over_uploader_private",
		    (double)r->aws_rss_kib / (double)r->private_peak_kib, 5.0, true);
		add_target(tg, k, "aws_cli_rss_over_uploader_vmhwm",
		    (double)r->aws_rss_kib / (double)r->hwm_kib, 5.0, true);
	}
}

double
bup_growth_pct(long a, long b)
{
	return a > 0 && b > 0 ? 100.0 * (double)(b - a) / (double)a : NAN;
}

static void
memory_targets(const struct bup_opts *o, enum bup_kind kind, const struct bup_result *r,
    struct targets *tg)
{
	const char *k = bup_kind_name(kind);
	/* Bodies are read from the ring in place: 16 KiB per upload in
	 * flight and 16 MiB for the rest (32 MiB with 1,024 in flight), and
	 * 48 MiB for large messages, whatever their size. */
	double bound = o->size >= BUP_LARGE_SIZE ? 48 * 1024 :
	    (double)o->workers * 16 + 16 * 1024;

	add_target(tg, k, "peak_private_kib", (double)r->private_peak_kib, bound, false);
	/* VmHWM counts the ring's pages the uploader has read: shared with
	 * the producers, sized by --ring-size, not the uploader's own. The
	 * limit adds the ring's capacity. */
	add_target(tg, k, "vmhwm_kib", (double)r->hwm_kib,
	    bound + (double)r->ring_capacity / 1024.0, false);
	if (o->soak) {
		add_target(tg, NULL, "soak_private_growth_pct",
		    bup_growth_pct(r->soak.private_at[0], r->soak.private_at[1]), 1.0, false);
		add_target(tg, NULL, "soak_vmhwm_growth_pct",
		    bup_growth_pct(r->soak.hwm_at[0], r->soak.hwm_at[1]), 2.0, false);
	}
}

/* ---------------------------------------------------------------- JSON */

void
bup_json_num(const char *key, double v, bool last)
{
	if (!isfinite(v) || v < 0)
		printf("\"%s\":null%s", key, last ? "}\n" : ",");
	else
		printf("\"%s\":%.3f%s", key, v, last ? "}\n" : ",");
}

static void
json_run(const struct bup_opts *o, const char *measure, const char *ep,
    const struct bup_run_result *r, const struct bup_result *er)
{
	if (!r->ok)
		return;
	printf("{\"measure\":\"%s\",\"endpoint\":\"%s\",\"size\":%zu,\"count\":%" PRIu64
	    ",\"workers\":%u,\"producers\":%u,", measure, ep, o->size, r->n,
	    o->workers, o->producers);
	bup_json_num("offered_per_s", r->rate > 0 ? r->rate : NAN, false);
	bup_json_num("seconds", r->secs, false);
	bup_json_num("uploads_per_s", r->ups, false);
	bup_json_num("mb_per_s", r->mbps, false);
	bup_json_num("cpu_s_per_1k", r->cpu_per_1k, false);
	printf("\"uploader_private_kib\":%ld,\"run_private_kib\":%ld,\"peak_private_kib\":%ld,"
	    "\"peak_rss_kib\":%ld,\"max_message\":%" PRIu32 ",\"ring_capacity\":%" PRIu64 ","
	    "\"lat_samples\":%" PRIu64 ",\"lat_missing\":%" PRIu64 ",",
	    er->private_peak_kib, r->private_peak, er->private_peak_kib, er->hwm_kib,
	    er->max_message, er->ring_capacity, r->lat_samples, r->lat_missing);
	bup_json_num("p50_ms", r->p50_ms, false);
	bup_json_num("p99_ms", r->p99_ms, false);
	bup_json_num("max_ms", r->max_ms, true);
}

static void
json_soak(const char *ep, const struct bup_result *r)
{
	printf("{\"measure\":\"soak_rss\",\"endpoint\":\"%s\",\"uploader_private_kib_100k\":%ld,"
	    "\"uploader_private_kib_1m\":%ld,", ep, r->soak.private_at[0], r->soak.private_at[1]);
	bup_json_num("uploader_private_growth_pct",
	    bup_growth_pct(r->soak.private_at[0], r->soak.private_at[1]), false);
	printf("\"private_kib_100k\":%ld,\"private_kib_1m\":%ld,\"hwm_kib_100k\":%ld,"
	    "\"hwm_kib_1m\":%ld}\n", r->soak.private_at[0], r->soak.private_at[1],
	    r->soak.hwm_at[0], r->soak.hwm_at[1]);
}

static void
json_refs(const struct bup_opts *o, const char *ep, const struct bup_result *r)
{
	if (isfinite(r->wrk_rps)) {
		printf("{\"measure\":\"wrk\",\"endpoint\":\"%s\",\"size\":%zu,\"connections\":%u,"
		    "\"seconds\":%u,\"errors\":%" PRIu64 ",", ep, o->size, o->workers,
		    o->ref_seconds, r->wrk_errors);
		bup_json_num("requests_per_s", r->wrk_rps, true);
	}
	if (isfinite(r->curl_ups)) {
		printf("{\"measure\":\"curl\",\"endpoint\":\"%s\",\"size\":%zu,\"parallel\":%u,"
		    "\"count\":%" PRIu64 ",\"failed\":%" PRIu64 ",", ep, o->size,
		    r->curl_parallel, o->count, r->curl_bad);
		bup_json_num("uploads_per_s", r->curl_ups, true);
	}
	if (isfinite(r->aws_ups)) {
		printf("{\"measure\":\"aws_cli\",\"endpoint\":\"%s\",\"size\":%zu,"
		    "\"max_concurrent_requests\":%u,\"count\":%" PRIu64 ",\"peak_rss_kib\":%ld,",
		    ep, o->size, o->workers, r->aws_count, r->aws_rss_kib);
		bup_json_num("uploads_per_s", r->aws_ups, true);
	}
}

static void
json_all(const struct bup_opts *o, const struct bup_endpoint *eps, const struct bup_result *res,
    const struct targets *tg, const char *cpu, double load0, double load1)
{
	for (unsigned i = 0; i < o->nendpoints; i++) {
		const struct bup_result *r = &res[i];

		if (!r->measured)
			continue;
		if (o->soak) {
			json_run(o, "soak", eps[i].name, &r->soak, r);
			json_soak(eps[i].name, r);
			continue;
		}
		json_run(o, "upload", eps[i].name, &r->sat, r);
		json_run(o, "latency", eps[i].name, &r->paced, r);
		json_refs(o, eps[i].name, r);
	}
	printf("{\"measure\":\"config\",\"nproc\":%ld,\"cpu\":\"%s\",\"size\":%zu,"
	    "\"workers\":%u,\"producers\":%u,\"sink_delay_ms\":%u,", sysconf(_SC_NPROCESSORS_ONLN),
	    cpu, o->size, o->workers, o->producers, o->sink_delay_ms);
	bup_json_num("loadavg_before", load0, false);
	bup_json_num("loadavg_after", load1, true);
	for (unsigned i = 0; i < tg->n; i++)
		bup_print_target(true, tg->t[i].name, tg->t[i].value, tg->t[i].limit,
		    tg->t[i].higher_is_better);
}

/* --------------------------------------------------------------- table */

/* A latency in ms for the table, "-" when there is none (the sink and URL
 * endpoints cannot see objects stored). */
static const char *
ms_cell(double v, char *buf, size_t cap)
{
	if (isfinite(v))
		snprintf(buf, cap, "%.2f", v);
	else
		snprintf(buf, cap, "-");
	return buf;
}

static void
text_run(const struct bup_opts *o, const char *ep, const struct bup_run_result *r,
    const struct bup_result *er)
{
	char p50[32], p99[32];

	if (!r->ok)
		return;
	printf("%-11s %-9s %9" PRIu64 " %9.0f %7.2f %8.3f %9.1f %8.1f %9s %9s  %s\n",
	    ep, "uploader", r->n, r->ups, r->mbps, r->cpu_per_1k,
	    (double)er->private_peak_kib / 1024.0, (double)er->hwm_kib / 1024.0,
	    ms_cell(r->p50_ms, p50, sizeof(p50)), ms_cell(r->p99_ms, p99, sizeof(p99)),
	    r->rate > 0 ? "paced" : "");
}

static void
text_refs(const struct bup_opts *o, const char *ep, const struct bup_result *r)
{
	if (isfinite(r->wrk_rps))
		printf("%-11s %-9s %9s %9.0f %7.2f %8s %9s   (%u connections, %us, %" PRIu64 " errors)\n",
		    ep, "wrk", "-", r->wrk_rps, r->wrk_rps * (double)o->size / 1e6,
		    "-", "-", o->workers, o->ref_seconds, r->wrk_errors);
	if (isfinite(r->curl_ups))
		printf("%-11s %-9s %9" PRIu64 " %9.0f %7.2f %8s %9s   (--parallel-max %u, %" PRIu64 " failed)\n",
		    ep, "curl", o->count, r->curl_ups, r->curl_ups * (double)o->size / 1e6,
		    "-", "-", r->curl_parallel, r->curl_bad);
	if (isfinite(r->aws_ups))
		printf("%-11s %-9s %9" PRIu64 " %9.0f %7.2f %8s %9.1f %8s   (max_concurrent_requests %u)\n",
		    ep, "aws-cli", r->aws_count, r->aws_ups, r->aws_ups * (double)o->size / 1e6,
		    "-", (double)r->aws_rss_kib / 1024.0, "-", o->workers);
}

static void
text_all(const struct bup_opts *o, const struct bup_endpoint *eps, const struct bup_result *res,
    const struct targets *tg, const char *cpu, double load0, double load1)
{
	printf("\n%-11s %-9s %9s %9s %7s %8s %9s %8s %9s %9s\n", "endpoint", "measure",
	    "uploads", "per s", "MB/s", "cpu s/1k", "priv MiB", "HWM MiB", "p50 ms", "p99 ms");
	for (unsigned i = 0; i < o->nendpoints; i++) {
		const struct bup_result *r = &res[i];

		if (!r->measured)
			continue;
		if (o->soak) {
			text_run(o, eps[i].name, &r->soak, r);
			printf("%-11s private (RssAnon) at 100k: %ld KiB, at 1M: %ld KiB (%+.2f%%); "
			    "VmHWM %ld, %ld KiB\n", eps[i].name, r->soak.private_at[0],
			    r->soak.private_at[1], bup_growth_pct(r->soak.private_at[0], r->soak.private_at[1]),
			    r->soak.hwm_at[0], r->soak.hwm_at[1]);
			continue;
		}
		text_run(o, eps[i].name, &r->sat, r);
		text_run(o, eps[i].name, &r->paced, r);
		text_refs(o, eps[i].name, r);
	}
	printf("\nmachine: %ld CPUs, %s; load average %.2f before, %.2f after\n",
	    sysconf(_SC_NPROCESSORS_ONLN), cpu, load0, load1);
	for (unsigned i = 0; i < tg->n; i++)
		bup_print_target(false, tg->t[i].name, tg->t[i].value, tg->t[i].limit,
		    tg->t[i].higher_is_better);
}

void
bup_report(const struct bup_opts *o, const struct bup_endpoint *eps,
    const struct bup_result *res, double load0, double load1)
{
	struct targets tg = { .n = 0 };
	char cpu[128];

	bench_cpu_model(cpu, sizeof(cpu));
	for (unsigned i = 0; i < o->nendpoints; i++) {
		if (!res[i].measured)
			continue;
		reference_targets(o, eps[i].kind, &res[i], &tg);
		memory_targets(o, eps[i].kind, &res[i], &tg);
	}
	if (o->json)
		json_all(o, eps, res, &tg, cpu, load0, load1);
	else
		text_all(o, eps, res, &tg, cpu, load0, load1);
}
