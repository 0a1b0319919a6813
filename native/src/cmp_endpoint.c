/*
 * cmp_endpoint.c - the endpoint: open a backend, validate every received
 * datagram, dispatch it by type and stream_id, run timers, and wait in the
 * configured mode (specs/cmp.md sections 1, 2, 5).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rsx/errors.h"
#include "rsx/probe.h"
#include "cmp_int.h"

uint64_t cmp_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rsx_cmp_now_ns(void)
{
	return cmp_now();
}

int rsx_cmp_addr_set(struct rsx_cmp_addr *a, const char *ip, uint16_t port)
{
	struct in_addr in;
	if (!a || !ip || inet_pton(AF_INET, ip, &in) != 1)
		return RSX_EINVALID;
	memset(a, 0, sizeof(*a));
	a->ip = in.s_addr;
	a->port = port;
	return 0;
}

void rsx_cmp_config_init(struct rsx_cmp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* DESIGN.md 7: io_uring by default where the kernel allows it, plain UDP otherwise. */
	cfg->backend = rsx_probe_io_uring() == 0 ? RSX_CMP_URING : RSX_CMP_UDP;
	cfg->mode = RSX_CMP_BUSY;
	cfg->xdp_mode = RSX_CMP_XDP_SKB;
	cfg->sndbuf = 4u << 20;
	cfg->rcvbuf = 4u << 20;
	cfg->batch = 32;
	cfg->fault.reorder_depth = 3;
}

static int config_valid(const struct rsx_cmp_config *c)
{
	if (c->backend < RSX_CMP_UDP || c->backend > RSX_CMP_MEM)
		return 0;
	if (c->mode != RSX_CMP_BUSY && c->mode != RSX_CMP_SLEEP)
		return 0;
	if (c->batch < 1 || c->batch > CMP_MAX_BATCH)
		return 0;
	if (memchr(c->ifname, 0, sizeof(c->ifname)) == NULL ||
	    memchr(c->netns, 0, sizeof(c->netns)) == NULL)
		return 0;
	if (c->backend == RSX_CMP_XDP) {
		if (c->ifname[0] == 0)
			return 0;
		if (c->xdp_mode != RSX_CMP_XDP_SKB && c->xdp_mode != RSX_CMP_XDP_DRV)
			return 0;
		if (c->local.port == 0)	/* the XDP filter needs the port up front */
			return 0;
	}
	if (c->fault_enabled) {
		const struct rsx_cmp_fault_config *f = &c->fault;
		if (f->drop_ppm > 1000000 || f->dup_ppm > 1000000 || f->reorder_ppm > 1000000 ||
		    f->delay_ppm > 1000000 || f->nrules > RSX_CMP_FAULT_RULES || f->rate_cls > 2)
			return 0;
		for (unsigned i = 0; i < f->nrules; i++)
			if (f->rules[i].action < RSX_CMP_FAULT_DROP || f->rules[i].action > RSX_CMP_FAULT_DELAY ||
			    f->rules[i].cls > 2)
				return 0;
	}
	return 1;
}

int rsx_cmp_open(const struct rsx_cmp_config *cfg, struct rsx_cmp_endpoint **out)
{
	struct rsx_cmp_io *io = NULL;
	int rc;

	if (!cfg || !out || !config_valid(cfg))
		return RSX_EINVALID;
	struct rsx_cmp_endpoint *ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	switch (cfg->backend) {
	case RSX_CMP_UDP: rc = cmp_udp_open(cfg, &io); break;
	case RSX_CMP_URING: rc = cmp_uring_open(cfg, &io); break;
	case RSX_CMP_XDP: rc = cmp_xdp_open(cfg, &io); break;
	default: rc = cmp_mem_open(cfg, &io); break;
	}
	if (rc < 0) {
		free(ep);
		return rc;
	}
	io->st = &ep->st;
	io->batch = cfg->batch;
	io->mode = cfg->mode;
	ep->backend = io;
	ep->io = io;
	if (cfg->fault_enabled) {
		struct rsx_cmp_io *f;
		rc = cmp_fault_wrap(&cfg->fault, io, &f);
		if (rc < 0) {
			io->ops->close(io);
			free(ep);
			return rc;
		}
		f->st = &ep->st;
		f->batch = cfg->batch;
		f->mode = cfg->mode;
		f->local = io->local;
		ep->io = f;
	}
	ep->mode = cfg->mode;
	*out = ep;
	return 0;
}

void rsx_cmp_close(struct rsx_cmp_endpoint *ep)
{
	if (!ep)
		return;
	for (unsigned i = 0; i < ep->nstreams; i++) {
		cmp_sender_free(ep->streams[i].sender);
		cmp_receiver_free(ep->streams[i].receiver);
	}
	ep->io->ops->close(ep->io);	/* the fault layer closes its inner backend */
	free(ep);
}

void rsx_cmp_local_addr(const struct rsx_cmp_endpoint *ep, struct rsx_cmp_addr *out)
{
	*out = ep->backend->local;
}

int rsx_cmp_endpoint_fd(const struct rsx_cmp_endpoint *ep)
{
	return ep->backend->ops->fd ? ep->backend->ops->fd(ep->backend) : -EOPNOTSUPP;
}

void rsx_cmp_endpoint_stats(const struct rsx_cmp_endpoint *ep, struct rsx_cmp_endpoint_stats *out)
{
	*out = ep->st;
	if (ep->backend->ops->drops)
		out->rx_kernel_drops = ep->backend->ops->drops(ep->backend);
}

void rsx_cmp_fault_stats(const struct rsx_cmp_endpoint *ep, struct rsx_cmp_fault_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (ep->io != ep->backend)
		cmp_fault_stats(ep->io, out);
}

int rsx_cmp_mem_link(struct rsx_cmp_endpoint *a, struct rsx_cmp_endpoint *b)
{
	if (!a || !b || a == b)
		return RSX_EINVALID;
	return cmp_mem_link(a->backend, b->backend);
}

struct cmp_stream *cmp_stream_get(struct rsx_cmp_endpoint *ep, uint32_t stream_id, int create)
{
	for (unsigned i = 0; i < ep->nstreams; i++)
		if (ep->streams[i].stream_id == stream_id)
			return &ep->streams[i];
	if (!create || ep->nstreams == CMP_MAX_STREAMS)
		return NULL;
	struct cmp_stream *st = &ep->streams[ep->nstreams++];
	memset(st, 0, sizeof(*st));
	st->stream_id = stream_id;
	return st;
}

unsigned cmp_ep_send(struct rsx_cmp_endpoint *ep, const struct cmp_txmsg *m, unsigned n)
{
	unsigned done = 0;
	while (done < n) {
		int k = ep->io->ops->send(ep->io, m + done, n - done);
		if (k <= 0)
			break;
		for (int i = 0; i < k; i++)
			ep->st.tx_bytes += m[done + i].len;
		ep->st.tx_datagrams += (unsigned)k;
		done += (unsigned)k;
	}
	if (done < n)
		ep->st.tx_would_block += n - done;
	return done;
}

int cmp_send_control(struct rsx_cmp_endpoint *ep, uint16_t type, void *payload, size_t len,
		     const uint8_t *key, const struct rsx_cmp_addr *to)
{
	uint8_t buf[RSX_RECORD_MAX + RSX_CMP_MAC_BYTES];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	cmp_put64((uint8_t *)payload + 8, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
	int n = rsx_record_frame(buf, RSX_RECORD_MAX, type, payload, len);
	if (n < 0)
		return 0;
	if (key) {
		rsx_cmp_mac(key, buf, (size_t)n, buf + n);
		n += RSX_CMP_MAC_BYTES;
	}
	struct cmp_txmsg m = { .buf = buf, .len = (uint32_t)n, .to = *to };
	return cmp_ep_send(ep, &m, 1) == 1;
}

int rsx_cmp_send_raw(struct rsx_cmp_endpoint *ep, const void *buf, size_t len,
		     const struct rsx_cmp_addr *to)
{
	if (!ep || !buf || !to || len == 0 || len > CMP_MAX_DGRAM)
		return RSX_EINVALID;
	struct cmp_txmsg m = { .buf = buf, .len = (uint32_t)len, .to = *to };
	if (ep->io->ops->resolve) {
		int rc = ep->io->ops->resolve(ep->io, &m.to);
		if (rc < 0)
			return rc;
	}
	return cmp_ep_send(ep, &m, 1) == 1 ? (int)len : -EAGAIN;
}

/* Validate one datagram (specs/cmp.md section 2) and hand it to its stream. */
static void dispatch(struct rsx_cmp_endpoint *ep, const struct cmp_rxmsg *m, uint64_t now)
{
	struct rsx_cmp_endpoint_stats *st = &ep->st;
	int size = rsx_record_check(m->buf, m->len);

	if (size < 0) {
		switch (size) {
		case RSX_ESHORT: st->rx_short++; break;
		case RSX_EVERSION: st->rx_bad_version++; break;
		case RSX_ETYPE: st->rx_bad_type++; break;
		case RSX_ELENGTH: st->rx_bad_length++; break;
		case RSX_ERESERVED: st->rx_bad_reserved++; break;
		default: st->rx_bad_crc++; break;
		}
		return;
	}
	if ((uint32_t)size > m->len || m->truncated) {
		st->rx_bad_length++;
		return;
	}
	uint16_t type = CMP_REC_TYPE(m->buf);
	if (type != RSX_REC_NAK && type != RSX_REC_HEARTBEAT && !CMP_IS_DATA(type)) {
		st->rx_unexpected_type++;
		return;
	}
	uint64_t seq = CMP_REC_SEQ(m->buf);
	if (CMP_IS_DATA(type) ? seq == 0 : seq != 0) {
		st->rx_bad_seq++;
		return;
	}
	struct cmp_stream *s = cmp_stream_get(ep, CMP_REC_STREAM(m->buf), 0);
	if (!s || !(type == RSX_REC_NAK ? (void *)s->sender : (void *)s->receiver)) {
		if ((uint32_t)size != m->len)
			st->rx_bad_length++;
		else
			st->rx_unknown_stream++;
		return;
	}
	/* a keyed stream's datagram is the record and its tag; any other is the record alone */
	const uint8_t *key = type == RSX_REC_NAK ? cmp_sender_key(s->sender) : cmp_receiver_key(s->receiver);
	if (key ? m->len != (uint32_t)size + RSX_CMP_MAC_BYTES ||
		  !cmp_mac_ok(key, m->buf, (size_t)size, m->buf + size)
		: (uint32_t)size != m->len) {
		if (key)
			st->rx_bad_mac++;
		else
			st->rx_bad_length++;
		return;
	}
	if (type == RSX_REC_NAK) {
		st->rx_datagrams++;
		st->rx_bytes += m->len;
		cmp_sender_on_nak(s->sender, m->buf, &m->from, now);
		return;
	}
	st->rx_datagrams++;
	st->rx_bytes += m->len;
	if (type == RSX_REC_HEARTBEAT)
		cmp_receiver_on_heartbeat(s->receiver, m->buf, &m->from, now);
	else
		cmp_receiver_on_data(s->receiver, m->buf, (uint32_t)size, &m->from, now);
}

/* Run every timer; returns the earliest next due time (0 = none). */
static uint64_t run_timers(struct rsx_cmp_endpoint *ep, uint64_t now)
{
	uint64_t next = 0, t;
	if (ep->io->ops->tick && (t = ep->io->ops->tick(ep->io, now)) && (!next || t < next))
		next = t;
	for (unsigned i = 0; i < ep->nstreams; i++) {
		struct cmp_stream *s = &ep->streams[i];
		if (s->sender && (t = cmp_sender_tick(s->sender, now)) && (!next || t < next))
			next = t;
		if (s->receiver && (t = cmp_receiver_tick(s->receiver, now)) && (!next || t < next))
			next = t;
	}
	return next;
}

#define POLL_BATCHES 8	/* batches drained per pass before timers run */

/*
 * One pass: receive and dispatch up to POLL_BATCHES batches (a NAK backlog
 * must drain faster than it builds up), then timers. Returns datagrams
 * handled or -errno.
 */
static int poll_once(struct rsx_cmp_endpoint *ep, uint64_t *now, uint64_t *next)
{
	int total = 0;
	for (int b = 0; b < POLL_BATCHES; b++) {
		int n = ep->io->ops->recv(ep->io, ep->rx, ep->io->batch);
		ep->st.polls++;
		if (n < 0)
			return n;
		if (n == 0)
			break;
		*now = cmp_now();
		for (int i = 0; i < n; i++)
			dispatch(ep, &ep->rx[i], *now);
		ep->io->ops->release(ep->io);
		total += n;
		if ((unsigned)n < ep->io->batch)
			break;
	}
	*next = run_timers(ep, *now);
	ep->next_due = *next;
	return total;
}

uint64_t rsx_cmp_next_due_ns(const struct rsx_cmp_endpoint *ep)
{
	return ep->next_due;
}

int rsx_cmp_poll(struct rsx_cmp_endpoint *ep, int64_t timeout_us)
{
	uint64_t now = cmp_now(), next = 0;
	uint64_t deadline = timeout_us < 0 ? UINT64_MAX : now + (uint64_t)timeout_us * 1000;
	int total = 0;

	for (;;) {
		int n = poll_once(ep, &now, &next);
		if (n < 0)
			return n;
		total += n;
		if (total > 0 || timeout_us == 0)
			return total;
		now = cmp_now();
		if (now >= deadline)
			return 0;
		if (ep->mode == RSX_CMP_SLEEP) {
			uint64_t until = deadline;
			if (next && next < until)
				until = next;
			if (until > now) {
				ep->st.waits++;
				int rc = ep->io->ops->wait(ep->io, (int64_t)(until - now));
				if (rc < 0 && rc != -EINTR)
					return rc;
			}
			now = cmp_now();
		}
	}
}

int rsx_cmp_receive(struct rsx_cmp_endpoint *ep, struct rsx_cmp_receiver *r,
		    void *out, size_t stride, size_t max, int64_t timeout_us)
{
	uint64_t start = cmp_now();
	uint64_t deadline = timeout_us < 0 ? UINT64_MAX : start + (uint64_t)timeout_us * 1000;

	for (int polled = 0;; polled = 1) {
		if (cmp_receiver_ready(r)) {
			int n = rsx_cmp_receiver_read(r, out, stride, max);
			if (n != 0)
				return n;	/* 0: only seqs a link receiver skipped as lost */
		}
		uint64_t now = cmp_now();
		if (now >= deadline && polled)	/* timeout 0: still one look at the socket */
			return rsx_cmp_receiver_read(r, out, stride, max);
		int64_t left = deadline == UINT64_MAX ? -1
			     : now >= deadline ? 0 : (int64_t)((deadline - now + 999) / 1000);
		int rc = rsx_cmp_poll(ep, left);
		if (rc < 0)
			return rc;
	}
}
