/*
 * rsx/ledger.h - the risk core's fill arithmetic for a history store
 * (specs/store.md 3 and 5, specs/risk.md 1, 3.1, 3.4).
 *
 * The store derives fees and realised PnL from the streams after the fact.
 * These entry points run the very functions risk_apply_fill uses (V(p, q),
 * the fee rounding, the open/add/reduce/flip leg), over plain arrays, so the
 * store's numbers are the risk shard's numbers by construction.
 */
#ifndef RSX_LEDGER_H
#define RSX_LEDGER_H

#include <stddef.h>
#include <stdint.h>

/* One leg of one user's position in one symbol, in stream order. */
struct rsx_ledger_leg {
	int64_t price;		/* raw price, > 0 */
	int64_t qty;		/* raw quantity, > 0 */
	int32_t dir;		/* +1 buy, -1 sell */
	uint32_t _pad0;
};

/*
 * Value and fees of n fills: value[i] = floor(price[i] x qty[i] / divisor[i]),
 * taker_fee[i] = fee(value, taker_bps[i]), maker_fee[i] = fee(value, maker_bps[i])
 * (a negative rate is a rebate, rounded down in magnitude). ok[i] = 1, or 0 when
 * the fill cannot be valued (price, qty or divisor <= 0, |bps| > 10000, or a
 * value beyond int64); its outputs are then 0. Returns the number of fills with
 * ok[i] = 0.
 */
size_t rsx_ledger_fill_fees(size_t n, const int64_t *price, const int64_t *qty, const int64_t *divisor,
			    const int32_t *taker_bps, const int32_t *maker_bps, int64_t *value,
			    int64_t *taker_fee, int64_t *maker_fee, uint8_t *ok);

/*
 * Replay n legs of one position (one user, one symbol, in stream order) from
 * (*net, *cost) with the symbol's value divisor; on return *net, *cost hold
 * the position after the last leg and *realised the sum of the realised PnL
 * of the legs. leg_realised (may be NULL) receives each leg's realised PnL.
 * Returns 0, RSX_EINVALID (a leg with price or qty <= 0, dir not +-1, divisor
 * <= 0), or RSX_EOVERFLOW; on an error the outputs are unchanged.
 */
int rsx_ledger_replay(const struct rsx_ledger_leg *legs, size_t n, int64_t divisor, int64_t *net,
		      int64_t *cost, int64_t *realised, int64_t *leg_realised);

#endif
