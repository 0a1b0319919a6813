/* CRC32C: RFC 3720 B.4 vectors on both variants, and hw == sw on random data. */
#include <string.h>

#include "rsx/crc32c.h"
#include "t_helpers.h"

static void check_vector(const void *buf, size_t n, uint32_t want)
{
	T_EQ(rsx_crc32c_sw(0, buf, n), want);
	T_EQ(rsx_crc32c(0, buf, n), want);
	if (rsx_crc32c_hw_available())
		T_EQ(rsx_crc32c_hw(0, buf, n), want);
}

int main(void)
{
	uint8_t buf[48];

	/* RFC 3720 appendix B.4 */
	memset(buf, 0, 32);
	check_vector(buf, 32, 0x8A9136AA);
	memset(buf, 0xff, 32);
	check_vector(buf, 32, 0x62A8AB43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	check_vector(buf, 32, 0x46DD794E);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	check_vector(buf, 32, 0x113FDB5C);
	static const uint8_t iscsi_read[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	check_vector(iscsi_read, 48, 0xD9963A56);
	check_vector("123456789", 9, 0xE3069283);	/* the CRC catalogue check value */

	/* Continuation: crc(a || b) == update(update(0, a), b). */
	T_EQ(rsx_crc32c(rsx_crc32c(0, "1234", 4), "56789", 5), 0xE3069283);

	/* Every length and alignment up to 300 bytes: hw and sw agree. */
	if (rsx_crc32c_hw_available()) {
		static uint8_t data[320];
		uint64_t x = 0x9E3779B97F4A7C15ull;
		for (size_t i = 0; i < sizeof(data); i++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			data[i] = (uint8_t)x;
		}
		for (size_t off = 0; off < 8; off++)
			for (size_t n = 0; n + off <= 300; n++)
				T_EQ(rsx_crc32c_hw(7, data + off, n), rsx_crc32c_sw(7, data + off, n));
	} else {
		fprintf(stderr, "no SSE4.2: hardware variant not compared\n");
	}
	T_DONE();
}
