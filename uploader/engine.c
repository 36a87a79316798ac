/* engine.c -- the event loop: read the ring, start uploads, release.
 *
 * One thread drives every upload through one s3_multi (curl's socket
 * interface over epoll). Invariants:
 * - At most cfg->workers records are being uploaded (struct upload each),
 *   and fewer while the service asks to slow down (u->limit). Bodies are
 *   read from the ring in place: memory does not grow with message size.
 * - A record is marked DONE in the journal only after S3 confirmed it (or
 *   it was spooled, or found corrupt; see upload.c). Head advances over
 *   the lowest unfinished record only, journal first, then ring.
 * - While the limit is reached, the in-flight table is full or the
 *   configuration alarm is up, the loop stops reading: producers then see
 *   a full ring. That is the back-pressure.
 * - The loop never sleeps on the ring itself: when it has nothing to read,
 *   it arms the watcher thread, which sleeps on the ring's futex and wakes
 *   the loop's epoll (s3_multi_wakeup) when a producer commits.
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "futex.h"
#include "log.h"
#include "notify.h"
#include "sigbus.h"

/* ------------------------------------------------------------ watcher */

static void *
watcher_main(void *arg)
{
	struct uploader *u = arg;

	while (!atomic_load(&u->watch_quit)) {
		if (atomic_load(&u->watch_armed) == 0) {
			(void)futex_wait(&u->watch_armed, 0, mono_ns() + 100 * MS);
			continue;
		}
		/* Up to 50 ms, or until a producer commits, or a stuck record
		 * is due for another look: the loop reads again in any case. */
		ring_consumer_wait(&u->watch_cons, 0);
		atomic_store(&u->watch_armed, 0);
		s3_multi_wakeup(u->multi);
	}
	return NULL;
}

int
engine_spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	/* The signals stay with the loop's thread, which reads their flags;
	 * the hasher reads ring bodies, under the SIGBUS guard. */
	return ring_guard_spawn(t, fn, arg);
}

int
engine_start_watcher(struct uploader *u)
{
	int rc = engine_spawn(&u->watcher, watcher_main, u);

	if (rc < 0)
		return rc;
	u->watcher_started = true;
	return 0;
}

void
engine_stop_watcher(struct uploader *u)
{
	if (!u->watcher_started)
		return;
	atomic_store(&u->watch_quit, true);
	atomic_store(&u->watch_armed, 1);
	(void)futex_wake(&u->watch_armed, 1);
	pthread_join(u->watcher, NULL);
	u->watcher_started = false;
}

/* The ring had nothing for us: let the watcher sleep on it for us. Its
 * copy of the consumer is written only while it is not armed. */
static void
arm_watcher(struct uploader *u)
{
	if (atomic_load(&u->watch_armed) != 0)
		return;
	u->watch_cons = u->cons;
	atomic_store(&u->watch_armed, 1);
	(void)futex_wake(&u->watch_armed, 1);
}

/* ------------------------------------------------------------ the loop */

static void
reap(struct uploader *u)
{
	struct s3_client *c;
	void *user;
	int rc;

	while ((c = s3_multi_done(u->multi, &rc, &user)) != NULL) {
		struct upload *up = user;

		if (user == NULL)
			upload_probe_finished(u, rc);
		else if (*(const enum xfer_kind *)user == XFER_BATCH)
			batch_finished(u, user, rc);
		else if (*(const enum xfer_kind *)user == XFER_PART)
			multipart_part_finished(u, user, rc);
		else if (up->mp != NULL)
			multipart_finished(u, up, s3_response(c), rc);
		else
			upload_finished(u, up, rc);
	}
	atomic_store_explicit(&u->ring.hdr->in_flight, u->busy + batch_in_flight(u),
	    memory_order_relaxed);
}

/* Waiting uploads whose time came, while there is room in flight. */
static void
resume_due(struct uploader *u, uint64_t now)
{
	uint64_t next = 0;

	if (u->waiting == 0 || u->next_due_ns == 0 || now < u->next_due_ns)
		return;
	for (unsigned i = 0; i < u->nup && u->waiting > 0; i++) {
		struct upload *up = &u->up[i];

		if (up->state != UP_WAITING)
			continue;
		if (up->due_ns <= now && (u->running < (unsigned)u->limit || u->stopping)) {
			up->awaiting_probe = false;
			upload_resume(u, up);
		}
		else if (next == 0 || up->due_ns < next)
			next = up->due_ns < now ? now + MS : up->due_ns;
	}
	u->next_due_ns = u->waiting ? (next ? next : now + MS) : 0;
}

static void
pump_multipart(struct uploader *u, uint64_t now)
{
	for (unsigned i = 0; i < u->nup && u->nmulti > 0; i++)
		if (u->up[i].state == UP_MULTI)
			multipart_pump(u, &u->up[i], now);
}

static void
release(struct uploader *u)
{
	uint64_t head = inflight_release(&u->journal.table,
	    ring_consumer_floor(&u->cons));

	journal_release(&u->journal, &u->ring, head);
	journal_batch_release(&u->journal, head);
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

/* True once a retiring ring holds nothing more for us: every committed
 * record read and uploaded, no producer still writing (or the stop timeout
 * is up, and what they still write is given up: their commits fail).
 * Records already committed are never given up, whatever the time: their
 * puts returned 0, and the old object goes away with us. */
static bool
retired_and_done(struct uploader *u)
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
	return u->busy == 0;
}

/* Room for another record: an upload free and allowed, an in-flight entry,
 * a batch entry, and no configuration alarm. */
static bool
can_read(const struct uploader *u)
{
	return u->running < (unsigned)u->limit && u->free_list != NULL &&
	    !inflight_full(&u->journal.table) && batch_room(u) &&
	    !status_alarmed(u, RING_UPLOADER_CONFIG_ALARM);
}

/* Reads records and starts their uploads while there is room. Returns
 * true if the ring had nothing more to read. */
static bool
fill(struct uploader *u)
{
	while (can_read(u)) {
		struct upload *up = u->free_list;
		int rc = ring_consume_view(&u->cons, &up->m, up->key, sizeof(up->key));

		if (rc == 0)
			return true;
		if (rc < 0) {
			if (!u->corrupt_logged)
				status_raise(u, RING_UPLOADER_CORRUPT_ALARM, "ring unreadable",
				    rc == -EFAULT ? "the shm object was truncated" :
				    "control words out of range");
			u->corrupt_logged = true;
			return false;
		}
		if (u->corrupt_logged) {
			status_clear(u, RING_UPLOADER_CORRUPT_ALARM, "ring unreadable");
			u->corrupt_logged = false;
		}
		if (batch_take(u, up))
			continue;
		u->free_list = up->next;
		upload_begin(u, up);
	}
	return false;
}

/* How long the loop may sleep: until the next due retry, at most 50 ms
 * (the heartbeat and the checks of status_tick). */
static int
sleep_ms(const struct uploader *u, uint64_t now)
{
	uint64_t ms = 50;

	if (u->next_due_ns != 0)
		ms = u->next_due_ns <= now ? 0 : (u->next_due_ns - now + MS - 1) / MS;
	return ms > 50 ? 50 : (int)ms;
}

void
engine_run(struct uploader *u)
{
	for (;;) {
		uint64_t now = mono_ns();
		bool empty, more;
		int ms;

		status_tick(u, "running;");
		if (uploader_got_stop)
			return;
		reap(u);
		upload_hashed(u);
		resume_due(u, now);
		pump_multipart(u, now);
		more = batch_pump(u, now);
		release(u);
		if (retired_and_done(u)) {
			u->reattach = true;
			return;
		}
		empty = fill(u);
		batch_caught_up(u, empty);
		ms = sleep_ms(u, now);
		if (u->corrupt_logged)
			ms = 200;
		else if (empty)
			arm_watcher(u);
		else if (can_read(u))
			ms = 0;	/* more to read */
		if (more)
			ms = 0;	/* a batch to compress on */
		else
			ms = batch_sleep_ms(u, now, ms);
		(void)s3_multi_wait(u->multi, ms);
	}
}

/* SIGTERM: stop reading, hand back what waits for a retry, let the
 * transfers under way finish for up to stop_timeout, then abort them (they
 * stay in the ring: handed back). */
void
engine_drain(struct uploader *u)
{
	uint64_t deadline = mono_ns() + (uint64_t)u->cfg->stop_timeout_s * SEC;
	char n[24];

	atomic_fetch_or(&u->ring.hdr->uploader_flags, RING_UPLOADER_DRAINING);
	(void)notify_send("STOPPING=1\nSTATUS=draining in-flight uploads");
	log_kv(LOG_LEVEL_INFO, "stopping: draining in-flight uploads", (char *)NULL);
	u->stopping = true;
	for (unsigned i = 0; i < u->nup; i++) {
		if (u->up[i].state == UP_WAITING)
			upload_hand_back(u, &u->up[i]);
		else if (u->up[i].state == UP_MULTI)
			multipart_stop(u, &u->up[i]);
	}
	/* Open batches are sent now, rather than rebuilt by the next start. */
	batch_close_all(u);
	while ((u->running > 0 || u->hashing > 0 || batch_busy(u)) &&
	    mono_ns() < deadline) {
		bool more;

		reap(u);
		upload_hashed(u);
		more = batch_pump(u, mono_ns());
		release(u);
		status_tick(u, "draining;");
		if (u->running > 0 || u->hashing > 0 || batch_busy(u))
			(void)s3_multi_wait(u->multi, more ? 0 : 50);
	}
	reap(u);
	batch_stop(u);
	/* What the hasher still holds is handed back below. */
	upload_stop_hasher(u);
	for (unsigned i = 0; i < u->nup; i++) {
		if (u->up[i].state == UP_MULTI)
			multipart_drop(u, &u->up[i]);
		else if (u->up[i].state != UP_FREE)
			upload_hand_back(u, &u->up[i]);
	}
	release(u);
	atomic_store_explicit(&u->ring.hdr->in_flight, 0, memory_order_relaxed);
	/* Handed back: records whose upload was under way or waiting for a
	 * retry; they stay in the ring for the next start. */
	snprintf(n, sizeof(n), "%u", u->handed_back);
	log_kv(LOG_LEVEL_INFO, "stopped", "handed_back",
	    u->handed_back ? n : "none", (char *)NULL);
}
