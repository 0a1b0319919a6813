/*
 * t_cmp.h - helpers shared by the CMP tests: frame test records, open linked
 * in-memory endpoints, and pump both sides of a single-threaded pair.
 */
#ifndef T_CMP_H
#define T_CMP_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rsx/cmp.h"
#include "rsx/errors.h"
#include "rsx/records.h"

/* A BBO record of `stream` with `seq`; its prices are a function of seq so the content can be checked. */
static inline int t_bbo(uint8_t *out, uint32_t stream, uint64_t seq)
{
	struct rsx_bbo b;
	memset(&b, 0, sizeof(b));
	b.seq = seq;
	b.ts_ns = seq * 1000;
	b.stream_id = stream;
	b.symbol_id = 7;
	b.bid_px.raw = (int64_t)(seq * 3);
	b.ask_px.raw = (int64_t)(seq * 3 + 1);
	return rsx_record_frame(out, RSX_RECORD_MAX, RSX_REC_BBO, &b, sizeof(b));
}

/* A FILL record (128-byte payload) for mixed-size streams. */
static inline int t_fill(uint8_t *out, uint32_t stream, uint64_t seq)
{
	struct rsx_fill f;
	memset(&f, 0, sizeof(f));
	f.seq = seq;
	f.stream_id = stream;
	f.symbol_id = 7;
	f.price.raw = (int64_t)seq;
	f.qty.raw = 5;
	return rsx_record_frame(out, RSX_RECORD_MAX, RSX_REC_FILL, &f, sizeof(f));
}

/* Record for seq: every 5th one a FILL, so streams mix 80- and 144-byte records. */
static inline int t_rec(uint8_t *out, uint32_t stream, uint64_t seq)
{
	return seq % 5 == 0 ? t_fill(out, stream, seq) : t_bbo(out, stream, seq);
}

/* Does rec hold exactly what t_rec(stream, seq) frames? */
static inline int t_rec_ok(const uint8_t *rec, uint32_t stream, uint64_t seq)
{
	uint8_t want[RSX_RECORD_MAX];
	int n = t_rec(want, stream, seq);
	return rsx_record_check(rec, RSX_RECORD_MAX) == n && memcmp(rec, want, (size_t)n) == 0;
}

static inline void t_sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* Open a mem endpoint (optionally with faults) at 10.0.0.x:port. */
static inline struct rsx_cmp_endpoint *t_mem_ep(int host, uint16_t port, const struct rsx_cmp_fault_config *fault)
{
	struct rsx_cmp_config c;
	struct rsx_cmp_endpoint *ep = NULL;
	char ip[32];
	rsx_cmp_config_init(&c);
	c.backend = RSX_CMP_MEM;
	snprintf(ip, sizeof(ip), "10.0.0.%d", host);
	rsx_cmp_addr_set(&c.local, ip, port);
	if (fault) {
		c.fault_enabled = 1;
		c.fault = *fault;
	}
	if (rsx_cmp_open(&c, &ep) != 0)
		return NULL;
	return ep;
}

/* f = one rule: drop data datagrams [first, first + count) (ordinals in the data class, 0-based). */
static inline void t_drop(struct rsx_cmp_fault_config *f, uint64_t first, uint64_t count)
{
	memset(f, 0, sizeof(*f));
	f->nrules = 1;
	f->rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_DATA, first, count, 0 };
}

/*
 * The usual pair: sender side a = 10.0.0.1:9000 (with faults, if given),
 * receiver side b = 10.0.0.2:9001, linked. Returns 0, or -1 if either failed.
 */
static inline int t_mem_pair(struct rsx_cmp_endpoint **a, struct rsx_cmp_endpoint **b,
			     const struct rsx_cmp_fault_config *fault)
{
	*a = t_mem_ep(1, 9000, fault);
	*b = t_mem_ep(2, 9001, NULL);
	return *a && *b && rsx_cmp_mem_link(*a, *b) == 0 ? 0 : -1;
}

/* A sender config of stream to the pair's receiver side (10.0.0.2:9001). */
static inline void t_sender_config(struct rsx_cmp_sender_config *sc, uint32_t stream)
{
	rsx_cmp_sender_config_init(sc);
	sc->stream_id = stream;
	sc->ndest = 1;
	rsx_cmp_addr_set(&sc->dest[0], "10.0.0.2", 9001);
}

#endif
