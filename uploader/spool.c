/* spool.c -- dead-letter files: written atomically, parsed defensively.
 *
 * File format, chosen to be readable with `head` and safe to parse:
 *   s3ring-dead-letter 1\n
 *   key-length: N\n  body-length: M\n  attempts: A\n  reason: TEXT\n
 *   \n KEY BODY
 * Lengths come first, so a key or body may hold any byte. A file is visible
 * under its final name only once complete (rename after fsync): a crash
 * leaves a temporary file, never a half message that replay would send.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ring.h"

static int
write_all(int fd, const struct iovec *iov, int n)
{
	struct iovec v[4];
	ssize_t w;

	memcpy(v, iov, (size_t)n * sizeof(*iov));
	while (n > 0) {
		w = writev(fd, v, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)w >= v[0].iov_len) {
			w -= (ssize_t)v[0].iov_len;
			memmove(v, v + 1, (size_t)(n - 1) * sizeof(*v));
			n--;
		}
		if (n > 0) {
			v[0].iov_base = (char *)v[0].iov_base + w;
			v[0].iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* The header, with the reason on one line (no control characters). A
 * fixed body-length is zero-padded to 20 digits, so that it can be written
 * again in place once the body is complete (spool_stream_commit()). */
static int
head_format(char *head, size_t cap, size_t key_len, uint64_t body_len,
    unsigned attempts, const char *reason, bool fixed)
{
	char why[SPOOL_REASON_MAX];

	snprintf(why, sizeof(why), "%s", reason ? reason : "unknown");
	for (size_t i = 0; why[i] != '\0'; i++)
		if ((unsigned char)why[i] < 0x20 || why[i] == 0x7f)
			why[i] = ' ';
	return snprintf(head, cap, fixed ?
	    SPOOL_MAGIC "key-length: %zu\nbody-length: %020llu\nattempts: %u\nreason: %s\n\n" :
	    SPOOL_MAGIC "key-length: %zu\nbody-length: %llu\nattempts: %u\nreason: %s\n\n",
	    key_len, (unsigned long long)body_len, attempts, why);
}

static int
paths(const char *dir, const char *name_hint, char *tmp, char *final, size_t cap)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(tmp, cap, "%s/.tmp-%s", dir, name_hint) >= cap ||
	    (size_t)snprintf(final, cap, "%s/%s%s", dir, name_hint, SPOOL_SUFFIX) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/* fsync and close fd, then rename tmp to final and fsync dir. Returns 0 or
 * -errno; fd is closed either way, tmp left for the caller to unlink. */
static int
publish(int fd, const char *tmp, const char *final, const char *dir)
{
	int dfd;

	if (fsync(fd) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if (close(fd) < 0 || rename(tmp, final) < 0)
		return -errno;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

int
spool_write(const char *dir, const char *name_hint, const char *key,
    size_t key_len, const void *body, size_t body_len, const char *reason,
    unsigned attempts)
{
	char tmp[4096], final[4096], head[SPOOL_REASON_MAX + 160];
	struct iovec iov[3];
	int fd, rc, hl;

	if ((rc = paths(dir, name_hint, tmp, final, sizeof(tmp))) < 0)
		return rc;
	hl = head_format(head, sizeof(head), key_len, body_len, attempts, reason, false);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	iov[0] = (struct iovec){ head, (size_t)hl };
	iov[1] = (struct iovec){ (void *)key, key_len };
	iov[2] = (struct iovec){ (void *)body, body_len };
	if ((rc = write_all(fd, iov, 3)) < 0) {
		close(fd);
		unlink(tmp);
		return rc;
	}
	if ((rc = publish(fd, tmp, final, dir)) < 0)
		unlink(tmp);
	return rc;
}

struct spool_stream {
	int fd;
	size_t key_len;
	unsigned attempts;
	uint64_t body_off;           /* where the body starts in the file */
	uint64_t body_len;           /* written so far */
	char reason[SPOOL_REASON_MAX];
	char dir[4096], tmp[4096], final[4096];
};

struct spool_stream *
spool_stream_open(const char *dir, const char *name_hint, const char *key,
    size_t key_len, const char *reason, unsigned attempts, int *err)
{
	struct spool_stream *s = malloc(sizeof(*s));
	char head[SPOOL_REASON_MAX + 160];
	struct iovec iov[2];
	int rc, hl;

	if (s == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	if ((size_t)snprintf(s->dir, sizeof(s->dir), "%s", dir) >= sizeof(s->dir))
		rc = -ENAMETOOLONG;
	else
		rc = paths(dir, name_hint, s->tmp, s->final, sizeof(s->tmp));
	if (rc < 0) {
		free(s);
		*err = rc;
		return NULL;
	}
	snprintf(s->reason, sizeof(s->reason), "%s", reason ? reason : "unknown");
	s->key_len = key_len;
	s->attempts = attempts;
	s->body_len = 0;
	hl = head_format(head, sizeof(head), key_len, 0, attempts, s->reason, true);
	s->body_off = (uint64_t)hl + key_len;
	s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (s->fd < 0) {
		*err = -errno;
		free(s);
		return NULL;
	}
	iov[0] = (struct iovec){ head, (size_t)hl };
	iov[1] = (struct iovec){ (void *)key, key_len };
	if ((rc = write_all(s->fd, iov, 2)) < 0) {
		spool_stream_abort(s);
		*err = rc;
		return NULL;
	}
	return s;
}

int
spool_stream_write(struct spool_stream *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t off = s->body_off + s->body_len;
	size_t done = 0;

	while (done < len) {
		ssize_t w = pwrite(s->fd, p + done, len - done, (off_t)(off + done));

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)w;
	}
	s->body_len += len;
	return 0;
}

int
spool_stream_commit(struct spool_stream *s)
{
	char head[SPOOL_REASON_MAX + 160];
	int hl = head_format(head, sizeof(head), s->key_len, s->body_len, s->attempts,
	    s->reason, true);
	int rc;

	/* The body's length in place of the zeros, and nothing past the body
	 * (a write retried after a failure may have left bytes there). */
	errno = 0; /* a short write sets none */
	if (pwrite(s->fd, head, (size_t)hl, 0) != hl ||
	    ftruncate(s->fd, (off_t)(s->body_off + s->body_len)) < 0) {
		rc = errno ? -errno : -EIO;
		spool_stream_abort(s);
		return rc;
	}
	rc = publish(s->fd, s->tmp, s->final, s->dir);
	s->fd = -1;
	if (rc < 0)
		unlink(s->tmp);
	free(s);
	return rc;
}

void
spool_stream_abort(struct spool_stream *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	unlink(s->tmp);
	free(s);
}

/* Reads "NAME: VALUE\n" at *p. Returns the value (NUL-terminated in place
 * of the newline) or NULL. */
static char *
field(char **p, char *end, const char *name)
{
	size_t n = strlen(name);
	char *nl;

	if ((size_t)(end - *p) < n + 2 || memcmp(*p, name, n) != 0 ||
	    (*p)[n] != ':' || (*p)[n + 1] != ' ')
		return NULL;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	if (nl == NULL)
		return NULL;
	*nl = '\0';
	char *v = *p + n + 2;
	*p = nl + 1;
	return v;
}

static int
parse_num(const char *s, size_t *out)
{
	char *e;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &e, 10);
	if (*e != '\0' || errno != 0 || v > (1ull << 40))
		return -1;
	*out = (size_t)v;
	return 0;
}

int
spool_parse(const void *data, size_t len, struct spool_msg *m)
{
	/* The header is parsed from a bounded private copy: the file's bytes
	 * are never written. */
	char hdr[SPOOL_REASON_MAX + 160];
	size_t hlen = len < sizeof(hdr) - 1 ? len : sizeof(hdr) - 1;
	size_t mlen = strlen(SPOOL_MAGIC), klen, blen, att;
	char *p = hdr, *end, *v, *reason;

	memset(m, 0, sizeof(*m));
	memcpy(hdr, data, hlen);
	hdr[hlen] = '\0';
	end = hdr + hlen;
	if (hlen < mlen || memcmp(hdr, SPOOL_MAGIC, mlen) != 0)
		return -EBADMSG;
	p += mlen;
	if (parse_num(field(&p, end, "key-length"), &klen) < 0 ||
	    parse_num(field(&p, end, "body-length"), &blen) < 0 ||
	    parse_num(field(&p, end, "attempts"), &att) < 0 ||
	    (reason = field(&p, end, "reason")) == NULL ||
	    p >= end || *p != '\n')
		return -EBADMSG;
	p++;
	v = (char *)data + (p - hdr);
	if (klen == 0 || klen > RING_MAX_KEY || (size_t)(p - hdr) > len ||
	    len - (size_t)(p - hdr) != klen + blen)
		return -EBADMSG;
	if (!ring_key_valid(v, klen))
		return -EBADMSG;
	m->key = v;
	m->key_len = klen;
	m->body = (const uint8_t *)v + klen;
	m->body_len = blen;
	m->attempts = (unsigned)att;
	snprintf(m->reason, sizeof(m->reason), "%s", reason);
	return 0;
}

/* mkdir -p: the parents 0755, the spool itself 0700. */
static int
make_dirs(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int
spool_check(const char *dir)
{
	char probe[4096 + 64];
	struct stat st;
	int fd, rc;

	rc = make_dirs(dir);
	if (rc < 0)
		return rc;
	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	/* A real write, not access(2): root passes access() on a directory
	 * it still cannot write (a read-only mount, a full disk). */
	if ((size_t)snprintf(probe, sizeof(probe), "%s/.probe.%ld", dir,
	    (long)getpid()) >= sizeof(probe))
		return -ENAMETOOLONG;
	fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write(fd, "probe\n", 6) == 6 ? 0 : (errno ? -errno : -EIO);
	close(fd);
	unlink(probe);
	return rc;
}
