/* test_log.c -- tests common/log.c: logfmt quoting, levels, one write */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static int fds[2];
static char out[2 * LOG_LINE_MAX];

static int
setup(void **state)
{
	(void)state;
	if (pipe(fds) != 0)
		return -1;
	log_set_fd(fds[1]);
	log_set_level(LOG_LEVEL_DEBUG);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	log_set_fd(2);
	log_set_level(LOG_LEVEL_INFO);
	close(fds[0]);
	close(fds[1]);
	return 0;
}

/* Reads what one log call wrote: it arrives in one read, being one write
 * of at most PIPE_BUF bytes. */
static const char *
take(void)
{
	ssize_t n = read(fds[0], out, sizeof(out) - 1);

	assert_true(n > 0);
	out[n] = '\0';
	return out;
}

static void
msg_is_quoted_and_line_has_timestamp_and_level(void **state)
{
	const char *l;

	(void)state;
	log_msg(LOG_LEVEL_WARN, "disk %s is %d%% full", "/var", 93);
	l = take();
	assert_true(strncmp(l, "ts=", 3) == 0);
	assert_non_null(strstr(l, "Z level=warn msg=\"disk /var is 93% full\"\n"));
	assert_int_equal(strchr(l, '\n') - l + 1, (long)strlen(l));
}

static void
kv_values_are_quoted_only_when_needed(void **state)
{
	const char *l;

	(void)state;
	log_kv(LOG_LEVEL_INFO, "upload", "key", "a/b", "space", "a b", "eq",
	    "x=y", "quote", "say \"hi\"", "empty", "", "nul", (char *)NULL,
	    (char *)NULL);
	l = take();
	assert_non_null(strstr(l, " key=a/b space=\"a b\" eq=\"x=y\" "
	    "quote=\"say \\\"hi\\\"\" empty=\"\" nul=(null)\n"));
}

static void
control_characters_cannot_forge_lines(void **state)
{
	const char *l;

	(void)state;
	log_kv(LOG_LEVEL_ERROR, "bad\nmsg", "k", "v\nts=0 level=error\x01\\",
	    (char *)NULL);
	l = take();
	assert_non_null(strstr(l, "msg=\"bad\\nmsg\""));
	assert_non_null(strstr(l, "k=\"v\\nts=0 level=error\\x01\\\\\"\n"));
	assert_int_equal(strchr(l, '\n') - l + 1, (long)strlen(l));
}

static void
level_filter_drops_lower_levels(void **state)
{
	enum log_level lv = LOG_LEVEL_INFO;
	const char *l;

	(void)state;
	log_set_level(LOG_LEVEL_WARN);
	assert_false(log_enabled(LOG_LEVEL_INFO));
	log_msg(LOG_LEVEL_INFO, "dropped");
	log_msg(LOG_LEVEL_ERROR, "kept");
	l = take();
	assert_null(strstr(l, "dropped"));
	assert_non_null(strstr(l, "level=error msg=\"kept\""));
	assert_int_equal(log_parse_level("WARNING", &lv), 0);
	assert_int_equal(lv, LOG_LEVEL_WARN);
	assert_int_equal(log_parse_level("debug", &lv), 0);
	assert_int_equal(lv, LOG_LEVEL_DEBUG);
	assert_int_equal(log_parse_level("loud", &lv), -EINVAL);
	assert_int_equal(lv, LOG_LEVEL_DEBUG);
	assert_string_equal(log_level_name(LOG_LEVEL_ERROR), "error");
}

static void
long_lines_are_cut_and_marked(void **state)
{
	static char big[3 * LOG_LINE_MAX];
	const char *l;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	log_kv(LOG_LEVEL_INFO, "big", "v", big, (char *)NULL);
	l = take();
	assert_int_equal(strlen(l), LOG_LINE_MAX);
	assert_non_null(strstr(l, "x truncated=1\n"));
}

static void
errno_is_preserved(void **state)
{
	(void)state;
	errno = ENOSPC;
	log_msg(LOG_LEVEL_INFO, "x");
	assert_int_equal(errno, ENOSPC);
	(void)take();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(msg_is_quoted_and_line_has_timestamp_and_level, setup, teardown),
		cmocka_unit_test_setup_teardown(kv_values_are_quoted_only_when_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(control_characters_cannot_forge_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(level_filter_drops_lower_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(long_lines_are_cut_and_marked, setup, teardown),
		cmocka_unit_test_setup_teardown(errno_is_preserved, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
