/* uploader.c -- start-up and shutdown of s3ring-uploader: signals, the
 * ring, the journal, the clients; the engine (engine.c) does the rest.
 * See daemon.h for the parts and the threads. Signal handlers only set
 * flags; the loop acts on them.
 */
#include "uploader.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "futex.h"
#include "log.h"
#include "notify.h"
#include "proc.h"
#include "spool.h"

volatile sig_atomic_t uploader_got_stop, uploader_got_reload;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		uploader_got_reload = 1;
	else
		uploader_got_stop = 1;
}

static void
signals_for_main_only(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	(void)pthread_sigmask(how, &set, NULL);
}

static int
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* ----------------------------------------------------------------- log */

int
uploader_open_log(const struct config *cfg)
{
	int fd;

	if (cfg->log_file[0] == '\0')
		return 0;
	fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	/* dup2 over stderr: the log's fd never changes, so a line being
	 * written by another thread goes to the old file or the new one. */
	if (dup2(fd, STDERR_FILENO) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

/* ---------------------------------------------------------- start, stop */

/* HEAD bucket, until it works or the uploader is told to stop. Transient
 * failures back off; configuration errors raise the alarm and re-check
 * every recheck interval. The heartbeat goes on meanwhile. */
static bool
check_bucket(struct uploader *u)
{
	unsigned attempt = 0, gen = 0;
	char why[512];

	for (;;) {
		const struct s3_response *r;
		uint64_t wait_ms, until;
		int rc = s3_head_bucket(u->sync_s3);

		if (rc == 0) {
			status_clear(u, RING_UPLOADER_CONFIG_ALARM, "configuration");
			return true;
		}
		r = s3_response(u->sync_s3);
		if (rc == -EIO && retry_is_region_error(r)) {
			if (upload_follow_region(u, r, s3_region(u->sync_s3))) {
				upload_adopt_region(u, u->sync_s3, &gen);
				continue;
			}
			retry_describe(r, why, sizeof(why));
			status_note_failure(u, why);
			status_raise(u, RING_UPLOADER_CONFIG_ALARM, "configuration", why);
			wait_ms = (uint64_t)u->cfg->recheck_s * 1000;
			goto wait;
		}
		if (rc == -EIO && (r->status == 403 || r->status == 301)) {
			/* HeadBucket needs s3:ListBucket, which a writer's
			 * least-privilege policy does not grant: the PUTs
			 * decide, and only a refused PUT raises the alarm. A
			 * 301 that names no region (a HEAD has no body) is
			 * left to the PUTs too, whose error document does. */
			if (r->status == 301)
				snprintf(why, sizeof(why), "PermanentRedirect (HTTP 301 on HEAD, "
				    "no region named)");
			else if (r->error.code[0] == '\0')
				snprintf(why, sizeof(why), "AccessDenied (HTTP 403 on HEAD; "
				    "s3:ListBucket is not granted)");
			else
				retry_describe(r, why, sizeof(why));
			log_kv(LOG_LEVEL_WARN, "the bucket check (HEAD) was refused; "
			    "going on, the uploads will tell whether writing is allowed",
			    "bucket", u->cfg->bucket, "error", why, (char *)NULL);
			return true;
		}
		if (rc == -EIO && r->error.code[0] == '\0' && r->status == 404)
			snprintf(why, sizeof(why), "NoSuchBucket: bucket %s does not exist (HTTP 404 on HEAD)",
			    u->cfg->bucket);
		else if (rc == -EIO)
			retry_describe(r, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", strerror(-rc));
		/* An uploader stuck here fails every upload too: the outage
		 * log, last_error and failing_since say so. */
		status_note_failure(u, why);
		if (rc == -EIO && r->verdict.cls == S3ERR_CONFIG) {
			status_raise(u, RING_UPLOADER_CONFIG_ALARM, "configuration", why);
			wait_ms = (uint64_t)u->cfg->recheck_s * 1000;
		} else {
			log_kv(LOG_LEVEL_WARN, "bucket check failed, retrying", "bucket",
			    u->cfg->bucket, "error", why, (char *)NULL);
			wait_ms = s3err_backoff_default_ms(attempt < 8 ? attempt : 8,
			    rc == -EIO && r->has_retry_after ? r->retry_after_ms : 0);
			if (wait_ms < 200)
				wait_ms = 200;
			attempt++;
		}
wait:
		until = mono_ns() + wait_ms * MS;
		while (mono_ns() < until) {
			status_tick(u, "waiting for the bucket;");
			if (uploader_got_stop)
				return false;
			usleep(50000);
		}
	}
}

/* Opens the ring; with create, creates it if absent. Returns 0, 1 when it
 * is absent and create is false, or -1 after printing one line. */
static int
open_ring(struct uploader *u, bool create)
{
	const struct config *cfg = u->cfg;
	struct ring_config rc = {
		.capacity = cfg->ring_size, .max_message = cfg->max_message,
		.mode = cfg->ring_mode, .gid = cfg->ring_gid,
	};
	struct stat st;
	int err = ring_open(&u->ring, cfg->ring, create ? RING_OPEN_CREATE : 0, &rc);

	/* The default (64 MiB and its 16 KiB header) does not fit Docker's
	 * default /dev/shm of 64 MiB: unless a size was asked for, halve it
	 * until it fits, and say so. */
	while (err == -ENOSPC && !cfg->ring_size_set && rc.capacity > RING_MIN_CAPACITY * 16) {
		rc.capacity /= 2;
		if (rc.max_message > rc.capacity / 8)
			rc.max_message = (uint32_t)(rc.capacity / 8);
		err = ring_open(&u->ring, cfg->ring, RING_OPEN_CREATE, &rc);
		if (err == 0) {
			char sz[32];
			snprintf(sz, sizeof(sz), "%llu", (unsigned long long)rc.capacity);
			log_kv(LOG_LEVEL_WARN, "/dev/shm has no room for the default ring; created a smaller one (set --ring-size, or enlarge /dev/shm)",
			    "ring", cfg->ring, "ring_size", sz, (char *)NULL);
		}
	}
	if (err == -ENOENT && !create)
		return 1;
	if (err == -ENOSPC || err == -EFBIG) {
		fprintf(stderr, "s3ring-uploader: cannot create ring %s: /dev/shm has no room for %llu bytes (lower --ring-size, or enlarge /dev/shm)\n",
		    cfg->ring, (unsigned long long)(cfg->ring_size + RING_HEADER_SIZE));
		return -1;
	}
	if (err < 0) {
		fprintf(stderr, "s3ring-uploader: ring %s: %s\n", cfg->ring,
		    err == -EPROTO ? "made by an incompatible version (layout version)" :
		    err == -EBADMSG ? "corrupt header" : strerror(-err));
		return -1;
	}
	if (fstat(u->ring.fd, &st) == 0 && st.st_uid != getuid() &&
	    !cfg->allow_foreign_ring) {
		fprintf(stderr, "s3ring-uploader: ring %s is owned by uid %u, not by us (uid %u); refusing it (--allow-foreign-ring to accept)\n",
		    cfg->ring, (unsigned)st.st_uid, (unsigned)getuid());
		return -1;
	}
	if (!u->ring.created && (u->ring.capacity != cfg->ring_size))
		log_kv(LOG_LEVEL_INFO, "attached to an existing ring; its geometry wins",
		    "ring", cfg->ring, (char *)NULL);
	return 0;
}

int
uploader_make_clients(struct uploader *u)
{
	const struct config *cfg = u->cfg;
	struct creds_options co = {
		.region = cfg->region[0] ? cfg->region : NULL,
		.endpoint = cfg->endpoint[0] ? cfg->endpoint : NULL,
	};

	/* creds_new() logs its reason, naming the file it looked for. */
	u->creds = creds_new(&co);
	if (u->creds == NULL)
		return -1;
	snprintf(u->region, sizeof(u->region), "%s", creds_region(u->creds));
	/* Explicit: --region, AWS_REGION, AWS_DEFAULT_REGION, region = in
	 * --config (all land in cfg->region), or a profile's region (which
	 * creds resolved to something other than the default). */
	u->region_explicit = cfg->region[0] != '\0' ||
	    strcmp(u->region, "us-east-1") != 0;
	snprintf(u->endpoint, sizeof(u->endpoint), "%s",
	    creds_endpoint(u->creds) ? creds_endpoint(u->creds) : "");
	u->s3cfg = (struct s3_config){
		.endpoint = u->endpoint[0] ? u->endpoint : NULL,
		.region = u->region,
		.bucket = cfg->bucket,
		.path_style = cfg->path_style,
		.tls_insecure = cfg->insecure,
		.ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL,
		.connect_timeout_ms = (long)cfg->connect_timeout_s * 1000,
		.timeout_ms = (long)cfg->request_timeout_s * 1000,
	};
	return 0;
}

static void
spool_dir(struct uploader *u)
{
	const char *state = getenv("STATE_DIRECTORY");

	if (u->cfg->spool[0] != '\0')
		snprintf(u->spool, sizeof(u->spool), "%s", u->cfg->spool);
	else if (state != NULL && state[0] != '\0')
		snprintf(u->spool, sizeof(u->spool), "%s/spool", state);
	else
		snprintf(u->spool, sizeof(u->spool), "/var/lib/s3ring/%s/spool", u->cfg->ring);
}

int
uploader_init(struct uploader *u, const struct config *cfg)
{
	memset(u, 0, sizeof(*u));
	u->live = malloc(sizeof(*u->live));
	if (u->live == NULL)
		return -ENOMEM;
	memcpy(u->live, cfg, sizeof(*u->live));
	u->cfg = u->live;
	health_init(&u->health);
	u->ring.fd = -1;
	return 0;
}

int
uploader_run(const struct config *cfg)
{
	struct uploader u;
	struct ring_header *h;
	char err[512];
	int rc = UPLOADER_EXIT_FAIL;

	if (uploader_init(&u, cfg) < 0) {
		fprintf(stderr, "s3ring-uploader: out of memory\n");
		return UPLOADER_EXIT_FAIL;
	}
	cfg = u.cfg;
	if (install_signals() < 0 || s3_global_init() != 0) {
		fprintf(stderr, "s3ring-uploader: cannot initialise: %s\n", strerror(errno));
		return UPLOADER_EXIT_FAIL;
	}
	/* The threads started from here on (the credentials refresher, the
	 * workers, libcurl's resolver threads) inherit a mask that blocks the
	 * stop and reload signals, so their handler runs on this thread, the
	 * one that reads its flags; they are unblocked below. */
	signals_for_main_only(SIG_BLOCK);
	/* An existing ring is checked first (owner, version), then the
	 * credentials, and only then is a missing ring created: a bad
	 * credentials file leaves no new ring behind, and every refusal is one
	 * line. */
	if ((rc = open_ring(&u, false)) < 0) {
		rc = UPLOADER_EXIT_FAIL;
		goto out;
	}
	if (uploader_make_clients(&u) < 0) {
		rc = UPLOADER_EXIT_FAIL;
		goto out_ring;
	}
	if (rc == 1 && open_ring(&u, true) < 0) {
		rc = UPLOADER_EXIT_FAIL;
		goto out_creds;
	}
	rc = UPLOADER_EXIT_FAIL;
	h = u.ring.hdr;
	if (journal_open(&u.journal, &u.ring, err, sizeof(err)) < 0) {
		fprintf(stderr, "s3ring-uploader: %s\n", err);
		goto out_ring;
	}
	u.epoch = u.journal.f->epoch;
	u.drop_step = u.ring.capacity / 16 < (1u << 20) ? u.ring.capacity / 16 : (1u << 20);
	spool_dir(&u);
	{
		int src = spool_check(u.spool);

		if (src < 0) {
			fprintf(stderr, "s3ring-uploader: dead-letter spool %s is not writable: %s (set --spool to a writable directory)\n",
			    u.spool, strerror(-src));
			goto out_journal;
		}
	}
	if (cfg->insecure)
		log_kv(LOG_LEVEL_WARN, "TLS certificate verification is OFF (--insecure)",
		    (char *)NULL);
	if (upload_engine_init(&u) < 0 || engine_start_watcher(&u) < 0 ||
	    upload_start_hasher(&u) < 0) {
		fprintf(stderr, "s3ring-uploader: cannot start the engine for %u uploads: out of memory or threads\n",
		    cfg->workers);
		goto out_engine;
	}
	rc = batch_init(&u);
	if (rc < 0) {
		if (rc == -EINVAL) {
			/* batch_rules_fit() said which rule and why. */
			rc = CONFIG_EXIT_USAGE;
		} else {
			fprintf(stderr, "s3ring-uploader: cannot start batch mode: out of memory\n");
			rc = UPLOADER_EXIT_FAIL;
		}
		goto out_engine;
	}

	u.pid = (uint32_t)getpid();
	u.start_time = proc_start_time(getpid());
	/* shmstat's evidence that we live, whatever its PID namespace. */
	if (ring_uploader_lock(&u.ring) < 0)
		log_kv(LOG_LEVEL_WARN, "cannot lock the ring's uploader line; shmstat in another PID namespace will judge us by pid",
		    "error", strerror(errno), (char *)NULL);
	atomic_store(&h->uploader_pid, (uint32_t)getpid());
	atomic_store(&h->uploader_start_time, u.start_time);
	atomic_store(&h->uploader_epoch, u.epoch);
	atomic_store(&h->uploader_workers, u.nup);
	atomic_store(&h->uploader_flags, 0);
	/* A new process starts with a clean slate: the last error and the
	 * outage state of a previous one would be stale. */
	memset(h->last_error, 0, sizeof(h->last_error));
	atomic_store(&h->last_error_realtime_ns, 0);
	atomic_store(&h->upstats.failing_since_realtime_ns, 0);
	u.wd_us = notify_watchdog_usec();
	signals_for_main_only(SIG_UNBLOCK);
	status_tick(&u, "starting;");
	ring_consumer_init(&u.cons, &u.ring, u.journal.redelivered_from);
	u.cons.leave_body = batch_leaves_body;
	u.cons.leave_body_arg = &u;
	log_kv(LOG_LEVEL_INFO, "started", "ring", u.ring.name, "bucket", cfg->bucket,
	    "endpoint", u.endpoint[0] ? u.endpoint : "aws", "region", u.region,
	    "credentials", creds_source(u.creds), "spool", u.spool, (char *)NULL);
	(void)notify_send("READY=1\nSTATUS=checking the bucket");

	if (check_bucket(&u)) {
		multipart_abort_leftovers(&u);
		engine_run(&u);
	}
	engine_drain(&u);
	/* No heartbeat from here on: producers check at once, not after a
	 * second, whether a removed ring is left without a reader. */
	if (!u.lost)
		atomic_store_explicit(&h->upstats.heartbeat_mono_ns, 0, memory_order_relaxed);
	rc = u.lost ? UPLOADER_EXIT_FAIL : u.reattach ? UPLOADER_EXIT_REATTACH : 0;
	/* The pid stays, so shmstat can tell "stopped" (pid dead) from
	 * "never ran"; the heartbeat stops. */
out_engine:
	upload_stop_hasher(&u);
	engine_stop_watcher(&u);
	batch_free(&u);
	upload_engine_free(&u);
out_journal:
	journal_close(&u.journal);
out_ring:
	ring_close(&u.ring);
out_creds:
	creds_free(u.creds);
out:
	s3_global_cleanup();
	free(u.live);
	return rc;
}
