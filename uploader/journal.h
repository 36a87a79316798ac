/* journal.h -- the uploader's own state beside the ring: head, epoch, in
 * flight, multipart uploads open. */
#ifndef S3RING_JOURNAL_H
#define S3RING_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inflight.h"
#include "ring.h"

#define JOURNAL_MAGIC   UINT64_C(0x314c4e524a523353) /* "S3RJRNL1" */
#define JOURNAL_VERSION 4u
#define JOURNAL_ENTRIES 4096u /* records in flight or finished out of order */

/* Multipart uploads that may be open on the server, so that a start after
 * a kill -9 can abort what the previous run left. An entry is CREATING
 * from before the create request is sent (its UploadId is not known yet)
 * and OPEN once the UploadId is stored; it is FREE again after the
 * complete or the abort succeeded. The state word is stored last, with a
 * release store, so a crash in the middle of an entry leaves the state it
 * had before: the bytes of a FREE entry mean nothing. */
#define JOURNAL_MPU_ENTRIES 64u
#define JOURNAL_MPU_KEY_MAX 1024u /* S3_KEY_MAX */
#define JOURNAL_MPU_ID_MAX  1024u /* S3_UPLOAD_ID_MAX, incl. NUL */

enum { JOURNAL_MPU_FREE = 0, JOURNAL_MPU_CREATING = 1, JOURNAL_MPU_OPEN = 2 };

struct journal_mpu {
	_Atomic uint32_t state;
	uint32_t reserved;
	uint64_t epoch;            /* the run that began it */
	uint64_t pos;              /* ring position of its record */
	char key[JOURNAL_MPU_KEY_MAX + 1]; /* the full key, prefix applied */
	char upload_id[JOURNAL_MPU_ID_MAX];
};

/* Batch objects closed and not yet released (batch.c). An entry is CLOSED
 * from the moment a batch's span is fixed and its object key chosen, before
 * its first byte is sent, and DONE once the object is confirmed; it is
 * freed when head passes its end. A start after a crash rebuilds every
 * CLOSED batch from the ring, the same records under the same key, so the
 * re-upload overwrites instead of duplicating; the records of a DONE batch
 * are skipped. Everything a rebuild needs is here, not in the rules, which
 * may have changed in between. The state word is stored last (release). */
#define JOURNAL_BATCH_ENTRIES    64u
#define JOURNAL_BATCH_PREFIX_MAX 255u /* CONFIG_BATCH_PREFIX_MAX */

enum { JOURNAL_BATCH_FREE = 0, JOURNAL_BATCH_CLOSED = 1, JOURNAL_BATCH_DONE = 2 };

struct journal_batch {
	_Atomic uint32_t state;
	uint32_t nrec;             /* records in it when it was closed */
	uint64_t epoch;            /* the run that closed it */
	uint64_t first, end;       /* its first record's pos, its last one's end */
	uint64_t max_bytes;        /* a record framed larger went alone */
	uint8_t framing, compression;
	int8_t level;
	uint8_t reserved[5];
	char prefix[JOURNAL_BATCH_PREFIX_MAX + 1];
	char key[JOURNAL_MPU_KEY_MAX + 1]; /* the object key, key-prefix applied */
	uint8_t pad_[7];
};

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
	uint32_t mpu_entries;
	uint32_t batch_entries;
	uint8_t pad_[128 - 64];
	struct inflight_entry entry[JOURNAL_ENTRIES];
	/* Not reset with the rest when the ring was made again: the uploads
	 * are open on the server whatever became of the ring. */
	struct journal_mpu mpu[JOURNAL_MPU_ENTRIES];
	/* Reset with the in-flight table: the spans are the ring's. */
	struct journal_batch batch[JOURNAL_BATCH_ENTRIES];
};

struct journal {
	int fd;
	struct journal_file *f;
	struct inflight table;     /* over f->entry */
	uint64_t *done;            /* positions finished by the last run, sorted */
	size_t ndone;
	uint64_t redelivered_from; /* the head this run started at */
	uint64_t prev_batch_end;   /* the earlier runs' batches end below this */
	uint64_t our_batch_end;    /* and this run's */
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

/*
 * The multipart table. Only the thread that owns the journal calls these;
 * the atomics order the bytes against a crash, not against other threads.
 *
 * journal_mpu_begin records that a multipart upload of key (the object key
 * as sent, 1 to JOURNAL_MPU_KEY_MAX bytes) for the record at pos is about
 * to be created: call it before the create request is sent. Returns the
 * entry's index, -ENOSPC when every entry is in use (start the upload
 * later, or send the record in one PUT), -EINVAL for an empty key, or
 * -ENAMETOOLONG.
 */
int journal_mpu_begin(struct journal *j, uint64_t pos, const char *key)
    __attribute__((warn_unused_result));

/* Stores the UploadId of entry idx, which becomes OPEN. An id that does not
 * fit (JOURNAL_MPU_ID_MAX) is not stored and the entry stays CREATING: a
 * restart then finds the upload by its key, which is slower but as sure.
 * An idx that is not CREATING is logged and ignored. */
void journal_mpu_opened(struct journal *j, int idx, const char *upload_id);

/* Frees entry idx: call it once the complete or the abort succeeded (an
 * abort answered NoSuchUpload counts: the upload is gone). */
void journal_mpu_end(struct journal *j, int idx);

/*
 * Walks the entries that earlier runs left open (this run's own entries
 * are never reported). Returns the index of the first one at or after
 * from, with *key set to its key and *upload_id to its UploadId, or NULL
 * for an entry still CREATING: list the uploads with that key as prefix
 * and abort those whose key is exactly it. Returns -ENOENT when there is
 * none left. The strings point into the journal and stay valid until
 * journal_mpu_end(idx). An entry whose state or strings are not valid is
 * logged and freed, never reported. Abort the leftovers before this run
 * starts multipart uploads of its own: a CREATING leftover's listing
 * would also find a new upload of the same key.
 *
 *   for (int i = 0; (i = journal_mpu_next_leftover(j, i, &k, &id)) >= 0; i++)
 *           if (abort_all(k, id) == 0)
 *                   journal_mpu_end(j, i);
 */
int journal_mpu_next_leftover(struct journal *j, int from, const char **key,
    const char **upload_id) __attribute__((warn_unused_result));

/*
 * The batch table. journal_batch_close() records a batch whose span and key
 * are fixed, before its object is sent: returns the entry's index, or
 * -ENOSPC when all are in use (keep the batch open and try later), or
 * -EINVAL / -ENAMETOOLONG for a bad prefix or key. journal_batch_done()
 * marks it confirmed. journal_batch_release() frees the entries that end at
 * or below head; call it with each new head.
 */
int journal_batch_close(struct journal *j, const struct journal_batch *b)
    __attribute__((warn_unused_result));
void journal_batch_done(struct journal *j, int idx);
void journal_batch_release(struct journal *j, uint64_t head);

/* The entry of an earlier run whose span holds pos and whose prefix key
 * starts with, or -1. Such entries were checked when the journal was
 * opened (a bad one is logged and freed). */
int journal_batch_find(const struct journal *j, uint64_t pos, const char *key);
const struct journal_batch *journal_batch_at(const struct journal *j, int idx);
/* The same among this run's own entries: a record read late (a hole the
 * consumer read past) inside the span of a batch this run closed is that
 * batch's, whether or not its object is confirmed yet. */
int journal_batch_find_ours(const struct journal *j, uint64_t pos, const char *key);
/* How many entries are free. */
unsigned journal_batch_free(const struct journal *j);
/* Frees the DONE entry that ends lowest, for a batch that must close when
 * every entry is in use: a crash before head passes it then uploads its
 * records again (at least once still, but twice). -ENOSPC if none is DONE. */
int journal_batch_evict_done(struct journal *j);

#endif
