/*
 * risk_fill.c - position accounting for fills (specs/risk.md 3.1, 3.4):
 * open, add, reduce, close, flip, self-trade (no position change, two fees),
 * fees and ledgers; ADL trades.
 *
 * Every fill is applied all-or-nothing: both legs are computed into locals,
 * every result is checked to fit int64, and only then is anything written.
 */
#include "risk_internal.h"

int risk_leg(const struct rsx_risk_symbol *s, int64_t net, int64_t cost, int dir, int64_t price, int64_t qty,
	     int64_t value, int64_t *new_net, int64_t *new_cost, int64_t *realised)
{
	*realised = 0;
	if (net == 0 || (net > 0) == (dir > 0)) {
		/* open or add */
		if (__builtin_add_overflow(net, dir > 0 ? qty : -qty, new_net))
			return RSX_EOVERFLOW;
		if (__builtin_add_overflow(cost, dir > 0 ? value : -value, new_cost))
			return RSX_EOVERFLOW;
		return 0;
	}
	/* reduce, close or flip */
	__int128 q_abs = net < 0 ? -(__int128)net : (__int128)net;
	__int128 c_abs = cost < 0 ? -(__int128)cost : (__int128)cost;
	int64_t close = (__int128)qty < q_abs ? qty : (int64_t)q_abs;
	int64_t close_cost = (int64_t)(q_abs <= I64_MAX ? div128(c_abs * close, (int64_t)q_abs)
						: c_abs * close / q_abs);	/* <= |cost|: fits */
	int64_t v_close = value;
	if (close != qty && risk_value(s, price, close, &v_close) < 0)
		return RSX_EOVERFLOW;	/* cannot happen: close < qty */
	__int128 r = net > 0 ? (__int128)v_close - close_cost : (__int128)close_cost - v_close;
	__int128 nc = net > 0 ? (__int128)cost - close_cost : (__int128)cost + close_cost;
	__int128 nn = (__int128)net + (dir > 0 ? close : -close);
	if (close < qty) {
		/* flip: the rest opens the other side with the rest of the fill's value */
		int64_t rest = qty - close;
		nn = dir > 0 ? rest : -(__int128)rest;
		nc = dir > 0 ? (__int128)value - v_close : -((__int128)value - v_close);
	}
	if (!fits64(r) || !fits64(nc) || !fits64(nn))
		return RSX_EOVERFLOW;
	*new_net = (int64_t)nn;
	*new_cost = (int64_t)nc;
	*realised = (int64_t)r;
	return 0;
}

int64_t risk_fee(int64_t value, int32_t bps)
{
	/* value >= 0, |bps| <= 10000: the product fits, the fee is <= value */
	if (bps >= 0)
		return (int64_t)div128((__int128)value * bps, 10000);
	return -(int64_t)div128((__int128)value * -(int64_t)bps, 10000);	/* rebate rounded down in magnitude */
}

void risk_order_filled(struct rsx_risk *r, const rsx_oid_t *oid, uint32_t user_id, int64_t qty)
{
	int32_t slot = risk_order_find(r, oid);
	if (slot < 0)
		return;
	struct rsx_risk_order *o = &r->orders[slot];
	if (o->acct < 0 || r->accounts[o->acct].user_id != user_id)
		return;	/* another user's id: not ours to touch */
	int64_t take = qty < o->remaining ? qty : o->remaining;
	o->remaining -= take;
	o->filled += take;
	if (o->pos >= 0)
		r->positions[o->pos].open_qty -= take;
	if (o->remaining == 0 && !(o->flags & RSX_RISK_ORD_LIQ)) {
		risk_order_remove(r, slot);	/* its terminal event will find nothing */
		return;
	}
	if (!(o->flags & RSX_RISK_ORD_LIQ)) {
		const struct rsx_risk_symbol *s = &r->symbols[o->symbol_id];
		int64_t need = risk_need(r, s, o->price, o->remaining);
		risk_frozen_add(r, o->acct, need - o->need);
		o->need = need;
	}
}

/* The state of one side of a trade while a fill is being computed. */
struct leg_state {
	uint32_t user_id;
	int32_t acct;		/* -1: account to create */
	int32_t pos;		/* -1: position to create */
	int64_t net, cost;	/* position after the leg */
	int64_t rpnl, fees;	/* position totals after the leg */
	int64_t realised;	/* this leg */
	int64_t fee;		/* this leg */
	int64_t to_fund;	/* ledger shares of fee */
	int64_t to_revenue;
};

static void leg_load(const struct rsx_risk *r, uint32_t symbol_id, uint32_t user_id, struct leg_state *L)
{
	memset(L, 0, sizeof(*L));
	L->user_id = user_id;
	L->acct = rsx_risk_find_account(r, user_id);
	L->pos = L->acct >= 0 ? rsx_risk_find_position(r, L->acct, symbol_id) : -1;
	if (L->pos >= 0) {
		const struct rsx_risk_position *p = &r->positions[L->pos];
		L->net = p->net;
		L->cost = p->cost;
		L->rpnl = p->rpnl;
		L->fees = p->fees;
	}
}

static int leg_fee(const struct rsx_risk_symbol *s, struct leg_state *L, int64_t value, int32_t bps, int liq)
{
	L->fee = risk_fee(value, bps);
	L->to_fund = L->to_revenue = 0;
	if (liq) {
		L->to_fund = L->fee;
	} else if (L->fee > 0) {
		L->to_fund = (int64_t)div128((__int128)L->fee * s->ins_share_bps, 10000);
		L->to_revenue = L->fee - L->to_fund;
	} else {
		L->to_revenue = L->fee;	/* a rebate is paid out of revenue */
	}
	if (__builtin_add_overflow(L->fees, L->fee, &L->fees))
		return RSX_EOVERFLOW;
	return 0;
}

static int leg_apply(const struct rsx_risk_symbol *s, struct leg_state *L, int dir, int64_t price, int64_t qty,
		     int64_t value)
{
	int64_t nn, nc, re;
	if (risk_leg(s, L->net, L->cost, dir, price, qty, value, &nn, &nc, &re) < 0)
		return RSX_EOVERFLOW;
	L->net = nn;
	L->cost = nc;
	L->realised += re;	/* a self-trade adds two legs (each fits; the sum is checked below) */
	if (__builtin_add_overflow(L->rpnl, re, &L->rpnl))
		return RSX_EOVERFLOW;
	return 0;
}

/* Make room: accounts and positions a commit will create. */
static int legs_capacity(const struct rsx_risk *r, const struct leg_state *a, const struct leg_state *b)
{
	uint32_t accts = 0, poss = 0;
	if (a && a->acct < 0)
		accts++;
	if (b && b->acct < 0 && !(a && a->user_id == b->user_id))
		accts++;
	if (a && a->pos < 0)
		poss++;
	if (b && b->pos < 0 && !(a && a->user_id == b->user_id))
		poss++;
	if (r->n_users + accts > r->max_users || r->n_positions + poss > r->max_positions)
		return -1;
	return 0;
}

static void leg_commit(struct rsx_risk *r, uint32_t symbol_id, struct leg_state *L, int64_t coll_delta,
		       uint64_t seq, int legs)
{
	if (L->acct < 0)
		L->acct = rsx_risk_open_account(r, L->user_id);
	if (L->pos < 0)
		L->pos = risk_position_create(r, L->acct, symbol_id);
	struct rsx_risk_account *a = &r->accounts[L->acct];
	struct rsx_risk_position *p = &r->positions[L->pos];
	risk_pos_commit(r, L->pos, L->net, L->cost);
	p->rpnl = L->rpnl;
	p->fees = L->fees;
	if (seq)
		p->last_seq = seq;
	p->version += (uint64_t)legs;
	a->collateral += coll_delta;	/* checked by the caller */
	a->version++;
	risk_dirty(r, L->acct, L->pos);
}

int risk_apply_fill(struct rsx_risk *r, const struct rsx_fill *f)
{
	struct rsx_risk_symbol *s = &r->symbols[f->symbol_id];
	int64_t price = f->price.raw, qty = f->qty.raw, value;
	if (price <= 0 || qty <= 0 || f->taker_side > RSX_SIDE_SELL)
		return RSX_RISK_STOP_RECORD;
	if (risk_value(s, price, qty, &value) < 0)
		return RSX_RISK_STOP_OVERFLOW;
	int tdir = f->taker_side == RSX_SIDE_BUY ? 1 : -1;
	int own_t = rsx_risk_owns(r, f->taker_user_id) && f->taker_user_id != RSX_RISK_FUND_USER;
	int own_m = rsx_risk_owns(r, f->maker_user_id) && f->maker_user_id != RSX_RISK_FUND_USER;
	int self = f->taker_user_id == f->maker_user_id;
	int liq = (f->taker_flags & RSX_ORDER_LIQUIDATION) != 0;
	struct leg_state T, M;

	/*
	 * A self-trade bought and sold the same quantity at the same price: the
	 * position does not change (applying the legs one after the other would
	 * realise part of the open PnL), both fees are charged.
	 */
	if (own_t) {
		leg_load(r, f->symbol_id, f->taker_user_id, &T);
		if ((!self && leg_apply(s, &T, tdir, price, qty, value) < 0) ||
		    leg_fee(s, &T, value, liq ? (int32_t)s->liq_fee_bps : s->cfg.taker_fee_bps, liq) < 0)
			return RSX_RISK_STOP_OVERFLOW;
	}
	if (own_m) {
		if (self) {
			M = T;	/* one account: the maker fee adds to the taker's */
			M.realised = 0;
		} else {
			leg_load(r, f->symbol_id, f->maker_user_id, &M);
		}
		if ((!self && leg_apply(s, &M, -tdir, price, qty, value) < 0) ||
		    leg_fee(s, &M, value, s->cfg.maker_fee_bps, 0) < 0)
			return RSX_RISK_STOP_OVERFLOW;
	}
	/* collateral and ledgers, checked before anything is written */
	__int128 fund = r->insurance_fund, rev = r->fee_revenue;
	__int128 ct = 0, cm = 0;
	if (own_t) {
		ct = (__int128)T.realised - T.fee;
		fund += T.to_fund, rev += T.to_revenue;
	}
	if (own_m) {
		cm = (__int128)M.realised - M.fee;
		fund += M.to_fund, rev += M.to_revenue;
	}
	if (own_t && own_m && self) {
		ct += cm;	/* one account, two legs */
		if (!fits64((__int128)(T.acct >= 0 ? r->accounts[T.acct].collateral : 0) + ct))
			return RSX_RISK_STOP_OVERFLOW;
	} else {
		if (own_t && !fits64((__int128)(T.acct >= 0 ? r->accounts[T.acct].collateral : 0) + ct))
			return RSX_RISK_STOP_OVERFLOW;
		if (own_m && !fits64((__int128)(M.acct >= 0 ? r->accounts[M.acct].collateral : 0) + cm))
			return RSX_RISK_STOP_OVERFLOW;
	}
	if (!fits64(fund) || !fits64(rev))
		return RSX_RISK_STOP_OVERFLOW;
	if (legs_capacity(r, own_t ? &T : NULL, own_m ? &M : NULL) < 0)
		return RSX_RISK_STOP_FULL;

	/* commit */
	if (own_t && own_m && self) {
		M.acct = T.acct, M.pos = T.pos;
		leg_commit(r, f->symbol_id, &M, (int64_t)ct, f->seq, 2);
		T.acct = M.acct;
	} else {
		if (own_t)
			leg_commit(r, f->symbol_id, &T, (int64_t)ct, f->seq, 1);
		if (own_m)
			leg_commit(r, f->symbol_id, &M, (int64_t)cm, f->seq, 1);
	}
	r->insurance_fund = (int64_t)fund;
	r->fee_revenue = (int64_t)rev;
	if (own_t)
		risk_order_filled(r, &f->taker_order_id, f->taker_user_id, qty);
	if (own_m)
		risk_order_filled(r, &f->maker_order_id, f->maker_user_id, qty);
	s->n_fills++;
	r->fills_applied++;
	if (!r->replay) {
		if (own_t && !(r->accounts[T.acct].flags & RSX_RISK_ACCT_LIQ) && risk_liquidatable(&r->accounts[T.acct]))
			risk_event(r, RSX_RISK_EV_LIQUIDATABLE, 0, f->symbol_id, T.acct, 0, 0, NULL);
		if (own_m && !self && !(r->accounts[M.acct].flags & RSX_RISK_ACCT_LIQ) &&
		    risk_liquidatable(&r->accounts[M.acct]))
			risk_event(r, RSX_RISK_EV_LIQUIDATABLE, 0, f->symbol_id, M.acct, 0, 0, NULL);
	}
	return 0;
}

int rsx_risk_synthetic_fill(struct rsx_risk *r, uint32_t symbol_id, int32_t buyer, int32_t seller,
			    int64_t price, int64_t qty)
{
	struct rsx_risk_symbol *s = risk_sym(r, symbol_id);
	int64_t value;
	if (!s || buyer == seller || buyer < 0 || seller < 0 || (uint32_t)buyer >= r->n_users ||
	    (uint32_t)seller >= r->n_users || price <= 0 || qty <= 0)
		return RSX_EINVALID;
	if (risk_value(s, price, qty, &value) < 0)
		return RSX_EOVERFLOW;
	struct leg_state B, S;
	leg_load(r, symbol_id, r->accounts[buyer].user_id, &B);
	leg_load(r, symbol_id, r->accounts[seller].user_id, &S);
	if (leg_apply(s, &B, 1, price, qty, value) < 0 || leg_apply(s, &S, -1, price, qty, value) < 0)
		return RSX_EOVERFLOW;
	if (!fits64((__int128)r->accounts[buyer].collateral + B.realised) ||
	    !fits64((__int128)r->accounts[seller].collateral + S.realised))
		return RSX_EOVERFLOW;
	if (legs_capacity(r, &B, &S) < 0)
		return RSX_EINVALID;
	leg_commit(r, symbol_id, &B, B.realised, 0, 1);
	leg_commit(r, symbol_id, &S, S.realised, 0, 1);
	return 0;
}

int rsx_risk_preview_close(const struct rsx_risk *r, int32_t acct, uint32_t symbol_id, const int64_t *qtys,
			   uint32_t n, int64_t price, int64_t *delta)
{
	const struct rsx_risk_symbol *s = risk_sym(r, symbol_id);
	if (!s || price <= 0)
		return RSX_EINVALID;
	int32_t p = rsx_risk_find_position(r, acct, symbol_id);
	if (p < 0)
		return RSX_EINVALID;
	int64_t net = r->positions[p].net, cost = r->positions[p].cost;
	__int128 sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		int64_t q = qtys[i], value, nn, nc, re;
		if (q <= 0 || net == 0 || q > abs64sat(net))
			return RSX_EINVALID;
		if (risk_value(s, price, q, &value) < 0)
			return RSX_EOVERFLOW;
		if (risk_leg(s, net, cost, net > 0 ? -1 : 1, price, q, value, &nn, &nc, &re) < 0)
			return RSX_EOVERFLOW;
		net = nn, cost = nc, sum += re;
	}
	if (!fits64(sum))
		return RSX_EOVERFLOW;
	*delta = (int64_t)sum;
	return 0;
}
