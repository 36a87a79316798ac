/* test_notify.c -- tests for uploader/notify.c: the test plays systemd. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify.h"

static int
listen_dgram(const char *path, int abstract)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if (abstract)
		sa.sun_path[0] = '\0';
	else
		unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void
states_arrive_as_datagrams_on_a_path_socket(void **state)
{
	char path[64], buf[256];
	int fd;
	ssize_t n;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/test-notify-%d", (int)getpid());
	fd = listen_dgram(path, 0);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(notify_send("READY=1\nSTATUS=draining ring default"), 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "READY=1\nSTATUS=draining ring default");
	assert_int_equal(notify_send("WATCHDOG=1"), 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n] = '\0';
	assert_string_equal(buf, "WATCHDOG=1");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	unlink(path);
}

static void
abstract_socket_names_start_with_at(void **state)
{
	char name[64], buf[64];
	int fd;
	ssize_t n;

	(void)state;
	snprintf(name, sizeof(name), "@test-notify-%d", (int)getpid());
	fd = listen_dgram(name, 1);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(notify_send("STOPPING=1"), 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "STOPPING=1");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

static void
no_socket_is_not_an_error_and_a_bad_one_is(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(notify_send("READY=1"), -EINVAL);
	setenv("NOTIFY_SOCKET", "/tmp/no-such-socket-here", 1);
	assert_true(notify_send("READY=1") < 0);
	unsetenv("NOTIFY_SOCKET");
}

static void
watchdog_interval_is_read_only_for_our_pid(void **state)
{
	char pid[32];

	(void)state;
	setenv("WATCHDOG_USEC", "20000000", 1);
	unsetenv("WATCHDOG_PID");
	assert_int_equal(notify_watchdog_usec(), 20000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_watchdog_usec(), 20000000);
	setenv("WATCHDOG_PID", "1", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(notify_watchdog_usec(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(states_arrive_as_datagrams_on_a_path_socket),
		cmocka_unit_test(abstract_socket_names_start_with_at),
		cmocka_unit_test(no_socket_is_not_an_error_and_a_bad_one_is),
		cmocka_unit_test(watchdog_interval_is_read_only_for_our_pid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
