/*
 * rsx/records.h - the v1 record format: WAL bytes = disk bytes = wire bytes =
 * memory bytes.
 *
 * A record is a 16-byte header followed by one fixed-size payload. Payloads
 * are _Alignas(64) structs whose size is a multiple of 64; every pad byte is a
 * named, zeroed field so that the bytes we checksum and ship are all defined.
 * Every payload starts with seq u64, ts_ns u64, stream_id u32.
 *
 * specs/records.md is the prose form of this file. records.c holds the field
 * table (offset, size and kind of every field, each checked by _Static_assert)
 * from which Python builds its numpy dtypes.
 */
#ifndef RSX_RECORDS_H
#define RSX_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

#define RSX_RECORD_VERSION 1
#define RSX_HEADER_SIZE 16
#define RSX_PAYLOAD_MAX 128	/* largest payload of any v1 type */
#define RSX_RECORD_MAX (RSX_HEADER_SIZE + RSX_PAYLOAD_MAX)

enum rsx_rec_type {
#define RSX_RECORD(name, type, st) RSX_REC_##name = type,
#include "record_types.def"
#undef RSX_RECORD
};

/*
 * Header v1. The CRC32C covers header bytes 0..7 and the payload; flags and
 * both reserved fields must be zero in v1 (a decoder rejects anything else),
 * so every bit of a record is checked.
 */
struct rsx_header {
	uint8_t version;	/* RSX_RECORD_VERSION */
	uint8_t flags;		/* none defined in v1: must be 0 */
	uint16_t type;		/* enum rsx_rec_type, never 0 */
	uint16_t len;		/* payload bytes: exactly the type's size */
	uint16_t reserved0;	/* 0 */
	uint32_t crc32c;	/* over bytes 0..7 and the payload */
	uint32_t reserved1;	/* 0 */
};
_Static_assert(sizeof(struct rsx_header) == RSX_HEADER_SIZE, "header is 16 bytes");

/* The prefix every payload shares. */
struct rsx_prefix {
	uint64_t seq;		/* stream sequence, from 1; 0 on control records */
	uint64_t ts_ns;		/* CLOCK_REALTIME ns when the record was framed */
	uint32_t stream_id;	/* the stream that owns seq */
};

/* NEW_ORDER (gateway -> risk -> ME) and ORDER_ACCEPTED (ME WAL, before matching). */
struct rsx_order {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint8_t side;		/* enum rsx_side */
	uint8_t tif;		/* enum rsx_tif */
	uint8_t flags;		/* enum rsx_order_flag bits */
	uint8_t stp;		/* enum rsx_stp */
	rsx_oid_t order_id;
	rsx_price_t price;
	rsx_qty_t qty;
	uint8_t client_id[20];	/* client's own id, NUL-padded ASCII */
	uint32_t _pad0;
	uint64_t gateway_ts_ns;	/* latency stamps (specs/latency.md); 0 = unset */
	uint64_t risk_in_ts_ns;
	uint64_t risk_out_ts_ns;
	uint64_t _pad1[2];
} __attribute__((aligned(64)));

/* CANCEL_ORDER */
struct rsx_cancel {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint32_t _pad0;
	rsx_oid_t order_id;
	uint64_t gateway_ts_ns;
	uint64_t _pad1;
} __attribute__((aligned(64)));

/* CANCEL_ALL: every live order of user_id in symbol_id. */
struct rsx_cancel_all {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint32_t _pad0;
	rsx_oid_t request_id;	/* for the client's correlation */
	uint64_t gateway_ts_ns;
	uint64_t _pad1;
} __attribute__((aligned(64)));

/* AMEND_ORDER: price 0 keeps the price (qty-down keeps priority). */
struct rsx_amend {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint32_t _pad0;
	rsx_oid_t order_id;
	rsx_price_t price;	/* new limit price, or 0 to keep */
	rsx_qty_t qty;		/* new open (remaining) quantity */
} __attribute__((aligned(64)));

/*
 * QUERY (gateway -> risk shard): the user's open orders, positions or account.
 * Answered on the shard's link to that gateway by zero or more OPEN_ORDER /
 * POSITION records or one ACCOUNT, then QUERY_DONE, all carrying request_id.
 */
struct rsx_query {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;	/* 0 = every symbol */
	uint32_t user_id;
	uint8_t kind;		/* enum rsx_query_kind */
	uint8_t _pad0[3];
	rsx_oid_t request_id;	/* the gateway's correlation id */
	uint64_t gateway_ts_ns;
	uint64_t _pad1;
} __attribute__((aligned(64)));

/* ORDER_FAILED: a request refused before it changed the book. */
struct rsx_order_failed {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint16_t reason;	/* enum rsx_reason */
	uint16_t request_type;	/* type of the refused request (NEW_ORDER, ...) */
	rsx_oid_t order_id;
	int64_t detail;		/* reason-specific number (e.g. margin needed), or 0 */
	uint64_t _pad0;
} __attribute__((aligned(64)));

/* ORDER_INSERTED: the order (or its residual) now rests in the book. */
struct rsx_order_inserted {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint8_t side;
	uint8_t tif;
	uint8_t flags;
	uint8_t _pad0;
	rsx_oid_t order_id;
	rsx_price_t price;
	rsx_qty_t qty;		/* resting (open) quantity */
} __attribute__((aligned(64)));

/* FILL: one maker/taker match at the maker's price. */
struct rsx_fill {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t taker_user_id;
	uint32_t maker_user_id;
	rsx_oid_t taker_order_id;
	rsx_oid_t maker_order_id;
	rsx_price_t price;
	rsx_qty_t qty;
	uint8_t taker_side;
	uint8_t taker_flags;
	uint8_t maker_flags;
	uint8_t _pad0;
	uint32_t _pad1;
	rsx_qty_t taker_remaining;	/* taker's open qty after this fill */
	rsx_qty_t maker_remaining;	/* maker's open qty after this fill */
	uint64_t _pad2[3];
} __attribute__((aligned(64)));

/* ORDER_DONE: the order's terminal event (filled, or ended by a reason). */
struct rsx_order_done {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint8_t status;		/* enum rsx_status: FILLED or CANCELLED */
	uint8_t side;
	uint16_t reason;	/* enum rsx_reason; NONE when FILLED */
	rsx_oid_t order_id;
	rsx_qty_t filled_qty;
	rsx_qty_t remaining_qty;
} __attribute__((aligned(64)));

/* ORDER_CANCELLED: a resting order left the book without filling. */
struct rsx_order_cancelled {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint8_t side;
	uint8_t _pad0;
	uint16_t reason;	/* enum rsx_reason */
	rsx_oid_t order_id;
	rsx_price_t price;
	rsx_qty_t remaining_qty;	/* quantity removed from the book */
} __attribute__((aligned(64)));

/* ORDER_AMENDED: a resting order's open quantity (or price) changed. */
struct rsx_order_amended {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint8_t side;
	uint8_t _pad0;
	uint16_t _pad1;
	rsx_oid_t order_id;
	rsx_price_t price;
	rsx_qty_t remaining_qty;	/* new open quantity */
} __attribute__((aligned(64)));

/* BBO: best bid and offer after a change. An empty side is 0/0/0. */
struct rsx_bbo {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	rsx_price_t bid_px;
	rsx_qty_t bid_qty;	/* quantity at exactly bid_px */
	rsx_price_t ask_px;
	rsx_qty_t ask_qty;
	uint32_t bid_count;	/* orders at exactly bid_px */
	uint32_t ask_count;
} __attribute__((aligned(64)));

/* CONFIG_APPLIED: the symbol configuration in force from this seq on. */
struct rsx_config {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint64_t config_version;	/* monotonic per symbol */
	uint64_t effective_at_ns;
	rsx_price_t tick_size;
	rsx_qty_t lot_size;
	rsx_qty_t min_qty;
	rsx_qty_t max_qty;
	uint8_t price_decimals;
	uint8_t qty_decimals;
	uint8_t status;		/* enum rsx_symbol_status */
	uint8_t _pad0;
	int32_t maker_fee_bps;	/* negative = rebate */
	int32_t taker_fee_bps;
	uint32_t initial_margin_bps;
	uint32_t maintenance_margin_bps;
	uint32_t funding_interval_s;
	uint32_t max_funding_rate_bps;	/* clamp on |rate| per interval */
	uint32_t _pad1;
	uint64_t _pad2[3];
} __attribute__((aligned(64)));

/* MARK_PRICE: one source's price for a symbol (source 0 = the mark service's composite). */
struct rsx_mark_price {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t source_id;
	uint32_t _pad0;
	rsx_price_t price;
	uint64_t source_ts_ns;	/* when the source observed the price */
	uint64_t _pad1[2];
} __attribute__((aligned(64)));

/* FUNDING_RATE: the rate settled for (symbol, interval), once. */
struct rsx_funding_rate {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint64_t interval_id;	/* interval start / interval length */
	int64_t rate_e8;	/* rate x 1e8; > 0: longs pay shorts */
	rsx_price_t mark_px;
	rsx_price_t index_px;
	uint64_t _pad0;
} __attribute__((aligned(64)));

/* FUNDING_PAYMENT: what one user paid (< 0) or received (> 0) for an interval. */
struct rsx_funding_payment {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint32_t _pad0;
	uint64_t interval_id;
	int64_t amount;		/* collateral units */
	rsx_qty_t position;	/* signed position it was charged on */
	rsx_price_t mark_px;
} __attribute__((aligned(64)));

/* LIQUIDATION: one step of a user's liquidation (enum rsx_liq_kind). */
struct rsx_liquidation {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint8_t kind;		/* enum rsx_liq_kind */
	uint8_t side;		/* side of the closing order */
	uint16_t _pad0;
	uint32_t round;
	uint32_t slippage_bps;
	rsx_oid_t order_id;	/* the round's order (fresh id per round) */
	rsx_qty_t qty;
	rsx_price_t price;
	rsx_price_t mark_px;
	int64_t equity;		/* collateral units, at decision time */
	int64_t maintenance_margin;
	int64_t shortfall;	/* absorbed by the insurance fund or by ADL */
	uint32_t counterparty_user_id;	/* ADL counterparty, else 0 */
	uint32_t _pad1;
	uint64_t _pad2[2];
} __attribute__((aligned(64)));

/* DEPOSIT and WITHDRAWAL. */
struct rsx_transfer {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t asset_id;	/* 0 = the quote collateral */
	uint32_t user_id;
	uint32_t _pad0;
	rsx_oid_t request_id;	/* idempotency key */
	int64_t amount;		/* > 0, collateral units */
	int64_t balance_after;	/* filled in by the risk shard */
} __attribute__((aligned(64)));

/*
 * RISK_PARAM: one risk parameter in a risk shard's journal (specs/risk.md 8.2),
 * also the journal's batch COMMIT and FILL_BARRIER markers.
 */
struct rsx_risk_param {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;	/* 0xFFFFFFFF for shard-wide keys; the vshard for VSHARD_OWNER */
	uint32_t key;		/* rsx_appliance.risk.params.Key */
	uint32_t _pad0;
	int64_t value;
	uint64_t fill_tip;	/* the symbol's ME tip when decided (replay barrier), or 0 */
	uint64_t _pad1[2];
} __attribute__((aligned(64)));

/*
 * POSITION (risk -> gateway): one position of a user, as a query answer
 * (request_id set) or pushed after it changed (request_id zero). Money in
 * collateral units.
 */
struct rsx_position {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint32_t _pad0;
	rsx_oid_t request_id;	/* zero on a push */
	int64_t qty;		/* signed net position, raw qty: > 0 long, < 0 short */
	int64_t entry_cost;	/* signed cost basis of the open position */
	int64_t realized_pnl;
	rsx_price_t mark_px;
	int64_t unrealized_pnl;
	rsx_price_t liq_px;	/* estimated liquidation price, 0 = none */
	int64_t initial_margin;
	int64_t maintenance_margin;
	uint64_t _pad1[2];
} __attribute__((aligned(64)));

/* ACCOUNT (risk -> gateway): a user's money, as a query answer or pushed after it changed. */
struct rsx_account {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t _pad0;
	uint32_t user_id;
	uint32_t flags;		/* enum rsx_account_flag bits */
	rsx_oid_t request_id;	/* zero on a push */
	int64_t collateral;
	int64_t equity;		/* collateral + unrealised PnL */
	int64_t unrealized_pnl;
	int64_t initial_margin;
	int64_t maintenance_margin;
	int64_t frozen;		/* reserved for open orders */
	int64_t available;	/* equity - initial margin - frozen */
	int64_t withdrawable;
	uint64_t _pad1[2];
} __attribute__((aligned(64)));

/* OPEN_ORDER (risk -> gateway): one live order of a user, answering QUERY. */
struct rsx_open_order {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint8_t side;
	uint8_t tif;
	uint8_t flags;		/* enum rsx_order_flag bits */
	uint8_t state;		/* 0 sent to the ME, not yet acknowledged; 1 resting */
	rsx_oid_t request_id;
	rsx_oid_t order_id;
	rsx_price_t price;
	rsx_qty_t remaining_qty;
	rsx_qty_t filled_qty;
	uint8_t client_id[20];
	uint32_t _pad0;
	uint64_t placed_ts_ns;	/* when the gateway stamped the order */
	uint64_t _pad1;
} __attribute__((aligned(64)));

/* QUERY_DONE (risk -> gateway): the end of a query's answer. */
struct rsx_query_done {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t symbol_id;
	uint32_t user_id;
	uint8_t kind;		/* enum rsx_query_kind, as asked */
	uint8_t _pad0;
	uint16_t reason;	/* enum rsx_reason: NONE, or why it was refused (WRONG_SHARD, UNKNOWN_USER) */
	rsx_oid_t request_id;
	uint32_t count;		/* records sent before this one */
	uint32_t _pad1;
	uint64_t _pad2;
} __attribute__((aligned(64)));

/*
 * SEQ_LOST: a tombstone, one per seq, that a WAL writer appends when an
 * operator accepted the loss of records it had reported durable (specs/wal.md
 * 2.7): the seq is spent, its original record is gone. Any stream may hold it.
 */
struct rsx_seq_lost {
	uint64_t seq;
	uint64_t ts_ns;		/* when the loss was accepted */
	uint32_t stream_id;
	uint32_t _pad0;
	uint64_t first_lost;	/* the lost range this tombstone belongs to */
	uint64_t last_lost;
	uint64_t _pad1[3];
} __attribute__((aligned(64)));

/* NAK: receiver -> sender, "resend [from_seq, from_seq + count)". */
struct rsx_nak {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t _pad0;
	uint64_t from_seq;
	uint64_t count;
	uint64_t _pad1[3];
} __attribute__((aligned(64)));

/* HEARTBEAT: sender -> receiver on an idle stream. */
struct rsx_heartbeat {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t _pad0;
	uint64_t highest_seq;	/* last seq sent on the stream */
	uint64_t _pad1[4];
} __attribute__((aligned(64)));

/* REPLAY_REQUEST: DXS consumer -> server, the first record on a connection. */
struct rsx_replay_request {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t _pad0;
	uint64_t from_seq;
	uint8_t consumer[16];	/* consumer name, NUL-padded (retention) */
	uint64_t _pad1[2];
} __attribute__((aligned(64)));

/* CAUGHT_UP: DXS server -> consumer, history sent; the live tail follows. */
struct rsx_caught_up {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	uint32_t _pad0;
	uint64_t live_seq;	/* last seq delivered, inclusive */
	uint64_t _pad1[4];
} __attribute__((aligned(64)));

/* REPLAY_REJECT: DXS server -> consumer, the request cannot be served. */
struct rsx_replay_reject {
	uint64_t seq;
	uint64_t ts_ns;
	uint32_t stream_id;
	int32_t error;		/* negative rsx_err / -errno */
	uint64_t from_seq;	/* as requested */
	uint64_t first_seq;	/* oldest seq the server can serve */
	uint64_t last_seq;	/* newest durable seq */
	uint64_t _pad0[2];
} __attribute__((aligned(64)));

#define RSX_PAYLOAD_ASSERT(st, size) \
	_Static_assert(sizeof(struct st) == (size) && (size) % 64 == 0 && \
		       _Alignof(struct st) == 64, #st " is " #size " bytes, 64-aligned")
RSX_PAYLOAD_ASSERT(rsx_order, 128);
RSX_PAYLOAD_ASSERT(rsx_cancel, 64);
RSX_PAYLOAD_ASSERT(rsx_cancel_all, 64);
RSX_PAYLOAD_ASSERT(rsx_amend, 64);
RSX_PAYLOAD_ASSERT(rsx_order_failed, 64);
RSX_PAYLOAD_ASSERT(rsx_order_inserted, 64);
RSX_PAYLOAD_ASSERT(rsx_fill, 128);
RSX_PAYLOAD_ASSERT(rsx_order_done, 64);
RSX_PAYLOAD_ASSERT(rsx_order_cancelled, 64);
RSX_PAYLOAD_ASSERT(rsx_order_amended, 64);
RSX_PAYLOAD_ASSERT(rsx_bbo, 64);
RSX_PAYLOAD_ASSERT(rsx_config, 128);
RSX_PAYLOAD_ASSERT(rsx_mark_price, 64);
RSX_PAYLOAD_ASSERT(rsx_funding_rate, 64);
RSX_PAYLOAD_ASSERT(rsx_funding_payment, 64);
RSX_PAYLOAD_ASSERT(rsx_liquidation, 128);
RSX_PAYLOAD_ASSERT(rsx_transfer, 64);
RSX_PAYLOAD_ASSERT(rsx_risk_param, 64);
RSX_PAYLOAD_ASSERT(rsx_query, 64);
RSX_PAYLOAD_ASSERT(rsx_position, 128);
RSX_PAYLOAD_ASSERT(rsx_account, 128);
RSX_PAYLOAD_ASSERT(rsx_open_order, 128);
RSX_PAYLOAD_ASSERT(rsx_query_done, 64);
RSX_PAYLOAD_ASSERT(rsx_seq_lost, 64);
RSX_PAYLOAD_ASSERT(rsx_nak, 64);
RSX_PAYLOAD_ASSERT(rsx_heartbeat, 64);
RSX_PAYLOAD_ASSERT(rsx_replay_request, 64);
RSX_PAYLOAD_ASSERT(rsx_caught_up, 64);
RSX_PAYLOAD_ASSERT(rsx_replay_reject, 64);

/* ---- framing and strict decoding (record.c) ---- */

/* Payload length of a record type, or 0 if the type is 0 or unknown. */
size_t rsx_record_payload_len(uint16_t type);

/* Name of a record type ("FILL"), or NULL if unknown. */
const char *rsx_record_type_name(uint16_t type);

/*
 * Frame a payload: write header + payload to out (cap bytes), computing the
 * CRC. Returns the record size (16 + len), RSX_ETYPE for an unknown type,
 * RSX_ELENGTH if len is not the type's size, RSX_ESHORT if cap is too small.
 */
int rsx_record_frame(void *out, size_t cap, uint16_t type, const void *payload, size_t len);

/*
 * Recompute the CRC of a record already laid out in place (header fields set,
 * payload written), e.g. after assigning its seq. Returns the record size or
 * a decode error for the header fields.
 */
int rsx_record_seal(void *rec, size_t cap);

/*
 * Seal n records of one type laid out every `stride` bytes (a numpy array of
 * RECORD_DTYPES). Returns 0, or the first record's error (records before it
 * are sealed).
 */
int rsx_record_seal_many(void *buf, size_t n, size_t stride);

/*
 * Check that buf holds one valid v1 record at its start. Returns the record
 * size (16 + len) or, checking in this order: RSX_ESHORT (fewer than 16
 * bytes), RSX_EVERSION, RSX_ETYPE, RSX_ELENGTH, RSX_ESHORT (payload cut
 * short), RSX_ERESERVED, RSX_ECRC. Never reads past buf + n.
 */
int rsx_record_check(const void *buf, size_t n);

/*
 * Everything rsx_record_check checks except the CRC: for a record this process
 * framed and sealed itself (its size is then trustworthy without hashing it).
 */
int rsx_record_check_header(const void *buf, size_t n);

/*
 * Check and copy out: validates like rsx_record_check, then copies the payload
 * into `payload` (an aligned struct of at least cap bytes) with memcpy, since
 * a payload inside a datagram or WAL buffer is not 64-byte aligned.
 */
int rsx_record_decode(const void *buf, size_t n, uint16_t *type, void *payload, size_t cap);

/* ---- field table (records.c), read by Python to build numpy dtypes ---- */

enum rsx_field_kind {
	RSX_FK_U8 = 1, RSX_FK_U16, RSX_FK_U32, RSX_FK_U64,
	RSX_FK_I32, RSX_FK_I64,
	RSX_FK_PRICE,	/* int64 raw price */
	RSX_FK_QTY,	/* int64 raw quantity */
	RSX_FK_OID,	/* 16-byte UUID */
	RSX_FK_BYTES,	/* fixed-size byte string (NUL-padded text) */
	RSX_FK_PAD,	/* explicit padding: must be zero */
};

struct rsx_field_desc {
	const char *name;
	uint16_t offset;
	uint16_t size;
	uint16_t kind;		/* enum rsx_field_kind */
};

struct rsx_record_desc {
	uint16_t type;		/* enum rsx_rec_type */
	uint16_t size;		/* payload bytes */
	const char *name;	/* "FILL" */
	const char *layout;	/* C struct name, "rsx_fill" */
	const struct rsx_field_desc *fields;
	uint16_t nfields;
};

/* The i-th record type (i from 0), or NULL past the end. */
const struct rsx_record_desc *rsx_record_desc_at(unsigned i);
/* The descriptor of a type, or NULL if unknown. */
const struct rsx_record_desc *rsx_record_desc_of(uint16_t type);

#endif
