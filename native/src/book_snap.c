/*
 * book_snap.c - snapshot and restore (specs/book.md §7). A snapshot holds
 * every resting order in book order (so FIFOs rebuild by appending), every
 * user's position and the order of their order list (so cancel-all emits in
 * the same order after a restore), the map centre, the counters, the config
 * and the WAL seq it covers, under a CRC32C.
 */
#include <errno.h>
#include <stddef.h>

#include "book_int.h"
#include "rsx/crc32c.h"

#define USER_REC 16
#define ORDER_REC 48
#define ULIST_REC 16

struct snap_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t wal_seq;
	uint64_t total_len;
	uint64_t n_users;
	uint64_t n_orders;
	uint64_t capacity;
	uint64_t level_capacity;
	uint32_t max_users;
	uint32_t stream_id;
	uint64_t zone0_ticks;
	int64_t center;
	uint64_t ops;
	uint64_t _reserved0;	/* 0 (version 1 books wrote a recentre op count here; ignored) */
	uint64_t recentres;
	uint64_t fills;
	uint64_t _reserved;
	struct rsx_config config;	/* offset 128 */
};
_Static_assert(offsetof(struct snap_header, config) == 128, "config at 128");
_Static_assert(sizeof(struct snap_header) == RSX_BOOK_SNAP_HEADER, "header is 256 bytes");

static size_t snap_size(uint64_t users, uint64_t orders)
{
	return RSX_BOOK_SNAP_HEADER + users * USER_REC + orders * (ORDER_REC + ULIST_REC) + 8;
}

size_t rsx_book_snapshot_size(const struct rsx_book *b)
{
	return snap_size(b->nusers, b->norders);
}

/* Heapsort the 16-byte user records (user_id first) in place: no scratch memory. */
static uint32_t rec_id(const uint8_t *base, size_t i)
{
	uint32_t id;
	memcpy(&id, base + i * USER_REC, 4);
	return id;
}

static void rec_swap(uint8_t *base, size_t i, size_t j)
{
	uint8_t t[USER_REC];
	memcpy(t, base + i * USER_REC, USER_REC);
	memcpy(base + i * USER_REC, base + j * USER_REC, USER_REC);
	memcpy(base + j * USER_REC, t, USER_REC);
}

static void sift(uint8_t *base, size_t i, size_t n)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && rec_id(base, c + 1) > rec_id(base, c))
			c++;
		if (rec_id(base, i) >= rec_id(base, c))
			return;
		rec_swap(base, i, c);
		i = c;
	}
}

static void sort_users(uint8_t *base, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(base, i, n);
	for (size_t end = n; end-- > 1;) {
		rec_swap(base, 0, end);
		sift(base, 0, end);
	}
}

static uint8_t *put(uint8_t *p, const void *v, size_t n)
{
	memcpy(p, v, n);
	return p + n;
}

int64_t rsx_book_snapshot(const struct rsx_book *b, uint64_t wal_seq, void *buf, size_t cap)
{
	if (!b || (!buf && cap))
		return RSX_EINVALID;
	if (b->tk.kind != PEND_NONE)
		return -EBUSY;
	size_t size = rsx_book_snapshot_size(b);
	if (cap < size)
		return RSX_ESHORT;
	uint8_t *out = buf;
	memset(out, 0, size);

	struct snap_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, RSX_BOOK_SNAP_MAGIC, 8);
	h.version = RSX_BOOK_SNAP_VERSION;
	h.header_size = RSX_BOOK_SNAP_HEADER;
	h.wal_seq = wal_seq;
	h.total_len = size;
	h.n_users = b->nusers;
	h.n_orders = b->norders;
	h.capacity = b->ocap;
	h.level_capacity = b->lcap;
	h.max_users = b->ucap;
	h.stream_id = b->params.stream_id;
	h.zone0_ticks = b->W;
	h.center = bk_centre(b);
	h.ops = b->ops;
	h.recentres = b->recentres;
	h.fills = b->fills;
	rsx_symbol_config_to_record(&h.config, &b->cfg);
	uint8_t *p = put(out, &h, sizeof h);

	/* users, sorted by user id so the snapshot does not depend on the index layout */
	uint8_t *users = p;
	for (uint64_t k = 0; k <= utab_mask(b); k++) {
		uint32_t u = (uint32_t)b->utab[k];
		if (u == NIL)
			continue;
		const struct bk_usr *U = &b->usr[u];
		p = put(p, &U->user_id, 4);
		p = put(p, &U->norders, 4);
		p = put(p, &U->net, 8);
	}
	sort_users(users, b->nusers);
	/* orders: bids then asks, ascending price, FIFO within a price */
	for (int s = 0; s < 2; s++)
		for (uint32_t l = b->side[s].lo; l != NIL; l = b->lvl[l].next)
			for (uint32_t o = b->lvl[l].head; o != NIL; o = b->ord[o].next) {
				const struct bk_ord *O = &b->ord[o];
				uint8_t tail[4] = { O->side, O->tif, O->flags, O->stp };
				p = put(p, O->oid.b, 16);
				p = put(p, &b->lvl[l].price, 8);
				p = put(p, &O->rem, 8);
				p = put(p, &O->filled, 8);
				p = put(p, &b->usr[O->uix].user_id, 4);
				p = put(p, tail, 4);
			}
	for (uint32_t i = 0; i < b->nusers; i++) {
		uint32_t user_id;
		memcpy(&user_id, users + (size_t)i * USER_REC, 4);
		for (uint32_t o = b->usr[user_find(b, user_id)].head; o != NIL; o = b->ord[o].unext)
			p = put(p, b->ord[o].oid.b, 16);
	}
	uint32_t crc = rsx_crc32c(0, out, (size_t)(p - out));
	p = put(p, &crc, 4);
	return (int64_t)size;
}

/* Check framing and CRC; fill *h. */
static int snap_open(const void *buf, size_t len, struct snap_header *h)
{
	if (!buf || len < RSX_BOOK_SNAP_HEADER + 8)
		return RSX_ESHORT;
	memcpy(h, buf, sizeof *h);
	if (memcmp(h->magic, RSX_BOOK_SNAP_MAGIC, 8) != 0 || h->version != RSX_BOOK_SNAP_VERSION ||
	    h->header_size != RSX_BOOK_SNAP_HEADER)
		return RSX_EVERSION;
	if (h->total_len > len)
		return RSX_ESHORT;
	if (h->total_len != len)
		return RSX_ELENGTH;
	uint32_t crc;
	memcpy(&crc, (const uint8_t *)buf + len - 8, 4);
	if (rsx_crc32c(0, buf, len - 8) != crc)
		return RSX_ECRC;
	if (h->n_users > (1ull << 32) || h->n_orders > (1ull << 32) ||
	    snap_size(h->n_users, h->n_orders) != len)
		return RSX_ELENGTH;
	return 0;
}

int rsx_book_snapshot_params(const void *buf, size_t len, struct rsx_book_params *params,
			     struct rsx_symbol_config *cfg, uint64_t *wal_seq)
{
	struct snap_header h;
	int rc = snap_open(buf, len, &h);
	if (rc)
		return rc;
	memset(params, 0, sizeof *params);
	params->capacity = h.capacity;
	params->level_capacity = h.level_capacity;
	params->max_users = h.max_users;
	params->stream_id = h.stream_id;
	params->ref_price.raw = h.center;
	params->zone0_ticks = h.zone0_ticks;
	rsx_symbol_config_from_record(cfg, &h.config);
	if (wal_seq)
		*wal_seq = h.wal_seq;
	return 0;
}

static int restore_body(struct rsx_book *b, const uint8_t *buf, const struct snap_header *h)
{
	const uint8_t *p = buf + RSX_BOOK_SNAP_HEADER;
	uint32_t last_user = 0;
	if (h->n_users > b->ucap || h->n_orders > b->ocap || h->center <= 0)
		return RSX_EINVALID;

	for (uint64_t i = 0; i < h->n_users; i++, p += USER_REC) {
		uint32_t user_id, norders;
		int64_t net;
		memcpy(&user_id, p, 4);
		memcpy(&norders, p + 4, 4);
		memcpy(&net, p + 8, 8);
		if ((i > 0 && user_id <= last_user) || (norders == 0 && net == 0))
			return RSX_EINVALID;	/* users are sorted, unique, and each has state */
		last_user = user_id;
		uint32_t u = bk_user_get(b, user_id);
		if (u == NIL)
			return RSX_EINVALID;
		b->usr[u].net = net;
	}
	int last_side = 0;
	int64_t last_px = 0;
	for (uint64_t i = 0; i < h->n_orders; i++, p += ORDER_REC) {
		rsx_oid_t oid;
		int64_t price, rem, filled;
		uint32_t user_id, slot;
		memcpy(oid.b, p, 16);
		memcpy(&price, p + 16, 8);
		memcpy(&rem, p + 24, 8);
		memcpy(&filled, p + 32, 8);
		memcpy(&user_id, p + 40, 4);
		unsigned side = p[44], tif = p[45], flags = p[46], stp = p[47];
		if (side > RSX_SIDE_SELL || tif != RSX_TIF_GTC || (flags & ~RSX_ORDER_FLAGS_ALL) ||
		    stp > RSX_STP_NONE || price <= 0 || rem <= 0 || filled < 0)
			return RSX_EINVALID;
		if ((int)side < last_side || ((int)side == last_side && i > 0 && price < last_px))
			return RSX_EINVALID;	/* not in book order */
		last_side = (int)side;
		last_px = price;
		uint32_t u = user_find(b, user_id);
		if (u == NIL)
			return RSX_EINVALID;
		if (bk_restore_order(b, u, &oid, side, tif, flags, stp, price, rem, filled, &slot))
			return RSX_EINVALID;
		b->ord[slot].unext = b->ord[slot].uprev = AMEND_LVL;	/* not yet in a user list */
	}
	if (b->side[0].hi != NIL && b->side[1].lo != NIL &&
	    b->lvl[b->side[0].hi].price >= b->lvl[b->side[1].lo].price)
		return RSX_EINVALID;	/* crossed */
	const uint8_t *users = buf + RSX_BOOK_SNAP_HEADER;
	for (uint64_t i = 0; i < h->n_users; i++) {
		uint32_t user_id, norders;
		memcpy(&user_id, users + i * USER_REC, 4);
		memcpy(&norders, users + i * USER_REC + 4, 4);
		uint32_t u = user_find(b, user_id);
		for (uint32_t j = 0; j < norders; j++, p += ULIST_REC) {
			if (p + ULIST_REC > buf + h->total_len - 8)
				return RSX_EINVALID;
			rsx_oid_t oid;
			memcpy(oid.b, p, 16);
			uint32_t o = order_find(b, u, &oid);
			if (o == NIL || b->ord[o].uprev != AMEND_LVL)
				return RSX_EINVALID;
			bk_user_append(b, u, o);
		}
	}
	if (p != buf + h->total_len - 8)
		return RSX_EINVALID;	/* user counts do not cover the orders exactly */
	for (uint32_t u = 0; u < b->ubump; u++)
		if (b->usr[u].norders != 0 && b->usr[u].head == NIL)
			return RSX_EINVALID;
	b->ops = h->ops;
	b->recentres = h->recentres;
	b->fills = h->fills;
	return 0;
}

int rsx_book_restore(struct rsx_book *b, const void *buf, size_t len, uint64_t *wal_seq)
{
	struct snap_header h;
	struct rsx_symbol_config cfg, old_cfg;
	if (!b)
		return RSX_EINVALID;
	if (b->tk.kind != PEND_NONE)
		return -EBUSY;
	if (b->norders || b->nusers || b->nlevels)
		return RSX_EINVALID;
	int rc = snap_open(buf, len, &h);
	if (rc)
		return rc;
	rsx_symbol_config_from_record(&cfg, &h.config);
	if (rsx_symbol_config_check(&cfg) != 0)
		return RSX_EINVALID;
	old_cfg = b->cfg;
	int64_t old_center = bk_centre(b);
	/* empty book: a config change moves nothing */
	if (rsx_book_set_config(b, &cfg) != 0)
		return RSX_EINVALID;
	if (h.center <= 0)
		return RSX_EINVALID;
	bk_window_reset(b, bk_tick(b, h.center));
	rc = restore_body(b, buf, &h);
	if (rc) {
		bk_reset(b);
		rsx_book_set_config(b, &old_cfg);
		bk_window_reset(b, bk_tick(b, old_center));
		return rc;
	}
	bk_restore_bbo(b);
	if (wal_seq)
		*wal_seq = h.wal_seq;
	return 0;
}
