/* batch.c -- batch mode: many small messages into one compressed object.
 *
 * The messages whose key starts with a batch rule's prefix are not uploaded
 * one object each. Reading them costs a few words: an open batch is a span
 * of the ring, [first, end), from its first record to the end of its last,
 * with a count and a size. Nothing is copied while it is open; the records
 * stay in the ring (an in-flight entry at first keeps head below them).
 *
 *   take --> OPEN --(max-bytes, max-age, SIGTERM, SIGHUP)--> close
 *   close: the span and the object key go to the journal (CLOSED)
 *   QUEUED --> SCAN: the span is read again from the ring (ring_scan),
 *              framed into a staging buffer, and compressed into the
 *              object's buffer on the compressing thread (batch_worker.h)
 *              while the loop frames the next stage
 *          --> RUNNING: one PUT --> DONE in the journal, head moves on
 *
 * Membership is a function of the ring alone: a batch holds the records in
 * its span whose key has its prefix and whose framed size is at most its
 * max-bytes (a larger one goes alone). Prefixes never nest, so spans of one
 * prefix never share a record. After a crash, a start finds the CLOSED
 * batches in the journal, rebuilds each from the ring, the same records,
 * and sends it under the same key: the object is overwritten, not doubled.
 * The records of a DONE batch are skipped.
 *
 * Late records (left behind as holes, read after records beyond them) are
 * members of the span that holds them: a scan waits at a record still
 * being written. A late record below its rule's open batch, outside every
 * span, goes alone (alone is counted per rule).
 *
 * An object whose compressed bytes reach part-size goes as a multipart
 * upload instead: each part-size of output is sent as a part while the
 * scan waits, then the scan goes on into the same buffer. The journal's
 * multipart table holds the upload from before its create until its
 * complete (a start aborts what a killed run left, then rebuilds the batch
 * and sends it whole again).
 *
 * Memory: an open batch costs nothing but its bookkeeping, whatever its
 * size. Only batch-flushes objects are built at once, each with its
 * compressor, two staging buffers of STAGE_CAP and a buffer of part-size
 * plus the compressor's bound, mapped but touched only as far as the
 * compressed bytes reach.
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "batch_codec.h"
#include "batch_key.h"
#include "batch_worker.h"
#include "crc32c.h"
#include "futex.h"
#include "log.h"
#include "spool.h"

/* What one loop iteration reads of a batch at most: the loop's other
 * transfers wait meanwhile. */
#define SCAN_BUDGET (1u << 20)
/* A staging buffer: framed records handed to the compressing thread in one
 * job (batch_worker.h), which zstd makes one frame of (batch_codec.h). A
 * record larger than this is compressed by the loop itself, once the
 * thread is done with the slot. 2 MiB: zstd -3's ratio on frames of 2 MiB
 * is within 1% of one frame's for log lines, and from 512 KiB it falls by
 * 8% (a frame's window is no larger than its input). */
#define STAGE_CAP (2u << 20)

enum flush_state {
	FL_FREE,
	FL_QUEUED,   /* closed, waiting for one of the batch-flushes slots */
	FL_SCAN,     /* being read from the ring and compressed */
	FL_RUNNING,  /* its PUT is in flight */
	FL_WAITING,  /* backing off */
};

/* The open batch of one rule. */
struct batch_open {
	bool open;
	int tslot;                   /* in-flight entry at first */
	uint64_t first, end;
	uint64_t first_put_ns;       /* CLOCK_MONOTONIC */
	uint64_t opened_ns;          /* when this run opened it */
	uint64_t bytes;              /* framed */
	uint32_t nrec;
	uint64_t last_end;           /* of the last batch this run closed */
};

/* A build slot: the compressor and buffers one object is made with. */
struct batch_slot {
	struct batch_codec *codec;
	enum batch_compression comp;
	int level;
	uint8_t *buf;                /* the object, mapped: cap bytes */
	size_t cap;
	uint8_t *scratch;            /* one record, mapped: max_message + 1 */
	size_t scratch_cap;
	struct s3_client *s3;
	unsigned region_gen;
	struct batch_flush *f;       /* the one it builds, or NULL */
	/* Two staging buffers of STAGE_CAP, mapped: the loop fills
	 * stage[cur] while the thread compresses the other (job). */
	uint8_t *stage[2];
	size_t staged;               /* bytes in stage[cur] */
	unsigned cur;
	bool pending;                /* job submitted, result not yet taken */
	bool ending;                 /* the job ends the stream */
	struct batch_job job;
};

/* The request of a batch in flight or to be tried again. */
enum flush_req { REQ_PUT, REQ_CREATE, REQ_PART, REQ_COMPLETE,
	REQ_SPOOL /* a piece for the spool, to be written again */ };

struct batch_flush {
	enum xfer_kind kind;         /* XFER_BATCH */
	enum flush_state state;
	enum flush_req req;
	/* Multipart: the journal's entry, the UploadId and the parts sent;
	 * ended when the codec was ended (the part in out is the last). */
	bool mp, ended;
	int mp_jidx;
	char upload_id[S3_UPLOAD_ID_MAX];
	struct s3_part *parts;
	unsigned nparts, parts_cap;
	/* Journal entries whose spans overlap this one's (find_overlaps). */
	uint8_t overlap[JOURNAL_BATCH_ENTRIES];
	unsigned noverlap;
	struct journal_batch jb;     /* as in the journal */
	int jidx;                    /* its journal entry */
	int tslot;                   /* its in-flight entry */
	int rule;                    /* stats line, -1 if its rule is gone */
	size_t key_off;              /* where the key-prefix ends in jb.key */
	uint64_t first_put_ns;
	uint64_t pos;                /* the scan's */
	uint32_t nrec;               /* records scanned in */
	uint64_t bytes;              /* framed bytes scanned in */
	struct batch_slot *slot;     /* SCAN, RUNNING, WAITING */
	struct batch_out out;
	uint64_t stored;             /* bytes of the parts sent */
	uint32_t crc;                /* of out's bytes */
	struct retry_state rs;
	uint64_t due_ns, t0;
	/* A multipart object refused for good: built again from its first
	 * record into a dead-letter file, piece by piece (to_spool, and the
	 * stream once the first piece is written). */
	bool to_spool;
	struct spool_stream *spool;
	char spool_reason[SPOOL_REASON_MAX];
	unsigned spool_tries;
};

struct batch_engine {
	struct batch_open open[CONFIG_BATCH_RULES];
	struct batch_flush flush[JOURNAL_BATCH_ENTRIES];
	unsigned nfree;              /* FL_FREE flushes */
	struct batch_slot *slots;    /* cfg->batch_flushes */
	unsigned nslots;
	/* Rebuilds of the earlier run's CLOSED batches, by journal entry:
	 * the in-flight entry that holds head for them, -1 if none yet. */
	int rebuild_tslot[JOURNAL_BATCH_ENTRIES];
	bool rebuild_pending[JOURNAL_BATCH_ENTRIES];
	bool any_rebuild;
	bool caught_up;              /* the last read found the ring empty */
	bool evict_logged;
	uint64_t clock_off;          /* realtime - monotonic, ns */
	struct batch_worker *worker;
};

/* ------------------------------------------------------------ rules */

static int
rule_of(const struct config *cfg, const char *key)
{
	for (unsigned i = 0; i < cfg->nbatch; i++) {
		const char *p = cfg->batch[i].prefix;
		size_t n = strlen(p);

		if (strncmp(key, p, n) == 0)
			return (int)i;
	}
	return -1;
}

bool
batch_leaves_body(void *arg, const char *key, size_t key_len)
{
	const struct uploader *u = arg;

	(void)key_len; /* key is NUL-terminated */
	return u->batch != NULL && rule_of(u->cfg, key) >= 0;
}

/* The size that decides whether a message is a batch's member (at most
 * max-bytes) or goes alone: its framed size, with the lines framing's
 * newline counted whether or not the body brings its own. It depends on
 * the checked header alone, not on a body byte in the ring that a producer
 * could change between the take and the scan: both decide alike. */
static uint64_t
member_len(enum batch_framing f, const struct ring_msg *m)
{
	if (f == BATCH_FRAME_LENGTH)
		return 2 + (uint64_t)m->key_len + 4 + m->body_len;
	return (uint64_t)m->body_len + 1;
}

/* The framed size of a message, as batch_codec_put() counts it (for the
 * counters only: it reads the body's last byte where it lies). */
static uint64_t
framed(enum batch_framing f, const struct ring_msg *m)
{
	if (f == BATCH_FRAME_LENGTH)
		return 2 + (uint64_t)m->key_len + 4 + m->body_len;
	return (uint64_t)m->body_len +
	    (m->body_len > 0 && m->body[m->body_len - 1] == '\n' ? 0 : 1);
}

static struct ring_batch_stats *
stats(struct uploader *u, int rule)
{
	if (rule < 0 || (unsigned)rule >= RING_BATCH_RULES)
		return NULL;
	return &u->ring.hdr->upstats.batch[rule];
}

static void
add_stat(_Atomic uint64_t *w, uint64_t n)
{
	atomic_fetch_add_explicit(w, n, memory_order_relaxed);
}

/* The rules' names and the oldest message not yet uploaded, per rule. */
void
batch_publish(struct uploader *u)
{
	struct batch_engine *b = u->batch;
	struct ring_upstats *us = &u->ring.hdr->upstats;
	uint64_t oldest[CONFIG_BATCH_RULES] = { 0 };

	if (b == NULL)
		return;
	for (unsigned i = 0; i < u->cfg->nbatch; i++)
		if (b->open[i].open)
			oldest[i] = b->open[i].first_put_ns;
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		const struct batch_flush *f = &b->flush[i];

		if (f->state == FL_FREE || f->rule < 0)
			continue;
		if (oldest[f->rule] == 0 || f->first_put_ns < oldest[f->rule])
			oldest[f->rule] = f->first_put_ns;
	}
	for (unsigned i = 0; i < u->cfg->nbatch && i < RING_BATCH_RULES; i++)
		atomic_store_explicit(&us->batch[i].oldest_realtime_ns,
		    oldest[i] ? oldest[i] + b->clock_off : 0, memory_order_relaxed);
}

/* Names the rules in the ring's statistics; a line whose rule changed
 * starts from zero. */
static void
publish_rules(struct uploader *u)
{
	struct ring_upstats *us = &u->ring.hdr->upstats;

	for (unsigned i = 0; i < RING_BATCH_RULES; i++) {
		struct ring_batch_stats *st = &us->batch[i];
		char name[RING_BATCH_PREFIX];

		if (i >= u->cfg->nbatch) {
			memset(st, 0, sizeof(*st));
			continue;
		}
		snprintf(name, sizeof(name), "%s", u->cfg->batch[i].prefix);
		if (memcmp(name, st->prefix, sizeof(name)) != 0) {
			memset(st, 0, sizeof(*st));
			memcpy(st->prefix, name, sizeof(name));
		}
	}
	atomic_store_explicit(&us->batch_rules, u->cfg->nbatch, memory_order_relaxed);
}

/* ------------------------------------------------------------ set-up */

static void *
map_buf(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* The buffer of a slot: a part is cut once it holds part-size bytes, and
 * the message or the stage that gets it there adds at most the codec's
 * bound for it (its bytes plus an eighth, plus a held-back block of 128
 * KiB). Only the pages the compressed bytes reach are touched. */
static size_t
object_cap(const struct uploader *u)
{
	uint64_t m = (uint64_t)u->ring.max_message + 8;

	if (m < STAGE_CAP)
		m = STAGE_CAP;
	return (size_t)(u->cfg->part_size + m + m / 4 + (1u << 20));
}

/* From the compressing thread: a job is over. */
static void
wake_loop(void *arg)
{
	struct uploader *u = arg;

	s3_multi_wakeup(u->multi);
}

static int
make_slots(struct uploader *u)
{
	struct batch_engine *b = u->batch;
	size_t cap = object_cap(u);

	b->nslots = u->cfg->batch_flushes ? u->cfg->batch_flushes : 1;
	b->slots = calloc(b->nslots, sizeof(*b->slots));
	if (b->slots == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < b->nslots; i++) {
		struct batch_slot *s = &b->slots[i];

		s->cap = cap;
		s->buf = map_buf(cap);
		s->scratch_cap = (size_t)u->ring.max_message + 1;
		s->scratch = map_buf(s->scratch_cap);
		s->stage[0] = map_buf(2 * STAGE_CAP);
		s->stage[1] = s->stage[0] ? s->stage[0] + STAGE_CAP : NULL;
		s->level = -1;
		if (s->buf == NULL || s->scratch == NULL || s->stage[0] == NULL)
			return -ENOMEM;
	}
	b->worker = batch_worker_new(wake_loop, u);
	return b->worker == NULL ? -ENOMEM : 0;
}

bool
batch_rules_fit(const struct uploader *u, const struct config *cfg)
{
	for (unsigned i = 0; i < cfg->nbatch; i++) {
		const struct batch_rule *br = &cfg->batch[i];

		if (br->max_bytes > u->ring.capacity / 4) {
			log_msg(LOG_LEVEL_ERROR, "batch \"%s\": max-bytes %llu does not fit a "
			    "quarter of the ring (%llu bytes): the batch's records stay in "
			    "the ring until its object is confirmed", br->prefix,
			    (unsigned long long)br->max_bytes,
			    (unsigned long long)u->ring.capacity);
			return false;
		}
	}
	return true;
}

/* The earlier run's CLOSED batches hold head at their first position from
 * the start, whether or not a member of theirs is read again, in the order
 * of their spans. */
static void
hold_rebuilds(struct uploader *u)
{
	struct batch_engine *b = u->batch;

	for (;;) {
		int best = -1;

		for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
			const struct journal_batch *jb = journal_batch_at(&u->journal, (int)i);

			if (atomic_load_explicit(&jb->state, memory_order_relaxed) !=
			    JOURNAL_BATCH_CLOSED || jb->epoch == u->journal.f->epoch ||
			    b->rebuild_pending[i])
				continue;
			if (best < 0 || jb->first < journal_batch_at(&u->journal, best)->first)
				best = (int)i;
		}
		if (best < 0)
			return;
		const struct journal_batch *jb = journal_batch_at(&u->journal, best);
		b->rebuild_tslot[best] = inflight_push(&u->journal.table, jb->first,
		    jb->first + RING_ALIGN);
		b->rebuild_pending[best] = true;
		b->any_rebuild = true;
	}
}

int
batch_init(struct uploader *u)
{
	struct batch_engine *b;

	if (!batch_rules_fit(u, u->cfg))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	u->batch = b;
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		b->flush[i].kind = XFER_BATCH;
		b->rebuild_tslot[i] = -1;
	}
	b->nfree = JOURNAL_BATCH_ENTRIES;
	b->clock_off = realtime_ns() - mono_ns();
	hold_rebuilds(u);
	if (make_slots(u) < 0)
		return -ENOMEM;
	publish_rules(u);
	return 0;
}

void
batch_free(struct uploader *u)
{
	struct batch_engine *b = u->batch;

	if (b == NULL)
		return;
	/* Runs what is queued (the codecs and buffers are still there). */
	batch_worker_free(b->worker);
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++)
		spool_stream_abort(b->flush[i].spool);
	for (unsigned i = 0; b->slots != NULL && i < b->nslots; i++) {
		struct batch_slot *s = &b->slots[i];

		if (s->f != NULL && s->f->state == FL_RUNNING)
			s3_multi_cancel(u->multi, s->s3);
		s3_client_free(s->s3);
		batch_codec_free(s->codec);
		if (s->buf != NULL)
			munmap(s->buf, s->cap);
		if (s->scratch != NULL)
			munmap(s->scratch, s->scratch_cap);
		if (s->stage[0] != NULL)
			munmap(s->stage[0], 2 * STAGE_CAP);
	}
	free(b->slots);
	free(b);
	u->batch = NULL;
}

/* ------------------------------------------------------------ closing */

static struct batch_flush *
new_flush(struct batch_engine *b)
{
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++)
		if (b->flush[i].state == FL_FREE) {
			struct batch_flush *f = &b->flush[i];

			memset(f, 0, sizeof(*f));
			f->kind = XFER_BATCH;
			f->state = FL_QUEUED;
			b->nfree--;
			return f;
		}
	return NULL;
}

/* The object key: the template at the first message's time, then the
 * key-prefix in front. */
static int
object_key(struct uploader *u, const struct batch_rule *br, uint64_t first,
    uint64_t put_ns, char *out, size_t cap, size_t *key_off)
{
	struct batch_key_fields kf = {
		.t = (time_t)((put_ns + u->batch->clock_off) / SEC),
		.prefix = br->prefix, .ext = batch_compression_ext(br->compression),
		.ring_id = u->ring.ring_id, .pos = first,
	};
	size_t n = strlen(u->cfg->key_prefix);
	int rc;

	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(out, u->cfg->key_prefix, n);
	rc = batch_key_expand(br->key, &kf, out + n, cap - n);
	if (rc < 0)
		return rc;
	if (n + (size_t)rc > S3_KEY_MAX)
		return -ENAMETOOLONG;
	*key_off = n;
	return 0;
}

/* Fixes the span of rule's open batch and queues its object. Returns
 * false if it stays open (no flush free: batch_room() keeps the loop from
 * reading while none is). */
static bool
close_open(struct uploader *u, int rule)
{
	struct batch_engine *b = u->batch;
	struct batch_open *o = &b->open[rule];
	const struct batch_rule *br = &u->cfg->batch[rule];
	struct batch_flush *f;
	int rc;

	if (!o->open)
		return true;
	f = new_flush(b);
	if (f == NULL)
		return false;
	f->jb = (struct journal_batch){
		.nrec = o->nrec, .first = o->first, .end = o->end,
		.max_bytes = br->max_bytes, .framing = (uint8_t)br->framing,
		.compression = (uint8_t)br->compression, .level = (int8_t)br->level,
	};
	snprintf(f->jb.prefix, sizeof(f->jb.prefix), "%s", br->prefix);
	rc = object_key(u, br, o->first, o->first_put_ns, f->jb.key,
	    sizeof(f->jb.key), &f->key_off);
	if (rc < 0) {
		/* The template was checked; only a key-prefix too long for
		 * what it expands to gets here. A key that fits, and still
		 * never repeats, rather than a batch that never closes. */
		log_kv(LOG_LEVEL_ERROR, "batch: key-prefix + key over 1024 bytes; sent under a short key instead",
		    "prefix", br->prefix, (char *)NULL);
		snprintf(f->jb.key, sizeof(f->jb.key), "batch-%016llx-%016llx%s",
		    (unsigned long long)u->ring.ring_id, (unsigned long long)o->first,
		    batch_compression_ext(br->compression));
		f->key_off = 0;
	}
	f->jidx = journal_batch_close(&u->journal, &f->jb);
	if (f->jidx == -ENOSPC && journal_batch_evict_done(&u->journal) == 0) {
		/* Every entry in use, some by confirmed batches that head
		 * has not passed yet (held by another rule's open batch,
		 * say): waiting for them could wait for ever. */
		if (!b->evict_logged)
			log_kv(LOG_LEVEL_WARN, "batch: the journal's batch table is full; a crash now may upload some batched messages twice",
			    (char *)NULL);
		b->evict_logged = true;
		f->jidx = journal_batch_close(&u->journal, &f->jb);
	}
	if (f->jidx < 0) {
		/* Every entry CLOSED: as many batches are being sent as
		 * there are flushes. */
		f->state = FL_FREE;
		b->nfree++;
		return false;
	}
	f->tslot = o->tslot;
	f->rule = rule;
	f->first_put_ns = o->first_put_ns;
	f->pos = o->first;
	o->open = false;
	o->last_end = o->end;
	return true;
}

/* An earlier run's CLOSED batch, queued again with the same span and key. */
static void
queue_rebuild(struct uploader *u, int jidx)
{
	struct batch_engine *b = u->batch;
	const struct journal_batch *jb = journal_batch_at(&u->journal, jidx);
	struct batch_flush *f = new_flush(b);

	if (f == NULL || jb == NULL)
		return;
	f->jb = *jb;
	f->jidx = jidx;
	f->tslot = b->rebuild_tslot[jidx];
	f->rule = rule_of(u->cfg, jb->prefix);
	f->key_off = 0;
	f->first_put_ns = mono_ns();
	f->pos = jb->first;
	b->rebuild_tslot[jidx] = -1;
	log_kv(LOG_LEVEL_INFO, "batch: sending again what the last run closed",
	    "key", jb->key, (char *)NULL);
}

/* ------------------------------------------------------------ taking */

bool
batch_room(const struct uploader *u)
{
	const struct batch_engine *b = u->batch;

	/* A record can close one batch and open another: one flush and
	 * one journal entry must be free for it. */
	return b == NULL || b->nfree > 0;
}

/* A record of rule (or of an earlier run's batch jidx) that belongs in
 * nothing open: alone. */
static bool
alone(struct uploader *u, int rule)
{
	struct ring_batch_stats *st = stats(u, rule);

	if (st != NULL)
		add_stat(&st->alone, 1);
	return false;
}

static bool
take_rebuild(struct uploader *u, struct upload *up, int jidx, int rule)
{
	struct batch_engine *b = u->batch;
	const struct journal_batch *jb = journal_batch_at(&u->journal, jidx);

	/* An open batch of the same prefix that began before this span
	 * would hold its records too: it ends here. */
	if (rule >= 0 && b->open[rule].open && b->open[rule].first < jb->first)
		(void)close_open(u, rule); /* or else its scan leaves them (others()) */
	/* A record framed over its max-bytes was never the batch's: it goes
	 * alone, whatever became of the batch. */
	if (member_len((enum batch_framing)jb->framing, &up->m) > jb->max_bytes)
		return false;
	/* Confirmed by the earlier run: skipped. Otherwise held from the
	 * start (hold_rebuilds), and left to the batch's scan. */
	return true;
}

bool
batch_take(struct uploader *u, struct upload *up)
{
	struct batch_engine *b = u->batch;
	const struct ring_msg *m = &up->m;
	int rule, jidx;

	if (b == NULL || (u->cfg->nbatch == 0 && m->pos >= u->journal.prev_batch_end))
		return false;
	up->m.key = up->key;
	rule = rule_of(u->cfg, up->key);
	jidx = journal_batch_find(&u->journal, m->pos, up->key);
	if (jidx >= 0)
		return take_rebuild(u, up, jidx, rule);
	if (rule < 0)
		return false;

	const struct batch_rule *br = &u->cfg->batch[rule];
	struct batch_open *o = &b->open[rule];
	uint64_t n = member_len(br->framing, m);

	if (n > br->max_bytes)
		return alone(u, rule);
	/* Read late (a hole the consumer read past) inside the span of a
	 * batch this run closed: that batch's, whose scan waited for it. */
	if (m->pos < o->last_end && journal_batch_find_ours(&u->journal, m->pos, up->key) >= 0)
		return true;
	/* Late, and below every span: alone, or it would widen a span over
	 * records that are already another batch's. */
	if ((o->open && m->pos < o->first) || (!o->open && m->pos < o->last_end))
		return alone(u, rule);
	if (!o->open) {
		int t = inflight_push(&u->journal.table, m->pos, m->end);

		if (t < 0)
			return false; /* cannot happen: the loop checked */
		*o = (struct batch_open){ .open = true, .tslot = t, .first = m->pos,
		    .end = m->end, .first_put_ns = m->put_ns, .opened_ns = mono_ns(),
		    .last_end = o->last_end };
	} else if (m->end > o->end) {
		o->end = m->end;
	}
	o->nrec++;
	o->bytes += n;
	struct ring_batch_stats *st = stats(u, rule);
	if (st != NULL) {
		add_stat(&st->messages, 1);
		add_stat(&st->bytes, framed(br->framing, m));
	}
	if (o->bytes >= br->max_bytes)
		(void)close_open(u, rule); /* or at the next record, or by age */
	return true;
}

/* ------------------------------------------------------------ building */

static void find_overlaps(struct uploader *u, struct batch_flush *f);

static struct batch_slot *
free_slot(struct batch_engine *b)
{
	for (unsigned i = 0; i < b->nslots; i++)
		if (b->slots[i].f == NULL)
			return &b->slots[i];
	return NULL;
}

static int
start_scan(struct uploader *u, struct batch_flush *f, struct batch_slot *s)
{
	enum batch_compression comp = (enum batch_compression)f->jb.compression;

	if (s->codec == NULL || s->comp != comp || s->level != f->jb.level) {
		batch_codec_free(s->codec);
		s->codec = batch_codec_new(comp, f->jb.level);
		s->comp = comp;
		s->level = f->jb.level;
		if (s->codec == NULL) {
			s->level = -1;
			return -ENOMEM;
		}
	}
	if (batch_codec_begin(s->codec) < 0)
		return -EIO;
	s->f = f;
	s->staged = 0;
	s->pending = s->ending = false;
	f->slot = s;
	f->out = (struct batch_out){ .buf = s->buf, .cap = s->cap };
	f->pos = f->jb.first;
	f->nrec = 0;
	f->bytes = 0;
	f->mp = f->ended = false;
	f->nparts = 0;
	f->stored = 0;
	f->upload_id[0] = '\0';
	f->state = FL_SCAN;
	find_overlaps(u, f);
	return 0;
}

/* Frees the slot for the next object. A job still running on it is
 * waited for (at most one stage's compression). Its buffer keeps the pages
 * the largest object built in it reached (at most object_cap()): giving
 * them back after each object made the uploader's peak a matter of which
 * two objects happened to be built at once (it went on growing over 100
 * million lines), and every object paid its page faults again. */
static void
release_slot(struct uploader *u, struct batch_flush *f)
{
	struct batch_slot *s = f->slot;

	if (s == NULL)
		return;
	if (s->pending) {
		batch_job_wait(u->batch->worker, &s->job);
		s->pending = false;
	}
	s->staged = 0;
	s->ending = false;
	s->f = NULL;
	f->slot = NULL;
}

static void
free_flush(struct uploader *u, struct batch_flush *f)
{
	spool_stream_abort(f->spool); /* a dead letter left half-written */
	f->spool = NULL;
	f->to_spool = false;
	release_slot(u, f);
	free(f->parts);
	f->parts = NULL;
	f->nparts = f->parts_cap = 0;
	f->state = FL_FREE;
	u->batch->nfree++;
}

/* Has the consumer a hole at pos? Then the scan waits for it. */
static bool
is_hole(const struct ring_consumer *c, uint64_t pos)
{
	for (unsigned i = 0; i < c->nholes; i++)
		if (c->holes[i].pos == pos)
			return true;
	return false;
}

static void start_put(struct uploader *u, struct batch_flush *f);
static void spool_piece(struct uploader *u, struct batch_flush *f);
static void spooled(struct uploader *u, struct batch_flush *f, int rc,
    const char *reason);
static void send_part(struct uploader *u, struct batch_flush *f);
static void done(struct uploader *u, struct batch_flush *f);
static void restart_multipart(struct uploader *u, struct batch_flush *f);
static void succeeded(struct uploader *u, struct batch_flush *f);

/* Other batches' spans that overlap f's, whose records f's scan leaves to
 * them: a batch opened by a late record below an earlier run's span grows
 * over it, and a rule may have been narrowed or widened across a restart. */
static void
find_overlaps(struct uploader *u, struct batch_flush *f)
{
	f->noverlap = 0;
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		const struct journal_batch *jb = journal_batch_at(&u->journal, (int)i);

		if ((int)i == f->jidx ||
		    atomic_load_explicit(&jb->state, memory_order_relaxed) == JOURNAL_BATCH_FREE)
			continue;
		if (jb->first < f->jb.end && f->jb.first < jb->end)
			f->overlap[f->noverlap++] = (uint8_t)i;
	}
}

static bool
others(struct uploader *u, const struct batch_flush *f, const struct ring_msg *m)
{
	for (unsigned k = 0; k < f->noverlap; k++) {
		const struct journal_batch *jb = journal_batch_at(&u->journal, f->overlap[k]);

		if (m->pos >= jb->first && m->pos < jb->end &&
		    strncmp(m->key, jb->prefix, strlen(jb->prefix)) == 0)
			return true;
	}
	return false;
}

/* A multipart upload begun for f that will not be completed: aborted now
 * if it can be, else left in the journal for the next start to abort. */
static void
drop_multipart(struct uploader *u, struct batch_flush *f)
{
	if (!f->mp)
		return;
	if (f->upload_id[0] != '\0' &&
	    s3_abort_multipart(u->sync_s3, f->jb.key, f->upload_id) == 0) {
		journal_mpu_end(&u->journal, f->mp_jidx);
		atomic_fetch_add_explicit(&u->ring.hdr->upstats.multipart_aborted, 1,
		    memory_order_relaxed);
	} else if (f->upload_id[0] == '\0') {
		journal_mpu_end(&u->journal, f->mp_jidx); /* never created */
	}
	f->mp = false;
}

/* Back to the queue: built again from its first record later. */
static void
requeue(struct uploader *u, struct batch_flush *f)
{
	drop_multipart(u, f);
	release_slot(u, f);
	f->state = FL_QUEUED;
}

/* The compressor failed: the object is built again from its first
 * record. */
static void
codec_failed(struct uploader *u, struct batch_flush *f)
{
	log_kv(LOG_LEVEL_ERROR, "batch: the compressor failed; building the object again",
	    "key", f->jb.key, (char *)NULL);
	requeue(u, f);
}

/* Takes the result of the slot's job once the thread is done with it.
 * Returns 1 if the slot is idle (f's codec and buffer are the loop's), 0
 * while the job runs, -1 if it failed (f requeued). */
static int
collect(struct uploader *u, struct batch_flush *f)
{
	struct batch_slot *s = f->slot;

	if (!s->pending)
		return 1;
	if (!batch_job_done(&s->job))
		return 0;
	s->pending = false;
	if (s->job.rc < 0) {
		codec_failed(u, f);
		return -1;
	}
	return 1;
}

/* Hands stage[cur] (and the end of the stream, if end) to the thread, the
 * slot idle; the loop goes on in the other stage. Returns false if the
 * buffer is short of the bound (it cannot be: it holds part-size and a
 * quarter more than a stage and 1 MiB, and a part is cut before at
 * part-size). */
static bool
submit(struct uploader *u, struct batch_flush *f, bool end)
{
	struct batch_slot *s = f->slot;
	size_t need = batch_codec_bound_raw(s->codec, s->staged);

	if (end)
		need += batch_codec_bound(s->codec, 0, 0);
	if (f->out.cap - f->out.len < need)
		return false;
	s->job = (struct batch_job){ .codec = s->codec, .in = s->stage[s->cur],
	    .n = s->staged, .end = end, .out = &f->out };
	s->pending = true;
	s->ending = end;
	batch_worker_submit(u->batch->worker, &s->job);
	s->cur ^= 1;
	s->staged = 0;
	return true;
}

/* The stream is ended and compressed: the object (or its last part) goes. */
static void
built(struct uploader *u, struct batch_flush *f)
{
	f->ended = true;
	if (f->mp || f->to_spool) {
		send_part(u, f);
		return;
	}
	if (f->nrec == 0) {
		/* Every record of the span changed since it was read (each
		 * counted corrupt): an empty object would only overwrite one
		 * an earlier run may have sent whole. */
		done(u, f);
		return;
	}
	f->crc = crc32c(0, f->out.buf, f->out.len);
	f->req = REQ_PUT;
	start_put(u, f);
}

/* A record read by ring_scan() whose copy does not match its CRC: it
 * changed in the ring since the producer committed it. Counted corrupt
 * and given up in the ring, so that a later scan of the span (after a
 * restart) skips it without counting it again. Unless the ring was
 * truncated under us (the copy read zero pages): then nothing is counted
 * and the batch goes back to the queue, for the loop to see the ring
 * lost. Returns false in that case. */
static bool
scanned_corrupt(struct uploader *u, struct batch_flush *f, const struct ring_msg *m)
{
	if (atomic_load_explicit(&u->ring.lost, memory_order_acquire)) {
		requeue(u, f);
		return false;
	}
	atomic_fetch_add_explicit(&u->ring.hdr->corrupt, 1, memory_order_relaxed);
	(void)ring_give_up(&u->ring, m); /* -EFAULT: the loop sees the ring lost */
	log_kv(LOG_LEVEL_ERROR, "batch: a record does not match its CRC in the ring; counted corrupt, not sent",
	    "key", f->jb.key, "record", m->key, (char *)NULL);
	return true;
}

/* Where batch_frame() puts the body of a message of key_len bytes. */
static size_t
frame_body_off(enum batch_framing fr, size_t key_len)
{
	return fr == BATCH_FRAME_LENGTH ? 2 + key_len + 4 : 0;
}

/* A record too large for a stage, compressed here with the slot idle and
 * its stage empty: copied out of the ring into the slot's scratch first,
 * and compressed from there once the copy checks out. Returns false if f
 * was requeued. */
static bool
put_large(struct uploader *u, struct batch_flush *f, const struct ring_msg *m)
{
	struct batch_slot *s = f->slot;

	/* The length passed ring_record_check(): at most max_message. */
	memcpy(s->scratch, m->body, m->body_len);
	if (crc32c(0, s->scratch, m->body_len) != m->body_crc)
		return scanned_corrupt(u, f, m);
	long n = batch_codec_put(s->codec, (enum batch_framing)f->jb.framing,
	    m->key, m->key_len, s->scratch, m->body_len, &f->out);

	if (n < 0) {
		codec_failed(u, f);
		return false;
	}
	f->nrec++;
	f->bytes += (uint64_t)n;
	return true;
}

/* Reads up to SCAN_BUDGET framed bytes of f from the ring into the
 * staging buffers, and hands them to the compressing thread. Returns false
 * if it made no progress: waiting for a record still being written, or
 * for the thread (which wakes the loop when its job is over). */
static bool
scan(struct uploader *u, struct batch_flush *f)
{
	struct batch_slot *s = f->slot;
	size_t plen = strlen(f->jb.prefix);
	uint64_t budget = 0, pos0 = f->pos;
	enum batch_framing fr = (enum batch_framing)f->jb.framing;
	char key[RING_MAX_KEY + 1];
	struct ring_msg m;
	int rc, idle;

	if ((idle = collect(u, f)) < 0)
		return false;
	if (idle && s->ending) {
		s->ending = false;
		built(u, f);
		return true;
	}
	while (budget < SCAN_BUDGET) {
		rc = ring_scan(&u->ring, &f->pos, f->jb.end, &m, key, sizeof(key));
		if (rc == -EAGAIN) {
			/* Still being written: a hole the consumer read past,
			 * or (an earlier run's span, sent again) a record the
			 * consumer has not reached yet. Anything else is a
			 * scribbled tag the consumer has given up already. */
			if (f->pos >= u->cons.cursor || is_hole(&u->cons, f->pos))
				return f->pos != pos0; /* again next time round */
			f->pos += RING_ALIGN;
			continue;
		}
		if (rc == -EILSEQ) {
			/* Its header or key changed in the ring since the
			 * consumer checked them. */
			atomic_fetch_add_explicit(&u->ring.hdr->corrupt, 1, memory_order_relaxed);
			log_kv(LOG_LEVEL_ERROR, "batch: a record changed in the ring after it was read; counted corrupt, not sent",
			    "key", f->jb.key, (char *)NULL);
			continue;
		}
		if (rc < 0) {
			log_kv(LOG_LEVEL_ERROR, "batch: the ring cannot be read; its records stay in it",
			    "key", f->jb.key, "error", strerror(-rc), (char *)NULL);
			requeue(u, f); /* the loop sees the alarm */
			return false;
		}
		if (rc == 0)
			break;
		if (strncmp(m.key, f->jb.prefix, plen) != 0 ||
		    member_len(fr, &m) > f->jb.max_bytes ||
		    (f->noverlap != 0 && others(u, f, &m)))
			continue;
		/* Framed straight from the ring, then the copy is checked:
		 * what is compressed is what was checked. */
		uint8_t *dst = s->stage[s->cur] + s->staged;
		long n = batch_frame(fr, m.key, m.key_len, m.body, m.body_len, dst,
		    STAGE_CAP - s->staged);

		if (n > 0 && crc32c(0, dst + frame_body_off(fr, m.key_len), m.body_len) !=
		    m.body_crc) {
			if (!scanned_corrupt(u, f, &m))
				return false;
			continue;
		}
		if (n == -ENOBUFS) {
			/* The stage is full, or the record is larger than one:
			 * the stage goes to the thread first, and a large
			 * record is compressed here once it is done. */
			if (idle == 0 && (idle = collect(u, f)) < 0)
				return false;
			if (idle == 0) {
				f->pos = m.pos; /* the thread is busy: wait */
				return f->pos != pos0;
			}
			if (f->out.len >= u->cfg->part_size) {
				f->pos = m.pos; /* a part first */
				send_part(u, f);
				return true;
			}
			if (s->staged > 0) {
				if (!submit(u, f, false))
					goto cut;
				idle = 0;
				f->pos = m.pos; /* framed into the other stage */
				continue;
			}
			if (f->out.cap - f->out.len <
			    batch_codec_bound(s->codec, m.key_len, m.body_len))
				goto cut;
			if (!put_large(u, f, &m))
				return false;
			budget += m.body_len + 64;
			continue;
		}
		if (n < 0) {
			codec_failed(u, f);
			return false;
		}
		s->staged += (size_t)n;
		f->nrec++;
		f->bytes += (uint64_t)n;
		budget += (uint64_t)n + 64;
	}
	if (f->pos < f->jb.end)
		return true;
	/* The span is read: what is staged goes with the end of the stream,
	 * once the thread is done with the last stage. */
	if (idle == 0 && (idle = collect(u, f)) < 0)
		return false;
	if (idle == 0)
		return budget > 0;
	if (f->out.len >= u->cfg->part_size) {
		send_part(u, f);
		return true;
	}
	if (!submit(u, f, true)) {
		m.pos = f->pos;
		goto cut;
	}
	return true;
cut:
	/* Cannot happen (see submit()): a part, then, with the record in
	 * hand read again after it. */
	log_kv(LOG_LEVEL_WARN, "batch: a part cut early", "key", f->jb.key,
	    (char *)NULL);
	f->pos = m.pos;
	send_part(u, f);
	return true;
}

/* ------------------------------------------------------------ sending */

static void
wait_flush(struct batch_flush *f, uint64_t delay_ms)
{
	f->due_ns = mono_ns() + delay_ms * MS;
	f->state = FL_WAITING;
}

static void
done(struct uploader *u, struct batch_flush *f)
{
	if (f->tslot >= 0)
		inflight_done(&u->journal.table, (uint32_t)f->tslot);
	journal_batch_done(&u->journal, f->jidx);
	free_flush(u, f);
}

static void
confirmed(struct uploader *u, struct batch_flush *f)
{
	struct ring_batch_stats *st = stats(u, f->rule);

	upload_note_uploaded(u, f->nrec, f->bytes);
	add_stat(&u->ring.hdr->upstats.batch_objects, 1);
	add_stat(&u->ring.hdr->upstats.batch_messages, f->nrec);
	if (st != NULL) {
		add_stat(&st->objects, 1);
		add_stat(&st->uploaded_bytes, f->bytes);
		add_stat(&st->stored_bytes, f->stored + (f->req == REQ_PUT ? f->out.len : 0));
	}
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char n[24];
		snprintf(n, sizeof(n), "%u", f->nrec);
		log_kv(LOG_LEVEL_DEBUG, "batch uploaded", "key", f->jb.key, "messages", n,
		    (char *)NULL);
	}
	done(u, f);
}

/* The message's own fault or given up: the object goes to the spool, under
 * its key, as one message would. */
/* The name of an object's dead-letter file: the run and the object's first
 * record, so that building it again replaces the same file. */
#define SPOOL_HINT_MAX 64
static void
spool_hint(const struct uploader *u, const struct batch_flush *f,
    char hint[SPOOL_HINT_MAX])
{
	snprintf(hint, SPOOL_HINT_MAX, "%llu-%llu-batch", (unsigned long long)u->epoch,
	    (unsigned long long)f->jb.first);
}

static void
dead_letter(struct uploader *u, struct batch_flush *f, const char *reason)
{
	char hint[SPOOL_HINT_MAX];
	const char *key = f->jb.key + f->key_off;
	int rc;

	spool_hint(u, f, hint);
	rc = spool_write(u->spool, hint, key, strlen(key), f->out.buf, f->out.len,
	    reason, f->rs.tries);
	spooled(u, f, rc, reason);
}

/* After a write to the spool: rc < 0 raises the alarm and the same write
 * is tried again in 5 s; the last one counts the object's messages. */
static bool
spool_ok(struct uploader *u, struct batch_flush *f, int rc)
{
	if (rc < 0) {
		status_raise(u, RING_UPLOADER_SPOOL_ALARM, "dead-letter spool unusable",
		    strerror(-rc));
		wait_flush(f, 5000);
		return false;
	}
	status_clear(u, RING_UPLOADER_SPOOL_ALARM, "dead-letter spool unusable");
	return true;
}

static void
spooled(struct uploader *u, struct batch_flush *f, int rc, const char *reason)
{
	if (!spool_ok(u, f, rc))
		return;
	add_stat(&u->ring.hdr->dead_lettered, f->nrec);
	log_kv(LOG_LEVEL_WARN, "batch object dead-lettered", "key", f->jb.key + f->key_off,
	    "reason", reason, "spool", u->spool, (char *)NULL);
	done(u, f);
}

/* A multipart object refused for good, or its dead-letter file not
 * committed: back to the queue, to be built again from its first record
 * into the spool, not before not_before_ns (CLOCK_MONOTONIC). */
static void
rebuild_into_spool(struct uploader *u, struct batch_flush *f, uint64_t not_before_ns)
{
	requeue(u, f);
	f->to_spool = true;
	f->due_ns = not_before_ns;
}

/* The output so far (the object's next piece, the last once the codec was
 * ended) goes to the dead-letter file of a multipart object refused for
 * good; then the scan goes on, as after a part. */
static void
spool_piece(struct uploader *u, struct batch_flush *f)
{
	const char *key = f->jb.key + f->key_off;
	int rc = 0;

	f->req = REQ_SPOOL;
	if (f->ended && f->nrec == 0) {
		/* Every record changed since it was read (each counted
		 * corrupt): nothing to keep. */
		done(u, f);
		return;
	}
	if (f->spool == NULL) {
		char hint[SPOOL_HINT_MAX];

		spool_hint(u, f, hint);
		f->spool = spool_stream_open(u->spool, hint, key, strlen(key),
		    f->spool_reason, f->spool_tries, &rc);
	}
	if (f->spool != NULL)
		rc = spool_stream_write(f->spool, f->out.buf, f->out.len);
	if (!spool_ok(u, f, rc))
		return;
	f->stored += f->out.len;
	if (f->ended) {
		rc = spool_stream_commit(f->spool);
		f->spool = NULL;
		if (rc < 0) {
			/* Its pieces are gone with the file: built again, once
			 * the spool's 5 s are over. */
			log_kv(LOG_LEVEL_ERROR, "batch: the dead-letter file was not committed; building it again in 5 s",
			    "key", key, "error", strerror(-rc), (char *)NULL);
			(void)spool_ok(u, f, rc);
			rebuild_into_spool(u, f, f->due_ns);
			return;
		}
		spooled(u, f, 0, f->spool_reason);
		return;
	}
	f->out.len = 0;
	f->state = FL_SCAN;
}

static void
decide(struct uploader *u, struct batch_flush *f, int rc)
{
	const struct s3_response *r = s3_response(f->slot->s3);
	struct retry_decision d;

	if (rc == -EIO && r->verdict.restart_upload && f->mp) {
		log_kv(LOG_LEVEL_WARN, "batch: the multipart upload is gone; building the object again",
		    "key", f->jb.key, (char *)NULL);
		restart_multipart(u, f);
		return;
	}
	upload_decide_object(u, &f->rs, f->first_put_ns, f->slot->s3, rc, r, &d);
	if (d.action == RETRY_DEAD_LETTER && f->req != REQ_PUT) {
		/* A large object's earlier parts are no longer in memory: the
		 * upload is aborted and the object built again from its first
		 * record, into the spool instead of S3. */
		log_kv(LOG_LEVEL_WARN, "batch: a multipart object refused for good; building it again into the spool",
		    "key", f->jb.key, "reason", d.reason, (char *)NULL);
		snprintf(f->spool_reason, sizeof(f->spool_reason), "%.*s",
		    (int)sizeof(f->spool_reason) - 1, d.reason); /* cut short on purpose */
		f->spool_tries = f->rs.tries;
		rebuild_into_spool(u, f, 0);
		return;
	}
	switch (d.action) {
	case RETRY_UPLOADED:
		succeeded(u, f);
		return;
	case RETRY_NOW:
		start_put(u, f);
		return;
	case RETRY_PAUSE:
	case RETRY_AGAIN:
	case RETRY_CORRUPT: /* our own buffer: changed in transit */
		wait_flush(f, d.delay_ms ? d.delay_ms : 100);
		return;
	case RETRY_DEAD_LETTER:
		dead_letter(u, f, d.reason);
		return;
	case RETRY_HAND_BACK:
		requeue(u, f);
		return;
	}
}

/* Makes the slot's client; false (and a wait) if memory is short. */
static bool
client(struct uploader *u, struct batch_flush *f)
{
	struct batch_slot *s = f->slot;

	if (s->s3 == NULL) {
		s->s3 = s3_client_new(&u->s3cfg, u->creds);
		if (s->s3 == NULL) {
			wait_flush(f, 1000);
			return false;
		}
		s->region_gen = 0;
	}
	upload_adopt_region(u, s->s3, &s->region_gen);
	return true;
}

/* Sends f's request f->req (again). */
static void
start_put(struct uploader *u, struct batch_flush *f)
{
	struct batch_slot *s = f->slot;
	const char *rel = f->jb.key + f->key_off;
	struct s3_part *pt;
	int rc;

	if (!client(u, f))
		return;
	if ((f->req == REQ_PUT || f->req == REQ_CREATE) &&
	    objopts_headers(u->cfg->obj, u->cfg->nobj, rel, u->hdrs) < 0) {
		log_kv(LOG_LEVEL_ERROR, "batch: the object options do not fit a request; sent without them",
		    "key", f->jb.key, (char *)NULL);
		u->hdrs->n = 0;
	}
	f->t0 = mono_ns();
	switch (f->req) {
	case REQ_PUT:
		rc = s3_prepare_put_headers(s->s3, f->jb.key, f->out.buf, f->out.len,
		    f->crc, u->hdrs->h, u->hdrs->n);
		break;
	case REQ_CREATE:
		rc = s3_prepare_create_multipart(s->s3, f->jb.key, u->cfg->part_checksums,
		    u->hdrs->h, u->hdrs->n, f->upload_id, sizeof(f->upload_id));
		break;
	case REQ_PART:
		pt = &f->parts[f->nparts];
		rc = s3_prepare_upload_part(s->s3, f->jb.key, f->upload_id,
		    (int)f->nparts + 1, f->out.buf, f->out.len, u->cfg->part_checksums,
		    f->crc, pt);
		if (rc == 0 && !u->cfg->part_checksums)
			s3_check_body(s->s3, f->crc);
		break;
	case REQ_COMPLETE:
	default:
		rc = s3_prepare_complete_multipart(s->s3, f->jb.key, f->upload_id,
		    f->parts, f->nparts);
		break;
	}
	if (rc == 0)
		rc = s3_multi_start(u->multi, s->s3, f);
	if (rc < 0) {
		decide(u, f, rc);
		return;
	}
	f->state = FL_RUNNING;
}

/* The output so far is a part (the last once the codec was ended): the
 * upload is created first if this is its first part. */
static void
send_part(struct uploader *u, struct batch_flush *f)
{
	if (f->to_spool) {
		spool_piece(u, f);
		return;
	}
	if (f->nparts + 1 > f->parts_cap) {
		unsigned cap = f->parts_cap ? f->parts_cap * 2 : 8;
		struct s3_part *np;

		if (cap > S3_MAX_PARTS)
			cap = S3_MAX_PARTS;
		np = f->nparts + 1 > cap ? NULL : realloc(f->parts, cap * sizeof(*np));
		if (np == NULL) {
			log_kv(LOG_LEVEL_ERROR, "batch: no room for another part; trying again",
			    "key", f->jb.key, (char *)NULL);
			wait_flush(f, 1000);
			f->req = REQ_PART;
			return;
		}
		f->parts = np;
		f->parts_cap = cap;
	}
	f->crc = crc32c(0, f->out.buf, f->out.len);
	if (!f->mp) {
		f->mp_jidx = journal_mpu_begin(&u->journal, f->jb.first, f->jb.key);
		if (f->mp_jidx < 0) {
			/* Every entry in use by large messages: later. */
			f->req = REQ_CREATE;
			wait_flush(f, 100);
			return;
		}
		f->mp = true;
		f->req = REQ_CREATE;
	} else {
		f->req = REQ_PART;
	}
	start_put(u, f);
}

/* The multipart upload is gone (NoSuchUpload) or must be dropped: the
 * batch is built again from its first record. */
static void
restart_multipart(struct uploader *u, struct batch_flush *f)
{
	if (f->mp)
		journal_mpu_end(&u->journal, f->mp_jidx);
	f->mp = false;
	release_slot(u, f);
	f->state = FL_QUEUED;
}

/* A request of f succeeded: the next step. */
static void
succeeded(struct uploader *u, struct batch_flush *f)
{
	struct ring_upstats *st = &u->ring.hdr->upstats;

	switch (f->req) {
	case REQ_PUT:
		confirmed(u, f);
		return;
	case REQ_CREATE:
		journal_mpu_opened(&u->journal, f->mp_jidx, f->upload_id);
		atomic_fetch_add_explicit(&st->multipart_started, 1, memory_order_relaxed);
		f->req = REQ_PART;
		start_put(u, f);
		return;
	case REQ_PART:
		f->parts[f->nparts].number = (int)f->nparts + 1;
		f->nparts++;
		f->stored += f->out.len;
		if (f->ended) {
			f->req = REQ_COMPLETE;
			start_put(u, f);
			return;
		}
		f->out.len = 0;
		f->state = FL_SCAN;
		return;
	case REQ_SPOOL: /* written, not sent: no request succeeds */
		return;
	case REQ_COMPLETE:
		journal_mpu_end(&u->journal, f->mp_jidx);
		atomic_fetch_add_explicit(&st->multipart_completed, 1, memory_order_relaxed);
		f->mp = false;
		confirmed(u, f);
		return;
	}
}

void
batch_finished(struct uploader *u, struct batch_flush *f, int rc)
{
	status_note_attempt(u, f->t0, s3_response(f->slot->s3), rc == 0);
	f->state = FL_WAITING;
	decide(u, f, rc);
}

/* ------------------------------------------------------------ the loop */

/* Due by age: its oldest message is max-age old, and either the reader
 * has caught up with the ring or the batch has been open that long. While
 * a backlog is read (after an outage, say), every message is older than
 * max-age: batches then fill to max-bytes, one max-age at most, instead of
 * going out as a stream of tiny objects. */
static bool
age_due(const struct uploader *u, int rule, uint64_t now)
{
	const struct batch_open *o = &u->batch->open[rule];
	uint64_t age = (uint64_t)u->cfg->batch[rule].max_age_ms * MS;

	if (!o->open || now - o->first_put_ns < age)
		return false;
	return u->batch->caught_up || now - o->opened_ns >= age;
}

void
batch_caught_up(struct uploader *u, bool empty)
{
	if (u->batch != NULL)
		u->batch->caught_up = empty;
}

/* The earlier run's CLOSED batches, queued at once: their scans read what
 * is committed in their spans and wait where a record is still being
 * written, so they need not wait for the consumer to read the spans first
 * (which, with the in-flight table held at their first records, it might
 * never do). */
static void
queue_rebuilds(struct uploader *u)
{
	struct batch_engine *b = u->batch;
	bool left = false;

	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		if (!b->rebuild_pending[i])
			continue;
		if (b->nfree > 0) {
			queue_rebuild(u, (int)i);
			b->rebuild_pending[i] = false;
		} else {
			left = true;
		}
	}
	b->any_rebuild = left;
}

/* The in-flight table is full, and its oldest entry may be an open
 * batch's, which holds every later one: reading stops until it closes,
 * and it would wait for its max-age (or for records that cannot be read).
 * The open batch that begins lowest closes now. */
static void
close_lowest(struct uploader *u)
{
	struct batch_engine *b = u->batch;
	int low = -1;

	for (unsigned i = 0; i < u->cfg->nbatch; i++)
		if (b->open[i].open && (low < 0 || b->open[i].first < b->open[low].first))
			low = (int)i;
	if (low >= 0)
		(void)close_open(u, low);
}

bool
batch_pump(struct uploader *u, uint64_t now)
{
	struct batch_engine *b = u->batch;
	bool more = false;

	if (b == NULL)
		return false;
	if (b->any_rebuild)
		queue_rebuilds(u);
	for (unsigned i = 0; i < u->cfg->nbatch; i++)
		if (age_due(u, (int)i, now))
			(void)close_open(u, (int)i);
	if (inflight_full(&u->journal.table))
		close_lowest(u);
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		struct batch_flush *f = &b->flush[i];

		if (f->state == FL_WAITING && now >= f->due_ns && !u->stopping) {
			/* What waited: a journal entry or room for a part,
			 * or a request to try again. */
			if ((f->req == REQ_CREATE && !f->mp) ||
			    (f->req == REQ_PART && f->nparts + 1 > f->parts_cap) ||
			    f->req == REQ_SPOOL)
				send_part(u, f);
			else
				start_put(u, f);
		}
		if (f->state == FL_QUEUED && !u->corrupt_logged &&
		    (!f->to_spool || now >= f->due_ns)) {
			struct batch_slot *s = free_slot(b);

			if (s == NULL)
				continue;
			if (start_scan(u, f, s) < 0) {
				release_slot(u, f);
				f->state = FL_QUEUED;
				continue;
			}
		}
		if (f->state == FL_SCAN && scan(u, f) && f->state == FL_SCAN)
			more = true;
	}
	batch_publish(u);
	return more;
}

int
batch_sleep_ms(const struct uploader *u, uint64_t now, int cap)
{
	const struct batch_engine *b = u->batch;
	uint64_t ms = (uint64_t)cap;

	if (b == NULL)
		return cap;
	for (unsigned i = 0; i < u->cfg->nbatch; i++) {
		const struct batch_open *o = &b->open[i];
		uint64_t due;

		if (!o->open)
			continue;
		due = o->first_put_ns + (uint64_t)u->cfg->batch[i].max_age_ms * MS;
		ms = due <= now ? 0 : ((due - now + MS - 1) / MS < ms ? (due - now + MS - 1) / MS : ms);
	}
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		const struct batch_flush *f = &b->flush[i];

		if (f->state == FL_WAITING) {
			uint64_t d = f->due_ns <= now ? 0 : (f->due_ns - now + MS - 1) / MS;
			if (d < ms)
				ms = d;
		}
	}
	return (int)ms;
}

bool
batch_close_all(struct uploader *u)
{
	bool all = true;

	if (u->batch == NULL)
		return true;
	for (unsigned i = 0; i < u->cfg->nbatch; i++)
		if (!close_open(u, (int)i))
			all = false;
	return all;
}

/* While stopping: a batch being built or sent, or waiting for a slot to be
 * built in. One backing off after a failure is not waited for: it stays in
 * the ring for the next start, as an upload waiting for a retry does. */
bool
batch_busy(const struct uploader *u)
{
	if (u->batch == NULL)
		return false;
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		enum flush_state st = u->batch->flush[i].state;

		if (st == FL_QUEUED || st == FL_SCAN || st == FL_RUNNING)
			return true;
	}
	return false;
}

unsigned
batch_in_flight(const struct uploader *u)
{
	unsigned n = 0;

	if (u->batch == NULL)
		return 0;
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		enum flush_state st = u->batch->flush[i].state;

		n += st == FL_SCAN || st == FL_RUNNING || st == FL_WAITING;
	}
	return n;
}

void
batch_stop(struct uploader *u)
{
	struct batch_engine *b = u->batch;
	unsigned left = 0;

	if (b == NULL)
		return;
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		struct batch_flush *f = &b->flush[i];

		if (f->state == FL_FREE)
			continue;
		if (f->state == FL_RUNNING)
			s3_multi_cancel(u->multi, f->slot->s3);
		/* A multipart upload under way is aborted now, or by the next
		 * start (its journal entry stays until the abort worked). */
		drop_multipart(u, f);
		left++;
		free_flush(u, f);
	}
	if (left != 0) {
		char n[16];
		snprintf(n, sizeof(n), "%u", left);
		log_kv(LOG_LEVEL_INFO, "batch objects not sent stay in the ring; the next start sends them under the same keys",
		    "objects", n, (char *)NULL);
	}
}

void
batch_reload(struct uploader *u)
{
	struct batch_engine *b = u->batch;

	if (b == NULL)
		return;
	publish_rules(u);
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++)
		if (b->flush[i].state != FL_FREE)
			b->flush[i].rule = rule_of(u->cfg, b->flush[i].jb.prefix);
}
