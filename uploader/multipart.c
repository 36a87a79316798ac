/* multipart.c -- a large message as a multipart upload, parts read from
 * the ring in place and sent several at a time.
 *
 *   CREATE --> PARTS (up to multipart_parallel in flight) --> COMPLETE --> done
 *      \            \                                          /
 *       +------------+-------------> ABORT -------------------+--> dead letter,
 *                                                                  corrupt, hand back
 *
 * The journal knows every multipart upload that may be open on the server
 * from before its create request is sent until its complete or abort
 * succeeded, so a start after a kill -9 aborts what the previous run left
 * (multipart_abort_leftovers): no upload stays open. A stop aborts the
 * uploads under way; one whose abort does not get through in time stays in
 * the journal for the next start.
 *
 * The parts' CRC-32Cs are computed from the ring once, when the upload is
 * created, and chained they must give the record's CRC: the bytes whose
 * CRCs go to S3 are the bytes the producer committed. Each part's bytes
 * are compared with its CRC again as curl sends them (s3.c).
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "futex.h"
#include "log.h"

enum mp_phase { MP_CREATE, MP_PARTS, MP_COMPLETE, MP_ABORT };
enum part_state { PART_QUEUED, PART_RUNNING, PART_DONE };

struct mp_req {
	enum xfer_kind kind;         /* XFER_PART: first, see daemon.h */
	struct upload *up;
	struct s3_client *s3;        /* made on first use */
	int part;                    /* index, -1: idle */
	uint64_t t0;
};

struct mpart {
	enum mp_phase phase;
	char key[KEY_BUF];           /* the object key, prefix applied */
	char upload_id[S3_UPLOAD_ID_MAX];
	int jidx;                    /* journal entry, -1: none */
	bool main_running;           /* create, complete or abort in flight */
	bool abort_created;          /* abort as soon as the create answers */
	uint64_t due_ns;             /* no new request before this */
	enum retry_action then;      /* after the abort */
	char *reason;                /* for the dead letter */
	uint64_t part_size;
	unsigned nparts, ndone;
	uint32_t *crc;
	uint8_t *pstate;
	struct s3_part *parts;
	unsigned nreq;
	struct mp_req req[];
};

static void main_request(struct uploader *u, struct upload *up);

bool
multipart_wanted(const struct uploader *u, const struct upload *up)
{
	return u->cfg->multipart_threshold != 0 &&
	    up->m.body_len >= u->cfg->multipart_threshold;
}

static void
mp_free(struct uploader *u, struct upload *up)
{
	struct mpart *mp = up->mp;

	if (mp == NULL)
		return;
	for (unsigned i = 0; i < mp->nreq; i++) {
		if (mp->req[i].part >= 0) {
			s3_multi_cancel(u->multi, mp->req[i].s3);
			u->running--;
		}
		s3_client_free(mp->req[i].s3);
	}
	if (mp->main_running) {
		s3_multi_cancel(u->multi, up->s3);
		u->running--;
	}
	free(mp->crc);
	free(mp->pstate);
	free(mp->parts);
	free(mp->reason);
	free(mp);
	up->mp = NULL;
	u->nmulti--;
}

/* Begins the multipart upload of up's record. Returns false when it cannot
 * (out of memory, the journal's table full): the caller sends one PUT. */
bool
multipart_begin(struct uploader *u, struct upload *up, const char *key)
{
	const struct config *cfg = u->cfg;
	uint64_t ps = cfg->part_size;
	unsigned nparts = (unsigned)((up->m.body_len + ps - 1) / ps);
	unsigned nreq = cfg->multipart_parallel < nparts ? cfg->multipart_parallel : nparts;
	struct mpart *mp;
	int jidx;

	if (nparts > S3_MAX_PARTS)
		return false;
	mp = calloc(1, sizeof(*mp) + nreq * sizeof(mp->req[0]));
	if (mp == NULL)
		return false;
	mp->crc = calloc(nparts, sizeof(*mp->crc));
	mp->pstate = calloc(nparts, 1);
	mp->parts = calloc(nparts, sizeof(*mp->parts));
	jidx = journal_mpu_begin(&u->journal, up->m.pos, key);
	if (mp->crc == NULL || mp->pstate == NULL || mp->parts == NULL || jidx < 0) {
		if (jidx == -ENOSPC)
			log_kv(LOG_LEVEL_WARN, "too many multipart uploads open; sending this one in one PUT",
			    "key", key, (char *)NULL);
		if (jidx >= 0)
			journal_mpu_end(&u->journal, jidx);
		free(mp->crc);
		free(mp->pstate);
		free(mp->parts);
		free(mp);
		return false;
	}
	snprintf(mp->key, sizeof(mp->key), "%s", key);
	mp->jidx = jidx;
	mp->part_size = ps;
	mp->nparts = nparts;
	mp->nreq = nreq;
	for (unsigned i = 0; i < nreq; i++) {
		mp->req[i].kind = XFER_PART;
		mp->req[i].up = up;
		mp->req[i].part = -1;
	}
	mp->phase = MP_CREATE;
	up->mp = mp;
	u->nmulti++;
	upload_set_multi(u, up);
	main_request(u, up);
	return true;
}

/* The CRCs of the parts, from the ring; chained, they must give the
 * record's. False if they do not: the bytes changed since they were read. */
static bool
part_crcs(struct upload *up)
{
	struct mpart *mp = up->mp;
	uint32_t whole = 0;

	for (unsigned i = 0; i < mp->nparts; i++) {
		uint64_t off = (uint64_t)i * mp->part_size;
		size_t len = (size_t)(up->m.body_len - off < mp->part_size ?
		    up->m.body_len - off : mp->part_size);

		mp->crc[i] = crc32c(0, up->m.body + off, len);
		whole = crc32c(whole, up->m.body + off, len);
	}
	return whole == up->m.body_crc;
}

/* Create, complete or abort, on the upload's own client. */
static void
main_request(struct uploader *u, struct upload *up)
{
	struct mpart *mp = up->mp;
	int rc = -EINVAL;

	if (up->s3 == NULL && (up->s3 = s3_client_new(&u->s3cfg, u->creds)) == NULL) {
		mp->due_ns = mono_ns() + SEC;
		return;
	}
	upload_adopt_region(u, up->s3, &up->region_gen);
	switch (mp->phase) {
	case MP_CREATE:
		if (objopts_headers(u->cfg->obj, u->cfg->nobj, up->key, u->hdrs) < 0) {
			rc = -E2BIG;
			break;
		}
		rc = s3_prepare_create_multipart(up->s3, mp->key, u->cfg->part_checksums,
		    u->hdrs->h, u->hdrs->n, mp->upload_id, sizeof(mp->upload_id));
		break;
	case MP_COMPLETE:
		rc = s3_prepare_complete_multipart(up->s3, mp->key, mp->upload_id,
		    mp->parts, mp->nparts);
		break;
	case MP_ABORT:
		rc = s3_prepare_abort_multipart(up->s3, mp->key, mp->upload_id);
		break;
	case MP_PARTS:
		return;
	}
	up->t0 = mono_ns();
	if (rc == 0)
		rc = s3_multi_start(u->multi, up->s3, up);
	if (rc < 0) {
		/* Nothing was sent: a create that cannot be made is given up
		 * (the record is dead-lettered, see multipart_finished); the
		 * others are tried again in a second. */
		if (mp->phase == MP_CREATE) {
			mp->main_running = true;
			u->running++;
			multipart_finished(u, up, NULL, rc);
		} else {
			mp->due_ns = mono_ns() + SEC;
		}
		return;
	}
	mp->main_running = true;
	u->running++;
}

static void
start_part(struct uploader *u, struct upload *up, struct mp_req *q, unsigned i)
{
	struct mpart *mp = up->mp;
	uint64_t off = (uint64_t)i * mp->part_size;
	size_t len = (size_t)(up->m.body_len - off < mp->part_size ?
	    up->m.body_len - off : mp->part_size);
	int rc;

	if (q->s3 == NULL && (q->s3 = s3_client_new(&u->s3cfg, u->creds)) == NULL) {
		mp->due_ns = mono_ns() + SEC;
		return;
	}
	upload_adopt_region(u, q->s3, &up->region_gen);
	rc = s3_prepare_upload_part(q->s3, mp->key, mp->upload_id, (int)i + 1,
	    up->m.body + off, len, u->cfg->part_checksums, mp->crc[i], &mp->parts[i]);
	if (rc == 0) {
		s3_check_body(q->s3, mp->crc[i]);
		rc = s3_multi_start(u->multi, q->s3, q);
	}
	if (rc < 0) {
		mp->due_ns = mono_ns() + SEC;
		return;
	}
	q->part = (int)i;
	q->t0 = mono_ns();
	mp->pstate[i] = PART_RUNNING;
	u->running++;
}

/* Starts what can start: parts while there is room, the next request
 * once its backoff is over. Called by the loop for every multipart
 * upload. */
void
multipart_pump(struct uploader *u, struct upload *up, uint64_t now)
{
	struct mpart *mp = up->mp;

	if (now < mp->due_ns || mp->main_running)
		return;
	if (mp->phase != MP_PARTS) {
		main_request(u, up);
		return;
	}
	for (unsigned r = 0, i = 0; r < mp->nreq && u->running < (unsigned)u->limit; r++) {
		struct mp_req *q = &mp->req[r];

		if (q->part >= 0)
			continue;
		while (i < mp->nparts && mp->pstate[i] != PART_QUEUED)
			i++;
		if (i == mp->nparts)
			break;
		start_part(u, up, q, i);
		if (q->part < 0)
			break;	/* could not start: due_ns is set */
	}
}

/* Stops at the first failure that ends the upload: cancels the parts in
 * flight and aborts the upload, then `then` happens. */
static void
abort_upload(struct uploader *u, struct upload *up, enum retry_action then,
    const char *reason)
{
	struct mpart *mp = up->mp;

	mp->then = then;
	if (reason != NULL && mp->reason == NULL)
		mp->reason = strdup(reason);
	if (mp->phase == MP_CREATE && mp->main_running) {
		/* The server may be creating it now: let the answer come, and
		 * abort what it names. */
		mp->abort_created = true;
		return;
	}
	for (unsigned i = 0; i < mp->nreq; i++) {
		if (mp->req[i].part >= 0) {
			s3_multi_cancel(u->multi, mp->req[i].s3);
			mp->pstate[mp->req[i].part] = PART_QUEUED;
			mp->req[i].part = -1;
			u->running--;
		}
	}
	if (mp->main_running) {
		s3_multi_cancel(u->multi, up->s3);
		mp->main_running = false;
		u->running--;
	}
	if (mp->phase == MP_CREATE) {
		/* Not created: nothing to abort. */
		journal_mpu_end(&u->journal, mp->jidx);
		mp->jidx = -1;
		multipart_aborted_then(u, up);
		return;
	}
	mp->phase = MP_ABORT;
	mp->due_ns = 0;
	main_request(u, up);
}

/* After the abort (or without one): what the failure decided. */
void
multipart_aborted_then(struct uploader *u, struct upload *up)
{
	struct mpart *mp = up->mp;
	enum retry_action then = mp->then;
	char *reason = mp->reason;

	mp->reason = NULL;
	mp_free(u, up);
	upload_after_multipart(u, up, then, reason);
	free(reason);
}

static void
decide_failure(struct uploader *u, struct upload *up, int rc,
    const struct s3_response *r, bool is_main)
{
	struct mpart *mp = up->mp;
	struct retry_decision d;

	if (rc == -EIO && r->verdict.restart_upload && mp->phase != MP_ABORT) {
		/* NoSuchUpload: it is gone (aborted by a lifecycle rule, say).
		 * Start over. */
		log_kv(LOG_LEVEL_WARN, "the multipart upload is gone; starting it again",
		    "key", mp->key, (char *)NULL);
		for (unsigned i = 0; i < mp->nparts; i++)
			mp->pstate[i] = PART_QUEUED;
		mp->ndone = 0;
		mp->upload_id[0] = '\0';
		mp->phase = MP_CREATE;
		mp->due_ns = 0;
		journal_mpu_end(&u->journal, mp->jidx);
		mp->jidx = journal_mpu_begin(&u->journal, up->m.pos, mp->key);
		if (mp->jidx < 0) {
			/* Cannot happen: the entry just freed is there. */
			log_kv(LOG_LEVEL_ERROR, "cannot record the multipart upload; handing the message back",
			    "key", mp->key, (char *)NULL);
			mp->then = RETRY_HAND_BACK;
			multipart_aborted_then(u, up);
		}
		return;
	}
	upload_decide_multipart(u, up, rc, r, &d);
	switch (d.action) {
	case RETRY_UPLOADED:
		return;
	case RETRY_NOW:
		mp->due_ns = 0;
		return;
	case RETRY_AGAIN:
	case RETRY_PAUSE:
		mp->due_ns = mono_ns() + d.delay_ms * MS;
		return;
	case RETRY_DEAD_LETTER:
	case RETRY_CORRUPT:
	case RETRY_HAND_BACK:
		if (mp->phase == MP_ABORT) {
			/* The abort itself failed for good, or we stop: the
			 * journal keeps the entry, the next start aborts it. */
			mp->jidx = -1;
			multipart_aborted_then(u, up);
			return;
		}
		(void)is_main;
		abort_upload(u, up, d.action, d.reason);
		return;
	}
}

/* The create, complete or abort ended (rc as s3_perform() returns; r NULL
 * when nothing was sent). */
void
multipart_finished(struct uploader *u, struct upload *up, const struct s3_response *r,
    int rc)
{
	struct mpart *mp = up->mp;
	struct ring_upstats *st = &u->ring.hdr->upstats;

	mp->main_running = false;
	u->running--;
	if (r != NULL)
		status_note_attempt(u, up->t0, r, rc == 0);
	if (rc == 0) {
		switch (mp->phase) {
		case MP_CREATE:
			journal_mpu_opened(&u->journal, mp->jidx, mp->upload_id);
			atomic_fetch_add_explicit(&st->multipart_started, 1, memory_order_relaxed);
			if (mp->abort_created) {
				mp->phase = MP_ABORT;
				main_request(u, up);
				return;
			}
			if (!part_crcs(up)) {
				abort_upload(u, up, RETRY_CORRUPT, NULL);
				return;
			}
			mp->phase = MP_PARTS;
			multipart_pump(u, up, mono_ns());
			return;
		case MP_COMPLETE:
			journal_mpu_end(&u->journal, mp->jidx);
			mp->jidx = -1;
			atomic_fetch_add_explicit(&st->multipart_completed, 1, memory_order_relaxed);
			mp_free(u, up);
			upload_after_multipart(u, up, RETRY_UPLOADED, NULL);
			return;
		case MP_ABORT:
			journal_mpu_end(&u->journal, mp->jidx);
			mp->jidx = -1;
			atomic_fetch_add_explicit(&st->multipart_aborted, 1, memory_order_relaxed);
			multipart_aborted_then(u, up);
			return;
		case MP_PARTS:
			return;
		}
	}
	if (mp->phase == MP_ABORT && rc == -EIO && r->status == 404) {
		/* NoSuchUpload: gone already, which is what we wanted. */
		journal_mpu_end(&u->journal, mp->jidx);
		mp->jidx = -1;
		multipart_aborted_then(u, up);
		return;
	}
	if (mp->abort_created) {
		/* The create failed. With an answer, nothing was created; without
		 * one it may have been: the journal keeps the entry, and the next
		 * start finds the upload by its key. */
		if (r == NULL || r->status >= 400) {
			journal_mpu_end(&u->journal, mp->jidx);
			mp->jidx = -1;
		}
		multipart_aborted_then(u, up);
		return;
	}
	if (r == NULL) {
		struct s3_response none = { .verdict.reason = "not sent" };
		decide_failure(u, up, rc, &none, true);
		return;
	}
	decide_failure(u, up, rc, r, true);
}

void
multipart_part_finished(struct uploader *u, struct mp_req *q, int rc)
{
	struct upload *up = q->up;
	struct mpart *mp = up->mp;
	const struct s3_response *r = s3_response(q->s3);
	unsigned i = (unsigned)q->part;

	q->part = -1;
	u->running--;
	status_note_attempt(u, q->t0, r, rc == 0);
	if (rc == 0) {
		mp->pstate[i] = PART_DONE;
		mp->ndone++;
		if (mp->ndone == mp->nparts) {
			mp->phase = MP_COMPLETE;
			main_request(u, up);
		} else {
			multipart_pump(u, up, mono_ns());
		}
		return;
	}
	mp->pstate[i] = PART_QUEUED;
	decide_failure(u, up, rc, r, false);
}

/* Stopping: abort the upload (its record is handed back). */
void
multipart_stop(struct uploader *u, struct upload *up)
{
	if (up->mp->phase != MP_ABORT)
		abort_upload(u, up, RETRY_HAND_BACK, NULL);
}

/* The drain's deadline: drop everything; the journal keeps the entry. */
void
multipart_drop(struct uploader *u, struct upload *up)
{
	up->mp->then = RETRY_HAND_BACK;
	multipart_aborted_then(u, up);
}

struct leftover_arg {
	struct uploader *u;
	const char *key;
	unsigned aborted, failed;
};

static int
abort_listed(const char *key, const char *upload_id, void *arg)
{
	struct leftover_arg *a = arg;

	if (strcmp(key, a->key) != 0)
		return 0;
	if (s3_abort_multipart(a->u->sync_s3, key, upload_id) == 0 ||
	    s3_response(a->u->sync_s3)->status == 404)
		a->aborted++;
	else
		a->failed++;
	return 0;
}

/* At start, before any upload of this run: aborts the multipart uploads
 * that an earlier run left open (killed, or stopped before its abort got
 * through). One that cannot be aborted now stays in the journal for the
 * next start, and is named in the log. */
void
multipart_abort_leftovers(struct uploader *u)
{
	const char *key, *id;
	char n[16];
	unsigned aborted = 0, kept = 0;

	for (int i = 0; (i = journal_mpu_next_leftover(&u->journal, i, &key, &id)) >= 0; i++) {
		bool gone;

		if (id != NULL) {
			gone = s3_abort_multipart(u->sync_s3, key, id) == 0 ||
			    s3_response(u->sync_s3)->status == 404;
		} else {
			struct leftover_arg a = { u, key, 0, 0 };
			int rc = s3_list_multipart_uploads(u->sync_s3, key, abort_listed, &a);

			gone = rc == 0 && a.failed == 0;
		}
		if (gone) {
			journal_mpu_end(&u->journal, i);
			aborted++;
		} else {
			kept++;
			log_kv(LOG_LEVEL_WARN, "cannot abort a multipart upload left by an earlier run; trying again at the next start",
			    "key", key, "upload_id", id ? id : "unknown", (char *)NULL);
		}
	}
	if (aborted != 0) {
		snprintf(n, sizeof(n), "%u", aborted);
		log_kv(LOG_LEVEL_INFO, "aborted the multipart uploads an earlier run left open",
		    "uploads", n, (char *)NULL);
	}
	(void)kept;
}
