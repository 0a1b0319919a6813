/*
 * cmp_mac.c - SipHash-2-4 with a 128-bit tag: the optional per-stream MAC of
 * CMP datagrams (specs/cmp.md section 12). SipHash is a keyed PRF built for
 * short inputs, so a 144-byte record costs a few hundred cycles; written
 * from the paper (Aumasson, Bernstein 2012) and checked against its
 * reference vectors in native/tests/test_cmp_trust.c.
 */
#include <string.h>

#include "cmp_int.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND(v0, v1, v2, v3) do { \
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
} while (0)

void rsx_cmp_mac(const uint8_t key[RSX_CMP_KEY_BYTES], const void *msg, size_t len,
		 uint8_t out[RSX_CMP_MAC_BYTES])
{
	const uint8_t *p = msg;
	uint64_t k0 = cmp_get64(key), k1 = cmp_get64(key + 8);
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
	size_t left = len & 7;
	const uint8_t *end = p + (len - left);

	v1 ^= 0xee;	/* 128-bit output */
	for (; p != end; p += 8) {
		uint64_t m = cmp_get64(p);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t i = 0; i < left; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xee;
	for (int i = 0; i < 4; i++)
		SIPROUND(v0, v1, v2, v3);
	uint64_t h = v0 ^ v1 ^ v2 ^ v3;
	memcpy(out, &h, 8);
	v1 ^= 0xdd;
	for (int i = 0; i < 4; i++)
		SIPROUND(v0, v1, v2, v3);
	h = v0 ^ v1 ^ v2 ^ v3;
	memcpy(out + 8, &h, 8);
}

int cmp_mac_ok(const uint8_t key[RSX_CMP_KEY_BYTES], const uint8_t *rec, size_t len, const uint8_t *tag)
{
	uint8_t want[RSX_CMP_MAC_BYTES];
	uint8_t diff = 0;
	rsx_cmp_mac(key, rec, len, want);
	for (int i = 0; i < RSX_CMP_MAC_BYTES; i++)	/* constant time */
		diff |= (uint8_t)(want[i] ^ tag[i]);
	return diff == 0;
}
