/* shmstat-render.c -- snapshot an s3ring ring image and render it as text, JSON or Prometheus.
 *
 * Invariants kept here:
 * - The ring image is untrusted and may change while it is read. Nothing in
 *   it is written, every field is read once into the snapshot, and every
 *   offset into the data region is masked with capacity - 1 after the
 *   header has been validated against the mapped length, so no input can
 *   make a read leave the image.
 * - The pending walk is bounded (env->walk_budget steps in all, whatever the
 *   records claim) and only ever moves forward, so a hostile image cannot
 *   send it into a loop. Anything it cannot account for makes the figure
 *   inexact (pending_exact = false), never wrong silently.
 * - Renderers read only the snapshot. Strings that came from shared memory
 *   (last_error) are escaped for every output format: JSON is valid and
 *   text and Prometheus output printable, whatever the bytes were.
 */
#include "shmstat.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>

/* Spelled out rather than through libbsd-overlay: the fuzz harness builds
 * this file without the overlay's include path. */
#include <bsd/libutil.h>

#include "crc32c.h"
#include "utf8.h"

#define NS_PER_MS UINT64_C(1000000)

/* ------------------------------------------------------------ snapshot */

static bool
never_alive(pid_t pid, uint64_t start_time)
{
	(void)pid;
	(void)start_time;
	return false;
}

struct walk {
	const uint8_t *data;
	uint64_t mask;
	uint64_t tail;
	uint64_t steps, budget;
};

/* ring_record_crc() of the record at pos, whose header was copied into
 * rec; false if the key would fall outside the record or the ring. */
static bool
record_crc_ok(const struct walk *w, uint64_t pos, const struct ring_record *rec,
    uint64_t tag, uint64_t len)
{
	uint64_t off = pos & w->mask;

	if (rec->key_len > RING_MAX_KEY || RING_ALIGN + rec->key_len > len ||
	    off + RING_ALIGN + rec->key_len > w->mask + 1)
		return false;
	return ring_record_crc(rec, tag, w->data + off + RING_ALIGN,
	    rec->key_len) == rec->hdr_crc;
}


/* Loads the tag at pos. Acquire: pairs with the producer's commit CAS, so
 * the fields copied after it are the committed ones (or torn by a later
 * lap, which the header CRC then catches). */
static uint64_t
walk_tag(const struct walk *w, uint64_t pos)
{
	const struct ring_record *rec =
	    (const struct ring_record *)(w->data + (pos & w->mask));

	return atomic_load_explicit((_Atomic uint64_t *)&rec->tag,
	    memory_order_acquire);
}

/* From pos, the next position (in 64-byte steps, up to tail) holding a
 * header stamped with its own position: where the consumer would resume
 * after a record it cannot use. */
static uint64_t
walk_resync(struct walk *w, uint64_t pos)
{
	while (pos < w->tail && w->steps < w->budget) {
		if (ring_tag_stamped(walk_tag(w, pos), pos))
			break;
		pos += RING_ALIGN;
		w->steps++;
	}
	return pos;
}

/* A record being written whose owner sealed its header: its age is known,
 * and the walk may step over it. Returns its length, or 0. */
static uint64_t
note_writing(struct shmstat_snap *s, const struct walk *w, uint64_t pos,
    uint64_t tag, const struct ring_record *rec, uint64_t *oldest)
{
	uint64_t off = pos & w->mask;

	if (rec->len_seal != ring_len_seal(pos, rec->len, rec->owner_gen) || rec->len < RING_ALIGN ||
	    rec->len % RING_ALIGN != 0 || rec->len > w->tail - pos ||
	    rec->len > w->mask + 1 - off)
		return 0;
	if (rec->put_ns != 0 && (*oldest == 0 || rec->put_ns < *oldest)) {
		*oldest = rec->put_ns;
		s->oldest_writing_slot = ring_tag_slot(tag);
	}
	return rec->len;
}

/* Counts committed records in [from, to) without changing anything; with
 * count false (the span the uploader has read already) only records still
 * being written are looked for. */
static void
walk_pending(struct shmstat_snap *s, const struct walk *wp, uint64_t from,
    uint64_t to, bool count, const struct ring_geometry *geo,
    const struct shmstat_env *env)
{
	struct walk w = *wp;
	uint64_t pos = from, oldest = 0, oldest_w = 0;

	if (count)
		s->pending_exact = true;
	while (pos < to) {
		struct ring_record rec;
		uint64_t tag, len;

		if (w.steps++ >= w.budget) {
			s->pending_exact = false;
			break;
		}
		tag = walk_tag(&w, pos);
		memcpy(&rec, w.data + (pos & w.mask), sizeof(rec));
		/* The consumer's own check, so the two never disagree. */
		switch (ring_record_check(geo, pos, w.tail, tag, &rec, &len)) {
		case RING_V_NOT_READY: {
			/* A put in progress: claimed but not yet stamped, or
			 * stamped and being filled in. Unless its owner sealed
			 * its length, find the next header. */
			uint64_t wl = 0;
			if (ring_tag_stamped(tag, pos)) {
				s->writing++;
				wl = note_writing(s, &w, pos, tag, &rec, &oldest_w);
			}
			pos = wl != 0 ? pos + wl : walk_resync(&w, pos + RING_ALIGN);
			continue;
		}
		case RING_V_SKIP:
			pos += len;
			continue;
		case RING_V_RECORD:
			if (!count) {
				pos += len;
				continue;
			}
			if (record_crc_ok(&w, pos, &rec, tag, len)) {
				s->pending++;
				if (rec.put_ns != 0 && (oldest == 0 || rec.put_ns < oldest))
					oldest = rec.put_ns;
				pos += len;
				continue;
			}
			break;
		case RING_V_CORRUPT:
			break;
		}
		/* Corrupt or torn: the uploader will skip it; we cannot say
		 * whether it hid committed records. */
		if (count)
			s->pending_exact = false;
		pos = walk_resync(&w, pos + RING_ALIGN);
	}
	if (count && w.steps >= w.budget && pos < to)
		s->pending_exact = false;
	if (oldest_w != 0 && (!s->have_oldest_writing ||
	    env->now_mono_ns - oldest_w > s->oldest_writing_age_ms * NS_PER_MS)) {
		s->have_oldest_writing = true;
		s->oldest_writing_age_ms = env->now_mono_ns > oldest_w ?
		    (env->now_mono_ns - oldest_w) / NS_PER_MS : 0;
	}
	if (!count)
		return;
	if (oldest != 0) {
		s->have_oldest = true;
		s->oldest_pending_age_ms = env->now_mono_ns > oldest ?
		    (env->now_mono_ns - oldest) / NS_PER_MS : 0;
	}
}

static uint64_t
load64(const _Atomic uint64_t *p)
{
	return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed);
}

static uint32_t
load32(const _Atomic uint32_t *p)
{
	return atomic_load_explicit((_Atomic uint32_t *)p, memory_order_relaxed);
}

/* Milliseconds from a CLOCK_REALTIME stamp t to now; 0 for a stamp in the
 * future (a clock stepped back, or a hostile value). */
static uint64_t
real_age_ms(const struct shmstat_env *env, uint64_t t)
{
	return env->now_real_ns > t ? (env->now_real_ns - t) / NS_PER_MS : 0;
}

/* Whether code point cp is one that no terminal or line-oriented format
 * takes for a control: not C0 or C1, not DEL, not U+2028 or U+2029. */
static bool
printable_cp(uint32_t cp)
{
	return cp >= 0x20 && !(cp >= 0x7f && cp < 0xa0) && cp != 0x2028 &&
	    cp != 0x2029;
}

/* Whether the n bytes at s are UTF-8 of printable code points only. */
static bool
printable_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t k = utf8_seq(s + i, n - i, &cp);

		if (k == 0 || !printable_cp(cp))
			return false;
		i += k;
	}
	return true;
}

/* Copies one batch rule's line. The uploader keeps the prefix
 * NUL-terminated, but a copy taken while it writes (or a hostile one) may
 * not be: the snapshot's extra byte terminates it, and prefix_ok records
 * whether the ring's own field was a proper string. */
static void
snap_batch_rule(struct shmstat_batch_rule *b, const struct ring_batch_stats *rs,
    const struct shmstat_env *env)
{
	size_t n;
	uint64_t oldest;

	memcpy(b->prefix, rs->prefix, RING_BATCH_PREFIX);
	b->prefix[RING_BATCH_PREFIX] = '\0';
	n = strnlen(b->prefix, RING_BATCH_PREFIX);
	b->prefix_ok = n < RING_BATCH_PREFIX &&
	    printable_utf8((const unsigned char *)b->prefix, n);
	b->messages = load64(&rs->messages);
	b->bytes = load64(&rs->bytes);
	b->objects = load64(&rs->objects);
	b->uploaded_bytes = load64(&rs->uploaded_bytes);
	b->stored_bytes = load64(&rs->stored_bytes);
	b->alone = load64(&rs->alone);
	oldest = load64(&rs->oldest_realtime_ns);
	if (oldest != 0) {
		b->have_oldest = true;
		b->oldest_age_ms = real_age_ms(env, oldest);
	}
}

int
shmstat_snapshot(struct shmstat_snap *s, const char *ring_name,
    const void *base, size_t len, const struct shmstat_env *env)
{
	const struct ring_header *h = base;
	bool (*alive)(pid_t, uint64_t) = env->alive ? env->alive : never_alive;
	struct ring_header geo;
	uint64_t head, cursor, tail, cap;
	int rc;

	memset(s, 0, sizeof(*s));
	snprintf(s->ring, sizeof(s->ring), "%s", ring_name ? ring_name : "");
	if (base == NULL || len < RING_HEADER_SIZE)
		return -EBADMSG;
	/* Line 0 only: the geometry is checked on this private copy, so a
	 * writer cannot change it between the check and its use. */
	memcpy(&geo, h, RING_LINE);
	if (atomic_load_explicit(&geo.magic, memory_order_relaxed) != RING_MAGIC)
		return -EBADMSG;
	if ((rc = ring_check_header(&geo, len)) < 0) {
		s->layout_version = geo.layout_version; /* for the message */
		return rc;
	}
	cap = geo.capacity;
	s->layout_version = geo.layout_version;
	s->capacity = cap;
	s->max_message = geo.max_message;
	s->creator_uid = geo.creator_uid;
	s->created_realtime_ns = geo.created_realtime_ns;

	/* head, then cursor, then tail: each only grows and head <= cursor <=
	 * tail holds at every instant, so reading them in this order keeps the
	 * inequality in our copy too. Acquire on tail pairs with nothing in
	 * particular; the records are published by their tags. */
	head = atomic_load_explicit((_Atomic uint64_t *)&h->head, memory_order_acquire);
	cursor = atomic_load_explicit((_Atomic uint64_t *)&h->cursor, memory_order_acquire);
	tail = atomic_load_explicit((_Atomic uint64_t *)&h->tail, memory_order_acquire);
	if (tail < head || tail - head > cap || head % RING_ALIGN != 0 ||
	    tail % RING_ALIGN != 0)
		return -EBADMSG;
	s->head = head;
	s->tail = tail;
	s->used_bytes = tail - head;

	/* A cursor outside [head, tail] is stale or scribbled on; the records
	 * from head on are then the best figure, and it is marked inexact. */
	bool cursor_ok = cursor >= head && cursor <= tail && cursor % RING_ALIGN == 0;
	s->cursor = cursor_ok ? cursor : head;
	s->pending_bytes = tail - s->cursor;
	struct walk w = {
		.data = (const uint8_t *)base + RING_HEADER_SIZE,
		.mask = cap - 1,
		.tail = tail,
		.budget = env->walk_budget ? env->walk_budget : SHMSTAT_WALK_BUDGET,
	};
	struct ring_geometry g = {
		.capacity = cap,
		.max_message = geo.max_message,
		.max_record = ring_record_size(0, geo.max_message),
	};
	/* Records the uploader read past while their owner still writes them
	 * lie below the cursor; head waits for them. */
	if (head < s->cursor)
		walk_pending(s, &w, head, s->cursor, false, &g, env);
	walk_pending(s, &w, s->cursor, tail, true, &g, env);
	if (!cursor_ok)
		s->pending_exact = false;

	s->uploaded = load64(&h->uploaded);
	s->uploaded_bytes = load64(&h->uploaded_bytes);
	s->retried = load64(&h->retried);
	s->dead_lettered = load64(&h->dead_lettered);
	s->in_flight = load64(&h->in_flight);
	s->abandoned = load64(&h->abandoned);
	s->abandoned_hard = load64(&h->abandoned_hard);
	s->corrupt = load64(&h->corrupt);
	s->resynced = load64(&h->resynced);
	s->config_errors = load64(&h->config_errors);
	s->consumed = load64(&h->consumed);

	s->uploader_pid = load32(&h->uploader_pid);
	s->uploader_flags = load32(&h->uploader_flags);
	s->uploader_start_time = load64(&h->uploader_start_time);
	s->uploader_epoch = load64(&h->uploader_epoch);
	s->uploader_workers = load32(&h->uploader_workers);
	s->concurrency_limit = load32(&h->upstats.concurrency_limit);
	if (s->concurrency_limit > s->uploader_workers)
		s->concurrency_limit = s->uploader_workers;
	s->slowdowns = load64(&h->upstats.slowdowns);
	s->multipart_started = load64(&h->upstats.multipart_started);
	s->multipart_completed = load64(&h->upstats.multipart_completed);
	s->multipart_aborted = load64(&h->upstats.multipart_aborted);
	s->uploader_alive = s->uploader_pid != 0 &&
	    ((env->uploader_locked != NULL && env->uploader_locked(env->slot_arg)) ||
	    (s->uploader_pid <= INT32_MAX &&
	    alive((pid_t)s->uploader_pid, s->uploader_start_time)));
	uint64_t hb = load64(&h->heartbeat_realtime_ns);
	if (hb != 0) {
		s->have_heartbeat = true;
		s->heartbeat_age_ms = env->now_real_ns > hb ?
		    (env->now_real_ns - hb) / NS_PER_MS : 0;
	}
	/* The writer keeps last_error NUL-terminated, but a copy taken while
	 * it writes (or a hostile one) may not be: the snapshot's extra byte
	 * terminates it. */
	memcpy(s->last_error, h->last_error, RING_LINE);
	s->last_error[RING_LINE] = '\0';
	s->have_last_error = s->last_error[0] != '\0';
	uint64_t le = load64(&h->last_error_realtime_ns);
	if (s->have_last_error && le != 0)
		s->last_error_age_ms = env->now_real_ns > le ?
		    (env->now_real_ns - le) / NS_PER_MS : 0;

	const struct ring_upstats *st = &h->upstats;
	uint64_t fs = load64(&st->failing_since_realtime_ns);
	uint64_t ls = load64(&st->last_success_realtime_ns);
	if (fs != 0) {
		s->failing = true;
		s->failing_for_ms = env->now_real_ns > fs ? (env->now_real_ns - fs) / NS_PER_MS : 0;
	}
	if (ls != 0) {
		s->have_last_success = true;
		s->last_success_age_ms = env->now_real_ns > ls ?
		    (env->now_real_ns - ls) / NS_PER_MS : 0;
	}
	s->failed_attempts = load64(&st->failed_attempts);
	for (unsigned i = 0; i < RING_ERR_NCLASSES; i++)
		s->errors[i] = load64(&st->errors[i]);
	s->lat_count = load64(&st->lat_count);
	s->lat_sum_us = load64(&st->lat_sum_us);
	for (unsigned i = 0; i < RING_LAT_BUCKETS; i++)
		s->lat_bucket[i] = load64(&st->lat_bucket[i]);
	/* The count of rules is read once and, like every word of the ring,
	 * not trusted: no more rules than the array holds are ever read. */
	s->batch_rules = load32(&st->batch_rules);
	if (s->batch_rules > RING_BATCH_RULES)
		s->batch_rules = RING_BATCH_RULES;
	s->batch_objects = load64(&st->batch_objects);
	s->batch_messages = load64(&st->batch_messages);
	for (unsigned i = 0; i < s->batch_rules; i++)
		snap_batch_rule(&s->batch[i], &st->batch[i], env);

	for (unsigned i = 0; i < RING_MAX_PRODUCERS; i++) {
		const struct ring_slot *sl = &h->slots[i];
		struct shmstat_producer p = { .slot = i };
		uint64_t bp, bd;

		p.pid = load32(&sl->pid);
		p.start_time = load64(&sl->start_time);
		p.slot_produced = load64(&sl->produced);
		p.slot_dropped_full = load64(&sl->dropped_full);
		p.rejected = load64(&sl->rejected);
		p.failed = load64(&sl->failed);
		p.bytes = load64(&sl->bytes);
		bp = load64(&sl->base_produced);
		bd = load64(&sl->base_dropped_full);
		s->produced += p.slot_produced;
		s->dropped_full += p.slot_dropped_full;
		s->rejected += p.rejected;
		s->failed += p.failed;
		s->produced_bytes += p.bytes;
		/* A never-used slot is all zeroes; a released one keeps its
		 * start time and counters (ring_slot_release). */
		if (p.pid == 0 && p.start_time == 0 && p.slot_produced == 0 &&
		    p.slot_dropped_full == 0 && p.rejected == 0 && p.failed == 0)
			continue;
		p.produced = p.slot_produced >= bp ? p.slot_produced - bp : p.slot_produced;
		p.dropped_full = p.slot_dropped_full >= bd ?
		    p.slot_dropped_full - bd : p.slot_dropped_full;
		if (env->slot_locked != NULL)
			p.alive = p.pid != 0 && env->slot_locked(i, env->slot_arg);
		else
			p.alive = p.pid != 0 && p.pid <= INT32_MAX &&
			    alive((pid_t)p.pid, p.start_time);
		s->producers[s->nproducers++] = p;
	}
	return 0;
}

static double
rate(uint64_t a, uint64_t b, double dt)
{
	return b >= a && dt > 0 ? (double)(b - a) / dt : 0.0;
}

void
shmstat_rates(struct shmstat_rates *r, const struct shmstat_snap *prev,
    const struct shmstat_snap *cur, double interval_s)
{
	memset(r, 0, sizeof(*r));
	r->valid = interval_s > 0;
	r->interval_s = interval_s;
	r->put_s = rate(prev->produced, cur->produced, interval_s);
	r->upload_s = rate(prev->uploaded, cur->uploaded, interval_s);
	r->drop_s = rate(prev->dropped_full, cur->dropped_full, interval_s);
	r->in_bytes_s = rate(prev->produced_bytes, cur->produced_bytes, interval_s);
	r->out_bytes_s = rate(prev->uploaded_bytes, cur->uploaded_bytes, interval_s);
}

/* ------------------------------------------------------------- strings */

char *
shmstat_printable(char *dst, size_t cap, const char *src, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len && src[i] != '\0' && n + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[n] = '\0';
	return dst;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 for an
 * invalid one or for U+2028 and U+2029: those are valid JSON but end lines
 * in JavaScript, so callers escape them. */
size_t
shmstat_utf8_seq(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t k = utf8_seq(s, n, &cp);

	if (k < 2 || cp == 0x2028 || cp == 0x2029)
		return 0;
	return k;
}

void
shmstat_json_string(FILE *f, const char *src, size_t len)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, n;

	for (n = 0; n < len && s[n] != '\0'; n++)
		;
	fputc('"', f);
	while (i < n) {
		unsigned char c = s[i];
		size_t k;

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			fputc(c, f);
			i++;
		} else if ((k = shmstat_utf8_seq(s + i, n - i)) != 0) {
			fwrite(s + i, 1, k, f);
			i += k;
		} else if (c == 0xe2 && n - i >= 3 && s[i + 1] == 0x80 &&
		    (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
			fprintf(f, "\\u%04x", s[i + 2] == 0xa8 ? 0x2028 : 0x2029);
			i += 3;
		} else {
			fputs("\\ufffd", f);
			i++;
		}
	}
	fputc('"', f);
}

/* ---------------------------------------------------------- formatting */

#define HBUF 32

/* Sizes go through humanize_number(3) so they read like df -h: four
 * characters at most ("1.0M", "128K", "999B"); a bigger buffer would let it
 * print "1024K" instead of scaling. */
static const char *
hsize(char buf[HBUF], uint64_t bytes)
{
	int64_t v = bytes > INT64_MAX ? INT64_MAX : (int64_t)bytes;

	if (humanize_number(buf, 5, v, "", HN_AUTOSCALE,
	    HN_DECIMAL | HN_NOSPACE | HN_B) < 0)
		snprintf(buf, HBUF, "%" PRIu64, bytes);
	return buf;
}

static const char *
hage(char buf[HBUF], uint64_t ms)
{
	const size_t cap = HBUF;
	uint64_t s = ms / 1000;

	if (ms < 1000)
		snprintf(buf, cap, "%" PRIu64 "ms", ms);
	else if (s < 60)
		snprintf(buf, cap, "%" PRIu64 ".%" PRIu64 "s", s, ms % 1000 / 100);
	else if (s < 3600)
		snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s / 3600 % 24);
	return buf;
}

const char *
shmstat_errclass_name(unsigned cls)
{
	static const char *const names[RING_ERR_NCLASSES] = {
		[RING_ERR_NETWORK] = "network", [RING_ERR_THROTTLED] = "throttled",
		[RING_ERR_SERVER] = "server", [RING_ERR_CONFIG] = "config",
		[RING_ERR_MESSAGE] = "message",
	};

	return cls < RING_ERR_NCLASSES ? names[cls] : "other";
}

static const uint64_t lat_bounds_ms[RING_LAT_BUCKETS - 1] = RING_LAT_BOUNDS_MS;

/* The upper bound (ms) of the bucket holding the q-quantile of the
 * attempts, or 0 with none; UINT64_MAX for the +Inf bucket. The counters
 * are read one by one while the uploader writes them, so the total is
 * the buckets' own sum, not lat_count. */
static uint64_t
lat_quantile_ms(const struct shmstat_snap *s, double q)
{
	uint64_t total = 0, acc = 0;

	for (unsigned i = 0; i < RING_LAT_BUCKETS; i++)
		total += s->lat_bucket[i];
	if (total == 0)
		return 0;
	for (unsigned i = 0; i < RING_LAT_BUCKETS; i++) {
		acc += s->lat_bucket[i];
		if ((double)acc >= q * (double)total)
			return i < RING_LAT_BUCKETS - 1 ? lat_bounds_ms[i] : UINT64_MAX;
	}
	return UINT64_MAX;
}

static const char *
lat_str(char *buf, size_t cap, uint64_t ms)
{
	if (ms == UINT64_MAX)
		snprintf(buf, cap, ">%" PRIu64 "ms", lat_bounds_ms[RING_LAT_BUCKETS - 2]);
	else
		snprintf(buf, cap, "<=%" PRIu64 "ms", ms);
	return buf;
}

static unsigned
used_pct(const struct shmstat_snap *s)
{
	/* capacity is at most 2^30 by the header check: no overflow. */
	return s->capacity ? (unsigned)(s->used_bytes * 100 / s->capacity) : 0;
}

/* A batch rule's prefix for the summary: as it is when it was a proper
 * printable string in the ring, with every other byte as '?' when not, so
 * a hostile prefix cannot move the cursor. The empty prefix (every key) is
 * shown as the configuration spells it, "". */
static const char *
batch_prefix_text(char *dst, size_t cap, const struct shmstat_batch_rule *b)
{
	if (b->prefix[0] == '\0')
		snprintf(dst, cap, "\"\"");
	else if (b->prefix_ok)
		snprintf(dst, cap, "%s", b->prefix);
	else
		shmstat_printable(dst, cap, b->prefix, sizeof(b->prefix));
	return dst;
}

/* The batch section of the summary; nothing at all without batch rules,
 * so the summary of a ring without them is what it always was. */
static void
render_batch_text(FILE *f, const struct shmstat_snap *s)
{
	char prefix[RING_BATCH_PREFIX + 1], a[HBUF], b[HBUF], ratio[HBUF];

	if (s->batch_rules == 0)
		return;
	fprintf(f, "\nbatch rules: %u, objects %" PRIu64 ", messages %" PRIu64 "\n",
	    s->batch_rules, s->batch_objects, s->batch_messages);
	fprintf(f, "%-16s %10s %8s %8s %7s %7s %6s\n", "prefix", "messages",
	    "bytes", "objects", "ratio", "oldest", "alone");
	for (unsigned i = 0; i < s->batch_rules; i++) {
		const struct shmstat_batch_rule *r = &s->batch[i];

		/* Framed bytes over bytes stored; none stored yet: "-". */
		if (r->stored_bytes != 0)
			snprintf(ratio, sizeof(ratio), "%.1fx",
			    (double)r->uploaded_bytes / (double)r->stored_bytes);
		else
			snprintf(ratio, sizeof(ratio), "-");
		fprintf(f, "%-16s %10" PRIu64 " %8s %8" PRIu64 " %7s %7s %6" PRIu64 "\n",
		    batch_prefix_text(prefix, sizeof(prefix), r), r->messages,
		    hsize(a, r->bytes), r->objects, ratio,
		    r->have_oldest ? hage(b, r->oldest_age_ms) : "-", r->alone);
	}
}

void
shmstat_render_text(FILE *f, const struct shmstat_snap *s)
{
	char a[HBUF], b[HBUF], c[HBUF], d[HBUF], pend[32], err[RING_LINE + 1];
	char name[RING_NAME_MAX + 1];

	fprintf(f, "%-16s %8s %8s %4s %8s %9s %9s %8s\n", "ring", "size",
	    "used", "use%", "max-msg", "pending", "in-flight", "oldest");
	snprintf(pend, sizeof(pend), "%s%" PRIu64, s->pending_exact ? "" : "~",
	    s->pending);
	fprintf(f, "%-16s %8s %8s %3u%% %8s %9s %9" PRIu64 " %8s\n",
	    shmstat_printable(name, sizeof(name), s->ring, sizeof(s->ring)),
	    hsize(a, s->capacity), hsize(b, s->used_bytes), used_pct(s),
	    hsize(c, s->max_message), pend, s->in_flight,
	    s->have_oldest ? hage(d, s->oldest_pending_age_ms) : "-");
	if (!s->pending_exact)
		fprintf(f, "(pending walk incomplete: %s of records unread)\n",
		    hsize(a, s->pending_bytes));
	fputc('\n', f);
	fprintf(f, "%10s %12s %10s %8s %13s %9s %7s\n", "produced",
	    "dropped_full", "uploaded", "retried", "dead_lettered", "abandoned",
	    "corrupt");
	fprintf(f, "%10" PRIu64 " %12" PRIu64 " %10" PRIu64 " %8" PRIu64
	    " %13" PRIu64 " %9" PRIu64 " %7" PRIu64 "\n", s->produced,
	    s->dropped_full, s->uploaded, s->retried, s->dead_lettered,
	    s->abandoned + s->abandoned_hard, s->corrupt);
	fputc('\n', f);

	if (s->uploader_pid == 0) {
		fprintf(f, "uploader: none has attached to this ring\n");
	} else {
		fprintf(f, "uploader: pid %" PRIu32 " %s, epoch %" PRIu64
		    ", %" PRIu32 " workers (in flight now at most %" PRIu32
		    "), heartbeat %s%s\n", s->uploader_pid,
		    s->uploader_alive ? "alive" : "DEAD", s->uploader_epoch,
		    s->uploader_workers,
		    s->concurrency_limit ? s->concurrency_limit : s->uploader_workers,
		    s->have_heartbeat ? hage(a, s->heartbeat_age_ms) : "never",
		    s->have_heartbeat ? " ago" : "");
		if (s->slowdowns != 0 || s->multipart_started != 0)
			fprintf(f, "uploader: %" PRIu64 " slow-downs; multipart %" PRIu64
			    " started, %" PRIu64 " completed, %" PRIu64 " aborted\n",
			    s->slowdowns, s->multipart_started, s->multipart_completed,
			    s->multipart_aborted);
	}
	if (s->uploader_flags & RING_UPLOADER_CONFIG_ALARM)
		fprintf(f, "ALARM: configuration error, uploads paused until it is fixed\n");
	if (s->uploader_flags & RING_UPLOADER_SPOOL_ALARM)
		fprintf(f, "ALARM: dead-letter spool unusable\n");
	if (s->uploader_flags & RING_UPLOADER_CORRUPT_ALARM)
		fprintf(f, "ALARM: the uploader found the ring corrupt\n");
	/* The flag stays set after the process exits: a dead uploader is
	 * reported as dead, not as draining. */
	if ((s->uploader_flags & RING_UPLOADER_DRAINING) && s->uploader_alive)
		fprintf(f, "uploader is draining (SIGTERM received)\n");
	if (s->have_last_error)
		fprintf(f, "last error (%s ago): %s\n",
		    hage(a, s->last_error_age_ms),
		    shmstat_printable(err, sizeof(err), s->last_error, RING_LINE));
	if (s->failing)
		fprintf(f, "FAILING: every upload attempt has failed for %s\n",
		    hage(a, s->failing_for_ms));
	fprintf(f, "uploaded %s; last success %s%s\n", hsize(a, s->uploaded_bytes),
	    s->have_last_success ? hage(b, s->last_success_age_ms) : "never",
	    s->have_last_success ? " ago" : "");
	fprintf(f, "failed attempts %" PRIu64 ":", s->failed_attempts);
	for (unsigned i = 0; i < RING_ERR_NCLASSES; i++)
		fprintf(f, " %s %" PRIu64, shmstat_errclass_name(i), s->errors[i]);
	fputc('\n', f);
	if (s->lat_count != 0) {
		char p50[32], p99[32];
		fprintf(f, "attempt latency: %" PRIu64 " attempts, mean %.1fms, p50 %s, p99 %s\n",
		    s->lat_count, (double)s->lat_sum_us / 1000 / (double)s->lat_count,
		    lat_str(p50, sizeof(p50), lat_quantile_ms(s, 0.5)),
		    lat_str(p99, sizeof(p99), lat_quantile_ms(s, 0.99)));
	}
	render_batch_text(f, s);

	if (s->nproducers == 0) {
		fprintf(f, "\nno producer has attached\n");
		return;
	}
	fprintf(f, "\n%4s %8s %5s %10s %12s\n", "slot", "pid", "alive",
	    "produced", "dropped_full");
	for (unsigned i = 0; i < s->nproducers; i++) {
		const struct shmstat_producer *p = &s->producers[i];
		char pid[16];

		if (p->pid != 0)
			snprintf(pid, sizeof(pid), "%" PRIu32, p->pid);
		else
			snprintf(pid, sizeof(pid), "-");
		fprintf(f, "%4u %8s %5s %10" PRIu64 " %12" PRIu64 "\n", p->slot,
		    pid, p->alive ? "yes" : "no", p->produced, p->dropped_full);
	}
}

void
shmstat_render_watch_line(FILE *f, const struct shmstat_snap *s,
    const struct shmstat_rates *r, bool header)
{
	char a[HBUF], b[HBUF], c[HBUF];

	if (header)
		fprintf(f, "%4s %8s %6s %9s %9s %8s %7s %7s %8s %7s\n", "use%",
		    "pending", "inflt", "put/s", "upload/s", "drop/s", "in B/s",
		    "out B/s", "uploader", "hb");
	fprintf(f, "%3u%% %8" PRIu64 " %6" PRIu64 " %9.0f %9.0f %8.0f %7s %7s %8s %7s\n",
	    used_pct(s), s->pending, s->in_flight, r->put_s, r->upload_s,
	    r->drop_s, hsize(a, (uint64_t)r->in_bytes_s),
	    hsize(b, (uint64_t)r->out_bytes_s),
	    s->uploader_pid == 0 ? "none" : s->uploader_alive ?
	    ((s->uploader_flags & RING_UPLOADER_CONFIG_ALARM) ? "ALARM" : "up") : "DEAD",
	    s->have_heartbeat ? hage(c, s->heartbeat_age_ms) : "-");
}

/* ---------------------------------------------------------------- JSON */

static void
json_u64(FILE *f, const char *key, uint64_t v)
{
	fprintf(f, "\"%s\":%" PRIu64 ",", key, v);
}

static void
json_bool(FILE *f, const char *key, bool v)
{
	fprintf(f, "\"%s\":%s,", key, v ? "true" : "false");
}

/* ,"key":v or ,"key":null (no trailing comma: it follows a value). */
static void
json_opt_u64(FILE *f, const char *key, bool have, uint64_t v)
{
	if (have)
		fprintf(f, ",\"%s\":%" PRIu64, key, v);
	else
		fprintf(f, ",\"%s\":null", key);
}

/* "key":X with three decimals, or "key":null; no comma either side. */
static void
json_opt_double(FILE *f, const char *key, bool have, double v)
{
	if (have)
		fprintf(f, "\"%s\":%.3f", key, v);
	else
		fprintf(f, "\"%s\":null", key);
}

/* The uploader's "batch" member and its comma. It is there with 0 rules
 * and an empty by_rule too, so that consumers never test for it. */
static void
json_batch(FILE *f, const struct shmstat_snap *s)
{
	fprintf(f, "\"batch\":{\"rules\":%u,\"objects\":%" PRIu64 ",\"messages\":%"
	    PRIu64 ",\"by_rule\":[", s->batch_rules, s->batch_objects,
	    s->batch_messages);
	for (unsigned i = 0; i < s->batch_rules; i++) {
		const struct shmstat_batch_rule *r = &s->batch[i];

		fputs(i ? ",{\"prefix\":" : "{\"prefix\":", f);
		shmstat_json_string(f, r->prefix, sizeof(r->prefix));
		fputc(',', f);
		json_u64(f, "messages", r->messages);
		json_u64(f, "bytes", r->bytes);
		json_u64(f, "objects", r->objects);
		json_u64(f, "uploaded_bytes", r->uploaded_bytes);
		json_u64(f, "stored_bytes", r->stored_bytes);
		json_opt_double(f, "compression_ratio", r->stored_bytes != 0,
		    r->stored_bytes != 0 ?
		    (double)r->uploaded_bytes / (double)r->stored_bytes : 0.0);
		fputc(',', f);
		json_opt_double(f, "oldest_unflushed_age_s", r->have_oldest,
		    (double)r->oldest_age_ms / 1000);
		fprintf(f, ",\"alone\":%" PRIu64 "}", r->alone);
	}
	fputs("]},", f);
}

void
shmstat_render_json(FILE *f, const struct shmstat_snap *s,
    const struct shmstat_rates *r)
{
	fputs("{\"ring\":", f);
	shmstat_json_string(f, s->ring, sizeof(s->ring));
	fputc(',', f);
	json_u64(f, "layout_version", s->layout_version);
	json_u64(f, "capacity_bytes", s->capacity);
	json_u64(f, "used_bytes", s->used_bytes);
	json_u64(f, "used_percent", used_pct(s));
	json_u64(f, "max_message_bytes", s->max_message);
	json_u64(f, "creator_uid", s->creator_uid);
	json_u64(f, "head", s->head);
	json_u64(f, "cursor", s->cursor);
	json_u64(f, "tail", s->tail);
	json_u64(f, "produced", s->produced);
	json_u64(f, "produced_bytes", s->produced_bytes);
	json_u64(f, "dropped_full", s->dropped_full);
	json_u64(f, "rejected", s->rejected);
	json_u64(f, "failed", s->failed);
	json_u64(f, "pending", s->pending);
	json_u64(f, "pending_bytes", s->pending_bytes);
	json_bool(f, "pending_exact", s->pending_exact);
	json_u64(f, "writing", s->writing);
	json_u64(f, "oldest_writing_age_ms",
	    s->have_oldest_writing ? s->oldest_writing_age_ms : 0);
	json_u64(f, "oldest_writing_slot",
	    s->have_oldest_writing ? s->oldest_writing_slot : 0);
	json_u64(f, "in_flight", s->in_flight);
	json_u64(f, "consumed", s->consumed);
	json_u64(f, "uploaded", s->uploaded);
	json_u64(f, "uploaded_bytes", s->uploaded_bytes);
	json_u64(f, "retried", s->retried);
	json_u64(f, "dead_lettered", s->dead_lettered);
	json_u64(f, "abandoned", s->abandoned);
	json_u64(f, "abandoned_hard", s->abandoned_hard);
	json_u64(f, "corrupt", s->corrupt);
	json_u64(f, "resynced", s->resynced);
	json_u64(f, "config_errors", s->config_errors);
	json_u64(f, "oldest_pending_age_ms",
	    s->have_oldest ? s->oldest_pending_age_ms : 0);
	json_bool(f, "config_alarm", s->uploader_flags & RING_UPLOADER_CONFIG_ALARM);
	json_bool(f, "spool_alarm", s->uploader_flags & RING_UPLOADER_SPOOL_ALARM);
	json_bool(f, "corrupt_alarm", s->uploader_flags & RING_UPLOADER_CORRUPT_ALARM);
	json_bool(f, "draining", (s->uploader_flags & RING_UPLOADER_DRAINING) &&
	    s->uploader_alive);
	fputs("\"last_error\":", f);
	if (s->have_last_error)
		shmstat_json_string(f, s->last_error, RING_LINE);
	else
		fputs("null", f);
	json_opt_u64(f, "last_error_age_ms", s->have_last_error, s->last_error_age_ms);
	json_opt_u64(f, "failing_for_ms", s->failing, s->failing_for_ms);
	json_opt_u64(f, "last_success_age_ms", s->have_last_success,
	    s->last_success_age_ms);
	fprintf(f, ",\"failed_attempts\":%" PRIu64 ",\"errors\":{", s->failed_attempts);
	for (unsigned i = 0; i < RING_ERR_NCLASSES; i++)
		fprintf(f, "%s\"%s\":%" PRIu64, i ? "," : "", shmstat_errclass_name(i),
		    s->errors[i]);
	fprintf(f, "},\"latency\":{\"count\":%" PRIu64 ",\"sum_us\":%" PRIu64
	    ",\"buckets\":[", s->lat_count, s->lat_sum_us);
	{
		uint64_t acc = 0;
		for (unsigned i = 0; i < RING_LAT_BUCKETS; i++) {
			acc += s->lat_bucket[i];
			if (i < RING_LAT_BUCKETS - 1)
				fprintf(f, "%s{\"le_ms\":%" PRIu64 ",\"count\":%" PRIu64 "}",
				    i ? "," : "", lat_bounds_ms[i], acc);
			else
				fprintf(f, ",{\"le_ms\":null,\"count\":%" PRIu64 "}", acc);
		}
	}
	fputs("]}", f);
	fputs(",\"uploader\":{", f);
	json_u64(f, "pid", s->uploader_pid);
	json_bool(f, "alive", s->uploader_alive);
	json_u64(f, "start_time", s->uploader_start_time);
	json_u64(f, "epoch", s->uploader_epoch);
	json_u64(f, "workers", s->uploader_workers);
	json_u64(f, "concurrency_limit", s->concurrency_limit);
	json_u64(f, "slowdowns", s->slowdowns);
	json_u64(f, "multipart_started", s->multipart_started);
	json_u64(f, "multipart_completed", s->multipart_completed);
	json_u64(f, "multipart_aborted", s->multipart_aborted);
	json_batch(f, s);
	json_u64(f, "flags", s->uploader_flags);
	json_bool(f, "config_alarm", s->uploader_flags & RING_UPLOADER_CONFIG_ALARM);
	fputs("\"heartbeat_age_ms\":", f);
	if (s->have_heartbeat)
		fprintf(f, "%" PRIu64, s->heartbeat_age_ms);
	else
		fputs("null", f);
	fputs("},\"producers\":[", f);
	for (unsigned i = 0; i < s->nproducers; i++) {
		const struct shmstat_producer *p = &s->producers[i];
		fprintf(f, "%s{", i ? "," : "");
		json_u64(f, "slot", p->slot);
		json_u64(f, "pid", p->pid);
		json_bool(f, "alive", p->alive);
		json_u64(f, "produced", p->produced);
		json_u64(f, "dropped_full", p->dropped_full);
		json_u64(f, "slot_produced", p->slot_produced);
		json_u64(f, "slot_dropped_full", p->slot_dropped_full);
		json_u64(f, "rejected", p->rejected);
		json_u64(f, "failed", p->failed);
		fprintf(f, "\"bytes\":%" PRIu64 "}", p->bytes);
	}
	fputc(']', f);
	if (r != NULL && r->valid)
		fprintf(f, ",\"rates\":{\"interval_s\":%.3f,\"put_per_s\":%.3f,"
		    "\"upload_per_s\":%.3f,\"drop_per_s\":%.3f,"
		    "\"in_bytes_per_s\":%.3f,\"out_bytes_per_s\":%.3f}",
		    r->interval_s, r->put_s, r->upload_s, r->drop_s,
		    r->in_bytes_s, r->out_bytes_s);
	fputs("}\n", f);
}

/* ---------------------------------------------------------- Prometheus */

/* Label values: backslash, double quote and newline are the only escapes
 * the format has; everything else outside printable ASCII is replaced
 * first, so the value is also valid UTF-8. */
static void
prom_label_value(FILE *f, const char *src, size_t len)
{
	char buf[RING_NAME_MAX + RING_LINE + 2];

	shmstat_printable(buf, sizeof(buf), src, len);
	for (const char *p = buf; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			fputc('\\', f);
		fputc(*p, f);
	}
}

static void
prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP s3ring_%s %s\n# TYPE s3ring_%s %s\n", name, help,
	    name, type);
}

static void
prom_ring(FILE *f, const struct shmstat_snap *s)
{
	fputs("ring=\"", f);
	prom_label_value(f, s->ring, sizeof(s->ring));
	fputc('"', f);
}

static void
prom_one(FILE *f, const struct shmstat_snap *s, const char *name,
    const char *type, const char *help, uint64_t v)
{
	prom_family(f, name, type, help);
	fprintf(f, "s3ring_%s{", name);
	prom_ring(f, s);
	fprintf(f, "} %" PRIu64 "\n", v);
}

#define PROM_G(name, help, v) prom_one(f, s, name, "gauge", help, v)
#define PROM_C(name, help, v) prom_one(f, s, name "_total", "counter", help, v)

/* A batch prefix as a label value, into dst (PROM_PREFIX_CAP bytes: two
 * per byte of the prefix at most, and the NUL). Label values may hold any
 * UTF-8, so valid UTF-8 is kept; backslash, double quote and newline are
 * escaped as the format says, and any other control (printable_cp()) or
 * invalid byte becomes '?'. */
#define PROM_PREFIX_CAP (2 * RING_BATCH_PREFIX + 1)
static void
prom_prefix_label(char dst[PROM_PREFIX_CAP], const struct shmstat_batch_rule *r)
{
	const unsigned char *p = (const unsigned char *)r->prefix;
	size_t n = strnlen(r->prefix, sizeof(r->prefix)), i = 0, o = 0;

	while (i < n) {
		uint32_t cp;
		size_t k = utf8_seq(p + i, n - i, &cp);

		if (k == 0 || (cp != '\n' && !printable_cp(cp))) {
			dst[o++] = '?';
			i += k ? k : 1;
		} else if (cp == '\\' || cp == '"' || cp == '\n') {
			dst[o++] = '\\';
			dst[o++] = cp == '\n' ? 'n' : (char)cp;
			i++;
		} else {
			memcpy(dst + o, p + i, k);
			o += k;
			i += k;
		}
	}
	dst[o] = '\0';
}

/* The per-rule series of the batch figure at offset off of struct
 * shmstat_batch_rule. labels[i] is rule i's prefix label; rules without
 * keep[i] are left out (see prom_batch()). */
static void
prom_batch_series(FILE *f, const struct shmstat_snap *s,
    char labels[][PROM_PREFIX_CAP], const bool *keep, const char *name,
    const char *help, size_t off)
{
	prom_family(f, name, "counter", help);
	for (unsigned i = 0; i < s->batch_rules; i++) {
		if (!keep[i])
			continue;
		fprintf(f, "s3ring_%s{", name);
		prom_ring(f, s);
		fprintf(f, ",prefix=\"%s\"} %" PRIu64 "\n", labels[i],
		    *(const uint64_t *)((const char *)&s->batch[i] + off));
	}
}

/* Batch mode: the totals always, a series per rule and figure when there
 * are rules. The uploader's configuration never has two rules with one
 * prefix, but a hostile ring may; the exposition must not repeat a series
 * (node_exporter's textfile collector refuses the whole file), so a rule
 * whose label is an earlier rule's is left out. */
static void
prom_batch(FILE *f, const struct shmstat_snap *s)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} series[] = {
		{ "batch_rule_messages_total", "Messages read into batches of the rule.",
		  offsetof(struct shmstat_batch_rule, messages) },
		{ "batch_rule_bytes_total", "Framed bytes read into batches of the rule.",
		  offsetof(struct shmstat_batch_rule, bytes) },
		{ "batch_rule_objects_total", "Batch objects of the rule confirmed.",
		  offsetof(struct shmstat_batch_rule, objects) },
		{ "batch_rule_uploaded_bytes_total", "Framed bytes in the rule's confirmed objects.",
		  offsetof(struct shmstat_batch_rule, uploaded_bytes) },
		{ "batch_rule_stored_bytes_total", "Size as stored (compressed) of the rule's confirmed objects.",
		  offsetof(struct shmstat_batch_rule, stored_bytes) },
		{ "batch_rule_alone_total", "Messages of the rule uploaded one object each.",
		  offsetof(struct shmstat_batch_rule, alone) },
	};
	char labels[RING_BATCH_RULES][PROM_PREFIX_CAP];
	bool keep[RING_BATCH_RULES];

	PROM_C("batch_objects", "Batch objects confirmed, all rules together.",
	    s->batch_objects);
	PROM_C("batch_messages", "Messages in confirmed batch objects, all rules together.",
	    s->batch_messages);
	if (s->batch_rules == 0)
		return;
	for (unsigned i = 0; i < s->batch_rules; i++) {
		prom_prefix_label(labels[i], &s->batch[i]);
		keep[i] = true;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(labels[i], labels[j]) == 0)
				keep[i] = false;
	}
	for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++)
		prom_batch_series(f, s, labels, keep, series[k].name,
		    series[k].help, series[k].off);
	prom_family(f, "batch_rule_oldest_unflushed_age_seconds", "gauge",
	    "Age of the rule's oldest message not yet uploaded (0 when none).");
	for (unsigned i = 0; i < s->batch_rules; i++) {
		const struct shmstat_batch_rule *r = &s->batch[i];

		if (!keep[i])
			continue;
		fputs("s3ring_batch_rule_oldest_unflushed_age_seconds{", f);
		prom_ring(f, s);
		fprintf(f, ",prefix=\"%s\"} %.3f\n", labels[i],
		    r->have_oldest ? (double)r->oldest_age_ms / 1000 : 0.0);
	}
}

void
shmstat_render_prometheus(FILE *f, const struct shmstat_snap *s)
{
	PROM_G("capacity_bytes", "Size of the ring's data region.", s->capacity);
	PROM_G("used_bytes", "Bytes between head and tail (not yet released by the uploader).",
	    s->used_bytes);
	PROM_G("max_message_bytes", "Largest key plus body a put accepts.", s->max_message);
	PROM_G("pending_records", "Committed records not yet handed to the uploader.",
	    s->pending);
	PROM_G("pending_bytes", "Bytes between the uploader's cursor and tail.",
	    s->pending_bytes);
	PROM_G("pending_exact", "1 if pending_records counts every record, 0 if the walk was cut short.",
	    s->pending_exact);
	PROM_G("in_flight_records", "Uploads under way: one per record taken from the ring, one per batch object being built, sent or retried.", s->in_flight);
	prom_family(f, "oldest_pending_age_seconds", "gauge",
	    "Age of the oldest pending record (0 when none).");
	fputs("s3ring_oldest_pending_age_seconds{", f);
	prom_ring(f, s);
	fprintf(f, "} %.3f\n", s->have_oldest ? (double)s->oldest_pending_age_ms / 1000 : 0.0);

	PROM_C("produced", "Records committed by producers.", s->produced);
	PROM_C("produced_bytes", "Body bytes committed by producers.", s->produced_bytes);
	PROM_C("dropped_full", "Puts refused because the ring was full.", s->dropped_full);
	PROM_C("rejected", "Puts refused for their size or key.", s->rejected);
	PROM_C("failed", "Puts whose record the uploader gave up on.", s->failed);
	PROM_C("uploaded", "Records uploaded.", s->uploaded);
	PROM_C("uploaded_bytes", "Body bytes uploaded.", s->uploaded_bytes);
	PROM_C("retried", "Upload attempts retried after a transient error.", s->retried);
	PROM_C("dead_lettered", "Records sent to the dead-letter spool.", s->dead_lettered);
	PROM_C("abandoned", "Records of dead producers given up.", s->abandoned);
	PROM_C("abandoned_hard", "Records given up because their ring was retired.", s->abandoned_hard);
	PROM_C("corrupt", "Corrupt records skipped.", s->corrupt);
	PROM_C("resynced", "Gaps padded over by rescanning.", s->resynced);
	PROM_C("config_errors", "Configuration errors seen by the uploader.", s->config_errors);

	PROM_G("uploader_up", "1 if the uploader process recorded in the ring is alive.",
	    s->uploader_alive);
	PROM_G("uploader_pid", "Process id of the last uploader (0: none ever).",
	    s->uploader_pid);
	PROM_G("uploader_epoch", "Uploader start count, from its journal.", s->uploader_epoch);
	PROM_G("uploader_workers", "Uploads in flight at most (--workers).", s->uploader_workers);
	PROM_G("uploader_concurrency_limit", "Uploads allowed in flight now (adaptive).",
	    s->concurrency_limit);
	PROM_C("uploader_slowdowns", "Answers asking to slow down (503 SlowDown, 429).",
	    s->slowdowns);
	PROM_C("uploader_multipart_started", "Multipart uploads started.",
	    s->multipart_started);
	PROM_C("uploader_multipart_completed", "Multipart uploads completed.",
	    s->multipart_completed);
	PROM_C("uploader_multipart_aborted", "Multipart uploads aborted.",
	    s->multipart_aborted);
	prom_batch(f, s);
	if (s->have_heartbeat) {
		prom_family(f, "uploader_heartbeat_age_seconds", "gauge",
		    "Seconds since the uploader's last heartbeat.");
		fputs("s3ring_uploader_heartbeat_age_seconds{", f);
		prom_ring(f, s);
		fprintf(f, "} %.3f\n", (double)s->heartbeat_age_ms / 1000);
	}
	PROM_G("uploader_config_alarm", "1 while uploads are paused on a configuration error.",
	    (s->uploader_flags & RING_UPLOADER_CONFIG_ALARM) != 0);
	PROM_G("uploader_spool_alarm", "1 while the dead-letter spool is unusable.",
	    (s->uploader_flags & RING_UPLOADER_SPOOL_ALARM) != 0);
	PROM_G("uploader_corrupt_alarm", "1 while the uploader finds the ring corrupt.",
	    (s->uploader_flags & RING_UPLOADER_CORRUPT_ALARM) != 0);
	if (s->have_last_error) {
		prom_family(f, "uploader_last_error_info", "gauge",
		    "The uploader's last error, as a label.");
		fputs("s3ring_uploader_last_error_info{", f);
		prom_ring(f, s);
		fputs(",error=\"", f);
		prom_label_value(f, s->last_error, RING_LINE);
		fputs("\"} 1\n", f);
	}

	PROM_C("upload_failed_attempts", "Upload attempts that failed, all classes.",
	    s->failed_attempts);
	prom_family(f, "upload_errors_total", "counter",
	    "Failed upload attempts by error class.");
	for (unsigned i = 0; i < RING_ERR_NCLASSES; i++) {
		fputs("s3ring_upload_errors_total{", f);
		prom_ring(f, s);
		fprintf(f, ",class=\"%s\"} %" PRIu64 "\n", shmstat_errclass_name(i),
		    s->errors[i]);
	}
	PROM_G("uploader_failing", "1 while every upload attempt fails.", s->failing);
	prom_family(f, "uploader_failing_seconds", "gauge",
	    "Seconds since the first failure after the last success (0 when uploads work).");
	fputs("s3ring_uploader_failing_seconds{", f);
	prom_ring(f, s);
	fprintf(f, "} %.3f\n", s->failing ? (double)s->failing_for_ms / 1000 : 0.0);
	prom_family(f, "upload_latency_seconds", "histogram",
	    "Latency of upload attempts.");
	{
		uint64_t acc = 0;
		for (unsigned i = 0; i < RING_LAT_BUCKETS; i++) {
			acc += s->lat_bucket[i];
			fputs("s3ring_upload_latency_seconds_bucket{", f);
			prom_ring(f, s);
			if (i < RING_LAT_BUCKETS - 1)
				fprintf(f, ",le=\"%g\"} %" PRIu64 "\n",
				    (double)lat_bounds_ms[i] / 1000, acc);
			else
				fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", acc);
		}
		/* _count is the buckets' sum, so the two agree even when the
		 * snapshot raced the writer. */
		fputs("s3ring_upload_latency_seconds_sum{", f);
		prom_ring(f, s);
		fprintf(f, "} %.6f\n", (double)s->lat_sum_us / 1e6);
		fputs("s3ring_upload_latency_seconds_count{", f);
		prom_ring(f, s);
		fprintf(f, "} %" PRIu64 "\n", acc);
	}

	/* Per slot: a slot's counters never decrease, so they are proper
	 * counters. No pid in any label: series would churn with every
	 * producer restart (the pid is in --json). */
	if (s->nproducers == 0)
		return;
	prom_family(f, "producer_alive", "gauge",
	    "1 if the process owning the producer slot is alive.");
	for (unsigned i = 0; i < s->nproducers; i++) {
		fputs("s3ring_producer_alive{", f);
		prom_ring(f, s);
		fprintf(f, ",slot=\"%u\"} %d\n", s->producers[i].slot,
		    s->producers[i].alive);
	}
	prom_family(f, "producer_produced_total", "counter",
	    "Records committed through the producer slot.");
	for (unsigned i = 0; i < s->nproducers; i++) {
		fputs("s3ring_producer_produced_total{", f);
		prom_ring(f, s);
		fprintf(f, ",slot=\"%u\"} %" PRIu64 "\n", s->producers[i].slot,
		    s->producers[i].slot_produced);
	}
	prom_family(f, "producer_dropped_full_total", "counter",
	    "Puts through the producer slot refused because the ring was full.");
	for (unsigned i = 0; i < s->nproducers; i++) {
		fputs("s3ring_producer_dropped_full_total{", f);
		prom_ring(f, s);
		fprintf(f, ",slot=\"%u\"} %" PRIu64 "\n", s->producers[i].slot,
		    s->producers[i].slot_dropped_full);
	}
}

/* --------------------------------------------------------------- check */

static void
append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
append(char *buf, size_t cap, const char *fmt, ...)
{
	size_t n = strnlen(buf, cap);
	va_list ap;

	if (n + 1 >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, cap - n, fmt, ap);
	va_end(ap);
}

/* Copies the printable form of src into dst, cut at a word boundary when
 * it does not fit (an ellipsis marks the cut): a status line names the
 * whole error, or whole words of it, never "the bucket is i". */
static const char *
words(char *dst, size_t cap, const char *src, size_t len)
{
	char buf[RING_LINE + 1];
	size_t n;

	shmstat_printable(buf, sizeof(buf), src, len);
	n = strlen(buf);
	if (n < cap) {
		memcpy(dst, buf, n + 1);
		return dst;
	}
	n = cap > 4 ? cap - 4 : 0;
	while (n > 0 && buf[n] != ' ')
		n--;
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == ',' || buf[n - 1] == ';' ||
	    buf[n - 1] == ':'))
		n--;
	memcpy(dst, buf, n);
	snprintf(dst + n, cap - n, "...");
	return dst;
}

int
shmstat_check(const struct shmstat_snap *s, const struct shmstat_check_cfg *cfg,
    char *line, size_t cap)
{
	static const char *const names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };
	char why[512] = "", a[HBUF], err[RING_LINE + 1], name[RING_NAME_MAX + 1];
	int st = SHMSTAT_OK;
	uint64_t new_drops = s->dropped_full > cfg->drops_baseline ?
	    s->dropped_full - cfg->drops_baseline : 0;
	uint64_t new_dead = s->dead_lettered > cfg->dead_baseline ?
	    s->dead_lettered - cfg->dead_baseline : 0;
	unsigned pct = used_pct(s);

#define REASON(level, ...) do { \
		if ((level) > st) st = (level); \
		append(why, sizeof(why), "%s", why[0] ? "; " : ""); \
		append(why, sizeof(why), __VA_ARGS__); \
	} while (0)

	if (s->uploader_pid == 0)
		REASON(SHMSTAT_CRITICAL, "no uploader has attached");
	else if (!s->uploader_alive)
		REASON(SHMSTAT_CRITICAL, "uploader pid %" PRIu32 " is dead", s->uploader_pid);
	else if (!s->have_heartbeat)
		REASON(SHMSTAT_CRITICAL, "uploader pid %" PRIu32 " has no heartbeat",
		    s->uploader_pid);
	else if (s->heartbeat_age_ms > cfg->heartbeat_max_ms)
		REASON(SHMSTAT_CRITICAL, "uploader heartbeat stale (%s old)",
		    hage(a, s->heartbeat_age_ms));
	if (s->uploader_flags & RING_UPLOADER_CONFIG_ALARM)
		REASON(SHMSTAT_CRITICAL, "configuration error: %s",
		    s->have_last_error ? words(err, sizeof(err), s->last_error,
		    RING_LINE) : "(no message)");
	/* During a configuration alarm the error is named above already. */
	int failing_level = !s->failing ? SHMSTAT_OK :
	    cfg->failing_crit_ms != 0 && s->failing_for_ms >= cfg->failing_crit_ms ?
	    SHMSTAT_CRITICAL : cfg->failing_warn_ms != 0 &&
	    s->failing_for_ms >= cfg->failing_warn_ms ? SHMSTAT_WARNING : SHMSTAT_OK;
	if (failing_level != SHMSTAT_OK)
		REASON(failing_level, "every upload has failed for %s%s%s",
		    hage(a, s->failing_for_ms),
		    s->have_last_error && !(s->uploader_flags & RING_UPLOADER_CONFIG_ALARM) ?
		    ", last error: " : "",
		    s->have_last_error && !(s->uploader_flags & RING_UPLOADER_CONFIG_ALARM) ?
		    words(err, sizeof(err), s->last_error, RING_LINE) : "");
	if (s->have_oldest && cfg->age_crit_ms != 0 &&
	    s->oldest_pending_age_ms >= cfg->age_crit_ms)
		REASON(SHMSTAT_CRITICAL, "oldest pending message %s old",
		    hage(a, s->oldest_pending_age_ms));
	else if (s->have_oldest && cfg->age_warn_ms != 0 &&
	    s->oldest_pending_age_ms >= cfg->age_warn_ms)
		REASON(SHMSTAT_WARNING, "oldest pending message %s old",
		    hage(a, s->oldest_pending_age_ms));
	if (new_dead != 0)
		REASON(cfg->dead_crit != 0 && new_dead >= cfg->dead_crit ?
		    SHMSTAT_CRITICAL : SHMSTAT_WARNING,
		    "%" PRIu64 " new dead letter%s since the last check", new_dead,
		    new_dead == 1 ? "" : "s");
	if (s->used_bytes * 100 > (uint64_t)cfg->full_warn_pct * s->capacity)
		REASON(SHMSTAT_WARNING, "ring %u%% full", pct);
	if (new_drops != 0)
		REASON(SHMSTAT_WARNING, "%" PRIu64 " new drops (ring full)", new_drops);
	if (s->uploader_flags & RING_UPLOADER_SPOOL_ALARM)
		REASON(SHMSTAT_WARNING, "dead-letter spool unusable");
	if (s->uploader_flags & RING_UPLOADER_CORRUPT_ALARM)
		REASON(SHMSTAT_WARNING, "uploader reports a corrupt ring");
	if (s->have_oldest_writing && cfg->writing_warn_ms != 0 &&
	    s->oldest_writing_age_ms > cfg->writing_warn_ms) {
		uint32_t wpid = 0;
		for (unsigned k = 0; k < s->nproducers; k++)
			if (s->producers[k].slot == s->oldest_writing_slot)
				wpid = s->producers[k].pid;
		REASON(SHMSTAT_WARNING, "producer slot %u (pid %" PRIu32 ") has been writing one record for %s; "
		    "head waits for it", s->oldest_writing_slot, wpid,
		    hage(a, s->oldest_writing_age_ms));
	}
#undef REASON
	if (st == SHMSTAT_OK)
		snprintf(why, sizeof(why), "%u%% used, %" PRIu64 " pending, uploader pid %"
		    PRIu32 " alive (heartbeat %s ago)", pct, s->pending,
		    s->uploader_pid, hage(a, s->heartbeat_age_ms));

	snprintf(line, cap, "S3RING %s - ring %s: %s | used_pct=%u%%;%u;;0;100 "
	    "pending=%" PRIu64 " in_flight=%" PRIu64 " dropped_full=%" PRIu64 "c "
	    "uploaded=%" PRIu64 "c dead_lettered=%" PRIu64 "c", names[st],
	    shmstat_printable(name, sizeof(name), s->ring, sizeof(s->ring)), why, pct,
	    cfg->full_warn_pct, s->pending, s->in_flight, s->dropped_full,
	    s->uploaded, s->dead_lettered);
	return st;
}
