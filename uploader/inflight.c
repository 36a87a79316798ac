/* inflight.c -- the uploader's in-flight table (see inflight.h).
 *
 * The table is a ring of entries in push order; only the front is ever
 * removed, so a finished entry behind an unfinished one waits, and the
 * journal keeps it DONE for a restart to skip. A finished entry at or above
 * head (read past a hole that holds head back) stays too, until head passes
 * it or a push needs its room: only then can a restart deliver it again.
 *
 * Entries are pushed in position order, except records read past a hole,
 * which come back below positions pushed before them ("late"). While no
 * late entry is unfinished, the lowest unfinished entry is the first one
 * from the front, so a release looks at the front only; with a thousand
 * uploads in flight a scan of the whole table per release was most of the
 * engine's time.
 */
#include "inflight.h"

#include <errno.h>

void
inflight_init(struct inflight *t, struct inflight_entry *mem, uint32_t cap)
{
	t->e = mem;
	t->cap = cap;
	t->first = 0;
	t->count = 0;
	t->late_claimed = 0;
	t->top = 0;
}

bool
inflight_full(const struct inflight *t)
{
	return t->count == t->cap && t->e[t->first].state != INFLIGHT_DONE;
}

int
inflight_push(struct inflight *t, uint64_t pos, uint64_t end)
{
	uint32_t i;

	if (inflight_full(t))
		return -ENOSPC;
	if (t->count == t->cap) {
		/* A finished front entry gives way. */
		t->e[t->first].state = INFLIGHT_FREE;
		t->first = (t->first + 1) % t->cap;
		t->count--;
	}
	i = (t->first + t->count) % t->cap;
	t->e[i].pos = pos;
	t->e[i].end = end;
	t->e[i].state = INFLIGHT_CLAIMED;
	t->e[i].late = pos < t->top;
	if (t->e[i].late)
		t->late_claimed++;
	else
		t->top = pos;
	t->count++;
	return (int)i;
}

void
inflight_done(struct inflight *t, uint32_t idx)
{
	if (idx >= t->cap || t->e[idx].state != INFLIGHT_CLAIMED)
		return;
	t->e[idx].state = INFLIGHT_DONE;
	if (t->e[idx].late && t->late_claimed > 0)
		t->late_claimed--;
}

uint64_t
inflight_release(struct inflight *t, uint64_t floor)
{
	uint64_t head = floor;

	/* In push order: the first unfinished entry is the lowest unless a
	 * late one is unfinished; then all of them are looked at. */
	for (uint32_t k = 0, i = t->first; k < t->count; k++) {
		const struct inflight_entry *e = &t->e[i];

		if (e->state == INFLIGHT_CLAIMED) {
			if (e->pos < head)
				head = e->pos;
			if (t->late_claimed == 0)
				break;
		}
		if (++i == t->cap)
			i = 0;
	}
	/* Only what lies below head leaves: the journal keeps the rest. */
	while (t->count > 0 && t->e[t->first].state == INFLIGHT_DONE &&
	    t->e[t->first].end <= head) {
		t->e[t->first].state = INFLIGHT_FREE;
		t->first = (t->first + 1) % t->cap;
		t->count--;
	}
	return head;
}
