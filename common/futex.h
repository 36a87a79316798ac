/* futex.h -- futex wait and wake on words in shared memory. */
#ifndef S3RING_FUTEX_H
#define S3RING_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/* The longest a single wait sleeps, whatever deadline it is given. A lost
 * wake-up then costs at most this much latency, never liveness. */
#define FUTEX_MAX_WAIT_NS (50ull * 1000 * 1000)

/* Sleeps while *word == expect, until woken or until deadline_ns
 * (CLOCK_MONOTONIC, absolute), but never longer than FUTEX_MAX_WAIT_NS.
 * Returns 0 when woken (or interrupted by a signal: callers re-check their
 * condition anyway), -EAGAIN when *word already differed from expect,
 * -ETIMEDOUT when the (clamped) deadline passed. The futex is shared between
 * processes: FUTEX_PRIVATE_FLAG is never used. */
int
futex_wait(_Atomic uint32_t *word, uint32_t expect, uint64_t deadline_ns);

/* Wakes up to n waiters on word. Returns how many were woken, or -errno. */
int futex_wake(_Atomic uint32_t *word, int n);

/* CLOCK_MONOTONIC in nanoseconds (served by the vDSO: no system call). */
uint64_t mono_ns(void);

/* CLOCK_MONOTONIC_COARSE in nanoseconds: the same clock as mono_ns() at
 * tick resolution (1-4 ms), cheaper to read. */
uint64_t mono_coarse_ns(void);

/* CLOCK_REALTIME in nanoseconds. */
uint64_t realtime_ns(void);

#endif
