/* test_journal.c -- tests for uploader/journal.c: instance lock, epoch, head. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(second_instance_is_refused_with_ebusy, setup, teardown),
		cmocka_unit_test_setup_teardown(epoch_grows_with_each_start, setup, teardown),
		cmocka_unit_test_setup_teardown(confirmed_records_beyond_head_survive_a_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(release_moves_the_journal_head_before_the_rings, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_of_a_recreated_ring_is_reset, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
