/*
 * record.c - framing and strict decoding of v1 records.
 */
#include <string.h>

#include "rsx/crc32c.h"
#include "rsx/errors.h"
#include "rsx/records.h"

static const uint16_t payload_len[256] = {
#define RSX_RECORD(name, type, st) [type] = sizeof(struct st),
#include "rsx/record_types.def"
#undef RSX_RECORD
};

static const char *const type_name[256] = {
#define RSX_RECORD(name, type, st) [type] = #name,
#include "rsx/record_types.def"
#undef RSX_RECORD
};

size_t rsx_record_payload_len(uint16_t type)
{
	return type < 256 ? payload_len[type] : 0;
}

const char *rsx_record_type_name(uint16_t type)
{
	return type < 256 ? type_name[type] : NULL;
}

/* CRC over header bytes 0..7, then the payload. */
static uint32_t record_crc(const uint8_t *rec, size_t len)
{
	uint32_t crc = rsx_crc32c(0, rec, 8);
	return rsx_crc32c(crc, rec + RSX_HEADER_SIZE, len);
}

static void put_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint16_t get_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

int rsx_record_frame(void *out, size_t cap, uint16_t type, const void *payload, size_t len)
{
	size_t want = rsx_record_payload_len(type);
	uint8_t *rec = out;

	if (want == 0)
		return RSX_ETYPE;
	if (len != want)
		return RSX_ELENGTH;
	if (cap < RSX_HEADER_SIZE + len)
		return RSX_ESHORT;
	memset(rec, 0, RSX_HEADER_SIZE);
	rec[0] = RSX_RECORD_VERSION;
	put_u16(rec + 2, type);
	put_u16(rec + 4, (uint16_t)len);
	memmove(rec + RSX_HEADER_SIZE, payload, len);
	put_u32(rec + 8, record_crc(rec, len));
	return (int)(RSX_HEADER_SIZE + len);
}

/* Header checks shared by seal and check; returns the record size or an error. */
static int check_header(const uint8_t *rec, size_t n)
{
	if (n < RSX_HEADER_SIZE)
		return RSX_ESHORT;
	if (rec[0] != RSX_RECORD_VERSION)
		return RSX_EVERSION;
	uint16_t type = get_u16(rec + 2);
	size_t want = rsx_record_payload_len(type);
	if (want == 0)
		return RSX_ETYPE;
	if (get_u16(rec + 4) != want)
		return RSX_ELENGTH;
	if (n < RSX_HEADER_SIZE + want)
		return RSX_ESHORT;
	if (rec[1] != 0 || get_u16(rec + 6) != 0 || get_u32(rec + 12) != 0)
		return RSX_ERESERVED;
	return (int)(RSX_HEADER_SIZE + want);
}

int rsx_record_seal(void *rec, size_t cap)
{
	int size = check_header(rec, cap);
	if (size < 0)
		return size;
	put_u32((uint8_t *)rec + 8, record_crc(rec, (size_t)size - RSX_HEADER_SIZE));
	return size;
}

int rsx_record_seal_many(void *buf, size_t n, size_t stride)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < n; i++) {
		int rc = rsx_record_seal(p + i * stride, stride);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int rsx_record_check_header(const void *buf, size_t n)
{
	return check_header(buf, n);
}

int rsx_record_check(const void *buf, size_t n)
{
	const uint8_t *rec = buf;
	int size = check_header(rec, n);
	if (size < 0)
		return size;
	if (get_u32(rec + 8) != record_crc(rec, (size_t)size - RSX_HEADER_SIZE))
		return RSX_ECRC;
	return size;
}

int rsx_record_decode(const void *buf, size_t n, uint16_t *type, void *payload, size_t cap)
{
	int size = rsx_record_check(buf, n);
	if (size < 0)
		return size;
	size_t len = (size_t)size - RSX_HEADER_SIZE;
	if (cap < len)
		return RSX_ESHORT;
	*type = get_u16((const uint8_t *)buf + 2);
	memcpy(payload, (const uint8_t *)buf + RSX_HEADER_SIZE, len);
	return size;
}
