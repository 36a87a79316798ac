/* s3ring-bench.h -- what the s3ring-bench subcommands share.
 *
 * s3ring-bench is one binary with subcommands (`s3ring-bench ring`,
 * `upload`, `bindings`). Each subcommand lives in its own
 * tools/s3ring-bench-NAME.c (upload also in tools/s3ring-bench-upload-*.c,
 * with its own header) and exports one bench_NAME_main(). The helpers
 * here (a cycle-counter clock, percentiles, the idle check, a per-process
 * syscall counter) are for measuring, and never print on their own.
 */
#ifndef S3RING_BENCH_H
#define S3RING_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define BENCH_HAVE_TSC 1
#else
#include "futex.h"
#define BENCH_HAVE_TSC 0
#endif

/* Subcommands: argv[0] is the subcommand's name. They return an exit
 * status. A subcommand that is not linked in (weak, so NULL) is reported
 * as unknown. ring and upload are always linked. */
int bench_ring_main(int argc, char **argv);
int bench_upload_main(int argc, char **argv);
__attribute__((weak)) int bench_bindings_main(int argc, char **argv);

/* The program name for messages. */
extern const char *bench_prog;

/* ---------------------------------------------------------------- clock */

/* A cheap timestamp for timing short operations: the TSC where there is
 * one (about 10 ns per read, no system call even in a VM whose clock
 * source is slow), CLOCK_MONOTONIC in nanoseconds elsewhere. The lfences
 * keep the timed code from being reordered across the read. Convert
 * differences with bench_ticks_to_ns() after bench_clock_calibrate(). */
#if BENCH_HAVE_TSC
static inline uint64_t
bench_ticks(void)
{
	uint64_t t;

	_mm_lfence();
	t = __rdtsc();
	_mm_lfence();
	return t;
}
#else
static inline uint64_t
bench_ticks(void)
{
	return mono_ns();
}
#endif

/* Calibrates ticks against CLOCK_MONOTONIC from two pairs of readings
 * taken at least ~50 ms apart. Before it is called, a tick counts as 1 ns. */
void bench_clock_calibrate(uint64_t t0_ticks, uint64_t t0_ns, uint64_t t1_ticks,
    uint64_t t1_ns);
double bench_ticks_to_ns(uint64_t ticks);
/* The smallest difference between two back-to-back bench_ticks(), in ns:
 * what every timed sample includes on top of the operation itself. */
double bench_clock_overhead_ns(void);

/* ---------------------------------------------------------- percentiles */

/* Sorts v (n values) in place and returns the q-quantile (0 < q <= 1) by
 * the nearest-rank rule, or 0 when n is 0. */
uint64_t bench_quantile_sorted(const uint64_t *v, size_t n, double q);
void bench_sort_u64(uint64_t *v, size_t n);
double bench_median(double *v, size_t n);

/* ------------------------------------------------------------ idle check */

/* Measures how busy the machine's CPUs are over window_ms, from /proc/stat,
 * as a fraction 0..1 of all CPU time, and calibrates the tick clock over
 * the same window. Returns 0 or -errno (the clock is calibrated anyway). */
int bench_cpu_busy(unsigned window_ms, double *busy);

/* --------------------------------------------------------- syscall count */

/* Counts this process's system calls with a perf tracepoint counter
 * (raw_syscalls:sys_enter) attached to the calling thread. That is exact,
 * needs no seccomp or ptrace, and costs nothing on the hot path, but needs
 * tracefs and perf permission (root, or perf_event_paranoid <= -1).
 * bench_sysctr_open() returns the counter fd or -errno; callers treat a
 * failure as "not measured". */
int bench_sysctr_open(void);
int bench_sysctr_start(int fd);
/* Stops the counter and returns the calls made since start, not counting
 * the stopping call itself; -1 on error. */
int64_t bench_sysctr_stop(int fd);

/* Voluntary context switches of this process so far (getrusage): every
 * system call that blocked, such as a futex wait that slept. */
uint64_t bench_vol_ctxsw(void);

/* ----------------------------------------------------------- transports */

/* One way of moving messages from producer processes to one consumer
 * process: s3ring, POSIX mq, Unix datagram sockets. The parent calls
 * setup() before forking and teardown() after every child has exited;
 * each producer child calls prod_open() once and send() per message; the
 * consumer child calls cons_open() and recv() until it has every message.
 * All return 0 or -errno. send() blocks while the transport is full, so no
 * message is ever dropped. recv() blocks until a message arrives and sets
 * *msg to memory that stays valid until the next recv(). */
struct bench_transport {
	const char *name;        /* as in the JSON "transport" field */
	int (*setup)(void *env, size_t size, char *note, size_t note_cap);
	void (*teardown)(void *env);
	int (*prod_open)(void *env, unsigned id, void **st);
	int (*send)(void *st, const void *msg, size_t len);
	void (*prod_close)(void *st);
	int (*cons_open)(void *env, size_t size, void **st);
	int (*recv)(void *st, const uint8_t **msg, size_t *len);
	/* Counters the consumer reads before closing (may be NULL):
	 * producer wake-ups and consumer sleeps, where the transport has them. */
	void (*cons_counters)(void *st, uint64_t *wakes, uint64_t *sleeps);
	void (*cons_close)(void *st);
};

/* The environment all transports share: names unique to this process, so
 * that concurrent runs never meet, and the ring's geometry. */
struct bench_env {
	char ring_name[64];      /* s3ring: bench-PID */
	char mq_name[64];        /* POSIX mq: /s3ring-bench-PID */
	char sock_name[64];      /* Unix socket, abstract: s3ring-bench-PID */
	uint64_t ring_capacity;  /* 0: the ring's default */
	int sock_fd;             /* the consumer's bound socket, made in setup */
	long mq_maxmsg, mq_msgsize;
};

extern const struct bench_transport bench_s3ring, bench_posix_mq, bench_unix_dgram;

/* The CPU's model name from /proc/cpuinfo, or "unknown". */
void bench_cpu_model(char *cpu, size_t cap);

/* Populates this process's page tables for the shared mapping of the file
 * whose path ends in suffix (from /proc/self/maps), as a long-running
 * producer's would be. Returns 0, or -errno (the run goes on unprefaulted). */
int bench_prefault_mapping(const char *suffix);

#endif
