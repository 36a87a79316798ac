/* test_inflight.c -- unit tests for uploader/inflight.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "inflight.h"

static void
completion_out_of_order_releases_in_order(void **state)
{
	struct inflight t;
	struct inflight_entry ent[3];
	int a, b, c;

	(void)state;
	inflight_init(&t, ent, 3);
	a = inflight_push(&t, 100, 200);
	b = inflight_push(&t, 200, 300);
	c = inflight_push(&t, 300, 400);
	assert_true(inflight_full(&t));
	assert_int_equal(inflight_push(&t, 400, 500), -ENOSPC);
	inflight_done(&t, (uint32_t)c);
	assert_int_equal(inflight_release(&t, 400), 100);
	inflight_done(&t, (uint32_t)b);
	assert_int_equal(inflight_release(&t, 400), 100);
	inflight_done(&t, (uint32_t)a);
	assert_int_equal(inflight_release(&t, 400), 400);
	assert_false(inflight_full(&t));
	/* Wraps around its own storage. */
	a = inflight_push(&t, 400, 500);
	assert_int_equal(inflight_release(&t, 500), 400);
	inflight_done(&t, (uint32_t)a);
	assert_int_equal(inflight_release(&t, 500), 500);
}

/* A record read past a slow producer comes back after records behind it:
 * head is the lowest unfinished position, not the front entry's. */
static void
late_record_below_the_front_holds_head_back(void **state)
{
	struct inflight t;
	struct inflight_entry ent[4];
	int a, late;

	(void)state;
	inflight_init(&t, ent, 4);
	a = inflight_push(&t, 200, 300);
	/* The floor (the hole at 100) holds head even with nothing unfinished. */
	inflight_done(&t, (uint32_t)a);
	assert_int_equal(inflight_release(&t, 100), 100);
	late = inflight_push(&t, 100, 200);
	(void)inflight_push(&t, 300, 400);
	assert_int_equal(inflight_release(&t, 400), 100);
	inflight_done(&t, (uint32_t)late);
	assert_int_equal(inflight_release(&t, 400), 300);
}

/* Records read past a hole and uploaded while the hole holds head back:
 * the journal is this table, and a restart skips what it finds DONE at or
 * above head. They must stay DONE in it while head is below them, or a
 * restart uploads them all again; they give way only when the table needs
 * the room. */
static void
records_done_above_the_floor_stay_in_the_journal(void **state)
{
	struct inflight t;
	struct inflight_entry ent[2];
	int a, b;
	unsigned done = 0;

	(void)state;
	inflight_init(&t, ent, 2);
	a = inflight_push(&t, 200, 300);
	b = inflight_push(&t, 300, 400);
	inflight_done(&t, (uint32_t)a);
	inflight_done(&t, (uint32_t)b);
	assert_int_equal(inflight_release(&t, 100), 100);
	/* What a restart reads (journal_open()): DONE entries at or above
	 * head. */
	for (unsigned i = 0; i < 2; i++)
		if (ent[i].state == INFLIGHT_DONE && ent[i].pos >= 100)
			done++;
	assert_int_equal(done, 2);
	/* A full table of finished entries still takes a new one. */
	assert_false(inflight_full(&t));
	assert_true(inflight_push(&t, 400, 500) >= 0);
	/* Once head passes them they are gone. */
	assert_int_equal(inflight_release(&t, 500), 400);
}

/* The lowest position among pos[] not yet finished after `done` steps. */
static uint64_t
lowest_left(const uint64_t *pos, const int *finish, int done)
{
	uint64_t low = 1000;

	for (int i = 0; i < 8; i++) {
		bool finished = false;

		for (int k = 0; k < done; k++)
			finished |= finish[k] == i;
		if (!finished && pos[i] < low)
			low = pos[i];
	}
	return low;
}

/* The release looks at the front only while no late entry (pushed below
 * a position pushed before it) is unfinished; the head must come out the
 * same as a scan of everything would give, however the entries finish. */
static void
head_is_the_lowest_unfinished_whatever_the_order(void **state)
{
	static struct inflight_entry mem[64];
	struct inflight t;
	uint64_t pos[] = { 100, 200, 300, 50, 400, 60, 500, 600 };
	int idx[8];
	const int finish[] = { 1, 3, 0, 6, 5, 2, 7, 4 };

	(void)state;
	inflight_init(&t, mem, 64);
	for (int i = 0; i < 8; i++)
		idx[i] = inflight_push(&t, pos[i], pos[i] + 10);
	assert_int_equal(t.late_claimed, 2);
	assert_int_equal(inflight_release(&t, 1000), 50);
	for (int k = 0; k < 8; k++) {
		inflight_done(&t, (uint32_t)idx[finish[k]]);
		assert_int_equal(inflight_release(&t, 1000), lowest_left(pos, finish, k + 1));
	}
	assert_int_equal(t.late_claimed, 0);
	assert_int_equal(inflight_release(&t, 1000), 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(completion_out_of_order_releases_in_order),
		cmocka_unit_test(late_record_below_the_front_holds_head_back),
		cmocka_unit_test(records_done_above_the_floor_stay_in_the_journal),
		cmocka_unit_test(head_is_the_lowest_unfinished_whatever_the_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
