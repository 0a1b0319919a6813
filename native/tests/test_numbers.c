/* Order validation and 128-bit-safe arithmetic. */
#include "rsx/errors.h"
#include "rsx/numbers.h"
#include "t_helpers.h"

int main(void)
{
	struct rsx_symbol_config cfg = {
		.symbol_id = 1, .price_decimals = 2, .qty_decimals = 6,
		.tick_size = { 50 }, .lot_size = { 1000 },
		.min_qty = { 1000 }, .max_qty = { 1000000000 },
		.maker_fee_bps = -1, .taker_fee_bps = 5,
		.initial_margin_bps = 1000, .maintenance_margin_bps = 500,
	};
	T_EQ(rsx_symbol_config_check(&cfg), 0);

	T_EQ(rsx_order_check(&cfg, rsx_price(5000000), rsx_qty(2000)), RSX_REASON_NONE);
	T_EQ(rsx_order_check(&cfg, rsx_price(0), rsx_qty(2000)), RSX_REASON_PRICE_NOT_POSITIVE);
	T_EQ(rsx_order_check(&cfg, rsx_price(-50), rsx_qty(2000)), RSX_REASON_PRICE_NOT_POSITIVE);
	T_EQ(rsx_order_check(&cfg, rsx_price(50), rsx_qty(0)), RSX_REASON_QTY_NOT_POSITIVE);
	T_EQ(rsx_order_check(&cfg, rsx_price(5000001), rsx_qty(2000)), RSX_REASON_PRICE_OFF_TICK);
	T_EQ(rsx_order_check(&cfg, rsx_price(5000000), rsx_qty(2001)), RSX_REASON_QTY_OFF_LOT);
	cfg.min_qty = rsx_qty(3000);
	T_EQ(rsx_order_check(&cfg, rsx_price(5000000), rsx_qty(2000)), RSX_REASON_QTY_BELOW_MIN);
	cfg.min_qty = rsx_qty(1000);
	T_EQ(rsx_order_check(&cfg, rsx_price(50), rsx_qty(1000001000)), RSX_REASON_QTY_ABOVE_MAX);
	cfg.max_qty = rsx_qty(INT64_MAX - INT64_MAX % 1000);
	T_EQ(rsx_order_check(&cfg, rsx_price(INT64_MAX - INT64_MAX % 50), rsx_qty(2000)),
	     RSX_REASON_NOTIONAL_OVERFLOW);

	int64_t out = 0;
	T_EQ(rsx_notional(rsx_price(5000000), rsx_qty(1500000), &out), 0);
	T_EQ(out, 7500000000000LL);
	T_EQ(rsx_notional(rsx_price(INT64_MAX), rsx_qty(2), &out), RSX_EOVERFLOW);
	T_EQ(rsx_notional(rsx_price(3037000500LL), rsx_qty(3037000500LL), &out), RSX_EOVERFLOW);
	T_EQ(rsx_notional(rsx_price(3037000499LL), rsx_qty(3037000499LL), &out), 0);
	T_EQ(out, 9223372030926249001LL);

	T_EQ(rsx_mul_div_floor(7, 3, 2, &out), 0);
	T_EQ(out, 10);
	T_EQ(rsx_mul_div_floor(-7, 3, 2, &out), 0);
	T_EQ(out, -11);
	T_EQ(rsx_mul_div_floor(INT64_MAX, INT64_MAX, INT64_MAX, &out), 0);
	T_EQ(out, INT64_MAX);
	T_EQ(rsx_mul_div_floor(INT64_MAX, 2, 1, &out), RSX_EOVERFLOW);
	T_EQ(rsx_mul_div_floor(1, 1, 0, &out), RSX_EINVALID);
	T_EQ(rsx_add(INT64_MAX, 1, &out), RSX_EOVERFLOW);

	/* Incoherent configurations. */
	struct rsx_symbol_config bad = cfg;
	bad.tick_size = rsx_price(0);
	T_EQ(rsx_symbol_config_check(&bad), RSX_EINVALID);
	bad = cfg;
	bad.min_qty = rsx_qty(1500);
	T_EQ(rsx_symbol_config_check(&bad), RSX_EINVALID);
	bad = cfg;
	bad.maintenance_margin_bps = 2000;
	T_EQ(rsx_symbol_config_check(&bad), RSX_EINVALID);
	bad = cfg;
	bad.maker_fee_bps = -6;
	T_EQ(rsx_symbol_config_check(&bad), RSX_EINVALID);
	bad = cfg;
	bad.price_decimals = 19;
	T_EQ(rsx_symbol_config_check(&bad), RSX_EINVALID);

	/* Round trip through the CONFIG_APPLIED payload. */
	struct rsx_config rec = { 0 };
	struct rsx_symbol_config back;
	cfg.config_version = 9;
	rsx_symbol_config_to_record(&rec, &cfg);
	rsx_symbol_config_from_record(&back, &rec);
	T_EQ(back.tick_size.raw, 50);
	T_EQ(back.maker_fee_bps, -1);
	T_EQ(back.config_version, 9);
	T_EQ(rsx_symbol_config_check(&back), 0);
	T_DONE();
}
