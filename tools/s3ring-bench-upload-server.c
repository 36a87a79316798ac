/* s3ring-bench-upload-server.c -- the servers and the uploader that
 * `s3ring-bench upload` starts for one endpoint.
 *
 * The servers are the scripts of tests/servers/ (nginx with WebDAV PUT over HTTP or
 * HTTPS, s3rver, the delay sink), started with a bounded lifetime in a
 * directory under the work directory, and stopped by their own scripts,
 * which stop them by the PID they recorded. The uploader runs under
 * timeout(1) on a ring of its own, named for this process and the
 * endpoint's index, that it creates; the ring is removed at cleanup.
 */
#include "s3ring-bench-upload.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "futex.h"
#include "s3ring-bench.h"

void
bup_fill_body(uint8_t *buf, size_t size)
{
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)('a' + i % 26);
}

static const char *
server_script_name(enum bup_kind kind)
{
	switch (kind) {
	case EP_NGINX:
	case EP_NGINX_HTTPS:
		return "nginx";
	case EP_S3RVER:
		return "s3rver";
	case EP_SINK:
		return "delay_sink";
	case EP_URL:
		break;
	}
	return NULL;
}

static void
server_script(const struct bup_opts *o, const struct bup_endpoint *ep, char *path, size_t cap)
{
	snprintf(path, cap, "%s/tests/servers/%s.sh", o->top, server_script_name(ep->kind));
}

void
bup_server_stop(const struct bup_opts *o, struct bup_endpoint *ep)
{
	char script[PATH_MAX], log[PATH_MAX + 16];
	char *argv[] = { script, "stop", ep->dir, NULL };
	pid_t pid;

	if (!ep->started)
		return;
	server_script(o, ep, script, sizeof(script));
	snprintf(log, sizeof(log), "%s.log", ep->dir);
	/* Not interruptible: whatever happened, the server must go. */
	pid = bup_spawn(argv, NULL, NULL, log);
	bup_reap(pid);
	ep->started = false;
}

/* The environment of the server's start script, and ep's credentials and
 * data directory. env has room for 4 strings and a NULL; bufs holds them. */
static void
server_env(const struct bup_opts *o, struct bup_endpoint *ep, char *env[5],
    char bufs[3][PATH_MAX + 32])
{
	unsigned ne = 0;

	/* A bounded lifetime: generous for the soak, short otherwise. */
	snprintf(bufs[0], sizeof(bufs[0]), "SERVER_LIFETIME=%u", o->soak ? 7200 : 1800);
	env[ne++] = bufs[0];
	ep->key_id = ep->secret = ep->kind == EP_S3RVER ? "S3RVER" : "bench";
	switch (ep->kind) {
	case EP_NGINX_HTTPS:
		snprintf(ep->ca_file, sizeof(ep->ca_file), "%s/cert.pem", ep->dir);
		/* fall through */
	case EP_NGINX:
		snprintf(bufs[1], sizeof(bufs[1]), "NGINX_BIN=%s/tools/bench/nginx-s3.sh", o->top);
		env[ne++] = bufs[1];
		snprintf(ep->data, sizeof(ep->data), "%s/data/%s", ep->dir, BUP_BUCKET);
		break;
	case EP_S3RVER:
		env[ne++] = "S3RVER_QUIET=1";
		snprintf(ep->data, sizeof(ep->data), "%s/data/%s", ep->dir, BUP_BUCKET);
		break;
	case EP_SINK:
		/* The sink stores nothing: no latency, only the rate. It must
		 * take the uploader's connections and then wrk's. */
		snprintf(bufs[1], sizeof(bufs[1]), "SINK_DELAY_MS=%u", o->sink_delay_ms);
		snprintf(bufs[2], sizeof(bufs[2]), "DELAY_SINK_BIN=%s", o->sink_bin);
		env[ne++] = bufs[1];
		env[ne++] = bufs[2];
		env[ne++] = o->workers > 2000 ? "SINK_MAX_CONNS=8256" : "SINK_MAX_CONNS=4096";
		break;
	case EP_URL:
		break;
	}
	env[ne] = NULL;
}

int
bup_server_start(const struct bup_opts *o, struct bup_endpoint *ep)
{
	char script[PATH_MAX], out[PATH_MAX + 8], log[PATH_MAX + 8];
	char bufs[3][PATH_MAX + 32];
	char *argv[] = { script, ep->kind == EP_NGINX_HTTPS ? "start-tls" : "start", ep->dir,
		BUP_BUCKET, NULL };
	char *env[5];
	int rc;

	if (ep->kind == EP_URL) {
		snprintf(ep->url, sizeof(ep->url), "%s", ep->name);
		ep->key_id = getenv("AWS_ACCESS_KEY_ID");
		ep->secret = getenv("AWS_SECRET_ACCESS_KEY");
		return 0;
	}
	server_script(o, ep, script, sizeof(script));
	snprintf(ep->dir, sizeof(ep->dir), "%s/%s", bup_workdir, ep->name);
	snprintf(out, sizeof(out), "%s.url", ep->dir);
	snprintf(log, sizeof(log), "%s.log", ep->dir);
	server_env(o, ep, env, bufs);
	bup_track_server(ep);
	ep->started = true;
	rc = bup_run_cmd(argv, env, out, log, 60);
	if (rc != 0 || bup_read_first_line(out, ep->url, sizeof(ep->url)) < 0 ||
	    strncmp(ep->url, "http", 4) != 0) {
		fprintf(stderr, "%s: %s did not start (log: %s)\n", bench_prog, ep->name, log);
		return -EIO;
	}
	return 0;
}

/* The uploader's command line. bufs holds the numbers; extra is a copy of
 * --uploader-args that strtok_r cuts up. Returns the number of arguments. */
static unsigned
uploader_argv(const struct bup_opts *o, const struct bup_endpoint *ep, unsigned idx,
    const struct bup_uploader *up, char *argv[48], char bufs[5][PATH_MAX], char *extra,
    size_t extra_cap)
{
	unsigned na = 0;
	char *save = NULL, *tok;

	snprintf(bufs[0], PATH_MAX, "%u", o->soak ? 7200 : 1800);
	snprintf(bufs[1], PATH_MAX, "%u", o->workers);
	snprintf(bufs[2], PATH_MAX, "%s/spool-%u", bup_workdir, idx);
	char *fixed[] = { "timeout", "-k", "10", bufs[0], (char *)o->uploader, "--ring",
		(char *)up->ring, "--bucket", BUP_BUCKET, "--endpoint", (char *)ep->url,
		"--path-style", "--workers", bufs[1], "--spool", bufs[2], "--log-level", "warn" };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		argv[na++] = fixed[i];
	if (o->ring_size != 0) {
		snprintf(bufs[3], PATH_MAX, "%llu", (unsigned long long)o->ring_size);
		argv[na++] = "--ring-size";
		argv[na++] = bufs[3];
	}
	if (o->max_message != 0) {
		snprintf(bufs[4], PATH_MAX, "%llu", (unsigned long long)o->max_message);
		argv[na++] = "--max-message";
		argv[na++] = bufs[4];
	}
	if (ep->ca_file[0] != '\0') {
		argv[na++] = "--ca-file";
		argv[na++] = (char *)ep->ca_file;
	}
	snprintf(extra, extra_cap, "%s", o->extra_args ? o->extra_args : "");
	for (tok = strtok_r(extra, " ", &save); tok != NULL && na < 46;
	    tok = strtok_r(NULL, " ", &save))
		argv[na++] = tok;
	argv[na] = NULL;
	return na;
}

/* Copies the last lines of the file at path to stderr (the work directory,
 * and the log with it, is removed at exit unless --keep). */
static void
print_tail(const char *path, unsigned lines)
{
	char ring[16][512];
	unsigned n = 0;
	FILE *f = fopen(path, "re");

	if (lines > 16)
		lines = 16;
	if (f == NULL)
		return;
	while (fgets(ring[n % lines], sizeof(ring[0]), f) != NULL)
		n++;
	fclose(f);
	for (unsigned i = n > lines ? n - lines : 0; i < n; i++)
		fprintf(stderr, "  %s", ring[i % lines]);
}

/* Waits until the ring names the uploader's PID (it has attached). */
static int
uploader_wait_attached(struct bup_uploader *up, const char *log)
{
	uint64_t deadline = mono_ns() + 20 * BUP_SEC_NS;

	while (mono_ns() < deadline && !bup_interrupted) {
		if (up->pid == 0)
			up->pid = bup_child_of(up->wrapper);
		if (up->pid != 0 && !up->open)
			up->open = ring_open(&up->r, up->ring, RING_OPEN_RDONLY, NULL) == 0;
		/* Relaxed: the pid only says the uploader has attached; the
		 * geometry was read by ring_open(), and nothing else is read
		 * through this load. */
		if (up->open && atomic_load_explicit(&up->r.hdr->uploader_pid,
		    memory_order_relaxed) == (uint32_t)up->pid)
			return 0;
		if (bup_try_reap(up->wrapper)) {
			up->wrapper = 0;
			break;
		}
		usleep(10000);
	}
	fprintf(stderr, "%s: the uploader did not attach to ring %s; its log:\n",
	    bench_prog, up->ring);
	print_tail(log, 10);
	return -EIO;
}

int
bup_uploader_start(const struct bup_opts *o, const struct bup_endpoint *ep, unsigned idx,
    struct bup_uploader *up)
{
	char bufs[5][PATH_MAX], log[PATH_MAX], key_env[256], secret_env[256], extra[1024];
	char *argv[48], *env[8];
	unsigned ne = 0;

	memset(up, 0, sizeof(*up));
	up->r.fd = -1;
	snprintf(up->ring, sizeof(up->ring), "bench-upload-%d-%u", (int)getpid(), idx);
	bup_track_ring(up->ring);
	snprintf(log, sizeof(log), "%s/uploader-%u.log", bup_workdir, idx);
	(void)uploader_argv(o, ep, idx, up, argv, bufs, extra, sizeof(extra));
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
	up->wrapper = bup_spawn(argv, env, NULL, log);
	if (up->wrapper < 0)
		return (int)up->wrapper;
	return uploader_wait_attached(up, log);
}

void
bup_uploader_stop(struct bup_uploader *up)
{
	if (up->wrapper > 0)
		bup_stop_group(up->wrapper);
	up->wrapper = 0;
	if (up->open)
		ring_close(&up->r);
	up->open = false;
}

uint64_t
bup_uploaded(const struct bup_uploader *up)
{
	/* Relaxed: a progress counter, polled; nothing is read through it. */
	return atomic_load_explicit(&up->r.hdr->uploaded, memory_order_relaxed) +
	    atomic_load_explicit(&up->r.hdr->dead_lettered, memory_order_relaxed);
}
