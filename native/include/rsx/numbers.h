/*
 * rsx/numbers.h - symbol configuration, order validation and 128-bit-safe
 * money arithmetic (specs/numbers.md).
 *
 * Every product of two int64 values is computed in __int128 and refused with
 * RSX_EOVERFLOW if it does not fit in int64: nothing that overflowed may
 * reach a WAL.
 */
#ifndef RSX_NUMBERS_H
#define RSX_NUMBERS_H

#include <stdint.h>

#include "records.h"
#include "types.h"

#define RSX_DECIMALS_MAX 18

/* The in-memory form of a symbol's configuration (CONFIG_APPLIED on the wire). */
struct rsx_symbol_config {
	uint32_t symbol_id;
	uint8_t price_decimals;	/* raw price = human price x 10^price_decimals */
	uint8_t qty_decimals;
	uint8_t status;		/* enum rsx_symbol_status */
	uint8_t _pad0;
	rsx_price_t tick_size;	/* raw units, > 0 */
	rsx_qty_t lot_size;	/* raw units, > 0 */
	rsx_qty_t min_qty;	/* raw units, a multiple of lot_size, >= lot_size */
	rsx_qty_t max_qty;	/* raw units, >= min_qty */
	int32_t maker_fee_bps;
	int32_t taker_fee_bps;
	uint32_t initial_margin_bps;
	uint32_t maintenance_margin_bps;	/* <= initial_margin_bps */
	uint64_t config_version;
};

/* 0 if cfg is coherent, else RSX_EINVALID (see specs/numbers.md for the rules). */
int rsx_symbol_config_check(const struct rsx_symbol_config *cfg);

void rsx_symbol_config_from_record(struct rsx_symbol_config *cfg, const struct rsx_config *rec);
void rsx_symbol_config_to_record(struct rsx_config *rec, const struct rsx_symbol_config *cfg);

/*
 * Validate a limit order's price and quantity against cfg. Returns
 * RSX_REASON_NONE (0) or the first failing reason, in this order:
 * PRICE_NOT_POSITIVE, QTY_NOT_POSITIVE, PRICE_OFF_TICK, QTY_OFF_LOT,
 * QTY_BELOW_MIN, QTY_ABOVE_MAX, NOTIONAL_OVERFLOW.
 */
int rsx_order_check(const struct rsx_symbol_config *cfg, rsx_price_t price, rsx_qty_t qty);

/*
 * The body of rsx_order_check, inline so the matching engine's hot path runs
 * the very same checks without a call. A power-of-two tick or lot (1
 * included) is tested with a mask instead of a division.
 */
static inline int rsx_order_check_inline(const struct rsx_symbol_config *cfg, rsx_price_t price,
					 rsx_qty_t qty)
{
	int64_t tick = cfg->tick_size.raw, lot = cfg->lot_size.raw, notional;

	if (price.raw <= 0)
		return RSX_REASON_PRICE_NOT_POSITIVE;
	if (qty.raw <= 0)
		return RSX_REASON_QTY_NOT_POSITIVE;
	if ((tick & (tick - 1)) == 0) {
		if (price.raw & (tick - 1))
			return RSX_REASON_PRICE_OFF_TICK;
	} else if (price.raw % tick != 0) {
		return RSX_REASON_PRICE_OFF_TICK;
	}
	if ((lot & (lot - 1)) == 0) {
		if (qty.raw & (lot - 1))
			return RSX_REASON_QTY_OFF_LOT;
	} else if (qty.raw % lot != 0) {
		return RSX_REASON_QTY_OFF_LOT;
	}
	if (qty.raw < cfg->min_qty.raw)
		return RSX_REASON_QTY_BELOW_MIN;
	if (qty.raw > cfg->max_qty.raw)
		return RSX_REASON_QTY_ABOVE_MAX;
	if (__builtin_mul_overflow(price.raw, qty.raw, &notional))
		return RSX_REASON_NOTIONAL_OVERFLOW;
	return RSX_REASON_NONE;
}

/* *out = price x qty (raw units multiplied, see specs/numbers.md); RSX_EOVERFLOW if it does not fit. */
int rsx_notional(rsx_price_t price, rsx_qty_t qty, int64_t *out);

/* *out = floor(a x b / d) with a 128-bit intermediate; d > 0 else RSX_EINVALID; RSX_EOVERFLOW if out of int64. */
int rsx_mul_div_floor(int64_t a, int64_t b, int64_t d, int64_t *out);

/* *out = a + b, or RSX_EOVERFLOW. */
int rsx_add(int64_t a, int64_t b, int64_t *out);

#endif
