/* proc.c -- process liveness by pid plus start time, from /proc/PID/stat.
 *
 * The start time rules out pid reuse: a recycled pid has a later start time.
 * Reading /proc costs an open/read/close, so callers only ask after a record
 * has been stuck for a while, never on the put path.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Reads /proc/PID/stat into buf and returns the text after the command
 * name's closing parenthesis (the name may itself contain ") "), or NULL. */
static const char *
proc_stat_fields(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	do {
		n = read(fd, buf, cap - 1);
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	return rp != NULL && rp[1] == ' ' ? rp + 2 : NULL;
}

uint64_t
proc_start_time(pid_t pid)
{
	char buf[1024];
	const char *f = proc_stat_fields(pid, buf, sizeof(buf));
	unsigned long long st = 0;

	if (f == NULL)
		return 0;
	/* After the name come field 3 (state) .. field 22 (starttime). */
	for (int field = 3; field < 22; field++) {
		f = strchr(f, ' ');
		if (f == NULL)
			return 0;
		f++;
	}
	if (sscanf(f, "%llu", &st) != 1)
		return 0;
	return st;
}

bool
proc_alive(pid_t pid, uint64_t start_time)
{
	char buf[1024];
	const char *f;

	if (pid <= 0)
		return false;
	f = proc_stat_fields(pid, buf, sizeof(buf));
	if (f == NULL)
		return false;
	/* A main thread that called pthread_exit() is a zombie while the
	 * process's other threads run: the process is alive if it still has
	 * threads (field 20, num_threads, counts the zombie leader too). */
	if (f[0] == 'Z' || f[0] == 'X') {
		long threads = 0;
		const char *t = f;
		for (int field = 3; t != NULL && field < 20; field++) {
			t = strchr(t, ' ');
			if (t != NULL)
				t++;
		}
		if (t == NULL || sscanf(t, "%ld", &threads) != 1 || threads < 2)
			return false;
	}
	return start_time == 0 || proc_start_time(pid) == start_time;
}
