/*
 * test_cmp_fault.c - the fault layer (seeded rates, ordinal patterns, every
 * action) and the headline scenario: one million records through 5% drop,
 * 1% duplication and 1% reordering each way, delivered complete and in order.
 */
#include <stdio.h>
#include <stdlib.h>

#include "t_helpers.h"
#include "t_cmp.h"

#define N_RAW 20000

/* Send N_RAW raw datagrams a -> b through a's fault layer; return how many arrived. */
static unsigned run_raw(const struct rsx_cmp_fault_config *f)
{
	struct rsx_cmp_endpoint *a = t_mem_ep(1, 9000, f), *b = t_mem_ep(2, 9001, NULL);
	struct rsx_cmp_addr to;
	unsigned n = 0;
	rsx_cmp_mem_link(a, b);
	rsx_cmp_addr_set(&to, "10.0.0.2", 9001);
	/* A raw datagram whose bytes 2..3 (the type) are 1: class "data". */
	for (uint32_t i = 0; i < N_RAW; i++) {
		uint8_t d[8] = { 0, 0, 1, 0 };
		memcpy(d + 4, &i, 4);
		T_EQ(rsx_cmp_send_raw(a, d, sizeof(d), &to), (int)sizeof(d));
		if (i % 1000 == 999)	/* drain b, whose raw receptions are counted as rx_short */
			while (rsx_cmp_poll(b, 0) > 0)
				;
	}
	struct rsx_cmp_endpoint_stats st;
	while (rsx_cmp_poll(b, 0) > 0)
		;
	rsx_cmp_endpoint_stats(b, &st);
	n = (unsigned)st.rx_short;
	rsx_cmp_close(a);
	rsx_cmp_close(b);
	return n;
}

static void test_rates_are_seeded_and_close(void)
{
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_fault_stats fs1, fs2;
	memset(&f, 0, sizeof(f));
	f.seed = 1234;
	f.drop_ppm = 50000;
	f.dup_ppm = 10000;
	unsigned got1 = run_raw(&f);
	unsigned got2 = run_raw(&f);
	T_EQ(got1, got2);	/* same seed, same traffic: same faults */
	/* Expected arrivals: N x (1 - 0.05 + 0.01) = 19200; allow 4 sigma. */
	T_CHECK(got1 > 19000 && got1 < 19400);
	f.seed = 99;
	unsigned got3 = run_raw(&f);
	T_CHECK(got3 != got1);

	/* The counters agree with the arrivals. */
	struct rsx_cmp_endpoint *a = t_mem_ep(1, 9000, &f), *b = t_mem_ep(2, 9001, NULL);
	struct rsx_cmp_addr to;
	rsx_cmp_mem_link(a, b);
	rsx_cmp_addr_set(&to, "10.0.0.2", 9001);
	for (int i = 0; i < 1000; i++) {
		uint8_t d[8] = { 0, 0, 1, 0 };
		rsx_cmp_send_raw(a, d, sizeof(d), &to);
	}
	rsx_cmp_fault_stats(a, &fs1);
	rsx_cmp_fault_stats(b, &fs2);
	T_EQ(fs1.seen, 1000);
	T_CHECK(fs1.dropped > 20 && fs1.dropped < 90);
	T_CHECK(fs1.duplicated > 0 && fs1.duplicated < 30);
	T_EQ(fs2.seen, 0);	/* no fault layer on b */
	rsx_cmp_close(a);
	rsx_cmp_close(b);
}

/* Exact pattern semantics, observed through a receiver on stream 1. */
static void send_records(struct rsx_cmp_endpoint *a, struct rsx_cmp_sender *s, uint64_t n)
{
	uint8_t rec[RSX_RECORD_MAX];
	(void)a;
	for (uint64_t q = 1; q <= n; q++) {
		int len = t_bbo(rec, 1, q);
		T_EQ(rsx_cmp_sender_send(s, rec, (size_t)len), len);
	}
}

static void open_pair(const struct rsx_cmp_fault_config *f, struct rsx_cmp_endpoint **a,
		      struct rsx_cmp_endpoint **b, struct rsx_cmp_sender **s, struct rsx_cmp_receiver **r)
{
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_receiver_config rc;
	*a = t_mem_ep(1, 9000, f);
	*b = t_mem_ep(2, 9001, NULL);
	rsx_cmp_mem_link(*a, *b);
	rsx_cmp_sender_config_init(&sc);
	sc.stream_id = 1;
	sc.ndest = 1;
	sc.heartbeat_us = 0;
	rsx_cmp_addr_set(&sc.dest[0], "10.0.0.2", 9001);
	rsx_cmp_receiver_config_init(&rc);
	rc.stream_id = 1;
	rc.nak_delay_us = 1000000;	/* observe the raw arrival pattern, no recovery */
	T_EQ(rsx_cmp_sender_open(*a, &sc, s), 0);
	T_EQ(rsx_cmp_receiver_open(*b, &rc, r), 0);
}

static void test_patterns(void)
{
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_endpoint *a, *b;
	struct rsx_cmp_sender *s;
	struct rsx_cmp_receiver *r;
	struct rsx_cmp_receiver_stats rs;
	struct rsx_cmp_receiver_info info;
	struct rsx_cmp_fault_stats fs;

	/* drop every 10th data datagram starting at ordinal 0: seqs 1, 11, 21, ... */
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_DATA, 0, 1, 10 };
	open_pair(&f, &a, &b, &s, &r);
	send_records(a, s, 100);
	while (rsx_cmp_poll(b, 0) > 0)
		;
	rsx_cmp_receiver_stats(r, &rs);
	T_EQ(rs.received, 90);
	rsx_cmp_fault_stats(a, &fs);
	T_EQ(fs.dropped, 10);
	rsx_cmp_receiver_info(r, &info);
	T_EQ(info.expected, 1);	/* seq 1 is the first hole */
	rsx_cmp_close(a);
	rsx_cmp_close(b);

	/* control-class rules leave data alone */
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_CONTROL, 0, 1000, 0 };
	open_pair(&f, &a, &b, &s, &r);
	send_records(a, s, 100);
	while (rsx_cmp_poll(b, 0) > 0)
		;
	rsx_cmp_receiver_stats(r, &rs);
	T_EQ(rs.received, 100);
	rsx_cmp_close(a);
	rsx_cmp_close(b);

	/* duplicate ordinal 4 (seq 5): one duplicate arrives */
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DUP, RSX_CMP_FC_ANY, 4, 1, 0 };
	open_pair(&f, &a, &b, &s, &r);
	send_records(a, s, 10);
	while (rsx_cmp_poll(b, 0) > 0)
		;
	rsx_cmp_receiver_stats(r, &rs);
	T_EQ(rs.received, 10);
	T_EQ(rs.duplicates, 1);
	rsx_cmp_close(a);
	rsx_cmp_close(b);

	/* reorder ordinal 4 (seq 5) behind 3 others: seqs 6, 7, 8 arrive ahead of it */
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.reorder_depth = 3;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_REORDER, RSX_CMP_FC_DATA, 4, 1, 0 };
	open_pair(&f, &a, &b, &s, &r);
	send_records(a, s, 10);
	while (rsx_cmp_poll(b, 0) > 0)
		;
	rsx_cmp_receiver_stats(r, &rs);
	T_EQ(rs.received, 10);
	T_EQ(rs.reordered, 3);	/* 6, 7, 8 stored ahead of expected = 5 */
	rsx_cmp_receiver_info(r, &info);
	T_EQ(info.expected, 11);
	rsx_cmp_close(a);
	rsx_cmp_close(b);

	/* delay ordinal 0 (seq 1) by 3 ms: it arrives only after the time passed and a tick ran */
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.delay_us = 3000;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DELAY, RSX_CMP_FC_DATA, 0, 1, 0 };
	open_pair(&f, &a, &b, &s, &r);
	uint64_t t0 = rsx_cmp_now_ns();
	send_records(a, s, 3);
	while (rsx_cmp_poll(b, 0) > 0)
		;
	rsx_cmp_receiver_info(r, &info);
	T_EQ(info.expected, 1);
	while (info.expected == 1 && rsx_cmp_now_ns() - t0 < 1000000000ull) {
		rsx_cmp_poll(a, 0);
		rsx_cmp_poll(b, 0);
		rsx_cmp_receiver_info(r, &info);
	}
	T_EQ(info.expected, 4);
	T_CHECK(rsx_cmp_now_ns() - t0 >= 3000000ull);
	rsx_cmp_fault_stats(a, &fs);
	T_EQ(fs.delayed, 1);
	rsx_cmp_close(a);
	rsx_cmp_close(b);
}

static int wal_fetch(void *ctx, uint32_t stream, uint64_t seq, void *buf, size_t cap)
{
	(void)ctx;
	(void)cap;
	return t_rec(buf, stream, seq);
}

/* One million records, 5% drop + 1% duplicate + 1% reorder on both directions, paced at 1M/s. */
static void test_million_lossy(void)
{
	const uint64_t N = 1000000;
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_receiver_config rc;
	struct rsx_cmp_endpoint *a, *b;
	struct rsx_cmp_sender *s;
	struct rsx_cmp_receiver *r;
	static uint8_t out[256 * RSX_RECORD_MAX];
	uint8_t batch[64 * RSX_RECORD_MAX];

	memset(&f, 0, sizeof(f));
	f.seed = 20261125;
	f.drop_ppm = 50000;
	f.dup_ppm = 10000;
	f.reorder_ppm = 10000;
	f.reorder_depth = 5;
	a = t_mem_ep(1, 9000, &f);
	f.seed = 7;
	b = t_mem_ep(2, 9001, &f);	/* NAKs get lost too */
	rsx_cmp_mem_link(a, b);
	rsx_cmp_sender_config_init(&sc);
	sc.stream_id = 3;
	sc.ndest = 1;
	sc.fetch = wal_fetch;	/* the WAL has everything */
	rsx_cmp_addr_set(&sc.dest[0], "10.0.0.2", 9001);
	rsx_cmp_receiver_config_init(&rc);
	rc.stream_id = 3;
	T_EQ(rsx_cmp_sender_open(a, &sc, &s), 0);
	T_EQ(rsx_cmp_receiver_open(b, &rc, &r), 0);

	uint64_t next = 1, got = 0, bad = 0;
	uint64_t t0 = rsx_cmp_now_ns(), deadline = t0 + 30000000000ull;
	while (got < N && rsx_cmp_now_ns() < deadline) {
		uint64_t allowed = (rsx_cmp_now_ns() - t0) / 1000 + 1;	/* 1 record per us */
		if (next <= N && next <= allowed) {
			size_t len = 0, used = 0;
			uint64_t q = next;
			for (; q <= N && q <= allowed && q < next + 64; q++)
				len += (size_t)t_rec(batch + len, 3, q);
			int k = rsx_cmp_sender_send_batch(s, batch, len, &used);
			if (k > 0)
				next += (uint64_t)k;
		}
		rsx_cmp_poll(a, 0);
		rsx_cmp_poll(b, 0);
		int k;
		while ((k = rsx_cmp_receiver_read(r, out, RSX_RECORD_MAX, 256)) > 0)
			for (int i = 0; i < k; i++, got++)
				if (!t_rec_ok(out + (size_t)i * RSX_RECORD_MAX, 3, got + 1))
					bad++;
		if (k == RSX_EREPLAY)
			break;
	}
	uint64_t ms = (rsx_cmp_now_ns() - t0) / 1000000;
	struct rsx_cmp_receiver_stats rs;
	struct rsx_cmp_sender_stats ss;
	struct rsx_cmp_fault_stats fa;
	rsx_cmp_receiver_stats(r, &rs);
	rsx_cmp_sender_stats(s, &ss);
	rsx_cmp_fault_stats(a, &fa);
	fprintf(stderr, "million: %llu delivered in %llu ms; dropped %llu dup %llu reordered %llu; "
		"naks %llu recovered %llu dups %llu retx ring %llu wal %llu\n",
		(unsigned long long)got, (unsigned long long)ms, (unsigned long long)fa.dropped,
		(unsigned long long)fa.duplicated, (unsigned long long)fa.reordered,
		(unsigned long long)rs.naks_sent, (unsigned long long)rs.recovered,
		(unsigned long long)rs.duplicates, (unsigned long long)ss.retx_ring,
		(unsigned long long)ss.retx_fetched);
	T_EQ(got, N);
	T_EQ(bad, 0);
	T_EQ(rs.delivered, N);
	T_EQ(rs.faults, 0);
	T_CHECK(fa.dropped > 45000);	/* the faults really happened */
	T_CHECK(fa.duplicated > 8000);
	T_CHECK(fa.reordered > 8000);
	T_CHECK(rs.recovered > 45000);
	T_CHECK(rs.duplicates > 8000);
	rsx_cmp_close(a);
	rsx_cmp_close(b);
}

int main(void)
{
	test_rates_are_seeded_and_close();
	test_patterns();
	test_million_lossy();
	T_DONE();
}
