/*
 * risk_liq.c - funding payments, liquidation round planning and ADL ranking
 * (specs/risk.md 6, 7). Decisions are taken in Python; the arithmetic over
 * positions happens here.
 */
#include "risk_internal.h"

#define E8 100000000

/*
 * floor and ceil of |net| x mark x |rate| / (D x 1e8) without overflowing
 * 128 bits: with q1 = |net| x mark = a D + r1 and t = a |rate| = u 1e8 + w,
 * X / E = u + (w D + r1 |rate|) / (D 1e8), every term below 2^100.
 */
static int funding_amount(const struct rsx_risk_symbol *s, int64_t net, int64_t mark, int64_t rate,
			  int payer, int64_t *out)
{
	__int128 qn = net < 0 ? -(__int128)net : net;
	__int128 ar = rate < 0 ? -(__int128)rate : rate;
	__int128 q1 = qn * mark;
	__int128 a = q1 / s->divisor, r1 = q1 % s->divisor;
	if (a > I64_MAX)
		return RSX_EOVERFLOW;	/* a position worth more than int64 */
	__int128 t = a * ar;
	__int128 u = t / E8, w = t % E8;
	__int128 e = (__int128)s->divisor * E8;
	__int128 inner = w * s->divisor + r1 * ar;
	__int128 x = u + inner / e;
	if (payer && inner % e != 0)
		x += 1;	/* payers round up: the clearing account absorbs the dust */
	if (!fits64(x))
		return RSX_EOVERFLOW;
	*out = payer ? -(int64_t)x : (int64_t)x;
	return 0;
}

int rsx_risk_funding_amounts(const struct rsx_risk *r, uint32_t symbol_id, int64_t mark, int64_t rate_e8,
			     const int64_t *nets, uint32_t n, int64_t *out_amount)
{
	const struct rsx_risk_symbol *s = risk_sym(r, symbol_id);
	if (!s || mark <= 0 || rate_e8 < -E8 || rate_e8 > E8)
		return RSX_EINVALID;
	for (uint32_t i = 0; i < n; i++) {
		/* rate > 0: longs pay shorts */
		int payer = rate_e8 > 0 ? nets[i] > 0 : nets[i] < 0;
		out_amount[i] = 0;
		if (rate_e8 != 0 && nets[i] != 0 && funding_amount(s, nets[i], mark, rate_e8, payer, &out_amount[i]) < 0)
			return RSX_EOVERFLOW;
	}
	return 0;
}

int rsx_risk_apply_funding(struct rsx_risk *r, uint32_t symbol_id, const uint32_t *user_ids,
			   const int64_t *amounts, uint32_t n)
{
	if (!risk_sym(r, symbol_id))
		return RSX_EINVALID;
	/*
	 * In recovery a settlement can be replayed before the fills that opened
	 * the position (funding only adds to collateral, so the order does not
	 * matter): missing accounts and positions are created.
	 */
	__int128 total = 0;
	uint32_t new_accts = 0, new_pos = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (user_ids[i] == RSX_RISK_FUND_USER)
			return RSX_EINVALID;
		int32_t a = rsx_risk_find_account(r, user_ids[i]);
		int32_t p = a >= 0 ? rsx_risk_find_position(r, a, symbol_id) : -1;
		new_accts += a < 0;
		new_pos += p < 0;
		int64_t coll = a >= 0 ? r->accounts[a].collateral : 0;
		int64_t fund = p >= 0 ? r->positions[p].funding : 0;
		if (!fits64((__int128)coll + amounts[i]) || !fits64((__int128)fund + amounts[i]))
			return RSX_EOVERFLOW;
		total += amounts[i];
	}
	if (!fits64((__int128)r->funding_clearing - total))
		return RSX_EOVERFLOW;
	if (r->n_users + new_accts > r->max_users || r->n_positions + new_pos > r->max_positions)
		return RSX_EINVALID;
	for (uint32_t i = 0; i < n; i++) {
		int32_t a = rsx_risk_open_account(r, user_ids[i]);
		int32_t p = rsx_risk_find_position(r, a, symbol_id);
		if (p < 0)
			p = risk_position_create(r, a, symbol_id);
		r->accounts[a].collateral += amounts[i];
		r->accounts[a].version++;
		r->positions[p].funding += amounts[i];
		risk_dirty(r, a, p);
	}
	r->funding_clearing -= (int64_t)total;
	return 0;
}

/* m x (10000 -/+ slip) / 10000 rounded onto the tick grid, away from the mark's side. */
static int liq_price(const struct rsx_risk_symbol *s, int64_t mark, int sell, uint32_t slip, int64_t *out)
{
	int64_t tick = s->cfg.tick_size.raw;
	__int128 px;
	if (sell) {
		int64_t f = slip >= 10000 ? 0 : 10000 - (int64_t)slip;
		px = (__int128)mark * f / 10000;
		px -= px % tick;	/* floor to the tick: at least as aggressive */
		if (px < tick)
			px = tick;
	} else {
		px = ((__int128)mark * (10000 + (int64_t)slip) + 9999) / 10000;
		if (px % tick)
			px += tick - px % tick;	/* ceil to the tick */
	}
	if (!fits64(px))
		return RSX_EOVERFLOW;
	*out = (int64_t)px;
	return 0;
}

int rsx_risk_liq_plan(const struct rsx_risk *r, int32_t acct, uint32_t slip_bps,
		      struct rsx_risk_liq_order *out, uint32_t cap, int64_t *worst)
{
	if (acct < 0 || (uint32_t)acct >= r->n_users)
		return RSX_EINVALID;
	const struct rsx_risk_account *a = &r->accounts[acct];
	__int128 eq = a->collateral;
	uint32_t k = 0;
	for (int32_t p = a->pos_head; p >= 0; p = r->positions[p].next) {
		const struct rsx_risk_position *pos = &r->positions[p];
		const struct rsx_risk_symbol *s = &r->symbols[pos->symbol_id];
		if (pos->net == 0)
			continue;
		if (s->mark <= 0 || s->cfg.status != RSX_SYMBOL_ACTIVE) {
			eq += (__int128)pos->value - pos->cost;	/* cannot be closed now: as valued */
			continue;
		}
		int sell = pos->net > 0;
		int64_t qty = abs64sat(pos->net), px, v;
		if (liq_price(s, s->mark, sell, slip_bps, &px) < 0 || risk_value(s, px, qty, &v) < 0)
			return RSX_EOVERFLOW;
		/* filled at the limit: a long receives V, a short pays V */
		eq += (sell ? (__int128)v : -(__int128)v) - pos->cost;
		eq -= risk_fee(v, (int32_t)s->liq_fee_bps);
		if (k >= cap)
			return RSX_EINVALID;
		out[k].symbol_id = pos->symbol_id;
		out[k].side = sell ? RSX_SIDE_SELL : RSX_SIDE_BUY;
		out[k].qty = qty;
		out[k].price = px;
		out[k].mark = s->mark;
		k++;
	}
	__int128 w = eq < 0 ? -eq : 0;
	if (!fits64(w))
		return RSX_EOVERFLOW;
	*worst = (int64_t)w;
	return (int)k;
}

static int64_t clamp128(__int128 v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : (int64_t)v;
}

int rsx_risk_adl_candidates(const struct rsx_risk *r, uint32_t symbol_id, int sign, const int32_t *pos_index,
			    uint32_t n, int32_t *out_pos, int64_t *out_score, uint32_t cap)
{
	const int64_t lim = 1000000000;	/* 1e9: the product of two fits int64 */
	uint32_t k = 0;
	for (uint32_t i = 0; i < n && k < cap; i++) {
		int32_t p = pos_index[i];
		if (p < 0 || (uint32_t)p >= r->n_positions)
			continue;
		const struct rsx_risk_position *pos = &r->positions[p];
		if (pos->symbol_id != symbol_id || pos->net == 0 || (pos->net > 0) != (sign > 0))
			continue;
		const struct rsx_risk_account *a = &r->accounts[pos->acct];
		__int128 upnl = (__int128)pos->value - pos->cost;
		/* eligible: not in liquidation, solvent, and profitable on this position */
		if ((a->flags & RSX_RISK_ACCT_LIQ) || risk_liquidatable(a) || upnl <= 0)
			continue;
		__int128 entry = pos->cost < 0 ? -(__int128)pos->cost : pos->cost;
		int64_t ratio = clamp128(upnl * 10000 / (entry > 0 ? entry : 1), 1, lim);
		__int128 eq = risk_equity(a);
		int64_t lev = clamp128((__int128)abs64sat(pos->value) * 10000 / (eq > 1 ? eq : 1), 0, lim);
		out_pos[k] = p;
		out_score[k] = ratio * lev;
		k++;
	}
	return (int)k;
}

int64_t rsx_risk_fund_available(const struct rsx_risk *r, int32_t acct)
{
	__int128 others = (__int128)r->insurance_reserved - (acct >= 0 ? r->accounts[acct].liq_reserved : 0);
	return sat64((__int128)r->insurance_fund - others);
}
