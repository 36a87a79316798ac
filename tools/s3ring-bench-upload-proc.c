/* s3ring-bench-upload-proc.c -- the processes `s3ring-bench upload` starts,
 * their memory, and the cleanup that stops them however the run ends.
 *
 * Every child is started by bup_spawn() in a process group of its own and
 * remembered until it is reaped, so that bup_cleanup_all() can stop what is
 * left by its own PID (never by name). Short of SIGKILL of the bench, every
 * child also gets SIGTERM from PR_SET_PDEATHSIG, and the long-lived ones run
 * under timeout(1). Signal handlers only set bup_interrupted.
 */
#include "s3ring-bench-upload.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "futex.h"
#include "s3ring-bench.h"

volatile sig_atomic_t bup_interrupted;
char bup_workdir[256];

static pid_t live_groups[16];
static char rings[BUP_MAX_ENDPOINTS][64];
static unsigned nrings;
static struct bup_endpoint *servers[BUP_MAX_ENDPOINTS];
static unsigned nservers;

static void
on_signal(int sig)
{
	bup_interrupted = sig;
}

void
bup_install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocking wait returns EINTR and the loop notices. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void
track(pid_t pid)
{
	for (size_t i = 0; i < sizeof(live_groups) / sizeof(live_groups[0]); i++)
		if (live_groups[i] == 0) {
			live_groups[i] = pid;
			return;
		}
}

static void
untrack(pid_t pid)
{
	for (size_t i = 0; i < sizeof(live_groups) / sizeof(live_groups[0]); i++)
		if (live_groups[i] == pid)
			live_groups[i] = 0;
}

/* In the child: stdin from /dev/null, stdout and stderr to the files. */
static void
redirect_stdio(const char *out, const char *err)
{
	int fd = open("/dev/null", O_RDONLY);

	if (fd >= 0)
		dup2(fd, 0);
	fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
		dup2(fd, 1);
	fd = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0)
		dup2(fd, 2);
}

pid_t
bup_spawn(char *const argv[], char *const env[], const char *out, const char *err)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		signal(SIGPIPE, SIG_DFL);
		redirect_stdio(out, err);
		for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
			if (strchr(env[i], '=') == NULL)
				unsetenv(env[i]);
			else
				putenv(env[i]);
		}
		execvp(argv[0], argv);
		dprintf(2, "%s: cannot run %s: %s\n", bench_prog, argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	track(pid);
	return pid;
}

void
bup_stop_group(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			/* The leader is gone; anything left in its group goes too. */
			kill(-pid, SIGKILL);
			untrack(pid);
			return;
		}
		usleep(10000);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, &st, 0);
	untrack(pid);
}

void
bup_reap(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	(void)waitpid(pid, &st, 0);
	untrack(pid);
}

bool
bup_try_reap(pid_t pid)
{
	int st;

	if (pid <= 0 || waitpid(pid, &st, WNOHANG) != pid)
		return false;
	untrack(pid);
	return true;
}

int
bup_wait_child(pid_t pid, uint64_t timeout_ns)
{
	uint64_t deadline = mono_ns() + timeout_ns;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			untrack(pid);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		if (bup_interrupted || mono_ns() > deadline) {
			bup_stop_group(pid);
			return bup_interrupted ? -EINTR : -ETIMEDOUT;
		}
		usleep(5000);
	}
}

int
bup_run_cmd(char *const argv[], char *const env[], const char *out, const char *err,
    unsigned timeout_s)
{
	pid_t pid = bup_spawn(argv, env, out, err);

	if (pid < 0)
		return pid;
	return bup_wait_child(pid, (uint64_t)timeout_s * BUP_SEC_NS);
}

pid_t
bup_child_of(pid_t pid)
{
	char path[64], buf[64];
	const char *errstr = NULL;
	long long v;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if (bup_read_first_line(path, buf, sizeof(buf)) < 0)
		return 0;
	buf[strcspn(buf, " ")] = '\0';
	v = strtonum(buf, 1, INT_MAX, &errstr);
	return errstr ? 0 : (pid_t)v;
}

/* utime + stime of pid in seconds, from /proc/PID/stat. */
static int
cpu_seconds(pid_t pid, double *cpu_s)
{
	char path[64], line[1024], *p;
	unsigned long long ut = 0, stt = 0;
	int rc = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	if (fgets(line, sizeof(line), f) != NULL && (p = strrchr(line, ')')) != NULL &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &ut, &stt) == 2) {
		*cpu_s = (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
		rc = 0;
	}
	fclose(f);
	return rc;
}

int
bup_mem_sample(pid_t pid, struct bup_mem *s)
{
	char path[64], line[256];
	FILE *f;
	int rc;

	memset(s, 0, sizeof(*s));
	rc = cpu_seconds(pid, &s->cpu_s);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmHWM:", 6) == 0)
			s->hwm_kib = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "VmRSS:", 6) == 0)
			s->rss_kib = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "RssAnon:", 8) == 0)
			s->private_kib = strtol(line + 8, NULL, 10);
	}
	fclose(f);
	return rc;
}

int
bup_read_first_line(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return -errno;
	if (fgets(buf, (int)cap, f) == NULL) {
		fclose(f);
		return -ENODATA;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

void
bup_track_ring(const char *name)
{
	if (nrings < BUP_MAX_ENDPOINTS)
		snprintf(rings[nrings++], sizeof(rings[0]), "%s", name);
}

void
bup_track_server(struct bup_endpoint *ep)
{
	if (nservers < BUP_MAX_ENDPOINTS)
		servers[nservers++] = ep;
}

/* nftw callback: removes what it can and goes on (the rest is reported by
 * nothing: a work directory on tmpfs that cannot be removed is left). */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)remove(path);
	return 0;
}

void
bup_cleanup_all(const struct bup_opts *o)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(live_groups) / sizeof(live_groups[0]); i++)
		if (live_groups[i] > 0)
			bup_stop_group(live_groups[i]);
	for (unsigned i = 0; i < nservers; i++)
		bup_server_stop(o, servers[i]);
	for (unsigned i = 0; i < nrings; i++) {
		(void)ring_unlink(rings[i]);
		snprintf(path, sizeof(path), "/dev/shm/s3ring.%s.journal", rings[i]);
		unlink(path);
	}
	nrings = 0;
	if (bup_workdir[0] == '\0')
		return;
	if (!o->keep)
		nftw(bup_workdir, rm_one, 32, FTW_DEPTH | FTW_PHYS);
	else
		fprintf(stderr, "%s: kept %s\n", bench_prog, bup_workdir);
}
