/* shmstat-listen.c -- shmstat --listen: serves /metrics over HTTP.
 *
 * Invariants: the server (libmicrohttpd, one internal polling thread)
 * binds only the address it is given, answers GET and HEAD of /metrics
 * with a fresh sample rendered by the caller, 404 elsewhere, and never
 * keeps more than SHMSTAT_LISTEN_CONNS connections or a connection idle
 * for more than 10 s: a scraper cannot make it grow. Only the polling
 * thread renders, so the caller's SIGBUS guard is used by one thread at a
 * time. libmicrohttpd is linked into shmstat alone: the library, the
 * uploader and the other tools do not depend on it.
 */
#include "shmstat-listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#define SHMSTAT_LISTEN_CONNS 16

struct listener {
	shmstat_render_fn render;
	void *arg;
};

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned status, const char *type, char *buf,
    size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, buf,
	    MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (r == NULL) {
		free(buf);
		return MHD_NO;
	}
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	char *buf = strdup(text);

	if (buf == NULL)
		return MHD_NO;
	return reply(conn, status, "text/plain; charset=utf-8", buf, strlen(buf));
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct listener *l = cls;
	char *buf = NULL, msg[600];
	size_t len = 0;
	int rc;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* a body is read and ignored */
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or HEAD only\n");
	if (strcmp(url, "/metrics") != 0)
		return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
	rc = l->render(l->arg, &buf, &len, msg, sizeof(msg));
	if (rc < 0) {
		/* No ring (or a corrupt one): the scrape fails visibly, and
		 * Prometheus marks the target down. */
		free(buf);
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
	}
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf, len);
}

int
shmstat_parse_listen(const char *spec, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	char *end;
	unsigned long port;

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

int
shmstat_listen(const struct sockaddr_in *addr, shmstat_render_fn render, void *arg,
    volatile sig_atomic_t *stop, FILE *announce)
{
	struct listener l = { .render = render, .arg = arg };
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	char ip[INET_ADDRSTRLEN];

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
	    ntohs(addr->sin_port), NULL, NULL, on_request, &l,
	    MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)addr,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)SHMSTAT_LISTEN_CONNS,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10u,
	    MHD_OPTION_END);
	if (d == NULL)
		return -EADDRNOTAVAIL;
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	inet_ntop(AF_INET, &addr->sin_addr, ip, sizeof(ip));
	if (announce != NULL) {
		fprintf(announce, "shmstat: serving /metrics on http://%s:%u/metrics\n", ip,
		    info != NULL ? (unsigned)info->port : (unsigned)ntohs(addr->sin_port));
		fflush(announce);
	}
	while (!*stop) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	MHD_stop_daemon(d);
	return 0;
}
