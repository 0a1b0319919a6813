/*
 * bench/book_worst.c - the order book's worst cases, one operation at a time
 * (specs/book.md §3-§5, specs/matching.md §2). Driven by bench/book_worst.py,
 * which builds it, runs it natively for nanoseconds and under callgrind for
 * instructions, and prints the JSON summary.
 *
 *   book_worst SCENARIO [STRIDE]
 *
 * Each scenario sets a book up (not measured), then sends requests through the
 * record API as the matching engine does. Every request that belongs to the
 * scenario is timed; every STRIDE-th of them (and the first and last 64) goes
 * through measure_op(), which callgrind dumps after each call
 * (--toggle-collect=measure_op --dump-after=measure_op), the others through
 * run_op(), the same code under another name. Output, one line per measured
 * request: "op <index> <measured 0/1> <ns> <label>", then "end <requests>".
 *
 * Scenarios:
 *   far_crowd    100,000 far ask levels packed 1 tick apart in a scrambled order,
 *                then 2,000 requests: a new far level inside the crowd, its
 *                cancel, a second order at an existing far price, its cancel
 *   fok_deep     100,000 resting asks on 1,000 levels, 200 FOK buys refused by 1
 *                (need = everything crossed + 1) at limits across the book
 *   fok_levels   100,000 resting asks, each on its own level: the same refused FOKs
 *                (the check is O(crossed levels): this is its linear case)
 *   slide_1m     1,000,000 bid levels in a window of 2^22 ticks; the mid jumps 10
 *                million ticks up and back; every request until each slide is done
 *   sweep_100k   100,000 asks on 1,000 levels, then one IOC that takes them all
 *   sweep_far    100,000 asks each on its own level (most in the far tree), one IOC
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rsx/book.h"

#define SINK_BYTES (64u << 20)

static uint8_t *sink_buf;
static uint64_t next_id = 1;
static long requests;
static long stride = 1;

static rsx_oid_t oid(uint64_t k)
{
	rsx_oid_t o;
	memset(&o, 0, sizeof o);
	uint64_t be = __builtin_bswap64(k);
	memcpy(o.b + 8, &be, 8);
	return o;
}

struct req {
	int kind;	/* 1 new, 2 cancel */
	struct rsx_order o;
	struct rsx_cancel c;
};

static int apply(struct rsx_book *b, const struct req *r)
{
	struct rsx_book_sink s = { .buf = sink_buf, .cap = SINK_BYTES };
	int rc = r->kind == 1 ? rsx_book_new_order(b, &r->o, &s) : rsx_book_cancel(b, &r->c, &s);
	while (rc == RSX_BOOK_MORE) {	/* the engine drains the sink and resumes */
		s.len = s.count = 0;
		rc = rsx_book_resume(b, &s);
	}
	return rc;
}

__attribute__((noinline)) int measure_op(struct rsx_book *b, const struct req *r)
{
	return apply(b, r);
}

__attribute__((noinline)) int run_op(struct rsx_book *b, const struct req *r)
{
	return apply(b, r);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static struct req new_req(uint32_t user, int side, int64_t price, int64_t qty, int tif, uint64_t *id_out)
{
	struct req r;
	memset(&r, 0, sizeof r);
	r.kind = 1;
	r.o.user_id = user;
	r.o.order_id = oid(next_id);
	if (id_out)
		*id_out = next_id;
	next_id++;
	r.o.side = (uint8_t)side;
	r.o.tif = (uint8_t)tif;
	r.o.stp = RSX_STP_NONE;
	r.o.price.raw = price;
	r.o.qty.raw = qty;
	return r;
}

static struct req cancel_req(uint32_t user, uint64_t id)
{
	struct req r;
	memset(&r, 0, sizeof r);
	r.kind = 2;
	r.c.user_id = user;
	r.c.order_id = oid(id);
	return r;
}

/* Setup: not measured. */
static void put(struct rsx_book *b, uint32_t user, int side, int64_t price, int64_t qty)
{
	struct req r = new_req(user, side, price, qty, RSX_TIF_GTC, NULL);
	if (run_op(b, &r) < 0) {
		fprintf(stderr, "setup request failed\n");
		exit(1);
	}
}

/* A measured request of the scenario: timed, and dumped by callgrind when sampled. */
static void request(struct rsx_book *b, const struct req *r, const char *label, int force)
{
	int sampled = force || requests % stride == 0;
	double t0 = now_ns();
	int rc = sampled ? measure_op(b, r) : run_op(b, r);
	double t1 = now_ns();
	if (rc < 0) {
		fprintf(stderr, "request failed: %d\n", rc);
		exit(1);
	}
	printf("op %ld %d %.0f %s\n", requests, sampled, t1 - t0, label);
	requests++;
}

static struct rsx_book *book(uint64_t capacity, int64_t ref, uint64_t zone0)
{
	struct rsx_symbol_config c;
	memset(&c, 0, sizeof c);
	c.symbol_id = 1;
	c.tick_size.raw = 1;
	c.lot_size.raw = 1;
	c.min_qty.raw = 1;
	c.max_qty.raw = 1000000000000ll;
	c.initial_margin_bps = 1000;
	c.maintenance_margin_bps = 500;
	struct rsx_book_params p;
	memset(&p, 0, sizeof p);
	p.capacity = capacity;
	p.max_users = 1024;
	p.ref_price.raw = ref;
	p.zone0_ticks = zone0;
	struct rsx_book *b = NULL;
	int rc = rsx_book_create(&b, &p, &c);
	if (rc) {
		fprintf(stderr, "rsx_book_create: %d\n", rc);
		exit(1);
	}
	return b;
}

static uint64_t rnd = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rnd ^= rnd << 13;
	rnd ^= rnd >> 7;
	rnd ^= rnd << 17;
	return rnd;
}

static void far_crowd(void)
{
	struct rsx_book *b = book(200000, 100000, 0);	/* W 5,000 ticks: the window is 16,384 */
	put(b, 1, RSX_SIDE_BUY, 99999, 1);
	put(b, 1, RSX_SIDE_SELL, 100001, 1);
	enum { N = 100000 };
	static int64_t px[N];
	for (int i = 0; i < N; i++)
		px[i] = 200000 + 2 * (int64_t)i;	/* 100 % above the mid, every other tick */
	for (int i = N - 1; i > 0; i--) {
		int j = (int)(next_rand() % (uint64_t)(i + 1));
		int64_t t = px[i];
		px[i] = px[j];
		px[j] = t;
	}
	for (int i = 0; i < N; i++)
		put(b, 2 + (uint32_t)(i % 100), RSX_SIDE_SELL, px[i], 1);
	for (int k = 0; k < 500; k++) {
		uint64_t id;
		int64_t p = 200000 + 2 * (int64_t)(next_rand() % N);
		struct req r = new_req(7, RSX_SIDE_SELL, p + 1, 1, RSX_TIF_GTC, &id);
		request(b, &r, "far_new_level", k < 64);
		r = cancel_req(7, id);
		request(b, &r, "far_cancel_level", k < 64);
		r = new_req(7, RSX_SIDE_SELL, p, 1, RSX_TIF_GTC, &id);
		request(b, &r, "far_join_level", k < 64);
		r = cancel_req(7, id);
		request(b, &r, "far_cancel_order", k < 64);
	}
	rsx_book_destroy(b);
}

static void fok(int per_level)
{
	enum { N = 100000 };
	struct rsx_book *b = book(N + 16, 100000, 0);
	put(b, 1, RSX_SIDE_BUY, 99999, 1);
	int levels = N / per_level;
	for (int i = 0; i < N; i++)
		put(b, 2 + (uint32_t)(i % 100), RSX_SIDE_SELL, 100001 + i / per_level, 1);
	for (int k = 0; k < 200; k++) {
		int upto = 1 + (int)(((int64_t)k * levels) / 200);	/* crossed levels */
		if (k >= 190)
			upto = levels;
		struct req r = new_req(7, RSX_SIDE_BUY, 100000 + upto, (int64_t)upto * per_level + 1, RSX_TIF_FOK, NULL);
		request(b, &r, k >= 190 ? "fok_refused_whole_book" : "fok_refused", k >= 190);
	}
	rsx_book_destroy(b);
}

/* Requests that change the top (a better bid, then its cancel) until both windows are at the target. */
static long slide_until_done(struct rsx_book *b, int64_t best_bid)
{
	long pairs = 0;
	for (;;) {
#ifdef BASELINE	/* a book without the window (before issue 21): recentring is done in one request */
		if (pairs == 64)
			return pairs;
#else
		struct rsx_book_map_info mi;
		rsx_book_map_info(b, &mi);
		int64_t lo = mi.center - (int64_t)mi.half;
		int done = 1;
		for (int s = 0; s < 2; s++)
			done &= mi.window_lo[s] == lo && mi.window_hi[s] == lo + (int64_t)mi.slots;
		if (done)
			return pairs;
#endif
		uint64_t id;
		struct req r = new_req(10, RSX_SIDE_BUY, best_bid + 1, 1, RSX_TIF_GTC, &id);
		request(b, &r, "during_slide", pairs < 32);
		r = cancel_req(10, id);
		request(b, &r, "during_slide", pairs < 32);
		if (++pairs > 10000000) {
			fprintf(stderr, "slide_1m: the slide does not end\n");
			exit(1);
		}
	}
}

static void slide_1m(void)
{
	enum { N = 1000000 };
	const int64_t ref = 20000000, far = ref + 10000000;
	struct rsx_book *b = book(N + 64, ref, 2097000);	/* the widest window: 2^22 ticks */
	for (int i = 0; i < N; i++)
		put(b, 2 + (uint32_t)(i % 100), RSX_SIDE_BUY, ref - 1 - i, 1);
	put(b, 1, RSX_SIDE_SELL, ref + 1, 1);
	struct rsx_book_stats st0, st;
	rsx_book_stats(b, &st0);

	/* the mid jumps 10 million ticks up: a new top there; the million bids leave the window */
	uint64_t bid_id, ask_id;
	struct req r = new_req(9, RSX_SIDE_BUY, far, 1, RSX_TIF_GTC, &bid_id);
	request(b, &r, "jump", 1);
	r = new_req(9, RSX_SIDE_SELL, far + 2, 1, RSX_TIF_GTC, &ask_id);
	request(b, &r, "jump", 1);
	rsx_book_stats(b, &st);
	if (st.recentres == st0.recentres) {
		fprintf(stderr, "slide_1m: the jump did not retarget\n");
		exit(1);
	}
	printf("slide_leg 0 pairs %ld\n", slide_until_done(b, far));

	/* and back: the far top is cancelled; the million bids come back into the window */
	r = cancel_req(9, bid_id);
	request(b, &r, "jump", 1);
	r = cancel_req(9, ask_id);
	request(b, &r, "jump", 1);
	printf("slide_leg 1 pairs %ld\n", slide_until_done(b, ref - 1));
	rsx_book_destroy(b);
}

static void sweep(int per_level)
{
	enum { N = 100000 };
	struct rsx_book *b = book(N + 16, 100000, 0);
	put(b, 1, RSX_SIDE_BUY, 99999, 1);
	for (int i = 0; i < N; i++)
		put(b, 2 + (uint32_t)(i % 100), RSX_SIDE_SELL, 100001 + i / per_level, 1);
	struct req r = new_req(7, RSX_SIDE_BUY, 100001 + N / per_level, N, RSX_TIF_IOC, NULL);
	request(b, &r, "sweep", 1);
	rsx_book_destroy(b);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: book_worst far_crowd|fok_deep|fok_levels|slide_1m|sweep_100k|sweep_far [STRIDE]\n");
		return 2;
	}
	if (argc > 2)
		stride = atol(argv[2]) > 0 ? atol(argv[2]) : 1;
	sink_buf = aligned_alloc(64, SINK_BYTES);
	if (!strcmp(argv[1], "far_crowd"))
		far_crowd();
	else if (!strcmp(argv[1], "fok_deep"))
		fok(100);
	else if (!strcmp(argv[1], "fok_levels"))
		fok(1);
	else if (!strcmp(argv[1], "slide_1m"))
		slide_1m();
	else if (!strcmp(argv[1], "sweep_100k"))
		sweep(100);
	else if (!strcmp(argv[1], "sweep_far"))
		sweep(1);
	else
		return 2;
	printf("end %ld\n", requests);
	return 0;
}
