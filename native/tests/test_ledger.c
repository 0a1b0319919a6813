/*
 * test_ledger.c - fees and position replay for the history store: the
 * examples of specs/risk.md 3.1 and 3.4, bad legs, overflow.
 */
#include <stdint.h>

#include "rsx/errors.h"
#include "rsx/ledger.h"
#include "t_helpers.h"

static void test_fees(void)
{
	/* BTC-PERP: pd 2, qd 6, cd 6 -> D = 100; 1 BTC at 50 000.00 = 50 000 USD */
	int64_t price[4] = { 5000000, 5000001, 0, INT64_MAX };
	int64_t qty[4] = { 1000000, 333, 1, INT64_MAX };
	int64_t div[4] = { 100, 100, 100, 1 };
	int32_t tb[4] = { 5, 5, 5, 5 }, mb[4] = { -1, -1, -1, -1 };
	int64_t v[4], tf[4], mf[4];
	uint8_t ok[4];
	T_EQ(rsx_ledger_fill_fees(4, price, qty, div, tb, mb, v, tf, mf, ok), 2);
	T_EQ(ok[0], 1);
	T_EQ(v[0], 50000000000LL);
	T_EQ(tf[0], 25000000);		/* 5 bps */
	T_EQ(mf[0], -5000000);		/* 1 bp rebate */
	T_EQ(v[1], 16650003);		/* floor(5000001 x 333 / 100) = floor(16650003.33) */
	T_EQ(tf[1], 8325);		/* floor(8325.0015) */
	T_EQ(mf[1], -1665);		/* rebate rounded down in magnitude: 1665.0003 -> 1665 */
	T_EQ(ok[2], 0);			/* price 0 */
	T_EQ(ok[3], 0);			/* value beyond int64 */
	T_EQ(v[3], 0);
}

static void test_replay(void)
{
	/* long 10 cost 1000, sell 3 at 110 -> r = +30, long 7 cost 700 (specs/risk.md 3.1) */
	struct rsx_ledger_leg legs[3] = {
		{ .price = 100, .qty = 10, .dir = 1 },
		{ .price = 110, .qty = 3, .dir = -1 },
		{ .price = 110, .qty = 15, .dir = -1 },	/* close 7 (+70), open short 8 */
	};
	int64_t net = 0, cost = 0, r = 0, each[3];
	T_EQ(rsx_ledger_replay(legs, 2, 1, &net, &cost, &r, each), 0);
	T_EQ(net, 7);
	T_EQ(cost, 700);
	T_EQ(r, 30);
	T_EQ(each[1], 30);
	T_EQ(rsx_ledger_replay(legs + 2, 1, 1, &net, &cost, &r, NULL), 0);
	T_EQ(net, -8);
	T_EQ(cost, -880);
	T_EQ(r, 70);

	/* errors leave the outputs alone */
	struct rsx_ledger_leg bad = { .price = 100, .qty = 1, .dir = 0 };
	net = 5, cost = 50, r = 9;
	T_EQ(rsx_ledger_replay(&bad, 1, 1, &net, &cost, &r, NULL), RSX_EINVALID);
	T_EQ(net, 5);
	T_EQ(r, 9);
	T_EQ(rsx_ledger_replay(legs, 1, 0, &net, &cost, &r, NULL), RSX_EINVALID);
	struct rsx_ledger_leg big = { .price = INT64_MAX, .qty = INT64_MAX, .dir = 1 };
	T_EQ(rsx_ledger_replay(&big, 1, 1, &net, &cost, &r, NULL), RSX_EOVERFLOW);
	T_EQ(cost, 50);
}

int main(void)
{
	test_fees();
	test_replay();
	T_DONE();
}
