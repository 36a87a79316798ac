/* tool_consume.c -- a test tool: a consumer that keeps a ring flowing.
 *
 *   tool_consume NAME COUNT IDLE_MS [-q]
 *
 * Consumes records like the uploader would, releasing them as it goes
 * (every 64 records, and whenever it waits), so that producers can put any
 * number of messages through a ring of any size (tool_ring drain releases
 * only at the end). Prints
 * "KEY<TAB>BODY_LEN<TAB>CRC32C-hex" per record unless -q. Stops after COUNT
 * records (0: no limit), or when nothing arrived for IDLE_MS. Prints
 * "consumed N" on stderr; exits 0 if COUNT records were consumed (or COUNT
 * was 0), 1 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "futex.h"
#include "ring.h"

static uint8_t buf[(1u << 30) / 8 + 2];

int
main(int argc, char **argv)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	unsigned long long count, got = 0;
	uint64_t idle_ns, last;
	bool quiet;
	int rc;

	if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "-q") != 0)) {
		fprintf(stderr, "usage: tool_consume NAME COUNT IDLE_MS [-q]\n");
		return 2;
	}
	count = strtoull(argv[2], NULL, 10);
	idle_ns = strtoull(argv[3], NULL, 10) * 1000000ull;
	quiet = argc == 5;
	if ((rc = ring_open(&r, argv[1], 0, NULL)) < 0) {
		fprintf(stderr, "tool_consume: %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	ring_consumer_init(&c, &r, 0);
	last = mono_ns();
	while (count == 0 || got < count) {
		rc = ring_consume(&c, &m, buf, sizeof(buf));
		if (rc < 0) {
			fprintf(stderr, "tool_consume: consume: %s\n", strerror(-rc));
			break;
		}
		if (rc == 0) {
			if (mono_ns() - last >= idle_ns)
				break;
			ring_release(&r, ring_consumer_floor(&c));
			ring_consumer_wait(&c, last + idle_ns);
			continue;
		}
		if (!quiet)
			printf("%s\t%u\t%08x\n", m.key, m.body_len,
			    crc32c(0, m.body, m.body_len));
		/* Release in batches, as the uploader does: each release may
		 * wake the producers waiting for space. */
		if (++got % 64 == 0)
			ring_release(&r, ring_consumer_floor(&c));
		last = mono_ns();
	}
	ring_release(&r, ring_consumer_floor(&c));
	ring_close(&r);
	fflush(stdout);
	fprintf(stderr, "tool_consume: consumed %llu\n", got);
	return count == 0 || got == count ? 0 : 1;
}
