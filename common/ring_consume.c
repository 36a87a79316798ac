/* ring_consume.c -- the consumer side of the ring, and the one record check.
 *
 * Invariants kept here:
 * - Everything read from shared memory is untrusted: each position, length
 *   and sum is read once into locals and checked against the geometry
 *   (64-byte alignment, the record's end within [pos, tail] and within the
 *   data region, sums that cannot wrap) by ring_record_check() before any
 *   copy or CRC. The CRCs are verified on the private copy (or, for a
 *   body left in the ring, where it lies, or by the caller on its own
 *   copy: ring_consume_view(), leave_body, ring_scan()).
 * - The space of a record whose owner may still write it is never given
 *   back, however long the owner is stopped. The cursor may read past such
 *   a record (a "hole", when its length is sealed), but the floor, and so
 *   head, stays at it until it is committed, aborted, or its owner is found
 *   dead by its slot lock and generation.
 * - Space is given up only by CAS, 64 bytes at a time, stopping at the
 *   first header that carries its own stamp; a producer still between its
 *   tail CAS and its header CAS therefore loses its claim cleanly.
 * - Every access to the mapping happens inside the SIGBUS guard.
 */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crc32c.h"
#include "futex.h"
#include "sigbus.h"

#define MS (1000ull * 1000)

static inline struct ring_record *
rec_at(const struct ring *r, uint64_t pos)
{
	return (struct ring_record *)(r->data + (pos & r->mask));
}

/* The body of ring_record_check(), inlined into the consumer's loop. */
static inline __attribute__((always_inline)) enum ring_verdict
record_check(const struct ring_geometry *g, uint64_t pos, uint64_t tail,
    uint64_t tag, const struct ring_record *hd, uint64_t *len)
{
	uint64_t n = hd->len, off = pos & (g->capacity - 1);
	bool len_sane;

	if (!ring_tag_stamped(tag, pos) || ring_tag_state(tag) == RING_WRITING)
		return RING_V_NOT_READY;
	/* pos <= tail and n <= capacity are checked before they are added,
	 * so no sum below can wrap. */
	len_sane = pos % RING_ALIGN == 0 && tail >= pos && n >= RING_ALIGN &&
	    n % RING_ALIGN == 0 && n <= tail - pos && n <= g->capacity - off;

	switch (ring_tag_state(tag)) {
	case RING_ABANDONED:
		*len = RING_ALIGN;
		return RING_V_SKIP;
	case RING_PAD:
		/* A wrap pad ends at the end of the ring; an aborted
		 * reservation is no longer than a record can be. */
		if (!len_sane || hd->key_len != 0 || hd->body_len != 0 ||
		    (n > g->max_record && off + n != g->capacity) ||
		    ring_record_crc(hd, tag, NULL, 0) != hd->hdr_crc)
			return RING_V_CORRUPT;
		*len = n;
		return RING_V_SKIP;
	case RING_COMMITTED: {
		uint64_t klen = hd->key_len, blen = hd->body_len;
		if (!len_sane || n > g->max_record || klen == 0 ||
		    klen > RING_MAX_KEY || blen > g->max_message ||
		    klen + blen > g->max_message ||
		    ring_record_size(klen, blen) != n)
			return RING_V_CORRUPT;
		*len = n;
		return RING_V_RECORD;
	}
	default:
		return RING_V_CORRUPT;
	}
}

enum ring_verdict
ring_record_check(const struct ring_geometry *g, uint64_t pos, uint64_t tail,
    uint64_t tag, const struct ring_record *hd, uint64_t *len)
{
	return record_check(g, pos, tail, tag, hd, len);
}

static void
geometry_of(const struct ring *r, struct ring_geometry *g)
{
	g->capacity = r->capacity;
	g->max_message = r->max_message;
	g->max_record = r->max_record;
}

/* The length a WRITING record's owner sealed, or 0 if the seal does not
 * match (not written yet, or stale from an earlier lap) or the length is
 * impossible here. With a match, *gen gets the owner's generation. */
static uint64_t
sealed_header(const struct ring *r, uint64_t pos, uint64_t tail, uint32_t *gen)
{
	const struct ring_record *rec = rec_at(r, pos);
	/* Acquire: pairs with the release store of len_seal in
	 * write_header(); len below is the one the seal vouches for. */
	uint32_t seal = atomic_load_explicit(&((struct ring_record *)rec)->len_seal,
	    memory_order_acquire);
	uint32_t len = rec->len, owner_gen = rec->owner_gen;
	uint64_t off = pos & r->mask;

	if (seal != ring_len_seal(pos, len, owner_gen) || len < RING_ALIGN ||
	    len % RING_ALIGN != 0 || len > r->max_record || len > tail - pos ||
	    len > r->capacity - off)
		return 0;
	*gen = owner_gen;
	return len;
}

static uint64_t
sealed_len(const struct ring *r, uint64_t pos, uint64_t tail)
{
	uint32_t gen;

	return sealed_header(r, pos, tail, &gen);
}

void
ring_consumer_init(struct ring_consumer *c, struct ring *r, uint64_t from)
{
	uint64_t head, tail;

	memset(c, 0, sizeof(*c));
	c->r = r;
	head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	/* A start position from the journal that this ring cannot have (not
	 * aligned, or outside [head, tail]) is not trusted. */
	if (from == 0 || from % RING_ALIGN != 0 || from < head || from > tail)
		from = head;
	c->cursor = from;
	c->owner_wait_ns = 10 * MS;
	c->stale_wait_ns = 1000 * MS;
	c->hole_wait_ns = 200 * MS;
	if (!r->readonly) {
		c->heartbeat_ns = mono_coarse_ns();
		atomic_store_explicit(&r->hdr->upstats.heartbeat_mono_ns,
		    c->heartbeat_ns, memory_order_relaxed);
	}
	if (!r->readonly)
		atomic_store_explicit(&r->hdr->cursor, c->cursor, memory_order_relaxed);
}

uint64_t
ring_consumer_floor(const struct ring_consumer *c)
{
	uint64_t f = c->cursor;

	for (unsigned i = 0; i < c->nholes; i++)
		if (c->holes[i].pos < f)
			f = c->holes[i].pos;
	return f;
}

/* Whether the owner of the WRITING record at pos (tag read from it) may
 * still write it. The tag's 8 bits of generation tell a dead owner from
 * the slot's next ones only for 255 claims; the sealed header, once
 * written, holds the whole generation. */
static bool
owner_alive(const struct ring_consumer *c, uint64_t pos, uint64_t tag)
{
	uint32_t gen;
	uint64_t tail = atomic_load_explicit(&c->r->hdr->tail, memory_order_acquire);

	if (tail < pos || tail - pos > c->r->capacity)
		return true; /* cannot tell: wait */
	if (sealed_header(c->r, pos, tail, &gen) != 0)
		return ring_slot_alive_gen(c->r, ring_tag_slot(tag), gen);
	return ring_slot_alive(c->r, ring_tag_slot(tag), ring_tag_gen(tag));
}

/* Gives up [from, ...) 64 bytes at a time, by CAS from whatever stale tag
 * is there to an ABANDONED tag stamped with that position, until a header
 * carrying its own stamp (a live record) or limit. Returns where it stopped. */
static uint64_t
poison_until_header(struct ring *r, uint64_t from, uint64_t limit)
{
	uint64_t q = from;

	while (q < limit) {
		struct ring_record *rec = rec_at(r, q);
		uint64_t t = atomic_load_explicit(&rec->tag, memory_order_acquire);

		if (ring_tag_stamped(t, q))
			break;
		if (atomic_compare_exchange_strong_explicit(&rec->tag, &t,
		    ring_tag_make(q, RING_SLOT_NONE, RING_ABANDONED),
		    memory_order_acq_rel, memory_order_acquire))
			q += RING_ALIGN;
		/* else: a producer claimed q just now; look at it again. */
	}
	return q;
}

/* Gives up every 64-byte block of [from, to), whatever is there. Only for
 * the inside of a record we own by CAS (its owner can no longer write). */
static void
poison_span(struct ring *r, uint64_t from, uint64_t to)
{
	for (uint64_t q = from; q < to; q += RING_ALIGN)
		atomic_store_explicit(&rec_at(r, q)->tag,
		    ring_tag_make(q, RING_SLOT_NONE, RING_ABANDONED),
		    memory_order_release);
}

/* Takes a WRITING record away from its (dead) owner. Returns its end, or 0
 * if the tag changed meanwhile (committed, most likely: look again). */
static uint64_t
abandon_writing(struct ring_consumer *c, uint64_t pos, uint64_t tag,
    uint64_t tail, _Atomic uint64_t *counter)
{
	struct ring *r = c->r;
	uint64_t expect = tag, len;

	/* Read the seal before the CAS: once ABANDONED the length is ours to
	 * trust only if the owner sealed it while it could still write. */
	len = sealed_len(r, pos, tail);
	if (!atomic_compare_exchange_strong_explicit(&rec_at(r, pos)->tag,
	    &expect, ring_tag_with_state(tag, RING_ABANDONED),
	    memory_order_acq_rel, memory_order_acquire))
		return 0;
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	if (len != 0) {
		poison_span(r, pos + RING_ALIGN, pos + len);
		return pos + len;
	}
	/* Its length may never have been written: find its end by the next
	 * stamped header, giving up the blocks in between. */
	return poison_until_header(r, pos + RING_ALIGN, tail);
}

/* The cursor's record is not ready. Returns true if the cursor moved (the
 * record was given up, or read past as a hole), false to wait longer. */
static bool
handle_stuck(struct ring_consumer *c, uint64_t tag, uint64_t tail)
{
	struct ring *r = c->r;
	struct ring_header *h = r->hdr;
	uint64_t now = mono_ns(), pos = c->cursor, waited, end;

	if (c->stuck_pos != pos || c->stuck_since_ns == 0) {
		c->stuck_pos = pos;
		c->stuck_since_ns = now;
		c->next_check_ns = now + (ring_tag_stamped(tag, pos) ?
		    c->owner_wait_ns : c->stale_wait_ns);
		return false;
	}
	if (now < c->next_check_ns)
		return false;
	waited = now - c->stuck_since_ns;

	if (!ring_tag_stamped(tag, pos)) {
		/* Nobody has claimed this header although tail is past it: a
		 * producer died between its tail CAS and its header CAS (or is
		 * stalled there for a second, and will fail its put). */
		if (waited < c->stale_wait_ns) {
			c->next_check_ns = c->stuck_since_ns + c->stale_wait_ns;
			return false;
		}
		uint64_t q = poison_until_header(r, pos, tail);
		if (q == pos)
			return false; /* claimed meanwhile */
		atomic_fetch_add_explicit(&h->resynced, 1, memory_order_relaxed);
		c->cursor = q;
		return true;
	}

	/* WRITING: give it up only if its owner is dead. */
	if (!owner_alive(c, pos, tag)) {
		end = abandon_writing(c, pos, tag, tail, &h->abandoned);
		if (end != 0)
			c->cursor = end;
		return true; /* moved, or changed: look again */
	}
	/* Alive but slow or stopped: after hole_wait, read past it if its
	 * length is sealed and there is room to remember it. */
	end = waited >= c->hole_wait_ns ? sealed_len(r, pos, tail) : 0;
	if (end != 0 && c->nholes < RING_MAX_HOLES) {
		struct ring_hole *ho = &c->holes[c->nholes++];
		ho->pos = pos;
		ho->end = pos + end;
		ho->tag = tag;
		ho->next_check_ns = now + c->owner_wait_ns;
		c->cursor = pos + end;
		return true;
	}
	c->next_check_ns = now + c->owner_wait_ns;
	return false;
}

/* Skips a record that claims to be committed but does not check out. If its
 * header is intact, its length is trusted; otherwise its end is found by
 * rescanning. Either way its blocks are given up, so that a restarted
 * consumer skips it without counting it twice. Returns the position after
 * it, or 0 if its tag changed under us. */
static uint64_t
give_up_corrupt(struct ring_consumer *c, uint64_t pos, uint64_t tag,
    uint64_t len_ok, uint64_t tail)
{
	struct ring *r = c->r;
	uint64_t expect = tag;

	atomic_fetch_add_explicit(&r->hdr->corrupt, 1, memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&rec_at(r, pos)->tag,
	    &expect, ring_tag_make(pos, RING_SLOT_NONE, RING_ABANDONED),
	    memory_order_acq_rel, memory_order_acquire))
		return 0;
	if (len_ok != 0) {
		poison_span(r, pos + RING_ALIGN, pos + len_ok);
		return pos + len_ok;
	}
	return poison_until_header(r, pos + RING_ALIGN, tail);
}

struct consume_args {
	struct ring_consumer *c;
	struct ring_msg *m;
	uint8_t *buf;
	size_t cap;
	bool in_place;  /* the body stays in the ring (ring_consume_view) */
};

/* Copies out and verifies the record at pos whose header copy hd passed
 * ring_record_check() with length len. Returns 1 with the message filled
 * in, or 0 if it was corrupt (given up and counted; *next says where to go
 * on, 0 if its tag changed under us). */
static inline __attribute__((always_inline)) int
take_record(struct consume_args *a, uint64_t pos, uint64_t tag,
    const struct ring_record *hd, uint64_t len, uint64_t tail, uint64_t *next)
{
	struct ring *r = a->c->r;
	uint64_t klen = hd->key_len, blen = hd->body_len;
	const uint8_t *src = (const uint8_t *)(rec_at(r, pos) + 1);

	const uint8_t *body;

	if (klen + 1 + (a->in_place ? 0 : blen) > a->cap) {
		*next = give_up_corrupt(a->c, pos, tag, 0, tail);
		return 0;
	}
	/* The record ends inside the data region (checked), so the copy
	 * stays inside the mapping. The key is always copied: it is checked
	 * on our copy, so what is uploaded is the name that was checked. */
	memcpy(a->buf, src, klen);
	a->buf[klen] = '\0';
	if (a->in_place) {
		/* Checked where it lies, below (or by the caller, if
		 * leave_body says so). A producer that changes it after this
		 * check cannot make a wrong object land: what is sent carries
		 * body_crc (x-amz-checksum-crc32c), which S3 checks. */
		body = src + klen;
	} else {
		memcpy(a->buf + klen + 1, src + klen, blen);
		body = a->buf + klen + 1;
	}
	if (ring_record_crc(hd, tag, a->buf, klen) != hd->hdr_crc) {
		/* Header or key damaged: its length is not to be trusted. */
		*next = give_up_corrupt(a->c, pos, tag, 0, tail);
		return 0;
	}
	a->m->body_checked = !a->in_place || a->c->leave_body == NULL ||
	    !a->c->leave_body(a->c->leave_body_arg, (const char *)a->buf, klen);
	if (a->m->body_checked && crc32c(0, body, blen) != hd->body_crc) {
		*next = give_up_corrupt(a->c, pos, tag, len, tail);
		return 0;
	}
	a->m->tag = tag;
	a->m->pos = pos;
	a->m->end = pos + len;
	a->m->seq = hd->seq;
	a->m->put_ns = hd->put_ns;
	a->m->slot = ring_tag_slot(tag);
	a->m->key_len = (uint32_t)klen;
	a->m->body_len = (uint32_t)blen;
	a->m->body_crc = hd->body_crc;
	a->m->key = (char *)a->buf;
	a->m->body = (uint8_t *)body;
	atomic_fetch_add_explicit(&r->hdr->consumed, 1, memory_order_relaxed);
	return 1;
}

static void
read_header(const struct ring *r, uint64_t pos, struct ring_record *hd)
{
	/* Read the header once; everything after uses the copy. */
	memcpy((uint8_t *)hd + sizeof(hd->tag),
	    (const uint8_t *)rec_at(r, pos) + sizeof(hd->tag),
	    sizeof(*hd) - sizeof(hd->tag));
}

static void
drop_hole(struct ring_consumer *c, unsigned i)
{
	c->holes[i] = c->holes[--c->nholes];
}

/* Looks at the records read past while still WRITING. Returns 1 when one
 * of them is now committed and was taken, 0 otherwise. */
static int
poll_holes(struct consume_args *a, uint64_t tail)
{
	struct ring_consumer *c = a->c;
	struct ring *r = c->r;
	struct ring_geometry g;
	uint64_t now = 0;

	geometry_of(r, &g);
	for (unsigned i = 0; i < c->nholes;) {
		struct ring_hole *ho = &c->holes[i];
		uint64_t tag = atomic_load_explicit(&rec_at(r, ho->pos)->tag,
		    memory_order_acquire);
		struct ring_record hd;
		uint64_t len = 0, next;

		if (tag == ho->tag) {
			if (now == 0)
				now = mono_ns();
			if (now >= ho->next_check_ns) {
				if (owner_alive(c, ho->pos, tag)) {
					ho->next_check_ns = now + c->owner_wait_ns;
				} else if (abandon_writing(c, ho->pos, tag, tail,
				    &r->hdr->abandoned) != 0) {
					drop_hole(c, i);
					continue;
				}
			}
			i++;
			continue;
		}
		read_header(r, ho->pos, &hd);
		uint64_t pos = ho->pos, end = ho->end;
		drop_hole(c, i);
		switch (ring_record_check(&g, pos, tail, tag, &hd, &len)) {
		case RING_V_RECORD:
			/* The owner sealed end; a record of another length is
			 * not the one it reserved. */
			if (pos + len != end) {
				(void)give_up_corrupt(c, pos, tag, 0, end);
				break;
			}
			if (take_record(a, pos, tag, &hd, len, tail, &next) == 1)
				return 1;
			break;
		case RING_V_SKIP:
			break;
		case RING_V_CORRUPT:
			(void)give_up_corrupt(c, pos, tag, 0, end);
			break;
		case RING_V_NOT_READY:
			break; /* given up by someone else, restamped: gone */
		}
	}
	return 0;
}

static int
consume_unguarded(void *arg)
{
	struct consume_args *a = arg;
	struct ring_consumer *c = a->c;
	struct ring *r = c->r;
	struct ring_header *h = r->hdr;
	struct ring_geometry g;

	geometry_of(r, &g);
	for (bool reload = false;;) {
		uint64_t pos = c->cursor;
		uint64_t tail = c->tail_seen;
		struct ring_record hd;
		uint64_t tag, len = 0, next = 0;
		bool fresh = false;

		/* Tail as last read, while the cursor is below it: records
		 * are reserved whole, so none below an old tail reaches past
		 * it, and the line every put writes is read once per run of
		 * records, not once per record. Anything but a record or a
		 * skip is looked at again with tail read afresh. Acquire:
		 * pairs with the producers' tail CAS only for the bound; the
		 * record itself is published by its tag. */
		if (reload || c->nholes != 0 || pos >= tail) {
			tail = atomic_load_explicit(&h->tail, memory_order_acquire);
			fresh = true;
			reload = false;
		}
		if (tail < pos || tail - pos > r->capacity || tail % RING_ALIGN != 0 ||
		    pos % RING_ALIGN != 0) {
			if (!fresh) {
				reload = true;
				continue;
			}
			return -EBADMSG;
		}
		c->tail_seen = tail;
		if (c->nholes != 0 && poll_holes(a, tail) == 1)
			return 1;
		if (pos == tail) {
			/* Nothing is stuck at an empty cursor: without this,
			 * a deadline left from an abandoned record would make
			 * every wait return at once. */
			c->stuck_since_ns = 0;
			return 0;
		}
		/* Acquire: pairs with the producer's commit CAS (and the
		 * release CAS that publishes a PAD). */
		tag = atomic_load_explicit(&rec_at(r, pos)->tag, memory_order_acquire);
		read_header(r, pos, &hd);
		switch (record_check(&g, pos, tail, tag, &hd, &len)) {
		case RING_V_NOT_READY:
			if (!fresh) {
				reload = true;
				continue;
			}
			if (!handle_stuck(c, tag, tail))
				return 0;
			c->stuck_since_ns = 0; /* the cursor moved past it */
			break;
		case RING_V_SKIP:
			c->stuck_since_ns = 0;
			c->cursor = pos + len;
			break;
		case RING_V_RECORD:
			c->stuck_since_ns = 0;
			if (take_record(a, pos, tag, &hd, len, tail, &next) == 1) {
				c->cursor = pos + len;
				atomic_store_explicit(&h->cursor, c->cursor,
				    memory_order_relaxed);
				return 1;
			}
			if (next != 0)
				c->cursor = next;
			break;
		case RING_V_CORRUPT:
			if (!fresh) {
				reload = true;
				continue;
			}
			c->stuck_since_ns = 0;
			next = give_up_corrupt(c, pos, tag, 0, tail);
			if (next != 0)
				c->cursor = next;
			break;
		}
		atomic_store_explicit(&h->cursor, c->cursor, memory_order_relaxed);
	}
}

/* The guard of sigbus.h, spelled out rather than through ring_guarded()
 * (a direct call, not one through a pointer): this runs once per record.
 * The jump buffer lives in this frame for as long as consume_unguarded()
 * runs. */
static void
consumer_heartbeat(struct ring_consumer *c)
{
	uint64_t now = mono_coarse_ns();

	if (now - c->heartbeat_ns >= 100 * MS) {
		c->heartbeat_ns = now;
		atomic_store_explicit(&c->r->hdr->upstats.heartbeat_mono_ns, now,
		    memory_order_relaxed);
	}
}

static int
consume_guarded(struct consume_args *a)
{
	struct ring *r = a->c->r;
	sigjmp_buf jb;
	int rc;

	/* The consumer's heartbeat for producers (ring_layout.h): a consumer
	 * is reading, so a removed ring will be retired by it. The clock is
	 * read every 64th call, and the word stored every 100 ms, so the line
	 * stays in the producers' caches. A consumer that calls less often
	 * than that sleeps in between, and ring_consumer_wait*() stores it. */
	if ((++a->c->calls & 63) == 0 && !r->readonly)
		consumer_heartbeat(a->c);
	if (sigsetjmp(jb, 0) != 0)
		return ring_guard_fault();
	ring_guard_jmp = &jb;
	rc = consume_unguarded(a);
	ring_guard_jmp = NULL;
	return rc;
}

int
ring_consume(struct ring_consumer *c, struct ring_msg *m, void *buf,
    size_t cap)
{
	struct consume_args a = { c, m, buf, cap, false };

	return consume_guarded(&a);
}

int
ring_consume_view(struct ring_consumer *c, struct ring_msg *m, char *keybuf,
    size_t keycap)
{
	struct consume_args a = { c, m, (uint8_t *)keybuf, keycap, true };

	return consume_guarded(&a);
}

/* ------------------------------------------------------------ scanning */

struct scan_args {
	struct ring *r;
	uint64_t *pos;
	uint64_t end;
	struct ring_msg *m;
	char *buf;
	size_t cap;
};

/* One step of ring_scan(): 1 with a record, 0 at end, -EAGAIN at a record
 * still being written, or 2 after skipping something (call again). */
static int
scan_step(struct scan_args *a)
{
	struct ring *r = a->r;
	uint64_t pos = *a->pos, tail, tag, len = 0;
	struct ring_geometry g;
	struct ring_record hd;

	if (pos >= a->end)
		return 0;
	/* The span was read by the consumer, so it lies below tail; a tail
	 * that says otherwise is corrupt, and so is anything it bounds. Tail
	 * only grows, so a value that passed once bounds every span below
	 * it, and the line every put writes is read again only past it. */
	tail = atomic_load_explicit(&r->scan_tail_seen, memory_order_relaxed);
	if (a->end > tail || tail - pos > r->capacity) {
		tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
		if (a->end > tail || tail - pos > r->capacity)
			return -EBADMSG;
		atomic_store_explicit(&r->scan_tail_seen, tail, memory_order_relaxed);
	}
	if (pos % RING_ALIGN != 0)
		return -EBADMSG;
	geometry_of(r, &g);
	tag = atomic_load_explicit(&rec_at(r, pos)->tag, memory_order_acquire);
	read_header(r, pos, &hd);
	switch (record_check(&g, pos, a->end, tag, &hd, &len)) {
	case RING_V_NOT_READY:
		if (ring_tag_stamped(tag, pos) &&
		    ring_tag_state(tag) == RING_WRITING)
			return -EAGAIN;
		*a->pos = pos + RING_ALIGN;
		return 2;
	case RING_V_SKIP:
		*a->pos = pos + len;
		return 2;
	case RING_V_CORRUPT:
		*a->pos = pos + RING_ALIGN;
		return 2;
	case RING_V_RECORD:
		break;
	}
	uint64_t klen = hd.key_len, blen = hd.body_len;
	const uint8_t *src = (const uint8_t *)(rec_at(r, pos) + 1);

	if (klen + 1 > a->cap) {
		*a->pos = pos + len;
		return 2;
	}
	/* The key copied, then checked: what the caller reads is what was
	 * checked. The consumer took this record, so a failed check means it
	 * changed since: reported, for the caller to count. The body is the
	 * caller's to copy and check. */
	memcpy(a->buf, src, klen);
	a->buf[klen] = '\0';
	if (ring_record_crc(&hd, tag, a->buf, klen) != hd.hdr_crc) {
		*a->pos = pos + RING_ALIGN;
		return -EILSEQ;
	}
	a->m->body_checked = false;
	a->m->tag = tag;
	a->m->pos = pos;
	a->m->end = pos + len;
	a->m->seq = hd.seq;
	a->m->put_ns = hd.put_ns;
	a->m->slot = ring_tag_slot(tag);
	a->m->key_len = (uint32_t)klen;
	a->m->body_len = (uint32_t)blen;
	a->m->body_crc = hd.body_crc;
	a->m->key = a->buf;
	a->m->body = (uint8_t *)(uintptr_t)(src + klen);
	*a->pos = pos + len;
	return 1;
}

static int
scan_unguarded(void *arg)
{
	int rc;

	while ((rc = scan_step(arg)) == 2)
		;
	return rc;
}

int
ring_scan(struct ring *r, uint64_t *pos, uint64_t end, struct ring_msg *m,
    char *keybuf, size_t keycap)
{
	struct scan_args a = { r, pos, end, m, keybuf, keycap };

	return ring_guarded(scan_unguarded, &a);
}

struct give_up_args {
	struct ring *r;
	const struct ring_msg *m;
};

static int
give_up_unguarded(void *arg)
{
	struct give_up_args *a = arg;
	struct ring *r = a->r;
	const struct ring_msg *m = a->m;
	uint64_t expect = m->tag;

	/* m's span passed ring_record_check() when it was read: aligned,
	 * inside the data region, its end not past tail. */
	if (!atomic_compare_exchange_strong_explicit(&rec_at(r, m->pos)->tag,
	    &expect, ring_tag_make(m->pos, RING_SLOT_NONE, RING_ABANDONED),
	    memory_order_acq_rel, memory_order_acquire))
		return 0;
	poison_span(r, m->pos + RING_ALIGN, m->end);
	return 0;
}

int
ring_give_up(struct ring *r, const struct ring_msg *m)
{
	struct give_up_args a = { r, m };

	if (r->readonly || m->pos % RING_ALIGN != 0 || m->end <= m->pos ||
	    m->end - m->pos > r->capacity)
		return -EINVAL;
	return ring_guarded(give_up_unguarded, &a);
}

/* The first stamped header at or after q (below limit), or limit; reads
 * only. */
static uint64_t
next_stamped(const struct ring *r, uint64_t q, uint64_t limit)
{
	while (q < limit && !ring_tag_stamped(atomic_load_explicit(&rec_at(r, q)->tag,
	    memory_order_acquire), q))
		q += RING_ALIGN;
	return q;
}

static int
abandon_rest_unguarded(void *arg)
{
	struct ring_consumer *c = arg;
	struct ring *r = c->r;
	struct ring_header *h = r->hdr;
	uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	struct ring_geometry g;
	unsigned n = 0;

	if (tail < c->cursor || tail - c->cursor > r->capacity ||
	    tail % RING_ALIGN != 0 || c->cursor % RING_ALIGN != 0)
		return -EBADMSG;
	geometry_of(r, &g);
	/* A hole whose CAS fails was committed (or aborted) meanwhile: it
	 * stays, for poll_holes() to deliver. */
	for (unsigned i = 0; i < c->nholes;) {
		uint64_t expect = c->holes[i].tag;
		if (atomic_compare_exchange_strong_explicit(&rec_at(r, c->holes[i].pos)->tag,
		    &expect, ring_tag_with_state(expect, RING_ABANDONED),
		    memory_order_acq_rel, memory_order_acquire)) {
			atomic_fetch_add_explicit(&h->abandoned_hard, 1, memory_order_relaxed);
			n++;
			drop_hole(c, i);
			continue;
		}
		i++;
	}
	/* Walk [cursor, tail) without moving the cursor: only records still
	 * WRITING are given up. Committed records (their puts returned 0),
	 * padding and anything corrupt are left for ring_consume(). */
	for (uint64_t q = c->cursor; q < tail;) {
		uint64_t tag = atomic_load_explicit(&rec_at(r, q)->tag, memory_order_acquire);
		struct ring_record hd;
		uint64_t len = 0;

		if (!ring_tag_stamped(tag, q)) {
			/* Nobody claimed this header yet: a producer that does
			 * sees retired and pads it. */
			q = next_stamped(r, q + RING_ALIGN, tail);
			continue;
		}
		if (ring_tag_state(tag) == RING_WRITING) {
			uint64_t end = abandon_writing(c, q, tag, tail, &h->abandoned_hard);
			if (end != 0) {
				n++;
				q = end;
			}
			continue; /* 0: its tag changed, look again */
		}
		read_header(r, q, &hd);
		switch (ring_record_check(&g, q, tail, tag, &hd, &len)) {
		case RING_V_SKIP:
		case RING_V_RECORD:
			q += len;
			break;
		default:
			q = next_stamped(r, q + RING_ALIGN, tail);
			break;
		}
	}
	return (int)n;
}

unsigned
ring_consumer_abandon_rest(struct ring_consumer *c)
{
	int n = ring_guarded(abandon_rest_unguarded, c);

	return n > 0 ? (unsigned)n : 0;
}

struct sleep_args {
	struct ring_consumer *c;
	uint32_t seq;
	uint64_t deadline_ns;
	bool (*other)(void *);
	void *arg;
};

/* True if there is something for the consumer: a record at the cursor
 * that is no longer being written, a hole whose tag changed, or other(). */
static bool
consumer_ready(const struct sleep_args *s)
{
	struct ring *r = s->c->r;
	uint64_t cur = s->c->cursor;
	uint64_t tag = atomic_load_explicit(&rec_at(r, cur)->tag, memory_order_seq_cst);
	uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_seq_cst);
	bool ready = cur != tail && ring_tag_stamped(tag, cur) &&
	    ring_tag_state(tag) != RING_WRITING;

	for (unsigned i = 0; !ready && i < s->c->nholes; i++)
		ready = atomic_load_explicit(&rec_at(r, s->c->holes[i].pos)->tag,
		    memory_order_seq_cst) != s->c->holes[i].tag;
	if (!ready && s->other != NULL)
		ready = s->other(s->arg);
	return ready;
}

static int
consumer_sleep(void *arg)
{
	struct sleep_args *s = arg;
	struct ring_header *h = s->c->r->hdr;

	/* First a nap that producers do not know of: a consumer that has
	 * caught up with a producer still putting would otherwise be woken
	 * by the very next put, a FUTEX_WAKE on the producer's time (a fifth
	 * of a small put's cost, measured), and catch up and sleep again a
	 * few dozen puts later. After the nap it takes what came in a run,
	 * and only a producer that stopped for the whole nap finds it
	 * asleep. The nap is one timed sleep and one look, not polling: the
	 * lines producers write stay theirs. It lasts RING_CONSUMER_NAP_NS
	 * plus the thread's timer slack (50 us by default). */
	if (consumer_ready(s))
		return 0;
	uint64_t nap_end = mono_ns() + RING_CONSUMER_NAP_NS;
	uint64_t until = nap_end < s->deadline_ns ? nap_end : s->deadline_ns;

	(void)futex_wait(&h->data_seq, s->seq, until);
	/* Something came during the nap: no flag is stored, so the line
	 * producers read at each commit stays theirs, and none of them pays
	 * a FUTEX_WAKE for a consumer that is awake. */
	if (until == s->deadline_ns || consumer_ready(s))
		return 0;
	/* Dekker with ring_wake_consumer(): announce the sleep (seq_cst), then
	 * look again (seq_cst loads). */
	atomic_store_explicit(&h->consumer_sleeping, 1, memory_order_seq_cst);
	if (!consumer_ready(s)) {
		atomic_fetch_add_explicit(&h->consumer_wakeups, 1, memory_order_relaxed);
		(void)futex_wait(&h->data_seq, s->seq, s->deadline_ns);
	}
	atomic_store_explicit(&h->consumer_sleeping, 0, memory_order_relaxed);
	return 0;
}

void
ring_consumer_wait_or(struct ring_consumer *c, uint64_t deadline_ns,
    bool (*other)(void *), void *arg)
{
	struct sleep_args s = { c, 0, deadline_ns, other, arg };
	uint64_t now = mono_ns();

	if (!c->r->readonly)
		consumer_heartbeat(c);
	s.seq = atomic_load_explicit(&c->r->hdr->data_seq, memory_order_acquire);
	if (s.deadline_ns == 0 || s.deadline_ns > now + FUTEX_MAX_WAIT_NS)
		s.deadline_ns = now + FUTEX_MAX_WAIT_NS;
	if (c->stuck_since_ns != 0 && c->next_check_ns < s.deadline_ns)
		s.deadline_ns = c->next_check_ns;
	for (unsigned i = 0; i < c->nholes; i++)
		if (c->holes[i].next_check_ns < s.deadline_ns)
			s.deadline_ns = c->holes[i].next_check_ns;
	(void)ring_guarded(consumer_sleep, &s);
}

void
ring_consumer_wait(struct ring_consumer *c, uint64_t deadline_ns)
{
	ring_consumer_wait_or(c, deadline_ns, NULL, NULL);
}

void
ring_release(struct ring *r, uint64_t new_head)
{
	struct ring_header *h = r->hdr;
	uint64_t cur = atomic_load_explicit(&h->head, memory_order_relaxed);
	uint32_t w;

	if (new_head <= cur)
		return;
	/* seq_cst: a release for producers' acquire load of head (the bytes
	 * below it are no longer read), and half of the Dekker pair with
	 * wait_space(). */
	atomic_store_explicit(&h->head, new_head, memory_order_seq_cst);
	w = atomic_load_explicit(&h->space_word, memory_order_seq_cst);
	if (w & 1u) {
		/* Clearing the bit heals it: a waiter that died with it set
		 * costs one wake-up, not one per release. */
		atomic_store_explicit(&h->space_word, (w + 2u) & ~1u,
		    memory_order_seq_cst);
		atomic_fetch_add_explicit(&h->space_wakes, 1, memory_order_relaxed);
		(void)futex_wake(&h->space_word, INT_MAX);
	}
}

void
ring_drop_pages(struct ring *r, uint64_t from, uint64_t to)
{
	const uint64_t page = 4096;
	uint64_t start = (from + page - 1) & ~(page - 1);
	uint64_t end = to & ~(page - 1);

	if (end <= start)
		return;
	if (end - start >= r->capacity) {
		(void)madvise(r->data, r->capacity, MADV_DONTNEED);
		return;
	}
	/* At most two pieces: up to the end of the data region, then from
	 * its start. The capacity is a power of two >= 64 KiB, so page
	 * boundaries in positions are page boundaries in the mapping. */
	uint64_t off = start & r->mask, len = end - start;
	uint64_t first = len < r->capacity - off ? len : r->capacity - off;
	(void)madvise(r->data + off, first, MADV_DONTNEED);
	if (len > first)
		(void)madvise(r->data, len - first, MADV_DONTNEED);
}

