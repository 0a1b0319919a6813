/*
 * rsx/store.h - the history store's order fold (specs/store.md 3, orders).
 *
 * The store writes one orders row per order a transaction touches. The fold
 * reads the transaction's ME records in stream order and keeps, per (symbol,
 * order id), what they say: each field from the last record that carries it,
 * the fills' quantities summed. The writer then applies each folded row to the
 * database: inserted when the order is new there, else only the fields the
 * records carried (the has_* flags).
 *
 * Return contract: >= 0 on success; -ENOMEM, RSX_ESHORT (an index entry
 * points outside the buffer or is shorter than its type) or RSX_EINVALID.
 */
#ifndef RSX_STORE_H
#define RSX_STORE_H

#include <stddef.h>
#include <stdint.h>

struct rsx_wal_entry;

/* One order as a run of records leaves it; every field an int64 or bytes, for SQL binding. */
struct rsx_store_order {
	int64_t symbol_id;
	uint8_t order_id[16];	/* RFC 9562 byte order, as on the stream */
	int64_t user_id;	/* from the last record of the order */
	int64_t has_create;	/* an ORDER_ACCEPTED was folded: the fields up to accepted_seq */
	int64_t side;
	int64_t tif;
	int64_t flags;
	int64_t stp;
	int64_t qty;
	uint8_t client_id[24];	/* 20 bytes as on the stream, then 4 zero */
	int64_t client_len;	/* bytes before the trailing NULs */
	int64_t client_plain;	/* 1: those bytes are all 0x01..0x7f (text as is) */
	int64_t created_ns;	/* the ORDER_ACCEPTED's ts_ns, else the first record's */
	int64_t accepted_seq;
	int64_t has_price;
	int64_t price;
	int64_t has_remaining;
	int64_t remaining_qty;
	int64_t has_status;
	int64_t status;		/* enum rsx_status; PENDING = accepted, no outcome yet */
	int64_t reason;		/* enum rsx_reason */
	int64_t has_filled;	/* an ORDER_DONE was folded: filled_qty is the ME's total */
	int64_t filled_qty;
	int64_t fill_add;	/* fill quantity to add (fills after the last ORDER_DONE, or all) */
	int64_t updated_ns;	/* ts_ns of the last record */
	int64_t last_seq;	/* seq of the last record */
};

struct rsx_store_fold;

/* A fold sized for about cap orders (it grows). */
int rsx_store_fold_new(size_t cap, struct rsx_store_fold **out);
void rsx_store_fold_free(struct rsx_store_fold *f);

/*
 * Fold n records of one ME stream, in stream order: buf holds them, entries
 * index them (rsx_wal_scan's output; buf_len bounds the offsets). Records that
 * do not touch an order (CONFIG_APPLIED, BBO, requests the ME journaled, an
 * ORDER_FAILED of a cancel or amend) are skipped. Returns the number of
 * records folded, or an error (the fold then holds part of the records:
 * free it or take and discard its rows).
 */
int64_t rsx_store_fold_add(struct rsx_store_fold *f, const void *buf, size_t buf_len,
			   const struct rsx_wal_entry *entries, size_t n);

/* Orders held. */
size_t rsx_store_fold_count(const struct rsx_store_fold *f);

/*
 * Copy the orders held to out (cap rows), in the order first seen, and empty
 * the fold. Returns the number copied, or RSX_EINVALID (cap too small: nothing
 * copied, the fold unchanged).
 */
int64_t rsx_store_fold_take(struct rsx_store_fold *f, struct rsx_store_order *out, size_t cap);

#endif
