/*
 * numbers.c - symbol configuration checks, order validation, checked math.
 */
#include "rsx/errors.h"
#include "rsx/numbers.h"

int rsx_symbol_config_check(const struct rsx_symbol_config *cfg)
{
	if (cfg->price_decimals > RSX_DECIMALS_MAX || cfg->qty_decimals > RSX_DECIMALS_MAX)
		return RSX_EINVALID;
	if (cfg->tick_size.raw <= 0 || cfg->lot_size.raw <= 0)
		return RSX_EINVALID;
	if (cfg->min_qty.raw < cfg->lot_size.raw || cfg->min_qty.raw % cfg->lot_size.raw != 0)
		return RSX_EINVALID;
	if (cfg->max_qty.raw < cfg->min_qty.raw || cfg->max_qty.raw % cfg->lot_size.raw != 0)
		return RSX_EINVALID;
	if (cfg->status > RSX_SYMBOL_CLOSE_ONLY)
		return RSX_EINVALID;
	if (cfg->maintenance_margin_bps > cfg->initial_margin_bps || cfg->initial_margin_bps > 10000)
		return RSX_EINVALID;
	if (cfg->maker_fee_bps < -10000 || cfg->maker_fee_bps > 10000 ||
	    cfg->taker_fee_bps < -10000 || cfg->taker_fee_bps > 10000)
		return RSX_EINVALID;
	/* A maker rebate larger than the taker fee would pay out money on every self-trade. */
	if (cfg->maker_fee_bps + cfg->taker_fee_bps < 0)
		return RSX_EINVALID;
	return 0;
}

void rsx_symbol_config_from_record(struct rsx_symbol_config *cfg, const struct rsx_config *rec)
{
	*cfg = (struct rsx_symbol_config){
		.symbol_id = rec->symbol_id,
		.price_decimals = rec->price_decimals,
		.qty_decimals = rec->qty_decimals,
		.status = rec->status,
		.tick_size = rec->tick_size,
		.lot_size = rec->lot_size,
		.min_qty = rec->min_qty,
		.max_qty = rec->max_qty,
		.maker_fee_bps = rec->maker_fee_bps,
		.taker_fee_bps = rec->taker_fee_bps,
		.initial_margin_bps = rec->initial_margin_bps,
		.maintenance_margin_bps = rec->maintenance_margin_bps,
		.config_version = rec->config_version,
	};
}

void rsx_symbol_config_to_record(struct rsx_config *rec, const struct rsx_symbol_config *cfg)
{
	rec->symbol_id = cfg->symbol_id;
	rec->config_version = cfg->config_version;
	rec->tick_size = cfg->tick_size;
	rec->lot_size = cfg->lot_size;
	rec->min_qty = cfg->min_qty;
	rec->max_qty = cfg->max_qty;
	rec->price_decimals = cfg->price_decimals;
	rec->qty_decimals = cfg->qty_decimals;
	rec->status = cfg->status;
	rec->maker_fee_bps = cfg->maker_fee_bps;
	rec->taker_fee_bps = cfg->taker_fee_bps;
	rec->initial_margin_bps = cfg->initial_margin_bps;
	rec->maintenance_margin_bps = cfg->maintenance_margin_bps;
}

static int fits(__int128 v)
{
	return v >= INT64_MIN && v <= INT64_MAX;
}

int rsx_notional(rsx_price_t price, rsx_qty_t qty, int64_t *out)
{
	__int128 v = (__int128)price.raw * qty.raw;
	if (!fits(v))
		return RSX_EOVERFLOW;
	*out = (int64_t)v;
	return 0;
}

int rsx_mul_div_floor(int64_t a, int64_t b, int64_t d, int64_t *out)
{
	if (d <= 0)
		return RSX_EINVALID;
	__int128 p = (__int128)a * b;
	__int128 q = p / d;
	if (p % d != 0 && p < 0)
		q -= 1;	/* C division truncates toward zero; floor goes down */
	if (!fits(q))
		return RSX_EOVERFLOW;
	*out = (int64_t)q;
	return 0;
}

int rsx_add(int64_t a, int64_t b, int64_t *out)
{
	if (__builtin_add_overflow(a, b, out))
		return RSX_EOVERFLOW;
	return 0;
}

int rsx_order_check(const struct rsx_symbol_config *cfg, rsx_price_t price, rsx_qty_t qty)
{
	return rsx_order_check_inline(cfg, price, qty);
}
