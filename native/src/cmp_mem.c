/*
 * cmp_mem.c - the in-process test double backend: two linked endpoints copy
 * datagrams into each other's bounded queue. Single-threaded by design (both
 * endpoints are driven by the same thread), deterministic, no kernel.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rsx/errors.h"
#include "cmp_int.h"

#define MEM_QUEUE 4096		/* datagrams */
#define MEM_DGRAM 512		/* bytes kept per datagram; longer ones arrive truncated */

struct mem_dgram {
	uint32_t len;
	uint32_t truncated;
	struct rsx_cmp_addr from;
	uint8_t data[MEM_DGRAM];
};

struct mem_io {
	struct rsx_cmp_io base;
	struct mem_io *peer;
	uint64_t head, tail;	/* queue of datagrams addressed to us */
	unsigned last_batch;
	struct mem_dgram q[MEM_QUEUE];
};

static int mem_send(struct rsx_cmp_io *io, const struct cmp_txmsg *msgs, unsigned n)
{
	struct mem_io *m = (struct mem_io *)io;
	struct mem_io *p = m->peer;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (!p)
			continue;	/* nobody listens: the datagram is gone, as on a real network */
		if (p->tail - p->head == MEM_QUEUE)
			break;		/* peer's queue full: EAGAIN */
		struct mem_dgram *d = &p->q[p->tail % MEM_QUEUE];
		d->len = msgs[i].len < MEM_DGRAM ? msgs[i].len : MEM_DGRAM;
		d->truncated = msgs[i].len > MEM_DGRAM;
		d->from = m->base.local;
		memcpy(d->data, msgs[i].buf, d->len);
		p->tail++;
	}
	return (int)i;
}

static int mem_recv(struct rsx_cmp_io *io, struct cmp_rxmsg *msgs, unsigned n)
{
	struct mem_io *m = (struct mem_io *)io;
	unsigned k = 0;
	while (k < n && m->head + k < m->tail) {
		struct mem_dgram *d = &m->q[(m->head + k) % MEM_QUEUE];
		msgs[k].buf = d->data;
		msgs[k].len = d->len;
		msgs[k].truncated = d->truncated;
		msgs[k].from = d->from;
		k++;
	}
	m->last_batch = k;
	return (int)k;
}

static void mem_release(struct rsx_cmp_io *io)
{
	struct mem_io *m = (struct mem_io *)io;
	m->head += m->last_batch;
	m->last_batch = 0;
}

static int mem_wait(struct rsx_cmp_io *io, int64_t timeout_ns)
{
	(void)io;
	(void)timeout_ns;
	return 0;	/* single-threaded: nothing can arrive while we would sleep */
}

static void mem_close(struct rsx_cmp_io *io)
{
	struct mem_io *m = (struct mem_io *)io;
	if (m->peer)
		m->peer->peer = NULL;
	free(m);
}

static const struct rsx_cmp_io_ops mem_ops = {
	.send = mem_send,
	.recv = mem_recv,
	.release = mem_release,
	.wait = mem_wait,
	.close = mem_close,
};

int cmp_mem_open(const struct rsx_cmp_config *cfg, struct rsx_cmp_io **out)
{
	static uint16_t next_port = 40000;	/* fake ephemeral ports, only to tell endpoints apart */
	struct mem_io *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->base.ops = &mem_ops;
	m->base.local = cfg->local;
	if (m->base.local.port == 0)
		m->base.local.port = next_port++;
	*out = &m->base;
	return 0;
}

int cmp_mem_link(struct rsx_cmp_io *a, struct rsx_cmp_io *b)
{
	if (a->ops != &mem_ops || b->ops != &mem_ops)
		return RSX_EINVALID;
	struct mem_io *ma = (struct mem_io *)a, *mb = (struct mem_io *)b;
	/* re-linking detaches the old partners (no pointer left to a closed endpoint) */
	if (ma->peer && ma->peer->peer == ma)
		ma->peer->peer = NULL;
	if (mb->peer && mb->peer->peer == mb)
		mb->peer->peer = NULL;
	ma->peer = mb;
	mb->peer = ma;
	return 0;
}
