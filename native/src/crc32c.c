/*
 * crc32c.c - CRC-32C, hardware (SSE4.2) and slicing-by-8 table variants.
 */
#include <string.h>

#include "rsx/crc32c.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256];

__attribute__((constructor)) static void crc32c_init_tables(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (POLY & (0u - (c & 1)));
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t rsx_crc32c_sw(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	crc = ~crc;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);	/* little-endian load, any alignment */
		w ^= crc;
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
		      table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
		      table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
		      table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
uint32_t rsx_crc32c_hw(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;
	/* four words per iteration: records are 80..144 bytes, so the loop overhead matters */
	while (n >= 32) {
		uint64_t w[4];
		memcpy(w, p, 32);
		c = _mm_crc32_u64(c, w[0]);
		c = _mm_crc32_u64(c, w[1]);
		c = _mm_crc32_u64(c, w[2]);
		c = _mm_crc32_u64(c, w[3]);
		p += 32;
		n -= 32;
	}
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		n -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (n--)
		c32 = _mm_crc32_u8(c32, *p++);
	return ~c32;
}

int rsx_crc32c_hw_available(void)
{
	__builtin_cpu_init();	/* may run before libgcc's own constructor */
	return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}
#else
uint32_t rsx_crc32c_hw(uint32_t crc, const void *buf, size_t n)
{
	return rsx_crc32c_sw(crc, buf, n);
}

int rsx_crc32c_hw_available(void)
{
	return 0;
}
#endif

static uint32_t (*crc32c_impl)(uint32_t, const void *, size_t) = rsx_crc32c_sw;

__attribute__((constructor)) static void crc32c_pick(void)
{
	if (rsx_crc32c_hw_available())
		crc32c_impl = rsx_crc32c_hw;
}

uint32_t rsx_crc32c(uint32_t crc, const void *buf, size_t n)
{
	return crc32c_impl(crc, buf, n);
}
