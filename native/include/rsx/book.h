/*
 * rsx/book.h - the order book and matcher of one symbol (specs/book.md,
 * specs/matching.md).
 *
 * Single-threaded. rsx_book_create() makes one prefaulted mapping (hugetlb,
 * else THP) holding every structure the book will ever use; from then on no
 * call that processes a request allocates, makes a system call or uses a
 * float. Requests come in as the payload structs of records.h; outcomes go
 * out as v1 records (header + payload, seq/ts_ns/CRC left 0 for the framer)
 * appended to a caller-provided sink. A sink that fills up in the middle of a
 * sweep suspends the request (RSX_BOOK_MORE) instead of dropping anything.
 */
#ifndef RSX_BOOK_H
#define RSX_BOOK_H

#include <stddef.h>
#include <stdint.h>

#include "numbers.h"
#include "records.h"
#include "types.h"

struct rsx_book;

/* rsx_book_params.flags */
#define RSX_BOOK_HUGETLB_REQUIRE 0x1u	/* fail (-ENOMEM) rather than fall back to THP */
#define RSX_BOOK_HUGETLB_NEVER   0x2u	/* do not try the reserved pool */
#define RSX_BOOK_THP_NEVER       0x4u	/* fallback without MADV_HUGEPAGE (tests) */

#define RSX_BOOK_ZONE0_MIN 1000
#define RSX_BOOK_ZONE0_MAX 2097000

struct rsx_book_params {
	uint64_t capacity;	/* most resting orders, 1 .. 2^31 */
	uint64_t level_capacity;	/* most resting prices; 0 = capacity */
	uint32_t max_users;	/* most users with state, 1 .. 2^31 */
	uint32_t stream_id;	/* copied into every event */
	rsx_price_t ref_price;	/* initial map centre, > 0 */
	uint64_t zone0_ticks;	/* 0 = 5 % of ref_price in ticks */
	uint32_t flags;		/* RSX_BOOK_* above */
	uint32_t _pad0;
};

/* Return value of a request that filled the sink mid-way (specs/matching.md §5). */
#define RSX_BOOK_MORE 1
/* Free bytes a sink needs for a request to start. */
#define RSX_BOOK_SINK_MIN 512

struct rsx_book_sink {
	uint8_t *buf;		/* 16-byte aligned */
	uint32_t cap;		/* bytes */
	uint32_t len;		/* bytes written (records back to back) */
	uint32_t count;		/* records written */
	uint32_t _pad0;
};

/* ---- lifecycle ---- */

/*
 * Create a book. Returns 0 and sets *out, or RSX_EINVALID (bad params or
 * config), or -errno from mmap (-ENOMEM, also for RSX_BOOK_HUGETLB_REQUIRE
 * without enough reserved hugepages).
 */
int rsx_book_create(struct rsx_book **out, const struct rsx_book_params *params,
		    const struct rsx_symbol_config *cfg);
void rsx_book_destroy(struct rsx_book *b);

/*
 * Replace the symbol config (tick, lot, limits, status). Resting orders are
 * kept as they are; a tick change rebuilds the window around the same centre. Returns 0, RSX_EINVALID
 * for an incoherent config, -EBUSY while a request is suspended.
 */
int rsx_book_set_config(struct rsx_book *b, const struct rsx_symbol_config *cfg);

/* ---- requests: 0 done, RSX_BOOK_MORE suspended, < 0 nothing changed ---- */

int rsx_book_new_order(struct rsx_book *b, const struct rsx_order *o, struct rsx_book_sink *s);
int rsx_book_cancel(struct rsx_book *b, const struct rsx_cancel *c, struct rsx_book_sink *s);
int rsx_book_cancel_all(struct rsx_book *b, const struct rsx_cancel_all *c, struct rsx_book_sink *s);
int rsx_book_amend(struct rsx_book *b, const struct rsx_amend *a, struct rsx_book_sink *s);
/* Dispatch on record type (NEW_ORDER / ORDER_ACCEPTED, CANCEL_ORDER, CANCEL_ALL,
 * AMEND_ORDER); RSX_ETYPE for any other type. */
int rsx_book_apply(struct rsx_book *b, uint16_t type, const void *payload, struct rsx_book_sink *s);
/* Continue a suspended request: 0 done, RSX_BOOK_MORE again, RSX_EINVALID if none. */
int rsx_book_resume(struct rsx_book *b, struct rsx_book_sink *s);
/* 1 while a request is suspended, else 0. */
int rsx_book_pending(const struct rsx_book *b);

/* ---- batch: numpy-friendly ops in, flat event rows out ---- */

enum rsx_book_op_kind {
	RSX_BOOK_OP_NEW = 1,
	RSX_BOOK_OP_CANCEL = 2,
	RSX_BOOK_OP_CANCEL_ALL = 3,
	RSX_BOOK_OP_AMEND = 4,
};

struct rsx_book_op {
	uint8_t kind;		/* enum rsx_book_op_kind */
	uint8_t side;
	uint8_t tif;
	uint8_t flags;
	uint8_t stp;
	uint8_t _pad0[3];
	uint32_t user_id;
	uint32_t _pad1;
	rsx_oid_t order_id;	/* CANCEL_ALL: the request id */
	rsx_price_t price;	/* AMEND: 0 = keep */
	rsx_qty_t qty;		/* AMEND: the new open quantity */
};
_Static_assert(sizeof(struct rsx_book_op) == 48, "rsx_book_op is 48 bytes");

/* One event as a flat row; which fields are set depends on type (specs/matching.md §7). */
struct rsx_book_event {
	uint16_t type;		/* record type */
	uint16_t reason;	/* DONE / CANCELLED / FAILED */
	uint8_t status;		/* DONE */
	uint8_t side;		/* the order's side (FILL: taker's) */
	uint8_t flags;		/* the order's flags (FILL: taker's) */
	uint8_t tif;		/* INSERTED */
	uint32_t op_index;	/* index into the ops array of the request */
	uint32_t user_id;	/* FILL: taker */
	uint32_t maker_user_id;	/* FILL */
	uint8_t maker_flags;	/* FILL */
	uint8_t _pad0;
	uint16_t request_type;	/* FAILED */
	rsx_oid_t order_id;	/* FILL: taker */
	rsx_oid_t maker_order_id;	/* FILL */
	int64_t price;		/* FILL/INSERTED/CANCELLED/AMENDED; BBO: bid_px */
	int64_t qty;		/* FILL, INSERTED; BBO: bid_qty */
	int64_t remaining;	/* FILL: taker's; DONE/CANCELLED/AMENDED */
	int64_t maker_remaining;	/* FILL */
	int64_t filled;		/* DONE */
	int64_t ask_px;		/* BBO */
	int64_t ask_qty;	/* BBO */
	uint32_t bid_count;	/* BBO */
	uint32_t ask_count;	/* BBO */
	int64_t detail;		/* FAILED */
};
_Static_assert(sizeof(struct rsx_book_event) == 128, "rsx_book_event is 128 bytes");

#define RSX_BOOK_RUN_MIN_ROWS 1024

/*
 * Apply ops[*done .. n) and append one row per event at rows[*nrows]. Returns
 * 0 when every op is done, RSX_BOOK_MORE when rows is full (drain, call
 * again; a suspended sweep continues), RSX_ESHORT if cap - *nrows <
 * RSX_BOOK_RUN_MIN_ROWS, -EBUSY if a request was suspended through the
 * record API.
 */
int rsx_book_run(struct rsx_book *b, const struct rsx_book_op *ops, size_t n, size_t *done,
		 struct rsx_book_event *rows, size_t cap, size_t *nrows);

/* Convert the records of a sink into rows (op_index 0). Returns rows written or RSX_ESHORT/RSX_ETYPE. */
int rsx_book_flatten(const uint8_t *buf, size_t len, struct rsx_book_event *rows, size_t cap);

struct rsx_book_fill_row {
	uint64_t taker;		/* low 64 bits of the order id, big endian */
	uint64_t maker;
	int64_t price;
	int64_t qty;
};

/*
 * The benchmark loop: apply all ops, record every fill. cap must be >= 2n
 * (RSX_ESHORT otherwise: a run cannot have more fills). Returns 0, or -EBUSY.
 */
int rsx_book_replay(struct rsx_book *b, const struct rsx_book_op *ops, size_t n,
		    struct rsx_book_fill_row *fills, size_t cap, size_t *nfills);

/*
 * Parse bench/workload.py's text format. Order id k -> UUID(int=k), user
 * 1 + k % users, POST -> GTC + POST_ONLY, stp for every order. Returns 0 and
 * *n = ops parsed; RSX_ESHORT if cap is too small; RSX_EINVALID for a bad
 * line, with *n = its 1-based line number.
 */
int rsx_book_parse_workload(const char *text, size_t len, uint32_t users, uint8_t stp,
			    struct rsx_book_op *ops, size_t cap, size_t *n);

/* ---- inspection (not on the hot path) ---- */

enum rsx_book_backing {
	RSX_BOOK_MEM_HUGETLB = 1,	/* reserved hugepages */
	RSX_BOOK_MEM_THP = 2,		/* transparent hugepages requested by madvise */
	RSX_BOOK_MEM_SMALL = 3,		/* 4 KiB pages */
};

struct rsx_book_mem {
	uint32_t backing;	/* enum rsx_book_backing */
	int32_t hugetlb_errno;	/* why MAP_HUGETLB failed (0 if used or not tried) */
	uint64_t mapped_bytes;
	uint64_t capacity;
	uint64_t level_capacity;
	uint64_t max_users;
	uint64_t bytes_per_order;	/* mapped_bytes / capacity, rounded up */
	char warning[160];	/* empty when hugetlb was used */
};

struct rsx_book_stats {
	uint64_t orders;	/* resting */
	uint64_t levels;	/* resting prices, both sides */
	uint64_t users;		/* users with state */
	uint64_t ops;		/* requests processed */
	uint64_t fills;
	uint64_t recentres;
	int64_t center;		/* map centre */
	uint64_t bid_levels;
	uint64_t ask_levels;
};

/* The price index (specs/book.md §3-§5). [0] = bids, [1] = asks. */
struct rsx_book_map_info {
	int64_t center;		/* centre of the target window (the mid when last retargeted) */
	int64_t tick;
	uint64_t zone0_ticks;	/* W: the window reaches at least W ticks either side of its centre */
	uint64_t half;		/* R / 2 */
	uint64_t slots;		/* R: ring slots per side = window width in ticks (power of two >= 2W) */
	int64_t window_lo[2];	/* each side's window now: prices [lo, hi) (the target once a slide is done) */
	int64_t window_hi[2];
	uint64_t far_levels[2];	/* levels outside the window, in the side's far tree */
};

struct rsx_book_level_info {
	int64_t price;
	int64_t qty;		/* saturated to INT64_MAX */
	uint32_t count;
	uint32_t _pad0;
};

struct rsx_book_order_info {
	int64_t price;
	int64_t remaining;
	int64_t filled;
	uint8_t side;
	uint8_t tif;
	uint8_t flags;
	uint8_t stp;
	uint32_t _pad0;
};

void rsx_book_mem(const struct rsx_book *b, struct rsx_book_mem *out);
void rsx_book_stats(const struct rsx_book *b, struct rsx_book_stats *out);
void rsx_book_map_info(const struct rsx_book *b, struct rsx_book_map_info *out);
void rsx_book_config(const struct rsx_book *b, struct rsx_symbol_config *out);
/* The ring slot of a price (its tick mod R), or UINT64_MAX outside the target window (tests). */
uint64_t rsx_book_slot_of(const struct rsx_book *b, rsx_price_t price);
/* Best level of a side: 1 and *out filled, or 0 when the side is empty. */
int rsx_book_best(const struct rsx_book *b, int side, struct rsx_book_level_info *out);
/* Up to n levels of a side from the best; returns how many. */
int rsx_book_depth(const struct rsx_book *b, int side, struct rsx_book_level_info *rows, size_t n);
/* A resting order: 1 and *out filled, or 0 if (user, id) is not resting. */
int rsx_book_order(const struct rsx_book *b, uint32_t user_id, const rsx_oid_t *oid,
		   struct rsx_book_order_info *out);
/* A user's position in this book and resting order count (0, 0 if no state). */
int64_t rsx_book_position(const struct rsx_book *b, uint32_t user_id, uint32_t *norders);
/* Audit every invariant: 0, or RSX_EINVALID with a message in msg. */
int rsx_book_check(const struct rsx_book *b, char *msg, size_t cap);

/* ---- snapshot ---- */

#define RSX_BOOK_SNAP_MAGIC "RSXBOOK1"
#define RSX_BOOK_SNAP_VERSION 1
#define RSX_BOOK_SNAP_HEADER 256

/* Exact size of a snapshot of b now. */
size_t rsx_book_snapshot_size(const struct rsx_book *b);
/* Write it: bytes written, RSX_ESHORT if cap is too small, -EBUSY while suspended. */
int64_t rsx_book_snapshot(const struct rsx_book *b, uint64_t wal_seq, void *buf, size_t cap);
/* Read the creation parameters stored in a snapshot header (after checking its CRC). */
int rsx_book_snapshot_params(const void *buf, size_t len, struct rsx_book_params *params,
			     struct rsx_symbol_config *cfg, uint64_t *wal_seq);
/* Load a snapshot into an empty book: 0 and *wal_seq, or an error (book left empty). */
int rsx_book_restore(struct rsx_book *b, const void *buf, size_t len, uint64_t *wal_seq);

#endif
