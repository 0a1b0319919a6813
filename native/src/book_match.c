/*
 * book_match.c - the request path: validation, matching, resting, cancels,
 * amends, and the events they emit (specs/matching.md). No allocation, no
 * system call, no float anywhere in this file.
 */
#include <errno.h>
#include <stddef.h>

#include "book_int.h"

/* ---- events: v1 records written with aligned 64-bit stores ---- */

#define HDR(type, size) (1ull | (uint64_t)(type) << 16 | (uint64_t)(size) << 32)
#define HDR_FILL HDR(RSX_REC_FILL, sizeof(struct rsx_fill))
#define HDR_DONE HDR(RSX_REC_ORDER_DONE, sizeof(struct rsx_order_done))
#define HDR_CANC HDR(RSX_REC_ORDER_CANCELLED, sizeof(struct rsx_order_cancelled))
#define HDR_INS HDR(RSX_REC_ORDER_INSERTED, sizeof(struct rsx_order_inserted))
#define HDR_AMD HDR(RSX_REC_ORDER_AMENDED, sizeof(struct rsx_order_amended))
#define HDR_FAIL HDR(RSX_REC_ORDER_FAILED, sizeof(struct rsx_order_failed))
#define HDR_BBO HDR(RSX_REC_BBO, sizeof(struct rsx_bbo))

/* The word layouts below are the records.h structs; these pin them. */
#define AT(st, f, w) _Static_assert(offsetof(struct st, f) == 8 * (w), #st "." #f)
AT(rsx_fill, taker_user_id, 3); AT(rsx_fill, taker_order_id, 4); AT(rsx_fill, maker_order_id, 6);
AT(rsx_fill, price, 8); AT(rsx_fill, qty, 9); AT(rsx_fill, taker_side, 10);
AT(rsx_fill, taker_remaining, 11); AT(rsx_fill, maker_remaining, 12); AT(rsx_fill, _pad2, 13);
_Static_assert(offsetof(struct rsx_fill, maker_user_id) == 28, "fill maker user");
_Static_assert(offsetof(struct rsx_fill, taker_flags) == 81 && offsetof(struct rsx_fill, maker_flags) == 82,
	       "fill flags");
AT(rsx_order_done, user_id, 3); AT(rsx_order_done, order_id, 4); AT(rsx_order_done, filled_qty, 6);
AT(rsx_order_done, remaining_qty, 7);
_Static_assert(offsetof(struct rsx_order_done, status) == 28 && offsetof(struct rsx_order_done, side) == 29 &&
	       offsetof(struct rsx_order_done, reason) == 30, "done word 3");
AT(rsx_order_cancelled, user_id, 3); AT(rsx_order_cancelled, order_id, 4);
AT(rsx_order_cancelled, price, 6); AT(rsx_order_cancelled, remaining_qty, 7);
_Static_assert(offsetof(struct rsx_order_cancelled, side) == 28 &&
	       offsetof(struct rsx_order_cancelled, reason) == 30, "cancelled word 3");
AT(rsx_order_inserted, user_id, 3); AT(rsx_order_inserted, order_id, 4);
AT(rsx_order_inserted, price, 6); AT(rsx_order_inserted, qty, 7);
_Static_assert(offsetof(struct rsx_order_inserted, side) == 28 && offsetof(struct rsx_order_inserted, tif) == 29 &&
	       offsetof(struct rsx_order_inserted, flags) == 30, "inserted word 3");
AT(rsx_order_amended, user_id, 3); AT(rsx_order_amended, order_id, 4);
AT(rsx_order_amended, price, 6); AT(rsx_order_amended, remaining_qty, 7);
_Static_assert(offsetof(struct rsx_order_amended, side) == 28, "amended word 3");
AT(rsx_order_failed, user_id, 3); AT(rsx_order_failed, order_id, 4); AT(rsx_order_failed, detail, 6);
_Static_assert(offsetof(struct rsx_order_failed, reason) == 28 &&
	       offsetof(struct rsx_order_failed, request_type) == 30, "failed word 3");
AT(rsx_bbo, bid_px, 3); AT(rsx_bbo, bid_qty, 4); AT(rsx_bbo, ask_px, 5); AT(rsx_bbo, ask_qty, 6);
AT(rsx_bbo, bid_count, 7);
_Static_assert(offsetof(struct rsx_bbo, ask_count) == 60, "bbo counts");
_Static_assert(offsetof(struct rsx_prefix, stream_id) == 16, "prefix");

/* The bytes side, tif, flags, stp as one word: they lie together in rsx_order and rsx_book_op. */
static inline uint32_t attrs_at(const uint8_t *side)
{
	uint32_t a;
	memcpy(&a, side, 4);
	return a;
}

/* Start a record: header words 0-1, payload words seq, ts_ns, stream|symbol. */
static inline uint64_t *ev_begin(const struct rsx_book *b, struct rsx_book_sink *s, uint64_t hdr)
{
	uint64_t *w = (uint64_t *)(void *)(s->buf + s->len);
	s->len += 16 + (uint32_t)(hdr >> 32);
	s->count++;
	w[0] = hdr;
	w[1] = 0;
	w[2] = 0;
	w[3] = 0;
	w[4] = b->prefix2;
	return w + 2;		/* the payload, as 64-bit words */
}

static inline void put_oid(uint64_t *p, const rsx_oid_t *oid)
{
	memcpy(p, oid->b, 16);
}

static inline void ev_done(const struct rsx_book *b, struct rsx_book_sink *s, uint32_t user_id,
			   unsigned status, unsigned side, unsigned reason, const rsx_oid_t *oid,
			   int64_t filled, int64_t rem)
{
	uint64_t *p = ev_begin(b, s, HDR_DONE);
	p[3] = user_id | (uint64_t)status << 32 | (uint64_t)side << 40 | (uint64_t)reason << 48;
	put_oid(p + 4, oid);
	p[6] = (uint64_t)filled;
	p[7] = (uint64_t)rem;
}

static inline void ev_cancelled(const struct rsx_book *b, struct rsx_book_sink *s, uint32_t user_id,
				unsigned side, unsigned reason, const rsx_oid_t *oid, int64_t price,
				int64_t rem)
{
	uint64_t *p = ev_begin(b, s, HDR_CANC);
	p[3] = user_id | (uint64_t)side << 32 | (uint64_t)reason << 48;
	put_oid(p + 4, oid);
	p[6] = (uint64_t)price;
	p[7] = (uint64_t)rem;
}

/* attrs: side | tif << 8 | flags << 16 (| stp << 24, not reported) as in rsx_order */
static inline void ev_inserted(const struct rsx_book *b, struct rsx_book_sink *s, uint32_t user_id,
			       uint32_t attrs, const rsx_oid_t *oid, int64_t price, int64_t qty)
{
	uint64_t *p = ev_begin(b, s, HDR_INS);
	p[3] = user_id | (uint64_t)(attrs & 0xFFFFFFu) << 32;
	put_oid(p + 4, oid);
	p[6] = (uint64_t)price;
	p[7] = (uint64_t)qty;
}

static inline void ev_amended(const struct rsx_book *b, struct rsx_book_sink *s, uint32_t user_id,
			      unsigned side, const rsx_oid_t *oid, int64_t price, int64_t rem)
{
	uint64_t *p = ev_begin(b, s, HDR_AMD);
	p[3] = user_id | (uint64_t)side << 32;
	put_oid(p + 4, oid);
	p[6] = (uint64_t)price;
	p[7] = (uint64_t)rem;
}

static void ev_failed(const struct rsx_book *b, struct rsx_book_sink *s, uint32_t user_id,
		      unsigned reason, unsigned rtype, const rsx_oid_t *oid, int64_t detail)
{
	uint64_t *p = ev_begin(b, s, HDR_FAIL);
	p[3] = user_id | (uint64_t)reason << 32 | (uint64_t)rtype << 48;
	put_oid(p + 4, oid);
	p[6] = (uint64_t)detail;
	p[7] = 0;
}

static inline void ev_fill(const struct rsx_book *b, struct rsx_book_sink *s, const struct bk_taker *t,
			   const struct bk_ord *m, uint32_t maker_user, int64_t price, int64_t qty,
			   int64_t trem)
{
	uint64_t *p = ev_begin(b, s, HDR_FILL);
	p[3] = t->user_id | (uint64_t)maker_user << 32;
	put_oid(p + 4, &t->oid);
	put_oid(p + 6, &m->oid);
	p[8] = (uint64_t)price;
	p[9] = (uint64_t)qty;
	p[10] = t->fill_sf | (uint64_t)m->flags << 16;
	p[11] = (uint64_t)trem;
	p[12] = (uint64_t)m->rem;
	p[13] = 0;
	p[14] = 0;
	p[15] = 0;
}

/* The BBO payload words 3-7 (bid px, bid qty, ask px, ask qty, counts) of the top now; 0 for an empty side. */
static void top_words(const struct rsx_book *b, uint64_t *v)
{
	uint32_t bl = b->side[RSX_SIDE_BUY].hi, al = b->side[RSX_SIDE_SELL].lo;
	v[0] = v[1] = v[2] = v[3] = v[4] = 0;
	if (bl != NIL) {
		v[0] = (uint64_t)b->lvl[bl].price;
		v[1] = (uint64_t)b->lvl[bl].qty;
		v[4] = b->lvl[bl].count;
	}
	if (al != NIL) {
		v[2] = (uint64_t)b->lvl[al].price;
		v[3] = (uint64_t)b->lvl[al].qty;
		v[4] |= (uint64_t)b->lvl[al].count << 32;
	}
}

/*
 * The rare ends of top_changed, out of line: a saturated level total (a BBO
 * whose reported values did not change is taken back: specs/matching.md §4),
 * a one-sided or empty book, a mid that left the middle half of the target
 * window, a slide in progress (specs/book.md §5).
 */
static __attribute__((noinline)) void top_changed_slow(struct rsx_book *b, struct rsx_book_sink *s,
						       const uint64_t *p)
{
	if (p[4] == (uint64_t)INT64_MAX || p[6] == (uint64_t)INT64_MAX) {
		if (b->bbo_sat && memcmp(p + 3, b->bbo_last, sizeof b->bbo_last) == 0) {
			s->len -= 16 + (uint32_t)sizeof(struct rsx_bbo);	/* the top did not change after all */
			s->count--;
			return;
		}
		memcpy(b->bbo_last, p + 3, sizeof b->bbo_last);
		b->bbo_sat = 1;
	} else {
		b->bbo_sat = 0;
	}
	int64_t bp = (int64_t)p[3], ap = (int64_t)p[5], mid;
	if (bp == 0 && ap == 0)
		return;
	mid = bp == 0 ? ap : ap == 0 ? bp : (int64_t)(((uint64_t)bp + (uint64_t)ap) >> 1);
	if ((uint64_t)(bk_tick(b, mid) - b->ta) - b->rq >= b->rh)
		bk_retarget(b, mid);
	if (b->sliding)
		bk_slide(b, BK_SLIDE_BUDGET);
}

/*
 * BBO after a top change, then the window check (specs/book.md §5): the only
 * place the mid is looked at, since it can only move when the top does.
 * Inline in the common request paths; top_changed() for the others.
 */
static inline __attribute__((always_inline)) void top_changed_inline(struct rsx_book *b, struct rsx_book_sink *s)
{
	uint32_t bl = b->side[RSX_SIDE_BUY].hi, al = b->side[RSX_SIDE_SELL].lo;
	uint64_t *p = ev_begin(b, s, HDR_BBO);

	if (UNLIKELY((bl == NIL) | (al == NIL))) {
		top_words(b, p + 3);
		top_changed_slow(b, s, p);
		return;
	}
	const struct bk_lvl *B = &b->lvl[bl], *A = &b->lvl[al];
	int64_t bp = B->price, ap = A->price;
	p[3] = (uint64_t)bp;
	p[4] = (uint64_t)B->qty;
	p[5] = (uint64_t)ap;
	p[6] = (uint64_t)A->qty;
	p[7] = B->count | (uint64_t)A->count << 32;
	int64_t mid = (int64_t)(((uint64_t)bp + (uint64_t)ap) >> 1);	/* both > 0: no overflow */
	/* a saturated total (qty + 1 turns negative only from INT64_MAX), a saturated BBO before,
	 * a slide in progress, or a mid outside the middle half of the target window */
	if (UNLIKELY(((int64_t)(((uint64_t)B->qty + 1) | ((uint64_t)A->qty + 1)) < 0) | b->top_slow |
		     ((uint64_t)mid - (uint64_t)b->mid_lo >= b->mid_span)))
		top_changed_slow(b, s, p);
}

static __attribute__((noinline)) void top_changed(struct rsx_book *b, struct rsx_book_sink *s)
{
	top_changed_inline(b, s);
}

/*
 * After a restore: the last BBO the original book emitted showed the top as
 * it is now, so a saturated top is remembered as top_changed would have.
 */
void bk_restore_bbo(struct rsx_book *b)
{
	uint64_t v[5];
	top_words(b, v);
	b->bbo_sat = v[1] == INT64_MAX || v[3] == INT64_MAX;
	memcpy(b->bbo_last, v, sizeof v);
}

/* ---- pools ---- */

static inline uint32_t ord_alloc(struct rsx_book *b)
{
	uint32_t i = b->ofree;
	if (i != NIL)
		b->ofree = b->ord[i].next;
	else
		i = b->obump++;
	b->norders++;
	return i;
}

static inline void ord_free(struct rsx_book *b, uint32_t i)
{
	b->ord[i].lvl = NIL;
	b->ord[i].next = b->ofree;
	b->ofree = i;
	b->norders--;
}

/* ---- users ---- */

uint32_t bk_user_get(struct rsx_book *b, uint32_t user_id)
{
	uint32_t u = user_find(b, user_id);
	if (u != NIL)
		return u;
	if (b->ufree != NIL) {
		u = b->ufree;
		b->ufree = b->usr[u].free_next;
	} else if (b->ubump < b->ucap) {
		u = b->ubump++;
	} else {
		return NIL;
	}
	struct bk_usr *U = &b->usr[u];
	uint64_t mask = utab_mask(b), h = uhash(b, user_id);
	while ((uint32_t)b->utab[h] != NIL)
		h = (h + 1) & mask;
	b->utab[h] = (uint64_t)user_id << 32 | u;
	if (user_id < b->udir_n)
		b->udir[user_id] = u;
	U->user_id = user_id;
	U->free_next = NIL;
	U->net = 0;
	U->norders = 0;
	U->head = U->tail = NIL;
	U->tag = 0;
	U->dry = 0;
	b->nusers++;
	return u;
}

/* Release a user slot once the user has no resting order and no position. */
static void user_release(struct rsx_book *b, uint32_t u)
{
	struct bk_usr *U = &b->usr[u];
	uint64_t mask = utab_mask(b), i = uhash(b, U->user_id);
	while ((uint32_t)b->utab[i] != u)
		i = (i + 1) & mask;
	/* backward-shift deletion keeps every probe chain unbroken (no tombstones) */
	for (uint64_t j = (i + 1) & mask;; j = (j + 1) & mask) {
		uint64_t e = b->utab[j];
		if ((uint32_t)e == NIL)
			break;
		uint64_t home = uhash(b, (uint32_t)(e >> 32));
		/* e may fill the hole at i unless its home lies cyclically in (i, j] */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			b->utab[i] = e;
			i = j;
		}
	}
	b->utab[i] = UTAB_EMPTY;
	if (U->user_id < b->udir_n)
		b->udir[U->user_id] = NIL;
	U->free_next = b->ufree;
	b->ufree = u;
	b->nusers--;
}

static inline void user_release_if_idle(struct rsx_book *b, uint32_t u)
{
	if (UNLIKELY(b->usr[u].norders == 0 && b->usr[u].net == 0))
		user_release(b, u);
}

static inline void user_append(struct rsx_book *b, uint32_t u, uint32_t oi)
{
	struct bk_usr *U = &b->usr[u];
	struct bk_ord *O = &b->ord[oi];
	O->uix = u;
	O->unext = NIL;
	O->uprev = U->tail;
	if (U->tail != NIL)
		b->ord[U->tail].unext = oi;
	else
		U->head = oi;
	U->tail = oi;
	U->norders++;
}

void bk_user_append(struct rsx_book *b, uint32_t u, uint32_t oi)
{
	user_append(b, u, oi);
}

static inline void user_unlink(struct rsx_book *b, uint32_t oi)
{
	struct bk_ord *O = &b->ord[oi];
	struct bk_usr *U = &b->usr[O->uix];
	if (O->uprev != NIL)
		b->ord[O->uprev].unext = O->unext;
	else
		U->head = O->unext;
	if (O->unext != NIL)
		b->ord[O->unext].uprev = O->uprev;
	else
		U->tail = O->uprev;
	U->norders--;
}

/* ---- levels (the index is in book_map.c) ---- */

/*
 * The level of `price` on `side`, created if needed (a free node is guaranteed
 * by the caller). pow2: the caller knows the tick is a power of two.
 */
static inline __attribute__((always_inline)) uint32_t level_get_t(struct rsx_book *b, unsigned side, int64_t price,
								const int pow2)
{
	struct bk_side *sd = &b->side[side];
	int64_t k = pow2 ? price >> b->tick_shift : bk_tick(b, price);
	if (LIKELY(bk_in_window(sd, k))) {
		uint32_t i = (uint32_t)k & b->rmask;
		uint32_t x = sd->ring[i];
		if (LIKELY(x != NIL) && LIKELY(b->lvl[x].price == price))
			return x;
		return bk_level_new_in_window(b, sd, i, x, price);
	}
	return bk_far_get(b, sd, price);
}

static inline uint32_t level_get(struct rsx_book *b, unsigned side, int64_t price)
{
	return level_get_t(b, side, price, 0);
}

/* An emptied level leaves its side's list and index, and goes back to the pool. */
static inline void level_remove(struct rsx_book *b, struct bk_side *sd, uint32_t l)
{
	struct bk_lvl *L = &b->lvl[l];
	uint32_t p = L->prev, n = L->next;
	if (p != NIL)
		b->lvl[p].next = n;
	else
		sd->lo = n;
	if (n != NIL)
		b->lvl[n].prev = p;
	else
		sd->hi = p;
	int64_t k = bk_tick(b, L->price);
	if (LIKELY(bk_in_window(sd, k))) {
		uint32_t i = (uint32_t)k & b->rmask;
		if (sd->ring[i] == l) {
			if (UNLIKELY(n != NIL && bk_tick(b, b->lvl[n].price) == k)) {
				sd->ring[i] = n;	/* off-grid levels shared the tick */
			} else {
				sd->ring[i] = NIL;
				bm_clear(sd, i);
			}
		}
	} else {
		bk_far_remove(b, sd, l, p, n);
	}
	sd->nlevels--;
	b->nlevels--;
	L->next = b->lfree;
	b->lfree = l;
}

static inline uint32_t side_best(const struct rsx_book *b, unsigned side)
{
	return side == RSX_SIDE_BUY ? b->side[RSX_SIDE_BUY].hi : b->side[RSX_SIDE_SELL].lo;
}

/* ---- orders ---- */

/* Append order oi (fields set) at the tail of level l. */
static inline void fifo_append(struct rsx_book *b, uint32_t l, uint32_t oi, int64_t rem)
{
	struct bk_lvl *L = &b->lvl[l];
	struct bk_ord *O = &b->ord[oi];
	O->lvl = l;
	O->next = NIL;
	O->prev = L->tail;
	if (L->tail != NIL)
		b->ord[L->tail].next = oi;
	else
		L->head = oi;
	L->tail = oi;
	L->count++;
	if (UNLIKELY(O->flags & RSX_ORDER_REDUCE_ONLY))
		L->nro++;
	level_add(L, rem);
}

/* Take order oi out of its level's FIFO (the level goes when it empties). */
static inline void fifo_unlink(struct rsx_book *b, uint32_t oi)
{
	struct bk_ord *O = &b->ord[oi];
	struct bk_lvl *L = &b->lvl[O->lvl];
	if (O->prev != NIL)
		b->ord[O->prev].next = O->next;
	else
		L->head = O->next;
	if (O->next != NIL)
		b->ord[O->next].prev = O->prev;
	else
		L->tail = O->prev;
	if (UNLIKELY(O->flags & RSX_ORDER_REDUCE_ONLY))
		L->nro--;
	if (--L->count == 0)
		level_remove(b, &b->side[O->side], O->lvl);
	else
		level_sub(b, L, O->rem);
}

static inline void index_remove(struct rsx_book *b, uint32_t oi)
{
	struct bk_ord *O = &b->ord[oi];
	uint32_t *pp = &b->obkt[ohash(b, b->usr[O->uix].user_id, &O->oid)];
	while (*pp != oi)
		pp = &b->ord[*pp].hnext;
	*pp = O->hnext;
}

/* Remove a resting order from the book entirely and free its slot. */
static inline __attribute__((always_inline)) void order_destroy(struct rsx_book *b, uint32_t oi)
{
	fifo_unlink(b, oi);
	index_remove(b, oi);
	user_unlink(b, oi);
	ord_free(b, oi);
}

/* The index link that holds (user_id, oid): *link is the order, or NIL if absent. */
static inline uint32_t *order_link(struct rsx_book *b, uint32_t user_id, const rsx_oid_t *oid)
{
	uint32_t *pp = &b->obkt[ohash(b, user_id, oid)];
	while (*pp != NIL && !(oid_eq(&b->ord[*pp].oid, oid) && b->usr[b->ord[*pp].uix].user_id == user_id))
		pp = &b->ord[*pp].hnext;
	return pp;
}

/* A maker leaves the book during a sweep; its user may go idle (not the taker's). */
int64_t bk_level_recount(const struct rsx_book *b, const struct bk_lvl *L)
{
	int64_t sum = 0;
	for (uint32_t o = L->head; o != NIL; o = b->ord[o].next)
		if (__builtin_add_overflow(sum, b->ord[o].rem, &sum))
			return INT64_MAX;
	return sum;
}

static inline __attribute__((always_inline)) void maker_remove(struct rsx_book *b, uint32_t mi, uint32_t tuix)
{
	uint32_t u = b->ord[mi].uix;
	order_destroy(b, mi);
	if (u != tuix)
		user_release_if_idle(b, u);
}

/* ---- FOK feasibility from the level totals (specs/matching.md §2) ---- */

static inline void dry_sync(struct bk_usr *U, uint32_t epoch)
{
	if (U->tag != epoch) {
		U->tag = epoch;
		U->dry = 0;
	}
}

/* A level whose total the check can take whole: no reduce-only order, total not saturated. */
static inline int lvl_plain(const struct bk_lvl *L)
{
	return L->nro == 0 && L->qty != INT64_MAX;
}

/*
 * What user u's orders on the maker side fill, in plain levels at prices the
 * sweep reaches before px: the part of u's fills ahead that the check added
 * as level totals instead of walking. O(u's resting orders).
 */
static int64_t plain_ahead(const struct rsx_book *b, uint32_t u, unsigned mside, int buy, int64_t px)
{
	int64_t sum = 0;
	for (uint32_t o = b->usr[u].head; o != NIL; o = b->ord[o].unext) {
		const struct bk_ord *O = &b->ord[o];
		if (O->side != mside)
			continue;
		const struct bk_lvl *L = &b->lvl[O->lvl];
		if (lvl_plain(L) && (buy ? L->price < px : L->price > px))
			sum = sat_add(sum, O->rem);
	}
	return sum;
}

/*
 * From level *lp on, in the sweep's order: add whole levels without a
 * reduce-only order to *got until the sum reaches need (1), or stop (0) at the
 * limit or the side's end (*lp = NIL) or at a level that must be walked (*lp =
 * that level: reduce-only orders, or the taker's stop level when stop). Only
 * without own quantity to take off (got < need <= INT64_MAX, so the u64 sum
 * cannot wrap), where a saturated total may be added whole: it reaches need.
 */
static inline __attribute__((always_inline)) int plain_run(const struct rsx_book *b, uint32_t *lp, int64_t limit,
							   uint32_t stop_lvl, uint64_t *got, uint64_t need,
							   const int buy, const int stop)
{
	uint32_t l = *lp;
	uint64_t g = *got;
	while (l != NIL) {
		const struct bk_lvl *L = &b->lvl[l];
		if (buy ? L->price > limit : L->price < limit) {
			l = NIL;
			break;
		}
		if (UNLIKELY(L->nro != 0) || (stop && UNLIKELY(l == stop_lvl)))
			break;
		g += (uint64_t)L->qty;
		if (g >= need) {
			*got = g;
			return 1;
		}
		l = buy ? L->next : L->prev;
	}
	*got = g;
	*lp = l;
	return 0;
}

/*
 * Would a sweep fill `need` (specs/matching.md §2)? The sweep fills every
 * maker it reaches except where self-trade prevention stops or skips it and
 * where a reduce-only maker is limited by its user's position, so before the
 * quantity is reached the check is the sum of what each maker would give, in
 * priority order. A plain level gives its total: O(1). A level holding a
 * reduce-only order is walked order by order, with each such maker's room
 * taken from its user's position less that user's fills ahead of it; the
 * taker's own orders are found through its order list. Cost: O(crossed
 * levels) for plain makers (stopping when `need` is reached), plus the
 * orders of walked levels and the order lists of the users involved.
 */
static int fok_fillable(struct rsx_book *b, unsigned side, uint32_t tuix, unsigned stp, int64_t limit,
			int64_t need)
{
	const int buy = side == RSX_SIDE_BUY;
	const unsigned mside = side ^ 1;
	const struct bk_side *opp = &b->side[mside];
	uint32_t stop_lvl = NIL;	/* cancel-taker / cancel-both: the level of the taker's first own maker */
	__int128 got = 0, own_plain = 0;	/* cancel-maker: own quantity inside plain level totals */
	uint32_t epoch = 0;

	if (tuix != NIL && stp != RSX_STP_NONE && b->usr[tuix].norders) {
		for (uint32_t o = b->usr[tuix].head; o != NIL; o = b->ord[o].unext) {
			const struct bk_ord *O = &b->ord[o];
			if (O->side != mside)
				continue;
			const struct bk_lvl *L = &b->lvl[O->lvl];
			if (buy ? L->price > limit : L->price < limit)
				continue;
			if (stp == RSX_STP_CANCEL_MAKER) {
				if (lvl_plain(L))
					own_plain += O->rem;
			} else if (stop_lvl == NIL ||
				   (buy ? L->price < b->lvl[stop_lvl].price : L->price > b->lvl[stop_lvl].price)) {
				stop_lvl = O->lvl;
			}
		}
	}
	uint32_t l = buy ? opp->lo : opp->hi;
	while (l != NIL) {
		if (own_plain == 0) {	/* whole levels in a tight loop (got < need <= INT64_MAX: a u64 sum) */
			uint64_t g = (uint64_t)got;
			int r;
			if (stop_lvl == NIL)
				r = buy ? plain_run(b, &l, limit, NIL, &g, (uint64_t)need, 1, 0)
					: plain_run(b, &l, limit, NIL, &g, (uint64_t)need, 0, 0);
			else
				r = buy ? plain_run(b, &l, limit, stop_lvl, &g, (uint64_t)need, 1, 1)
					: plain_run(b, &l, limit, stop_lvl, &g, (uint64_t)need, 0, 1);
			got = g;
			if (r)
				return 1;
			if (l == NIL)
				break;
		}
		const struct bk_lvl *L = &b->lvl[l];
		if (buy ? L->price > limit : L->price < limit)
			break;
		if (LIKELY(l != stop_lvl && lvl_plain(L))) {
			got += L->qty;
		} else {
			if (epoch == 0) {
				epoch = ++b->dry_epoch;
				if (UNLIKELY(epoch == 0)) {	/* wrapped: forget every stale tag */
					for (uint32_t u = 0; u < b->ubump; u++)
						b->usr[u].tag = 0;
					epoch = ++b->dry_epoch;
				}
			}
			for (uint32_t o = L->head; o != NIL; o = b->ord[o].next) {
				const struct bk_ord *M = &b->ord[o];
				struct bk_usr *MU = &b->usr[M->uix];
				if (M->uix == tuix && stp != RSX_STP_NONE) {
					if (stp != RSX_STP_CANCEL_MAKER)
						return got >= need;	/* the sweep stops here */
					continue;
				}
				int64_t q = M->rem;
				if (M->flags & RSX_ORDER_REDUCE_ONLY) {
					dry_sync(MU, epoch);
					int64_t ahead = sat_add(plain_ahead(b, M->uix, mside, buy, L->price), MU->dry);
					int64_t moved;	/* the maker user's position change ahead of M */
					if (M->uix != tuix)
						moved = buy ? -ahead : ahead;
					else	/* the taker's own maker (STP off): its fills against others move it */
						moved = (int64_t)(buy ? got - ahead : ahead - got);
					int64_t allow = reducing(sat_add(MU->net, moved), M->side);
					if (q > allow)
						q = allow;
				}
				got += q;
				if (got - own_plain >= need)
					return 1;
				if (q) {
					dry_sync(MU, epoch);
					MU->dry = sat_add(MU->dry, q);
				}
			}
		}
		if (got - own_plain >= need)
			return 1;
		l = buy ? L->next : L->prev;
	}
	return 0;
}

static inline uint64_t id64(const uint8_t *oid)
{
	uint64_t v;
	memcpy(&v, oid + 8, 8);
	return __builtin_bswap64(v);
}

/* rsx_book_replay's copy of one fill: {taker id, maker id, price, qty}, ids as their low 64 bits. */
static inline __attribute__((always_inline)) void tap_fill(struct rsx_book *b, const struct bk_ord *m, int64_t price,
					       int64_t qty)
{
	if (b->tap_n < b->tap_cap) {
		struct rsx_book_fill_row *f = &b->tap[b->tap_n];
		f->taker = id64(b->tk.oid.b);
		f->maker = id64(m->oid.b);
		f->price = price;
		f->qty = qty;
	}
	b->tap_n++;
}

/* ---- the sweep ---- */

#define STEP_RESERVE 384	/* FILL 144 + maker completion 80 + taker outcome 80 + BBO 80 */
#define CANCEL_RESERVE 160	/* ORDER_CANCELLED 80 + BBO 80 */

/*
 * Match b->tk against the opposite side until it is filled, stops crossing,
 * is stopped by STP, or the sink runs short (RSX_BOOK_MORE; state kept in
 * b->tk). Returns 0 or RSX_BOOK_MORE.
 */
static inline __attribute__((always_inline)) int sweep_side(struct rsx_book *b, struct rsx_book_sink *s,
							    const int buy)
{
	struct bk_taker *t = &b->tk;
	struct bk_side *opp = &b->side[buy ? RSX_SIDE_SELL : RSX_SIDE_BUY];
	const uint32_t tuix = t->uix;
	const int64_t limit = t->limit;
	const unsigned stp = t->stp;
	struct bk_usr *TU = &b->usr[tuix];
	int64_t rem = t->rem;
	int rc = 0;

	while (rem > 0) {
		uint32_t l = buy ? opp->lo : opp->hi;
		if (l == NIL)
			break;
		struct bk_lvl *L = &b->lvl[l];
		int64_t px = L->price;
		if (buy ? px > limit : px < limit)
			break;
		if (UNLIKELY(s->cap - s->len < STEP_RESERVE)) {
			rc = RSX_BOOK_MORE;
			break;
		}
		uint32_t mi = L->head;
		struct bk_ord *M = &b->ord[mi];
		struct bk_usr *MU = &b->usr[M->uix];
		if (UNLIKELY(M->uix == tuix) && stp != RSX_STP_NONE) {
			if (stp == RSX_STP_CANCEL_TAKER) {
				t->stopped = 1;	/* nothing changed: no BBO for this */
				break;
			}
			t->dirty = 1;
			ev_cancelled(b, s, MU->user_id, M->side, RSX_REASON_SELF_TRADE, &M->oid, px, M->rem);
			maker_remove(b, mi, tuix);
			if (stp == RSX_STP_CANCEL_BOTH) {
				t->stopped = 1;
				break;
			}
			continue;
		}
		int64_t q = rem < M->rem ? rem : M->rem;
		t->dirty = 1;	/* a fill or a maker removal at the best level */
		if (UNLIKELY(M->flags & RSX_ORDER_REDUCE_ONLY)) {
			int64_t allow = reducing(MU->net, M->side);
			if (allow == 0) {
				ev_cancelled(b, s, MU->user_id, M->side, RSX_REASON_REDUCE_ONLY_NO_POSITION,
					     &M->oid, px, M->rem);
				maker_remove(b, mi, tuix);
				continue;
			}
			if (q > allow)
				q = allow;
		}
		rem -= q;
		M->rem -= q;
		M->filled = sat_add(M->filled, q);
		level_sub(b, L, q);
		if (LIKELY(M->uix != tuix)) {
			TU->net = sat_add(TU->net, buy ? q : -q);
			MU->net = sat_add(MU->net, buy ? -q : q);
		}
		t->filled = sat_add(t->filled, q);
		ev_fill(b, s, t, M, MU->user_id, px, q, rem);
		b->fills++;
		if (UNLIKELY(b->tap != NULL))
			tap_fill(b, M, px, q);
		if (M->rem == 0) {
			ev_done(b, s, MU->user_id, RSX_STATUS_FILLED, M->side, RSX_REASON_NONE, &M->oid,
				M->filled, 0);
			maker_remove(b, mi, tuix);
		} else if (UNLIKELY(M->flags & RSX_ORDER_REDUCE_ONLY) && reducing(MU->net, M->side) == 0) {
			ev_cancelled(b, s, MU->user_id, M->side, RSX_REASON_REDUCE_ONLY_NO_POSITION, &M->oid,
				     px, M->rem);
			maker_remove(b, mi, tuix);
		}
	}
	t->rem = rem;
	return rc;
}

static int sweep(struct rsx_book *b, struct rsx_book_sink *s)
{
	if (b->tk.side == RSX_SIDE_BUY)
		return sweep_side(b, s, 1);
	return sweep_side(b, s, 0);
}

/*
 * Rest a new order (GTC / post-only residual): slot, level, index, user list, event.
 * attrs = side | tif << 8 | flags << 16 | stp << 24, the slot's last four bytes.
 */
static inline __attribute__((always_inline)) int rest_new_t(struct rsx_book *b, struct rsx_book_sink *s, uint32_t uix,
							    uint32_t user_id, const rsx_oid_t *oid, uint32_t attrs,
							    int64_t price, int64_t rem, int64_t filled, uint32_t h,
							    const int pow2)
{
	const unsigned side = attrs & 0xff;
	uint32_t oi = ord_alloc(b);
	uint32_t l = level_get_t(b, side, price, pow2);
	struct bk_ord *O = &b->ord[oi];
	O->rem = rem;
	O->filled = filled;
	O->oid = *oid;
	memcpy(&O->side, &attrs, 4);
	fifo_append(b, l, oi, rem);
	O->hnext = b->obkt[h];
	b->obkt[h] = oi;
	user_append(b, uix, oi);
	ev_inserted(b, s, user_id, attrs, oid, price, rem);
	return l == side_best(b, side);
}

static inline __attribute__((always_inline)) int rest_new(struct rsx_book *b, struct rsx_book_sink *s, uint32_t uix,
							  uint32_t user_id, const rsx_oid_t *oid, uint32_t attrs,
							  int64_t price, int64_t rem, int64_t filled, uint32_t h)
{
	return rest_new_t(b, s, uix, user_id, oid, attrs, price, rem, filled, h, 0);
}

/* The taker's outcome after its sweep (specs/matching.md §4), then BBO. */
static inline __attribute__((always_inline)) int finish_sweep_inline(struct rsx_book *b, struct rsx_book_sink *s)
{
	struct bk_taker *t = &b->tk;
	uint32_t uix = t->uix;
	int dirty = t->dirty;

	t->kind = PEND_NONE;
	if (t->rem == 0 || t->stopped || t->tif != RSX_TIF_GTC) {
		unsigned status = t->rem == 0 ? RSX_STATUS_FILLED : RSX_STATUS_CANCELLED;
		unsigned reason = t->rem == 0 ? RSX_REASON_NONE
				  : t->stopped ? RSX_REASON_SELF_TRADE : RSX_REASON_IOC_REMAINDER;
		ev_done(b, s, t->user_id, status, t->side, reason, &t->oid, t->filled, t->rem);
		if (t->amend) {	/* the amended order ends here: it is in no level */
			index_remove(b, t->slot);
			user_unlink(b, t->slot);
			ord_free(b, t->slot);
		}
	} else if (t->amend) {
		uint32_t oi = t->slot;
		uint32_t l = level_get(b, t->side, t->limit);
		b->ord[oi].rem = t->rem;
		b->ord[oi].filled = t->filled;
		fifo_append(b, l, oi, t->rem);
		ev_amended(b, s, t->user_id, t->side, &t->oid, t->limit, t->rem);
		dirty |= l == side_best(b, t->side);
	} else {
		dirty |= rest_new(b, s, uix, t->user_id, &t->oid, attrs_at(&t->side), t->limit,
				  t->rem, t->filled, ohash(b, t->user_id, &t->oid));
	}
	if (dirty)
		top_changed_inline(b, s);
	user_release_if_idle(b, uix);
	return 0;
}

static __attribute__((noinline)) int finish_sweep(struct rsx_book *b, struct rsx_book_sink *s)
{
	return finish_sweep_inline(b, s);
}

/* A taker's whole request in one call: its sweep, then (unless the sink filled) its outcome. */
static __attribute__((noinline)) int sweep_and_finish(struct rsx_book *b, struct rsx_book_sink *s)
{
	if (b->tk.side == RSX_SIDE_BUY ? sweep_side(b, s, 1) : sweep_side(b, s, 0))
		return RSX_BOOK_MORE;
	return finish_sweep_inline(b, s);
}

/* ---- new order (specs/matching.md §3) ---- */

static int first_bad_field(unsigned side, unsigned tif, unsigned flags, unsigned stp, unsigned status)
{
	if (side > RSX_SIDE_SELL)
		return RSX_REASON_BAD_SIDE;
	if (tif > RSX_TIF_FOK)
		return RSX_REASON_BAD_TIF;
	if ((flags & ~RSX_ORDER_FLAGS_ALL) || ((flags & RSX_ORDER_POST_ONLY) && tif != RSX_TIF_GTC))
		return RSX_REASON_BAD_FLAGS;
	if (stp > RSX_STP_NONE)
		return RSX_REASON_BAD_STP;
	if (status != RSX_SYMBOL_ACTIVE)
		return RSX_REASON_SYMBOL_HALTED;
	return RSX_REASON_NONE;
}

/*
 * The common case of rsx_order_check in one test: a positive price and a
 * quantity on power-of-two grids (tmask / lmask = tick - 1 / lot - 1; all ones
 * for another grid, which fails every order), min <= qty <= max, no notional
 * overflow. Anything else takes the exact check, which gives the first
 * failing reason.
 */
static inline int numbers_fast_ok(const struct rsx_book *b, int64_t price, int64_t qty)
{
	int64_t notional;
	if (UNLIKELY(price <= 0) || (!b->unit_grid && UNLIKELY((price & b->tmask) | (qty & b->lmask))) ||
	    UNLIKELY((uint64_t)qty - (uint64_t)b->cfg.min_qty.raw > b->qspan))
		return 0;
	return !__builtin_mul_overflow(price, qty, &notional);
}

/*
 * b->tk for a sweep: a new order's (slot NIL, filled 0) or a price amend's (its
 * own slot and fills so far). attrs = side | tif << 8 | flags << 16 | stp << 24.
 * The caller sets dirty.
 */
static inline void taker_start(struct rsx_book *b, uint32_t attrs, uint32_t user_id, uint32_t uix, uint32_t slot,
			       const rsx_oid_t *oid, int64_t price, int64_t qty, int64_t filled)
{
	struct bk_taker *t = &b->tk;
	t->kind = PEND_SWEEP;
	memcpy(&t->side, &attrs, 4);
	t->fill_sf = (uint16_t)(t->side | t->flags << 8);
	t->amend = slot != NIL;
	t->from_run = 0;
	t->stopped = 0;
	t->user_id = user_id;
	t->uix = uix;
	t->slot = slot;
	t->oid = *oid;
	t->limit = price;
	t->rem = qty;
	t->filled = filled;
}

/* A new order that crosses: it becomes the taker and sweeps (specs/matching.md §2). */
static inline int taker_sweep(struct rsx_book *b, struct rsx_book_sink *s, uint32_t attrs, uint32_t user_id,
			      uint32_t uix, const rsx_oid_t *oid, int64_t price, int64_t qty)
{
	taker_start(b, attrs, user_id, uix, NIL, oid, price, qty, 0);
	b->tk.dirty = 0;
	return sweep_and_finish(b, s);
}

/* A new order, every case (specs/matching.md §3); op_new below takes the common one inline. */
static __attribute__((noinline)) int op_new_full(struct rsx_book *b, struct rsx_book_sink *s, uint32_t user_id,
						 const rsx_oid_t *oid, uint32_t attrs, int64_t price, int64_t qty)
{
	const unsigned side = attrs & 0xff, tif = (attrs >> 8) & 0xff, flags = (attrs >> 16) & 0xff, stp = attrs >> 24;
	int reason;
	int64_t detail = 0;

	/* one test on the common path (side <= 1, tif <= 2, no flag, stp <= 3, symbol active);
	 * the slow path finds the first bad field */
	if (UNLIKELY((attrs & 0xFCFFFCFEu) | ((attrs + 0x100u) & 0x400u) | b->cfg.status)) {
		if ((reason = first_bad_field(side, tif, flags, stp, b->cfg.status)) != 0)
			goto fail;
	}
	if (UNLIKELY(!numbers_fast_ok(b, price, qty)) &&
	    (reason = rsx_order_check(&b->cfg, rsx_price(price), rsx_qty(qty))) != 0)
		goto fail;
	const uint32_t h = ohash(b, user_id, oid);
	uint32_t uix = user_find(b, user_id);
	if (uix != NIL) {
		for (uint32_t i = b->obkt[h]; i != NIL; i = b->ord[i].hnext)
			if (b->ord[i].uix == uix && oid_eq(&b->ord[i].oid, oid)) {
				reason = RSX_REASON_DUPLICATE_ORDER_ID;
				goto fail;
			}
	}
	if (UNLIKELY(flags & RSX_ORDER_REDUCE_ONLY)) {
		int64_t allow = uix == NIL ? 0 : reducing(b->usr[uix].net, side);
		if (allow == 0) {
			reason = RSX_REASON_REDUCE_ONLY_NO_POSITION;
			goto fail;
		}
		if (qty > allow)
			qty = allow;
	}
	const int buy = side == RSX_SIDE_BUY;
	const uint32_t best = buy ? b->side[RSX_SIDE_SELL].lo : b->side[RSX_SIDE_BUY].hi;
	const int crosses = best != NIL && (buy ? b->lvl[best].price <= price : b->lvl[best].price >= price);
	if (UNLIKELY(crosses && (flags & RSX_ORDER_POST_ONLY))) {
		reason = RSX_REASON_POST_ONLY_WOULD_CROSS;
		goto fail;
	}
	if (UNLIKELY(tif == RSX_TIF_FOK) && !(crosses && fok_fillable(b, side, uix, stp, price, qty))) {
		reason = RSX_REASON_FOK_NOT_FILLABLE;
		goto fail;
	}
	if (tif == RSX_TIF_GTC && UNLIKELY(b->norders >= b->ocap || b->nlevels >= b->lcap)) {
		reason = RSX_REASON_BOOK_FULL;
		detail = b->norders >= b->ocap ? 1 : 2;
		goto fail;
	}
	if (UNLIKELY(uix == NIL)) {
		uix = bk_user_get(b, user_id);
		if (uix == NIL) {
			reason = RSX_REASON_BOOK_FULL;
			detail = 3;
			goto fail;
		}
	}
	if (LIKELY(!crosses)) {
		/* the non-crossing guard: a passive order touches no opposite level */
		if (tif != RSX_TIF_GTC) {
			ev_done(b, s, user_id, RSX_STATUS_CANCELLED, side, RSX_REASON_IOC_REMAINDER, oid, 0, qty);
			user_release_if_idle(b, uix);
			return 0;
		}
		if (rest_new(b, s, uix, user_id, oid, attrs, price, qty, 0, h))
			top_changed(b, s);
		return 0;
	}
	return taker_sweep(b, s, attrs, user_id, uix, oid, price, qty);
fail:
	ev_failed(b, s, user_id, (unsigned)reason, RSX_REC_NEW_ORDER, oid, detail);
	return 0;
}

/*
 * The common new orders inline: GTC or IOC, no flag, valid fields and
 * numbers, a user with book state, a fresh id; a GTC that does not cross
 * rests, one that crosses (with room in the book) or an IOC that crosses
 * sweeps, exactly as op_new_full would. Anything else goes there.
 */
static inline __attribute__((always_inline)) int op_new(struct rsx_book *b, struct rsx_book_sink *s, uint32_t user_id,
							const rsx_oid_t *oid, uint32_t attrs, int64_t price, int64_t qty)
{
	if (LIKELY(((attrs & 0xFCFFFEFEu) | b->cfg.status) == 0) && LIKELY(numbers_fast_ok(b, price, qty))) {
		const unsigned side = attrs & 1, gtc = !(attrs & 0x100);
		const uint32_t best = side_best(b, side ^ 1);
		const int crosses = best != NIL && (side == RSX_SIDE_BUY ? b->lvl[best].price <= price
									  : b->lvl[best].price >= price);
		if (LIKELY(crosses | gtc) && LIKELY(!gtc || (b->norders < b->ocap && b->nlevels < b->lcap))) {
			const uint32_t uix = user_find(b, user_id);
			if (LIKELY(uix != NIL)) {
				const uint32_t h = ohash(b, user_id, oid);
				uint32_t i = b->obkt[h];
				while (i != NIL && !(b->ord[i].uix == uix && oid_eq(&b->ord[i].oid, oid)))
					i = b->ord[i].hnext;
				if (LIKELY(i == NIL)) {
					if (UNLIKELY(crosses))
						return taker_sweep(b, s, attrs, user_id, uix, oid, price, qty);
					/* numbers_fast_ok passed: the tick is a power of two */
					if (rest_new_t(b, s, uix, user_id, oid, attrs, price, qty, 0, h, 1))
						top_changed_inline(b, s);
					return 0;
				}
			}
		}
	}
	return op_new_full(b, s, user_id, oid, attrs, price, qty);
}

/* ---- cancel, cancel-all, amend ---- */

static inline __attribute__((always_inline)) int op_cancel(struct rsx_book *b, struct rsx_book_sink *s,
								 uint32_t user_id, const rsx_oid_t *oid)
{
	unsigned reason = RSX_REASON_UNKNOWN_ORDER;
	uint32_t oi, u, *link;

	if (UNLIKELY(b->cfg.status == RSX_SYMBOL_HALTED)) {
		reason = RSX_REASON_SYMBOL_HALTED;
		goto fail;
	}
	link = order_link(b, user_id, oid);
	oi = *link;
	if (UNLIKELY(oi == NIL))
		goto fail;
	struct bk_ord *O = &b->ord[oi];
	u = O->uix;
	unsigned side = O->side;
	int dirty = O->lvl == side_best(b, side);
	ev_cancelled(b, s, user_id, side, RSX_REASON_USER_CANCEL, oid, b->lvl[O->lvl].price, O->rem);
	*link = O->hnext;	/* out of the index without hashing again */
	fifo_unlink(b, oi);
	user_unlink(b, oi);
	ord_free(b, oi);
	if (dirty)
		top_changed_inline(b, s);
	user_release_if_idle(b, u);
	return 0;
fail:
	ev_failed(b, s, user_id, reason, RSX_REC_CANCEL_ORDER, oid, 0);
	return 0;
}

static int cancel_all_step(struct rsx_book *b, struct rsx_book_sink *s)
{
	struct bk_taker *t = &b->tk;
	struct bk_usr *U = &b->usr[t->uix];
	uint32_t oi;

	while ((oi = U->head) != NIL) {
		if (UNLIKELY(s->cap - s->len < CANCEL_RESERVE))
			return RSX_BOOK_MORE;
		struct bk_ord *O = &b->ord[oi];
		if (O->lvl == side_best(b, O->side))
			t->dirty = 1;
		ev_cancelled(b, s, t->user_id, O->side, RSX_REASON_CANCEL_ALL, &O->oid, b->lvl[O->lvl].price,
			     O->rem);
		order_destroy(b, oi);
	}
	t->kind = PEND_NONE;
	if (t->dirty)
		top_changed(b, s);
	user_release_if_idle(b, t->uix);
	return 0;
}

static int op_cancel_all(struct rsx_book *b, struct rsx_book_sink *s, uint32_t user_id,
			 const rsx_oid_t *request_id)
{
	if (UNLIKELY(b->cfg.status == RSX_SYMBOL_HALTED)) {
		ev_failed(b, s, user_id, RSX_REASON_SYMBOL_HALTED, RSX_REC_CANCEL_ALL, request_id, 0);
		return 0;
	}
	uint32_t u = user_find(b, user_id);
	if (u == NIL || b->usr[u].norders == 0)
		return 0;
	struct bk_taker *t = &b->tk;
	memset(t, 0, sizeof *t);
	t->kind = PEND_CANCEL_ALL;
	t->user_id = user_id;
	t->uix = u;
	t->slot = NIL;
	t->oid = *request_id;
	return cancel_all_step(b, s);
}

static int op_amend(struct rsx_book *b, struct rsx_book_sink *s, uint32_t user_id, const rsx_oid_t *oid,
		    int64_t price, int64_t qty)
{
	int reason = RSX_REASON_UNKNOWN_ORDER;
	int64_t detail = 0;
	uint32_t oi = NIL, u = NIL;

	if (UNLIKELY(b->cfg.status != RSX_SYMBOL_ACTIVE)) {
		reason = RSX_REASON_SYMBOL_HALTED;
		goto fail;
	}
	u = user_find(b, user_id);
	if (u != NIL)
		oi = order_find(b, u, oid);
	if (oi == NIL)
		goto fail;
	struct bk_ord *O = &b->ord[oi];
	struct bk_lvl *L = &b->lvl[O->lvl];
	const unsigned side = O->side;
	const int64_t cur = L->price;
	const int64_t np = price == 0 ? cur : price;
	if ((reason = rsx_order_check(&b->cfg, rsx_price(np), rsx_qty(qty))) != 0)
		goto fail;
	if (np == cur) {
		if (qty >= O->rem) {
			reason = RSX_REASON_AMEND_NOT_DOWN;
			goto fail;
		}
		int64_t cut = O->rem - qty;
		O->rem = qty;
		level_sub(b, L, cut);
		ev_amended(b, s, user_id, side, oid, cur, qty);
		if (O->lvl == side_best(b, side))
			top_changed(b, s);
		return 0;
	}
	const int buy = side == RSX_SIDE_BUY;
	const uint32_t best = buy ? b->side[RSX_SIDE_SELL].lo : b->side[RSX_SIDE_BUY].hi;
	const int crosses = best != NIL && (buy ? b->lvl[best].price <= np : b->lvl[best].price >= np);
	if (crosses && (O->flags & RSX_ORDER_POST_ONLY)) {
		reason = RSX_REASON_POST_ONLY_WOULD_CROSS;
		goto fail;
	}
	if (O->flags & RSX_ORDER_REDUCE_ONLY) {
		int64_t allow = reducing(b->usr[u].net, side);
		if (allow == 0) {
			reason = RSX_REASON_REDUCE_ONLY_NO_POSITION;
			goto fail;
		}
		if (qty > allow)
			qty = allow;
	}
	if (b->nlevels >= b->lcap && L->count > 1) {
		reason = RSX_REASON_BOOK_FULL;
		detail = 2;
		goto fail;
	}
	/* cancel + new, keeping the order id: out of its level, to the back of the user's list */
	struct bk_taker *t = &b->tk;
	t->dirty = O->lvl == side_best(b, side);
	fifo_unlink(b, oi);
	O->lvl = AMEND_LVL;
	user_unlink(b, oi);
	user_append(b, u, oi);
	taker_start(b, attrs_at(&O->side), user_id, u, oi, oid, np, qty, O->filled);
	if (crosses && sweep(b, s))
		return RSX_BOOK_MORE;
	return finish_sweep(b, s);
fail:
	ev_failed(b, s, user_id, (unsigned)reason, RSX_REC_AMEND_ORDER, oid, detail);
	return 0;
}

/* ---- public entries ---- */

static inline int sink_ok(const struct rsx_book_sink *s)
{
	return s && s->buf && ((uintptr_t)s->buf & 15) == 0 && s->len <= s->cap && (s->len & 15) == 0;
}

static int precheck(const struct rsx_book *b, const void *req, const struct rsx_book_sink *s)
{
	if (!b || !req || !sink_ok(s))
		return RSX_EINVALID;
	if (b->tk.kind != PEND_NONE)
		return -EBUSY;
	if (s->cap - s->len < RSX_BOOK_SINK_MIN)
		return RSX_ESHORT;
	return 0;
}

int rsx_book_new_order(struct rsx_book *b, const struct rsx_order *o, struct rsx_book_sink *s)
{
	int rc = precheck(b, o, s);
	if (rc)
		return rc;
	b->ops++;	/* requests processed (rsx_book_stats) */
	return op_new(b, s, o->user_id, &o->order_id, attrs_at(&o->side), o->price.raw,
		      o->qty.raw);
}

int rsx_book_cancel(struct rsx_book *b, const struct rsx_cancel *c, struct rsx_book_sink *s)
{
	int rc = precheck(b, c, s);
	if (rc)
		return rc;
	b->ops++;	/* requests processed (rsx_book_stats) */
	return op_cancel(b, s, c->user_id, &c->order_id);
}

int rsx_book_cancel_all(struct rsx_book *b, const struct rsx_cancel_all *c, struct rsx_book_sink *s)
{
	int rc = precheck(b, c, s);
	if (rc)
		return rc;
	b->ops++;	/* requests processed (rsx_book_stats) */
	return op_cancel_all(b, s, c->user_id, &c->request_id);
}

int rsx_book_amend(struct rsx_book *b, const struct rsx_amend *a, struct rsx_book_sink *s)
{
	int rc = precheck(b, a, s);
	if (rc)
		return rc;
	b->ops++;	/* requests processed (rsx_book_stats) */
	return op_amend(b, s, a->user_id, &a->order_id, a->price.raw, a->qty.raw);
}

int rsx_book_apply(struct rsx_book *b, uint16_t type, const void *payload, struct rsx_book_sink *s)
{
	switch (type) {
	case RSX_REC_NEW_ORDER:
	case RSX_REC_ORDER_ACCEPTED:
		return rsx_book_new_order(b, payload, s);
	case RSX_REC_CANCEL_ORDER:
		return rsx_book_cancel(b, payload, s);
	case RSX_REC_CANCEL_ALL:
		return rsx_book_cancel_all(b, payload, s);
	case RSX_REC_AMEND_ORDER:
		return rsx_book_amend(b, payload, s);
	}
	return RSX_ETYPE;
}

int bk_resume(struct rsx_book *b, struct rsx_book_sink *s)
{
	switch (b->tk.kind) {
	case PEND_SWEEP:
		if (sweep(b, s))
			return RSX_BOOK_MORE;
		return finish_sweep(b, s);
	case PEND_CANCEL_ALL:
		return cancel_all_step(b, s);
	}
	return RSX_EINVALID;
}

int rsx_book_resume(struct rsx_book *b, struct rsx_book_sink *s)
{
	if (!b || !sink_ok(s))
		return RSX_EINVALID;
	if (b->tk.kind == PEND_NONE)
		return RSX_EINVALID;
	if (b->tk.from_run)
		return -EBUSY;
	if (s->cap - s->len < RSX_BOOK_SINK_MIN)
		return RSX_ESHORT;
	return bk_resume(b, s);
}

/* One batch op: the same paths as the record entries. */
static inline __attribute__((always_inline)) int apply_op(struct rsx_book *b, const struct rsx_book_op *op,
							  struct rsx_book_sink *s)
{
	/* new orders and cancels are nearly all of the traffic: test them first */
	if (LIKELY(op->kind == RSX_BOOK_OP_NEW))
		return op_new(b, s, op->user_id, &op->order_id, attrs_at(&op->side),
			      op->price.raw, op->qty.raw);
	if (LIKELY(op->kind == RSX_BOOK_OP_CANCEL))
		return op_cancel(b, s, op->user_id, &op->order_id);
	switch (op->kind) {
	case RSX_BOOK_OP_CANCEL_ALL:
		return op_cancel_all(b, s, op->user_id, &op->order_id);
	case RSX_BOOK_OP_AMEND:
		return op_amend(b, s, op->user_id, &op->order_id, op->price.raw, op->qty.raw);
	}
	return RSX_EINVALID;
}

int bk_apply_op(struct rsx_book *b, const struct rsx_book_op *op, struct rsx_book_sink *s)
{
	b->ops++;
	return apply_op(b, op, s);
}

/*
 * The measured loop (bench/book_callgrind.py toggles on bk_replay_loop): apply
 * each op, draining the scratch sink and resuming a suspended sweep; every
 * fill is copied out as it is made (the sweep's tap), so no op needs its
 * events scanned afterwards. The events are written exactly as for any other
 * caller.
 */
__attribute__((noinline)) int bk_replay_loop(struct rsx_book *b, const struct rsx_book_op *ops, size_t n,
						 struct rsx_book_fill_row *fills, size_t cap, size_t *nfills)
{
	struct rsx_book_sink s = { .buf = b->scratch, .cap = b->scratch_cap };
	b->tap = fills;
	b->tap_n = 0;
	b->tap_cap = cap;
	const size_t total = n;
	for (const struct rsx_book_op *op = ops; n; n--, op++) {
		s.len = 0;
		int rc = apply_op(b, op, &s);
		while (UNLIKELY(rc == RSX_BOOK_MORE)) {
			s.len = 0;
			rc = bk_resume(b, &s);
		}
	}
	b->ops += total;	/* every op is one request */
	b->tap = NULL;
	*nfills = b->tap_n;
	return b->tap_n > cap ? RSX_ESHORT : 0;
}

/* Restore (book_snap.c): place one resting order at the tail of its level, no events. */
int bk_restore_order(struct rsx_book *b, uint32_t uix, const rsx_oid_t *oid, unsigned side, unsigned tif,
		     unsigned flags, unsigned stp, int64_t price, int64_t rem, int64_t filled, uint32_t *slot)
{
	if (b->norders >= b->ocap || (b->nlevels >= b->lcap))
		return RSX_EINVALID;
	if (order_find(b, uix, oid) != NIL)
		return RSX_EINVALID;
	uint32_t oi = ord_alloc(b);
	uint32_t l = level_get(b, side, price);
	struct bk_ord *O = &b->ord[oi];
	O->rem = rem;
	O->filled = filled;
	O->oid = *oid;
	O->side = (uint8_t)side;
	O->tif = (uint8_t)tif;
	O->flags = (uint8_t)flags;
	O->stp = (uint8_t)stp;
	O->uix = uix;
	O->unext = O->uprev = NIL;
	fifo_append(b, l, oi, rem);
	uint32_t h = ohash(b, b->usr[uix].user_id, oid);
	O->hnext = b->obkt[h];
	b->obkt[h] = oi;
	*slot = oi;
	return 0;
}
