/* proc.h -- facts about other processes, read from /proc. */
#ifndef S3RING_PROC_H
#define S3RING_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The start time of pid (field 22 of /proc/PID/stat, in clock ticks since
 * boot), or 0 if pid does not exist or cannot be read. A pid together with
 * its start time names one process for as long as the machine is up, even
 * after the pid has been reused. */
uint64_t proc_start_time(pid_t pid);

/* True if the process pid that started at start_time is still running (a
 * zombie counts as dead). start_time 0 checks the pid alone. */
bool proc_alive(pid_t pid, uint64_t start_time);

#endif
