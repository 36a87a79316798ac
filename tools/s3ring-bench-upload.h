/* s3ring-bench-upload.h -- what the files of `s3ring-bench upload` share.
 *
 * The subcommand is split by concern: processes and their memory
 * (-proc.c), the servers and the uploader it starts (-server.c), one
 * measured run with its producers (-run.c), the reference clients wrk, curl
 * and the AWS CLI (-refs.c), the targets and the output (-report.c), and
 * batch mode with its log-line producers and the compressor baseline
 * (-batch.c), and the options and the order of the runs
 * (s3ring-bench-upload.c). Names
 * shared between them start with bup_; everything else is static. Nothing
 * here is used outside s3ring-bench.
 */
#ifndef S3RING_BENCH_UPLOAD_H
#define S3RING_BENCH_UPLOAD_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring.h"

struct s3ring_producer;

#define BUP_MAX_PRODUCERS 32
#define BUP_MAX_ENDPOINTS 4
#define BUP_MAX_WORKERS   4096
#define BUP_BUCKET        "bench"
#define BUP_MS_NS         (1000ull * 1000)
#define BUP_SEC_NS        (1000ull * BUP_MS_NS)
/* Past this size a message is "large": the references are curl --parallel
 * (wrk would hold one copy of the body per thread in Lua), warm-up and
 * paced runs are counted in workers rather than hundreds of messages, and
 * few distinct keys are used so that a tmpfs server stays bounded. */
#define BUP_LARGE_SIZE    (1u << 20)

enum bup_kind { EP_NGINX, EP_NGINX_HTTPS, EP_S3RVER, EP_SINK, EP_URL };

struct bup_endpoint {
	enum bup_kind kind;
	const char *name;           /* "nginx", "nginx-https", "s3rver", "sink" or the URL */
	char url[512];
	char dir[512];              /* server state (local servers) */
	char data[640];             /* where objects land (empty: not observable) */
	char ca_file[640];          /* nginx-https: its self-signed certificate */
	const char *key_id, *secret;
	bool started;
};

struct bup_opts {
	bool json, soak, keep;
	size_t size;
	uint64_t size_u64;          /* --size as parsed */
	uint64_t count;
	unsigned workers;
	unsigned producers;
	const char *endpoints[BUP_MAX_ENDPOINTS];
	unsigned nendpoints;
	bool refs;                  /* wrk, curl, AWS CLI */
	unsigned ref_seconds;       /* wrk's duration */
	uint64_t aws_count;
	double paced_fraction;      /* 0: no paced run */
	unsigned paced_seconds;
	unsigned sink_delay_ms;     /* the sink's answer delay */
	uint64_t ring_size;         /* --ring-size for the uploader; 0: its default */
	uint64_t max_message;       /* --max-message for the uploader; 0: its default */
	uint64_t keyspace;          /* distinct data keys (uploader and curl) */
	const char *uploader;
	const char *sink_bin;       /* BUILD/tests/delay_sink */
	const char *aws;
	const char *top;
	const char *extra_args;     /* more uploader flags, space-separated */
	const char *perf_out;       /* perf record the uploader in the main run */
	const char *batch;          /* --batch zstd|gzip: batch mode; NULL: off */
	uint64_t batch_max_bytes;   /* the rule's max-bytes; 0: 16 MiB */
};

/* One reading of /proc/PID. private_kib is RssAnon: the uploader's own
 * heap, stacks and anonymous mappings. VmHWM and VmRSS also count the pages
 * of the shared ring (RssShmem) that the uploader has read, which grow with
 * --ring-size and the backlog, not with anything the uploader keeps. */
struct bup_mem {
	double cpu_s;               /* utime + stime */
	long hwm_kib, rss_kib;      /* VmHWM, VmRSS: the ring's pages included */
	long private_kib;           /* RssAnon */
};

struct bup_run_result {
	bool ok;
	uint64_t n;
	double secs;
	double ups, mbps;
	double cpu_per_1k;
	double p50_ms, p99_ms, max_ms;
	uint64_t lat_samples, lat_missing;
	double rate;                /* paced: offered messages/s */
	long hwm_at[2];             /* VmHWM at the checkpoints (soak) */
	long private_at[2];         /* RssAnon there */
	long peak_at[2];            /* the peak of RssAnon up to there */
	long private_peak;          /* the largest RssAnon sampled during the run */
};

struct bup_result {
	bool measured;
	struct bup_run_result sat, paced, soak;
	long hwm_kib;               /* VmHWM at the end (secondary) */
	long private_peak_kib;      /* RssAnon, sampled every 50 ms: the primary figure */
	uint32_t max_message;
	uint64_t ring_capacity;
	double wrk_rps;
	uint64_t wrk_errors;
	double curl_ups;
	uint64_t curl_bad;
	unsigned curl_parallel;     /* --parallel-max: workers, at most curl's 300 */
	double aws_ups;
	uint64_t aws_count;         /* files the AWS CLI uploaded */
	long aws_rss_kib;
	bool aws_ok;
};

/* -------------------------------------------- processes (-proc.c) */

/* Set by SIGINT, SIGTERM, SIGHUP (the signal's number); every wait checks it. */
extern volatile sig_atomic_t bup_interrupted;
/* The run's work directory under /dev/shm, removed by bup_cleanup_all(). */
extern char bup_workdir[256];

void bup_install_handlers(void);
/* Starts argv[0] (searched in PATH) in a process group of its own, stdin
 * from /dev/null, stdout/stderr to the given files (NULL: /dev/null), with
 * the NAME=VALUE strings of env added (a NAME alone removes it). The child
 * gets SIGTERM if the bench dies, and is remembered for bup_cleanup_all().
 * Returns the PID or -errno. */
pid_t bup_spawn(char *const argv[], char *const env[], const char *out, const char *err);
/* TERM to the group, up to 5 s, then KILL; reaps the leader. */
void bup_stop_group(pid_t pid);
/* Reaps pid without signalling it (waiting for it), and forgets it. */
void bup_reap(pid_t pid);
/* Reaps pid if it has exited, and forgets it then. Returns whether it had. */
bool bup_try_reap(pid_t pid);
/* Waits for pid up to timeout_ns. Returns its exit status (0..255, 128+sig
 * when killed by a signal), -ETIMEDOUT or -EINTR (then it is stopped). */
int bup_wait_child(pid_t pid, uint64_t timeout_ns);
/* Runs argv to completion. Returns as bup_wait_child(). */
int bup_run_cmd(char *const argv[], char *const env[], const char *out, const char *err,
    unsigned timeout_s);
/* The real PID under a `timeout` wrapper: its only child. 0 if none yet. */
pid_t bup_child_of(pid_t pid);
/* Reads CPU time and memory of pid. Returns 0 or -errno. */
int bup_mem_sample(pid_t pid, struct bup_mem *s);
int bup_read_first_line(const char *path, char *buf, size_t cap);
/* Remembers a ring (and its journal) for removal by bup_cleanup_all(). */
void bup_track_ring(const char *name);
/* Remembers a started server for bup_cleanup_all(). */
void bup_track_server(struct bup_endpoint *ep);
/* Stops everything still running, removes the rings, journals and (unless
 * keep) the work directory. */
void bup_cleanup_all(const struct bup_opts *o);

/* ---------------------------------- servers and the uploader (-server.c) */

struct bup_uploader {
	pid_t wrapper, pid;
	char ring[64];
	struct ring r;
	bool open;
};

/* Starts ep's server (nothing for a URL) and fills in url, dir, data,
 * credentials. Returns 0 or -errno; a started server is stopped by
 * bup_server_stop() or bup_cleanup_all() either way. */
int bup_server_start(const struct bup_opts *o, struct bup_endpoint *ep);
void bup_server_stop(const struct bup_opts *o, struct bup_endpoint *ep);
/* Starts the uploader on a ring of its own and waits until it has attached.
 * Returns 0 or -errno (then nothing of it runs but what bup_uploader_stop()
 * stops). */
int bup_uploader_start(const struct bup_opts *o, const struct bup_endpoint *ep, unsigned idx,
    struct bup_uploader *up);
void bup_uploader_stop(struct bup_uploader *up);
/* Uploaded plus dead-lettered, from the ring's counters. */
uint64_t bup_uploaded(const struct bup_uploader *up);
/* The bytes of every message body: the same for producers and references. */
void bup_fill_body(uint8_t *buf, size_t size);

/* ------------------------------------------------ one run (-run.c) */

struct bup_run_spec {
	uint64_t n;                 /* messages, over all producers */
	uint64_t first;             /* global index of the first (unique keys) */
	unsigned run_id;            /* sampled keys go to l<run_id>/ */
	unsigned sample;            /* time one message in this many */
	uint64_t keyspace;          /* distinct data keys: bounded storage */
	double rate;                /* messages/s over all producers; 0: flat out */
	const uint64_t *checkpoints;/* memory when uploaded reaches these */
	unsigned ncheckpoints;
	const char *perf_out;       /* non-NULL: perf record -g the uploader */
	/* Non-NULL: what each producer puts once released, instead of the
	 * messages of --size; it returns 0 or a negative s3ring error. */
	int (*produce)(struct s3ring_producer *p, const struct bup_run_spec *rs, unsigned id,
	    unsigned nprod);
};

/* Puts rs->n messages from o->producers forked producers and waits until
 * the uploader has uploaded them. Returns 0 (res filled in, res->ok) or
 * -errno (-EINTR when interrupted). */
int bup_run(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_uploader *up,
    const struct bup_run_spec *rs, struct bup_run_result *res);

/* ------------------------------------------- references (-refs.c) */

/* Each runs its client against ep with the uploader stopped, and fills in
 * its fields of er. Returns 0 or -errno (er's fields stay NAN). */
int bup_ref_wrk(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_result *er);
int bup_ref_curl(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_result *er);
int bup_ref_aws(const struct bup_opts *o, const struct bup_endpoint *ep, struct bup_result *er);

/* ------------------------------------------------- batch mode (-batch.c) */

/* `s3ring-bench upload --batch CODEC`: log lines into one batch rule on
 * nginx, end to end, against the compressor's command-line tool on the
 * same lines. Prints its own report. Returns 0, or -errno when something
 * broke (-EINTR when interrupted). */
int bup_batch_main(const struct bup_opts *o, double load0);

/* ----------------------------------------------- output (-report.c) */

/* Prints every result, the machine and the targets, as JSON lines or a
 * table. */
void bup_report(const struct bup_opts *o, const struct bup_endpoint *eps,
    const struct bup_result *res, double load0, double load1);
/* A JSON member "key":v, null when v is not a finite number >= 0; last
 * closes the object and the line. */
void bup_json_num(const char *key, double v, bool last);
/* One target line, JSON or the table's, with its pass or fail. */
void bup_print_target(bool json, const char *name, double value, double limit, bool higher);
/* From a to b in percent, NAN unless both are positive. */
double bup_growth_pct(long a, long b);
/* The machine's load average over one minute, NAN if unknown. */
double bup_loadavg1(void);
const char *bup_kind_name(enum bup_kind k);

#endif
