/* test_batch_worker.c -- tests uploader/batch_worker.c: jobs compress on the
 * thread exactly as the loop would, in order; the wake comes after each
 * job; waiting and freeing see every job through; a failure is the job's
 * result. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "batch_codec.h"
#include "batch_worker.h"

#define CHUNK (128u << 10)
#define NCHUNK 24

static _Atomic unsigned wakes;

static void
count_wake(void *arg)
{
	atomic_fetch_add((_Atomic unsigned *)arg, 1);
}

/* Text that compresses, different in every chunk. */
static uint8_t *
make_input(size_t n)
{
	uint8_t *p = malloc(n);
	uint64_t x = 88172645463325252ull;

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[i] = (i % 97 == 96) ? '\n' : (uint8_t)('a' + (x % 7));
	}
	return p;
}

static void
unzstd_equals(const uint8_t *z, size_t zlen, const uint8_t *want, size_t n)
{
	uint8_t *got = malloc(n + 1);
	size_t r;

	assert_non_null(got);
	r = ZSTD_decompress(got, n + 1, z, zlen);
	assert_false(ZSTD_isError(r));
	assert_int_equal(r, n);
	assert_memory_equal(got, want, n);
	free(got);
}

static void
jobs_compress_in_order_as_the_loop_would(void **state)
{
	size_t n = (size_t)NCHUNK * CHUNK;
	uint8_t *in = make_input(n);
	struct batch_codec *loop = batch_codec_new(BATCH_COMP_ZSTD, 0);
	struct batch_codec *thr = batch_codec_new(BATCH_COMP_ZSTD, 0);
	size_t cap = n + (1u << 20);
	struct batch_out a = { malloc(cap), 0, cap }, b = { malloc(cap), 0, cap };
	struct batch_job jobs[NCHUNK];
	struct batch_worker *w;

	assert_non_null(a.buf);
	assert_non_null(b.buf);
	atomic_store(&wakes, 0);
	w = batch_worker_new(count_wake, (void *)&wakes);
	assert_non_null(w);
	/* Every job queued at once: the thread takes them in order. */
	for (unsigned i = 0; i < NCHUNK; i++) {
		jobs[i] = (struct batch_job){ .codec = thr, .in = in + (size_t)i * CHUNK,
		    .n = CHUNK, .end = i == NCHUNK - 1, .out = &b };
		batch_worker_submit(w, &jobs[i]);
	}
	for (unsigned i = 0; i < NCHUNK; i++)
		assert_int_equal(batch_codec_write(loop, in + (size_t)i * CHUNK, CHUNK, &a), 0);
	assert_int_equal(batch_codec_end(loop, &a), 0);
	batch_job_wait(w, &jobs[NCHUNK - 1]);
	for (unsigned i = 0; i < NCHUNK; i++) {
		assert_true(batch_job_done(&jobs[i]));
		assert_int_equal(jobs[i].rc, 0);
	}
	/* The same codec, the same bytes fed in the same pieces. */
	assert_int_equal(b.len, a.len);
	assert_memory_equal(b.buf, a.buf, a.len);
	unzstd_equals(b.buf, b.len, in, n);
	batch_worker_free(w);
	assert_int_equal(atomic_load(&wakes), NCHUNK);
	batch_codec_free(loop);
	batch_codec_free(thr);
	free(a.buf);
	free(b.buf);
	free(in);
}

static void
free_runs_the_jobs_still_queued(void **state)
{
	uint8_t *in = make_input(4 * CHUNK);
	struct batch_codec *c[4];
	struct batch_out out[4];
	struct batch_job jobs[4];
	struct batch_worker *w = batch_worker_new(NULL, NULL);

	assert_non_null(w);
	for (unsigned i = 0; i < 4; i++) {
		c[i] = batch_codec_new(BATCH_COMP_ZSTD, 0);
		assert_non_null(c[i]);
		out[i] = (struct batch_out){ malloc(2 * CHUNK), 0, 2 * CHUNK };
		jobs[i] = (struct batch_job){ .codec = c[i], .in = in + (size_t)i * CHUNK,
		    .n = CHUNK, .end = true, .out = &out[i] };
		batch_worker_submit(w, &jobs[i]);
	}
	batch_worker_free(w);
	for (unsigned i = 0; i < 4; i++) {
		assert_true(batch_job_done(&jobs[i]));
		assert_int_equal(jobs[i].rc, 0);
		unzstd_equals(out[i].buf, out[i].len, in + (size_t)i * CHUNK, CHUNK);
		batch_codec_free(c[i]);
		free(out[i].buf);
	}
	free(in);
}

static void
a_buffer_short_of_the_bound_fails_the_job_with_enobufs(void **state)
{
	uint8_t *in = make_input(CHUNK);
	struct batch_codec *c = batch_codec_new(BATCH_COMP_GZIP, 0);
	uint8_t small[64];
	struct batch_out out = { small, 0, sizeof(small) };
	struct batch_job job = { .codec = c, .in = in, .n = CHUNK, .out = &out };
	struct batch_worker *w = batch_worker_new(NULL, NULL);

	assert_non_null(w);
	batch_worker_submit(w, &job);
	batch_job_wait(w, &job);
	assert_int_equal(job.rc, -ENOBUFS);
	assert_int_equal(out.len, 0);
	/* The codec is still usable: the refusal fed it nothing. */
	out = (struct batch_out){ malloc(2 * CHUNK), 0, 2 * CHUNK };
	assert_non_null(out.buf);
	job = (struct batch_job){ .codec = c, .in = in, .n = CHUNK, .end = true, .out = &out };
	batch_worker_submit(w, &job);
	batch_job_wait(w, &job);
	assert_int_equal(job.rc, 0);
	assert_true(out.len > 0 && out.len < CHUNK);
	batch_worker_free(w);
	batch_codec_free(c);
	free(out.buf);
	free(in);
}

static void
free_of_null_is_ignored(void **state)
{
	batch_worker_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jobs_compress_in_order_as_the_loop_would),
		cmocka_unit_test(free_runs_the_jobs_still_queued),
		cmocka_unit_test(a_buffer_short_of_the_bound_fails_the_job_with_enobufs),
		cmocka_unit_test(free_of_null_is_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
