/* test_futex.c -- tests for common/futex.c: bounded, process-shared waits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "futex.h"

#define MS (1000ull * 1000)

static void
wait_returns_eagain_when_the_word_already_changed(void **state)
{
	_Atomic uint32_t w = 5;

	(void)state;
	assert_int_equal(futex_wait(&w, 4, mono_ns() + 1000 * MS), -EAGAIN);
}

static void
wait_returns_etimedout_at_the_deadline(void **state)
{
	_Atomic uint32_t w = 0;
	uint64_t t0 = mono_ns();

	(void)state;
	assert_int_equal(futex_wait(&w, 0, t0 + 20 * MS), -ETIMEDOUT);
	assert_true(mono_ns() - t0 >= 20 * MS);
	assert_int_equal(futex_wait(&w, 0, t0), -ETIMEDOUT); /* already past */
}

static void
wait_never_sleeps_longer_than_the_bound(void **state)
{
	_Atomic uint32_t w = 0;
	uint64_t t0 = mono_ns();

	(void)state;
	/* Asked for an hour, it comes back after about 50 ms. */
	assert_int_equal(futex_wait(&w, 0, t0 + 3600ull * 1000 * MS), -ETIMEDOUT);
	assert_true(mono_ns() - t0 >= FUTEX_MAX_WAIT_NS);
	assert_true(mono_ns() - t0 < 40 * FUTEX_MAX_WAIT_NS);
}

/* The word lives in MAP_SHARED memory and the waker is another process: a
 * FUTEX_PRIVATE_FLAG wait would never see this wake. */
static void
wake_from_another_process_ends_the_wait(void **state)
{
	_Atomic uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int woken = 0, st;
	pid_t kid;

	(void)state;
	assert_true(w != MAP_FAILED);
	atomic_store(&w[1], 0);
	kid = fork();
	if (kid == 0) {
		atomic_store(&w[1], 1); /* ready */
		int rc = futex_wait(&w[0], 0, mono_ns() + 10000 * MS);
		(void)rc;
		_exit(atomic_load(&w[0]) == 1 ? 0 : 1);
	}
	while (atomic_load(&w[1]) == 0)
		usleep(100);
	usleep(10000);
	atomic_store(&w[0], 1);
	for (int i = 0; i < 100 && woken == 0; i++) {
		woken = futex_wake(&w[0], 1);
		usleep(1000);
	}
	assert_int_equal(woken, 1);
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	munmap((void *)w, 4096);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wait_returns_eagain_when_the_word_already_changed),
		cmocka_unit_test(wait_returns_etimedout_at_the_deadline),
		cmocka_unit_test(wait_never_sleeps_longer_than_the_bound),
		cmocka_unit_test(wake_from_another_process_ends_the_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
