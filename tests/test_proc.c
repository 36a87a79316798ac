/* test_proc.c -- tests for common/proc.c: liveness by pid and start time. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

static void
self_is_alive_with_its_own_start_time(void **state)
{
	uint64_t st = proc_start_time(getpid());

	(void)state;
	assert_true(st > 0);
	assert_true(proc_alive(getpid(), st));
	assert_true(proc_alive(getpid(), 0));
}

static void
another_start_time_means_another_process(void **state)
{
	(void)state;
	/* The same pid with a different start time is a reused pid. */
	assert_false(proc_alive(getpid(), proc_start_time(getpid()) + 1));
}

static void
exited_and_zombie_processes_are_dead(void **state)
{
	pid_t kid = fork();
	int st;

	(void)state;
	if (kid == 0)
		_exit(0);
	/* A zombie until reaped: WNOWAIT waits for that without reaping. */
	siginfo_t si;
	assert_int_equal(waitid(P_PID, (id_t)kid, &si, WEXITED | WNOWAIT), 0);
	assert_false(proc_alive(kid, 0));
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_false(proc_alive(kid, 0));
	assert_int_equal(proc_start_time(kid), 0);
	assert_false(proc_alive(0, 0));
	assert_false(proc_alive(-1, 0));
}

static void *
linger(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

/* A process whose main thread called pthread_exit() shows 'Z' in /proc
 * while its other threads run: it is alive. */
static void
process_whose_main_thread_exited_is_alive(void **state)
{
	pid_t kid = fork();
	int st;

	(void)state;
	if (kid == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, linger, NULL) != 0)
			_exit(1);
		pthread_exit(NULL);
	}
	usleep(100000);
	assert_true(proc_alive(kid, 0));
	kill(kid, SIGKILL);
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_false(proc_alive(kid, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(self_is_alive_with_its_own_start_time),
		cmocka_unit_test(another_start_time_means_another_process),
		cmocka_unit_test(exited_and_zombie_processes_are_dead),
		cmocka_unit_test(process_whose_main_thread_exited_is_alive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
