/* inflight.h -- the uploader's records in flight: out-of-order completion,
 * in-order release.
 *
 * The consumer pushes each record it hands out; uploads mark them done in
 * any order; head is the lowest position still unfinished (or the
 * consumer's floor if none). Records read past a slow producer's hole come
 * back later with a lower position than records pushed before them, so the
 * head is a minimum over the table, not its front entry. The entries live
 * in caller-provided memory, so the uploader keeps them in its journal.
 */
#ifndef S3RING_INFLIGHT_H
#define S3RING_INFLIGHT_H

#include <stdbool.h>
#include <stdint.h>

enum { INFLIGHT_FREE = 0, INFLIGHT_CLAIMED = 1, INFLIGHT_DONE = 2 };

struct inflight_entry {
	uint64_t pos, end;
	uint32_t state;
	uint32_t late;    /* pushed below a position pushed before it */
};

struct inflight {
	struct inflight_entry *e;
	uint32_t cap;
	uint32_t first;   /* index of the oldest entry */
	uint32_t count;
	uint32_t late_claimed; /* late entries not yet done */
	uint64_t top;     /* the highest position pushed */
};

void inflight_init(struct inflight *t, struct inflight_entry *mem,
    uint32_t cap);
/* Full: every entry in use, and the front one unfinished. */
bool inflight_full(const struct inflight *t);
/* Appends [pos, end), dropping a finished front entry if it needs the
 * room. Returns its index, or -ENOSPC when full. */
int inflight_push(struct inflight *t, uint64_t pos, uint64_t end);
void inflight_done(struct inflight *t, uint32_t idx);
/* Returns the new head: the lowest pos of an unfinished entry, or floor if
 * that is lower or none is left; drops the finished entries at the front
 * that end at or below it (the journal keeps the others DONE). */
uint64_t inflight_release(struct inflight *t, uint64_t floor);

#endif
