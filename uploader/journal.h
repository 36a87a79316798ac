/* journal.h -- the uploader's own state beside the ring: head, epoch, in flight. */
#ifndef S3RING_JOURNAL_H
#define S3RING_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inflight.h"
#include "ring.h"

#define JOURNAL_MAGIC   UINT64_C(0x314c4e524a523353) /* "S3RJRNL1" */
#define JOURNAL_VERSION 2u
#define JOURNAL_ENTRIES 4096u /* records in flight or finished out of order */

/* /dev/shm/s3ring.NAME.journal, mapped by the uploader alone (mode 0600).
 * head is authoritative: it is stored here before the ring's copy, so after
 * a crash the ring's head is never ahead of it. */
struct journal_file {
	uint64_t magic;
	uint32_t version;
	uint32_t entries;
	uint64_t epoch;
	_Atomic uint64_t head;
	uint64_t ring_created_ns;  /* which ring this journal belongs to */
	uint64_t ring_capacity;
	uint64_t ring_id;          /* the ring's random identity (layout 2) */
	uint8_t pad_[128 - 56];
	struct inflight_entry entry[JOURNAL_ENTRIES];
};

struct journal {
	int fd;
	struct journal_file *f;
	struct inflight table;     /* over f->entry */
	uint64_t *done;            /* positions finished by the last run, sorted */
	size_t ndone;
	uint64_t redelivered_from; /* the head this run started at */
	char path[300];
};

/* Opens (or creates) the journal of ring, takes the single-instance lock,
 * bumps the epoch, and reconciles the ring's head with the journal's.
 * Returns 0, -EBUSY if another uploader holds the lock, or -errno with a
 * one-line reason in err. */
int journal_open(struct journal *j, struct ring *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void journal_close(struct journal *j);

/* True if [pos, end) was confirmed by the previous run but not yet released
 * when it stopped: skip it instead of uploading it again. */
bool journal_was_done(const struct journal *j, uint64_t pos);

/* Publishes a new head: the journal's first, then the ring's. */
void journal_release(struct journal *j, struct ring *r, uint64_t head);

#endif
