/* producer_internal.h -- the layout of struct s3ring_producer, for tests.
 *
 * Applications see the handle as opaque. The tests that must drive a
 * consumer over the very same mapping as a producer handle (so that
 * ThreadSanitizer sees both sides of every acquire and release) include this.
 */
#ifndef S3RING_PRODUCER_INTERNAL_H
#define S3RING_PRODUCER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "ring.h"

struct s3ring_producer {
	struct ring ring;
	unsigned slot;
	pid_t owner;            /* the process that claimed the slot */
	_Atomic unsigned forks; /* the process's fork count when it did */
	_Atomic int broken;     /* a reopen after fork() failed: its -errno */
	pthread_mutex_t mu;     /* serialises that reopen */
};

#endif
