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
#define RSX_RISK_PLAN_MAX 256		/* open positions a liquidation round can close at once */

/* Endpoints of rsx_risk_move other than an account slot (>= 0). */
#define RSX_RISK_EXTERNAL (-1)		/* outside the venue (deposits, withdrawals) */
#define RSX_RISK_FUND (-2)		/* the insurance fund */
#define RSX_RISK_CLEARING (-3)		/* the funding clearing account */
#define RSX_RISK_REVENUE (-4)		/* fee revenue */

enum rsx_risk_acct_flag {
	RSX_RISK_ACCT_LIQ = 1,		/* in liquidation: only liquidation orders */
	RSX_RISK_ACCT_DIRTY = 2,	/* changed since the last push (in the dirty list) */
};

enum rsx_risk_pos_flag {
	RSX_RISK_POS_DIRTY = 1,		/* changed since the last push */
};

enum rsx_risk_order_state {
	RSX_RISK_ORD_EMPTY = 0,
	RSX_RISK_ORD_PENDING = 1,	/* reserved by risk, no ACCEPTED/FAILED seen yet */
	RSX_RISK_ORD_ACKED = 2,		/* the ME accepted it */
};

enum rsx_risk_order_flag {
	RSX_RISK_ORD_LIQ = 1,		/* a liquidation order: need 0, its end counts in liq_inflight */
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
	RSX_RISK_STOP_CUT = 12,		/* the next record is at or past the symbol's funding_cut_ns */
};

/* Events the C paths hand to Python (struct rsx_risk.events). */
enum rsx_risk_event_kind {
	RSX_RISK_EV_LIQUIDATABLE = 1,	/* acct: liquidatable, not in liquidation yet: queue a decision */
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
	uint16_t liq_round;	/* round of the liquidation in progress (0: none yet) */
	uint16_t liq_inflight;	/* its liquidation orders not ended yet */
	int32_t liq_slot;	/* index in the shard's liquidation list, -1 = not in it */
	uint64_t liq_next_at;	/* shard clock at which the next round is due */
	int64_t liq_reserved;	/* insurance fund reserved for its round */
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
	int32_t order_head;	/* first of its live orders (slab slot), -1 */
	uint32_t flags;		/* enum rsx_risk_pos_flag */
};

/* One live order: a slab entry (stable slot), found by id through the order hash. 128 bytes. */
struct rsx_risk_order {
	rsx_oid_t oid;
	int32_t acct;
	int32_t pos;
	uint32_t symbol_id;
	uint8_t state;		/* enum rsx_risk_order_state */
	uint8_t side;
	uint8_t flags;		/* enum rsx_risk_order_flag */
	uint8_t tif;
	int64_t price;
	int64_t remaining;
	int64_t need;		/* collateral reserved for it */
	uint64_t ts_ns;		/* shard clock when reserved (reconciliation) */
	int64_t filled;		/* quantity filled so far */
	uint64_t placed_ts_ns;	/* the gateway's time stamp of the order */
	int32_t prev;		/* its position's list; the free list uses next */
	int32_t next;
	uint16_t origin;	/* the gateway it came from (RSX_RISK_NO_ORIGIN: the shard itself, or replay) */
	uint8_t _pad0[2];
	uint8_t client_id[20];
	uint8_t _pad1[16];
};

#define RSX_RISK_NO_ORIGIN 0xFFFF

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
	uint8_t mark_stale;	/* 1: recovered, no mark from a fresh input since (MARK_STALE) */
	uint8_t _pad1[6];
	int64_t mark;		/* 0 = never priced */
	uint64_t tip;		/* last applied ME seq */
	uint64_t me_ts;		/* newest ts_ns seen on the ME stream */
	int64_t bid_px, bid_qty, ask_px, ask_qty;
	uint64_t bbo_ts;
	uint64_t n_fills;
	uint64_t funding_cut_ns;	/* apply_stream stops before a record at/after it (0: none) */
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

/* Why rsx_risk_liq_decide stopped. */
enum rsx_risk_liq_stop {
	RSX_RISK_LIQ_DONE = 0,		/* every account consumed */
	RSX_RISK_LIQ_ADL = 1,		/* accts[consumed] needs ADL (not consumed): decide it, then resume */
	RSX_RISK_LIQ_OUT = 2,		/* an output buffer is full: journal and drain, then resume */
	RSX_RISK_LIQ_DEADLINE = 3,	/* the time budget ran out: resume later */
};

/* Outputs and counts of rsx_risk_liq_decide. */
struct rsx_risk_liq_out {
	uint8_t *liq;		/* LIQUIDATION records (seq 0: the journal sequences them) */
	size_t liq_cap;
	size_t liq_len;
	uint8_t *me;		/* CANCEL_ALL and NEW_ORDER records for the MEs (seq 0) */
	size_t me_cap;
	size_t me_len;
	int32_t force_book;	/* input: this account goes to the book at max slippage (ADL found
				   no counterparty), -1 = none */
	uint32_t consumed;	/* accounts consumed from the input */
	int32_t stop;		/* enum rsx_risk_liq_stop */
	uint32_t rounds;	/* accounts that got a round */
	uint32_t settled;	/* accounts settled (INSURANCE and/or DONE) */
	uint32_t skipped;	/* nothing to decide (recovered, not due, unclosable, no order room) */
};

/* One output link of a shard (rsx_risk_route, rsx_risk_link_frame). */
struct rsx_risk_link {
	uint8_t *buf;		/* framed records ready for the CMP sender */
	size_t cap;
	size_t len;
	uint32_t stream_id;	/* the link's stream */
	uint32_t _pad0;
	uint64_t next_seq;	/* seq of the next record framed on it (starts at 1) */
	uint64_t out_ts_ns;	/* rsx_risk_route: a NEW_ORDER's risk_out_ts_ns (CLOCK_REALTIME, taken by the
				   caller just before routing; specs/latency.md 3); 0 = leave the stamp as it is */
};

/* The shard. Python fills every pointer and capacity; counts start at 0. */
struct rsx_risk {
	struct rsx_risk_account *accounts;
	int32_t *user_hash;		/* user_hash_mask + 1 slots, -1 = empty */
	struct rsx_risk_position *positions;
	struct rsx_risk_order *orders;	/* the slab: max_orders entries */
	int32_t *order_hash;		/* order_mask + 1 slots (order id -> slab slot), -1 = empty */
	struct rsx_risk_symbol *symbols;	/* max_symbols entries, index = symbol_id */
	uint16_t *vshard_owner;		/* RSX_RISK_VSHARDS entries */
	struct rsx_risk_event *events;
	int32_t *liq_list;		/* max_users entries: accounts in liquidation */
	int32_t *dirty_list;		/* max_users entries: accounts flagged DIRTY */
	uint32_t max_users;
	uint32_t user_hash_mask;
	uint32_t max_positions;
	uint32_t order_mask;
	uint32_t max_orders;		/* slab size (<= half the hash) */
	uint32_t max_symbols;
	uint32_t events_cap;
	uint32_t n_users;
	uint32_t n_positions;
	uint32_t n_orders;
	uint32_t n_events;
	uint32_t order_hwm;		/* slab slots ever used */
	int32_t order_free;		/* head of the slab's free list, -1 */
	uint32_t n_liq;
	uint32_t n_dirty;
	uint16_t shard_id;
	uint8_t collateral_decimals;
	uint8_t replay;			/* 1: no liquidation checks, no dirty tracking (recovery) */
	uint64_t limit_seq;		/* apply_stream stops before a seq above it; 0 = no limit */
	int64_t default_max_position;
	int64_t insurance_fund;
	int64_t fee_revenue;
	int64_t funding_clearing;
	int64_t insurance_reserved;	/* sum of the accounts' liq_reserved */
	uint64_t liq_id_counter;	/* last counter used in a liquidation order id */
	uint32_t default_liq_fee_bps;
	uint32_t default_ins_share_bps;
	/* liquidation parameters in force (RiskParams) */
	uint64_t liq_base_delay_ns;
	uint32_t liq_base_slip_bps;
	uint32_t liq_max_slip_bps;
	uint32_t liq_max_rounds;
	uint32_t recon_cursor;		/* next slab slot the reconciliation sweep looks at */
	/* counters */
	uint64_t fills_applied;
	uint64_t dup_skipped;
	uint64_t late_acks;
	uint64_t unknown_terminals;
	uint64_t reconciled;
	uint64_t saturations;
	uint64_t orders_accepted;
	uint64_t orders_rejected;
	uint64_t queries;
	uint64_t liq_rounds;		/* ROUND records applied */
	uint64_t liq_adl;		/* ADL records applied */
	uint64_t liq_insurance;		/* INSURANCE records applied */
	uint64_t liq_done;		/* DONE records applied */
};

/* ---- state (risk_state.c) ---- */

/* Check pointers, capacities and masks; 0 or RSX_EINVALID. Does not clear memory. */
int rsx_risk_init(struct rsx_risk *r);

/* Empty the order slab and hash (orders, order_hash, order_hwm, order_free, n_orders). */
void rsx_risk_orders_clear(struct rsx_risk *r);

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

/*
 * Rebuild what is derived from accounts[0..n_users) after loading a snapshot:
 * the user hash, the liquidation list (from the IN_LIQUIDATION flags) and the
 * dirty list (emptied, flags cleared). 0 or RSX_EINVALID.
 */
int rsx_risk_rebuild_users(struct rsx_risk *r);

/*
 * Empty the order slab and insert orders (snapshot load), relinking each into
 * its position's list. 0, or RSX_EINVALID if the slab is full or an id repeats.
 */
int rsx_risk_load_orders(struct rsx_risk *r, const struct rsx_risk_order *orders, uint32_t n);

/* Copy the live orders out (snapshot); returns the count (<= cap) or RSX_EINVALID if cap is short. */
int rsx_risk_dump_orders(const struct rsx_risk *r, struct rsx_risk_order *out, uint32_t cap);

/* The live order with this id, copied to *out; 0 if found, -1 if not. */
int rsx_risk_get_order(const struct rsx_risk *r, const rsx_oid_t *oid, struct rsx_risk_order *out);

/*
 * Move amount (> 0) from one endpoint to another: an account slot or one of
 * RSX_RISK_EXTERNAL/FUND/CLEARING/REVENUE. Both sides are checked before
 * either changes. Returns 0, RSX_EINVALID (bad endpoint or amount <= 0) or
 * RSX_EOVERFLOW. Account versions are bumped, accounts flagged DIRTY.
 */
int rsx_risk_move(struct rsx_risk *r, int32_t from, int32_t to, int64_t amount);

/*
 * Recompute every cached number from the positions and compare it with the
 * incremental state (values, IM, MM, the 128-bit sums, frozen = sum of needs,
 * open_qty, order counts and lists, the liquidation list, insurance_reserved,
 * liq_inflight). Returns the number of mismatches (0 = consistent).
 */
int64_t rsx_risk_audit(const struct rsx_risk *r);

/* Negative balances of accounts with no open position: the bad debt left (a gauge). */
int64_t rsx_risk_bad_debt(const struct rsx_risk *r);


/* ---- margin and prices (risk_margin.c) ---- */

/* floor(p x q / D) for the symbol (V in specs/risk.md 1); 0 or RSX_EOVERFLOW / RSX_EINVALID. */
int rsx_risk_value(const struct rsx_risk *r, uint32_t symbol_id, int64_t price, int64_t qty, int64_t *out);

/* IM (which = 0) or MM (which = 1) of a notional under the symbol's tiers; RSX_EINVALID for a bad symbol. */
int rsx_risk_tier_margin(const struct rsx_risk *r, uint32_t symbol_id, int64_t notional, int which, int64_t *out);

/* The margin state of an account; 0 or RSX_EINVALID. */
int rsx_risk_margin(const struct rsx_risk *r, int32_t acct, struct rsx_risk_margin *out);

/*
 * The checks a CONFIG_APPLIED must pass before any shard applies it (the ME
 * runs the same before it emits one, specs/risk.md 8.2): the symbol config
 * check, decimals against the collateral scale (pd + qd - cd in 0..18), a
 * funding interval of 1 s .. 7 days dividing a day or whole days (0 = the
 * default 8 h), a funding cap <= 10 000 bps. RSX_REASON_NONE or a reason.
 */
int rsx_risk_config_check(const struct rsx_config *rec, uint8_t collateral_decimals);

/*
 * Apply a CONFIG_APPLIED: RSX_REASON_NONE (0) or a reason (those of
 * rsx_risk_config_check, UNKNOWN_SYMBOL for symbol_id >= max_symbols).
 * Changing the decimals of a symbol that has positions is refused
 * (VALUE_OUT_OF_RANGE). The caller recomputes the symbol's positions.
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
 * in pos_index (the symbol's positions, or a slice of them; others are
 * ignored). Accounts that are liquidatable afterwards and not in liquidation
 * are written to out (up to cap). Returns how many were found (may exceed cap:
 * then only cap written), or RSX_EINVALID.
 */
int rsx_risk_set_mark(struct rsx_risk *r, uint32_t symbol_id, int64_t mark, const int32_t *pos_index,
		      uint32_t n, int32_t *out, uint32_t cap);

/* Liquidatable accounts among accts[0..n) (not already in liquidation) -> out; returns the count. */
int rsx_risk_check_accounts(const struct rsx_risk *r, const int32_t *accts, uint32_t n, int32_t *out, uint32_t cap);

/* Every liquidatable account of the shard not in liquidation -> out (up to cap); returns the count. */
int rsx_risk_scan_all(const struct rsx_risk *r, int32_t *out, uint32_t cap);

/* ---- ME stream, gateway requests, reconciliation (risk_stream.c) ---- */

/*
 * Apply ME records: n bytes of back-to-back v1 records (stride 0), or n / stride
 * records one per stride bytes (a CMP batch). Stops at the first record that
 * cannot be applied (res->stop says why; nothing of that record is applied) and
 * returns the bytes consumed. CANCEL_ORDER, CANCEL_ALL and AMEND_ORDER records
 * on an ME stream are requests the ME journals: they only move the tip.
 */
size_t rsx_risk_apply_stream(struct rsx_risk *r, const void *buf, size_t n, size_t stride,
			     struct rsx_risk_result *res);

/*
 * Pre-trade: process gateway requests (NEW_ORDER, CANCEL_ORDER, CANCEL_ALL,
 * AMEND_ORDER) and queries (QUERY) from gateway `origin`, back-to-back
 * (stride 0) or one per stride bytes. Accepted requests are copied to out_me
 * (risk timestamps set, CRC resealed), refusals become ORDER_FAILED records and
 * queries their answers in out_gw; *me_len and *gw_len are advanced. Stops
 * (STOP_OUT) when an output could not take one more record or answer. Returns
 * the bytes consumed.
 */
size_t rsx_risk_submit(struct rsx_risk *r, const void *buf, size_t n, size_t stride, uint16_t origin,
		       uint64_t now_ns, void *out_me, size_t me_cap, size_t *me_len,
		       void *out_gw, size_t gw_cap, size_t *gw_len, struct rsx_risk_result *res);

/*
 * Recompute the reservation of every live order of a symbol under its current
 * config and tiers (after CONFIG_APPLIED or a tier change). Returns the number
 * of orders visited or RSX_EINVALID.
 */
int rsx_risk_renormalise(struct rsx_risk *r, uint32_t symbol_id);

/*
 * Release every PENDING order whose symbol's ME clock has passed
 * ts_ns + ack_timeout_ns; each released order is copied to out (up to cap).
 * The sweep goes on from r->recon_cursor and looks at most `scan` slab slots
 * (0: to the end of the slab), stopping early at cap; recon_cursor is 0 again
 * once a pass reached the end, so a caller bounds each call's time and runs
 * calls until the cursor is back at 0. A liquidation order released ends it
 * (liq_inflight). Returns the number released.
 */
int rsx_risk_reconcile(struct rsx_risk *r, uint64_t ack_timeout_ns, struct rsx_risk_order *out, uint32_t cap,
		       uint32_t scan);

/* ---- fills and funding (risk_fill.c, risk_liq.c) ---- */

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
 * Funding amounts of n positions given by their signed nets (a funding cut)
 * at mark and rate_e8 (specs/risk.md 6): payers rounded up, receivers down.
 * 0, RSX_EINVALID (unconfigured symbol, mark <= 0, |rate| > 1e8) or RSX_EOVERFLOW.
 */
int rsx_risk_funding_amounts(const struct rsx_risk *r, uint32_t symbol_id, int64_t mark, int64_t rate_e8,
			     const int64_t *nets, uint32_t n, int64_t *out_amount);

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

/* ---- liquidation (risk_liq.c, risk_decide.c) ---- */

/*
 * Plan a liquidation round for acct at slippage slip_bps: one order per
 * position with net != 0, a mark and an ACTIVE symbol (out, up to cap); *worst = the shortfall
 * if all filled at their limits and paid the liquidation fee (>= 0).
 * Returns the order count or RSX_EINVALID / RSX_EOVERFLOW.
 */
int rsx_risk_liq_plan(const struct rsx_risk *r, int32_t acct, uint32_t slip_bps,
		      struct rsx_risk_liq_order *out, uint32_t cap, int64_t *worst);

/*
 * ADL candidates for a symbol: positions in pos_index whose net has the sign
 * `sign` (+1 / -1), whose account is not in liquidation and solvent
 * (equity >= MM) and which show a profit at the mark (specs/risk.md 7), with
 * their score pnl_ratio_bps x leverage_bps. Returns the count written (<= cap).
 */
int rsx_risk_adl_candidates(const struct rsx_risk *r, uint32_t symbol_id, int sign, const int32_t *pos_index,
			    uint32_t n, int32_t *out_pos, int64_t *out_score, uint32_t cap);

/* The fund available to acct's liquidation: insurance_fund - (insurance_reserved - its liq_reserved). */
int64_t rsx_risk_fund_available(const struct rsx_risk *r, int32_t acct);

/*
 * Decide the liquidation of accts[0..n) in order (specs/risk.md 7: entry,
 * rounds, fund gate, settlement, done), applying each decision's records as it
 * is taken (rsx_risk_liq_apply), so later decisions see earlier reservations.
 * LIQUIDATION records go to out->liq, CANCEL_ALL and round orders to out->me.
 * now_ns is the shard clock; deadline_ns (CLOCK_MONOTONIC, 0 = none) bounds
 * the time spent. Stops at an account that needs ADL, an output that is full
 * or the deadline (out->stop). Returns 0 or RSX_EOVERFLOW / RSX_EINVALID.
 */
int rsx_risk_liq_decide(struct rsx_risk *r, const int32_t *accts, uint32_t n, uint64_t now_ns,
			uint64_t deadline_ns, struct rsx_risk_liq_out *out);

/*
 * Apply journaled LIQUIDATION records (ROUND, ADL, INSURANCE, DONE), back to
 * back, live or in recovery: the account's liquidation state, the fund's
 * reservation, tracked liquidation orders, ADL trades and charges, fund
 * payments; liq_id_counter rises to the counter in each record's order id.
 * Returns the number applied, or RSX_EINVALID / RSX_EOVERFLOW with nothing of
 * the failing record applied.
 */
int rsx_risk_liq_apply(struct rsx_risk *r, const void *buf, size_t n);

/* The accounts in liquidation whose next round is due at now_ns (no order in flight) -> out. */
int rsx_risk_liq_due(const struct rsx_risk *r, uint64_t now_ns, int32_t *out, uint32_t cap);

/*
 * A liquidation order id: RFC 9562 UUIDv7 with the 48-bit unix milliseconds of
 * ts_ns, then (shard id, counter) instead of random bits, so ids are unique per
 * shard and carry their counter: unix_ms(48) | 7 (4) | counter bits 57..46 (12)
 * | variant 10 (2) | shard (16) | counter bits 45..0 (46).
 */
void rsx_risk_liq_id(rsx_oid_t *out, uint64_t ts_ns, uint16_t shard_id, uint64_t counter);

/* The counter of an id made by rsx_risk_liq_id (any 16 bytes: the same bit positions). */
uint64_t rsx_risk_liq_id_counter(const rsx_oid_t *oid);

/* ---- views: ACCOUNT, POSITION, OPEN_ORDER records and pushes (risk_view.c) ---- */

/* Frame the ACCOUNT record of acct into out (cap >= 144); returns its size or an error. */
int rsx_risk_account_record(const struct rsx_risk *r, int32_t acct, const rsx_oid_t *request_id, uint64_t ts_ns,
			    void *out, size_t cap);

/* Frame the POSITION record of position slot pos into out; returns its size or an error. */
int rsx_risk_position_record(const struct rsx_risk *r, int32_t pos, const rsx_oid_t *request_id, uint64_t ts_ns,
			     void *out, size_t cap);

/*
 * The mark at which position pos alone would take its account to maintenance
 * (equity == MM), the other positions held at their current values; 0 if no
 * positive price does.
 */
int64_t rsx_risk_liq_price(const struct rsx_risk *r, int32_t pos);

/*
 * Pushes: for each account of the dirty list (oldest first), one ACCOUNT and one
 * POSITION per DIRTY position into out, then clear its flags; stops when out
 * cannot take an account's records. Returns the accounts pushed.
 */
int rsx_risk_push(struct rsx_risk *r, uint64_t ts_ns, void *out, size_t cap, size_t *len);

/* ---- output links (risk_link.c) ---- */

/*
 * Frame back-to-back records in place for a link: seq = link->next_seq++,
 * stream_id = link->stream_id, CRC resealed. Returns the count or an error.
 */
int rsx_risk_link_frame(struct rsx_risk_link *link, void *buf, size_t n);

/*
 * Route back-to-back records by symbol_id to links[symbol_id] (a link per
 * symbol with an ME, NULL elsewhere), appending each framed for its link.
 * Stops before a record whose link is missing (RSX_ESTREAM in *err) or full
 * (-EAGAIN in *err). Returns the bytes consumed.
 */
size_t rsx_risk_route(const void *buf, size_t n, struct rsx_risk_link *const *links, uint32_t nlinks, int *err);

#endif
