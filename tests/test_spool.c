/* test_spool.c -- tests for uploader/spool.c: atomic dead-letter files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-spool-%d", (int)getpid());
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static size_t
read_file(const char *path, uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap);
	close(fd);
	assert_true(n >= 0);
	return (size_t)n;
}

static void
written_message_parses_back_with_key_body_and_reason(void **state)
{
	static uint8_t buf[4096];
	uint8_t body[300];
	struct spool_msg m;
	char path[256];
	struct stat st;

	(void)state;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)i; /* every byte value, newlines included */
	assert_int_equal(spool_write(dir, "7-100", "a/k\xc3\xa9y", 5, body, sizeof(body),
	    "KeyTooLongError: line1\nline2", 3), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/7-100.dlq", dir);
	size_t n = read_file(path, buf, sizeof(buf));
	assert_int_equal(spool_parse(buf, n, &m), 0);
	assert_int_equal(m.key_len, 5);
	assert_memory_equal(m.key, "a/k\xc3\xa9y", 5);
	assert_int_equal(m.body_len, sizeof(body));
	assert_memory_equal(m.body, body, sizeof(body));
	assert_string_equal(m.reason, "KeyTooLongError: line1 line2");
	assert_int_equal(m.attempts, 3);
	/* No temporary file is left behind. */
	snprintf(path, sizeof(path), "%s/.tmp-7-100", dir);
	assert_int_equal(access(path, F_OK), -1);
}

static void
truncated_or_altered_files_are_refused(void **state)
{
	static uint8_t buf[4096];
	struct spool_msg m;
	char path[256];
	size_t n;

	(void)state;
	assert_int_equal(spool_write(dir, "x", "key", 3, "body", 4, "r", 1), 0);
	snprintf(path, sizeof(path), "%s/x.dlq", dir);
	n = read_file(path, buf, sizeof(buf));
	assert_int_equal(spool_parse(buf, n, &m), 0);
	assert_int_equal(spool_parse(buf, n - 1, &m), -EBADMSG);
	assert_int_equal(spool_parse(buf, 10, &m), -EBADMSG);
	buf[0] = 'S';
	assert_int_equal(spool_parse(buf, n, &m), -EBADMSG);
	assert_int_equal(spool_parse("", 0, &m), -EBADMSG);
	const char *bad_key = "s3ring-dead-letter 1\nkey-length: 2\nbody-length: 0\n"
	    "attempts: 1\nreason: r\n\na\n";
	assert_int_equal(spool_parse(bad_key, strlen(bad_key), &m), -EBADMSG);
	const char *huge = "s3ring-dead-letter 1\nkey-length: 99999999999999999999\n"
	    "body-length: 0\nattempts: 1\nreason: r\n\nab";
	assert_int_equal(spool_parse(huge, strlen(huge), &m), -EBADMSG);
}

static void
unwritable_directory_returns_an_error_and_leaves_nothing(void **state)
{
	(void)state;
	assert_int_equal(spool_write("/proc/no-such-spool", "x", "k", 1, "b", 1, "r", 1) < 0, 1);
	assert_int_equal(spool_write("/dev/null/spool", "x", "k", 1, "b", 1, "r", 1), -ENOTDIR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(written_message_parses_back_with_key_body_and_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(truncated_or_altered_files_are_refused, setup, teardown),
		cmocka_unit_test(unwritable_directory_returns_an_error_and_leaves_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
