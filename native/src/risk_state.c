/*
 * risk_state.c - the shard's tables: user hash, positions, the order table,
 * money moves between accounts and ledgers, and the audit.
 */
#include <stdlib.h>

#include "risk_internal.h"

static int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int rsx_risk_init(struct rsx_risk *r)
{
	if (!r || !r->accounts || !r->user_hash || !r->positions || !r->orders || !r->order_hash ||
	    !r->symbols || !r->vshard_owner || !r->events || !r->liq_list || !r->dirty_list)
		return RSX_EINVALID;
	if (!is_pow2((uint64_t)r->user_hash_mask + 1) || (uint64_t)r->user_hash_mask + 1 < 2ull * r->max_users)
		return RSX_EINVALID;
	if (!is_pow2((uint64_t)r->order_mask + 1) || (uint64_t)r->max_orders * 2 > (uint64_t)r->order_mask + 1)
		return RSX_EINVALID;
	if (r->max_users == 0 || r->max_positions == 0 || r->max_symbols == 0 || r->events_cap < 8)
		return RSX_EINVALID;
	if (r->max_users > INT32_MAX / 2 || r->max_positions > INT32_MAX / 2)
		return RSX_EINVALID;
	if (r->n_users > r->max_users || r->n_positions > r->max_positions || r->n_orders > r->max_orders ||
	    r->order_hwm > r->max_orders || r->max_orders > INT32_MAX / 2)
		return RSX_EINVALID;
	if (r->collateral_decimals > RSX_DECIMALS_MAX)
		return RSX_EINVALID;
	if (r->default_max_position <= 0 || r->default_max_position > RSX_RISK_MAX_POSITION_CAP)
		return RSX_EINVALID;
	return 0;
}

void rsx_risk_orders_clear(struct rsx_risk *r)
{
	memset(r->order_hash, 0xff, ((size_t)r->order_mask + 1) * sizeof(int32_t));
	memset(r->orders, 0, (size_t)r->order_hwm * sizeof(struct rsx_risk_order));
	r->order_hwm = 0;
	r->order_free = -1;
	r->n_orders = 0;
}

/* MurmurHash3's 32-bit finaliser: a fixed, well-mixed user -> vshard map. */
static uint32_t fmix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

uint32_t rsx_risk_vshard(uint32_t user_id)
{
	return fmix32(user_id) & (RSX_RISK_VSHARDS - 1);
}

int rsx_risk_owns(const struct rsx_risk *r, uint32_t user_id)
{
	return r->vshard_owner[rsx_risk_vshard(user_id)] == r->shard_id;
}

/*
 * The user hash must not reuse the vshard bits: a shard that owns a subset of
 * vshards would see its users cluster in the table. A different seed decorrelates.
 */
static uint32_t user_slot_hash(uint32_t user_id)
{
	return fmix32(user_id ^ 0x9e3779b9u);
}

int32_t rsx_risk_find_account(const struct rsx_risk *r, uint32_t user_id)
{
	uint32_t i = user_slot_hash(user_id) & r->user_hash_mask;
	for (;;) {
		int32_t slot = r->user_hash[i];
		if (slot < 0)
			return -1;
		if (r->accounts[slot].user_id == user_id)
			return slot;
		i = (i + 1) & r->user_hash_mask;
	}
}

static void user_hash_put(struct rsx_risk *r, uint32_t user_id, int32_t slot)
{
	uint32_t i = user_slot_hash(user_id) & r->user_hash_mask;
	while (r->user_hash[i] >= 0)
		i = (i + 1) & r->user_hash_mask;
	r->user_hash[i] = slot;
}

int32_t rsx_risk_open_account(struct rsx_risk *r, uint32_t user_id)
{
	int32_t slot = rsx_risk_find_account(r, user_id);
	if (slot >= 0)
		return slot;
	if (r->n_users >= r->max_users)
		return RSX_EINVALID;
	slot = (int32_t)r->n_users++;
	struct rsx_risk_account *a = &r->accounts[slot];
	memset(a, 0, sizeof(*a));
	a->user_id = user_id;
	a->pos_head = -1;
	a->liq_slot = -1;
	user_hash_put(r, user_id, slot);
	return slot;
}

int rsx_risk_rebuild_users(struct rsx_risk *r)
{
	if (r->n_users > r->max_users)
		return RSX_EINVALID;
	memset(r->user_hash, 0xff, ((size_t)r->user_hash_mask + 1) * sizeof(int32_t));
	r->n_liq = 0;
	r->n_dirty = 0;
	for (uint32_t i = 0; i < r->n_users; i++) {
		struct rsx_risk_account *a = &r->accounts[i];
		if (rsx_risk_find_account(r, a->user_id) >= 0)
			return RSX_EINVALID;	/* a user twice */
		user_hash_put(r, a->user_id, (int32_t)i);
		a->flags &= ~(uint32_t)RSX_RISK_ACCT_DIRTY;
		a->liq_slot = -1;
		if (a->flags & RSX_RISK_ACCT_LIQ) {
			a->liq_slot = (int32_t)r->n_liq;
			r->liq_list[r->n_liq++] = (int32_t)i;
		}
	}
	for (uint32_t p = 0; p < r->n_positions; p++)
		r->positions[p].flags &= ~(uint32_t)RSX_RISK_POS_DIRTY;
	return 0;
}

void risk_dirty(struct rsx_risk *r, int32_t acct, int32_t pos)
{
	if (r->replay)
		return;
	struct rsx_risk_account *a = &r->accounts[acct];
	if (!(a->flags & RSX_RISK_ACCT_DIRTY)) {
		a->flags |= RSX_RISK_ACCT_DIRTY;
		r->dirty_list[r->n_dirty++] = acct;	/* at most max_users: one entry per flagged account */
	}
	if (pos >= 0)
		r->positions[pos].flags |= RSX_RISK_POS_DIRTY;
}

void risk_liq_enter(struct rsx_risk *r, int32_t acct)
{
	struct rsx_risk_account *a = &r->accounts[acct];
	if (a->flags & RSX_RISK_ACCT_LIQ)
		return;
	a->flags |= RSX_RISK_ACCT_LIQ;
	a->liq_slot = (int32_t)r->n_liq;
	r->liq_list[r->n_liq++] = acct;
}

void risk_liq_leave(struct rsx_risk *r, int32_t acct)
{
	struct rsx_risk_account *a = &r->accounts[acct];
	if (!(a->flags & RSX_RISK_ACCT_LIQ))
		return;
	a->flags &= ~(uint32_t)RSX_RISK_ACCT_LIQ;
	uint32_t i = (uint32_t)a->liq_slot, last = --r->n_liq;
	if (i != last) {
		int32_t moved = r->liq_list[last];
		r->liq_list[i] = moved;
		r->accounts[moved].liq_slot = (int32_t)i;
	}
	a->liq_slot = -1;
}

int32_t rsx_risk_find_position(const struct rsx_risk *r, int32_t acct, uint32_t symbol_id)
{
	if (acct < 0 || (uint32_t)acct >= r->n_users)
		return -1;
	for (int32_t p = r->accounts[acct].pos_head; p >= 0; p = r->positions[p].next)
		if (r->positions[p].symbol_id == symbol_id)
			return p;
	return -1;
}

int32_t risk_position_create(struct rsx_risk *r, int32_t acct, uint32_t symbol_id)
{
	if (r->n_positions >= r->max_positions)
		return -1;
	int32_t p = (int32_t)r->n_positions++;
	struct rsx_risk_position *pos = &r->positions[p];
	memset(pos, 0, sizeof(*pos));
	pos->acct = acct;
	pos->symbol_id = symbol_id;
	pos->order_head = -1;
	pos->next = r->accounts[acct].pos_head;
	r->accounts[acct].pos_head = p;
	return p;
}

/*
 * ---- orders: a slab of stable slots, an open-addressing hash id -> slot
 * (linear probing, backward-shift deletion, no tombstones), and per position
 * a doubly linked list of its orders (queries list a user's orders without a
 * table scan).
 */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint32_t oid_hash(const rsx_oid_t *oid, uint32_t mask)
{
	uint64_t a, b;
	memcpy(&a, oid->b, 8);
	memcpy(&b, oid->b + 8, 8);
	return (uint32_t)mix64(a ^ (b * 0x9e3779b97f4a7c15ull)) & mask;
}

/* The hash index holding oid, or the empty index where it would go (*found = 0). */
static uint32_t hash_probe(const struct rsx_risk *r, const rsx_oid_t *oid, int *found)
{
	uint32_t i = oid_hash(oid, r->order_mask);
	for (;;) {
		int32_t slot = r->order_hash[i];
		if (slot < 0) {
			*found = 0;
			return i;
		}
		if (memcmp(r->orders[slot].oid.b, oid->b, 16) == 0) {
			*found = 1;
			return i;
		}
		i = (i + 1) & r->order_mask;
	}
}

int32_t risk_order_find(const struct rsx_risk *r, const rsx_oid_t *oid)
{
	int found;
	uint32_t i = hash_probe(r, oid, &found);
	return found ? r->order_hash[i] : -1;
}

int32_t risk_order_insert(struct rsx_risk *r, const rsx_oid_t *oid, int32_t pos)
{
	int found;
	if (r->n_orders >= r->max_orders)
		return -1;
	uint32_t h = hash_probe(r, oid, &found);
	if (found)
		return -1;
	int32_t slot;
	if (r->order_free >= 0) {
		slot = r->order_free;
		r->order_free = r->orders[slot].next;
	} else if (r->order_hwm < r->max_orders) {
		slot = (int32_t)r->order_hwm++;
	} else {
		return -1;
	}
	struct rsx_risk_order *o = &r->orders[slot];
	memset(o, 0, sizeof(*o));
	o->oid = *oid;
	o->state = RSX_RISK_ORD_PENDING;
	o->pos = pos;
	o->origin = RSX_RISK_NO_ORIGIN;
	o->prev = -1;
	o->next = r->positions[pos].order_head;
	if (o->next >= 0)
		r->orders[o->next].prev = slot;
	r->positions[pos].order_head = slot;
	r->order_hash[h] = slot;
	r->n_orders++;
	return slot;
}

static void hash_delete(struct rsx_risk *r, uint32_t i)
{
	/* Backward shift: pull later entries of the probe run into the hole. */
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & r->order_mask;
		int32_t slot = r->order_hash[j];
		if (slot < 0)
			break;
		uint32_t home = oid_hash(&r->orders[slot].oid, r->order_mask);
		/* Move j into i unless its home lies cyclically in (i, j]. */
		int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (in_range)
			continue;
		r->order_hash[i] = slot;
		i = j;
	}
	r->order_hash[i] = -1;
}

void risk_frozen_add(struct rsx_risk *r, int32_t acct, int64_t delta)
{
	struct rsx_risk_account *a = &r->accounts[acct];
	if (__builtin_add_overflow(a->frozen, delta, &a->frozen)) {
		a->frozen = delta > 0 ? I64_MAX : I64_MIN;
		r->saturations++;
	}
}

void risk_order_remove(struct rsx_risk *r, int32_t slot)
{
	struct rsx_risk_order *o = &r->orders[slot];
	int found;
	uint32_t h = hash_probe(r, &o->oid, &found);
	if (found)
		hash_delete(r, h);
	if (o->acct >= 0 && (uint32_t)o->acct < r->n_users) {
		struct rsx_risk_account *a = &r->accounts[o->acct];
		risk_frozen_add(r, o->acct, -o->need);
		a->n_orders--;
		if ((o->flags & RSX_RISK_ORD_LIQ) && a->liq_inflight > 0)
			a->liq_inflight--;	/* a liquidation order ended: the next round may come */
	}
	if (o->pos >= 0 && (uint32_t)o->pos < r->n_positions) {
		struct rsx_risk_position *p = &r->positions[o->pos];
		p->open_qty -= o->remaining;
		p->n_orders--;
		if (o->prev >= 0)
			r->orders[o->prev].next = o->next;
		else
			p->order_head = o->next;
		if (o->next >= 0)
			r->orders[o->next].prev = o->prev;
	}
	memset(o, 0, sizeof(*o));
	o->next = r->order_free;
	r->order_free = slot;
	r->n_orders--;
}

int rsx_risk_get_order(const struct rsx_risk *r, const rsx_oid_t *oid, struct rsx_risk_order *out)
{
	int32_t slot = risk_order_find(r, oid);
	if (slot < 0)
		return -1;
	*out = r->orders[slot];
	return 0;
}

int rsx_risk_load_orders(struct rsx_risk *r, const struct rsx_risk_order *orders, uint32_t n)
{
	rsx_risk_orders_clear(r);
	for (uint32_t p = 0; p < r->n_positions; p++)
		r->positions[p].order_head = -1;
	for (uint32_t k = 0; k < n; k++) {
		const struct rsx_risk_order *src = &orders[k];
		if (src->state == RSX_RISK_ORD_EMPTY || src->acct < 0 || (uint32_t)src->acct >= r->n_users ||
		    src->pos < 0 || (uint32_t)src->pos >= r->n_positions ||
		    r->positions[src->pos].acct != src->acct)
			return RSX_EINVALID;
		int32_t slot = risk_order_insert(r, &src->oid, src->pos);
		if (slot < 0)
			return RSX_EINVALID;
		struct rsx_risk_order *o = &r->orders[slot];
		int32_t prev = o->prev, next = o->next;
		*o = *src;
		o->prev = prev;
		o->next = next;
	}
	return 0;
}

int rsx_risk_dump_orders(const struct rsx_risk *r, struct rsx_risk_order *out, uint32_t cap)
{
	if (cap < r->n_orders)
		return RSX_EINVALID;
	uint32_t k = 0;
	for (uint32_t i = 0; i < r->order_hwm; i++)
		if (r->orders[i].state != RSX_RISK_ORD_EMPTY)
			out[k++] = r->orders[i];
	return (int)k;
}

/* ---- money moves ---- */

static int64_t *endpoint(struct rsx_risk *r, int32_t e)
{
	if (e >= 0)
		return (uint32_t)e < r->n_users ? &r->accounts[e].collateral : NULL;
	switch (e) {
	case RSX_RISK_FUND: return &r->insurance_fund;
	case RSX_RISK_CLEARING: return &r->funding_clearing;
	case RSX_RISK_REVENUE: return &r->fee_revenue;
	default: return NULL;
	}
}

int rsx_risk_move(struct rsx_risk *r, int32_t from, int32_t to, int64_t amount)
{
	if (amount <= 0 || from == to)
		return RSX_EINVALID;
	int64_t *src = from == RSX_RISK_EXTERNAL ? NULL : endpoint(r, from);
	int64_t *dst = to == RSX_RISK_EXTERNAL ? NULL : endpoint(r, to);
	if ((from != RSX_RISK_EXTERNAL && !src) || (to != RSX_RISK_EXTERNAL && !dst))
		return RSX_EINVALID;
	int64_t ns = 0, nd = 0;
	if (src && __builtin_sub_overflow(*src, amount, &ns))
		return RSX_EOVERFLOW;
	if (dst && __builtin_add_overflow(*dst, amount, &nd))
		return RSX_EOVERFLOW;
	if (src) {
		*src = ns;
		if (from >= 0) {
			r->accounts[from].version++;
			risk_dirty(r, from, -1);
		}
	}
	if (dst) {
		*dst = nd;
		if (to >= 0) {
			r->accounts[to].version++;
			risk_dirty(r, to, -1);
		}
	}
	return 0;
}

/* ---- audit ---- */

static int64_t audit_orders(const struct rsx_risk *r, int64_t *frozen, int32_t *norders, int64_t *open,
			    int32_t *pnorders, int32_t *inflight)
{
	int64_t bad = 0;
	uint32_t live = 0;
	for (uint32_t i = 0; i < r->order_hwm; i++) {
		const struct rsx_risk_order *o = &r->orders[i];
		if (o->state == RSX_RISK_ORD_EMPTY)
			continue;
		live++;
		if (risk_order_find(r, &o->oid) != (int32_t)i)
			bad++;	/* unreachable through the hash */
		if (o->acct < 0 || (uint32_t)o->acct >= r->n_users || o->pos < 0 ||
		    (uint32_t)o->pos >= r->n_positions || r->positions[o->pos].acct != o->acct) {
			bad++;
			continue;
		}
		frozen[o->acct] += o->need;
		norders[o->acct]++;
		inflight[o->acct] += (o->flags & RSX_RISK_ORD_LIQ) != 0;
		open[o->pos] += o->remaining;
		pnorders[o->pos]++;
		const struct rsx_risk_symbol *s = risk_sym(r, o->symbol_id);
		if (s && o->state == RSX_RISK_ORD_ACKED && !(o->flags & RSX_RISK_ORD_LIQ) &&
		    o->need != risk_need(r, s, o->price, o->remaining))
			bad++;
	}
	if (live != r->n_orders)
		bad++;
	/* every position's list holds exactly its orders */
	uint32_t linked = 0;
	for (uint32_t p = 0; p < r->n_positions; p++) {
		int32_t prev = -1;
		for (int32_t k = r->positions[p].order_head; k >= 0; k = r->orders[k].next) {
			if ((uint32_t)k >= r->order_hwm || r->orders[k].pos != (int32_t)p || r->orders[k].prev != prev ||
			    ++linked > r->n_orders)
				return bad + 1;
			prev = k;
		}
	}
	if (linked != r->n_orders)
		bad++;
	return bad;
}

int64_t rsx_risk_audit(const struct rsx_risk *r)
{
	int64_t bad = 0;
	size_t nu = r->n_users ? r->n_users : 1, np = r->n_positions ? r->n_positions : 1;
	int64_t *frozen = calloc(nu, sizeof(int64_t));
	int32_t *norders = calloc(nu, sizeof(int32_t));
	int32_t *inflight = calloc(nu, sizeof(int32_t));
	int64_t *open = calloc(np, sizeof(int64_t));
	int32_t *pnorders = calloc(np, sizeof(int32_t));
	if (!frozen || !norders || !inflight || !open || !pnorders) {
		free(frozen), free(norders), free(inflight), free(open), free(pnorders);
		return -1;
	}
	bad += audit_orders(r, frozen, norders, open, pnorders, inflight);
	__int128 reserved = 0;
	uint32_t in_liq = 0;
	for (uint32_t u = 0; u < r->n_users; u++) {
		const struct rsx_risk_account *a = &r->accounts[u];
		__int128 vs = 0, cs = 0, is = 0, ms = 0;
		for (int32_t p = a->pos_head; p >= 0; p = r->positions[p].next) {
			const struct rsx_risk_position *pos = &r->positions[p];
			const struct rsx_risk_symbol *s = risk_sym(r, pos->symbol_id);
			int64_t v, im, mm;
			if (pos->acct != (int32_t)u || !s) {
				bad++;
				continue;
			}
			risk_pos_eval(s, pos->net, pos->cost, &v, &im, &mm);
			if (v != pos->value || im != pos->im || mm != pos->mm)
				bad++;
			if (pos->open_qty != open[p] || pos->n_orders != pnorders[p])
				bad++;
			if ((pos->net == 0) != (pos->cost == 0) && pos->net == 0)
				bad++;	/* a flat position keeps no entry value */
			vs += pos->value, cs += pos->cost, is += pos->im, ms += pos->mm;
		}
		if (vs != a->value_sum || cs != a->cost_sum || is != a->im_sum || ms != a->mm_sum)
			bad++;
		if (a->frozen != frozen[u] || a->n_orders != norders[u] || a->liq_inflight != inflight[u])
			bad++;
		if (rsx_risk_find_account(r, a->user_id) != (int32_t)u)
			bad++;
		reserved += a->liq_reserved;
		if (a->flags & RSX_RISK_ACCT_LIQ) {
			in_liq++;
			if (a->liq_slot < 0 || (uint32_t)a->liq_slot >= r->n_liq || r->liq_list[a->liq_slot] != (int32_t)u)
				bad++;
		} else if (a->liq_slot != -1 || a->liq_reserved != 0 || a->liq_inflight != 0) {
			bad++;
		}
	}
	if (in_liq != r->n_liq || reserved != r->insurance_reserved)
		bad++;
	free(frozen), free(norders), free(inflight), free(open), free(pnorders);
	return bad;
}

int64_t rsx_risk_bad_debt(const struct rsx_risk *r)
{
	__int128 sum = 0;
	for (uint32_t u = 0; u < r->n_users; u++) {
		const struct rsx_risk_account *a = &r->accounts[u];
		if (a->collateral >= 0 || a->mm_sum != 0 || a->value_sum != 0 || a->cost_sum != 0)
			continue;
		int open_pos = 0;
		for (int32_t p = a->pos_head; p >= 0 && !open_pos; p = r->positions[p].next)
			open_pos = r->positions[p].net != 0;
		if (!open_pos)
			sum -= a->collateral;
	}
	return sat64(sum);
}
