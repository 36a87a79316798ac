/* put_loop.c -- N puts of one size through the public API, for counting
 * the instructions of s3ring_put() with callgrind (tools/bench/ring-ab.sh
 * --instructions): usage put_loop RING N SIZE. Built with RING_HEARTBEAT
 * (layout 2), it plays a live uploader's heartbeat, as a put without one
 * also checks that its ring still has a name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "s3ring.h"
#ifdef RING_HEARTBEAT
#include "futex.h"
#include "ring.h"
#endif
int main(int argc, char **argv)
{
	int n = atoi(argv[2]); size_t len = (size_t)atoi(argv[3]);
	static char body[65536];
	struct s3ring_producer *p = s3ring_open(argv[1], S3RING_CREATE);
	if (!p) { perror("open"); return 1; }
	memset(body, 'x', len);
#ifdef RING_HEARTBEAT
	struct ring hb;
	if (ring_open(&hb, argv[1], 0, NULL) != 0) { perror("open"); return 1; }
#endif
	for (int i = 0; i < n; i++) {
#ifdef RING_HEARTBEAT
		if (i % 256 == 0)
			atomic_store(&hb.hdr->upstats.heartbeat_mono_ns, mono_coarse_ns());
#endif
		if (s3ring_put(p, "logs/key-000001", body, len, 0) != 0) { fprintf(stderr, "put %d failed\n", i); return 1; }
	}
	s3ring_close(p);
	return 0;
}
