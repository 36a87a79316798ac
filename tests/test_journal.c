/* test_journal.c -- tests for uploader/journal.c: instance lock, epoch, head,
 * multipart table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "crc32c.h"
#include "journal.h"
#include "proc.h"
#include "ring.h"

static char name[64];
static char err[256];
static struct ring r;

static int
setup(void **state)
{
	struct ring_config cfg = { .capacity = 1 << 16, .gid = (gid_t)-1 };
	char jp[128];

	(void)state;
	snprintf(name, sizeof(name), "test-journal-%d", (int)getpid());
	snprintf(jp, sizeof(jp), "/s3ring.%s.journal", name);
	shm_unlink(jp);
	(void)ring_unlink(name);
	return ring_open(&r, name, RING_OPEN_CREATE, &cfg);
}

static int
teardown(void **state)
{
	char jp[128];

	(void)state;
	ring_close(&r);
	(void)ring_unlink(name);
	snprintf(jp, sizeof(jp), "/s3ring.%s.journal", name);
	shm_unlink(jp);
	return 0;
}

static void
second_instance_is_refused_with_ebusy(void **state)
{
	struct journal a, b;

	(void)state;
	assert_int_equal(journal_open(&a, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_open(&b, &r, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "another s3ring-uploader"));
	journal_close(&a);
	assert_int_equal(journal_open(&b, &r, err, sizeof(err)), 0);
	journal_close(&b);
}

static void
epoch_grows_with_each_start(void **state)
{
	struct journal j;
	uint64_t e1;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	e1 = j.f->epoch;
	journal_close(&j);
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(j.f->epoch, e1 + 1);
	journal_close(&j);
}

/* Records confirmed out of order before a crash are remembered; records
 * claimed but not confirmed are not, so they are delivered again. */
static void
confirmed_records_beyond_head_survive_a_crash(void **state)
{
	struct journal j;
	unsigned slot;
	struct ring_consumer c;
	struct ring_msg m;
	static uint8_t buf[1 << 14];
	uint64_t pos[3];

	(void)state;
	slot = (unsigned)ring_slot_claim(&r, getpid(), proc_start_time(getpid()));
	for (int i = 0; i < 3; i++)
		assert_int_equal(ring_put(&r, slot, "k", 1, "body", 4, 0), 0);
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	ring_consumer_init(&c, &r, atomic_load(&j.f->head));
	int idx[3];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ring_consume(&c, &m, buf, sizeof(buf)), 1);
		pos[i] = m.pos;
		idx[i] = inflight_push(&j.table, m.pos, m.end);
	}
	inflight_done(&j.table, (uint32_t)idx[2]);   /* the third is confirmed */
	journal_release(&j, &r, inflight_release(&j.table, c.cursor));
	assert_int_equal(atomic_load(&j.f->head), pos[0]); /* nothing released */
	journal_close(&j); /* the crash: nothing more is written */

	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&j.f->head), pos[0]);
	assert_false(journal_was_done(&j, pos[0]));
	assert_false(journal_was_done(&j, pos[1]));
	assert_true(journal_was_done(&j, pos[2]));
	journal_close(&j);
}

static void
release_moves_the_journal_head_before_the_rings(void **state)
{
	struct journal j;
	unsigned slot;
	struct ring_consumer c;
	struct ring_msg m;
	static uint8_t buf[1 << 14];

	(void)state;
	slot = (unsigned)ring_slot_claim(&r, getpid(), proc_start_time(getpid()));
	assert_int_equal(ring_put(&r, slot, "k", 1, "body", 4, 0), 0);
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	ring_consumer_init(&c, &r, atomic_load(&j.f->head));
	assert_int_equal(ring_consume(&c, &m, buf, sizeof(buf)), 1);
	journal_release(&j, &r, m.end);
	assert_int_equal(atomic_load(&j.f->head), m.end);
	assert_int_equal(atomic_load(&r.hdr->head), m.end);
	/* A crash between the two stores leaves the ring behind; the next
	 * start brings it level with the journal. */
	atomic_store(&r.hdr->head, m.pos);
	journal_close(&j);
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&r.hdr->head), m.end);
	journal_close(&j);
}

static void
journal_of_a_recreated_ring_is_reset(void **state)
{
	struct journal j;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	atomic_store(&j.f->head, RING_POS_BASE + 4096);
	journal_close(&j);
	r.hdr->created_realtime_ns++; /* as if deleted and made again */
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&j.f->head), atomic_load(&r.hdr->head));
	journal_close(&j);
}

static void
mpu_leftover_survives_close_and_reopen(void **state)
{
	struct journal j;
	const char *key, *id;
	int idx;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	idx = journal_mpu_begin(&j, RING_POS_BASE + 64, "logs/big & <odd>");
	assert_true(idx >= 0);
	journal_mpu_opened(&j, idx, "upload/id+1");
	journal_close(&j); /* the kill -9: nothing more is written */

	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_mpu_next_leftover(&j, 0, &key, &id), idx);
	assert_string_equal(key, "logs/big & <odd>");
	assert_non_null(id);
	assert_string_equal(id, "upload/id+1");
	assert_int_equal(journal_mpu_next_leftover(&j, idx + 1, &key, &id),
	    -ENOENT);
	/* Not aborted yet: still there after another restart. */
	journal_close(&j);
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_mpu_next_leftover(&j, 0, &key, &id), idx);
	journal_mpu_end(&j, idx);
	assert_int_equal(journal_mpu_next_leftover(&j, 0, &key, &id), -ENOENT);
	journal_close(&j);
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_mpu_next_leftover(&j, 0, &key, &id), -ENOENT);
	journal_close(&j);
}

/* A crash between journal_mpu_begin() and the create's answer: the upload
 * may exist, but only its key is known. */
static void
mpu_creating_leftover_has_a_key_and_no_upload_id(void **state)
{
	struct journal j;
	const char *key, *id = "unset";
	int a, b;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	a = journal_mpu_begin(&j, RING_POS_BASE, "a");
	b = journal_mpu_begin(&j, RING_POS_BASE + 128, "b");
	assert_true(a >= 0 && b >= 0 && a != b);
	journal_mpu_opened(&j, a, "id-a");
	journal_close(&j);

	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_mpu_next_leftover(&j, 0, &key, &id), a);
	assert_string_equal(id, "id-a");
	assert_int_equal(journal_mpu_next_leftover(&j, a + 1, &key, &id), b);
	assert_string_equal(key, "b");
	assert_null(id);
	journal_close(&j);
}

static void
mpu_entries_of_this_run_are_not_leftovers(void **state)
{
	struct journal j;
	const char *key, *id;
	int idx;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	idx = journal_mpu_begin(&j, RING_POS_BASE, "mine");
	assert_true(idx >= 0);
	journal_mpu_opened(&j, idx, "id");
	assert_int_equal(journal_mpu_next_leftover(&j, 0, &key, &id), -ENOENT);
	journal_close(&j);
}

static void
mpu_table_full_returns_enospc(void **state)
{
	struct journal j;
	char key[32];
	int idx = -1;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	for (unsigned i = 0; i < JOURNAL_MPU_ENTRIES; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		idx = journal_mpu_begin(&j, RING_POS_BASE + 64 * i, key);
		assert_int_equal(idx, (int)i);
	}
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, "one more"),
	    -ENOSPC);
	journal_mpu_end(&j, 7);
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, "one more"), 7);
	journal_close(&j);
}

static void
mpu_begin_refuses_empty_and_too_long_keys(void **state)
{
	struct journal j;
	char key[JOURNAL_MPU_KEY_MAX + 2];

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, key), -ENAMETOOLONG);
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, ""), -EINVAL);
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, NULL), -EINVAL);
	key[JOURNAL_MPU_KEY_MAX] = '\0';
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, key), 0);
	assert_int_equal(strlen(j.f->mpu[0].key), JOURNAL_MPU_KEY_MAX);
	journal_close(&j);
}

/* A crash in the middle of writing an entry leaves the state it had: the
 * bytes of a FREE entry, or the id of a CREATING one, are never read. */
static void
mpu_torn_write_is_not_reported(void **state)
{
	struct journal j;
	const char *key, *id;
	int idx;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	/* Killed in journal_mpu_begin(), before the state store. */
	snprintf(j.f->mpu[0].key, sizeof(j.f->mpu[0].key), "half-begun");
	j.f->mpu[0].epoch = j.f->epoch;
	/* Killed in journal_mpu_opened(), before the state store. */
	idx = journal_mpu_begin(&j, RING_POS_BASE, "half-opened");
	assert_int_equal(idx, 0);
	snprintf(j.f->mpu[idx].upload_id, sizeof(j.f->mpu[idx].upload_id),
	    "torn-i");
	/* Killed in journal_mpu_begin() of a reused entry. */
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, "reused"), 1);
	journal_mpu_opened(&j, 1, "done");
	journal_mpu_end(&j, 1);
	snprintf(j.f->mpu[1].key, sizeof(j.f->mpu[1].key), "new key");
	journal_close(&j);

	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_mpu_next_leftover(&j, 0, &key, &id), 0);
	assert_string_equal(key, "half-opened");
	assert_null(id);
	assert_int_equal(journal_mpu_next_leftover(&j, 1, &key, &id), -ENOENT);
	journal_close(&j);
}

static void
mpu_entry_that_is_not_valid_is_dropped(void **state)
{
	struct journal j;
	const char *key, *id;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, "k"), 0);
	memset(j.f->mpu[0].key, 'x', sizeof(j.f->mpu[0].key)); /* no NUL */
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, "k"), 1);
	atomic_store(&j.f->mpu[1].state, 7);
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, "k2"), 2);
	journal_mpu_opened(&j, 2, "id");
	memset(j.f->mpu[2].upload_id, 'i', sizeof(j.f->mpu[2].upload_id));
	journal_close(&j);

	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	/* An OPEN entry whose id is bad is still found by its key. */
	assert_int_equal(journal_mpu_next_leftover(&j, 0, &key, &id), 2);
	assert_string_equal(key, "k2");
	assert_null(id);
	assert_int_equal(atomic_load(&j.f->mpu[0].state), JOURNAL_MPU_FREE);
	assert_int_equal(atomic_load(&j.f->mpu[1].state), JOURNAL_MPU_FREE);
	journal_close(&j);
}

/* The uploads are open on the server whatever became of the ring. */
static void
mpu_table_survives_a_recreated_ring(void **state)
{
	struct journal j;
	const char *key, *id;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_mpu_begin(&j, RING_POS_BASE, "kept"), 0);
	journal_mpu_opened(&j, 0, "id");
	atomic_store(&j.f->head, RING_POS_BASE + 4096);
	journal_close(&j);
	r.hdr->created_realtime_ns++;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(atomic_load(&j.f->head), atomic_load(&r.hdr->head));
	assert_int_equal(journal_mpu_next_leftover(&j, 0, &key, &id), 0);
	assert_string_equal(key, "kept");
	assert_string_equal(id, "id");
	journal_close(&j);
}

/* A journal of layout version 2 (no multipart table, a smaller file) is
 * reset as a journal of another ring is: head from the ring, epoch kept. */
static void
journal_of_an_older_version_is_reset(void **state)
{
	const size_t v2_size = 128 + JOURNAL_ENTRIES * sizeof(struct inflight_entry);
	struct journal_file *f;
	struct journal j;
	const char *key, *id;
	char jp[128];
	int fd;

	(void)state;
	snprintf(jp, sizeof(jp), "/s3ring.%s.journal", name);
	fd = shm_open(jp, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)v2_size), 0);
	f = mmap(NULL, v2_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(f != MAP_FAILED);
	f->magic = JOURNAL_MAGIC;
	f->version = 2;
	f->entries = JOURNAL_ENTRIES;
	f->epoch = 41;
	atomic_store(&f->head, RING_POS_BASE + 4096);
	f->ring_created_ns = r.hdr->created_realtime_ns;
	f->ring_capacity = r.hdr->capacity;
	f->ring_id = r.ring_id;
	f->entry[0] = (struct inflight_entry){ RING_POS_BASE, RING_POS_BASE + 64,
	    INFLIGHT_DONE, 0 };
	munmap(f, v2_size);
	close(fd);

	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(j.f->version, JOURNAL_VERSION);
	assert_int_equal(j.f->epoch, 42);
	assert_int_equal(atomic_load(&j.f->head), atomic_load(&r.hdr->head));
	assert_false(journal_was_done(&j, RING_POS_BASE));
	assert_int_equal(journal_mpu_next_leftover(&j, 0, &key, &id), -ENOENT);
	journal_close(&j);
}

/* Puts n records and returns the end of the last. */
static uint64_t
put_records(int n)
{
	int slot = ring_slot_claim(&r, getpid(), 0);
	uint64_t end = 0;

	assert_true(slot >= 0);
	for (int i = 0; i < n; i++) {
		char key[32];
		struct ring_resv rv;

		snprintf(key, sizeof(key), "logs/%d", i);
		assert_int_equal(ring_reserve(&r, (unsigned)slot, key, strlen(key), 8, 0, &rv), 0);
		memset(rv.body, 'b', 8);
		assert_int_equal(ring_commit(&r, &rv, crc32c(0, rv.body, 8)), 0);
		end = rv.pos + rv.len;
	}
	ring_slot_release(&r, (unsigned)slot);
	return end;
}

static struct journal_batch
a_batch(uint64_t first, uint64_t end, const char *prefix, const char *key)
{
	struct journal_batch b = { .nrec = 3, .first = first, .end = end,
	    .max_bytes = 1 << 20, .framing = 0, .compression = 2 };

	snprintf(b.prefix, sizeof(b.prefix), "%s", prefix);
	snprintf(b.key, sizeof(b.key), "%s", key);
	return b;
}

/* A batch closed or confirmed by a run that died is found by the next one,
 * by position and prefix, with the key it was to be uploaded under; the
 * run's own entries are not reported as an earlier run's. */
static void
closed_batch_survives_a_crash_with_its_key(void **state)
{
	struct journal j;
	uint64_t end = put_records(4);
	struct journal_batch b = a_batch(RING_POS_BASE, end, "logs/", "b/k-1.zst");
	int idx, idx2;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	idx = journal_batch_close(&j, &b);
	assert_true(idx >= 0);
	assert_int_equal(journal_batch_find(&j, RING_POS_BASE, "logs/1"), -1);
	b = a_batch(RING_POS_BASE + 64, end, "other/", "b/k-2.zst");
	idx2 = journal_batch_close(&j, &b);
	assert_true(idx2 >= 0);
	journal_batch_done(&j, idx2);
	journal_close(&j); /* as a kill -9 would leave it */

	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_batch_find(&j, RING_POS_BASE + 128, "logs/2"), idx);
	assert_int_equal(journal_batch_find(&j, RING_POS_BASE + 128, "other/x"), idx2);
	assert_int_equal(journal_batch_find(&j, RING_POS_BASE + 128, "log"), -1);
	assert_int_equal(journal_batch_find(&j, end, "logs/9"), -1);
	const struct journal_batch *got = journal_batch_at(&j, idx);
	assert_int_equal(atomic_load(&got->state), JOURNAL_BATCH_CLOSED);
	assert_string_equal(got->key, "b/k-1.zst");
	assert_int_equal(got->nrec, 3);
	assert_int_equal(atomic_load(&journal_batch_at(&j, idx2)->state), JOURNAL_BATCH_DONE);
	journal_close(&j);
}

/* Confirmed batches are freed once head passes their end; a batch that
 * is not confirmed stays, whatever head does. */
static void
confirmed_batch_is_freed_when_head_passes_it(void **state)
{
	struct journal j;
	uint64_t end = put_records(2);
	struct journal_batch b = a_batch(RING_POS_BASE, end, "logs/", "k1");
	int a, c;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	a = journal_batch_close(&j, &b);
	c = journal_batch_close(&j, &b);
	assert_true(a >= 0 && c >= 0 && a != c);
	journal_batch_done(&j, a);
	journal_batch_release(&j, end);
	assert_int_equal(atomic_load(&journal_batch_at(&j, a)->state), JOURNAL_BATCH_FREE);
	assert_int_equal(atomic_load(&journal_batch_at(&j, c)->state), JOURNAL_BATCH_CLOSED);
	journal_close(&j);
}

/* The table is the uploader's own file, but a damaged entry must not make
 * a restart read outside the ring or skip records: it is dropped. */
static void
batch_entry_outside_the_ring_is_dropped(void **state)
{
	struct journal j;
	uint64_t end = put_records(2);
	struct journal_batch b = a_batch(RING_POS_BASE, end, "logs/", "k1");
	int idx;

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	idx = journal_batch_close(&j, &b);
	assert_true(idx >= 0);
	j.f->batch[idx].end = end + (1u << 30); /* past tail */
	journal_close(&j);
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_batch_find(&j, RING_POS_BASE, "logs/1"), -1);
	assert_int_equal(atomic_load(&journal_batch_at(&j, idx)->state), JOURNAL_BATCH_FREE);
	journal_close(&j);
}

/* Every entry in use: the caller keeps its batch open and asks again. */
static void
full_batch_table_says_enospc(void **state)
{
	struct journal j;
	uint64_t end = put_records(1);
	struct journal_batch b = a_batch(RING_POS_BASE, end, "logs/", "k1");

	(void)state;
	assert_int_equal(journal_open(&j, &r, err, sizeof(err)), 0);
	for (unsigned i = 0; i < JOURNAL_BATCH_ENTRIES; i++)
		assert_true(journal_batch_close(&j, &b) >= 0);
	assert_int_equal(journal_batch_close(&j, &b), -ENOSPC);
	b.key[0] = '\0';
	assert_int_equal(journal_batch_close(&j, &b), -EINVAL);
	journal_close(&j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(second_instance_is_refused_with_ebusy, setup, teardown),
		cmocka_unit_test_setup_teardown(closed_batch_survives_a_crash_with_its_key, setup, teardown),
		cmocka_unit_test_setup_teardown(confirmed_batch_is_freed_when_head_passes_it, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_entry_outside_the_ring_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(full_batch_table_says_enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(epoch_grows_with_each_start, setup, teardown),
		cmocka_unit_test_setup_teardown(confirmed_records_beyond_head_survive_a_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(release_moves_the_journal_head_before_the_rings, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_of_a_recreated_ring_is_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(mpu_leftover_survives_close_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(mpu_creating_leftover_has_a_key_and_no_upload_id, setup, teardown),
		cmocka_unit_test_setup_teardown(mpu_entries_of_this_run_are_not_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(mpu_table_full_returns_enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(mpu_begin_refuses_empty_and_too_long_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(mpu_torn_write_is_not_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(mpu_entry_that_is_not_valid_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(mpu_table_survives_a_recreated_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_of_an_older_version_is_reset, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
