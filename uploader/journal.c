/* journal.c -- single instance, epoch, authoritative head and in-flight table.
 *
 * The journal lives in /dev/shm beside the ring, so it survives the uploader
 * (kill -9, OOM, upgrade) exactly as long as the ring does. Invariants:
 * - head here >= the ring's head: it is stored first (journal_release).
 * - An entry is DONE only after its upload was confirmed. After a crash,
 *   everything from head on is read again; DONE entries are skipped, every
 *   other committed record is delivered again (at least once).
 * - Only the holder of the flock on the journal consumes the ring.
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

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
journal_open(struct journal *j, struct ring *r, char *err, size_t errlen)
{
	struct ring_header *h = r->hdr;
	struct journal_file *f;
	struct stat st;
	uint64_t rhead, rtail, head;
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
	if (f->magic != JOURNAL_MAGIC || f->version != JOURNAL_VERSION ||
	    f->entries != JOURNAL_ENTRIES ||
	    f->ring_created_ns != h->created_realtime_ns ||
	    f->ring_capacity != h->capacity || f->ring_id != r->ring_id) {
		if (f->magic == JOURNAL_MAGIC)
			log_msg(LOG_LEVEL_WARN, "journal belongs to an earlier ring of this name; starting from the ring's head");
		uint64_t epoch = f->magic == JOURNAL_MAGIC ? f->epoch : 0;
		memset(f, 0, sizeof(*f));
		f->version = JOURNAL_VERSION;
		f->entries = JOURNAL_ENTRIES;
		f->epoch = epoch;
		f->ring_created_ns = h->created_realtime_ns;
		f->ring_capacity = h->capacity;
		f->ring_id = r->ring_id;
		atomic_store(&f->head, rhead);
		head = rhead;
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
