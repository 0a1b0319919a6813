/*
 * hist.c - HdrHistogram geometry, recording, merging and percentile queries.
 *
 * The arithmetic follows Java HdrHistogram 2.2 line by line where it decides a
 * result (bucket count, equivalent values, the percentile rank and the
 * percentile iterator's ticks), so that our percentiles and .hgrm output match
 * Java's exactly, not just within precision. (HdrHistogram_c and the PyPI
 * port round the percentile rank and space the .hgrm ticks differently.)
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rsx/errors.h"
#include "rsx/hist.h"

struct geometry {
	int32_t unit_magnitude;
	int32_t sub_bucket_half_count_magnitude;
	int32_t sub_bucket_count;
	int32_t bucket_count;
	int32_t counts_len;
};

static int32_t buckets_needed(int64_t value, int32_t sub_bucket_count, int32_t unit_magnitude)
{
	int64_t smallest_untrackable = (int64_t)sub_bucket_count << unit_magnitude;
	int32_t buckets = 1;

	while (smallest_untrackable <= value) {
		if (smallest_untrackable > INT64_MAX / 2)
			return buckets + 1;
		smallest_untrackable <<= 1;
		buckets++;
	}
	return buckets;
}

static int geometry(int64_t lowest, int64_t highest, int digits, struct geometry *g)
{
	if (lowest < 1 || digits < 0 || digits > 5 || highest < 2 * lowest)
		return RSX_EINVALID;
	/* 2 x 10^digits values must be told apart at unit resolution */
	int64_t largest_single_unit = 2;
	for (int i = 0; i < digits; i++)
		largest_single_unit *= 10;
	int32_t sub_bucket_count_magnitude = 64 - __builtin_clzll((uint64_t)largest_single_unit - 1);
	g->sub_bucket_half_count_magnitude = sub_bucket_count_magnitude > 1 ? sub_bucket_count_magnitude - 1 : 0;
	g->unit_magnitude = 63 - __builtin_clzll((uint64_t)lowest);
	if (g->unit_magnitude + g->sub_bucket_half_count_magnitude > 61)
		return RSX_EINVALID;
	g->sub_bucket_count = 1 << (g->sub_bucket_half_count_magnitude + 1);
	g->bucket_count = buckets_needed(highest, g->sub_bucket_count, g->unit_magnitude);
	g->counts_len = (g->bucket_count + 1) * (g->sub_bucket_count / 2);
	return 0;
}

static size_t header_size(void)
{
	return (sizeof(struct rsx_hist) + 63) & ~(size_t)63;
}

int64_t rsx_hist_footprint(int64_t lowest, int64_t highest, int digits)
{
	struct geometry g;
	int rc = geometry(lowest, highest, digits, &g);
	if (rc < 0)
		return rc;
	return (int64_t)(header_size() + (size_t)g.counts_len * sizeof(int64_t));
}

int rsx_hist_init(struct rsx_hist *h, size_t size, int64_t lowest, int64_t highest, int digits)
{
	struct geometry g;
	int rc = geometry(lowest, highest, digits, &g);
	if (rc < 0)
		return rc;
	if (!h || ((uintptr_t)h & 7) || size < header_size() + (size_t)g.counts_len * sizeof(int64_t))
		return RSX_EINVALID;
	memset(h, 0, header_size());
	h->lowest = lowest;
	h->highest = highest;
	h->digits = digits;
	h->unit_magnitude = g.unit_magnitude;
	h->sub_bucket_half_count_magnitude = g.sub_bucket_half_count_magnitude;
	h->sub_bucket_count = g.sub_bucket_count;
	h->sub_bucket_half_count = g.sub_bucket_count / 2;
	h->bucket_count = g.bucket_count;
	h->counts_len = g.counts_len;
	h->lz_base = 64 - g.unit_magnitude - g.sub_bucket_half_count_magnitude - 1;
	h->sub_bucket_mask = (int64_t)(g.sub_bucket_count - 1) << g.unit_magnitude;
	h->counts = (int64_t *)((char *)h + header_size());
	rsx_hist_reset(h);
	return 0;
}

int rsx_hist_new(int64_t lowest, int64_t highest, int digits, struct rsx_hist **out)
{
	int64_t size = rsx_hist_footprint(lowest, highest, digits);
	if (size < 0)
		return (int)size;
	void *mem = NULL;
	if (posix_memalign(&mem, 64, (size_t)size) != 0)
		return -ENOMEM;
	rsx_hist_init(mem, (size_t)size, lowest, highest, digits);
	((struct rsx_hist *)mem)->owned = 1;
	*out = mem;
	return 0;
}

void rsx_hist_free(struct rsx_hist *h)
{
	if (h && h->owned)
		free(h);
}

void rsx_hist_reset(struct rsx_hist *h)
{
	memset(h->counts, 0, (size_t)h->counts_len * sizeof(int64_t));
	h->total = 0;
	h->min = INT64_MAX;
	h->max = 0;
	h->clamped = 0;
}

void rsx_hist_record_value(struct rsx_hist *h, uint64_t v)
{
	rsx_hist_record(h, v);
}

int rsx_hist_record_n(struct rsx_hist *h, int64_t v, int64_t count)
{
	if (v < 0 || count < 0)
		return RSX_EINVALID;
	if (count == 0)
		return 0;
	if (v > h->highest) {
		v = h->highest;
		h->clamped += count;
	}
	h->counts[rsx_hist_index(h, v)] += count;
	h->total += count;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	return 0;
}

int64_t rsx_hist_record_array(struct rsx_hist *h, const int64_t *values, size_t n)
{
	/* validate everything first so a bad batch changes nothing */
	int64_t any_negative = 0;
	for (size_t i = 0; i < n; i++)
		any_negative |= values[i];
	if (any_negative < 0)
		return RSX_EINVALID;
	int64_t clamped = h->clamped;
	for (size_t i = 0; i < n; i++)
		rsx_hist_record(h, (uint64_t)values[i]);
	return h->clamped - clamped;
}

int rsx_hist_record_corrected(struct rsx_hist *h, int64_t v, int64_t expected_interval)
{
	if (v < 0)
		return RSX_EINVALID;
	if (expected_interval <= 0 || v <= expected_interval) {
		rsx_hist_record(h, (uint64_t)v);
		return 0;
	}
	if ((v - 1) / expected_interval > (1 << 26))
		return RSX_EINVALID;
	for (int64_t x = v; x > 0; x -= expected_interval) {
		rsx_hist_record(h, (uint64_t)x);
		if (x <= expected_interval)
			break;
	}
	return 0;
}

int rsx_hist_same_geometry(const struct rsx_hist *a, const struct rsx_hist *b)
{
	return a->lowest == b->lowest && a->highest == b->highest && a->digits == b->digits;
}

int rsx_hist_add(struct rsx_hist *dst, const struct rsx_hist *src)
{
	if (src->total == 0)
		return 0;
	if (dst->unit_magnitude == src->unit_magnitude &&
	    dst->sub_bucket_count == src->sub_bucket_count &&
	    dst->counts_len >= src->counts_len && src->max <= dst->highest) {
		for (int32_t i = 0; i < src->counts_len; i++)
			dst->counts[i] += src->counts[i];
		dst->total += src->total;
		dst->clamped += src->clamped;
		if (src->min < dst->min)
			dst->min = src->min;
		if (src->max > dst->max)
			dst->max = src->max;
		return 0;
	}
	for (int32_t i = 0; i < src->counts_len; i++)
		if (src->counts[i])
			rsx_hist_record_n(dst, rsx_hist_value_from_index(src, i), src->counts[i]);
	/* src's clamped values sit in its top bucket; count them unless that
	 * bucket was just clamped again (and so already counted) */
	if (rsx_hist_lowest_equivalent(src, src->highest) <= dst->highest)
		dst->clamped += src->clamped;
	return 0;
}

int64_t rsx_hist_value_from_index(const struct rsx_hist *h, int32_t index)
{
	int32_t bucket = (index >> h->sub_bucket_half_count_magnitude) - 1;
	int32_t sub = (index & (h->sub_bucket_half_count - 1)) + h->sub_bucket_half_count;
	if (bucket < 0) {
		sub -= h->sub_bucket_half_count;
		bucket = 0;
	}
	return (int64_t)sub << (bucket + h->unit_magnitude);
}

static int32_t bucket_of(const struct rsx_hist *h, int64_t v)
{
	return h->lz_base - __builtin_clzll((uint64_t)v | (uint64_t)h->sub_bucket_mask);
}

int64_t rsx_hist_lowest_equivalent(const struct rsx_hist *h, int64_t v)
{
	int32_t bucket = bucket_of(h, v);
	int64_t sub = v >> (bucket + h->unit_magnitude);
	return sub << (bucket + h->unit_magnitude);
}

static int64_t range_size(const struct rsx_hist *h, int64_t v)
{
	int32_t bucket = bucket_of(h, v);
	int64_t sub = v >> (bucket + h->unit_magnitude);
	if (sub >= h->sub_bucket_count)
		bucket++;
	return (int64_t)1 << (h->unit_magnitude + bucket);
}

int64_t rsx_hist_highest_equivalent(const struct rsx_hist *h, int64_t v)
{
	return rsx_hist_lowest_equivalent(h, v) + range_size(h, v) - 1;
}

static int64_t median_equivalent(const struct rsx_hist *h, int64_t v)
{
	return rsx_hist_lowest_equivalent(h, v) + (range_size(h, v) >> 1);
}

static int64_t target_count(const struct rsx_hist *h, double p)
{
	/* Java 2.2's getValueAtPercentile: one ulp below p (so a product like
	 * 99.99 x 10000 / 100 that lands a hair above an integer does not reach
	 * the next rank), then the rank rounded up: the smallest count whose
	 * share of the total is >= p */
	double requested = nextafter(p, -INFINITY);
	requested = requested < 0.0 ? 0.0 : requested > 100.0 ? 100.0 : requested;
	double count = ceil((requested * (double)h->total) / 100.0);
	return count > 1.0 ? (int64_t)count : 1;
}

static int64_t at_index(const struct rsx_hist *h, int32_t i, double p)
{
	int64_t v = rsx_hist_value_from_index(h, i);
	return p > 0.0 ? rsx_hist_highest_equivalent(h, v) : rsx_hist_lowest_equivalent(h, v);
}

int64_t rsx_hist_value_at_percentile(const struct rsx_hist *h, double p)
{
	int64_t out;
	int rc = rsx_hist_values_at_percentiles(h, &p, &out, 1);
	return rc < 0 ? rc : out;
}

int rsx_hist_values_at_percentiles(const struct rsx_hist *h, const double *ps, int64_t *out, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (!(ps[k] >= 0.0 && ps[k] <= 100.0) || (k > 0 && ps[k] < ps[k - 1]))
			return RSX_EINVALID;	/* also catches NaN */
	if (h->total == 0) {
		for (size_t k = 0; k < n; k++)
			out[k] = 0;
		return 0;
	}
	size_t k = 0;
	int64_t cumulative = 0;
	for (int32_t i = 0; i < h->counts_len && k < n; i++) {
		cumulative += h->counts[i];
		while (k < n && cumulative >= target_count(h, ps[k])) {
			out[k] = at_index(h, i, ps[k]);
			k++;
		}
	}
	for (; k < n; k++)	/* unreachable unless counters and total disagree */
		out[k] = rsx_hist_max(h);
	return 0;
}

int64_t rsx_hist_min(const struct rsx_hist *h)
{
	if (h->total == 0 || h->counts[0] > 0)
		return 0;
	return rsx_hist_lowest_equivalent(h, h->min);
}

int64_t rsx_hist_max(const struct rsx_hist *h)
{
	return h->max == 0 ? 0 : rsx_hist_highest_equivalent(h, h->max);
}

double rsx_hist_mean(const struct rsx_hist *h)
{
	if (h->total == 0)
		return 0.0;
	__int128 sum = 0;
	for (int32_t i = 0; i < h->counts_len; i++)
		if (h->counts[i])
			sum += (__int128)h->counts[i] * median_equivalent(h, rsx_hist_value_from_index(h, i));
	return (double)sum / (double)h->total;
}

double rsx_hist_stddev(const struct rsx_hist *h)
{
	if (h->total == 0)
		return 0.0;
	double mean = rsx_hist_mean(h), acc = 0.0;
	for (int32_t i = 0; i < h->counts_len; i++) {
		if (!h->counts[i])
			continue;
		double dev = (double)median_equivalent(h, rsx_hist_value_from_index(h, i)) - mean;
		acc += dev * dev * (double)h->counts[i];
	}
	return sqrt(acc / (double)h->total);
}

int rsx_hist_bucket_values(const struct rsx_hist *h, int64_t *lowest, int64_t *highest)
{
	for (int32_t i = 0; i < h->counts_len; i++) {
		int64_t v = rsx_hist_value_from_index(h, i);
		if (lowest)
			lowest[i] = v;
		if (highest)
			highest[i] = rsx_hist_highest_equivalent(h, v);
	}
	return 0;
}

/* --- percentile iterator: HdrHistogram's AbstractHistogramIterator +
 *     PercentileIterator, step for step, so .hgrm files match theirs. --- */

int rsx_hist_iter_percentiles(struct rsx_hist_iter *it, const struct rsx_hist *h, int ticks_per_half_distance)
{
	if (ticks_per_half_distance < 1)
		return RSX_EINVALID;
	memset(it, 0, sizeof(*it));
	it->h = h;
	it->ticks_per_half_distance = ticks_per_half_distance;
	it->total = h->total;
	it->fresh = 1;
	return 0;
}

static int iter_has_next(struct rsx_hist_iter *it)
{
	if (it->total_to_index < it->total)
		return 1;
	if (!it->reached_last && it->total) {	/* one last step to 100 % */
		it->percentile_to = 100.0;
		it->reached_last = 1;
		return 1;
	}
	return 0;
}

int rsx_hist_iter_next(struct rsx_hist_iter *it)
{
	const struct rsx_hist *h = it->h;

	while (iter_has_next(it)) {
		if (it->index >= h->counts_len)
			return 0;	/* counters and total disagree: stop, never read past */
		it->count_at_index = h->counts[it->index];
		if (it->fresh) {
			it->total_to_index += it->count_at_index;
			it->fresh = 0;
		}
		if (it->count_at_index != 0 &&
		    (100.0 * (double)it->total_to_index) / (double)it->total >= it->percentile_to) {
			it->value = rsx_hist_highest_equivalent(h, it->value_at_index);
			it->percentile = it->percentile_to;
			it->cumulative = it->total_to_index;
			it->total_to_prev = it->total_to_index;
			double gap = 100.0 - it->percentile_to;
			if (gap > 0.0) {
				/* Java's PercentileIterator: a whole number of halvings, so every
				 * half distance to 100 % gets the same `ticks` equal steps */
				int64_t halvings = (int64_t)(log(100.0 / gap) / log(2));
				if (halvings > 56)
					halvings = 56;
				int64_t ticks = it->ticks_per_half_distance * ((int64_t)1 << (halvings + 1));
				it->percentile_to += 100.0 / (double)ticks;
			}
			return 1;
		}
		it->fresh = 1;
		it->index++;
		it->value_at_index = rsx_hist_value_from_index(h, it->index);
	}
	if (it->total_to_index > it->total_to_prev) {
		it->value = rsx_hist_highest_equivalent(h, it->value_at_index);
		it->percentile = it->percentile_to;
		it->cumulative = it->total_to_index;
		it->total_to_prev = it->total_to_index;
		return 1;
	}
	return 0;
}
