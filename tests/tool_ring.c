/* tool_ring.c -- a test tool: create, drain or damage rings from scripts.
 *
 *   tool_ring create NAME [CAPACITY [MAX_MESSAGE]]   create (mode 0600)
 *   tool_ring drain NAME COUNT [TIMEOUT_MS]           consume COUNT records,
 *       print "KEY<TAB>BODY_LEN<TAB>CRC32C-hex" for each, release them
 *   tool_ring set-version NAME N                      rewrite layout_version
 *   tool_ring unlink NAME
 * Exit 0 on success, 1 on failure with a message on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "futex.h"
#include "ring.h"

static uint8_t buf[(1u << 30) / 8 + 2];

static int
drain(const char *name, long count, long timeout_ms)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	int rc;

	if ((rc = ring_open(&r, name, 0, NULL)) < 0) {
		fprintf(stderr, "tool_ring: %s: %s\n", name, strerror(-rc));
		return 1;
	}
	ring_consumer_init(&c, &r, 0);
	while (count > 0) {
		rc = ring_consume(&c, &m, buf, sizeof(buf));
		if (rc < 0) {
			fprintf(stderr, "tool_ring: consume: %s\n", strerror(-rc));
			break;
		}
		if (rc == 0) {
			if (mono_ns() >= deadline) {
				fprintf(stderr, "tool_ring: timed out, %ld left\n", count);
				break;
			}
			ring_consumer_wait(&c, deadline);
			continue;
		}
		printf("%s\t%u\t%08x\n", m.key, m.body_len, crc32c(0, m.body, m.body_len));
		count--;
	}
	/* Never past a record still being written (a hole). */
	ring_release(&r, ring_consumer_floor(&c));
	ring_close(&r);
	return count == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct ring r;
	int rc;

	if (argc >= 3 && strcmp(argv[1], "create") == 0) {
		struct ring_config cfg = { .gid = (gid_t)-1 };
		if (argc > 3)
			cfg.capacity = strtoull(argv[3], NULL, 0);
		if (argc > 4)
			cfg.max_message = (uint32_t)strtoul(argv[4], NULL, 0);
		rc = ring_open(&r, argv[2], RING_OPEN_CREATE, &cfg);
		if (rc == 0)
			ring_close(&r);
	} else if (argc >= 4 && strcmp(argv[1], "drain") == 0) {
		return drain(argv[2], atol(argv[3]), argc > 4 ? atol(argv[4]) : 5000);
	} else if (argc == 4 && strcmp(argv[1], "set-version") == 0) {
		rc = ring_open(&r, argv[2], 0, NULL);
		if (rc == 0) {
			r.hdr->layout_version = (uint32_t)atoi(argv[3]);
			ring_close(&r);
		}
	} else if (argc == 3 && strcmp(argv[1], "unlink") == 0) {
		rc = ring_unlink(argv[2]);
	} else {
		fprintf(stderr, "usage: tool_ring create|drain|set-version|unlink NAME ...\n");
		return 1;
	}
	if (rc < 0)
		fprintf(stderr, "tool_ring: %s: %s\n", argv[2], strerror(-rc));
	return rc < 0 ? 1 : 0;
}
