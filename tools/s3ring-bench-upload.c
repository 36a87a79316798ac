/* s3ring-bench-upload.c -- `s3ring-bench upload`: the uploader end to end,
 * against the loopback ceiling, curl, the AWS CLI and its own memory.
 *
 * Everything measured here is started by this process, on 127.0.0.1, and
 * stopped by its own PID however the run ends (short of SIGKILL, and even
 * then every child gets SIGTERM from PR_SET_PDEATHSIG and runs under
 * timeout(1)). Per endpoint (nginx with WebDAV PUT into tmpfs, s3rver, or
 * any URL) the real s3ring-uploader is started on a ring of its own; forked
 * producer processes put messages through the library (s3ring_put, waiting
 * when the ring is full), and the run ends when the ring's `uploaded`
 * counter has grown by the count. What is reported, and how:
 * - uploads/s and MB/s: count over the time from releasing the producers to
 *   the counter reaching the count (polled every 2 ms);
 * - the uploader's CPU seconds per 1,000 uploads: utime + stime from
 *   /proc/PID/stat over the same window (clock ticks, 10 ms);
 * - its peak RSS: VmHWM from /proc/PID/status, since the uploader started;
 * - put-to-stored latency, for one message in `sample` (64, or 8 in the
 *   paced run): the producer reads CLOCK_MONOTONIC just before s3ring_put
 *   (in the paced run: the time the put was scheduled for, so that a late
 *   producer does not hide queueing); the bench reads CLOCK_MONOTONIC when
 *   inotify reports the object stored in the endpoint's data directory
 *   (nginx renames the body into place; s3rver writes the metadata file
 *   last). It ends when the server has stored the object, just before it
 *   answers, so it leaves out the answer's way back to the uploader, and it
 *   includes the bench's own wake-up. Only local endpoints have it.
 *   In the saturated run the ring is full, and latency is the ring's depth
 *   over the throughput (Little's law): the paced run, at a fraction of the
 *   measured rate, is the figure that describes the uploader.
 * The reference clients get the same size, count and concurrency: wrk
 * (nginx, no signing), curl --parallel with --aws-sigv4 (s3rver) and
 * `aws s3 cp --recursive` with max_concurrent_requests (s3rver), the last
 * under GNU time for its peak RSS.
 */
#include "s3ring-bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "futex.h"
#include "ring.h"
#include "s3ring.h"
#include "sigv4.h"

#define MAX_PRODUCERS   32
#define MAX_ENDPOINTS   4
#define BUCKET          "bench"
#define KEYSPACE        100000   /* distinct data keys: tmpfs stays bounded */
#define SAMPLE_SAT      64       /* saturated run: time one put in 64 */
#define SAMPLE_PACED    8        /* paced run: one in 8 */
#define POLL_MS         2
#define MEM_EVERY_NS    (50ull * 1000 * 1000) /* RssAnon + RssFile sampling */
#define STALL_NS        (60ull * 1000 * 1000 * 1000)
#define MS_NS           (1000ull * 1000)
#define SEC_NS          (1000ull * MS_NS)

enum ep_kind { EP_NGINX, EP_S3RVER, EP_URL };

struct endpoint {
	enum ep_kind kind;
	const char *name;           /* "nginx", "s3rver" or the URL */
	char url[512];
	char dir[512];              /* server state (local servers) */
	char data[640];             /* where objects land: DIR/data/BUCKET */
	const char *key_id, *secret;
	bool started;
};

struct opts {
	bool json, soak, keep;
	size_t size;
	uint64_t count;
	unsigned workers;
	unsigned producers;
	const char *endpoints[MAX_ENDPOINTS];
	unsigned nendpoints;
	bool refs;                  /* wrk, curl, AWS CLI */
	unsigned ref_seconds;       /* wrk's duration */
	uint64_t aws_count;
	double paced_fraction;      /* 0: no paced run */
	unsigned paced_seconds;
	const char *uploader;
	const char *aws;
	const char *top;
	const char *extra_args;     /* more uploader flags, space-separated */
	const char *perf_out;       /* perf record the uploader in the main run */
};

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

struct proc_sample {
	double cpu_s;               /* utime + stime */
	long hwm_kib, rss_kib;      /* VmHWM, VmRSS: the ring's pages included */
	long private_kib;           /* RssAnon + RssFile: without shared memory */
};

struct run_result {
	bool ok;
	uint64_t n;
	double secs;
	double ups, mbps;
	double cpu_per_1k;
	double p50_ms, p99_ms, max_ms;
	uint64_t lat_samples, lat_missing;
	double rate;                /* paced: offered messages/s */
	long hwm_at[2];             /* VmHWM at the checkpoints (soak) */
	long private_at[2];         /* RssAnon + RssFile there */
	long private_peak;          /* the largest RssAnon + RssFile seen */
};

struct ep_result {
	bool measured;
	struct run_result sat, paced, soak;
	long hwm_kib;               /* VmHWM at the end */
	long private_peak_kib;      /* RssAnon + RssFile, sampled */
	uint32_t max_message;
	uint64_t ring_capacity;
	double wrk_rps;
	uint64_t wrk_errors;
	double curl_ups;
	uint64_t curl_bad;
	double aws_ups;
	long aws_rss_kib;
	bool aws_ok;
};

static volatile sig_atomic_t interrupted;

/* Everything started, for the cleanup: process groups, rings, the work
 * directory, servers. */
static pid_t live_groups[16];
static char rings[MAX_ENDPOINTS][64];
static unsigned nrings;
static char workdir[256];
static struct endpoint *servers[MAX_ENDPOINTS];
static unsigned nservers;
static const struct opts *gopts;

static void
on_signal(int sig)
{
	interrupted = sig;
}

static void
install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocking wait returns EINTR and the loop notices. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------ processes */

static void
track(pid_t pid)
{
	for (size_t i = 0; i < sizeof(live_groups) / sizeof(live_groups[0]); i++)
		if (live_groups[i] == 0) {
			live_groups[i] = pid;
			return;
		}
}

static void
untrack(pid_t pid)
{
	for (size_t i = 0; i < sizeof(live_groups) / sizeof(live_groups[0]); i++)
		if (live_groups[i] == pid)
			live_groups[i] = 0;
}

/* Starts argv[0] (searched in PATH) in a process group of its own, with
 * stdin from /dev/null and stdout/stderr to the given files (NULL:
 * /dev/null), and the NAME=VALUE strings of env added to the environment
 * (a NAME alone removes it).
 * The child gets SIGTERM if the bench dies. Returns the PID or -errno. */
static pid_t
spawn(char *const argv[], char *const env[], const char *out, const char *err)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd;

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		signal(SIGPIPE, SIG_DFL);
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 1);
		fd = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
			if (strchr(env[i], '=') == NULL)
				unsetenv(env[i]);
			else
				putenv(env[i]);
		}
		execvp(argv[0], argv);
		dprintf(2, "%s: cannot run %s: %s\n", bench_prog, argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	track(pid);
	return pid;
}

/* TERM to the group, up to 5 s, then KILL; reaps the leader. */
static void
stop_group(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			/* The leader is gone; anything left in its group goes too. */
			kill(-pid, SIGKILL);
			untrack(pid);
			return;
		}
		usleep(10000);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, &st, 0);
	untrack(pid);
}

/* Waits for pid up to timeout_ns. Returns its exit status (0..255, 128+sig
 * when killed by a signal), -ETIMEDOUT or -EINTR (then it is stopped). */
static int
wait_child(pid_t pid, uint64_t timeout_ns)
{
	uint64_t deadline = mono_ns() + timeout_ns;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			untrack(pid);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		if (interrupted || mono_ns() > deadline) {
			stop_group(pid);
			return interrupted ? -EINTR : -ETIMEDOUT;
		}
		usleep(5000);
	}
}

/* Runs argv to completion. Returns as wait_child(). */
static int
run_cmd(char *const argv[], char *const env[], const char *out, const char *err,
    unsigned timeout_s)
{
	pid_t pid = spawn(argv, env, out, err);

	if (pid < 0)
		return pid;
	return wait_child(pid, (uint64_t)timeout_s * SEC_NS);
}

/* The real PID under a `timeout` wrapper: its only child. 0 if none yet. */
static pid_t
child_of(pid_t pid)
{
	char path[64], buf[64];
	const char *errstr = NULL;
	long long v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) == NULL) {
		fclose(f);
		return 0;
	}
	fclose(f);
	buf[strcspn(buf, " \n")] = '\0';
	v = strtonum(buf, 1, INT_MAX, &errstr);
	return errstr ? 0 : (pid_t)v;
}

static int
proc_sample(pid_t pid, struct proc_sample *s)
{
	char path[64], line[1024], *p;
	unsigned long long ut = 0, stt = 0;
	FILE *f;
	int rc = -ENOENT;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	if (fgets(line, sizeof(line), f) != NULL && (p = strrchr(line, ')')) != NULL &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &ut, &stt) == 2) {
		s->cpu_s = (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
		rc = 0;
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmHWM:", 6) == 0)
			s->hwm_kib = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "VmRSS:", 6) == 0)
			s->rss_kib = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "RssAnon:", 8) == 0)
			s->private_kib += strtol(line + 8, NULL, 10);
		else if (strncmp(line, "RssFile:", 8) == 0)
			s->private_kib += strtol(line + 8, NULL, 10);
	}
	fclose(f);
	return rc;
}

/* ------------------------------------------------------------- cleanup */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? 0 : 0;
}

static void
rm_rf(const char *dir)
{
	if (dir[0] != '\0')
		nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

static void
server_script(const struct opts *o, const struct endpoint *ep, char *path, size_t cap)
{
	snprintf(path, cap, "%s/tests/servers/%s.sh", o->top,
	    ep->kind == EP_NGINX ? "nginx" : "s3rver");
}

static void
server_stop(const struct opts *o, struct endpoint *ep)
{
	char script[PATH_MAX], log[PATH_MAX + 16];
	char *argv[] = { script, "stop", ep->dir, NULL };

	if (!ep->started)
		return;
	server_script(o, ep, script, sizeof(script));
	snprintf(log, sizeof(log), "%s.log", ep->dir);
	/* Not interruptible: whatever happened, the server must go. */
	interrupted = interrupted ? interrupted : 0;
	{
		pid_t pid = spawn(argv, NULL, NULL, log);
		int st;
		if (pid > 0) {
			waitpid(pid, &st, 0);
			untrack(pid);
		}
	}
	ep->started = false;
}

static void
cleanup_all(void)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(live_groups) / sizeof(live_groups[0]); i++)
		if (live_groups[i] > 0)
			stop_group(live_groups[i]);
	for (unsigned i = 0; i < nservers; i++)
		server_stop(gopts, servers[i]);
	for (unsigned i = 0; i < nrings; i++) {
		(void)ring_unlink(rings[i]);
		snprintf(path, sizeof(path), "/dev/shm/s3ring.%s.journal", rings[i]);
		unlink(path);
	}
	nrings = 0;
	if (!gopts->keep)
		rm_rf(workdir);
	else if (workdir[0] != '\0')
		fprintf(stderr, "%s: kept %s\n", bench_prog, workdir);
}

/* ------------------------------------------------------------- servers */

static int
read_first_line(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return -errno;
	if (fgets(buf, (int)cap, f) == NULL) {
		fclose(f);
		return -ENODATA;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

static int
server_start(const struct opts *o, struct endpoint *ep)
{
	char script[PATH_MAX], out[PATH_MAX + 8], log[PATH_MAX + 8];
	char nginx_bin[PATH_MAX + 32], lifetime[64];
	char *argv[] = { script, "start", ep->dir, BUCKET, NULL };
	char *env[4] = { NULL };
	unsigned ne = 0;
	int rc;

	if (ep->kind == EP_URL) {
		snprintf(ep->url, sizeof(ep->url), "%s", ep->name);
		ep->key_id = getenv("AWS_ACCESS_KEY_ID");
		ep->secret = getenv("AWS_SECRET_ACCESS_KEY");
		return 0;
	}
	server_script(o, ep, script, sizeof(script));
	snprintf(ep->dir, sizeof(ep->dir), "%s/%s", workdir, ep->name);
	snprintf(ep->data, sizeof(ep->data), "%s/%s/data/%s", workdir, ep->name, BUCKET);
	snprintf(out, sizeof(out), "%s.url", ep->dir);
	snprintf(log, sizeof(log), "%s.log", ep->dir);
	/* A bounded lifetime: generous for the soak, short otherwise. */
	snprintf(lifetime, sizeof(lifetime), "SERVER_LIFETIME=%u", o->soak ? 7200 : 1800);
	env[ne++] = lifetime;
	if (ep->kind == EP_NGINX) {
		snprintf(nginx_bin, sizeof(nginx_bin), "NGINX_BIN=%s/tools/bench/nginx-s3.sh", o->top);
		env[ne++] = nginx_bin;
		ep->key_id = "nginx";
		ep->secret = "nginx";
	} else {
		env[ne++] = "S3RVER_QUIET=1";
		ep->key_id = "S3RVER";
		ep->secret = "S3RVER";
	}
	servers[nservers++] = ep;
	ep->started = true;
	rc = run_cmd(argv, env, out, log, 60);
	if (rc != 0 || read_first_line(out, ep->url, sizeof(ep->url)) < 0 ||
	    strncmp(ep->url, "http", 4) != 0) {
		fprintf(stderr, "%s: %s did not start (log: %s)\n", bench_prog, ep->name, log);
		return -EIO;
	}
	return 0;
}

/* ------------------------------------------------------------ uploader */

struct uploader_proc {
	pid_t wrapper, pid;
	char ring[64];
	struct ring r;
	bool open;
};

static int
uploader_start(const struct opts *o, const struct endpoint *ep, unsigned idx,
    struct uploader_proc *up)
{
	char lifetime[32], workers[16], spool[PATH_MAX], log[PATH_MAX];
	char key_env[256], secret_env[256], extra_copy[1024];
	char *argv[48], *env[8];
	unsigned na = 0, ne = 0;
	uint64_t deadline;
	char *save = NULL, *tok;

	memset(up, 0, sizeof(*up));
	up->r.fd = -1;
	snprintf(up->ring, sizeof(up->ring), "bench-upload-%d-%u", (int)getpid(), idx);
	snprintf(rings[nrings++], sizeof(rings[0]), "%s", up->ring);
	snprintf(lifetime, sizeof(lifetime), "%u", o->soak ? 7200 : 1800);
	snprintf(workers, sizeof(workers), "%u", o->workers);
	snprintf(spool, sizeof(spool), "%s/spool-%u", workdir, idx);
	snprintf(log, sizeof(log), "%s/uploader-%u.log", workdir, idx);
	argv[na++] = "timeout";
	argv[na++] = "-k";
	argv[na++] = "10";
	argv[na++] = lifetime;
	argv[na++] = (char *)o->uploader;
	argv[na++] = "--ring";
	argv[na++] = up->ring;
	argv[na++] = "--bucket";
	argv[na++] = BUCKET;
	argv[na++] = "--endpoint";
	argv[na++] = (char *)ep->url;
	argv[na++] = "--path-style";
	argv[na++] = "--workers";
	argv[na++] = workers;
	argv[na++] = "--spool";
	argv[na++] = spool;
	argv[na++] = "--log-level";
	argv[na++] = "warn";
	snprintf(extra_copy, sizeof(extra_copy), "%s", o->extra_args ? o->extra_args : "");
	for (tok = strtok_r(extra_copy, " ", &save); tok != NULL && na < 46;
	    tok = strtok_r(NULL, " ", &save))
		argv[na++] = tok;
	argv[na] = NULL;
	if (ep->key_id != NULL && ep->secret != NULL) {
		snprintf(key_env, sizeof(key_env), "AWS_ACCESS_KEY_ID=%s", ep->key_id);
		snprintf(secret_env, sizeof(secret_env), "AWS_SECRET_ACCESS_KEY=%s", ep->secret);
		env[ne++] = key_env;
		env[ne++] = secret_env;
	}
	if (ep->kind != EP_URL) {
		env[ne++] = "AWS_REGION=us-east-1";
		env[ne++] = "AWS_SESSION_TOKEN";
		env[ne++] = "AWS_PROFILE";
	}
	env[ne] = NULL;
	up->wrapper = spawn(argv, env, NULL, log);
	if (up->wrapper < 0)
		return (int)up->wrapper;
	/* Attached: the ring exists and names the uploader's PID. */
	deadline = mono_ns() + 20 * SEC_NS;
	while (mono_ns() < deadline && !interrupted) {
		if (up->pid == 0)
			up->pid = child_of(up->wrapper);
		if (up->pid != 0 && !up->open)
			up->open = ring_open(&up->r, up->ring, RING_OPEN_RDONLY, NULL) == 0;
		if (up->open && atomic_load(&up->r.hdr->uploader_pid) == (uint32_t)up->pid)
			return 0;
		if (waitpid(up->wrapper, NULL, WNOHANG) == up->wrapper) {
			untrack(up->wrapper);
			up->wrapper = 0;
			break;
		}
		usleep(10000);
	}
	fprintf(stderr, "%s: the uploader did not attach to ring %s (log: %s)\n",
	    bench_prog, up->ring, log);
	return -EIO;
}

static void
uploader_stop(struct uploader_proc *up)
{
	if (up->wrapper > 0)
		stop_group(up->wrapper);
	up->wrapper = 0;
	if (up->open)
		ring_close(&up->r);
	up->open = false;
}

static uint64_t
uploaded(const struct uploader_proc *up)
{
	return atomic_load_explicit(&up->r.hdr->uploaded, memory_order_relaxed) +
	    atomic_load_explicit(&up->r.hdr->dead_lettered, memory_order_relaxed);
}

/* ------------------------------------------------------------ producers */

struct run_spec {
	uint64_t n;                 /* messages, over all producers */
	uint64_t first;             /* global index of the first (unique keys) */
	unsigned run_id;            /* sampled keys go to l<run_id>/ */
	unsigned sample;            /* time one message in this many */
	double rate;                /* messages/s over all producers; 0: flat out */
	const uint64_t *checkpoints;/* VmHWM when uploaded reaches these */
	unsigned ncheckpoints;
	const char *perf_out;       /* non-NULL: perf record -g the uploader */
};

static void
fill_body(uint8_t *buf, size_t size)
{
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)('a' + i % 26);
}

static int
producer_main(const char *ring, const struct run_spec *rs, struct run_shm *sh,
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
	fill_body(body, size);
	if (rs->rate > 0)
		interval = (uint64_t)((double)SEC_NS * nprod / rs->rate);
	atomic_fetch_add_explicit(&sh->ready, 1, memory_order_release);
	/* Acquire: pairs with the parent's release store of go. */
	while (atomic_load_explicit(&sh->go, memory_order_acquire) == 0)
		(void)futex_wait(&sh->go, 0, mono_ns() + FUTEX_MAX_WAIT_NS);
	t0 = mono_ns();
	for (uint64_t i = 0, g = id; g < rs->n; i++, g += nprod) {
		uint64_t gi = rs->first + g, when = 0;
		bool sampled = g % rs->sample == 0;

		if (interval != 0) {
			struct timespec ts;
			when = t0 + i * interval;
			ts.tv_sec = (time_t)(when / SEC_NS);
			ts.tv_nsec = (long)(when % SEC_NS);
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
				;
		}
		if (sampled) {
			snprintf(key, sizeof(key), "l%u/%" PRIu64, rs->run_id, g / rs->sample);
			/* Paced: the time the put was due, so that a producer that
			 * fell behind does not hide the queueing (coordinated
			 * omission). */
			atomic_store_explicit(&sh->put_ns[g / rs->sample],
			    interval ? when : mono_ns(), memory_order_relaxed);
		} else {
			snprintf(key, sizeof(key), "d/%" PRIu64, gi % KEYSPACE);
		}
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

/* ------------------------------------------------------------ one run */

/* Parses an inotify event name "N" or "N._S3rver_metadata.json" (the final
 * file s3rver writes) into N. nginx stores by renaming into place, so its
 * event is IN_MOVED_TO. */
static bool
event_sample(const struct inotify_event *ev, enum ep_kind kind, uint64_t *n)
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

static void
drain_events(int ifd, enum ep_kind kind, struct run_shm *sh, uint64_t *done_ns)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t now = mono_ns();
	ssize_t got;

	while ((got = read(ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + got;) {
			const struct inotify_event *ev = (const void *)p;
			uint64_t s;

			if (event_sample(ev, kind, &s) && s < sh->nsamples && done_ns[s] == 0)
				done_ns[s] = now;
			p += sizeof(*ev) + ev->len;
		}
	}
}

static int
run(const struct opts *o, const struct endpoint *ep, struct uploader_proc *up,
    const struct run_spec *rs, struct run_result *res)
{
	pid_t pids[MAX_PRODUCERS] = { 0 };
	size_t shm_len;
	struct run_shm *sh;
	struct proc_sample p0, p1;
	uint64_t base, target, t0, t_end = 0, last_progress, last_count, next_mem = 0;
	uint64_t *done_ns = NULL;
	double *lat = NULL;
	unsigned next_cp = 0;
	char dir[PATH_MAX + 32];
	pid_t perf_pid = 0;
	int ifd = -1, rc = -EIO;

	memset(res, 0, sizeof(*res));
	res->n = rs->n;
	res->rate = rs->rate;
	res->p50_ms = res->p99_ms = res->max_ms = NAN;
	shm_len = sizeof(*sh) + (rs->n / rs->sample + 1) * sizeof(uint64_t);
	sh = mmap(NULL, shm_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -errno;
	sh->nsamples = rs->n / rs->sample + 1;
	done_ns = calloc(sh->nsamples, sizeof(*done_ns));
	lat = calloc(sh->nsamples, sizeof(*lat));
	if (done_ns == NULL || lat == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (ep->kind != EP_URL) {
		snprintf(dir, sizeof(dir), "%s/l%u", ep->data, rs->run_id);
		(void)mkdir(ep->data, 0755);
		if (mkdir(dir, 0755) == 0 || errno == EEXIST) {
			ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
			if (ifd >= 0 && inotify_add_watch(ifd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
				close(ifd);
				ifd = -1;
			}
		}
	}

	fflush(NULL);
	for (unsigned i = 0; i < o->producers; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			rc = -errno;
			goto out_kill;
		}
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			_exit(producer_main(up->ring, rs, sh, i, o->producers, o->size));
		}
	}
	while (atomic_load(&sh->ready) < o->producers) {
		if (interrupted) {
			rc = -EINTR;
			goto out_kill;
		}
		for (unsigned i = 0; i < o->producers; i++)
			if (waitpid(pids[i], NULL, WNOHANG) == pids[i]) {
				pids[i] = 0;
				fprintf(stderr, "%s: a producer could not open ring %s: %s\n",
				    bench_prog, up->ring, s3ring_strerror(atomic_load(&sh->first_error)));
				goto out_kill;
			}
		usleep(1000);
	}

	if (rs->perf_out != NULL) {
		char pid[16], err[PATH_MAX];
		char *pargv[] = { "perf", "record", "-F", "999", "--call-graph", "dwarf,16384", "-o",
			(char *)rs->perf_out, "-p", pid, NULL };
		snprintf(pid, sizeof(pid), "%d", (int)up->pid);
		snprintf(err, sizeof(err), "%s/perf.err", workdir);
		perf_pid = spawn(pargv, NULL, NULL, err);
		usleep(300000); /* perf attaches to every thread */
	}
	base = uploaded(up);
	target = base + rs->n;
	(void)proc_sample(up->pid, &p0);
	t0 = mono_ns();
	last_progress = t0;
	last_count = base;
	/* Release: pairs with the producers' acquire load of go. */
	atomic_store_explicit(&sh->go, 1, memory_order_release);
	futex_wake(&sh->go, INT32_MAX);

	for (;;) {
		struct pollfd pfd = { .fd = ifd, .events = POLLIN };
		uint64_t now, c;

		if (ifd >= 0)
			(void)poll(&pfd, 1, POLL_MS);
		else
			usleep(POLL_MS * 1000);
		if (ifd >= 0)
			drain_events(ifd, ep->kind, sh, done_ns);
		now = mono_ns();
		c = uploaded(up);
		if (now >= next_mem) {
			struct proc_sample ps;
			if (proc_sample(up->pid, &ps) == 0 && ps.private_kib > res->private_peak)
				res->private_peak = ps.private_kib;
			next_mem = now + MEM_EVERY_NS;
		}
		while (next_cp < rs->ncheckpoints && c - base >= rs->checkpoints[next_cp]) {
			struct proc_sample ps;
			if (proc_sample(up->pid, &ps) == 0 && next_cp < 2) {
				res->hwm_at[next_cp] = ps.hwm_kib;
				res->private_at[next_cp] = ps.private_kib;
			}
			next_cp++;
		}
		if (c >= target) {
			t_end = now;
			break;
		}
		if (c != last_count) {
			last_count = c;
			last_progress = now;
		}
		if (interrupted) {
			rc = -EINTR;
			goto out_kill;
		}
		if (now - last_progress > STALL_NS || kill(up->pid, 0) < 0) {
			fprintf(stderr, "%s: %s: no upload for %llu s (%" PRIu64 " of %" PRIu64 " done); see the uploader's log in %s\n",
			    bench_prog, ep->name, STALL_NS / SEC_NS, c - base, rs->n, workdir);
			goto out_kill;
		}
	}
	(void)proc_sample(up->pid, &p1);
	if (perf_pid > 0) {
		/* SIGINT: perf writes its data and exits. */
		kill(perf_pid, SIGINT);
		(void)wait_child(perf_pid, 30 * SEC_NS);
		perf_pid = 0;
	}
	if (ifd >= 0) {
		usleep(20000);
		drain_events(ifd, ep->kind, sh, done_ns);
	}
	for (unsigned i = 0; i < o->producers; i++) {
		int st;
		if (waitpid(pids[i], &st, 0) == pids[i] && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
			fprintf(stderr, "%s: producer %u failed\n", bench_prog, i);
		pids[i] = 0;
	}
	if (atomic_load(&sh->errors) != 0) {
		fprintf(stderr, "%s: %" PRIu64 " puts failed: %s\n", bench_prog,
		    (uint64_t)atomic_load(&sh->errors),
		    s3ring_strerror(atomic_load(&sh->first_error)));
		goto out;
	}

	res->secs = (double)(t_end - t0) / 1e9;
	res->ups = (double)rs->n / res->secs;
	res->mbps = res->ups * (double)o->size / 1e6;
	res->cpu_per_1k = (p1.cpu_s - p0.cpu_s) * 1000.0 / (double)rs->n;
	if (ifd >= 0) {
		size_t nl = 0;
		uint64_t expect = (rs->n + rs->sample - 1) / rs->sample;

		for (uint64_t s = 0; s < expect && s < sh->nsamples; s++) {
			uint64_t put = atomic_load_explicit(&sh->put_ns[s], memory_order_relaxed);
			if (done_ns[s] != 0 && put != 0 && done_ns[s] >= put)
				lat[nl++] = (double)(done_ns[s] - put) / 1e6;
		}
		qsort(lat, nl, sizeof(*lat), cmp_double);
		res->lat_samples = nl;
		res->lat_missing = expect - nl;
		res->p50_ms = quantile(lat, nl, 0.50);
		res->p99_ms = quantile(lat, nl, 0.99);
		res->max_ms = nl ? lat[nl - 1] : NAN;
	}
	res->ok = true;
	rc = 0;
	goto out;

out_kill:
	for (unsigned i = 0; i < o->producers; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
out:
	if (perf_pid > 0)
		stop_group(perf_pid);
	if (ifd >= 0)
		close(ifd);
	free(done_ns);
	free(lat);
	munmap(sh, shm_len);
	return rc;
}

/* ---------------------------------------------------------- references */

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
		if (strncmp(line, "Requests/sec:", 13) == 0)
			rps = strtod(line + 13, NULL);
		else if (strstr(line, "Non-2xx or 3xx responses:") != NULL)
			*errors += strtoull(strchr(line, ':') + 1, NULL, 10);
		else if (strstr(line, "Socket errors:") != NULL) {
			unsigned long long a = 0, b = 0, c = 0, d = 0;
			if (sscanf(strstr(line, "Socket errors:"),
			    "Socket errors: connect %llu, read %llu, write %llu, timeout %llu",
			    &a, &b, &c, &d) == 4)
				*errors += a + b + c + d;
		}
	}
	fclose(f);
	return rps;
}

static int
ref_wrk(const struct opts *o, const struct endpoint *ep, struct ep_result *er)
{
	char lua[PATH_MAX], out[PATH_MAX], err[PATH_MAX], conns[16], threads[16];
	char dur[16], lifetime[16], size_env[48];
	char *argv[] = { "timeout", "-k", "5", lifetime, "wrk", "-t", threads, "-c", conns,
		"-d", dur, "-s", lua, (char *)ep->url, NULL };
	char *env[] = { size_env, "WRK_PREFIX=/wrk/", NULL };
	int rc;

	snprintf(lua, sizeof(lua), "%s/tests/servers/wrk-put.lua", o->top);
	snprintf(out, sizeof(out), "%s/wrk.out", workdir);
	snprintf(err, sizeof(err), "%s/wrk.err", workdir);
	snprintf(conns, sizeof(conns), "%u", o->workers);
	snprintf(threads, sizeof(threads), "%u", o->workers < 2 ? 1 : 2);
	snprintf(dur, sizeof(dur), "%us", o->ref_seconds);
	snprintf(lifetime, sizeof(lifetime), "%u", o->ref_seconds + 30);
	snprintf(size_env, sizeof(size_env), "WRK_BODY_SIZE=%zu", o->size);
	rc = run_cmd(argv, env, out, err, o->ref_seconds + 40);
	if (rc != 0) {
		fprintf(stderr, "%s: wrk failed (%d; %s)\n", bench_prog, rc, err);
		return rc < 0 ? rc : -EIO;
	}
	er->wrk_rps = parse_wrk_rps(out, &er->wrk_errors);
	return isnan(er->wrk_rps) ? -EIO : 0;
}

static int
write_body_file(const char *path, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	int fd, rc = 0;

	if (buf == NULL)
		return -ENOMEM;
	fill_body(buf, size);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, size) != (ssize_t)size)
		rc = -EIO;
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

static int
ref_curl(const struct opts *o, const struct endpoint *ep, struct ep_result *er)
{
	char body[PATH_MAX], out[PATH_MAX], err[PATH_MAX], url[1024], par[16];
	char hash[SIGV4_SHA256_HEX_LEN + 1], hdr[128], user[128], lifetime[16];
	char *argv[] = { "timeout", "-k", "5", lifetime, "curl", "-sS", "--parallel",
		"--parallel-max", par, "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", user,
		"-H", hdr, "-o", "/dev/null", "-w", "%{http_code}\\n", "-T", body, url, NULL };
	uint8_t *buf;
	uint64_t t0, t1, good = 0, lines = 0;
	char line[64];
	FILE *f;
	int rc;

	snprintf(body, sizeof(body), "%s/body.bin", workdir);
	snprintf(out, sizeof(out), "%s/curl.out", workdir);
	snprintf(err, sizeof(err), "%s/curl.err", workdir);
	snprintf(par, sizeof(par), "%u", o->workers);
	snprintf(user, sizeof(user), "%s:%s", ep->key_id, ep->secret);
	snprintf(url, sizeof(url), "%s/%s/c/[1-%" PRIu64 "]", ep->url, BUCKET, o->count);
	snprintf(lifetime, sizeof(lifetime), "%u", 900);
	if ((rc = write_body_file(body, o->size)) < 0)
		return rc;
	buf = malloc(o->size ? o->size : 1);
	if (buf == NULL)
		return -ENOMEM;
	fill_body(buf, o->size);
	rc = sigv4_sha256_hex(buf, o->size, hash);
	free(buf);
	if (rc < 0)
		return rc;
	snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", hash);
	t0 = mono_ns();
	rc = run_cmd(argv, NULL, out, err, 900);
	t1 = mono_ns();
	if (rc != 0) {
		fprintf(stderr, "%s: curl failed (%d; %s)\n", bench_prog, rc, err);
		return rc < 0 ? rc : -EIO;
	}
	f = fopen(out, "re");
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		lines++;
		if (line[0] == '2')
			good++;
	}
	fclose(f);
	er->curl_bad = o->count - (good < o->count ? good : o->count);
	er->curl_ups = (double)good / ((double)(t1 - t0) / 1e9);
	(void)lines;
	return 0;
}

static int
ref_aws(const struct opts *o, const struct endpoint *ep, struct ep_result *er)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], conf[PATH_MAX], tout[PATH_MAX];
	char err[PATH_MAX], dest[128], key_env[128], secret_env[128], conf_env[PATH_MAX + 32];
	char lifetime[16], line[256];
	char *argv[] = { "timeout", "-k", "5", lifetime, "/usr/bin/time", "-v", "-o", tout,
		(char *)o->aws, "--endpoint-url", (char *)ep->url, "s3", "cp", "--recursive",
		"--only-show-errors", "--no-progress", dir, dest, NULL };
	char *env[] = { key_env, secret_env, conf_env, "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_SESSION_TOKEN",
		"AWS_PROFILE", NULL };
	uint64_t t0, t1;
	FILE *f;
	int rc;

	snprintf(dir, sizeof(dir), "%s/aws-src", workdir);
	snprintf(conf, sizeof(conf), "%s/aws.config", workdir);
	snprintf(tout, sizeof(tout), "%s/aws.time", workdir);
	snprintf(err, sizeof(err), "%s/aws.err", workdir);
	snprintf(dest, sizeof(dest), "s3://%s/aws/", BUCKET);
	snprintf(key_env, sizeof(key_env), "AWS_ACCESS_KEY_ID=%s", ep->key_id);
	snprintf(secret_env, sizeof(secret_env), "AWS_SECRET_ACCESS_KEY=%s", ep->secret);
	snprintf(conf_env, sizeof(conf_env), "AWS_CONFIG_FILE=%s", conf);
	snprintf(lifetime, sizeof(lifetime), "%u", 1800);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	for (uint64_t i = 0; i < o->aws_count; i++) {
		snprintf(path, sizeof(path), "%s/f%07" PRIu64, dir, i);
		if ((rc = write_body_file(path, o->size)) < 0)
			return rc;
	}
	f = fopen(conf, "we");
	if (f == NULL)
		return -errno;
	fprintf(f, "[default]\nregion = us-east-1\ns3 =\n    max_concurrent_requests = %u\n"
	    "    addressing_style = path\n", o->workers);
	fclose(f);
	if (access(o->aws, X_OK) != 0 || access("/usr/bin/time", X_OK) != 0) {
		fprintf(stderr, "%s: %s or /usr/bin/time missing (tests/install-deps.sh installs awscli and time)\n",
		    bench_prog, o->aws);
		return -ENOENT;
	}
	t0 = mono_ns();
	rc = run_cmd(argv, env, NULL, err, 1800);
	t1 = mono_ns();
	if (rc != 0) {
		fprintf(stderr, "%s: aws s3 cp failed (%d; %s)\n", bench_prog, rc, err);
		return rc < 0 ? rc : -EIO;
	}
	er->aws_ups = (double)o->aws_count / ((double)(t1 - t0) / 1e9);
	f = fopen(tout, "re");
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *m = strstr(line, "Maximum resident set size (kbytes):");
		if (m != NULL)
			er->aws_rss_kib = strtol(strchr(m, ':') + 1, NULL, 10);
	}
	fclose(f);
	er->aws_ok = er->aws_rss_kib > 0;
	return 0;
}

/* ----------------------------------------------------------- reporting */

static void
json_num(const char *key, double v, bool last)
{
	if (!isfinite(v) || v < 0)
		printf("\"%s\":null%s", key, last ? "}\n" : ",");
	else
		printf("\"%s\":%.3f%s", key, v, last ? "}\n" : ",");
}

static double
loadavg1(void)
{
	char buf[64];

	if (read_first_line("/proc/loadavg", buf, sizeof(buf)) < 0)
		return NAN;
	return strtod(buf, NULL);
}

static void
print_run(const struct opts *o, const char *measure, const char *ep,
    const struct run_result *r, long hwm, long priv)
{
	if (!r->ok)
		return;
	if (o->json) {
		printf("{\"measure\":\"%s\",\"endpoint\":\"%s\",\"size\":%zu,\"count\":%" PRIu64
		    ",\"workers\":%u,\"producers\":%u,", measure, ep, o->size, r->n,
		    o->workers, o->producers);
		json_num("offered_per_s", r->rate > 0 ? r->rate : NAN, false);
		json_num("seconds", r->secs, false);
		json_num("uploads_per_s", r->ups, false);
		json_num("mb_per_s", r->mbps, false);
		json_num("cpu_s_per_1k", r->cpu_per_1k, false);
		printf("\"peak_rss_kib\":%ld,\"peak_private_kib\":%ld,\"lat_samples\":%" PRIu64
		    ",\"lat_missing\":%" PRIu64 ",", hwm, priv, r->lat_samples, r->lat_missing);
		json_num("p50_ms", r->p50_ms, false);
		json_num("p99_ms", r->p99_ms, false);
		json_num("max_ms", r->max_ms, true);
		return;
	}
	printf("%-8s %-9s %9" PRIu64 " %9.0f %7.2f %8.3f %8.1f %8.1f %9.2f %9.2f  %s\n",
	    ep, measure, r->n, r->ups, r->mbps, r->cpu_per_1k, (double)hwm / 1024.0,
	    (double)priv / 1024.0, r->p50_ms, r->p99_ms, r->rate > 0 ? "paced" : "");
}

struct target {
	char name[64];
	double value, limit;
	bool higher_is_better, measured;
};

static void
add_target(struct target *t, unsigned *n, const char *name, double v, double limit,
    bool higher)
{
	if (!isfinite(v))
		return;
	snprintf(t[*n].name, sizeof(t[*n].name), "%s", name);
	t[*n].value = v;
	t[*n].limit = limit;
	t[*n].higher_is_better = higher;
	t[*n].measured = true;
	(*n)++;
}

static const char *
kind_name(enum ep_kind k)
{
	return k == EP_NGINX ? "nginx" : k == EP_S3RVER ? "s3rver" : "url";
}

/* ---------------------------------------------------------------- main */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: %s upload [--json] [--size BYTES] [--count N] [--workers N]\n"
	    "         [--producers N] [--endpoint nginx|s3rver|URL[,...]] [--soak]\n"
	    "         [--no-refs] [--ref-seconds S] [--aws-count N] [--paced F]\n"
	    "         [--paced-seconds S] [--uploader PATH] [--aws PATH]\n"
	    "         [--top DIR] [--uploader-args 'FLAGS'] [--perf FILE] [--keep]\n"
	    "  Puts COUNT messages of SIZE bytes from PRODUCERS processes into a ring\n"
	    "  that a real s3ring-uploader with WORKERS workers drains to each endpoint\n"
	    "  (default: nginx,s3rver, both started here on 127.0.0.1), and measures\n"
	    "  uploads/s, MB/s, the uploader's CPU per 1,000 uploads, its peak RSS and\n"
	    "  put-to-stored latency; then the same load paced at F (default 0.5) of\n"
	    "  the measured rate for S seconds (default 5; --paced 0: none). Reference\n"
	    "  points in the same run: wrk (nginx), curl --parallel and the AWS CLI\n"
	    "  (s3rver). --soak: 1,000,000 uploads to nginx, VmHWM at 100k and 1M.\n"
	    "  A URL endpoint uses the AWS_* credentials of the environment and has\n"
	    "  no latency. --perf FILE: perf record -g the uploader during the main\n"
	    "  run (one endpoint). Defaults: size 1024, count 20000, workers 16,\n"
	    "  producers 2.\n",
	    bench_prog);
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
parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_SIZE = 256, O_COUNT, O_WORKERS, O_PRODUCERS, O_ENDPOINT, O_SOAK,
		O_NOREFS, O_REFSEC, O_AWSCOUNT, O_PACED, O_PACEDSEC, O_UPLOADER, O_AWS,
		O_TOP, O_UARGS, O_KEEP, O_PERF };
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "size", required_argument, NULL, O_SIZE },
		{ "count", required_argument, NULL, O_COUNT },
		{ "workers", required_argument, NULL, O_WORKERS },
		{ "producers", required_argument, NULL, O_PRODUCERS },
		{ "endpoint", required_argument, NULL, O_ENDPOINT },
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
		{ NULL, 0, NULL, 0 },
	};
	static char endpoints_buf[1024];
	uint64_t v;
	int c;
	char *save = NULL, *tok, *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		switch (c) {
		case 'j': o->json = true; break;
		case 'h': usage(stdout); exit(0);
		case O_SIZE:
			if (parse_u64(optarg, "--size", 1, 64 << 20, &v) < 0)
				return -1;
			o->size = (size_t)v;
			break;
		case O_COUNT:
			if (parse_u64(optarg, "--count", 1, 1000000000, &o->count) < 0)
				return -1;
			break;
		case O_WORKERS:
			if (parse_u64(optarg, "--workers", 1, 1024, &v) < 0)
				return -1;
			o->workers = (unsigned)v;
			break;
		case O_PRODUCERS:
			if (parse_u64(optarg, "--producers", 1, MAX_PRODUCERS, &v) < 0)
				return -1;
			o->producers = (unsigned)v;
			break;
		case O_ENDPOINT:
			snprintf(endpoints_buf, sizeof(endpoints_buf), "%s", optarg);
			o->nendpoints = 0;
			for (tok = strtok_r(endpoints_buf, ",", &save); tok != NULL;
			    tok = strtok_r(NULL, ",", &save)) {
				if (o->nendpoints == MAX_ENDPOINTS) {
					fprintf(stderr, "%s upload: at most %d endpoints\n", bench_prog, MAX_ENDPOINTS);
					return -1;
				}
				if (strcmp(tok, "nginx") != 0 && strcmp(tok, "s3rver") != 0 &&
				    strncmp(tok, "http://", 7) != 0 && strncmp(tok, "https://", 8) != 0) {
					fprintf(stderr, "%s upload: --endpoint %s: nginx, s3rver or a URL\n",
					    bench_prog, tok);
					return -1;
				}
				o->endpoints[o->nendpoints++] = tok;
			}
			break;
		case O_SOAK: o->soak = true; break;
		case O_NOREFS: o->refs = false; break;
		case O_REFSEC:
			if (parse_u64(optarg, "--ref-seconds", 1, 3600, &v) < 0)
				return -1;
			o->ref_seconds = (unsigned)v;
			break;
		case O_AWSCOUNT:
			if (parse_u64(optarg, "--aws-count", 0, 1000000, &o->aws_count) < 0)
				return -1;
			break;
		case O_PACED:
			o->paced_fraction = strtod(optarg, &end);
			if (*end != '\0' || o->paced_fraction < 0 || o->paced_fraction > 1) {
				fprintf(stderr, "%s upload: --paced %s: a fraction 0..1\n", bench_prog, optarg);
				return -1;
			}
			break;
		case O_PACEDSEC:
			if (parse_u64(optarg, "--paced-seconds", 1, 3600, &v) < 0)
				return -1;
			o->paced_seconds = (unsigned)v;
			break;
		case O_UPLOADER: o->uploader = optarg; break;
		case O_AWS: o->aws = optarg; break;
		case O_TOP: o->top = optarg; break;
		case O_UARGS: o->extra_args = optarg; break;
		case O_KEEP: o->keep = true; break;
		case O_PERF: o->perf_out = optarg; break;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s upload: unexpected argument %s\n", bench_prog, argv[optind]);
		return -1;
	}
	return 0;
}

/* Finds the source tree (for tests/servers and tools/bench) and the
 * uploader next to this binary: BUILD/bin/s3ring-bench, two levels under the
 * top. */
static int
locate(struct opts *o)
{
	static char top[PATH_MAX], upl[PATH_MAX + 32];
	char exe[PATH_MAX], probe[PATH_MAX + 64], *slash;
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
	if (o->top == NULL) {
		const char *env = getenv("S3RING_TOP");
		if (env != NULL && env[0] != '\0') {
			snprintf(top, sizeof(top), "%s", env);
		} else {
			/* BUILD/bin, or build/asan/bin: walk up until tests/servers. */
			snprintf(top, sizeof(top), "%s", exe);
			for (int up = 0; up < 4; up++) {
				snprintf(probe, sizeof(probe), "%s/tests/servers/nginx.sh", top);
				if (access(probe, X_OK) == 0)
					break;
				slash = strrchr(top, '/');
				if (slash == NULL || slash == top)
					break;
				*slash = '\0';
			}
		}
		o->top = top;
	}
	snprintf(probe, sizeof(probe), "%s/tests/servers/nginx.sh", o->top);
	if (access(probe, X_OK) != 0) {
		fprintf(stderr, "%s upload: no tests/servers under %s (--top DIR or S3RING_TOP)\n",
		    bench_prog, o->top);
		return -ENOENT;
	}
	if (access(o->uploader, X_OK) != 0) {
		fprintf(stderr, "%s upload: %s: %s (--uploader PATH)\n", bench_prog,
		    o->uploader, strerror(errno));
		return -ENOENT;
	}
	return 0;
}

static int
measure_endpoint(const struct opts *o, struct endpoint *ep, unsigned idx,
    struct ep_result *er)
{
	struct uploader_proc up;
	struct proc_sample ps;
	uint64_t warm = o->workers * 20u < 200 ? 200 : o->workers * 20u;
	uint64_t cps[2] = { 100000, 1000000 };
	struct run_spec rs;
	unsigned run_id = 0;
	int rc;

	memset(er, 0, sizeof(*er));
	er->wrk_rps = er->curl_ups = er->aws_ups = NAN;
	if ((rc = server_start(o, ep)) < 0)
		return rc;
	if ((rc = uploader_start(o, ep, idx, &up)) < 0)
		goto out;
	er->max_message = up.r.max_message;

	/* Warm-up: the bucket check is done, connections are open. */
	rs = (struct run_spec){ .n = warm, .first = 0, .run_id = run_id++, .sample = SAMPLE_SAT };
	if ((rc = run(o, ep, &up, &rs, &er->sat)) < 0)
		goto out_up;

	if (o->soak) {
		rs = (struct run_spec){ .n = 1000000, .first = warm, .run_id = run_id++,
			.sample = 1024, .checkpoints = cps, .ncheckpoints = 2 };
		if ((rc = run(o, ep, &up, &rs, &er->soak)) < 0)
			goto out_up;
	} else {
		rs = (struct run_spec){ .n = o->count, .first = warm, .run_id = run_id++,
			.sample = SAMPLE_SAT, .perf_out = o->perf_out };
		if ((rc = run(o, ep, &up, &rs, &er->sat)) < 0)
			goto out_up;
		if (o->paced_fraction > 0) {
			double rate = er->sat.ups * o->paced_fraction;
			uint64_t n = (uint64_t)(rate * o->paced_seconds);
			rs = (struct run_spec){ .n = n < 100 ? 100 : n, .first = warm + o->count,
				.run_id = run_id++, .sample = SAMPLE_PACED, .rate = rate };
			if ((rc = run(o, ep, &up, &rs, &er->paced)) < 0)
				goto out_up;
		}
	}
	if (proc_sample(up.pid, &ps) == 0) {
		er->hwm_kib = ps.hwm_kib;
		er->private_peak_kib = ps.private_kib;
	}
	{
		const struct run_result *rr[] = { &er->sat, &er->paced, &er->soak };
		for (size_t i = 0; i < 3; i++)
			if (rr[i]->private_peak > er->private_peak_kib)
				er->private_peak_kib = rr[i]->private_peak;
	}
	er->ring_capacity = up.r.capacity;
	er->measured = true;
	uploader_stop(&up);

	/* The references, with the uploader gone so it costs them nothing. */
	if (o->refs && !o->soak && !interrupted) {
		if (ep->kind == EP_NGINX)
			(void)ref_wrk(o, ep, er);
		if (ep->kind == EP_S3RVER)
			(void)ref_curl(o, ep, er);
		/* nginx ignores the signature, so the AWS CLI runs against both:
		 * against s3rver the server is the ceiling, against nginx the
		 * client is. */
		if (ep->kind != EP_URL && o->aws_count > 0 && !interrupted)
			(void)ref_aws(o, ep, er);
	}
	rc = interrupted ? -EINTR : 0;
	goto out;
out_up:
	uploader_stop(&up);
out:
	server_stop(o, ep);
	return rc;
}

int
bench_upload_main(int argc, char **argv)
{
	struct opts o = {
		.size = 1024, .count = 20000, .workers = 16, .producers = 2,
		.refs = true, .ref_seconds = 5, .aws_count = 2000,
		.paced_fraction = 0.5, .paced_seconds = 5,
	};
	static struct endpoint eps[MAX_ENDPOINTS];
	struct ep_result res[MAX_ENDPOINTS];
	struct target tg[32];
	char tname[64];
	unsigned ntg = 0;
	char cpu[128];
	double load0, load1;
	int rc = 0;

	if (parse_opts(argc, argv, &o) < 0)
		return EX_USAGE;
	if (o.nendpoints == 0) {
		o.endpoints[o.nendpoints++] = "nginx";
		if (!o.soak)
			o.endpoints[o.nendpoints++] = "s3rver";
	}
	if (o.aws == NULL)
		o.aws = access("/usr/bin/aws", X_OK) == 0 ? "/usr/bin/aws" : "aws";
	if (locate(&o) < 0)
		return EX_UNAVAILABLE;
	gopts = &o;
	install_handlers();
	snprintf(workdir, sizeof(workdir), "/dev/shm/s3ring-bench-upload.XXXXXX");
	if (mkdtemp(workdir) == NULL) {
		fprintf(stderr, "%s upload: mkdtemp %s: %s\n", bench_prog, workdir, strerror(errno));
		workdir[0] = '\0';
		return EX_OSERR;
	}
	bench_cpu_model(cpu, sizeof(cpu));
	load0 = loadavg1();
	if (!o.json)
		fprintf(stderr, "%s upload: %zu-byte messages, %u workers, %u producers, load %.2f; work dir %s\n",
		    bench_prog, o.size, o.workers, o.producers, load0, workdir);

	for (unsigned i = 0; i < o.nendpoints; i++) {
		struct endpoint *ep = &eps[i];
		memset(ep, 0, sizeof(*ep));
		ep->name = o.endpoints[i];
		ep->kind = strcmp(ep->name, "nginx") == 0 ? EP_NGINX :
		    strcmp(ep->name, "s3rver") == 0 ? EP_S3RVER : EP_URL;
		if (measure_endpoint(&o, ep, i, &res[i]) < 0) {
			rc = 1;
			if (interrupted)
				break;
		}
	}
	load1 = loadavg1();
	cleanup_all();
	if (interrupted) {
		fprintf(stderr, "%s upload: interrupted\n", bench_prog);
		return 128 + interrupted;
	}

	/* Targets. */
	for (unsigned i = 0; i < o.nendpoints; i++) {
		const struct ep_result *r = &res[i];
		double bound = (double)o.workers * r->max_message / 1024.0 + 16 * 1024;
		if (!r->measured)
			continue;
		if (eps[i].kind == EP_NGINX && !o.soak)
			add_target(tg, &ntg, "nginx_vs_wrk_ratio", r->sat.ups / r->wrk_rps, 0.40, true);
		if (eps[i].kind == EP_S3RVER)
			add_target(tg, &ntg, "s3rver_vs_curl_ratio", r->sat.ups / r->curl_ups, 0.90, true);
		if (eps[i].kind != EP_URL && !o.soak) {
			const char *k = kind_name(eps[i].kind);
			snprintf(tname, sizeof(tname), "%s_vs_aws_cli_rate", k);
			add_target(tg, &ntg, tname, r->sat.ups / r->aws_ups, 5.0, true);
			if (r->aws_ok) {
				snprintf(tname, sizeof(tname), "%s_aws_cli_rss_over_uploader_private", k);
				add_target(tg, &ntg, tname,
				    (double)r->aws_rss_kib / (double)r->private_peak_kib, 5.0, true);
				snprintf(tname, sizeof(tname), "%s_aws_cli_rss_over_uploader_vmhwm", k);
				add_target(tg, &ntg, tname,
				    (double)r->aws_rss_kib / (double)r->hwm_kib, 5.0, true);
			}
		}
		snprintf(tname, sizeof(tname), "%s_peak_private_kib", kind_name(eps[i].kind));
		add_target(tg, &ntg, tname, (double)r->private_peak_kib, bound, false);
		/* VmHWM counts the ring's pages the uploader has read: shared
		 * with the producers, sized by --ring-size, not the uploader's
		 * own. The limit adds the ring's capacity. */
		snprintf(tname, sizeof(tname), "%s_vmhwm_kib", kind_name(eps[i].kind));
		add_target(tg, &ntg, tname, (double)r->hwm_kib,
		    bound + (double)r->ring_capacity / 1024.0, false);
		if (o.soak && r->soak.hwm_at[0] > 0 && r->soak.hwm_at[1] > 0) {
			add_target(tg, &ntg, "soak_vmhwm_growth_pct",
			    100.0 * (double)(r->soak.hwm_at[1] - r->soak.hwm_at[0]) /
			    (double)r->soak.hwm_at[0], 2.0, false);
			add_target(tg, &ntg, "soak_private_growth_pct",
			    100.0 * (double)(r->soak.private_at[1] - r->soak.private_at[0]) /
			    (double)r->soak.private_at[0], 2.0, false);
		}
	}

	if (o.json) {
		for (unsigned i = 0; i < o.nendpoints; i++) {
			const struct ep_result *r = &res[i];
			if (!r->measured)
				continue;
			if (o.soak) {
				print_run(&o, "soak", eps[i].name, &r->soak, r->hwm_kib, r->private_peak_kib);
				printf("{\"measure\":\"soak_rss\",\"endpoint\":\"%s\",\"hwm_kib_100k\":%ld,"
				    "\"hwm_kib_1m\":%ld,\"private_kib_100k\":%ld,\"private_kib_1m\":%ld}\n",
				    eps[i].name, r->soak.hwm_at[0], r->soak.hwm_at[1],
				    r->soak.private_at[0], r->soak.private_at[1]);
				continue;
			}
			print_run(&o, "upload", eps[i].name, &r->sat, r->hwm_kib, r->private_peak_kib);
			print_run(&o, "latency", eps[i].name, &r->paced, r->hwm_kib, r->private_peak_kib);
			if (isfinite(r->wrk_rps)) {
				printf("{\"measure\":\"wrk\",\"endpoint\":\"%s\",\"size\":%zu,\"connections\":%u,"
				    "\"seconds\":%u,\"errors\":%" PRIu64 ",", eps[i].name, o.size, o.workers,
				    o.ref_seconds, r->wrk_errors);
				json_num("requests_per_s", r->wrk_rps, true);
			}
			if (isfinite(r->curl_ups)) {
				printf("{\"measure\":\"curl\",\"endpoint\":\"%s\",\"size\":%zu,\"parallel\":%u,"
				    "\"count\":%" PRIu64 ",\"failed\":%" PRIu64 ",", eps[i].name, o.size,
				    o.workers, o.count, r->curl_bad);
				json_num("uploads_per_s", r->curl_ups, true);
			}
			if (isfinite(r->aws_ups)) {
				printf("{\"measure\":\"aws_cli\",\"endpoint\":\"%s\",\"size\":%zu,"
				    "\"max_concurrent_requests\":%u,\"count\":%" PRIu64 ",\"peak_rss_kib\":%ld,",
				    eps[i].name, o.size, o.workers, o.aws_count, r->aws_rss_kib);
				json_num("uploads_per_s", r->aws_ups, true);
			}
		}
		printf("{\"measure\":\"config\",\"nproc\":%ld,\"cpu\":\"%s\",\"size\":%zu,"
		    "\"workers\":%u,\"producers\":%u,", sysconf(_SC_NPROCESSORS_ONLN), cpu,
		    o.size, o.workers, o.producers);
		json_num("loadavg_before", load0, false);
		json_num("loadavg_after", load1, true);
		for (unsigned i = 0; i < ntg; i++) {
			bool pass = tg[i].higher_is_better ? tg[i].value >= tg[i].limit :
			    tg[i].value <= tg[i].limit;
			printf("{\"measure\":\"target\",\"name\":\"%s\",", tg[i].name);
			json_num("value", tg[i].value, false);
			json_num("limit", tg[i].limit, false);
			printf("\"pass\":%s}\n", pass ? "true" : "false");
		}
		return rc;
	}

	printf("\n%-8s %-9s %9s %9s %7s %8s %8s %8s %9s %9s\n", "endpoint", "measure",
	    "uploads", "per s", "MB/s", "cpu s/1k", "HWM MiB", "priv MiB", "p50 ms", "p99 ms");
	for (unsigned i = 0; i < o.nendpoints; i++) {
		const struct ep_result *r = &res[i];
		if (!r->measured)
			continue;
		if (o.soak) {
			print_run(&o, "soak", eps[i].name, &r->soak, r->hwm_kib, r->private_peak_kib);
			printf("%-8s VmHWM at 100k: %ld KiB, at 1M: %ld KiB; RssAnon+RssFile %ld, %ld KiB\n",
			    eps[i].name, r->soak.hwm_at[0], r->soak.hwm_at[1],
			    r->soak.private_at[0], r->soak.private_at[1]);
			continue;
		}
		print_run(&o, "uploader", eps[i].name, &r->sat, r->hwm_kib, r->private_peak_kib);
		print_run(&o, "uploader", eps[i].name, &r->paced, r->hwm_kib, r->private_peak_kib);
		if (isfinite(r->wrk_rps))
			printf("%-8s %-9s %9s %9.0f %7.2f %8s %9s   (%u connections, %us, %" PRIu64 " errors)\n",
			    eps[i].name, "wrk", "-", r->wrk_rps, r->wrk_rps * (double)o.size / 1e6,
			    "-", "-", o.workers, o.ref_seconds, r->wrk_errors);
		if (isfinite(r->curl_ups))
			printf("%-8s %-9s %9" PRIu64 " %9.0f %7.2f %8s %9s   (--parallel-max %u, %" PRIu64 " failed)\n",
			    eps[i].name, "curl", o.count, r->curl_ups, r->curl_ups * (double)o.size / 1e6,
			    "-", "-", o.workers, r->curl_bad);
		if (isfinite(r->aws_ups))
			printf("%-8s %-9s %9" PRIu64 " %9.0f %7.2f %8s %8.1f %8s   (max_concurrent_requests %u)\n",
			    eps[i].name, "aws-cli", o.aws_count, r->aws_ups,
			    r->aws_ups * (double)o.size / 1e6, "-", (double)r->aws_rss_kib / 1024.0,
			    "-", o.workers);
	}
	printf("\nmachine: %ld CPUs, %s; load average %.2f before, %.2f after\n",
	    sysconf(_SC_NPROCESSORS_ONLN), cpu, load0, load1);
	for (unsigned i = 0; i < ntg; i++) {
		bool pass = tg[i].higher_is_better ? tg[i].value >= tg[i].limit :
		    tg[i].value <= tg[i].limit;
		printf("target %-32s %12.3f %s %-10.3f %s\n", tg[i].name, tg[i].value,
		    tg[i].higher_is_better ? ">=" : "<=", tg[i].limit, pass ? "PASS" : "FAIL");
	}
	return rc;
}
