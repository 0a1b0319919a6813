/*
 * book_int.h - the book's internal layout and the small inline helpers every
 * book*.c file shares (specs/book.md). Not installed: callers see only
 * rsx/book.h.
 */
#ifndef RSX_BOOK_INT_H
#define RSX_BOOK_INT_H

#include <stdint.h>
#include <string.h>

#include "rsx/book.h"
#include "rsx/errors.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the book writes little-endian records with 64-bit stores"
#endif

#define NIL 0xFFFFFFFFu
#define AMEND_LVL 0xFFFFFFFEu	/* bk_ord.lvl of an order being re-priced (its sweep) */
#define BM_MAXD 5	/* enough for 2^30 ring slots; R <= 2^22 needs 4 */
#define BK_SLIDE_BUDGET 16	/* window slide steps per side per operation (specs/book.md §5) */
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* One resting order: exactly one cache line (specs/book.md §2). */
struct bk_ord {
	int64_t rem;		/* open quantity */
	int64_t filled;		/* cumulative filled quantity */
	rsx_oid_t oid;
	uint32_t lvl;		/* level node; NIL when the slot is free */
	uint32_t next;		/* FIFO next; free-list link when free */
	uint32_t prev;
	uint32_t hnext;		/* order-index chain */
	uint32_t unext;		/* the user's order list */
	uint32_t uprev;
	uint32_t uix;		/* user slot */
	uint8_t side;
	uint8_t tif;
	uint8_t flags;
	uint8_t stp;
};
_Static_assert(sizeof(struct bk_ord) == 64, "order slot is one cache line");

/*
 * One exact price on one side (specs/book.md §3). A level near the mid sits
 * in its side's window ring; any other level is a node of the side's far
 * tree (left/right, NIL in the window).
 */
struct bk_lvl {
	int64_t price;
	int64_t qty;		/* sum of open quantity, saturated at INT64_MAX (see level_sub) */
	uint32_t head;		/* FIFO of orders */
	uint32_t tail;
	uint32_t next;		/* price-sorted list of the side: higher price; free-list link */
	uint32_t prev;		/* lower price */
	uint32_t count;		/* orders */
	uint32_t nro;		/* reduce-only orders among them (FOK feasibility) */
	uint32_t left;		/* far tree: lower prices */
	uint32_t right;		/* far tree: higher prices */
};
_Static_assert(sizeof(struct bk_lvl) == 48, "level node is 48 bytes");

/* A user with book state (specs/book.md §6). */
struct bk_usr {
	uint32_t user_id;
	uint32_t free_next;	/* free-list link when free */
	int64_t net;		/* position in this book, saturating */
	uint32_t norders;
	uint32_t head;		/* the user's resting orders, oldest first */
	uint32_t tail;
	uint32_t tag;		/* FOK check epoch of `dry` */
	int64_t dry;		/* FOK check: the user's fills in walked levels */
	uint64_t _pad0[3];	/* 64 bytes: a user is found with a shift */
};
_Static_assert(sizeof(struct bk_usr) == 64, "user slot is 64 bytes");

/*
 * One side's price index (specs/book.md §3-§5): the window ring mirrors the
 * ticks [wa, wb) (one slot per tick, slot = tick & rmask), the far tree holds
 * every other level, and the sorted list holds them all.
 */
struct bk_side {
	uint32_t *ring;		/* R slots: the lowest level of that tick, or NIL */
	uint64_t *bm[BM_MAXD];	/* occupancy bitmap of the ring, level 0 = one bit per slot */
	uint32_t bm_words[BM_MAXD];
	uint32_t depth;
	uint32_t lo;		/* lowest-priced level (best ask) */
	uint32_t hi;		/* highest-priced level (best bid) */
	uint32_t nlevels;
	uint32_t root;		/* far tree (a treap by price) */
	uint32_t above;		/* the lowest level above the window, or NIL */
	uint32_t nfar;		/* levels in the far tree */
	int64_t wa;		/* window: ticks [wa, wb) */
	int64_t wb;
	uint64_t wspan;		/* wb - wa */
	uint64_t _pad0;		/* 128 bytes: a side is found with a shift */
};
_Static_assert(sizeof(struct bk_side) == 128, "bk_side is 128 bytes");

/* The request in progress (a sweep or a cancel-all), kept across a suspension. */
enum { PEND_NONE = 0, PEND_SWEEP = 1, PEND_CANCEL_ALL = 2 };

struct bk_taker {
	uint8_t kind;		/* PEND_* */
	uint8_t side;		/* side, tif, flags, stp: in rsx_order's order (attrs_at) */
	uint8_t tif;
	uint8_t flags;
	uint8_t stp;
	uint8_t dirty;		/* top of book changed */
	uint8_t amend;		/* a price amend: slot is the order's own slot */
	uint8_t from_run;	/* suspended by rsx_book_run (resumed there) */
	uint8_t stopped;	/* stopped by self-trade prevention */
	uint8_t _pad0;
	uint16_t fill_sf;	/* side | flags << 8: the taker's bytes of every FILL */
	uint32_t user_id;
	uint32_t uix;
	uint32_t slot;		/* amend: the order's slot; else NIL */
	rsx_oid_t oid;
	int64_t limit;
	int64_t rem;
	int64_t filled;
};

struct rsx_book {
	/* hot: pools and indexes */
	struct bk_ord *ord;
	struct bk_lvl *lvl;
	uint32_t *obkt;
	struct bk_usr *usr;
	uint64_t *utab;		/* user index: open addressing, user_id << 32 | slot; NIL slot = empty */
	uint32_t *udir;		/* and for user ids < udir_n, directly: udir[user_id] = slot or NIL */
	uint32_t udir_n;
	uint32_t oshift;	/* 64 - log2(order buckets) */
	uint32_t ushift;	/* 64 - log2(utab entries) */
	uint64_t umask;		/* utab entries - 1 */
	uint32_t ofree, obump, ocap;
	uint32_t lfree, lbump, lcap;
	uint32_t ufree, ubump, ucap;
	uint32_t norders, nlevels, nusers;
	struct bk_side side[2];	/* RSX_SIDE_BUY, RSX_SIDE_SELL */

	/* price index (specs/book.md §3-§5) */
	int64_t tick;
	int32_t tick_shift;	/* log2(tick) if a power of two, else -1 */
	uint32_t rmask;		/* R - 1 */
	uint64_t R;		/* ring slots per side = window width in ticks, a power of two >= 2W */
	uint64_t W;		/* zone0_ticks: the window reaches at least W ticks either side of the mid */
	int64_t ta;		/* target window [ta, ta + R): centred on the mid when it was last retargeted */
	int64_t tmax;		/* highest allowed ta */
	uint64_t rq, rh;	/* R / 4, R / 2 */
	uint64_t tkey;		/* far-tree priority key (random per book) */
	int64_t mid_lo;		/* prices [mid_lo, mid_lo + mid_span) = the ticks [ta + R/4, ta + 3R/4) */
	uint64_t mid_span;	/* (clamped inward at the int64 ends) */
	union {
		struct {
			uint8_t sliding;	/* a side's window is not the target yet */
			uint8_t bbo_sat;	/* the last BBO showed a saturated quantity: bbo_last holds it */
		};
		uint16_t top_slow;	/* either: top_changed takes its slow path */
	};
	uint64_t bbo_last[5];	/* that BBO's price/qty/count words */

	/* config and event constants */
	struct rsx_symbol_config cfg;
	int64_t tmask, lmask;	/* derived from cfg for the one-test number check (book_match.c) */
	uint32_t unit_grid;	/* tick and lot are both 1: every price and quantity is on the grid */
	uint64_t qspan;
	uint64_t prefix2;	/* stream_id | symbol_id << 32: payload word 2 */

	struct bk_taker tk;

	uint64_t ops, fills, recentres;
	struct rsx_book_fill_row *tap;	/* rsx_book_replay: every fill is also copied here */
	size_t tap_n, tap_cap;
	uint32_t dry_epoch;

	/* scratch sink for run / replay */
	uint8_t *scratch;
	uint32_t scratch_cap;

	/* memory */
	void *map;
	size_t map_len;
	uint32_t backing;
	int32_t hugetlb_errno;
	char warning[160];
	struct rsx_book_params params;
};

#define SCRATCH_BYTES (64u * 1024u)

/* ---- small helpers ---- */

static inline int oid_eq(const rsx_oid_t *a, const rsx_oid_t *b)
{
	uint64_t a0, a1, b0, b1;
	memcpy(&a0, a->b, 8);
	memcpy(&a1, a->b + 8, 8);
	memcpy(&b0, b->b, 8);
	memcpy(&b1, b->b + 8, 8);
	return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

/* The order index bucket of (user id, order id): keyed by the user id, so a cancel needs no user lookup. */
static inline uint32_t ohash(const struct rsx_book *b, uint32_t user_id, const rsx_oid_t *oid)
{
	uint64_t lo, hi;
	memcpy(&lo, oid->b, 8);
	memcpy(&hi, oid->b + 8, 8);
	/* the rotate moves the entropy of a byte-swapped counter down before the multiply */
	uint64_t h = (lo ^ ((hi << 29) | (hi >> 35)) ^ user_id) * 0xD6E8FEB86659FD93ull;
	return (uint32_t)(h >> b->oshift);
}

static inline uint32_t uhash(const struct rsx_book *b, uint32_t user_id)
{
	return (uint32_t)(((uint64_t)user_id * 0x9E3779B97F4A7C15ull) >> b->ushift);
}

#define UTAB_EMPTY 0xFFFFFFFFFFFFFFFFull

static inline uint64_t utab_mask(const struct rsx_book *b)
{
	return b->umask;
}

/* The user's slot, or NIL: a small id directly, else linear probing over (user_id, slot) pairs. */
static inline uint32_t user_find(const struct rsx_book *b, uint32_t user_id)
{
	if (LIKELY(user_id < b->udir_n))
		return b->udir[user_id];
	uint64_t mask = utab_mask(b);
	for (uint64_t h = uhash(b, user_id);; h = (h + 1) & mask) {
		uint64_t e = b->utab[h];
		/* an empty entry is all ones: for user 0xFFFFFFFF it "matches" with slot NIL,
		 * which is the right answer since an empty entry ends the probe */
		if ((uint32_t)(e >> 32) == user_id)
			return (uint32_t)e;
		if ((uint32_t)e == NIL)
			return NIL;
	}
}

static inline uint32_t order_find(const struct rsx_book *b, uint32_t uix, const rsx_oid_t *oid)
{
	uint32_t i = b->obkt[ohash(b, b->usr[uix].user_id, oid)];
	while (i != NIL && !(b->ord[i].uix == uix && oid_eq(&b->ord[i].oid, oid)))
		i = b->ord[i].hnext;
	return i;
}

static inline int64_t sat_add(int64_t a, int64_t d)
{
	int64_t r;
	if (UNLIKELY(__builtin_add_overflow(a, d, &r)))
		return d > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/*
 * A level's total open quantity is an int64 that saturates at INT64_MAX
 * (orders of up to INT64_MAX each could otherwise overflow it). Adding
 * saturates; taking away from a saturated total recounts the FIFO exactly, so
 * the total is always min(true sum, INT64_MAX). Only a level holding more
 * than INT64_MAX ever pays the recount.
 */
static inline void level_add(struct bk_lvl *L, int64_t q)
{
	if (UNLIKELY(__builtin_add_overflow(L->qty, q, &L->qty)))
		L->qty = INT64_MAX;
}

int64_t bk_level_recount(const struct rsx_book *b, const struct bk_lvl *L);

/* Call after the orders' own quantities changed: q is what left the level. */
static inline void level_sub(const struct rsx_book *b, struct bk_lvl *L, int64_t q)
{
	if (UNLIKELY(L->qty == INT64_MAX))
		L->qty = bk_level_recount(b, L);
	else
		L->qty -= q;
}

/* How much an order of `side` may fill without opening or growing a position. */
static inline int64_t reducing(int64_t net, unsigned side)
{
	if (side == RSX_SIDE_SELL)
		return net > 0 ? net : 0;
	if (net >= 0)
		return 0;
	return net == INT64_MIN ? INT64_MAX : -net;
}

/* ---- price index (specs/book.md §3) ---- */

/* The tick a price lies in: floor(price / tick) (prices are > 0; a power-of-two tick is a shift). */
static inline int64_t bk_tick(const struct rsx_book *b, int64_t price)
{
	if (LIKELY(b->tick_shift >= 0))
		return price >> b->tick_shift;
	return price / b->tick;
}

static inline int bk_in_window(const struct bk_side *sd, int64_t k)
{
	return (uint64_t)k - (uint64_t)sd->wa < sd->wspan;
}

/* ---- hierarchical occupancy bitmap (specs/book.md §4) ---- */

static inline void bm_set(struct bk_side *sd, uint32_t i)
{
	for (uint32_t d = 0; d < sd->depth; d++) {
		uint64_t *w = &sd->bm[d][i >> 6];
		uint64_t was = *w;
		*w = was | (1ull << (i & 63));
		if (was)
			return;
		i >>= 6;
	}
}

static inline void bm_clear(struct bk_side *sd, uint32_t i)
{
	for (uint32_t d = 0; d < sd->depth; d++) {
		uint64_t *w = &sd->bm[d][i >> 6];
		*w &= ~(1ull << (i & 63));
		if (*w)
			return;
		i >>= 6;
	}
}

static inline int bm_test(const struct bk_side *sd, uint32_t i)
{
	return (sd->bm[0][i >> 6] >> (i & 63)) & 1;
}

/* First set bit >= i, or NIL. */
static inline uint32_t bm_next(const struct bk_side *sd, uint32_t i)
{
	uint32_t d = 0;
	for (;;) {
		uint32_t w = i >> 6;
		if (w >= sd->bm_words[d])
			return NIL;
		uint64_t m = sd->bm[d][w] & (~0ull << (i & 63));
		if (m) {
			i = (w << 6) | (uint32_t)__builtin_ctzll(m);
			break;
		}
		if (d + 1 == sd->depth)
			return NIL;
		i = w + 1;
		d++;
	}
	while (d > 0) {
		d--;
		i = (i << 6) | (uint32_t)__builtin_ctzll(sd->bm[d][i]);
	}
	return i;
}

/* ---- levels: allocation and the sorted list ---- */

/* A fresh level node (a free one is guaranteed by the caller), linked nowhere yet. */
static inline uint32_t bk_lvl_new(struct rsx_book *b, int64_t price)
{
	uint32_t i = b->lfree;
	if (i != NIL)
		b->lfree = b->lvl[i].next;
	else
		i = b->lbump++;
	struct bk_lvl *L = &b->lvl[i];
	L->price = price;
	L->qty = 0;
	L->head = L->tail = NIL;
	L->count = 0;
	L->nro = 0;
	L->left = L->right = NIL;
	b->nlevels++;
	return i;
}

/* Link level n into the side's sorted list just before y (NIL: at the high end). */
static inline void bk_link_before(struct rsx_book *b, struct bk_side *sd, uint32_t n, uint32_t y)
{
	struct bk_lvl *N = &b->lvl[n];
	uint32_t p;
	if (y == NIL) {
		p = sd->hi;
		sd->hi = n;
	} else {
		p = b->lvl[y].prev;
		b->lvl[y].prev = n;
	}
	N->next = y;
	N->prev = p;
	if (p != NIL)
		b->lvl[p].next = n;
	else
		sd->lo = n;
	sd->nlevels++;
}

/* ---- shared between book*.c ---- */

/* book_map.c: the window rings, the far trees and the slide (specs/book.md §3-§5) */
uint32_t bk_far_get(struct rsx_book *b, struct bk_side *sd, int64_t price);
void bk_far_remove(struct rsx_book *b, struct bk_side *sd, uint32_t l, uint32_t prev, uint32_t next);
uint32_t bk_level_new_in_window(struct rsx_book *b, struct bk_side *sd, uint32_t i, uint32_t x,
				int64_t price);
void bk_retarget(struct rsx_book *b, int64_t mid);
void bk_slide(struct rsx_book *b, uint32_t budget);
void bk_window_reset(struct rsx_book *b, int64_t centre_tick);
void bk_window_clear(struct rsx_book *b);
void bk_window_fill(struct rsx_book *b, int64_t centre_tick);
int64_t bk_centre(const struct rsx_book *b);
int bk_check_index(const struct rsx_book *b, int s, char *msg, size_t cap);

void bk_reset(struct rsx_book *b);
void bk_config_derive(struct rsx_book *b);
void bk_restore_bbo(struct rsx_book *b);
int bk_apply_op(struct rsx_book *b, const struct rsx_book_op *op, struct rsx_book_sink *s);
int bk_resume(struct rsx_book *b, struct rsx_book_sink *s);
int bk_replay_loop(struct rsx_book *b, const struct rsx_book_op *ops, size_t n,
		   struct rsx_book_fill_row *fills, size_t cap, size_t *nfills);
/* Insert a resting order as restore does: no events, no matching. */
int bk_restore_order(struct rsx_book *b, uint32_t uix, const rsx_oid_t *oid, unsigned side,
		     unsigned tif, unsigned flags, unsigned stp, int64_t price, int64_t rem,
		     int64_t filled, uint32_t *slot);
uint32_t bk_user_get(struct rsx_book *b, uint32_t user_id);
void bk_user_append(struct rsx_book *b, uint32_t uix, uint32_t oi);

#endif
