/*
 * t_book.h - helpers for the book tests: a book with a simple config, order
 * ids from integers, requests that drain a sink to completion, and the
 * events as flat rows.
 */
#ifndef T_BOOK_H
#define T_BOOK_H

#include <errno.h>
#include <string.h>

#include "rsx/book.h"
#include "rsx/errors.h"
#include "t_helpers.h"

#define EV_MAX 200000

static struct rsx_book_event t_ev[EV_MAX];
static int t_nev;
static _Alignas(64) uint8_t t_buf[1 << 20];
static uint32_t t_sink_cap = sizeof t_buf;
static int t_mores;	/* RSX_BOOK_MORE returns seen */

static struct rsx_symbol_config t_cfg(int64_t tick, int64_t lot)
{
	struct rsx_symbol_config c;
	memset(&c, 0, sizeof c);
	c.symbol_id = 7;
	c.tick_size.raw = tick;
	c.lot_size.raw = lot;
	c.min_qty.raw = lot;
	c.max_qty.raw = lot * 1000000000ll;
	c.initial_margin_bps = 1000;
	c.maintenance_margin_bps = 500;
	return c;
}

static struct rsx_book *t_book_ex(uint64_t cap, uint64_t lcap, uint32_t users, int64_t ref, int64_t tick)
{
	struct rsx_book_params p;
	struct rsx_symbol_config c = t_cfg(tick, 1);
	struct rsx_book *b = NULL;
	memset(&p, 0, sizeof p);
	p.capacity = cap;
	p.level_capacity = lcap;
	p.max_users = users;
	p.ref_price.raw = ref;
	p.stream_id = 3;
	p.flags = RSX_BOOK_HUGETLB_NEVER;
	int rc = rsx_book_create(&b, &p, &c);
	if (rc) {
		fprintf(stderr, "rsx_book_create: %d\n", rc);
		exit(T_EXIT_FAIL);
	}
	return b;
}

static __attribute__((unused)) struct rsx_book *t_book(void)
{
	return t_book_ex(1 << 16, 0, 1024, 100000, 1);
}

static rsx_oid_t t_oid(uint64_t k)
{
	rsx_oid_t o;
	memset(&o, 0, sizeof o);
	uint64_t be = __builtin_bswap64(k);
	memcpy(o.b + 8, &be, 8);
	return o;
}

static __attribute__((unused)) uint64_t t_id(const rsx_oid_t *o)
{
	uint64_t v;
	memcpy(&v, o->b + 8, 8);
	return __builtin_bswap64(v);
}

/* Drain the sink into t_ev, resuming until the request is complete. */
static void t_drain(struct rsx_book *b, int rc, struct rsx_book_sink *s)
{
	for (;;) {
		if (rc < 0) {
			fprintf(stderr, "book call failed: %d\n", rc);
			exit(T_EXIT_FAIL);
		}
		int n = rsx_book_flatten(s->buf, s->len, t_ev + t_nev, EV_MAX - t_nev);
		if (n < 0) {
			fprintf(stderr, "flatten: %d\n", n);
			exit(T_EXIT_FAIL);
		}
		t_nev += n;
		if (rc == 0)
			return;
		t_mores++;
		s->len = s->count = 0;
		rc = rsx_book_resume(b, s);
	}
}

static struct rsx_book_sink t_sink(void)
{
	struct rsx_book_sink s = { .buf = t_buf, .cap = t_sink_cap };
	return s;
}

/* Each request clears t_ev first, so t_ev holds exactly its events. */
static __attribute__((unused)) int t_new(struct rsx_book *b, uint32_t user, uint64_t id, int side, int64_t price, int64_t qty, int tif,
		 int flags, int stp)
{
	struct rsx_order o;
	memset(&o, 0, sizeof o);
	o.user_id = user;
	o.order_id = t_oid(id);
	o.side = (uint8_t)side;
	o.tif = (uint8_t)tif;
	o.flags = (uint8_t)flags;
	o.stp = (uint8_t)stp;
	o.price.raw = price;
	o.qty.raw = qty;
	struct rsx_book_sink s = t_sink();
	t_nev = 0;
	t_drain(b, rsx_book_new_order(b, &o, &s), &s);
	return t_nev;
}

/* A plain GTC order without STP. */
static __attribute__((unused)) int t_gtc(struct rsx_book *b, uint32_t user, uint64_t id, int side, int64_t price, int64_t qty)
{
	return t_new(b, user, id, side, price, qty, RSX_TIF_GTC, 0, RSX_STP_NONE);
}

static __attribute__((unused)) int t_cancel(struct rsx_book *b, uint32_t user, uint64_t id)
{
	struct rsx_cancel c;
	memset(&c, 0, sizeof c);
	c.user_id = user;
	c.order_id = t_oid(id);
	struct rsx_book_sink s = t_sink();
	t_nev = 0;
	t_drain(b, rsx_book_cancel(b, &c, &s), &s);
	return t_nev;
}

static __attribute__((unused)) int t_cancel_all(struct rsx_book *b, uint32_t user)
{
	struct rsx_cancel_all c;
	memset(&c, 0, sizeof c);
	c.user_id = user;
	c.request_id = t_oid(999999);
	struct rsx_book_sink s = t_sink();
	t_nev = 0;
	t_drain(b, rsx_book_cancel_all(b, &c, &s), &s);
	return t_nev;
}

static __attribute__((unused)) int t_amend(struct rsx_book *b, uint32_t user, uint64_t id, int64_t price, int64_t qty)
{
	struct rsx_amend a;
	memset(&a, 0, sizeof a);
	a.user_id = user;
	a.order_id = t_oid(id);
	a.price.raw = price;
	a.qty.raw = qty;
	struct rsx_book_sink s = t_sink();
	t_nev = 0;
	t_drain(b, rsx_book_amend(b, &a, &s), &s);
	return t_nev;
}

static __attribute__((unused)) void t_check(struct rsx_book *b, int line)
{
	char msg[256];
	if (rsx_book_check(b, msg, sizeof msg) != 0) {
		fprintf(stderr, "line %d: book check failed: %s\n", line, msg);
		t_failures++;
	}
}
#define T_BOOK_OK(b) t_check((b), __LINE__)

/* The FILLs of t_ev go by price, ascending (buy taker) or descending: returns how many, *last the last price. */
static __attribute__((unused)) int t_fills_in_order(int ascending, int64_t *last)
{
	int fills = 0;
	*last = ascending ? INT64_MIN : INT64_MAX;
	for (int i = 0; i < t_nev; i++)
		if (t_ev[i].type == RSX_REC_FILL) {
			T_CHECK(ascending ? t_ev[i].price >= *last : t_ev[i].price <= *last);
			*last = t_ev[i].price;
			fills++;
		}
	return fills;
}

/* A deterministic xorshift64 stream for the tests. */
static __attribute__((unused)) uint64_t t_rand(void)
{
	static uint64_t x = 0x9E3779B97F4A7C15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static __attribute__((unused)) int64_t t_best(struct rsx_book *b, int side)
{
	struct rsx_book_level_info l;
	return rsx_book_best(b, side, &l) ? l.price : 0;
}

/*
 * A deterministic mixed stream: adds, sweeps under every TIF and STP mode,
 * post-only and reduce-only, cancels, amends, cancel-alls. With drift the
 * prices walk up by 60 % over the stream (recentres, far levels).
 */
static __attribute__((unused)) int t_mk_ops(struct rsx_book_op *ops, int n, int drift)
{
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		struct rsx_book_op *op = &ops[i];
		memset(op, 0, sizeof *op);
		op->user_id = 1 + (uint32_t)(x % 12);
		op->order_id = t_oid(1 + (x >> 8) % (uint64_t)(i + 1));
		op->side = (x >> 20) & 1;
		op->price.raw = 1000 + (int64_t)((x >> 24) % 40) - 20 + (drift ? (int64_t)i * 600 / n : 0);
		op->qty.raw = 1 + (int64_t)((x >> 32) % 30);
		switch ((x >> 40) % 16) {
		case 0: case 1: case 2: case 3: case 4: case 5:
			op->kind = RSX_BOOK_OP_NEW;
			op->order_id = t_oid(100000 + i);
			break;
		case 6:
			op->kind = RSX_BOOK_OP_NEW;
			op->order_id = t_oid(100000 + i);
			op->tif = (x >> 44) % 3;
			op->qty.raw *= 20;	/* sweeps */
			op->stp = (x >> 46) % 4;
			break;
		case 7:
			op->kind = RSX_BOOK_OP_NEW;
			op->order_id = t_oid(100000 + i);
			op->flags = (x >> 44) % 2 ? RSX_ORDER_POST_ONLY : RSX_ORDER_REDUCE_ONLY;
			break;
		case 8: case 9: case 10: case 11:
			op->kind = RSX_BOOK_OP_CANCEL;
			op->order_id = t_oid(100000 + (x >> 8) % (uint64_t)(i + 1));
			break;
		case 12: case 13:
			op->kind = RSX_BOOK_OP_AMEND;
			op->order_id = t_oid(100000 + (x >> 8) % (uint64_t)(i + 1));
			op->price.raw = (x >> 50) % 2 ? 0 : op->price.raw;
			op->qty.raw = 1 + (int64_t)((x >> 52) % 10);
			break;
		default:
			op->kind = (x >> 44) % 8 ? RSX_BOOK_OP_NEW : RSX_BOOK_OP_CANCEL_ALL;
			op->order_id = t_oid(100000 + i);
			break;
		}
	}
	return n;
}

#endif
