/*
 * hist_codec.c - HdrHistogram's encodings of a histogram (the payload the
 * Java/C/Python implementations zlib-compress and base64 into "HISTF..."
 * blobs). zlib and base64 stay in Python (they are in its standard library);
 * this file owns the byte layouts. We write V2; we read V2 and Java's older
 * V1 and V0 (all big-endian):
 *
 *   V2 (2.1.7 on): u32 cookie 0x1c849313 | u32 payload_len
 *      | u32 normalizing_index_offset | u32 significant digits | u64 lowest
 *      | u64 highest | f64 conversion ratio | counts[0 .. index(max)] as
 *      ZigZag LEB128 (Java's 9-byte variant), a run of n > 1 zero counters
 *      written as the single value -n
 *   V1 (2.0 - 2.1.6): the same 40-byte header, cookie 0x1c849301 + (word
 *      size << 4), then payload_len / word size raw counts of 2, 4 or 8 bytes
 *   V0 (1.x): u32 cookie 0x1c849308 + (word size << 4) | u32 digits
 *      | u64 lowest | u64 highest | u64 total count, then raw counts to the end
 *
 * The counts are in index order (the index -> value map depends only on
 * lowest and digits). A V2 normalizing offset does not change that order
 * (Java writes logical counts); a V1 one would (2.1.x wrote its physical
 * array), so V1 with an offset is refused.
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

int rsx_hist_compressed_encoding(const void *buf, size_t len, uint32_t *zlen)
{
	const uint8_t *p = buf;
	if (len < 8)
		return RSX_EINVALID;
	uint32_t cookie = get_be32(p);
	*zlen = get_be32(p + 4);
	if (cookie == RSX_HIST_V2_COMPRESSION_COOKIE)
		return RSX_HIST_ENC_V2;
	if ((cookie & ~0xf0u) == RSX_HIST_V1_COMPRESSION_COOKIE_BASE)
		return RSX_HIST_ENC_V1;
	if ((cookie & ~0xf0u) == RSX_HIST_V0_COMPRESSION_COOKIE_BASE)
		return RSX_HIST_ENC_V0;
	if (cookie == RSX_HIST_DOUBLE_COMPRESSION_COOKIE)
		return RSX_HIST_ENC_DOUBLE;
	return RSX_EINVALID;
}

/* A parsed payload header: where the counts are and how they are coded. */
struct payload {
	int encoding;
	uint32_t word;		/* 2, 4, 8; 0 = LEB128 (V2) */
	int64_t lowest, highest;
	int digits;
	const uint8_t *counts, *end;
};

static int parse(const void *buf, size_t len, struct payload *out)
{
	const uint8_t *p = buf;
	if (len < RSX_HIST_V0_HEADER_SIZE)
		return RSX_EINVALID;
	uint32_t cookie = get_be32(p), base = cookie & ~0xf0u, word = ((cookie >> 4) & 0xf) & 0xe;
	uint32_t digits;
	uint64_t lo, hi;
	if (cookie == RSX_HIST_V2_ENCODING_COOKIE || base == RSX_HIST_V1_ENCODING_COOKIE_BASE) {
		if (len < RSX_HIST_V2_HEADER_SIZE)
			return RSX_EINVALID;
		uint32_t plen = get_be32(p + 4), offset = get_be32(p + 8);
		if (plen > len - RSX_HIST_V2_HEADER_SIZE)
			return RSX_EINVALID;
		if (cookie == RSX_HIST_V2_ENCODING_COOKIE) {
			out->encoding = RSX_HIST_ENC_V2;
			word = 0;
		} else {
			out->encoding = RSX_HIST_ENC_V1;
			if (offset != 0 || (word != 2 && word != 4 && word != 8) || plen % word)
				return RSX_EINVALID;
		}
		digits = get_be32(p + 12);
		lo = get_be64(p + 16);
		hi = get_be64(p + 24);
		out->counts = p + RSX_HIST_V2_HEADER_SIZE;
		out->end = out->counts + plen;
	} else if (base == RSX_HIST_V0_ENCODING_COOKIE_BASE) {
		if (word != 2 && word != 4 && word != 8)
			return RSX_EINVALID;
		out->encoding = RSX_HIST_ENC_V0;
		digits = get_be32(p + 4);
		lo = get_be64(p + 8);
		hi = get_be64(p + 16);
		out->counts = p + RSX_HIST_V0_HEADER_SIZE;
		out->end = out->counts + (len - RSX_HIST_V0_HEADER_SIZE) / word * word;
	} else {
		return RSX_EINVALID;
	}
	if (digits > 5 || lo > INT64_MAX || hi > INT64_MAX ||
	    rsx_hist_footprint((int64_t)lo, (int64_t)hi, (int)digits) < 0)
		return RSX_EINVALID;
	out->word = word;
	out->lowest = (int64_t)lo;
	out->highest = (int64_t)hi;
	out->digits = (int)digits;
	return 0;
}

int rsx_hist_decode_header(const void *buf, size_t len, int64_t *lowest, int64_t *highest, int *digits)
{
	struct payload pl;
	int rc = parse(buf, len, &pl);
	if (rc < 0)
		return rc;
	*lowest = pl.lowest;
	*highest = pl.highest;
	*digits = pl.digits;
	return pl.encoding;
}

/* One count: returns bytes consumed, 0 if it runs past end. */
static size_t get_count(const struct payload *pl, const uint8_t *p, int64_t *v)
{
	if (pl->word == 0)
		return get_zigzag(p, pl->end, v);
	if ((size_t)(pl->end - p) < pl->word)
		return 0;
	if (pl->word == 2)
		*v = (int16_t)(p[0] << 8 | p[1]);
	else if (pl->word == 4)
		*v = (int32_t)get_be32(p);
	else
		*v = (int64_t)get_be64(p);
	return pl->word;
}

/* Walk the counts; apply them to h only when `apply`. */
static int walk(struct rsx_hist *h, const struct payload *pl, int apply,
		int64_t *total, int32_t *min_index, int32_t *max_index)
{
	const uint8_t *p = pl->counts;
	int32_t index = 0;
	*total = 0;
	*min_index = -1;
	*max_index = -1;
	while (p < pl->end) {
		int64_t v;
		size_t n = get_count(pl, p, &v);
		if (n == 0)
			return RSX_EINVALID;
		p += n;
		if (v < 0) {
			/* a zero run (V2 only); raw words are never negative */
			if (pl->word != 0 || v == INT64_MIN || -v > (int64_t)h->counts_len - index)
				return RSX_EINVALID;
			index += (int32_t)-v;
			continue;
		}
		if (v > 0) {
			if (index >= h->counts_len || v > INT64_MAX - *total)
				return RSX_EINVALID;
			if (*min_index < 0)
				*min_index = index;
			*max_index = index;
			*total += v;
			if (apply)
				h->counts[index] += v;
		} else if (index >= h->counts_len && pl->word == 0) {
			return RSX_EINVALID;
		}
		index++;
	}
	return 0;
}

int rsx_hist_decode_add(struct rsx_hist *h, const void *buf, size_t len)
{
	int64_t total;
	int32_t min_index, max_index;
	struct payload pl;
	int rc = parse(buf, len, &pl);
	if (rc < 0)
		return rc;
	/* same lowest and digits = same index -> value mapping */
	if (pl.lowest != h->lowest || pl.digits != h->digits || pl.highest > h->highest)
		return RSX_EINVALID;
	rc = walk(h, &pl, 0, &total, &min_index, &max_index);
	if (rc < 0)
		return rc;
	if (total > INT64_MAX - h->total)
		return RSX_EINVALID;
	walk(h, &pl, 1, &total, &min_index, &max_index);
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
