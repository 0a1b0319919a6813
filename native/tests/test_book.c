/*
 * test_book.c - the C book: price map, every order type, the event order and
 * terminal records of specs/matching.md, STP, reduce-only, amend, cancel-all,
 * validation and API misuse.
 */
#include "t_book.h"

#define FILL RSX_REC_FILL
#define DONE RSX_REC_ORDER_DONE
#define CANC RSX_REC_ORDER_CANCELLED
#define INS RSX_REC_ORDER_INSERTED
#define AMD RSX_REC_ORDER_AMENDED
#define FAILED RSX_REC_ORDER_FAILED
#define BBO RSX_REC_BBO
#define BUY RSX_SIDE_BUY
#define SELL RSX_SIDE_SELL

/* The types of t_ev, as a check against an expected list ending with 0. */
static void expect_types(int line, const int *types)
{
	int i = 0;
	for (; types[i]; i++) {
		if (i >= t_nev || t_ev[i].type != types[i]) {
			fprintf(stderr, "line %d: event %d is %d, expected %d (%d events)\n", line, i,
				i < t_nev ? t_ev[i].type : -1, types[i], t_nev);
			t_failures++;
			return;
		}
	}
	if (i != t_nev) {
		fprintf(stderr, "line %d: %d events, expected %d\n", line, t_nev, i);
		t_failures++;
	}
}
#define EXPECT(...) do { static const int ty_[] = { __VA_ARGS__, 0 }; expect_types(__LINE__, ty_); } while (0)

static void test_map(void)
{
	struct rsx_book *b = t_book();
	struct rsx_book_map_info m;
	rsx_book_map_info(b, &m);
	T_EQ(m.zone0_ticks, 5000);
	T_EQ(m.slots, 16384);	/* R: the power of two >= 2W */
	T_EQ(m.half, 8192);
	T_EQ(m.center, 100000);
	for (int s = 0; s < 2; s++) {
		T_EQ(m.window_lo[s], 100000 - 8192);	/* centred on the reference price */
		T_EQ(m.window_hi[s], 100000 + 8192);
		T_EQ(m.far_levels[s], 0);
	}
#define SLOT(px) rsx_book_slot_of(b, rsx_price(px))
	T_EQ(SLOT(100000), 100000 & 16383);	/* one slot per tick: tick mod R */
	T_EQ(SLOT(100001), (100000 & 16383) + 1);
	T_EQ(SLOT(100000 - 8192), (100000 - 8192) & 16383);
	T_EQ(SLOT(100000 + 8191), (100000 + 8191) & 16383);
	T_EQ(SLOT(100000 + 8192), UINT64_MAX);	/* beyond the window: the far tree */
	T_EQ(SLOT(100000 - 8193), UINT64_MAX);
	T_EQ(SLOT(INT64_MAX), UINT64_MAX);
	T_EQ(SLOT(1), UINT64_MAX);
	/* every tick of the window has its own slot */
	static uint8_t seen[16384];
	memset(seen, 0, sizeof seen);
	for (int64_t px = 100000 - 8192; px < 100000 + 8192; px++) {
		uint64_t s = SLOT(px);
		T_CHECK(s < 16384 && !seen[s]);
		if (s < 16384)
			seen[s] = 1;
	}
	/* levels inside and outside the window: far ones go to the tree (a top at the centre first,
	 * so the mid stays put: a one-sided book's mid is its best price) */
	t_gtc(b, 2, 10, SELL, 100001, 1);
	t_gtc(b, 2, 11, BUY, 99999, 1);
	t_gtc(b, 1, 1, SELL, 100000 + 8191, 1);
	t_gtc(b, 1, 2, SELL, 100000 + 8192, 1);
	t_gtc(b, 1, 3, BUY, 100000 - 8192, 1);
	t_gtc(b, 1, 4, BUY, 100000 - 8193, 1);
	t_gtc(b, 1, 5, BUY, 1, 1);
	rsx_book_map_info(b, &m);
	T_EQ(m.far_levels[BUY], 2);
	T_EQ(m.far_levels[SELL], 1);
	T_BOOK_OK(b);
#undef SLOT
	rsx_book_destroy(b);

	/* tick 50: W counts ticks, the ring one slot per tick */
	b = t_book_ex(1024, 0, 16, 5000000, 50);
	rsx_book_map_info(b, &m);
	T_EQ(m.zone0_ticks, 5000);
	T_EQ(m.slots, 16384);
	T_EQ(m.window_lo[0], 5000000 - 8192 * 50);
	T_EQ(m.window_hi[1], 5000000 + 8192 * 50);
	T_EQ(rsx_book_slot_of(b, rsx_price(5000000)), (5000000 / 50) & 16383);
	T_EQ(rsx_book_slot_of(b, rsx_price(5000000 + 49)), (5000000 / 50) & 16383);
	rsx_book_destroy(b);
}

static void test_match_basic(void)
{
	struct rsx_book *b = t_book();
	T_EQ(t_gtc(b, 1, 1, SELL, 100, 10), 2);
	EXPECT(INS, BBO);
	T_EQ(t_ev[0].qty, 10);
	T_EQ(t_ev[1].ask_px, 100);
	T_EQ(t_ev[1].ask_qty, 10);
	T_EQ(t_ev[1].ask_count, 1);
	T_EQ(t_ev[1].price, 0);	/* empty bid side */
	t_gtc(b, 2, 2, SELL, 100, 5);
	EXPECT(INS, BBO);
	T_EQ(t_ev[1].ask_qty, 15);
	T_EQ(t_ev[1].ask_count, 2);
	t_gtc(b, 3, 3, SELL, 101, 7);
	EXPECT(INS);	/* not at the top: no BBO */
	t_gtc(b, 5, 5, BUY, 98, 1);
	EXPECT(INS, BBO);

	/* a buy sweeping two levels: fills in price-time order at the makers' prices */
	t_gtc(b, 4, 4, BUY, 101, 20);
	EXPECT(FILL, DONE, FILL, DONE, FILL, DONE, BBO);
	T_EQ(t_id(&t_ev[0].maker_order_id), 1);
	T_EQ(t_ev[0].price, 100);
	T_EQ(t_ev[0].qty, 10);
	T_EQ(t_ev[0].remaining, 10);
	T_EQ(t_ev[0].maker_remaining, 0);
	T_EQ(t_ev[0].user_id, 4);
	T_EQ(t_ev[0].maker_user_id, 1);
	T_EQ(t_ev[1].user_id, 1);
	T_EQ(t_ev[1].status, RSX_STATUS_FILLED);
	T_EQ(t_ev[1].filled, 10);
	T_EQ(t_id(&t_ev[2].maker_order_id), 2);
	T_EQ(t_ev[4].price, 101);
	T_EQ(t_ev[4].qty, 5);
	T_EQ(t_ev[4].maker_remaining, 2);
	T_EQ(t_id(&t_ev[5].order_id), 4);	/* the taker's terminal */
	T_EQ(t_ev[5].status, RSX_STATUS_FILLED);
	T_EQ(t_ev[5].filled, 20);
	T_EQ(t_ev[6].ask_px, 101);
	T_EQ(t_ev[6].ask_qty, 2);
	T_EQ(t_ev[6].price, 98);
	T_EQ(rsx_book_position(b, 4, NULL), 20);
	T_EQ(rsx_book_position(b, 1, NULL), -10);
	T_EQ(rsx_book_position(b, 3, NULL), -5);

	/* a partial taker rests its residual after its fills */
	t_gtc(b, 6, 6, BUY, 101, 5);
	EXPECT(FILL, DONE, INS, BBO);
	T_EQ(t_ev[2].qty, 3);
	T_EQ(t_ev[2].price, 101);
	T_EQ(t_best(b, BUY), 101);
	T_EQ(t_best(b, SELL), 0);

	/* IOC: remainder cancelled; an IOC that crosses nothing ends with filled 0, no BBO */
	t_gtc(b, 1, 7, SELL, 103, 4);
	t_new(b, 2, 8, BUY, 103, 6, RSX_TIF_IOC, 0, RSX_STP_NONE);
	EXPECT(FILL, DONE, DONE, BBO);
	T_EQ(t_ev[2].status, RSX_STATUS_CANCELLED);
	T_EQ(t_ev[2].reason, RSX_REASON_IOC_REMAINDER);
	T_EQ(t_ev[2].filled, 4);
	T_EQ(t_ev[2].remaining, 2);
	t_new(b, 2, 9, BUY, 50, 6, RSX_TIF_IOC, 0, RSX_STP_NONE);
	EXPECT(DONE);
	T_EQ(t_ev[0].filled, 0);
	T_EQ(t_ev[0].reason, RSX_REASON_IOC_REMAINDER);

	/* FIFO inside a price, exact at every price */
	t_gtc(b, 10, 20, SELL, 110, 1);
	t_gtc(b, 11, 21, SELL, 110, 1);
	t_gtc(b, 12, 22, SELL, 109, 1);
	t_new(b, 13, 23, BUY, 110, 3, RSX_TIF_IOC, 0, RSX_STP_NONE);
	T_EQ(t_id(&t_ev[0].maker_order_id), 22);
	T_EQ(t_id(&t_ev[2].maker_order_id), 20);
	T_EQ(t_id(&t_ev[4].maker_order_id), 21);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

static void test_fok_postonly(void)
{
	struct rsx_book *b = t_book();
	t_gtc(b, 1, 1, SELL, 100, 5);
	t_gtc(b, 2, 2, SELL, 101, 5);
	t_gtc(b, 3, 3, SELL, 103, 5);
	/* 15 available up to 103 but only 10 up to 102: killed, the book untouched */
	t_new(b, 4, 4, BUY, 102, 11, RSX_TIF_FOK, 0, RSX_STP_NONE);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_FOK_NOT_FILLABLE);
	T_EQ(t_ev[0].request_type, RSX_REC_NEW_ORDER);
	T_EQ(t_best(b, SELL), 100);
	struct rsx_book_stats st;
	rsx_book_stats(b, &st);
	T_EQ(st.orders, 3);
	t_new(b, 4, 5, BUY, 102, 10, RSX_TIF_FOK, 0, RSX_STP_NONE);
	EXPECT(FILL, DONE, FILL, DONE, DONE, BBO);
	T_EQ(t_ev[4].status, RSX_STATUS_FILLED);
	/* a FOK that does not cross at all */
	t_new(b, 4, 6, BUY, 99, 1, RSX_TIF_FOK, 0, RSX_STP_NONE);
	EXPECT(FAILED);
	/* post-only compares prices: rejected at or through the opposite best */
	t_new(b, 5, 7, BUY, 103, 1, RSX_TIF_GTC, RSX_ORDER_POST_ONLY, RSX_STP_NONE);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_POST_ONLY_WOULD_CROSS);
	t_new(b, 5, 8, BUY, 102, 1, RSX_TIF_GTC, RSX_ORDER_POST_ONLY, RSX_STP_NONE);
	EXPECT(INS, BBO);
	T_EQ(t_ev[0].flags, RSX_ORDER_POST_ONLY);
	t_new(b, 5, 9, BUY, 102, 1, RSX_TIF_IOC, RSX_ORDER_POST_ONLY, RSX_STP_NONE);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_BAD_FLAGS);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

static void test_reduce_only(void)
{
	struct rsx_book *b = t_book();
	/* no position: refused */
	t_new(b, 1, 1, SELL, 100, 5, RSX_TIF_GTC, RSX_ORDER_REDUCE_ONLY, RSX_STP_NONE);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_REDUCE_ONLY_NO_POSITION);
	/* user 1 buys 10 */
	t_gtc(b, 2, 2, SELL, 100, 10);
	t_gtc(b, 1, 3, BUY, 100, 10);
	T_EQ(rsx_book_position(b, 1, NULL), 10);
	/* a reduce-only buy would grow the long: refused */
	t_new(b, 1, 4, BUY, 90, 1, RSX_TIF_GTC, RSX_ORDER_REDUCE_ONLY, RSX_STP_NONE);
	EXPECT(FAILED);
	/* a reduce-only sell of 15 is clamped to 10 and rests */
	t_new(b, 1, 5, SELL, 105, 15, RSX_TIF_GTC, RSX_ORDER_REDUCE_ONLY, RSX_STP_NONE);
	EXPECT(INS, BBO);
	T_EQ(t_ev[0].qty, 10);
	/* user 1 sells 6 elsewhere: the resting reduce-only may now fill only 4 */
	t_gtc(b, 3, 6, BUY, 99, 6);
	t_new(b, 1, 7, SELL, 99, 6, RSX_TIF_IOC, 0, RSX_STP_NONE);
	T_EQ(rsx_book_position(b, 1, NULL), 4);
	t_gtc(b, 4, 8, BUY, 105, 10);
	EXPECT(FILL, CANC, INS, BBO);
	T_EQ(t_ev[0].qty, 4);
	T_EQ(t_ev[1].reason, RSX_REASON_REDUCE_ONLY_NO_POSITION);
	T_EQ(t_ev[1].remaining, 6);
	T_EQ(t_ev[2].qty, 6);
	T_EQ(rsx_book_position(b, 1, NULL), 0);
	/* a flat user with no order keeps no state */
	struct rsx_book_stats st;
	rsx_book_stats(b, &st);
	uint32_t norders;
	T_EQ(rsx_book_position(b, 1, &norders), 0);
	T_EQ(norders, 0);
	/* a reduce-only IOC taker is clamped: fills count against the clamped qty */
	t_gtc(b, 5, 9, SELL, 110, 50);
	t_new(b, 6, 10, BUY, 110, 3, RSX_TIF_IOC, 0, RSX_STP_NONE);	/* user 6 long 3 */
	t_gtc(b, 7, 11, BUY, 108, 50);
	t_new(b, 6, 12, SELL, 100, 8, RSX_TIF_IOC, RSX_ORDER_REDUCE_ONLY, RSX_STP_NONE);
	EXPECT(FILL, DONE, BBO);
	T_EQ(t_ev[0].qty, 3);
	T_EQ(t_ev[1].status, RSX_STATUS_FILLED);
	T_EQ(t_ev[1].filled, 3);
	T_EQ(t_ev[1].remaining, 0);
	T_EQ(rsx_book_position(b, 6, NULL), 0);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

static void test_stp(void)
{
	struct rsx_book *b = t_book();
	/* user 1 rests two asks, user 2 one between them in time */
	t_gtc(b, 1, 1, SELL, 100, 5);
	t_gtc(b, 2, 2, SELL, 100, 5);
	t_gtc(b, 1, 3, SELL, 100, 5);
	/* CANCEL_TAKER (default): stops at user 1's first maker, even for GTC */
	t_new(b, 1, 10, BUY, 100, 20, RSX_TIF_GTC, 0, RSX_STP_CANCEL_TAKER);
	EXPECT(DONE);	/* nothing changed at the top */
	T_EQ(t_ev[0].status, RSX_STATUS_CANCELLED);
	T_EQ(t_ev[0].reason, RSX_REASON_SELF_TRADE);
	T_EQ(t_ev[0].filled, 0);
	T_EQ(t_ev[0].remaining, 20);
	/* CANCEL_MAKER: user 1's makers go, user 2's fills, the rest rests */
	t_new(b, 1, 11, BUY, 100, 20, RSX_TIF_GTC, 0, RSX_STP_CANCEL_MAKER);
	EXPECT(CANC, FILL, DONE, CANC, INS, BBO);
	T_EQ(t_ev[0].reason, RSX_REASON_SELF_TRADE);
	T_EQ(t_id(&t_ev[0].order_id), 1);
	T_EQ(t_id(&t_ev[1].maker_order_id), 2);
	T_EQ(t_id(&t_ev[3].order_id), 3);
	T_EQ(t_ev[4].qty, 15);
	T_EQ(rsx_book_position(b, 1, NULL), 5);
	/* CANCEL_BOTH: the maker and the taker */
	t_cancel(b, 1, 11);
	EXPECT(CANC, BBO);
	t_gtc(b, 3, 20, SELL, 99, 1);
	t_gtc(b, 4, 21, BUY, 90, 1);
	t_new(b, 4, 22, SELL, 90, 1, RSX_TIF_GTC, 0, RSX_STP_CANCEL_BOTH);
	EXPECT(CANC, DONE, BBO);
	T_EQ(t_id(&t_ev[0].order_id), 21);
	T_EQ(t_ev[1].reason, RSX_REASON_SELF_TRADE);
	/* NONE: self-trades fill and leave the position unchanged */
	t_gtc(b, 1, 25, BUY, 95, 2);
	int64_t before = rsx_book_position(b, 1, NULL);
	t_new(b, 1, 23, SELL, 95, 2, RSX_TIF_IOC, 0, RSX_STP_NONE);
	EXPECT(FILL, DONE, DONE, BBO);
	T_EQ(t_ev[0].user_id, 1);
	T_EQ(t_ev[0].maker_user_id, 1);
	T_EQ(rsx_book_position(b, 1, NULL), before);
	/* bad STP code */
	t_new(b, 1, 24, SELL, 100, 2, RSX_TIF_IOC, 0, 4);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_BAD_STP);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

static void test_amend_cancel(void)
{
	struct rsx_book *b = t_book();
	t_gtc(b, 1, 1, SELL, 100, 10);
	t_gtc(b, 2, 2, SELL, 100, 10);
	/* qty down keeps priority */
	t_amend(b, 1, 1, 0, 4);
	EXPECT(AMD, BBO);
	T_EQ(t_ev[0].remaining, 4);
	T_EQ(t_ev[0].price, 100);
	T_EQ(t_ev[1].ask_qty, 14);
	t_amend(b, 1, 1, 100, 4);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_AMEND_NOT_DOWN);
	T_EQ(t_ev[0].request_type, RSX_REC_AMEND_ORDER);
	t_amend(b, 1, 1, 0, 0);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_QTY_NOT_POSITIVE);
	t_new(b, 3, 3, BUY, 100, 1, RSX_TIF_IOC, 0, RSX_STP_NONE);
	T_EQ(t_id(&t_ev[0].maker_order_id), 1);
	/* price amend loses priority: order 1 goes behind order 2 */
	t_amend(b, 1, 1, 101, 3);
	EXPECT(AMD, BBO);
	t_amend(b, 1, 1, 100, 3);
	EXPECT(AMD, BBO);
	t_new(b, 3, 4, BUY, 100, 13, RSX_TIF_IOC, 0, RSX_STP_NONE);
	EXPECT(FILL, DONE, FILL, DONE, DONE, BBO);
	T_EQ(t_id(&t_ev[0].maker_order_id), 2);
	T_EQ(t_id(&t_ev[2].maker_order_id), 1);
	T_EQ(t_ev[3].filled, 4);	/* 1 before the amends + 3 now */
	/* a crossing price amend trades as a taker, keeping its id */
	t_gtc(b, 5, 5, SELL, 105, 2);
	t_gtc(b, 6, 6, BUY, 95, 5);
	t_amend(b, 6, 6, 105, 5);
	EXPECT(FILL, DONE, AMD, BBO);
	T_EQ(t_id(&t_ev[0].order_id), 6);
	T_EQ(t_ev[2].price, 105);
	T_EQ(t_ev[2].remaining, 3);
	t_amend(b, 6, 6, 110, 3);	/* nothing to cross: simply moves */
	EXPECT(AMD, BBO);
	/* amend a post-only across the book: refused, order unchanged */
	t_gtc(b, 7, 7, SELL, 120, 1);
	t_new(b, 8, 8, BUY, 100, 1, RSX_TIF_GTC, RSX_ORDER_POST_ONLY, RSX_STP_NONE);
	t_amend(b, 8, 8, 120, 1);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_POST_ONLY_WOULD_CROSS);
	struct rsx_book_order_info oi;
	rsx_oid_t o8 = t_oid(8);
	T_EQ(rsx_book_order(b, 8, &o8, &oi), 1);
	T_EQ(oi.price, 100);
	/* unknown orders, someone else's order */
	t_cancel(b, 8, 12345);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_UNKNOWN_ORDER);
	T_EQ(t_ev[0].request_type, RSX_REC_CANCEL_ORDER);
	t_cancel(b, 9, 8);
	EXPECT(FAILED);
	t_amend(b, 9, 8, 0, 1);
	EXPECT(FAILED);
	/* cancel */
	t_cancel(b, 8, 8);
	EXPECT(CANC);	/* not the best bid (order 6 at 110): no BBO */
	T_EQ(t_ev[0].reason, RSX_REASON_USER_CANCEL);
	T_EQ(t_ev[0].price, 100);
	T_EQ(t_ev[0].remaining, 1);
	t_cancel(b, 8, 8);
	EXPECT(FAILED);
	/* cancel-all, oldest first, one BBO at the end */
	t_gtc(b, 9, 30, SELL, 130, 1);
	t_gtc(b, 9, 31, BUY, 90, 1);
	t_gtc(b, 9, 32, SELL, 140, 1);
	t_amend(b, 9, 30, 135, 1);	/* re-priced: now the newest */
	t_cancel_all(b, 9);
	EXPECT(CANC, CANC, CANC);	/* none at the top: no BBO */
	T_EQ(t_id(&t_ev[0].order_id), 31);
	T_EQ(t_id(&t_ev[1].order_id), 32);
	T_EQ(t_id(&t_ev[2].order_id), 30);
	T_EQ(t_ev[0].reason, RSX_REASON_CANCEL_ALL);
	t_cancel_all(b, 9);
	T_EQ(t_nev, 0);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

static void test_validation(void)
{
	struct rsx_book *b = t_book();
	struct { int side, tif, flags, stp; int64_t px, qty; int reason; } cases[] = {
		{ 2, 0, 0, 0, 100, 1, RSX_REASON_BAD_SIDE },
		{ 0, 3, 0, 0, 100, 1, RSX_REASON_BAD_TIF },
		{ 0, 0, 0x80, 0, 100, 1, RSX_REASON_BAD_FLAGS },
		{ 0, 2, RSX_ORDER_POST_ONLY, 0, 100, 1, RSX_REASON_BAD_FLAGS },
		{ 0, 0, 0, 9, 100, 1, RSX_REASON_BAD_STP },
		{ 0, 0, 0, 0, 0, 1, RSX_REASON_PRICE_NOT_POSITIVE },
		{ 0, 0, 0, 0, 100, 0, RSX_REASON_QTY_NOT_POSITIVE },
		{ 0, 0, 0, 0, 100, -1, RSX_REASON_QTY_NOT_POSITIVE },
		{ 0, 0, 0, 0, 100, 2000000000, RSX_REASON_QTY_ABOVE_MAX },
		{ 0, 0, 0, 0, INT64_MAX, 2, RSX_REASON_NOTIONAL_OVERFLOW },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		t_new(b, 1, 100 + i, cases[i].side, cases[i].px, cases[i].qty, cases[i].tif, cases[i].flags,
		      cases[i].stp);
		EXPECT(FAILED);
		T_EQ(t_ev[0].reason, cases[i].reason);
		T_EQ(t_id(&t_ev[0].order_id), 100 + i);
		T_EQ(t_ev[0].user_id, 1);
	}
	struct rsx_book_stats st;
	rsx_book_stats(b, &st);
	T_EQ(st.orders, 0);
	T_EQ(st.users, 0);	/* a refused order leaves no user state */
	/* duplicate (user, id) of a resting order; another user may reuse the id */
	t_gtc(b, 1, 1, BUY, 90, 1);
	t_gtc(b, 1, 1, BUY, 91, 1);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_DUPLICATE_ORDER_ID);
	t_gtc(b, 2, 1, BUY, 91, 1);
	EXPECT(INS, BBO);
	/* a tick/lot config: off-grid values are refused, never rounded */
	struct rsx_symbol_config c = t_cfg(5, 10);
	T_EQ(rsx_book_set_config(b, &c), 0);
	t_gtc(b, 3, 3, BUY, 92, 10);
	T_EQ(t_ev[0].reason, RSX_REASON_PRICE_OFF_TICK);
	t_gtc(b, 3, 3, BUY, 95, 15);
	T_EQ(t_ev[0].reason, RSX_REASON_QTY_OFF_LOT);
	t_gtc(b, 3, 3, BUY, 95, 20);
	EXPECT(INS, BBO);
	T_BOOK_OK(b);	/* the tick change recentred the map; old off-grid orders stay exact */
	t_new(b, 4, 4, SELL, 90, 30, RSX_TIF_IOC, 0, RSX_STP_NONE);
	T_EQ(t_ev[0].price, 95);
	T_EQ(t_ev[2].price, 91);
	T_EQ(t_ev[4].price, 90);
	/* halted / paused */
	c.status = RSX_SYMBOL_PAUSED;
	rsx_book_set_config(b, &c);
	t_gtc(b, 3, 5, BUY, 95, 10);
	T_EQ(t_ev[0].reason, RSX_REASON_SYMBOL_HALTED);
	t_cancel(b, 3, 3);
	EXPECT(FAILED);	/* order 3 was filled above: unknown, but cancels are allowed */
	T_EQ(t_ev[0].reason, RSX_REASON_UNKNOWN_ORDER);
	c.status = RSX_SYMBOL_HALTED;
	rsx_book_set_config(b, &c);
	t_cancel(b, 3, 3);
	T_EQ(t_ev[0].reason, RSX_REASON_SYMBOL_HALTED);
	c.status = 9;
	T_EQ(rsx_book_set_config(b, &c), RSX_EINVALID);
	rsx_book_destroy(b);
}

static void test_api_misuse(void)
{
	struct rsx_book *b = t_book();
	struct rsx_order o;
	memset(&o, 0, sizeof o);
	o.user_id = 1;
	o.price.raw = 100;
	o.qty.raw = 1;
	struct rsx_book_sink s = { .buf = t_buf, .cap = 511 };
	T_EQ(rsx_book_new_order(b, &o, &s), RSX_ESHORT);
	s.buf = t_buf + 8;
	s.cap = 4096;
	T_EQ(rsx_book_new_order(b, &o, &s), RSX_EINVALID);
	s.buf = t_buf;
	s.len = 4000;
	s.cap = 4096;
	T_EQ(rsx_book_new_order(b, &o, &s), RSX_ESHORT);
	T_EQ(rsx_book_new_order(b, NULL, &s), RSX_EINVALID);
	T_EQ(rsx_book_apply(b, RSX_REC_FILL, &o, &s), RSX_ETYPE);
	s.len = 0;
	T_EQ(rsx_book_resume(b, &s), RSX_EINVALID);	/* nothing suspended */
	struct rsx_book_stats st;
	rsx_book_stats(b, &st);
	T_EQ(st.ops, 0);
	/* bad params */
	struct rsx_book_params p;
	struct rsx_symbol_config c = t_cfg(1, 1);
	struct rsx_book *x = NULL;
	memset(&p, 0, sizeof p);
	p.capacity = 10;
	p.max_users = 10;
	T_EQ(rsx_book_create(&x, &p, &c), RSX_EINVALID);	/* no ref price */
	p.ref_price.raw = 100;
	p.capacity = 0;
	T_EQ(rsx_book_create(&x, &p, &c), RSX_EINVALID);
	p.capacity = 10;
	c.tick_size.raw = 0;
	T_EQ(rsx_book_create(&x, &p, &c), RSX_EINVALID);
	c.tick_size.raw = 1;
	p.flags = RSX_BOOK_HUGETLB_NEVER | RSX_BOOK_HUGETLB_REQUIRE;
	T_EQ(rsx_book_create(&x, &p, &c), RSX_EINVALID);
	rsx_book_destroy(b);
}

static void test_capacity(void)
{
	/* the slab: 4 orders */
	struct rsx_book *b = t_book_ex(4, 0, 16, 100000, 1);
	for (int i = 0; i < 4; i++) {
		t_gtc(b, 1, 1 + i, BUY, 90 + i, 1);
		T_EQ(t_ev[0].type, INS);
	}
	t_gtc(b, 1, 9, BUY, 80, 1);
	EXPECT(FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_BOOK_FULL);
	T_EQ(t_ev[0].detail, 1);
	/* IOC and FOK still trade on a full book */
	t_new(b, 2, 10, SELL, 93, 1, RSX_TIF_IOC, 0, RSX_STP_NONE);
	EXPECT(FILL, DONE, DONE, BBO);
	t_gtc(b, 1, 11, BUY, 80, 1);
	EXPECT(INS);
	T_BOOK_OK(b);
	rsx_book_destroy(b);

	/* the level pool: 2 prices */
	b = t_book_ex(16, 2, 16, 100000, 1);
	t_gtc(b, 1, 1, BUY, 90, 1);
	t_gtc(b, 1, 2, BUY, 91, 1);
	t_gtc(b, 1, 3, BUY, 92, 1);
	T_EQ(t_ev[0].reason, RSX_REASON_BOOK_FULL);
	T_EQ(t_ev[0].detail, 2);
	/* a price amend out of a one-order level reuses that level */
	t_amend(b, 1, 2, 95, 1);
	EXPECT(AMD, BBO);
	T_BOOK_OK(b);
	rsx_book_destroy(b);

	/* the user table: 2 users */
	b = t_book_ex(16, 0, 2, 100000, 1);
	t_gtc(b, 1, 1, BUY, 90, 1);
	t_gtc(b, 2, 2, BUY, 90, 1);
	t_gtc(b, 3, 3, BUY, 90, 1);
	T_EQ(t_ev[0].reason, RSX_REASON_BOOK_FULL);
	T_EQ(t_ev[0].detail, 3);
	t_cancel(b, 2, 2);	/* user 2 is flat with no order: its slot is released */
	t_gtc(b, 3, 3, BUY, 90, 1);
	EXPECT(INS, BBO);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

/* Prices beyond every compression zone, several per slot: exact price-time priority. */
static void test_far_prices(void)
{
	struct rsx_book *b = t_book();
	int64_t asks[] = { 400000, 150000, 1000000, 150001, 149999, 160000, 140000, 250000 };
	for (int i = 0; i < 8; i++)
		t_gtc(b, 1 + i, 1 + i, SELL, asks[i], 1);
	int64_t bids[] = { 10, 40000, 45000, 1, 49999, 30000 };
	for (int i = 0; i < 6; i++)
		t_gtc(b, 20 + i, 20 + i, BUY, bids[i], 1);
	/* the resting ask FIFOs share the catch-all: the sweep must still go by price */
	t_new(b, 50, 50, BUY, 2000000, 8, RSX_TIF_IOC, 0, RSX_STP_NONE);
	int64_t want[] = { 140000, 149999, 150000, 150001, 160000, 250000, 400000, 1000000 };
	for (int i = 0; i < 8; i++)
		T_EQ(t_ev[2 * i].price, want[i]);
	t_new(b, 51, 51, SELL, 1, 6, RSX_TIF_IOC, 0, RSX_STP_NONE);
	int64_t wantb[] = { 49999, 45000, 40000, 30000, 10, 1 };
	for (int i = 0; i < 6; i++)
		T_EQ(t_ev[2 * i].price, wantb[i]);
	/* same-side orders in a shared slot are never matched against each other */
	t_gtc(b, 60, 60, SELL, 200000, 1);
	t_gtc(b, 61, 61, BUY, 200001, 1);	/* crosses: fills the ask */
	EXPECT(FILL, DONE, DONE, BBO);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

/* The mid walks 40 % up and then down to 70 % of the start: the book recentres and stays exact. */
static void test_drift(void)
{
	struct rsx_book *b = t_book_ex(1 << 16, 0, 64, 100000, 1);
	uint64_t id = 1;
	int64_t mid = 100000;
	for (int step = 0; step < 2200; step++) {
		int up = step < 800;
		mid += up ? 50 : -50;	/* to 140,000 then to 70,000 */
		/* take out the liquidity the move left on the wrong side of the mid */
		t_new(b, 40, id++, up ? BUY : SELL, mid, 100000, RSX_TIF_IOC, 0, RSX_STP_NONE);
		t_gtc(b, 1 + id % 32, id, BUY, mid - 1 - (int64_t)(id % 7), 1 + id % 3);
		id++;
		t_gtc(b, 1 + id % 32, id, SELL, mid + 1 + (int64_t)(id % 7), 1 + id % 3);
		id++;
		if (step % 200 == 0)
			T_BOOK_OK(b);
	}
	struct rsx_book_stats st;
	rsx_book_stats(b, &st);
	T_CHECK(st.recentres >= 20);
	T_CHECK(st.center > 67000 && st.center < 73000);
	T_CHECK(t_best(b, BUY) < t_best(b, SELL));
	/* asks left behind up to 140,000 are far levels now: a sweep takes them in price order */
	t_new(b, 42, id++, BUY, 200000, 1000000, RSX_TIF_IOC, 0, RSX_STP_NONE);
	int64_t last;
	int fills = t_fills_in_order(1, &last);
	T_CHECK(fills > 1000);
	T_CHECK(last > 139000);
	T_EQ(t_best(b, SELL), 0);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

/* A level holding more than INT64_MAX: the total saturates and recounts exactly when it shrinks. */
static void test_level_saturation(void)
{
	struct rsx_book *b = t_book_ex(64, 0, 16, 100, 1);
	struct rsx_symbol_config c = t_cfg(1, 1);
	c.max_qty.raw = INT64_MAX;
	T_EQ(rsx_book_set_config(b, &c), 0);
	int64_t big = INT64_MAX - 10;
	t_gtc(b, 1, 1, SELL, 1, big);
	EXPECT(INS, BBO);
	T_EQ(t_ev[1].ask_qty, big);
	t_gtc(b, 2, 2, SELL, 1, big);
	EXPECT(INS, BBO);
	T_EQ(t_ev[1].ask_qty, INT64_MAX);	/* saturated */
	T_EQ(t_ev[1].ask_count, 2);
	t_gtc(b, 3, 3, SELL, 1, 5);
	T_BOOK_OK(b);
	/* a fill from a saturated level: the total stays saturated and the count stays 3, so the
	 * reported top is unchanged and no BBO is emitted (specs/matching.md §4) */
	t_new(b, 4, 4, BUY, 1, 100, RSX_TIF_IOC, 0, RSX_STP_NONE);
	EXPECT(FILL, DONE);
	t_amend(b, 3, 3, 0, 4);	/* qty down in place inside the saturated level: nothing to report either */
	EXPECT(AMD);
	t_cancel(b, 1, 1);
	EXPECT(CANC, BBO);
	T_EQ(t_ev[1].ask_qty, big + 4);	/* exact again */
	T_BOOK_OK(b);
	t_amend(b, 2, 2, 0, 7);
	EXPECT(AMD, BBO);
	T_EQ(t_ev[1].ask_qty, 11);
	T_BOOK_OK(b);
	rsx_book_destroy(b);
}

/* Users come and go through a small, crowded user index (collisions, backward-shift deletes). */
static void test_user_churn(void)
{
	struct rsx_book *b = t_book_ex(256, 0, 8, 1000, 1);
	uint64_t x = 12345, id = 1;
	for (int i = 0; i < 20000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t user = 1 + (uint32_t)((x >> 33) % 40);
		if ((x >> 20) % 3 == 0)
			t_cancel_all(b, user);
		else
			t_new(b, user, id++, (x >> 40) & 1, 995 + (int64_t)((x >> 44) % 11), 1 + (x >> 50) % 3,
			      (x >> 56) % 4 == 0 ? RSX_TIF_IOC : RSX_TIF_GTC, 0, RSX_STP_NONE);
		if (i % 500 == 0)
			T_BOOK_OK(b);
	}
	T_BOOK_OK(b);
	struct rsx_book_stats st;
	rsx_book_stats(b, &st);
	T_CHECK(st.users <= 8);
	rsx_book_destroy(b);
}

int main(void)
{
	test_user_churn();
	test_level_saturation();
	test_map();
	test_match_basic();
	test_fok_postonly();
	test_reduce_only();
	test_stp();
	test_amend_cancel();
	test_validation();
	test_api_misuse();
	test_capacity();
	test_far_prices();
	test_drift();
	T_DONE();
}
