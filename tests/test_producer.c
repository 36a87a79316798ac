/* test_producer.c -- tests for producer/producer.c: the public s3ring_* API. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "futex.h"
#include "producer_internal.h"
#include "ring.h"
#include "s3ring.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* ---------------------------------------------- malloc interposition */

/* Outside sanitizer builds this executable defines malloc and friends, so
 * every allocation made by the library linked into it passes through here:
 * that is how the tests see that a put allocates nothing, and how they make
 * an allocation fail. Sanitizers own malloc themselves, so those builds skip
 * these two tests. */
static int count_allocs;
static int fail_allocs;
static unsigned long allocs;

#if !SANITIZED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void free(void *p);

void *
malloc(size_t n)
{
	if (count_allocs)
		allocs++;
	if (fail_allocs) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}

void *
calloc(size_t a, size_t b)
{
	if (count_allocs)
		allocs++;
	if (fail_allocs) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(a, b);
}

void *
realloc(void *p, size_t n)
{
	if (count_allocs)
		allocs++;
	if (fail_allocs) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, n);
}

void
free(void *p)
{
	__libc_free(p);
}
#endif

static char name[64];

static int
setup(void **state)
{
	struct ring r;
	struct ring_config cfg = { .capacity = 1 << 20, .gid = (gid_t)-1 };

	(void)state;
	snprintf(name, sizeof(name), "test-producer-%d", (int)getpid());
	(void)ring_unlink(name);
	if (ring_open(&r, name, RING_OPEN_CREATE, &cfg) != 0)
		return -1;
	ring_close(&r);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	(void)ring_unlink(name);
	return 0;
}

static void
open_of_a_missing_ring_sets_enoent(void **state)
{
	(void)state;
	errno = 0;
	assert_null(s3ring_open("test-no-such-ring-at-all", 0));
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(s3ring_open("bad/name", 0));
	assert_int_equal(errno, EINVAL);
	assert_null(s3ring_open(name, 0x80));
	assert_int_equal(errno, EINVAL);
}

static void
open_with_create_makes_a_default_ring(void **state)
{
	char n[64];
	struct s3ring_producer *p;

	(void)state;
	snprintf(n, sizeof(n), "test-producer-create-%d", (int)getpid());
	(void)ring_unlink(n);
	p = s3ring_open(n, S3RING_CREATE);
	assert_non_null(p);
	assert_int_equal(s3ring_max_body(p, 10), RING_DEFAULT_MAX_MESSAGE - 10);
	assert_int_equal(s3ring_put(p, "a/b", "c", 1, 0), 0);
	s3ring_close(p);
	assert_int_equal(ring_unlink(n), 0);
}

static void
open_uses_s3ring_ring_from_the_environment(void **state)
{
	struct s3ring_producer *p;

	(void)state;
	setenv("S3RING_RING", name, 1);
	p = s3ring_open(NULL, 0);
	unsetenv("S3RING_RING");
	assert_non_null(p);
	s3ring_close(p);
}

static void
open_of_another_layout_version_sets_eproto(void **state)
{
	struct ring r;

	(void)state;
	assert_int_equal(ring_open(&r, name, 0, NULL), 0);
	r.hdr->layout_version = 99;
	errno = 0;
	assert_null(s3ring_open(name, 0));
	assert_int_equal(errno, EPROTO);
	r.hdr->layout_version = RING_LAYOUT_VERSION;
	ring_close(&r);
}

static void
put_rejects_invalid_keys_with_einval(void **state)
{
	struct s3ring_producer *p = s3ring_open(name, 0);
	char big[S3RING_MAX_KEY + 2];
	struct ring r;

	(void)state;
	assert_non_null(p);
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(s3ring_put(p, "", "x", 1, 0), -EINVAL);
	assert_int_equal(s3ring_put(p, big, "x", 1, 0), -EINVAL);
	big[S3RING_MAX_KEY] = '\0';
	assert_int_equal(s3ring_put(p, big, "x", 1, 0), 0);
	assert_int_equal(s3ring_put(p, "bad\xff", "x", 1, 0), -EINVAL);
	assert_int_equal(s3ring_put(p, "tab\there", "x", 1, 0), -EINVAL);
	assert_int_equal(s3ring_put(p, NULL, "x", 1, 0), -EINVAL);
	assert_int_equal(s3ring_put(p, "k", NULL, 1, 0), -EINVAL);
	assert_int_equal(s3ring_put(NULL, "k", "x", 1, 0), -EINVAL);
	assert_int_equal(ring_open(&r, name, RING_OPEN_RDONLY, NULL), 0);
	uint64_t rejected = 0;
	for (unsigned i = 0; i < RING_MAX_PRODUCERS; i++)
		rejected += r.hdr->slots[i].rejected;
	assert_int_equal(rejected, 4);
	ring_close(&r);
	s3ring_close(p);
}

static void
put_rejects_oversized_messages_with_emsgsize(void **state)
{
	struct s3ring_producer *p = s3ring_open(name, 0);
	size_t max = s3ring_max_body(p, 1);
	char *body = calloc(1, max + 1);

	(void)state;
	assert_non_null(body);
	assert_int_equal(s3ring_put(p, "k", body, max, 0), 0);
	assert_int_equal(s3ring_put(p, "k", body, max + 1, 0), -EMSGSIZE);
	free(body);
	s3ring_close(p);
}

static void
put_on_a_full_ring_returns_eagain(void **state)
{
	struct s3ring_producer *p = s3ring_open(name, 0);
	static char body[60000];
	int rc;

	(void)state;
	while ((rc = s3ring_put(p, "k", body, sizeof(body), 0)) == 0)
		;
	assert_int_equal(rc, -EAGAIN);
	assert_int_equal(s3ring_put(p, "k", body, sizeof(body), 30), -ETIMEDOUT);
	s3ring_close(p);
}

static void
reserve_then_commit_delivers_the_body_written_in_place(void **state)
{
	struct s3ring_producer *p = s3ring_open(name, 0);
	struct s3ring_reservation r;
	struct ring ring;
	struct ring_consumer c;
	struct ring_msg m;
	static uint8_t buf[1 << 18];

	(void)state;
	assert_int_equal(s3ring_reserve(p, "zero/copy", 11, &r, 0), 0);
	assert_int_equal(r.len, 11);
	memcpy(r.data, "in place!!!", 11);
	assert_int_equal(s3ring_commit(p, &r), 0);
	assert_int_equal(s3ring_reserve(p, "zero/aborted", 5, &r, 0), 0);
	s3ring_abort(p, &r);
	assert_int_equal(s3ring_put(p, "after", "x", 1, 0), 0);
	assert_int_equal(ring_open(&ring, name, 0, NULL), 0);
	ring_consumer_init(&c, &ring, 0);
	assert_int_equal(ring_consume(&c, &m, buf, sizeof(buf)), 1);
	assert_string_equal(m.key, "zero/copy");
	assert_memory_equal(m.body, "in place!!!", 11);
	assert_int_equal(ring_consume(&c, &m, buf, sizeof(buf)), 1);
	assert_string_equal(m.key, "after");
	ring_close(&ring);
	s3ring_close(p);
}

static void
strerror_names_every_error(void **state)
{
	int errs[] = { EAGAIN, ETIMEDOUT, EMSGSIZE, EINVAL, EPROTO, ENOENT,
	    EACCES, EBADMSG, EUSERS, ENOSPC, ENOMEM, ESTALE };

	(void)state;
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		assert_non_null(s3ring_strerror(-errs[i]));
		assert_string_equal(s3ring_strerror(-errs[i]), s3ring_strerror(errs[i]));
		assert_string_not_equal(s3ring_strerror(-errs[i]), "unknown error");
	}
	assert_string_equal(s3ring_strerror(-12345), "unknown error");
}

static void
put_path_allocates_no_memory(void **state)
{
	struct s3ring_producer *p;
	struct s3ring_reservation r;
	char body[512] = { 0 };

	(void)state;
	if (SANITIZED)
		skip();
	p = s3ring_open(name, 0);
	assert_non_null(p);
	/* Count everything, so the test proves it can see an allocation. */
	allocs = 0;
	count_allocs = 1;
	free(malloc(1));
	count_allocs = 0;
	assert_int_equal(allocs, 1);

	allocs = 0;
	count_allocs = 1;
	for (int i = 0; i < 1000; i++) {
		int rc = s3ring_put(p, "no/alloc", body, sizeof(body), 0);
		assert_true(rc == 0 || rc == -EAGAIN);
		/* The error paths too. */
		assert_int_equal(s3ring_put(p, "", body, 1, 0), -EINVAL);
		assert_int_equal(s3ring_put(p, "k", body, 1 << 30, 0), -EMSGSIZE);
	}
	if (s3ring_reserve(p, "zc", 10, &r, 0) == 0)
		assert_int_equal(s3ring_commit(p, &r), 0);
	(void)s3ring_strerror(-EAGAIN);
	count_allocs = 0;
	assert_int_equal(allocs, 0);
	s3ring_close(p);
}

static void
open_reports_enomem_when_allocation_fails(void **state)
{
	(void)state;
	if (SANITIZED)
		skip();
	fail_allocs = 1;
	errno = 0;
	struct s3ring_producer *p = s3ring_open(name, 0);
	fail_allocs = 0;
	assert_null(p);
	assert_int_equal(errno, ENOMEM);
}

/* Runs 5,000 puts in a child under a seccomp filter that kills the process
 * on any system call but exit. (Strict mode would do, but it also disables
 * the TSC, and with it the vDSO clock the put reads.) Returns the child's
 * wait status. */
static int
allow_only_exit(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static int
puts_under_seccomp(int consumer_sleeping)
{
	struct ring ring;
	pid_t kid;
	int st;

	/* Start from an empty ring, so the puts commit rather than find it
	 * full. */
	assert_int_equal(ring_open(&ring, name, 0, NULL), 0);
	ring_release(&ring, atomic_load(&ring.hdr->tail));
	ring_close(&ring);
	kid = fork();
	if (kid == 0) {
		struct s3ring_producer *p = s3ring_open(name, 0);
		struct ring r;
		char body[64] = { 0 };
		if (p == NULL || ring_open(&r, name, 0, NULL) != 0)
			syscall(SYS_exit, 2);
		atomic_store(&r.hdr->consumer_sleeping, (uint32_t)consumer_sleeping);
		/* A live uploader's heartbeat: without one, a put looks (one
		 * fstat) whether its ring was removed. */
		atomic_store(&r.hdr->upstats.heartbeat_mono_ns, mono_coarse_ns());
		if (allow_only_exit() != 0)
			syscall(SYS_exit, 3);
		for (int i = 0; i < 5000; i++) {
			if (i % 100 == 0)
				atomic_store(&r.hdr->upstats.heartbeat_mono_ns, mono_coarse_ns());
			int rc = s3ring_put(p, "sys/call", body, sizeof(body), 0);
			if (rc != 0 && rc != -EAGAIN)
				syscall(SYS_exit, 4);
		}
		syscall(SYS_exit, 0);
	}
	assert_true(kid > 0);
	assert_int_equal(waitpid(kid, &st, 0), kid);
	return st;
}

static void
put_makes_no_system_call_while_the_consumer_is_awake(void **state)
{
	int st;

	(void)state;
#if defined(__SANITIZE_THREAD__)
	/* The ThreadSanitizer runtime makes system calls of its own. */
	skip();
#endif
	st = puts_under_seccomp(0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* The control: with the consumer asleep the first put makes one
	 * FUTEX_WAKE, and seccomp kills the child for it (SIGSYS). */
	st = puts_under_seccomp(1);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

struct thread_arg {
	struct s3ring_producer *p;
	int id;
	int n;
	int rc;
};

static void *
put_thread(void *arg)
{
	struct thread_arg *a = arg;
	char key[64], body[128];

	for (int i = 1; i <= a->n; i++) {
		snprintf(key, sizeof(key), "t%d/%d", a->id, i);
		int len = snprintf(body, sizeof(body), "thread %d message %d", a->id, i);
		int rc = s3ring_put(a->p, key, body, (size_t)len, -1);
		if (rc != 0) {
			a->rc = rc;
			return (void *)1;
		}
	}
	return NULL;
}

/* One handle shared by four threads while the main thread drains the ring
 * through the same mapping: every message arrives once (a thread
 * preempted between reserve and commit is read past, so its record may
 * come after its next one). This is the threaded path ThreadSanitizer checks (through one
 * mapping, so that it sees both sides of every acquire and release). */
static void
one_handle_is_safe_from_many_threads(void **state)
{
	enum { THREADS = 4, EACH = 20000 };
	struct s3ring_producer *p = s3ring_open(name, 0);
	struct thread_arg args[THREADS];
	pthread_t tid[THREADS];
	struct ring_consumer c;
	struct ring_msg m;
	static uint8_t buf[1 << 18];
	static uint8_t seen[THREADS][EACH + 1];
	int got[THREADS] = { 0 }, total = 0;

	(void)state;
	assert_non_null(p);
	struct ring *rp = &p->ring;
	ring_consumer_init(&c, rp, 0);
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){ p, i, EACH, 0 };
		assert_int_equal(pthread_create(&tid[i], NULL, put_thread, &args[i]), 0);
	}
	uint64_t deadline = mono_ns() + 120ull * 1000 * 1000 * 1000;
	while (total < THREADS * EACH) {
		int rc = ring_consume(&c, &m, buf, sizeof(buf));
		int t, i;
		assert_true(rc >= 0);
		if (rc == 0) {
			for (int k = 0; k < THREADS; k++)
				if (args[k].rc != 0)
					fail_msg("thread %d: put failed: %s", k, s3ring_strerror(args[k].rc));
			assert_true(mono_ns() < deadline);
			ring_release(rp, ring_consumer_floor(&c));
			ring_consumer_wait(&c, 0);
			continue;
		}
		assert_int_equal(sscanf(m.key, "t%d/%d", &t, &i), 2);
		assert_true(t >= 0 && t < THREADS);
		assert_true(i >= 1 && i <= EACH && !seen[t][i]);
		seen[t][i] = 1;
		got[t]++;
		total++;
		ring_release(rp, ring_consumer_floor(&c));
	}
	for (int i = 0; i < THREADS; i++) {
		void *ret;
		assert_int_equal(pthread_join(tid[i], &ret), 0);
		assert_null(ret);
		assert_int_equal(got[i], EACH);
	}
	assert_int_equal(rp->hdr->corrupt, 0);
	s3ring_close(p);
}

/* s3ring_close() in a forked child leaves the parent's slot alone: the
 * lock belongs to the open file description they share, and the slot's
 * owner is still the parent. */
static void
close_in_a_forked_child_keeps_the_parents_slot(void **state)
{
	struct s3ring_producer *p = s3ring_open(name, 0);
	struct ring watcher;
	int st;
	pid_t kid;

	(void)state;
	assert_non_null(p);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		s3ring_close(p);
		_exit(0);
	}
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(ring_open(&watcher, name, 0, NULL), 0);
	assert_int_equal(watcher.hdr->slots[p->slot].pid, (uint32_t)getpid());
	assert_true(ring_slot_alive(&watcher, p->slot, p->ring.slot_gen[p->slot]));
	/* A child that keeps using the handle shares the slot and is alive. */
	kid = fork();
	if (kid == 0)
		_exit(s3ring_put(p, "child/1", "x", 1, 0) == 0 ? 0 : 1);
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(s3ring_put(p, "parent/1", "y", 1, 0), 0);
	s3ring_close(p);
	assert_false(ring_slot_alive(&watcher, 0, watcher.hdr->slots[0].gen & RING_TAG_GEN_MASK));
	ring_close(&watcher);
}

/* The header allows a forked child to go on using its parent's handle. A
 * child killed in the middle of a put (a pre-fork server's worker, say)
 * is dead, whatever its parent does: its record must be abandoned within
 * milliseconds, so head moves on, instead of being held for as long as the
 * parent keeps the handle open. */
static void
record_of_a_forked_child_killed_mid_put_is_abandoned(void **state)
{
	struct s3ring_producer *p = s3ring_open(name, 0);
	struct ring up;
	struct ring_consumer c;
	struct ring_msg m;
	static uint8_t cbuf[(1 << 20) + 2];
	uint64_t t0;
	int st;
	pid_t kid;

	(void)state;
	assert_non_null(p);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct s3ring_reservation rv;
		if (s3ring_reserve(p, "child/dies", 10, &rv, 0) != 0)
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(s3ring_put(p, "parent/1", "y", 1, 0), 0);
	assert_int_equal(ring_open(&up, name, 0, NULL), 0);
	ring_consumer_init(&c, &up, 0);
	t0 = mono_ns();
	while (atomic_load(&up.hdr->abandoned) == 0 &&
	    mono_ns() - t0 < 30ull * 1000 * 1000 * 1000) {
		if (ring_consume(&c, &m, cbuf, sizeof(cbuf)) == 0)
			ring_consumer_wait(&c, mono_ns() + 10 * 1000 * 1000);
	}
	assert_int_equal(atomic_load(&up.hdr->abandoned), 1);
	assert_int_equal(ring_consumer_floor(&c), c.cursor);
	ring_close(&up);
	s3ring_close(p);
}

/* The other way round: the parent closes its handle while a forked child,
 * still using it as the header allows, is in the middle of a put. The
 * child lives, so its record must not be given up (its space would then be
 * handed to another producer while the child still writes into it). */
static void
parent_close_leaves_a_forked_childs_put_alive(void **state)
{
	struct s3ring_producer *p = s3ring_open(name, 0);
	struct ring up;
	struct ring_consumer c;
	struct ring_msg m;
	static uint8_t cbuf[(1 << 20) + 2];
	int to_kid[2], to_parent[2], st;
	char ch = 0;
	uint64_t t0;
	pid_t kid;

	(void)state;
	assert_non_null(p);
	assert_int_equal(pipe(to_kid), 0);
	assert_int_equal(pipe(to_parent), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct s3ring_reservation rv;
		alarm(10); /* never outlives a failed test */
		if (s3ring_reserve(p, "child/slow", 10, &rv, 0) != 0)
			_exit(1);
		if (write(to_parent[1], "r", 1) != 1 || read(to_kid[0], &ch, 1) != 1)
			_exit(2);
		memset(rv.data, 'c', 10);
		_exit(s3ring_commit(p, &rv) == 0 ? 0 : 3);
	}
	assert_int_equal(read(to_parent[0], &ch, 1), 1);
	s3ring_close(p);
	assert_int_equal(ring_open(&up, name, 0, NULL), 0);
	ring_consumer_init(&c, &up, 0);
	/* Longer than the consumer's owner checks (10 ms). */
	t0 = mono_ns();
	while (mono_ns() - t0 < 300ull * 1000 * 1000) {
		if (ring_consume(&c, &m, cbuf, sizeof(cbuf)) == 0)
			ring_consumer_wait(&c, mono_ns() + 10 * 1000 * 1000);
	}
	assert_int_equal(atomic_load(&up.hdr->abandoned), 0);
	assert_int_equal(write(to_kid[1], "c", 1), 1);
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(to_kid[0]);
	close(to_kid[1]);
	close(to_parent[0]);
	close(to_parent[1]);
	ring_close(&up);
}

/* A handle whose ring was removed and retired: the put fails with -ESTALE
 * and its text says what to do. */
static void
put_into_a_removed_ring_is_estale_once_retired(void **state)
{
	struct s3ring_producer *p = s3ring_open(name, 0);
	struct ring up;

	(void)state;
	assert_non_null(p);
	assert_int_equal(ring_open(&up, name, 0, NULL), 0);
	assert_int_equal(s3ring_put(p, "k", "before", 6, 0), 0);
	assert_int_equal(ring_unlink(name), 0);
	ring_retire(&up);
	assert_int_equal(s3ring_put(p, "k", "after", 5, 0), -ESTALE);
	assert_non_null(strstr(s3ring_strerror(-ESTALE), "open it again"));
	ring_close(&up);
	s3ring_close(p);
}

/* A ring removed while no uploader runs (no heartbeat): nobody else will
 * retire it, so the producer notices the missing name itself and its put
 * fails instead of returning 0 for a record nobody can read. With the name
 * still there, the put succeeds and waits in the ring for an uploader. */
static void
put_into_a_ring_removed_while_no_uploader_runs_is_estale(void **state)
{
	struct s3ring_producer *p = s3ring_open(name, 0);

	(void)state;
	assert_non_null(p);
	assert_int_equal(s3ring_put(p, "k", "waits", 5, 0), 0);
	assert_int_equal(ring_unlink(name), 0);
	assert_int_equal(s3ring_put(p, "k", "lost", 4, 0), -ESTALE);
	assert_int_equal(s3ring_put(p, "k", "lost", 4, 0), -ESTALE);
	s3ring_close(p);
}

/* A reservation with a length of SIZE_MAX is refused, not a 64-byte
 * reservation whose commit would checksum 4 GiB. */
static void
reserve_of_size_max_is_emsgsize(void **state)
{
	struct s3ring_producer *p = s3ring_open(name, 0);
	struct s3ring_reservation r;

	(void)state;
	assert_non_null(p);
	assert_int_equal(s3ring_reserve(p, "k", SIZE_MAX, &r, 0), -EMSGSIZE);
	assert_int_equal(s3ring_reserve(p, "k", 100, &r, 0), 0);
	r.len = SIZE_MAX; /* a caller scribbling on its reservation */
	assert_int_equal(s3ring_commit(p, &r), -EINVAL);
	s3ring_close(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(open_of_a_missing_ring_sets_enoent),
		cmocka_unit_test(open_with_create_makes_a_default_ring),
		cmocka_unit_test_setup_teardown(open_uses_s3ring_ring_from_the_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(open_of_another_layout_version_sets_eproto, setup, teardown),
		cmocka_unit_test_setup_teardown(put_rejects_invalid_keys_with_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(put_rejects_oversized_messages_with_emsgsize, setup, teardown),
		cmocka_unit_test_setup_teardown(put_on_a_full_ring_returns_eagain, setup, teardown),
		cmocka_unit_test_setup_teardown(reserve_then_commit_delivers_the_body_written_in_place, setup, teardown),
		cmocka_unit_test(strerror_names_every_error),
		cmocka_unit_test_setup_teardown(put_path_allocates_no_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(open_reports_enomem_when_allocation_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(put_makes_no_system_call_while_the_consumer_is_awake, setup, teardown),
		cmocka_unit_test_setup_teardown(one_handle_is_safe_from_many_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(close_in_a_forked_child_keeps_the_parents_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(record_of_a_forked_child_killed_mid_put_is_abandoned, setup, teardown),
		cmocka_unit_test_setup_teardown(parent_close_leaves_a_forked_childs_put_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(put_into_a_removed_ring_is_estale_once_retired, setup, teardown),
		cmocka_unit_test_setup_teardown(reserve_of_size_max_is_emsgsize, setup, teardown),
		cmocka_unit_test_setup_teardown(put_into_a_ring_removed_while_no_uploader_runs_is_estale, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
