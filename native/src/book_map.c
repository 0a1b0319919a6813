/*
 * book_map.c - where a price's level lives (specs/book.md §3-§5).
 *
 * Each side keeps all its levels in one price-sorted list (matching walks
 * it). Two structures answer "where does a new price go": the window ring,
 * one slot per tick over the ticks [wa, wb) near the mid with an occupancy
 * bitmap (O(1), the hot path), and the far tree, a treap by price holding
 * every other level (O(log levels) whatever the prices). When the mid moves,
 * the window slides after it a bounded number of levels per operation.
 * Nothing here changes a level's orders or its place in the list: the index
 * is a layout, never a change of priority.
 */
#include <stdio.h>

#include "book_int.h"

/* ---- far tree: a treap keyed by price ---- */

/*
 * A node's priority is a hash of its pool index under a key drawn when the
 * book is created: fixed while the node is in the tree, and not something
 * an order flow can aim at, so the expected depth is O(log n) for any
 * sequence of prices.
 */
static inline uint64_t prio(const struct rsx_book *b, uint32_t n)
{
	uint64_t z = (uint64_t)n ^ b->tkey;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void far_insert(struct rsx_book *b, struct bk_side *sd, uint32_t n)
{
	struct bk_lvl *lv = b->lvl;
	int64_t p = lv[n].price;
	uint64_t pn = prio(b, n);
	uint32_t *link = &sd->root;

	while (*link != NIL && prio(b, *link) > pn)
		link = p < lv[*link].price ? &lv[*link].left : &lv[*link].right;
	/* split the subtree at *link around p: lower part left of n, higher part right */
	uint32_t t = *link, *l = &lv[n].left, *r = &lv[n].right;
	while (t != NIL) {
		if (lv[t].price < p) {
			*l = t;
			l = &lv[t].right;
			t = *l;
		} else {
			*r = t;
			r = &lv[t].left;
			t = *r;
		}
	}
	*l = *r = NIL;
	*link = n;
	sd->nfar++;
}

/* edge: -1 when n is the tree's lowest node, +1 its highest (a sweep's case), 0 not known */
static void far_delete(struct rsx_book *b, struct bk_side *sd, uint32_t n, int edge)
{
	struct bk_lvl *lv = b->lvl;
	int64_t p = lv[n].price;
	uint32_t *link = &sd->root;

	if (edge < 0)		/* down the left spine: no price to compare */
		while (*link != n)
			link = &lv[*link].left;
	else if (edge > 0)
		while (*link != n)
			link = &lv[*link].right;
	else
		while (*link != n)
			link = p < lv[*link].price ? &lv[*link].left : &lv[*link].right;
	/* merge the two subtrees (every key of a below every key of c) */
	uint32_t a = lv[n].left, c = lv[n].right;
	while (a != NIL && c != NIL) {
		if (prio(b, a) > prio(b, c)) {
			*link = a;
			link = &lv[a].right;
			a = *link;
		} else {
			*link = c;
			link = &lv[c].left;
			c = *link;
		}
	}
	*link = a != NIL ? a : c;
	lv[n].left = lv[n].right = NIL;
	sd->nfar--;
}

/* The far level of lowest price whose tick is >= k, or NIL. */
static uint32_t far_ceil_tick(const struct rsx_book *b, const struct bk_side *sd, int64_t k)
{
	uint32_t t = sd->root, best = NIL;
	while (t != NIL) {
		if (bk_tick(b, b->lvl[t].price) >= k) {
			best = t;
			t = b->lvl[t].left;
		} else {
			t = b->lvl[t].right;
		}
	}
	return best;
}

/*
 * The far level of `price`, created if needed (a free node is guaranteed by
 * the caller). Above the window every higher level is far, so the tree's
 * successor is the list successor; below it every lower level is far, so
 * the tree's predecessor is the list predecessor.
 */
uint32_t bk_far_get(struct rsx_book *b, struct bk_side *sd, int64_t price)
{
	uint32_t t = sd->root, pred = NIL, succ = NIL;
	while (t != NIL) {
		int64_t tp = b->lvl[t].price;
		if (price == tp)
			return t;
		if (price < tp) {
			succ = t;
			t = b->lvl[t].left;
		} else {
			pred = t;
			t = b->lvl[t].right;
		}
	}
	uint32_t n = bk_lvl_new(b, price);
	if (bk_tick(b, price) >= sd->wb) {
		bk_link_before(b, sd, n, succ);
		if (sd->above == NIL || price < b->lvl[sd->above].price)
			sd->above = n;
	} else {
		bk_link_before(b, sd, n, pred != NIL ? b->lvl[pred].next : sd->lo);
	}
	far_insert(b, sd, n);
	return n;
}

/*
 * A far level leaves the book (already unlinked from the list; prev and next
 * were its neighbours). The side's lowest or highest level is the tree's.
 */
void bk_far_remove(struct rsx_book *b, struct bk_side *sd, uint32_t l, uint32_t prev, uint32_t next)
{
	far_delete(b, sd, l, prev == NIL ? -1 : next == NIL ? 1 : 0);
	if (sd->above == l)
		sd->above = next;	/* the next level up is above the window too */
}

/* ---- window ring ---- */

/* The first occupied ring slot at or after slot i in circular order, or NIL. */
static inline uint32_t ring_next(const struct bk_side *sd, uint32_t i)
{
	uint32_t j = bm_next(sd, i);
	return j != NIL || i == 0 ? j : bm_next(sd, 0);
}

/*
 * A new level in the window at slot i (x = the slot's current lowest level,
 * or NIL). Slots hold ticks [wa, wb) only, so the first occupied slot after
 * i in circular order is the next higher tick unless the scan wrapped round
 * to the window's bottom (a lower price): then the successor is `above`.
 * A slot holds several levels only for off-grid prices left by a tick change
 * (book.md §3); an on-grid price is the lowest of its tick, so it never walks.
 */
uint32_t bk_level_new_in_window(struct rsx_book *b, struct bk_side *sd, uint32_t i, uint32_t x,
				int64_t price)
{
	uint32_t n;
	if (x == NIL) {
		n = bk_lvl_new(b, price);
		uint32_t j = ring_next(sd, (i + 1) & b->rmask);
		uint32_t succ = j == NIL ? NIL : sd->ring[j];
		if (succ == NIL || b->lvl[succ].price < price)
			succ = sd->above;
		bk_link_before(b, sd, n, succ);
		sd->ring[i] = n;
		bm_set(sd, i);
		return n;
	}
	if (price < b->lvl[x].price) {
		n = bk_lvl_new(b, price);
		bk_link_before(b, sd, n, x);
		sd->ring[i] = n;
		return n;
	}
	int64_t k = bk_tick(b, price);
	for (;;) {	/* the tick's levels are consecutive from x upward */
		uint32_t nx = b->lvl[x].next;
		if (nx == NIL || b->lvl[nx].price > price || bk_tick(b, b->lvl[nx].price) != k)
			break;
		x = nx;
	}
	if (b->lvl[x].price == price)
		return x;
	n = bk_lvl_new(b, price);
	bk_link_before(b, sd, n, b->lvl[x].next);
	return n;
}

/* ---- the slide (specs/book.md §5) ---- */

/* Move the run of levels of tick k starting at l from the ring to the tree. */
static uint32_t evict_tick(struct rsx_book *b, struct bk_side *sd, uint32_t l, int64_t k)
{
	uint32_t i = (uint32_t)k & b->rmask, moved = 0;
	sd->ring[i] = NIL;
	bm_clear(sd, i);
	for (; l != NIL && bk_tick(b, b->lvl[l].price) == k; l = b->lvl[l].next, moved++)
		far_insert(b, sd, l);
	return moved;
}

/* Move the run of levels of tick k starting at l from the tree to the ring; *after = the level after it. */
static uint32_t load_tick(struct rsx_book *b, struct bk_side *sd, uint32_t l, int64_t k, uint32_t *after)
{
	uint32_t i = (uint32_t)k & b->rmask, moved = 0;
	sd->ring[i] = l;
	bm_set(sd, i);
	for (; l != NIL && bk_tick(b, b->lvl[l].price) == k; l = b->lvl[l].next, moved++)
		far_delete(b, sd, l, 0);
	*after = l;
	return moved;
}

static void set_window(struct bk_side *sd, int64_t wa, int64_t wb)
{
	sd->wa = wa;
	sd->wb = wb;
	sd->wspan = (uint64_t)(wb - wa);
}

/*
 * Move one side's window toward the target [ta, ta + R) by at most `budget`
 * steps (a step moves one tick's levels or skips a run of empty ticks). The
 * window stays a contiguous range of at most R ticks mirrored exactly by the
 * ring at every step, so a suspended slide is a valid index.
 */
static uint32_t slide_side(struct rsx_book *b, struct bk_side *sd, uint32_t budget)
{
	const int64_t ta = b->ta, tb = b->ta + (int64_t)b->R;
	uint32_t used = 0;

	while (used < budget) {
		int64_t wa = sd->wa, wb = sd->wb, k;
		uint32_t l;
		if (wa < ta && wa < wb) {	/* evict the bottom, up to ta */
			int64_t lim = ta < wb ? ta : wb;
			uint32_t j = ring_next(sd, (uint32_t)wa & b->rmask);
			l = j == NIL ? NIL : sd->ring[j];
			k = l == NIL ? lim : bk_tick(b, b->lvl[l].price);
			if (k < lim) {
				used += evict_tick(b, sd, l, k);
				set_window(sd, k + 1, wb);
			} else {
				set_window(sd, lim, wb);
				used++;
			}
		} else if (wb > tb && wb > wa) {	/* evict the top, down to tb */
			int64_t lim = tb > wa ? tb : wa;
			l = sd->above != NIL ? b->lvl[sd->above].prev : sd->hi;	/* highest level below wb */
			k = l == NIL ? wa - 1 : bk_tick(b, b->lvl[l].price);
			if (k >= lim) {
				uint32_t first = sd->ring[(uint32_t)k & b->rmask];
				used += evict_tick(b, sd, first, k);
				sd->above = first;
				set_window(sd, wa, k);
			} else {
				set_window(sd, wa, lim);
				used++;
			}
		} else if (wa >= wb && wa != ta) {	/* empty: jump to the target's bottom */
			set_window(sd, ta, ta);
			sd->above = far_ceil_tick(b, sd, ta);
			used++;
		} else if (wb < tb) {	/* load the top, up to tb */
			l = sd->above;
			if (l != NIL && (k = bk_tick(b, b->lvl[l].price)) < tb) {
				uint32_t after;
				used += load_tick(b, sd, l, k, &after);
				sd->above = after;
				set_window(sd, wa, k + 1);
			} else {
				set_window(sd, wa, tb);
				used++;
			}
		} else if (wa > ta) {	/* load the bottom, down to ta */
			uint32_t j = ring_next(sd, (uint32_t)wa & b->rmask);
			uint32_t low = j == NIL ? NIL : sd->ring[j];	/* lowest level in the window */
			l = low != NIL ? b->lvl[low].prev : sd->above != NIL ? b->lvl[sd->above].prev : sd->hi;
			if (l != NIL && (k = bk_tick(b, b->lvl[l].price)) >= ta) {
				uint32_t after;
				while (b->lvl[l].prev != NIL && bk_tick(b, b->lvl[b->lvl[l].prev].price) == k)
					l = b->lvl[l].prev;
				used += load_tick(b, sd, l, k, &after);
				set_window(sd, k, wb);
			} else {
				set_window(sd, ta, wb);
				used++;
			}
		} else {
			return used;	/* at the target */
		}
	}
	return used;
}

void bk_slide(struct rsx_book *b, uint32_t budget)
{
	const int64_t ta = b->ta, tb = b->ta + (int64_t)b->R;
	for (int s = 0; s < 2; s++)
		slide_side(b, &b->side[s], budget);
	b->sliding = 0;
	for (int s = 0; s < 2; s++)
		if (b->side[s].wa != ta || b->side[s].wb != tb)
			b->sliding = 1;
}

/* The target window [ta, ta + R), and the price range of its middle half for top_changed. */
static void set_target(struct rsx_book *b, int64_t ta)
{
	if (ta > b->tmax)
		ta = b->tmax;
	b->ta = ta;
	__int128 lo = ((__int128)ta + (__int128)b->rq) * b->tick;
	__int128 hi = ((__int128)ta + (__int128)(b->rq + b->rh)) * b->tick;
	if (lo < 1)
		lo = 1;
	if (hi > INT64_MAX)
		hi = INT64_MAX;
	b->mid_lo = (int64_t)lo;
	b->mid_span = hi > lo ? (uint64_t)(hi - lo) : 0;
}

/*
 * After a top change: when the mid has left the middle half of the target
 * window, centre the target on it. Depends only on the target and the mid
 * (not on how far a slide has got), so a restored book decides the same.
 */
void bk_retarget(struct rsx_book *b, int64_t mid)
{
	set_target(b, bk_tick(b, mid) - (int64_t)(b->R / 2));
	b->recentres++;
	b->sliding = 1;
}

/* An empty book's window: both sides at the target centred on tick c. */
void bk_window_reset(struct rsx_book *b, int64_t c)
{
	set_target(b, c - (int64_t)(b->R / 2));
	b->sliding = 0;
	for (int s = 0; s < 2; s++) {
		struct bk_side *sd = &b->side[s];
		set_window(sd, b->ta, b->ta + (int64_t)b->R);
		sd->root = sd->above = NIL;
		sd->nfar = 0;
	}
}

/* Every window level moves to the tree and the windows empty (before a tick change). */
void bk_window_clear(struct rsx_book *b)
{
	for (int s = 0; s < 2; s++) {
		struct bk_side *sd = &b->side[s];
		for (uint32_t l = sd->lo; l != NIL; l = b->lvl[l].next) {
			int64_t k = bk_tick(b, b->lvl[l].price);
			if (!bk_in_window(sd, k))
				continue;
			uint32_t i = (uint32_t)k & b->rmask;
			if (sd->ring[i] != NIL) {
				sd->ring[i] = NIL;
				bm_clear(sd, i);
			}
			far_insert(b, sd, l);
		}
		set_window(sd, sd->wa, sd->wa);
		sd->above = NIL;
	}
}

/* After a tick change (every level far): empty windows at the target, loaded completely. */
void bk_window_fill(struct rsx_book *b, int64_t c)
{
	set_target(b, c - (int64_t)(b->R / 2));
	for (int s = 0; s < 2; s++) {
		struct bk_side *sd = &b->side[s];
		set_window(sd, b->ta, b->ta);
		sd->above = far_ceil_tick(b, sd, b->ta);
	}
	bk_slide(b, UINT32_MAX);
}

int64_t bk_centre(const struct rsx_book *b)
{
	__int128 c = ((__int128)b->ta + (__int128)(b->R / 2)) * b->tick;
	return c > INT64_MAX ? INT64_MAX : c < 0 ? 0 : (int64_t)c;
}

/* ---- audit (rsx_book_check) ---- */

#define FAIL(...) do { snprintf(msg, cap, __VA_ARGS__); return RSX_EINVALID; } while (0)

/* BST order within (lo, hi), heap order of priorities, node count; depth-limited. */
static int check_tree(const struct rsx_book *b, uint32_t t, int64_t lo, int64_t hi, int lo_open,
		      int hi_open, uint32_t depth, uint64_t *nodes)
{
	while (t != NIL) {
		const struct bk_lvl *L = &b->lvl[t];
		if (depth > 4096 || t >= b->lbump || ++*nodes > b->lcap)
			return -1;
		if ((!lo_open && L->price <= lo) || (!hi_open && L->price >= hi))
			return -1;
		if ((L->left != NIL && prio(b, L->left) > prio(b, t)) ||
		    (L->right != NIL && prio(b, L->right) > prio(b, t)))
			return -1;
		if (check_tree(b, L->left, lo, L->price, lo_open, 0, depth + 1, nodes))
			return -1;
		lo = L->price;	/* the right subtree, iteratively */
		lo_open = 0;
		t = L->right;
		depth++;
	}
	return 0;
}

int bk_check_index(const struct rsx_book *b, int s, char *msg, size_t cap)
{
	const struct bk_side *sd = &b->side[s];
	uint64_t occupied = 0, far = 0, nodes = 0;
	uint32_t above = NIL;

	if (sd->wa > sd->wb || (uint64_t)(sd->wb - sd->wa) > b->R || sd->wspan != (uint64_t)(sd->wb - sd->wa))
		FAIL("side %d: window [%lld, %lld) wider than %llu ticks", s, (long long)sd->wa,
		     (long long)sd->wb, (unsigned long long)b->R);
	for (uint32_t l = sd->lo, prev = NIL; l != NIL; prev = l, l = b->lvl[l].next) {
		const struct bk_lvl *L = &b->lvl[l];
		int64_t k = bk_tick(b, L->price);
		if (above == NIL && k >= sd->wb)
			above = l;
		if (bk_in_window(sd, k)) {
			if (L->left != NIL || L->right != NIL)
				FAIL("side %d: window level at %lld has tree links", s, (long long)L->price);
			uint32_t i = (uint32_t)k & b->rmask;
			if (prev == NIL || bk_tick(b, b->lvl[prev].price) != k) {
				occupied++;
				if (sd->ring[i] != l)
					FAIL("side %d: ring slot %u points at %u, not its tick's lowest level %u", s,
					     i, sd->ring[i], l);
			}
			if (!bm_test(sd, i))
				FAIL("side %d: ring slot %u occupied but its bit is clear", s, i);
		} else {
			far++;
			uint32_t t = sd->root;
			while (t != NIL && b->lvl[t].price != L->price)
				t = L->price < b->lvl[t].price ? b->lvl[t].left : b->lvl[t].right;
			if (t != l)
				FAIL("side %d: far level at %lld not found in the tree", s, (long long)L->price);
		}
	}
	if (above != sd->above)
		FAIL("side %d: above is %u, the lowest level above the window is %u", s, sd->above, above);
	if (check_tree(b, sd->root, 0, 0, 1, 1, 0, &nodes))
		FAIL("side %d: far tree out of order, out of heap order or too deep", s);
	if (nodes != far || far != sd->nfar)
		FAIL("side %d: far tree holds %llu nodes, %llu far levels, nfar %u", s,
		     (unsigned long long)nodes, (unsigned long long)far, sd->nfar);
	uint64_t bits = 0, slots = 0;
	for (uint32_t w = 0; w < sd->bm_words[0]; w++)
		bits += (uint64_t)__builtin_popcountll(sd->bm[0][w]);
	for (uint64_t i = 0; i < b->R; i++)
		slots += sd->ring[i] != NIL;
	if (bits != occupied || slots != occupied)
		FAIL("side %d: %llu bits set, %llu ring slots used, %llu ticks occupied", s,
		     (unsigned long long)bits, (unsigned long long)slots, (unsigned long long)occupied);
	for (uint32_t d = 0; d + 1 < sd->depth; d++)
		for (uint32_t w = 0; w < sd->bm_words[d]; w++) {
			int up = (sd->bm[d + 1][w >> 6] >> (w & 63)) & 1;
			if (up != (sd->bm[d][w] != 0))
				FAIL("side %d: bitmap level %u word %u disagrees with its parent", s, d, w);
		}
	return 0;
}
