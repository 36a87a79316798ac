/* fuzz_ring_live.c -- libFuzzer harness: a ring whose header and data region
 * another process scribbles on between the consumer's and the producer's
 * calls.
 *
 * The input is a program of 11-byte steps: an opcode, a 2-byte offset and
 * an 8-byte value. Opcodes write the value into the header (at one of its
 * hot words, or anywhere in its first lines) or into the data region, put a
 * message through the producer side, or run the consumer (after giving up
 * the rest of a retired ring, for some). The image sits
 * between PROT_NONE guard pages, so a read or write outside the mapping
 * crashes the harness. Both sides must never crash, never touch outside the
 * mapping and always terminate; a record the consumer hands out must check
 * out against its own CRC, and a put that returns 0 must lie within
 * [head, tail].
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "crc32c.h"
#include "ring.h"

#define CAP RING_MIN_CAPACITY
#define MAP (RING_HEADER_SIZE + CAP)
#define PAGE 4096u

static uint8_t *image;
static uint8_t msgbuf[CAP];

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

static void
fresh_ring(struct ring *r)
{
	struct ring_header *h = (struct ring_header *)image;

	memset(image, 0, MAP);
	h->layout_version = RING_LAYOUT_VERSION;
	h->header_size = RING_HEADER_SIZE;
	h->capacity = CAP;
	h->max_message = CAP / 8;
	h->max_producers = RING_MAX_PRODUCERS;
	atomic_store(&h->head, RING_POS_BASE);
	atomic_store(&h->tail, RING_POS_BASE);
	atomic_store(&h->magic, RING_MAGIC);
	memset(r, 0, sizeof(*r));
	r->hdr = h;
	r->data = image + RING_HEADER_SIZE;
	r->capacity = CAP;
	r->mask = CAP - 1;
	r->max_message = CAP / 8;
	r->max_record = ring_record_size(0, r->max_message);
	r->map_len = MAP;
	r->fd = -1;
	r->lock_fd = -1;
}

/* The words a scribbler would go for first. */
static const size_t hot[] = {
	offsetof(struct ring_header, tail), offsetof(struct ring_header, head),
	offsetof(struct ring_header, retired), offsetof(struct ring_header, cursor),
	offsetof(struct ring_header, slots) + offsetof(struct ring_slot, gen),
	offsetof(struct ring_header, slots) + offsetof(struct ring_slot, pid),
};

int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	static char body[CAP / 8];
	struct ring r;
	struct ring_consumer c;
	struct ring_msg m;
	int slot;

	if (image == NULL) {
		uint8_t *p = mmap(NULL, MAP + 2 * PAGE, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || mprotect(p + PAGE, MAP, PROT_READ | PROT_WRITE) != 0)
			abort();
		image = p + PAGE;
	}
	fresh_ring(&r);
	slot = ring_slot_claim(&r, 1, 0);
	if (slot < 0)
		abort();
	ring_consumer_init(&c, &r, 0);
	c.owner_wait_ns = 0;
	c.stale_wait_ns = 0;
	c.hole_wait_ns = 0;

	for (size_t i = 0; i + 11 <= n && i < 11 * 2000; i += 11) {
		uint8_t op = in[i];
		uint16_t off;
		uint64_t v;
		int rc;

		memcpy(&off, in + i + 1, 2);
		memcpy(&v, in + i + 3, 8);
		switch (op % 6) {
		case 0: /* a hot header word */
			memcpy(image + hot[off % (sizeof(hot) / sizeof(hot[0]))], &v, 8);
			break;
		case 1: /* anywhere in the header's first lines */
			memcpy(image + (off % (8 * RING_LINE - 8)), &v, 8);
			break;
		case 2: /* the data region */
			memcpy(image + RING_HEADER_SIZE + ((size_t)off * 8 % CAP), &v, 8);
			break;
		case 3: { /* a put of (v % size) bytes */
			size_t len = (size_t)(v % sizeof(body));
			uint64_t hd = atomic_load(&r.hdr->head);
			rc = ring_put(&r, (unsigned)slot, "k/x", 3, body, len, 0);
			if (rc == 0 && atomic_load(&r.hdr->tail) < hd)
				abort();
			break;
		}
		case 4: /* a reservation given up half-way */
		{
			struct ring_resv rv;
			if (ring_reserve(&r, (unsigned)slot, "k/y", 3, v % 4096, 0, &rv) == 0)
				ring_abort(&r, &rv);
			break;
		}
		default:
			/* The retiring uploader's last step: it must stay inside
			 * the mapping, end, and leave committed records to the
			 * consumer. */
			if (op & 0x80)
				(void)ring_consumer_abandon_rest(&c);
			for (int k = 0; k < 64; k++) {
				rc = ring_consume(&c, &m, msgbuf, sizeof(msgbuf));
				if (rc < 0)
					break;
				if (rc == 1) {
					if (m.key_len == 0 || m.key_len > RING_MAX_KEY ||
					    m.key_len + m.body_len > r.max_message ||
					    crc32c(0, m.body, m.body_len) != m.body_crc ||
					    m.end <= m.pos)
						abort();
					ring_release(&r, ring_consumer_floor(&c));
					continue;
				}
				c.stuck_since_ns = 1;
				c.next_check_ns = 0;
			}
			break;
		}
	}
	return 0;
}
