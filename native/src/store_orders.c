/*
 * store_orders.c - the history store's order fold: a transaction's ME records
 * -> one row per order (specs/store.md 3, the record -> effect table).
 *
 * Rows live in a dense array in the order first seen; an open-addressing table
 * of row numbers finds them by (symbol, order id). Records are read in stream
 * order, so "each field from the last record that carries it" is a plain
 * overwrite.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "rsx/errors.h"
#include "rsx/records.h"
#include "rsx/store.h"
#include "rsx/wal.h"

struct rsx_store_fold {
	struct rsx_store_order *rows;
	size_t n, rows_cap;
	uint32_t *slots;	/* row number + 1; 0 = empty */
	size_t mask;		/* slots - 1 (a power of two minus one) */
};

/* murmur3's finaliser over both halves: every id bit reaches the low bits the table uses. */
static uint64_t key_hash(uint32_t symbol, const uint8_t *oid)
{
	uint64_t a, b, h;
	memcpy(&a, oid, 8);
	memcpy(&b, oid + 8, 8);
	h = a * 0x9e3779b97f4a7c15ull ^ b ^ symbol;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

static int grow_slots(struct rsx_store_fold *f, size_t want)
{
	size_t cap = 64;
	while (cap < want * 2)
		cap <<= 1;
	uint32_t *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < f->n; i++) {
		const struct rsx_store_order *o = &f->rows[i];
		size_t s = key_hash((uint32_t)o->symbol_id, o->order_id) & (cap - 1);
		while (slots[s])
			s = (s + 1) & (cap - 1);
		slots[s] = (uint32_t)(i + 1);
	}
	free(f->slots);
	f->slots = slots;
	f->mask = cap - 1;
	return 0;
}

int rsx_store_fold_new(size_t cap, struct rsx_store_fold **out)
{
	struct rsx_store_fold *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->rows_cap = cap < 64 ? 64 : cap;
	f->rows = malloc(f->rows_cap * sizeof(*f->rows));
	if (!f->rows || grow_slots(f, f->rows_cap) < 0) {
		rsx_store_fold_free(f);
		return -ENOMEM;
	}
	*out = f;
	return 0;
}

void rsx_store_fold_free(struct rsx_store_fold *f)
{
	if (!f)
		return;
	free(f->rows);
	free(f->slots);
	free(f);
}

size_t rsx_store_fold_count(const struct rsx_store_fold *f)
{
	return f->n;
}

/* The row of (symbol, oid), created on first sight with what every record sets. */
static struct rsx_store_order *row_of(struct rsx_store_fold *f, uint32_t symbol, const rsx_oid_t *oid,
				      uint64_t seq, uint64_t ts)
{
	size_t s = key_hash(symbol, oid->b) & f->mask;
	for (; f->slots[s]; s = (s + 1) & f->mask) {
		struct rsx_store_order *o = &f->rows[f->slots[s] - 1];
		if (o->symbol_id == symbol && memcmp(o->order_id, oid->b, 16) == 0)
			goto found;
	}
	if (f->n == UINT32_MAX - 1)
		return NULL;
	if (f->n == f->rows_cap) {
		struct rsx_store_order *rows = realloc(f->rows, 2 * f->rows_cap * sizeof(*rows));
		if (!rows)
			return NULL;
		f->rows = rows;
		f->rows_cap *= 2;
	}
	if ((f->n + 1) * 2 > f->mask + 1) {
		if (grow_slots(f, f->n + 1) < 0)
			return NULL;
		s = key_hash(symbol, oid->b) & f->mask;
		while (f->slots[s])
			s = (s + 1) & f->mask;
	}
	struct rsx_store_order *o = &f->rows[f->n];
	memset(o, 0, sizeof(*o));
	o->symbol_id = symbol;
	memcpy(o->order_id, oid->b, 16);
	o->created_ns = (int64_t)ts;	/* a partial row: created by the first record seen */
	f->slots[s] = (uint32_t)++f->n;
found:;
	struct rsx_store_order *r = &f->rows[f->slots[s] - 1];
	r->updated_ns = (int64_t)ts;
	r->last_seq = (int64_t)seq;
	return r;
}

static void set_client(struct rsx_store_order *o, const uint8_t *id)
{
	int64_t len = 20, plain = 1;
	memcpy(o->client_id, id, 20);
	memset(o->client_id + 20, 0, 4);
	while (len > 0 && id[len - 1] == 0)
		len--;
	for (int64_t i = 0; i < len; i++)
		if (id[i] == 0 || id[i] > 0x7f)
			plain = 0;
	o->client_len = len;
	o->client_plain = plain;
}

static void set_status(struct rsx_store_order *o, int64_t status, int64_t reason)
{
	o->has_status = 1;
	o->status = status;
	o->reason = reason;
}

static void set_remaining(struct rsx_store_order *o, int64_t qty)
{
	o->has_remaining = 1;
	o->remaining_qty = qty;
}

static void set_price(struct rsx_store_order *o, int64_t price)
{
	o->has_price = 1;
	o->price = price;
}

/* The record's payload as struct T, or RSX_ESHORT when the entry is shorter than T. */
#define PAYLOAD(T, r) \
	const struct T *r = (const void *)p; \
	if (e->size < RSX_HEADER_SIZE + sizeof(struct T)) \
		return RSX_ESHORT

#define ROW(sym, oid, p, user) do { \
	o = row_of(f, (sym), &(oid), (p)->seq, (p)->ts_ns); \
	if (!o) \
		return -ENOMEM; \
	o->user_id = (user); \
} while (0)

int64_t rsx_store_fold_add(struct rsx_store_fold *f, const void *buf, size_t buf_len,
			   const struct rsx_wal_entry *entries, size_t n)
{
	int64_t done = 0;
	for (size_t i = 0; i < n; i++) {
		const struct rsx_wal_entry *e = &entries[i];
		const uint8_t *p = (const uint8_t *)buf + e->offset + RSX_HEADER_SIZE;
		struct rsx_store_order *o;
		if (e->offset > buf_len || e->size > buf_len - e->offset)
			return RSX_ESHORT;
		switch (e->type) {
		case RSX_REC_ORDER_ACCEPTED: {
			PAYLOAD(rsx_order, r);
			ROW(r->symbol_id, r->order_id, r, r->user_id);
			/* an id accepted again (reused after its order ended): the row starts over */
			memset(&o->has_create, 0, sizeof(*o) - offsetof(struct rsx_store_order, has_create));
			o->updated_ns = (int64_t)r->ts_ns;
			o->last_seq = (int64_t)r->seq;
			o->has_create = 1;
			o->side = r->side;
			o->tif = r->tif;
			o->flags = r->flags;
			o->stp = r->stp;
			o->qty = r->qty.raw;
			set_client(o, r->client_id);
			o->created_ns = (int64_t)r->ts_ns;
			o->accepted_seq = (int64_t)r->seq;
			set_price(o, r->price.raw);
			set_remaining(o, r->qty.raw);
			set_status(o, RSX_STATUS_PENDING, 0);
			break;
		}
		case RSX_REC_FILL: {
			PAYLOAD(rsx_fill, r);
			ROW(r->symbol_id, r->taker_order_id, r, r->taker_user_id);
			o->fill_add += r->qty.raw;
			set_remaining(o, r->taker_remaining.raw);
			ROW(r->symbol_id, r->maker_order_id, r, r->maker_user_id);
			o->fill_add += r->qty.raw;
			set_remaining(o, r->maker_remaining.raw);
			break;
		}
		case RSX_REC_ORDER_INSERTED: {
			PAYLOAD(rsx_order_inserted, r);
			ROW(r->symbol_id, r->order_id, r, r->user_id);
			set_price(o, r->price.raw);
			set_remaining(o, r->qty.raw);
			set_status(o, RSX_STATUS_RESTING, 0);
			break;
		}
		case RSX_REC_ORDER_AMENDED: {
			PAYLOAD(rsx_order_amended, r);
			ROW(r->symbol_id, r->order_id, r, r->user_id);
			set_price(o, r->price.raw);
			set_remaining(o, r->remaining_qty.raw);
			break;
		}
		case RSX_REC_ORDER_CANCELLED: {
			PAYLOAD(rsx_order_cancelled, r);
			ROW(r->symbol_id, r->order_id, r, r->user_id);
			set_price(o, r->price.raw);
			set_remaining(o, r->remaining_qty.raw);
			set_status(o, RSX_STATUS_CANCELLED, r->reason);
			break;
		}
		case RSX_REC_ORDER_DONE: {
			PAYLOAD(rsx_order_done, r);
			ROW(r->symbol_id, r->order_id, r, r->user_id);
			set_remaining(o, r->remaining_qty.raw);
			set_status(o, r->status, r->reason);
			o->has_filled = 1;
			o->filled_qty = r->filled_qty.raw;
			o->fill_add = 0;	/* the ME's total includes every fill before it */
			break;
		}
		case RSX_REC_ORDER_FAILED: {
			PAYLOAD(rsx_order_failed, r);
			if (r->request_type != RSX_REC_NEW_ORDER)
				continue;	/* a refused cancel or amend changes nothing */
			if (r->reason == RSX_REASON_DUPLICATE_ORDER_ID)
				continue;	/* a refused retry: the order (same id) is the first try's */
			ROW(r->symbol_id, r->order_id, r, r->user_id);
			set_status(o, RSX_STATUS_FAILED, r->reason);
			break;
		}
		default:
			continue;
		}
		done++;
	}
	return done;
}

int64_t rsx_store_fold_take(struct rsx_store_fold *f, struct rsx_store_order *out, size_t cap)
{
	if (cap < f->n)
		return RSX_EINVALID;
	size_t n = f->n;
	memcpy(out, f->rows, n * sizeof(*out));
	memset(f->slots, 0, (f->mask + 1) * sizeof(*f->slots));
	f->n = 0;
	return (int64_t)n;
}
