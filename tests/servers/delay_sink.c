/* delay_sink.c -- an HTTP/1.1 sink that answers every request D ms after it
 * was fully received: a stand-in for a slow, far-away S3 endpoint.
 *
 * One thread, one epoll set, keep-alive connections (as many as
 * --max-conns, default 4096), listening on 127.0.0.1 only. Each request
 * (PUT, POST, GET, HEAD, DELETE: headers, then a Content-Length body that
 * may arrive in any number of reads, which is read and thrown away) is
 * answered `200 OK` with an ETag and `Content-Length: 0` exactly --delay-ms
 * after its last byte arrived. What must always hold:
 * - A connection has at most one request waiting for its answer, and it
 *   reads nothing more until that answer is written: bytes of a pipelined
 *   next request stay in its buffer (or in the socket) meanwhile.
 * - Every request waits the same delay, so deadlines are made in
 *   non-decreasing order and the waiting connections form a FIFO sorted by
 *   deadline: the list's head is the earliest, which is what a min-heap
 *   would give at O(log n) per request, here O(1) for both insert and
 *   removal of a connection that closes while it waits. One timerfd, armed
 *   for the head's absolute CLOCK_MONOTONIC deadline, wakes the loop.
 * - Memory is bounded: a fixed header buffer per connection
 *   (SINK_BUF bytes; larger headers get 431 and a close), bodies are never
 *   kept, and connections over --max-conns are closed on accept.
 * - Signals arrive through a signalfd. SIGTERM or SIGINT prints the totals
 *   to stderr and exits 0; SIGALRM (--lifetime, default 3600 s) does the
 *   same, so the sink ends by itself even without timeout(1).
 * On start it prints "delay_sink listening on 127.0.0.1:PORT" to stdout
 * and, with --port-file FILE, writes PORT to FILE (by rename, so a reader
 * never sees it half-written).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define SINK_BUF        16384           /* request line + headers, per connection */
#define SINK_SCRATCH    (256 * 1024)    /* body bytes are read into this and dropped */
#define SINK_EVENTS     256
#define MS_NS           1000000ull

/* Tags in epoll_data for the two descriptors that are not connections. */
#define TAG_LISTEN      ((void *)1)
#define TAG_TIMER       ((void *)2)
#define TAG_SIGNAL      ((void *)3)

enum conn_state { ST_HEADERS, ST_BODY, ST_WAITING };

struct conn {
	int fd;
	enum conn_state state;
	bool close_after;           /* Connection: close, or HTTP/1.0 */
	bool head;                  /* HEAD: no body in the answer (there is none anyway) */
	uint64_t body_left;         /* bytes of the current body still to read */
	uint64_t deadline_ns;       /* ST_WAITING: when to answer */
	struct conn *prev, *next;   /* the waiting FIFO */
	struct conn *aprev, *anext; /* every open connection, for the exit */
	size_t len;                 /* bytes in buf */
	char out[256];              /* the answer not yet written */
	size_t out_len, out_off;
	char buf[SINK_BUF];
};

struct totals {
	uint64_t requests, puts, gets, heads, others, body_bytes;
	uint64_t accepted, refused, bad;
};

struct sink {
	int ep, lfd, tfd, sfd;
	uint64_t delay_ns;
	unsigned max_conns, nconns;
	struct conn *wait_head, *wait_tail;
	struct conn *all;           /* every open connection */
	uint64_t armed_ns;          /* deadline the timerfd is set for; 0: none */
	struct totals t;
	char scratch[SINK_SCRATCH];
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ the FIFO */

static void
wait_push(struct sink *s, struct conn *c)
{
	c->next = NULL;
	c->prev = s->wait_tail;
	if (s->wait_tail != NULL)
		s->wait_tail->next = c;
	else
		s->wait_head = c;
	s->wait_tail = c;
}

static void
wait_remove(struct sink *s, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->wait_head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		s->wait_tail = c->prev;
	c->prev = c->next = NULL;
}

/* Arms the timerfd for the head of the FIFO (or disarms it). Returns 0 or
 * -errno. */
static int
timer_rearm(struct sink *s)
{
	struct itimerspec its;
	uint64_t d = s->wait_head != NULL ? s->wait_head->deadline_ns : 0;

	if (d == s->armed_ns)
		return 0;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(d / 1000000000ull);
	its.it_value.tv_nsec = (long)(d % 1000000000ull);
	if (timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	s->armed_ns = d;
	return 0;
}

/* ------------------------------------------------------- connections */

static int
conn_events(struct sink *s, struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	return epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -errno : 0;
}

static void
conn_close(struct sink *s, struct conn *c)
{
	if (c->state == ST_WAITING)
		wait_remove(s, c);
	if (c->aprev != NULL)
		c->aprev->anext = c->anext;
	else
		s->all = c->anext;
	if (c->anext != NULL)
		c->anext->aprev = c->aprev;
	/* close() also takes the fd out of the epoll set. */
	close(c->fd);
	free(c);
	s->nconns--;
}

/* The value of header NAME in the header block [p, end), or NULL. Sets
 * *vlen. Names compare case-insensitively, as HTTP requires. */
static const char *
header_value(const char *p, const char *end, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *v;

		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
			v = p + nlen + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			while (*vlen > 0 && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' '))
				(*vlen)--;
			return v;
		}
		p = eol + 1;
	}
	return NULL;
}

static bool
value_is(const char *v, size_t vlen, const char *want)
{
	return v != NULL && vlen == strlen(want) && strncasecmp(v, want, vlen) == 0;
}

/* Writes what is left of c->out. Returns 1 when all is written, 0 when the
 * socket is full (EPOLLOUT is then asked for), -1 when the peer is gone. */
static int
conn_flush(struct sink *s, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return conn_events(s, c, EPOLLOUT) < 0 ? -1 : 0;
		return -1;
	}
	c->out_len = c->out_off = 0;
	return 1;
}

/* Queues an answer that needs no delay (100 Continue, or a refusal). */
static int
conn_say(struct sink *s, struct conn *c, const char *text)
{
	size_t n = strlen(text);

	if (c->out_len + n > sizeof(c->out))
		return -1;
	memcpy(c->out + c->out_len, text, n);
	c->out_len += n;
	return conn_flush(s, c) < 0 ? -1 : 0;
}

/* Answers a request it will not serve with status (at once) and counts
 * it. Returns -1: the caller closes the connection. */
static int
refuse(struct sink *s, struct conn *c, const char *status)
{
	char text[128];

	s->t.bad++;
	snprintf(text, sizeof(text), "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	    status);
	(void)conn_say(s, c, text);
	return -1;
}

/* Parses the header block of c->buf[0, hlen). Returns 0 (c is now in
 * ST_BODY) or -1 for a request it cannot serve (answered, then closed). */
static int
parse_headers(struct sink *s, struct conn *c, size_t hlen)
{
	const char *p = c->buf, *end = c->buf + hlen, *sp, *v;
	const char *errstr = NULL;
	char num[24];
	size_t vlen;

	sp = memchr(p, ' ', hlen);
	if (sp == NULL || memmem(p, hlen, " HTTP/1.", 8) == NULL) {
		return refuse(s, c, "400 Bad Request");
	}
	c->head = sp - p == 4 && memcmp(p, "HEAD", 4) == 0;
	if (sp - p == 3 && memcmp(p, "PUT", 3) == 0)
		s->t.puts++;
	else if (sp - p == 3 && memcmp(p, "GET", 3) == 0)
		s->t.gets++;
	else if (c->head)
		s->t.heads++;
	else
		s->t.others++;
	c->close_after = memmem(p, hlen, " HTTP/1.0\r", 10) != NULL;
	v = header_value(p, end, "Connection", &vlen);
	if (value_is(v, vlen, "close"))
		c->close_after = true;
	else if (value_is(v, vlen, "keep-alive"))
		c->close_after = false;
	if (header_value(p, end, "Transfer-Encoding", &vlen) != NULL) {
		/* No client of this project sends chunked bodies; refuse, do not guess. */
		return refuse(s, c, "501 Not Implemented");
	}
	c->body_left = 0;
	v = header_value(p, end, "Content-Length", &vlen);
	if (v != NULL) {
		if (vlen == 0 || vlen >= sizeof(num)) {
			return refuse(s, c, "400 Bad Request");
		}
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		c->body_left = (uint64_t)strtonum(num, 0, LLONG_MAX, &errstr);
		if (errstr != NULL) {
			return refuse(s, c, "400 Bad Request");
		}
	}
	v = header_value(p, end, "Expect", &vlen);
	if (c->body_left > 0 && value_is(v, vlen, "100-continue") &&
	    conn_say(s, c, "HTTP/1.1 100 Continue\r\n\r\n") < 0)
		return -1;
	c->state = ST_BODY;
	return 0;
}

/* The request's last byte is in: stop reading and wait for the deadline. */
static int
request_done(struct sink *s, struct conn *c)
{
	s->t.requests++;
	c->state = ST_WAITING;
	c->deadline_ns = now_ns() + s->delay_ns;
	wait_push(s, c);
	if (conn_events(s, c, 0) < 0)
		return -1;
	return timer_rearm(s) < 0 ? -1 : 0;
}

/* Consumes what c->buf holds: headers, body bytes, up to the end of one
 * request. Returns 0, or -1 when c must be closed. */
static int
conn_process(struct sink *s, struct conn *c)
{
	while (c->state != ST_WAITING) {
		if (c->state == ST_HEADERS) {
			char *eoh = memmem(c->buf, c->len, "\r\n\r\n", 4);
			size_t hlen;

			if (eoh == NULL) {
				if (c->len < sizeof(c->buf))
					return 0;
				return refuse(s, c, "431 Request Header Fields Too Large");
			}
			hlen = (size_t)(eoh - c->buf) + 4;
			if (parse_headers(s, c, hlen) < 0)
				return -1;
			memmove(c->buf, c->buf + hlen, c->len - hlen);
			c->len -= hlen;
		}
		if (c->state == ST_BODY) {
			size_t take = c->body_left < c->len ? (size_t)c->body_left : c->len;

			memmove(c->buf, c->buf + take, c->len - take);
			c->len -= take;
			c->body_left -= take;
			s->t.body_bytes += take;
			if (c->body_left > 0)
				return 0;
			if (request_done(s, c) < 0)
				return -1;
		}
	}
	return 0;
}

/* One read from a readable connection. Body bytes beyond the buffered ones
 * go through the scratch buffer, so a large body costs no copying into
 * c->buf; whatever follows the body is kept for the next request. */
static int
conn_read(struct sink *s, struct conn *c)
{
	ssize_t n;

	if (c->state == ST_BODY && c->len == 0) {
		size_t want = c->body_left < sizeof(s->scratch) ? (size_t)c->body_left :
		    sizeof(s->scratch);

		n = recv(c->fd, s->scratch, want, 0);
		if (n > 0) {
			c->body_left -= (uint64_t)n;
			s->t.body_bytes += (uint64_t)n;
			return c->body_left == 0 ? request_done(s, c) : 0;
		}
	} else {
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			return conn_process(s, c);
		}
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	return -1;  /* EOF or an error: the peer is gone */
}

/* Writes the delayed answer and goes back to reading (or closes). */
static int
conn_answer(struct sink *s, struct conn *c)
{
	int n;

	c->state = ST_HEADERS;
	n = snprintf(c->out, sizeof(c->out),
	    "HTTP/1.1 200 OK\r\nETag: \"%032" PRIx64 "\"\r\nContent-Length: 0\r\n%s\r\n",
	    s->t.requests, c->close_after ? "Connection: close\r\n" : "");
	c->out_len = (size_t)n;
	c->out_off = 0;
	n = conn_flush(s, c);
	if (n <= 0)
		return n;
	if (c->close_after)
		return -1;
	if (conn_events(s, c, EPOLLIN | EPOLLRDHUP) < 0)
		return -1;
	return conn_process(s, c);
}

static void
on_conn(struct sink *s, struct conn *c, uint32_t events)
{
	int rc = 0;

	if (events & EPOLLOUT) {
		rc = conn_flush(s, c);
		if (rc > 0 && c->close_after && c->state == ST_HEADERS)
			rc = -1;
		else if (rc > 0)
			rc = conn_events(s, c, EPOLLIN | EPOLLRDHUP) < 0 ? -1 :
			    c->state == ST_HEADERS ? conn_process(s, c) : 0;
	} else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		rc = conn_read(s, c);
	}
	if (rc < 0)
		conn_close(s, c);
}

static void
on_timer(struct sink *s)
{
	uint64_t expirations, now = now_ns();

	(void)!read(s->tfd, &expirations, sizeof(expirations));
	s->armed_ns = 0;
	while (s->wait_head != NULL && s->wait_head->deadline_ns <= now) {
		struct conn *c = s->wait_head;

		wait_remove(s, c);
		if (conn_answer(s, c) < 0)
			conn_close(s, c);
	}
	(void)timer_rearm(s);
}

static void
on_accept(struct sink *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct epoll_event ev;
		struct conn *c;

		if (fd < 0)
			return;  /* EAGAIN: all accepted; EMFILE and others: retried on the next event */
		if (s->nconns >= s->max_conns || (c = calloc(1, sizeof(*c))) == NULL) {
			s->t.refused++;
			close(fd);
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->state = ST_HEADERS;
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = c;
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->anext = s->all;
		if (s->all != NULL)
			s->all->aprev = c;
		s->all = c;
		s->nconns++;
		s->t.accepted++;
	}
}

/* ------------------------------------------------------------ start-up */

/* Listens on 127.0.0.1:port (0: the kernel picks). Returns the fd or
 * -errno; *bound gets the port. */
static int
listen_loopback(unsigned port, unsigned backlog, unsigned *bound)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd, one = 1, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, (int)backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		err = errno;
		close(fd);
		return -err;
	}
	*bound = ntohs(sa.sin_port);
	return fd;
}

static int
epoll_add(int ep, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* Raises the open-file limit to what the connections need (soft up to
 * hard). Not raising it is not fatal: connections past it are refused and
 * counted. */
static void
raise_nofile(unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

static int
write_port_file(const char *path, unsigned port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (f == NULL)
		return -errno;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		return -errno;
	return 0;
}

static int
sink_open(struct sink *s, unsigned port, unsigned lifetime_s, unsigned *bound)
{
	sigset_t set;
	int rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGALRM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	s->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->sfd < 0 || s->tfd < 0 || s->ep < 0)
		return -errno;
	s->lfd = listen_loopback(port, s->max_conns, bound);
	if (s->lfd < 0)
		return s->lfd;
	if ((rc = epoll_add(s->ep, s->lfd, TAG_LISTEN)) < 0 ||
	    (rc = epoll_add(s->ep, s->tfd, TAG_TIMER)) < 0 ||
	    (rc = epoll_add(s->ep, s->sfd, TAG_SIGNAL)) < 0)
		return rc;
	alarm(lifetime_s);
	return 0;
}

/* Runs until a signal. Returns the signal's number, or -errno. */
static int
sink_loop(struct sink *s)
{
	struct epoll_event evs[SINK_EVENTS];

	for (;;) {
		int n = epoll_wait(s->ep, evs, SINK_EVENTS, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;

			if (tag == TAG_LISTEN) {
				on_accept(s);
			} else if (tag == TAG_TIMER) {
				on_timer(s);
			} else if (tag == TAG_SIGNAL) {
				struct signalfd_siginfo si;

				if (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
					return (int)si.ssi_signo;
			} else {
				on_conn(s, tag, evs[i].events);
			}
		}
	}
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: delay_sink [--delay-ms D] [--port P] [--port-file FILE]\n"
	    "         [--max-conns N] [--lifetime S]\n"
	    "  Answers every HTTP/1.1 request on 127.0.0.1:P (0, the default: a free\n"
	    "  port) with 200, an ETag and no body, D ms (default 30) after the request\n"
	    "  was fully received. Up to N (default 4096) keep-alive connections. Ends\n"
	    "  on SIGTERM or SIGINT, or after S seconds (default 3600), and prints its\n"
	    "  totals to stderr.\n");
}

static int
parse_num(const char *arg, const char *what, long long lo, long long hi, unsigned *v)
{
	const char *errstr = NULL;
	long long x = strtonum(arg, lo, hi, &errstr);

	if (errstr != NULL) {
		fprintf(stderr, "delay_sink: %s %s: %s\n", what, arg, errstr);
		return -1;
	}
	*v = (unsigned)x;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "max-conns", required_argument, NULL, 'm' },
		{ "lifetime", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct sink s;       /* static: the scratch buffer is large */
	unsigned delay_ms = 30, port = 0, lifetime = 3600, bound = 0;
	const char *port_file = NULL;
	int c, rc;

	s.max_conns = 4096;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': if (parse_num(optarg, "--delay-ms", 0, 600000, &delay_ms) < 0) return 2; break;
		case 'p': if (parse_num(optarg, "--port", 0, 65535, &port) < 0) return 2; break;
		case 'f': port_file = optarg; break;
		case 'm': if (parse_num(optarg, "--max-conns", 1, 1 << 20, &s.max_conns) < 0) return 2; break;
		case 'l': if (parse_num(optarg, "--lifetime", 1, 7 * 86400, &lifetime) < 0) return 2; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	s.delay_ns = (uint64_t)delay_ms * MS_NS;
	/* The connections, plus the listener, the timer, the signals, stdio. */
	raise_nofile(s.max_conns + 16);
	if ((rc = sink_open(&s, port, lifetime, &bound)) < 0) {
		fprintf(stderr, "delay_sink: cannot listen on 127.0.0.1:%u: %s\n", port, strerror(-rc));
		return 1;
	}
	if (port_file != NULL && (rc = write_port_file(port_file, bound)) < 0) {
		fprintf(stderr, "delay_sink: %s: %s\n", port_file, strerror(-rc));
		return 1;
	}
	printf("delay_sink listening on 127.0.0.1:%u, delay %u ms, up to %u connections\n",
	    bound, delay_ms, s.max_conns);
	fflush(stdout);
	rc = sink_loop(&s);
	fprintf(stderr, "delay_sink: %s: requests %" PRIu64 " put %" PRIu64 " get %" PRIu64
	    " head %" PRIu64 " other %" PRIu64 " body_bytes %" PRIu64 " connections %" PRIu64
	    " refused %" PRIu64 " bad %" PRIu64 " open %u\n",
	    rc > 0 ? strsignal(rc) : strerror(-rc), s.t.requests, s.t.puts, s.t.gets, s.t.heads,
	    s.t.others, s.t.body_bytes, s.t.accepted, s.t.refused, s.t.bad, s.nconns);
	while (s.all != NULL)
		conn_close(&s, s.all);
	return rc > 0 ? 0 : 1;
}
