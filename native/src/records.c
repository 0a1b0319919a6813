/*
 * records.c - the field table of every payload.
 *
 * Each FIELDS_* list states every field's kind and offset once; the list is
 * expanded twice: into _Static_asserts (the compiler proves each offset and
 * size) and into the descriptors Python reads to build its numpy dtypes.
 * native/tests/test_records.c checks that the fields of each payload tile it
 * exactly, so a field missing from a list cannot go unnoticed.
 */
#include <stddef.h>

#include "rsx/records.h"

#define FIELDS_rsx_order(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, side, U8, 28) \
	F(st, tif, U8, 29) F(st, flags, U8, 30) F(st, stp, U8, 31) \
	F(st, order_id, OID, 32) F(st, price, PRICE, 48) F(st, qty, QTY, 56) \
	F(st, client_id, BYTES, 64) F(st, _pad0, PAD, 84) \
	F(st, gateway_ts_ns, U64, 88) F(st, risk_in_ts_ns, U64, 96) \
	F(st, risk_out_ts_ns, U64, 104) F(st, _pad1, PAD, 112)

#define FIELDS_rsx_cancel(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, _pad0, PAD, 28) \
	F(st, order_id, OID, 32) F(st, gateway_ts_ns, U64, 48) F(st, _pad1, PAD, 56)

#define FIELDS_rsx_cancel_all(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, _pad0, PAD, 28) \
	F(st, request_id, OID, 32) F(st, gateway_ts_ns, U64, 48) F(st, _pad1, PAD, 56)

#define FIELDS_rsx_amend(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, _pad0, PAD, 28) \
	F(st, order_id, OID, 32) F(st, price, PRICE, 48) F(st, qty, QTY, 56)

#define FIELDS_rsx_query(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, kind, U8, 28) \
	F(st, _pad0, PAD, 29) F(st, request_id, OID, 32) F(st, gateway_ts_ns, U64, 48) \
	F(st, _pad1, PAD, 56)

#define FIELDS_rsx_order_failed(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, reason, U16, 28) \
	F(st, request_type, U16, 30) F(st, order_id, OID, 32) F(st, detail, I64, 48) \
	F(st, _pad0, PAD, 56)

#define FIELDS_rsx_order_inserted(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, side, U8, 28) \
	F(st, tif, U8, 29) F(st, flags, U8, 30) F(st, _pad0, PAD, 31) \
	F(st, order_id, OID, 32) F(st, price, PRICE, 48) F(st, qty, QTY, 56)

#define FIELDS_rsx_fill(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, taker_user_id, U32, 24) \
	F(st, maker_user_id, U32, 28) F(st, taker_order_id, OID, 32) \
	F(st, maker_order_id, OID, 48) F(st, price, PRICE, 64) F(st, qty, QTY, 72) \
	F(st, taker_side, U8, 80) F(st, taker_flags, U8, 81) F(st, maker_flags, U8, 82) \
	F(st, _pad0, PAD, 83) F(st, _pad1, PAD, 84) F(st, taker_remaining, QTY, 88) \
	F(st, maker_remaining, QTY, 96) F(st, _pad2, PAD, 104)

#define FIELDS_rsx_order_done(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, status, U8, 28) \
	F(st, side, U8, 29) F(st, reason, U16, 30) F(st, order_id, OID, 32) \
	F(st, filled_qty, QTY, 48) F(st, remaining_qty, QTY, 56)

#define FIELDS_rsx_order_cancelled(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, side, U8, 28) \
	F(st, _pad0, PAD, 29) F(st, reason, U16, 30) F(st, order_id, OID, 32) \
	F(st, price, PRICE, 48) F(st, remaining_qty, QTY, 56)

#define FIELDS_rsx_order_amended(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, side, U8, 28) \
	F(st, _pad0, PAD, 29) F(st, _pad1, PAD, 30) F(st, order_id, OID, 32) \
	F(st, price, PRICE, 48) F(st, remaining_qty, QTY, 56)

#define FIELDS_rsx_bbo(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, bid_px, PRICE, 24) F(st, bid_qty, QTY, 32) \
	F(st, ask_px, PRICE, 40) F(st, ask_qty, QTY, 48) F(st, bid_count, U32, 56) \
	F(st, ask_count, U32, 60)

#define FIELDS_rsx_config(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, config_version, U64, 24) \
	F(st, effective_at_ns, U64, 32) F(st, tick_size, PRICE, 40) \
	F(st, lot_size, QTY, 48) F(st, min_qty, QTY, 56) F(st, max_qty, QTY, 64) \
	F(st, price_decimals, U8, 72) F(st, qty_decimals, U8, 73) F(st, status, U8, 74) \
	F(st, _pad0, PAD, 75) F(st, maker_fee_bps, I32, 76) F(st, taker_fee_bps, I32, 80) \
	F(st, initial_margin_bps, U32, 84) F(st, maintenance_margin_bps, U32, 88) \
	F(st, funding_interval_s, U32, 92) F(st, max_funding_rate_bps, U32, 96) \
	F(st, _pad1, PAD, 100) F(st, _pad2, PAD, 104)

#define FIELDS_rsx_mark_price(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, source_id, U32, 24) F(st, _pad0, PAD, 28) \
	F(st, price, PRICE, 32) F(st, source_ts_ns, U64, 40) F(st, _pad1, PAD, 48)

#define FIELDS_rsx_funding_rate(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, interval_id, U64, 24) F(st, rate_e8, I64, 32) \
	F(st, mark_px, PRICE, 40) F(st, index_px, PRICE, 48) F(st, _pad0, PAD, 56)

#define FIELDS_rsx_funding_payment(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, _pad0, PAD, 28) \
	F(st, interval_id, U64, 32) F(st, amount, I64, 40) F(st, position, QTY, 48) \
	F(st, mark_px, PRICE, 56)

#define FIELDS_rsx_liquidation(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, kind, U8, 28) \
	F(st, side, U8, 29) F(st, _pad0, PAD, 30) F(st, round, U32, 32) \
	F(st, slippage_bps, U32, 36) F(st, order_id, OID, 40) F(st, qty, QTY, 56) \
	F(st, price, PRICE, 64) F(st, mark_px, PRICE, 72) F(st, equity, I64, 80) \
	F(st, maintenance_margin, I64, 88) F(st, shortfall, I64, 96) \
	F(st, counterparty_user_id, U32, 104) F(st, _pad1, PAD, 108) F(st, _pad2, PAD, 112)

#define FIELDS_rsx_transfer(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, asset_id, U32, 20) F(st, user_id, U32, 24) F(st, _pad0, PAD, 28) \
	F(st, request_id, OID, 32) F(st, amount, I64, 48) F(st, balance_after, I64, 56)

#define FIELDS_rsx_risk_param(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, key, U32, 24) F(st, _pad0, PAD, 28) \
	F(st, value, I64, 32) F(st, fill_tip, U64, 40) F(st, _pad1, PAD, 48)

#define FIELDS_rsx_position(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, _pad0, PAD, 28) \
	F(st, request_id, OID, 32) F(st, qty, I64, 48) F(st, entry_cost, I64, 56) \
	F(st, realized_pnl, I64, 64) F(st, mark_px, PRICE, 72) F(st, unrealized_pnl, I64, 80) \
	F(st, liq_px, PRICE, 88) F(st, initial_margin, I64, 96) \
	F(st, maintenance_margin, I64, 104) F(st, _pad1, PAD, 112)

#define FIELDS_rsx_account(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, _pad0, PAD, 20) F(st, user_id, U32, 24) F(st, flags, U32, 28) \
	F(st, request_id, OID, 32) F(st, collateral, I64, 48) F(st, equity, I64, 56) \
	F(st, unrealized_pnl, I64, 64) F(st, initial_margin, I64, 72) \
	F(st, maintenance_margin, I64, 80) F(st, frozen, I64, 88) F(st, available, I64, 96) \
	F(st, withdrawable, I64, 104) F(st, _pad1, PAD, 112)

#define FIELDS_rsx_open_order(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, side, U8, 28) \
	F(st, tif, U8, 29) F(st, flags, U8, 30) F(st, state, U8, 31) \
	F(st, request_id, OID, 32) F(st, order_id, OID, 48) F(st, price, PRICE, 64) \
	F(st, remaining_qty, QTY, 72) F(st, filled_qty, QTY, 80) F(st, client_id, BYTES, 88) \
	F(st, _pad0, PAD, 108) F(st, placed_ts_ns, U64, 112) F(st, _pad1, PAD, 120)

#define FIELDS_rsx_query_done(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, symbol_id, U32, 20) F(st, user_id, U32, 24) F(st, kind, U8, 28) \
	F(st, _pad0, PAD, 29) F(st, reason, U16, 30) F(st, request_id, OID, 32) \
	F(st, count, U32, 48) F(st, _pad1, PAD, 52) F(st, _pad2, PAD, 56)

#define FIELDS_rsx_seq_lost(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, _pad0, PAD, 20) F(st, first_lost, U64, 24) F(st, last_lost, U64, 32) \
	F(st, _pad1, PAD, 40)

#define FIELDS_rsx_nak(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, _pad0, PAD, 20) F(st, from_seq, U64, 24) F(st, count, U64, 32) \
	F(st, _pad1, PAD, 40)

#define FIELDS_rsx_heartbeat(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, _pad0, PAD, 20) F(st, highest_seq, U64, 24) F(st, _pad1, PAD, 32)

#define FIELDS_rsx_replay_request(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, _pad0, PAD, 20) F(st, from_seq, U64, 24) F(st, consumer, BYTES, 32) \
	F(st, _pad1, PAD, 48)

#define FIELDS_rsx_caught_up(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, _pad0, PAD, 20) F(st, live_seq, U64, 24) F(st, _pad1, PAD, 32)

#define FIELDS_rsx_replay_reject(F, st) \
	F(st, seq, U64, 0) F(st, ts_ns, U64, 8) F(st, stream_id, U32, 16) \
	F(st, error, I32, 20) F(st, from_seq, U64, 24) F(st, first_seq, U64, 32) \
	F(st, last_seq, U64, 40) F(st, _pad0, PAD, 48)

/* Scalar kinds have a fixed size; the compiler checks each field against it. */
#define KIND_SIZE_U8(x) 1
#define KIND_SIZE_U16(x) 2
#define KIND_SIZE_U32(x) 4
#define KIND_SIZE_U64(x) 8
#define KIND_SIZE_I32(x) 4
#define KIND_SIZE_I64(x) 8
#define KIND_SIZE_PRICE(x) 8
#define KIND_SIZE_QTY(x) 8
#define KIND_SIZE_OID(x) 16
#define KIND_SIZE_BYTES(x) (x)
#define KIND_SIZE_PAD(x) (x)

#define FIELD_SIZE(st, name) sizeof(((struct st *)0)->name)

#define ASSERT_FIELD(st, name, kind, off) \
	_Static_assert(offsetof(struct st, name) == (off), #st "." #name " at " #off); \
	_Static_assert(FIELD_SIZE(st, name) == KIND_SIZE_##kind(FIELD_SIZE(st, name)), \
		       #st "." #name " is a " #kind);
#define DESC_FIELD(st, name, kind, off) \
	{ #name, (off), (uint16_t)FIELD_SIZE(st, name), RSX_FK_##kind },

#define LAYOUT(st) \
	FIELDS_##st(ASSERT_FIELD, st) \
	static const struct rsx_field_desc fields_##st[] = { FIELDS_##st(DESC_FIELD, st) };

LAYOUT(rsx_order)
LAYOUT(rsx_cancel)
LAYOUT(rsx_cancel_all)
LAYOUT(rsx_amend)
LAYOUT(rsx_query)
LAYOUT(rsx_order_failed)
LAYOUT(rsx_order_inserted)
LAYOUT(rsx_fill)
LAYOUT(rsx_order_done)
LAYOUT(rsx_order_cancelled)
LAYOUT(rsx_order_amended)
LAYOUT(rsx_bbo)
LAYOUT(rsx_config)
LAYOUT(rsx_mark_price)
LAYOUT(rsx_funding_rate)
LAYOUT(rsx_funding_payment)
LAYOUT(rsx_liquidation)
LAYOUT(rsx_transfer)
LAYOUT(rsx_risk_param)
LAYOUT(rsx_position)
LAYOUT(rsx_account)
LAYOUT(rsx_open_order)
LAYOUT(rsx_query_done)
LAYOUT(rsx_seq_lost)
LAYOUT(rsx_nak)
LAYOUT(rsx_heartbeat)
LAYOUT(rsx_replay_request)
LAYOUT(rsx_caught_up)
LAYOUT(rsx_replay_reject)

static const struct rsx_record_desc descs[] = {
#define RSX_RECORD(name, type, st) \
	{ type, sizeof(struct st), #name, #st, fields_##st, \
	  sizeof(fields_##st) / sizeof(fields_##st[0]) },
#include "rsx/record_types.def"
#undef RSX_RECORD
};

const struct rsx_record_desc *rsx_record_desc_at(unsigned i)
{
	return i < sizeof(descs) / sizeof(descs[0]) ? &descs[i] : NULL;
}

const struct rsx_record_desc *rsx_record_desc_of(uint16_t type)
{
	for (unsigned i = 0; i < sizeof(descs) / sizeof(descs[0]); i++)
		if (descs[i].type == type)
			return &descs[i];
	return NULL;
}
