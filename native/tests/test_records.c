/* Record framing and strict decoding; the field tables tile every payload. */
#include <string.h>

#include "rsx/crc32c.h"
#include "rsx/errors.h"
#include "rsx/records.h"
#include "t_helpers.h"

static void check_tables(void)
{
	unsigned n = 0;
	for (const struct rsx_record_desc *d; (d = rsx_record_desc_at(n)) != NULL; n++) {
		T_CHECK(d->type != 0);
		T_EQ(rsx_record_payload_len(d->type), d->size);
		T_CHECK(d->size % 64 == 0 && d->size <= RSX_PAYLOAD_MAX);
		T_CHECK(rsx_record_desc_of(d->type) == d);
		T_CHECK(strcmp(rsx_record_type_name(d->type), d->name) == 0);
		/* Fields are contiguous and cover the payload exactly. */
		unsigned at = 0;
		for (unsigned i = 0; i < d->nfields; i++) {
			if (d->fields[i].offset != at)
				fprintf(stderr, "%s.%s at %u, expected %u\n", d->name,
					d->fields[i].name, d->fields[i].offset, at);
			T_EQ(d->fields[i].offset, at);
			at += d->fields[i].size;
		}
		T_EQ(at, d->size);
		/* The shared prefix. */
		T_CHECK(strcmp(d->fields[0].name, "seq") == 0 && d->fields[0].offset == 0);
		T_CHECK(strcmp(d->fields[1].name, "ts_ns") == 0 && d->fields[1].offset == 8);
		T_CHECK(strcmp(d->fields[2].name, "stream_id") == 0 && d->fields[2].offset == 16);
	}
	T_EQ(n, 31);	/* 24 foundation types + RISK_PARAM (specs/risk.md 8.2) + QUERY and its 4 answers + SEQ_LOST (specs/wal.md 2.7) */
	T_EQ(rsx_record_payload_len(0), 0);
	T_EQ(rsx_record_payload_len(255), 0);
	T_EQ(rsx_record_payload_len(65535), 0);
	T_CHECK(rsx_record_desc_of(0) == NULL);
}

static void check_frame_and_decode(void)
{
	struct rsx_fill fill;
	uint8_t buf[RSX_RECORD_MAX + 8];

	memset(&fill, 0, sizeof(fill));
	fill.seq = 42;
	fill.ts_ns = 1700000000000000000ull;
	fill.stream_id = 7;
	fill.price = rsx_price(5000000);
	fill.qty = rsx_qty(1500);
	int n = rsx_record_frame(buf, sizeof(buf), RSX_REC_FILL, &fill, sizeof(fill));
	T_EQ(n, 16 + 128);

	/* Header bytes as DESIGN.md section 3 lays them out. */
	T_EQ(buf[0], 1);
	T_EQ(buf[1], 0);
	T_EQ(buf[2] | buf[3] << 8, RSX_REC_FILL);
	T_EQ(buf[4] | buf[5] << 8, 128);
	uint32_t crc;
	memcpy(&crc, buf + 8, 4);
	T_EQ(crc, rsx_crc32c(rsx_crc32c(0, buf, 8), buf + 16, 128));

	struct rsx_fill out;
	uint16_t type = 0;
	T_EQ(rsx_record_decode(buf, (size_t)n, &type, &out, sizeof(out)), n);
	T_EQ(type, RSX_REC_FILL);
	T_CHECK(memcmp(&out, &fill, sizeof(fill)) == 0);

	/* Unaligned source buffer decodes the same (memcpy, never a cast). */
	memmove(buf + 3, buf, (size_t)n);
	T_EQ(rsx_record_decode(buf + 3, (size_t)n, &type, &out, sizeof(out)), n);
	memmove(buf, buf + 3, (size_t)n);

	/* Every single-bit flip in bytes 0..15 and in the payload is rejected. */
	for (int i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t)(1 << bit);
			T_CHECK(rsx_record_check(buf, (size_t)n) < 0);
			buf[i] ^= (uint8_t)(1 << bit);
		}
	}
	T_EQ(rsx_record_check(buf, (size_t)n), n);

	/* Each error has its own code. */
	T_EQ(rsx_record_check(buf, 15), RSX_ESHORT);
	T_EQ(rsx_record_check(buf, (size_t)n - 1), RSX_ESHORT);
	buf[0] = 2;
	T_EQ(rsx_record_check(buf, (size_t)n), RSX_EVERSION);
	buf[0] = 1;
	buf[2] = 0;
	T_EQ(rsx_record_check(buf, (size_t)n), RSX_ETYPE);
	buf[2] = 200;
	T_EQ(rsx_record_check(buf, (size_t)n), RSX_ETYPE);
	buf[2] = RSX_REC_FILL;
	buf[4] = 64;
	T_EQ(rsx_record_check(buf, (size_t)n), RSX_ELENGTH);
	buf[4] = 128;
	buf[1] = 1;
	T_EQ(rsx_record_check(buf, (size_t)n), RSX_ERESERVED);
	buf[1] = 0;
	buf[13] = 1;
	T_EQ(rsx_record_check(buf, (size_t)n), RSX_ERESERVED);
	buf[13] = 0;
	buf[16 + 64] ^= 1;
	T_EQ(rsx_record_check(buf, (size_t)n), RSX_ECRC);
	buf[16 + 64] ^= 1;
	T_EQ(rsx_record_check(buf, (size_t)n), n);

	/* Seal after an in-place edit (how a WAL assigns seq). */
	buf[16] = 43;
	T_EQ(rsx_record_check(buf, (size_t)n), RSX_ECRC);
	T_EQ(rsx_record_seal(buf, (size_t)n), n);
	T_EQ(rsx_record_check(buf, (size_t)n), n);

	/* Framing refuses bad input. */
	T_EQ(rsx_record_frame(buf, sizeof(buf), 0, &fill, 128), RSX_ETYPE);
	T_EQ(rsx_record_frame(buf, sizeof(buf), RSX_REC_FILL, &fill, 64), RSX_ELENGTH);
	T_EQ(rsx_record_frame(buf, 100, RSX_REC_FILL, &fill, 128), RSX_ESHORT);
	T_EQ(rsx_record_decode(buf, (size_t)n, &type, &out, 64), RSX_ESHORT);

	/* Sixteen zero bytes are not a record (RSX type 0 was FILL). */
	uint8_t zeros[16] = { 0 };
	T_CHECK(rsx_record_check(zeros, 16) < 0);
}

int main(void)
{
	check_tables();
	check_frame_and_decode();
	T_DONE();
}
