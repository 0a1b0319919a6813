/*
 * hist_codec.c - HdrHistogram's V2 encoding of a histogram (the payload the
 * Java/C/Python implementations zlib-compress and base64 into "HISTF..."
 * blobs). zlib and base64 stay in Python (they are in its standard library);
 * this file owns the byte layout:
 *
 *   u32 cookie 0x1c849313 | u32 payload_len | u32 normalizing_index_offset
 *   | u32 significant digits | u64 lowest | u64 highest | f64 conversion ratio
 *   | counts[0 .. index(max)] as ZigZag LEB128 (Java's 9-byte variant), a run
 *     of n > 1 zero counters written as the single value -n
 *
 * all big-endian.
 */
#include <string.h>

#include "rsx/errors.h"
#include "rsx/hist.h"

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* Java's ZigZagEncoding.putLong: 7 bits a byte, the 9th byte carries 8. */
static size_t put_zigzag(uint8_t *p, int64_t value)
{
	uint64_t v = ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
	size_t n = 0;
	for (int shift = 0; shift < 56; shift += 7) {
		if ((v >> (shift + 7)) == 0) {
			p[n++] = (uint8_t)(v >> shift);
			return n;
		}
		p[n++] = (uint8_t)(((v >> shift) & 0x7f) | 0x80);
	}
	p[n++] = (uint8_t)(v >> 56);
	return n;
}

/* Returns bytes consumed, or 0 if the varint runs past end. */
static size_t get_zigzag(const uint8_t *p, const uint8_t *end, int64_t *out)
{
	uint64_t v = 0;
	size_t n = 0;
	for (int shift = 0; shift < 56; shift += 7) {
		if (p + n >= end)
			return 0;
		uint8_t b = p[n++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			goto done;
	}
	if (p + n >= end)
		return 0;
	v |= (uint64_t)p[n++] << 56;
done:
	*out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
	return n;
}

size_t rsx_hist_encode_v2_bound(const struct rsx_hist *h)
{
	return RSX_HIST_V2_HEADER_SIZE + (size_t)h->counts_len * 9;
}

int64_t rsx_hist_encode_v2(const struct rsx_hist *h, void *buf, size_t cap)
{
	if (cap < rsx_hist_encode_v2_bound(h))
		return RSX_EINVALID;
	uint8_t *out = buf, *p = out + RSX_HIST_V2_HEADER_SIZE;
	int32_t limit = h->total ? rsx_hist_index(h, h->max) + 1 : 0;

	for (int32_t i = 0; i < limit;) {
		int64_t count = h->counts[i++];
		int64_t zeros = 0;
		if (count == 0) {
			zeros = 1;
			while (i < limit && h->counts[i] == 0) {
				zeros++;
				i++;
			}
		}
		p += put_zigzag(p, zeros > 1 ? -zeros : count);
	}

	double ratio = 1.0;
	uint64_t ratio_bits;
	memcpy(&ratio_bits, &ratio, sizeof(ratio_bits));
	put_be32(out, RSX_HIST_V2_ENCODING_COOKIE);
	put_be32(out + 4, (uint32_t)(p - out - RSX_HIST_V2_HEADER_SIZE));
	put_be32(out + 8, 0);	/* normalizing index offset */
	put_be32(out + 12, (uint32_t)h->digits);
	put_be64(out + 16, (uint64_t)h->lowest);
	put_be64(out + 24, (uint64_t)h->highest);
	put_be64(out + 32, ratio_bits);
	return p - out;
}

int rsx_hist_decode_v2_header(const void *buf, size_t len, int64_t *lowest, int64_t *highest, int *digits)
{
	const uint8_t *p = buf;
	if (len < RSX_HIST_V2_HEADER_SIZE || get_be32(p) != RSX_HIST_V2_ENCODING_COOKIE)
		return RSX_EINVALID;
	if (get_be32(p + 4) > len - RSX_HIST_V2_HEADER_SIZE || get_be32(p + 8) != 0)
		return RSX_EINVALID;
	uint32_t d = get_be32(p + 12);
	uint64_t lo = get_be64(p + 16), hi = get_be64(p + 24);
	if (d > 5 || lo > INT64_MAX || hi > INT64_MAX ||
	    rsx_hist_footprint((int64_t)lo, (int64_t)hi, (int)d) < 0)
		return RSX_EINVALID;
	*lowest = (int64_t)lo;
	*highest = (int64_t)hi;
	*digits = (int)d;
	return 0;
}

/* Walk the counts; apply them to h only when `apply`. */
static int walk(struct rsx_hist *h, const uint8_t *p, const uint8_t *end, int apply,
		int64_t *total, int32_t *min_index, int32_t *max_index)
{
	int32_t index = 0;
	*total = 0;
	*min_index = -1;
	*max_index = -1;
	while (p < end) {
		int64_t v;
		size_t n = get_zigzag(p, end, &v);
		if (n == 0)
			return RSX_EINVALID;
		p += n;
		if (v < 0) {
			if (v == INT64_MIN || -v > (int64_t)h->counts_len - index)
				return RSX_EINVALID;
			index += (int32_t)-v;
			continue;
		}
		if (index >= h->counts_len || v > INT64_MAX - *total)
			return RSX_EINVALID;
		if (v > 0) {
			if (*min_index < 0)
				*min_index = index;
			*max_index = index;
			*total += v;
			if (apply)
				h->counts[index] += v;
		}
		index++;
	}
	return 0;
}

int rsx_hist_decode_v2_add(struct rsx_hist *h, const void *buf, size_t len)
{
	int64_t lowest, highest, total;
	int digits;
	int32_t min_index, max_index;
	int rc = rsx_hist_decode_v2_header(buf, len, &lowest, &highest, &digits);
	if (rc < 0)
		return rc;
	/* same lowest and digits = same index -> value mapping */
	if (lowest != h->lowest || digits != h->digits || highest > h->highest)
		return RSX_EINVALID;
	const uint8_t *p = (const uint8_t *)buf + RSX_HIST_V2_HEADER_SIZE;
	const uint8_t *end = p + get_be32((const uint8_t *)buf + 4);
	rc = walk(h, p, end, 0, &total, &min_index, &max_index);
	if (rc < 0)
		return rc;
	if (total > INT64_MAX - h->total)
		return RSX_EINVALID;
	walk(h, p, end, 1, &total, &min_index, &max_index);
	if (total == 0)
		return 0;
	h->total += total;
	int64_t min = rsx_hist_value_from_index(h, min_index);
	int64_t max = rsx_hist_value_from_index(h, max_index);
	if (min < h->min)
		h->min = min;
	if (max > h->max)
		h->max = max;
	return 0;
}
