/*
 * test_risk.c - the risk core's arithmetic and tables without Python:
 * position legs, fees, progressive tiers, the order slab and hash under
 * collisions, funding rounding, the pre-trade boundary, a fill through the
 * stream path (strided, as CMP delivers it), self-trades, liquidation ids,
 * a liquidation decided and replayed, queries and link framing.
 */
#include <stdlib.h>
#include <string.h>

#include "rsx/errors.h"
#include "rsx/risk.h"
#include "../src/risk_internal.h"	/* internal helpers under test */
#include "t_helpers.h"

#define U 64
#define P 256
#define O 64	/* live orders (the slab); hash of 128 */
#define S 4

static struct rsx_risk *shard_new(void)
{
	struct rsx_risk *r = calloc(1, sizeof(*r));
	r->accounts = aligned_alloc(64, U * sizeof(struct rsx_risk_account));
	r->user_hash = malloc(2 * U * sizeof(int32_t));
	r->positions = calloc(P, sizeof(struct rsx_risk_position));
	r->orders = calloc(O, sizeof(struct rsx_risk_order));
	r->order_hash = malloc(2 * O * sizeof(int32_t));
	memset(r->order_hash, 0xff, 2 * O * sizeof(int32_t));
	r->order_free = -1;
	r->symbols = calloc(S, sizeof(struct rsx_risk_symbol));
	r->vshard_owner = calloc(RSX_RISK_VSHARDS, sizeof(uint16_t));
	r->events = calloc(64, sizeof(struct rsx_risk_event));
	r->liq_list = calloc(U, sizeof(int32_t));
	r->dirty_list = calloc(U, sizeof(int32_t));
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
	r->liq_base_delay_ns = 1000000000;
	r->liq_base_slip_bps = 10;
	r->liq_max_slip_bps = 500;
	r->liq_max_rounds = 10;
	return r;
}

static void shard_free(struct rsx_risk *r)
{
	free(r->accounts), free(r->user_hash), free(r->positions), free(r->orders), free(r->order_hash);
	free(r->symbols), free(r->vshard_owner), free(r->events), free(r->liq_list), free(r->dirty_list);
	free(r);
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

/* Apply one FILL (the symbol's next seq) through the stream path. */
static void apply_fill(struct rsx_risk *r, uint32_t taker, uint32_t maker, int64_t price, int64_t qty)
{
	struct rsx_fill f;
	memset(&f, 0, sizeof(f));
	f.seq = r->symbols[1].tip + 1;
	f.symbol_id = 1;
	f.taker_user_id = taker;
	f.maker_user_id = maker;
	f.price.raw = price;
	f.qty.raw = qty;
	f.taker_side = RSX_SIDE_BUY;
	uint8_t buf[RSX_RECORD_MAX];
	size_t n = frame(buf, RSX_REC_FILL, &f, sizeof(f));
	struct rsx_risk_result res;
	T_EQ(rsx_risk_apply_stream(r, buf, n, 0, &res), n);
	T_EQ(res.stop, 0);
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
	/* fill the slab, remove every other order, find the rest through the hash and the lists */
	int32_t a = rsx_risk_open_account(r, 7);
	T_CHECK(a >= 0);
	rsx_oid_t ids[O];
	struct rsx_order o;
	memset(&o, 0, sizeof(o));
	o.symbol_id = 1;
	o.user_id = 7;
	o.price.raw = 100;
	o.qty.raw = 5;
	for (int i = 0; i < O; i++) {
		memset(&ids[i], 0, sizeof(ids[i]));
		ids[i].b[0] = (uint8_t)i;
		ids[i].b[9] = (uint8_t)(i * 7);
		o.order_id = ids[i];
		T_CHECK(risk_order_track(r, &o, a, 0, 0, RSX_RISK_ORD_PENDING, 3) >= 0);
	}
	T_EQ(r->n_orders, O);
	o.order_id = ids[0];
	T_EQ(risk_order_track(r, &o, a, 0, 0, RSX_RISK_ORD_PENDING, 3), -1);	/* duplicate / full */
	for (int i = 0; i < O; i += 2)
		risk_order_remove(r, risk_order_find(r, &ids[i]));
	for (int i = 1; i < O; i += 2)
		T_CHECK(risk_order_find(r, &ids[i]) >= 0);
	T_EQ(r->n_orders, O / 2);
	T_EQ(rsx_risk_audit(r), 0);
	/* freed slots are reused */
	for (int i = 0; i < O; i += 2) {
		o.order_id = ids[i];
		T_CHECK(risk_order_track(r, &o, a, 0, 0, RSX_RISK_ORD_PENDING, 3) >= 0);
	}
	T_EQ(r->order_hwm, O);
	for (int i = 0; i < O; i++)
		r->orders[risk_order_find(r, &ids[i])].ts_ns = 0;
	/* reconciliation with the ME clock past the deadline releases them all */
	struct rsx_risk_order out[O];
	r->symbols[1].me_ts = 1000;
	/* a bounded sweep: 3 slots per call, resumed where it stopped, back at 0 at the end of a pass */
	T_EQ(rsx_risk_reconcile(r, 10, out, O, 3), 3);
	T_EQ(r->recon_cursor, 3);
	T_EQ(rsx_risk_reconcile(r, 10, out + 3, 2, 3), 2);	/* stopped by cap: slot 5 is next */
	T_EQ(r->recon_cursor, 5);
	T_EQ(rsx_risk_reconcile(r, 10, out + 5, O, 0), O - 5);
	T_EQ(r->recon_cursor, 0);
	T_EQ(out[0].origin, 3);
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
	T_EQ(rsx_risk_submit(r, in, n, 0, 2, 5, me, sizeof(me), &me_len, gw, sizeof(gw), &gw_len, &res), n);
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
	uint8_t buf[2 * RSX_RECORD_MAX];
	memset(buf, 0, sizeof(buf));
	size_t n = frame(buf, RSX_REC_FILL, &f, sizeof(f));
	struct rsx_risk_result res;
	T_EQ(rsx_risk_apply_stream(r, buf, n, 0, &res), n);
	T_EQ(res.stop, 0);
	/* the same seq again, one record per 144-byte row as a CMP batch: skipped */
	T_EQ(rsx_risk_apply_stream(r, buf, RSX_RECORD_MAX, RSX_RECORD_MAX, &res), RSX_RECORD_MAX);
	T_EQ(r->dup_skipped, 1);
	int32_t t = rsx_risk_find_account(r, 11), m = rsx_risk_find_account(r, 12);
	int32_t pt = rsx_risk_find_position(r, t, 1), pm = rsx_risk_find_position(r, m, 1);
	T_EQ(r->positions[pt].net, 3333337);
	T_EQ(r->positions[pm].net, -3333337);
	T_EQ(r->positions[pt].cost, (int64_t)((__int128)10007 * 3333337 / 100));
	/* funding at rate 123457 e8, mark 10013: payer ceil, receiver floor, zero-sum with clearing */
	int32_t idx[2] = { pt, pm }, liq[2];
	T_CHECK(rsx_risk_set_mark(r, 1, 10013, idx, 2, liq, 2) >= 0);
	int64_t amt[2], nets[2] = { r->positions[pt].net, r->positions[pm].net };
	T_EQ(rsx_risk_funding_amounts(r, 1, 10013, 123457, nets, 2, amt), 0);
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


static void test_self_trade(struct rsx_risk *r)
{
	/* a self-trade changes no position and realises nothing; both fees are charged */
	int32_t t = rsx_risk_find_account(r, 11);
	int32_t p = rsx_risk_find_position(r, t, 1);
	int64_t net = r->positions[p].net, cost = r->positions[p].cost, rpnl = r->positions[p].rpnl;
	int64_t coll = r->accounts[t].collateral;
	apply_fill(r, 11, 11, 11000, 1000000);
	T_EQ(r->positions[p].net, net);
	T_EQ(r->positions[p].cost, cost);
	T_EQ(r->positions[p].rpnl, rpnl);
	int64_t v = 110000000;
	T_EQ(r->accounts[t].collateral, coll - risk_fee(v, 5) - risk_fee(v, -1));
	T_EQ(rsx_risk_audit(r), 0);
}

static void test_liq_ids(void)
{
	rsx_oid_t id;
	uint64_t counters[3] = { 1, (UINT64_C(1) << 46) + 5, (UINT64_C(1) << 57) - 1 };
	for (int i = 0; i < 3; i++) {
		rsx_risk_liq_id(&id, UINT64_C(1700000000123456789), 513, counters[i]);
		T_EQ(rsx_risk_liq_id_counter(&id), counters[i]);
		T_EQ(id.b[6] >> 4, 7);	/* version 7 */
		T_EQ(id.b[8] >> 6, 2);	/* RFC 9562 variant */
	}
}

static void test_liquidation_and_replay(struct rsx_risk *r)
{
	/* user 21: long 1 at 100.00 with 6 USD, the fund can pay; the mark drops: round 1 */
	int32_t a = rsx_risk_open_account(r, 21), mm = rsx_risk_open_account(r, 22);
	T_EQ(rsx_risk_move(r, RSX_RISK_EXTERNAL, a, 6000000), 0);
	T_EQ(rsx_risk_move(r, RSX_RISK_EXTERNAL, mm, INT64_C(1) << 40), 0);
	T_EQ(rsx_risk_move(r, RSX_RISK_EXTERNAL, RSX_RISK_FUND, INT64_C(1) << 40), 0);
	apply_fill(r, 21, 22, 10000, 1000000);
	uint8_t buf[RSX_RECORD_MAX];
	size_t n;
	struct rsx_risk_result res;
	int32_t idx[64], found[8];
	uint32_t k = 0;
	for (uint32_t p = 0; p < r->n_positions; p++)
		if (r->positions[p].symbol_id == 1)
			idx[k++] = (int32_t)p;
	int nf = rsx_risk_set_mark(r, 1, 9000, idx, k, found, 8), hit = 0;
	for (int i = 0; i < nf; i++)
		hit += found[i] == a;
	T_EQ(hit, 1);
	found[0] = a;
	static uint8_t liq[600 * RSX_RECORD_MAX], me[600 * RSX_RECORD_MAX];
	struct rsx_risk_liq_out out = { .liq = liq, .liq_cap = sizeof(liq), .me = me, .me_cap = sizeof(me),
					.force_book = -1 };
	T_EQ(rsx_risk_liq_decide(r, found, 1, UINT64_C(5000000000), 0, &out), 0);
	T_EQ(out.stop, RSX_RISK_LIQ_DONE);
	T_EQ(out.rounds, 1);
	T_EQ(out.liq_len, RSX_RECORD_MAX);
	T_EQ(out.me_len, RSX_RECORD_MAX);	/* no tracked order to cancel: only the round's IOC */
	T_CHECK(r->accounts[a].flags & RSX_RISK_ACCT_LIQ);
	T_EQ(r->accounts[a].liq_inflight, 1);
	T_EQ(r->n_liq, 1);
	T_CHECK(r->insurance_reserved > 0);
	T_EQ(r->insurance_reserved, r->accounts[a].liq_reserved);
	uint64_t counter = r->liq_id_counter;
	T_EQ(rsx_risk_audit(r), 0);
	/* not due while its order is in flight */
	int32_t due[4];
	T_EQ(rsx_risk_liq_due(r, UINT64_C(99000000000), due, 4), 0);
	/* replay: the same records rebuild the same state on a copy of the account */
	struct rsx_liquidation l __attribute__((aligned(64)));
	uint16_t type;
	T_CHECK(rsx_record_decode(liq, out.liq_len, &type, &l, sizeof(l)) > 0);
	T_EQ(l.kind, RSX_LIQ_ROUND);
	T_EQ(rsx_risk_liq_id_counter(&l.order_id), counter);
	/* the IOC ends unfilled: the next round is due after its delay */
	struct rsx_order_done d;
	memset(&d, 0, sizeof(d));
	d.seq = r->symbols[1].tip + 1;
	d.symbol_id = 1;
	d.user_id = 21;
	d.order_id = l.order_id;
	n = frame(buf, RSX_REC_ORDER_DONE, &d, sizeof(d));
	T_EQ(rsx_risk_apply_stream(r, buf, n, 0, &res), n);
	T_EQ(r->accounts[a].liq_inflight, 0);
	T_EQ(rsx_risk_liq_due(r, UINT64_C(5000000000), due, 4), 0);
	T_EQ(rsx_risk_liq_due(r, UINT64_C(6000000000), due, 4), 1);
	/* a query for its open orders finds none; its account answers with the flag */
	struct rsx_query q;
	memset(&q, 0, sizeof(q));
	q.user_id = 21;
	q.kind = RSX_QUERY_ACCOUNT;
	q.request_id.b[0] = 9;
	uint8_t in[RSX_RECORD_MAX], gw[8 * RSX_RECORD_MAX], meo[RSX_RECORD_MAX * 2];
	n = frame(in, RSX_REC_QUERY, &q, sizeof(q));
	size_t me_len = 0, gw_len = 0;
	T_EQ(rsx_risk_submit(r, in, n, 0, 0, 7, meo, sizeof(meo), &me_len, gw, sizeof(gw), &gw_len, &res), n);
	struct rsx_account acc __attribute__((aligned(64)));
	int size = rsx_record_decode(gw, gw_len, &type, &acc, sizeof(acc));
	T_EQ(type, RSX_REC_ACCOUNT);
	T_EQ(acc.flags, RSX_ACCOUNT_IN_LIQUIDATION);
	T_EQ(acc.collateral, 6000000 - risk_fee(100000000, 5));
	struct rsx_query_done qd __attribute__((aligned(64)));
	T_CHECK(rsx_record_decode(gw + size, gw_len - (size_t)size, &type, &qd, sizeof(qd)) > 0);
	T_EQ(type, RSX_REC_QUERY_DONE);
	T_EQ(qd.count, 1);
	T_EQ(rsx_risk_audit(r), 0);
}

static void test_link_frame(void)
{
	struct rsx_cancel c;
	uint8_t buf[3 * RSX_RECORD_MAX], out1[3 * RSX_RECORD_MAX], out2[3 * RSX_RECORD_MAX];
	size_t n = 0;
	for (uint32_t sym = 1; sym <= 3; sym++) {
		memset(&c, 0, sizeof(c));
		c.symbol_id = sym == 3 ? 1 : sym;
		n += frame(buf + n, RSX_REC_CANCEL_ORDER, &c, sizeof(c));
	}
	struct rsx_risk_link l1 = { .buf = out1, .cap = sizeof(out1), .stream_id = 0x20000001, .next_seq = 1 };
	struct rsx_risk_link l2 = { .buf = out2, .cap = sizeof(out2), .stream_id = 0x20000002, .next_seq = 1 };
	struct rsx_risk_link *links[3] = { NULL, &l1, &l2 };
	int err;
	T_EQ(rsx_risk_route(buf, n, links, 3, &err), n);
	T_EQ(err, 0);
	T_EQ(l1.next_seq, 3);	/* symbol 1 got two records, seq 1 and 2 */
	T_EQ(l2.next_seq, 2);
	struct rsx_cancel back __attribute__((aligned(64)));
	uint16_t type;
	int size = rsx_record_decode(out1, l1.len, &type, &back, sizeof(back));
	T_CHECK(size > 0);
	T_EQ(back.seq, 1);
	T_EQ(back.stream_id, 0x20000001);
	T_CHECK(rsx_record_decode(out1 + size, l1.len - (size_t)size, &type, &back, sizeof(back)) > 0);
	T_EQ(back.seq, 2);
	/* a symbol without a link stops the routing before it */
	memset(&c, 0, sizeof(c));
	c.symbol_id = 0;
	n = frame(buf, RSX_REC_CANCEL_ORDER, &c, sizeof(c));
	T_EQ(rsx_risk_route(buf, n, links, 3, &err), 0);
	T_EQ(err, RSX_ESTREAM);
	/* framing in place */
	T_EQ(rsx_risk_link_frame(&l2, out1, l1.len), 2);
	T_EQ(l2.next_seq, 4);
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
	test_self_trade(r);
	test_liq_ids();
	test_liquidation_and_replay(r);
	test_link_frame();
	shard_free(r);
	T_DONE();
}
