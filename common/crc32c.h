/* crc32c.h -- CRC-32C (Castagnoli), as used by iSCSI, ext4 and S3 checksums. */
#ifndef S3RING_CRC32C_H
#define S3RING_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over len bytes of buf and returns the new CRC.
 * crc32c(0, "123456789", 9) == 0xe3069283. Uses the SSE4.2 instruction when
 * the CPU has it and a slicing table otherwise; both give the same result. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable table version, exposed so tests can compare the two. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* True when crc32c() uses the CPU instruction. */
int crc32c_hw_available(void);

#endif
