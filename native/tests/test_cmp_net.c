/*
 * test_cmp_net.c - the udp and io_uring backends end to end on loopback, in
 * busy and sleep mode, through the benchmark harness (which checks every
 * delivered record): ping-pong, one-way, one-way under loss, malformed
 * datagrams, and a port that cannot be shared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "rsx/cmp_bench.h"
#include "rsx/probe.h"
#include "t_helpers.h"
#include "t_cmp.h"

static const char *bname(uint32_t b)
{
	return b == RSX_CMP_UDP ? "udp" : b == RSX_CMP_URING ? "uring" : "?";
}

static void cfg(struct rsx_cmp_bench_config *c, uint32_t backend, uint32_t mode)
{
	rsx_cmp_bench_config_init(c);
	c->a.backend = c->b.backend = backend;
	c->a.mode = c->b.mode = mode;
	c->timeout_ms = 20000;
}

static void test_rtt(uint32_t backend, uint32_t mode)
{
	struct rsx_cmp_bench_config c;
	struct rsx_cmp_bench_result res;
	uint64_t samples[2000];
	cfg(&c, backend, mode);
	c.warmup = 100;
	c.count = 2000;
	T_EQ(rsx_cmp_bench_rtt(&c, samples, &res), 0);
	T_EQ(res.error, 0);
	T_EQ(res.done, 2000);
	T_EQ(res.order_errors, 0);
	uint64_t min = UINT64_MAX;
	for (int i = 0; i < 2000; i++)
		if (samples[i] < min)
			min = samples[i];
	T_CHECK(min > 0 && min < 10000000);
	fprintf(stderr, "%s %s rtt: min %llu ns over %llu round trips\n", bname(backend),
		mode == RSX_CMP_BUSY ? "busy" : "sleep", (unsigned long long)min, (unsigned long long)res.done);
}

static void test_oneway(uint32_t backend, uint32_t mode, int lossy)
{
	struct rsx_cmp_bench_config c;
	struct rsx_cmp_bench_result res;
	cfg(&c, backend, mode);
	c.count = lossy ? 50000 : 100000;
	c.payload = 128;
	c.fetch_all = 1;
	/*
	 * CMP has no flow control: a sender that outruns its receiver makes it
	 * fall back to replay. The harness keeps the sender at most 2048 records
	 * ahead of the receiver's delivery (capacity mode).
	 */
	c.inflight = 2048;
	if (lossy) {
		c.a.fault_enabled = 1;
		c.a.fault.seed = 5;
		c.a.fault.drop_ppm = 50000;
		c.a.fault.dup_ppm = 10000;
		c.a.fault.reorder_ppm = 10000;
	}
	T_EQ(rsx_cmp_bench_oneway(&c, &res), 0);
	T_EQ(res.error, 0);
	T_EQ(res.done, c.count);
	T_EQ(res.order_errors, 0);
	T_EQ(res.receiver.delivered, c.count);
	T_EQ(res.receiver.faults, 0);
	if (lossy) {
		T_CHECK(res.fault_a.dropped > c.count / 40);
		T_CHECK(res.receiver.recovered > c.count / 40);
		T_CHECK(res.receiver.duplicates > 0);
	}
	fprintf(stderr, "%s %s one-way%s: %llu records in %.1f ms (%.0f/s), naks %llu\n", bname(backend),
		mode == RSX_CMP_BUSY ? "busy" : "sleep", lossy ? " lossy" : "",
		(unsigned long long)res.done, res.elapsed_ns / 1e6, res.done * 1e9 / (double)res.elapsed_ns,
		(unsigned long long)res.receiver.naks_sent);
}

/* Malformed datagrams from a plain socket are counted and dropped; the stream is untouched. */
static void test_malformed(uint32_t backend)
{
	struct rsx_cmp_config c;
	struct rsx_cmp_endpoint *rx_ep, *tx_ep;
	struct rsx_cmp_receiver *r;
	struct rsx_cmp_receiver_config rc;
	struct rsx_cmp_addr to;
	struct rsx_cmp_endpoint_stats st;
	uint8_t rec[RSX_RECORD_MAX + 8], out[RSX_RECORD_MAX];

	rsx_cmp_config_init(&c);
	c.backend = backend;
	rsx_cmp_addr_set(&c.local, "127.0.0.1", 0);
	T_EQ(rsx_cmp_open(&c, &rx_ep), 0);
	c.backend = RSX_CMP_UDP;
	T_EQ(rsx_cmp_open(&c, &tx_ep), 0);
	rsx_cmp_receiver_config_init(&rc);
	rc.stream_id = 9;
	T_EQ(rsx_cmp_receiver_open(rx_ep, &rc, &r), 0);
	rsx_cmp_local_addr(rx_ep, &to);

	int n = t_bbo(rec, 9, 1);
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, 5, &to), 5);				/* short */
	rec[40] ^= 1;
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, (size_t)n, &to), n);			/* bad CRC */
	rec[40] ^= 1;
	rec[n] = 0;
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, (size_t)n + 1, &to), n + 1);		/* trailing byte */
	rec[4] = 128;
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, (size_t)n, &to), n);			/* len field wrong */
	rec[4] = 64;
	rec[2] = 200;
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, (size_t)n, &to), n);			/* unknown type */
	rec[2] = RSX_REC_BBO;
	rec[0] = 2;
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, (size_t)n, &to), n);			/* version */
	rec[0] = 1;
	rec[12] = 1;
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, (size_t)n, &to), n);			/* reserved */
	rec[12] = 0;
	n = t_bbo(rec, 10, 1);
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, (size_t)n, &to), n);			/* another stream */
	n = t_bbo(rec, 9, 0);
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, (size_t)n, &to), n);			/* data with seq 0 */
	struct rsx_caught_up cu;
	memset(&cu, 0, sizeof(cu));
	cu.stream_id = 9;
	n = rsx_record_frame(rec, sizeof(rec), RSX_REC_CAUGHT_UP, &cu, sizeof(cu));
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, (size_t)n, &to), n);			/* a DXS type */
	n = t_bbo(rec, 9, 1);
	T_EQ(rsx_cmp_send_raw(tx_ep, rec, (size_t)n, &to), n);			/* finally a good one */

	uint64_t end = rsx_cmp_now_ns() + 2000000000ull;
	int got = 0;
	while (got == 0 && rsx_cmp_now_ns() < end)
		got = rsx_cmp_receive(rx_ep, r, out, sizeof(out), 1, 1000);
	T_EQ(got, 1);
	T_CHECK(t_rec_ok(out, 9, 1));
	rsx_cmp_endpoint_stats(rx_ep, &st);
	T_EQ(st.rx_short, 1);
	T_EQ(st.rx_bad_crc, 1);
	T_EQ(st.rx_bad_length, 2);
	T_EQ(st.rx_bad_type, 1);
	T_EQ(st.rx_bad_version, 1);
	T_EQ(st.rx_bad_reserved, 1);
	T_EQ(st.rx_unknown_stream, 1);
	T_EQ(st.rx_bad_seq, 1);
	T_EQ(st.rx_unexpected_type, 1);
	T_EQ(st.rx_datagrams, 1);
	struct rsx_cmp_receiver_stats rs;
	rsx_cmp_receiver_stats(r, &rs);
	T_EQ(rs.received, 1);
	T_EQ(rs.delivered, 1);

	/* The port is ours alone: no SO_REUSEPORT sharing (lesson 41). */
	struct rsx_cmp_endpoint *dup;
	c.backend = backend;
	c.local = to;
	T_EQ(rsx_cmp_open(&c, &dup), -EADDRINUSE);
	rsx_cmp_close(rx_ep);
	rsx_cmp_close(tx_ep);
}

int main(void)
{
	int have_uring = rsx_probe_io_uring() == 0;
	test_malformed(RSX_CMP_UDP);
	test_rtt(RSX_CMP_UDP, RSX_CMP_BUSY);
	test_rtt(RSX_CMP_UDP, RSX_CMP_SLEEP);
	test_oneway(RSX_CMP_UDP, RSX_CMP_BUSY, 0);
	test_oneway(RSX_CMP_UDP, RSX_CMP_SLEEP, 0);
	test_oneway(RSX_CMP_UDP, RSX_CMP_BUSY, 1);
	if (have_uring) {
		test_malformed(RSX_CMP_URING);
		test_rtt(RSX_CMP_URING, RSX_CMP_BUSY);
		test_rtt(RSX_CMP_URING, RSX_CMP_SLEEP);
		test_oneway(RSX_CMP_URING, RSX_CMP_BUSY, 0);
		test_oneway(RSX_CMP_URING, RSX_CMP_SLEEP, 0);
		test_oneway(RSX_CMP_URING, RSX_CMP_BUSY, 1);
	} else {
		fprintf(stderr, "io_uring not available here: uring cases skipped\n");
	}
	T_DONE();
}
