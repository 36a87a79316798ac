/* journal.c -- single instance, epoch, authoritative head, in-flight and
 * multipart tables.
 *
 * The journal lives in /dev/shm beside the ring, so it survives the uploader
 * (kill -9, OOM, upgrade) exactly as long as the ring does. Invariants:
 * - head here >= the ring's head: it is stored first (journal_release).
 * - An entry is DONE only after its upload was confirmed. After a crash,
 *   everything from head on is read again; DONE entries are skipped, every
 *   other committed record is delivered again (at least once).
 * - Only the holder of the flock on the journal consumes the ring.
 * - A multipart upload that may be open on the server has a CREATING or
 *   OPEN entry: the entry is written before the create request is sent,
 *   and freed only after the complete or the abort succeeded. Its state is
 *   stored last, so a FREE entry's bytes are never trusted.
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "s3.h"

_Static_assert(JOURNAL_MPU_KEY_MAX == S3_KEY_MAX, "journal keys are S3 keys");
_Static_assert(JOURNAL_MPU_ID_MAX == S3_UPLOAD_ID_MAX, "journal ids are S3's");
_Static_assert(offsetof(struct journal_file, head) == 24, "journal head");
_Static_assert(offsetof(struct journal_file, entry) == 128, "journal header");
_Static_assert(offsetof(struct journal_mpu, key) == 24, "journal mpu key");
_Static_assert(sizeof(struct journal_mpu) == 2080, "journal mpu entry");
_Static_assert(offsetof(struct journal_file, mpu) ==
    128 + JOURNAL_ENTRIES * sizeof(struct inflight_entry), "journal mpu table");

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A CLOSED batch holds head at its first record; a DONE one no longer
 * does, and head may be anywhere in its span (held by a record there that
 * went alone), but not past its end (it would have been freed). */
static bool
batch_entry_valid(const struct journal_batch *b, uint32_t st, uint64_t head,
    uint64_t tail)
{
	return b->first % RING_ALIGN == 0 && b->end % RING_ALIGN == 0 &&
	    b->first < b->end && b->end <= tail &&
	    (b->first >= head || (st == JOURNAL_BATCH_DONE && b->end > head)) &&
	    memchr(b->prefix, '\0', sizeof(b->prefix)) != NULL &&
	    memchr(b->key, '\0', sizeof(b->key)) != NULL && b->key[0] != '\0' &&
	    b->framing <= 1 && b->compression <= 2;
}

/* The earlier runs' batches: those below head are released, the others
 * must describe a span of this ring. */
static void
check_batches(struct journal *j, uint64_t head, uint64_t tail)
{
	for (uint32_t i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		struct journal_batch *b = &j->f->batch[i];
		uint32_t st = atomic_load_explicit(&b->state, memory_order_acquire);

		if (st == JOURNAL_BATCH_FREE)
			continue;
		if (st <= JOURNAL_BATCH_DONE && b->end <= head)
			;
		else if (st > JOURNAL_BATCH_DONE || !batch_entry_valid(b, st, head, tail))
			log_msg(LOG_LEVEL_WARN, "journal: batch entry %u is not valid "
			    "(state %u); dropped, its records are batched again", i, st);
		else {
			if (b->end > j->prev_batch_end)
				j->prev_batch_end = b->end;
			continue;
		}
		atomic_store_explicit(&b->state, JOURNAL_BATCH_FREE, memory_order_relaxed);
	}
}

int
journal_open(struct journal *j, struct ring *r, char *err, size_t errlen)
{
	struct ring_header *h = r->hdr;
	struct journal_file *f;
	struct stat st;
	uint64_t rhead, rtail, head;
	bool same_layout;
	int rc;

	memset(j, 0, sizeof(*j));
	j->fd = -1;
	snprintf(j->path, sizeof(j->path), "%s%s.journal", RING_SHM_PREFIX, r->name);
	j->fd = shm_open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "journal /dev/shm%s: %s", j->path, strerror(errno));
		return rc;
	}
	if (flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err, errlen, "ring %s: another s3ring-uploader is running (pid %u)",
		    r->name, atomic_load(&h->uploader_pid));
		goto out_close;
	}
	if (fstat(j->fd, &st) < 0 ||
	    (st.st_size != (off_t)sizeof(*f) && ftruncate(j->fd, sizeof(*f)) < 0)) {
		rc = -errno;
		snprintf(err, errlen, "journal /dev/shm%s: %s", j->path, strerror(errno));
		goto out_close;
	}
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
	if (f == MAP_FAILED) {
		rc = -errno;
		snprintf(err, errlen, "journal mmap: %s", strerror(errno));
		goto out_close;
	}
	j->f = f;

	rhead = atomic_load_explicit(&h->head, memory_order_acquire);
	rtail = atomic_load_explicit(&h->tail, memory_order_acquire);
	head = atomic_load_explicit(&f->head, memory_order_relaxed);
	same_layout = f->magic == JOURNAL_MAGIC && f->version == JOURNAL_VERSION &&
	    f->entries == JOURNAL_ENTRIES && f->mpu_entries == JOURNAL_MPU_ENTRIES &&
	    f->batch_entries == JOURNAL_BATCH_ENTRIES;
	if (!same_layout || f->ring_created_ns != h->created_realtime_ns ||
	    f->ring_capacity != h->capacity || f->ring_id != r->ring_id) {
		if (f->magic == JOURNAL_MAGIC && !same_layout)
			log_msg(LOG_LEVEL_WARN, "journal has layout version %u, this uploader writes %u; starting from the ring's head",
			    f->version, JOURNAL_VERSION);
		else if (f->magic == JOURNAL_MAGIC)
			log_msg(LOG_LEVEL_WARN, "journal belongs to an earlier ring of this name; starting from the ring's head");
		/* A journal of this layout keeps its multipart table and its
		 * magic: the ring's identity is stored last, so a crash in
		 * here leaves a mismatch that the next start resets again. */
		if (!same_layout) {
			uint64_t epoch = f->magic == JOURNAL_MAGIC ? f->epoch : 0;

			memset(f, 0, sizeof(*f));
			f->version = JOURNAL_VERSION;
			f->entries = JOURNAL_ENTRIES;
			f->mpu_entries = JOURNAL_MPU_ENTRIES;
			f->batch_entries = JOURNAL_BATCH_ENTRIES;
			f->epoch = epoch;
		}
		atomic_store(&f->head, rhead);
		head = rhead;
		memset(f->entry, 0, sizeof(f->entry));
		memset(f->batch, 0, sizeof(f->batch));
		f->ring_created_ns = h->created_realtime_ns;
		f->ring_capacity = h->capacity;
		f->ring_id = r->ring_id;
		f->magic = JOURNAL_MAGIC;
	} else if (head < rhead || head > rtail || head % RING_ALIGN != 0) {
		log_msg(LOG_LEVEL_WARN, "journal head is outside the ring's [head, tail]; starting from the ring's head");
		head = rhead;
		atomic_store(&f->head, head);
	}
	f->epoch++;

	/* Remember what the previous run confirmed beyond head, then start
	 * the table afresh. */
	j->done = calloc(JOURNAL_ENTRIES, sizeof(*j->done));
	if (j->done == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "journal: out of memory");
		goto out_unmap;
	}
	for (uint32_t i = 0; i < JOURNAL_ENTRIES; i++) {
		const struct inflight_entry *e = &f->entry[i];
		if (e->state == INFLIGHT_DONE && e->pos >= head && e->end <= rtail &&
		    e->end > e->pos)
			j->done[j->ndone++] = e->pos;
	}
	qsort(j->done, j->ndone, sizeof(*j->done), cmp_u64);
	memset(f->entry, 0, sizeof(f->entry));
	check_batches(j, head, rtail);
	inflight_init(&j->table, f->entry, JOURNAL_ENTRIES);
	j->redelivered_from = head;
	/* The ring's head may lag the journal's after a crash between the two
	 * stores; bring it level. */
	ring_release(r, head);
	return 0;

out_unmap:
	munmap(j->f, sizeof(*j->f));
	j->f = NULL;
out_close:
	close(j->fd);
	j->fd = -1;
	return rc;
}

void
journal_close(struct journal *j)
{
	if (j->f != NULL)
		munmap(j->f, sizeof(*j->f));
	if (j->fd >= 0)
		close(j->fd); /* drops the flock */
	free(j->done);
	memset(j, 0, sizeof(*j));
	j->fd = -1;
}

bool
journal_was_done(const struct journal *j, uint64_t pos)
{
	size_t lo = 0, hi = j->ndone;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (j->done[mid] == pos)
			return true;
		if (j->done[mid] < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void
journal_release(struct journal *j, struct ring *r, uint64_t head)
{
	if (head <= atomic_load_explicit(&j->f->head, memory_order_relaxed))
		return;
	/* Journal first: a crash between the two stores leaves the ring's
	 * head behind, never ahead, so no byte is overwritten that a restart
	 * would still need to read. */
	atomic_store_explicit(&j->f->head, head, memory_order_release);
	ring_release(r, head);
}

int
journal_mpu_begin(struct journal *j, uint64_t pos, const char *key)
{
	size_t n;

	if (key == NULL || key[0] == '\0')
		return -EINVAL;
	n = strnlen(key, JOURNAL_MPU_KEY_MAX + 1);
	if (n > JOURNAL_MPU_KEY_MAX)
		return -ENAMETOOLONG;
	for (uint32_t i = 0; i < JOURNAL_MPU_ENTRIES; i++) {
		struct journal_mpu *e = &j->f->mpu[i];

		/* Only this thread writes the table. */
		if (atomic_load_explicit(&e->state, memory_order_relaxed) !=
		    JOURNAL_MPU_FREE)
			continue;
		e->epoch = j->f->epoch;
		e->pos = pos;
		memcpy(e->key, key, n);
		e->key[n] = '\0';
		e->upload_id[0] = '\0';
		/* The key before the state: pairs with the acquire load in
		 * journal_mpu_next_leftover() of the next start. */
		atomic_store_explicit(&e->state, JOURNAL_MPU_CREATING,
		    memory_order_release);
		return (int)i;
	}
	return -ENOSPC;
}

static struct journal_mpu *
mpu_entry(struct journal *j, int idx, uint32_t want, const char *what)
{
	struct journal_mpu *e;

	if (idx < 0 || (uint32_t)idx >= JOURNAL_MPU_ENTRIES) {
		log_msg(LOG_LEVEL_ERROR, "journal: %s of multipart entry %d, "
		    "which does not exist", what, idx);
		return NULL;
	}
	e = &j->f->mpu[idx];
	if (atomic_load_explicit(&e->state, memory_order_relaxed) != want) {
		log_msg(LOG_LEVEL_ERROR, "journal: %s of multipart entry %d in "
		    "state %u", what, idx, atomic_load_explicit(&e->state,
		    memory_order_relaxed));
		return NULL;
	}
	return e;
}

void
journal_mpu_opened(struct journal *j, int idx, const char *upload_id)
{
	struct journal_mpu *e = mpu_entry(j, idx, JOURNAL_MPU_CREATING, "open");
	size_t n;

	if (e == NULL || upload_id == NULL || upload_id[0] == '\0')
		return;
	n = strnlen(upload_id, JOURNAL_MPU_ID_MAX);
	if (n == JOURNAL_MPU_ID_MAX) {
		log_msg(LOG_LEVEL_WARN, "journal: an UploadId of %u bytes or more "
		    "is not stored; a restart finds the upload by its key",
		    JOURNAL_MPU_ID_MAX);
		return;
	}
	memcpy(e->upload_id, upload_id, n + 1);
	/* The id before the state: pairs with the acquire load in
	 * journal_mpu_next_leftover() of the next start. A crash before this
	 * store leaves the entry CREATING, whose id is not read. */
	atomic_store_explicit(&e->state, JOURNAL_MPU_OPEN, memory_order_release);
}

void
journal_mpu_end(struct journal *j, int idx)
{
	struct journal_mpu *e;

	if (idx < 0 || (uint32_t)idx >= JOURNAL_MPU_ENTRIES) {
		log_msg(LOG_LEVEL_ERROR, "journal: end of multipart entry %d, "
		    "which does not exist", idx);
		return;
	}
	e = &j->f->mpu[idx];
	/* Release: a later journal_mpu_begin() rewrites the bytes only after
	 * this store, and the state is read before them. */
	atomic_store_explicit(&e->state, JOURNAL_MPU_FREE, memory_order_release);
}

int
journal_mpu_next_leftover(struct journal *j, int from, const char **key,
    const char **upload_id)
{
	for (uint32_t i = from < 0 ? 0 : (uint32_t)from; i < JOURNAL_MPU_ENTRIES;
	    i++) {
		struct journal_mpu *e = &j->f->mpu[i];
		/* Pairs with the release stores of the run that wrote it. */
		uint32_t st = atomic_load_explicit(&e->state,
		    memory_order_acquire);

		if (st == JOURNAL_MPU_FREE || e->epoch == j->f->epoch)
			continue;
		if ((st != JOURNAL_MPU_CREATING && st != JOURNAL_MPU_OPEN) ||
		    e->key[0] == '\0' ||
		    memchr(e->key, '\0', sizeof(e->key)) == NULL) {
			log_msg(LOG_LEVEL_WARN, "journal: multipart entry %u is "
			    "not valid (state %u); dropped", i, st);
			/* Relaxed: no byte of the entry is read again
			 * before a journal_mpu_begin() rewrites it. */
			atomic_store_explicit(&e->state, JOURNAL_MPU_FREE,
			    memory_order_relaxed);
			continue;
		}
		*key = e->key;
		*upload_id = st == JOURNAL_MPU_OPEN && e->upload_id[0] != '\0' &&
		    memchr(e->upload_id, '\0', sizeof(e->upload_id)) != NULL ?
		    e->upload_id : NULL;
		return (int)i;
	}
	return -ENOENT;
}

int
journal_batch_close(struct journal *j, const struct journal_batch *src)
{
	size_t kn, pn;

	kn = strnlen(src->key, sizeof(src->key));
	pn = strnlen(src->prefix, sizeof(src->prefix));
	if (kn == 0 || kn == sizeof(src->key) || pn == sizeof(src->prefix))
		return kn == 0 ? -EINVAL : -ENAMETOOLONG;
	for (uint32_t i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		struct journal_batch *b = &j->f->batch[i];

		/* Only this thread writes the table. */
		if (atomic_load_explicit(&b->state, memory_order_relaxed) !=
		    JOURNAL_BATCH_FREE)
			continue;
		b->nrec = src->nrec;
		b->epoch = j->f->epoch;
		b->first = src->first;
		b->end = src->end;
		b->max_bytes = src->max_bytes;
		b->framing = src->framing;
		b->compression = src->compression;
		b->level = src->level;
		memcpy(b->prefix, src->prefix, pn + 1);
		memcpy(b->key, src->key, kn + 1);
		/* The span and key before the state: a crash in between
		 * leaves a FREE entry, whose bytes mean nothing. */
		atomic_store_explicit(&b->state, JOURNAL_BATCH_CLOSED, memory_order_release);
		if (b->end > j->our_batch_end)
			j->our_batch_end = b->end;
		return (int)i;
	}
	return -ENOSPC;
}

void
journal_batch_done(struct journal *j, int idx)
{
	if (idx < 0 || (uint32_t)idx >= JOURNAL_BATCH_ENTRIES)
		return;
	atomic_store_explicit(&j->f->batch[idx].state, JOURNAL_BATCH_DONE,
	    memory_order_release);
}

void
journal_batch_release(struct journal *j, uint64_t head)
{
	for (uint32_t i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		struct journal_batch *b = &j->f->batch[i];

		if (atomic_load_explicit(&b->state, memory_order_relaxed) ==
		    JOURNAL_BATCH_DONE && b->end <= head)
			atomic_store_explicit(&b->state, JOURNAL_BATCH_FREE,
			    memory_order_release);
	}
}

static int
find(const struct journal *j, uint64_t pos, const char *key, bool ours)
{
	for (uint32_t i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		const struct journal_batch *b = &j->f->batch[i];

		if (atomic_load_explicit(&b->state, memory_order_relaxed) ==
		    JOURNAL_BATCH_FREE || (b->epoch == j->f->epoch) != ours)
			continue;
		if (pos >= b->first && pos < b->end &&
		    strncmp(key, b->prefix, strlen(b->prefix)) == 0)
			return (int)i;
	}
	return -1;
}

int
journal_batch_find(const struct journal *j, uint64_t pos, const char *key)
{
	if (pos >= j->prev_batch_end)
		return -1;
	return find(j, pos, key, false);
}

int
journal_batch_find_ours(const struct journal *j, uint64_t pos, const char *key)
{
	if (pos >= j->our_batch_end)
		return -1;
	return find(j, pos, key, true);
}

unsigned
journal_batch_free(const struct journal *j)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < JOURNAL_BATCH_ENTRIES; i++)
		n += atomic_load_explicit(&j->f->batch[i].state, memory_order_relaxed) ==
		    JOURNAL_BATCH_FREE;
	return n;
}

const struct journal_batch *
journal_batch_at(const struct journal *j, int idx)
{
	if (idx < 0 || (uint32_t)idx >= JOURNAL_BATCH_ENTRIES)
		return NULL;
	return &j->f->batch[idx];
}

int
journal_batch_evict_done(struct journal *j)
{
	int best = -1;

	for (uint32_t i = 0; i < JOURNAL_BATCH_ENTRIES; i++) {
		const struct journal_batch *b = &j->f->batch[i];

		if (atomic_load_explicit(&b->state, memory_order_relaxed) ==
		    JOURNAL_BATCH_DONE && (best < 0 || b->end < j->f->batch[best].end))
			best = (int)i;
	}
	if (best < 0)
		return -ENOSPC;
	atomic_store_explicit(&j->f->batch[best].state, JOURNAL_BATCH_FREE,
	    memory_order_release);
	return 0;
}
