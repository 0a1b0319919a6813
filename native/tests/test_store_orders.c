/*
 * test_store_orders.c - the history store's order fold: an order's records in
 * one run -> one row (specs/store.md 3), partial rows, fills after ORDER_DONE,
 * refused cancels, client ids, an id accepted again, growth past the initial
 * size, bad entries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rsx/errors.h"
#include "rsx/records.h"
#include "rsx/store.h"
#include "rsx/wal.h"
#include "t_helpers.h"

/* A run of records built in memory, indexed like rsx_wal_scan's output. */
struct run {
	uint8_t buf[1 << 20];
	struct rsx_wal_entry e[4096];
	size_t len, n;
	uint64_t seq;
};

static void *add(struct run *r, uint16_t type, size_t payload)
{
	struct rsx_header *h = (void *)(r->buf + r->len);
	struct rsx_prefix *p = (void *)(r->buf + r->len + RSX_HEADER_SIZE);
	memset(h, 0, RSX_HEADER_SIZE + payload);
	h->version = RSX_RECORD_VERSION;
	h->type = type;
	h->len = (uint16_t)payload;
	p->seq = ++r->seq;
	p->ts_ns = 1000 * r->seq;
	p->stream_id = 1;
	r->e[r->n] = (struct rsx_wal_entry){ .offset = r->len, .seq = r->seq, .type = type,
					     .size = (uint16_t)(RSX_HEADER_SIZE + payload), .stream_id = 1 };
	r->n++;
	r->len += RSX_HEADER_SIZE + payload;
	return p;
}

static rsx_oid_t oid(uint8_t k)
{
	rsx_oid_t o;
	memset(&o, 0, sizeof(o));
	o.b[0] = 0x01;
	o.b[15] = k;
	return o;
}

static void accept(struct run *r, uint8_t k, uint32_t user, int64_t price, int64_t qty, const char *cid)
{
	struct rsx_order *o = add(r, RSX_REC_ORDER_ACCEPTED, sizeof(*o));
	o->symbol_id = 1;
	o->user_id = user;
	o->side = 1;
	o->tif = 0;
	o->stp = 3;
	o->order_id = oid(k);
	o->price.raw = price;
	o->qty.raw = qty;
	memcpy(o->client_id, cid, strlen(cid));
}

static void fill(struct run *r, uint8_t taker, uint8_t maker, int64_t qty, int64_t trem, int64_t mrem)
{
	struct rsx_fill *f = add(r, RSX_REC_FILL, sizeof(*f));
	f->symbol_id = 1;
	f->taker_user_id = 7;
	f->maker_user_id = 8;
	f->taker_order_id = oid(taker);
	f->maker_order_id = oid(maker);
	f->price.raw = 100;
	f->qty.raw = qty;
	f->taker_remaining.raw = trem;
	f->maker_remaining.raw = mrem;
}

static void done(struct run *r, uint8_t k, int64_t filled, int64_t rem)
{
	struct rsx_order_done *d = add(r, RSX_REC_ORDER_DONE, sizeof(*d));
	d->symbol_id = 1;
	d->user_id = 7;
	d->status = RSX_STATUS_FILLED;
	d->order_id = oid(k);
	d->filled_qty.raw = filled;
	d->remaining_qty.raw = rem;
}

static const struct rsx_store_order *find(const struct rsx_store_order *rows, size_t n, uint8_t k)
{
	rsx_oid_t o = oid(k);
	for (size_t i = 0; i < n; i++)
		if (memcmp(rows[i].order_id, o.b, 16) == 0)
			return &rows[i];
	return NULL;
}

static void test_lifecycle(void)
{
	static struct run r;
	struct rsx_store_fold *f;
	struct rsx_store_order rows[8];
	memset(&r, 0, sizeof(r));
	T_EQ(rsx_store_fold_new(1, &f), 0);

	accept(&r, 1, 8, 100, 10, "maker-1");		/* seq 1 */
	struct rsx_order_inserted *ins = add(&r, RSX_REC_ORDER_INSERTED, sizeof(*ins));	/* seq 2 */
	ins->symbol_id = 1;
	ins->user_id = 8;
	ins->order_id = oid(1);
	ins->price.raw = 100;
	ins->qty.raw = 10;
	accept(&r, 2, 7, 100, 4, "t\xe9");		/* seq 3: a non-ASCII client id */
	fill(&r, 2, 1, 4, 0, 6);			/* seq 4 */
	done(&r, 2, 4, 0);				/* seq 5 */
	fill(&r, 3, 1, 1, 0, 5);			/* seq 6: taker 3 never seen accepted */
	struct rsx_order_failed *of = add(&r, RSX_REC_ORDER_FAILED, sizeof(*of));	/* seq 7 */
	of->symbol_id = 1;
	of->order_id = oid(1);
	of->request_type = RSX_REC_CANCEL_ORDER;	/* a refused cancel changes nothing */
	of->reason = 9;
	add(&r, RSX_REC_BBO, sizeof(struct rsx_bbo));	/* seq 8: not an order record */
	done(&r, 1, 5, 5);				/* seq 9: the ME's total */
	fill(&r, 4, 1, 2, 0, 3);			/* seq 10: after DONE (never in a valid stream) */

	T_EQ(rsx_store_fold_add(f, r.buf, r.len, r.e, r.n), 8);
	T_EQ(rsx_store_fold_count(f), 4);
	T_EQ(rsx_store_fold_take(f, rows, 3), RSX_EINVALID);	/* too small: unchanged */
	T_EQ(rsx_store_fold_take(f, rows, 8), 4);
	T_EQ(rsx_store_fold_count(f), 0);

	const struct rsx_store_order *m = &rows[0];	/* first seen first */
	T_CHECK(m == find(rows, 4, 1));
	T_EQ(m->has_create, 1);
	T_EQ(m->accepted_seq, 1);
	T_EQ(m->created_ns, 1000);
	T_EQ(m->client_len, 7);
	T_EQ(m->client_plain, 1);
	T_EQ(m->has_status, 1);
	T_EQ(m->status, RSX_STATUS_FILLED);
	T_EQ(m->has_filled, 1);
	T_EQ(m->filled_qty, 5);
	T_EQ(m->fill_add, 2);				/* only the fill after ORDER_DONE */
	T_EQ(m->remaining_qty, 3);
	T_EQ(m->price, 100);
	T_EQ(m->last_seq, 10);
	T_EQ(m->updated_ns, 10000);
	T_EQ(m->user_id, 8);

	const struct rsx_store_order *t = find(rows, 4, 2);
	T_CHECK(t != NULL);
	T_EQ(t->client_len, 2);
	T_EQ(t->client_plain, 0);
	T_EQ(t->status, RSX_STATUS_FILLED);
	T_EQ(t->filled_qty, 4);
	T_EQ(t->fill_add, 0);

	const struct rsx_store_order *p = find(rows, 4, 3);	/* a partial row */
	T_CHECK(p != NULL);
	T_EQ(p->has_create, 0);
	T_EQ(p->has_status, 0);
	T_EQ(p->has_filled, 0);
	T_EQ(p->fill_add, 1);
	T_EQ(p->has_remaining, 1);
	T_EQ(p->created_ns, 6000);
	T_EQ(p->user_id, 7);
	rsx_store_fold_free(f);
}

static void test_growth_and_bad_entries(void)
{
	static struct run r;
	static struct rsx_store_order rows[2000];
	struct rsx_store_fold *f;
	memset(&r, 0, sizeof(r));
	T_EQ(rsx_store_fold_new(4, &f), 0);
	for (int i = 0; i < 1500; i++) {	/* 1500 orders: the table grows many times */
		struct rsx_order *o = add(&r, RSX_REC_ORDER_ACCEPTED, sizeof(*o));
		o->symbol_id = 1 + (i & 1);
		o->order_id = oid((uint8_t)(i >> 1));
		o->order_id.b[14] = (uint8_t)(i >> 9);
		o->qty.raw = i;
	}
	T_EQ(rsx_store_fold_add(f, r.buf, r.len, r.e, r.n), 1500);
	T_EQ(rsx_store_fold_add(f, r.buf, r.len, r.e, r.n), 1500);	/* the same orders again */
	T_EQ(rsx_store_fold_count(f), 1500);
	T_EQ(rsx_store_fold_take(f, rows, 2000), 1500);
	T_EQ(rows[1499].qty, 1499);
	T_EQ(rows[1499].symbol_id, 2);

	struct rsx_wal_entry bad = r.e[0];
	bad.offset = r.len;				/* past the buffer */
	T_EQ(rsx_store_fold_add(f, r.buf, r.len, &bad, 1), RSX_ESHORT);
	bad = r.e[0];
	bad.size = RSX_HEADER_SIZE + 64;		/* shorter than an ORDER_ACCEPTED */
	T_EQ(rsx_store_fold_add(f, r.buf, r.len, &bad, 1), RSX_ESHORT);
	T_EQ(rsx_store_fold_count(f), 0);
	rsx_store_fold_free(f);
}

static void test_accepted_again(void)
{
	static struct run r;
	struct rsx_store_fold *f;
	struct rsx_store_order rows[4];
	memset(&r, 0, sizeof(r));
	T_EQ(rsx_store_fold_new(16, &f), 0);
	accept(&r, 9, 7, 100, 5, "first");
	fill(&r, 9, 1, 5, 0, 0);
	done(&r, 9, 5, 0);
	accept(&r, 9, 7, 101, 3, "again");		/* seq 4: the id reused after its order ended */
	T_EQ(rsx_store_fold_add(f, r.buf, r.len, r.e, r.n), 4);
	T_EQ(rsx_store_fold_take(f, rows, 4), 2);	/* order 9 and the maker of the fill */
	const struct rsx_store_order *o = find(rows, 2, 9);
	T_CHECK(o != NULL);
	T_EQ(o->has_create, 1);
	T_EQ(o->accepted_seq, 4);
	T_EQ(o->qty, 3);
	T_EQ(o->price, 101);
	T_EQ(o->has_filled, 0);
	T_EQ(o->fill_add, 0);
	T_EQ(o->status, RSX_STATUS_PENDING);
	T_EQ(o->client_len, 5);
	T_EQ(o->created_ns, 4000);
	rsx_store_fold_free(f);
}

int main(void)
{
	test_lifecycle();
	test_accepted_again();
	test_growth_and_bad_entries();
	T_DONE();
}
