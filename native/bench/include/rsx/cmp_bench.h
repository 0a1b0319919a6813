/*
 * rsx/cmp_bench.h - the CMP benchmark harness, one for every backend
 * (specs/cmp.md section 11). Two threads, each driving its own endpoint,
 * pinned to two CPUs: at most two spinners on a two-core machine. Also used
 * by the end-to-end tests, since it checks every delivered record.
 */
#ifndef RSX_CMP_BENCH_H
#define RSX_CMP_BENCH_H

#include <stdint.h>

#include "rsx/cmp.h"

struct rsx_cmp_bench_config {
	struct rsx_cmp_config a;	/* side A: initiator (rtt) / sender (one-way) */
	struct rsx_cmp_config b;	/* side B: echo (rtt) / receiver (one-way) */
	struct rsx_cmp_addr a_to_b;	/* where A sends; port 0 = B's bound port */
	struct rsx_cmp_addr b_to_a;	/* where B sends; port 0 = A's bound port */
	uint32_t payload;		/* 64 (BBO records) or 128 (FILL records) */
	uint32_t batch;			/* one-way: records per send_batch, 1..64 */
	uint64_t warmup;		/* rtt: round trips not sampled */
	uint64_t count;			/* rtt: sampled round trips; one-way: records */
	uint64_t rate;			/* one-way: records/s offered; 0 = as fast as the sender goes */
	uint64_t inflight;		/* one-way: most records A may be ahead of B's delivery; 0 = no limit */
	int32_t cpu_a, cpu_b;		/* CPU to pin each thread to; -1 = no pinning */
	uint32_t window;		/* receiver window, 0 = default */
	uint32_t ring;			/* sender hot ring, 0 = default */
	uint32_t heartbeat_us;		/* 0 = default */
	uint32_t fetch_all;		/* one-way: the sender has a WAL that can rebuild any seq */
	uint64_t timeout_ms;		/* give up (error -ETIMEDOUT) after this */
};

struct rsx_cmp_bench_result {
	int32_t error;			/* 0, or the first error (-ETIMEDOUT, RSX_EREPLAY, -errno) */
	int32_t pinned;			/* 1 if both threads were pinned */
	uint64_t done;			/* round trips sampled / records delivered in order */
	uint64_t elapsed_ns;		/* rtt: sampled phase; one-way: first send to last delivery */
	uint64_t order_errors;		/* delivered records that were not the next seq or were corrupt */
	struct rsx_cmp_sender_stats sender;	/* A's sender */
	struct rsx_cmp_receiver_stats receiver;	/* B's receiver */
	struct rsx_cmp_endpoint_stats ep_a, ep_b;
	struct rsx_cmp_fault_stats fault_a, fault_b;
};

void rsx_cmp_bench_config_init(struct rsx_cmp_bench_config *c);

/*
 * Ping-pong: A sends record i on stream 1, B echoes it on stream 2, A waits
 * for the echo; samples[k] = ns from A's send to A's delivery (count
 * entries). Returns 0 (res->error says if the run failed) or RSX_EINVALID /
 * an open error.
 */
int rsx_cmp_bench_rtt(const struct rsx_cmp_bench_config *c, uint64_t *samples, struct rsx_cmp_bench_result *res);

/* One stream one way: A sends count records, B checks each is the next seq. */
int rsx_cmp_bench_oneway(const struct rsx_cmp_bench_config *c, struct rsx_cmp_bench_result *res);

#endif
