/* sigbus.c -- the SIGBUS guard for shared mappings (see sigbus.h).
 *
 * Invariants kept here:
 * - The handler touches only the registry (atomics), the faulting thread's
 *   jump buffer and mmap(2): no lock, no allocation. mmap is not on the
 *   async-signal-safe list, but it is a plain system call, with no lock of
 *   the C library taken.
 * - A fault whose address lies in no registered mapping is not ours: it is
 *   passed to the previous handler, or the default action is restored so
 *   the faulting access kills the process as it would have without us. A
 *   fault that the previous handler passes back to us (it chains to the
 *   handler it replaced, and that was ours) takes the default action.
 * - sigsetjmp(jb, 0) does not save the signal mask (that would cost a
 *   system call per guarded call). A runtime that wraps handlers
 *   (ThreadSanitizer's does) may leave SIGBUS blocked after a handler that
 *   leaves by siglongjmp, and a SIGBUS that arrives blocked kills the
 *   process outright; so the recovery path unblocks it itself.
 */
#include "sigbus.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

struct guard_entry {
	_Atomic uintptr_t base; /* 0: free */
	_Atomic size_t len;
	_Atomic int *_Atomic lost;
};

static struct guard_entry registry[RING_GUARD_MAX];
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous;
static pthread_mutex_t install_mu = PTHREAD_MUTEX_INITIALIZER;
__thread sigjmp_buf *ring_guard_jmp;
/* The fault this thread is passing to the previous handler, if any. */
static __thread bool chaining;
static __thread void *chaining_addr;

static struct guard_entry *
lookup(uintptr_t addr)
{
	for (unsigned i = 0; i < RING_GUARD_MAX; i++) {
		uintptr_t b = atomic_load_explicit(&registry[i].base, memory_order_acquire);
		size_t n = atomic_load_explicit(&registry[i].len, memory_order_relaxed);

		if (b != 0 && addr >= b && addr - b < n)
			return &registry[i];
	}
	return NULL;
}

static void
chain(int sig, siginfo_t *si, void *uc)
{
	/* The handler we pass the fault to may pass it back: one installed
	 * over ours, which we then re-installed over it, chains to what it
	 * replaced, which was us. The second time round, end the loop with
	 * the default action instead of recursing until the stack is gone. */
	if (chaining && chaining_addr == si->si_addr) {
		chaining = false;
		signal(sig, SIG_DFL);
		return;
	}
	if (previous.sa_flags & SA_SIGINFO) {
		if (previous.sa_sigaction != NULL) {
			chaining = true;
			chaining_addr = si->si_addr;
			previous.sa_sigaction(sig, si, uc);
			chaining = false;
			return;
		}
	} else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
		chaining = true;
		chaining_addr = si->si_addr;
		previous.sa_handler(sig);
		chaining = false;
		return;
	}
	/* Returning restarts the access, which faults again with the
	 * default action: the process dies as it would have without us. */
	signal(sig, SIG_DFL);
}

static void
sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	struct guard_entry *e = lookup((uintptr_t)si->si_addr);
	sigjmp_buf *jb;

	if (e == NULL) {
		chain(sig, si, uc);
		return;
	}
	jb = ring_guard_jmp;
	if (jb != NULL) {
		ring_guard_jmp = NULL;
		siglongjmp(*jb, 1);
	}
	uintptr_t b = atomic_load_explicit(&e->base, memory_order_relaxed);
	size_t n = atomic_load_explicit(&e->len, memory_order_relaxed);
	_Atomic int *lost = atomic_load_explicit(&e->lost, memory_order_relaxed);
	if (mmap((void *)b, n, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		chain(sig, si, uc);
		return;
	}
	if (lost != NULL)
		atomic_store_explicit(lost, 1, memory_order_seq_cst);
}

int
ring_guard_install(void)
{
	struct sigaction sa, cur;
	int rc = 0;

	/* Installed again if someone replaced it since (the application, or a
	 * test framework): ours must be first in line, and chains to theirs. */
	pthread_mutex_lock(&install_mu);
	if (sigaction(SIGBUS, NULL, &cur) < 0) {
		rc = -errno;
	} else if (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != sigbus_handler) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = sigbus_handler;
		sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, &previous) < 0)
			rc = -errno;
	}
	pthread_mutex_unlock(&install_mu);
	return rc;
}

int
ring_guard_add(void *base, size_t len, _Atomic int *lost)
{
	int rc = -ENOSPC;

	pthread_mutex_lock(&registry_mu);
	for (unsigned i = 0; i < RING_GUARD_MAX; i++) {
		if (atomic_load_explicit(&registry[i].base, memory_order_relaxed) != 0)
			continue;
		atomic_store_explicit(&registry[i].len, len, memory_order_relaxed);
		atomic_store_explicit(&registry[i].lost, lost, memory_order_relaxed);
		/* Release: len and lost are visible to a handler that sees
		 * base (acquire in lookup()). */
		atomic_store_explicit(&registry[i].base, (uintptr_t)base,
		    memory_order_release);
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&registry_mu);
	return rc;
}

void
ring_guard_remove(void *base)
{
	pthread_mutex_lock(&registry_mu);
	for (unsigned i = 0; i < RING_GUARD_MAX; i++)
		if (atomic_load_explicit(&registry[i].base, memory_order_relaxed) ==
		    (uintptr_t)base)
			atomic_store_explicit(&registry[i].base, 0, memory_order_release);
	pthread_mutex_unlock(&registry_mu);
}

static void
unblock_sigbus(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGBUS);
	(void)pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int
ring_guard_fault(void)
{
	unblock_sigbus();
	ring_guard_jmp = NULL;
	return -EFAULT;
}

int
ring_guarded(int (*fn)(void *), void *arg)
{
	sigjmp_buf jb;
	sigjmp_buf *outer = ring_guard_jmp;
	int rc;

	if (sigsetjmp(jb, 0) != 0) {
		unblock_sigbus();
		ring_guard_jmp = outer;
		return -EFAULT;
	}
	ring_guard_jmp = &jb;
	rc = fn(arg);
	ring_guard_jmp = outer;
	return rc;
}

int
ring_guard_spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	static const int faults[] = { SIGBUS, SIGSEGV, SIGFPE, SIGILL };
	sigset_t mask, old;
	int rc;

	sigfillset(&mask);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		sigdelset(&mask, faults[i]);
	/* SETMASK, not BLOCK: the faults are unblocked in the new thread
	 * even if the creator blocks them. */
	pthread_sigmask(SIG_SETMASK, &mask, &old);
	rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}
