/* test_shmstat.c -- tests tools/shmstat-render.c: snapshot, pending walk, renderers, check.
 *
 * The unit tests build ring images in ordinary memory with the real ring
 * code (ring_put, ring_reserve) and run the snapshot and renderers on them,
 * so no shared memory is involved. Run with arguments, the binary is
 * instead a helper that the integration scripts tests/it/shmstat_*.sh use
 * to make real rings in given states (see helper_usage() below).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "futex.h"
#include "proc.h"
#include "ring.h"
#include "tools/shmstat.h"


#define CAP (UINT64_C(64) << 10)
#define MS UINT64_C(1000000)

/* ---------------------------------------------------- in-memory rings */

struct mem_ring {
	uint8_t *mem;
	size_t len;
	struct ring r;
	int slot;
};

/* Lays out a fresh ring in memory exactly as ring_open(RING_OPEN_CREATE)
 * would in shared memory. */
static void
mem_ring_init(struct mem_ring *m, uint64_t cap)
{
	struct ring_header *h;

	memset(m, 0, sizeof(*m));
	m->len = RING_HEADER_SIZE + cap;
	m->mem = aligned_alloc(4096, m->len);
	assert_non_null(m->mem);
	memset(m->mem, 0, m->len);
	h = (struct ring_header *)m->mem;
	h->layout_version = RING_LAYOUT_VERSION;
	h->header_size = RING_HEADER_SIZE;
	h->capacity = cap;
	h->max_message = (uint32_t)(cap / 8);
	h->max_producers = RING_MAX_PRODUCERS;
	h->created_realtime_ns = 1;
	atomic_store(&h->tail, RING_POS_BASE);
	atomic_store(&h->head, RING_POS_BASE);
	atomic_store(&h->cursor, RING_POS_BASE);
	atomic_store(&h->magic, RING_MAGIC);
	m->r.hdr = h;
	m->r.data = m->mem + RING_HEADER_SIZE;
	m->r.capacity = cap;
	m->r.mask = cap - 1;
	m->r.max_message = h->max_message;
	m->r.max_record = ring_record_size(0, h->max_message);
	m->r.fd = -1;
	m->slot = ring_slot_claim(&m->r, 4242, 77);
	assert_int_equal(m->slot, 0);
}

static void
mem_ring_free(struct mem_ring *m)
{
	free(m->mem);
}

static void
put_n(struct mem_ring *m, int n, size_t size)
{
	static char body[8192];
	char key[32];

	for (int i = 0; i < n; i++) {
		int kl = snprintf(key, sizeof(key), "k/%d", i);
		assert_int_equal(ring_put(&m->r, (unsigned)m->slot, key,
		    (size_t)kl, body, size, 0), 0);
	}
}

static bool alive_answer;

static bool
scripted_alive(pid_t pid, uint64_t start_time)
{
	(void)pid;
	(void)start_time;
	return alive_answer;
}

static struct shmstat_env
env_at(uint64_t mono, uint64_t real)
{
	struct shmstat_env e = {
		.now_mono_ns = mono, .now_real_ns = real, .alive = scripted_alive,
	};
	return e;
}

static struct shmstat_snap snap;

static int
take(struct mem_ring *m)
{
	struct shmstat_env e = env_at(mono_ns(), realtime_ns());

	return shmstat_snapshot(&snap, "t", m->mem, m->len, &e);
}

/* Renders into a string the caller frees. */
static char *
render_json(const struct shmstat_snap *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	shmstat_render_json(f, s, NULL);
	fclose(f);
	return buf;
}

/* ------------------------------------------------------------ snapshot */

static void
snapshot_rejects_image_shorter_than_header(void **state)
{
	struct mem_ring m;
	struct shmstat_env e = env_at(1, 1);

	mem_ring_init(&m, CAP);
	assert_int_equal(shmstat_snapshot(&snap, "t", m.mem, RING_HEADER_SIZE - 1, &e),
	    -EBADMSG);
	assert_int_equal(shmstat_snapshot(&snap, "t", NULL, 0, &e), -EBADMSG);
	mem_ring_free(&m);
}

static void
snapshot_rejects_data_region_shorter_than_capacity(void **state)
{
	struct mem_ring m;
	struct shmstat_env e = env_at(1, 1);

	mem_ring_init(&m, CAP);
	assert_int_equal(shmstat_snapshot(&snap, "t", m.mem, m.len - 64, &e), -EBADMSG);
	mem_ring_free(&m);
}

static void
snapshot_rejects_bad_magic(void **state)
{
	struct mem_ring m;

	mem_ring_init(&m, CAP);
	atomic_store(&m.r.hdr->magic, 0x4141414141414141ull);
	assert_int_equal(take(&m), -EBADMSG);
	mem_ring_free(&m);
}

static void
snapshot_reports_eproto_with_version_for_newer_layout(void **state)
{
	struct mem_ring m;

	mem_ring_init(&m, CAP);
	m.r.hdr->layout_version = RING_LAYOUT_VERSION + 1;
	assert_int_equal(take(&m), -EPROTO);
	assert_int_equal(snap.layout_version, RING_LAYOUT_VERSION + 1);
	mem_ring_free(&m);
}

static void
snapshot_rejects_tail_behind_head_or_past_capacity(void **state)
{
	struct mem_ring m;

	mem_ring_init(&m, CAP);
	atomic_store(&m.r.hdr->tail, RING_POS_BASE - 64);
	assert_int_equal(take(&m), -EBADMSG);
	atomic_store(&m.r.hdr->tail, RING_POS_BASE + CAP + 64);
	assert_int_equal(take(&m), -EBADMSG);
	atomic_store(&m.r.hdr->tail, RING_POS_BASE + 3);
	assert_int_equal(take(&m), -EBADMSG);
	mem_ring_free(&m);
}

static void
snapshot_counts_committed_records_as_pending(void **state)
{
	struct mem_ring m;

	mem_ring_init(&m, CAP);
	put_n(&m, 5, 100);
	assert_int_equal(take(&m), 0);
	assert_int_equal(snap.pending, 5);
	assert_true(snap.pending_exact);
	assert_int_equal(snap.produced, 5);
	assert_int_equal(snap.used_bytes, 5 * ring_record_size(3, 100));
	assert_int_equal(snap.pending_bytes, snap.used_bytes);
	assert_int_equal(snap.capacity, CAP);
	mem_ring_free(&m);
}

static void
pending_counts_only_records_past_the_cursor(void **state)
{
	struct mem_ring m;

	mem_ring_init(&m, CAP);
	put_n(&m, 4, 100);
	/* The uploader has taken the first two but not released them. */
	atomic_store(&m.r.hdr->cursor, RING_POS_BASE + 2 * ring_record_size(3, 100));
	atomic_store(&m.r.hdr->in_flight, 2);
	assert_int_equal(take(&m), 0);
	assert_int_equal(snap.pending, 2);
	assert_int_equal(snap.in_flight, 2);
	assert_true(snap.pending_exact);
	assert_int_equal(snap.used_bytes, 4 * ring_record_size(3, 100));
	mem_ring_free(&m);
}

static void
pending_walk_crosses_wrap_padding_and_aborted_records(void **state)
{
	struct mem_ring m;
	struct ring_resv rv;
	uint64_t rec = ring_record_size(3, 1000);
	uint64_t n = CAP / rec;

	mem_ring_init(&m, CAP);
	put_n(&m, (int)n, 1000);
	/* Release all but the last record so the next put wraps with a pad. */
	uint64_t last = RING_POS_BASE + (n - 1) * rec;
	atomic_store(&m.r.hdr->head, last);
	atomic_store(&m.r.hdr->cursor, last);
	assert_int_equal(ring_reserve(&m.r, 0, "abc", 3, 10, 0, &rv), 0);
	ring_abort(&m.r, &rv);
	put_n(&m, 2, 1000);
	assert_int_equal(take(&m), 0);
	assert_int_equal(snap.pending, 3);
	assert_true(snap.pending_exact);
	mem_ring_free(&m);
}

static void
pending_walk_steps_over_a_record_still_being_written(void **state)
{
	struct mem_ring m;
	struct ring_resv rv;

	mem_ring_init(&m, CAP);
	put_n(&m, 1, 100);
	assert_int_equal(ring_reserve(&m.r, 0, "abc", 3, 500, 0, &rv), 0);
	put_n(&m, 2, 100);
	assert_int_equal(take(&m), 0);
	assert_int_equal(snap.pending, 3);
	assert_int_equal(snap.writing, 1);
	assert_true(snap.pending_exact);
	mem_ring_free(&m);
}

static void
pending_walk_marks_figure_inexact_on_corrupt_record(void **state)
{
	struct mem_ring m;

	mem_ring_init(&m, CAP);
	put_n(&m, 3, 100);
	/* Scribble on the second record's length: its header CRC fails. */
	struct ring_record *r2 = (struct ring_record *)(m.r.data + ring_record_size(3, 100));
	r2->len = 64 * 1000;
	assert_int_equal(take(&m), 0);
	assert_false(snap.pending_exact);
	assert_int_equal(snap.pending, 2);
	mem_ring_free(&m);
}

static void
pending_walk_stops_at_its_budget(void **state)
{
	struct mem_ring m;
	struct shmstat_env e = env_at(mono_ns(), realtime_ns());

	mem_ring_init(&m, CAP);
	put_n(&m, 10, 10);
	e.walk_budget = 4;
	assert_int_equal(shmstat_snapshot(&snap, "t", m.mem, m.len, &e), 0);
	assert_int_equal(snap.pending, 4);
	assert_false(snap.pending_exact);
	mem_ring_free(&m);
}

static void
pending_walk_falls_back_to_head_when_cursor_is_out_of_range(void **state)
{
	struct mem_ring m;

	mem_ring_init(&m, CAP);
	put_n(&m, 3, 10);
	atomic_store(&m.r.hdr->cursor, 12345);
	assert_int_equal(take(&m), 0);
	assert_int_equal(snap.pending, 3);
	assert_false(snap.pending_exact);
	mem_ring_free(&m);
}

static void
oldest_pending_age_comes_from_put_time_of_first_record(void **state)
{
	struct mem_ring m;
	struct shmstat_env e;

	mem_ring_init(&m, CAP);
	put_n(&m, 2, 10);
	struct ring_record *r1 = (struct ring_record *)m.r.data;
	e = env_at(r1->put_ns + 2500 * MS, 1);
	assert_int_equal(shmstat_snapshot(&snap, "t", m.mem, m.len, &e), 0);
	assert_true(snap.have_oldest);
	assert_int_equal(snap.oldest_pending_age_ms, 2500);
	/* A clock behind the record (another boot's image) is age 0. */
	e = env_at(1, 1);
	assert_int_equal(shmstat_snapshot(&snap, "t", m.mem, m.len, &e), 0);
	assert_int_equal(snap.oldest_pending_age_ms, 0);
	mem_ring_free(&m);
}

static void
producer_figures_are_per_owner_and_totals_per_ring(void **state)
{
	struct mem_ring m;
	struct ring_slot *s;

	mem_ring_init(&m, CAP);
	put_n(&m, 3, 10);
	s = &m.r.hdr->slots[0];
	atomic_store(&s->base_produced, 1);
	atomic_store(&s->dropped_full, 7);
	atomic_store(&s->base_dropped_full, 2);
	atomic_store(&m.r.hdr->slots[5].start_time, 9); /* released slot */
	atomic_store(&m.r.hdr->slots[5].produced, 4);
	alive_answer = true;
	assert_int_equal(take(&m), 0);
	assert_int_equal(snap.produced, 7);
	assert_int_equal(snap.dropped_full, 7);
	assert_int_equal(snap.nproducers, 2);
	assert_int_equal(snap.producers[0].pid, 4242);
	assert_true(snap.producers[0].alive);
	assert_int_equal(snap.producers[0].produced, 2);
	assert_int_equal(snap.producers[0].dropped_full, 5);
	assert_int_equal(snap.producers[1].slot, 5);
	assert_int_equal(snap.producers[1].pid, 0);
	assert_false(snap.producers[1].alive);
	mem_ring_free(&m);
}

static void
uploader_is_dead_when_its_process_is_gone(void **state)
{
	struct mem_ring m;
	struct shmstat_env e;

	mem_ring_init(&m, CAP);
	atomic_store(&m.r.hdr->uploader_pid, 999);
	atomic_store(&m.r.hdr->heartbeat_realtime_ns, 1000 * MS);
	e = env_at(1, 4000 * MS);
	alive_answer = false;
	assert_int_equal(shmstat_snapshot(&snap, "t", m.mem, m.len, &e), 0);
	assert_false(snap.uploader_alive);
	assert_true(snap.have_heartbeat);
	assert_int_equal(snap.heartbeat_age_ms, 3000);
	alive_answer = true;
	assert_int_equal(shmstat_snapshot(&snap, "t", m.mem, m.len, &e), 0);
	assert_true(snap.uploader_alive);
	/* No uploader ever: pid 0 is never asked about. */
	atomic_store(&m.r.hdr->uploader_pid, 0);
	assert_int_equal(shmstat_snapshot(&snap, "t", m.mem, m.len, &e), 0);
	assert_false(snap.uploader_alive);
	mem_ring_free(&m);
}

static void
last_error_without_nul_is_terminated_in_snapshot(void **state)
{
	struct mem_ring m;

	mem_ring_init(&m, CAP);
	memset(m.r.hdr->last_error, 'x', RING_LINE);
	assert_int_equal(take(&m), 0);
	assert_true(snap.have_last_error);
	assert_int_equal(strlen(snap.last_error), RING_LINE);
	mem_ring_free(&m);
}

static void
rates_are_zero_when_counters_go_backwards(void **state)
{
	struct shmstat_snap *a = calloc(2, sizeof(*a)), *b = a + 1;
	struct shmstat_rates r;

	a->produced = 100;
	b->produced = 300;
	a->uploaded = 50;
	b->uploaded = 10;
	b->produced_bytes = 4000;
	shmstat_rates(&r, a, b, 2.0);
	assert_true(r.valid);
	assert_true(r.put_s > 99.9 && r.put_s < 100.1);
	assert_true(r.upload_s == 0.0);
	assert_true(r.in_bytes_s > 1999.9 && r.in_bytes_s < 2000.1);
	free(a);
}

/* ------------------------------------------------------------- strings */

static char *
json_of(const char *s, size_t len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	shmstat_json_string(f, s, len);
	fclose(f);
	return buf;
}

static void
json_string_escapes_quotes_backslashes_and_controls(void **state)
{
	char *j = json_of("a\"b\\c\n\x01\x7f", 100);

	assert_string_equal(j, "\"a\\\"b\\\\c\\u000a\\u0001\\u007f\"");
	free(j);
}

static void
json_string_replaces_invalid_utf8_and_keeps_valid(void **state)
{
	/* é is valid; a lone continuation byte, an overlong '/', a surrogate
	 * and a truncated sequence at the end are not. */
	char *j = json_of("\xc3\xa9|\x80|\xc0\xaf|\xed\xa0\x80|\xe2\x82", 100);

	assert_string_equal(j, "\"\xc3\xa9|\\ufffd|\\ufffd\\ufffd|"
	    "\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"");
	free(j);
}

static void
json_string_escapes_js_line_separators(void **state)
{
	char *j = json_of("\xe2\x80\xa8", 100);

	assert_string_equal(j, "\"\\u2028\"");
	free(j);
}

static void
json_string_stops_at_length_without_nul(void **state)
{
	char raw[4] = { 'a', 'b', 'c', 'd' };
	char *j = json_of(raw, 3);

	assert_string_equal(j, "\"abc\"");
	free(j);
}

static void
printable_replaces_everything_outside_ascii(void **state)
{
	char out[16];

	assert_string_equal(shmstat_printable(out, sizeof(out), "a\x1b[2Jb\xc3\xa9", 100),
	    "a?[2Jb??");
	assert_string_equal(shmstat_printable(out, 4, "abcdef", 6), "abc");
}

/* ----------------------------------------------------------- renderers */

static void
json_has_every_contract_key(void **state)
{
	static const char *const keys[] = {
		"\"ring\":", "\"layout_version\":", "\"capacity_bytes\":",
		"\"used_bytes\":", "\"max_message_bytes\":", "\"produced\":",
		"\"dropped_full\":", "\"pending\":", "\"in_flight\":",
		"\"uploaded\":", "\"retried\":", "\"dead_lettered\":",
		"\"abandoned\":", "\"corrupt\":", "\"oldest_pending_age_ms\":",
		"\"uploader\":{\"pid\":", "\"alive\":", "\"epoch\":", "\"workers\":",
		"\"heartbeat_age_ms\":", "\"producers\":[{\"slot\":0,\"pid\":4242",
		"\"config_alarm\":", "\"last_error\":",
	};
	struct mem_ring m;
	char *j;

	mem_ring_init(&m, CAP);
	put_n(&m, 2, 10);
	assert_int_equal(take(&m), 0);
	j = render_json(&snap);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strstr(j, keys[i]) == NULL)
			fail_msg("missing %s in %s", keys[i], j);
	assert_non_null(strstr(j, "\"pending\":2,"));
	assert_non_null(strstr(j, "\"heartbeat_age_ms\":null"));
	free(j);
	mem_ring_free(&m);
}

static void
json_escapes_hostile_last_error(void **state)
{
	struct mem_ring m;
	char *j;

	mem_ring_init(&m, CAP);
	for (unsigned i = 0; i < RING_LINE; i++)
		m.r.hdr->last_error[i] = (char)(i * 37 + 1); /* never 0 */
	assert_int_equal(take(&m), 0);
	j = render_json(&snap);
	/* Nothing below 0x20 may appear raw inside the document. */
	for (const char *p = j; *p != '\n'; p++)
		assert_true((unsigned char)*p >= 0x20);
	free(j);
	mem_ring_free(&m);
}

static void
a_dead_uploader_is_never_shown_draining(void **state)
{
	struct mem_ring m;
	char *buf = NULL, *j;
	size_t len = 0;
	FILE *f;

	mem_ring_init(&m, CAP);
	atomic_store(&m.r.hdr->uploader_pid, 4243);
	atomic_store(&m.r.hdr->heartbeat_realtime_ns, realtime_ns());
	atomic_store(&m.r.hdr->uploader_flags, RING_UPLOADER_DRAINING);
	alive_answer = false;
	assert_int_equal(take(&m), 0);
	f = open_memstream(&buf, &len);
	shmstat_render_text(f, &snap);
	fclose(f);
	assert_non_null(strstr(buf, "DEAD"));
	assert_null(strstr(buf, "draining"));
	j = render_json(&snap);
	assert_non_null(strstr(j, "\"draining\":false"));
	free(j);
	free(buf);
	/* Alive and draining: shown. */
	alive_answer = true;
	assert_int_equal(take(&m), 0);
	j = render_json(&snap);
	assert_non_null(strstr(j, "\"draining\":true"));
	free(j);
	mem_ring_free(&m);
}

static void
text_shows_dead_uploader_alarm_and_producer_lines(void **state)
{
	struct mem_ring m;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	mem_ring_init(&m, CAP);
	put_n(&m, 1, 10);
	atomic_store(&m.r.hdr->uploader_pid, 31337);
	atomic_store(&m.r.hdr->uploader_flags, RING_UPLOADER_CONFIG_ALARM);
	snprintf(m.r.hdr->last_error, RING_LINE, "NoSuchBucket\x1b[31m");
	alive_answer = false;
	assert_int_equal(take(&m), 0);
	f = open_memstream(&buf, &len);
	shmstat_render_text(f, &snap);
	fclose(f);
	assert_non_null(strstr(buf, "pid 31337 DEAD"));
	assert_non_null(strstr(buf, "ALARM: configuration error"));
	assert_non_null(strstr(buf, "NoSuchBucket?[31m"));
	assert_non_null(strstr(buf, "4242"));
	assert_null(strchr(buf, '\x1b'));
	free(buf);
	mem_ring_free(&m);
}

static void
prometheus_counters_end_in_total_and_carry_ring_label(void **state)
{
	struct mem_ring m;
	char *buf = NULL, *line, *save;
	size_t len = 0;
	FILE *f;

	mem_ring_init(&m, CAP);
	put_n(&m, 1, 10);
	assert_int_equal(take(&m), 0);
	f = open_memstream(&buf, &len);
	shmstat_render_prometheus(f, &snap);
	fclose(f);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# TYPE ", 7) == 0) {
			const char *sp = strrchr(line, ' ');
			if (strcmp(sp, " counter") == 0)
				assert_non_null(strstr(line, "_total counter"));
		} else if (line[0] != '#') {
			assert_int_equal(strncmp(line, "s3ring_", 7), 0);
			assert_non_null(strstr(line, "{ring=\"t\""));
		}
	}
	free(buf);
	mem_ring_free(&m);
}

/* --------------------------------------------------------------- check */

static struct shmstat_snap *
healthy(void)
{
	static struct shmstat_snap s;

	memset(&s, 0, sizeof(s));
	snprintf(s.ring, sizeof(s.ring), "t");
	s.capacity = 1000;
	s.used_bytes = 100;
	s.uploader_pid = 10;
	s.uploader_alive = true;
	s.have_heartbeat = true;
	s.heartbeat_age_ms = 900;
	return &s;
}

static const struct shmstat_check_cfg check_cfg = {
	.full_warn_pct = 80, .heartbeat_max_ms = 10000, .writing_warn_ms = 10000,
};

/* A producer stopped between reserve and commit, read past by the
 * uploader (cursor beyond it): the snapshot finds it below the cursor by
 * its sealed header, with its age and slot, and --check names it. */
static void
snapshot_names_a_producer_stopped_mid_put(void **state)
{
	struct mem_ring m;
	struct ring_resv rv;
	struct shmstat_env e;
	char line[512];

	(void)state;
	mem_ring_init(&m, 65536);
	assert_int_equal(ring_reserve(&m.r, (unsigned)m.slot, "slow", 4, 100, 0, &rv), 0);
	put_n(&m, 3, 10);
	/* The uploader read past it. */
	atomic_store(&m.r.hdr->cursor, atomic_load(&m.r.hdr->tail));
	e = env_at(mono_ns() + 30ull * 1000 * 1000 * 1000, realtime_ns());
	assert_int_equal(shmstat_snapshot(&snap, "t", m.mem, m.len, &e), 0);
	assert_true(snap.have_oldest_writing);
	assert_true(snap.oldest_writing_age_ms >= 29000);
	assert_int_equal(snap.oldest_writing_slot, (unsigned)m.slot);
	assert_int_equal(snap.pending, 0);
	snap.uploader_pid = 10;
	snap.uploader_alive = true;
	snap.have_heartbeat = true;
	assert_int_equal(shmstat_check(&snap, &check_cfg, line, sizeof(line)), SHMSTAT_WARNING);
	assert_non_null(strstr(line, "producer slot 0 (pid 4242) has been writing one record"));
	mem_ring_free(&m);
}

static void
check_is_ok_for_a_healthy_ring(void **state)
{
	char line[512];

	assert_int_equal(shmstat_check(healthy(), &check_cfg, line, sizeof(line)),
	    SHMSTAT_OK);
	assert_int_equal(strncmp(line, "S3RING OK - ", 12), 0);
	assert_null(strchr(line, '\n'));
}

static void
check_warns_above_80_percent_full(void **state)
{
	struct shmstat_snap *s = healthy();
	char line[512];

	s->used_bytes = 800;
	assert_int_equal(shmstat_check(s, &check_cfg, line, sizeof(line)), SHMSTAT_OK);
	s->used_bytes = 801;
	assert_int_equal(shmstat_check(s, &check_cfg, line, sizeof(line)), SHMSTAT_WARNING);
	assert_non_null(strstr(line, "80% full"));
}

static void
check_warns_on_new_drops_only(void **state)
{
	struct shmstat_snap *s = healthy();
	struct shmstat_check_cfg c = check_cfg;
	char line[512];

	s->dropped_full = 5;
	assert_int_equal(shmstat_check(s, &c, line, sizeof(line)), SHMSTAT_WARNING);
	assert_non_null(strstr(line, "5 new drops"));
	c.drops_baseline = 5;
	assert_int_equal(shmstat_check(s, &c, line, sizeof(line)), SHMSTAT_OK);
}

static void
check_is_critical_when_uploader_dead_stale_or_alarmed(void **state)
{
	struct shmstat_snap *s = healthy();
	char line[512];

	s->uploader_alive = false;
	assert_int_equal(shmstat_check(s, &check_cfg, line, sizeof(line)), SHMSTAT_CRITICAL);
	assert_non_null(strstr(line, "is dead"));

	s = healthy();
	s->heartbeat_age_ms = 10001;
	assert_int_equal(shmstat_check(s, &check_cfg, line, sizeof(line)), SHMSTAT_CRITICAL);
	assert_non_null(strstr(line, "stale"));

	s = healthy();
	s->uploader_flags = RING_UPLOADER_CONFIG_ALARM;
	s->have_last_error = true;
	snprintf(s->last_error, sizeof(s->last_error), "AccessDenied\n");
	s->used_bytes = 900; /* critical wins over warning */
	assert_int_equal(shmstat_check(s, &check_cfg, line, sizeof(line)), SHMSTAT_CRITICAL);
	assert_non_null(strstr(line, "configuration error: AccessDenied?"));
	assert_null(strchr(line, '\n'));

	s = healthy();
	s->uploader_pid = 0;
	s->uploader_alive = false;
	assert_int_equal(shmstat_check(s, &check_cfg, line, sizeof(line)), SHMSTAT_CRITICAL);
}

static const struct shmstat_check_cfg aws_cfg = {
	.full_warn_pct = 80, .heartbeat_max_ms = 10000,
	.age_warn_ms = 60000, .age_crit_ms = 300000,
	.failing_warn_ms = 60000, .failing_crit_ms = 300000,
};

static void
check_warns_then_goes_critical_on_oldest_pending_age(void **state)
{
	struct shmstat_snap *s = healthy();
	char line[512];

	s->have_oldest = true;
	s->oldest_pending_age_ms = 59999;
	assert_int_equal(shmstat_check(s, &aws_cfg, line, sizeof(line)), SHMSTAT_OK);
	s->oldest_pending_age_ms = 60000;
	assert_int_equal(shmstat_check(s, &aws_cfg, line, sizeof(line)), SHMSTAT_WARNING);
	assert_non_null(strstr(line, "oldest pending message 1m00s old"));
	s->oldest_pending_age_ms = 300000;
	assert_int_equal(shmstat_check(s, &aws_cfg, line, sizeof(line)), SHMSTAT_CRITICAL);
	/* 0 turns a level off */
	struct shmstat_check_cfg off = aws_cfg;
	off.age_crit_ms = 0;
	assert_int_equal(shmstat_check(s, &off, line, sizeof(line)), SHMSTAT_WARNING);
}

static void
check_names_the_error_of_an_uploader_failing_too_long(void **state)
{
	struct shmstat_snap *s = healthy();
	char line[512];

	s->failing = true;
	s->failing_for_ms = 30000;
	s->have_last_error = true;
	snprintf(s->last_error, sizeof(s->last_error),
	    "Couldn't connect to server: Failed to connect to 127.0.0.1 port 9 after 0 ms");
	assert_int_equal(shmstat_check(s, &aws_cfg, line, sizeof(line)), SHMSTAT_OK);
	s->failing_for_ms = 61000;
	assert_int_equal(shmstat_check(s, &aws_cfg, line, sizeof(line)), SHMSTAT_WARNING);
	assert_non_null(strstr(line, "every upload has failed for 1m01s"));
	assert_non_null(strstr(line, "after 0 ms"));
	s->failing_for_ms = 300000;
	assert_int_equal(shmstat_check(s, &aws_cfg, line, sizeof(line)), SHMSTAT_CRITICAL);
}

static void
check_warns_on_dead_letters_since_the_last_check(void **state)
{
	struct shmstat_snap *s = healthy();
	struct shmstat_check_cfg c = aws_cfg;
	char line[512];

	s->dead_lettered = 3;
	c.dead_baseline = 3;
	assert_int_equal(shmstat_check(s, &c, line, sizeof(line)), SHMSTAT_OK);
	c.dead_baseline = 2;
	assert_int_equal(shmstat_check(s, &c, line, sizeof(line)), SHMSTAT_WARNING);
	assert_non_null(strstr(line, "1 new dead letter since the last check"));
	c.dead_baseline = 0;
	c.dead_crit = 3;
	assert_int_equal(shmstat_check(s, &c, line, sizeof(line)), SHMSTAT_CRITICAL);
	assert_non_null(strstr(line, "3 new dead letters"));
}

static void
check_cuts_a_long_error_between_words(void **state)
{
	struct shmstat_snap *s = healthy();
	char line[1024], *p, *bar;

	s->uploader_flags = RING_UPLOADER_CONFIG_ALARM;
	s->have_last_error = true;
	memset(s->last_error, 0, sizeof(s->last_error));
	snprintf(s->last_error, sizeof(s->last_error), "%s",
	    "configuration: PermanentRedirect (HTTP 301): the bucket is in region eu-west-1");
	assert_int_equal(shmstat_check(s, &aws_cfg, line, sizeof(line)), SHMSTAT_CRITICAL);
	assert_non_null(strstr(line, "the bucket is in region eu-west-1 |"));
	/* The longest error the ring holds (127 bytes) is named whole. */
	memset(s->last_error, 0, sizeof(s->last_error));
	for (p = s->last_error; p + 6 < s->last_error + RING_LINE - 1; p += 6)
		memcpy(p, "abcde ", 6);
	memset(p, 'z', (size_t)(s->last_error + RING_LINE - 1 - p));
	assert_int_equal(strlen(s->last_error), RING_LINE - 1);
	assert_int_equal(shmstat_check(s, &aws_cfg, line, sizeof(line)), SHMSTAT_CRITICAL);
	bar = strstr(line, s->last_error);
	assert_non_null(bar);
	assert_int_equal(strncmp(bar + RING_LINE - 1, " | ", 3), 0);
}

static void
prometheus_latency_histogram_is_cumulative_and_has_no_pid_label(void **state)
{
	struct mem_ring m;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	mem_ring_init(&m, CAP);
	m.r.hdr->upstats.lat_bucket[0] = 2;
	m.r.hdr->upstats.lat_bucket[3] = 5;
	m.r.hdr->upstats.lat_bucket[RING_LAT_BUCKETS - 1] = 1;
	m.r.hdr->upstats.lat_count = 8;
	m.r.hdr->upstats.lat_sum_us = 123456;
	m.r.hdr->upstats.errors[RING_ERR_THROTTLED] = 4;
	assert_int_equal(take(&m), 0);
	f = open_memstream(&buf, &len);
	shmstat_render_prometheus(f, &snap);
	fclose(f);
	assert_non_null(strstr(buf, "# TYPE s3ring_upload_latency_seconds histogram\n"));
	assert_non_null(strstr(buf, "s3ring_upload_latency_seconds_bucket{ring=\"t\",le=\"0.001\"} 2\n"));
	assert_non_null(strstr(buf, "s3ring_upload_latency_seconds_bucket{ring=\"t\",le=\"0.01\"} 7\n"));
	assert_non_null(strstr(buf, "s3ring_upload_latency_seconds_bucket{ring=\"t\",le=\"+Inf\"} 8\n"));
	assert_non_null(strstr(buf, "s3ring_upload_latency_seconds_count{ring=\"t\"} 8\n"));
	assert_non_null(strstr(buf, "s3ring_upload_latency_seconds_sum{ring=\"t\"} 0.123456\n"));
	assert_non_null(strstr(buf, "s3ring_upload_errors_total{ring=\"t\",class=\"throttled\"} 4\n"));
	assert_null(strstr(buf, "pid=\""));
	free(buf);
	mem_ring_free(&m);
}

/* ---------------------------------------------------------- batch mode */

#define NOW_REAL (UINT64_C(1700000000) * 1000 * MS)

enum out { OUT_TEXT, OUT_JSON, OUT_PROM };

/* Renders snap in one of the formats, into a string the caller frees. */
static char *
render_as(enum out how)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (how == OUT_TEXT)
		shmstat_render_text(f, &snap);
	else if (how == OUT_JSON)
		shmstat_render_json(f, &snap, NULL);
	else
		shmstat_render_prometheus(f, &snap);
	fclose(f);
	return buf;
}

/* Snapshots m at the wall-clock time NOW_REAL, so that ages are exact. */
static int
take_at_now_real(struct mem_ring *m)
{
	struct shmstat_env e = env_at(mono_ns(), NOW_REAL);

	return shmstat_snapshot(&snap, "t", m->mem, m->len, &e);
}

/* Fills batch rule i as the uploader would, oldest_age_ms before NOW_REAL
 * (0: nothing waiting), and counts it in batch_rules. */
static void
set_batch_rule(struct mem_ring *m, unsigned i, const char *prefix,
    uint64_t messages, uint64_t bytes, uint64_t objects, uint64_t uploaded,
    uint64_t stored, uint64_t oldest_age_ms, uint64_t alone)
{
	struct ring_upstats *us = &m->r.hdr->upstats;
	struct ring_batch_stats *b = &us->batch[i];

	snprintf(b->prefix, sizeof(b->prefix), "%s", prefix);
	atomic_store(&b->messages, messages);
	atomic_store(&b->bytes, bytes);
	atomic_store(&b->objects, objects);
	atomic_store(&b->uploaded_bytes, uploaded);
	atomic_store(&b->stored_bytes, stored);
	atomic_store(&b->oldest_realtime_ns, oldest_age_ms ? NOW_REAL - oldest_age_ms * MS : 0);
	atomic_store(&b->alone, alone);
	if (atomic_load(&us->batch_rules) < i + 1)
		atomic_store(&us->batch_rules, i + 1);
}

/* A ring whose uploader confirmed 15 batch objects of 120,000 messages,
 * and whose rule 0, logs/, has its oldest message waiting for 1.25 s. */
static void
mem_ring_with_a_logs_rule(struct mem_ring *m)
{
	mem_ring_init(m, CAP);
	atomic_store(&m->r.hdr->upstats.batch_objects, 15);
	atomic_store(&m->r.hdr->upstats.batch_messages, 120000);
	set_batch_rule(m, 0, "logs/", 100000, 9961472, 10, 9800000, 1000000, 1250, 0);
}

static void
batch_rules_are_listed_with_their_ratio_and_oldest_age(void **state)
{
	struct mem_ring m;
	char *t;

	mem_ring_with_a_logs_rule(&m);
	set_batch_rule(&m, 1, "metrics/", 20000, 4096, 5, 4096, 0, 0, 3);
	assert_int_equal(take_at_now_real(&m), 0);
	assert_int_equal(snap.batch_rules, 2);
	assert_true(snap.batch[0].prefix_ok);
	t = render_as(OUT_TEXT);
	assert_non_null(strstr(t, "\nbatch rules: 2, objects 15, messages 120000\n"));
	assert_non_null(strstr(t, "prefix             messages    bytes  objects   ratio  oldest  alone\n"));
	assert_non_null(strstr(t, "logs/                100000     9.5M       10    9.8x    1.2s      0\n"));
	/* Nothing stored yet and nothing waiting: no ratio and no age. */
	assert_non_null(strstr(t, "metrics/              20000     4.0K        5       -       -      3\n"));
	free(t);
	mem_ring_free(&m);
}

static void
json_lists_batch_rules_beside_the_concurrency_limit(void **state)
{
	struct mem_ring m;
	char *j;

	mem_ring_with_a_logs_rule(&m);
	set_batch_rule(&m, 1, "", 7, 700, 0, 0, 0, 0, 2);
	assert_int_equal(take_at_now_real(&m), 0);
	j = render_json(&snap);
	assert_non_null(strstr(j, "\"multipart_aborted\":0,\"batch\":{\"rules\":2,"
	    "\"objects\":15,\"messages\":120000,\"by_rule\":[{\"prefix\":\"logs/\","
	    "\"messages\":100000,\"bytes\":9961472,\"objects\":10,"
	    "\"uploaded_bytes\":9800000,\"stored_bytes\":1000000,"
	    "\"compression_ratio\":9.800,\"oldest_unflushed_age_s\":1.250,"
	    "\"alone\":0},{\"prefix\":\"\",\"messages\":7,\"bytes\":700,"
	    "\"objects\":0,\"uploaded_bytes\":0,\"stored_bytes\":0,"
	    "\"compression_ratio\":null,\"oldest_unflushed_age_s\":null,"
	    "\"alone\":2}]},\"flags\":"));
	free(j);
	mem_ring_free(&m);
}

static void
json_has_an_empty_batch_list_without_rules(void **state)
{
	struct mem_ring m;
	char *j, *t, *p;

	mem_ring_init(&m, CAP);
	/* A figure of a line not in use is never shown. */
	snprintf(m.r.hdr->upstats.batch[0].prefix, RING_BATCH_PREFIX, "stale/");
	assert_int_equal(take(&m), 0);
	j = render_json(&snap);
	assert_non_null(strstr(j, ",\"batch\":{\"rules\":0,\"objects\":0,"
	    "\"messages\":0,\"by_rule\":[]},"));
	assert_null(strstr(j, "stale/"));
	free(j);
	t = render_as(OUT_TEXT);
	assert_null(strstr(t, "batch"));
	free(t);
	p = render_as(OUT_PROM);
	assert_non_null(strstr(p, "# TYPE s3ring_batch_objects_total counter\n"
	    "s3ring_batch_objects_total{ring=\"t\"} 0\n"));
	assert_non_null(strstr(p, "s3ring_batch_messages_total{ring=\"t\"} 0\n"));
	assert_null(strstr(p, "batch_rule_"));
	free(p);
	mem_ring_free(&m);
}

static void
batch_prefix_without_nul_is_not_read_past_its_field(void **state)
{
	struct mem_ring m;
	struct ring_batch_stats *b;
	char want[RING_BATCH_PREFIX + 16], *t, *j;

	mem_ring_init(&m, CAP);
	set_batch_rule(&m, 0, "", 0x4141, 0, 0, 0, 0, 0, 0);
	b = &m.r.hdr->upstats.batch[0];
	memset(b->prefix, 'p', RING_BATCH_PREFIX);
	assert_int_equal(take_at_now_real(&m), 0);
	assert_false(snap.batch[0].prefix_ok);
	assert_int_equal(strlen(snap.batch[0].prefix), RING_BATCH_PREFIX);
	/* messages (0x4141, "AA" in memory) follows the field: it must not
	 * appear as part of the prefix. */
	memset(want, 'p', RING_BATCH_PREFIX);
	snprintf(want + RING_BATCH_PREFIX, sizeof(want) - RING_BATCH_PREFIX, " ");
	t = render_as(OUT_TEXT);
	assert_non_null(strstr(t, want));
	assert_null(strstr(t, "pA"));
	free(t);
	snprintf(want + RING_BATCH_PREFIX, sizeof(want) - RING_BATCH_PREFIX, "\",");
	j = render_json(&snap);
	assert_non_null(strstr(j, want));
	free(j);
	mem_ring_free(&m);
}

static void
batch_prefix_that_is_not_printable_utf8_is_shown_escaped(void **state)
{
	struct mem_ring m;
	char *t, *j;

	mem_ring_init(&m, CAP);
	set_batch_rule(&m, 0, "x\x1b[2J\xff/", 1, 1, 0, 0, 0, 0, 0);
	set_batch_rule(&m, 1, "caf\xc3\xa9/", 1, 1, 0, 0, 0, 0, 0);
	assert_int_equal(take_at_now_real(&m), 0);
	assert_false(snap.batch[0].prefix_ok);
	assert_true(snap.batch[1].prefix_ok);
	t = render_as(OUT_TEXT);
	assert_non_null(strstr(t, "\nx?[2J?/ "));
	assert_null(strchr(t, '\x1b'));
	/* Valid, printable UTF-8 is shown as it is. */
	assert_non_null(strstr(t, "\ncaf\xc3\xa9/ "));
	free(t);
	j = render_json(&snap);
	assert_non_null(strstr(j, "\"prefix\":\"x\\u001b[2J\\ufffd/\""));
	assert_non_null(strstr(j, "\"prefix\":\"caf\xc3\xa9/\""));
	free(j);
	mem_ring_free(&m);
}

static void
batch_rule_count_beyond_the_array_is_clamped(void **state)
{
	struct mem_ring m;
	struct ring_upstats *us;
	char *j, *p;
	size_t n = 0;

	mem_ring_init(&m, CAP);
	us = &m.r.hdr->upstats;
	for (unsigned i = 0; i < RING_BATCH_RULES; i++) {
		char prefix[16];
		snprintf(prefix, sizeof(prefix), "r%u/", i);
		set_batch_rule(&m, i, prefix, i, 0, 0, 0, 0, 0, 0);
	}
	/* What a 17th line would be: the reserved lines after the array. */
	snprintf((char *)us->reserved_, RING_BATCH_PREFIX, "beyond/");
	atomic_store(&us->batch_rules, UINT32_MAX);
	assert_int_equal(take_at_now_real(&m), 0);
	assert_int_equal(snap.batch_rules, RING_BATCH_RULES);
	j = render_json(&snap);
	assert_non_null(strstr(j, "\"batch\":{\"rules\":16,"));
	for (const char *q = j; (q = strstr(q, "{\"prefix\":")) != NULL; q++)
		n++;
	assert_int_equal(n, RING_BATCH_RULES);
	assert_non_null(strstr(j, "\"prefix\":\"r15/\""));
	assert_null(strstr(j, "beyond/"));
	free(j);
	p = render_as(OUT_PROM);
	assert_null(strstr(p, "beyond/"));
	free(p);
	atomic_store(&us->batch_rules, RING_BATCH_RULES + 1);
	assert_int_equal(take_at_now_real(&m), 0);
	assert_int_equal(snap.batch_rules, RING_BATCH_RULES);
	mem_ring_free(&m);
}

static void
prometheus_shows_batch_totals_and_every_rule_figure(void **state)
{
	struct mem_ring m;
	char *p;

	mem_ring_with_a_logs_rule(&m);
	set_batch_rule(&m, 1, "metrics/", 1, 2, 3, 4, 5, 0, 6);
	assert_int_equal(take_at_now_real(&m), 0);
	p = render_as(OUT_PROM);
	assert_non_null(strstr(p, "s3ring_batch_objects_total{ring=\"t\"} 15\n"));
	assert_non_null(strstr(p, "s3ring_batch_messages_total{ring=\"t\"} 120000\n"));
	assert_non_null(strstr(p, "# HELP s3ring_batch_rule_messages_total "));
	assert_non_null(strstr(p, "# TYPE s3ring_batch_rule_messages_total counter\n"
	    "s3ring_batch_rule_messages_total{ring=\"t\",prefix=\"logs/\"} 100000\n"
	    "s3ring_batch_rule_messages_total{ring=\"t\",prefix=\"metrics/\"} 1\n"));
	assert_non_null(strstr(p, "s3ring_batch_rule_bytes_total{ring=\"t\",prefix=\"logs/\"} 9961472\n"));
	assert_non_null(strstr(p, "s3ring_batch_rule_objects_total{ring=\"t\",prefix=\"logs/\"} 10\n"));
	assert_non_null(strstr(p, "s3ring_batch_rule_uploaded_bytes_total{ring=\"t\",prefix=\"logs/\"} 9800000\n"));
	assert_non_null(strstr(p, "s3ring_batch_rule_stored_bytes_total{ring=\"t\",prefix=\"logs/\"} 1000000\n"));
	assert_non_null(strstr(p, "s3ring_batch_rule_alone_total{ring=\"t\",prefix=\"logs/\"} 0\n"));
	assert_non_null(strstr(p, "s3ring_batch_rule_alone_total{ring=\"t\",prefix=\"metrics/\"} 6\n"));
	assert_non_null(strstr(p, "# TYPE s3ring_batch_rule_oldest_unflushed_age_seconds gauge\n"
	    "s3ring_batch_rule_oldest_unflushed_age_seconds{ring=\"t\",prefix=\"logs/\"} 1.250\n"
	    "s3ring_batch_rule_oldest_unflushed_age_seconds{ring=\"t\",prefix=\"metrics/\"} 0.000\n"));
	assert_non_null(strstr(p, "s3ring_batch_rule_stored_bytes_total{ring=\"t\",prefix=\"metrics/\"} 5\n"));
	free(p);
	mem_ring_free(&m);
}

static void
prometheus_escapes_a_batch_prefix_label(void **state)
{
	struct mem_ring m;
	char *p;

	mem_ring_init(&m, CAP);
	set_batch_rule(&m, 0, "a\"b\\c\nd\x01\xff\xc3\xa9", 9, 0, 0, 0, 0, 0, 0);
	assert_int_equal(take_at_now_real(&m), 0);
	p = render_as(OUT_PROM);
	/* The format's three escapes; other controls and invalid bytes as
	 * '?', valid UTF-8 kept. */
	assert_non_null(strstr(p, "s3ring_batch_rule_messages_total{ring=\"t\","
	    "prefix=\"a\\\"b\\\\c\\nd??\xc3\xa9\"} 9\n"));
	assert_null(strchr(p, '\x01'));
	free(p);
	mem_ring_free(&m);
}

static void
prometheus_never_repeats_a_series_for_a_repeated_batch_prefix(void **state)
{
	struct mem_ring m;
	char *p;
	const char *q;
	size_t n = 0;

	mem_ring_init(&m, CAP);
	set_batch_rule(&m, 0, "dup/", 1, 0, 0, 0, 0, 0, 0);
	set_batch_rule(&m, 1, "dup/", 2, 0, 0, 0, 0, 0, 0);
	set_batch_rule(&m, 2, "other/", 3, 0, 0, 0, 0, 0, 0);
	assert_int_equal(take_at_now_real(&m), 0);
	p = render_as(OUT_PROM);
	for (q = p; (q = strstr(q, "s3ring_batch_rule_messages_total{")) != NULL; q++)
		n++;
	assert_int_equal(n, 2);
	assert_non_null(strstr(p, "s3ring_batch_rule_messages_total{ring=\"t\",prefix=\"dup/\"} 1\n"));
	assert_non_null(strstr(p, "s3ring_batch_rule_messages_total{ring=\"t\",prefix=\"other/\"} 3\n"));
	free(p);
	mem_ring_free(&m);
}

/* -------------------------------------------------------------- helper */

static void
helper_usage(void)
{
	fprintf(stderr,
	    "usage: test_shmstat ring create NAME [MODE]        1 MiB ring\n"
	    "       test_shmstat ring put NAME N SIZE [PID]     N puts (slot owned by PID)\n"
	    "       test_shmstat ring fill NAME PERCENT         4 KiB puts up to PERCENT\n"
	    "       test_shmstat ring drop NAME N               N puts refused as full\n"
	    "       test_shmstat ring uploader NAME PID AGE_S [dead]\n"
	    "       test_shmstat ring alarm NAME TEXT|hostile\n"
	    "       test_shmstat ring counter NAME FIELD VALUE\n"
	    "       test_shmstat ring batch NAME PREFIX|hostile MESSAGES BYTES OBJECTS UPLOADED STORED OLDEST_MS ALONE\n"
	    "                                                   one more batch rule\n"
	    "       test_shmstat ring seeds DIR                 fuzz seeds (64 KiB images)\n");
}

static int
helper_slot(struct ring *r, const char *pid_arg)
{
	pid_t pid = pid_arg ? (pid_t)strtol(pid_arg, NULL, 10) : getpid();

	return ring_slot_claim(r, pid, proc_start_time(pid));
}

static int
helper(int argc, char **argv)
{
	static char body[1 << 17];
	struct ring r;
	struct ring_config cfg = { .capacity = 1u << 20, .gid = (gid_t)-1 };
	const char *cmd, *name;
	int rc, slot;

	if (argc < 4) {
		helper_usage();
		return 64;
	}
	cmd = argv[2];
	name = argv[3];
	if (strcmp(cmd, "create") == 0) {
		cfg.mode = argc > 4 ? (mode_t)strtol(argv[4], NULL, 8) : 0600;
		rc = ring_open(&r, name, RING_OPEN_CREATE, &cfg);
	} else {
		rc = ring_open(&r, name, 0, NULL);
	}
	if (rc < 0) {
		fprintf(stderr, "test_shmstat: ring %s: %s\n", name, strerror(-rc));
		return 1;
	}
	struct ring_header *h = r.hdr;
	rc = 0;
	if (strcmp(cmd, "create") == 0) {
		/* done */
	} else if (strcmp(cmd, "put") == 0 && argc >= 6) {
		long n = strtol(argv[4], NULL, 10);
		size_t size = (size_t)strtoul(argv[5], NULL, 10);
		if ((slot = helper_slot(&r, argc > 6 ? argv[6] : NULL)) < 0 ||
		    size > sizeof(body))
			rc = -EINVAL;
		for (long i = 0; rc == 0 && i < n; i++) {
			char key[32];
			int kl = snprintf(key, sizeof(key), "test/%ld", i);
			rc = ring_put(&r, (unsigned)slot, key, (size_t)kl, body, size, 0);
		}
	} else if (strcmp(cmd, "fill") == 0 && argc >= 5) {
		uint64_t pct = strtoul(argv[4], NULL, 10);
		uint64_t need = ring_record_size(8, 4096);
		if ((slot = helper_slot(&r, NULL)) < 0)
			rc = slot;
		while (rc == 0) {
			uint64_t used = atomic_load(&h->tail) - atomic_load(&h->head);
			if (used * 100 >= pct * r.capacity || used + 2 * need > r.capacity)
				break;
			rc = ring_put(&r, (unsigned)slot, "fill/key", 8, body, 4096, 0);
		}
	} else if (strcmp(cmd, "drop") == 0 && argc >= 5) {
		long n = strtol(argv[4], NULL, 10), dropped = 0;
		if ((slot = helper_slot(&r, NULL)) < 0)
			rc = slot;
		while (rc == 0 && dropped < n) {
			rc = ring_put(&r, (unsigned)slot, "drop/key", 8, body,
			    r.max_message - 8, 0);
			if (rc == -EAGAIN) {
				dropped++;
				rc = 0;
			}
		}
	} else if (strcmp(cmd, "uploader") == 0 && argc >= 6) {
		pid_t pid = (pid_t)strtol(argv[4], NULL, 10);
		uint64_t age = strtoul(argv[5], NULL, 10);
		uint64_t st = proc_start_time(pid);
		if (argc > 6 && strcmp(argv[6], "dead") == 0)
			st += 12345; /* the pid now names another process */
		atomic_store(&h->uploader_pid, (uint32_t)pid);
		atomic_store(&h->uploader_start_time, st);
		atomic_store(&h->uploader_epoch, 3);
		atomic_store(&h->uploader_workers, 4);
		atomic_store(&h->heartbeat_realtime_ns, realtime_ns() - age * 1000 * MS);
	} else if (strcmp(cmd, "alarm") == 0 && argc >= 5) {
		if (strcmp(argv[4], "hostile") == 0) {
			/* Quotes, backslashes, controls, invalid UTF-8, a
			 * surrogate, U+2028, and no NUL at all. */
			static const char pat[] = "\"\\\n\r\t\x01\x1b[0m\xff\xfe\xc3"
			    "\xed\xa0\x80\xe2\x80\xa8</script>\x7f\xc3\xa9";
			for (unsigned i = 0; i < RING_LINE; i++)
				h->last_error[i] = pat[i % (sizeof(pat) - 1)];
		} else {
			snprintf(h->last_error, RING_LINE, "%s", argv[4]);
		}
		atomic_store(&h->last_error_realtime_ns, realtime_ns());
		atomic_fetch_or(&h->uploader_flags, RING_UPLOADER_CONFIG_ALARM);
		atomic_fetch_add(&h->config_errors, 1);
	} else if (strcmp(cmd, "batch") == 0 && argc >= 12) {
		/* The next free rule line, as the uploader fills them; the
		 * totals grow by the rule's figures. */
		struct ring_upstats *us = &h->upstats;
		uint32_t i = atomic_load(&us->batch_rules);
		struct ring_batch_stats *b = &us->batch[i < RING_BATCH_RULES ? i : 0];
		uint64_t v[8];
		for (unsigned k = 0; k < 8; k++)
			v[k] = strtoull(argv[4 + k], NULL, 10);
		if (i >= RING_BATCH_RULES)
			rc = -ENOSPC;
		else if (strcmp(argv[4], "hostile") == 0)
			/* Quotes, a backslash, a newline, an escape sequence,
			 * invalid UTF-8, and no NUL at all. */
			for (unsigned k = 0; k < RING_BATCH_PREFIX; k++)
				b->prefix[k] = "h\"\\\n\x1b[0m\xff/"[k % 10];
		else
			snprintf(b->prefix, sizeof(b->prefix), "%s", argv[4]);
		if (rc == 0) {
			atomic_store(&b->messages, v[1]);
			atomic_store(&b->bytes, v[2]);
			atomic_store(&b->objects, v[3]);
			atomic_store(&b->uploaded_bytes, v[4]);
			atomic_store(&b->stored_bytes, v[5]);
			atomic_store(&b->oldest_realtime_ns, v[6] ? realtime_ns() - v[6] * MS : 0);
			atomic_store(&b->alone, v[7]);
			atomic_fetch_add(&us->batch_objects, v[3]);
			atomic_fetch_add(&us->batch_messages, v[1]);
			atomic_store(&us->batch_rules, i + 1);
		}
	} else if (strcmp(cmd, "counter") == 0 && argc >= 6) {
		static const struct { const char *n; size_t off; } f[] = {
			{ "uploaded", offsetof(struct ring_header, uploaded) },
			{ "uploaded_bytes", offsetof(struct ring_header, uploaded_bytes) },
			{ "retried", offsetof(struct ring_header, retried) },
			{ "dead_lettered", offsetof(struct ring_header, dead_lettered) },
			{ "in_flight", offsetof(struct ring_header, in_flight) },
			{ "abandoned", offsetof(struct ring_header, abandoned) },
			{ "corrupt", offsetof(struct ring_header, corrupt) },
		};
		rc = -EINVAL;
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			if (strcmp(argv[4], f[i].n) == 0) {
				atomic_store((_Atomic uint64_t *)((uint8_t *)h + f[i].off),
				    strtoull(argv[5], NULL, 10));
				rc = 0;
			}
	} else {
		helper_usage();
		rc = -EINVAL;
	}
	ring_close(&r);
	if (rc < 0) {
		fprintf(stderr, "test_shmstat: ring %s %s: %s\n", cmd, name, strerror(-rc));
		return 1;
	}
	return 0;
}

/* Writes m as a seed for tests/fuzz/fuzz_shmstat.c: mode byte 0 (the image
 * is used as it is), then the image without its trailing zeroes, which the
 * harness puts back. */
static int
write_seed(const char *dir, const char *name, const struct mem_ring *m)
{
	char path[4096];
	size_t len = m->len;
	FILE *f;
	int rc = 0;

	while (len > 0 && m->mem[len - 1] == 0)
		len--;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	if (fputc(0, f) == EOF || fwrite(m->mem, 1, len, f) != len)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* Real ring images in a few states, made with the ring code itself. */
static int
seeds(const char *dir)
{
	struct mem_ring m;
	struct ring_resv rv;
	int rc = 0;

	mem_ring_init(&m, CAP);
	atomic_store(&m.r.hdr->uploader_pid, 1);
	atomic_store(&m.r.hdr->heartbeat_realtime_ns, 5);
	rc |= write_seed(dir, "empty", &m);
	put_n(&m, 20, 300);
	atomic_store(&m.r.hdr->cursor, RING_POS_BASE + 5 * ring_record_size(3, 300));
	atomic_store(&m.r.hdr->in_flight, 5);
	atomic_store(&m.r.hdr->uploaded, 100);
	rc |= write_seed(dir, "records", &m);
	mem_ring_free(&m);

	/* Wrapped, with a pad, an aborted record, one being written and a
	 * released slot. */
	mem_ring_init(&m, CAP);
	put_n(&m, 53, 1100);
	uint64_t keep = RING_POS_BASE + 48 * ring_record_size(3, 1100);
	atomic_store(&m.r.hdr->head, keep);
	atomic_store(&m.r.hdr->cursor, keep);
	if (ring_reserve(&m.r, 0, "abc", 3, 10, 0, &rv) == 0)
		ring_abort(&m.r, &rv);
	put_n(&m, 3, 1100);
	if (ring_reserve(&m.r, 0, "abc", 3, 200, 0, &rv) != 0)
		rc = -1;
	put_n(&m, 1, 10);
	ring_slot_release(&m.r, 0);
	rc |= write_seed(dir, "wrapped", &m);
	mem_ring_free(&m);

	/* Configuration alarm, a last_error without NUL, a corrupt record. */
	mem_ring_init(&m, CAP);
	put_n(&m, 4, 64);
	((struct ring_record *)m.r.data)->body_crc ^= 1;
	((struct ring_record *)(m.r.data + ring_record_size(3, 64)))->len = 4096;
	atomic_store(&m.r.hdr->uploader_flags, RING_UPLOADER_CONFIG_ALARM);
	for (unsigned i = 0; i < RING_LINE; i++)
		m.r.hdr->last_error[i] = (char)(0x80 + i);
	atomic_store(&m.r.hdr->last_error_realtime_ns, 3);
	rc |= write_seed(dir, "alarm", &m);
	mem_ring_free(&m);

	/* Batch rules: a plain one, one with quotes, a newline and invalid
	 * UTF-8, one without a NUL, and more rules claimed than exist. */
	mem_ring_with_a_logs_rule(&m);
	set_batch_rule(&m, 1, "q\"\\\n\xff/", 3, 300, 0, 0, 0, 0, 1);
	set_batch_rule(&m, 2, "", 1, 1, 1, 1, 1, 0, 0);
	memset(m.r.hdr->upstats.batch[2].prefix, 'p', RING_BATCH_PREFIX);
	atomic_store(&m.r.hdr->upstats.batch_rules, RING_BATCH_RULES + 3);
	rc |= write_seed(dir, "batch", &m);
	mem_ring_free(&m);
	if (rc != 0)
		fprintf(stderr, "test_shmstat: writing seeds to %s failed\n", dir);
	return rc != 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(snapshot_rejects_image_shorter_than_header),
		cmocka_unit_test(snapshot_rejects_data_region_shorter_than_capacity),
		cmocka_unit_test(snapshot_rejects_bad_magic),
		cmocka_unit_test(snapshot_reports_eproto_with_version_for_newer_layout),
		cmocka_unit_test(snapshot_rejects_tail_behind_head_or_past_capacity),
		cmocka_unit_test(snapshot_counts_committed_records_as_pending),
		cmocka_unit_test(pending_counts_only_records_past_the_cursor),
		cmocka_unit_test(pending_walk_crosses_wrap_padding_and_aborted_records),
		cmocka_unit_test(pending_walk_steps_over_a_record_still_being_written),
		cmocka_unit_test(pending_walk_marks_figure_inexact_on_corrupt_record),
		cmocka_unit_test(pending_walk_stops_at_its_budget),
		cmocka_unit_test(pending_walk_falls_back_to_head_when_cursor_is_out_of_range),
		cmocka_unit_test(oldest_pending_age_comes_from_put_time_of_first_record),
		cmocka_unit_test(producer_figures_are_per_owner_and_totals_per_ring),
		cmocka_unit_test(uploader_is_dead_when_its_process_is_gone),
		cmocka_unit_test(last_error_without_nul_is_terminated_in_snapshot),
		cmocka_unit_test(rates_are_zero_when_counters_go_backwards),
		cmocka_unit_test(json_string_escapes_quotes_backslashes_and_controls),
		cmocka_unit_test(json_string_replaces_invalid_utf8_and_keeps_valid),
		cmocka_unit_test(json_string_escapes_js_line_separators),
		cmocka_unit_test(json_string_stops_at_length_without_nul),
		cmocka_unit_test(printable_replaces_everything_outside_ascii),
		cmocka_unit_test(json_has_every_contract_key),
		cmocka_unit_test(json_escapes_hostile_last_error),
		cmocka_unit_test(text_shows_dead_uploader_alarm_and_producer_lines),
		cmocka_unit_test(prometheus_counters_end_in_total_and_carry_ring_label),
		cmocka_unit_test(snapshot_names_a_producer_stopped_mid_put),
		cmocka_unit_test(check_is_ok_for_a_healthy_ring),
		cmocka_unit_test(check_warns_above_80_percent_full),
		cmocka_unit_test(check_warns_on_new_drops_only),
		cmocka_unit_test(check_is_critical_when_uploader_dead_stale_or_alarmed),
		cmocka_unit_test(a_dead_uploader_is_never_shown_draining),
		cmocka_unit_test(check_warns_then_goes_critical_on_oldest_pending_age),
		cmocka_unit_test(check_names_the_error_of_an_uploader_failing_too_long),
		cmocka_unit_test(check_warns_on_dead_letters_since_the_last_check),
		cmocka_unit_test(check_cuts_a_long_error_between_words),
		cmocka_unit_test(prometheus_latency_histogram_is_cumulative_and_has_no_pid_label),
		cmocka_unit_test(batch_rules_are_listed_with_their_ratio_and_oldest_age),
		cmocka_unit_test(json_lists_batch_rules_beside_the_concurrency_limit),
		cmocka_unit_test(json_has_an_empty_batch_list_without_rules),
		cmocka_unit_test(batch_prefix_without_nul_is_not_read_past_its_field),
		cmocka_unit_test(batch_prefix_that_is_not_printable_utf8_is_shown_escaped),
		cmocka_unit_test(batch_rule_count_beyond_the_array_is_clamped),
		cmocka_unit_test(prometheus_shows_batch_totals_and_every_rule_figure),
		cmocka_unit_test(prometheus_escapes_a_batch_prefix_label),
		cmocka_unit_test(prometheus_never_repeats_a_series_for_a_repeated_batch_prefix),
	};

	if (argc > 2 && strcmp(argv[1], "ring") == 0 && strcmp(argv[2], "seeds") == 0)
		return seeds(argc > 3 ? argv[3] : ".");
	if (argc > 1 && strcmp(argv[1], "ring") == 0)
		return helper(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
