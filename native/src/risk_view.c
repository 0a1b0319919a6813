/*
 * risk_view.c - what risk tells the gateways about a user: ACCOUNT, POSITION
 * and OPEN_ORDER records, as query answers (specs/risk.md 3.3) or pushes of
 * the accounts changed since the last push (specs/risk.md 15.1).
 */
#include "risk_internal.h"

size_t risk_frame(void *out, uint16_t type, const void *payload, size_t len)
{
	int n = rsx_record_frame(out, RSX_RECORD_MAX, type, payload, len);
	return n > 0 ? (size_t)n : 0;	/* the caller checked the room; payloads are valid */
}

int rsx_risk_account_record(const struct rsx_risk *r, int32_t acct, const rsx_oid_t *request_id, uint64_t ts_ns,
			    void *out, size_t cap)
{
	struct rsx_risk_margin m;
	if (cap < RSX_RECORD_MAX || rsx_risk_margin(r, acct, &m) < 0)
		return RSX_EINVALID;
	const struct rsx_risk_account *a = &r->accounts[acct];
	struct rsx_account rec __attribute__((aligned(64)));
	memset(&rec, 0, sizeof(rec));
	rec.ts_ns = ts_ns;
	rec.stream_id = 0x80000000u | r->shard_id;
	rec.user_id = a->user_id;
	rec.flags = a->flags & RSX_RISK_ACCT_LIQ ? RSX_ACCOUNT_IN_LIQUIDATION : 0;
	if (request_id)
		rec.request_id = *request_id;
	rec.collateral = a->collateral;
	rec.equity = m.equity;
	rec.unrealized_pnl = sat64(a->value_sum - a->cost_sum);
	rec.initial_margin = m.im;
	rec.maintenance_margin = m.mm;
	rec.frozen = a->frozen;
	rec.available = m.available;
	rec.withdrawable = m.withdrawable;
	return (int)risk_frame(out, RSX_REC_ACCOUNT, &rec, sizeof(rec));
}

/*
 * equity(p) - MM(p) with position pos valued at p and the account's other
 * positions as they are: non-decreasing in p for a long, non-increasing for a
 * short (margin rates are below 100 %).
 */
static __int128 margin_gap(const struct rsx_risk *r, const struct rsx_risk_position *pos,
			   const struct rsx_risk_symbol *s, int64_t p)
{
	const struct rsx_risk_account *a = &r->accounts[pos->acct];
	__int128 v = floordiv128((__int128)pos->net * p, s->divisor);
	__int128 av = v < 0 ? -v : v;
	int64_t mm = av > I64_MAX ? I64_MAX : risk_tier(s, (int64_t)av, 1);
	__int128 eq = risk_equity(a) - pos->value + v;
	return eq - ((__int128)a->mm_sum - pos->mm + mm);
}

int64_t rsx_risk_liq_price(const struct rsx_risk *r, int32_t p)
{
	if (p < 0 || (uint32_t)p >= r->n_positions)
		return 0;
	const struct rsx_risk_position *pos = &r->positions[p];
	const struct rsx_risk_symbol *s = risk_sym(r, pos->symbol_id);
	if (!s || pos->net == 0)
		return 0;
	/* search prices whose value fits int64 */
	__int128 top = ((__int128)I64_MAX * s->divisor) / (pos->net < 0 ? -(__int128)pos->net : pos->net);
	int64_t hi = top > I64_MAX ? I64_MAX : (int64_t)top, lo = 1;
	if (pos->net > 0) {
		/* a long is liquidatable at or below the price where the gap turns negative */
		if (margin_gap(r, pos, s, lo) >= 0)
			return 0;
		if (margin_gap(r, pos, s, hi) < 0)
			return hi;
		while (hi - lo > 1) {	/* gap(lo) < 0 <= gap(hi) */
			int64_t mid = lo + (hi - lo) / 2;
			if (margin_gap(r, pos, s, mid) < 0)
				lo = mid;
			else
				hi = mid;
		}
		return lo;
	}
	if (margin_gap(r, pos, s, lo) < 0)
		return 0;	/* already under water at any price */
	if (margin_gap(r, pos, s, hi) >= 0)
		return 0;
	while (hi - lo > 1) {	/* gap(lo) >= 0 > gap(hi) */
		int64_t mid = lo + (hi - lo) / 2;
		if (margin_gap(r, pos, s, mid) >= 0)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

int rsx_risk_position_record(const struct rsx_risk *r, int32_t p, const rsx_oid_t *request_id, uint64_t ts_ns,
			     void *out, size_t cap)
{
	if (cap < RSX_RECORD_MAX || p < 0 || (uint32_t)p >= r->n_positions)
		return RSX_EINVALID;
	const struct rsx_risk_position *pos = &r->positions[p];
	struct rsx_position rec __attribute__((aligned(64)));
	memset(&rec, 0, sizeof(rec));
	rec.ts_ns = ts_ns;
	rec.stream_id = 0x80000000u | r->shard_id;
	rec.symbol_id = pos->symbol_id;
	rec.user_id = r->accounts[pos->acct].user_id;
	if (request_id)
		rec.request_id = *request_id;
	rec.qty = pos->net;
	rec.entry_cost = pos->cost;
	rec.realized_pnl = pos->rpnl;
	rec.mark_px.raw = pos->symbol_id < r->max_symbols ? r->symbols[pos->symbol_id].mark : 0;
	rec.unrealized_pnl = sat64((__int128)pos->value - pos->cost);
	rec.liq_px.raw = rsx_risk_liq_price(r, p);
	rec.initial_margin = pos->im;
	rec.maintenance_margin = pos->mm;
	return (int)risk_frame(out, RSX_REC_POSITION, &rec, sizeof(rec));
}

static size_t open_order_record(const struct rsx_risk *r, const struct rsx_risk_order *o, const rsx_oid_t *request_id,
				uint64_t ts_ns, void *out)
{
	struct rsx_open_order rec __attribute__((aligned(64)));
	memset(&rec, 0, sizeof(rec));
	rec.ts_ns = ts_ns;
	rec.stream_id = 0x80000000u | r->shard_id;
	rec.symbol_id = o->symbol_id;
	rec.user_id = r->accounts[o->acct].user_id;
	rec.side = o->side;
	rec.tif = o->tif;
	rec.flags = o->flags & RSX_RISK_ORD_LIQ ? RSX_ORDER_REDUCE_ONLY | RSX_ORDER_LIQUIDATION : 0;
	rec.state = o->state == RSX_RISK_ORD_ACKED ? 1 : 0;
	rec.request_id = *request_id;
	rec.order_id = o->oid;
	rec.price.raw = o->price;
	rec.remaining_qty.raw = o->remaining;
	rec.filled_qty.raw = o->filled;
	memcpy(rec.client_id, o->client_id, sizeof(rec.client_id));
	rec.placed_ts_ns = o->placed_ts_ns;
	return risk_frame(out, RSX_REC_OPEN_ORDER, &rec, sizeof(rec));
}

static int query_position_wanted(const struct rsx_risk_position *pos, uint32_t symbol_id)
{
	return (symbol_id == 0 || pos->symbol_id == symbol_id) && (pos->net != 0 || pos->n_orders != 0);
}

int risk_query(struct rsx_risk *r, const struct rsx_query *q, uint64_t now, uint8_t *out, size_t cap, size_t *len)
{
	struct rsx_query_done done __attribute__((aligned(64)));
	int32_t acct = -1;
	uint32_t want = 0;
	memset(&done, 0, sizeof(done));
	done.ts_ns = now;
	done.stream_id = 0x80000000u | r->shard_id;
	done.symbol_id = q->symbol_id;
	done.user_id = q->user_id;
	done.kind = q->kind;
	done.request_id = q->request_id;
	if (!rsx_risk_owns(r, q->user_id))
		done.reason = RSX_REASON_WRONG_SHARD;
	else if (q->user_id == RSX_RISK_FUND_USER || (acct = rsx_risk_find_account(r, q->user_id)) < 0)
		done.reason = RSX_REASON_UNKNOWN_USER;
	else if (q->kind < RSX_QUERY_OPEN_ORDERS || q->kind > RSX_QUERY_ACCOUNT)
		done.reason = RSX_REASON_BAD_REQUEST;
	if (!done.reason) {
		const struct rsx_risk_account *a = &r->accounts[acct];
		if (q->kind == RSX_QUERY_ACCOUNT) {
			want = 1;
		} else {
			for (int32_t p = a->pos_head; p >= 0; p = r->positions[p].next) {
				const struct rsx_risk_position *pos = &r->positions[p];
				if (q->kind == RSX_QUERY_POSITIONS)
					want += query_position_wanted(pos, q->symbol_id);
				else if (q->symbol_id == 0 || pos->symbol_id == q->symbol_id)
					want += (uint32_t)pos->n_orders;
			}
		}
	}
	size_t room = cap - *len, need = ((size_t)want + 1) * RSX_RECORD_MAX;
	if (need > room && *len > 0)
		return RSX_RISK_STOP_OUT;
	uint32_t fit = room / RSX_RECORD_MAX - 1;	/* an answer longer than an empty buffer is cut */
	if (want > fit) {
		want = fit;
		done.reason = RSX_REASON_OVERLOADED;
	}
	uint8_t *w = out + *len;
	uint32_t count = 0;
	if (want && q->kind == RSX_QUERY_ACCOUNT) {
		w += rsx_risk_account_record(r, acct, &q->request_id, now, w, RSX_RECORD_MAX);
		count = 1;
	} else if (want) {
		const struct rsx_risk_account *a = &r->accounts[acct];
		for (int32_t p = a->pos_head; p >= 0 && count < want; p = r->positions[p].next) {
			const struct rsx_risk_position *pos = &r->positions[p];
			if (q->kind == RSX_QUERY_POSITIONS) {
				if (query_position_wanted(pos, q->symbol_id)) {
					w += rsx_risk_position_record(r, p, &q->request_id, now, w, RSX_RECORD_MAX);
					count++;
				}
				continue;
			}
			if (q->symbol_id != 0 && pos->symbol_id != q->symbol_id)
				continue;
			for (int32_t k = pos->order_head; k >= 0 && count < want; k = r->orders[k].next) {
				w += open_order_record(r, &r->orders[k], &q->request_id, now, w);
				count++;
			}
		}
	}
	done.count = count;
	w += risk_frame(w, RSX_REC_QUERY_DONE, &done, sizeof(done));
	*len = (size_t)(w - out);
	return 0;
}

int rsx_risk_push(struct rsx_risk *r, uint64_t ts_ns, void *out, size_t cap, size_t *len)
{
	uint8_t *base = out;
	uint32_t k = 0;
	for (; k < r->n_dirty; k++) {
		int32_t acct = r->dirty_list[k];
		struct rsx_risk_account *a = &r->accounts[acct];
		size_t need = RSX_RECORD_MAX;
		for (int32_t p = a->pos_head; p >= 0; p = r->positions[p].next)
			need += r->positions[p].flags & RSX_RISK_POS_DIRTY ? RSX_RECORD_MAX : 0;
		if (cap - *len < need)
			break;
		*len += (size_t)rsx_risk_account_record(r, acct, NULL, ts_ns, base + *len, RSX_RECORD_MAX);
		for (int32_t p = a->pos_head; p >= 0; p = r->positions[p].next) {
			struct rsx_risk_position *pos = &r->positions[p];
			if (!(pos->flags & RSX_RISK_POS_DIRTY))
				continue;
			*len += (size_t)rsx_risk_position_record(r, p, NULL, ts_ns, base + *len, RSX_RECORD_MAX);
			pos->flags &= ~(uint32_t)RSX_RISK_POS_DIRTY;
		}
		a->flags &= ~(uint32_t)RSX_RISK_ACCT_DIRTY;
	}
	if (k) {
		memmove(r->dirty_list, r->dirty_list + k, (size_t)(r->n_dirty - k) * sizeof(int32_t));
		r->n_dirty -= k;
	}
	return (int)k;
}
