/* uploader.c -- the dispatcher and its workers: drain the ring to S3.
 *
 * One dispatcher thread reads the ring, N worker threads upload. Invariants:
 * - A record is handed to a worker only when that worker is idle, by
 *   copying it into the worker's own buffer of max_message bytes: memory is
 *   workers x max_message plus constants, whatever the backlog.
 * - A record is marked DONE in the journal only after S3 confirmed it, or
 *   after it was written to the dead-letter spool. Head advances over the
 *   contiguous prefix of DONE records only, journal first, then ring.
 * - Nothing is dropped on a configuration error (bad bucket, credentials):
 *   consumption pauses, the alarm is raised in the ring header, and the
 *   failing upload is retried every recheck interval until it succeeds.
 * - When the in-flight table is full or every worker is busy, the
 *   dispatcher stops reading: producers then see a full ring. That is the
 *   back-pressure.
 * - Signal handlers only set flags; the dispatcher acts on them.
 * - The settings a SIGHUP may change (config_apply_runtime) are written by
 *   the dispatcher under cfg_lock's write lock and read by workers under
 *   its read lock, held only while they copy what one attempt needs.
 */
#include "uploader.h"

#include <dirent.h>
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

#include "crc32c.h"
#include "creds.h"
#include "futex.h"
#include "health.h"
#include "journal.h"
#include "log.h"
#include "notify.h"
#include "objopts.h"
#include "proc.h"
#include "ring.h"
#include "s3.h"
#include "spool.h"

#define MS (1000ull * 1000)
#define SEC (1000ull * MS)
#define KEY_BUF (2 * S3_KEY_MAX + 2)

enum wstate { W_IDLE = 0, W_BUSY = 1, W_DONE = 2 };
enum outcome { OUT_UPLOADED, OUT_DEAD_LETTERED, OUT_HANDED_BACK };

struct uploader;

struct worker {
	struct uploader *u;
	unsigned id;
	pthread_t tid;
	bool started;
	struct s3_client *s3;
	uint8_t *buf;              /* max_message + 1 bytes */
	size_t cap;
	struct ring_msg msg;       /* points into buf */
	int slot;                  /* index in the in-flight table */
	unsigned region_gen;       /* of the region its client signs for */
	_Atomic int state;         /* enum wstate */
	pthread_cond_t cv;         /* signalled when this worker gets work */
	enum outcome outcome;
	char key[KEY_BUF];
	struct objopts_headers hdrs; /* the object options of msg */
};

struct uploader {
	const struct config *cfg;  /* = live */
	struct config *live;       /* our copy; SIGHUP updates it */
	pthread_rwlock_t cfg_lock;
	struct ring ring;
	struct ring_consumer cons;
	struct journal journal;
	struct creds *creds;
	bool creds_alarm;	/* the alarm is raised for expired keys */
	struct s3_config s3cfg;
	char region[64];
	char endpoint[CONFIG_STR_MAX];
	char spool[CONFIG_STR_MAX];
	struct worker *w;
	unsigned nworkers;
	uint64_t epoch;

	/* The region the workers sign for. When none was set explicitly it
	 * follows the bucket's (a 301 or x-amz-bucket-region names it):
	 * region_gen grows on each switch, and each worker adopts u->region
	 * before its next request. */
	pthread_mutex_t region_mu;
	_Atomic unsigned region_gen;
	bool region_explicit;

	/* The outage log: serialised by health_mu. */
	pthread_mutex_t health_mu;
	struct health health;
	unsigned handed_back;      /* records handed back by the drain */

	pthread_mutex_t mu;        /* guards the condition variables */
	pthread_cond_t sleep_cv;   /* interrupts backoff sleeps on stop */
	/* A worker that finishes bumps done_seq and, if the dispatcher sleeps
	 * on it (disp_waiting), wakes it: the dispatcher waits here, not on
	 * the ring, when it has no idle worker to give a record to. */
	_Atomic uint32_t done_seq;
	_Atomic uint32_t disp_waiting;

	_Atomic uint64_t last_success_ns; /* CLOCK_MONOTONIC of the last upload */
	_Atomic uint64_t last_probe_ns;   /* of the last HEAD made by a worker */
	_Atomic bool last_probe_ok;       /* its answer, trusted for a second */
	uint64_t wd_us;            /* systemd watchdog interval, 0: none */
	uint64_t start_time;       /* ours, from /proc, for the ring header */
	bool lost;                 /* the ring was truncated under us */
	bool retiring;             /* removed or replaced: finish, then re-attach */
	bool reattach;             /* retired and finished: start again */
	uint64_t retire_deadline;
	uint64_t next_give_up;     /* past the deadline: when to give up writers again */
	uint64_t next_identity;    /* when to look at the ring's name again */
	uint64_t dropped_upto;     /* ring pages below this are unmapped */
	uint64_t drop_step;
	uint64_t next_wd, next_status;
	_Atomic bool quit;         /* workers exit their loop */
	_Atomic bool stopping;     /* SIGTERM: no new attempts, no more naps */
	_Atomic bool stop_hard;    /* the stop timeout is up: abort transfers */
	pthread_mutex_t alarm_mu;  /* serialises writes of last_error */
};

static volatile sig_atomic_t got_stop, got_reload;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_reload = 1;
	else
		got_stop = 1;
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

/* ------------------------------------------------------------ the alarm */

static void
set_last_error(struct uploader *u, const char *text)
{
	struct ring_header *h = u->ring.hdr;
	char buf[RING_ERRMSG_LEN];

	snprintf(buf, sizeof(buf), "%s", text);
	pthread_mutex_lock(&u->alarm_mu);
	memcpy(h->last_error, buf, sizeof(buf));
	atomic_store_explicit(&h->last_error_realtime_ns, realtime_ns(), memory_order_release);
	pthread_mutex_unlock(&u->alarm_mu);
}

static void
log_health(const struct health_line *l)
{
	char fails[24], oks[24], total[24], secs[24];

	snprintf(fails, sizeof(fails), "%llu", (unsigned long long)l->failures);
	snprintf(oks, sizeof(oks), "%llu", (unsigned long long)l->successes);
	snprintf(total, sizeof(total), "%llu", (unsigned long long)l->outage_failures);
	snprintf(secs, sizeof(secs), "%llu",
	    (unsigned long long)(l->failing_for_ns / SEC));
	switch (l->what) {
	case HEALTH_STARTED:
		log_kv(LOG_LEVEL_INFO, "uploads failing, retrying", "error",
		    l->last_error, (char *)NULL);
		break;
	case HEALTH_ONGOING:
		log_kv(LOG_LEVEL_INFO, "uploads still failing", "failed", fails,
		    "succeeded", oks, "failing_for_s", secs, "last_error",
		    l->last_error, (char *)NULL);
		break;
	case HEALTH_RECOVERED:
		log_kv(LOG_LEVEL_INFO, "uploads recovered", "failed", fails,
		    "succeeded", oks, (char *)NULL);
		break;
	case HEALTH_QUIET:
		break;
	}
}

/* One attempt failed at the service (not a message error): the outage log,
 * last_error and the ring's failing_since. */
static void
note_failure(struct uploader *u, const char *why)
{
	struct ring_upstats *st = &u->ring.hdr->upstats;
	struct health_line line = { .what = HEALTH_QUIET };
	uint64_t zero = 0;

	pthread_mutex_lock(&u->health_mu);
	(void)health_failure(&u->health, mono_ns(), why, &line);
	pthread_mutex_unlock(&u->health_mu);
	atomic_compare_exchange_strong_explicit(&st->failing_since_realtime_ns,
	    &zero, realtime_ns(), memory_order_relaxed, memory_order_relaxed);
	set_last_error(u, why);
	log_health(&line);
}

static void
note_success(struct uploader *u)
{
	struct ring_upstats *st = &u->ring.hdr->upstats;
	struct health_line line = { .what = HEALTH_QUIET };

	atomic_store_explicit(&st->failing_since_realtime_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&st->last_success_realtime_ns, realtime_ns(),
	    memory_order_relaxed);
	pthread_mutex_lock(&u->health_mu);
	(void)health_success(&u->health, mono_ns(), &line);
	pthread_mutex_unlock(&u->health_mu);
	log_health(&line);
}

/* Counts one attempt's latency and, if it failed, its error class. */
static void
note_attempt(struct uploader *u, uint64_t t0, const struct s3_response *r, bool ok)
{
	struct ring_upstats *st = &u->ring.hdr->upstats;
	uint64_t us = (mono_ns() - t0) / 1000;

	atomic_fetch_add_explicit(&st->lat_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->lat_sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->lat_bucket[health_lat_bucket(us)], 1,
	    memory_order_relaxed);
	if (ok || r == NULL)
		return;
	atomic_fetch_add_explicit(&st->failed_attempts, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->errors[health_errclass(r->curl_code, r->status,
	    r->verdict.cls, r->error.code)], 1, memory_order_relaxed);
}

static void
raise_alarm(struct uploader *u, unsigned flag, const char *what, const char *detail)
{
	struct ring_header *h = u->ring.hdr;
	char text[RING_ERRMSG_LEN];
	unsigned old;

	snprintf(text, sizeof(text), "%s: %s", what, detail);
	set_last_error(u, text);
	old = atomic_fetch_or(&h->uploader_flags, flag);
	if (flag == RING_UPLOADER_CONFIG_ALARM)
		atomic_fetch_add_explicit(&h->config_errors, 1, memory_order_relaxed);
	if (!(old & flag))
		log_kv(LOG_LEVEL_ERROR, "alarm raised, consumption paused where needed",
		    "alarm", what, "error", detail, (char *)NULL);
}

static void
clear_alarm(struct uploader *u, unsigned flag, const char *what)
{
	unsigned old = atomic_fetch_and(&u->ring.hdr->uploader_flags, ~flag);

	if (old & flag)
		log_kv(LOG_LEVEL_INFO, "alarm cleared, consuming again", "alarm", what,
		    (char *)NULL);
}

static bool
alarmed(struct uploader *u, unsigned flag)
{
	return (atomic_load(&u->ring.hdr->uploader_flags) & flag) != 0;
}

/* Keys that expired without a refresh cannot upload anything: that is
 * the configuration alarm, raised once and cleared by the refresh that
 * ends it (the refresher keeps retrying meanwhile). */
static void
check_creds_expiry(struct uploader *u)
{
	char why[512];

	if (creds_expired(u->creds, why, sizeof(why))) {
		if (!u->creds_alarm)
			raise_alarm(u, RING_UPLOADER_CONFIG_ALARM, "configuration", why);
		u->creds_alarm = true;
	} else if (u->creds_alarm) {
		u->creds_alarm = false;
		clear_alarm(u, RING_UPLOADER_CONFIG_ALARM, "configuration");
	}
}

/* Sleeps up to ms, or until the uploader stops. Returns false if
 * interrupted. */
static bool
nap(struct uploader *u, uint64_t ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&u->mu);
	while (!atomic_load(&u->stopping) &&
	    pthread_cond_timedwait(&u->sleep_cv, &u->mu, &ts) == 0)
		;
	ok = !atomic_load(&u->stopping);
	pthread_mutex_unlock(&u->mu);
	return ok;
}

/* ---------------------------------------------------------- one upload */

/* Aborts a transfer in progress when the uploader must stop now. */
static int
xfer_abort(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct uploader *u = p;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return atomic_load(&u->stop_hard) ? 1 : 0;
}

static const char *
describe(const struct s3_response *r, char *buf, size_t cap)
{
	if (r->bucket_region[0] != '\0' && (r->status == 301 ||
	    strcmp(r->error.code, "PermanentRedirect") == 0 ||
	    strcmp(r->error.code, "AuthorizationHeaderMalformed") == 0))
		snprintf(buf, cap, "%s (HTTP %ld): the bucket is in region %s",
		    r->error.code[0] ? r->error.code : "PermanentRedirect",
		    r->status, r->bucket_region);
	else if (r->error.code[0] != '\0')
		snprintf(buf, cap, "%s (HTTP %ld)%s%s", r->error.code, r->status,
		    r->error.message[0] ? ": " : "", r->error.message);
	else if (r->curl_code != 0)
		snprintf(buf, cap, "%s%s%s", r->verdict.reason,
		    r->curl_error[0] ? ": " : "", r->curl_error);
	else
		snprintf(buf, cap, "HTTP %ld", r->status);
	return buf;
}

/* Writes the message to the spool, retrying (with the spool alarm raised)
 * until it is written or the uploader stops. */
static enum outcome
dead_letter(struct worker *w, const char *reason, unsigned attempts)
{
	struct uploader *u = w->u;
	char hint[64];
	int rc;

	snprintf(hint, sizeof(hint), "%llu-%llu", (unsigned long long)u->epoch,
	    (unsigned long long)w->msg.pos);
	for (;;) {
		rc = spool_write(u->spool, hint, w->msg.key, w->msg.key_len,
		    w->msg.body, w->msg.body_len, reason, attempts);
		if (rc == 0)
			break;
		raise_alarm(u, RING_UPLOADER_SPOOL_ALARM, "dead-letter spool unusable",
		    strerror(-rc));
		if (!nap(u, 5000))
			return OUT_HANDED_BACK;
	}
	clear_alarm(u, RING_UPLOADER_SPOOL_ALARM, "dead-letter spool unusable");
	atomic_fetch_add_explicit(&u->ring.hdr->dead_lettered, 1, memory_order_relaxed);
	log_kv(LOG_LEVEL_WARN, "message dead-lettered", "key", w->msg.key,
	    "reason", reason, "spool", u->spool, (char *)NULL);
	return OUT_DEAD_LETTERED;
}

/* True if the service answered properly at some point since `since`: an
 * upload by any worker succeeded, or, failing that and if probe is set, a
 * HEAD of the bucket does. One probe a second at most, for all workers,
 * whose answer stands for that second: probes were a storm at 30% faults,
 * and on s3rver, for one, a HEAD of a bucket lists it. Then a failure of
 * this message is its own, not an outage's. */
static bool
service_up_since(struct worker *w, uint64_t since, bool probe)
{
	struct uploader *u = w->u;
	uint64_t now = mono_ns(), last;

	if (atomic_load_explicit(&u->last_success_ns, memory_order_relaxed) > since)
		return true;
	last = atomic_load_explicit(&u->last_probe_ns, memory_order_relaxed);
	if (!probe || now - last < SEC ||
	    !atomic_compare_exchange_strong(&u->last_probe_ns, &last, now))
		return probe && atomic_load(&u->last_probe_ok);
	int rc = s3_head_bucket(w->s3);
	bool ok = health_probe_answered(rc, s3_response(w->s3)->status);
	atomic_store(&u->last_probe_ok, ok);
	return ok;
}

/* A request signed for region `signed_for` failed because the bucket
 * lives in another region (r names it). If no region was set explicitly,
 * every client switches to it (logged once, by whoever switches first)
 * and this returns true: retry at once. Otherwise, or when the server
 * names the very region the request was signed for (following it again
 * would loop), returns false: the caller raises the configuration alarm
 * with the message from describe(), which names the region. */
static bool
follow_region(struct uploader *u, const struct s3_response *r, const char *signed_for)
{
	bool switched = false;
	char old[64];

	if (r->bucket_region[0] == '\0' || u->region_explicit ||
	    strcmp(signed_for, r->bucket_region) == 0)
		return false;
	pthread_mutex_lock(&u->region_mu);
	if (strcmp(u->region, r->bucket_region) != 0) {
		snprintf(old, sizeof(old), "%s", u->region);
		snprintf(u->region, sizeof(u->region), "%s", r->bucket_region);
		atomic_fetch_add(&u->region_gen, 1);
		switched = true;
	}
	pthread_mutex_unlock(&u->region_mu);
	if (switched)
		log_kv(LOG_LEVEL_INFO, "the bucket is in another region; switched to it "
		    "(set --region to make this explicit)", "bucket", u->cfg->bucket,
		    "from", old, "region", r->bucket_region, (char *)NULL);
	return true;
}

/* Makes w's client sign for the uploader's current region. */
static void
adopt_region(struct uploader *u, struct s3_client *s3, unsigned *gen)
{
	unsigned g = atomic_load(&u->region_gen);

	if (g == *gen)
		return;
	pthread_mutex_lock(&u->region_mu);
	if (s3_set_region(s3, u->region) < 0)
		log_kv(LOG_LEVEL_ERROR, "cannot sign for the bucket's region", "region",
		    u->region, (char *)NULL);
	*gen = atomic_load(&u->region_gen);
	pthread_mutex_unlock(&u->region_mu);
}

static bool
is_region_error(const struct s3_response *r)
{
	return r->bucket_region[0] != '\0' && (r->status == 301 ||
	    strcmp(r->error.code, "PermanentRedirect") == 0 ||
	    strcmp(r->error.code, "AuthorizationHeaderMalformed") == 0);
}

static enum outcome
deliver(struct worker *w)
{
	struct uploader *u = w->u;
	const struct config *cfg = u->cfg;
	struct ring_header *h = u->ring.hdr;
	const struct ring_msg *m = &w->msg;
	char why[512], reason[600];
	unsigned attempts = 0, tries = 0;
	uint64_t prev_fail = 0;

	if (!ring_key_valid(m->key, m->key_len))
		return dead_letter(w, "InvalidKey: not a valid S3 key", 0);

	for (;;) {
		const struct s3_response *r;
		unsigned max_attempts, max_age_s, recheck_s;
		int rc, n, hrc;
		uint64_t t0;

		if (atomic_load(&u->stopping))
			return OUT_HANDED_BACK;
		/* What this attempt needs of the settings a SIGHUP can change:
		 * the key, the object options (prefix rules match the key as
		 * the producer put it) and the retry limits. */
		pthread_rwlock_rdlock(&u->cfg_lock);
		n = snprintf(w->key, sizeof(w->key), "%s%s", cfg->key_prefix, m->key);
		hrc = objopts_headers(cfg->obj, cfg->nobj, m->key, &w->hdrs);
		max_attempts = cfg->max_attempts;
		max_age_s = cfg->max_age_s;
		recheck_s = cfg->recheck_s;
		pthread_rwlock_unlock(&u->cfg_lock);
		if (n < 0 || (size_t)n > S3_KEY_MAX)
			return dead_letter(w, "KeyTooLongError: key-prefix + key over 1024 bytes",
			    attempts);
		if (hrc < 0)
			return dead_letter(w, "InvalidArgument: the object options do not fit a request",
			    attempts);
		adopt_region(u, w->s3, &w->region_gen);
		t0 = mono_ns();
		rc = s3_prepare_put_headers(w->s3, w->key, m->body, m->body_len, m->body_crc,
		    w->hdrs.h, w->hdrs.n);
		if (rc == 0) {
			CURL *e = s3_easy(w->s3);
			curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, xfer_abort);
			curl_easy_setopt(e, CURLOPT_XFERINFODATA, u);
			curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
			rc = s3_perform(w->s3);
			note_attempt(u, t0, s3_response(w->s3), rc == 0);
		}
		if (rc == 0) {
			note_success(u);
			atomic_store_explicit(&u->last_success_ns, mono_ns(), memory_order_relaxed);
			atomic_fetch_add_explicit(&h->uploaded, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&h->uploaded_bytes, m->body_len,
			    memory_order_relaxed);
			if (alarmed(u, RING_UPLOADER_CONFIG_ALARM))
				clear_alarm(u, RING_UPLOADER_CONFIG_ALARM, "configuration");
			if (log_enabled(LOG_LEVEL_DEBUG))
				log_kv(LOG_LEVEL_DEBUG, "uploaded", "key", w->key, (char *)NULL);
			return OUT_UPLOADED;
		}
		if (rc != -EIO) {
			snprintf(reason, sizeof(reason), "request not sent: %s", strerror(-rc));
			return dead_letter(w, reason, attempts);
		}
		r = s3_response(w->s3);
		describe(r, why, sizeof(why));
		if (atomic_load(&u->stopping))
			return OUT_HANDED_BACK;
		switch (r->verdict.cls) {
		case S3ERR_CONFIG:
			if (is_region_error(r) && follow_region(u, r, s3_region(w->s3)))
				continue;
			note_failure(u, why);
			raise_alarm(u, RING_UPLOADER_CONFIG_ALARM, "configuration", why);
			if (!nap(u, (uint64_t)recheck_s * 1000))
				return OUT_HANDED_BACK;
			continue;
		case S3ERR_MESSAGE:
			snprintf(reason, sizeof(reason), "%s", why);
			return dead_letter(w, reason, attempts + 1);
		case S3ERR_TRANSIENT:
		default:
			if (is_region_error(r) && follow_region(u, r, s3_region(w->s3)))
				continue;
			note_failure(u, why);
			tries++;
			atomic_fetch_add_explicit(&h->retried, 1, memory_order_relaxed);
			/* Only a failure while the service works counts toward
			 * --max-attempts and --max-age: one that hits every request (the
			 * endpoint down, an outage) is waited out, and the
			 * messages stay in the ring. The proof is a success of
			 * another worker since this message's previous failure
			 * (a success from before the outage began proves
			 * nothing), or a HEAD of the bucket (one a second at
			 * most). */
			uint64_t now_fail = mono_ns();
			bool counted = service_up_since(w, prev_fail ? prev_fail : now_fail, true);
			if (counted)
				attempts++;
			prev_fail = now_fail;
			if (health_give_up(attempts, max_attempts, counted,
			    now_fail > m->put_ns ? now_fail - m->put_ns : 0,
			    (uint64_t)max_age_s * SEC)) {
				snprintf(reason, sizeof(reason), "gave up after %u attempts: %s",
				    tries, why);
				return dead_letter(w, reason, tries);
			}
			if (log_enabled(LOG_LEVEL_DEBUG))
				log_kv(LOG_LEVEL_DEBUG, "retrying", "key", w->key, "error", why,
				    (char *)NULL);
			if (!nap(u, s3err_backoff_default_ms(tries - 1,
			    r->has_retry_after ? r->retry_after_ms : 0)))
				return OUT_HANDED_BACK;
			continue;
		}
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct uploader *u = w->u;

	for (;;) {
		pthread_mutex_lock(&u->mu);
		while (atomic_load(&w->state) != W_BUSY && !atomic_load(&u->quit))
			pthread_cond_wait(&w->cv, &u->mu);
		pthread_mutex_unlock(&u->mu);
		if (atomic_load(&w->state) != W_BUSY)
			break;
		w->outcome = deliver(w);
		/* seq_cst: half of the Dekker pairs with the dispatcher's two
		 * sleeps (wait_for_worker and ring_consumer_wait_or): it sees
		 * W_DONE, or we see it asleep and wake it. */
		atomic_store(&w->state, W_DONE);
		atomic_fetch_add(&u->done_seq, 1);
		if (atomic_load(&u->disp_waiting))
			(void)futex_wake(&u->done_seq, 1);
		ring_wake_consumer(&u->ring);
	}
	return NULL;
}

/* ----------------------------------------------------------- dispatcher */

static bool
any_done(void *arg)
{
	struct uploader *u = arg;

	for (unsigned i = 0; i < u->nworkers; i++)
		if (atomic_load(&u->w[i].state) == W_DONE)
			return true;
	return false;
}

/* Collects finished workers. Returns how many are busy still. */
static unsigned
reap(struct uploader *u)
{
	unsigned busy = 0;

	for (unsigned i = 0; i < u->nworkers; i++) {
		struct worker *w = &u->w[i];
		int st = atomic_load(&w->state);

		if (st == W_BUSY) {
			busy++;
			continue;
		}
		if (st != W_DONE)
			continue;
		/* A handed-back record stays CLAIMED: head stops before it, and
		 * the next start delivers it again. */
		if (w->outcome != OUT_HANDED_BACK)
			inflight_done(&u->journal.table, (uint32_t)w->slot);
		else
			u->handed_back++;
		atomic_store(&w->state, W_IDLE);
	}
	atomic_store_explicit(&u->ring.hdr->in_flight, busy, memory_order_relaxed);
	return busy;
}

static void
release(struct uploader *u)
{
	uint64_t head = inflight_release(&u->journal.table,
	    ring_consumer_floor(&u->cons));

	journal_release(&u->journal, &u->ring, head);
	/* Give back the pages of released records in steps of 1 MiB (1/16 of
	 * a smaller ring): one madvise per step, a page fault per page when
	 * the next lap comes round. */
	if (u->dropped_upto == 0 || u->dropped_upto > head)
		u->dropped_upto = head;
	if (head - u->dropped_upto >= u->drop_step) {
		ring_drop_pages(&u->ring, u->dropped_upto, head);
		u->dropped_upto = head;
	}
}

/* Sleeps until a worker finishes, or until deadline (at most 50 ms). The
 * ring may hold data meanwhile: there is no one to give it to. */
static void
wait_for_worker(struct uploader *u, uint64_t deadline)
{
	uint32_t seq = atomic_load(&u->done_seq);

	/* Dekker with worker_main(): announce the sleep, then look. */
	atomic_store(&u->disp_waiting, 1);
	if (!any_done(u))
		(void)futex_wait(&u->done_seq, seq, deadline);
	atomic_store(&u->disp_waiting, 0);
}

static struct worker *
idle_worker(struct uploader *u)
{
	for (unsigned i = 0; i < u->nworkers; i++)
		if (atomic_load(&u->w[i].state) == W_IDLE)
			return &u->w[i];
	return NULL;
}

static void
dispatch(struct uploader *u, struct worker *w)
{
	int idx = inflight_push(&u->journal.table, w->msg.pos, w->msg.end);

	w->slot = idx; /* the caller checked that the table has room */
	pthread_mutex_lock(&u->mu);
	atomic_store(&w->state, W_BUSY);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&u->mu);
}

static void status(struct uploader *u, const char *state);

/* Once a second: is the object we map still the one the ring's name points
 * to? If it was removed or replaced (to resize it, say), mark it retired,
 * so every put into it fails from now on, and finish what it holds; the
 * loop then stops and the uploader starts again on the new ring. */
static void
check_identity(struct uploader *u, uint64_t now)
{
	int id;

	if (u->retiring || now < u->next_identity)
		return;
	u->next_identity = now + SEC;
	id = ring_identity(&u->ring);
	if (id != RING_REMOVED && id != RING_REPLACED)
		return;
	ring_retire(&u->ring);
	u->retiring = true;
	u->retire_deadline = now + (uint64_t)u->cfg->stop_timeout_s * SEC;
	log_kv(LOG_LEVEL_WARN, id == RING_REMOVED ?
	    "the ring was removed: retiring it, finishing what it holds, then creating it again" :
	    "the ring was replaced: retiring the old one, finishing what it holds, then attaching to the new one",
	    "ring", u->ring.name, (char *)NULL);
}

/* True once a retiring ring holds nothing more for us: every committed
 * record read and uploaded, no producer still writing (or the stop timeout
 * is up, and what they still write is given up: their commits fail).
 * Records already committed are never given up, whatever the time: their
 * puts returned 0, and the old object goes away with us. */
static bool
retired_and_done(struct uploader *u, unsigned busy)
{
	uint64_t tail;

	if (!u->retiring)
		return false;
	tail = atomic_load_explicit(&u->ring.hdr->tail, memory_order_acquire);
	if (u->cons.cursor < tail || u->cons.nholes != 0) {
		uint64_t now = mono_ns();
		if (now < u->retire_deadline || now < u->next_give_up)
			return false;
		/* A walk over what is left, so once a second, not per record:
		 * a put that reserves after the retirement pads its record and
		 * fails, so writers left behind are rare. */
		u->next_give_up = now + SEC;
		unsigned n = ring_consumer_abandon_rest(&u->cons);
		if (n != 0)
			log_kv(LOG_LEVEL_WARN, "retired ring: gave up records still being written; their puts fail",
			    "records", n == 1 ? "1" : "several", (char *)NULL);
		/* What is left is committed: read and upload it first. */
		return false;
	}
	return busy == 0;
}

/* SIGHUP: loads the settings again (the same command line, the config
 * file and the environment, in the usual order), applies those that can
 * change at run time, and names those that need a restart. A file with an
 * error changes nothing. Runs in the dispatcher thread. */
static void
reload_config(struct uploader *u)
{
	char err[CONFIG_ERR_MAX], applied[512], restart[512];
	struct config *fresh;
	enum log_level lv;

	if (u->live->config_file[0] == '\0') {
		log_kv(LOG_LEVEL_INFO, "SIGHUP: no --config file to re-read", (char *)NULL);
		return;
	}
	fresh = malloc(sizeof(*fresh));
	if (fresh == NULL) {
		log_kv(LOG_LEVEL_ERROR, "SIGHUP: out of memory; settings unchanged", (char *)NULL);
		return;
	}
	if (config_load(fresh, u->live->argc, u->live->argv, err, sizeof(err)) != 0) {
		log_kv(LOG_LEVEL_ERROR, "SIGHUP: the configuration has an error; running on with the previous settings",
		    "file", u->live->config_file, "error", err, (char *)NULL);
		free(fresh);
		return;
	}
	config_reload_diff(u->live, fresh, applied, restart, sizeof(applied));
	pthread_rwlock_wrlock(&u->cfg_lock);
	config_apply_runtime(u->live, fresh);
	pthread_rwlock_unlock(&u->cfg_lock);
	if (log_parse_level(u->live->log_level, &lv) == 0)
		log_set_level(lv);
	log_kv(LOG_LEVEL_INFO, "SIGHUP: configuration re-read", "file", u->live->config_file,
	    "applied", applied[0] ? applied : "none",
	    "needs_restart", restart[0] ? restart : "none", (char *)NULL);
	if (restart[0] != '\0')
		log_kv(LOG_LEVEL_WARN, "SIGHUP: some changed settings take effect only after a restart",
		    "settings", restart, (char *)NULL);
	free(fresh);
}

/* What must happen however busy or stuck the rest is: the heartbeat in the
 * ring (shmstat's liveness), systemd's watchdog, and the STATUS line. Every
 * loop that can last, the bucket check and the drain included, calls it. */
static void
tick(struct uploader *u, const char *state)
{
	uint64_t now = mono_ns();
	struct ring_header *h = u->ring.hdr;

	check_identity(u, now);
	if (ring_mapping_lost(&u->ring) && !got_stop) {
		/* Another process truncated the ring to below its header:
		 * its contents are gone, and so is anything shmstat could see.
		 * Stop (exit 1); a restart reports the ring as corrupt until
		 * it is removed or recreated. */
		log_kv(LOG_LEVEL_ERROR, "the ring was truncated by another process; its messages are lost; stopping",
		    "ring", u->ring.name, (char *)NULL);
		u->lost = true;
		got_stop = 1;
	}
	atomic_store_explicit(&h->heartbeat_realtime_ns, realtime_ns(),
	    memory_order_relaxed);
	if (now - atomic_load_explicit(&h->upstats.heartbeat_mono_ns,
	    memory_order_relaxed) >= 100 * MS)
		atomic_store_explicit(&h->upstats.heartbeat_mono_ns, now,
		    memory_order_relaxed);
	/* Restored every tick, in case something scribbled over them:
	 * shmstat judges liveness by pid and start time. */
	atomic_store_explicit(&h->uploader_pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&h->uploader_start_time, u->start_time, memory_order_relaxed);
	if (u->wd_us != 0 && now >= u->next_wd) {
		(void)notify_send("WATCHDOG=1");
		u->next_wd = now + u->wd_us * 1000 / 2;
	}
	{
		struct health_line line = { .what = HEALTH_QUIET };

		pthread_mutex_lock(&u->health_mu);
		(void)health_tick(&u->health, now, &line);
		pthread_mutex_unlock(&u->health_mu);
		log_health(&line);
	}
	if (now >= u->next_status) {
		status(u, state);
		u->next_status = now + 10 * SEC;
	}
	if (got_reload) {
		int rc;

		got_reload = 0;
		reload_config(u);
		if (uploader_open_log(u->cfg) < 0)
			log_kv(LOG_LEVEL_ERROR, "SIGHUP: cannot reopen the log file",
			    "file", u->cfg->log_file, "error", strerror(errno), (char *)NULL);
		rc = creds_reload(u->creds, true);
		log_kv(LOG_LEVEL_INFO, "SIGHUP: credentials re-read", "changed",
		    rc == 1 ? "yes" : rc == 0 ? "no" : rc == 2 ? "refreshing" : "error",
		    (char *)NULL);
	}
}

/* HEAD bucket, until it works or the uploader is told to stop. Transient
 * failures back off; configuration errors raise the alarm and re-check
 * every recheck interval. The heartbeat goes on meanwhile. */
static bool
check_bucket(struct uploader *u)
{
	unsigned attempt = 0;
	char why[512];

	for (;;) {
		const struct s3_response *r;
		uint64_t wait_ms, until;
		int rc = s3_head_bucket(u->w[0].s3);

		if (rc == 0) {
			clear_alarm(u, RING_UPLOADER_CONFIG_ALARM, "configuration");
			return true;
		}
		r = s3_response(u->w[0].s3);
		if (rc == -EIO && is_region_error(r)) {
			if (follow_region(u, r, s3_region(u->w[0].s3))) {
				adopt_region(u, u->w[0].s3, &u->w[0].region_gen);
				continue;
			}
			describe(r, why, sizeof(why));
			note_failure(u, why);
			raise_alarm(u, RING_UPLOADER_CONFIG_ALARM, "configuration", why);
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
				describe(r, why, sizeof(why));
			log_kv(LOG_LEVEL_WARN, "the bucket check (HEAD) was refused; "
			    "going on, the uploads will tell whether writing is allowed",
			    "bucket", u->cfg->bucket, "error", why, (char *)NULL);
			return true;
		}
		if (rc == -EIO && r->error.code[0] == '\0' && r->status == 404)
			snprintf(why, sizeof(why), "NoSuchBucket: bucket %s does not exist (HTTP 404 on HEAD)",
			    u->cfg->bucket);
		else if (rc == -EIO)
			describe(r, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", strerror(-rc));
		/* An uploader stuck here fails every upload too: the outage
		 * log, last_error and failing_since say so. */
		note_failure(u, why);
		if (rc == -EIO && r->verdict.cls == S3ERR_CONFIG) {
			raise_alarm(u, RING_UPLOADER_CONFIG_ALARM, "configuration", why);
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
			tick(u, "waiting for the bucket;");
			if (got_stop)
				return false;
			usleep(50000);
		}
	}
}

static void
status(struct uploader *u, const char *state)
{
	struct ring_header *h = u->ring.hdr;
	char buf[512];

	snprintf(buf, sizeof(buf), "STATUS=%s ring %s: %llu uploaded, %llu retried, %llu dead-lettered%s",
	    state, u->ring.name, (unsigned long long)atomic_load(&h->uploaded),
	    (unsigned long long)atomic_load(&h->retried),
	    (unsigned long long)atomic_load(&h->dead_lettered),
	    alarmed(u, RING_UPLOADER_CONFIG_ALARM) ? ", CONFIGURATION ALARM" : "");
	(void)notify_send(buf);
}

/* The main loop. Returns when told to stop. */
static void
run_loop(struct uploader *u)
{
	uint64_t next_creds = mono_ns() + 5 * SEC, next_expiry = 0;
	bool corrupt_logged = false;

	for (;;) {
		uint64_t now = mono_ns();
		struct worker *w;
		int rc;

		tick(u, "running;");
		if (now >= next_creds) {
			/* A rotated credentials file is picked up within seconds;
			 * the check is a stat(2) unless the file changed. */
			if (creds_reload(u->creds, false) == 1)
				log_kv(LOG_LEVEL_INFO, "credentials file changed, keys reloaded",
				    (char *)NULL);
			next_creds = now + 5 * SEC;
		}
		if (now >= next_expiry) {
			check_creds_expiry(u);
			next_expiry = now + SEC;
		}
		if (got_stop)
			return;

		unsigned busy = reap(u);
		release(u);
		if (retired_and_done(u, busy)) {
			u->reattach = true;
			return;
		}
		w = idle_worker(u);
		if (w == NULL || inflight_full(&u->journal.table) ||
		    alarmed(u, RING_UPLOADER_CONFIG_ALARM)) {
			wait_for_worker(u, now + 50 * MS);
			continue;
		}
		rc = ring_consume(&u->cons, &w->msg, w->buf, w->cap);
		if (rc == 1) {
			if (journal_was_done(&u->journal, w->msg.pos)) {
				/* Confirmed by the previous run: skip, keep order. */
				int idx = inflight_push(&u->journal.table, w->msg.pos, w->msg.end);
				inflight_done(&u->journal.table, (uint32_t)idx);
				continue;
			}
			dispatch(u, w);
			continue;
		}
		if (rc < 0) {
			if (!corrupt_logged)
				raise_alarm(u, RING_UPLOADER_CORRUPT_ALARM, "ring unreadable",
				    rc == -EFAULT ? "the shm object was truncated" :
				    "control words out of range");
			corrupt_logged = true;
			usleep(200000);
			continue;
		}
		if (corrupt_logged) {
			clear_alarm(u, RING_UPLOADER_CORRUPT_ALARM, "ring unreadable");
			corrupt_logged = false;
		}
		ring_consumer_wait_or(&u->cons, 0, any_done, u);
	}
}

/* SIGTERM: stop reading, let busy workers finish for up to stop_timeout,
 * then abandon what is left (it stays in the ring: handed back). */
static void
drain(struct uploader *u)
{
	uint64_t deadline = mono_ns() + (uint64_t)u->cfg->stop_timeout_s * SEC;
	unsigned busy;

	atomic_fetch_or(&u->ring.hdr->uploader_flags, RING_UPLOADER_DRAINING);
	(void)notify_send("STOPPING=1\nSTATUS=draining in-flight uploads");
	log_kv(LOG_LEVEL_INFO, "stopping: draining in-flight uploads", (char *)NULL);
	/* Retries and configuration re-checks would outlast any stop timeout:
	 * interrupt them now; transfers under way may finish until the
	 * deadline, and are aborted then. */
	pthread_mutex_lock(&u->mu);
	atomic_store(&u->stopping, true);
	pthread_cond_broadcast(&u->sleep_cv);
	pthread_mutex_unlock(&u->mu);
	while ((busy = reap(u)) > 0 && mono_ns() < deadline + SEC) {
		if (mono_ns() >= deadline)
			atomic_store(&u->stop_hard, true);
		release(u);
		tick(u, "draining;");
		wait_for_worker(u, mono_ns() + 50 * MS);
	}
	release(u);
	{
		char n[24];

		/* Handed back: records whose upload was under way or waiting
		 * for a retry; they stay in the ring for the next start. */
		snprintf(n, sizeof(n), "%u", u->handed_back + busy);
		log_kv(LOG_LEVEL_INFO, "stopped", "handed_back",
		    u->handed_back + busy ? n : "none", (char *)NULL);
	}
}

/* ---------------------------------------------------------- start, stop */

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

static int
make_clients(struct uploader *u)
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

static int
start_workers(struct uploader *u)
{
	u->nworkers = u->cfg->workers;
	u->w = calloc(u->nworkers, sizeof(*u->w));
	if (u->w == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < u->nworkers; i++) {
		struct worker *w = &u->w[i];
		w->u = u;
		w->id = i;
		w->cap = (size_t)u->ring.max_message + 1;
		w->buf = malloc(w->cap);
		w->s3 = s3_client_new(&u->s3cfg, u->creds);
		if (w->buf == NULL || w->s3 == NULL)
			return -ENOMEM;
		atomic_store(&w->state, W_IDLE);
		pthread_cond_init(&w->cv, NULL);
		if (pthread_create(&w->tid, NULL, worker_main, w) != 0)
			return -EAGAIN;
		w->started = true;
	}
	return 0;
}

static void
stop_workers(struct uploader *u, bool join)
{
	pthread_mutex_lock(&u->mu);
	atomic_store(&u->quit, true);
	atomic_store(&u->stopping, true);
	atomic_store(&u->stop_hard, true);
	for (unsigned i = 0; u->w != NULL && i < u->nworkers; i++)
		if (u->w[i].started)
			pthread_cond_signal(&u->w[i].cv);
	pthread_cond_broadcast(&u->sleep_cv);
	pthread_mutex_unlock(&u->mu);
	for (unsigned i = 0; u->w != NULL && i < u->nworkers; i++) {
		struct worker *w = &u->w[i];
		if (w->started && join && atomic_load(&w->state) != W_BUSY)
			pthread_join(w->tid, NULL);
		else if (w->started)
			pthread_detach(w->tid);
	}
}

static void
free_workers(struct uploader *u)
{
	for (unsigned i = 0; u->w != NULL && i < u->nworkers; i++) {
		s3_client_free(u->w[i].s3);
		free(u->w[i].buf);
	}
	free(u->w);
	u->w = NULL;
}

static int
uploader_init(struct uploader *u, const struct config *cfg)
{
	memset(u, 0, sizeof(*u));
	u->live = malloc(sizeof(*u->live));
	if (u->live == NULL)
		return -ENOMEM;
	memcpy(u->live, cfg, sizeof(*u->live));
	u->cfg = u->live;
	pthread_rwlock_init(&u->cfg_lock, NULL);
	pthread_mutex_init(&u->mu, NULL);
	pthread_mutex_init(&u->alarm_mu, NULL);
	pthread_mutex_init(&u->region_mu, NULL);
	pthread_mutex_init(&u->health_mu, NULL);
	health_init(&u->health);
	pthread_cond_init(&u->sleep_cv, NULL);
	u->ring.fd = -1;
	return 0;
}

int
uploader_run(const struct config *cfg)
{
	struct uploader u;
	struct ring_header *h;
	char err[512];
	bool clean_exit = false, keep_live = false;
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
	if (make_clients(&u) < 0) {
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
	if (start_workers(&u) < 0) {
		fprintf(stderr, "s3ring-uploader: cannot start %u workers: out of memory or threads\n",
		    cfg->workers);
		goto out_workers;
	}

	u.start_time = proc_start_time(getpid());
	/* shmstat's evidence that we live, whatever its PID namespace. */
	if (ring_uploader_lock(&u.ring) < 0)
		log_kv(LOG_LEVEL_WARN, "cannot lock the ring's uploader line; shmstat in another PID namespace will judge us by pid",
		    "error", strerror(errno), (char *)NULL);
	atomic_store(&h->uploader_pid, (uint32_t)getpid());
	atomic_store(&h->uploader_start_time, u.start_time);
	atomic_store(&h->uploader_epoch, u.epoch);
	atomic_store(&h->uploader_workers, u.nworkers);
	atomic_store(&h->uploader_flags, 0);
	/* A new process starts with a clean slate: the last error and the
	 * outage state of a previous one would be stale. */
	pthread_mutex_lock(&u.alarm_mu);
	memset(h->last_error, 0, sizeof(h->last_error));
	atomic_store(&h->last_error_realtime_ns, 0);
	pthread_mutex_unlock(&u.alarm_mu);
	atomic_store(&h->upstats.failing_since_realtime_ns, 0);
	u.wd_us = notify_watchdog_usec();
	signals_for_main_only(SIG_UNBLOCK);
	tick(&u, "starting;");
	ring_consumer_init(&u.cons, &u.ring, u.journal.redelivered_from);
	log_kv(LOG_LEVEL_INFO, "started", "ring", u.ring.name, "bucket", cfg->bucket,
	    "endpoint", u.endpoint[0] ? u.endpoint : "aws", "region", u.region,
	    "credentials", creds_source(u.creds), "spool", u.spool, (char *)NULL);
	(void)notify_send("READY=1\nSTATUS=checking the bucket");

	if (check_bucket(&u))
		run_loop(&u);
	drain(&u);
	/* No heartbeat from here on: producers check at once, not after a
	 * second, whether a removed ring is left without a reader. */
	if (!u.lost)
		atomic_store_explicit(&h->upstats.heartbeat_mono_ns, 0, memory_order_relaxed);
	clean_exit = true;
	rc = u.lost ? UPLOADER_EXIT_FAIL : u.reattach ? UPLOADER_EXIT_REATTACH : 0;
	/* The pid stays, so shmstat can tell "stopped" (pid dead) from
	 * "never ran"; the heartbeat stops. */
out_workers:
	stop_workers(&u, clean_exit);
	if (clean_exit && reap(&u) == 0)
		free_workers(&u);
	else if (u.w != NULL)
		keep_live = true; /* detached workers may still read it */
out_journal:
	journal_close(&u.journal);
out_ring:
	ring_close(&u.ring);
out_creds:
	creds_free(u.creds);
out:
	s3_global_cleanup();
	if (!keep_live)
		free(u.live);
	return rc;
}

/* ---------------------------------------------------------------- replay */

int
uploader_replay(const struct config *cfg)
{
	struct uploader u;
	struct s3_client *s3 = NULL;
	DIR *d;
	struct dirent *de;
	unsigned sent = 0, failed = 0;
	uint8_t *buf = NULL;
	size_t cap = (size_t)RING_MAX_CAPACITY / 8 + 4096;
	struct objopts_headers *hdrs = NULL;

	if (uploader_init(&u, cfg) < 0)
		return 1;
	cfg = u.cfg;
	if (s3_global_init() != 0 || make_clients(&u) < 0) {
		free(u.live);
		return 1;
	}
	s3 = s3_client_new(&u.s3cfg, u.creds);
	buf = malloc(cap);
	hdrs = malloc(sizeof(*hdrs));
	d = opendir(cfg->replay);
	if (s3 == NULL || buf == NULL || hdrs == NULL || d == NULL) {
		fprintf(stderr, "s3ring-uploader: replay %s: %s\n", cfg->replay, strerror(errno));
		failed = 1;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		struct spool_msg m;
		char path[4096 + 256], key[KEY_BUF], why[512];
		size_t n = strlen(de->d_name), len = 0;
		ssize_t got;
		int fd, rc = -1;

		if (de->d_name[0] == '.' || n <= strlen(SPOOL_SUFFIX) ||
		    strcmp(de->d_name + n - strlen(SPOOL_SUFFIX), SPOOL_SUFFIX) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", cfg->replay, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			while ((got = read(fd, buf + len, cap - len)) > 0)
				len += (size_t)got;
			close(fd);
		}
		if (fd < 0 || len == cap || spool_parse(buf, len, &m) != 0) {
			fprintf(stderr, "s3ring-uploader: %s: not a readable spool file, kept\n", path);
			failed++;
			continue;
		}
		snprintf(key, sizeof(key), "%s%.*s", cfg->key_prefix, (int)m.key_len, m.key);
		if (objopts_headers(cfg->obj, cfg->nobj, m.key, hdrs) < 0) {
			fprintf(stderr, "s3ring-uploader: %s: the object options do not fit a request, kept\n",
			    path);
			failed++;
			continue;
		}
		for (unsigned attempt = 0; attempt < cfg->max_attempts; attempt++) {
			rc = s3_prepare_put_headers(s3, key, m.body, m.body_len,
			    crc32c(0, m.body, m.body_len), hdrs->h, hdrs->n);
			if (rc == 0)
				rc = s3_perform(s3);
			if (rc == 0 || rc != -EIO ||
			    s3_response(s3)->verdict.cls != S3ERR_TRANSIENT)
				break;
			usleep((useconds_t)s3err_backoff_default_ms(attempt, 0) * 1000);
		}
		if (rc == 0) {
			unlink(path);
			sent++;
		} else {
			if (rc == -EIO)
				describe(s3_response(s3), why, sizeof(why));
			else
				snprintf(why, sizeof(why), "%s", strerror(-rc));
			fprintf(stderr, "s3ring-uploader: %s: %s, kept\n", path, why);
			failed++;
		}
	}
	closedir(d);
	log_kv(LOG_LEVEL_INFO, "replay finished", "dir", cfg->replay, (char *)NULL);
	printf("replayed %u, failed %u\n", sent, failed);
out:
	free(hdrs);
	free(buf);
	s3_client_free(s3);
	creds_free(u.creds);
	s3_global_cleanup();
	free(u.live);
	return failed ? 1 : 0;
}
