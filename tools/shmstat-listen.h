/* shmstat-listen.h -- shmstat --listen: /metrics over HTTP (libmicrohttpd). */
#ifndef S3RING_SHMSTAT_LISTEN_H
#define S3RING_SHMSTAT_LISTEN_H

#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>

/* Renders one scrape into a malloc'd buffer (*buf, *len; the server frees
 * it). Returns 0, or -errno with a one-line message (with a newline) in
 * msg; *buf may then be NULL. */
typedef int (*shmstat_render_fn)(void *arg, char **buf, size_t *len, char *msg,
    size_t msgcap);

/* Parses "ADDRESS:PORT" (an IPv4 literal or localhost; port 0 picks a
 * free one). Returns 0 or -EINVAL. */
int shmstat_parse_listen(const char *spec, struct sockaddr_in *out)
	__attribute__((warn_unused_result));

/* Serves GET /metrics on addr until *stop is set, after printing the URL
 * (with the port actually bound) on announce. Returns 0, or
 * -EADDRNOTAVAIL when the address cannot be bound. */
int shmstat_listen(const struct sockaddr_in *addr, shmstat_render_fn render,
    void *arg, volatile sig_atomic_t *stop, FILE *announce)
	__attribute__((warn_unused_result));

#endif
