/*
 * bench_hist.c - cost of recording a value into an rsx_hist, and of reading
 * the rsx clock. Prints one JSON object. Wall-clock figures are only
 * meaningful on a quiet machine; for a stable figure run it under callgrind:
 *
 *   valgrind --tool=callgrind --toggle-collect=record_loop \
 *       native/build/bench/bench_hist --n 1000000 --only record
 *
 * and divide the collected Ir by n.
 *
 * Usage: bench_hist [--n N] [--rounds R] [--only record|array|clock]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsx/clock.h"
#include "rsx/hist.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t next_u64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The measured loop: kept out of line so callgrind can collect just it. */
__attribute__((noinline)) void record_loop(struct rsx_hist *h, const int64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rsx_hist_record(h, (uint64_t)v[i]);
}

__attribute__((noinline)) uint64_t clock_loop(size_t n)
{
	uint64_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc += rsx_clock_now_inline();
	return acc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	size_t n = 1000000;
	int rounds = 5;
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--n") && i + 1 < argc)
			n = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--n N] [--rounds R] [--only record|array|clock]\n", argv[0]);
			return 2;
		}
	}
	if (n == 0 || rounds < 1 || rounds > 101) {
		fprintf(stderr, "bench_hist: --n must be > 0 and --rounds 1..101\n");
		return 2;
	}

	int64_t *uniform = malloc(n * sizeof(int64_t)), *tail = malloc(n * sizeof(int64_t));
	if (!uniform || !tail)
		return 1;
	for (size_t i = 0; i < n; i++) {
		uniform[i] = (int64_t)(next_u64() % 100000);	/* 0..100 us */
		/* heavy tail: Pareto(alpha 1.2) from 1 us, capped at 1 s */
		double u = ((double)(next_u64() >> 11) + 1) / 9007199254740993.0;
		double v = 1000.0 / pow(u, 1 / 1.2);
		tail[i] = (int64_t)(v > 1e9 ? 1e9 : v);
	}
	struct rsx_hist *h;
	if (rsx_hist_new(1, RSX_HIST_DEFAULT_HIGHEST, 3, &h) < 0)
		return 1;
	rsx_clock_init();

	if (only && !strcmp(only, "record")) {	/* callgrind mode: one pass, nothing else */
		record_loop(h, uniform, n);
		printf("{\"n\": %zu, \"total\": %lld}\n", n, (long long)h->total);
		return 0;
	}

	double rec_u[101], rec_t[101], arr[101], clk[101];
	for (int r = 0; r < rounds; r++) {
		uint64_t t0 = rsx_clock_gettime_ns();
		record_loop(h, uniform, n);
		uint64_t t1 = rsx_clock_gettime_ns();
		record_loop(h, tail, n);
		uint64_t t2 = rsx_clock_gettime_ns();
		rsx_hist_record_array(h, uniform, n);
		uint64_t t3 = rsx_clock_gettime_ns();
		volatile uint64_t sink = clock_loop(n);
		(void)sink;
		uint64_t t4 = rsx_clock_gettime_ns();
		rec_u[r] = (double)(t1 - t0) / (double)n;
		rec_t[r] = (double)(t2 - t1) / (double)n;
		arr[r] = (double)(t3 - t2) / (double)n;
		clk[r] = (double)(t4 - t3) / (double)n;
	}
	struct rsx_clock_cal cal;
	rsx_clock_get(&cal);
	printf("{\"bench\": \"hist\", \"n\": %zu, \"rounds\": %d, \"unit\": \"ns per value (median of rounds)\",\n"
	       " \"record_uniform_ns\": %.2f, \"record_heavy_tail_ns\": %.2f, \"record_array_ns\": %.2f,\n"
	       " \"clock_now_ns\": %.2f, \"clock_source\": \"%s\", \"tsc_hz\": %llu,\n"
	       " \"p99_of_tail_ns\": %lld, \"note\": \"wall time on a shared machine is indicative only; "
	       "quote callgrind Ir for stable figures\"}\n",
	       n, rounds, median(rec_u, rounds), median(rec_t, rounds), median(arr, rounds), median(clk, rounds),
	       cal.source == RSX_CLOCK_TSC ? "tsc" : "clock_gettime", (unsigned long long)cal.tsc_hz,
	       (long long)rsx_hist_value_at_percentile(h, 99));
	rsx_hist_free(h);
	free(uniform);
	free(tail);
	return 0;
}
