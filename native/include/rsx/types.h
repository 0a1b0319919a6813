/*
 * rsx/types.h - fixed-point scalars and small enums shared by every module.
 *
 * Price and Qty are distinct one-field structs so that passing a quantity
 * where a price is expected does not compile. Both are int64 in the symbol's
 * smallest unit (specs/numbers.md); floats never appear on the order path.
 */
#ifndef RSX_TYPES_H
#define RSX_TYPES_H

#include <stdint.h>

typedef struct { int64_t raw; } rsx_price_t;
typedef struct { int64_t raw; } rsx_qty_t;

/* UUIDv7 minted by the gateway, in RFC 9562 byte order. */
typedef struct { uint8_t b[16]; } rsx_oid_t;

static inline rsx_price_t rsx_price(int64_t raw) { rsx_price_t p = { raw }; return p; }
static inline rsx_qty_t rsx_qty(int64_t raw) { rsx_qty_t q = { raw }; return q; }

enum rsx_side {
	RSX_SIDE_BUY = 0,
	RSX_SIDE_SELL = 1,
};

enum rsx_tif {
	RSX_TIF_GTC = 0,
	RSX_TIF_IOC = 1,
	RSX_TIF_FOK = 2,
};

/* Bits of an order's `flags` byte. Unknown bits are rejected (BAD_FLAGS). */
enum rsx_order_flag {
	RSX_ORDER_POST_ONLY   = 1 << 0,
	RSX_ORDER_REDUCE_ONLY = 1 << 1,
	RSX_ORDER_LIQUIDATION = 1 << 2,	/* placed by the liquidation engine */
};
#define RSX_ORDER_FLAGS_ALL (RSX_ORDER_POST_ONLY | RSX_ORDER_REDUCE_ONLY | RSX_ORDER_LIQUIDATION)

/* Self-trade prevention, chosen per order. */
enum rsx_stp {
	RSX_STP_CANCEL_TAKER = 0,	/* default */
	RSX_STP_CANCEL_MAKER = 1,
	RSX_STP_CANCEL_BOTH  = 2,
	RSX_STP_NONE         = 3,	/* self-trades fill (replays, tests) */
};

enum rsx_symbol_status {
	RSX_SYMBOL_ACTIVE = 0,
	RSX_SYMBOL_PAUSED = 1,	/* cancels only */
	RSX_SYMBOL_HALTED = 2,	/* nothing */
	RSX_SYMBOL_CLOSE_ONLY = 3,	/* cancels and reduce-only orders (the ME enforces it; specs/me.md 5) */
};

/* QUERY.kind and QUERY_DONE.kind: what a gateway asks a risk shard for (specs/records.md). */
enum rsx_query_kind {
	RSX_QUERY_OPEN_ORDERS = 1,	/* answered by OPEN_ORDER records */
	RSX_QUERY_POSITIONS   = 2,	/* answered by POSITION records */
	RSX_QUERY_ACCOUNT     = 3,	/* answered by one ACCOUNT record */
};

/* ACCOUNT.flags bits. */
enum rsx_account_flag {
	RSX_ACCOUNT_IN_LIQUIDATION = 1,
};

enum rsx_liq_kind {
	RSX_LIQ_ROUND     = 1,	/* a reduce-only IOC round was placed */
	RSX_LIQ_INSURANCE = 2,	/* the insurance fund absorbed a shortfall */
	RSX_LIQ_ADL       = 3,	/* a position was auto-deleveraged */
	RSX_LIQ_DONE      = 4,	/* the user is no longer liquidatable */
};

/* Failure / cancel reasons (u16 on the wire), from reason.def. */
enum rsx_reason {
#define RSX_REASON(name, code, msg) RSX_REASON_##name = code,
#include "reason.def"
#undef RSX_REASON
};

/* Order statuses (u8 on the wire), from status.def. */
enum rsx_status {
#define RSX_STATUS(name, code, terminal, msg) RSX_STATUS_##name = code,
#include "status.def"
#undef RSX_STATUS
};

#endif
