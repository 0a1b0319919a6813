/*
 * risk_internal.h - helpers shared by the risk_*.c files (not installed, not
 * seen by cffi).
 */
#ifndef RSX_RISK_INTERNAL_H
#define RSX_RISK_INTERNAL_H

#include <string.h>

#include "rsx/errors.h"
#include "rsx/risk.h"

#define I64_MAX INT64_MAX
#define I64_MIN INT64_MIN

static inline int fits64(__int128 v)
{
	return v >= I64_MIN && v <= I64_MAX;
}

/* int64 of a 128-bit value, saturated (display and margin summaries only). */
static inline int64_t sat64(__int128 v)
{
	return v > I64_MAX ? I64_MAX : v < I64_MIN ? I64_MIN : (int64_t)v;
}

/*
 * a / d (truncating) for 0 < d <= INT64_MAX. Most products fit 64 bits: take
 * the one-instruction path then, the libgcc 128-bit division (__divti3,
 * ~60 instructions) only when they do not.
 */
static inline __int128 div128(__int128 a, int64_t d)
{
	if (a >= I64_MIN && a <= I64_MAX)
		return (int64_t)a / d;
	return a / d;
}

/* floor(a / d) for 0 < d <= INT64_MAX (C truncates toward zero). */
static inline __int128 floordiv128(__int128 a, int64_t d)
{
	__int128 q = div128(a, d);
	if (q * d != a && a < 0)
		q -= 1;
	return q;
}

static inline int64_t abs64sat(int64_t v)
{
	return v == I64_MIN ? I64_MAX : (v < 0 ? -v : v);
}

/* The symbol entry of a configured symbol, or NULL. */
static inline struct rsx_risk_symbol *risk_sym(const struct rsx_risk *r, uint32_t symbol_id)
{
	if (symbol_id >= r->max_symbols || !r->symbols[symbol_id].configured)
		return NULL;
	return &r->symbols[symbol_id];
}

/* ---- risk_state.c ---- */
int32_t risk_order_find(const struct rsx_risk *r, const rsx_oid_t *oid);	/* slab slot or -1 */
/* A fresh slab entry for oid, hashed and linked into position pos; -1 if full or the id is live. */
int32_t risk_order_insert(struct rsx_risk *r, const rsx_oid_t *oid, int32_t pos);
void risk_order_remove(struct rsx_risk *r, int32_t slot);		/* release + unlink + free */
int32_t risk_position_create(struct rsx_risk *r, int32_t acct, uint32_t symbol_id);
void risk_frozen_add(struct rsx_risk *r, int32_t acct, int64_t delta);
/* Flag an account (and one of its positions, pos >= 0) changed since the last push. */
void risk_dirty(struct rsx_risk *r, int32_t acct, int32_t pos);
/* Set / clear IN_LIQUIDATION, keeping the liquidation list in step. */
void risk_liq_enter(struct rsx_risk *r, int32_t acct);
void risk_liq_leave(struct rsx_risk *r, int32_t acct);

/* ---- risk_margin.c ---- */
/* V(p, q) = floor(p x q / D), both >= 0; 0 or RSX_EOVERFLOW. */
int risk_value(const struct rsx_risk_symbol *s, int64_t price, int64_t qty, int64_t *out);
int64_t risk_tier(const struct rsx_risk_symbol *s, int64_t notional, int which);
/* The reservation of an order: need(price, remaining) (specs/risk.md 3.3), saturated. */
int64_t risk_need(const struct rsx_risk *r, const struct rsx_risk_symbol *s, int64_t price, int64_t remaining);
/* Set net/cost of a position and refresh its cached value/IM/MM and the account sums. */
void risk_pos_commit(struct rsx_risk *r, int32_t pos, int64_t net, int64_t cost);
/* Recompute the cached numbers of a position at the current mark (sums updated). */
void risk_pos_refresh(struct rsx_risk *r, int32_t pos);
/* Compute (value, im, mm) of a position state without storing; returns 1 if saturated. */
int risk_pos_eval(const struct rsx_risk_symbol *s, int64_t net, int64_t cost, int64_t *value, int64_t *im, int64_t *mm);
__int128 risk_equity(const struct rsx_risk_account *a);
int risk_liquidatable(const struct rsx_risk_account *a);

/* ---- risk_fill.c ---- */
/*
 * One fill leg on a position state: direction dir (+1 buy, -1 sell), price,
 * qty, the fill's value V. Writes the new net/cost and the realised PnL.
 * 0 or RSX_EOVERFLOW.
 */
int risk_leg(const struct rsx_risk_symbol *s, int64_t net, int64_t cost, int dir, int64_t price, int64_t qty,
	     int64_t value, int64_t *new_net, int64_t *new_cost, int64_t *realised);
int64_t risk_fee(int64_t value, int32_t bps);
/* Apply a FILL record; 0 or a stop code (nothing applied). */
int risk_apply_fill(struct rsx_risk *r, const struct rsx_fill *f);
/* An order's remaining quantity went down by qty (a fill): re-reserve, remove at 0. */
void risk_order_filled(struct rsx_risk *r, const rsx_oid_t *oid, uint32_t user_id, int64_t qty);

/* ---- risk_stream.c ---- */
/* Track an order of acct described by an order record (position found or created); slot, or -1 if full. */
int32_t risk_order_track(struct rsx_risk *r, const struct rsx_order *src, int32_t acct, uint8_t flags,
			 uint64_t ts, uint8_t state, uint16_t origin);

/* ---- risk_decide.c ---- */
/* Frame one payload into out (RSX_RECORD_MAX room checked by the caller); returns its size. */
size_t risk_frame(void *out, uint16_t type, const void *payload, size_t len);

/* ---- risk_view.c ---- */
/*
 * Answer a QUERY into out (specs/risk.md 3.3): its records then QUERY_DONE.
 * 0, or RSX_RISK_STOP_OUT when out (not empty) lacks room for the answer.
 */
int risk_query(struct rsx_risk *r, const struct rsx_query *q, uint64_t now, uint8_t *out, size_t cap, size_t *len);

/* ---- events ---- */
static inline void risk_event(struct rsx_risk *r, uint16_t kind, uint16_t reason, uint32_t symbol_id,
			      int32_t acct, int64_t value, int64_t value2, const rsx_oid_t *oid)
{
	if (r->n_events >= r->events_cap)
		return;	/* callers reserve room before each record */
	struct rsx_risk_event *e = &r->events[r->n_events++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->reason = reason;
	e->symbol_id = symbol_id;
	e->acct = acct;
	e->user_id = acct >= 0 ? r->accounts[acct].user_id : 0;
	e->value = value;
	e->value2 = value2;
	if (oid)
		e->oid = *oid;
}

#endif
