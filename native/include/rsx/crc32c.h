/*
 * rsx/crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every record (RFC 3720 appendix B.4 test vectors).
 *
 * rsx_crc32c() uses the SSE4.2 crc32 instruction when the CPU has it and a
 * slicing-by-8 table otherwise; both variants are exported so tests can
 * compare them.
 */
#ifndef RSX_CRC32C_H
#define RSX_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend a CRC: start with crc = 0 for a fresh checksum, pass the previous
 * result to continue over a second buffer (crc(a||b) = update(update(0,a),b)).
 */
uint32_t rsx_crc32c(uint32_t crc, const void *buf, size_t n);
uint32_t rsx_crc32c_sw(uint32_t crc, const void *buf, size_t n);
/* Hardware variant; only call it when rsx_crc32c_hw_available() is 1. */
uint32_t rsx_crc32c_hw(uint32_t crc, const void *buf, size_t n);
int rsx_crc32c_hw_available(void);

#endif
