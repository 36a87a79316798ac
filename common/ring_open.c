/* ring_open.c -- naming, creating, attaching to and retiring s3ring rings.
 *
 * Invariants kept here:
 * - A ring is visible under its name only when it is complete: it is built
 *   unnamed and linked in, so no reader ever sees a half-made header, and a
 *   creator killed half-way leaves nothing behind.
 * - The geometry is checked on every attach, before anything else is read,
 *   and the data region is mapped only as far as the object reaches.
 * - Retirement is one word in the header, read by every put after its tail
 *   CAS: a put into a removed or replaced ring fails instead of vanishing.
 */
#include "ring.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "futex.h"
#include "sigbus.h"
#include "utf8.h"

#define RING_SHM_DIR "/dev/shm"

/* ------------------------------------------------------------- naming */

const char *
ring_default_name(void)
{
	const char *n = getenv("S3RING_RING");

	return n != NULL && *n != '\0' ? n : "default";
}

bool
ring_name_valid(const char *name)
{
	size_t n = 0;

	if (name == NULL || name[0] == '.' || name[0] == '\0')
		return false;
	for (; name[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)name[n];
		if (n >= RING_NAME_MAX)
			return false;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		    ch == '-'))
			return false;
	}
	return true;
}

bool
ring_key_valid(const char *key, size_t len)
{
	const unsigned char *s = (const unsigned char *)key;
	size_t i = 0;

	if (key == NULL || len == 0 || len > RING_MAX_KEY)
		return false;
	while (i < len) {
		uint32_t cp;
		size_t n;

		/* Printable ASCII, the common case, a byte at a time without
		 * the decoder: it is most of the cost of a small put. */
		if (s[i] >= 0x20 && s[i] < 0x7f) {
			i++;
			continue;
		}
		n = utf8_seq(s + i, len - i, &cp);

		/* C0 and C1 controls and DEL: S3 would take them, but they
		 * break logs, XML listings and terminals. */
		if (n == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
			return false;
		i += n;
	}
	return true;
}

/* ------------------------------------------------------ open and close */

static int
shm_name(char *buf, size_t cap, const char *name)
{
	if (!ring_name_valid(name))
		return -EINVAL;
	if ((size_t)snprintf(buf, cap, "%s%s", RING_SHM_PREFIX, name) >= cap)
		return -EINVAL;
	return 0;
}

int
ring_check_header(const struct ring_header *h, size_t map_len)
{
	uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
	uint64_t cap = h->capacity;
	uint32_t maxm = h->max_message;

	if (magic != RING_MAGIC)
		return -EBADMSG;
	if (h->layout_version != RING_LAYOUT_VERSION)
		return -EPROTO;
	if (h->header_size != RING_HEADER_SIZE)
		return -EBADMSG;
	if (cap < RING_MIN_CAPACITY || cap > RING_MAX_CAPACITY ||
	    (cap & (cap - 1)) != 0)
		return -EBADMSG;
	if (maxm == 0 || maxm > cap / 8)
		return -EBADMSG;
	if (h->max_producers != RING_MAX_PRODUCERS)
		return -EBADMSG;
	if (map_len != 0 && map_len < RING_HEADER_SIZE + cap)
		return -EBADMSG;
	return 0;
}

static void
ring_reset(struct ring *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->lock_fd = -1;
}

static int
ring_map(struct ring *r, size_t len)
{
	int prot = r->readonly ? PROT_READ : PROT_READ | PROT_WRITE;
	void *p = mmap(NULL, len, prot, MAP_SHARED, r->fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	r->hdr = p;
	r->map_len = len;
	return 0;
}

static void
ring_set_geometry(struct ring *r)
{
	r->capacity = r->hdr->capacity;
	r->mask = r->capacity - 1;
	r->max_message = r->hdr->max_message;
	r->max_record = ring_record_size(0, r->max_message);
	r->ring_id = r->hdr->ring_id;
	r->data = (uint8_t *)r->hdr + RING_HEADER_SIZE;
}

/* Builds a complete ring in fd (already sized 0, mode set) and maps it. */
static int
ring_init_object(struct ring *r, const struct ring_config *cfg, uint64_t cap,
    uint32_t maxm, mode_t mode)
{
	struct ring_header *h;
	uint64_t id = 0;
	int rc;

	/* shm_open and open apply the umask; the mode asked for is the mode
	 * meant. */
	if (fchmod(r->fd, mode) < 0 ||
	    (cfg && cfg->gid != (gid_t)-1 && fchown(r->fd, (uid_t)-1, cfg->gid) < 0))
		return -errno;
	/* posix_fallocate makes a full /dev/shm fail here, with ENOSPC, rather
	 * than as a SIGBUS on the first write past what tmpfs could give. */
	rc = posix_fallocate(r->fd, 0, (off_t)(RING_HEADER_SIZE + cap));
	if (rc != 0)
		return rc == EFBIG ? -ENOSPC : -rc;
	if ((rc = ring_map(r, RING_HEADER_SIZE + cap)) < 0)
		return rc;
	if (getentropy(&id, sizeof(id)) < 0)
		id = realtime_ns() ^ ((uint64_t)getpid() << 32);
	h = r->hdr;
	h->layout_version = RING_LAYOUT_VERSION;
	h->header_size = RING_HEADER_SIZE;
	h->capacity = cap;
	h->max_message = maxm;
	h->creator_uid = (uint32_t)getuid();
	h->created_realtime_ns = realtime_ns();
	h->max_producers = RING_MAX_PRODUCERS;
	h->ring_id = id;
	atomic_store_explicit(&h->tail, RING_POS_BASE, memory_order_relaxed);
	atomic_store_explicit(&h->head, RING_POS_BASE, memory_order_relaxed);
	atomic_store_explicit(&h->cursor, RING_POS_BASE, memory_order_relaxed);
	/* Release: pairs with the acquire load of magic in ring_check_header().
	 * Nobody can see the object before it is linked in, but a ring built
	 * under a temporary name must still read as complete or not at all. */
	atomic_store_explicit(&h->magic, RING_MAGIC, memory_order_release);
	return 0;
}

/* Links the unnamed object fd in as path: fails with -EEXIST if the name
 * is taken. */
static int
link_tmpfile(int fd, const char *path)
{
	char self[64];

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0 ?
	    -errno : 0;
}

/* A lock on the whole of a temporary object, held by its creator while it
 * builds it: a temporary that nobody holds was left by a killed creator. */
static int
lock_whole(int fd, short type, int cmd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	return fcntl(fd, cmd, &fl);
}

/* Removes the temporaries of ring path (NAME.new-*) that no creator holds:
 * the leftovers of creators killed where O_TMPFILE could not be used. */
static void
sweep_temporaries(const char *path)
{
	const char *base = strrchr(path, '/') + 1;
	char prefix[sizeof(RING_SHM_PREFIX) + RING_NAME_MAX + 8];
	struct dirent *de;
	DIR *d = opendir(RING_SHM_DIR);

	if (d == NULL)
		return;
	snprintf(prefix, sizeof(prefix), "%s.new-", base);
	while ((de = readdir(d)) != NULL) {
		struct flock fl;
		int fd;

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK)
			(void)unlinkat(dirfd(d), de->d_name, 0);
		close(fd);
	}
	closedir(d);
}

/* Opens a fresh object under a temporary name beside path, for building a
 * ring where O_TMPFILE cannot be linked in, and locks it whole while it is
 * built. A killed creator leaves it behind; the next creator of the ring
 * removes it (sweep_temporaries()). Nobody opens it by the ring's name. */
static int
open_temporary(char *tmp, size_t cap, const char *path, mode_t mode)
{
	int fd;

	sweep_temporaries(path);
	snprintf(tmp, cap, "%s.new-%d-%llx", path, (int)getpid(),
	    (unsigned long long)(mono_ns() & 0xffffffffffull));
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd >= 0 && lock_whole(fd, F_WRLCK, F_OFD_SETLK) < 0) {
		int saved = errno;
		unlink(tmp);
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void
discard(struct ring *r, char *tmp)
{
	if (tmp[0] != '\0')
		unlink(tmp);
	tmp[0] = '\0';
	if (r->hdr != NULL)
		munmap(r->hdr, r->map_len);
	r->hdr = NULL;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* Creates the object unnamed (O_TMPFILE) or, where /dev/shm or /proc does
 * not allow that, under a temporary name, and links it in only when it is
 * complete. Returns 0, -EEXIST (someone else's ring has the name: attach to
 * it), or -errno. */
static int
ring_create(struct ring *r, const char *shm, const struct ring_config *cfg)
{
	uint64_t cap = cfg && cfg->capacity ? cfg->capacity : RING_DEFAULT_CAPACITY;
	uint32_t maxm = cfg && cfg->max_message ? cfg->max_message :
	    (uint32_t)(RING_DEFAULT_MAX_MESSAGE < cap / 8 ?
	    RING_DEFAULT_MAX_MESSAGE : cap / 8);
	mode_t mode = cfg && cfg->mode ? cfg->mode : 0600;
	char path[sizeof(RING_SHM_DIR) + sizeof(RING_SHM_PREFIX) + RING_NAME_MAX];
	char tmp[sizeof(path) + 32];
	int rc;

	if (cap < RING_MIN_CAPACITY || cap > RING_MAX_CAPACITY ||
	    (cap & (cap - 1)) != 0 || maxm == 0 || maxm > cap / 8)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s%s", RING_SHM_DIR, shm);
	tmp[0] = '\0';

	r->fd = open(RING_SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	if (r->fd >= 0) {
		if ((rc = ring_init_object(r, cfg, cap, maxm, mode)) < 0)
			goto out_discard;
		rc = link_tmpfile(r->fd, path);
		if (rc == 0 || rc == -EEXIST)
			goto out_linked;
		/* Not linkable here (no /proc): build it again, named. */
		discard(r, tmp);
	}
	r->fd = open_temporary(tmp, sizeof(tmp), path, mode);
	if (r->fd < 0)
		return -errno;
	if ((rc = ring_init_object(r, cfg, cap, maxm, mode)) < 0)
		goto out_discard;
	rc = link(tmp, path) < 0 ? -errno : 0;
	unlink(tmp);
	tmp[0] = '\0';
	/* The ring is complete: its producers lock their slots from now on,
	 * which a whole-object lock of ours would refuse. */
	(void)lock_whole(r->fd, F_UNLCK, F_OFD_SETLK);
out_linked:
	if (rc < 0)
		goto out_discard;
	r->created = true;
	ring_set_geometry(r);
	return 0;

out_discard:
	discard(r, tmp);
	return rc;
}

/* Attaches to an existing object. Rings appear complete (see ring_create),
 * so a short or magic-less object is corrupt; it is not waited for. */
static int
ring_attach(struct ring *r, const char *shm)
{
	struct stat st;
	size_t len;
	int rc;

	r->fd = shm_open(shm, (r->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
	if (r->fd < 0)
		return -errno;
	if (fstat(r->fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	if ((size_t)st.st_size < RING_HEADER_SIZE) {
		rc = -EBADMSG;
		goto out_close;
	}
	if ((rc = ring_map(r, RING_HEADER_SIZE)) < 0)
		goto out_close;
	rc = ring_check_header(r->hdr, (size_t)st.st_size);
	if (rc < 0)
		goto out_unmap;
	/* Remap with the data region now that the geometry is known, and check
	 * again: the header may have changed in between. */
	len = RING_HEADER_SIZE + r->hdr->capacity;
	munmap(r->hdr, r->map_len);
	r->hdr = NULL;
	if ((rc = ring_map(r, len)) < 0)
		goto out_close;
	if ((rc = ring_check_header(r->hdr, len)) < 0 ||
	    r->hdr->capacity + RING_HEADER_SIZE != len) {
		rc = rc < 0 ? rc : -EBADMSG;
		goto out_unmap;
	}
	ring_set_geometry(r);
	return 0;

out_unmap:
	munmap(r->hdr, r->map_len);
	r->hdr = NULL;
out_close:
	close(r->fd);
	r->fd = -1;
	return rc;
}

int
ring_open(struct ring *r, const char *name, unsigned flags,
    const struct ring_config *cfg)
{
	char shm[sizeof(RING_SHM_PREFIX) + RING_NAME_MAX];
	int rc;

	ring_reset(r);
	if (name == NULL)
		name = ring_default_name();
	if ((rc = shm_name(shm, sizeof(shm), name)) < 0)
		return rc;
	if ((rc = ring_guard_install()) < 0)
		return rc;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->readonly = (flags & RING_OPEN_RDONLY) != 0;

	rc = -EEXIST;
	if ((flags & RING_OPEN_CREATE) && !r->readonly)
		rc = ring_create(r, shm, cfg);
	if (rc == -EEXIST)
		rc = ring_attach(r, shm);
	if (rc < 0) {
		ring_reset(r);
		return rc;
	}
	/* Past RING_GUARD_MAX rings in one process, a ring is unguarded: a
	 * truncation then kills, as it did before there was a guard. */
	r->guarded = ring_guard_add(r->hdr, r->map_len, &r->lost) == 0;
	return 0;
}

void
ring_close(struct ring *r)
{
	if (r->hdr != NULL) {
		if (r->guarded)
			ring_guard_remove(r->hdr);
		munmap(r->hdr, r->map_len);
	}
	if (r->fd >= 0)
		close(r->fd);
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	ring_reset(r);
}


int
ring_unlink(const char *name)
{
	char shm[sizeof(RING_SHM_PREFIX) + RING_NAME_MAX];
	int rc = shm_name(shm, sizeof(shm), name ? name : ring_default_name());

	if (rc < 0)
		return rc;
	return shm_unlink(shm) < 0 ? -errno : 0;
}


int
ring_identity(const struct ring *r)
{
	char path[sizeof(RING_SHM_DIR) + sizeof(RING_SHM_PREFIX) + RING_NAME_MAX];
	struct stat mine, now;

	if (fstat(r->fd, &mine) < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s%s%s", RING_SHM_DIR, RING_SHM_PREFIX, r->name);
	if (stat(path, &now) < 0)
		return errno == ENOENT ? RING_REMOVED : -errno;
	if (now.st_dev != mine.st_dev || now.st_ino != mine.st_ino)
		return RING_REPLACED;
	return mine.st_nlink == 0 ? RING_REMOVED : RING_SAME;
}

void
ring_retire(struct ring *r)
{
	/* seq_cst: the Dekker pair with the producers' tail CAS and their
	 * load of retired in ring_reserve(): a producer either sees retired,
	 * or its reservation is below the tail the retiring consumer reads
	 * after this store, and so is consumed. */
	atomic_store_explicit(&r->hdr->retired, 1, memory_order_seq_cst);
	/* The caller's later loads of tail are acquire or relaxed, outside
	 * the seq_cst order: this fence keeps the pair a Dekker pair. Either
	 * a producer's tail CAS precedes the fence, and every later load of
	 * tail here sees it, or the fence (and the store before it) precedes
	 * the CAS, and the producer's seq_cst load of retired sees 1. Without
	 * it, a weakly ordered CPU (an RCpc acquire load on arm64) may read
	 * tail before the store is visible, while the producer reads 0. */
	atomic_thread_fence(memory_order_seq_cst);
}

bool
ring_retired(const struct ring *r)
{
	return atomic_load_explicit(&r->hdr->retired, memory_order_acquire) != 0;
}
