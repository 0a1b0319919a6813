/*
 * book_run.c - the batch entry (ops in, flat event rows out), the record ->
 * row flattening, the benchmark replay loop and the workload text parser
 * (specs/matching.md §7).
 */
#include <errno.h>
#include <stddef.h>

#include "book_int.h"

/* ---- records -> rows ---- */

#define GET(var, st, field) memcpy(&(var), p + offsetof(struct st, field), sizeof(var))

static int flatten_one(const uint8_t *rec, struct rsx_book_event *r, uint32_t op_index)
{
	const uint8_t *p = rec + RSX_HEADER_SIZE;
	uint16_t type;
	memcpy(&type, rec + 2, 2);
	memset(r, 0, sizeof *r);
	r->type = type;
	r->op_index = op_index;
	switch (type) {
	case RSX_REC_FILL:
		GET(r->user_id, rsx_fill, taker_user_id);
		GET(r->maker_user_id, rsx_fill, maker_user_id);
		GET(r->order_id, rsx_fill, taker_order_id);
		GET(r->maker_order_id, rsx_fill, maker_order_id);
		GET(r->price, rsx_fill, price);
		GET(r->qty, rsx_fill, qty);
		GET(r->side, rsx_fill, taker_side);
		GET(r->flags, rsx_fill, taker_flags);
		GET(r->maker_flags, rsx_fill, maker_flags);
		GET(r->remaining, rsx_fill, taker_remaining);
		GET(r->maker_remaining, rsx_fill, maker_remaining);
		return 0;
	case RSX_REC_ORDER_DONE:
		GET(r->user_id, rsx_order_done, user_id);
		GET(r->status, rsx_order_done, status);
		GET(r->side, rsx_order_done, side);
		GET(r->reason, rsx_order_done, reason);
		GET(r->order_id, rsx_order_done, order_id);
		GET(r->filled, rsx_order_done, filled_qty);
		GET(r->remaining, rsx_order_done, remaining_qty);
		return 0;
	case RSX_REC_ORDER_CANCELLED:
		GET(r->user_id, rsx_order_cancelled, user_id);
		GET(r->side, rsx_order_cancelled, side);
		GET(r->reason, rsx_order_cancelled, reason);
		GET(r->order_id, rsx_order_cancelled, order_id);
		GET(r->price, rsx_order_cancelled, price);
		GET(r->remaining, rsx_order_cancelled, remaining_qty);
		return 0;
	case RSX_REC_ORDER_INSERTED:
		GET(r->user_id, rsx_order_inserted, user_id);
		GET(r->side, rsx_order_inserted, side);
		GET(r->tif, rsx_order_inserted, tif);
		GET(r->flags, rsx_order_inserted, flags);
		GET(r->order_id, rsx_order_inserted, order_id);
		GET(r->price, rsx_order_inserted, price);
		GET(r->qty, rsx_order_inserted, qty);
		return 0;
	case RSX_REC_ORDER_AMENDED:
		GET(r->user_id, rsx_order_amended, user_id);
		GET(r->side, rsx_order_amended, side);
		GET(r->order_id, rsx_order_amended, order_id);
		GET(r->price, rsx_order_amended, price);
		GET(r->remaining, rsx_order_amended, remaining_qty);
		return 0;
	case RSX_REC_ORDER_FAILED:
		GET(r->user_id, rsx_order_failed, user_id);
		GET(r->reason, rsx_order_failed, reason);
		GET(r->request_type, rsx_order_failed, request_type);
		GET(r->order_id, rsx_order_failed, order_id);
		GET(r->detail, rsx_order_failed, detail);
		return 0;
	case RSX_REC_BBO:
		GET(r->price, rsx_bbo, bid_px);
		GET(r->qty, rsx_bbo, bid_qty);
		GET(r->ask_px, rsx_bbo, ask_px);
		GET(r->ask_qty, rsx_bbo, ask_qty);
		GET(r->bid_count, rsx_bbo, bid_count);
		GET(r->ask_count, rsx_bbo, ask_count);
		return 0;
	}
	return RSX_ETYPE;
}

static int flatten(const uint8_t *buf, size_t len, struct rsx_book_event *rows, size_t cap,
		   uint32_t op_index)
{
	size_t off = 0, n = 0;
	while (off < len) {
		uint16_t rlen;
		if (len - off < RSX_HEADER_SIZE)
			return RSX_ESHORT;
		memcpy(&rlen, buf + off + 4, 2);
		if (len - off < RSX_HEADER_SIZE + (size_t)rlen)
			return RSX_ESHORT;
		if (n == cap)
			return RSX_ESHORT;
		int rc = flatten_one(buf + off, &rows[n], op_index);
		if (rc < 0)
			return rc;
		n++;
		off += RSX_HEADER_SIZE + rlen;
	}
	return (int)n;
}

int rsx_book_flatten(const uint8_t *buf, size_t len, struct rsx_book_event *rows, size_t cap)
{
	if ((!buf && len) || (!rows && cap) || cap > INT32_MAX)
		return RSX_EINVALID;
	return flatten(buf, len, rows, cap, 0);
}

static int ops_valid(const struct rsx_book_op *ops, size_t from, size_t n)
{
	for (size_t i = from; i < n; i++)
		if (ops[i].kind < RSX_BOOK_OP_NEW || ops[i].kind > RSX_BOOK_OP_AMEND)
			return 0;
	return 1;
}

int rsx_book_run(struct rsx_book *b, const struct rsx_book_op *ops, size_t n, size_t *done,
		 struct rsx_book_event *rows, size_t cap, size_t *nrows)
{
	if (!b || !done || !nrows || (!ops && n) || !rows || *done > n || *nrows > cap)
		return RSX_EINVALID;
	if (b->tk.kind != PEND_NONE && !b->tk.from_run)
		return -EBUSY;
	if (b->tk.kind == PEND_NONE && !ops_valid(ops, *done, n))
		return RSX_EINVALID;
	if (b->tk.kind != PEND_NONE && *done >= n)
		return RSX_EINVALID;	/* the suspended op must still be in ops */
	if (cap - *nrows < RSX_BOOK_RUN_MIN_ROWS)
		return RSX_ESHORT;
	struct rsx_book_sink s = { .buf = b->scratch, .cap = b->scratch_cap };
	while (*done < n) {
		if (cap - *nrows < RSX_BOOK_RUN_MIN_ROWS)
			return RSX_BOOK_MORE;
		s.len = 0;
		s.count = 0;
		int rc = b->tk.kind != PEND_NONE ? bk_resume(b, &s) : bk_apply_op(b, &ops[*done], &s);
		if (rc < 0)
			return rc;
		int k = flatten(s.buf, s.len, rows + *nrows, cap - *nrows, (uint32_t)*done);
		if (k < 0)
			return k;
		*nrows += (size_t)k;
		if (rc == RSX_BOOK_MORE)
			b->tk.from_run = 1;
		else
			(*done)++;
	}
	return 0;
}

/* ---- the benchmark loop ---- */

int rsx_book_replay(struct rsx_book *b, const struct rsx_book_op *ops, size_t n,
		    struct rsx_book_fill_row *fills, size_t cap, size_t *nfills)
{
	if (!b || !nfills || (!ops && n) || (!fills && cap))
		return RSX_EINVALID;
	if (b->tk.kind != PEND_NONE)
		return -EBUSY;
	if (cap / 2 < n)
		return RSX_ESHORT;
	if (!ops_valid(ops, 0, n))
		return RSX_EINVALID;
	return bk_replay_loop(b, ops, n, fills, cap, nfills);
}

/* ---- workload text (bench/workload.py) ---- */

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Next whitespace-separated token of [p, end) on this line. */
static const char *token(const char **p, const char *end, size_t *n)
{
	const char *s = *p;
	while (s < end && is_space(*s))
		s++;
	const char *t = s;
	while (t < end && !is_space(*t))
		t++;
	*n = (size_t)(t - s);
	*p = t;
	return s;
}

static int parse_i64(const char *s, size_t n, int64_t *out)
{
	int neg = 0;
	uint64_t v = 0;
	size_t i = 0;
	if (n && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return -1;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static int tok_is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

int rsx_book_parse_workload(const char *text, size_t len, uint32_t users, uint8_t stp,
			    struct rsx_book_op *ops, size_t cap, size_t *n)
{
	if (!text || !n || users == 0 || stp > RSX_STP_NONE || (!ops && cap))
		return RSX_EINVALID;
	const char *p = text, *end = text + len;
	size_t count = 0, line = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		line++;
		const char *q = p;
		size_t tn[7];
		const char *tk[7];
		int nt = 0;
		while (nt < 7) {
			tk[nt] = token(&q, eol, &tn[nt]);
			if (tn[nt] == 0)
				break;
			nt++;
		}
		p = eol + (eol < end);
		if (nt == 0 || tk[0][0] == '#')
			continue;
		if (nt != 6)
			goto bad;
		int64_t price, qty, id;
		int is_add = tok_is(tk[0], tn[0], "A");
		if (!is_add && !tok_is(tk[0], tn[0], "C"))
			goto bad;
		if (!tok_is(tk[1], tn[1], "B") && !tok_is(tk[1], tn[1], "S"))
			goto bad;
		if (parse_i64(tk[2], tn[2], &price) || parse_i64(tk[3], tn[3], &qty) ||
		    parse_i64(tk[4], tn[4], &id) || id < 0)
			goto bad;
		if (count == cap) {
			*n = count;
			return RSX_ESHORT;
		}
		struct rsx_book_op *op = &ops[count++];
		memset(op, 0, sizeof *op);
		uint64_t be = __builtin_bswap64((uint64_t)id);
		memcpy(op->order_id.b + 8, &be, 8);
		op->user_id = 1 + (uint32_t)((uint64_t)id % users);
		op->side = tk[1][0] == 'S';
		if (!is_add) {
			op->kind = RSX_BOOK_OP_CANCEL;
			continue;
		}
		op->kind = RSX_BOOK_OP_NEW;
		op->stp = stp;
		op->price.raw = price;
		op->qty.raw = qty;
		if (tok_is(tk[5], tn[5], "GTC"))
			op->tif = RSX_TIF_GTC;
		else if (tok_is(tk[5], tn[5], "IOC"))
			op->tif = RSX_TIF_IOC;
		else if (tok_is(tk[5], tn[5], "FOK"))
			op->tif = RSX_TIF_FOK;
		else if (tok_is(tk[5], tn[5], "POST"))
			op->flags = RSX_ORDER_POST_ONLY;
		else
			goto bad;
		continue;
bad:
		*n = line;
		return RSX_EINVALID;
	}
	*n = count;
	return 0;
}
