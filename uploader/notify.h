/* notify.h -- the systemd notification protocol (sd_notify), spoken directly. */
#ifndef S3RING_NOTIFY_H
#define S3RING_NOTIFY_H

#include <stdint.h>

/* Sends state (e.g. "READY=1\nSTATUS=draining") as one datagram to
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Returns 0
 * when sent or when there is no $NOTIFY_SOCKET, or -errno. */
int notify_send(const char *state);

/* The watchdog interval systemd asked for ($WATCHDOG_USEC, if $WATCHDOG_PID
 * is unset or ours), in microseconds, or 0. */
uint64_t notify_watchdog_usec(void);

#endif
