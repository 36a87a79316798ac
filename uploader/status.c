/* status.c -- what the uploader tells the world: the alarms and last
 * error in the ring header, the outage log, the heartbeat, systemd's
 * watchdog and STATUS, and SIGHUP's reload. */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "futex.h"
#include "log.h"
#include "notify.h"
#include "uploader.h"

static void
set_last_error(struct uploader *u, const char *text)
{
	struct ring_header *h = u->ring.hdr;
	char buf[RING_ERRMSG_LEN];

	snprintf(buf, sizeof(buf), "%s", text);
	memcpy(h->last_error, buf, sizeof(buf));
	atomic_store_explicit(&h->last_error_realtime_ns, realtime_ns(), memory_order_release);
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
void
status_note_failure(struct uploader *u, const char *why)
{
	struct ring_upstats *st = &u->ring.hdr->upstats;
	struct health_line line = { .what = HEALTH_QUIET };
	uint64_t zero = 0;

	(void)health_failure(&u->health, mono_ns(), why, &line);
	atomic_compare_exchange_strong_explicit(&st->failing_since_realtime_ns,
	    &zero, realtime_ns(), memory_order_relaxed, memory_order_relaxed);
	set_last_error(u, why);
	log_health(&line);
}

void
status_note_success(struct uploader *u)
{
	struct ring_upstats *st = &u->ring.hdr->upstats;
	struct health_line line = { .what = HEALTH_QUIET };

	atomic_store_explicit(&st->failing_since_realtime_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&st->last_success_realtime_ns, realtime_ns(),
	    memory_order_relaxed);
	(void)health_success(&u->health, mono_ns(), &line);
	log_health(&line);
}

/* Counts one attempt's latency and, if it failed, its error class. */
void
status_note_attempt(struct uploader *u, uint64_t t0, const struct s3_response *r, bool ok)
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

void
status_raise(struct uploader *u, unsigned flag, const char *what, const char *detail)
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

void
status_clear(struct uploader *u, unsigned flag, const char *what)
{
	unsigned old = atomic_fetch_and(&u->ring.hdr->uploader_flags, ~flag);

	if (old & flag)
		log_kv(LOG_LEVEL_INFO, "alarm cleared, consuming again", "alarm", what,
		    (char *)NULL);
}

bool
status_alarmed(const struct uploader *u, unsigned flag)
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
			status_raise(u, RING_UPLOADER_CONFIG_ALARM, "configuration", why);
		u->creds_alarm = true;
	} else if (u->creds_alarm) {
		u->creds_alarm = false;
		status_clear(u, RING_UPLOADER_CONFIG_ALARM, "configuration");
	}
}

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
	if (!batch_rules_fit(u, fresh)) {
		log_kv(LOG_LEVEL_ERROR, "SIGHUP: a batch rule does not fit the ring; running on with the previous settings",
		    "file", u->live->config_file, (char *)NULL);
		free(fresh);
		return;
	}
	/* The open batches were gathered under the old rules: they close
	 * under them, whether or not the rules changed, before the new ones
	 * apply. While a flush is not free, the reload waits. */
	if (!batch_close_all(u)) {
		if (u->reload_again_ns == 0)
			log_kv(LOG_LEVEL_WARN, "SIGHUP: batches are still open (every batch flush is busy); the reload waits for them",
			    (char *)NULL);
		u->reload_again_ns = mono_ns() + 100 * MS;
		free(fresh);
		return;
	}
	u->reload_again_ns = 0;
	config_reload_diff(u->live, fresh, applied, restart, sizeof(applied));
	config_apply_runtime(u->live, fresh);
	batch_reload(u);
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
void
status_tick(struct uploader *u, const char *state)
{
	uint64_t now = mono_ns();
	struct ring_header *h = u->ring.hdr;

	check_identity(u, now);
	if (now >= u->next_creds) {
		/* A rotated credentials file is picked up within seconds; the
		 * check is a stat(2) unless the file changed. */
		if (u->next_creds != 0 && creds_reload(u->creds, false) == 1)
			log_kv(LOG_LEVEL_INFO, "credentials file changed, keys reloaded",
			    (char *)NULL);
		u->next_creds = now + 5 * SEC;
	}
	if (now >= u->next_expiry) {
		check_creds_expiry(u);
		u->next_expiry = now + SEC;
	}
	if (ring_mapping_lost(&u->ring) && !uploader_got_stop) {
		/* Another process truncated the ring to below its header:
		 * its contents are gone, and so is anything shmstat could see.
		 * Stop (exit 1); a restart reports the ring as corrupt until
		 * it is removed or recreated. */
		log_kv(LOG_LEVEL_ERROR, "the ring was truncated by another process; its messages are lost; stopping",
		    "ring", u->ring.name, (char *)NULL);
		u->lost = true;
		uploader_got_stop = 1;
	}
	atomic_store_explicit(&h->heartbeat_realtime_ns, realtime_ns(),
	    memory_order_relaxed);
	if (now - atomic_load_explicit(&h->upstats.heartbeat_mono_ns,
	    memory_order_relaxed) >= 100 * MS)
		atomic_store_explicit(&h->upstats.heartbeat_mono_ns, now,
		    memory_order_relaxed);
	/* Restored every tick, in case something scribbled over them:
	 * shmstat judges liveness by pid and start time. */
	atomic_store_explicit(&h->uploader_pid, u->pid, memory_order_relaxed);
	atomic_store_explicit(&h->uploader_start_time, u->start_time, memory_order_relaxed);
	if (u->wd_us != 0 && now >= u->next_wd) {
		(void)notify_send("WATCHDOG=1");
		u->next_wd = now + u->wd_us * 1000 / 2;
	}
	{
		struct health_line line = { .what = HEALTH_QUIET };

		(void)health_tick(&u->health, now, &line);
		log_health(&line);
	}
	if (now >= u->next_status) {
		status_notify(u, state);
		u->next_status = now + 10 * SEC;
	}
	if (u->reload_again_ns != 0 && now >= u->reload_again_ns && !uploader_got_reload)
		reload_config(u);
	if (uploader_got_reload) {
		int rc;

		uploader_got_reload = 0;
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

void
status_notify(struct uploader *u, const char *state)
{
	struct ring_header *h = u->ring.hdr;
	char buf[512];

	snprintf(buf, sizeof(buf), "STATUS=%s ring %s: %llu uploaded, %llu retried, %llu dead-lettered%s",
	    state, u->ring.name, (unsigned long long)atomic_load(&h->uploaded),
	    (unsigned long long)atomic_load(&h->retried),
	    (unsigned long long)atomic_load(&h->dead_lettered),
	    status_alarmed(u, RING_UPLOADER_CONFIG_ALARM) ? ", CONFIGURATION ALARM" : "");
	(void)notify_send(buf);
}

/* The adaptive limit, for shmstat. */
void
status_publish_limit(struct uploader *u)
{
	atomic_store_explicit(&u->ring.hdr->upstats.concurrency_limit,
	    (uint32_t)u->limit, memory_order_relaxed);
}
