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

int
spool_write(const char *dir, const char *name_hint, const char *key,
    size_t key_len, const void *body, size_t body_len, const char *reason,
    unsigned attempts)
{
	char tmp[4096], final[4096], head[SPOOL_REASON_MAX + 160], why[SPOOL_REASON_MAX];
	struct iovec iov[3];
	int fd, dfd, rc, hl;
	size_t i;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	/* The reason goes on one line: no control characters. */
	snprintf(why, sizeof(why), "%s", reason ? reason : "unknown");
	for (i = 0; why[i] != '\0'; i++)
		if ((unsigned char)why[i] < 0x20 || why[i] == 0x7f)
			why[i] = ' ';
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", dir, name_hint) >= sizeof(tmp) ||
	    (size_t)snprintf(final, sizeof(final), "%s/%s%s", dir, name_hint, SPOOL_SUFFIX) >= sizeof(final))
		return -ENAMETOOLONG;
	hl = snprintf(head, sizeof(head),
	    SPOOL_MAGIC "key-length: %zu\nbody-length: %zu\nattempts: %u\nreason: %s\n\n",
	    key_len, body_len, attempts, why);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	iov[0] = (struct iovec){ head, (size_t)hl };
	iov[1] = (struct iovec){ (void *)key, key_len };
	iov[2] = (struct iovec){ (void *)body, body_len };
	if ((rc = write_all(fd, iov, 3)) < 0 || (fsync(fd) < 0 && (rc = -errno)))
		goto out_unlink;
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, final) < 0) {
		rc = -errno;
		goto out_unlink;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;

out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
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
