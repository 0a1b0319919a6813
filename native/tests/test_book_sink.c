/*
 * test_book_sink.c - never drop: a sweep of far more makers than the sink
 * holds, a price amend and a cancel-all that suspend and resume; -EBUSY while
 * suspended; the batch entry with a small row array gives the same events as
 * the record entries; snapshot/restore round trips and refuses corruption.
 */
#include "t_book.h"

#define MAKERS 3000

static void fill_book(struct rsx_book *b, uint64_t first_id)
{
	/* MAKERS one-lot asks over 300 prices, ten per price, from 30 users */
	for (int i = 0; i < MAKERS; i++)
		t_gtc(b, 1 + i % 30, first_id + i, RSX_SIDE_SELL, 1000 + i / 10, 1);
}

static void test_sweep_suspends(void)
{
	struct rsx_book *b = t_book();
	fill_book(b, 1);
	t_sink_cap = RSX_BOOK_SINK_MIN;	/* room for about two fills at a time */
	t_mores = 0;

	/* drive the request by hand to poke at the book while it is suspended */
	struct rsx_order o;
	memset(&o, 0, sizeof o);
	o.user_id = 99;
	o.order_id = t_oid(100000);
	o.side = RSX_SIDE_BUY;
	o.price.raw = 5000;
	o.qty.raw = MAKERS + 5;
	struct rsx_book_sink s = t_sink();
	t_nev = 0;
	int rc = rsx_book_new_order(b, &o, &s);
	T_EQ(rc, RSX_BOOK_MORE);
	T_EQ(rsx_book_pending(b), 1);
	struct rsx_book_sink s2 = { .buf = t_buf + 4096, .cap = 4096 };
	T_EQ(rsx_book_new_order(b, &o, &s2), -EBUSY);
	struct rsx_cancel c = { .user_id = 1, .order_id = t_oid(1) };
	T_EQ(rsx_book_cancel(b, &c, &s2), -EBUSY);
	uint8_t snap[64];
	T_EQ(rsx_book_snapshot(b, 1, snap, sizeof snap), -EBUSY);
	T_EQ(rsx_book_set_config(b, &(struct rsx_symbol_config){ 0 }), RSX_EINVALID);
	T_BOOK_OK(b);	/* consistent between two makers */
	t_drain(b, rc, &s);
	T_CHECK(t_mores > MAKERS / 4);
	T_EQ(t_nev, 2 * MAKERS + 2);	/* FILL + DONE per maker, the taker's INSERTED, BBO */
	int fills = 0;
	int64_t last = 0;
	int ordered = 1;
	for (int i = 0; i < 2 * MAKERS; i += 2) {
		ordered &= t_ev[i].type == RSX_REC_FILL && t_ev[i + 1].type == RSX_REC_ORDER_DONE;
		ordered &= t_id(&t_ev[i].maker_order_id) == (uint64_t)(1 + i / 2);	/* price-time order */
		ordered &= t_ev[i].price >= last;
		last = t_ev[i].price;
		fills++;
	}
	T_CHECK(ordered);
	T_EQ(fills, MAKERS);
	T_EQ(t_ev[2 * MAKERS].type, RSX_REC_ORDER_INSERTED);
	T_EQ(t_ev[2 * MAKERS].qty, 5);
	T_EQ(t_ev[2 * MAKERS + 1].type, RSX_REC_BBO);
	T_EQ(rsx_book_pending(b), 0);
	T_BOOK_OK(b);

	/* a price amend that sweeps suspends too, and the order stays findable meanwhile */
	t_cancel(b, 99, 100000);
	t_gtc(b, 99, 100001, RSX_SIDE_BUY, 500, 5);
	fill_book(b, 10000);
	struct rsx_amend a = { .user_id = 99, .order_id = t_oid(100001), .qty.raw = MAKERS };
	a.price.raw = 6000;
	s = t_sink();
	t_nev = 0;
	rc = rsx_book_amend(b, &a, &s);
	T_EQ(rc, RSX_BOOK_MORE);
	struct rsx_book_order_info oi;
	T_EQ(rsx_book_order(b, 99, &a.order_id, &oi), 1);
	T_EQ(oi.price, 6000);
	T_BOOK_OK(b);
	t_drain(b, rc, &s);
	T_EQ(t_nev, 2 * MAKERS + 2);	/* fills, the amended order's DONE(FILLED), BBO */
	T_EQ(t_ev[2 * MAKERS].type, RSX_REC_ORDER_DONE);
	T_EQ(t_ev[2 * MAKERS].filled, MAKERS);
	T_BOOK_OK(b);

	/* a cancel-all of 3000 orders with a minimal sink */
	for (int i = 0; i < MAKERS; i++)
		t_gtc(b, 7, 20000 + i, RSX_SIDE_BUY, 500 + i % 100, 1);
	t_mores = 0;
	t_cancel_all(b, 7);
	T_CHECK(t_mores > MAKERS / 6);
	T_EQ(t_nev, MAKERS + 1);
	ordered = 1;
	for (int i = 0; i < MAKERS; i++)
		ordered &= t_id(&t_ev[i].order_id) == (uint64_t)(20000 + i);
	T_CHECK(ordered);
	T_EQ(t_ev[MAKERS].type, RSX_REC_BBO);
	T_EQ(t_best(b, RSX_SIDE_BUY), 0);
	T_BOOK_OK(b);
	t_sink_cap = sizeof t_buf;
	rsx_book_destroy(b);
}

static int apply_record(struct rsx_book *b, const struct rsx_book_op *op)
{
	struct rsx_book_sink s = t_sink();
	int rc;
	switch (op->kind) {
	case RSX_BOOK_OP_NEW: {
		struct rsx_order o = { .user_id = op->user_id, .order_id = op->order_id, .side = op->side,
				       .tif = op->tif, .flags = op->flags, .stp = op->stp, .price = op->price,
				       .qty = op->qty };
		rc = rsx_book_apply(b, RSX_REC_NEW_ORDER, &o, &s);
		break;
	}
	case RSX_BOOK_OP_CANCEL: {
		struct rsx_cancel c = { .user_id = op->user_id, .order_id = op->order_id };
		rc = rsx_book_apply(b, RSX_REC_CANCEL_ORDER, &c, &s);
		break;
	}
	case RSX_BOOK_OP_CANCEL_ALL: {
		struct rsx_cancel_all c = { .user_id = op->user_id, .request_id = op->order_id };
		rc = rsx_book_apply(b, RSX_REC_CANCEL_ALL, &c, &s);
		break;
	}
	default: {
		struct rsx_amend a = { .user_id = op->user_id, .order_id = op->order_id, .price = op->price,
				       .qty = op->qty };
		rc = rsx_book_apply(b, RSX_REC_AMEND_ORDER, &a, &s);
		break;
	}
	}
	int before = t_nev;
	t_drain(b, rc, &s);
	return t_nev - before;
}

#define NOPS 6000
static struct rsx_book_op ops[NOPS];
static struct rsx_book_event rows[EV_MAX];

static void test_run_matches_records(void)
{
	t_mk_ops(ops, NOPS, 0);
	/* the record entries, with a small sink */
	struct rsx_book *a = t_book();
	t_sink_cap = 1024;
	t_nev = 0;
	for (int i = 0; i < NOPS; i++)
		apply_record(a, &ops[i]);
	T_BOOK_OK(a);
	t_sink_cap = sizeof t_buf;

	/* the batch entry, with the smallest row array */
	struct rsx_book *b = t_book();
	size_t done = 0, nrows = 0, total = 0;
	int calls = 0, rc;
	while ((rc = rsx_book_run(b, ops, NOPS, &done, rows + total, RSX_BOOK_RUN_MIN_ROWS, &nrows)) ==
	       RSX_BOOK_MORE) {
		total += nrows;
		nrows = 0;
		calls++;
	}
	T_EQ(rc, 0);
	total += nrows;
	T_EQ(done, NOPS);
	T_CHECK(calls > 2);
	T_EQ(total, (size_t)t_nev);
	int same = 1;
	for (int i = 0; i < t_nev && same; i++) {
		struct rsx_book_event r = rows[i];
		r.op_index = 0;
		if (memcmp(&r, &t_ev[i], sizeof r) != 0) {
			fprintf(stderr, "row %d differs (type %d vs %d)\n", i, rows[i].type, t_ev[i].type);
			same = 0;
		}
	}
	T_CHECK(same);
	T_CHECK(rows[total - 1].op_index <= NOPS - 1);
	/* every kind of outcome happened */
	int seen[32] = { 0 };
	for (size_t i = 0; i < total; i++)
		seen[rows[i].type & 31]++;
	T_CHECK(seen[RSX_REC_FILL] && seen[RSX_REC_ORDER_DONE] && seen[RSX_REC_ORDER_CANCELLED] &&
		seen[RSX_REC_ORDER_INSERTED] && seen[RSX_REC_ORDER_AMENDED] && seen[RSX_REC_ORDER_FAILED] &&
		seen[RSX_REC_BBO]);
	T_BOOK_OK(b);

	/* bad op kinds are refused before anything happens */
	struct rsx_book_op bad[2] = { ops[0], ops[1] };
	bad[1].kind = 9;
	done = nrows = 0;
	struct rsx_book_stats st0, st1;
	rsx_book_stats(b, &st0);
	T_EQ(rsx_book_run(b, bad, 2, &done, rows, EV_MAX, &nrows), RSX_EINVALID);
	rsx_book_stats(b, &st1);
	T_EQ(st0.ops, st1.ops);
	T_EQ(done, 0);
	T_EQ(rsx_book_run(b, ops, 2, &done, rows, 100, &nrows), RSX_ESHORT);
	rsx_book_destroy(a);
	rsx_book_destroy(b);
}

static uint8_t snapbuf[8 << 20], snapbuf2[8 << 20];

static void test_snapshot(void)
{
	t_mk_ops(ops, NOPS, 0);
	struct rsx_book *a = t_book();
	t_nev = 0;
	for (int i = 0; i < NOPS / 2; i++)
		apply_record(a, &ops[i]);
	size_t size = rsx_book_snapshot_size(a);
	T_EQ(rsx_book_snapshot(a, 4242, snapbuf, size - 1), RSX_ESHORT);
	T_EQ(rsx_book_snapshot(a, 4242, snapbuf, sizeof snapbuf), (int64_t)size);

	struct rsx_book_params p;
	struct rsx_symbol_config c;
	uint64_t seq = 0;
	T_EQ(rsx_book_snapshot_params(snapbuf, size, &p, &c, &seq), 0);
	T_EQ(seq, 4242);
	T_EQ(p.capacity, 1 << 16);
	T_EQ(c.symbol_id, 7);
	struct rsx_book *b = t_book();
	T_EQ(rsx_book_restore(b, snapbuf, size, &seq), 0);
	T_EQ(seq, 4242);
	T_BOOK_OK(b);
	/* a restored book snapshots to the same bytes */
	T_EQ(rsx_book_snapshot(b, 4242, snapbuf2, sizeof snapbuf2), (int64_t)size);
	T_CHECK(memcmp(snapbuf, snapbuf2, size) == 0);
	/* and continues exactly as the original */
	int na = t_nev;
	for (int i = NOPS / 2; i < NOPS; i++)
		apply_record(a, &ops[i]);
	int nb_start = t_nev;
	for (int i = NOPS / 2; i < NOPS; i++)
		apply_record(b, &ops[i]);
	T_EQ(t_nev - nb_start, nb_start - na);
	T_CHECK(memcmp(&t_ev[na], &t_ev[nb_start], (size_t)(nb_start - na) * sizeof t_ev[0]) == 0);

	/* refusals leave the target empty */
	struct rsx_book *x = t_book();
	T_EQ(rsx_book_restore(x, snapbuf, size - 1, NULL), RSX_ESHORT);
	snapbuf[size / 2] ^= 1;
	T_EQ(rsx_book_restore(x, snapbuf, size, NULL), RSX_ECRC);
	snapbuf[size / 2] ^= 1;
	snapbuf[0] = 'X';
	T_EQ(rsx_book_restore(x, snapbuf, size, NULL), RSX_EVERSION);
	snapbuf[0] = 'R';
	T_EQ(rsx_book_restore(b, snapbuf, size, NULL), RSX_EINVALID);	/* b is not empty */
	struct rsx_book *small = t_book_ex(16, 0, 1024, 100000, 1);
	T_EQ(rsx_book_restore(small, snapbuf, size, NULL), RSX_EINVALID);	/* too small */
	struct rsx_book_stats st;
	rsx_book_stats(small, &st);
	T_EQ(st.orders + st.users + st.levels, 0);
	T_BOOK_OK(small);
	T_EQ(rsx_book_restore(x, snapbuf, size, NULL), 0);
	T_BOOK_OK(x);
	rsx_book_destroy(a);
	rsx_book_destroy(b);
	rsx_book_destroy(x);
	rsx_book_destroy(small);
}

int main(void)
{
	test_sweep_suspends();
	test_run_matches_records();
	test_snapshot();
	T_DONE();
}
