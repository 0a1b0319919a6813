/*
 * book.c - creating the book's one mapping, the price map and recentering,
 * inspection and the invariant audit (specs/book.md). The request path is in
 * book_match.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "book_int.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define HUGE_2M (2u * 1024u * 1024u)

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint32_t log2_pow2_at_least(uint64_t n)
{
	uint32_t bits = 0;
	while ((1ull << bits) < n)
		bits++;
	return bits;
}

/* ---- price index ---- */

static void set_tick(struct rsx_book *b, int64_t tick)
{
	b->tick = tick;
	b->tick_shift = (tick & (tick - 1)) == 0 ? __builtin_ctzll((uint64_t)tick) : -1;
}

/* The constants of the request path's one-test number check (numbers_fast_ok). */
void bk_config_derive(struct rsx_book *b)
{
	int64_t tick = b->cfg.tick_size.raw, lot = b->cfg.lot_size.raw;
	b->tmask = (tick & (tick - 1)) == 0 ? tick - 1 : -1;
	b->lmask = (lot & (lot - 1)) == 0 ? lot - 1 : -1;
	b->unit_grid = tick == 1 && lot == 1;
	b->qspan = (uint64_t)(b->cfg.max_qty.raw - b->cfg.min_qty.raw);
}

/* The far trees' priority key: not predictable from outside the process. */
static uint64_t tree_key(const void *addr)
{
	uint64_t key = 0;
	if (getrandom(&key, sizeof key, GRND_NONBLOCK) != (ssize_t)sizeof key) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		key = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ (uintptr_t)addr;
	}
	return key;
}

/* ---- creation ---- */

struct layout {
	uint64_t book, scratch, ord, lvl, obkt, usr, ubkt, udir;
	uint64_t ring[2], bm[2][BM_MAXD];
	uint32_t bm_words[BM_MAXD], depth;
	uint64_t total;
};

static void plan(struct layout *L, uint64_t cap, uint64_t lcap, uint64_t users, uint64_t R,
		 uint32_t obits, uint32_t ubits, uint64_t udir_n)
{
	uint64_t off = 0;
#define TAKE(field, bytes) do { L->field = off; off = align_up(off + (bytes), 64); } while (0)
	TAKE(book, sizeof(struct rsx_book));
	TAKE(scratch, SCRATCH_BYTES);
	TAKE(ord, cap * sizeof(struct bk_ord));
	TAKE(lvl, lcap * sizeof(struct bk_lvl));
	TAKE(obkt, (1ull << obits) * 4);
	TAKE(usr, users * sizeof(struct bk_usr));
	TAKE(ubkt, (1ull << ubits) * 8);
	TAKE(udir, udir_n * 4);
	/* bitmap levels: words of level d+1 = ceil(words of level d / 64), until one word */
	uint64_t bits = R;
	L->depth = 0;
	do {
		uint64_t words = (bits + 63) / 64;
		L->bm_words[L->depth++] = (uint32_t)words;
		bits = words;
	} while (bits > 1 && L->depth < BM_MAXD);
	for (int s = 0; s < 2; s++) {
		TAKE(ring[s], R * 4);
		for (uint32_t d = 0; d < L->depth; d++)
			TAKE(bm[s][d], (uint64_t)L->bm_words[d] * 8);
	}
#undef TAKE
	L->total = align_up(off, HUGE_2M);
}

static void *map_memory(struct rsx_book_params *p, uint64_t len, uint32_t *backing,
			int32_t *herr, char *warning, size_t wcap)
{
	void *m;

	*herr = 0;
	warning[0] = 0;
	if (!(p->flags & RSX_BOOK_HUGETLB_NEVER)) {
		m = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
		if (m != MAP_FAILED) {
			*backing = RSX_BOOK_MEM_HUGETLB;
			return m;
		}
		*herr = errno;
		if (p->flags & RSX_BOOK_HUGETLB_REQUIRE) {
			errno = *herr;
			return NULL;
		}
	}
	/* Over-map by 2 MiB and trim, so THP can back the region with aligned pages. */
	uint8_t *raw = mmap(NULL, len + HUGE_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uint8_t *start = (uint8_t *)align_up((uintptr_t)raw, HUGE_2M);
	if (start > raw)
		munmap(raw, (size_t)(start - raw));
	uint8_t *end = start + len;
	if (raw + len + HUGE_2M > end)
		munmap(end, (size_t)(raw + len + HUGE_2M - end));
	m = start;
	*backing = RSX_BOOK_MEM_SMALL;
	if (!(p->flags & RSX_BOOK_THP_NEVER) && madvise(m, len, MADV_HUGEPAGE) == 0)
		*backing = RSX_BOOK_MEM_THP;
	/* prefault now, so matching never takes a page fault */
	if (madvise(m, len, MADV_POPULATE_WRITE) != 0) {
		if (errno != EINVAL) {	/* ENOMEM & co: fail creation, not later */
			int err = errno;
			munmap(m, len);
			errno = err;
			return NULL;
		}
		for (uint64_t off = 0; off < len; off += 4096)	/* kernel < 5.14 */
			((volatile uint8_t *)m)[off] = 0;
	}
	if (p->flags & RSX_BOOK_HUGETLB_NEVER)
		snprintf(warning, wcap, "hugetlb not tried (RSX_BOOK_HUGETLB_NEVER); %s",
			 *backing == RSX_BOOK_MEM_THP ? "using transparent hugepages (madvise)"
						       : "using 4 KiB pages");
	else
		snprintf(warning, wcap,
			 "no reserved hugepages for %llu MiB (mmap MAP_HUGETLB: %s); %s",
			 (unsigned long long)(len >> 20), strerror(*herr),
			 *backing == RSX_BOOK_MEM_THP ? "using transparent hugepages (madvise)"
						       : "using 4 KiB pages");
	return m;
}

static uint64_t choose_w(const struct rsx_book_params *p, int64_t tick)
{
	uint64_t w = p->zone0_ticks;
	if (w == 0) {
		/* 5 % of the reference price, in ticks, rounded up */
		__int128 raw = (__int128)p->ref_price.raw * 5;
		__int128 ticks = (raw + (__int128)100 * tick - 1) / ((__int128)100 * tick);
		w = ticks > RSX_BOOK_ZONE0_MAX ? RSX_BOOK_ZONE0_MAX : (uint64_t)ticks;
	}
	w = (w + 999) / 1000 * 1000;
	if (w < RSX_BOOK_ZONE0_MIN)
		w = RSX_BOOK_ZONE0_MIN;
	if (w > RSX_BOOK_ZONE0_MAX)
		w = RSX_BOOK_ZONE0_MAX;
	return w;
}

int rsx_book_create(struct rsx_book **out, const struct rsx_book_params *params,
		    const struct rsx_symbol_config *cfg)
{
	struct rsx_book_params p;
	struct layout L;
	uint32_t backing;
	int32_t herr;
	char warning[160];

	if (!out || !params || !cfg || rsx_symbol_config_check(cfg) != 0)
		return RSX_EINVALID;
	p = *params;
	if (p.level_capacity == 0)
		p.level_capacity = p.capacity;
	if (p.capacity == 0 || p.capacity > (1ull << 31) || p.level_capacity > (1ull << 31) ||
	    p.max_users == 0 || p.max_users > (1u << 31) || p.ref_price.raw <= 0)
		return RSX_EINVALID;
	if (p.zone0_ticks > (1ull << 40))
		return RSX_EINVALID;
	if (p.flags & ~(RSX_BOOK_HUGETLB_REQUIRE | RSX_BOOK_HUGETLB_NEVER | RSX_BOOK_THP_NEVER))
		return RSX_EINVALID;
	if ((p.flags & RSX_BOOK_HUGETLB_REQUIRE) && (p.flags & RSX_BOOK_HUGETLB_NEVER))
		return RSX_EINVALID;

	uint64_t W = choose_w(&p, cfg->tick_size.raw);
	uint64_t R = 1;
	while (R < 2 * W)
		R <<= 1;
	uint32_t obits = log2_pow2_at_least(p.capacity);
	uint32_t ubits = log2_pow2_at_least(2ull * p.max_users);	/* load <= 1/2 */
	if (obits < 4)
		obits = 4;
	if (ubits < 4)
		ubits = 4;
	/* user ids below 4 x max_users (at most 2^20) are found directly, others by hashing */
	uint64_t udir_n = 4ull * p.max_users;
	if (udir_n > (1u << 20))
		udir_n = 1u << 20;
	plan(&L, p.capacity, p.level_capacity, p.max_users, R, obits, ubits, udir_n);

	uint8_t *m = map_memory(&p, L.total, &backing, &herr, warning, sizeof warning);
	if (!m)
		return -errno;

	struct rsx_book *b = (struct rsx_book *)(m + L.book);
	memset(b, 0, sizeof *b);
	b->map = m;
	b->map_len = L.total;
	b->backing = backing;
	b->hugetlb_errno = herr;
	memcpy(b->warning, warning, sizeof warning);
	b->params = p;
	b->params.zone0_ticks = W;
	b->scratch = m + L.scratch;
	b->scratch_cap = SCRATCH_BYTES;
	b->ord = (struct bk_ord *)(m + L.ord);
	b->lvl = (struct bk_lvl *)(m + L.lvl);
	b->obkt = (uint32_t *)(m + L.obkt);
	b->usr = (struct bk_usr *)(m + L.usr);
	b->utab = (uint64_t *)(m + L.ubkt);
	b->udir = (uint32_t *)(m + L.udir);
	b->udir_n = (uint32_t)udir_n;
	b->oshift = 64 - obits;
	b->ushift = 64 - ubits;
	b->umask = (1ull << ubits) - 1;
	b->ocap = (uint32_t)p.capacity;
	b->lcap = (uint32_t)p.level_capacity;
	b->ucap = p.max_users;
	b->W = W;
	b->R = R;
	b->rmask = (uint32_t)(R - 1);
	b->rq = R / 4;
	b->rh = R / 2;
	b->tmax = INT64_MAX - (int64_t)R;
	b->tkey = tree_key(b);
	for (int s = 0; s < 2; s++) {
		struct bk_side *sd = &b->side[s];
		sd->ring = (uint32_t *)(m + L.ring[s]);
		sd->depth = L.depth;
		for (uint32_t d = 0; d < L.depth; d++) {
			sd->bm[d] = (uint64_t *)(m + L.bm[s][d]);
			sd->bm_words[d] = L.bm_words[d];
		}
	}
	b->cfg = *cfg;
	bk_config_derive(b);
	b->prefix2 = (uint64_t)p.stream_id | (uint64_t)cfg->symbol_id << 32;
	set_tick(b, cfg->tick_size.raw);
	bk_reset(b);
	bk_window_reset(b, bk_tick(b, p.ref_price.raw));
	*out = b;
	return 0;
}

/*
 * Empty the book: every pool free, every index empty. Used at creation and
 * when a restore fails. O(buckets + slots).
 */
void bk_reset(struct rsx_book *b)
{
	memset(b->obkt, 0xFF, (size_t)4 << (64 - b->oshift));
	memset(b->utab, 0xFF, (size_t)8 << (64 - b->ushift));
	memset(b->udir, 0xFF, (size_t)b->udir_n * 4);
	for (int s = 0; s < 2; s++) {
		struct bk_side *sd = &b->side[s];
		memset(sd->ring, 0xFF, b->R * 4);
		for (uint32_t d = 0; d < sd->depth; d++)
			memset(sd->bm[d], 0, (size_t)sd->bm_words[d] * 8);
		sd->lo = sd->hi = NIL;
		sd->nlevels = 0;
	}
	b->ofree = b->lfree = b->ufree = NIL;
	b->obump = b->lbump = b->ubump = 0;
	b->norders = b->nlevels = b->nusers = 0;
	memset(&b->tk, 0, sizeof b->tk);
	b->ops = b->fills = b->recentres = 0;
	b->dry_epoch = 0;
	b->bbo_sat = 0;
	bk_window_reset(b, b->ta + (int64_t)(b->R / 2));
}

void rsx_book_destroy(struct rsx_book *b)
{
	if (b)
		munmap(b->map, b->map_len);
}

int rsx_book_set_config(struct rsx_book *b, const struct rsx_symbol_config *cfg)
{
	if (!b || !cfg || rsx_symbol_config_check(cfg) != 0)
		return RSX_EINVALID;
	if (b->tk.kind != PEND_NONE)
		return -EBUSY;
	int64_t old_tick = b->tick;
	b->cfg = *cfg;
	bk_config_derive(b);
	b->prefix2 = (uint64_t)b->params.stream_id | (uint64_t)cfg->symbol_id << 32;
	if (cfg->tick_size.raw != old_tick) {
		/* the ring is one slot per tick: rebuild it around the same centre price */
		int64_t centre = bk_centre(b);
		bk_window_clear(b);
		set_tick(b, cfg->tick_size.raw);
		bk_window_fill(b, bk_tick(b, centre > 0 ? centre : 1));
	}
	return 0;
}

/* ---- inspection ---- */

void rsx_book_mem(const struct rsx_book *b, struct rsx_book_mem *out)
{
	memset(out, 0, sizeof *out);
	out->backing = b->backing;
	out->hugetlb_errno = b->hugetlb_errno;
	out->mapped_bytes = b->map_len;
	out->capacity = b->ocap;
	out->level_capacity = b->lcap;
	out->max_users = b->ucap;
	out->bytes_per_order = (b->map_len + b->ocap - 1) / b->ocap;
	memcpy(out->warning, b->warning, sizeof out->warning);
}

void rsx_book_stats(const struct rsx_book *b, struct rsx_book_stats *out)
{
	memset(out, 0, sizeof *out);
	out->orders = b->norders;
	out->levels = b->nlevels;
	out->users = b->nusers;
	out->ops = b->ops;
	out->fills = b->fills;
	out->recentres = b->recentres;
	out->center = bk_centre(b);
	out->bid_levels = b->side[RSX_SIDE_BUY].nlevels;
	out->ask_levels = b->side[RSX_SIDE_SELL].nlevels;
}

/* The raw price where tick k starts, clamped to int64. */
static int64_t tick_price(int64_t k, int64_t tick)
{
	__int128 p = (__int128)k * tick;
	return p > INT64_MAX ? INT64_MAX : p < INT64_MIN ? INT64_MIN : (int64_t)p;
}

void rsx_book_map_info(const struct rsx_book *b, struct rsx_book_map_info *out)
{
	memset(out, 0, sizeof *out);
	out->center = bk_centre(b);
	out->tick = b->tick;
	out->zone0_ticks = b->W;
	out->half = b->R / 2;
	out->slots = b->R;
	for (int s = 0; s < 2; s++) {
		const struct bk_side *sd = &b->side[s];
		out->window_lo[s] = tick_price(sd->wa, b->tick);
		out->window_hi[s] = tick_price(sd->wb, b->tick);
		out->far_levels[s] = sd->nfar;
	}
}

void rsx_book_config(const struct rsx_book *b, struct rsx_symbol_config *out)
{
	*out = b->cfg;
}

uint64_t rsx_book_slot_of(const struct rsx_book *b, rsx_price_t price)
{
	if (price.raw <= 0)
		return UINT64_MAX;
	int64_t k = bk_tick(b, price.raw);
	if ((uint64_t)k - (uint64_t)b->ta >= b->R)
		return UINT64_MAX;
	return (uint64_t)k & b->rmask;
}

static void level_info(const struct bk_lvl *l, struct rsx_book_level_info *out)
{
	out->price = l->price;
	out->qty = l->qty;
	out->count = l->count;
	out->_pad0 = 0;
}

int rsx_book_best(const struct rsx_book *b, int side, struct rsx_book_level_info *out)
{
	if (side != RSX_SIDE_BUY && side != RSX_SIDE_SELL)
		return RSX_EINVALID;
	uint32_t l = side == RSX_SIDE_BUY ? b->side[0].hi : b->side[1].lo;
	if (l == NIL)
		return 0;
	level_info(&b->lvl[l], out);
	return 1;
}

int rsx_book_depth(const struct rsx_book *b, int side, struct rsx_book_level_info *rows, size_t n)
{
	if (side != RSX_SIDE_BUY && side != RSX_SIDE_SELL)
		return RSX_EINVALID;
	size_t i = 0;
	if (side == RSX_SIDE_BUY)
		for (uint32_t l = b->side[0].hi; l != NIL && i < n; l = b->lvl[l].prev)
			level_info(&b->lvl[l], &rows[i++]);
	else
		for (uint32_t l = b->side[1].lo; l != NIL && i < n; l = b->lvl[l].next)
			level_info(&b->lvl[l], &rows[i++]);
	return (int)i;
}

int rsx_book_order(const struct rsx_book *b, uint32_t user_id, const rsx_oid_t *oid,
		   struct rsx_book_order_info *out)
{
	uint32_t u = user_find(b, user_id);
	if (u == NIL)
		return 0;
	uint32_t i = order_find(b, u, oid);
	if (i == NIL)
		return 0;
	const struct bk_ord *o = &b->ord[i];
	memset(out, 0, sizeof *out);
	if (o->lvl == AMEND_LVL) {	/* being re-priced by a suspended amend */
		out->price = b->tk.limit;
		out->remaining = b->tk.rem;
		out->filled = b->tk.filled;
	} else {
		out->price = b->lvl[o->lvl].price;
		out->remaining = o->rem;
		out->filled = o->filled;
	}
	out->side = o->side;
	out->tif = o->tif;
	out->flags = o->flags;
	out->stp = o->stp;
	return 1;
}

int64_t rsx_book_position(const struct rsx_book *b, uint32_t user_id, uint32_t *norders)
{
	uint32_t u = user_find(b, user_id);
	if (norders)
		*norders = u == NIL ? 0 : b->usr[u].norders;
	return u == NIL ? 0 : b->usr[u].net;
}

int rsx_book_pending(const struct rsx_book *b)
{
	return b->tk.kind != PEND_NONE;
}

/* ---- the audit (specs/book.md §8) ---- */

#define FAIL(...) do { snprintf(msg, cap, __VA_ARGS__); return RSX_EINVALID; } while (0)

static int check_side(const struct rsx_book *b, int s, char *msg, size_t cap, uint64_t *orders)
{
	const struct bk_side *sd = &b->side[s];
	uint64_t nl = 0;
	uint32_t prev = NIL;
	int64_t last = 0;

	for (uint32_t l = sd->lo; l != NIL; l = b->lvl[l].next) {
		const struct bk_lvl *L = &b->lvl[l];
		if (++nl > b->lcap)
			FAIL("side %d: level list longer than the pool (cycle?)", s);
		if (l >= b->lbump)
			FAIL("side %d: level %u beyond the bump pointer", s, l);
		if (L->prev != prev)
			FAIL("side %d: level %u prev %u, expected %u", s, l, L->prev, prev);
		if (prev != NIL && L->price <= last)
			FAIL("side %d: levels not strictly ascending (%lld after %lld)", s,
			     (long long)L->price, (long long)last);
		if (L->count == 0 || L->head == NIL)
			FAIL("side %d: empty level %u at %lld", s, l, (long long)L->price);
		int64_t sum = 0;
		uint32_t n = 0, nro = 0, op = NIL;
		for (uint32_t o = L->head; o != NIL; o = b->ord[o].next) {
			const struct bk_ord *O = &b->ord[o];
			if (++n > L->count)
				FAIL("side %d: level %lld FIFO longer than its count %u", s,
				     (long long)L->price, L->count);
			if (O->lvl != l || O->prev != op || O->side != s)
				FAIL("side %d: order %u links broken (lvl %u prev %u side %u)", s, o,
				     O->lvl, O->prev, O->side);
			if (O->rem <= 0)
				FAIL("side %d: order %u has open qty %lld", s, o, (long long)O->rem);
			if (O->uix >= b->ubump || b->usr[O->uix].norders == 0)
				FAIL("side %d: order %u has a bad user slot %u", s, o, O->uix);
			if (order_find(b, O->uix, &O->oid) != o)
				FAIL("side %d: order %u not found through the index", s, o);
			nro += (O->flags & RSX_ORDER_REDUCE_ONLY) != 0;
			if (__builtin_add_overflow(sum, O->rem, &sum))
				sum = INT64_MAX;	/* saturated: the level total saturates too */
			op = o;
		}
		if (n != L->count || L->tail != op)
			FAIL("side %d: level %lld count %u / tail %u, found %u / %u", s,
			     (long long)L->price, L->count, L->tail, n, op);
		if (nro != L->nro)
			FAIL("side %d: level %lld counts %u reduce-only orders, holds %u", s,
			     (long long)L->price, L->nro, nro);
		if (sum != L->qty)
			FAIL("side %d: level %lld qty differs from the sum of its orders", s,
			     (long long)L->price);
		*orders += n;
		prev = l;
		last = L->price;
	}
	if (sd->hi != prev)
		FAIL("side %d: hi %u, last level %u", s, sd->hi, prev);
	if (nl != sd->nlevels)
		FAIL("side %d: %llu levels listed, nlevels %u", s, (unsigned long long)nl, sd->nlevels);
	return bk_check_index(b, s, msg, cap);
	return 0;
}

int rsx_book_check(const struct rsx_book *b, char *msg, size_t cap)
{
	uint64_t orders = 0;
	int rc;

	if (cap)
		msg[0] = 0;
	for (int s = 0; s < 2; s++)
		if ((rc = check_side(b, s, msg, cap, &orders)) < 0)
			return rc;
	if (b->side[0].nlevels + b->side[1].nlevels != b->nlevels)
		FAIL("nlevels %u != %u + %u", b->nlevels, b->side[0].nlevels, b->side[1].nlevels);
	/* an order being re-priced by a suspended amend is in no level */
	uint64_t between = b->tk.kind == PEND_SWEEP && b->tk.amend;
	if (orders + between != b->norders)
		FAIL("%llu orders in levels, norders %u", (unsigned long long)orders, b->norders);
	if (b->side[0].hi != NIL && b->side[1].lo != NIL &&
	    b->lvl[b->side[0].hi].price >= b->lvl[b->side[1].lo].price)
		FAIL("crossed book: bid %lld >= ask %lld", (long long)b->lvl[b->side[0].hi].price,
		     (long long)b->lvl[b->side[1].lo].price);
	/* slab accounting: allocated = free + active, no free-list cycle */
	uint64_t nfree = 0;
	for (uint32_t i = b->ofree; i != NIL; i = b->ord[i].next) {
		if (++nfree > b->ocap || i >= b->obump || b->ord[i].lvl != NIL)
			FAIL("order free list broken at %u", i);
	}
	if (nfree + b->norders != b->obump)
		FAIL("order slab: %llu free + %u active != %u allocated", (unsigned long long)nfree,
		     b->norders, b->obump);
	nfree = 0;
	for (uint32_t i = b->lfree; i != NIL; i = b->lvl[i].next)
		if (++nfree > b->lcap || i >= b->lbump)
			FAIL("level free list broken at %u", i);
	if (nfree + b->nlevels != b->lbump)
		FAIL("level pool: %llu free + %u active != %u allocated", (unsigned long long)nfree,
		     b->nlevels, b->lbump);
	/* the index holds exactly the resting orders */
	uint64_t indexed = 0;
	for (uint64_t k = 0; k < (1ull << (64 - b->oshift)); k++)
		for (uint32_t i = b->obkt[k]; i != NIL; i = b->ord[i].hnext) {
			if (++indexed > b->norders || b->ord[i].lvl == NIL)
				FAIL("order index holds a free slot %u or loops", i);
			if (ohash(b, b->usr[b->ord[i].uix].user_id, &b->ord[i].oid) != k)
				FAIL("order %u in the wrong bucket", i);
		}
	if (indexed != b->norders)
		FAIL("order index holds %llu, norders %u", (unsigned long long)indexed, b->norders);
	/* users: index, counts, lists */
	uint64_t users = 0, listed = 0;
	for (uint64_t k = 0; k <= utab_mask(b); k++) {
		uint64_t e = b->utab[k];
		uint32_t u = (uint32_t)e;
		if (u == NIL)
			continue;
		{
			const struct bk_usr *U = &b->usr[u];
			if (++users > b->ucap || u >= b->ubump)
				FAIL("user index holds a bad slot %u", u);
			if (U->user_id != (uint32_t)(e >> 32) || user_find(b, U->user_id) != u)
				FAIL("user %u not found through the index", U->user_id);
			if (U->norders == 0 && U->net == 0 && b->tk.kind == PEND_NONE)
				FAIL("user %u kept with no order and no position", U->user_id);
			uint32_t n = 0, p = NIL;
			for (uint32_t o = U->head; o != NIL; o = b->ord[o].unext) {
				if (++n > U->norders || b->ord[o].uix != u || b->ord[o].uprev != p ||
				    b->ord[o].lvl == NIL)
					FAIL("user %u order list broken at %u", U->user_id, o);
				p = o;
			}
			if (n != U->norders || U->tail != p)
				FAIL("user %u lists %u orders, norders %u", U->user_id, n, U->norders);
			listed += n;
		}
	}
	if (users != b->nusers)
		FAIL("user index holds %llu, nusers %u", (unsigned long long)users, b->nusers);
	uint64_t direct = 0;
	for (uint32_t id = 0; id < b->udir_n; id++) {
		uint32_t u = b->udir[id];
		if (u == NIL)
			continue;
		if (u >= b->ubump || b->usr[u].user_id != id || b->usr[u].free_next != NIL)
			FAIL("direct user entry %u -> slot %u is not that user", id, u);
		direct++;
	}
	uint64_t small = 0;
	for (uint64_t k = 0; k <= utab_mask(b); k++)
		small += (uint32_t)b->utab[k] != NIL && (uint32_t)(b->utab[k] >> 32) < b->udir_n;
	if (direct != small)
		FAIL("%llu direct user entries, %llu users with small ids", (unsigned long long)direct,
		     (unsigned long long)small);
	if (listed != b->norders)
		FAIL("user lists hold %llu orders, norders %u", (unsigned long long)listed,
		     b->norders);
	nfree = 0;
	for (uint32_t u = b->ufree; u != NIL; u = b->usr[u].free_next)
		if (++nfree > b->ucap || u >= b->ubump)
			FAIL("user free list broken at %u", u);
	if (nfree + b->nusers != b->ubump)
		FAIL("user table: %llu free + %u active != %u allocated", (unsigned long long)nfree,
		     b->nusers, b->ubump);
	return 0;
}
