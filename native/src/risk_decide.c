/*
 * risk_decide.c - the liquidation engine (specs/risk.md 7): deciding entry,
 * rounds, the fund gate and settlement for a queue of accounts, and applying
 * journaled LIQUIDATION records (ROUND, ADL, INSURANCE, DONE), live and in
 * recovery. A decision's records are applied as soon as they are written, by
 * the same code recovery runs, so the next decision sees the previous one's
 * reservation and flags. ADL is decided in Python (ranking, charges), applied
 * here.
 */
#include <time.h>

#include "risk_internal.h"

#define U48 ((UINT64_C(1) << 48) - 1)
#define U46 ((UINT64_C(1) << 46) - 1)
/* CANCEL_ALL request ids only correlate answers: counters above 2^57, never minted for orders */
#define CANCEL_ID_BASE (UINT64_C(1) << 57)

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void rsx_risk_liq_id(rsx_oid_t *out, uint64_t ts_ns, uint16_t shard_id, uint64_t counter)
{
	uint64_t ms = (ts_ns / 1000000) & U48;
	uint64_t high = ms << 16 | UINT64_C(7) << 12 | ((counter >> 46) & 0xFFF);
	uint64_t low = UINT64_C(2) << 62 | (uint64_t)shard_id << 46 | (counter & U46);
	put_be64(out->b, high);
	put_be64(out->b + 8, low);
}

uint64_t rsx_risk_liq_id_counter(const rsx_oid_t *oid)
{
	return (get_be64(oid->b) & 0xFFF) << 46 | (get_be64(oid->b + 8) & U46);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- applying journaled records ---- */

static void reserve(struct rsx_risk *r, struct rsx_risk_account *a, int64_t amount)
{
	r->insurance_reserved += amount - a->liq_reserved;	/* a new reservation replaces the old one */
	a->liq_reserved = amount;
}

static void note_counter(struct rsx_risk *r, const rsx_oid_t *oid)
{
	uint64_t c = rsx_risk_liq_id_counter(oid);
	if (c < CANCEL_ID_BASE && c > r->liq_id_counter)
		r->liq_id_counter = c;
}

static int apply_round(struct rsx_risk *r, int32_t acct, const struct rsx_liquidation *l)
{
	struct rsx_risk_account *a = &r->accounts[acct];
	struct rsx_order o __attribute__((aligned(64)));
	if (!risk_sym(r, l->symbol_id) || l->qty.raw <= 0 || l->price.raw <= 0 || l->side > RSX_SIDE_SELL)
		return RSX_EINVALID;
	if (risk_order_find(r, &l->order_id) >= 0)
		return RSX_EINVALID;
	memset(&o, 0, sizeof(o));
	o.symbol_id = l->symbol_id;
	o.user_id = a->user_id;
	o.side = l->side;
	o.tif = RSX_TIF_IOC;
	o.order_id = l->order_id;
	o.price = l->price;
	o.qty = l->qty;
	if (risk_order_track(r, &o, acct, RSX_RISK_ORD_LIQ, l->ts_ns, RSX_RISK_ORD_PENDING, RSX_RISK_NO_ORIGIN) < 0)
		return RSX_EINVALID;
	risk_liq_enter(r, acct);
	a->liq_round = l->round > UINT16_MAX ? UINT16_MAX : (uint16_t)l->round;
	a->liq_next_at = l->ts_ns + (uint64_t)l->round * r->liq_base_delay_ns;
	if (a->liq_inflight < UINT16_MAX)
		a->liq_inflight++;
	reserve(r, a, l->shortfall);
	note_counter(r, &l->order_id);
	risk_dirty(r, acct, -1);
	r->liq_rounds++;
	return 0;
}

static int apply_adl(struct rsx_risk *r, int32_t acct, const struct rsx_liquidation *l)
{
	int32_t cp = rsx_risk_find_account(r, l->counterparty_user_id);
	if (cp < 0 || cp == acct || !risk_sym(r, l->symbol_id) || l->shortfall < 0)
		return RSX_EINVALID;
	/* the charge first (checked), then the trade; a trade that cannot apply gives the charge back */
	if (l->shortfall > 0) {
		int rc = rsx_risk_move(r, cp, acct, l->shortfall);
		if (rc < 0)
			return rc;
	}
	int32_t buyer = l->side == RSX_SIDE_SELL ? cp : acct, seller = l->side == RSX_SIDE_SELL ? acct : cp;
	int rc = rsx_risk_synthetic_fill(r, l->symbol_id, buyer, seller, l->price.raw, l->qty.raw);
	if (rc < 0) {
		if (l->shortfall > 0)
			rsx_risk_move(r, acct, cp, l->shortfall);
		return rc;
	}
	struct rsx_risk_account *a = &r->accounts[acct];
	risk_liq_enter(r, acct);
	a->liq_round = l->round > UINT16_MAX ? UINT16_MAX : (uint16_t)l->round;
	a->liq_next_at = l->ts_ns + r->liq_base_delay_ns;
	note_counter(r, &l->order_id);
	r->liq_adl++;
	/* a counterparty closed at the bankruptcy price may be under its margin now: check it */
	const struct rsx_risk_account *c = &r->accounts[cp];
	if (!r->replay && !(c->flags & RSX_RISK_ACCT_LIQ) && risk_liquidatable(c))
		risk_event(r, RSX_RISK_EV_LIQUIDATABLE, 0, l->symbol_id, cp, 0, 0, NULL);
	return 0;
}

static int apply_one(struct rsx_risk *r, const struct rsx_liquidation *l)
{
	if (l->user_id == RSX_RISK_FUND_USER)
		return RSX_EINVALID;
	int32_t acct = rsx_risk_open_account(r, l->user_id);
	if (acct < 0)
		return RSX_EINVALID;
	struct rsx_risk_account *a = &r->accounts[acct];
	switch (l->kind) {
	case RSX_LIQ_ROUND:
		return apply_round(r, acct, l);
	case RSX_LIQ_ADL:
		return apply_adl(r, acct, l);
	case RSX_LIQ_INSURANCE: {
		int rc = l->shortfall > 0 ? rsx_risk_move(r, RSX_RISK_FUND, acct, l->shortfall) : RSX_EINVALID;
		if (rc == 0)
			r->liq_insurance++;
		return rc;
	}
	case RSX_LIQ_DONE:
		risk_liq_leave(r, acct);
		reserve(r, a, 0);
		a->liq_round = 0;
		a->liq_next_at = 0;
		risk_dirty(r, acct, -1);
		r->liq_done++;
		return 0;
	default:
		return RSX_EINVALID;
	}
}

int rsx_risk_liq_apply(struct rsx_risk *r, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	size_t off = 0;
	int count = 0;
	struct rsx_liquidation l __attribute__((aligned(64)));
	while (off < n) {
		uint16_t type;
		int size = rsx_record_decode(p + off, n - off, &type, &l, sizeof(l));
		if (size < 0)
			return size;
		if (type != RSX_REC_LIQUIDATION)
			return RSX_EINVALID;
		int rc = apply_one(r, &l);
		if (rc < 0)
			return rc;
		off += (size_t)size;
		count++;
	}
	return count;
}

int rsx_risk_liq_due(const struct rsx_risk *r, uint64_t now_ns, int32_t *out, uint32_t cap)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < r->n_liq && k < cap; i++) {
		const struct rsx_risk_account *a = &r->accounts[r->liq_list[i]];
		if (a->liq_inflight == 0 && now_ns >= a->liq_next_at)
			out[k++] = r->liq_list[i];
	}
	return (int)k;
}

/* ---- deciding ---- */

struct decision {
	struct rsx_risk *r;
	struct rsx_risk_liq_out *out;
	uint64_t now;
	int32_t acct;
	struct rsx_risk_margin m;
};

/* Write one LIQUIDATION record and apply it at once. */
static int emit_liq(struct decision *d, struct rsx_liquidation *l)
{
	struct rsx_risk *r = d->r;
	l->ts_ns = d->now;
	l->stream_id = 0x80000000u | r->shard_id;
	l->user_id = r->accounts[d->acct].user_id;
	l->equity = d->m.equity;
	l->maintenance_margin = d->m.mm;
	size_t size = risk_frame(d->out->liq + d->out->liq_len, RSX_REC_LIQUIDATION, l, sizeof(*l));
	d->out->liq_len += size;
	return apply_one(r, l);
}

static void emit_me(struct decision *d, uint16_t type, const void *payload, size_t len)
{
	d->out->me_len += risk_frame(d->out->me + d->out->me_len, type, payload, len);
}

/* Flat: the fund pays a negative balance (what it can), then DONE. 1 if nothing to do. */
static int settle(struct decision *d, int in_liq)
{
	struct rsx_risk *r = d->r;
	int64_t c = r->accounts[d->acct].collateral;
	int64_t avail = rsx_risk_fund_available(r, d->acct);
	int64_t pay = c < 0 ? (-c < avail ? -c : (avail > 0 ? avail : 0)) : 0;
	if (!in_liq && pay == 0)
		return 1;	/* nothing owed, or a debt the fund cannot pay: no decision to take */
	struct rsx_liquidation l __attribute__((aligned(64)));
	if (pay > 0) {
		memset(&l, 0, sizeof(l));
		l.kind = RSX_LIQ_INSURANCE;
		l.shortfall = pay;
		if (emit_liq(d, &l) < 0)
			return -1;
	}
	memset(&l, 0, sizeof(l));
	l.kind = RSX_LIQ_DONE;
	l.shortfall = c < 0 ? -c - pay : 0;	/* bad debt left on the account */
	return emit_liq(d, &l) < 0 ? -1 : 0;
}

static int place_round(struct decision *d, uint32_t rnd, uint32_t slip, const struct rsx_risk_liq_order *plan,
		       int k, int64_t reservation)
{
	struct rsx_risk *r = d->r;
	const struct rsx_risk_account *a = &r->accounts[d->acct];
	/* CANCEL_ALL where the user still has tracked orders (reservations to release) */
	for (int32_t p = a->pos_head; p >= 0; p = r->positions[p].next) {
		const struct rsx_risk_position *pos = &r->positions[p];
		if (pos->n_orders == 0)
			continue;
		struct rsx_cancel_all c __attribute__((aligned(64)));
		memset(&c, 0, sizeof(c));
		c.ts_ns = d->now;
		c.stream_id = 0x80000000u | r->shard_id;
		c.symbol_id = pos->symbol_id;
		c.user_id = a->user_id;
		rsx_risk_liq_id(&c.request_id, d->now, r->shard_id,
				CANCEL_ID_BASE | (uint64_t)(pos->symbol_id & 0xFFFF) << 32 | a->user_id);
		emit_me(d, RSX_REC_CANCEL_ALL, &c, sizeof(c));
	}
	for (int i = 0; i < k; i++) {
		struct rsx_liquidation l __attribute__((aligned(64)));
		memset(&l, 0, sizeof(l));
		l.kind = RSX_LIQ_ROUND;
		l.symbol_id = plan[i].symbol_id;
		l.side = plan[i].side;
		l.round = rnd;
		l.slippage_bps = slip;
		rsx_risk_liq_id(&l.order_id, d->now, r->shard_id, ++r->liq_id_counter);
		l.qty.raw = plan[i].qty;
		l.price.raw = plan[i].price;
		l.mark_px.raw = plan[i].mark;
		l.shortfall = reservation;
		if (emit_liq(d, &l) < 0)
			return -1;
		struct rsx_order o __attribute__((aligned(64)));
		memset(&o, 0, sizeof(o));
		o.ts_ns = d->now;
		o.stream_id = 0x80000000u | r->shard_id;
		o.symbol_id = l.symbol_id;
		o.user_id = a->user_id;
		o.side = l.side;
		o.tif = RSX_TIF_IOC;
		o.flags = RSX_ORDER_REDUCE_ONLY | RSX_ORDER_LIQUIDATION;
		o.stp = RSX_STP_CANCEL_MAKER;
		o.order_id = l.order_id;
		o.price = l.price;
		o.qty = l.qty;
		o.risk_in_ts_ns = d->now;
		o.risk_out_ts_ns = d->now;
		emit_me(d, RSX_REC_NEW_ORDER, &o, sizeof(o));
	}
	return 0;
}

enum { DECIDED, NEEDS_ADL, OUT_FULL, FAILED };

static int decide_one(struct decision *d, struct rsx_risk_liq_order *plan, uint32_t plan_cap)
{
	struct rsx_risk *r = d->r;
	struct rsx_risk_liq_out *out = d->out;
	const struct rsx_risk_account *a = &r->accounts[d->acct];
	int in_liq = (a->flags & RSX_RISK_ACCT_LIQ) != 0;
	if (in_liq && (a->liq_inflight > 0 || d->now < a->liq_next_at)) {
		out->skipped++;	/* a round in flight, or not due yet */
		return DECIDED;
	}
	if (rsx_risk_margin(r, d->acct, &d->m) < 0)
		return FAILED;
	/* room for the worst case of this account: a record per symbol, INSURANCE, DONE; two per symbol to the MEs */
	size_t need = (size_t)(plan_cap + 2) * RSX_RECORD_MAX;
	if (out->liq_cap - out->liq_len < need || out->me_cap - out->me_len < 2 * need)
		return OUT_FULL;
	if (d->m.positions == 0) {
		int rc = in_liq || d->m.collateral < 0 ? settle(d, in_liq) : 1;
		if (rc < 0)
			return FAILED;
		if (rc == 0)
			out->settled++;
		else
			out->skipped++;
		return DECIDED;
	}
	if (!d->m.liquidatable) {
		if (in_liq) {
			struct rsx_liquidation l __attribute__((aligned(64)));
			memset(&l, 0, sizeof(l));
			l.kind = RSX_LIQ_DONE;	/* recovered */
			if (emit_liq(d, &l) < 0)
				return FAILED;
			out->settled++;
		} else {
			out->skipped++;
		}
		return DECIDED;
	}
	uint32_t rnd = (uint32_t)a->liq_round + 1;
	uint64_t s2 = (uint64_t)rnd * rnd * r->liq_base_slip_bps;
	uint32_t slip = s2 < r->liq_max_slip_bps ? (uint32_t)s2 : r->liq_max_slip_bps;
	int64_t worst;
	int64_t avail = rsx_risk_fund_available(r, d->acct);
	int book = out->force_book == d->acct;
	if (book)
		slip = r->liq_max_slip_bps;	/* ADL found nobody: the book at the largest slippage */
	int k = rsx_risk_liq_plan(r, d->acct, slip, plan, plan_cap, &worst);
	if (k < 0)
		return FAILED;
	if (!book && (rnd > r->liq_max_rounds || worst > avail))
		return NEEDS_ADL;
	if (k == 0 || r->n_orders + (uint32_t)k > r->max_orders) {
		out->skipped++;	/* nothing closable now (unpriced, halted), or no room to track: next pass */
		return DECIDED;
	}
	int64_t reservation = worst < avail ? worst : (avail > 0 ? avail : 0);
	if (place_round(d, rnd, slip, plan, k, reservation) < 0)
		return FAILED;
	out->rounds++;
	return DECIDED;
}

int rsx_risk_liq_decide(struct rsx_risk *r, const int32_t *accts, uint32_t n, uint64_t now_ns,
			uint64_t deadline_ns, struct rsx_risk_liq_out *out)
{
	struct rsx_risk_liq_order plan[RSX_RISK_PLAN_MAX];
	uint32_t plan_cap = RSX_RISK_PLAN_MAX;
	struct decision d = { .r = r, .out = out, .now = now_ns };
	out->stop = RSX_RISK_LIQ_DONE;
	out->consumed = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (accts[i] < 0 || (uint32_t)accts[i] >= r->n_users) {
			out->consumed++;
			continue;
		}
		if (r->events_cap - r->n_events < 4) {
			out->stop = RSX_RISK_LIQ_OUT;	/* drain the events first */
			return 0;
		}
		d.acct = accts[i];
		switch (decide_one(&d, plan, plan_cap)) {
		case NEEDS_ADL:
			out->stop = RSX_RISK_LIQ_ADL;
			return 0;
		case OUT_FULL:
			out->stop = RSX_RISK_LIQ_OUT;
			return 0;
		case FAILED:
			return RSX_EINVALID;
		default:
			break;
		}
		out->consumed++;
		if (deadline_ns && i + 1 < n && mono_ns() >= deadline_ns) {
			out->stop = RSX_RISK_LIQ_DEADLINE;
			return 0;
		}
	}
	return 0;
}
