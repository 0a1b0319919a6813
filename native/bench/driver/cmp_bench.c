/*
 * cmp_bench.c - the benchmark / end-to-end harness: ping-pong RTT and
 * one-way throughput between two endpoints driven by two pinned threads.
 * The same code runs every backend, so figures compare like with like.
 * Latency samples are raw ns; the caller summarises them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "rsx/cmp_bench.h"
#include "rsx/errors.h"
#include "rsx/records.h"
#include "cmp_int.h"

#define S_AB 1	/* stream A -> B */
#define S_BA 2	/* stream B -> A */

void rsx_cmp_bench_config_init(struct rsx_cmp_bench_config *c)
{
	memset(c, 0, sizeof(*c));
	rsx_cmp_config_init(&c->a);
	rsx_cmp_config_init(&c->b);
	rsx_cmp_addr_set(&c->a.local, "127.0.0.1", 0);
	rsx_cmp_addr_set(&c->b.local, "127.0.0.1", 0);
	c->payload = 64;
	c->batch = 32;
	c->warmup = 1000;
	c->count = 10000;
	c->cpu_a = 0;
	c->cpu_b = 1;
	c->timeout_ms = 60000;
}

/* The record of `stream` at `seq`: content is a function of (stream, seq, tag) so the receiver can check it. */
static int make_rec(uint8_t *out, uint32_t payload, uint32_t stream, uint64_t seq, uint64_t tag)
{
	if (payload == 128) {
		struct rsx_fill f;
		memset(&f, 0, sizeof(f));
		f.seq = seq;
		f.ts_ns = tag;
		f.stream_id = stream;
		f.price.raw = (int64_t)(seq * 3);
		f.qty.raw = (int64_t)tag;
		return rsx_record_frame(out, RSX_RECORD_MAX, RSX_REC_FILL, &f, sizeof(f));
	}
	struct rsx_bbo b;
	memset(&b, 0, sizeof(b));
	b.seq = seq;
	b.ts_ns = tag;
	b.stream_id = stream;
	b.bid_px.raw = (int64_t)(seq * 3);
	b.ask_px.raw = (int64_t)tag;
	return rsx_record_frame(out, RSX_RECORD_MAX, RSX_REC_BBO, &b, sizeof(b));
}

/* Checks seq and the seq-derived price of a delivered record; returns its tag or -1. */
static int64_t check_rec(const uint8_t *rec, uint32_t payload, uint32_t stream, uint64_t seq)
{
	uint16_t want = payload == 128 ? RSX_REC_FILL : RSX_REC_BBO;
	if (rsx_record_check(rec, RSX_RECORD_MAX) < 0 || cmp_get16(rec + 2) != want ||
	    CMP_REC_SEQ(rec) != seq || CMP_REC_STREAM(rec) != stream)
		return -1;
	const uint8_t *pl = rec + RSX_HEADER_SIZE;
	if (payload == 128)
		return cmp_get64(pl + 64) == seq * 3 ? (int64_t)cmp_get64(pl + 72) : -1;	/* price, qty */
	return cmp_get64(pl + 24) == seq * 3 ? (int64_t)cmp_get64(pl + 40) : -1;	/* bid_px, ask_px */
}

struct side {
	const struct rsx_cmp_bench_config *c;
	struct rsx_cmp_bench_result *res;
	struct rsx_cmp_endpoint *ep;
	struct rsx_cmp_sender *s;
	struct rsx_cmp_receiver *r;
	int cpu;
	uint64_t *samples;
	volatile int *stop;
	volatile uint64_t *first_send;
	volatile uint64_t *delivered;	/* B's progress, read by A when c->inflight bounds it */
	int pinned;
	int err;
};

static void pin(struct side *sd)
{
	if (sd->cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(sd->cpu, &set);
	sd->pinned = pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

static void fail(struct side *sd, int err)
{
	if (!sd->err)
		sd->err = err;
	*sd->stop = 1;
}

static int fetch_rebuild(void *ctx, uint32_t stream, uint64_t seq, void *buf, size_t cap)
{
	const struct rsx_cmp_bench_config *c = ctx;
	(void)cap;
	return make_rec(buf, c->payload, stream, seq, seq);
}

/* Send one record, polling (NAKs, pending data) while the sender stalls. */
static int send_one(struct side *sd, const uint8_t *rec, int len, uint64_t deadline)
{
	for (;;) {
		int rc = rsx_cmp_sender_send(sd->s, rec, (size_t)len);
		if (rc != -EAGAIN)
			return rc;
		rsx_cmp_poll(sd->ep, 0);
		if (*sd->stop || cmp_now() > deadline)
			return -ETIMEDOUT;
	}
}

static void *rtt_a(void *arg)
{
	struct side *sd = arg;
	const struct rsx_cmp_bench_config *c = sd->c;
	uint8_t rec[RSX_RECORD_MAX], in[RSX_RECORD_MAX];
	uint64_t deadline = cmp_now() + c->timeout_ms * 1000000ull;
	uint64_t t_start = 0;

	pin(sd);
	for (uint64_t i = 1; i <= c->warmup + c->count && !*sd->stop; i++) {
		int len = make_rec(rec, c->payload, S_AB, i, i);
		if (i == c->warmup + 1)
			t_start = cmp_now();
		uint64_t t0 = cmp_now();
		int rc = send_one(sd, rec, len, deadline);
		if (rc < 0) {
			fail(sd, rc);
			break;
		}
		for (;;) {
			uint64_t now = cmp_now();
			if (now > deadline) {
				fail(sd, -ETIMEDOUT);
				break;
			}
			rc = rsx_cmp_receive(sd->ep, sd->r, in, sizeof(in), 1, (int64_t)((deadline - now) / 1000));
			if (rc != 0)
				break;
		}
		if (sd->err)
			break;
		if (rc < 0) {
			fail(sd, rc);
			break;
		}
		uint64_t t1 = cmp_now();
		if (check_rec(in, c->payload, S_BA, i) != (int64_t)i)
			sd->res->order_errors++;
		if (i > c->warmup) {
			sd->samples[i - c->warmup - 1] = t1 - t0;
			sd->res->done++;
		}
	}
	if (t_start)
		sd->res->elapsed_ns = cmp_now() - t_start;
	*sd->stop = 1;
	return NULL;
}

static void *rtt_b(void *arg)
{
	struct side *sd = arg;
	const struct rsx_cmp_bench_config *c = sd->c;
	uint8_t in[8 * RSX_RECORD_MAX], rec[RSX_RECORD_MAX];
	uint64_t next = 1;
	uint64_t deadline = cmp_now() + c->timeout_ms * 1000000ull;

	pin(sd);
	while (!*sd->stop) {
		int n = rsx_cmp_receive(sd->ep, sd->r, in, RSX_RECORD_MAX, 8, 1000);
		if (n < 0) {
			fail(sd, n);
			break;
		}
		for (int k = 0; k < n; k++) {
			const uint8_t *q = in + (size_t)k * RSX_RECORD_MAX;
			uint64_t seq = CMP_REC_SEQ(q);
			int len = make_rec(rec, c->payload, S_BA, next++, seq);	/* echo: tag = the ping's seq */
			int rc = send_one(sd, rec, len, deadline);
			if (rc < 0) {
				fail(sd, rc);
				break;
			}
		}
	}
	return NULL;
}

static void *ow_a(void *arg)
{
	struct side *sd = arg;
	const struct rsx_cmp_bench_config *c = sd->c;
	uint8_t buf[64 * RSX_RECORD_MAX];
	uint64_t deadline = cmp_now() + c->timeout_ms * 1000000ull;
	uint64_t next = 1, t0 = 0;
	unsigned batch = c->batch ? c->batch : 32;
	if (batch > 64)
		batch = 64;

	pin(sd);
	while (next <= c->count && !*sd->stop) {
		uint64_t now = cmp_now();
		if (now > deadline) {
			fail(sd, -ETIMEDOUT);
			break;
		}
		uint64_t limit = next + batch - 1;
		if (limit > c->count)
			limit = c->count;
		if (c->inflight) {
			/* Capacity mode: stay at most `inflight` records ahead of what B delivered. */
			uint64_t cap = __atomic_load_n(sd->delivered, __ATOMIC_RELAXED) + c->inflight;
			if (cap < limit)
				limit = cap;
			if (limit < next) {
				rsx_cmp_poll(sd->ep, 0);
				continue;
			}
		}
		if (c->rate && t0) {
			uint64_t allowed = (now - t0) / (1000000000ull / c->rate) + 1;
			if (allowed < limit)
				limit = allowed;
			if (limit < next) {
				rsx_cmp_poll(sd->ep, 0);
				continue;
			}
		}
		size_t len = 0, used = 0;
		for (uint64_t q = next; q <= limit; q++)
			len += (size_t)make_rec(buf + len, c->payload, S_AB, q, q);
		if (!t0) {
			t0 = cmp_now();
			*sd->first_send = t0;
		}
		int k = rsx_cmp_sender_send_batch(sd->s, buf, len, &used);
		if (k < 0 && k != -EAGAIN) {
			fail(sd, k);
			break;
		}
		if (k > 0)
			next += (uint64_t)k;
		rsx_cmp_poll(sd->ep, 0);	/* answer NAKs, push pending data */
	}
	/* Everything sent: keep answering NAKs and sending heartbeats until B has it all. */
	while (!*sd->stop) {
		if (cmp_now() > deadline) {
			fail(sd, -ETIMEDOUT);
			break;
		}
		rsx_cmp_poll(sd->ep, 1000);
	}
	return NULL;
}

static void *ow_b(void *arg)
{
	struct side *sd = arg;
	const struct rsx_cmp_bench_config *c = sd->c;
	static __thread uint8_t in[256 * RSX_RECORD_MAX];
	uint64_t got = 0, deadline = cmp_now() + c->timeout_ms * 1000000ull;

	pin(sd);
	while (got < c->count && !*sd->stop) {
		uint64_t now = cmp_now();
		if (now > deadline) {
			fail(sd, -ETIMEDOUT);
			break;
		}
		int n = rsx_cmp_receive(sd->ep, sd->r, in, RSX_RECORD_MAX, 256, 1000);
		if (n < 0) {
			fail(sd, n);
			break;
		}
		for (int k = 0; k < n; k++, got++)
			if (check_rec(in + (size_t)k * RSX_RECORD_MAX, c->payload, S_AB, got + 1) != (int64_t)(got + 1))
				sd->res->order_errors++;
		__atomic_store_n(sd->delivered, got, __ATOMIC_RELAXED);
	}
	if (got == c->count && *sd->first_send)
		sd->res->elapsed_ns = cmp_now() - *sd->first_send;
	sd->res->done = got;
	*sd->stop = 1;
	return NULL;
}

struct setup {
	struct side a, b;
	volatile int stop;
	volatile uint64_t first_send;
	volatile uint64_t delivered;
};

static int open_sides(const struct rsx_cmp_bench_config *c, struct rsx_cmp_bench_result *res,
		      struct setup *st, int two_way)
{
	struct rsx_cmp_addr la, lb;
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_receiver_config rc;
	int err;

	memset(st, 0, sizeof(*st));
	if ((c->payload != 64 && c->payload != 128) || c->count == 0 || c->timeout_ms == 0)
		return RSX_EINVALID;
	if ((err = rsx_cmp_open(&c->a, &st->a.ep)) < 0)
		return err;
	if ((err = rsx_cmp_open(&c->b, &st->b.ep)) < 0) {
		rsx_cmp_close(st->a.ep);
		return err;
	}
	rsx_cmp_local_addr(st->a.ep, &la);
	rsx_cmp_local_addr(st->b.ep, &lb);
	if (c->a.backend == RSX_CMP_MEM)
		rsx_cmp_mem_link(st->a.ep, st->b.ep);

	rsx_cmp_sender_config_init(&sc);
	sc.ndest = 1;
	if (c->ring)
		sc.ring_size = c->ring;
	if (c->heartbeat_us)
		sc.heartbeat_us = c->heartbeat_us;
	rsx_cmp_receiver_config_init(&rc);
	if (c->window)
		rc.window = c->window;

	/* A -> B */
	sc.stream_id = S_AB;
	sc.dest[0] = c->a_to_b;
	if (!sc.dest[0].ip)
		sc.dest[0].ip = lb.ip;
	if (!sc.dest[0].port)
		sc.dest[0].port = lb.port;
	if (c->fetch_all) {
		sc.fetch = fetch_rebuild;
		sc.fetch_ctx = (void *)c;
	}
	if ((err = rsx_cmp_sender_open(st->a.ep, &sc, &st->a.s)) < 0)
		goto fail;
	rc.stream_id = S_AB;
	if ((err = rsx_cmp_receiver_open(st->b.ep, &rc, &st->b.r)) < 0)
		goto fail;
	if (two_way) {
		sc.stream_id = S_BA;
		sc.fetch = NULL;
		sc.dest[0] = c->b_to_a;
		if (!sc.dest[0].ip)
			sc.dest[0].ip = la.ip;
		if (!sc.dest[0].port)
			sc.dest[0].port = la.port;
		if ((err = rsx_cmp_sender_open(st->b.ep, &sc, &st->b.s)) < 0)
			goto fail;
		rc.stream_id = S_BA;
		if ((err = rsx_cmp_receiver_open(st->a.ep, &rc, &st->a.r)) < 0)
			goto fail;
	}
	for (int i = 0; i < 2; i++) {
		struct side *sd = i ? &st->b : &st->a;
		sd->c = c;
		sd->res = res;
		sd->stop = &st->stop;
		sd->first_send = &st->first_send;
		sd->delivered = &st->delivered;
		sd->cpu = i ? c->cpu_b : c->cpu_a;
	}
	return 0;
fail:
	rsx_cmp_close(st->a.ep);
	rsx_cmp_close(st->b.ep);
	return err;
}

static void finish(struct setup *st, struct rsx_cmp_bench_result *res)
{
	rsx_cmp_sender_stats(st->a.s, &res->sender);
	rsx_cmp_receiver_stats(st->b.r, &res->receiver);
	rsx_cmp_endpoint_stats(st->a.ep, &res->ep_a);
	rsx_cmp_endpoint_stats(st->b.ep, &res->ep_b);
	rsx_cmp_fault_stats(st->a.ep, &res->fault_a);
	rsx_cmp_fault_stats(st->b.ep, &res->fault_b);
	res->error = st->a.err ? st->a.err : st->b.err;
	res->pinned = st->a.pinned && st->b.pinned;
	rsx_cmp_close(st->a.ep);
	rsx_cmp_close(st->b.ep);
}

static int run(struct setup *st, void *(*fa)(void *), void *(*fb)(void *))
{
	pthread_t ta, tb;
	if (pthread_create(&tb, NULL, fb, &st->b) != 0)
		return -EAGAIN;
	if (pthread_create(&ta, NULL, fa, &st->a) != 0) {
		st->stop = 1;
		pthread_join(tb, NULL);
		return -EAGAIN;
	}
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	return 0;
}

int rsx_cmp_bench_rtt(const struct rsx_cmp_bench_config *c, uint64_t *samples, struct rsx_cmp_bench_result *res)
{
	struct setup *st;
	int rc;
	if (!c || !samples || !res)
		return RSX_EINVALID;
	memset(res, 0, sizeof(*res));
	if (!(st = calloc(1, sizeof(*st))))
		return -ENOMEM;
	if ((rc = open_sides(c, res, st, 1)) == 0) {
		st->a.samples = samples;
		rc = run(st, rtt_a, rtt_b);
		finish(st, res);
	}
	free(st);
	return rc;
}

int rsx_cmp_bench_oneway(const struct rsx_cmp_bench_config *c, struct rsx_cmp_bench_result *res)
{
	struct setup *st;
	int rc;
	if (!c || !res)
		return RSX_EINVALID;
	memset(res, 0, sizeof(*res));
	if (!(st = calloc(1, sizeof(*st))))
		return -ENOMEM;
	if ((rc = open_sides(c, res, st, 0)) == 0) {
		rc = run(st, ow_a, ow_b);
		finish(st, res);
	}
	free(st);
	return rc;
}
