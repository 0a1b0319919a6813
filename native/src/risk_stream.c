/*
 * risk_stream.c - the record-driven paths: ME streams (fills, order events,
 * config, BBO), gateway requests (the pre-trade check) and reconciliation of
 * reservations the matching engine never acknowledged (specs/risk.md 3.3,
 * 3.5, 8.3).
 */
#include "risk_internal.h"

/* Payloads are not aligned inside a buffer: decode into this aligned union. */
union payload {
	struct rsx_prefix prefix;
	struct rsx_order order;
	struct rsx_cancel cancel;
	struct rsx_cancel_all cancel_all;
	struct rsx_amend amend;
	struct rsx_order_failed failed;
	struct rsx_order_inserted inserted;
	struct rsx_fill fill;
	struct rsx_order_done done;
	struct rsx_order_cancelled cancelled;
	struct rsx_order_amended amended;
	struct rsx_bbo bbo;
	struct rsx_config config;
	struct rsx_heartbeat heartbeat;
	struct rsx_query query;
	uint8_t bytes[RSX_PAYLOAD_MAX];
};

static void order_normalise(struct rsx_risk *r, int32_t slot)
{
	struct rsx_risk_order *o = &r->orders[slot];
	if (o->flags & RSX_RISK_ORD_LIQ)
		return;
	int64_t need = risk_need(r, &r->symbols[o->symbol_id], o->price, o->remaining);
	risk_frozen_add(r, o->acct, need - o->need);
	o->need = need;
}

int32_t risk_order_track(struct rsx_risk *r, const struct rsx_order *src, int32_t acct, uint8_t flags,
			   uint64_t ts, uint8_t state, uint16_t origin)
{
	int32_t p = rsx_risk_find_position(r, acct, src->symbol_id);
	if (p < 0 && r->n_positions >= r->max_positions)
		return -1;
	if (r->n_orders >= r->max_orders)
		return -1;
	if (p < 0)
		p = risk_position_create(r, acct, src->symbol_id);
	int32_t slot = risk_order_insert(r, &src->order_id, p);
	if (slot < 0)
		return -1;
	struct rsx_risk_order *o = &r->orders[slot];
	o->acct = acct;
	o->symbol_id = src->symbol_id;
	o->state = state;
	o->side = src->side;
	o->tif = src->tif;
	o->flags = flags;
	o->price = src->price.raw;
	o->remaining = src->qty.raw;
	o->ts_ns = ts;
	o->placed_ts_ns = src->gateway_ts_ns;
	o->origin = origin;
	memcpy(o->client_id, src->client_id, sizeof(o->client_id));
	o->need = flags & RSX_RISK_ORD_LIQ ? 0 : risk_need(r, &r->symbols[src->symbol_id], o->price, o->remaining);
	risk_frozen_add(r, acct, o->need);
	r->accounts[acct].n_orders++;
	r->positions[p].open_qty += o->remaining;
	r->positions[p].n_orders++;
	return slot;
}

/* The owned, existing-or-created account of an order event; -1 = not ours, -2 = table full. */
static int32_t event_account(struct rsx_risk *r, uint32_t user_id)
{
	if (user_id == RSX_RISK_FUND_USER || !rsx_risk_owns(r, user_id))
		return -1;
	int32_t a = rsx_risk_open_account(r, user_id);
	return a < 0 ? -2 : a;
}

/* The order's one terminal record: release it (a second terminal finds nothing: a no-op). */
static void order_terminal(struct rsx_risk *r, const rsx_oid_t *oid, uint32_t user_id)
{
	int32_t slot = risk_order_find(r, oid);
	if (slot < 0 || r->accounts[r->orders[slot].acct].user_id != user_id) {
		if (rsx_risk_owns(r, user_id))
			r->unknown_terminals++;
		return;
	}
	risk_order_remove(r, slot);	/* a liquidation order's end counts in liq_inflight */
}

/* One ME record (seq already checked); 0 or a stop code. */
static int me_record(struct rsx_risk *r, uint16_t type, union payload *pl)
{
	struct rsx_risk_symbol *s;
	int32_t a, slot;

	switch (type) {
	case RSX_REC_FILL:
		return risk_apply_fill(r, &pl->fill);

	case RSX_REC_ORDER_ACCEPTED: {
		const struct rsx_order *o = &pl->order;
		if (o->flags & RSX_ORDER_REDUCE_ONLY && !(o->flags & RSX_ORDER_LIQUIDATION))
			return 0;	/* never reserved */
		a = event_account(r, o->user_id);
		if (a == -1)
			return 0;
		if (a == -2)
			return RSX_RISK_STOP_FULL;
		slot = risk_order_find(r, &o->order_id);
		if (slot >= 0) {
			if (r->orders[slot].acct != a)
				return 0;	/* the id is another user's: ignore */
			r->orders[slot].state = RSX_RISK_ORD_ACKED;
			order_normalise(r, slot);
			return 0;
		}
		uint8_t fl = o->flags & RSX_ORDER_LIQUIDATION ? RSX_RISK_ORD_LIQ : 0;
		if (risk_order_track(r, o, a, fl, o->ts_ns, RSX_RISK_ORD_ACKED, RSX_RISK_NO_ORIGIN) < 0)
			return RSX_RISK_STOP_FULL;
		if (fl && r->accounts[a].liq_inflight < UINT16_MAX)
			r->accounts[a].liq_inflight++;	/* its end will count down */
		r->late_acks++;
		risk_event(r, RSX_RISK_EV_LATE_ACK, 0, o->symbol_id, a, o->qty.raw, 0, &o->order_id);
		return 0;
	}

	case RSX_REC_ORDER_INSERTED:
		slot = risk_order_find(r, &pl->inserted.order_id);
		if (slot >= 0 && r->orders[slot].state == RSX_RISK_ORD_PENDING &&
		    r->accounts[r->orders[slot].acct].user_id == pl->inserted.user_id)
			r->orders[slot].state = RSX_RISK_ORD_ACKED;
		return 0;

	case RSX_REC_ORDER_FAILED: {
		const struct rsx_order_failed *f = &pl->failed;
		if (f->request_type == RSX_REC_NEW_ORDER || f->request_type == 0) {
			order_terminal(r, &f->order_id, f->user_id);
		} else if (f->request_type == RSX_REC_AMEND_ORDER) {
			slot = risk_order_find(r, &f->order_id);
			if (slot >= 0 && r->accounts[r->orders[slot].acct].user_id == f->user_id)
				order_normalise(r, slot);	/* the amend surcharge goes back */
		}
		return 0;
	}

	case RSX_REC_ORDER_DONE:
		order_terminal(r, &pl->done.order_id, pl->done.user_id);
		return 0;

	case RSX_REC_ORDER_CANCELLED:
		order_terminal(r, &pl->cancelled.order_id, pl->cancelled.user_id);
		return 0;

	case RSX_REC_CANCEL_ORDER:
	case RSX_REC_CANCEL_ALL:
	case RSX_REC_AMEND_ORDER:
		return 0;	/* requests the ME journals: their effects follow as their own records */

	case RSX_REC_ORDER_AMENDED: {
		const struct rsx_order_amended *m = &pl->amended;
		slot = risk_order_find(r, &m->order_id);
		if (slot < 0 || r->accounts[r->orders[slot].acct].user_id != m->user_id)
			return 0;
		struct rsx_risk_order *o = &r->orders[slot];
		int64_t rem = m->remaining_qty.raw > 0 ? m->remaining_qty.raw : 0;
		r->positions[o->pos].open_qty += rem - o->remaining;
		o->remaining = rem;
		if (m->price.raw > 0)
			o->price = m->price.raw;
		o->state = RSX_RISK_ORD_ACKED;
		if (rem == 0 && !(o->flags & RSX_RISK_ORD_LIQ))
			risk_order_remove(r, slot);
		else
			order_normalise(r, slot);
		return 0;
	}

	case RSX_REC_BBO:
		s = &r->symbols[pl->bbo.symbol_id];
		s->bid_px = pl->bbo.bid_px.raw;
		s->bid_qty = pl->bbo.bid_qty.raw;
		s->ask_px = pl->bbo.ask_px.raw;
		s->ask_qty = pl->bbo.ask_qty.raw;
		s->bbo_ts = pl->bbo.ts_ns;
		return 0;

	case RSX_REC_CONFIG_APPLIED: {
		int reason = rsx_risk_configure_symbol(r, &pl->config);
		if (reason != RSX_REASON_NONE)
			return -reason;	/* caller turns it into STOP_BAD_CONFIG */
		risk_event(r, RSX_RISK_EV_CONFIG, 0, pl->config.symbol_id, -1, 0, 0, NULL);
		return 0;
	}
	default:
		return RSX_RISK_STOP_TYPE;
	}
}

/* The symbol an ME record concerns; 0 for a type that does not belong on an ME stream. */
static uint32_t me_symbol(uint16_t type, const union payload *pl)
{
	switch (type) {
	case RSX_REC_ORDER_ACCEPTED: return pl->order.symbol_id;
	case RSX_REC_ORDER_FAILED: return pl->failed.symbol_id;
	case RSX_REC_ORDER_INSERTED: return pl->inserted.symbol_id;
	case RSX_REC_FILL: return pl->fill.symbol_id;
	case RSX_REC_ORDER_DONE: return pl->done.symbol_id;
	case RSX_REC_ORDER_CANCELLED: return pl->cancelled.symbol_id;
	case RSX_REC_ORDER_AMENDED: return pl->amended.symbol_id;
	case RSX_REC_BBO: return pl->bbo.symbol_id;
	case RSX_REC_CONFIG_APPLIED: return pl->config.symbol_id;
	case RSX_REC_CANCEL_ORDER: return pl->cancel.symbol_id;
	case RSX_REC_CANCEL_ALL: return pl->cancel_all.symbol_id;
	case RSX_REC_AMEND_ORDER: return pl->amend.symbol_id;
	default: return 0;
	}
}

static int me_type(uint16_t type)
{
	return (type >= RSX_REC_ORDER_ACCEPTED && type <= RSX_REC_CONFIG_APPLIED) ||
	       type == RSX_REC_CANCEL_ORDER || type == RSX_REC_CANCEL_ALL || type == RSX_REC_AMEND_ORDER;
}

static void stop(struct rsx_risk_result *res, int code, int err, uint32_t symbol_id)
{
	res->stop = code;
	res->err = err;
	res->symbol_id = symbol_id;
}

size_t rsx_risk_apply_stream(struct rsx_risk *r, const void *buf, size_t n, size_t stride,
			     struct rsx_risk_result *res)
{
	const uint8_t *p = buf;
	size_t off = 0;
	union payload pl __attribute__((aligned(64)));

	memset(res, 0, sizeof(*res));
	while (off < n) {
		uint16_t type;
		if (r->events_cap - r->n_events < 4) {
			stop(res, RSX_RISK_STOP_EVENTS, 0, 0);
			break;
		}
		int size = rsx_record_decode(p + off, stride ? stride : n - off, &type, &pl, sizeof(pl));
		if (size < 0) {
			stop(res, RSX_RISK_STOP_RECORD, size, 0);
			break;
		}
		size_t step = stride ? stride : (size_t)size;
		if (type == RSX_REC_HEARTBEAT) {
			/* an idle ME still advances its clock (reconciliation) */
			uint32_t sid = pl.heartbeat.stream_id;
			if (sid < r->max_symbols && r->symbols[sid].configured &&
			    pl.heartbeat.ts_ns > r->symbols[sid].me_ts)
				r->symbols[sid].me_ts = pl.heartbeat.ts_ns;
			off += step;
			res->records++;
			continue;
		}
		if (!me_type(type)) {
			stop(res, RSX_RISK_STOP_TYPE, type, 0);
			break;
		}
		uint32_t sid = me_symbol(type, &pl);
		if (sid >= r->max_symbols || (!r->symbols[sid].configured && type != RSX_REC_CONFIG_APPLIED)) {
			stop(res, RSX_RISK_STOP_UNKNOWN_SYMBOL, 0, sid);
			break;
		}
		struct rsx_risk_symbol *s = &r->symbols[sid];
		uint64_t seq = pl.prefix.seq;
		if (seq <= s->tip) {
			r->dup_skipped++;	/* already applied: exactly once by (symbol, seq) */
			off += step;
			res->records++;
			continue;
		}
		if (r->limit_seq && seq > r->limit_seq) {
			stop(res, RSX_RISK_STOP_LIMIT, 0, sid);
			break;
		}
		if (seq != s->tip + 1) {
			stop(res, RSX_RISK_STOP_GAP, 0, sid);
			res->expected_seq = s->tip + 1;
			res->got_seq = seq;
			break;
		}
		if (s->funding_cut_ns && pl.prefix.ts_ns >= s->funding_cut_ns) {
			stop(res, RSX_RISK_STOP_CUT, 0, sid);	/* positions as of the boundary: take them first */
			break;
		}
		int rc = me_record(r, type, &pl);
		if (rc < 0) {
			stop(res, RSX_RISK_STOP_BAD_CONFIG, -rc, sid);
			break;
		}
		if (rc > 0) {
			stop(res, rc, rc == RSX_RISK_STOP_TYPE ? type : 0, sid);
			break;
		}
		s->tip = seq;
		if (pl.prefix.ts_ns > s->me_ts)
			s->me_ts = pl.prefix.ts_ns;
		off += step;
		res->records++;
		if (type == RSX_REC_CONFIG_APPLIED) {
			stop(res, RSX_RISK_STOP_CONFIG, 0, sid);
			break;
		}
	}
	res->consumed = off;
	return off;
}

/* ---- gateway requests: the pre-trade check ---- */

struct out_buf {
	uint8_t *p;
	size_t cap;
	size_t *len;
};

static int emit_failed(struct rsx_risk *r, struct out_buf *gw, uint64_t now, uint32_t symbol_id,
		       uint32_t user_id, uint16_t reason, uint16_t request_type, const rsx_oid_t *oid, int64_t detail)
{
	struct rsx_order_failed f __attribute__((aligned(64)));
	memset(&f, 0, sizeof(f));
	f.ts_ns = now;
	f.stream_id = 0x80000000u | r->shard_id;
	f.symbol_id = symbol_id;
	f.user_id = user_id;
	f.reason = reason;
	f.request_type = request_type;
	f.order_id = *oid;
	f.detail = detail;
	int n = rsx_record_frame(gw->p + *gw->len, gw->cap - *gw->len, RSX_REC_ORDER_FAILED, &f, sizeof(f));
	if (n < 0)
		return n;
	*gw->len += (size_t)n;
	r->orders_rejected++;
	return 0;
}

static int forward(struct out_buf *me, const uint8_t *rec, size_t size)
{
	memcpy(me->p + *me->len, rec, size);
	*me->len += size;
	return 0;
}

/* Checks shared by every request: symbol, ownership, account. Reason or 0; *acct set. */
static int request_owner(const struct rsx_risk *r, uint32_t symbol_id, uint32_t user_id, int32_t *acct)
{
	if (!risk_sym(r, symbol_id))
		return RSX_REASON_UNKNOWN_SYMBOL;
	if (!rsx_risk_owns(r, user_id))
		return RSX_REASON_WRONG_SHARD;
	*acct = user_id == RSX_RISK_FUND_USER ? -1 : rsx_risk_find_account(r, user_id);
	if (*acct < 0)
		return RSX_REASON_UNKNOWN_USER;
	return 0;
}

/* The pre-trade check of one NEW_ORDER (specs/risk.md 3.3). Reason (0 = accept); *detail for margin. */
static int new_order_check(struct rsx_risk *r, const struct rsx_order *o, int32_t *acct_out, int64_t *detail)
{
	int32_t acct;
	int reason;
	const struct rsx_risk_symbol *s = risk_sym(r, o->symbol_id);
	if (!s)
		return RSX_REASON_UNKNOWN_SYMBOL;
	if (s->cfg.status == RSX_SYMBOL_CLOSE_ONLY) {
		if (!(o->flags & RSX_ORDER_REDUCE_ONLY))
			return RSX_REASON_CLOSE_ONLY;	/* reduce-only orders pass: the ME enforces them (me.md 5) */
	} else if (s->cfg.status != RSX_SYMBOL_ACTIVE) {
		return RSX_REASON_SYMBOL_HALTED;
	}
	if (o->side > RSX_SIDE_SELL)
		return RSX_REASON_BAD_SIDE;
	if (o->tif > RSX_TIF_FOK)
		return RSX_REASON_BAD_TIF;
	if (o->stp > RSX_STP_NONE)
		return RSX_REASON_BAD_STP;
	if ((o->flags & ~RSX_ORDER_FLAGS_ALL) || (o->flags & RSX_ORDER_LIQUIDATION))
		return RSX_REASON_BAD_FLAGS;	/* only the shard itself places liquidation orders */
	reason = rsx_order_check(&s->cfg, o->price, o->qty);
	if (reason)
		return reason;
	reason = request_owner(r, o->symbol_id, o->user_id, &acct);
	if (reason)
		return reason;
	*acct_out = acct;
	const struct rsx_risk_account *a = &r->accounts[acct];
	if (a->flags & RSX_RISK_ACCT_LIQ)
		return RSX_REASON_USER_IN_LIQUIDATION;
	if (risk_liquidatable(a)) {
		if (!r->replay)
			risk_event(r, RSX_RISK_EV_LIQUIDATABLE, 0, o->symbol_id, acct, 0, 0, NULL);
		return RSX_REASON_USER_IN_LIQUIDATION;
	}
	if (risk_order_find(r, &o->order_id) >= 0)
		return RSX_REASON_DUPLICATE_ORDER_ID;
	if (o->flags & RSX_ORDER_REDUCE_ONLY)
		return 0;	/* nothing reserved: the ME enforces reduce-only */

	int32_t p = rsx_risk_find_position(r, acct, o->symbol_id);
	int64_t net = p >= 0 ? r->positions[p].net : 0;
	int64_t open = p >= 0 ? r->positions[p].open_qty : 0;
	int64_t pos_value = p >= 0 ? r->positions[p].value : 0;
	int dir = o->side == RSX_SIDE_BUY ? 1 : -1;
	int adds = net == 0 || (net > 0) == (dir > 0);
	if (s->mark_stale && (adds || o->qty.raw > abs64sat(net)))
		return RSX_REASON_MARK_STALE;	/* only orders that reduce the position until a fresh mark */
	int64_t v, worst;
	__int128 base = (__int128)abs64sat(net) + open + o->qty.raw;
	if (!fits64(base) || risk_value(s, o->price.raw, (int64_t)base, &worst) < 0 ||
	    worst > s->tier_bound[s->n_tiers - 1])
		return RSX_REASON_POSITION_LIMIT;
	if (risk_value(s, o->price.raw, o->qty.raw, &v) < 0)
		return RSX_REASON_NOTIONAL_OVERFLOW;
	int64_t need = risk_need(r, s, o->price.raw, o->qty.raw);
	__int128 check = need;
	if (adds) {
		int64_t cur = abs64sat(pos_value);
		int64_t after = (__int128)cur + v > I64_MAX ? I64_MAX : cur + v;
		__int128 step = (__int128)risk_tier(s, after, 0) - risk_tier(s, cur, 0) -
				(__int128)v * s->tier_imr[0] / 10000;
		if (step > 0)
			check += step;
	}
	__int128 avail = risk_equity(a) - a->im_sum - a->frozen;
	if (avail < check) {
		*detail = sat64(check - avail);
		return RSX_REASON_INSUFFICIENT_MARGIN;
	}
	if (r->n_orders >= r->max_orders || (p < 0 && r->n_positions >= r->max_positions))
		return RSX_REASON_OVERLOADED;
	return 0;
}

static int amend_check(struct rsx_risk *r, const struct rsx_amend *m, int32_t *slot_out, int64_t *extra,
		       int64_t *detail)
{
	int32_t acct;
	const struct rsx_risk_symbol *s = risk_sym(r, m->symbol_id);
	int reason = request_owner(r, m->symbol_id, m->user_id, &acct);
	*slot_out = -1;
	*extra = 0;
	if (reason)
		return reason;
	if (s->cfg.status != RSX_SYMBOL_ACTIVE && s->cfg.status != RSX_SYMBOL_CLOSE_ONLY)
		return RSX_REASON_SYMBOL_HALTED;
	if (r->accounts[acct].flags & RSX_RISK_ACCT_LIQ)
		return RSX_REASON_USER_IN_LIQUIDATION;
	if (m->qty.raw <= 0)
		return RSX_REASON_QTY_NOT_POSITIVE;
	if (m->price.raw < 0)
		return RSX_REASON_PRICE_NOT_POSITIVE;
	int32_t slot = risk_order_find(r, &m->order_id);
	if (slot < 0 || r->orders[slot].acct != acct)
		return 0;	/* not reserved here (reduce-only or unknown): the ME decides */
	if (s->cfg.status == RSX_SYMBOL_CLOSE_ONLY)
		return RSX_REASON_CLOSE_ONLY;	/* a reserved order is not reduce-only */
	const struct rsx_risk_order *o = &r->orders[slot];
	int64_t price = m->price.raw ? m->price.raw : o->price;
	reason = rsx_order_check(&s->cfg, (rsx_price_t){ price }, m->qty);
	if (reason && reason != RSX_REASON_QTY_BELOW_MIN)	/* a remaining qty may sit below min */
		return reason;
	/* the position limit with this order's remaining quantity replaced by the amended one */
	const struct rsx_risk_position *pos = &r->positions[o->pos];
	int64_t worst;
	__int128 base = (__int128)abs64sat(pos->net) + pos->open_qty - o->remaining + m->qty.raw;
	if (!fits64(base) || risk_value(s, price, (int64_t)base, &worst) < 0 ||
	    worst > s->tier_bound[s->n_tiers - 1])
		return RSX_REASON_POSITION_LIMIT;
	int64_t need = risk_need(r, s, price, m->qty.raw);
	*slot_out = slot;
	if (need > o->need) {
		if (s->mark_stale)
			return RSX_REASON_MARK_STALE;
		const struct rsx_risk_account *a = &r->accounts[acct];
		__int128 avail = risk_equity(a) - a->im_sum - a->frozen;
		if (avail < need - o->need) {
			*detail = sat64((__int128)need - o->need - avail);
			return RSX_REASON_INSUFFICIENT_MARGIN;
		}
		*extra = need - o->need;
	}
	return 0;
}

static void stamp_order(uint8_t *rec, uint64_t now)
{
	/* risk_in_ts_ns and risk_out_ts_ns (records.h); the CRC is resealed by the caller */
	memcpy(rec + RSX_HEADER_SIZE + offsetof(struct rsx_order, risk_in_ts_ns), &now, 8);
	memcpy(rec + RSX_HEADER_SIZE + offsetof(struct rsx_order, risk_out_ts_ns), &now, 8);
}

size_t rsx_risk_submit(struct rsx_risk *r, const void *buf, size_t n, size_t stride, uint16_t origin,
		       uint64_t now_ns, void *out_me, size_t me_cap, size_t *me_len,
		       void *out_gw, size_t gw_cap, size_t *gw_len, struct rsx_risk_result *res)
{
	const uint8_t *p = buf;
	size_t off = 0;
	union payload pl __attribute__((aligned(64)));
	struct out_buf me = { out_me, me_cap, me_len }, gw = { out_gw, gw_cap, gw_len };

	memset(res, 0, sizeof(*res));
	while (off < n) {
		uint16_t type;
		if (me_cap - *me_len < RSX_RECORD_MAX || gw_cap - *gw_len < RSX_RECORD_MAX) {
			stop(res, RSX_RISK_STOP_OUT, 0, 0);
			break;
		}
		if (r->events_cap - r->n_events < 2) {
			stop(res, RSX_RISK_STOP_EVENTS, 0, 0);
			break;
		}
		int size = rsx_record_decode(p + off, stride ? stride : n - off, &type, &pl, sizeof(pl));
		if (size < 0) {
			stop(res, RSX_RISK_STOP_RECORD, size, 0);
			break;
		}
		size_t step = stride ? stride : (size_t)size;
		const uint8_t *rec = p + off;
		int64_t detail = 0;
		int32_t acct = -1, slot;
		int reason;

		switch (type) {
		case RSX_REC_NEW_ORDER: {
			const struct rsx_order *o = &pl.order;
			reason = new_order_check(r, o, &acct, &detail);
			if (reason) {
				emit_failed(r, &gw, now_ns, o->symbol_id, o->user_id, (uint16_t)reason, type,
					    &o->order_id, detail);
				break;
			}
			if (!(o->flags & RSX_ORDER_REDUCE_ONLY) &&
			    risk_order_track(r, o, acct, 0, now_ns, RSX_RISK_ORD_PENDING, origin) < 0) {
				emit_failed(r, &gw, now_ns, o->symbol_id, o->user_id, RSX_REASON_OVERLOADED, type,
					    &o->order_id, 0);
				break;
			}
			forward(&me, rec, (size_t)size);
			stamp_order(me.p + *me.len - size, now_ns);
			rsx_record_seal(me.p + *me.len - size, (size_t)size);
			r->orders_accepted++;
			break;
		}
		case RSX_REC_CANCEL_ORDER:
			reason = request_owner(r, pl.cancel.symbol_id, pl.cancel.user_id, &acct);
			if (reason)
				emit_failed(r, &gw, now_ns, pl.cancel.symbol_id, pl.cancel.user_id, (uint16_t)reason,
					    type, &pl.cancel.order_id, 0);
			else
				forward(&me, rec, (size_t)size);
			break;
		case RSX_REC_CANCEL_ALL:
			reason = request_owner(r, pl.cancel_all.symbol_id, pl.cancel_all.user_id, &acct);
			if (reason)
				emit_failed(r, &gw, now_ns, pl.cancel_all.symbol_id, pl.cancel_all.user_id,
					    (uint16_t)reason, type, &pl.cancel_all.request_id, 0);
			else
				forward(&me, rec, (size_t)size);
			break;
		case RSX_REC_AMEND_ORDER: {
			int64_t extra;
			reason = amend_check(r, &pl.amend, &slot, &extra, &detail);
			if (reason) {
				emit_failed(r, &gw, now_ns, pl.amend.symbol_id, pl.amend.user_id, (uint16_t)reason, type,
					    &pl.amend.order_id, detail);
				break;
			}
			if (slot >= 0 && extra > 0) {
				r->orders[slot].need += extra;	/* held until ORDER_AMENDED / ORDER_FAILED */
				risk_frozen_add(r, r->orders[slot].acct, extra);
			}
			forward(&me, rec, (size_t)size);
			break;
		}
		case RSX_REC_QUERY: {
			int rc = risk_query(r, &pl.query, now_ns, gw.p, gw.cap, gw.len);
			if (rc == RSX_RISK_STOP_OUT) {
				stop(res, RSX_RISK_STOP_OUT, 0, 0);	/* drain the answers so far, then resume here */
				res->consumed = off;
				return off;
			}
			r->queries++;
			break;
		}
		default:
			stop(res, RSX_RISK_STOP_TYPE, type, 0);
			res->consumed = off;
			return off;
		}
		off += step;
		res->records++;
	}
	res->consumed = off;
	return off;
}

int rsx_risk_renormalise(struct rsx_risk *r, uint32_t symbol_id)
{
	int n = 0;
	if (!risk_sym(r, symbol_id))
		return RSX_EINVALID;
	for (uint32_t i = 0; i < r->order_hwm; i++) {
		if (r->orders[i].state != RSX_RISK_ORD_EMPTY && r->orders[i].symbol_id == symbol_id) {
			order_normalise(r, (int32_t)i);
			n++;
		}
	}
	return n;
}

int rsx_risk_reconcile(struct rsx_risk *r, uint64_t ack_timeout_ns, struct rsx_risk_order *out, uint32_t cap,
		       uint32_t scan)
{
	uint32_t found = 0;
	uint32_t i = r->recon_cursor < r->order_hwm ? r->recon_cursor : 0;
	uint32_t end = scan && scan < r->order_hwm - i ? i + scan : r->order_hwm;
	for (; i < end && found < cap; i++) {
		struct rsx_risk_order *o = &r->orders[i];
		if (o->state != RSX_RISK_ORD_PENDING)
			continue;
		uint64_t deadline = o->ts_ns + ack_timeout_ns;
		if (deadline < o->ts_ns)
			deadline = UINT64_MAX;
		if (o->symbol_id >= r->max_symbols || r->symbols[o->symbol_id].me_ts <= deadline)
			continue;
		out[found++] = *o;
		risk_order_remove(r, (int32_t)i);
		r->reconciled++;
	}
	r->recon_cursor = i < r->order_hwm ? i : 0;
	return (int)found;
}
