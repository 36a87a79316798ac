/* fuzz_ring.c -- libFuzzer harness: the consumer's parser over arbitrary ring
 * images.
 *
 * Input layout: 1 byte of mode, 8 bytes of tail offset, then the data
 * region (64 KiB, zero-filled past the input). In mode & 1 the input also
 * overwrites the first bytes of the header, so header validation is fuzzed
 * too. The consumer must never crash, never read outside the mapping, and
 * always terminate; the harness bounds the number of calls, and every call
 * must either hand out a record that checks out or make no progress.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "crc32c.h"
#include "ring.h"

#define CAP RING_MIN_CAPACITY

static uint8_t *image;
static uint8_t msgbuf[CAP];

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	struct ring_header *h;
	uint64_t tail_off = 0;
	uint8_t mode = 0;

	if (image == NULL) {
		image = mmap(NULL, RING_HEADER_SIZE + CAP, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (image == MAP_FAILED)
			abort();
	}
	memset(image, 0, RING_HEADER_SIZE + CAP);
	h = (struct ring_header *)image;
	h->layout_version = RING_LAYOUT_VERSION;
	h->header_size = RING_HEADER_SIZE;
	h->capacity = CAP;
	h->max_message = CAP / 8;
	h->max_producers = RING_MAX_PRODUCERS;
	atomic_store(&h->magic, RING_MAGIC);

	if (n >= 1) {
		mode = in[0];
		in++;
		n--;
	}
	if (n >= 8) {
		memcpy(&tail_off, in, 8);
		in += 8;
		n -= 8;
	}
	if (mode & 1) {
		size_t k = n < 64 ? n : 64;
		memcpy(image, in, k);
	}
	memcpy(image + RING_HEADER_SIZE, in, n < CAP ? n : CAP);
	if (ring_check_header(h, RING_HEADER_SIZE + CAP) != 0)
		return 0;

	memset(&r, 0, sizeof(r));
	r.hdr = h;
	r.data = image + RING_HEADER_SIZE;
	r.capacity = h->capacity;
	r.mask = r.capacity - 1;
	r.max_message = h->max_message;
	r.max_record = ring_record_size(0, r.max_message);
	r.map_len = RING_HEADER_SIZE + CAP;
	r.fd = -1;
	/* tail may be anything; head is the base. */
	atomic_store(&h->head, RING_POS_BASE);
	atomic_store(&h->tail, RING_POS_BASE + (mode & 2 ? tail_off : tail_off % (CAP + 1)));

	ring_consumer_init(&c, &r, 0);
	c.owner_wait_ns = 0;
	c.stale_wait_ns = 0;
	c.hole_wait_ns = 0;
	c.owner_wait_ns = 0;
	for (int i = 0; i < 4096; i++) {
		int rc = ring_consume(&c, &m, msgbuf, sizeof(msgbuf));
		if (rc < 0)
			break;
		if (rc == 1) {
			if (m.key_len == 0 || m.key_len > RING_MAX_KEY ||
			    m.key_len + m.body_len > r.max_message ||
			    crc32c(0, m.body, m.body_len) != m.body_crc ||
			    m.end <= m.pos || m.end > atomic_load(&h->tail))
				abort();
		} else {
			/* Stuck: with zero waits the second look decides. */
			c.stuck_since_ns = 1;
			c.next_check_ns = 0;
		}
		if (c.cursor == atomic_load(&h->tail))
			break;
	}
	return 0;
}
