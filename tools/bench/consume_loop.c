/* consume_loop.c -- N records put, then consumed, for counting the
 * instructions of ring_consume() with callgrind (tools/bench/ring-ab.sh
 * --instructions): usage consume_loop RING N SIZE. Uses the internal ring
 * API, which has not changed shape since layout 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ring.h"
static uint8_t buf[1 << 20];
int main(int argc, char **argv)
{
	int n = atoi(argv[2]); size_t len = (size_t)atoi(argv[3]);
	static char body[65536];
	struct ring r; struct ring_consumer c; struct ring_msg m;
	struct ring_config cfg = { .capacity = 256u << 20, .gid = (gid_t)-1 };
	if (ring_open(&r, argv[1], RING_OPEN_CREATE, &cfg) != 0) return 1;
	int slot = ring_slot_claim(&r, getpid(), 0);
	memset(body, 'x', len);
	for (int i = 0; i < n; i++)
		if (ring_put(&r, (unsigned)slot, "logs/key-000001", 15, body, len, 0) != 0) return 2;
	ring_consumer_init(&c, &r, 0);
	int got = 0;
	while (got < n) {
		int rc = ring_consume(&c, &m, buf, sizeof(buf));
		if (rc != 1) return 3;
		got++;
	}
	printf("%d\n", got);
	return 0;
}
