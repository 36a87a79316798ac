/* s3ring-bench-ring.c -- `s3ring-bench ring`: s3ring against POSIX mq and
 * Unix datagram sockets, measured in one run with one process layout.
 *
 * Every measurement forks N producer processes and one consumer process.
 * The consumer reads every message and checks its length, its checksum and
 * its place in its producer's sequence; a run with a single bad message is
 * reported as failed, whatever its speed. Throughput is the number of
 * messages over the time from the first producer's first put to the
 * consumer's last receive. Put latency is timed with the cycle counter
 * around every 64th put, into arrays allocated before the clock starts, so
 * that sampling costs no system call and no allocation. The transports take
 * turns within each repetition, so a noisy neighbour hurts all of them
 * alike, and the reported figure is the median over the repetitions. The
 * shm ring, the message queue and the socket have names unique to this
 * process and are removed however the run ends, short of SIGKILL.
 */
#include "s3ring-bench.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "futex.h"
#include "ring.h"
#include "s3ring.h"

#define MAX_PRODUCERS   64
#define MAX_SIZES       16
#define SAMPLE_EVERY    64        /* time one put in this many */
#define MSG_MIN_SIZE    32        /* sequence, timestamp, some payload, CRC */
#define MSG_SEQ_OFF     0         /* u64: producer id << 48 | sequence */
#define MSG_T0_OFF      8         /* u64: CLOCK_MONOTONIC of the send (wake runs) */
#define MSG_PAYLOAD_OFF 16
#define SEQ_MASK        ((UINT64_C(1) << 48) - 1)
#define RUN_TIMEOUT_NS  (300ull * 1000 * 1000 * 1000)

/* Defaults: about a minute and a half for the whole run on a quiet 2-core
 * machine, most of it spent waiting for the two baselines. */
#define DEFAULT_MSGS         200000
#define DEFAULT_REPEAT       3
#define DEFAULT_WAKE_SAMPLES 300
#define DEFAULT_FULL_TRIES   200000

enum run_mode { MODE_THROUGHPUT, MODE_WAKE };

/* ------------------------------------------------------------- options */

struct opts {
	bool json;
	uint64_t msgs;              /* per measurement, over all producers */
	unsigned repeat;
	size_t sizes[MAX_SIZES];
	unsigned nsizes;
	unsigned producers[MAX_SIZES];
	unsigned nproducers;
	const struct bench_transport *transports[3];
	unsigned ntransports;
	unsigned wake_samples;
	unsigned full_tries;
	uint64_t ring_size;
};

/* ----------------------------------------------------- shared run state */

struct prod_res {
	uint64_t t_start, t_end;    /* CLOCK_MONOTONIC around the put loop */
	uint64_t sent;
	uint64_t nsamples;
	int64_t syscalls;           /* -1: not measured */
	uint64_t vol_ctxsw;
	int err;
};

/* One measurement's memory, shared by the parent and its children
 * (MAP_SHARED | MAP_ANONYMOUS), sized before the fork. Each child writes
 * only its own fields; the parent reads them after waitpid(), which orders
 * everything the children wrote before exiting. */
struct run_shm {
	_Atomic uint32_t ready;     /* children set up and waiting */
	_Atomic uint32_t go;        /* futex: 0 until the parent starts the run */
	uint64_t cons_t_end;
	uint64_t received, bad;
	int64_t cons_syscalls;
	uint64_t cons_vol_ctxsw;
	uint64_t wakes, sleeps;     /* transport counters (s3ring only) */
	uint64_t cons_nsamples;
	int cons_err;
	uint64_t per_cap;           /* samples per producer (and for the consumer) */
	struct prod_res prod[MAX_PRODUCERS];
	uint64_t samples[];         /* (MAX_PRODUCERS + 1) * per_cap: producers, then consumer */
};

struct run_result {
	bool ok;
	uint64_t msgs;
	double msgs_per_s;
	double puts_per_s;          /* producer side: first put to last put returned */
	double p50, p99, p999;      /* ns: put latency, or wake latency */
	double sys_per_1k;          /* producers' system calls per 1,000 puts; <0: n/a */
	double vcsw_per_1k;         /* producers' blocking calls per 1,000 puts */
	double cons_sys_per_1k;
	double wakes_per_1k, sleeps_per_1k; /* s3ring counters */
};

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	if (sig != SIGALRM)
		interrupted = sig;
}

/* Handlers without SA_RESTART, so that they interrupt a blocking
 * waitpid() in reap(). */
static void
install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static struct bench_env env;

static void
cleanup_names(void)
{
	bench_s3ring.teardown(&env);
	bench_posix_mq.teardown(&env);
	bench_unix_dgram.teardown(&env);
}

/* -------------------------------------------------------------- children */

static void
wait_for_go(struct run_shm *sh)
{
	atomic_fetch_add_explicit(&sh->ready, 1, memory_order_release);
	/* Acquire: pairs with the parent's release store of go. */
	while (atomic_load_explicit(&sh->go, memory_order_acquire) == 0)
		(void)futex_wait(&sh->go, 0, mono_ns() + FUTEX_MAX_WAIT_NS);
}

static void
msg_template(uint8_t *buf, size_t size, unsigned id)
{
	uint32_t crc;

	memset(buf, 0, MSG_PAYLOAD_OFF);
	for (size_t i = MSG_PAYLOAD_OFF; i < size - 4; i++)
		buf[i] = (uint8_t)(i * 31 + id * 7 + 1);
	crc = crc32c(0, buf + MSG_PAYLOAD_OFF, size - 4 - MSG_PAYLOAD_OFF);
	memcpy(buf + size - 4, &crc, 4);
}

static int
producer_main(const struct bench_transport *t, struct run_shm *sh, unsigned id,
    size_t size, uint64_t n, enum run_mode mode)
{
	struct prod_res *res = &sh->prod[id];
	uint64_t *samples = sh->samples + (uint64_t)id * sh->per_cap;
	uint64_t k = 0, vcsw0;
	uint8_t *buf = malloc(size);
	void *st = NULL;
	int ctr, rc;

	res->syscalls = -1;
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out_fail;
	}
	msg_template(buf, size, id);
	if ((rc = t->prod_open(&env, id, &st)) < 0)
		goto out_fail;
	ctr = bench_sysctr_open();
	wait_for_go(sh);

	vcsw0 = bench_vol_ctxsw();
	if (ctr >= 0 && bench_sysctr_start(ctr) < 0) {
		close(ctr);
		ctr = -1;
	}
	res->t_start = mono_ns();
	for (uint64_t i = 0; i < n; i++) {
		uint64_t tag = (uint64_t)id << 48 | i;

		memcpy(buf + MSG_SEQ_OFF, &tag, 8);
		if (mode == MODE_WAKE) {
			struct timespec ts = { 0, 1000 * 1000 };
			uint64_t t0;
			/* Long enough for the consumer to be asleep in the
			 * kernel, not just between two polls. */
			nanosleep(&ts, NULL);
			t0 = mono_ns();
			memcpy(buf + MSG_T0_OFF, &t0, 8);
			rc = t->send(st, buf, size);
		} else if (i % SAMPLE_EVERY == 0 && k < sh->per_cap) {
			uint64_t a = bench_ticks();
			rc = t->send(st, buf, size);
			samples[k++] = bench_ticks() - a;
		} else {
			rc = t->send(st, buf, size);
		}
		if (rc < 0)
			goto out_fail;
		res->sent++;
	}
	res->t_end = mono_ns();
	if (ctr >= 0) {
		res->syscalls = bench_sysctr_stop(ctr);
		close(ctr);
	}
	res->vol_ctxsw = bench_vol_ctxsw() - vcsw0;
	res->nsamples = k;
	t->prod_close(st);
	free(buf);
	return 0;

out_fail:
	res->err = rc;
	if (atomic_load_explicit(&sh->go, memory_order_relaxed) == 0)
		atomic_fetch_add_explicit(&sh->ready, 1, memory_order_release);
	free(buf);
	return 1;
}

static int
consumer_main(const struct bench_transport *t, struct run_shm *sh,
    unsigned nprod, size_t size, uint64_t total, enum run_mode mode)
{
	uint64_t next[MAX_PRODUCERS] = { 0 };
	uint64_t *samples = sh->samples + (uint64_t)MAX_PRODUCERS * sh->per_cap;
	uint64_t vcsw0;
	void *st = NULL;
	int ctr, rc;

	sh->cons_syscalls = -1;
	if ((rc = t->cons_open(&env, size, &st)) < 0) {
		sh->cons_err = rc;
		atomic_fetch_add_explicit(&sh->ready, 1, memory_order_release);
		return 1;
	}
	ctr = bench_sysctr_open();
	wait_for_go(sh);
	vcsw0 = bench_vol_ctxsw();
	if (ctr >= 0 && bench_sysctr_start(ctr) < 0) {
		close(ctr);
		ctr = -1;
	}
	while (sh->received < total) {
		const uint8_t *m;
		size_t len;
		uint64_t tag, id, seq;
		uint32_t crc;

		if ((rc = t->recv(st, &m, &len)) < 0) {
			sh->cons_err = rc;
			break;
		}
		if (mode == MODE_WAKE && sh->cons_nsamples < sh->per_cap) {
			uint64_t t0;
			memcpy(&t0, m + MSG_T0_OFF, 8);
			samples[sh->cons_nsamples++] = mono_ns() - t0;
		}
		sh->received++;
		if (len != size) {
			sh->bad++;
			continue;
		}
		memcpy(&tag, m + MSG_SEQ_OFF, 8);
		memcpy(&crc, m + size - 4, 4);
		id = tag >> 48;
		seq = tag & SEQ_MASK;
		if (id >= nprod || seq != next[id] ||
		    crc32c(0, m + MSG_PAYLOAD_OFF, size - 4 - MSG_PAYLOAD_OFF) != crc) {
			sh->bad++;
			continue;
		}
		next[id]++;
	}
	sh->cons_t_end = mono_ns();
	if (ctr >= 0) {
		sh->cons_syscalls = bench_sysctr_stop(ctr);
		close(ctr);
	}
	sh->cons_vol_ctxsw = bench_vol_ctxsw() - vcsw0;
	if (t->cons_counters != NULL)
		t->cons_counters(st, &sh->wakes, &sh->sleeps);
	t->cons_close(st);
	return sh->cons_err != 0;
}

/* ---------------------------------------------------------------- parent */

static pid_t
spawn(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
	}
	return pid;
}

static void
kill_all(pid_t *pids, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
}

/* Reaps the children, killing them all if the run outlives its deadline or
 * the user interrupts it. It blocks in waitpid(), so that the parent takes
 * no CPU from the run on a small machine; a 100 ms interval timer (whose
 * handler only sets a flag, installed without SA_RESTART) interrupts the
 * wait to look at the deadline. Returns 0, or -1 if a child failed or was
 * killed. */
static int
reap(pid_t *pids, unsigned n, uint64_t deadline)
{
	struct itimerval it = { { 0, 100000 }, { 0, 100000 } }, off;
	unsigned left = 0;
	int failed = 0;

	for (unsigned i = 0; i < n; i++)
		left += pids[i] > 0;
	memset(&off, 0, sizeof(off));
	(void)setitimer(ITIMER_REAL, &it, NULL);
	while (left > 0) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);

		if (pid > 0) {
			for (unsigned i = 0; i < n; i++)
				if (pids[i] == pid) {
					pids[i] = 0;
					left--;
				}
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				failed = 1;
			continue;
		}
		if (errno != EINTR)
			break;
		if (interrupted || mono_ns() > deadline) {
			kill_all(pids, n);
			failed = 1;
			deadline = UINT64_MAX;
			if (!interrupted)
				fprintf(stderr, "%s: run timed out, children killed\n",
				    bench_prog);
		}
	}
	(void)setitimer(ITIMER_REAL, &off, NULL);
	return failed ? -1 : 0;
}

static double
ticks_to_ns_q(const uint64_t *v, size_t n, double q)
{
	return bench_ticks_to_ns(bench_quantile_sorted(v, n, q));
}

/* One measurement: transport t, nprod producers, messages of size bytes,
 * total messages in all. */
static int
run_once(const struct bench_transport *t, unsigned nprod, size_t size,
    uint64_t total, enum run_mode mode, struct run_result *out)
{
	uint64_t per_cap = mode == MODE_WAKE ? total :
	    total / nprod / SAMPLE_EVERY + 2;
	size_t shm_len = sizeof(struct run_shm) +
	    (MAX_PRODUCERS + 1) * per_cap * sizeof(uint64_t);
	pid_t pids[MAX_PRODUCERS + 1] = { 0 };
	struct run_shm *sh;
	char note[160];
	uint64_t t_first = UINT64_MAX, *all = NULL, nall = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	sh = mmap(NULL, shm_len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (sh == MAP_FAILED)
		return -errno;
	sh->per_cap = per_cap;
	if ((rc = t->setup(&env, size, note, sizeof(note))) < 0)
		goto out_unmap;

	if ((pids[0] = spawn()) == 0)
		_exit(consumer_main(t, sh, nprod, size, total, mode));
	for (unsigned i = 0; i < nprod && pids[0] > 0; i++) {
		uint64_t n = total / nprod + (i < total % nprod ? 1 : 0);
		if ((pids[i + 1] = spawn()) == 0)
			_exit(producer_main(t, sh, i, size, n, mode));
		if (pids[i + 1] < 0)
			break;
	}
	for (unsigned i = 0; i <= nprod; i++)
		if (pids[i] < 0) {
			rc = -errno;
			pids[i] = 0;
			kill_all(pids, nprod + 1);
			(void)reap(pids, nprod + 1, UINT64_MAX);
			goto out_teardown;
		}

	/* Start the clock only when every child is set up and waiting. */
	uint64_t ready_deadline = mono_ns() + 10ull * 1000 * 1000 * 1000;
	while (atomic_load_explicit(&sh->ready, memory_order_acquire) < nprod + 1 &&
	    mono_ns() < ready_deadline && !interrupted)
		usleep(200);
	/* Release: pairs with the children's acquire load of go. */
	atomic_store_explicit(&sh->go, 1, memory_order_release);
	(void)futex_wake(&sh->go, INT_MAX);
	rc = reap(pids, nprod + 1, mono_ns() + RUN_TIMEOUT_NS);

	if (sh->cons_err != 0)
		fprintf(stderr, "%s: %s consumer: %s\n", bench_prog, t->name,
		    strerror(-sh->cons_err));
	for (unsigned i = 0; i < nprod; i++)
		if (sh->prod[i].err != 0)
			fprintf(stderr, "%s: %s producer %u: %s\n", bench_prog, t->name,
			    i, strerror(-sh->prod[i].err));
	if (rc < 0 || sh->received != total || sh->bad != 0) {
		if (!interrupted)
			fprintf(stderr, "%s: %s run failed: %" PRIu64 " of %" PRIu64
			    " messages received, %" PRIu64 " bad\n", bench_prog,
			    t->name, sh->received, total, sh->bad);
		rc = -EIO;
		goto out_teardown;
	}

	/* Results. */
	int64_t sys = 0;
	uint64_t vcsw = 0, t_last = 0;
	bool sys_ok = true;
	for (unsigned i = 0; i < nprod; i++) {
		if (sh->prod[i].t_start < t_first)
			t_first = sh->prod[i].t_start;
		if (sh->prod[i].t_end > t_last)
			t_last = sh->prod[i].t_end;
		nall += sh->prod[i].nsamples;
		if (sh->prod[i].syscalls < 0)
			sys_ok = false;
		sys += sh->prod[i].syscalls;
		vcsw += sh->prod[i].vol_ctxsw;
	}
	out->ok = true;
	out->msgs = total;
	out->msgs_per_s = sh->cons_t_end > t_first ?
	    (double)total * 1e9 / (double)(sh->cons_t_end - t_first) : 0;
	out->puts_per_s = t_last > t_first ?
	    (double)total * 1e9 / (double)(t_last - t_first) : 0;
	out->sys_per_1k = sys_ok ? (double)sys * 1000.0 / (double)total : -1;
	out->vcsw_per_1k = (double)vcsw * 1000.0 / (double)total;
	out->cons_sys_per_1k = sh->cons_syscalls >= 0 ?
	    (double)sh->cons_syscalls * 1000.0 / (double)total : -1;
	out->wakes_per_1k = (double)sh->wakes * 1000.0 / (double)total;
	out->sleeps_per_1k = (double)sh->sleeps * 1000.0 / (double)total;
	if (mode == MODE_WAKE) {
		uint64_t *v = sh->samples + (uint64_t)MAX_PRODUCERS * per_cap;
		bench_sort_u64(v, sh->cons_nsamples);
		out->p50 = (double)bench_quantile_sorted(v, sh->cons_nsamples, 0.5);
		out->p99 = (double)bench_quantile_sorted(v, sh->cons_nsamples, 0.99);
		out->p999 = (double)bench_quantile_sorted(v, sh->cons_nsamples, 0.999);
	} else if ((all = malloc((nall + 1) * sizeof(*all))) != NULL) {
		uint64_t k = 0;
		for (unsigned i = 0; i < nprod; i++) {
			memcpy(all + k, sh->samples + (uint64_t)i * per_cap,
			    sh->prod[i].nsamples * sizeof(*all));
			k += sh->prod[i].nsamples;
		}
		bench_sort_u64(all, nall);
		out->p50 = ticks_to_ns_q(all, nall, 0.5);
		out->p99 = ticks_to_ns_q(all, nall, 0.99);
		out->p999 = ticks_to_ns_q(all, nall, 0.999);
		free(all);
	}
	rc = 0;

out_teardown:
	t->teardown(&env);
out_unmap:
	munmap(sh, shm_len);
	return rc;
}

/* ------------------------------------------------------- extra measures */

struct lat3 {
	double p50, p99, p999;
	uint64_t n, failed;
};

/* The cost of a try-put (timeout 0) when the ring is full and nobody
 * drains it: the state an application is in when the uploader died. The
 * ring is small (1 MiB) only so it fills quickly; the full check does not
 * depend on the capacity. Every try is timed. */
static int
measure_full_tryput(size_t size, unsigned tries, struct lat3 *out)
{
	struct ring_config cfg = { UINT64_C(1) << 20, 0, 0600, (gid_t)-1 };
	char name[96], path[160];
	struct s3ring_producer *p;
	uint64_t *v = NULL;
	uint8_t *buf = NULL;
	struct ring r;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(name, sizeof(name), "%s-full", env.ring_name);
	(void)ring_unlink(name);
	if ((rc = ring_open(&r, name, RING_OPEN_CREATE, &cfg)) < 0)
		return rc;
	ring_close(&r);
	if ((p = s3ring_open(name, 0)) == NULL) {
		rc = -errno;
		goto out_unlink;
	}
	snprintf(path, sizeof(path), "/dev/shm/s3ring.%s", name);
	(void)bench_prefault_mapping(path);
	if ((v = malloc((size_t)tries * sizeof(*v))) == NULL ||
	    (buf = calloc(1, size)) == NULL) {
		rc = -ENOMEM;
		goto out_close;
	}
	while ((rc = s3ring_put(p, "bench/full", buf, size, 0)) == 0)
		;
	if (rc != -EAGAIN)
		goto out_close;
	for (unsigned i = 0; i < tries; i++) {
		uint64_t a = bench_ticks();
		rc = s3ring_put(p, "bench/full", buf, size, 0);
		v[i] = bench_ticks() - a;
		if (rc == -EAGAIN)
			out->failed++;
	}
	bench_sort_u64(v, tries);
	out->n = tries;
	out->p50 = ticks_to_ns_q(v, tries, 0.5);
	out->p99 = ticks_to_ns_q(v, tries, 0.99);
	out->p999 = ticks_to_ns_q(v, tries, 0.999);
	rc = 0;

out_close:
	free(v);
	free(buf);
	s3ring_close(p);
out_unlink:
	(void)ring_unlink(name);
	return rc;
}

/* The physical limit: one process copying messages into shared memory in
 * the ring's record stride, with nothing else (no CAS, no header), and the
 * same with the CRC32C that a put computes. About 100 ms each. */
static int
measure_memcpy(size_t size, bool with_crc, double *msgs_per_s)
{
	size_t len = 64u << 20, stride = (size_t)ring_record_size(16, size);
	uint8_t *dst, *src = malloc(size);
	uint64_t n = 0, t0, t1, off = 0;
	volatile uint32_t sink = 0;

	if (src == NULL)
		return -ENOMEM;
	memset(src, 0x5a, size);
	dst = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (dst == MAP_FAILED) {
		free(src);
		return -errno;
	}
	t0 = mono_ns();
	do {
		for (int i = 0; i < 1024; i++) {
			if (with_crc)
				sink = crc32c(0, src, size);
			memcpy(dst + off, src, size);
			off += stride;
			if (off + stride > len)
				off = 0;
		}
		n += 1024;
		t1 = mono_ns();
	} while (t1 - t0 < 100ull * 1000 * 1000);
	(void)sink;
	*msgs_per_s = (double)n * 1e9 / (double)(t1 - t0);
	munmap(dst, len);
	free(src);
	return 0;
}

/* ------------------------------------------------------------- reporting */

static void
json_num(const char *key, double v, bool last)
{
	if (!isfinite(v) || v < 0)
		printf("\"%s\":null%s", key, last ? "}\n" : ",");
	else
		printf("\"%s\":%.1f%s", key, v, last ? "}\n" : ",");
}

static long
read_long(const char *path)
{
	char line[64];
	const char *errstr = NULL;
	long long v;
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	v = strtonum(line, 0, LONG_MAX, &errstr);
	return errstr ? -1 : (long)v;
}

/* ------------------------------------------------------------------ main */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: %s ring [--json] [--msgs N] [--sizes LIST] [--producers LIST]\n"
	    "           [--repeat N] [--transports LIST] [--wake-samples N]\n"
	    "           [--full-tries N] [--ring-size BYTES]\n"
	    "\n"
	    "Measures s3ring, POSIX mq and Unix datagram sockets with the same\n"
	    "process layout (N producer processes, one consumer that checks every\n"
	    "message), then the cost of a try-put on a full ring, the wake-up\n"
	    "latency of a sleeping consumer, system calls per 1,000 puts, and a\n"
	    "plain memcpy into shared memory.\n"
	    "\n"
	    "  --msgs N          messages per measurement, over all producers (%d)\n"
	    "  --sizes LIST      message sizes in bytes, >= %d (64,1024,8192)\n"
	    "  --producers LIST  producer process counts (1,4)\n"
	    "  --repeat N        repetitions; the median is reported (%d)\n"
	    "  --transports LIST s3ring,posix_mq,unix_dgram (all)\n"
	    "  --wake-samples N  wake-up latency samples per transport (%d)\n"
	    "  --full-tries N    timed try-puts on a full ring (%d)\n"
	    "  --ring-size BYTES ring capacity (the ring's default, 64 MiB)\n"
	    "  --json            one JSON object per line\n",
	    bench_prog, DEFAULT_MSGS, MSG_MIN_SIZE, DEFAULT_REPEAT,
	    DEFAULT_WAKE_SAMPLES, DEFAULT_FULL_TRIES);
}

static int
parse_list(const char *arg, const char *what, long long lo, long long hi,
    long long *out, unsigned *n)
{
	char buf[256], *save = NULL;

	if (strlcpy(buf, arg, sizeof(buf)) >= sizeof(buf)) {
		fprintf(stderr, "%s: --%s: list too long\n", bench_prog, what);
		return -1;
	}
	*n = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		const char *errstr = NULL;
		long long v = strtonum(tok, lo, hi, &errstr);
		if (errstr != NULL || *n >= MAX_SIZES) {
			fprintf(stderr, "%s: --%s %s: %s (%lld..%lld, at most %d values)\n",
			    bench_prog, what, tok, errstr ? errstr : "too many", lo, hi,
			    MAX_SIZES);
			return -1;
		}
		out[(*n)++] = v;
	}
	return *n > 0 ? 0 : -1;
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "msgs", required_argument, NULL, 'n' },
		{ "sizes", required_argument, NULL, 's' },
		{ "producers", required_argument, NULL, 'p' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "transports", required_argument, NULL, 't' },
		{ "wake-samples", required_argument, NULL, 'w' },
		{ "full-tries", required_argument, NULL, 'f' },
		{ "ring-size", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct bench_transport *const all[] = {
		&bench_s3ring, &bench_posix_mq, &bench_unix_dgram,
	};
	long long v[MAX_SIZES];
	const char *errstr = NULL;
	int ch, li = 0;

	memset(o, 0, sizeof(*o));
	o->msgs = DEFAULT_MSGS;
	o->repeat = DEFAULT_REPEAT;
	o->sizes[0] = 64, o->sizes[1] = 1024, o->sizes[2] = 8192, o->nsizes = 3;
	o->producers[0] = 1, o->producers[1] = 4, o->nproducers = 2;
	for (unsigned i = 0; i < 3; i++)
		o->transports[i] = all[i];
	o->ntransports = 3;
	o->wake_samples = DEFAULT_WAKE_SAMPLES;
	o->full_tries = DEFAULT_FULL_TRIES;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", lopts, &li)) != -1) {
		switch (ch) {
		case 'j':
			o->json = true;
			break;
		case 'n':
			o->msgs = (uint64_t)strtonum(optarg, 1, 1000000000LL, &errstr);
			break;
		case 'r':
			o->repeat = (unsigned)strtonum(optarg, 1, 100, &errstr);
			break;
		case 'w':
			o->wake_samples = (unsigned)strtonum(optarg, 0, 100000, &errstr);
			break;
		case 'f':
			o->full_tries = (unsigned)strtonum(optarg, 0, 100000000, &errstr);
			break;
		case 'R':
			o->ring_size = (uint64_t)strtonum(optarg, RING_MIN_CAPACITY,
			    RING_MAX_CAPACITY, &errstr);
			if (errstr == NULL && (o->ring_size & (o->ring_size - 1)) != 0)
				errstr = "not a power of two";
			break;
		case 's':
			if (parse_list(optarg, "sizes", MSG_MIN_SIZE, 1 << 20, v, &o->nsizes) < 0)
				return -1;
			for (unsigned i = 0; i < o->nsizes; i++)
				o->sizes[i] = (size_t)v[i];
			break;
		case 'p':
			if (parse_list(optarg, "producers", 1, MAX_PRODUCERS, v,
			    &o->nproducers) < 0)
				return -1;
			for (unsigned i = 0; i < o->nproducers; i++)
				o->producers[i] = (unsigned)v[i];
			break;
		case 't': {
			char buf[128], *save = NULL;
			o->ntransports = 0;
			strlcpy(buf, optarg, sizeof(buf));
			for (char *tok = strtok_r(buf, ",", &save); tok != NULL;
			    tok = strtok_r(NULL, ",", &save)) {
				unsigned i;
				for (i = 0; i < 3 && strcmp(tok, all[i]->name) != 0; i++)
					;
				if (i == 3 || o->ntransports == 3) {
					fprintf(stderr, "%s: --transports: unknown '%s'\n",
					    bench_prog, tok);
					return -1;
				}
				o->transports[o->ntransports++] = all[i];
			}
			break;
		}
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
		if (errstr != NULL) {
			fprintf(stderr, "%s: --%s %s: %s\n", bench_prog,
			    lopts[li].name, optarg, errstr);
			return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* The medians of one cell (transport, producers, size) over repetitions. */
struct cell {
	const struct bench_transport *t;
	unsigned nprod;
	size_t size;
	unsigned nok;
	struct run_result rep[100];
	struct run_result med;
};

#define MED_FIELD(c, field) do {                                   \
	double v_[100];                                             \
	for (unsigned i_ = 0; i_ < (c)->nok; i_++)                  \
		v_[i_] = (c)->rep[i_].field;                        \
	(c)->med.field = bench_median(v_, (c)->nok);                \
} while (0)

static void
cell_median(struct cell *c)
{
	memset(&c->med, 0, sizeof(c->med));
	if (c->nok == 0)
		return;
	c->med.ok = true;
	c->med.msgs = c->rep[0].msgs;
	MED_FIELD(c, msgs_per_s);
	MED_FIELD(c, puts_per_s);
	MED_FIELD(c, p50);
	MED_FIELD(c, p99);
	MED_FIELD(c, p999);
	MED_FIELD(c, sys_per_1k);
	MED_FIELD(c, vcsw_per_1k);
	MED_FIELD(c, cons_sys_per_1k);
	MED_FIELD(c, wakes_per_1k);
	MED_FIELD(c, sleeps_per_1k);
}

static const struct cell *
find_cell(const struct cell *cells, unsigned n, const char *t, unsigned np,
    size_t size)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(cells[i].t->name, t) == 0 && cells[i].nprod == np &&
		    cells[i].size == size && cells[i].med.ok)
			return &cells[i];
	return NULL;
}

struct target {
	const char *name;
	double value, limit;
	bool higher_is_better;
	bool measured;
};

static void
ratio_target(struct target *tg, const char *name, const struct cell *cells,
    unsigned n, unsigned np, size_t size, double limit)
{
	const struct cell *a = find_cell(cells, n, "s3ring", np, size);
	const struct cell *b = find_cell(cells, n, "posix_mq", np, size);

	tg->name = name;
	tg->limit = limit;
	tg->higher_is_better = true;
	tg->measured = a != NULL && b != NULL && b->med.msgs_per_s > 0;
	tg->value = tg->measured ? a->med.msgs_per_s / b->med.msgs_per_s : 0;
}

/* A per-1,000 figure with one decimal, or "n/a" when not measured. */
static void
fmt_opt(char *buf, size_t cap, double v)
{
	if (v < 0)
		snprintf(buf, cap, "n/a");
	else
		snprintf(buf, cap, "%.1f", v);
}

int
bench_ring_main(int argc, char **argv)
{
	struct opts o;
	struct cell *cells = NULL;
	unsigned ncells = 0;
	struct lat3 full[MAX_SIZES];
	struct run_result wake[3];
	double mc[MAX_SIZES], mcc[MAX_SIZES];
	struct target tg[5];
	char cpu[128], note_s3[160] = "", note_mq[160] = "", note_dg[160] = "";
	double busy = 0, overhead;
	struct utsname un;
	int status = 0;
	uint64_t t_begin = mono_ns();

	if (parse_opts(argc, argv, &o) < 0)
		return EX_USAGE;

	snprintf(env.ring_name, sizeof(env.ring_name), "bench-%ld", (long)getpid());
	snprintf(env.mq_name, sizeof(env.mq_name), "/s3ring-bench-%ld", (long)getpid());
	snprintf(env.sock_name, sizeof(env.sock_name), "s3ring-bench-%ld", (long)getpid());
	env.ring_capacity = o.ring_size;
	env.sock_fd = -1;
	install_handlers();

	/* Idle check, which also calibrates the cycle counter. */
	if (bench_cpu_busy(200, &busy) == 0 && busy > 0.10) {
		double la[3] = { 0, 0, 0 };
		(void)getloadavg(la, 3);
		fprintf(stderr, "%s: warning: the CPUs were %.0f%% busy before the run "
		    "(load average %.2f %.2f %.2f); figures will be noisy\n",
		    bench_prog, busy * 100, la[0], la[1], la[2]);
	}
	overhead = bench_clock_overhead_ns();
	bench_cpu_model(cpu, sizeof(cpu));
	if (uname(&un) < 0)
		memset(&un, 0, sizeof(un));

	/* Notes on each transport's configuration, from a dry setup. */
	{
		char *notes[3] = { note_s3, note_mq, note_dg };
		const struct bench_transport *ts[3] = {
			&bench_s3ring, &bench_posix_mq, &bench_unix_dgram };
		for (int i = 0; i < 3; i++)
			if (ts[i]->setup(&env, MSG_MIN_SIZE, notes[i], 160) == 0)
				ts[i]->teardown(&env);
	}

	cells = calloc((size_t)o.nsizes * o.nproducers * o.ntransports, sizeof(*cells));
	if (cells == NULL) {
		fprintf(stderr, "%s: out of memory\n", bench_prog);
		return 1;
	}
	for (unsigned si = 0; si < o.nsizes; si++)
		for (unsigned pi = 0; pi < o.nproducers; pi++)
			for (unsigned ti = 0; ti < o.ntransports; ti++) {
				struct cell *c = &cells[ncells++];
				c->t = o.transports[ti];
				c->nprod = o.producers[pi];
				c->size = o.sizes[si];
			}

	if (!o.json)
		printf("s3ring-bench ring: %ld CPUs (%s), %s %s; %" PRIu64
		    " msgs per measurement, median of %u\n"
		    "  s3ring: %s; producers: s3ring_put (timeout -1), consumer: ring_consume\n"
		    "  posix_mq: %s\n  unix_dgram: %s\n",
		    sysconf(_SC_NPROCESSORS_ONLN), cpu, un.sysname, un.release,
		    o.msgs, o.repeat, note_s3, note_mq, note_dg);

	/* Transports take turns inside each repetition. */
	for (unsigned rep = 0; rep < o.repeat && !interrupted; rep++)
		for (unsigned i = 0; i < ncells && !interrupted; i++) {
			struct cell *c = &cells[i];
			struct run_result r;
			int rc = run_once(c->t, c->nprod, c->size, o.msgs,
			    MODE_THROUGHPUT, &r);
			if (rc == 0)
				c->rep[c->nok++] = r;
			else if (rc != -EMSGSIZE)
				status = 1;
		}
	for (unsigned i = 0; i < ncells; i++)
		cell_median(&cells[i]);

	/* Extra measures. */
	for (unsigned si = 0; si < o.nsizes && o.full_tries > 0 && !interrupted; si++)
		if (measure_full_tryput(o.sizes[si], o.full_tries, &full[si]) < 0)
			memset(&full[si], 0, sizeof(full[si]));
	memset(wake, 0, sizeof(wake));
	for (unsigned ti = 0; ti < o.ntransports && o.wake_samples > 0 && !interrupted; ti++)
		if (run_once(o.transports[ti], 1, o.sizes[0], o.wake_samples,
		    MODE_WAKE, &wake[ti]) < 0)
			status = 1;
	for (unsigned si = 0; si < o.nsizes && !interrupted; si++) {
		if (measure_memcpy(o.sizes[si], false, &mc[si]) < 0)
			mc[si] = 0;
		if (measure_memcpy(o.sizes[si], true, &mcc[si]) < 0)
			mcc[si] = 0;
	}
	if (interrupted) {
		cleanup_names();
		free(cells);
		fprintf(stderr, "%s: interrupted\n", bench_prog);
		return 128 + interrupted;
	}

	/* Targets, from this run only. */
	ratio_target(&tg[0], "s3ring/posix_mq msgs/s, 64 B, 1 producer", cells,
	    ncells, 1, 64, 15);
	ratio_target(&tg[1], "s3ring/posix_mq msgs/s, 1 KiB, 1 producer", cells,
	    ncells, 1, 1024, 5);
	ratio_target(&tg[2], "s3ring/posix_mq msgs/s, 64 B, 4 producers", cells,
	    ncells, 4, 64, 8);
	{
		const struct cell *c = find_cell(cells, ncells, "s3ring", 1, 64);
		tg[3] = (struct target){ "s3ring put p99 ns, 64 B, 1 producer",
		    c ? c->med.p99 : 0, 1000, false, c != NULL };
		unsigned si;
		for (si = 0; si < o.nsizes && o.sizes[si] != 64; si++)
			;
		tg[4] = (struct target){ "failing try-put p99 ns, full ring, 64 B",
		    si < o.nsizes ? full[si].p99 : 0, 200, false,
		    si < o.nsizes && full[si].n > 0 };
	}

	if (o.json) {
		for (unsigned i = 0; i < ncells; i++) {
			const struct cell *c = &cells[i];
			if (!c->med.ok)
				continue;
			printf("{\"transport\":\"%s\",\"producers\":%u,\"size\":%zu,"
			    "\"msgs\":%" PRIu64 ",\"msgs_per_s\":%.1f,\"p50_ns\":%.0f,"
			    "\"p99_ns\":%.0f}\n", c->t->name, c->nprod, c->size,
			    c->med.msgs, c->med.msgs_per_s, c->med.p50, c->med.p99);
		}
		for (unsigned i = 0; i < ncells; i++) {
			const struct cell *c = &cells[i];
			if (!c->med.ok)
				continue;
			printf("{\"measure\":\"throughput_detail\",\"transport\":\"%s\","
			    "\"producers\":%u,\"size\":%zu,\"repeats\":%u,",
			    c->t->name, c->nprod, c->size, c->nok);
			json_num("mb_per_s", c->med.msgs_per_s * (double)c->size / 1e6, false);
			json_num("puts_per_s", c->med.puts_per_s, false);
			json_num("p999_ns", c->med.p999, false);
			json_num("syscalls_per_1000_puts", c->med.sys_per_1k, false);
			json_num("blocking_per_1000_puts", c->med.vcsw_per_1k, false);
			json_num("consumer_syscalls_per_1000", c->med.cons_sys_per_1k, false);
			json_num("ring_wakes_per_1000", strcmp(c->t->name, "s3ring") == 0 ?
			    c->med.wakes_per_1k : -1, false);
			json_num("consumer_sleeps_per_1000", strcmp(c->t->name, "s3ring") == 0 ?
			    c->med.sleeps_per_1k : -1, true);
		}
		for (unsigned si = 0; si < o.nsizes && o.full_tries > 0; si++) {
			if (full[si].n == 0)
				continue;
			printf("{\"measure\":\"full_tryput\",\"transport\":\"s3ring\","
			    "\"size\":%zu,\"tries\":%" PRIu64 ",\"failed\":%" PRIu64 ",",
			    o.sizes[si], full[si].n, full[si].failed);
			json_num("p50_ns", full[si].p50, false);
			json_num("p99_ns", full[si].p99, false);
			json_num("p999_ns", full[si].p999, true);
		}
		for (unsigned ti = 0; ti < o.ntransports && o.wake_samples > 0; ti++) {
			if (!wake[ti].ok)
				continue;
			printf("{\"measure\":\"wake_latency\",\"transport\":\"%s\","
			    "\"size\":%zu,\"samples\":%" PRIu64 ",", o.transports[ti]->name,
			    o.sizes[0], wake[ti].msgs);
			json_num("p50_ns", wake[ti].p50, false);
			json_num("p99_ns", wake[ti].p99, false);
			json_num("p999_ns", wake[ti].p999, true);
		}
		for (unsigned si = 0; si < o.nsizes; si++) {
			printf("{\"measure\":\"memcpy\",\"size\":%zu,", o.sizes[si]);
			json_num("msgs_per_s", mc[si], false);
			json_num("mb_per_s", mc[si] * (double)o.sizes[si] / 1e6, false);
			json_num("with_crc32c_msgs_per_s", mcc[si], true);
		}
		printf("{\"measure\":\"config\",\"nproc\":%ld,\"cpu\":\"%s\","
		    "\"mq_maxmsg\":%ld,\"mq_msgsize\":%ld,\"unix_max_dgram_qlen\":%ld,"
		    "\"wmem_default\":%ld,\"ring_capacity\":%" PRIu64 ",\"repeat\":%u,",
		    sysconf(_SC_NPROCESSORS_ONLN), cpu, env.mq_maxmsg, env.mq_msgsize,
		    read_long("/proc/sys/net/unix/max_dgram_qlen"),
		    read_long("/proc/sys/net/core/wmem_default"),
		    o.ring_size ? o.ring_size : RING_DEFAULT_CAPACITY, o.repeat);
		json_num("cpu_busy_before", busy, false);
		json_num("timer_overhead_ns", overhead, true);
		for (int i = 0; i < 5; i++) {
			if (!tg[i].measured)
				continue;
			bool pass = tg[i].higher_is_better ? tg[i].value >= tg[i].limit :
			    tg[i].value <= tg[i].limit;
			printf("{\"measure\":\"target\",\"name\":\"%s\",", tg[i].name);
			json_num("value", tg[i].value, false);
			json_num("limit", tg[i].limit, false);
			printf("\"pass\":%s}\n", pass ? "true" : "false");
		}
		goto out;
	}

	printf("\n%-10s %4s %6s %8s %11s %8s %11s %7s %7s %8s %7s %7s\n",
	    "transport", "prod", "size", "msgs", "msgs/s", "MB/s", "puts/s",
	    "p50 ns", "p99 ns", "p99.9 ns", "sys/1k", "blk/1k");
	for (unsigned i = 0; i < ncells; i++) {
		const struct cell *c = &cells[i];
		char sys[16];
		if (!c->med.ok) {
			printf("%-10s %4u %6zu %8s %11s\n", c->t->name, c->nprod, c->size,
			    "-", "n/a");
			continue;
		}
		fmt_opt(sys, sizeof(sys), c->med.sys_per_1k);
		printf("%-10s %4u %6zu %8" PRIu64 " %11.0f %8.1f %11.0f %7.0f %7.0f %8.0f %7s %7.1f\n",
		    c->t->name, c->nprod, c->size, c->med.msgs, c->med.msgs_per_s,
		    c->med.msgs_per_s * (double)c->size / 1e6, c->med.puts_per_s,
		    c->med.p50, c->med.p99, c->med.p999, sys, c->med.vcsw_per_1k);
	}
	printf("\nmsgs/s: end to end, first put to the consumer's last check; puts/s: producer side only.\n"
	    "sys/1k: producers' system calls per 1,000 puts (perf raw_syscalls:sys_enter);\n"
	    "blk/1k: producers' voluntary context switches (calls that blocked) per 1,000 puts.\n"
	    "Latency: every %dth put timed with the cycle counter (overhead %.0f ns included).\n",
	    SAMPLE_EVERY, overhead);
	for (unsigned i = 0; i < ncells; i++) {
		const struct cell *c = &cells[i];
		char cs[16];
		if (!c->med.ok || strcmp(c->t->name, "s3ring") != 0)
			continue;
		fmt_opt(cs, sizeof(cs), c->med.cons_sys_per_1k);
		printf("  s3ring %u prod %5zu B: ring FUTEX_WAKEs %.2f, consumer sleeps %.2f,"
		    " consumer syscalls %s per 1,000 puts\n", c->nprod, c->size,
		    c->med.wakes_per_1k, c->med.sleeps_per_1k, cs);
	}

	printf("\nTry-put (timeout 0) on a full ring, no consumer:\n");
	for (unsigned si = 0; si < o.nsizes && o.full_tries > 0; si++)
		if (full[si].n > 0)
			printf("  %5zu B: p50 %.0f ns, p99 %.0f ns, p99.9 %.0f ns "
			    "(%" PRIu64 " tries, %" PRIu64 " failed with EAGAIN)\n",
			    o.sizes[si], full[si].p50, full[si].p99, full[si].p999,
			    full[si].n, full[si].failed);
	printf("\nWake-up latency, sleeping consumer, %zu B (send start -> consumer has it):\n",
	    o.sizes[0]);
	for (unsigned ti = 0; ti < o.ntransports && o.wake_samples > 0; ti++)
		if (wake[ti].ok)
			printf("  %-10s p50 %6.0f ns, p99 %7.0f ns, p99.9 %7.0f ns (%" PRIu64
			    " samples)\n", o.transports[ti]->name, wake[ti].p50,
			    wake[ti].p99, wake[ti].p999, wake[ti].msgs);
	printf("\nmemcpy into shared memory, one process (the physical limit):\n");
	for (unsigned si = 0; si < o.nsizes; si++)
		printf("  %5zu B: %12.0f msgs/s %9.1f MB/s; with CRC32C %12.0f msgs/s\n",
		    o.sizes[si], mc[si], mc[si] * (double)o.sizes[si] / 1e6, mcc[si]);

	printf("\nTargets (this run):\n");
	for (int i = 0; i < 5; i++) {
		bool pass = tg[i].higher_is_better ? tg[i].value >= tg[i].limit :
		    tg[i].value <= tg[i].limit;
		if (!tg[i].measured)
			printf("  %-44s not measured\n", tg[i].name);
		else if (tg[i].higher_is_better)
			printf("  %-44s %7.1fx  (>= %.0fx)   %s\n", tg[i].name,
			    tg[i].value, tg[i].limit, pass ? "PASS" : "MISS");
		else
			printf("  %-44s %7.0f   (<= %.0f)   %s\n", tg[i].name,
			    tg[i].value, tg[i].limit, pass ? "PASS" : "MISS");
	}
	printf("\n(%.1f s in all; CPUs %.0f%% busy before the run)\n",
	    (double)(mono_ns() - t_begin) / 1e9, busy * 100);

out:
	cleanup_names();
	free(cells);
	return status;
}
