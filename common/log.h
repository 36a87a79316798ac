/* log.h -- logfmt lines on stderr, one write(2) per line */
#ifndef S3RING_LOG_H
#define S3RING_LOG_H

#include <stdbool.h>

/*
 * Levels are named LOG_LEVEL_* rather than LOG_* so that a file which also
 * includes <syslog.h> (LOG_INFO, LOG_ERR, ...) still compiles.
 */
enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO = 1,
	LOG_LEVEL_WARN = 2,
	LOG_LEVEL_ERROR = 3,
};

/* The longest line written; longer ones are cut and end in "truncated=1".
 * It equals PIPE_BUF so that a line written to a pipe is never interleaved
 * with another process's line. */
#define LOG_LINE_MAX 4096

/* Sets the lowest level that is written (default LOG_LEVEL_INFO). Safe from
 * any thread. */
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* Parses "debug", "info", "warn"/"warning" or "error" (any case). Returns 0,
 * or -EINVAL and leaves *out untouched. */
int log_parse_level(const char *s, enum log_level *out)
	__attribute__((warn_unused_result));

const char *log_level_name(enum log_level level);

/* Redirects the lines to fd (default 2). Tests use it to capture the log.
 * The caller keeps ownership of fd. */
void log_set_fd(int fd);

/*
 * Writes `ts=... level=... msg="..."`, where msg is the printf-formatted
 * text, escaped and quoted as logfmt requires. Never fails visibly: a write
 * error is ignored, since there is nowhere left to report it. errno is
 * preserved so that callers can log before they return -errno.
 */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Writes `ts=... level=... msg="msg" k1=v1 k2=v2`, taking a NULL-terminated
 * list of key and value strings. A value is quoted when it is empty or holds
 * a space, '=', '"' or a control character; a NULL value is written as
 * "(null)". Keys are written as given and must be plain words.
 */
void log_kv(enum log_level level, const char *msg, ...)
	__attribute__((sentinel));

#endif /* S3RING_LOG_H */
