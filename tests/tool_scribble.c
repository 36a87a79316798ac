/* tool_scribble.c -- a test tool: write random bytes into a live ring.
 *
 *   tool_scribble RING data|header|control COUNT INTERVAL_US [SEED]
 *
 * Maps /dev/shm/s3ring.RING read-write, as any process allowed to write the
 * ring could, and makes COUNT writes of 1 to 8 random bytes at random
 * offsets, one every INTERVAL_US microseconds:
 *   data     anywhere in the data region (records, keys, bodies, tags)
 *   header   anywhere in the header except its first line (the geometry,
 *            which every attacher validates) and the lines of head and
 *            tail -- counters, alarms, producer slots, uploader state,
 *            futex words
 *   control  only the head and tail words (the ring's control words)
 * Prints "scribbled N writes, B bytes" and exits 0. It never stops early:
 * the point is that the uploader survives whatever it finds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring_layout.h"

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

int
main(int argc, char **argv)
{
	char path[512];
	struct stat st;
	unsigned long count, interval, bytes = 0;
	uint8_t *m;
	size_t lo, hi;
	int fd;

	if (argc < 5) {
		fprintf(stderr, "usage: tool_scribble RING data|header|control COUNT INTERVAL_US [SEED]\n");
		return 2;
	}
	count = strtoul(argv[3], NULL, 10);
	interval = strtoul(argv[4], NULL, 10);
	rng_state = argc > 5 ? strtoull(argv[5], NULL, 10) : (uint64_t)getpid();
	if (rng_state == 0)
		rng_state = 1;
	snprintf(path, sizeof(path), "/dev/shm/s3ring.%s", argv[1]);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || (size_t)st.st_size <= RING_HEADER_SIZE) {
		fprintf(stderr, "tool_scribble: %s: %s\n", path, strerror(errno));
		return 1;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		fprintf(stderr, "tool_scribble: mmap: %s\n", strerror(errno));
		return 1;
	}
	if (strcmp(argv[2], "data") == 0) {
		lo = RING_HEADER_SIZE;
		hi = (size_t)st.st_size;
	} else if (strcmp(argv[2], "header") == 0) {
		lo = RING_LINE;
		hi = RING_HEADER_SIZE;
	} else if (strcmp(argv[2], "control") == 0) {
		lo = offsetof(struct ring_header, tail);
		hi = offsetof(struct ring_header, head) + sizeof(uint64_t);
	} else {
		fprintf(stderr, "tool_scribble: unknown mode %s\n", argv[2]);
		return 2;
	}
	for (unsigned long i = 0; i < count; i++) {
		size_t n = 1 + rnd() % 8, off;

		if (strcmp(argv[2], "control") == 0) {
			/* One whole word, head or tail, set to garbage. */
			off = rnd() % 2 ? offsetof(struct ring_header, tail) :
			    offsetof(struct ring_header, head);
			n = 8;
		} else {
			size_t tl = offsetof(struct ring_header, tail) / RING_LINE * RING_LINE;
			size_t hl = offsetof(struct ring_header, head) / RING_LINE * RING_LINE;
			do
				off = lo + rnd() % (hi - lo);
			while (strcmp(argv[2], "header") == 0 &&
			    ((off + 8 > tl && off < tl + RING_LINE) ||
			    (off + 8 > hl && off < hl + RING_LINE)));
			if (off + n > hi)
				n = hi - off;
		}
		for (size_t k = 0; k < n; k++)
			m[off + k] = (uint8_t)rnd();
		bytes += n;
		if (interval)
			usleep((useconds_t)interval);
	}
	printf("scribbled %lu writes, %lu bytes\n", count, bytes);
	munmap(m, (size_t)st.st_size);
	close(fd);
	return 0;
}
