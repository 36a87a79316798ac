/* futex.c -- process-shared futex wait/wake with absolute, bounded deadlines.
 *
 * Every wait uses FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC deadline,
 * so a wait interrupted and restarted never sleeps longer than asked, and the
 * deadline is clamped to FUTEX_MAX_WAIT_NS from now: the ring's protocol
 * tolerates a lost wake-up (a waiter that died with the waiters bit set, a
 * race with a crashing peer) at the price of that much latency.
 */
#include "futex.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t
mono_coarse_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC_COARSE);
}

uint64_t
realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

int
futex_wait(_Atomic uint32_t *word, uint32_t expect, uint64_t deadline_ns)
{
	uint64_t now = mono_ns();
	struct timespec ts;
	long rc;

	if (deadline_ns <= now)
		return -ETIMEDOUT;
	if (deadline_ns - now > FUTEX_MAX_WAIT_NS)
		deadline_ns = now + FUTEX_MAX_WAIT_NS;
	ts.tv_sec = (time_t)(deadline_ns / 1000000000ull);
	ts.tv_nsec = (long)(deadline_ns % 1000000000ull);

	/* FUTEX_WAIT_BITSET takes an absolute timeout, on CLOCK_MONOTONIC
	 * unless FUTEX_CLOCK_REALTIME is given. */
	rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expect,
	    &ts, NULL, FUTEX_BITSET_MATCH_ANY);
	if (rc == 0)
		return 0;
	switch (errno) {
	case EAGAIN:
		return -EAGAIN;
	case ETIMEDOUT:
		return -ETIMEDOUT;
	case EINTR:
		return 0;
	default:
		return -errno;
	}
}

int
futex_wake(_Atomic uint32_t *word, int n)
{
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL,
	    NULL, 0);

	return rc < 0 ? -errno : (int)rc;
}
