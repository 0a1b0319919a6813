/*
 * rsx/risk.h - the risk shard's hot paths (specs/risk.md).
 *
 * All state lives in caller-owned memory: Python allocates numpy arrays of
 * the structs below and points a struct rsx_risk at them, so snapshots are
 * plain array dumps and the vectorised/Python side reads the same bytes. The
 * C side never allocates. Accounts and positions are never freed (their slots
 * are stable); orders live in an open-addressing table keyed by order id.
 *
 * Money is int64 collateral units; every product is taken in __int128 and
 * refused when it does not fit. Per-account sums are kept in __int128.
 */
#ifndef RSX_RISK_H
#define RSX_RISK_H

#include <stddef.h>
#include <stdint.h>

#include "numbers.h"
#include "records.h"
#include "types.h"

#define RSX_RISK_VSHARDS 4096		/* fixed: vshard = fmix32(user) & 4095 */
#define RSX_RISK_TIERS 8		/* margin tiers per symbol */
#define RSX_RISK_MAX_POSITION_CAP (INT64_C(1) << 53)	/* largest tier bound allowed */
#define RSX_RISK_FUND_USER 0		/* user 0 = the shard's insurance fund */

/* Endpoints of rsx_risk_move other than an account slot (>= 0). */
#define RSX_RISK_EXTERNAL (-1)		/* outside the venue (deposits, withdrawals) */
#define RSX_RISK_FUND (-2)		/* the insurance fund */
#define RSX_RISK_CLEARING (-3)		/* the funding clearing account */
#define RSX_RISK_REVENUE (-4)		/* fee revenue */

enum rsx_risk_acct_flag {
	RSX_RISK_ACCT_LIQ = 1,		/* in liquidation: only liquidation orders */
};

enum rsx_risk_order_state {
	RSX_RISK_ORD_EMPTY = 0,
	RSX_RISK_ORD_PENDING = 1,	/* reserved by risk, no ACCEPTED/FAILED seen yet */
	RSX_RISK_ORD_ACKED = 2,		/* the ME accepted it */
};

enum rsx_risk_order_flag {
	RSX_RISK_ORD_LIQ = 1,		/* a liquidation order: need 0, terminal -> event */
};

/* Why a batch stopped (struct rsx_risk_result.stop). */
enum rsx_risk_stop {
	RSX_RISK_STOP_NONE = 0,		/* the whole buffer was consumed */
	RSX_RISK_STOP_GAP = 1,		/* seq > tip + 1: recover the gap, then resume */
	RSX_RISK_STOP_UNKNOWN_SYMBOL = 2,	/* a record for a symbol never configured */
	RSX_RISK_STOP_BAD_CONFIG = 3,	/* CONFIG_APPLIED refused (err = reason) */
	RSX_RISK_STOP_OVERFLOW = 4,	/* a fill's arithmetic does not fit int64 */
	RSX_RISK_STOP_FULL = 5,		/* account or position table full */
	RSX_RISK_STOP_EVENTS = 6,	/* event buffer full: drain it, then resume */
	RSX_RISK_STOP_OUT = 7,		/* an output buffer is full: drain, then resume */
	RSX_RISK_STOP_RECORD = 8,	/* invalid record bytes (err = RSX_E*) */
	RSX_RISK_STOP_TYPE = 9,		/* a record type this input does not take */
	RSX_RISK_STOP_CONFIG = 10,	/* a CONFIG_APPLIED was applied: recompute, resume */
	RSX_RISK_STOP_LIMIT = 11,	/* the next record's seq is above limit_seq (recovery barriers) */
};

/* Events the C paths hand to Python (struct rsx_risk.events). */
enum rsx_risk_event_kind {
	RSX_RISK_EV_LIQUIDATABLE = 1,	/* acct: equity < MM, not in liquidation yet */
	RSX_RISK_EV_LIQ_ORDER_DONE = 2,	/* a liquidation order ended: reason, value = filled */
	RSX_RISK_EV_LATE_ACK = 3,	/* ACCEPTED for an order risk did not hold: re-reserved */
	RSX_RISK_EV_CONFIG = 4,		/* CONFIG_APPLIED applied for symbol_id */
};

/* One account. 128 bytes; the four sums are 128-bit (specs/risk.md 3.2). */
struct rsx_risk_account {
	uint32_t user_id;
	uint32_t flags;		/* enum rsx_risk_acct_flag */
	int64_t collateral;
	int64_t frozen;		/* sum of the need of its live orders */
	int32_t pos_head;	/* first position slot, -1 if none */
	int32_t n_orders;	/* live tracked orders */
	uint64_t version;	/* +1 per collateral change */
	uint64_t _pad0[3];
	__int128 value_sum;	/* sum of position values at mark */
	__int128 cost_sum;	/* sum of signed entry values */
	__int128 im_sum;
	__int128 mm_sum;
} __attribute__((aligned(16)));

/* One (user, symbol) position. */
struct rsx_risk_position {
	int32_t acct;		/* account slot */
	uint32_t symbol_id;
	int32_t next;		/* next position of the same account, -1 */
	int32_t n_orders;	/* live tracked orders in this symbol */
	int64_t net;		/* signed quantity: > 0 long */
	int64_t cost;		/* signed entry value (collateral units) */
	int64_t rpnl;		/* realised PnL, cumulative */
	int64_t funding;	/* funding received (> 0) / paid, cumulative */
	int64_t fees;		/* fees paid (> 0) / rebates, cumulative */
	int64_t open_qty;	/* remaining qty of reserved orders (both sides) */
	int64_t value;		/* cached: floor(net x mark / D), or cost without a mark */
	int64_t im;		/* cached: IM(|value|) */
	int64_t mm;		/* cached: MM(|value|) */
	uint64_t last_seq;	/* ME seq of the last fill applied */
	uint64_t version;	/* +1 per fill leg */
};

/* One live order (an open-addressing table entry). 64 bytes. */
struct rsx_risk_order {
	rsx_oid_t oid;
	int32_t acct;
	int32_t pos;
	uint32_t symbol_id;
	uint8_t state;		/* enum rsx_risk_order_state */
	uint8_t side;
	uint8_t flags;		/* enum rsx_risk_order_flag */
	uint8_t _pad0;
	int64_t price;
	int64_t remaining;
	int64_t need;		/* collateral reserved for it */
	uint64_t ts_ns;		/* shard clock when reserved (reconciliation) */
};

/* One symbol: config (from CONFIG_APPLIED), tiers, mark, tip, latest BBO. */
struct rsx_risk_symbol {
	struct rsx_symbol_config cfg;
	uint8_t configured;
	uint8_t _pad0[3];
	uint32_t funding_interval_s;
	uint32_t max_funding_rate_bps;
	uint32_t n_tiers;
	uint32_t liq_fee_bps;
	uint32_t ins_share_bps;
	int64_t divisor;	/* D = 10^(pd + qd - cd) */
	int64_t tier_bound[RSX_RISK_TIERS];
	uint32_t tier_imr[RSX_RISK_TIERS];
	uint32_t tier_mmr[RSX_RISK_TIERS];
	uint8_t tiers_custom;	/* 1 once a RISK_PARAM tier table was set */
	uint8_t _pad1[7];
	int64_t mark;		/* 0 = never priced */
	uint64_t tip;		/* last applied ME seq */
	uint64_t me_ts;		/* newest ts_ns seen on the ME stream */
	int64_t bid_px, bid_qty, ask_px, ask_qty;
	uint64_t bbo_ts;
	uint64_t n_fills;
};

struct rsx_risk_event {
	uint16_t kind;		/* enum rsx_risk_event_kind */
	uint16_t reason;
	uint32_t symbol_id;
	int32_t acct;
	uint32_t user_id;
	int64_t value;
	int64_t value2;
	rsx_oid_t oid;
};

/* The outcome of a batch call. */
struct rsx_risk_result {
	int32_t stop;		/* enum rsx_risk_stop */
	int32_t err;		/* RSX_E* for STOP_RECORD, a reason for STOP_BAD_CONFIG */
	uint32_t symbol_id;
	uint32_t records;	/* records consumed */
	uint64_t expected_seq;	/* STOP_GAP */
	uint64_t got_seq;
	uint64_t consumed;	/* bytes consumed */
};

/* A margin view of one account (128-bit sums folded to saturated int64 only for display). */
struct rsx_risk_margin {
	int64_t collateral;
	int64_t frozen;
	int64_t equity;		/* saturated to int64 */
	int64_t im;
	int64_t mm;
	int64_t available;	/* equity - im - frozen, saturated */
	int64_t withdrawable;	/* min(collateral, available), >= 0 */
	int32_t liquidatable;
	int32_t positions;	/* positions with net != 0 */
};

/* One order of a liquidation round (rsx_risk_liq_plan). */
struct rsx_risk_liq_order {
	uint32_t symbol_id;
	uint8_t side;
	uint8_t _pad0[3];
	int64_t qty;
	int64_t price;
	int64_t mark;
};

/* The shard. Python fills every pointer and capacity; counts start at 0. */
struct rsx_risk {
	struct rsx_risk_account *accounts;
	int32_t *user_hash;		/* user_hash_mask + 1 slots, -1 = empty */
	struct rsx_risk_position *positions;
	struct rsx_risk_order *orders;	/* order_mask + 1 entries */
	struct rsx_risk_symbol *symbols;	/* max_symbols entries, index = symbol_id */
	uint16_t *vshard_owner;		/* RSX_RISK_VSHARDS entries */
	struct rsx_risk_event *events;
	uint32_t max_users;
	uint32_t user_hash_mask;
	uint32_t max_positions;
	uint32_t order_mask;
	uint32_t max_orders;		/* live orders allowed (<= half the table) */
	uint32_t max_symbols;
	uint32_t events_cap;
	uint32_t n_users;
	uint32_t n_positions;
	uint32_t n_orders;
	uint32_t n_events;
	uint16_t shard_id;
	uint8_t collateral_decimals;
	uint8_t replay;			/* 1: no liquidation checks (recovery) */
	uint64_t limit_seq;		/* apply_stream stops before a seq above it; 0 = no limit */
	int64_t default_max_position;
	int64_t insurance_fund;
	int64_t fee_revenue;
	int64_t funding_clearing;
	uint32_t default_liq_fee_bps;
	uint32_t default_ins_share_bps;
	/* counters */
	uint64_t fills_applied;
	uint64_t dup_skipped;
	uint64_t late_acks;
	uint64_t unknown_terminals;
	uint64_t reconciled;
	uint64_t saturations;
	uint64_t orders_accepted;
	uint64_t orders_rejected;
};

/* ---- state (risk_state.c) ---- */

/* Check pointers, capacities and masks; 0 or RSX_EINVALID. Does not clear memory. */
int rsx_risk_init(struct rsx_risk *r);

/* The fixed user -> virtual shard hash (MurmurHash3 fmix32, & 4095). */
uint32_t rsx_risk_vshard(uint32_t user_id);

/* 1 if this shard serves user_id (vshard table), else 0. */
int rsx_risk_owns(const struct rsx_risk *r, uint32_t user_id);

/* The account slot of user_id, or -1. */
int32_t rsx_risk_find_account(const struct rsx_risk *r, uint32_t user_id);

/* The account slot of user_id, created (zeroed) if new; RSX_EINVALID if the table is full. */
int32_t rsx_risk_open_account(struct rsx_risk *r, uint32_t user_id);

/* The position slot of (acct, symbol), or -1. */
int32_t rsx_risk_find_position(const struct rsx_risk *r, int32_t acct, uint32_t symbol_id);

/* Rebuild the user hash from accounts[0..n_users) (after loading a snapshot); 0 or RSX_EINVALID. */
int rsx_risk_rebuild_users(struct rsx_risk *r);

/* Insert orders (snapshot load); 0, or RSX_EINVALID if the table is full or an id repeats. */
int rsx_risk_load_orders(struct rsx_risk *r, const struct rsx_risk_order *orders, uint32_t n);

/* Copy the live orders out (snapshot); returns the count (<= cap) or RSX_EINVALID if cap is short. */
int rsx_risk_dump_orders(const struct rsx_risk *r, struct rsx_risk_order *out, uint32_t cap);

/* The live order with this id, copied to *out; 0 if found, -1 if not. */
int rsx_risk_get_order(const struct rsx_risk *r, const rsx_oid_t *oid, struct rsx_risk_order *out);

/*
 * Move amount (> 0) from one endpoint to another: an account slot or one of
 * RSX_RISK_EXTERNAL/FUND/CLEARING/REVENUE. Both sides are checked before
 * either changes. Returns 0, RSX_EINVALID (bad endpoint or amount <= 0) or
 * RSX_EOVERFLOW. Account versions are bumped.
 */
int rsx_risk_move(struct rsx_risk *r, int32_t from, int32_t to, int64_t amount);

/*
 * Recompute every cached number from the positions and compare it with the
 * incremental state (values, IM, MM, the 128-bit sums, frozen = sum of needs,
 * open_qty, order counts). Returns the number of mismatches (0 = consistent).
 */
int64_t rsx_risk_audit(const struct rsx_risk *r);


/* ---- margin and prices (risk_margin.c) ---- */

/* floor(p x q / D) for the symbol (V in specs/risk.md 1); 0 or RSX_EOVERFLOW / RSX_EINVALID. */
int rsx_risk_value(const struct rsx_risk *r, uint32_t symbol_id, int64_t price, int64_t qty, int64_t *out);

/* IM (which = 0) or MM (which = 1) of a notional under the symbol's tiers; RSX_EINVALID for a bad symbol. */
int rsx_risk_tier_margin(const struct rsx_risk *r, uint32_t symbol_id, int64_t notional, int which, int64_t *out);

/* The margin state of an account; 0 or RSX_EINVALID. */
int rsx_risk_margin(const struct rsx_risk *r, int32_t acct, struct rsx_risk_margin *out);

/*
 * Apply a CONFIG_APPLIED: RSX_REASON_NONE (0) or a reason (BAD_NUMBER for an
 * incoherent config, VALUE_OUT_OF_RANGE for decimals that do not fit the
 * collateral scale, UNKNOWN_SYMBOL for symbol_id >= max_symbols). Changing the
 * decimals of a symbol that has positions is refused (VALUE_OUT_OF_RANGE).
 * The caller recomputes the symbol's positions (rsx_risk_set_mark).
 */
int rsx_risk_configure_symbol(struct rsx_risk *r, const struct rsx_config *rec);

/*
 * Check a tier table without applying it: n in 1..8; bounds increasing, in
 * (0, 2^53]; mmr <= imr <= 10000; rates non-decreasing. 0 or RSX_EINVALID.
 */
int rsx_risk_tiers_check(uint32_t n, const int64_t *bounds, const uint32_t *imr, const uint32_t *mmr);

/*
 * Replace a symbol's tier table (rules of rsx_risk_tiers_check). 0 or
 * RSX_EINVALID. The caller recomputes the symbol's positions.
 */
int rsx_risk_set_tiers(struct rsx_risk *r, uint32_t symbol_id, uint32_t n, const int64_t *bounds,
		       const uint32_t *imr, const uint32_t *mmr);

/*
 * Set a symbol's mark (>= 0; 0 = unpriced) and revalue the positions listed
 * in pos_index (the symbol's positions; others are ignored). Accounts that are
 * liquidatable afterwards and not in liquidation are written to out (up to
 * cap). Returns how many were found (may exceed cap: then only cap written),
 * or RSX_EINVALID.
 */
int rsx_risk_set_mark(struct rsx_risk *r, uint32_t symbol_id, int64_t mark, const int32_t *pos_index,
		      uint32_t n, int32_t *out, uint32_t cap);

/* Liquidatable accounts among accts[0..n) (not already in liquidation) -> out; returns the count. */
int rsx_risk_check_accounts(const struct rsx_risk *r, const int32_t *accts, uint32_t n, int32_t *out, uint32_t cap);

/* ---- ME stream, gateway requests, reconciliation (risk_stream.c) ---- */

/*
 * Apply ME records (back-to-back v1 records of any ME stream). Stops at the
 * first record that cannot be applied (res->stop says why; nothing of that
 * record is applied) and returns the bytes consumed.
 */
size_t rsx_risk_apply_stream(struct rsx_risk *r, const void *buf, size_t n, struct rsx_risk_result *res);

/*
 * Pre-trade: process gateway requests (NEW_ORDER, CANCEL_ORDER, CANCEL_ALL,
 * AMEND_ORDER). Accepted requests are copied to out_me (risk timestamps set,
 * CRC resealed), refusals become ORDER_FAILED records in out_gw; *me_len and
 * *gw_len are advanced. Stops (STOP_OUT) when an output could not take one
 * more record. Returns the bytes consumed.
 */
size_t rsx_risk_submit(struct rsx_risk *r, const void *buf, size_t n, uint64_t now_ns,
		       void *out_me, size_t me_cap, size_t *me_len,
		       void *out_gw, size_t gw_cap, size_t *gw_len, struct rsx_risk_result *res);

/*
 * Track an order placed by the shard itself (a liquidation round): inserted
 * PENDING with need 0 and the LIQ flag. 0, RSX_EINVALID (full, duplicate, bad acct).
 */
int rsx_risk_track_order(struct rsx_risk *r, const rsx_oid_t *oid, int32_t acct, uint32_t symbol_id,
			 uint8_t side, int64_t price, int64_t qty, uint64_t ts_ns);

/*
 * Recompute the reservation of every live order of a symbol under its current
 * config and tiers (after CONFIG_APPLIED or a tier change). Returns the number
 * of orders visited or RSX_EINVALID.
 */
int rsx_risk_renormalise(struct rsx_risk *r, uint32_t symbol_id);

/*
 * Release every PENDING order whose symbol's ME clock has passed
 * ts_ns + ack_timeout_ns; each released order is copied to out (up to cap;
 * the sweep stops at cap). Returns the number released.
 */
int rsx_risk_reconcile(struct rsx_risk *r, uint64_t ack_timeout_ns, struct rsx_risk_order *out, uint32_t cap);

/* ---- fills, funding, liquidation (risk_fill.c, risk_liq.c) ---- */

/*
 * A trade between two accounts of this shard that does not come from a
 * book: ADL. buyer and seller are account slots (distinct), no fees.
 * All-or-nothing; 0, RSX_EINVALID or RSX_EOVERFLOW.
 */
int rsx_risk_synthetic_fill(struct rsx_risk *r, uint32_t symbol_id, int32_t buyer, int32_t seller,
			    int64_t price, int64_t qty);

/*
 * The collateral change of closing acct's position in symbol_id in pieces
 * qtys[0..n) at price (the sequence rsx_risk_synthetic_fill would apply),
 * without changing anything. 0, RSX_EINVALID (a piece larger than the rest
 * of the position) or RSX_EOVERFLOW.
 */
int rsx_risk_preview_close(const struct rsx_risk *r, int32_t acct, uint32_t symbol_id, const int64_t *qtys,
			   uint32_t n, int64_t price, int64_t *delta);

/*
 * Funding amounts for the symbol's positions in pos_index (net != 0 only)
 * at mark and rate_e8 (specs/risk.md 6): out_pos/out_amount get one row per
 * position (up to cap). Returns the row count or RSX_EINVALID / RSX_EOVERFLOW.
 */
int rsx_risk_funding_amounts(const struct rsx_risk *r, uint32_t symbol_id, int64_t mark, int64_t rate_e8,
			     const int32_t *pos_index, uint32_t n, int32_t *out_pos, int64_t *out_amount,
			     uint32_t cap);

/*
 * Apply funding payments: for each row, the account of user_ids[i] gets
 * amounts[i] (signed) on its position in symbol_id, balanced against the
 * clearing account; a missing account or position is created (recovery may
 * replay a settlement before the fills that opened the position). All rows
 * are checked first; any failure applies none. Returns 0, RSX_EINVALID
 * (user 0, tables full) or RSX_EOVERFLOW.
 */
int rsx_risk_apply_funding(struct rsx_risk *r, uint32_t symbol_id, const uint32_t *user_ids,
			   const int64_t *amounts, uint32_t n);

/*
 * Plan a liquidation round for acct at slippage slip_bps: one order per
 * position with net != 0, a mark and an ACTIVE symbol (out, up to cap); *worst = the shortfall
 * if all filled at their limits and paid the liquidation fee (>= 0).
 * Returns the order count or RSX_EINVALID / RSX_EOVERFLOW.
 */
int rsx_risk_liq_plan(const struct rsx_risk *r, int32_t acct, uint32_t slip_bps,
		      struct rsx_risk_liq_order *out, uint32_t cap, int64_t *worst);

/*
 * ADL candidates for a symbol: positions in pos_index whose net has the
 * sign `sign` (+1 / -1), not in liquidation, with their rank keys
 * (profitable 1/0, score). Returns the count written (<= cap).
 */
int rsx_risk_adl_candidates(const struct rsx_risk *r, uint32_t symbol_id, int sign, const int32_t *pos_index,
			    uint32_t n, int32_t *out_pos, int8_t *out_profitable, int64_t *out_score, uint32_t cap);

#endif
