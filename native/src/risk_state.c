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
	if (!r || !r->accounts || !r->user_hash || !r->positions || !r->orders || !r->symbols ||
	    !r->vshard_owner || !r->events)
		return RSX_EINVALID;
	if (!is_pow2((uint64_t)r->user_hash_mask + 1) || (uint64_t)r->user_hash_mask + 1 < 2ull * r->max_users)
		return RSX_EINVALID;
	if (!is_pow2((uint64_t)r->order_mask + 1) || (uint64_t)r->max_orders * 2 > (uint64_t)r->order_mask + 1)
		return RSX_EINVALID;
	if (r->max_users == 0 || r->max_positions == 0 || r->max_symbols == 0 || r->events_cap < 8)
		return RSX_EINVALID;
	if (r->max_users > INT32_MAX / 2 || r->max_positions > INT32_MAX / 2)
		return RSX_EINVALID;
	if (r->n_users > r->max_users || r->n_positions > r->max_positions || r->n_orders > r->max_orders)
		return RSX_EINVALID;
	if (r->collateral_decimals > RSX_DECIMALS_MAX)
		return RSX_EINVALID;
	if (r->default_max_position <= 0 || r->default_max_position > RSX_RISK_MAX_POSITION_CAP)
		return RSX_EINVALID;
	return 0;
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
	user_hash_put(r, user_id, slot);
	return slot;
}

int rsx_risk_rebuild_users(struct rsx_risk *r)
{
	if (r->n_users > r->max_users)
		return RSX_EINVALID;
	memset(r->user_hash, 0xff, ((size_t)r->user_hash_mask + 1) * sizeof(int32_t));
	for (uint32_t i = 0; i < r->n_users; i++) {
		if (rsx_risk_find_account(r, r->accounts[i].user_id) >= 0)
			return RSX_EINVALID;	/* a user twice */
		user_hash_put(r, r->accounts[i].user_id, (int32_t)i);
	}
	return 0;
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
	pos->next = r->accounts[acct].pos_head;
	r->accounts[acct].pos_head = p;
	return p;
}

/* ---- the order table: linear probing, backward-shift deletion (no tombstones) ---- */

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

int32_t risk_order_find(const struct rsx_risk *r, const rsx_oid_t *oid)
{
	uint32_t i = oid_hash(oid, r->order_mask);
	for (;;) {
		const struct rsx_risk_order *o = &r->orders[i];
		if (o->state == RSX_RISK_ORD_EMPTY)
			return -1;
		if (memcmp(o->oid.b, oid->b, 16) == 0)
			return (int32_t)i;
		i = (i + 1) & r->order_mask;
	}
}

int32_t risk_order_insert(struct rsx_risk *r, const rsx_oid_t *oid)
{
	if (r->n_orders >= r->max_orders)
		return -1;
	uint32_t i = oid_hash(oid, r->order_mask);
	while (r->orders[i].state != RSX_RISK_ORD_EMPTY) {
		if (memcmp(r->orders[i].oid.b, oid->b, 16) == 0)
			return -1;
		i = (i + 1) & r->order_mask;
	}
	struct rsx_risk_order *o = &r->orders[i];
	memset(o, 0, sizeof(*o));
	o->oid = *oid;
	o->state = RSX_RISK_ORD_PENDING;
	r->n_orders++;
	return (int32_t)i;
}

static void order_delete(struct rsx_risk *r, uint32_t i)
{
	/* Backward shift: pull later entries of the probe run into the hole. */
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & r->order_mask;
		if (r->orders[j].state == RSX_RISK_ORD_EMPTY)
			break;
		uint32_t home = oid_hash(&r->orders[j].oid, r->order_mask);
		/* Move j into i unless its home lies cyclically in (i, j]. */
		int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (in_range)
			continue;
		r->orders[i] = r->orders[j];
		i = j;
	}
	memset(&r->orders[i], 0, sizeof(r->orders[i]));
	r->n_orders--;
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
	if (o->acct >= 0 && (uint32_t)o->acct < r->n_users) {
		risk_frozen_add(r, o->acct, -o->need);
		r->accounts[o->acct].n_orders--;
	}
	if (o->pos >= 0 && (uint32_t)o->pos < r->n_positions) {
		r->positions[o->pos].open_qty -= o->remaining;
		r->positions[o->pos].n_orders--;
	}
	order_delete(r, (uint32_t)slot);
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
	for (uint32_t k = 0; k < n; k++) {
		const struct rsx_risk_order *src = &orders[k];
		if (src->state == RSX_RISK_ORD_EMPTY || src->acct < 0 || (uint32_t)src->acct >= r->n_users ||
		    src->pos < 0 || (uint32_t)src->pos >= r->n_positions)
			return RSX_EINVALID;
		int32_t slot = risk_order_insert(r, &src->oid);
		if (slot < 0)
			return RSX_EINVALID;
		r->orders[slot] = *src;
	}
	return 0;
}

int rsx_risk_dump_orders(const struct rsx_risk *r, struct rsx_risk_order *out, uint32_t cap)
{
	if (cap < r->n_orders)
		return RSX_EINVALID;
	uint32_t k = 0;
	for (uint32_t i = 0; i <= r->order_mask; i++)
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
		if (from >= 0)
			r->accounts[from].version++;
	}
	if (dst) {
		*dst = nd;
		if (to >= 0)
			r->accounts[to].version++;
	}
	return 0;
}

/* ---- audit ---- */

int64_t rsx_risk_audit(const struct rsx_risk *r)
{
	int64_t bad = 0;
	int64_t *frozen = calloc(r->n_users ? r->n_users : 1, sizeof(int64_t));
	int32_t *norders = calloc(r->n_users ? r->n_users : 1, sizeof(int32_t));
	int64_t *open = calloc(r->n_positions ? r->n_positions : 1, sizeof(int64_t));
	int32_t *pnorders = calloc(r->n_positions ? r->n_positions : 1, sizeof(int32_t));
	if (!frozen || !norders || !open || !pnorders) {
		free(frozen), free(norders), free(open), free(pnorders);
		return -1;
	}
	uint32_t live = 0;
	for (uint32_t i = 0; i <= r->order_mask; i++) {
		const struct rsx_risk_order *o = &r->orders[i];
		if (o->state == RSX_RISK_ORD_EMPTY)
			continue;
		live++;
		if (risk_order_find(r, &o->oid) != (int32_t)i)
			bad++;	/* unreachable from its home slot */
		if (o->acct < 0 || (uint32_t)o->acct >= r->n_users || o->pos < 0 ||
		    (uint32_t)o->pos >= r->n_positions) {
			bad++;
			continue;
		}
		frozen[o->acct] += o->need;
		norders[o->acct]++;
		open[o->pos] += o->remaining;
		pnorders[o->pos]++;
		const struct rsx_risk_symbol *s = risk_sym(r, o->symbol_id);
		if (s && o->state == RSX_RISK_ORD_ACKED && !(o->flags & RSX_RISK_ORD_LIQ) &&
		    o->need != risk_need(r, s, o->price, o->remaining))
			bad++;
	}
	if (live != r->n_orders)
		bad++;
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
		if (a->frozen != frozen[u] || a->n_orders != norders[u])
			bad++;
		if (rsx_risk_find_account(r, a->user_id) != (int32_t)u)
			bad++;
	}
	free(frozen), free(norders), free(open), free(pnorders);
	return bad;
}

