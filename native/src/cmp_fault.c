/*
 * cmp_fault.c - fault injection between an endpoint and any backend: drop,
 * duplicate, reorder and delay outgoing datagrams, by seeded rate or by an
 * ordinal pattern (specs/cmp.md section 6). netem does not exist on these
 * machines; this layer is how tests and benchmarks get a lossy network.
 *
 * Decisions are replayable: the PRNG and the per-class ordinals advance only
 * for datagrams the inner backend really took, so a send refused with EAGAIN
 * and retried meets the same fate.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rsx/errors.h"
#include "cmp_int.h"

#define HELD_MAX 1024
#define REORDER_MAX_HOLD_NS 1000000ull	/* a reordered datagram waits at most 1 ms for company */

struct held {
	uint64_t release_ns;
	uint64_t release_count;	/* release once this many datagrams went out (0 = time only) */
	uint32_t len;
	struct rsx_cmp_addr to;
	uint8_t data[CMP_MAX_DGRAM];
};

struct fstate {
	uint64_t prng;
	uint64_t ord[3];	/* ordinals: [0] any, [1] data, [2] control */
};

struct fault_io {
	struct rsx_cmp_io base;
	struct rsx_cmp_io *inner;
	struct rsx_cmp_fault_config cfg;
	struct fstate s;
	uint64_t passed;	/* datagrams handed to the inner backend */
	struct rsx_cmp_fault_stats st;
	unsigned nheld, nfree;
	uint16_t order[HELD_MAX];	/* held slots, in the order they were held */
	uint16_t freel[HELD_MAX];
	struct held held[HELD_MAX];
};

/* xorshift64* (Vigna): fast, seedable, good enough for fault dice. */
static uint64_t prng_next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545F4914F6CDD1Dull;
}

static unsigned dgram_class(const struct cmp_txmsg *m)
{
	const uint8_t *b = m->buf;
	if (m->len < 4)
		return RSX_CMP_FC_DATA;
	return CMP_IS_DATA(cmp_get16(b + 2)) ? RSX_CMP_FC_DATA : RSX_CMP_FC_CONTROL;
}

/* The action for the next datagram of class cls (0 = send it untouched); advances s. */
static uint32_t decide(const struct rsx_cmp_fault_config *c, struct fstate *s, unsigned cls)
{
	uint64_t ord_any = s->ord[0]++, ord_cls = s->ord[cls]++;
	for (unsigned i = 0; i < c->nrules; i++) {
		const struct rsx_cmp_fault_rule *r = &c->rules[i];
		if (r->cls != RSX_CMP_FC_ANY && r->cls != cls)
			continue;
		uint64_t ord = r->cls == RSX_CMP_FC_ANY ? ord_any : ord_cls;
		if (ord < r->first)
			continue;
		uint64_t rel = ord - r->first;
		if (r->every)
			rel %= r->every;
		if (rel < r->count)
			return r->action;
	}
	if (c->rate_cls != RSX_CMP_FC_ANY && c->rate_cls != cls)
		return 0;
	uint64_t total = (uint64_t)c->drop_ppm + c->dup_ppm + c->reorder_ppm + c->delay_ppm;
	if (total == 0)
		return 0;
	uint64_t u = prng_next(&s->prng) % 1000000;
	if (u < c->drop_ppm)
		return RSX_CMP_FAULT_DROP;
	u -= c->drop_ppm;
	if (u < c->dup_ppm)
		return RSX_CMP_FAULT_DUP;
	u -= c->dup_ppm;
	if (u < c->reorder_ppm)
		return RSX_CMP_FAULT_REORDER;
	u -= c->reorder_ppm;
	if (u < c->delay_ppm)
		return RSX_CMP_FAULT_DELAY;
	return 0;
}

static int hold(struct fault_io *f, const struct cmp_txmsg *m, uint64_t release_ns, uint64_t release_count)
{
	if (f->nfree == 0 || m->len > CMP_MAX_DGRAM)
		return -1;
	uint16_t i = f->freel[--f->nfree];
	struct held *h = &f->held[i];
	h->release_ns = release_ns;
	h->release_count = release_count;
	h->len = m->len;
	h->to = m->to;
	memcpy(h->data, m->buf, m->len);
	f->order[f->nheld++] = i;
	return 0;
}

/* Send held datagrams whose time or turn has come, oldest first. */
static uint64_t release_due(struct fault_io *f, uint64_t now)
{
	uint64_t next = 0;
	unsigned k = 0;
	while (k < f->nheld) {
		struct held *h = &f->held[f->order[k]];
		int due = h->release_ns <= now || (h->release_count && f->passed >= h->release_count);
		if (!due) {
			if (!next || h->release_ns < next)
				next = h->release_ns;
			k++;
			continue;
		}
		struct cmp_txmsg m = { .buf = h->data, .len = h->len, .to = h->to };
		if (f->inner->ops->send(f->inner, &m, 1) != 1)
			return now;	/* backend full: retry on the next pass */
		f->passed++;
		f->freel[f->nfree++] = f->order[k];
		memmove(&f->order[k], &f->order[k + 1], (f->nheld - k - 1) * sizeof(f->order[0]));
		f->nheld--;
	}
	return next;
}

static int fault_send(struct rsx_cmp_io *io, const struct cmp_txmsg *msgs, unsigned n)
{
	struct fault_io *f = (struct fault_io *)io;
	struct cmp_txmsg out[2 * CMP_MAX_BATCH];
	unsigned map[2 * CMP_MAX_BATCH];
	uint32_t act[CMP_MAX_BATCH];
	struct fstate snap[CMP_MAX_BATCH];
	unsigned k = 0;
	uint64_t now = cmp_now();

	if (n > CMP_MAX_BATCH)
		n = CMP_MAX_BATCH;
	if (f->nheld)
		release_due(f, now);
	for (unsigned i = 0; i < n; i++) {
		snap[i] = f->s;
		act[i] = decide(&f->cfg, &f->s, dgram_class(&msgs[i]));
		if (act[i] == 0 || act[i] == RSX_CMP_FAULT_DUP) {
			map[k] = i;
			out[k++] = msgs[i];
		}
		if (act[i] == RSX_CMP_FAULT_DUP) {
			map[k] = i;
			out[k++] = msgs[i];
		}
	}
	unsigned took = 0;
	while (took < k) {
		int r = f->inner->ops->send(f->inner, out + took, k - took);
		if (r <= 0)
			break;
		took += (unsigned)r;
	}
	unsigned consumed = n;
	if (took < k) {
		consumed = map[took];	/* retry from the first input not fully sent */
		f->s = snap[consumed];
	}
	f->passed += took;
	for (unsigned i = 0; i < consumed; i++) {
		f->st.seen++;
		switch (act[i]) {
		case RSX_CMP_FAULT_DROP:
			f->st.dropped++;
			break;
		case RSX_CMP_FAULT_DUP:
			f->st.duplicated++;
			break;
		case RSX_CMP_FAULT_REORDER:
			if (hold(f, &msgs[i], now + REORDER_MAX_HOLD_NS, f->passed + f->cfg.reorder_depth) == 0)
				f->st.reordered++;
			else if (f->inner->ops->send(f->inner, &msgs[i], 1) == 1)
				f->passed++;
			break;
		case RSX_CMP_FAULT_DELAY:
			if (hold(f, &msgs[i], now + (uint64_t)f->cfg.delay_us * 1000, 0) == 0)
				f->st.delayed++;
			else if (f->inner->ops->send(f->inner, &msgs[i], 1) == 1)
				f->passed++;
			break;
		}
	}
	return (int)consumed;
}

static int fault_recv(struct rsx_cmp_io *io, struct cmp_rxmsg *msgs, unsigned n)
{
	struct fault_io *f = (struct fault_io *)io;
	return f->inner->ops->recv(f->inner, msgs, n);
}

static void fault_release(struct rsx_cmp_io *io)
{
	struct fault_io *f = (struct fault_io *)io;
	f->inner->ops->release(f->inner);
}

static int fault_wait(struct rsx_cmp_io *io, int64_t timeout_ns)
{
	struct fault_io *f = (struct fault_io *)io;
	return f->inner->ops->wait(f->inner, timeout_ns);
}

static uint64_t fault_tick(struct rsx_cmp_io *io, uint64_t now)
{
	struct fault_io *f = (struct fault_io *)io;
	uint64_t next = 0, t;
	if (f->inner->ops->tick)
		next = f->inner->ops->tick(f->inner, now);
	if (f->nheld && (t = release_due(f, now)) && (!next || t < next))
		next = t;
	return next;
}

static int fault_resolve(struct rsx_cmp_io *io, struct rsx_cmp_addr *a)
{
	struct fault_io *f = (struct fault_io *)io;
	return f->inner->ops->resolve ? f->inner->ops->resolve(f->inner, a) : 0;
}

static void fault_close(struct rsx_cmp_io *io)
{
	struct fault_io *f = (struct fault_io *)io;
	f->inner->ops->close(f->inner);	/* what is still held is lost, as on a network */
	free(f);
}

static const struct rsx_cmp_io_ops fault_ops = {
	.send = fault_send,
	.recv = fault_recv,
	.release = fault_release,
	.wait = fault_wait,
	.tick = fault_tick,
	.resolve = fault_resolve,
	.close = fault_close,
};

int cmp_fault_wrap(const struct rsx_cmp_fault_config *cfg, struct rsx_cmp_io *inner,
		   struct rsx_cmp_io **out)
{
	struct fault_io *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->base.ops = &fault_ops;
	f->inner = inner;
	f->cfg = *cfg;
	if (f->cfg.reorder_depth == 0)
		f->cfg.reorder_depth = 3;
	f->s.prng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ull;
	for (unsigned i = 0; i < HELD_MAX; i++)
		f->freel[i] = (uint16_t)(HELD_MAX - 1 - i);
	f->nfree = HELD_MAX;
	*out = &f->base;
	return 0;
}

void cmp_fault_stats(struct rsx_cmp_io *io, struct rsx_cmp_fault_stats *out)
{
	*out = ((struct fault_io *)io)->st;
}
