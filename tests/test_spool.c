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

/* The spool file at path parses back as exactly this message. */
static void
assert_spooled(const char *path, const char *key, size_t key_len,
    const void *body, size_t body_len, const char *reason, unsigned attempts)
{
	static uint8_t buf[1 << 16];
	struct spool_msg m;
	size_t n = read_file(path, buf, sizeof(buf));

	assert_int_equal(spool_parse(buf, n, &m), 0);
	assert_int_equal(m.key_len, key_len);
	assert_memory_equal(m.key, key, key_len);
	assert_int_equal(m.body_len, body_len);
	if (body_len > 0)
		assert_memory_equal(m.body, body, body_len);
	assert_string_equal(m.reason, reason);
	assert_int_equal(m.attempts, attempts);
}

static void
written_message_parses_back_with_key_body_and_reason(void **state)
{
	uint8_t body[300];
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
	assert_spooled(path, "a/k\xc3\xa9y", 5, body, sizeof(body),
	    "KeyTooLongError: line1 line2", 3);
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

/* A dead letter written in pieces (a multipart batch object built again
 * into the spool) reads back as one message: its body is the pieces in
 * order, its length the one written at commit over the zeros. */
static void
streamed_dead_letter_parses_back_as_its_pieces_in_order(void **state)
{
	static uint8_t body[3 * 10000];
	struct spool_stream *st;
	char path[256];
	int err = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7);
	st = spool_stream_open(dir, "9-64-batch", "logs/x.zst", 10, "SlowDown", 3, &err);
	assert_non_null(st);
	snprintf(path, sizeof(path), "%s/.tmp-9-64-batch", dir);
	assert_int_equal(access(path, F_OK), 0);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(spool_stream_write(st, body + i * 10000, 10000), 0);
	assert_int_equal(spool_stream_commit(st), 0);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/9-64-batch.dlq", dir);
	assert_spooled(path, "logs/x.zst", 10, body, sizeof(body), "SlowDown", 3);
}

/* An abandoned stream (the uploader stopped, or the object is built again)
 * leaves no file, and an empty body is a valid dead letter. */
static void
aborted_stream_leaves_nothing_and_an_empty_one_commits(void **state)
{
	struct spool_stream *st;
	char path[256];
	int err = 0;

	(void)state;
	st = spool_stream_open(dir, "a", "k", 1, "r", 1, &err);
	assert_non_null(st);
	assert_int_equal(spool_stream_write(st, "abc", 3), 0);
	spool_stream_abort(st);
	snprintf(path, sizeof(path), "%s/.tmp-a", dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/a.dlq", dir);
	assert_int_equal(access(path, F_OK), -1);
	st = spool_stream_open(dir, "e", "k", 1, "r", 1, &err);
	assert_non_null(st);
	assert_int_equal(spool_stream_commit(st), 0);
	snprintf(path, sizeof(path), "%s/e.dlq", dir);
	assert_spooled(path, "k", 1, NULL, 0, "r", 1);
	assert_null(spool_stream_open("/dev/null/spool", "x", "k", 1, "r", 1, &err));
	assert_int_equal(err, -ENOTDIR);
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
		cmocka_unit_test_setup_teardown(streamed_dead_letter_parses_back_as_its_pieces_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(aborted_stream_leaves_nothing_and_an_empty_one_commits, setup, teardown),
		cmocka_unit_test(unwritable_directory_returns_an_error_and_leaves_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
