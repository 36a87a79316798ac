/* log.c -- logfmt lines on stderr, one write(2) per line */
/*
 * Every line is built in a stack buffer of LOG_LINE_MAX bytes and handed to
 * the kernel with one write(2), so lines from several threads or processes
 * sharing stderr never interleave (PIPE_BUF atomicity). Nothing here
 * allocates, so logging works when memory is exhausted. The level and the
 * fd are atomics: they may be changed from any thread at any time. errno is
 * saved and restored around every call, so `log_msg(...); return -errno;`
 * is correct.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level_cur = LOG_LEVEL_INFO;
static _Atomic int log_fd = 2;

/* The suffix written when a line is cut; space for it is always kept. */
#define TRUNC_SUFFIX " truncated=1\n"
#define TRUNC_RESERVE (sizeof(TRUNC_SUFFIX) - 1)

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	bool truncated;
};

void
log_set_level(enum log_level level)
{
	atomic_store_explicit(&log_level_cur, (int)level, memory_order_relaxed);
}

bool
log_enabled(enum log_level level)
{
	return (int)level >= atomic_load_explicit(&log_level_cur,
	    memory_order_relaxed);
}

int
log_parse_level(const char *s, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{ "debug", LOG_LEVEL_DEBUG },
		{ "info", LOG_LEVEL_INFO },
		{ "warn", LOG_LEVEL_WARN },
		{ "warning", LOG_LEVEL_WARN },
		{ "error", LOG_LEVEL_ERROR },
	};

	if (s == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

const char *
log_level_name(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_DEBUG:
		return "debug";
	case LOG_LEVEL_INFO:
		return "info";
	case LOG_LEVEL_WARN:
		return "warn";
	case LOG_LEVEL_ERROR:
		return "error";
	}
	return "unknown";
}

void
log_set_fd(int fd)
{
	atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
}

/* Appends raw bytes, marking the line truncated when the cap is reached. */
static void
line_put(struct line *l, const char *s, size_t n)
{
	size_t room = sizeof(l->buf) - TRUNC_RESERVE - l->len;

	if (l->truncated)
		return;
	if (n > room) {
		n = room;
		l->truncated = true;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
line_puts(struct line *l, const char *s)
{
	line_put(l, s, strlen(s));
}

static bool
needs_quotes(const char *v)
{
	if (*v == '\0')
		return true;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == 0x7f)
			return true;
	}
	return false;
}

/*
 * Appends v as a logfmt value. Quotes and backslashes are escaped, and
 * control characters are written as \n, \t, \r or \xHH so that a value can
 * never start a new line or forge another key.
 */
static void
line_value(struct line *l, const char *v, bool force_quotes)
{
	bool quote;

	if (v == NULL)
		v = "(null)";
	quote = force_quotes || needs_quotes(v);
	if (quote)
		line_put(l, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char esc[5];

		switch (*p) {
		case '"':
			line_put(l, "\\\"", 2);
			break;
		case '\\':
			line_put(l, "\\\\", 2);
			break;
		case '\n':
			line_put(l, "\\n", 2);
			break;
		case '\t':
			line_put(l, "\\t", 2);
			break;
		case '\r':
			line_put(l, "\\r", 2);
			break;
		default:
			if (*p < ' ' || *p == 0x7f) {
				snprintf(esc, sizeof(esc), "\\x%02x", *p);
				line_put(l, esc, 4);
			} else {
				line_put(l, (const char *)p, 1);
			}
		}
	}
	if (quote)
		line_put(l, "\"", 1);
}

static void
line_start(struct line *l, enum log_level level, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char stamp[96];

	l->len = 0;
	l->truncated = false;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp, sizeof(stamp), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
	line_puts(l, stamp);
	line_puts(l, " level=");
	line_puts(l, log_level_name(level));
	line_puts(l, " msg=");
	line_value(l, msg, true);
}

static void
line_finish(struct line *l)
{
	const char *p;
	size_t left;
	int fd;

	if (l->truncated) {
		memcpy(l->buf + l->len, TRUNC_SUFFIX, TRUNC_RESERVE);
		l->len += TRUNC_RESERVE;
	} else {
		l->buf[l->len++] = '\n';
	}

	/* One write in the normal case; the loop only covers EINTR and the
	 * partial writes that a full pipe to a dead reader can cause. */
	fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
	p = l->buf;
	left = l->len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	int saved_errno = errno;
	char text[LOG_LINE_MAX];
	struct line l;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	line_start(&l, level, text);
	line_finish(&l);
	errno = saved_errno;
}

void
log_kv(enum log_level level, const char *msg, ...)
{
	int saved_errno = errno;
	struct line l;
	const char *key;
	va_list ap;

	if (!log_enabled(level))
		return;
	line_start(&l, level, msg);
	va_start(ap, msg);
	while ((key = va_arg(ap, const char *)) != NULL) {
		const char *value = va_arg(ap, const char *);

		line_put(&l, " ", 1);
		line_puts(&l, key);
		line_put(&l, "=", 1);
		line_value(&l, value, false);
	}
	va_end(ap);
	line_finish(&l);
	errno = saved_errno;
}
