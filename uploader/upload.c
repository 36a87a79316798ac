/* upload.c -- one upload's state machine, from a record read to DONE.
 *
 *   begin --> attempt --> RUNNING --finished--> decide (retry.c)
 *                ^                                 |
 *                |      UPLOADED, CORRUPT, spooled: done (inflight DONE)
 *                |      AGAIN, PAUSE: WAITING until due_ns
 *                +------ resume <-- WAITING        HAND_BACK: stays CLAIMED
 *
 * A record is marked DONE only after S3 confirmed it, after it was written
 * to the dead-letter spool, or when its bytes in the ring no longer match
 * their CRC (a corrupt record: counted). Handed back, it stays CLAIMED in
 * the journal, so head stops before it and the next start uploads it.
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "futex.h"
#include "sigv4.h"
#include "log.h"
#include "spool.h"

static void attempt(struct uploader *u, struct upload *up);

int
upload_engine_init(struct uploader *u)
{
	u->nup = u->cfg->workers;
	u->up = calloc(u->nup, sizeof(*u->up));
	u->hdrs = malloc(sizeof(*u->hdrs));
	u->signer = sigv4_signer_new();
	if (u->signer == NULL)
		return -ENOMEM;
	u->s3cfg.signer = u->signer;
	u->multi = s3_multi_new(u->nup);
	u->probe = s3_client_new(&u->s3cfg, u->creds);
	u->sync_s3 = s3_client_new(&u->s3cfg, u->creds);
	if (u->up == NULL || u->hdrs == NULL || u->multi == NULL || u->probe == NULL ||
	    u->sync_s3 == NULL)
		return -ENOMEM;
	/* Clients are made on first use: an uploader allowed 4,096 uploads
	 * in flight that never needs more than 10 has 10. */
	for (unsigned i = u->nup; i-- > 0;) {
		u->up[i].kind = XFER_UPLOAD;
		u->up[i].next = u->free_list;
		u->free_list = &u->up[i];
	}
	u->limit = u->nup;
	status_publish_limit(u);
	return 0;
}

void
upload_engine_free(struct uploader *u)
{
	for (unsigned i = 0; u->up != NULL && i < u->nup; i++) {
		if (u->up[i].state == UP_RUNNING)
			s3_multi_cancel(u->multi, u->up[i].s3);
		s3_client_free(u->up[i].s3);
		free(u->up[i].reason);
	}
	if (u->probe_running)
		s3_multi_cancel(u->multi, u->probe);
	s3_client_free(u->probe);
	s3_client_free(u->sync_s3);
	s3_multi_free(u->multi);
	sigv4_signer_free(u->signer);
	u->signer = NULL;
	u->s3cfg.signer = NULL;
	free(u->up);
	free(u->hdrs);
	u->up = NULL;
	u->multi = NULL;
	u->probe = NULL;
	u->sync_s3 = NULL;
}

static void
set_state(struct uploader *u, struct upload *up, enum upload_state st)
{
	if (up->state == UP_FREE)
		u->busy++;
	else if (up->state == UP_RUNNING)
		u->running--;
	else if (up->state == UP_WAITING)
		u->waiting--;
	else if (up->state == UP_HASHING)
		u->hashing--;
	if (st == UP_FREE)
		u->busy--;
	else if (st == UP_RUNNING)
		u->running++;
	else if (st == UP_WAITING)
		u->waiting++;
	else if (st == UP_HASHING)
		u->hashing++;
	up->state = st;
}

/* The record is finished with: done (DONE in the journal) or handed back. */
static void
finish(struct uploader *u, struct upload *up, bool done)
{
	if (done)
		inflight_done(&u->journal.table, (uint32_t)up->slot);
	else
		u->handed_back++;
	free(up->reason);
	up->reason = NULL;
	up->spooling = false;
	up->awaiting_probe = false;
	set_state(u, up, UP_FREE);
	up->next = u->free_list;
	u->free_list = up;
}

static void
wait_until(struct uploader *u, struct upload *up, uint64_t delay_ms)
{
	up->due_ns = mono_ns() + delay_ms * MS;
	if (u->next_due_ns == 0 || up->due_ns < u->next_due_ns)
		u->next_due_ns = up->due_ns;
	set_state(u, up, UP_WAITING);
}

/* Writes the message to the spool; if the spool is unusable, raises its
 * alarm and tries again in 5 s (the record stays in the ring meanwhile). */
static void
dead_letter(struct uploader *u, struct upload *up, const char *reason)
{
	char hint[64];
	int rc;

	snprintf(hint, sizeof(hint), "%llu-%llu", (unsigned long long)u->epoch,
	    (unsigned long long)up->m.pos);
	rc = spool_write(u->spool, hint, up->m.key, up->m.key_len, up->m.body,
	    up->m.body_len, reason, up->rs.tries);
	if (rc < 0) {
		status_raise(u, RING_UPLOADER_SPOOL_ALARM, "dead-letter spool unusable",
		    strerror(-rc));
		if (up->reason == NULL)
			up->reason = strdup(reason);
		up->spooling = true;
		wait_until(u, up, 5000);
		return;
	}
	status_clear(u, RING_UPLOADER_SPOOL_ALARM, "dead-letter spool unusable");
	atomic_fetch_add_explicit(&u->ring.hdr->dead_lettered, 1, memory_order_relaxed);
	log_kv(LOG_LEVEL_WARN, "message dead-lettered", "key", up->key,
	    "reason", reason, "spool", u->spool, (char *)NULL);
	finish(u, up, true);
}

void
upload_begin(struct uploader *u, struct upload *up)
{
	int idx;

	up->m.key = up->key;
	if (journal_was_done(&u->journal, up->m.pos)) {
		/* Confirmed by the previous run: skip it, keep the order. */
		idx = inflight_push(&u->journal.table, up->m.pos, up->m.end);
		inflight_done(&u->journal.table, (uint32_t)idx);
		up->next = u->free_list;
		u->free_list = up;
		return;
	}
	/* The caller checked that the table has room. */
	up->slot = inflight_push(&u->journal.table, up->m.pos, up->m.end);
	memset(&up->rs, 0, sizeof(up->rs));
	up->hashed = false;
	set_state(u, up, UP_WAITING);
	if (!up->m.body_checked &&
	    crc32c(0, up->m.body, up->m.body_len) != up->m.body_crc) {
		/* Left unchecked for batch mode (batch_leaves_body()), but
		 * going alone: checked now, as the consumer would have. */
		atomic_fetch_add_explicit(&u->ring.hdr->corrupt, 1, memory_order_relaxed);
		(void)ring_give_up(&u->ring, &up->m);
		log_kv(LOG_LEVEL_ERROR, "record does not match its CRC in the ring; counted corrupt, not uploaded",
		    "key", up->key, (char *)NULL);
		finish(u, up, true);
		return;
	}
	if (!ring_key_valid(up->m.key, up->m.key_len)) {
		dead_letter(u, up, "InvalidKey: not a valid S3 key");
		return;
	}
	if (multipart_wanted(u, up)) {
		int n = snprintf(u->keybuf, sizeof(u->keybuf), "%s%s", u->cfg->key_prefix,
		    up->key);

		if (n > 0 && (size_t)n <= S3_KEY_MAX && multipart_begin(u, up, u->keybuf))
			return;
	}
	attempt(u, up);
}


static void
decide(struct uploader *u, struct upload *up, int rc, const struct s3_response *r);

/* From this size on, a body signed over http is hashed on the hasher's
 * thread: 1 MiB is 0.75 ms of SHA-256 at 1.35 GB/s, which the loop would
 * otherwise spend with every other transfer waiting. */
#define HASH_OFFLOAD_MIN (1u << 20)

static void *
hasher_main(void *arg)
{
	struct uploader *u = arg;

	pthread_mutex_lock(&u->hmu);
	for (;;) {
		struct upload *up;

		while (u->hq == NULL && !u->hquit)
			pthread_cond_wait(&u->hcv, &u->hmu);
		if (u->hquit)
			break;
		up = u->hq;
		u->hq = up->hnext;
		if (u->hq == NULL)
			u->hq_tail = &u->hq;
		pthread_mutex_unlock(&u->hmu);
		/* The body is in the ring, reserved until the record is done;
		 * only this thread writes sha256 while it is UP_HASHING. */
		if (sigv4_sha256_hex(up->m.body, up->m.body_len, up->sha256) < 0)
			up->sha256[0] = '\0';
		pthread_mutex_lock(&u->hmu);
		up->hnext = u->hdone;
		u->hdone = up;
		s3_multi_wakeup(u->multi);
	}
	pthread_mutex_unlock(&u->hmu);
	return NULL;
}

int
upload_start_hasher(struct uploader *u)
{
	int rc;

	pthread_mutex_init(&u->hmu, NULL);
	pthread_cond_init(&u->hcv, NULL);
	u->hq = NULL;
	u->hq_tail = &u->hq;
	u->hdone = NULL;
	u->hquit = false;
	rc = engine_spawn(&u->hasher, hasher_main, u);
	if (rc < 0)
		return rc;
	u->hasher_started = true;
	return 0;
}

/* Joins the hasher. What it had not hashed yet stays UP_HASHING, for the
 * caller to hand back. */
void
upload_stop_hasher(struct uploader *u)
{
	if (!u->hasher_started)
		return;
	pthread_mutex_lock(&u->hmu);
	u->hquit = true;
	pthread_cond_signal(&u->hcv);
	pthread_mutex_unlock(&u->hmu);
	pthread_join(u->hasher, NULL);
	u->hasher_started = false;
}

void
upload_hashed(struct uploader *u)
{
	struct upload *list;

	if (u->hashing == 0)
		return;
	pthread_mutex_lock(&u->hmu);
	list = u->hdone;
	u->hdone = NULL;
	pthread_mutex_unlock(&u->hmu);
	while (list != NULL) {
		struct upload *up = list;

		list = up->hnext;
		set_state(u, up, UP_WAITING);
		up->hashed = up->sha256[0] != '\0';
		if (u->stopping)
			finish(u, up, false);
		else
			attempt(u, up);
	}
}

/* One request for the record: prepare (sign) and start it. */
static void
attempt(struct uploader *u, struct upload *up)
{
	const struct config *cfg = u->cfg;
	int n, rc;

	if (up->s3 == NULL) {
		up->s3 = s3_client_new(&u->s3cfg, u->creds);
		if (up->s3 == NULL) {
			/* Out of memory: try again in a second. */
			log_kv(LOG_LEVEL_ERROR, "cannot make an S3 client; retrying",
			    "error", strerror(errno), (char *)NULL);
			wait_until(u, up, 1000);
			return;
		}
		up->region_gen = 0;
	}
	/* The key and the object options follow SIGHUP: prefix rules match
	 * the key as the producer put it. */
	n = snprintf(u->keybuf, sizeof(u->keybuf), "%s%s", cfg->key_prefix, up->key);
	if (n < 0 || (size_t)n > S3_KEY_MAX) {
		dead_letter(u, up, "KeyTooLongError: key-prefix + key over 1024 bytes");
		return;
	}
	if (objopts_headers(cfg->obj, cfg->nobj, up->key, u->hdrs) < 0) {
		dead_letter(u, up, "InvalidArgument: the object options do not fit a request");
		return;
	}
	if (!up->hashed && up->m.body_len >= HASH_OFFLOAD_MIN && u->hasher_started &&
	    s3_signs_payload(up->s3)) {
		/* Hashed on the hasher's thread; the request starts when it
		 * comes back (upload_hashed). */
		set_state(u, up, UP_HASHING);
		pthread_mutex_lock(&u->hmu);
		up->hnext = NULL;
		*u->hq_tail = up;
		u->hq_tail = &up->hnext;
		pthread_cond_signal(&u->hcv);
		pthread_mutex_unlock(&u->hmu);
		return;
	}
	upload_adopt_region(u, up->s3, &up->region_gen);
	up->t0 = mono_ns();
	if (up->hashed)
		rc = s3_prepare_put_hashed(up->s3, u->keybuf, up->m.body, up->m.body_len,
		    up->m.body_crc, u->hdrs->h, u->hdrs->n, up->sha256);
	else
		rc = s3_prepare_put_headers(up->s3, u->keybuf, up->m.body, up->m.body_len,
		    up->m.body_crc, u->hdrs->h, u->hdrs->n);
	if (rc == 0)
		rc = s3_multi_start(u->multi, up->s3, up);
	if (rc < 0) {
		decide(u, up, rc, s3_response(up->s3));
		return;
	}
	set_state(u, up, UP_RUNNING);
}

/* A HEAD of the bucket, started when a failure needs to know whether the
 * service works; one a second at most, whose answer stands for that
 * second. Then a failure of this message is its own, not an outage's. */
static bool
start_probe(struct uploader *u, uint64_t now)
{
	if (u->probe_running)
		return true;
	if (now - u->last_probe_ns < SEC)
		return false;
	u->last_probe_ns = now;
	if (s3_prepare_head_bucket(u->probe) < 0 ||
	    s3_multi_start(u->multi, u->probe, NULL) < 0)
		return false;
	u->probe_running = true;
	return true;
}

void
upload_probe_finished(struct uploader *u, int rc)
{
	u->probe_running = false;
	u->probe_answered_ns = mono_ns();
	u->last_probe_ok = health_probe_answered(rc, s3_response(u->probe)->status);
	/* The failures that waited for this answer are decided now. */
	for (unsigned i = 0; i < u->nup; i++) {
		struct upload *up = &u->up[i];

		if (up->state == UP_WAITING && up->awaiting_probe) {
			up->awaiting_probe = false;
			decide(u, up, -EIO, s3_response(up->s3));
		}
	}
}

static int
probe_fact(const struct uploader *u, uint64_t now)
{
	if (u->probe_answered_ns == 0 || now - u->probe_answered_ns > SEC)
		return -1;
	return u->last_probe_ok ? 1 : 0;
}

/* Additive increase: one more upload in flight per window of successes. */
static void
grow_limit(struct uploader *u)
{
	if (u->limit >= u->nup)
		return;
	u->limit += 1.0 / u->limit;
	if (u->limit > u->nup)
		u->limit = u->nup;
	status_publish_limit(u);
}

/* Multiplicative decrease on 503 SlowDown or 429, once per 100 ms: the
 * answers of one window all say the same. */
static void
shrink_limit(struct uploader *u, uint64_t now)
{
	struct ring_upstats *st = &u->ring.hdr->upstats;

	atomic_fetch_add_explicit(&st->slowdowns, 1, memory_order_relaxed);
	if (now - u->last_slowdown_ns < 100 * MS)
		return;
	u->last_slowdown_ns = now;
	u->limit = u->limit / 2 < 1 ? 1 : u->limit / 2;
	status_publish_limit(u);
	if (log_enabled(LOG_LEVEL_INFO)) {
		char lim[16];
		snprintf(lim, sizeof(lim), "%u", (unsigned)u->limit);
		log_kv(LOG_LEVEL_INFO, "the service asks to slow down; fewer uploads in flight",
		    "limit", lim, (char *)NULL);
	}
}

static void
uploaded(struct uploader *u, struct upload *up)
{
	upload_note_uploaded(u, 1, up->m.body_len);
	if (log_enabled(LOG_LEVEL_DEBUG))
		log_kv(LOG_LEVEL_DEBUG, "uploaded", "key", up->key, (char *)NULL);
	finish(u, up, true);
}

static void
corrupt(struct uploader *u, struct upload *up, const char *why)
{
	atomic_fetch_add_explicit(&u->ring.hdr->corrupt, 1, memory_order_relaxed);
	log_kv(LOG_LEVEL_ERROR, "record changed in the ring after it was read; counted corrupt, not uploaded",
	    "key", up->key, "error", why, (char *)NULL);
	finish(u, up, true);
}

static void
policy(const struct uploader *u, struct retry_policy *p)
{
	*p = (struct retry_policy){
		.max_attempts = u->cfg->max_attempts,
		.max_age_ns = (uint64_t)u->cfg->max_age_s * SEC,
		.recheck_ms = (uint64_t)u->cfg->recheck_s * 1000,
	};
}

/* The facts of a failed attempt, for retry_decide(). */
static void
gather(struct uploader *u, struct upload *up, int rc, const struct s3_response *r,
    struct retry_facts *f)
{
	*f = (struct retry_facts){
		.rc = rc, .r = r, .stopping = u->stopping, .now_ns = mono_ns(),
		.put_ns = up->m.put_ns, .last_success_ns = u->last_success_ns,
		.ring_bytes_intact = true,
	};
	f->probe = probe_fact(u, f->now_ns);
	arc4random_buf(&f->rnd, sizeof(f->rnd));
	if (rc == -EIO && retry_is_region_error(r))
		f->region_followed = upload_follow_region(u, r, s3_region(up->s3));
	if (rc == -EIO && (r->body_changed || r->status == 400))
		f->ring_bytes_intact = crc32c(0, up->m.body, up->m.body_len) == up->m.body_crc;
}

/* What a decision says about the service, whatever becomes of the record:
 * the outage log, the alarm, the limit. */
static void
account(struct uploader *u, const struct retry_decision *d, uint64_t now)
{
	if (d->retried)
		atomic_fetch_add_explicit(&u->ring.hdr->retried, 1, memory_order_relaxed);
	if (d->action == RETRY_PAUSE) {
		status_note_failure(u, d->why);
		status_raise(u, RING_UPLOADER_CONFIG_ALARM, "configuration", d->why);
	} else if (d->action == RETRY_AGAIN) {
		status_note_failure(u, d->why);
		if (d->slow_down)
			shrink_limit(u, now);
	}
}

static void
decide(struct uploader *u, struct upload *up, int rc, const struct s3_response *r)
{
	struct retry_policy pol;
	struct retry_facts f;
	struct retry_decision d;

	policy(u, &pol);
	gather(u, up, rc, r, &f);
	if (retry_needs_probe(&up->rs, &f) && start_probe(u, f.now_ns)) {
		/* Decided when the probe answers (or tried again in 60 s). */
		up->awaiting_probe = true;
		wait_until(u, up, 60000);
		return;
	}
	retry_decide(&pol, &up->rs, &f, &d);
	account(u, &d, f.now_ns);
	switch (d.action) {
	case RETRY_UPLOADED:
		uploaded(u, up);
		return;
	case RETRY_NOW:
		attempt(u, up);
		return;
	case RETRY_PAUSE:
		wait_until(u, up, d.delay_ms);
		return;
	case RETRY_AGAIN:
		if (log_enabled(LOG_LEVEL_DEBUG))
			log_kv(LOG_LEVEL_DEBUG, "retrying", "key", up->key, "error", d.why,
			    (char *)NULL);
		wait_until(u, up, d.delay_ms);
		return;
	case RETRY_DEAD_LETTER:
		dead_letter(u, up, d.reason);
		return;
	case RETRY_CORRUPT:
		corrupt(u, up, d.why);
		return;
	case RETRY_HAND_BACK:
		finish(u, up, false);
		return;
	}
}

void
upload_set_multi(struct uploader *u, struct upload *up)
{
	set_state(u, up, UP_MULTI);
}

/* A multipart request failed: the decision, accounted for; multipart.c
 * acts on it. No probe is waited for: a failure without proof that the
 * service works is simply not counted. */
void
upload_decide_multipart(struct uploader *u, struct upload *up, int rc,
    const struct s3_response *r, struct retry_decision *d)
{
	struct retry_policy pol;
	struct retry_facts f;

	policy(u, &pol);
	gather(u, up, rc, r, &f);
	if (retry_needs_probe(&up->rs, &f))
		(void)start_probe(u, f.now_ns);
	retry_decide(&pol, &up->rs, &f, d);
	account(u, d, f.now_ns);
}

void
upload_decide_object(struct uploader *u, struct retry_state *rs, uint64_t put_ns,
    struct s3_client *s3, int rc, const struct s3_response *r,
    struct retry_decision *d)
{
	struct retry_policy pol;
	struct retry_facts f = {
		.rc = rc, .r = r, .stopping = u->stopping, .now_ns = mono_ns(),
		.put_ns = put_ns, .last_success_ns = u->last_success_ns,
		.ring_bytes_intact = true,
	};

	policy(u, &pol);
	f.probe = probe_fact(u, f.now_ns);
	arc4random_buf(&f.rnd, sizeof(f.rnd));
	if (rc == -EIO && retry_is_region_error(r))
		f.region_followed = upload_follow_region(u, r, s3_region(s3));
	if (retry_needs_probe(rs, &f))
		(void)start_probe(u, f.now_ns);
	retry_decide(&pol, rs, &f, d);
	account(u, d, f.now_ns);
}

void
upload_note_uploaded(struct uploader *u, uint64_t messages, uint64_t bytes)
{
	struct ring_header *h = u->ring.hdr;

	status_note_success(u);
	u->last_success_ns = mono_ns();
	atomic_fetch_add_explicit(&h->uploaded, messages, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->uploaded_bytes, bytes, memory_order_relaxed);
	if (status_alarmed(u, RING_UPLOADER_CONFIG_ALARM) && !u->creds_alarm)
		status_clear(u, RING_UPLOADER_CONFIG_ALARM, "configuration");
	grow_limit(u);
}

void
upload_after_multipart(struct uploader *u, struct upload *up, enum retry_action done,
    const char *reason)
{
	switch (done) {
	case RETRY_UPLOADED:
		uploaded(u, up);
		return;
	case RETRY_DEAD_LETTER:
		dead_letter(u, up, reason ? reason : "multipart upload failed");
		return;
	case RETRY_CORRUPT:
		corrupt(u, up, "its bytes no longer match the CRC-32C they were committed with");
		return;
	default:
		finish(u, up, false);
		return;
	}
}

void
upload_finished(struct uploader *u, struct upload *up, int rc)
{
	const struct s3_response *r = s3_response(up->s3);

	set_state(u, up, UP_WAITING);
	status_note_attempt(u, up->t0, r, rc == 0);
	decide(u, up, rc, r);
}

void
upload_resume(struct uploader *u, struct upload *up)
{
	if (u->stopping) {
		finish(u, up, false);
		return;
	}
	if (up->spooling) {
		char *reason = up->reason;

		up->reason = NULL;
		dead_letter(u, up, reason ? reason : "dead-lettered");
		free(reason);
		return;
	}
	attempt(u, up);
}

void
upload_hand_back(struct uploader *u, struct upload *up)
{
	if (up->state == UP_RUNNING)
		s3_multi_cancel(u->multi, up->s3);
	finish(u, up, false);
}

/* A request signed for region `signed_for` failed because the bucket
 * lives in another region (r names it). If no region was set explicitly,
 * every client switches to it (logged once) and this returns true: retry
 * at once. Otherwise, or when the server names the very region the
 * request was signed for (following it again would loop), returns false:
 * the configuration alarm names the region. */
bool
upload_follow_region(struct uploader *u, const struct s3_response *r,
    const char *signed_for)
{
	char old[64];

	if (r->bucket_region[0] == '\0' || u->region_explicit ||
	    strcmp(signed_for, r->bucket_region) == 0)
		return false;
	if (strcmp(u->region, r->bucket_region) != 0) {
		snprintf(old, sizeof(old), "%s", u->region);
		snprintf(u->region, sizeof(u->region), "%s", r->bucket_region);
		u->region_gen++;
		log_kv(LOG_LEVEL_INFO, "the bucket is in another region; switched to it "
		    "(set --region to make this explicit)", "bucket", u->cfg->bucket,
		    "from", old, "region", r->bucket_region, (char *)NULL);
	}
	return true;
}

/* Makes a client sign for the uploader's current region. */
void
upload_adopt_region(struct uploader *u, struct s3_client *s3, unsigned *gen)
{
	if (*gen == u->region_gen && strcmp(s3_region(s3), u->region) == 0)
		return;
	if (s3_set_region(s3, u->region) < 0)
		log_kv(LOG_LEVEL_ERROR, "cannot sign for the bucket's region", "region",
		    u->region, (char *)NULL);
	*gen = u->region_gen;
}
