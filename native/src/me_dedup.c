/*
 * me_dedup.c - the (user, order id) window of the matching engine
 * (specs/me.md section 4): open addressing with linear probing over one
 * prefaulted mapping, an incremental sweeper with backward-shift deletion,
 * no tombstones, no allocation after init.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "rsx/errors.h"
#include "me_int.h"

#define FULL_SWEEP 65536	/* slots looked at before an insert is refused for a full table */

static uint64_t sweep(struct me_dedup *d, uint32_t now_t, uint64_t n);

static inline uint64_t key_hash(uint32_t user, const rsx_oid_t *oid)
{
	uint64_t hi, lo;
	memcpy(&hi, oid->b, 8);
	memcpy(&lo, oid->b + 8, 8);
	uint64_t h = lo ^ (hi * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)user * 0xc2b2ae3d27d4eb4full);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 29;
	return h;
}

static inline int same_key(const struct me_dedup_entry *e, uint32_t user, const rsx_oid_t *oid)
{
	uint64_t a[2], b[2];
	memcpy(a, e->oid.b, 16);
	memcpy(b, oid->b, 16);
	return e->user_id == user && a[0] == b[0] && a[1] == b[1];
}

int me_dedup_init(struct me_dedup *d, uint64_t capacity, uint64_t window_ns)
{
	memset(d, 0, sizeof *d);
	if (capacity < 64 || (capacity & (capacity - 1)) || capacity > (1ull << 32))
		return RSX_EINVALID;
	size_t len = (size_t)capacity * sizeof(struct me_dedup_entry);
	void *p = me_map_anon(len);
	if (!p)
		return -ENOMEM;
	d->tab = p;
	d->map_len = len;
	d->mask = capacity - 1;
	d->limit = capacity / 4 * 3;
	d->window_t = (uint32_t)((window_ns + (1ull << 30) - 1) >> 30) + 1;
	return 0;
}

void me_dedup_free(struct me_dedup *d)
{
	if (d->tab)
		munmap(d->tab, d->map_len);
	d->tab = NULL;
}

static inline int expired(const struct me_dedup *d, const struct me_dedup_entry *e, uint32_t now_t)
{
	return now_t > e->t && now_t - e->t > d->window_t;
}

static inline void put(struct me_dedup_entry *e, uint32_t user, const rsx_oid_t *oid, uint32_t t, uint64_t seq)
{
	memcpy(e->oid.b, oid->b, 16);
	e->user_id = user;
	e->t = t ? t : 1;
	e->seq = seq;
}

int me_dedup_check_insert(struct me_dedup *d, uint32_t user, const rsx_oid_t *oid, uint32_t t,
			  uint64_t seq, uint64_t *orig)
{
	uint64_t i = key_hash(user, oid) & d->mask;
	struct me_dedup_entry *reuse = NULL;
	for (;;) {
		struct me_dedup_entry *e = &d->tab[i];
		if (e->t == 0)
			break;
		if (same_key(e, user, oid)) {
			if (!expired(d, e, t)) {
				*orig = e->seq;
				return ME_DEDUP_DUPLICATE;
			}
			put(e, user, oid, t, seq);	/* its window ended: a new use of the id */
			return ME_DEDUP_NEW;
		}
		if (!reuse && expired(d, e, t))
			reuse = e;
		i = (i + 1) & d->mask;
	}
	if (reuse) {
		/* the key is not in the chain: take the expired slot (count unchanged) */
		put(reuse, user, oid, t, seq);
		return ME_DEDUP_NEW;
	}
	if (UNLIKELY(d->count >= d->limit)) {
		/* expired entries may still be counted: sweep a larger slice before refusing, at most
		   once between two housekeeping ticks (a table full of live entries must not make
		   every refusal expensive) */
		if (d->swept_full || (d->swept_full = 1, sweep(d, t, FULL_SWEEP)) == 0 || d->count >= d->limit)
			return ME_DEDUP_FULL;
		return me_dedup_check_insert(d, user, oid, t, seq, orig);
	}
	put(&d->tab[i], user, oid, t, seq);
	d->count++;
	return ME_DEDUP_NEW;
}

int me_dedup_rebuild_insert(struct me_dedup *d, uint32_t user, const rsx_oid_t *oid, uint32_t t, uint64_t seq)
{
	uint64_t i = key_hash(user, oid) & d->mask;
	for (;;) {
		struct me_dedup_entry *e = &d->tab[i];
		if (e->t == 0)
			break;
		if (same_key(e, user, oid)) {
			put(e, user, oid, t, seq);	/* a later acceptance of the same id wins */
			return 0;
		}
		i = (i + 1) & d->mask;
	}
	if (d->count >= d->limit)
		return ME_DEDUP_FULL;
	put(&d->tab[i], user, oid, t, seq);
	d->count++;
	return 0;
}

/* Backward-shift deletion of slot i (Knuth 6.4 algorithm R). */
static void remove_at(struct me_dedup *d, uint64_t i)
{
	uint64_t j = i;
	for (;;) {
		j = (j + 1) & d->mask;
		struct me_dedup_entry *e = &d->tab[j];
		if (e->t == 0)
			break;
		uint64_t k = key_hash(e->user_id, &e->oid) & d->mask;
		/* e may move to i only if its home k is not cyclically in (i, j] */
		int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		d->tab[i] = *e;
		i = j;
	}
	d->tab[i].t = 0;
	d->count--;
}

static uint64_t sweep(struct me_dedup *d, uint32_t now_t, uint64_t n)
{
	uint64_t removed = 0;
	while (n--) {
		uint64_t i = d->sweep_pos & d->mask;
		struct me_dedup_entry *e = &d->tab[i];
		if (e->t != 0 && expired(d, e, now_t)) {
			remove_at(d, i);
			removed++;
			continue;	/* an entry may have shifted into i: look again */
		}
		d->sweep_pos++;
	}
	d->expired += removed;
	return removed;
}

uint64_t me_dedup_sweep(struct me_dedup *d, uint32_t now_t, uint64_t n)
{
	d->swept_full = 0;
	return sweep(d, now_t, n);
}
