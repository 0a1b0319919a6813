/*
 * test_book_edges.c - the places where a plausible bug would hide (specs/book.md §3-§5,
 * specs/matching.md §2):
 *
 * - a crowd of far prices in the far tree: a second order at an existing far price joins
 *   that price's level (one level, FIFO), it does not get a level of its own that a sweep
 *   could reach first;
 * - a resting reduce-only maker is cancelled exactly when its room reaches zero: not while
 *   room is left, at once when a fill uses it up with quantity left, with no fill when the
 *   room was already gone, and filled (not cancelled) when room and quantity end together;
 * - FOK feasibility from level totals against the sweep itself: on books with reduce-only
 *   makers, the taker's own orders and many levels, a FOK of every quantity around the
 *   edge, every STP mode, is accepted exactly when an IOC of the same quantity fills it
 *   all, and a refused FOK leaves the book byte for byte as it was;
 * - the window sliding over thousands of levels in bounded steps, audited after every
 *   operation, with priority exact across its moving edges.
 */
#include <stdlib.h>

#include "t_book.h"

#define FILL RSX_REC_FILL
#define DONE RSX_REC_ORDER_DONE
#define CANC RSX_REC_ORDER_CANCELLED
#define INS RSX_REC_ORDER_INSERTED
#define BBO RSX_REC_BBO
#define BUY RSX_SIDE_BUY
#define SELL RSX_SIDE_SELL
#define IOC RSX_TIF_IOC
#define FOK RSX_TIF_FOK
#define RO RSX_ORDER_REDUCE_ONLY
#define NONE RSX_STP_NONE

/* The type sequence of t_ev, as a string of letters, for compact expectations. */
static const char *t_types(void)
{
	static char out[64];
	int i = 0;
	for (; i < t_nev && i < 63; i++) {
		switch (t_ev[i].type) {
		case FILL: out[i] = 'F'; break;
		case DONE: out[i] = 'D'; break;
		case CANC: out[i] = 'C'; break;
		case INS: out[i] = 'I'; break;
		case BBO: out[i] = 'B'; break;
		default: out[i] = '?'; break;
		}
	}
	out[i] = 0;
	return out;
}

#define T_TYPES(want) do { \
	if (strcmp(t_types(), want) != 0) { \
		fprintf(stderr, "%s:%d: events %s, expected %s\n", __FILE__, __LINE__, t_types(), want); \
		t_failures++; \
	} \
} while (0)

static int64_t done_filled(void)
{
	for (int i = 0; i < t_nev; i++)
		if (t_ev[i].type == DONE && t_ev[i].user_id == 77)
			return t_ev[i].filled;
	return -1;
}

/* A copy of a book through snapshot and restore. */
static struct rsx_book *t_clone(struct rsx_book *b, void **snap, size_t *len)
{
	size_t n = rsx_book_snapshot_size(b);
	void *buf = malloc(n);
	T_EQ(rsx_book_snapshot(b, 1, buf, n), (int64_t)n);
	struct rsx_book_params p;
	struct rsx_symbol_config c;
	uint64_t seq;
	T_EQ(rsx_book_snapshot_params(buf, n, &p, &c, &seq), 0);
	p.flags = RSX_BOOK_HUGETLB_NEVER;
	struct rsx_book *nb = NULL;
	T_EQ(rsx_book_create(&nb, &p, &c), 0);
	T_EQ(rsx_book_restore(nb, buf, n, &seq), 0);
	if (snap) {
		*snap = buf;
		*len = n;
	} else {
		free(buf);
	}
	return nb;
}

/* ---- far crowd ---- */

static void test_far_crowd_keeps_one_level_per_price(void)
{
	struct rsx_book *b = t_book_ex(1 << 14, 0, 64, 100000, 1);	/* W 5,000: R 16,384 */
	t_gtc(b, 1, 1, BUY, 99999, 1);
	t_gtc(b, 1, 2, SELL, 100001, 1);
	/* 1,000 far asks 20,000-20,999 ticks out, in a scrambled order */
	int64_t prices[1000];
	for (int i = 0; i < 1000; i++)
		prices[i] = 120000 + i;
	for (int i = 999; i > 0; i--) {
		int j = (int)(t_rand() % (uint64_t)(i + 1));
		int64_t t = prices[i];
		prices[i] = prices[j];
		prices[j] = t;
	}
	for (int i = 0; i < 1000; i++)
		t_gtc(b, 2 + (uint32_t)(i % 5), 100 + (uint64_t)i, SELL, prices[i], 1);
	struct rsx_book_map_info m;
	rsx_book_map_info(b, &m);
	T_EQ(m.far_levels[SELL], 1000);
	T_BOOK_OK(b);
	/* a newer order at an existing far price, deep inside the crowd, and another at the crowd's edges */
	t_gtc(b, 9, 5000, SELL, 120500, 1);
	t_gtc(b, 9, 5001, SELL, 120000, 1);
	t_gtc(b, 9, 5002, SELL, 120999, 1);
	rsx_book_map_info(b, &m);
	T_EQ(m.far_levels[SELL], 1000);	/* no new level */
	struct rsx_book_level_info rows[1100];
	int n = rsx_book_depth(b, SELL, rows, 1100);
	T_EQ(n, 1001);
	int seen = 0;
	for (int i = 1; i < n; i++) {
		T_CHECK(rows[i].price > rows[i - 1].price);
		if (rows[i].price == 120500 || rows[i].price == 120000 || rows[i].price == 120999) {
			T_EQ(rows[i].count, 2);
			T_EQ(rows[i].qty, 2);
			seen++;
		}
	}
	T_EQ(seen, 3);
	T_BOOK_OK(b);
	/* sweep through 120500: the older order there fills, the newer one keeps its place */
	t_new(b, 77, 6000, BUY, 120500, 1 + 1 + 500 + 1, IOC, 0, NONE);	/* top ask, 120000 x2, 120001..120499, one at 120500 */
	int64_t last;
	t_fills_in_order(1, &last);
	uint64_t last_maker = 0;
	for (int i = 0; i < t_nev; i++)
		if (t_ev[i].type == FILL)
			last_maker = t_id(&t_ev[i].maker_order_id);
	T_EQ(last, 120500);
	T_CHECK(last_maker != 5000 && last_maker >= 100 && last_maker < 1100);
	T_EQ(done_filled(), 503);
	n = rsx_book_depth(b, SELL, rows, 2);
	T_EQ(rows[0].price, 120500);
	T_EQ(rows[0].count, 1);
	struct rsx_book_order_info info;
	T_EQ(rsx_book_order(b, 9, &(rsx_oid_t){ 0 }, &info), 0);
	rsx_oid_t id = t_oid(5000);
	T_EQ(rsx_book_order(b, 9, &id, &info), 1);	/* the newer order rests, whole */
	T_EQ(info.remaining, 1);
	T_BOOK_OK(b);
	/* cancels inside the crowd take the far levels out of the tree */
	for (int i = 501; i < 999; i += 2)
		t_cancel(b, 2 + (uint32_t)((i - 0) % 5), 0);	/* unknown ids: refused, nothing changes */
	for (int i = 0; i < 1000; i++)
		if (prices[i] > 120500 && prices[i] % 3 == 0)
			t_cancel(b, 2 + (uint32_t)(i % 5), 100 + (uint64_t)i);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

/* ---- reduce-only makers ---- */

static void test_reduce_only_maker_room(void)
{
	struct rsx_book *b = t_book();
	/* user 1 goes long 10 */
	t_gtc(b, 2, 1, SELL, 100, 10);
	t_new(b, 1, 2, BUY, 100, 10, IOC, 0, NONE);
	T_EQ(rsx_book_position(b, 1, NULL), 10);
	t_gtc(b, 1, 3, SELL, 101, 4);	/* plain ask first in priority */
	t_new(b, 1, 4, SELL, 102, 10, RSX_TIF_GTC, RO, NONE);	/* reduce-only ask, room 10 */
	/* a buy of 8: the plain 4 (room now 6), then 4 of the reduce-only: room 2 left, it stays */
	t_new(b, 77, 5, BUY, 102, 8, IOC, 0, NONE);
	T_TYPES("FDFDB");
	T_EQ(t_ev[2].maker_remaining, 6);
	T_EQ(rsx_book_position(b, 1, NULL), 2);
	/* a buy of 5: 2 fill, the room is gone with 4 left: cancelled right after that fill */
	t_new(b, 77, 6, BUY, 102, 5, IOC, 0, NONE);
	T_TYPES("FCDB");
	T_EQ(t_ev[0].qty, 2);
	T_EQ(t_ev[1].reason, RSX_REASON_REDUCE_ONLY_NO_POSITION);
	T_EQ(t_ev[1].remaining, 4);
	T_EQ(t_ev[2].filled, 2);	/* the taker: IOC remainder 3 */
	T_EQ(rsx_book_position(b, 1, NULL), 0);
	T_BOOK_OK(b);

	/* the room runs out on the fill that also completes the taker: cancelled in that same
	 * request, not left resting with no room until someone reaches it */
	t_gtc(b, 3, 40, SELL, 150, 4);
	t_new(b, 1, 41, BUY, 150, 4, IOC, 0, NONE);	/* user 1 long 4 */
	t_new(b, 1, 42, SELL, 152, 4, RSX_TIF_GTC, RO, NONE);
	t_gtc(b, 1, 43, SELL, 151, 1);	/* plain, ahead: the room after it is 3 */
	t_new(b, 77, 44, BUY, 152, 4, IOC, 0, NONE);	/* 1 + 3: the taker is done exactly as the room is */
	T_TYPES("FDFCDB");
	T_EQ(t_ev[3].reason, RSX_REASON_REDUCE_ONLY_NO_POSITION);
	T_EQ(t_ev[3].remaining, 1);
	rsx_oid_t gone = t_oid(42);
	struct rsx_book_order_info gi;
	T_EQ(rsx_book_order(b, 1, &gone, &gi), 0);

	/* room and quantity end together: filled, not cancelled */
	t_gtc(b, 3, 10, SELL, 200, 5);
	t_new(b, 1, 11, BUY, 200, 5, IOC, 0, NONE);	/* user 1 long 5 */
	t_new(b, 1, 12, SELL, 202, 5, RSX_TIF_GTC, RO, NONE);
	t_new(b, 77, 13, BUY, 202, 5, IOC, 0, NONE);
	T_TYPES("FDDB");
	T_EQ(t_ev[1].user_id, 1);
	T_EQ(t_ev[1].status, RSX_STATUS_FILLED);

	/* the room went to zero elsewhere (the user sold as a taker): the maker is cancelled
	 * when reached, without a fill, and the sweep goes on to the next maker */
	t_gtc(b, 3, 20, SELL, 300, 5);
	t_new(b, 1, 21, BUY, 300, 5, IOC, 0, NONE);	/* user 1 long 5 */
	t_new(b, 1, 22, SELL, 302, 5, RSX_TIF_GTC, RO, NONE);
	t_gtc(b, 4, 23, SELL, 302, 3);	/* behind it at the same price */
	t_gtc(b, 5, 24, BUY, 250, 5);
	t_new(b, 1, 25, SELL, 250, 5, IOC, 0, NONE);	/* user 1 flat again */
	T_EQ(rsx_book_position(b, 1, NULL), 0);
	t_new(b, 77, 26, BUY, 302, 3, IOC, 0, NONE);
	T_TYPES("CFDDB");
	T_EQ(t_ev[0].reason, RSX_REASON_REDUCE_ONLY_NO_POSITION);
	T_EQ(t_id(&t_ev[0].order_id), 22);
	T_EQ(t_id(&t_ev[1].maker_order_id), 23);

	/* a FOK counts the reduce-only room exactly, including the user's fills ahead of it */
	t_gtc(b, 3, 30, SELL, 400, 6);
	t_new(b, 1, 31, BUY, 400, 6, IOC, 0, NONE);	/* user 1 long 6 */
	t_gtc(b, 1, 32, SELL, 401, 2);	/* plain: the room after it is 4 */
	t_new(b, 1, 33, SELL, 402, 6, RSX_TIF_GTC, RO, NONE);
	t_gtc(b, 6, 34, SELL, 403, 1);
	t_new(b, 77, 35, BUY, 403, 8, FOK, 0, NONE);	/* 2 + 4 + 1 = 7 < 8: refused */
	T_EQ(t_ev[0].type, RSX_REC_ORDER_FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_FOK_NOT_FILLABLE);
	t_new(b, 77, 36, BUY, 403, 7, FOK, 0, NONE);	/* exactly 7: accepted */
	T_TYPES("FDFCFDDB");
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

/* ---- order ids are per user ---- */

static void test_same_id_other_users(void)
{
	struct rsx_book *b = t_book();
	t_gtc(b, 1, 5, BUY, 95, 1);
	t_gtc(b, 2, 5, BUY, 96, 2);	/* the same id, another user: a separate order */
	t_gtc(b, 3, 5, SELL, 105, 3);
	T_EQ(rsx_book_position(b, 1, NULL), 0);
	t_cancel(b, 4, 5);	/* nobody's: unknown */
	T_EQ(t_ev[0].type, RSX_REC_ORDER_FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_UNKNOWN_ORDER);
	t_cancel(b, 2, 5);	/* user 2's, and only it */
	T_TYPES("CB");
	T_EQ(t_ev[0].user_id, 2);
	T_EQ(t_ev[0].price, 96);
	T_EQ(t_ev[0].remaining, 2);
	rsx_oid_t id = t_oid(5);
	struct rsx_book_order_info info;
	T_EQ(rsx_book_order(b, 1, &id, &info), 1);
	T_EQ(info.price, 95);
	T_EQ(rsx_book_order(b, 3, &id, &info), 1);
	T_EQ(rsx_book_order(b, 2, &id, &info), 0);
	t_cancel(b, 2, 5);	/* gone */
	T_EQ(t_ev[0].reason, RSX_REASON_UNKNOWN_ORDER);
	t_amend(b, 3, 5, 0, 1);
	T_EQ(t_ev[0].type, RSX_REC_ORDER_AMENDED);
	T_EQ(t_ev[0].user_id, 3);
	T_EQ(t_ev[0].remaining, 1);
	t_gtc(b, 1, 5, BUY, 97, 1);	/* user 1 reuses its own live id: refused */
	T_EQ(t_ev[0].reason, RSX_REASON_DUPLICATE_ORDER_ID);
	T_BOOK_OK(b);
	rsx_book_destroy(b);

	/* 16 index buckets, 16 users with an order 5 each: their entries share buckets, and a cancel
	 * or an amend by any other user, or by them, must find exactly the right one or none */
	b = t_book_ex(16, 0, 64, 100, 1);
	for (uint32_t u = 1; u <= 16; u++)
		t_gtc(b, u, 5, u & 1 ? BUY : SELL, u & 1 ? 90 - (int64_t)u : 110 + (int64_t)u, u);
	T_BOOK_OK(b);
	for (uint32_t u = 17; u <= 60; u++) {
		t_cancel(b, u, 5);
		T_EQ(t_ev[0].reason, RSX_REASON_UNKNOWN_ORDER);
		t_amend(b, u, 5, 0, 1);
		T_EQ(t_ev[0].reason, RSX_REASON_UNKNOWN_ORDER);
	}
	for (uint32_t u = 16; u >= 1; u--) {
		t_cancel(b, u, 5);
		T_EQ(t_ev[0].type, CANC);
		T_EQ(t_ev[0].user_id, u);
		T_EQ(t_ev[0].remaining, (int64_t)u);
		T_BOOK_OK(b);
	}
	T_EQ(rsx_book_depth(b, BUY, NULL, 0), 0);
	rsx_book_destroy(b);
}

/* ---- off-grid prices sharing a tick (left by a tick change) ---- */

static void test_offgrid_levels_share_a_tick(void)
{
	struct rsx_book *b = t_book_ex(4096, 0, 64, 100000, 1);
	t_gtc(b, 1, 1, SELL, 100050, 1);
	/* bids at 99,981 .. 99,999: ticks of 10 after the change, two to ten levels each */
	for (int i = 0; i < 19; i++)
		t_gtc(b, 2 + (uint32_t)(i % 3), 10 + (uint64_t)i, BUY, 99981 + i, 1 + i % 4);
	struct rsx_symbol_config c = t_cfg(10, 1);
	T_EQ(rsx_book_set_config(b, &c), 0);
	T_BOOK_OK(b);
	/* the lowest level of tick 9,999 (99,990 .. 99,999) leaves: the tick's other levels keep their slot */
	t_cancel(b, 2 + 9 % 3, 10 + 9);	/* 99,990 */
	T_BOOK_OK(b);
	t_cancel(b, 2 + 10 % 3, 10 + 10);	/* 99,991 */
	T_BOOK_OK(b);
	/* a new on-grid bid in that tick goes below its off-grid levels; one in the tick below, above them */
	t_gtc(b, 7, 100, BUY, 99990, 5);
	T_BOOK_OK(b);
	t_gtc(b, 7, 101, BUY, 99980, 5);
	T_BOOK_OK(b);
	struct rsx_book_level_info rows[32];
	int n = rsx_book_depth(b, BUY, rows, 32);
	for (int i = 1; i < n; i++)
		T_CHECK(rows[i].price < rows[i - 1].price);
	/* a sweep takes them in price order, the on-grid ones where they belong */
	t_new(b, 8, 200, SELL, 10, 1000, IOC, 0, NONE);
	int64_t last;
	int fills = t_fills_in_order(0, &last);
	T_EQ(fills, 19 - 2 + 2);	/* one order per price: descending strictly */
	T_EQ(last, 99980);
	T_BOOK_OK(b);
	/* the same through a slide: off-grid levels leave and come back a tick at a time */
	for (int i = 0; i < 30; i++)
		t_gtc(b, 2 + (uint32_t)(i % 3), 300 + (uint64_t)i, BUY, 99700 + 10 * i, 1);
	t_new(b, 9, 400, SELL, 99950, 1, IOC, 0, NONE);
	T_BOOK_OK(b);
	t_gtc(b, 9, 401, BUY, 40000, 1);	/* far below: the mid moves down once the bids above go */
	t_new(b, 9, 402, SELL, 99950, 1000, IOC, 0, NONE);	/* takes the bids >= 99,950 */
	t_cancel(b, 1, 1);	/* the ask too: a one-sided book at 40,000 */
	T_BOOK_OK(b);
	t_gtc(b, 9, 403, SELL, 100100, 1);	/* and back up: the mid near 70,000, then 100,000 */
	for (int i = 0; i < 40; i++) {
		t_gtc(b, 10, 500 + (uint64_t)i, BUY, 99500 + 10 * i, 1);
		T_BOOK_OK(b);
	}
	rsx_book_destroy(b);
}

/* ---- FOK against the sweep itself ---- */

/* A book with many levels, reduce-only makers with partial room, the taker's own orders. */
static void fok_book(struct rsx_book *b, uint64_t *id)
{
	/* positions: users 1 and 2 long, so their asks may be reduce-only */
	t_gtc(b, 9, (*id)++, SELL, 1000, 40);
	t_new(b, 1, (*id)++, BUY, 1000, 20, IOC, 0, NONE);
	t_new(b, 2, (*id)++, BUY, 1000, 20, IOC, 0, NONE);
	t_gtc(b, 9, (*id)++, BUY, 990, 5);
	for (int lvl = 0; lvl < 12; lvl++) {
		int64_t px = 1001 + lvl * 3;
		int per = 1 + (int)(t_rand() % 4);
		for (int k = 0; k < per; k++) {
			uint32_t user = 1 + (uint32_t)(t_rand() % 5);
			int flags = (user <= 2 && t_rand() % 3 == 0) ? RO : 0;
			int64_t q = 1 + (int64_t)(t_rand() % 7);
			t_new(b, user, (*id)++, SELL, px, q, RSX_TIF_GTC, flags, NONE);
		}
	}
}

static void test_fok_matches_the_sweep(void)
{
	uint64_t id = 1;
	for (int round = 0; round < 4; round++) {
		struct rsx_book *b = t_book_ex(4096, 0, 64, 1000, 1);
		fok_book(b, &id);
		T_BOOK_OK(b);
		struct rsx_book_level_info rows[64];
		int n = rsx_book_depth(b, SELL, rows, 64);
		int64_t total = 0;
		for (int i = 0; i < n; i++)
			total += rows[i].qty;
		for (uint32_t taker = 1; taker <= 4; taker += 3) {	/* a user with orders there, and one without */
			for (int stp = 0; stp <= 3; stp++) {
				for (int li = 0; li < 4; li++) {
					int64_t limit = rows[(li * (n - 1)) / 3].price;
					for (int64_t q = 1; q <= total + 2; q++) {
						/* what an IOC of q fills, on a copy */
						struct rsx_book *c = t_clone(b, NULL, NULL);
						t_new(c, 77, 900000, BUY, limit, q, IOC, 0, stp);
						int64_t filled = 0;
						for (int i = 0; i < t_nev; i++)
							if (t_ev[i].type == DONE && t_id(&t_ev[i].order_id) == 900000)
								filled = t_ev[i].filled;
						rsx_book_destroy(c);
						/* the FOK on another copy: the taker is `taker`, not 77 */
						void *before;
						size_t len;
						c = t_clone(b, &before, &len);
						struct rsx_book *d = t_clone(b, NULL, NULL);
						t_new(d, taker, 900001, BUY, limit, q, IOC, 0, stp);
						int64_t ioc_filled = 0;
						for (int i = 0; i < t_nev; i++)
							if (t_ev[i].type == DONE && t_id(&t_ev[i].order_id) == 900001)
								ioc_filled = t_ev[i].filled;
						rsx_book_destroy(d);
						t_new(c, taker, 900001, BUY, limit, q, FOK, 0, stp);
						int accepted = t_ev[0].type != RSX_REC_ORDER_FAILED;
						if (accepted != (ioc_filled == q)) {
							fprintf(stderr, "FOK q=%lld limit=%lld stp=%d taker=%u: accepted %d, IOC filled %lld\n",
								(long long)q, (long long)limit, stp, taker, accepted,
								(long long)ioc_filled);
							t_failures++;
						}
						if (!accepted) {	/* refused: the book is untouched (but for its op count, header bytes 88..96, and the CRC) */
							uint8_t *after = malloc(len);
							T_EQ((size_t)rsx_book_snapshot_size(c), len);
							T_EQ(rsx_book_snapshot(c, 1, after, len), (int64_t)len);
							T_CHECK(memcmp(before, after, 88) == 0);
							T_CHECK(memcmp((uint8_t *)before + 96, after + 96, len - 96 - 8) == 0);
							free(after);
						}
						(void)filled;
						free(before);
						rsx_book_destroy(c);
					}
				}
			}
		}
		rsx_book_destroy(b);
	}
}

/* ---- the slide ---- */

static void test_slide_over_thousands_of_levels(void)
{
	struct rsx_book_params p;
	struct rsx_symbol_config c = t_cfg(1, 1);
	struct rsx_book *b = NULL;
	memset(&p, 0, sizeof p);
	p.capacity = 1 << 16;
	p.max_users = 64;
	p.ref_price.raw = 100000;
	p.zone0_ticks = 1000;	/* R 2,048: the window reaches 1,024 ticks each way */
	p.flags = RSX_BOOK_HUGETLB_NEVER;
	T_EQ(rsx_book_create(&b, &p, &c), 0);
	uint64_t id = 1;
	/* 6,000 bid levels and 6,000 ask levels around 100,000, one tick apart */
	for (int i = 0; i < 6000; i++) {
		t_gtc(b, 1 + (uint32_t)(i % 7), id++, BUY, 99999 - i, 1 + i % 3);
		t_gtc(b, 1 + (uint32_t)(i % 7), id++, SELL, 100001 + i, 1 + i % 3);
	}
	struct rsx_book_map_info m;
	rsx_book_map_info(b, &m);
	T_EQ(m.slots, 2048);
	T_EQ(m.far_levels[BUY] + m.far_levels[SELL], 12000 - 2047);	/* ticks 98,976 .. 101,023 are in the window */
	struct rsx_book_stats st;
	rsx_book_stats(b, &st);
	uint64_t retargets = st.recentres;
	/* the mid jumps 50,000 ticks up: every ask swept, new orders up there */
	t_new(b, 8, id++, BUY, 106001, 1000000000, IOC, 0, NONE);
	t_gtc(b, 8, id++, BUY, 150000, 1);
	t_gtc(b, 9, id++, SELL, 150002, 1);
	rsx_book_stats(b, &st);
	T_CHECK(st.recentres > retargets);
	T_EQ(st.center, 150000);	/* the mid of a one-sided book is its best price */
	/* the old bids leave the window a bounded number at a time: it takes several operations */
	int ops = 0;
	for (;;) {
		rsx_book_map_info(b, &m);
		int64_t lo = m.center - (int64_t)m.half;
		if (m.window_lo[BUY] == lo && m.window_hi[BUY] == lo + (int64_t)m.slots &&
		    m.window_lo[SELL] == lo && m.window_hi[SELL] == lo + (int64_t)m.slots)
			break;
		/* requests that change the top, on both sides of the moving edges */
		t_gtc(b, 10, id++, BUY, 150000 - 1 - (int64_t)(t_rand() % 9000), 1);
		t_gtc(b, 10, id++, SELL, 150002 + (int64_t)(t_rand() % 9000), 1);
		t_new(b, 11, id++, BUY, 150001, 1, RSX_TIF_GTC, 0, NONE);
		t_cancel(b, 11, id - 1);
		T_BOOK_OK(b);
		ops++;
		T_CHECK(ops < 2000);
		if (ops >= 2000)
			break;
	}
	T_CHECK(ops > 10);	/* 2,047 window levels cannot have moved in one operation */
	fprintf(stderr, "slide: %d operations\n", ops);
	rsx_book_map_info(b, &m);
	T_CHECK(m.far_levels[BUY] >= 6000);	/* the old bids are all outside the new window */
	/* every old bid is still there, in price order, and sweeps in priority */
	t_new(b, 12, id++, SELL, 1, 1000000000, IOC, 0, NONE);
	int64_t last;
	int fills = t_fills_in_order(0, &last);
	T_CHECK(fills > 6000);
	T_EQ(last, 99999 - 5999);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

int main(void)
{
	test_same_id_other_users();
	test_offgrid_levels_share_a_tick();
	test_far_crowd_keeps_one_level_per_price();
	test_reduce_only_maker_room();
	test_fok_matches_the_sweep();
	test_slide_over_thousands_of_levels();
	T_DONE();
}
