/* s3ring-bench-upload-run.c -- one measured run: forked producers put N
 * messages through the library, the bench watches the uploader drain them.
 *
 * The run starts when the parent releases the producers (a futex in shared
 * memory) and ends when the ring's uploaded counter has grown by N (polled
 * every POLL_MS). Over that window it measures the rate, the uploader's CPU
 * time, and its private memory (RssAnon, every MEM_EVERY_NS, the peak kept).
 * One message in rs->sample is timed: the producer stamps CLOCK_MONOTONIC
 * before the put (paced: the time the put was due), and the bench stamps
 * when inotify reports the object stored in the endpoint's data directory.
 * Every producer is reaped (or killed and reaped) before bup_run() returns.
 */
#include "s3ring-bench-upload.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "futex.h"
#include "s3ring-bench.h"
#include "s3ring.h"

#define POLL_MS         2
#define MEM_EVERY_NS    (50ull * BUP_MS_NS)
#define STALL_NS        (60ull * BUP_SEC_NS)

/* One run's memory, shared by the parent and its producer children
 * (MAP_SHARED | MAP_ANONYMOUS), sized before the fork. */
struct run_shm {
	_Atomic uint32_t ready;
	_Atomic uint32_t go;        /* futex: 0 until the parent starts the run */
	_Atomic uint64_t errors;
	_Atomic int first_error;
	uint64_t nsamples;
	_Atomic uint64_t put_ns[];  /* per sample: CLOCK_MONOTONIC of the put */
};

/* What the parent holds during a run; run_free() releases all of it. */
struct run_ctx {
	pid_t pids[BUP_MAX_PRODUCERS];
	struct run_shm *sh;
	size_t shm_len;
	uint64_t *done_ns;          /* per sample: when the object was stored */
	double *lat;
	int ifd;                    /* inotify on the samples' directory, or -1 */
	pid_t perf_pid;
};

/* ------------------------------------------------------------ producers */

/* The key of message g: sampled ones are unique under l<run_id>/ (inotify
 * sees each), the rest cycle through rs->keyspace. */
static void
message_key(const struct bup_run_spec *rs, uint64_t g, char *key, size_t cap)
{
	if (g % rs->sample == 0)
		snprintf(key, cap, "l%u/%" PRIu64, rs->run_id, g / rs->sample);
	else
		snprintf(key, cap, "d/%" PRIu64, (rs->first + g) % rs->keyspace);
}

static void
sleep_until(uint64_t when)
{
	struct timespec ts = { .tv_sec = (time_t)(when / BUP_SEC_NS),
		.tv_nsec = (long)(when % BUP_SEC_NS) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int
producer_main(const char *ring, const struct bup_run_spec *rs, struct run_shm *sh,
    unsigned id, unsigned nprod, size_t size)
{
	struct s3ring_producer *p = s3ring_open(ring, 0);
	uint8_t *body = malloc(size ? size : 1);
	uint64_t t0, interval = 0;
	char key[128];
	int rc = 0;

	if (p == NULL || body == NULL) {
		rc = p == NULL ? -errno : -ENOMEM;
		goto out;
	}
	bup_fill_body(body, size);
	if (rs->rate > 0)
		interval = (uint64_t)((double)BUP_SEC_NS * nprod / rs->rate);
	atomic_fetch_add_explicit(&sh->ready, 1, memory_order_release);
	/* Acquire: pairs with the parent's release store of go. */
	while (atomic_load_explicit(&sh->go, memory_order_acquire) == 0)
		(void)futex_wait(&sh->go, 0, mono_ns() + FUTEX_MAX_WAIT_NS);
	if (rs->produce != NULL) {
		if ((rc = rs->produce(p, rs, id, nprod)) < 0)
			atomic_fetch_add(&sh->errors, 1);
		goto out;
	}
	t0 = mono_ns();
	for (uint64_t i = 0, g = id; g < rs->n; i++, g += nprod) {
		uint64_t when = t0 + i * interval;

		if (interval != 0)
			sleep_until(when);
		message_key(rs, g, key, sizeof(key));
		/* Paced: the time the put was due, so that a producer that fell
		 * behind does not hide the queueing (coordinated omission). */
		if (g % rs->sample == 0)
			atomic_store_explicit(&sh->put_ns[g / rs->sample],
			    interval ? when : mono_ns(), memory_order_relaxed);
		rc = s3ring_put(p, key, body, size, -1);
		if (rc < 0) {
			atomic_fetch_add(&sh->errors, 1);
			break;
		}
	}
out:
	if (rc < 0)
		atomic_store(&sh->first_error, rc);
	free(body);
	if (p != NULL)
		s3ring_close(p);
	return rc < 0 ? 1 : 0;
}

/* Forks the producers and waits until each has opened the ring. Returns 0
 * or -errno; the pids started are in ctx either way. */
static int
start_producers(const struct bup_opts *o, const struct bup_uploader *up,
    const struct bup_run_spec *rs, struct run_ctx *ctx)
{
	fflush(NULL);
	for (unsigned i = 0; i < o->producers; i++) {
		ctx->pids[i] = fork();
		if (ctx->pids[i] < 0) {
			ctx->pids[i] = 0;
			return -errno;
		}
		if (ctx->pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			_exit(producer_main(up->ring, rs, ctx->sh, i, o->producers, o->size));
		}
	}
	/* Acquire: pairs with each producer's release increment of ready. */
	while (atomic_load_explicit(&ctx->sh->ready, memory_order_acquire) < o->producers) {
		if (bup_interrupted)
			return -EINTR;
		for (unsigned i = 0; i < o->producers; i++)
			if (waitpid(ctx->pids[i], NULL, WNOHANG) == ctx->pids[i]) {
				ctx->pids[i] = 0;
				fprintf(stderr, "%s: a producer could not open ring %s: %s\n",
				    bench_prog, up->ring,
				    s3ring_strerror(atomic_load(&ctx->sh->first_error)));
				return -EIO;
			}
		usleep(1000);
	}
	return 0;
}

/* Reaps the producers that finished. Returns 0, or -EIO if one failed. */
static int
reap_producers(const struct bup_opts *o, struct run_ctx *ctx)
{
	int rc = 0;

	for (unsigned i = 0; i < o->producers; i++) {
		int st;

		if (ctx->pids[i] > 0 && waitpid(ctx->pids[i], &st, 0) == ctx->pids[i] &&
		    (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
			fprintf(stderr, "%s: producer %u failed\n", bench_prog, i);
			rc = -EIO;
		}
		ctx->pids[i] = 0;
	}
	if (atomic_load(&ctx->sh->errors) != 0) {
		fprintf(stderr, "%s: %" PRIu64 " puts failed: %s\n", bench_prog,
		    (uint64_t)atomic_load(&ctx->sh->errors),
		    s3ring_strerror(atomic_load(&ctx->sh->first_error)));
		rc = -EIO;
	}
	return rc;
}

/* ------------------------------------------------------------- samples */

/* Parses an inotify event name "N" or "N._S3rver_metadata.json" (the final
 * file s3rver writes) into N. nginx stores by renaming into place, so its
 * event is IN_MOVED_TO. */
static bool
event_sample(const struct inotify_event *ev, enum bup_kind kind, uint64_t *n)
{
	const char *s = ev->name, *end;
	const char *errstr = NULL;
	char num[32];
	size_t len;

	if (ev->len == 0)
		return false;
	len = strspn(s, "0123456789");
	end = s + len;
	if (len == 0 || len >= sizeof(num))
		return false;
	if (kind == EP_S3RVER) {
		if (strcmp(end, "._S3rver_metadata.json") != 0 || !(ev->mask & IN_CLOSE_WRITE))
			return false;
	} else if (*end != '\0' || !(ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE))) {
		return false;
	}
	memcpy(num, s, len);
	num[len] = '\0';
	*n = (uint64_t)strtonum(num, 0, LLONG_MAX, &errstr);
	return errstr == NULL;
}

static void
drain_events(struct run_ctx *ctx, enum bup_kind kind)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t now = mono_ns();
	ssize_t got;

	while ((got = read(ctx->ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + got;) {
			const struct inotify_event *ev = (const void *)p;
			uint64_t s;

			if (event_sample(ev, kind, &s) && s < ctx->sh->nsamples && ctx->done_ns[s] == 0)
				ctx->done_ns[s] = now;
			p += sizeof(*ev) + ev->len;
		}
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
quantile(const double *v, size_t n, double q)
{
	size_t rank;

	if (n == 0)
		return NAN;
	rank = (size_t)ceil((double)n * q);
	if (rank < 1)
		rank = 1;
	return v[(rank > n ? n : rank) - 1];
}

/* Put-to-stored latency over the samples that were seen stored. */
static void
latency_stats(const struct bup_run_spec *rs, struct run_ctx *ctx, struct bup_run_result *res)
{
	uint64_t expect = (rs->n + rs->sample - 1) / rs->sample;
	size_t nl = 0;

	for (uint64_t s = 0; s < expect && s < ctx->sh->nsamples; s++) {
		uint64_t put = atomic_load_explicit(&ctx->sh->put_ns[s], memory_order_relaxed);

		if (ctx->done_ns[s] != 0 && put != 0 && ctx->done_ns[s] >= put)
			ctx->lat[nl++] = (double)(ctx->done_ns[s] - put) / 1e6;
	}
	qsort(ctx->lat, nl, sizeof(*ctx->lat), cmp_double);
	res->lat_samples = nl;
	res->lat_missing = expect - nl;
	res->p50_ms = quantile(ctx->lat, nl, 0.50);
	res->p99_ms = quantile(ctx->lat, nl, 0.99);
	res->max_ms = nl ? ctx->lat[nl - 1] : NAN;
}

/* ------------------------------------------------------------ the run */

/* Maps the shared memory, allocates the sample arrays and, where the
 * endpoint's objects can be seen, watches the samples' directory. */
static int
run_setup(const struct bup_endpoint *ep, const struct bup_run_spec *rs, struct run_ctx *ctx)
{
	uint64_t nsamples = rs->n / rs->sample + 1;
	char dir[PATH_MAX + 32];

	memset(ctx, 0, sizeof(*ctx));
	ctx->ifd = -1;
	ctx->shm_len = sizeof(*ctx->sh) + nsamples * sizeof(uint64_t);
	ctx->sh = mmap(NULL, ctx->shm_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	if (ctx->sh == MAP_FAILED) {
		ctx->sh = NULL;
		return -errno;
	}
	ctx->sh->nsamples = nsamples;
	ctx->done_ns = calloc(nsamples, sizeof(*ctx->done_ns));
	ctx->lat = calloc(nsamples, sizeof(*ctx->lat));
	if (ctx->done_ns == NULL || ctx->lat == NULL)
		return -ENOMEM;
	if (ep->data[0] == '\0')
		return 0;
	snprintf(dir, sizeof(dir), "%s/l%u", ep->data, rs->run_id);
	(void)mkdir(ep->data, 0755);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return 0;
	ctx->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ctx->ifd >= 0 && inotify_add_watch(ctx->ifd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		close(ctx->ifd);
		ctx->ifd = -1;
	}
	return 0;
}

/* Kills what still runs of the run and frees it. */
static void
run_free(const struct bup_opts *o, struct run_ctx *ctx)
{
	for (unsigned i = 0; i < o->producers; i++)
		if (ctx->pids[i] > 0) {
			kill(ctx->pids[i], SIGKILL);
			waitpid(ctx->pids[i], NULL, 0);
		}
	if (ctx->perf_pid > 0)
		bup_stop_group(ctx->perf_pid);
	if (ctx->ifd >= 0)
		close(ctx->ifd);
	free(ctx->done_ns);
	free(ctx->lat);
	if (ctx->sh != NULL)
		munmap(ctx->sh, ctx->shm_len);
}

static void
perf_start(const char *perf_out, pid_t pid, struct run_ctx *ctx)
{
	char spid[16], err[PATH_MAX];
	char *argv[] = { "perf", "record", "-F", "999", "--call-graph", "dwarf,16384", "-o",
		(char *)perf_out, "-p", spid, NULL };

	snprintf(spid, sizeof(spid), "%d", (int)pid);
	snprintf(err, sizeof(err), "%s/perf.err", bup_workdir);
	ctx->perf_pid = bup_spawn(argv, NULL, NULL, err);
	usleep(300000); /* perf attaches to every thread */
}

static void
perf_stop(struct run_ctx *ctx)
{
	if (ctx->perf_pid <= 0)
		return;
	/* SIGINT: perf writes its data and exits. */
	kill(ctx->perf_pid, SIGINT);
	(void)bup_wait_child(ctx->perf_pid, 30 * BUP_SEC_NS);
	ctx->perf_pid = 0;
}

/* Memory during the run: the peak of RssAnon, and the readings at the
 * checkpoints that count has passed. */
static void
sample_memory(const struct bup_uploader *up, const struct bup_run_spec *rs, uint64_t done,
    bool periodic, unsigned *next_cp, struct bup_run_result *res)
{
	struct bup_mem m;

	if (periodic && bup_mem_sample(up->pid, &m) == 0 && m.private_kib > res->private_peak)
		res->private_peak = m.private_kib;
	while (*next_cp < rs->ncheckpoints && done >= rs->checkpoints[*next_cp]) {
		if (bup_mem_sample(up->pid, &m) == 0 && *next_cp < 2) {
			res->hwm_at[*next_cp] = m.hwm_kib;
			res->private_at[*next_cp] = m.private_kib;
			if (m.private_kib > res->private_peak)
				res->private_peak = m.private_kib;
			res->peak_at[*next_cp] = res->private_peak;
		}
		(*next_cp)++;
	}
}

/* Polls until the uploader has uploaded rs->n more than base. Returns 0
 * with *t_end set, -EINTR, or -EIO when nothing moved for STALL_NS or the
 * uploader died. */
static int
watch(const struct bup_endpoint *ep, const struct bup_uploader *up,
    const struct bup_run_spec *rs, struct run_ctx *ctx, uint64_t base,
    struct bup_run_result *res, uint64_t *t_end)
{
	uint64_t last_progress = mono_ns(), last_count = base, next_mem = 0;
	unsigned next_cp = 0;

	for (;;) {
		struct pollfd pfd = { .fd = ctx->ifd, .events = POLLIN };
		uint64_t now, c;

		if (ctx->ifd >= 0) {
			(void)poll(&pfd, 1, POLL_MS);
			drain_events(ctx, ep->kind);
		} else {
			usleep(POLL_MS * 1000);
		}
		now = mono_ns();
		c = bup_uploaded(up);
		sample_memory(up, rs, c - base, now >= next_mem, &next_cp, res);
		if (now >= next_mem)
			next_mem = now + MEM_EVERY_NS;
		if (c >= base + rs->n) {
			*t_end = now;
			return 0;
		}
		if (c != last_count) {
			last_count = c;
			last_progress = now;
		}
		if (bup_interrupted)
			return -EINTR;
		if (now - last_progress > STALL_NS || kill(up->pid, 0) < 0) {
			fprintf(stderr, "%s: %s: no upload for %llu s (%" PRIu64 " of %" PRIu64
			    " done); see the uploader's log in %s\n", bench_prog, ep->name,
			    STALL_NS / BUP_SEC_NS, c - base, rs->n, bup_workdir);
			return -EIO;
		}
	}
}

int
bup_run(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_uploader *up,
    const struct bup_run_spec *rs, struct bup_run_result *res)
{
	struct run_ctx ctx;
	struct bup_mem m0, m1;
	uint64_t base, t0, t_end = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	res->n = rs->n;
	res->rate = rs->rate;
	res->p50_ms = res->p99_ms = res->max_ms = NAN;
	if ((rc = run_setup(ep, rs, &ctx)) < 0 || (rc = start_producers(o, up, rs, &ctx)) < 0)
		goto out;
	if (rs->perf_out != NULL)
		perf_start(rs->perf_out, up->pid, &ctx);
	base = bup_uploaded(up);
	(void)bup_mem_sample(up->pid, &m0);
	t0 = mono_ns();
	/* Release: pairs with the producers' acquire load of go. */
	atomic_store_explicit(&ctx.sh->go, 1, memory_order_release);
	futex_wake(&ctx.sh->go, INT32_MAX);
	if ((rc = watch(ep, up, rs, &ctx, base, res, &t_end)) < 0)
		goto out;
	(void)bup_mem_sample(up->pid, &m1);
	perf_stop(&ctx);
	if (ctx.ifd >= 0) {
		usleep(20000);
		drain_events(&ctx, ep->kind);
	}
	if ((rc = reap_producers(o, &ctx)) < 0)
		goto out;
	res->secs = (double)(t_end - t0) / 1e9;
	res->ups = (double)rs->n / res->secs;
	res->mbps = res->ups * (double)o->size / 1e6;
	res->cpu_per_1k = (m1.cpu_s - m0.cpu_s) * 1000.0 / (double)rs->n;
	if (ctx.ifd >= 0)
		latency_stats(rs, &ctx, res);
	res->ok = true;
out:
	run_free(o, &ctx);
	return rc;
}
