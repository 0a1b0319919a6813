/*
 * rsx/hist.h - log-linear latency histograms with HdrHistogram's bucket math.
 *
 * Same geometry, indexing and V2 encoding as HdrHistogram (Java, C, PyPI
 * `hdrhistogram`), so counts and files agree across implementations; the
 * percentile rank and the .hgrm ticks are Java 2.2's (the C and PyPI ports
 * differ there). Decoding also reads Java's older V0 and V1 encodings.
 * specs/latency.md section 1 is the prose form.
 *
 * Threading: one writer per histogram, no locks, no atomics. Readers (add,
 * encode, percentile queries) run on the writer's thread or after it
 * stopped; aggregate threads by giving each its own histogram and merging.
 *
 * Values are nanoseconds by convention, but nothing here depends on the unit.
 */
#ifndef RSX_HIST_H
#define RSX_HIST_H

#include <stddef.h>
#include <stdint.h>

#define RSX_HIST_DEFAULT_LOWEST 1
#define RSX_HIST_DEFAULT_HIGHEST 3600000000000LL	/* 1 hour in ns */
#define RSX_HIST_DEFAULT_DIGITS 3

/* V2 "histoblob" cookies (word size nibble 0x10 = LEB128 counts). */
#define RSX_HIST_V2_ENCODING_COOKIE 0x1c849313u
#define RSX_HIST_V2_COMPRESSION_COOKIE 0x1c849314u
#define RSX_HIST_V2_HEADER_SIZE 40
/* Java's older encodings (cookie & ~0xf0; the nibble holds the word size). */
#define RSX_HIST_V1_ENCODING_COOKIE_BASE 0x1c849301u
#define RSX_HIST_V1_COMPRESSION_COOKIE_BASE 0x1c849302u
#define RSX_HIST_V0_ENCODING_COOKIE_BASE 0x1c849308u
#define RSX_HIST_V0_COMPRESSION_COOKIE_BASE 0x1c849309u
#define RSX_HIST_V0_HEADER_SIZE 32
/* Java's DoubleHistogram (floating-point values): recognised, never decoded. */
#define RSX_HIST_DOUBLE_ENCODING_COOKIE 0x0c72124eu
#define RSX_HIST_DOUBLE_COMPRESSION_COOKIE 0x0c72124fu

/* What an encoded histogram's cookie says (rsx_hist_encoding). */
enum rsx_hist_encoding {
	RSX_HIST_ENC_V0 = 0,	/* HdrHistogram 1.x: 32-byte header, raw big-endian counts */
	RSX_HIST_ENC_V1 = 1,	/* 2.0 - 2.1.6: 40-byte header, raw big-endian counts */
	RSX_HIST_ENC_V2 = 2,	/* 2.1.7 on: 40-byte header, ZigZag LEB128 counts */
	RSX_HIST_ENC_DOUBLE = 3,	/* a DoubleHistogram: values are not integers */
};

struct rsx_hist {
	int64_t lowest;		/* lowest discernible value, >= 1 */
	int64_t highest;	/* highest trackable value; larger ones are clamped */
	int32_t digits;		/* significant decimal digits, 0..5 (as Java) */
	int32_t unit_magnitude;	/* floor(log2(lowest)) */
	int32_t sub_bucket_half_count_magnitude;
	int32_t sub_bucket_half_count;
	int32_t sub_bucket_count;
	int32_t bucket_count;
	int32_t counts_len;
	int32_t lz_base;	/* 64 - unit_magnitude - sub_bucket_half_count_magnitude - 1 */
	int64_t sub_bucket_mask;
	int64_t total;		/* values recorded */
	int64_t min;		/* smallest value recorded (INT64_MAX when empty) */
	int64_t max;		/* largest value recorded, after clamping (0 when empty) */
	int64_t clamped;	/* values above `highest`, recorded as `highest` */
	uint32_t owned;		/* 1 if rsx_hist_new allocated it */
	uint32_t _pad;
	int64_t *counts;	/* counts_len counters */
};

/* --- life cycle ---------------------------------------------------------- */

/*
 * Bytes rsx_hist_init needs for this geometry (header + counters), or
 * RSX_EINVALID if lowest < 1, digits outside 0..5, highest < 2 x lowest, or
 * the geometry does not fit 64-bit values.
 */
int64_t rsx_hist_footprint(int64_t lowest, int64_t highest, int digits);

/*
 * Lay a zeroed histogram into caller memory `mem` of `size` bytes (8-byte
 * aligned; e.g. a hugepage slab): no allocation. Returns 0, or RSX_EINVALID
 * for a bad geometry, a NULL/misaligned mem or size < rsx_hist_footprint().
 */
int rsx_hist_init(struct rsx_hist *mem, size_t size, int64_t lowest, int64_t highest, int digits);

/* malloc + init; returns 0 and sets *out, RSX_EINVALID, or -ENOMEM. */
int rsx_hist_new(int64_t lowest, int64_t highest, int digits, struct rsx_hist **out);

/* Free a histogram from rsx_hist_new (no-op for NULL or caller memory). */
void rsx_hist_free(struct rsx_hist *h);

/* Zero every counter and statistic; the geometry stays. */
void rsx_hist_reset(struct rsx_hist *h);

/* --- recording (hot path) ------------------------------------------------ */

/* Counter index of v (0 <= v <= highest). */
static inline int32_t rsx_hist_index(const struct rsx_hist *h, int64_t v)
{
	int32_t bucket = h->lz_base - __builtin_clzll((uint64_t)v | (uint64_t)h->sub_bucket_mask);
	int32_t sub = (int32_t)(v >> (bucket + h->unit_magnitude));
	return ((bucket + 1) << h->sub_bucket_half_count_magnitude) + sub - h->sub_bucket_half_count;
}

/*
 * Record one value: no allocation, no lock, no syscall, no failure. A value
 * above `highest` is recorded as `highest` and counted in h->clamped (never
 * dropped). Callers holding a signed value must refuse negatives themselves.
 */
static inline void rsx_hist_record(struct rsx_hist *h, uint64_t v)
{
	if (__builtin_expect(v > (uint64_t)h->highest, 0)) {
		v = (uint64_t)h->highest;
		h->clamped++;
	}
	h->counts[rsx_hist_index(h, (int64_t)v)]++;
	h->total++;
	h->min = (int64_t)v < h->min ? (int64_t)v : h->min;
	h->max = (int64_t)v > h->max ? (int64_t)v : h->max;
}

/* Exported (callable) form of rsx_hist_record, for cffi and other languages. */
void rsx_hist_record_value(struct rsx_hist *h, uint64_t v);

/* Record v `count` times. Returns 0, or RSX_EINVALID if v < 0 or count < 0. */
int rsx_hist_record_n(struct rsx_hist *h, int64_t v, int64_t count);

/*
 * Record n values. All values are checked first: if any is negative, nothing
 * is recorded and RSX_EINVALID is returned. Otherwise returns the number of
 * values that were clamped to `highest` (>= 0).
 */
int64_t rsx_hist_record_array(struct rsx_hist *h, const int64_t *values, size_t n);

/*
 * HdrHistogram's recordValueWithExpectedInterval: record v, then back-fill
 * v - interval, v - 2 x interval, ... while above interval (the samples a
 * fixed-rate sender would have seen during a stall). interval <= 0 records v
 * only. Returns 0, or RSX_EINVALID if v < 0 or the back-fill would exceed
 * 2^26 values (nothing recorded then).
 */
int rsx_hist_record_corrected(struct rsx_hist *h, int64_t v, int64_t expected_interval);

/* --- merging ------------------------------------------------------------- */

/*
 * dst += src. Same geometry: counter-wise add. Otherwise every non-empty
 * bucket of src is re-recorded at its lowest equivalent value (clamped into
 * dst's range and counted in dst->clamped). src->clamped is carried over.
 * Returns 0.
 */
int rsx_hist_add(struct rsx_hist *dst, const struct rsx_hist *src);

/* 1 if a and b have the same lowest/highest/digits geometry, else 0. */
int rsx_hist_same_geometry(const struct rsx_hist *a, const struct rsx_hist *b);

/* --- queries ------------------------------------------------------------- */

int64_t rsx_hist_value_from_index(const struct rsx_hist *h, int32_t index);
int64_t rsx_hist_lowest_equivalent(const struct rsx_hist *h, int64_t v);
int64_t rsx_hist_highest_equivalent(const struct rsx_hist *h, int64_t v);

/*
 * Value at percentile p (0..100; rule in specs/latency.md 1): the highest
 * equivalent value of the bucket holding the rank max(1, ceil(p'*N/100)),
 * p' = the double just below p (Java 2.2's getValueAtPercentile)
 * value (lowest equivalent for p == 0). Returns the value (>= 0), 0 for an
 * empty histogram, or RSX_EINVALID for p outside [0, 100] or NaN.
 */
int64_t rsx_hist_value_at_percentile(const struct rsx_hist *h, double p);

/*
 * Several percentiles in one pass: ps[0..n) must be ascending within
 * [0, 100]; out[i] receives each value. Returns 0 or RSX_EINVALID (out
 * untouched).
 */
int rsx_hist_values_at_percentiles(const struct rsx_hist *h, const double *ps, int64_t *out, size_t n);

/* HdrHistogram's min / max: lowest resp. highest equivalent value; 0 if empty. */
int64_t rsx_hist_min(const struct rsx_hist *h);
int64_t rsx_hist_max(const struct rsx_hist *h);

/* Mean and standard deviation over bucket-median values; 0.0 if empty. */
double rsx_hist_mean(const struct rsx_hist *h);
double rsx_hist_stddev(const struct rsx_hist *h);

/*
 * Fill lowest[i] / highest[i] (arrays of h->counts_len, either may be NULL)
 * with the value range of counter i. Returns 0.
 */
int rsx_hist_bucket_values(const struct rsx_hist *h, int64_t *lowest, int64_t *highest);

/* --- percentile iteration (HdrHistogram's PercentileIterator, for .hgrm) -- */

struct rsx_hist_iter {
	const struct rsx_hist *h;
	int32_t index;
	int32_t ticks_per_half_distance;
	int32_t fresh;
	int32_t reached_last;
	int64_t count_at_index;
	int64_t total_to_index;
	int64_t total_to_prev;
	int64_t total;		/* snapshot of h->total */
	int64_t value_at_index;
	double percentile_to;
	/* outputs of the last successful rsx_hist_iter_next */
	int64_t value;		/* highest equivalent value iterated to */
	double percentile;	/* percentile level iterated to, 0..100 */
	int64_t cumulative;	/* values <= value */
};

/* Start a percentile iteration; returns 0 or RSX_EINVALID (ticks < 1). */
int rsx_hist_iter_percentiles(struct rsx_hist_iter *it, const struct rsx_hist *h, int ticks_per_half_distance);

/* Advance: 1 with it->value/percentile/cumulative set, 0 at the end. */
int rsx_hist_iter_next(struct rsx_hist_iter *it);

/* --- encoding: V2 out, V0 / V1 / V2 in (specs/latency.md 4.3) ------------ */

/* Upper bound of rsx_hist_encode_v2's output for h, in bytes. */
size_t rsx_hist_encode_v2_bound(const struct rsx_hist *h);

/*
 * Write the uncompressed V2 payload (40-byte big-endian header + ZigZag
 * LEB128 counts with zero runs) into buf. Returns the bytes written, or
 * RSX_EINVALID if cap < rsx_hist_encode_v2_bound(h).
 */
int64_t rsx_hist_encode_v2(const struct rsx_hist *h, void *buf, size_t cap);

/*
 * The encoding of a *compressed* blob from its first 8 bytes (cookie |
 * compressed length, big-endian): returns an rsx_hist_encoding and sets
 * *zlen, or RSX_EINVALID (short buffer, unknown cookie).
 */
int rsx_hist_compressed_encoding(const void *buf, size_t len, uint32_t *zlen);

/*
 * Read the geometry from an uncompressed V0, V1 or V2 payload header.
 * Returns its rsx_hist_encoding, or RSX_EINVALID (short buffer, unknown
 * cookie or word size, a V1 normalizing index offset, impossible geometry).
 */
int rsx_hist_decode_header(const void *buf, size_t len, int64_t *lowest, int64_t *highest, int *digits);

/*
 * Add the counts of an uncompressed V0, V1 or V2 payload to h, whose
 * lowest and digits must be the payload's (highest may be larger). The whole
 * payload is validated first (header, lengths, varints or words, indices
 * within counts_len, no negative counts or totals); on any error
 * RSX_EINVALID is returned and h is unchanged. Returns 0.
 */
int rsx_hist_decode_add(struct rsx_hist *h, const void *buf, size_t len);

#endif
