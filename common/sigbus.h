/* sigbus.h -- the one guard against SIGBUS from shared mappings that another
 * process truncates.
 *
 * Any process that can write a ring can ftruncate its shm object; touching a
 * page past the new end raises SIGBUS, which would otherwise kill the
 * toucher. A mapping registered here is protected in two ways:
 * - inside ring_guarded(), a fault in it makes ring_guarded() return
 *   -EFAULT (the consumer and shmstat, which read records in bulk);
 * - anywhere else, the handler puts private zero pages where the mapping
 *   was, so the faulting access and every later one succeed, and stores 1
 *   into the mapping's `lost` word; its owner checks that word and stops
 *   trusting the mapping (the producer's put does so before it returns 0).
 * A SIGBUS outside every registered mapping goes to the handler that was
 * installed before ours (the application's), or kills as it would have.
 */
#ifndef S3RING_SIGBUS_H
#define S3RING_SIGBUS_H

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stddef.h>

#define RING_GUARD_MAX 64 /* mappings protected at once per process */

/* Installs the process-wide handler (thread-safe), remembering the
 * previous one for chaining; if ours is in place already, does nothing. A
 * handler installed over ours later takes the guard away until the next
 * call (ring_open() calls it). Returns 0 or -errno. */
int ring_guard_install(void);

/* Protects [base, base + len). lost must stay valid until
 * ring_guard_remove(base). Returns 0, or -ENOSPC when RING_GUARD_MAX
 * mappings are registered already (the mapping is then unprotected). */
int ring_guard_add(void *base, size_t len, _Atomic int *lost);
void ring_guard_remove(void *base);

/* Runs fn(arg); a SIGBUS in a registered mapping meanwhile makes it return
 * -EFAULT instead (fn is abandoned where it faulted: it must hold no lock
 * and own no resource at any access to the mapping). Otherwise returns what
 * fn returned. */
int ring_guarded(int (*fn)(void *), void *arg);

/* The same guard spelled out, for the consumer's per-record path, where a
 * call through ring_guarded() costs a tenth of the record:
 *
 *	sigjmp_buf jb;
 *	if (sigsetjmp(jb, 0) != 0)
 *		return ring_guard_fault();
 *	ring_guard_jmp = &jb;
 *	rc = work();              // touches registered mappings only
 *	ring_guard_jmp = NULL;
 *
 * ring_guard_fault() unblocks SIGBUS (see sigbus.c) and returns -EFAULT. */
extern __thread sigjmp_buf *ring_guard_jmp;
int ring_guard_fault(void);

/* pthread_create() for a helper thread: it blocks the process's
 * asynchronous signals (they stay with the creator's thread), but not
 * SIGBUS, SIGSEGV, SIGFPE or SIGILL, so that the guard covers what the
 * thread reads from a ring (a fault raised while blocked would kill the
 * process whatever its handler). Returns 0 or -errno. */
int ring_guard_spawn(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
