/* s3ring-bench.c -- the s3ring-bench entry point and its measuring helpers.
 *
 * main() only dispatches: `s3ring-bench SUBCOMMAND ...` runs the
 * subcommand's bench_NAME_main() with argv starting at the subcommand, so a
 * new subcommand is a new tools/s3ring-bench-NAME.c plus one line in the
 * table below. The helpers measure and never print: what is measured, and
 * how, is each subcommand's to say. Timing helpers must stay free of system
 * calls and allocation, because they run between the reads of the clock.
 */
#include "s3ring-bench.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "futex.h"

const char *bench_prog = "s3ring-bench";

/* ---------------------------------------------------------------- clock */

static double ns_per_tick = 1.0;

void
bench_clock_calibrate(uint64_t t0_ticks, uint64_t t0_ns, uint64_t t1_ticks,
    uint64_t t1_ns)
{
	if (t1_ticks > t0_ticks && t1_ns > t0_ns)
		ns_per_tick = (double)(t1_ns - t0_ns) / (double)(t1_ticks - t0_ticks);
}

double
bench_ticks_to_ns(uint64_t ticks)
{
	return (double)ticks * ns_per_tick;
}

double
bench_clock_overhead_ns(void)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 10000; i++) {
		uint64_t a = bench_ticks();
		uint64_t b = bench_ticks();
		if (b - a < best)
			best = b - a;
	}
	return bench_ticks_to_ns(best);
}

/* ---------------------------------------------------------- percentiles */

/* The CPU's model name from /proc/cpuinfo (without quotes, so that it can
 * go into JSON as it is), or "unknown". */
void
bench_cpu_model(char *cpu, size_t cap)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "re");

	snprintf(cpu, cap, "unknown");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "model name", 10) == 0) {
			const char *c = strchr(line, ':');
			if (c != NULL) {
				c++;
				c += strspn(c, " \t");
				snprintf(cpu, cap, "%.*s", (int)strcspn(c, "\n\""), c);
			}
			break;
		}
	fclose(f);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void
bench_sort_u64(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
}

uint64_t
bench_quantile_sorted(const uint64_t *v, size_t n, double q)
{
	size_t rank;

	if (n == 0)
		return 0;
	/* Nearest rank: the smallest value with at least q of the samples at
	 * or below it. */
	rank = (size_t)((double)n * q + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

double
bench_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------ idle check */

/* Reads the aggregate "cpu" line of /proc/stat: total and idle (idle +
 * iowait) jiffies. */
static int
read_cpu_times(uint64_t *total, uint64_t *idle)
{
	unsigned long long v[10] = { 0 };
	FILE *f = fopen("/proc/stat", "re");
	int n;

	if (f == NULL)
		return -errno;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
	    &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
	fclose(f);
	if (n < 4)
		return -EIO;
	/* guest and guest_nice (8, 9) are already included in user and nice. */
	*total = 0;
	for (int i = 0; i < 8; i++)
		*total += v[i];
	*idle = v[3] + v[4];
	return 0;
}

int
bench_cpu_busy(unsigned window_ms, double *busy)
{
	uint64_t tot0 = 0, idle0 = 0, tot1 = 0, idle1 = 0;
	uint64_t k0 = bench_ticks(), n0 = mono_ns(), k1, n1;
	struct timespec ts = { window_ms / 1000, (long)(window_ms % 1000) * 1000000L };
	int rc0 = read_cpu_times(&tot0, &idle0), rc1;

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	rc1 = read_cpu_times(&tot1, &idle1);
	k1 = bench_ticks();
	n1 = mono_ns();
	bench_clock_calibrate(k0, n0, k1, n1);
	if (rc0 < 0 || rc1 < 0)
		return rc0 < 0 ? rc0 : rc1;
	*busy = tot1 > tot0 ?
	    1.0 - (double)(idle1 - idle0) / (double)(tot1 - tot0) : 0.0;
	return 0;
}

/* --------------------------------------------------------- syscall count */

static long
tracepoint_id(const char *event)
{
	static const char *const roots[] = {
		"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events",
	};
	char path[256];

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		char line[32];
		const char *errstr = NULL;
		long long id;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s/id", roots[i], event);
		if ((f = fopen(path, "re")) == NULL)
			continue;
		if (fgets(line, sizeof(line), f) == NULL) {
			fclose(f);
			continue;
		}
		fclose(f);
		line[strcspn(line, "\n")] = '\0';
		id = strtonum(line, 0, INT32_MAX, &errstr);
		if (errstr == NULL)
			return (long)id;
	}
	return -ENOENT;
}

int
bench_sysctr_open(void)
{
	struct perf_event_attr a;
	long id = tracepoint_id("raw_syscalls/sys_enter");
	long fd;

	if (id < 0)
		return (int)id;
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = (uint64_t)id;
	a.disabled = 1;
	fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

int
bench_sysctr_start(int fd)
{
	if (ioctl(fd, PERF_EVENT_IOC_RESET, 0) < 0 ||
	    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) < 0)
		return -errno;
	return 0;
}

int64_t
bench_sysctr_stop(int fd)
{
	uint64_t n = 0;

	/* The DISABLE ioctl enters the kernel while the counter still runs,
	 * so it counts itself once; the ENABLE in start does not. */
	if (ioctl(fd, PERF_EVENT_IOC_DISABLE, 0) < 0 ||
	    read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		return -1;
	return n > 0 ? (int64_t)n - 1 : 0;
}

uint64_t
bench_vol_ctxsw(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (uint64_t)ru.ru_nvcsw;
}

/* ------------------------------------------------------------------ main */

struct subcommand {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{ "ring", bench_ring_main,
	  "s3ring against POSIX mq and Unix datagram sockets, in one run" },
	{ "upload", bench_upload_main,
	  "upload throughput through the uploader" },
	{ "bindings", bench_bindings_main,
	  "the JVM and Python bindings against their languages' own baselines" },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: %s SUBCOMMAND [OPTIONS]\n\nsubcommands:\n", bench_prog);
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (subcommands[i].main != NULL)
			fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\n`%s SUBCOMMAND --help` describes its options.\n", bench_prog);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (subcommands[i].main != NULL &&
		    strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown subcommand '%s'\n", bench_prog, argv[1]);
	usage(stderr);
	return EX_USAGE;
}
