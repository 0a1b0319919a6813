/*
 * test_risk.c - the risk core's arithmetic and tables without Python:
 * position legs, fees, progressive tiers, the order table under collisions,
 * funding rounding, the pre-trade boundary and a fill through the stream path.
 */
#include <stdlib.h>
#include <string.h>

#include "rsx/errors.h"
#include "rsx/risk.h"
#include "../src/risk_internal.h"	/* internal helpers under test */
#include "t_helpers.h"

#define U 64
#define P 256
#define O 64	/* live orders; table of 128 */
#define S 4

static struct rsx_risk *shard_new(void)
{
	struct rsx_risk *r = calloc(1, sizeof(*r));
	r->accounts = aligned_alloc(64, U * sizeof(struct rsx_risk_account));
	r->user_hash = malloc(2 * U * sizeof(int32_t));
	r->positions = calloc(P, sizeof(struct rsx_risk_position));
	r->orders = calloc(2 * O, sizeof(struct rsx_risk_order));
	r->symbols = calloc(S, sizeof(struct rsx_risk_symbol));
	r->vshard_owner = calloc(RSX_RISK_VSHARDS, sizeof(uint16_t));
	r->events = calloc(64, sizeof(struct rsx_risk_event));
	memset(r->accounts, 0, U * sizeof(struct rsx_risk_account));
	memset(r->user_hash, 0xff, 2 * U * sizeof(int32_t));
	r->max_users = U;
	r->user_hash_mask = 2 * U - 1;
	r->max_positions = P;
	r->order_mask = 2 * O - 1;
	r->max_orders = O;
	r->max_symbols = S;
	r->events_cap = 64;
	r->collateral_decimals = 6;
	r->default_max_position = RSX_RISK_MAX_POSITION_CAP;
	r->default_liq_fee_bps = 50;
	r->default_ins_share_bps = 0;
	return r;
}

static void shard_free(struct rsx_risk *r)
{
	free(r->accounts), free(r->user_hash), free(r->positions), free(r->orders);
	free(r->symbols), free(r->vshard_owner), free(r->events), free(r);
}

static void configure(struct rsx_risk *r, int32_t taker, int32_t maker)
{
	struct rsx_config c;
	memset(&c, 0, sizeof(c));
	c.symbol_id = 1;
	c.config_version = 1;
	c.tick_size.raw = 1;
	c.lot_size.raw = 1;
	c.min_qty.raw = 1;
	c.max_qty.raw = INT64_C(1) << 60;
	c.price_decimals = 2;
	c.qty_decimals = 6;
	c.maker_fee_bps = maker;
	c.taker_fee_bps = taker;
	c.initial_margin_bps = 1000;
	c.maintenance_margin_bps = 500;
	c.funding_interval_s = 8;
	c.max_funding_rate_bps = 100;
	T_EQ(rsx_risk_configure_symbol(r, &c), 0);
}

static size_t frame(uint8_t *out, uint16_t type, const void *pl, size_t len)
{
	int n = rsx_record_frame(out, RSX_RECORD_MAX, type, pl, len);
	T_CHECK(n > 0);
	return n > 0 ? (size_t)n : 0;
}

static void test_legs(void)
{
	struct rsx_risk_symbol s;
	int64_t nn, nc, re;
	memset(&s, 0, sizeof(s));
	s.divisor = 100;
	/* long 10 cost 1000; sell 3 at 110 (V 330) -> close_cost 300, +30, long 7 cost 700 */
	T_EQ(risk_leg(&s, 1000, 1000, -1, 110, 300, 330, &nn, &nc, &re), 0);
	T_EQ(nn, 700);
	T_EQ(nc, 700);
	T_EQ(re, 30);
	/* flip: long 10 cost 1000, sell 15 at 110 -> +100, short 5 cost -550 */
	T_EQ(risk_leg(&s, 1000, 1000, -1, 110, 1500, 1650, &nn, &nc, &re), 0);
	T_EQ(nn, -500);
	T_EQ(nc, -550);
	T_EQ(re, 100);
	/* close a short at a loss */
	T_EQ(risk_leg(&s, -500, -550, 1, 120, 500, 600, &nn, &nc, &re), 0);
	T_EQ(nn, 0);
	T_EQ(nc, 0);
	T_EQ(re, -50);
	/* overflow refused */
	T_EQ(risk_leg(&s, 1, INT64_MAX - 5, 1, 1, 1, 10, &nn, &nc, &re), RSX_EOVERFLOW);
}

static void test_fees_and_tiers(struct rsx_risk *r)
{
	int64_t m;
	T_EQ(risk_fee(999999, 5), 499);
	T_EQ(risk_fee(999999, -1), -99);	/* rebate rounded down in magnitude */
	int64_t b[3] = { 1000, 10000, 100000 };
	uint32_t im[3] = { 1000, 2000, 5000 }, mm[3] = { 500, 1000, 2500 };
	T_EQ(rsx_risk_set_tiers(r, 1, 3, b, im, mm), 0);
	T_EQ(rsx_risk_tier_margin(r, 1, 10000, 0, &m), 0);
	T_EQ(m, 1900);
	T_EQ(rsx_risk_tier_margin(r, 1, 200000, 0, &m), 0);
	T_EQ(m, 96900);
	T_EQ(rsx_risk_tier_margin(r, 1, 1001, 1, &m), 0);
	T_EQ(m, 50);
	uint32_t bad_im[2] = { 1000, 900 };
	T_EQ(rsx_risk_set_tiers(r, 1, 2, b, bad_im, mm), RSX_EINVALID);	/* rates must not decrease */
	int64_t one = RSX_RISK_MAX_POSITION_CAP;
	uint32_t i1 = 1000, m1 = 500;
	T_EQ(rsx_risk_set_tiers(r, 1, 1, &one, &i1, &m1), 0);
}

static void test_order_table(struct rsx_risk *r)
{
	/* fill the table to its live limit, delete every other entry, then find all the rest */
	int32_t a = rsx_risk_open_account(r, 7);
	T_CHECK(a >= 0);
	rsx_oid_t ids[O];
	for (int i = 0; i < O; i++) {
		memset(&ids[i], 0, sizeof(ids[i]));
		ids[i].b[0] = (uint8_t)i;
		ids[i].b[9] = (uint8_t)(i * 7);
		T_EQ(rsx_risk_track_order(r, &ids[i], a, 1, 0, 100, 5, 0), 0);
	}
	T_EQ(r->n_orders, O);
	T_EQ(rsx_risk_track_order(r, &ids[0], a, 1, 0, 100, 5, 0), RSX_EINVALID);	/* duplicate/full */
	struct rsx_risk_order out[O];
	for (int i = 0; i < O; i += 2)
		r->orders[risk_order_find(r, &ids[i])].ts_ns = 0;
	/* reconciliation with the ME clock past the deadline releases them all */
	r->symbols[1].me_ts = 1000;
	T_EQ(rsx_risk_reconcile(r, 10, out, O), O);
	T_EQ(r->n_orders, 0);
	T_EQ(r->accounts[a].n_orders, 0);
	T_EQ(rsx_risk_audit(r), 0);
}

static void test_pretrade_boundary(struct rsx_risk *r)
{
	/* user 9: collateral exactly IM + fee of a 1-unit order at 100.00 */
	int32_t a = rsx_risk_open_account(r, 9);
	int64_t v = 100000000, need = v / 10 + v * 5 / 10000;
	T_EQ(rsx_risk_move(r, RSX_RISK_EXTERNAL, a, need), 0);
	struct rsx_order o;
	memset(&o, 0, sizeof(o));
	o.symbol_id = 1;
	o.user_id = 9;
	o.price.raw = 10000;
	o.qty.raw = 1000000;
	o.order_id.b[0] = 0xaa;
	uint8_t in[2 * RSX_RECORD_MAX], me[4 * RSX_RECORD_MAX], gw[4 * RSX_RECORD_MAX];
	size_t n = frame(in, RSX_REC_NEW_ORDER, &o, sizeof(o));
	o.order_id.b[0] = 0xbb;
	n += frame(in + n, RSX_REC_NEW_ORDER, &o, sizeof(o));
	size_t me_len = 0, gw_len = 0;
	struct rsx_risk_result res;
	T_EQ(rsx_risk_submit(r, in, n, 5, me, sizeof(me), &me_len, gw, sizeof(gw), &gw_len, &res), n);
	T_EQ(res.stop, 0);
	T_EQ(me_len, RSX_HEADER_SIZE + sizeof(struct rsx_order));	/* the first, exactly at the limit */
	T_EQ(gw_len, RSX_HEADER_SIZE + sizeof(struct rsx_order_failed));
	uint16_t type;
	struct rsx_order_failed f __attribute__((aligned(64)));
	T_CHECK(rsx_record_decode(gw, gw_len, &type, &f, sizeof(f)) > 0);
	T_EQ(f.reason, RSX_REASON_INSUFFICIENT_MARGIN);
	T_EQ(f.detail, need);
	T_EQ(r->accounts[a].frozen, need);
	struct rsx_order fwd __attribute__((aligned(64)));
	T_CHECK(rsx_record_decode(me, me_len, &type, &fwd, sizeof(fwd)) > 0);	/* resealed CRC */
	T_EQ(fwd.risk_out_ts_ns, 5);
}

static void test_stream_fill_and_funding(struct rsx_risk *r)
{
	struct rsx_fill f;
	memset(&f, 0, sizeof(f));
	f.seq = r->symbols[1].tip + 1;
	f.symbol_id = 1;
	f.taker_user_id = 11;
	f.maker_user_id = 12;
	f.price.raw = 10007;
	f.qty.raw = 3333337;
	f.taker_side = RSX_SIDE_BUY;
	uint8_t buf[RSX_RECORD_MAX];
	size_t n = frame(buf, RSX_REC_FILL, &f, sizeof(f));
	struct rsx_risk_result res;
	T_EQ(rsx_risk_apply_stream(r, buf, n, &res), n);
	T_EQ(res.stop, 0);
	T_EQ(rsx_risk_apply_stream(r, buf, n, &res), n);	/* the same seq again: skipped */
	T_EQ(r->dup_skipped, 1);
	int32_t t = rsx_risk_find_account(r, 11), m = rsx_risk_find_account(r, 12);
	int32_t pt = rsx_risk_find_position(r, t, 1), pm = rsx_risk_find_position(r, m, 1);
	T_EQ(r->positions[pt].net, 3333337);
	T_EQ(r->positions[pm].net, -3333337);
	T_EQ(r->positions[pt].cost, (int64_t)((__int128)10007 * 3333337 / 100));
	/* funding at rate 123457 e8, mark 10013: payer ceil, receiver floor, zero-sum with clearing */
	int32_t idx[2] = { pt, pm }, pos[2], liq[2];
	T_CHECK(rsx_risk_set_mark(r, 1, 10013, idx, 2, liq, 2) >= 0);
	int64_t amt[2];
	T_EQ(rsx_risk_funding_amounts(r, 1, 10013, 123457, idx, 2, pos, amt, 2), 2);
	__int128 x = (__int128)3333337 * 10013 * 123457;
	__int128 e = (__int128)100 * 100000000;
	T_EQ(amt[0], -(int64_t)((x + e - 1) / e));
	T_EQ(amt[1], (int64_t)(x / e));
	uint32_t users[2] = { 11, 12 };
	int64_t clearing = r->funding_clearing;
	T_EQ(rsx_risk_apply_funding(r, 1, users, amt, 2), 0);
	T_EQ(r->funding_clearing - clearing, -(amt[0] + amt[1]));
	T_CHECK(r->funding_clearing - clearing == 1);
	T_EQ(rsx_risk_audit(r), 0);
}

int main(void)
{
	struct rsx_risk *r = shard_new();
	T_EQ(rsx_risk_init(r), 0);
	configure(r, 5, -1);
	test_legs();
	test_fees_and_tiers(r);
	test_order_table(r);
	test_pretrade_boundary(r);
	test_stream_fill_and_funding(r);
	shard_free(r);
	T_DONE();
}
