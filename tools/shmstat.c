/* shmstat.c -- inspect an s3ring ring, live or after the uploader has died.
 *
 * Invariants kept here:
 * - The ring is opened O_RDONLY and mapped PROT_READ: shmstat can never
 *   change it, and works the same whether an uploader runs or not.
 * - Each sample opens, maps, snapshots and unmaps the object again, so watch
 *   mode follows a ring that is recreated and never holds a stale mapping.
 * - Every read of the mapping happens under the SIGBUS guard: a producer (or
 *   anyone with write access) can ftruncate the object between our fstat and
 *   our reads, and that must end in "truncated", exit 3, never a crash.
 * - Every failure to inspect the ring is one line and exit status 3 (the
 *   Nagios UNKNOWN), in every mode; usage errors are 64, or 3 with --check.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "futex.h"
#include "proc.h"
#include "ring.h"
#include "shmstat.h"
#include "sigbus.h"
#include "shmstat-listen.h"

static const char *prog = "shmstat";

enum mode { MODE_TEXT, MODE_JSON, MODE_PROMETHEUS, MODE_CHECK };

struct opts {
	const char *ring;
	enum mode mode;
	double watch_s;            /* 0: once */
	const char *output;        /* NULL: stdout */
	const char *state;         /* --check state file; NULL: default */
	const char *listen;        /* --listen ADDRESS:PORT; NULL: none */
	struct shmstat_check_cfg check;
};

static volatile sig_atomic_t stop_requested;

static void
stop_handler(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int
install_signals(void)
{
	struct sigaction sa;

	int rc;

	/* The ring's own SIGBUS guard (common/sigbus.h): a ring truncated
	 * while we read it is an error, not a crash. */
	if ((rc = ring_guard_install()) < 0)
		return rc;
	memset(&sa, 0, sizeof(sa));
	/* No SA_RESTART: Ctrl-C must interrupt the watch sleep. */
	sa.sa_handler = stop_handler;
	sa.sa_flags = 0;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return -errno;
	return 0;
}

struct snapshot_args {
	struct shmstat_snap *s;
	const char *name;
	const void *base;
	size_t len;
	const struct shmstat_env *env;
	uint64_t magic;
};

static int
snapshot_unguarded(void *arg)
{
	struct snapshot_args *a = arg;
	int rc = shmstat_snapshot(a->s, a->name, a->base, a->len, a->env);

	/* A magic of 0 means "not a ring yet", anything else "corrupt". */
	memcpy(&a->magic, a->base, sizeof(a->magic));
	return rc;
}

/* shmstat_snapshot() of a mapping that may shrink while it is read.
 * Returns what it returned, or -EFAULT; *magic is the magic it saw. */
static int
snapshot_guarded(struct shmstat_snap *s, const char *name, const void *base,
    size_t len, const struct shmstat_env *env, uint64_t *magic)
{
	struct snapshot_args a = { s, name, base, len, env, 0 };
	_Atomic int lost = 0;
	int rc;

	if (ring_guard_add((void *)base, len, &lost) < 0)
		return -ENOSPC;
	rc = ring_guarded(snapshot_unguarded, &a);
	ring_guard_remove((void *)base);
	*magic = a.magic;
	return rc;
}

/* ------------------------------------------------------------ sampling */

static bool
alive_proc(pid_t pid, uint64_t start_time)
{
	return proc_alive(pid, start_time);
}

/* Why a ring could not be inspected, as one line in msg. */
static void
describe_error(char *msg, size_t cap, const char *name, int err,
    const struct shmstat_snap *s)
{
	char path[sizeof("/dev/shm" RING_SHM_PREFIX) + RING_NAME_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm%s%s", RING_SHM_PREFIX, name);
	switch (err) {
	case -ENOENT:
		snprintf(msg, cap, "no such ring (%s does not exist)", path);
		break;
	case -EACCES:
	case -EPERM:
		if (stat(path, &st) == 0)
			snprintf(msg, cap, "permission denied: %s is owned by uid %u "
			    "with mode %04o", path, (unsigned)st.st_uid,
			    (unsigned)(st.st_mode & 07777));
		else
			snprintf(msg, cap, "permission denied opening %s", path);
		break;
	case -EPROTO:
		snprintf(msg, cap, "layout version %" PRIu32 " is %s than this "
		    "shmstat understands (%u): use the shmstat of the same release",
		    s->layout_version, s->layout_version > RING_LAYOUT_VERSION ?
		    "newer" : "older", RING_LAYOUT_VERSION);
		break;
	case -EBADMSG:
		snprintf(msg, cap, "%s is not a valid ring (corrupt or truncated "
		    "header, or control words out of range)", path);
		break;
	case -EFAULT:
		snprintf(msg, cap, "%s was truncated while being read", path);
		break;
	case -EINVAL:
		snprintf(msg, cap, "invalid ring name (use 1-%d of [A-Za-z0-9._-])",
		    RING_NAME_MAX);
		break;
	default:
		snprintf(msg, cap, "%s: %s", path, strerror(-err));
		break;
	}
}

static bool
slot_locked_fd(unsigned slot, void *arg)
{
	return ring_slot_locked(*(int *)arg, slot) == 1;
}

static bool
uploader_locked_fd(void *arg)
{
	return ring_uploader_locked(*(int *)arg) == 1;
}

/* Opens, maps and snapshots ring name. A ring whose creator is between
 * O_EXCL and storing the magic looks empty for a moment, so a magic-less
 * object is looked at again for up to a second before it is called corrupt.
 * Returns 0 or -errno (see describe_error()). */
static int
sample(struct shmstat_snap *s, const char *name)
{
	char shm[sizeof(RING_SHM_PREFIX) + RING_NAME_MAX];
	uint64_t deadline = mono_ns() + 1000 * UINT64_C(1000000);
	int rc;

	if (!ring_name_valid(name))
		return -EINVAL;
	snprintf(shm, sizeof(shm), "%s%s", RING_SHM_PREFIX, name);
	for (;;) {
		struct shmstat_env env = { .alive = alive_proc };
		struct stat st;
		size_t len;
		void *map;
		int fd = shm_open(shm, O_RDONLY | O_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			close(fd);
			return rc;
		}
		/* Never map more than the largest valid ring: the header
		 * check then rejects anything bigger than what it names. */
		len = (size_t)st.st_size;
		if (len > RING_HEADER_SIZE + RING_MAX_CAPACITY)
			len = RING_HEADER_SIZE + RING_MAX_CAPACITY;
		if (len < RING_HEADER_SIZE) {
			close(fd);
			rc = -EBADMSG;
			goto retry;
		}
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		rc = map == MAP_FAILED ? -errno : 0;
		if (rc < 0) {
			close(fd);
			return rc;
		}
		/* Producer liveness by their slot locks, tested through our
		 * own description: right in any PID namespace. */
		env.slot_locked = slot_locked_fd;
		env.uploader_locked = uploader_locked_fd;
		env.slot_arg = &fd;
		env.now_mono_ns = mono_ns();
		env.now_real_ns = realtime_ns();
		uint64_t magic = 0;
		rc = snapshot_guarded(s, name, map, len, &env, &magic);
		munmap(map, len);
		close(fd);
		if (rc != -EBADMSG || magic != 0)
			return rc;
retry:
		if (mono_ns() >= deadline)
			return rc;
		usleep(10000);
	}
}

/* ------------------------------------------------------ --check state */

/* Where --check remembers dropped_full between runs: one small file per
 * ring and user, in $XDG_RUNTIME_DIR (private to the user) or else /tmp.
 * The ring's creation time is stored with the count, so a recreated ring
 * (whose counters start again at 0) is not compared with its predecessor. */
static void
state_path(char *buf, size_t cap, const struct opts *o)
{
	const char *dir = getenv("XDG_RUNTIME_DIR");
	struct stat st;

	if (o->state != NULL) {
		strlcpy(buf, o->state, cap);
		return;
	}
	if (dir == NULL || dir[0] != '/' || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		dir = "/tmp";
	snprintf(buf, cap, "%s/shmstat-check.%u.%s", dir, (unsigned)geteuid(),
	    o->ring);
}

/* Reads the dropped_full and dead_lettered stored for this ring
 * incarnation into *dropped and *dead, or leaves 0 when there is none: a
 * checker that has never looked counts every drop and dead letter as new.
 * A file not owned by us (planted in /tmp) is ignored. Version 1 files
 * (drops only) are read too; their dead-letter baseline is the current
 * count, passed in dead. */
static void
state_load(const char *path, uint64_t created, uint64_t *dropped, uint64_t *dead)
{
	unsigned long long c = 0, d = 0, x = 0;
	uint64_t current_dead = *dead;
	char buf[128];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	*dropped = *dead = 0;
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		close(fd);
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (sscanf(buf, "shmstat-check 2 %llu %llu %llu", &c, &d, &x) == 3 && c == created) {
		*dropped = d;
		*dead = x;
	} else if (sscanf(buf, "shmstat-check 1 %llu %llu", &c, &d) == 2 && c == created) {
		*dropped = d;
		*dead = current_dead;
	}
}

/* Stores the figures atomically (a temporary file renamed over the old
 * one), so concurrent checks never read half a file. Returns 0 or -errno. */
static int
state_store(const char *path, uint64_t created, uint64_t dropped, uint64_t dead)
{
	char tmp[PATH_MAX + 32], buf[128];
	int fd, n, rc = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "shmstat-check 2 %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
	    created, dropped, dead);
	if (write(fd, buf, (size_t)n) != n)
		rc = errno ? -errno : -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static int
run_check(const struct opts *o)
{
	static const char *const names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };
	struct shmstat_snap *s = malloc(sizeof(*s));
	struct shmstat_check_cfg cfg = o->check;
	char line[1024], path[PATH_MAX];
	int rc;

	if (s == NULL) {
		printf("S3RING UNKNOWN - out of memory\n");
		return SHMSTAT_UNKNOWN;
	}
	rc = sample(s, o->ring);
	if (rc < 0) {
		describe_error(line, sizeof(line), o->ring, rc, s);
		printf("S3RING %s - ring %s: %s\n", names[SHMSTAT_UNKNOWN], o->ring, line);
		free(s);
		return SHMSTAT_UNKNOWN;
	}
	state_path(path, sizeof(path), o);
	cfg.dead_baseline = s->dead_lettered;
	state_load(path, s->created_realtime_ns, &cfg.drops_baseline, &cfg.dead_baseline);
	rc = shmstat_check(s, &cfg, line, sizeof(line));
	(void)state_store(path, s->created_realtime_ns, s->dropped_full, s->dead_lettered);
	printf("%s\n", line);
	free(s);
	return rc;
}

/* ------------------------------------------------------------- output */

/* Writes len bytes to o->output (atomically, by rename, so a textfile
 * collector never reads half a file) or to stdout. Returns 0 or -errno. */
static int
emit(const struct opts *o, const char *buf, size_t len)
{
	char tmp[PATH_MAX + 32];
	FILE *f;

	if (o->output == NULL) {
		if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0)
			return -EIO;
		return 0;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", o->output,
	    (long)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -errno;
	if (fwrite(buf, 1, len, f) != len) {
		fclose(f);
		unlink(tmp);
		return -EIO;
	}
	if (fclose(f) != 0 || rename(tmp, o->output) < 0) {
		int rc = -errno;
		unlink(tmp);
		return rc;
	}
	return 0;
}

static int
render(const struct opts *o, const struct shmstat_snap *s,
    const struct shmstat_rates *r, unsigned line_no)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	if (f == NULL)
		return -errno;
	switch (o->mode) {
	case MODE_JSON:
		shmstat_render_json(f, s, r);
		break;
	case MODE_PROMETHEUS:
		shmstat_render_prometheus(f, s);
		if (o->watch_s > 0 && o->output == NULL)
			fputc('\n', f); /* separates the samples */
		break;
	default:
		if (o->watch_s > 0)
			shmstat_render_watch_line(f, s, r, line_no % 20 == 0);
		else
			shmstat_render_text(f, s);
		break;
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	rc = emit(o, buf, len);
	free(buf);
	return rc;
}

/* Sleeps until the absolute CLOCK_MONOTONIC time deadline_ns or a stop
 * signal. Returns false if asked to stop. */
static bool
sleep_until(uint64_t deadline_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ns / 1000000000u),
		.tv_nsec = (long)(deadline_ns % 1000000000u),
	};

	while (!stop_requested) {
		int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (rc == 0)
			break;
		if (rc != EINTR)
			break;
	}
	return !stop_requested;
}

static int
run_show(const struct opts *o)
{
	struct shmstat_snap *snap = calloc(2, sizeof(*snap));
	struct shmstat_rates rates;
	char msg[512];
	unsigned n = 0;
	uint64_t prev_ns = 0, next;
	int rc = 0, cur = 0;

	if (snap == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return SHMSTAT_UNKNOWN;
	}
	next = mono_ns();
	for (;;) {
		struct shmstat_snap *s = &snap[cur], *p = &snap[cur ^ 1];
		uint64_t now;

		rc = sample(s, o->ring);
		now = mono_ns();
		if (rc < 0) {
			describe_error(msg, sizeof(msg), o->ring, rc, s);
			fprintf(stderr, "%s: ring %s: %s\n", prog, o->ring, msg);
			rc = SHMSTAT_UNKNOWN;
			break;
		}
		if (n == 0) {
			/* Like vmstat's first line: averages since the ring
			 * was created, from a zero snapshot. */
			uint64_t rn = realtime_ns(), c = s->created_realtime_ns;
			struct shmstat_snap zero;
			memset(&zero, 0, sizeof(zero));
			shmstat_rates(&rates, &zero, s,
			    c != 0 && rn > c ? (double)(rn - c) / 1e9 : 0);
		} else {
			shmstat_rates(&rates, p, s, (double)(now - prev_ns) / 1e9);
		}
		prev_ns = now;
		if ((rc = render(o, s, o->watch_s > 0 ? &rates : NULL, n)) < 0) {
			if (rc != -EIO || o->output != NULL)
				fprintf(stderr, "%s: writing %s: %s\n", prog,
				    o->output ? o->output : "stdout", strerror(-rc));
			rc = 1;
			break;
		}
		rc = 0;
		n++;
		cur ^= 1;
		if (o->watch_s <= 0)
			break;
		next += (uint64_t)(o->watch_s * 1e9);
		if (!sleep_until(next))
			break;
	}
	free(snap);
	return rc;
}

/* ------------------------------------------------------------- listen */

/* One scrape: a fresh sample of the ring, in the Prometheus format. */
static int
scrape(void *arg, char **buf, size_t *len, char *msg, size_t msgcap)
{
	const struct opts *o = arg;
	struct shmstat_snap *s = malloc(sizeof(*s));
	char why[512];
	FILE *f;
	int rc;

	*buf = NULL;
	*len = 0;
	if (s == NULL) {
		snprintf(msg, msgcap, "out of memory\n");
		return -ENOMEM;
	}
	rc = sample(s, o->ring);
	if (rc < 0) {
		describe_error(why, sizeof(why), o->ring, rc, s);
		snprintf(msg, msgcap, "ring %s: %s\n", o->ring, why);
		free(s);
		return rc;
	}
	f = open_memstream(buf, len);
	if (f == NULL) {
		free(s);
		snprintf(msg, msgcap, "out of memory\n");
		return -ENOMEM;
	}
	shmstat_render_prometheus(f, s);
	free(s);
	if (fclose(f) != 0) {
		snprintf(msg, msgcap, "out of memory\n");
		return -ENOMEM;
	}
	return 0;
}

static int
run_listen(const struct opts *o)
{
	struct sockaddr_in sa;

	if (shmstat_parse_listen(o->listen, &sa) < 0) {
		fprintf(stderr, "%s: --listen %s: not ADDRESS:PORT (an IPv4 address, e.g. 127.0.0.1:9464)\n",
		    prog, o->listen);
		return EX_USAGE;
	}
	if (shmstat_listen(&sa, scrape, (void *)o, &stop_requested, stderr) < 0) {
		fprintf(stderr, "%s: --listen %s: cannot listen there (in use, or not an address of this host)\n",
		    prog, o->listen);
		return 1;
	}
	return 0;
}

/* -------------------------------------------------------------- main */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: %s [--ring NAME] [--json | --prometheus | --check] [--watch SECONDS]\n"
	    "       [--output FILE] [--state FILE] [--full-warn PERCENT]\n"
	    "       [--heartbeat-max SECONDS] [--age-warn S] [--age-crit S]\n"
	    "       [--failing-warn S] [--failing-crit S] [--dead-crit N]\n"
	    "       %s [--ring NAME] --listen ADDRESS:PORT\n", prog, prog);
}

static int
parse_seconds(const char *arg, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' || !isfinite(v) ||
	    v < 0.01 || v > 86400)
		return -EINVAL;
	*out = v;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ring", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ "check", no_argument, NULL, 'c' },
		{ "watch", required_argument, NULL, 'w' },
		{ "output", required_argument, NULL, 'o' },
		{ "state", required_argument, NULL, 's' },
		{ "full-warn", required_argument, NULL, 'F' },
		{ "heartbeat-max", required_argument, NULL, 'H' },
		{ "age-warn", required_argument, NULL, 'a' },
		{ "age-crit", required_argument, NULL, 'A' },
		{ "failing-warn", required_argument, NULL, 'f' },
		{ "failing-crit", required_argument, NULL, 'C' },
		{ "dead-crit", required_argument, NULL, 'D' },
		{ "listen", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.mode = MODE_TEXT,
		.check = { .full_warn_pct = 80, .heartbeat_max_ms = 10000,
		    .writing_warn_ms = 10000,
		    .age_warn_ms = 60000, .age_crit_ms = 300000,
		    .failing_warn_ms = 60000, .failing_crit_ms = 300000 },
	};
	int usage_rc = EX_USAGE, ch, modes = 0;
	const char *errstr;
	double d;

	/* A Nagios plugin reports even bad arguments as UNKNOWN. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--check") == 0 || strcmp(argv[i], "-c") == 0)
			usage_rc = SHMSTAT_UNKNOWN;

	while ((ch = getopt_long(argc, argv, "r:jpcw:o:s:F:H:h", longopts, NULL)) != -1) {
		uint64_t *ms = ch == 'a' ? &o.check.age_warn_ms : ch == 'A' ?
		    &o.check.age_crit_ms : ch == 'f' ? &o.check.failing_warn_ms :
		    ch == 'C' ? &o.check.failing_crit_ms : NULL;

		if (ms != NULL) {
			/* 0 turns the level off. */
			if (strcmp(optarg, "0") == 0) {
				*ms = 0;
				continue;
			}
			if (parse_seconds(optarg, &d) < 0) {
				fprintf(stderr, "%s: --%s: not a number of seconds (0 for off, "
				    "else 0.01 to 86400): %s\n", prog,
				    ch == 'a' ? "age-warn" : ch == 'A' ? "age-crit" :
				    ch == 'f' ? "failing-warn" : "failing-crit", optarg);
				return usage_rc;
			}
			*ms = (uint64_t)(d * 1000);
			continue;
		}
		switch (ch) {
		case 'r':
			o.ring = optarg;
			break;
		case 'j':
			o.mode = MODE_JSON;
			modes++;
			break;
		case 'p':
			o.mode = MODE_PROMETHEUS;
			modes++;
			break;
		case 'c':
			o.mode = MODE_CHECK;
			modes++;
			break;
		case 'w':
			if (parse_seconds(optarg, &o.watch_s) < 0) {
				fprintf(stderr, "%s: --watch: not a number of seconds "
				    "between 0.01 and 86400: %s\n", prog, optarg);
				return usage_rc;
			}
			break;
		case 'o':
			o.output = optarg;
			break;
		case 's':
			o.state = optarg;
			break;
		case 'F':
			o.check.full_warn_pct = (unsigned)strtonum(optarg, 1, 100, &errstr);
			if (errstr != NULL) {
				fprintf(stderr, "%s: --full-warn %s: %s\n", prog, optarg, errstr);
				return usage_rc;
			}
			break;
		case 'H':
			if (parse_seconds(optarg, &d) < 0) {
				fprintf(stderr, "%s: --heartbeat-max: not a number of "
				    "seconds: %s\n", prog, optarg);
				return usage_rc;
			}
			o.check.heartbeat_max_ms = (uint64_t)(d * 1000);
			break;
		case 'D':
			o.check.dead_crit = (uint64_t)strtonum(optarg, 0, 1000000000, &errstr);
			if (errstr != NULL) {
				fprintf(stderr, "%s: --dead-crit %s: %s\n", prog, optarg, errstr);
				return usage_rc;
			}
			break;
		case 'l':
			o.listen = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return usage_rc;
		}
	}
	if (o.listen != NULL && (modes > 0 || o.watch_s > 0 || o.output != NULL)) {
		fprintf(stderr, "%s: --listen serves the Prometheus format by itself: it takes "
		    "no --json, --prometheus, --check, --watch or --output\n", prog);
		return EX_USAGE;
	}
	if (optind != argc || modes > 1 || (o.mode == MODE_CHECK && o.watch_s > 0) ||
	    (o.output != NULL && o.mode == MODE_CHECK)) {
		if (modes > 1 || o.mode == MODE_CHECK)
			fprintf(stderr, "%s: --json, --prometheus and --check exclude "
			    "each other, and --check takes neither --watch nor --output\n",
			    prog);
		usage(stderr);
		return usage_rc;
	}
	if (o.ring == NULL)
		o.ring = ring_default_name();
	if (install_signals() < 0) {
		fprintf(stderr, "%s: cannot install signal handlers: %s\n", prog,
		    strerror(errno));
		return SHMSTAT_UNKNOWN;
	}
	if (o.listen != NULL)
		return run_listen(&o);
	return o.mode == MODE_CHECK ? run_check(&o) : run_show(&o);
}
