/*
 * test_hist.c - geometry, recording, percentiles, merging, iteration and the
 * codec of rsx_hist, against values worked out from Java HdrHistogram 2.2's
 * rules (tests/data/java/ holds what Java itself printed; the Python tests
 * compare against those files).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "rsx/errors.h"
#include "rsx/hist.h"
#include "t_helpers.h"

static struct rsx_hist *new_hist(int64_t lo, int64_t hi, int digits)
{
	struct rsx_hist *h = NULL;
	int rc = rsx_hist_new(lo, hi, digits, &h);
	T_EQ(rc, 0);
	return h;
}

static void test_geometry(void)
{
	struct rsx_hist *h = new_hist(1, RSX_HIST_DEFAULT_HIGHEST, 3);
	T_EQ(h->sub_bucket_count, 2048);
	T_EQ(h->bucket_count, 32);
	T_EQ(h->counts_len, 33792);
	rsx_hist_free(h);

	/* HdrHistogram_c's own test: hdr_init(1, 3600000000, 3) -> 23552 counters */
	h = new_hist(1, 3600000000LL, 3);
	T_EQ(h->counts_len, 23552);
	rsx_hist_free(h);

	/* 0 digits (Java allows it): 2 sub-buckets, each bucket one power of two */
	h = new_hist(1, 1000000, 0);
	T_EQ(h->sub_bucket_count, 2);
	T_EQ(rsx_hist_highest_equivalent(h, 600000), 1048575);
	rsx_hist_free(h);

	/* 2 digits: 256 sub-buckets; 5 digits: 262144 */
	h = new_hist(1, 1000000, 2);
	T_EQ(h->sub_bucket_count, 256);
	rsx_hist_free(h);
	h = new_hist(1, 1000000, 5);
	T_EQ(h->sub_bucket_count, 262144);
	rsx_hist_free(h);

	/* bad geometry */
	struct rsx_hist *bad = NULL;
	T_EQ(rsx_hist_new(0, 100, 3, &bad), RSX_EINVALID);
	T_EQ(rsx_hist_new(1, 100, -1, &bad), RSX_EINVALID);
	T_EQ(rsx_hist_new(1, 100, 6, &bad), RSX_EINVALID);
	T_EQ(rsx_hist_new(10, 19, 3, &bad), RSX_EINVALID);
	T_CHECK(bad == NULL);
	T_EQ(rsx_hist_footprint(1, 1, 3), RSX_EINVALID);

	/* caller memory: exact footprint works, one byte less does not */
	int64_t size = rsx_hist_footprint(1, 1000000, 3);
	T_CHECK(size > 0);
	static _Alignas(64) char mem[1 << 20];
	T_CHECK((size_t)size <= sizeof(mem));
	T_EQ(rsx_hist_init((struct rsx_hist *)mem, (size_t)size - 1, 1, 1000000, 3), RSX_EINVALID);
	T_EQ(rsx_hist_init((struct rsx_hist *)mem, (size_t)size, 1, 1000000, 3), 0);
	struct rsx_hist *m = (struct rsx_hist *)mem;
	rsx_hist_record(m, 12345);
	T_EQ(m->total, 1);
	rsx_hist_free(m);	/* not owned: a no-op */
	T_EQ(rsx_hist_init((struct rsx_hist *)(mem + 4), (size_t)size, 1, 1000000, 3), RSX_EINVALID);
}

static void test_equivalence(void)
{
	struct rsx_hist *h = new_hist(1, RSX_HIST_DEFAULT_HIGHEST, 3);
	/* exact below sub_bucket_count */
	for (int64_t v = 0; v < 2048; v++) {
		T_EQ(rsx_hist_lowest_equivalent(h, v), v);
		T_EQ(rsx_hist_highest_equivalent(h, v), v);
	}
	T_EQ(rsx_hist_lowest_equivalent(h, 2049), 2048);
	T_EQ(rsx_hist_highest_equivalent(h, 2048), 2049);
	T_EQ(rsx_hist_lowest_equivalent(h, 10007), 10000);
	T_EQ(rsx_hist_highest_equivalent(h, 10007), 10007);
	/* relative bucket width never exceeds 1/1024 above 2048 */
	for (int64_t v = 2048; v < RSX_HIST_DEFAULT_HIGHEST; v = v * 3 / 2 + 7) {
		int64_t lo = rsx_hist_lowest_equivalent(h, v), hi = rsx_hist_highest_equivalent(h, v);
		T_CHECK(lo <= v && v <= hi);
		T_CHECK((hi - lo + 1) * 1024 <= lo);
		T_EQ(rsx_hist_value_from_index(h, rsx_hist_index(h, v)), lo);
	}
	rsx_hist_free(h);
}

static void test_percentiles(void)
{
	struct rsx_hist *h = new_hist(1, RSX_HIST_DEFAULT_HIGHEST, 3);
	/* empty: 0, no error */
	T_EQ(rsx_hist_value_at_percentile(h, 50), 0);
	T_EQ(rsx_hist_max(h), 0);
	T_EQ(rsx_hist_min(h), 0);

	/* HdrHistogram's classic: 10000 x 1000 ns, then one 100 ms stall */
	T_EQ(rsx_hist_record_n(h, 1000, 10000), 0);
	rsx_hist_record(h, 100000000);
	T_EQ(h->total, 10001);
	T_EQ(rsx_hist_value_at_percentile(h, 30), 1000);
	T_EQ(rsx_hist_value_at_percentile(h, 99), 1000);
	T_EQ(rsx_hist_value_at_percentile(h, 99.99), 1000);	/* rank ceil(10001 x 99.99 % = 10000.0) */
	int64_t top = rsx_hist_value_at_percentile(h, 99.999);
	T_EQ(rsx_hist_lowest_equivalent(h, top), rsx_hist_lowest_equivalent(h, 100000000));
	T_EQ(top, rsx_hist_highest_equivalent(h, 100000000));
	T_EQ(rsx_hist_value_at_percentile(h, 100), rsx_hist_max(h));
	T_EQ(rsx_hist_value_at_percentile(h, 0), 1000);
	T_EQ(rsx_hist_min(h), 1000);

	double ps[] = {0, 50, 90, 99.999, 100};
	int64_t out[5];
	T_EQ(rsx_hist_values_at_percentiles(h, ps, out, 5), 0);
	T_EQ(out[0], 1000);
	T_EQ(out[1], 1000);
	T_EQ(out[3], top);
	T_EQ(out[4], top);

	/* bad input: untouched output, an error */
	double bad[] = {50, 40};
	out[0] = -7;
	T_EQ(rsx_hist_values_at_percentiles(h, bad, out, 2), RSX_EINVALID);
	T_EQ(out[0], -7);
	T_EQ(rsx_hist_value_at_percentile(h, -1), RSX_EINVALID);
	T_EQ(rsx_hist_value_at_percentile(h, 100.5), RSX_EINVALID);
	T_EQ(rsx_hist_value_at_percentile(h, NAN), RSX_EINVALID);

	/* Java's rank: ceil(p x N / 100), not floor(p x N / 100 + 0.5). With 1..7
	 * recorded, p90 is rank ceil(6.3) = 7, p50 rank ceil(3.5) = 4, p0.1 rank 1 */
	struct rsx_hist *r = new_hist(1, 1000, 3);
	for (int v = 1; v <= 7; v++)
		rsx_hist_record(r, (uint64_t)v);
	T_EQ(rsx_hist_value_at_percentile(r, 90), 7);
	T_EQ(rsx_hist_value_at_percentile(r, 50), 4);
	T_EQ(rsx_hist_value_at_percentile(r, 0.1), 1);
	T_EQ(rsx_hist_value_at_percentile(r, 100.0 * 3 / 7), 3);	/* exactly 3/7: not rank 4 */
	rsx_hist_free(r);
	/* 1..1700: p99.9 is rank ceil(1698.3) = 1699 (the rounding rule said 1698) */
	r = new_hist(1, 100000, 3);
	for (int v = 1; v <= 1700; v++)
		rsx_hist_record(r, (uint64_t)v);
	T_EQ(rsx_hist_value_at_percentile(r, 99.9), 1699);
	T_EQ(rsx_hist_value_at_percentile(r, 99.99), 1700);
	rsx_hist_free(r);

	/* mean: (10000 x 1000 + median_equiv(1e8)) / 10001 */
	double mean = rsx_hist_mean(h);
	int64_t med = rsx_hist_lowest_equivalent(h, 100000000) +
		      (rsx_hist_highest_equivalent(h, 100000000) - rsx_hist_lowest_equivalent(h, 100000000) + 1) / 2;
	T_CHECK(fabs(mean - (10000.0 * 1000 + (double)med) / 10001) < 1e-6);
	T_CHECK(rsx_hist_stddev(h) > 0);
	rsx_hist_free(h);

	/* 1..100 000: pN is the N-th percentile of the ranks, within 1/1024 */
	h = new_hist(1, RSX_HIST_DEFAULT_HIGHEST, 3);
	for (int64_t v = 1; v <= 100000; v++)
		rsx_hist_record(h, (uint64_t)v);
	int64_t p50 = rsx_hist_value_at_percentile(h, 50);
	T_EQ(rsx_hist_lowest_equivalent(h, p50), rsx_hist_lowest_equivalent(h, 50000));
	int64_t p999 = rsx_hist_value_at_percentile(h, 99.9);
	T_EQ(rsx_hist_lowest_equivalent(h, p999), rsx_hist_lowest_equivalent(h, 99900));
	rsx_hist_free(h);
}

static void test_record_edges(void)
{
	struct rsx_hist *h = new_hist(1, 1000000, 3);
	int64_t vals[] = {5, 7, -1, 9};
	T_EQ(rsx_hist_record_array(h, vals, 4), RSX_EINVALID);
	T_EQ(h->total, 0);	/* nothing recorded */
	int64_t ok[] = {5, 7, 2000000, 9};
	T_EQ(rsx_hist_record_array(h, ok, 4), 1);	/* one clamped */
	T_EQ(h->total, 4);
	T_EQ(h->clamped, 1);
	T_EQ(h->max, 1000000);
	T_EQ(rsx_hist_record_n(h, -1, 1), RSX_EINVALID);
	T_EQ(rsx_hist_record_n(h, 1, -1), RSX_EINVALID);
	T_EQ(h->total, 4);
	rsx_hist_record(h, UINT64_MAX);	/* "negative" through the unsigned door: clamped */
	T_EQ(h->clamped, 2);
	rsx_hist_reset(h);
	T_EQ(h->total, 0);
	T_EQ(h->clamped, 0);
	T_EQ(h->max, 0);

	/* coordinated-omission back-fill */
	T_EQ(rsx_hist_record_corrected(h, 1000, 100), 0);
	T_EQ(h->total, 10);	/* 1000, 900, ..., 100 */
	T_EQ(rsx_hist_value_at_percentile(h, 0), 100);
	T_EQ(rsx_hist_record_corrected(h, 50, 100), 0);
	T_EQ(h->total, 11);
	T_EQ(rsx_hist_record_corrected(h, 1000000, 0), 0);
	T_EQ(h->total, 12);
	T_EQ(rsx_hist_record_corrected(h, -5, 10), RSX_EINVALID);
	T_EQ(rsx_hist_record_corrected(h, INT64_MAX, 1), RSX_EINVALID);
	T_EQ(h->total, 12);
	rsx_hist_free(h);
}

static void test_add(void)
{
	struct rsx_hist *a = new_hist(1, RSX_HIST_DEFAULT_HIGHEST, 3);
	struct rsx_hist *b = new_hist(1, RSX_HIST_DEFAULT_HIGHEST, 3);
	for (int i = 1; i <= 1000; i++) {
		rsx_hist_record(a, (uint64_t)i);
		rsx_hist_record(b, (uint64_t)i * 1000);
	}
	T_EQ(rsx_hist_add(a, b), 0);
	T_EQ(a->total, 2000);
	T_EQ(a->min, 1);
	T_EQ(a->max, 1000000);
	T_EQ(rsx_hist_lowest_equivalent(a, rsx_hist_value_at_percentile(a, 75)),
	     rsx_hist_lowest_equivalent(a, 500000));

	/* different geometry: value-wise, clamped into the smaller range */
	struct rsx_hist *c = new_hist(1, 100000, 2);
	T_EQ(rsx_hist_add(c, b), 0);
	T_EQ(c->total, 1000);
	T_EQ(c->clamped, 900);	/* 101 000 .. 1 000 000 */
	T_EQ(c->max, 100000);
	rsx_hist_free(a);
	rsx_hist_free(b);
	rsx_hist_free(c);
}

static void test_iterator(void)
{
	struct rsx_hist *h = new_hist(1, RSX_HIST_DEFAULT_HIGHEST, 3);
	struct rsx_hist_iter it;
	T_EQ(rsx_hist_iter_percentiles(&it, h, 0), RSX_EINVALID);
	T_EQ(rsx_hist_iter_percentiles(&it, h, 5), 0);
	T_EQ(rsx_hist_iter_next(&it), 0);	/* empty */

	for (int64_t v = 1; v <= 10000; v++)
		rsx_hist_record(h, (uint64_t)(v * v));
	T_EQ(rsx_hist_iter_percentiles(&it, h, 5), 0);
	int lines = 0;
	double last_p = -1;
	int64_t last_v = -1, last_c = 0;
	while (rsx_hist_iter_next(&it)) {
		T_CHECK(it.percentile >= last_p);
		T_CHECK(it.value >= last_v);
		T_CHECK(it.cumulative >= last_c);
		last_p = it.percentile;
		last_v = it.value;
		last_c = it.cumulative;
		lines++;
	}
	T_CHECK(lines > 50 && lines < 400);
	T_CHECK(last_p == 100.0);

	/* Java's ticks: 5 per half distance, a whole number of halvings each, so
	 * the levels are 0, 10, ..., 50, 55, ..., 75, 77.5, ..., 87.5, 88.75 ... */
	static const double java_levels[] = {0, 10, 20, 30, 40, 50, 55, 60, 65, 70, 75, 77.5, 80, 82.5, 85, 87.5, 88.75};
	T_EQ(rsx_hist_iter_percentiles(&it, h, 5), 0);
	for (size_t i = 0; i < sizeof(java_levels) / sizeof(java_levels[0]); i++) {
		T_EQ(rsx_hist_iter_next(&it), 1);
		T_CHECK(fabs(it.percentile - java_levels[i]) < 1e-9);
	}
	T_EQ(last_c, 10000);
	T_EQ(last_v, rsx_hist_max(h));
	rsx_hist_free(h);
}

static void test_codec(void)
{
	struct rsx_hist *h = new_hist(1, RSX_HIST_DEFAULT_HIGHEST, 3);
	static uint8_t buf[40 + 33792 * 9];
	T_EQ(rsx_hist_encode_v2_bound(h), sizeof(buf));
	T_EQ(rsx_hist_encode_v2(h, buf, sizeof(buf) - 1), RSX_EINVALID);

	/* empty histogram: header only */
	T_EQ(rsx_hist_encode_v2(h, buf, sizeof(buf)), 40);
	T_EQ(buf[0], 0x1c);
	T_EQ(buf[3], 0x13);

	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		rsx_hist_record(h, x % 50000000);
	}
	rsx_hist_record_n(h, 3, 1LL << 40);	/* a big count: 9-byte varints */
	int64_t n = rsx_hist_encode_v2(h, buf, sizeof(buf));
	T_CHECK(n > 40);

	int64_t lo, hi;
	int digits;
	T_EQ(rsx_hist_decode_header(buf, (size_t)n, &lo, &hi, &digits), RSX_HIST_ENC_V2);
	T_EQ(lo, 1);
	T_EQ(hi, RSX_HIST_DEFAULT_HIGHEST);
	T_EQ(digits, 3);

	struct rsx_hist *d = new_hist(lo, hi, digits);
	T_EQ(rsx_hist_decode_add(d, buf, (size_t)n), 0);
	T_EQ(d->total, h->total);
	T_CHECK(memcmp(d->counts, h->counts, sizeof(int64_t) * (size_t)h->counts_len) == 0);
	T_EQ(rsx_hist_max(d), rsx_hist_max(h));
	T_EQ(rsx_hist_min(d), rsx_hist_min(h));
	T_EQ(rsx_hist_value_at_percentile(d, 99.9), rsx_hist_value_at_percentile(h, 99.9));

	/* every kind of damage is refused and leaves d unchanged */
	int64_t total = d->total;
	T_EQ(rsx_hist_decode_add(d, buf, (size_t)n - 1), RSX_EINVALID);	/* payload_len > len */
	uint8_t save = buf[0];
	buf[0] ^= 1;
	T_EQ(rsx_hist_decode_add(d, buf, (size_t)n), RSX_EINVALID);	/* cookie */
	buf[0] = save;
	save = buf[(size_t)n - 1];
	buf[(size_t)n - 1] |= 0x80;	/* last varint now runs off the end */
	T_EQ(rsx_hist_decode_add(d, buf, (size_t)n), RSX_EINVALID);
	buf[(size_t)n - 1] = save;
	T_EQ(rsx_hist_decode_add(d, buf, 39), RSX_EINVALID);
	struct rsx_hist *other = new_hist(1, RSX_HIST_DEFAULT_HIGHEST, 2);
	T_EQ(rsx_hist_decode_add(other, buf, (size_t)n), RSX_EINVALID);	/* geometry */
	T_EQ(d->total, total);
	T_EQ(other->total, 0);

	/* a zero run that points past counts_len */
	uint8_t evil[64];
	memcpy(evil, buf, 40);
	size_t k = 40;
	evil[k++] = 0x02;	/* count 1 */
	/* -(40000) zero run: zigzag(−40000) = 79999 = 0xFF 0xF0 0x04 in LEB128 */
	evil[k++] = 0xFF;
	evil[k++] = 0xF0;
	evil[k++] = 0x04;
	evil[k++] = 0x02;
	uint32_t plen = (uint32_t)(k - 40);
	evil[4] = (uint8_t)(plen >> 24), evil[5] = (uint8_t)(plen >> 16);
	evil[6] = (uint8_t)(plen >> 8), evil[7] = (uint8_t)plen;
	T_EQ(rsx_hist_decode_add(d, evil, k), RSX_EINVALID);
	T_EQ(d->total, total);

	rsx_hist_free(h);
	rsx_hist_free(d);
	rsx_hist_free(other);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* Java's older encodings: V1 (2.0 - 2.1.6) and V0 (1.x), raw big-endian words. */
static void test_old_encodings(void)
{
	uint8_t b[40 + 8 * 8];
	int64_t lo, hi;
	int digits;
	uint32_t zlen;

	/* V1, 2-byte words: counts 0, 3, 0, 5 at indices 0..3 */
	memset(b, 0, sizeof(b));
	put32(b, RSX_HIST_V1_ENCODING_COOKIE_BASE + (2 << 4));
	put32(b + 4, 8);
	put32(b + 12, 3);
	put64(b + 16, 1);
	put64(b + 24, 1000000);
	b[40 + 3] = 3;
	b[40 + 7] = 5;
	T_EQ(rsx_hist_decode_header(b, 48, &lo, &hi, &digits), RSX_HIST_ENC_V1);
	T_EQ(hi, 1000000);
	struct rsx_hist *h = new_hist(1, 1000000, 3);
	T_EQ(rsx_hist_decode_add(h, b, 48), 0);
	T_EQ(h->total, 8);
	T_EQ(h->counts[1], 3);
	T_EQ(h->counts[3], 5);
	T_EQ(rsx_hist_max(h), 3);
	put32(b + 8, 7);	/* a normalizing offset: 2.1.x wrote its physical array */
	T_EQ(rsx_hist_decode_add(h, b, 48), RSX_EINVALID);
	put32(b + 8, 0);
	b[40 + 6] = 0x80;	/* a negative count */
	T_EQ(rsx_hist_decode_add(h, b, 48), RSX_EINVALID);
	b[40 + 6] = 0;
	put32(b + 4, 7);	/* not a whole number of words */
	T_EQ(rsx_hist_decode_add(h, b, 48), RSX_EINVALID);
	put32(b, RSX_HIST_V1_ENCODING_COOKIE_BASE + (6 << 4));	/* no such word size */
	put32(b + 4, 8);
	T_EQ(rsx_hist_decode_header(b, 48, &lo, &hi, &digits), RSX_EINVALID);
	T_EQ(h->total, 8);

	/* V0, 8-byte words, counts to the end of the buffer */
	memset(b, 0, sizeof(b));
	put32(b, RSX_HIST_V0_ENCODING_COOKIE_BASE + (8 << 4));
	put32(b + 4, 3);
	put64(b + 8, 1);
	put64(b + 16, 1000000);
	put64(b + 24, 9);	/* total count: ignored, the counts decide */
	put64(b + 32 + 8 * 2, 9);
	T_EQ(rsx_hist_decode_header(b, 32 + 8 * 4, &lo, &hi, &digits), RSX_HIST_ENC_V0);
	T_EQ(rsx_hist_decode_add(h, b, 32 + 8 * 4), 0);
	T_EQ(h->total, 17);
	T_EQ(h->counts[2], 9);

	/* compressed envelopes: V2, V1, V0 and a DoubleHistogram are told apart */
	put32(b, RSX_HIST_V2_COMPRESSION_COOKIE);
	put32(b + 4, 77);
	T_EQ(rsx_hist_compressed_encoding(b, 8, &zlen), RSX_HIST_ENC_V2);
	T_EQ(zlen, 77);
	put32(b, RSX_HIST_V1_COMPRESSION_COOKIE_BASE + (8 << 4));
	T_EQ(rsx_hist_compressed_encoding(b, 8, &zlen), RSX_HIST_ENC_V1);
	put32(b, RSX_HIST_V0_COMPRESSION_COOKIE_BASE + (4 << 4));
	T_EQ(rsx_hist_compressed_encoding(b, 8, &zlen), RSX_HIST_ENC_V0);
	put32(b, RSX_HIST_DOUBLE_COMPRESSION_COOKIE);
	T_EQ(rsx_hist_compressed_encoding(b, 8, &zlen), RSX_HIST_ENC_DOUBLE);
	put32(b, 0x12345678);
	T_EQ(rsx_hist_compressed_encoding(b, 8, &zlen), RSX_EINVALID);
	T_EQ(rsx_hist_compressed_encoding(b, 7, &zlen), RSX_EINVALID);
	rsx_hist_free(h);
}

int main(void)
{
	test_geometry();
	test_equivalence();
	test_percentiles();
	test_record_edges();
	test_add();
	test_iterator();
	test_codec();
	test_old_encodings();
	T_DONE();
}
