/* test_ring.c -- tests for common/ring.c: the shared-memory ring protocol. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "crc32c.h"
#include "futex.h"
#include "proc.h"
#include "ring.h"
#include "sigbus.h"
#include "testbody.h"

#define SMALL_CAP (UINT64_C(64) << 10)
/* Bounds a wait that must end; never a measure of speed. */
#define HANG_GUARD_NS (30ull * 1000 * 1000 * 1000)

static char ring_name[64];
static unsigned name_seq;

static void
new_name(void)
{
	snprintf(ring_name, sizeof(ring_name), "test-ring-%d-%u", (int)getpid(),
	    name_seq++);
	(void)ring_unlink(ring_name);
}

static int
teardown(void **state)
{
	(void)state;
	(void)ring_unlink(ring_name);
	return 0;
}

static void
open_new(struct ring *r, uint64_t cap, uint32_t maxm)
{
	struct ring_config cfg = { .capacity = cap, .max_message = maxm,
	    .gid = (gid_t)-1 };

	new_name();
	assert_int_equal(ring_open(r, ring_name, RING_OPEN_CREATE, &cfg), 0);
	assert_true(r->created);
}

/* open_new(), then the ring is mapped again into a reserved area whose
 * last page stays PROT_NONE, so a read or write one byte past the data
 * region faults instead of landing in whatever the kernel had placed next
 * to the mapping (often the allocator's own memory). Returns the guard
 * page, for close_guarded(). */
static void *
open_new_guarded(struct ring *r, uint64_t cap, uint32_t maxm)
{
	size_t len = RING_HEADER_SIZE + cap, pg = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *area, *p;

	open_new(r, cap, maxm);
	assert_int_equal(r->map_len, len);
	area = mmap(NULL, len + pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(area != MAP_FAILED);
	p = mmap(area, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
	    r->fd, 0);
	assert_ptr_equal(p, area);
	if (r->guarded)
		ring_guard_remove(r->hdr);
	munmap(r->hdr, len);
	r->hdr = (struct ring_header *)p;
	r->data = p + RING_HEADER_SIZE;
	if (r->guarded)
		assert_int_equal(ring_guard_add(p, len, &r->lost), 0);
	return area + len;
}

static void
close_guarded(struct ring *r, void *guard)
{
	ring_close(r);
	munmap(guard, (size_t)sysconf(_SC_PAGESIZE));
}

static int
claim(struct ring *r)
{
	int slot = ring_slot_claim(r, getpid(), proc_start_time(getpid()));
	assert_true(slot >= 0);
	return slot;
}

static int
put_str(struct ring *r, unsigned slot, const char *key, const char *body,
    int timeout)
{
	return ring_put(r, slot, key, strlen(key), body, strlen(body), timeout);
}

static uint8_t buf[(1 << 20) + 2];

static int
consume(struct ring_consumer *c, struct ring_msg *m)
{
	return ring_consume(c, m, buf, sizeof(buf));
}

/* ------------------------------------------------------------------ */

static void
open_without_create_fails_with_enoent(void **state)
{
	struct ring r;

	(void)state;
	new_name();
	assert_int_equal(ring_open(&r, ring_name, 0, NULL), -ENOENT);
}

static void
open_rejects_bad_names(void **state)
{
	struct ring r;

	(void)state;
	assert_int_equal(ring_open(&r, "../etc", RING_OPEN_CREATE, NULL), -EINVAL);
	assert_int_equal(ring_open(&r, "", RING_OPEN_CREATE, NULL), -EINVAL);
	assert_int_equal(ring_open(&r, ".hidden", RING_OPEN_CREATE, NULL), -EINVAL);
	assert_false(ring_name_valid("a/b"));
	assert_true(ring_name_valid("orders-2026.v1_a"));
}

static void
create_rejects_bad_geometry(void **state)
{
	struct ring r;
	struct ring_config not_pow2 = { .capacity = 100000, .gid = (gid_t)-1 };
	struct ring_config msg_too_big = { .capacity = SMALL_CAP,
	    .max_message = SMALL_CAP / 4, .gid = (gid_t)-1 };

	(void)state;
	new_name();
	assert_int_equal(ring_open(&r, ring_name, RING_OPEN_CREATE, &not_pow2), -EINVAL);
	assert_int_equal(ring_open(&r, ring_name, RING_OPEN_CREATE, &msg_too_big), -EINVAL);
}

static void
created_ring_is_mode_0600_with_valid_header(void **state)
{
	struct ring r;
	char path[128];
	struct stat st;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	snprintf(path, sizeof(path), "/dev/shm/s3ring.%s", ring_name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal((uint64_t)st.st_size, RING_HEADER_SIZE + SMALL_CAP);
	assert_int_equal(ring_check_header(r.hdr, r.map_len), 0);
	assert_int_equal(r.max_message, SMALL_CAP / 8);
	assert_int_equal(r.hdr->head, RING_POS_BASE);
	ring_close(&r);
}

static void
attach_sees_the_creators_geometry(void **state)
{
	struct ring a, b;

	(void)state;
	open_new(&a, SMALL_CAP * 2, 4096);
	assert_int_equal(ring_open(&b, ring_name, RING_OPEN_CREATE, NULL), 0);
	assert_false(b.created);
	assert_int_equal(b.capacity, SMALL_CAP * 2);
	assert_int_equal(b.max_message, 4096);
	ring_close(&b);
	ring_close(&a);
}

static void
open_returns_eproto_for_another_layout_version(void **state)
{
	struct ring a, b;

	(void)state;
	open_new(&a, SMALL_CAP, 0);
	a.hdr->layout_version = RING_LAYOUT_VERSION + 1;
	assert_int_equal(ring_open(&b, ring_name, 0, NULL), -EPROTO);
	ring_close(&a);
}

static void
open_returns_ebadmsg_for_a_corrupt_header(void **state)
{
	struct ring a, b;

	(void)state;
	open_new(&a, SMALL_CAP, 0);
	a.hdr->capacity = 12345;
	assert_int_equal(ring_open(&b, ring_name, 0, NULL), -EBADMSG);
	a.hdr->capacity = SMALL_CAP;
	a.hdr->max_message = (uint32_t)SMALL_CAP;
	assert_int_equal(ring_open(&b, ring_name, 0, NULL), -EBADMSG);
	a.hdr->max_message = 1024;
	atomic_store(&a.hdr->magic, 0);
	/* Rings are linked in complete, so a missing magic is corruption,
	 * not a creator still at work. */
	assert_int_equal(ring_open(&b, ring_name, 0, NULL), -EBADMSG);
	ring_close(&a);
}

static void
open_returns_ebadmsg_for_a_truncated_object(void **state)
{
	struct ring a, b;

	(void)state;
	open_new(&a, SMALL_CAP, 0);
	assert_int_equal(ftruncate(a.fd, RING_HEADER_SIZE + 4096), 0);
	assert_int_equal(ring_open(&b, ring_name, 0, NULL), -EBADMSG);
	ring_close(&a);
}

/* Two processes race to create the same ring: both succeed, exactly one
 * created it, and both see a valid header. */
static void
two_concurrent_creators_both_attach(void **state)
{
	int created = 0;
	pid_t kids[2];
	int go[2];

	(void)state;
	new_name();
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			struct ring r;
			char c;
			close(go[1]);
			if (read(go[0], &c, 1) != 0)
				_exit(90);
			if (ring_open(&r, ring_name, RING_OPEN_CREATE, NULL) != 0)
				_exit(91);
			if (ring_check_header(r.hdr, r.map_len) != 0)
				_exit(92);
			_exit(r.created ? 1 : 0);
		}
	}
	close(go[0]);
	close(go[1]); /* both children start at once */
	for (int i = 0; i < 2; i++) {
		int st;
		assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
		assert_true(WIFEXITED(st));
		assert_true(WEXITSTATUS(st) <= 1);
		created += WEXITSTATUS(st);
	}
	assert_int_equal(created, 1);
}

static void
put_then_consume_returns_same_key_and_body(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(consume(&c, &m), 0);
	assert_int_equal(put_str(&r, slot, "logs/a-1", "hello", 0), 0);
	assert_int_equal(put_str(&r, slot, "logs/a-2", "", 0), 0);
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "logs/a-1");
	assert_int_equal(m.body_len, 5);
	assert_memory_equal(m.body, "hello", 5);
	assert_int_equal(m.slot, slot);
	assert_int_equal(m.seq, 1);
	assert_int_equal(m.pos, RING_POS_BASE);
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "logs/a-2");
	assert_int_equal(m.body_len, 0);
	assert_int_equal(m.seq, 2);
	assert_int_equal(consume(&c, &m), 0);
	assert_int_equal(r.hdr->slots[slot].produced, 2);
	ring_close(&r);
}

/* The consumer reads tail once per run of records (tail_seen): a record put
 * after that read, or one still being written below it, is found all the
 * same, and a record once NOT_READY under the old tail is looked at again
 * with tail read afresh. */
static void
consume_finds_records_put_after_its_last_read_of_tail(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	struct ring_resv rv;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(put_str(&r, slot, "t/1", "one", 0), 0);
	assert_int_equal(put_str(&r, slot, "t/2", "two", 0), 0);
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "t/1");
	assert_int_equal(c.tail_seen, atomic_load(&r.hdr->tail));
	/* Reserved, not committed, below nothing the consumer has seen. */
	assert_int_equal(ring_reserve(&r, slot, "t/3", 3, 5, 0, &rv), 0);
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "t/2");
	assert_int_equal(consume(&c, &m), 0);
	memcpy(rv.body, "three", 5);
	assert_int_equal(ring_commit(&r, &rv, crc32c(0, "three", 5)), 0);
	assert_int_equal(put_str(&r, slot, "t/4", "four", 0), 0);
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "t/3");
	assert_memory_equal(m.body, "three", 5);
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "t/4");
	assert_int_equal(consume(&c, &m), 0);
	ring_close(&r);
}

/* A tail scribbled below the consumer's cursor is corruption even while the
 * consumer has an older, sane, tail in hand. */
static void
consume_reports_a_tail_scribbled_below_the_cursor(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(put_str(&r, slot, "t/1", "one", 0), 0);
	assert_int_equal(put_str(&r, slot, "t/2", "two", 0), 0);
	assert_int_equal(consume(&c, &m), 1);
	atomic_store(&r.hdr->tail, RING_POS_BASE);
	assert_int_equal(consume(&c, &m), 1); /* below the tail it had read */
	assert_int_equal(consume(&c, &m), -EBADMSG);
	ring_close(&r);
}

static void
put_returns_eagain_and_counts_a_drop_when_ring_is_full(void **state)
{
	struct ring r;
	unsigned slot;
	char body[1000];
	int n = 0, rc;

	(void)state;
	memset(body, 'x', sizeof(body));
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	while ((rc = ring_put(&r, slot, "k", 1, body, sizeof(body), 0)) == 0)
		n++;
	assert_int_equal(rc, -EAGAIN);
	/* 1000 + 1 + 64 rounds up to 1088 bytes a record. */
	assert_int_equal(n, SMALL_CAP / 1088);
	assert_int_equal(r.hdr->slots[slot].dropped_full, 1);
	assert_int_equal(r.hdr->slots[slot].produced, (uint64_t)n);
	ring_close(&r);
}

static void
put_with_timeout_returns_etimedout_when_ring_stays_full(void **state)
{
	struct ring r;
	unsigned slot;
	char body[4000];
	uint64_t t0;

	(void)state;
	memset(body, 'b', sizeof(body));
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	while (ring_put(&r, slot, "k", 1, body, sizeof(body), 0) == 0)
		;
	t0 = mono_ns();
	assert_int_equal(ring_put(&r, slot, "k", 1, body, sizeof(body), 120), -ETIMEDOUT);
	assert_true(mono_ns() - t0 >= 120ull * 1000 * 1000);
	assert_int_equal(r.hdr->slots[slot].dropped_full, 2);
	ring_close(&r);
}

static void
message_of_max_size_fits_and_one_byte_more_is_emsgsize(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;
	static char body[8192];

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	memset(body, 'm', sizeof(body));
	/* max_message covers key + body. */
	assert_int_equal(ring_put(&r, slot, "key", 3, body, r.max_message - 3, 0), 0);
	assert_int_equal(ring_put(&r, slot, "key", 3, body, r.max_message - 2, 0), -EMSGSIZE);
	assert_int_equal(r.hdr->slots[slot].rejected, 1);
	assert_int_equal(consume(&c, &m), 1);
	assert_int_equal(m.body_len, r.max_message - 3);
	assert_int_equal(consume(&c, &m), 0);
	ring_close(&r);
}

/* Records of varying sizes go round the ring many times; every record that
 * would cross the end is preceded by padding, and all come out intact. */
static void
records_wrap_around_the_end_with_padding(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;
	static char body[3000];
	uint64_t laps_start;
	int i;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	laps_start = r.hdr->tail;
	for (i = 0; i < 2000; i++) {
		size_t len = (size_t)(i * 997) % sizeof(body);
		char key[32];
		snprintf(key, sizeof(key), "k/%d", i);
		memset(body, 'a' + i % 26, len);
		assert_int_equal(ring_put(&r, slot, key, strlen(key), body, len, 0), 0);
		assert_int_equal(consume(&c, &m), 1);
		assert_string_equal(m.key, key);
		assert_int_equal(m.body_len, len);
		for (size_t k = 0; k < len; k++)
			if (m.body[k] != 'a' + i % 26)
				fail_msg("byte %zu of record %d", k, i);
		ring_release(&r, ring_consumer_floor(&c));
	}
	assert_true(r.hdr->tail - laps_start > 10 * SMALL_CAP);
	assert_int_equal(r.hdr->head, r.hdr->tail);
	assert_int_equal(r.hdr->corrupt, 0);
	ring_close(&r);
}

/* Resident pages of this process, from /proc/self/statm. */
static long
resident_pages(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &size, &res), 2);
	fclose(f);
	return res;
}

/* Released pages leave the consumer's RSS; the bytes stay in the object. */
static void
dropped_pages_leave_rss_but_keep_their_bytes(void **state)
{
	struct ring r;
	unsigned slot;
	static char body[4000];
	long before, after;

	(void)state;
	open_new(&r, UINT64_C(4) << 20, 0);
	slot = claim(&r);
	memset(body, 'd', sizeof(body));
	while (ring_put(&r, slot, "k", 1, body, sizeof(body), 0) == 0)
		;
	before = resident_pages();
	ring_drop_pages(&r, RING_POS_BASE, RING_POS_BASE + r.capacity);
	after = resident_pages();
	print_message("resident pages: %ld before, %ld after\n", before, after);
	assert_true(before - after >= (long)(r.capacity / 4096) * 9 / 10);
	/* Touching them again maps the same bytes back in. */
	assert_int_equal(r.data[64 + 1 + 10], 'd');
	ring_close(&r);
}

static void
released_space_lets_a_full_ring_accept_puts(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;
	char body[1000] = { 0 };

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	while (ring_put(&r, slot, "k", 1, body, sizeof(body), 0) == 0)
		;
	assert_int_equal(consume(&c, &m), 1);
	/* Consumed but not released: still no room. */
	assert_int_equal(ring_put(&r, slot, "k", 1, body, sizeof(body), 0), -EAGAIN);
	ring_release(&r, ring_consumer_floor(&c));
	assert_int_equal(ring_put(&r, slot, "k", 1, body, sizeof(body), 0), 0);
	ring_close(&r);
}

static void
corrupt_body_is_counted_and_skipped(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(put_str(&r, slot, "a", "first body", 0), 0);
	assert_int_equal(put_str(&r, slot, "b", "second body", 0), 0);
	r.data[64 + 1 + 3] ^= 0x40; /* a byte of the first body */
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "b");
	assert_int_equal(r.hdr->corrupt, 1);
	/* A consumer restarted from the old head skips it without counting
	 * it again. */
	ring_consumer_init(&c, &r, RING_POS_BASE);
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "b");
	assert_int_equal(r.hdr->corrupt, 1);
	ring_close(&r);
}

/* A damaged key must not be uploaded under another name: the header CRC
 * covers the key. */
static void
corrupt_key_is_counted_and_skipped(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(put_str(&r, slot, "scr/p0/541", "body", 0), 0);
	assert_int_equal(put_str(&r, slot, "next", "body", 0), 0);
	r.data[64 + 3] = ':'; /* "scr/" becomes "scr:" */
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "next");
	assert_int_equal(r.hdr->corrupt, 1);
	ring_close(&r);
}

/* After a dead producer's record is given up and the ring is empty, the
 * consumer sleeps again instead of spinning on a stale deadline. */
static void
consumer_sleeps_after_giving_up_a_record(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	uint64_t t0;
	unsigned wakeups = 0;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	atomic_fetch_add(&r.hdr->tail, 128); /* a headerless reservation */
	ring_consumer_init(&c, &r, 0);
	c.stale_wait_ns = 1000000; /* 1 ms */
	t0 = mono_ns();
	while (mono_ns() - t0 < 300ull * 1000 * 1000) {
		assert_int_equal(consume(&c, &m), 0);
		ring_consumer_wait(&c, 0);
		wakeups++;
	}
	assert_int_equal(r.hdr->resynced, 1);
	/* 300 ms of 50 ms sleeps: a handful of rounds, not thousands. */
	assert_true(wakeups < 20);
	ring_close(&r);
}

static void
corrupt_record_header_is_counted_and_resynced(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;
	char body[300];

	(void)state;
	memset(body, 'z', sizeof(body));
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(ring_put(&r, slot, "a", 1, body, sizeof(body), 0), 0);
	assert_int_equal(ring_put(&r, slot, "b", 1, body, 10, 0), 0);
	((struct ring_record *)r.data)->len = 0xffffffc0u; /* hostile length */
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "b");
	assert_int_equal(r.hdr->corrupt, 1);
	ring_close(&r);
}

static void
garbage_in_the_data_region_never_crashes_the_consumer(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;
	int got = 0;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	srandom(7);
	for (int i = 0; i < 200; i++)
		assert_int_equal(put_str(&r, slot, "key/x", "some body bytes here", 0), 0);
	/* Scribble over random 8-byte words, including tags. */
	for (int i = 0; i < 300; i++) {
		uint64_t w = ((uint64_t)random() << 32) | (uint64_t)random();
		size_t off = ((size_t)random() % (200 * 128 / 8)) * 8;
		memcpy(r.data + off, &w, 8);
	}
	int rc;
	while ((rc = consume(&c, &m)) == 1)
		got++;
	assert_true(rc == 0 || rc == -EBADMSG);
	assert_true(got < 200);
	assert_true(r.hdr->corrupt > 0);
	ring_close(&r);
}

static void
aborted_reservation_is_skipped(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	struct ring_resv rv;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(ring_reserve(&r, slot, "x", 1, 500, 0, &rv), 0);
	memset(rv.body, 'q', 500);
	ring_abort(&r, &rv);
	assert_int_equal(put_str(&r, slot, "y", "kept", 0), 0);
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "y");
	assert_int_equal(r.hdr->corrupt, 0);
	ring_close(&r);
}

/* A producer SIGKILLed between reserve and commit: its record is abandoned
 * once the consumer sees its owner is dead, well within a second. */
static void
producer_killed_between_reserve_and_commit_is_abandoned(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;
	pid_t kid;
	int st, rc;
	uint64_t t0;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct ring kr;
		struct ring_resv rv;
		if (ring_open(&kr, ring_name, 0, NULL) != 0)
			_exit(1);
		int s = ring_slot_claim(&kr, getpid(), proc_start_time(getpid()));
		if (s < 0 || ring_reserve(&kr, (unsigned)s, "dead/1", 6, 5000, 0, &rv) != 0)
			_exit(2);
		memset(rv.body, 'd', 100); /* part of the body, then death */
		raise(SIGKILL);
		_exit(3);
	}
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	slot = claim(&r);
	assert_int_equal(put_str(&r, slot, "alive/1", "after", 0), 0);

	ring_consumer_init(&c, &r, 0);
	t0 = mono_ns();
	while ((rc = consume(&c, &m)) == 0) {
		/* A guard against a hang, not a timing: the owner's death is
		 * seen by its lock, whatever the machine's load. */
		assert_true(mono_ns() - t0 < HANG_GUARD_NS);
		ring_consumer_wait(&c, 0);
	}
	assert_int_equal(rc, 1);
	assert_string_equal(m.key, "alive/1");
	assert_int_equal(r.hdr->abandoned, 1);
	assert_int_equal(r.hdr->corrupt, 0);
	ring_close(&r);
}

/* A producer that died between its tail CAS and its header CAS leaves a
 * header with a stale stamp. After about a second the consumer pads over the
 * gap up to the next live header. */
static void
reservation_without_header_is_padded_over_after_a_second(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;
	uint64_t t0, t;
	int rc;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	/* Simulate the dead producer: move tail by 640 bytes, write nothing. */
	t = atomic_fetch_add(&r.hdr->tail, 640);
	assert_int_equal(t, RING_POS_BASE);
	assert_int_equal(put_str(&r, slot, "after/gap", "x", 0), 0);
	ring_consumer_init(&c, &r, 0);
	t0 = mono_ns();
	while ((rc = consume(&c, &m)) == 0) {
		assert_true(mono_ns() - t0 < HANG_GUARD_NS);
		ring_consumer_wait(&c, 0);
	}
	assert_int_equal(rc, 1);
	assert_true(mono_ns() - t0 >= 900ull * 1000 * 1000);
	assert_string_equal(m.key, "after/gap");
	assert_int_equal(m.pos, RING_POS_BASE + 640);
	assert_int_equal(r.hdr->resynced, 1);
	ring_close(&r);
}

/* The slow producer of the case above, still alive: its header CAS loses to
 * the consumer's and its put fails instead of writing a record nobody will
 * read. */
static void
slow_producer_loses_its_header_to_the_consumer(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	uint64_t t;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	t = atomic_fetch_add(&r.hdr->tail, 128); /* a claimed, headerless span */
	ring_consumer_init(&c, &r, 0);
	c.stale_wait_ns = 1; /* give up at once */
	assert_int_equal(consume(&c, &m), 0);
	usleep(1000);
	assert_int_equal(consume(&c, &m), 0);
	assert_int_equal(c.cursor, t + 128);
	/* Now the producer wakes up and claims its header the normal way. */
	struct ring_record *rec = (struct ring_record *)(r.data + (t & r.mask));
	uint64_t old = atomic_load(&rec->tag);
	assert_true(ring_tag_stamped(old, t));
	assert_int_equal(ring_tag_state(old), RING_ABANDONED);
	assert_int_equal(r.hdr->resynced, 1);
	ring_close(&r);
}

/* A put blocked on a full ring wakes as soon as the consumer releases
 * space: the release issues a FUTEX_WAKE and the put returns well before the
 * 50 ms poll that would otherwise be its only chance. The release comes 2 ms
 * into the child's wait, so a lost wake costs about 48 ms in every trial; the
 * fastest of nine trials tells the two apart on a busy machine too. */
#define WAKE_TRIALS 9
static void
blocked_put_wakes_when_space_is_released(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;
	char body[4000] = { 0 };
	int p2c[2];
	pid_t kid;
	int st;
	uint64_t times[WAKE_TRIALS];

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(pipe(p2c), 0);
	for (int trial = 0; trial < WAKE_TRIALS; trial++) {
		while (ring_put(&r, slot, "k", 1, body, sizeof(body), 0) == 0)
			;
		uint64_t wakes0 = r.hdr->space_wakes;
		kid = fork();
		assert_true(kid >= 0);
		if (kid == 0) {
			int s = ring_slot_claim(&r, getpid(), proc_start_time(getpid()));
			int rc = ring_put(&r, (unsigned)s, "w", 1, body, sizeof(body), 10000);
			uint64_t done = mono_ns();
			if (write(p2c[1], &done, sizeof(done)) != sizeof(done))
				_exit(2);
			_exit(rc == 0 ? 0 : 1);
		}
		/* Wait until the child has set the waiters bit. */
		while (!(atomic_load(&r.hdr->space_word) & 1u))
			usleep(100);
		usleep(2000);
		while (consume(&c, &m) == 1)
			;
		uint64_t released = mono_ns();
		ring_release(&r, ring_consumer_floor(&c));
		uint64_t done;
		assert_int_equal(read(p2c[0], &done, sizeof(done)), sizeof(done));
		assert_int_equal(waitpid(kid, &st, 0), kid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(r.hdr->space_wakes, wakes0 + 1);
		times[trial] = done > released ? done - released : 0;
		while (consume(&c, &m) == 1)
			;
		ring_release(&r, ring_consumer_floor(&c));
	}
	for (int i = 0; i < WAKE_TRIALS; i++)
		for (int j = i + 1; j < WAKE_TRIALS; j++)
			if (times[j] < times[i]) {
				uint64_t x = times[i]; times[i] = times[j]; times[j] = x;
			}
	print_message("wake after release: fastest %.3f ms, median %.3f ms\n",
	    times[0] / 1e6, times[WAKE_TRIALS / 2] / 1e6);
	assert_true(times[0] < 25ull * 1000 * 1000);
	close(p2c[0]);
	close(p2c[1]);
	ring_close(&r);
}

static void
sleeping_consumer_is_woken_by_a_put(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	pid_t kid;
	int st;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	ring_consumer_init(&c, &r, 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		/* Puts once the consumer has announced its sleep, however late
		 * a busy machine lets it get there. */
		uint64_t until = mono_ns() + 5000ull * 1000 * 1000;
		while (atomic_load(&r.hdr->consumer_sleeping) == 0)
			if (mono_ns() > until)
				_exit(2);
			else
				usleep(1000);
		int s = ring_slot_claim(&r, getpid(), proc_start_time(getpid()));
		_exit(put_str(&r, (unsigned)s, "wake", "up", 0) == 0 ? 0 : 1);
	}
	uint64_t deadline = mono_ns() + 5000ull * 1000 * 1000;
	int rc;
	while ((rc = consume(&c, &m)) == 0 && mono_ns() < deadline)
		ring_consumer_wait(&c, deadline);
	assert_int_equal(rc, 1);
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(r.hdr->wakes >= 1);
	/* The flag is clear again: later puts make no system call. */
	assert_int_equal(r.hdr->consumer_sleeping, 0);
	ring_close(&r);
}

/* The next message, waiting for it (and releasing what was read) while the
 * ring is empty; fails the test past deadline. */
static void
consume_waiting(struct ring_consumer *c, struct ring *r, struct ring_msg *m,
    uint64_t deadline)
{
	int rc;

	while ((rc = consume(c, m)) == 0) {
		ring_release(r, ring_consumer_floor(c));
		assert_true(mono_ns() < deadline);
		ring_consumer_wait(c, 0);
	}
	assert_int_equal(rc, 1);
}

/* A consumer that has caught up naps before it announces its sleep, so a
 * producer that keeps putting makes (nearly) no system call: before the
 * nap, each time the consumer caught up the next put paid a FUTEX_WAKE,
 * 35 to 60 in 1,000 puts of 64 B, whatever the load. A producer that is
 * descheduled for longer than a nap may find it asleep, and that depends
 * on how busy the machine is: each of the producer's own context switches
 * during its puts is allowed one wake, on top of 1 in 100 puts. */
static void
consumer_that_caught_up_naps_so_a_busy_producer_wakes_it_rarely(void **state)
{
	enum { N = 20000 };
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned long got = 0;
	_Atomic uint64_t *switches;
	pid_t kid;
	int st;

	(void)state;
	switches = mmap(NULL, sizeof(*switches), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(switches != MAP_FAILED);
	/* 4 MiB: the 20,000 records never fill it, so the producer never
	 * waits for space (a wait that outlasts a nap costs a wake-up). */
	open_new(&r, UINT64_C(4) << 20, 0);
	ring_consumer_init(&c, &r, 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		int s = ring_slot_claim(&r, getpid(), proc_start_time(getpid()));
		struct rusage ru0, ru1;

		getrusage(RUSAGE_SELF, &ru0);
		for (unsigned i = 0; i < N; i++)
			if (put_str(&r, (unsigned)s, "logs/nap", "0123456789abcdef", -1) != 0)
				_exit(1);
		getrusage(RUSAGE_SELF, &ru1);
		atomic_store(switches, (uint64_t)(ru1.ru_nvcsw - ru0.ru_nvcsw +
		    ru1.ru_nivcsw - ru0.ru_nivcsw));
		_exit(0);
	}
	uint64_t deadline = mono_ns() + 120ull * 1000 * 1000 * 1000;
	for (; got < N; got++)
		consume_waiting(&c, &r, &m, deadline);
	ring_release(&r, ring_consumer_floor(&c));
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	print_message("%d puts, %llu producer wakes, %llu consumer sleeps, "
	    "%llu producer context switches\n", N,
	    (unsigned long long)r.hdr->wakes,
	    (unsigned long long)r.hdr->consumer_wakeups,
	    (unsigned long long)atomic_load(switches));
	assert_true(r.hdr->wakes <= N / 100 + atomic_load(switches));
	assert_int_equal(r.hdr->consumer_sleeping, 0);
	ring_close(&r);
	munmap(switches, sizeof(*switches));
}

static void
slots_are_reclaimed_from_dead_owners_only(void **state)
{
	struct ring r;
	pid_t kid;
	int st, s;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	for (unsigned i = 0; i < RING_MAX_PRODUCERS; i++)
		assert_int_equal(ring_slot_claim(&r, getpid(), proc_start_time(getpid())), (int)i);
	assert_int_equal(ring_slot_claim(&r, getpid(), proc_start_time(getpid())), -EUSERS);
	/* Slot 3 goes to a process that dies holding it. */
	ring_slot_release(&r, 3);
	atomic_store(&r.hdr->slots[3].produced, 7);
	kid = fork();
	if (kid == 0) {
		struct ring kr;
		if (ring_open(&kr, ring_name, 0, NULL) != 0)
			_exit(1);
		_exit(ring_slot_claim(&kr, getpid(), 0) == 3 ? 0 : 2);
	}
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	s = ring_slot_claim(&r, getpid(), proc_start_time(getpid()));
	assert_int_equal(s, 3);
	assert_int_equal(r.hdr->slots[3].gen, 3);
	/* Cumulative counters stay; the new owner's base starts from them. */
	assert_int_equal(r.hdr->slots[3].base_produced, 7);
	ring_close(&r);
}

/* ftruncate of the object under a running consumer: no SIGBUS death, the
 * consumer reports -EFAULT. */
static void
truncated_ring_makes_consume_fail_not_crash(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(put_str(&r, slot, "a", "b", 0), 0);
	assert_int_equal(ftruncate(r.fd, RING_HEADER_SIZE), 0);
	assert_int_equal(consume(&c, &m), -EFAULT);
	assert_int_equal(consume(&c, &m), -EFAULT);
	ring_consumer_wait(&c, mono_ns() + 1000000);
	ring_close(&r);
}

static void
corrupt_tail_is_reported_not_followed(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	ring_consumer_init(&c, &r, 0);
	atomic_store(&r.hdr->tail, RING_POS_BASE + 10 * SMALL_CAP);
	assert_int_equal(consume(&c, &m), -EBADMSG);
	assert_int_equal(put_str(&r, slot, "a", "b", 0), -EBADMSG);
	ring_close(&r);
}

/* head and tail scribbled to the same position near the end of the 64-bit
 * space (a consistent, empty-looking pair): the put would take tail round
 * to below head. It is refused, not returned 0 for a record nobody would
 * read (found by fuzz_ring_live). */
static void
put_refuses_a_tail_that_its_record_would_wrap(void **state)
{
	struct ring r;
	unsigned slot;
	uint64_t near_end = UINT64_MAX - 255; /* 64-byte aligned */

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	atomic_store(&r.hdr->head, near_end);
	atomic_store(&r.hdr->tail, near_end);
	assert_int_equal(put_str(&r, slot, "w/1", "a body of some length that needs more than 256 bytes "
	    "once the header and the key are added to it, so it crosses the end of the space "
	    "....................................................................................", 0),
	    -EBADMSG);
	assert_int_equal(atomic_load(&r.hdr->tail), near_end);
	ring_close(&r);
}

static void
keys_are_validated_as_utf8_without_controls(void **state)
{
	char long_key[RING_MAX_KEY + 2];

	(void)state;
	assert_true(ring_key_valid("a", 1));
	assert_true(ring_key_valid("d\xc3\xa9j\xc3\xa0/\xf0\x9f\x98\x80 +=&@", 16));
	assert_false(ring_key_valid("", 0));
	assert_false(ring_key_valid("a\nb", 3));
	assert_false(ring_key_valid("a\x7f", 2));
	assert_false(ring_key_valid("\xc3", 1));          /* truncated */
	assert_false(ring_key_valid("\xc0\xaf", 2));      /* overlong "/" */
	assert_false(ring_key_valid("\xe0\x80\xaf", 3));  /* overlong */
	assert_false(ring_key_valid("\xed\xa0\x80", 3));  /* surrogate */
	assert_false(ring_key_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(ring_key_valid("\xc2\x85", 2));      /* C1 control */
	memset(long_key, 'k', sizeof(long_key));
	assert_true(ring_key_valid(long_key, RING_MAX_KEY));
	assert_false(ring_key_valid(long_key, RING_MAX_KEY + 1));
}

/* ----------------------------------------------------- multi-process */

static unsigned
scale_div(void)
{
	const char *s = getenv("S3RING_TEST_SCALE_DIV");
	return s != NULL && atoi(s) > 0 ? (unsigned)atoi(s) : 1;
}

/* 4 producer processes each put 250,000 messages of 1 B to 16 KiB into a
 * 1 MiB ring while one consumer drains it: every message arrives exactly
 * once, intact, and in each producer's order. */
/* 4 producer processes each put 250,000 messages of 1 B to 16 KiB into a
 * 1 MiB ring while one consumer drains it: every message arrives exactly
 * once, intact. Not necessarily in each producer's order: a producer
 * preempted between reserve and commit is read past (a hole), and its
 * record may come back after its next one. Head is released up to the
 * consumer's floor, never past a hole. */
static void
four_producers_through_a_small_ring_lose_nothing(void **state)
{
	enum { NPROD = 4, MAXLEN = 16384 };
	unsigned long per = 250000 / scale_div();
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	pid_t kids[NPROD];
	unsigned long got[NPROD] = { 0 };
	static uint8_t seen[NPROD][250000 + 1];
	static uint8_t expect[MAXLEN];
	unsigned long total = 0;

	(void)state;
	open_new(&r, UINT64_C(1) << 20, 0);
	for (unsigned p = 0; p < NPROD; p++) {
		kids[p] = fork();
		assert_true(kids[p] >= 0);
		if (kids[p] == 0) {
			static uint8_t b[MAXLEN];
			struct ring kr;
			char key[64];
			if (ring_open(&kr, ring_name, 0, NULL) != 0)
				_exit(1);
			int s = ring_slot_claim(&kr, getpid(), proc_start_time(getpid()));
			if (s < 0)
				_exit(2);
			for (unsigned long i = 1; i <= per; i++) {
				size_t len = testbody_fill(b, p, i, 1, MAXLEN);
				int kl = snprintf(key, sizeof(key), "p%u/%lu", p, i);
				if (ring_put(&kr, (unsigned)s, key, (size_t)kl, b, len, -1) != 0)
					_exit(3);
			}
			_exit(0);
		}
	}
	ring_consumer_init(&c, &r, 0);
	uint64_t deadline = mono_ns() + 600ull * 1000 * 1000 * 1000;
	while (total < per * NPROD) {
		consume_waiting(&c, &r, &m, deadline);
		unsigned p;
		unsigned long i;
		assert_int_equal(sscanf(m.key, "p%u/%lu", &p, &i), 2);
		assert_true(p < NPROD);
		if (i == 0 || i > per || seen[p][i])
			fail_msg("producer %u: message %lu again or out of range", p, i);
		seen[p][i] = 1;
		got[p]++;
		size_t len = testbody_fill(expect, p, i, 1, MAXLEN);
		assert_int_equal(m.body_len, len);
		assert_memory_equal(m.body, expect, len);
		total++;
		if ((total & 63) == 0)
			ring_release(&r, ring_consumer_floor(&c));
	}
	ring_release(&r, ring_consumer_floor(&c));
	for (unsigned p = 0; p < NPROD; p++) {
		int st;
		assert_int_equal(waitpid(kids[p], &st, 0), kids[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(got[p], per);
	}
	assert_int_equal(consume(&c, &m), 0);
	assert_int_equal(r.hdr->corrupt, 0);
	assert_int_equal(r.hdr->abandoned, 0);
	print_message("%lu messages, %llu producer wakes, %llu consumer sleeps\n",
	    total, (unsigned long long)r.hdr->wakes,
	    (unsigned long long)r.hdr->consumer_wakeups);
	ring_close(&r);
}

/* -------------------------------------------------- the ring's edges */

/* Puts head, cursor and tail at pos, as a ring that has run that far. */
static void
move_to(struct ring *r, uint64_t pos)
{
	atomic_store(&r->hdr->head, pos);
	atomic_store(&r->hdr->cursor, pos);
	atomic_store(&r->hdr->tail, pos);
}

/* A committed record in the last 64 bytes of the data region that claims
 * a body up to max_message: its lengths agree with each other and its CRC
 * is right, but it would end past the mapping. It is counted corrupt before
 * any byte past the region is read: a guard page follows the mapping, and
 * the header's CRC covers a key that lies past it, written nowhere. */
static void
record_claiming_to_end_past_the_region_is_corrupt_not_read(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	uint64_t pos, len;
	struct ring_record *rec;
	void *guard;

	(void)state;
	guard = open_new_guarded(&r, SMALL_CAP, 0);
	pos = RING_POS_BASE + 4 * r.capacity + r.capacity - RING_ALIGN;
	len = ring_record_size(1, r.max_message - 1);
	move_to(&r, pos);
	atomic_store(&r.hdr->tail, pos + len);
	rec = (struct ring_record *)(r.data + (pos & r.mask));
	rec->len = (uint32_t)len;
	rec->key_len = 1;
	rec->body_len = r.max_message - 1;
	assert_ptr_equal((uint8_t *)(rec + 1), r.data + r.capacity);
	uint64_t tag = ring_tag_make(pos, 0, RING_COMMITTED);
	rec->hdr_crc = ring_record_crc(rec, tag, "k", 1);
	atomic_store(&rec->tag, tag);
	ring_consumer_init(&c, &r, 0);
	assert_true(consume(&c, &m) <= 0);
	assert_int_equal(r.hdr->corrupt, 1);
	close_guarded(&r, guard);
}

/* An unaligned tail near the end would make a put write its padding header
 * past the mapping: the put refuses the ring instead of returning 0, and so
 * does the consumer. */
static void
unaligned_tail_is_corruption_for_put_and_consume(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;
	uint64_t pos;
	void *guard;

	(void)state;
	guard = open_new_guarded(&r, SMALL_CAP, 0);
	slot = claim(&r);
	pos = RING_POS_BASE + r.capacity - RING_ALIGN;
	move_to(&r, pos);
	ring_consumer_init(&c, &r, 0);
	atomic_store(&r.hdr->tail, pos + 24);
	assert_int_equal(put_str(&r, slot, "k", "body", 0), -EBADMSG);
	assert_int_equal(consume(&c, &m), -EBADMSG);
	/* An unaligned start position (a fresh journal) is not trusted. */
	atomic_store(&r.hdr->tail, pos);
	ring_consumer_init(&c, &r, pos + 8);
	assert_int_equal(c.cursor, pos);
	close_guarded(&r, guard);
}

/* key_len + body_len must not wrap: a body of SIZE_MAX bytes is too large,
 * not a 64-byte reservation. */
static void
reserve_of_size_max_body_is_emsgsize(void **state)
{
	struct ring r;
	struct ring_resv rv;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	assert_int_equal(ring_reserve(&r, slot, "k", 1, SIZE_MAX, 0, &rv), -EMSGSIZE);
	assert_int_equal(ring_reserve(&r, slot, "k", 1, SIZE_MAX - 1, 0, &rv), -EMSGSIZE);
	assert_int_equal(ring_reserve(&r, slot, "k", 1, (size_t)UINT32_MAX + 2, 0, &rv), -EMSGSIZE);
	assert_int_equal(r.hdr->tail, RING_POS_BASE);
	assert_int_equal(r.hdr->slots[slot].rejected, 3);
	ring_close(&r);
}

/* Truncation under a producer: the put gets an error, the process lives. */
static void
truncated_ring_makes_put_fail_not_crash(void **state)
{
	struct ring r;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	assert_int_equal(put_str(&r, slot, "a", "before", 0), 0);
	assert_int_equal(ftruncate(r.fd, 0), 0);
	assert_int_equal(put_str(&r, slot, "a", "after", 0), -EBADMSG);
	assert_true(ring_mapping_lost(&r));
	assert_int_equal(put_str(&r, slot, "a", "again", 0), -EBADMSG);
	ring_close(&r);
}

/* A live producer that stopped between reserve and commit holds only its
 * own record: the records behind it are consumed, head stays at it, and
 * its late commit lands in its own record, never in another one. */
static void
stopped_producer_holds_only_its_own_record(void **state)
{
	struct ring r, pr;
	struct ring_consumer c;
	struct ring_msg m;
	struct ring_resv rv;
	unsigned slot, pslot;
	uint64_t t0, first;
	int rc;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	/* The stopped producer has a description of its own, as it would in
	 * its own process, so the consumer sees its lock. */
	assert_int_equal(ring_open(&pr, ring_name, 0, NULL), 0);
	pslot = (unsigned)ring_slot_claim(&pr, getpid(), 0);
	slot = claim(&r);
	assert_int_equal(ring_reserve(&pr, pslot, "slow/1", 6, 100, 0, &rv), 0);
	first = rv.pos;
	assert_int_equal(put_str(&r, slot, "fast/1", "one", 0), 0);
	assert_int_equal(put_str(&r, slot, "fast/2", "two", 0), 0);
	ring_consumer_init(&c, &r, 0);
	c.owner_wait_ns = 1000 * 1000;
	t0 = mono_ns();
	while ((rc = consume(&c, &m)) == 0) {
		assert_true(mono_ns() - t0 < HANG_GUARD_NS);
		ring_consumer_wait(&c, 0);
	}
	assert_int_equal(rc, 1);
	assert_string_equal(m.key, "fast/1");
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "fast/2");
	assert_int_equal(ring_consumer_floor(&c), first);
	ring_release(&r, ring_consumer_floor(&c));
	assert_int_equal(r.hdr->head, first);
	/* Much later, the producer resumes. */
	usleep(20 * 1000);
	assert_int_equal(consume(&c, &m), 0);
	memset(rv.body, 's', 100);
	assert_int_equal(ring_commit(&pr, &rv, crc32c(0, rv.body, 100)), 0);
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "slow/1");
	assert_int_equal(m.pos, first);
	assert_int_equal(ring_consumer_floor(&c), c.cursor);
	assert_int_equal(r.hdr->abandoned, 0);
	assert_int_equal(r.hdr->corrupt, 0);
	ring_close(&pr);
	ring_close(&r);
}

/* Every slot has been used by a process that died writing: the 122nd
 * process reuses a dead owner's slot, and the records the dead left are
 * abandoned within milliseconds each, not after a long timeout, because
 * the slot's generation says their owner is gone. */
static void
dead_writers_are_abandoned_after_all_slots_were_used(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot;
	uint64_t t0;
	int rc, st;

	(void)state;
	open_new(&r, UINT64_C(1) << 20, 0);
	for (unsigned i = 0; i < RING_MAX_PRODUCERS + 1; i++) {
		pid_t kid = fork();
		assert_true(kid >= 0);
		if (kid == 0) {
			struct ring kr;
			struct ring_resv rv;
			if (ring_open(&kr, ring_name, 0, NULL) != 0)
				_exit(1);
			int s = ring_slot_claim(&kr, getpid(), 0);
			if (s < 0 || ring_reserve(&kr, (unsigned)s, "dead/x", 6, 10, 0, &rv) != 0)
				_exit(2);
			raise(SIGKILL);
			_exit(3);
		}
		assert_int_equal(waitpid(kid, &st, 0), kid);
		assert_true(WIFSIGNALED(st));
	}
	/* A live process now holds one of those slots. */
	slot = claim(&r);
	assert_int_equal(put_str(&r, slot, "alive/1", "after", 0), 0);
	ring_consumer_init(&c, &r, 0);
	t0 = mono_ns();
	while ((rc = consume(&c, &m)) == 0) {
		assert_true(mono_ns() - t0 < HANG_GUARD_NS);
		ring_consumer_wait(&c, 0);
	}
	assert_int_equal(rc, 1);
	assert_string_equal(m.key, "alive/1");
	assert_int_equal(r.hdr->abandoned, RING_MAX_PRODUCERS + 1);
	ring_close(&r);
}

/* A process whose main thread called pthread_exit() shows as a zombie in
 * /proc while its other threads run: it is alive, and its record is
 * waited for and consumed, not abandoned. */
struct late_commit {
	struct ring *r;
	struct ring_resv rv;
};

static void *
commit_later(void *arg)
{
	struct late_commit *lc = arg;

	usleep(300 * 1000);
	memset(lc->rv.body, 'z', lc->rv.body_len);
	_exit(ring_commit(lc->r, &lc->rv, crc32c(0, lc->rv.body, lc->rv.body_len)) == 0 ? 0 : 5);
}

static void
producer_whose_main_thread_exited_is_alive(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	uint64_t t0;
	pid_t kid;
	int rc, st;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		static struct ring kr;
		static struct late_commit lc;
		pthread_t th;
		if (ring_open(&kr, ring_name, 0, NULL) != 0)
			_exit(1);
		int s = ring_slot_claim(&kr, getpid(), 0);
		lc.r = &kr;
		if (s < 0 || ring_reserve(&kr, (unsigned)s, "zombie/1", 8, 64, 0, &lc.rv) != 0)
			_exit(2);
		if (pthread_create(&th, NULL, commit_later, &lc) != 0)
			_exit(3);
		/* The main thread ends, the process lives on: what
		 * pthread_exit() does, without unwinding through cmocka's
		 * frames (under ASan that unwind can abort the child with
		 * "longjmp causes uninitialized stack frame"). */
		syscall(SYS_exit, 0);
	}
	ring_consumer_init(&c, &r, 0);
	c.owner_wait_ns = 1000 * 1000;
	t0 = mono_ns();
	while ((rc = consume(&c, &m)) == 0) {
		assert_true(mono_ns() - t0 < HANG_GUARD_NS);
		ring_consumer_wait(&c, 0);
	}
	assert_int_equal(rc, 1);
	assert_string_equal(m.key, "zombie/1");
	assert_int_equal(r.hdr->abandoned, 0);
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ring_close(&r);
}

/* A creator killed anywhere in ring_open(CREATE) leaves either nothing or
 * a complete ring: never an object that later opens refuse. */
static void
creator_killed_mid_create_leaves_nothing_half_made(void **state)
{
	struct ring_config cfg = { .capacity = UINT64_C(256) << 20, .gid = (gid_t)-1 };

	(void)state;
	for (int i = 0; i < 20; i++) {
		struct ring r;
		int st, rc;
		pid_t kid;

		new_name();
		kid = fork();
		assert_true(kid >= 0);
		if (kid == 0) {
			struct ring kr;
			if (ring_open(&kr, ring_name, RING_OPEN_CREATE, &cfg) == 0)
				pause();
			_exit(0);
		}
		usleep((useconds_t)(i * 1500));
		kill(kid, SIGKILL);
		assert_int_equal(waitpid(kid, &st, 0), kid);
		rc = ring_open(&r, ring_name, 0, NULL);
		assert_true(rc == 0 || rc == -ENOENT);
		if (rc == 0) {
			assert_int_equal(r.capacity, cfg.capacity);
			ring_close(&r);
		}
		(void)ring_unlink(ring_name);
	}
}

/* A ring removed while a producer holds it: once retired, the producer's
 * puts fail with -ESTALE instead of returning 0 into an object nobody
 * reads. */
static void
put_into_a_retired_ring_is_estale(void **state)
{
	struct ring r, pr;
	unsigned pslot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	assert_int_equal(ring_open(&pr, ring_name, 0, NULL), 0);
	pslot = (unsigned)ring_slot_claim(&pr, getpid(), 0);
	assert_int_equal(put_str(&pr, pslot, "k", "before", 0), 0);
	assert_int_equal(ring_identity(&r), RING_SAME);
	assert_int_equal(ring_unlink(ring_name), 0);
	assert_int_equal(ring_identity(&r), RING_REMOVED);
	ring_retire(&r);
	assert_int_equal(put_str(&pr, pslot, "k", "after", 0), -ESTALE);
	/* Replaced: another object under the same name. */
	struct ring r2;
	assert_int_equal(ring_open(&r2, ring_name, RING_OPEN_CREATE, NULL), 0);
	assert_int_equal(ring_identity(&r), RING_REPLACED);
	assert_int_equal(ring_identity(&r2), RING_SAME);
	ring_close(&r2);
	ring_close(&pr);
	ring_close(&r);
}

/* A reservation made before retirement whose owner never finishes: the
 * uploader gives it up when it is done with the ring, and the late commit
 * fails instead of reporting success. */
static void
commit_after_the_ring_was_given_up_is_estale(void **state)
{
	struct ring r, pr;
	struct ring_consumer c;
	struct ring_resv rv;
	unsigned pslot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	assert_int_equal(ring_open(&pr, ring_name, 0, NULL), 0);
	pslot = (unsigned)ring_slot_claim(&pr, getpid(), 0);
	assert_int_equal(ring_reserve(&pr, pslot, "late", 4, 10, 0, &rv), 0);
	ring_consumer_init(&c, &r, 0);
	ring_retire(&r);
	assert_int_equal(ring_consumer_abandon_rest(&c), 1);
	memset(rv.body, 'l', 10);
	assert_int_equal(ring_commit(&pr, &rv, crc32c(0, rv.body, 10)), -ESTALE);
	ring_close(&pr);
	ring_close(&r);
}

/* The in-place view: the key is copied and checked, the body is checked
 * where it lies in the ring and handed out there. */
static void
view_hands_out_the_body_in_place_and_checks_it(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	char key[RING_MAX_KEY + 1];
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	assert_int_equal(put_str(&r, slot, "view/1", "in place", 0), 0);
	assert_int_equal(put_str(&r, slot, "view/2", "damaged", 0), 0);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(ring_consume_view(&c, &m, key, sizeof(key)), 1);
	assert_string_equal(m.key, "view/1");
	assert_true(m.key == key);
	assert_true(m.body >= r.data && m.body + m.body_len <= r.data + r.capacity);
	assert_memory_equal(m.body, "in place", 8);
	/* A body damaged before the check is counted corrupt. */
	uint8_t *b2 = r.data + ((m.end + 64 + 6) & r.mask);
	b2[0] ^= 1;
	assert_int_equal(ring_consume_view(&c, &m, key, sizeof(key)), 0);
	assert_int_equal(r.hdr->corrupt, 1);
	ring_close(&r);
}

/* ---------------------------------------------- review: retirement, gen, guard */

/* A retired ring whose stop timeout ran out while committed records still
 * lay between the cursor and tail (the uploader had no free worker, S3
 * being slow): those puts returned 0, so giving up the rest must give up
 * only what is still being written, and the committed records must still
 * come out of the consumer. */
static void
abandon_rest_keeps_records_committed_behind_the_cursor(void **state)
{
	struct ring r, pr;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned pslot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	assert_int_equal(ring_open(&pr, ring_name, 0, NULL), 0);
	pslot = (unsigned)ring_slot_claim(&pr, getpid(), 0);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(put_str(&pr, pslot, "done/1", "committed before", 0), 0);
	assert_int_equal(put_str(&pr, pslot, "done/2", "the retirement", 0), 0);
	ring_retire(&r);
	(void)ring_consumer_abandon_rest(&c);
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "done/1");
	assert_int_equal(consume(&c, &m), 1);
	assert_string_equal(m.key, "done/2");
	ring_close(&pr);
	ring_close(&r);
}

/* A stopped producer's record was read past as a hole; it commits (its put
 * returns 0) just before the retiring uploader gives up the rest. The
 * record is committed, not writing: it must still be delivered. */
static void
abandon_rest_keeps_a_hole_committed_meanwhile(void **state)
{
	struct ring r, pr;
	struct ring_consumer c;
	struct ring_msg m;
	struct ring_resv rv;
	unsigned slot, pslot;
	uint64_t t0;
	int rc;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	assert_int_equal(ring_open(&pr, ring_name, 0, NULL), 0);
	pslot = (unsigned)ring_slot_claim(&pr, getpid(), 0);
	slot = claim(&r);
	assert_int_equal(ring_reserve(&pr, pslot, "slow/1", 6, 10, 0, &rv), 0);
	assert_int_equal(put_str(&r, slot, "fast/1", "one", 0), 0);
	ring_consumer_init(&c, &r, 0);
	c.owner_wait_ns = 1000 * 1000;
	c.hole_wait_ns = 0;
	t0 = mono_ns();
	while ((rc = consume(&c, &m)) == 0) {
		assert_true(mono_ns() - t0 < HANG_GUARD_NS);
		ring_consumer_wait(&c, 0);
	}
	assert_int_equal(rc, 1);
	assert_string_equal(m.key, "fast/1");
	assert_int_equal(c.nholes, 1);
	ring_retire(&r);
	memset(rv.body, 's', 10);
	assert_int_equal(ring_commit(&pr, &rv, crc32c(0, rv.body, 10)), 0);
	(void)ring_consumer_abandon_rest(&c);
	/* The put above returned 0: the record must come out. */
	t0 = mono_ns();
	while ((rc = consume(&c, &m)) == 0 && mono_ns() - t0 < HANG_GUARD_NS)
		ring_consumer_wait(&c, mono_ns() + 10 * 1000 * 1000);
	assert_int_equal(rc, 1);
	assert_string_equal(m.key, "slow/1");
	ring_close(&pr);
	ring_close(&r);
}

/* The tag holds 8 bits of the slot's generation. A producer dies writing
 * with generation g; the slot is then claimed and released 255 times (a
 * short-lived producer per message, say) and its 256th new owner, alive,
 * has generation g + 256: the dead record must still be seen as dead and
 * abandoned within milliseconds, not held until that owner closes. */
static void
dead_record_is_abandoned_after_its_slot_generation_wraps(void **state)
{
	struct ring r, pr;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned slot = 0;
	uint64_t t0;
	int st;
	pid_t kid;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	assert_int_equal(ring_open(&pr, ring_name, 0, NULL), 0);
	/* Use every slot once, so that later claims reuse slot 0. */
	for (unsigned i = 0; i < RING_MAX_PRODUCERS; i++)
		assert_int_equal(ring_slot_claim(&pr, getpid(), 0), (int)i);
	for (unsigned i = 0; i < RING_MAX_PRODUCERS; i++)
		ring_slot_release(&pr, i);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct ring kr;
		struct ring_resv rv;
		if (ring_open(&kr, ring_name, 0, NULL) != 0)
			_exit(1);
		int s = ring_slot_claim(&kr, getpid(), 0);
		if (s != 0 || ring_reserve(&kr, 0, "dead/1", 6, 10, 0, &rv) != 0)
			_exit(2);
		raise(SIGKILL);
		_exit(3);
	}
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	for (unsigned i = 0; i < 255; i++) {
		assert_int_equal(ring_slot_claim(&pr, getpid(), 0), 0);
		ring_slot_release(&pr, 0);
	}
	assert_int_equal(ring_slot_claim(&pr, getpid(), 0), (int)slot);
	assert_int_equal(put_str(&pr, slot, "alive/1", "after", 0), 0);
	ring_consumer_init(&c, &r, 0);
	t0 = mono_ns();
	while (atomic_load(&r.hdr->abandoned) == 0 &&
	    mono_ns() - t0 < HANG_GUARD_NS) {
		if (consume(&c, &m) == 0)
			ring_consumer_wait(&c, mono_ns() + 10 * 1000 * 1000);
	}
	assert_int_equal(atomic_load(&r.hdr->abandoned), 1);
	ring_close(&pr);
	ring_close(&r);
}

/* An application's SIGBUS handler installed after ours, which passes
 * faults it does not handle to the handler it replaced (ours), as most
 * do. A later ring_open() puts ours first again. A SIGBUS in no ring's
 * mapping must then reach the application's handler once and end as it
 * decides, not bounce between the two handlers until the stack overflows. */
static struct sigaction app_prev;
static volatile sig_atomic_t app_calls;

static void
app_sigbus(int sig, siginfo_t *si, void *uc)
{
	if (++app_calls > 1)
		_exit(43); /* called again: the handlers chain in a loop */
	if ((app_prev.sa_flags & SA_SIGINFO) && app_prev.sa_sigaction != NULL)
		app_prev.sa_sigaction(sig, si, uc);
	_exit(42);
}

static void
sigbus_outside_the_rings_reaches_a_chaining_handler_once(void **state)
{
	struct ring r;
	pid_t kid;
	int st;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	ring_close(&r);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct ring a, b;
		struct sigaction sa;
		char path[] = "/tmp/s3ring-sigbus-XXXXXX";
		int fd;
		volatile uint8_t *p;

		if (ring_open(&a, ring_name, 0, NULL) != 0)
			_exit(1);
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = app_sigbus;
		sa.sa_flags = SA_SIGINFO;
		if (sigaction(SIGBUS, &sa, &app_prev) != 0)
			_exit(2);
		if (ring_open(&b, ring_name, 0, NULL) != 0)
			_exit(3);
		fd = mkstemp(path);
		if (fd < 0 || ftruncate(fd, 4096) != 0)
			_exit(4);
		unlink(path);
		p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED || ftruncate(fd, 0) != 0)
			_exit(5);
		(void)p[0]; /* SIGBUS, in no ring's mapping */
		_exit(6);
	}
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 42);
}

/* ring_scan() reads again what the consumer has read: the committed
 * records in order, nothing else, and it changes no counter. */
static void
scan_reads_again_the_committed_records_of_a_span(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	struct ring_resv rv;
	char kbuf[RING_MAX_KEY + 1];
	uint64_t first, end = 0, pos, consumed;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	assert_int_equal(put_str(&r, slot, "a/1", "one", 0), 0);
	assert_int_equal(ring_reserve(&r, slot, "a/x", 3, 10, 0, &rv), 0);
	ring_abort(&r, &rv);
	assert_int_equal(put_str(&r, slot, "a/2", "", 0), 0);
	assert_int_equal(put_str(&r, slot, "a/3", "three", 0), 0);
	ring_consumer_init(&c, &r, 0);
	assert_int_equal(consume(&c, &m), 1);
	first = m.pos;
	while (consume(&c, &m) == 1)
		end = m.end;
	consumed = r.hdr->consumed;

	pos = first;
	const char *want[] = { "a/1", "a/2", "a/3" };
	const char *body[] = { "one", "", "three" };
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ring_scan(&r, &pos, end, &m, kbuf, sizeof(kbuf)), 1);
		assert_string_equal(m.key, want[i]);
		assert_int_equal(m.body_len, strlen(body[i]));
		/* The body is where it lies, its check left to the caller. */
		assert_false(m.body_checked);
		assert_true(m.body >= r.data && m.body + m.body_len <= r.data + r.capacity);
		assert_memory_equal(m.body, body[i], m.body_len);
		assert_int_equal(crc32c(0, m.body, m.body_len), m.body_crc);
	}
	assert_int_equal(pos, end);
	assert_int_equal(ring_scan(&r, &pos, end, &m, kbuf, sizeof(kbuf)), 0);
	assert_int_equal(r.hdr->consumed, consumed);
	assert_int_equal(r.hdr->corrupt, 0);
	ring_close(&r);
}

/* A record whose header changed after the consumer read it is skipped by
 * the scan; one whose body changed is returned, for the caller to find
 * its copy wrong, and once given up (ring_give_up()) a scan of the span
 * skips it, counting nothing; a record still being written stops the
 * scan with -EAGAIN. */
static void
scan_skips_what_changed_and_stops_at_a_record_being_written(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m, ms[4];
	struct ring_resv rv;
	char kbuf[RING_MAX_KEY + 1];
	uint64_t pos, end;
	unsigned slot;
	int n = 0;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	assert_int_equal(put_str(&r, slot, "b/1", "body one", 0), 0);
	assert_int_equal(put_str(&r, slot, "b/2", "body two", 0), 0);
	assert_int_equal(put_str(&r, slot, "b/3", "body three", 0), 0);
	assert_int_equal(put_str(&r, slot, "b/4", "body four", 0), 0);
	ring_consumer_init(&c, &r, 0);
	while (consume(&c, &m) == 1)
		ms[n++] = m;
	assert_int_equal(n, 4);
	end = ms[3].end;
	r.data[(ms[0].pos & r.mask) + sizeof(struct ring_record) + 4] ^= 1; /* b/1's body */
	((struct ring_record *)(r.data + (ms[2].pos & r.mask)))->seq ^= 1; /* b/3's header */
	pos = ms[0].pos;
	assert_int_equal(ring_scan(&r, &pos, end, &m, kbuf, sizeof(kbuf)), 1);
	assert_string_equal(m.key, "b/1");
	assert_int_not_equal(crc32c(0, m.body, m.body_len), m.body_crc);
	assert_int_equal(ring_give_up(&r, &m), 0);
	assert_int_equal(pos, ms[0].end);
	assert_int_equal(ring_scan(&r, &pos, end, &m, kbuf, sizeof(kbuf)), 1);
	assert_string_equal(m.key, "b/2");
	assert_int_equal(ring_scan(&r, &pos, end, &m, kbuf, sizeof(kbuf)), -EILSEQ);
	assert_int_equal(ring_scan(&r, &pos, end, &m, kbuf, sizeof(kbuf)), 1);
	assert_string_equal(m.key, "b/4");
	assert_int_equal(ring_scan(&r, &pos, end, &m, kbuf, sizeof(kbuf)), 0);
	/* Again, after the give-up: b/1 is not there any more. */
	pos = ms[0].pos;
	assert_int_equal(ring_scan(&r, &pos, end, &m, kbuf, sizeof(kbuf)), 1);
	assert_string_equal(m.key, "b/2");
	assert_int_equal(r.hdr->corrupt, 0);

	assert_int_equal(ring_reserve(&r, slot, "b/5", 3, 10, 0, &rv), 0);
	pos = rv.pos;
	end = rv.pos + rv.len;
	assert_int_equal(ring_scan(&r, &pos, end, &m, kbuf, sizeof(kbuf)), -EAGAIN);
	assert_int_equal(pos, rv.pos);
	memset(rv.body, 'z', 10);
	assert_int_equal(ring_commit(&r, &rv, crc32c(0, rv.body, 10)), 0);
	assert_int_equal(ring_scan(&r, &pos, end, &m, kbuf, sizeof(kbuf)), 1);
	assert_string_equal(m.key, "b/5");
	/* A span past tail is refused, not read. */
	pos = end;
	assert_int_equal(ring_scan(&r, &pos, end + 4096, &m, kbuf, sizeof(kbuf)), -EBADMSG);
	ring_close(&r);
}

static bool
leave_prefix_l(void *arg, const char *key, size_t key_len)
{
	(*(int *)arg)++;
	return key_len >= 2 && memcmp(key, "l/", 2) == 0;
}

/* leave_body: ring_consume_view() leaves the body's CRC of the records it
 * says to the caller (returned, body_checked false, nothing counted) and
 * checks the others (a corrupt one is counted and skipped); the copying
 * ring_consume() checks every body whatever leave_body says. A record
 * given up is skipped by a consumer started again over it, uncounted. */
static void
view_leaves_the_body_check_to_the_caller_where_asked(void **state)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	char kbuf[RING_MAX_KEY + 1];
	int calls = 0;
	unsigned slot;

	(void)state;
	open_new(&r, SMALL_CAP, 0);
	slot = claim(&r);
	assert_int_equal(put_str(&r, slot, "l/1", "left one", 0), 0);
	assert_int_equal(put_str(&r, slot, "x/1", "checked one", 0), 0);
	assert_int_equal(put_str(&r, slot, "l/2", "left two", 0), 0);
	ring_consumer_init(&c, &r, 0);
	assert_null(c.leave_body);
	c.leave_body = leave_prefix_l;
	c.leave_body_arg = &calls;
	/* Every body damaged. */
	uint64_t p = 0;
	for (int i = 0; i < 3; i++) {
		struct ring_record *rec = (struct ring_record *)(r.data + (p & r.mask));
		r.data[(p & r.mask) + sizeof(*rec) + rec->key_len] ^= 1;
		p += (sizeof(*rec) + rec->key_len + rec->body_len + RING_ALIGN - 1) &
		    ~(uint64_t)(RING_ALIGN - 1);
	}
	assert_int_equal(ring_consume_view(&c, &m, kbuf, sizeof(kbuf)), 1);
	assert_string_equal(m.key, "l/1");
	assert_false(m.body_checked);
	assert_int_not_equal(crc32c(0, m.body, m.body_len), m.body_crc);
	assert_int_equal(ring_give_up(&r, &m), 0);
	/* x/1 is checked, counted corrupt and skipped: l/2 comes next. */
	assert_int_equal(ring_consume_view(&c, &m, kbuf, sizeof(kbuf)), 1);
	assert_string_equal(m.key, "l/2");
	assert_false(m.body_checked);
	assert_int_equal(r.hdr->corrupt, 1);
	assert_int_equal(calls, 3);
	assert_int_equal(ring_consume_view(&c, &m, kbuf, sizeof(kbuf)), 0);

	/* Started again from the start: l/1 (given up) and x/1 (given up by
	 * the consumer) are skipped uncounted; the copying read checks l/2. */
	ring_consumer_init(&c, &r, 0);
	c.leave_body = leave_prefix_l;
	c.leave_body_arg = &calls;
	assert_int_equal(consume(&c, &m), 0);
	assert_int_equal(r.hdr->corrupt, 2);
	ring_close(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(open_without_create_fails_with_enoent, teardown),
		cmocka_unit_test_teardown(consume_finds_records_put_after_its_last_read_of_tail, teardown),
		cmocka_unit_test_teardown(consume_reports_a_tail_scribbled_below_the_cursor, teardown),
		cmocka_unit_test_teardown(open_rejects_bad_names, teardown),
		cmocka_unit_test_teardown(create_rejects_bad_geometry, teardown),
		cmocka_unit_test_teardown(created_ring_is_mode_0600_with_valid_header, teardown),
		cmocka_unit_test_teardown(attach_sees_the_creators_geometry, teardown),
		cmocka_unit_test_teardown(open_returns_eproto_for_another_layout_version, teardown),
		cmocka_unit_test_teardown(open_returns_ebadmsg_for_a_corrupt_header, teardown),
		cmocka_unit_test_teardown(open_returns_ebadmsg_for_a_truncated_object, teardown),
		cmocka_unit_test_teardown(two_concurrent_creators_both_attach, teardown),
		cmocka_unit_test_teardown(put_then_consume_returns_same_key_and_body, teardown),
		cmocka_unit_test_teardown(put_returns_eagain_and_counts_a_drop_when_ring_is_full, teardown),
		cmocka_unit_test_teardown(put_with_timeout_returns_etimedout_when_ring_stays_full, teardown),
		cmocka_unit_test_teardown(message_of_max_size_fits_and_one_byte_more_is_emsgsize, teardown),
		cmocka_unit_test_teardown(records_wrap_around_the_end_with_padding, teardown),
		cmocka_unit_test_teardown(dropped_pages_leave_rss_but_keep_their_bytes, teardown),
		cmocka_unit_test_teardown(released_space_lets_a_full_ring_accept_puts, teardown),
		cmocka_unit_test_teardown(corrupt_body_is_counted_and_skipped, teardown),
		cmocka_unit_test_teardown(corrupt_key_is_counted_and_skipped, teardown),
		cmocka_unit_test_teardown(consumer_sleeps_after_giving_up_a_record, teardown),
		cmocka_unit_test_teardown(corrupt_record_header_is_counted_and_resynced, teardown),
		cmocka_unit_test_teardown(garbage_in_the_data_region_never_crashes_the_consumer, teardown),
		cmocka_unit_test_teardown(aborted_reservation_is_skipped, teardown),
		cmocka_unit_test_teardown(producer_killed_between_reserve_and_commit_is_abandoned, teardown),
		cmocka_unit_test_teardown(reservation_without_header_is_padded_over_after_a_second, teardown),
		cmocka_unit_test_teardown(slow_producer_loses_its_header_to_the_consumer, teardown),
		cmocka_unit_test_teardown(blocked_put_wakes_when_space_is_released, teardown),
		cmocka_unit_test_teardown(sleeping_consumer_is_woken_by_a_put, teardown),
		cmocka_unit_test_teardown(consumer_that_caught_up_naps_so_a_busy_producer_wakes_it_rarely, teardown),
		cmocka_unit_test_teardown(slots_are_reclaimed_from_dead_owners_only, teardown),
		cmocka_unit_test_teardown(truncated_ring_makes_consume_fail_not_crash, teardown),
		cmocka_unit_test_teardown(corrupt_tail_is_reported_not_followed, teardown),
		cmocka_unit_test(keys_are_validated_as_utf8_without_controls),
		cmocka_unit_test_teardown(four_producers_through_a_small_ring_lose_nothing, teardown),
		cmocka_unit_test_teardown(record_claiming_to_end_past_the_region_is_corrupt_not_read, teardown),
		cmocka_unit_test_teardown(unaligned_tail_is_corruption_for_put_and_consume, teardown),
		cmocka_unit_test_teardown(reserve_of_size_max_body_is_emsgsize, teardown),
		cmocka_unit_test_teardown(truncated_ring_makes_put_fail_not_crash, teardown),
		cmocka_unit_test_teardown(stopped_producer_holds_only_its_own_record, teardown),
		cmocka_unit_test_teardown(dead_writers_are_abandoned_after_all_slots_were_used, teardown),
		cmocka_unit_test_teardown(producer_whose_main_thread_exited_is_alive, teardown),
		cmocka_unit_test_teardown(creator_killed_mid_create_leaves_nothing_half_made, teardown),
		cmocka_unit_test_teardown(put_into_a_retired_ring_is_estale, teardown),
		cmocka_unit_test_teardown(commit_after_the_ring_was_given_up_is_estale, teardown),
		cmocka_unit_test_teardown(view_hands_out_the_body_in_place_and_checks_it, teardown),
		cmocka_unit_test_teardown(abandon_rest_keeps_records_committed_behind_the_cursor, teardown),
		cmocka_unit_test_teardown(abandon_rest_keeps_a_hole_committed_meanwhile, teardown),
		cmocka_unit_test_teardown(dead_record_is_abandoned_after_its_slot_generation_wraps, teardown),
		cmocka_unit_test_teardown(sigbus_outside_the_rings_reaches_a_chaining_handler_once, teardown),
		cmocka_unit_test_teardown(scan_reads_again_the_committed_records_of_a_span, teardown),
		cmocka_unit_test_teardown(scan_skips_what_changed_and_stops_at_a_record_being_written, teardown),
		cmocka_unit_test_teardown(view_leaves_the_body_check_to_the_caller_where_asked, teardown),
		cmocka_unit_test_teardown(put_refuses_a_tail_that_its_record_would_wrap, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
