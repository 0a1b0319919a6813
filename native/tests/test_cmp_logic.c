/*
 * test_cmp_logic.c - sender and receiver rules over the in-memory backend:
 * in-order delivery, sender checks, NAK recovery from the ring and from the
 * fetch seam, tail loss by heartbeat, "needs replay" then replay, stalls,
 * joining, window overrun, a spoofed heartbeat. Single-threaded, real clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "t_helpers.h"
#include "t_cmp.h"

#define STREAM 42

struct pair {
	struct rsx_cmp_endpoint *a, *b;	/* a: sender side, b: receiver side */
	struct rsx_cmp_sender *s;
	struct rsx_cmp_receiver *r;
	uint64_t got;			/* records read, all checked in order */
	int bad;
	uint8_t out[256 * RSX_RECORD_MAX];
};

static void pair_open(struct pair *p, const struct rsx_cmp_fault_config *fa,
		      const struct rsx_cmp_sender_config *sc_in, const struct rsx_cmp_receiver_config *rc_in)
{
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_receiver_config rc;
	memset(p, 0, sizeof(*p));
	T_EQ(t_mem_pair(&p->a, &p->b, fa), 0);
	if (sc_in) {
		sc = *sc_in;
	} else {
		rsx_cmp_sender_config_init(&sc);
	}
	sc.stream_id = STREAM;
	sc.ndest = 1;
	rsx_cmp_addr_set(&sc.dest[0], "10.0.0.2", 9001);
	if (rc_in) {
		rc = *rc_in;
	} else {
		rsx_cmp_receiver_config_init(&rc);
	}
	rc.stream_id = STREAM;
	T_EQ(rsx_cmp_sender_open(p->a, &sc, &p->s), 0);
	T_EQ(rsx_cmp_receiver_open(p->b, &rc, &p->r), 0);
}

static void pair_close(struct pair *p)
{
	rsx_cmp_close(p->a);
	rsx_cmp_close(p->b);
}

/* Poll both sides once and read everything deliverable; returns read's last result. */
static int pump(struct pair *p)
{
	int rc;
	rsx_cmp_poll(p->a, 0);
	rsx_cmp_poll(p->b, 0);
	while ((rc = rsx_cmp_receiver_read(p->r, p->out, RSX_RECORD_MAX, 256)) > 0) {
		for (int i = 0; i < rc; i++) {
			uint8_t *rec = p->out + (size_t)i * RSX_RECORD_MAX;
			if (!t_rec_ok(rec, STREAM, p->got + 1) && !p->bad) {
				fprintf(stderr, "record %llu out of order or corrupt\n",
					(unsigned long long)(p->got + 1));
				p->bad = 1;
			}
			p->got++;
		}
	}
	return rc;
}

/* Pump until `want` records were read or `ms` passed. */
static void pump_until(struct pair *p, uint64_t want, long ms)
{
	uint64_t end = rsx_cmp_now_ns() + (uint64_t)ms * 1000000;
	while (p->got < want && rsx_cmp_now_ns() < end) {
		if (pump(p) == RSX_EREPLAY)
			return;
		t_sleep_us(20);
	}
}

static void send_range(struct pair *p, uint64_t from, uint64_t to)
{
	uint8_t rec[RSX_RECORD_MAX];
	for (uint64_t q = from; q <= to; q++) {
		int n = t_rec(rec, STREAM, q);
		int rc;
		while ((rc = rsx_cmp_sender_send(p->s, rec, (size_t)n)) == -EAGAIN)
			pump(p);
		T_EQ(rc, n);
	}
}

static void test_in_order(void)
{
	struct pair p;
	struct rsx_cmp_receiver_info info;
	struct rsx_cmp_receiver_stats rs;
	pair_open(&p, NULL, NULL, NULL);
	send_range(&p, 1, 1000);
	pump_until(&p, 1000, 2000);
	T_EQ(p.got, 1000);
	T_EQ(p.bad, 0);
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.state, RSX_CMP_LIVE);
	T_EQ(info.delivered, 1000);
	T_EQ(info.expected, 1001);
	rsx_cmp_receiver_stats(p.r, &rs);
	T_EQ(rs.received, 1000);
	T_EQ(rs.naks_sent, 0);
	T_EQ(rs.duplicates, 0);
	/* Nothing more: read returns 0, not an error. */
	T_EQ(rsx_cmp_receiver_read(p.r, p.out, RSX_RECORD_MAX, 10), 0);
	pair_close(&p);
}

static void test_sender_checks(void)
{
	struct pair p;
	struct rsx_cmp_sender_stats ss;
	uint8_t rec[RSX_RECORD_MAX];
	pair_open(&p, NULL, NULL, NULL);
	int n = t_bbo(rec, STREAM, 5);
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)n), n);	/* first record: any seq >= 1 */
	n = t_bbo(rec, STREAM, 7);
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)n), RSX_ESEQ);
	n = t_bbo(rec, STREAM, 5);
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)n), RSX_ESEQ);	/* never re-sent as new */
	n = t_bbo(rec, STREAM + 1, 6);
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)n), RSX_ESTREAM);
	n = t_bbo(rec, STREAM, 6);
	rec[30] ^= 1;
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)n), RSX_ECRC);
	rec[30] ^= 1;
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)n - 1), RSX_ESHORT);
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)n + 1), RSX_ELENGTH);
	struct rsx_heartbeat hb;
	memset(&hb, 0, sizeof(hb));
	hb.stream_id = STREAM;
	int hn = rsx_record_frame(rec, sizeof(rec), RSX_REC_HEARTBEAT, &hb, sizeof(hb));
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)hn), RSX_ETYPE);
	rsx_cmp_sender_stats(p.s, &ss);
	T_EQ(ss.records, 1);
	T_EQ(ss.last_seq, 5);
	n = t_bbo(rec, STREAM, 6);
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)n), n);	/* state untouched by the refusals */
	/* A batch is checked record by record too: a bad CRC stops it there. */
	uint8_t two[2 * RSX_RECORD_MAX];
	int n1 = t_bbo(two, STREAM, 7), n2 = t_bbo(two + n1, STREAM, 8);
	two[n1 + 30] ^= 1;
	size_t used = 0;
	T_EQ(rsx_cmp_sender_send_batch(p.s, two, (size_t)(n1 + n2), &used), 1);
	T_EQ(used, (size_t)n1);
	T_EQ(rsx_cmp_sender_send_batch(p.s, two + n1, (size_t)n2, &used), RSX_ECRC);
	/* Seq 0 is never data. */
	struct rsx_cmp_sender *s2;
	struct rsx_cmp_sender_config sc;
	rsx_cmp_sender_config_init(&sc);
	sc.stream_id = 99;
	sc.ndest = 1;
	rsx_cmp_addr_set(&sc.dest[0], "10.0.0.2", 9001);
	T_EQ(rsx_cmp_sender_open(p.a, &sc, &s2), 0);
	T_EQ(rsx_cmp_sender_open(p.a, &sc, &s2), RSX_EINVALID);	/* one sender per stream */
	/*
	 * owner_sealed: the stream owner's own sealed records; the CRC is not
	 * hashed again (the receivers check it), every header field still is.
	 */
	struct rsx_cmp_sender *s3;
	sc.stream_id = 98;
	sc.owner_sealed = 1;
	T_EQ(rsx_cmp_sender_open(p.a, &sc, &s3), 0);
	n = t_bbo(rec, 98, 1);
	rec[30] ^= 1;
	T_EQ(rsx_cmp_sender_send(s3, rec, (size_t)n), n);
	n = t_bbo(rec, 98, 2);
	rec[0] = 2;
	T_EQ(rsx_cmp_sender_send(s3, rec, (size_t)n), RSX_EVERSION);
	n = t_bbo(rec, 97, 2);
	T_EQ(rsx_cmp_sender_send(s3, rec, (size_t)n), RSX_ESTREAM);
	n = t_bbo(rec, 99, 0);
	T_EQ(rsx_cmp_sender_send(s2, rec, (size_t)n), RSX_ESEQ);
	/* Bad configurations are refused. */
	sc.stream_id = 100;
	sc.ring_size = 1000;
	T_EQ(rsx_cmp_sender_open(p.a, &sc, &s2), RSX_EINVALID);
	sc.ring_size = 64;
	sc.ndest = 0;
	T_EQ(rsx_cmp_sender_open(p.a, &sc, &s2), RSX_EINVALID);
	pair_close(&p);
}

static void test_batch(void)
{
	struct pair p;
	uint8_t buf[300 * RSX_RECORD_MAX];
	size_t len = 0, used = 0;
	pair_open(&p, NULL, NULL, NULL);
	for (uint64_t q = 1; q <= 300; q++)
		len += (size_t)t_rec(buf + len, STREAM, q);
	T_EQ(rsx_cmp_sender_send_batch(p.s, buf, len, &used), 300);
	T_EQ(used, len);
	/* A batch with a bad record in the middle: records before it are accepted. */
	size_t l2 = 0;
	for (uint64_t q = 301; q <= 310; q++)
		l2 += (size_t)t_rec(buf + l2, STREAM, q == 305 ? 999 : q);
	T_EQ(rsx_cmp_sender_send_batch(p.s, buf, l2, &used), 4);
	/* Nothing accepted: the first record's error. */
	T_EQ(rsx_cmp_sender_send_batch(p.s, buf + used, l2 - used, &used), RSX_ESEQ);
	T_EQ(used, 0);
	pump_until(&p, 304, 2000);
	T_EQ(p.got, 304);
	T_EQ(p.bad, 0);
	pair_close(&p);
}

static void test_loss_recovered_from_ring(void)
{
	struct rsx_cmp_fault_config f;
	struct pair p;
	struct rsx_cmp_receiver_stats rs;
	struct rsx_cmp_sender_stats ss;
	memset(&f, 0, sizeof(f));
	f.nrules = 2;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_DATA, 10, 5, 0 };
	f.rules[1] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_DATA, 40, 1, 0 };
	pair_open(&p, &f, NULL, NULL);
	send_range(&p, 1, 100);
	pump_until(&p, 100, 3000);
	T_EQ(p.got, 100);
	T_EQ(p.bad, 0);
	rsx_cmp_receiver_stats(p.r, &rs);
	rsx_cmp_sender_stats(p.s, &ss);
	T_EQ(rs.recovered, 6);
	T_EQ(rs.gaps, 6);
	T_CHECK(rs.naks_sent >= 2);
	T_EQ(ss.retx_ring, 6);
	T_EQ(ss.retx_gone, 0);
	T_EQ(rs.duplicates, 0);
	pair_close(&p);
}

/* The "WAL": every record can be rebuilt from its seq; seqs below `oldest` are gone. */
struct fake_wal {
	uint64_t oldest;
	uint64_t calls;
};

static int fake_fetch(void *ctx, uint32_t stream, uint64_t seq, void *buf, size_t cap)
{
	struct fake_wal *w = ctx;
	w->calls++;
	if (seq < w->oldest)
		return RSX_EGONE;
	if (cap < RSX_RECORD_MAX)
		return RSX_ESHORT;
	return t_rec(buf, stream, seq);
}

static void test_loss_recovered_from_wal(void)
{
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_sender_config sc;
	struct pair p;
	struct fake_wal wal = { .oldest = 1 };
	struct rsx_cmp_sender_stats ss;
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_DATA, 600, 10, 0 };
	rsx_cmp_sender_config_init(&sc);
	sc.ring_size = 64;
	sc.fetch = fake_fetch;
	sc.fetch_ctx = &wal;
	pair_open(&p, &f, &sc, NULL);
	send_range(&p, 1, 1000);	/* the ring keeps 937..1000 by the time the NAK comes */
	pump_until(&p, 1000, 3000);
	T_EQ(p.got, 1000);
	T_EQ(p.bad, 0);
	rsx_cmp_sender_stats(p.s, &ss);
	T_EQ(ss.retx_fetched, 10);
	T_EQ(ss.retx_ring, 0);
	T_EQ(ss.retx_gone, 0);
	pair_close(&p);
}

/* A fetch that returns the wrong record is not sent: the check protects the wire. */
static int lying_fetch(void *ctx, uint32_t stream, uint64_t seq, void *buf, size_t cap)
{
	(void)ctx;
	(void)cap;
	return t_rec(buf, stream, seq + 1);
}

static void test_fetch_mismatch_not_sent(void)
{
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_receiver_config rc;
	struct pair p;
	struct rsx_cmp_sender_stats ss;
	struct rsx_cmp_receiver_info info;
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_DATA, 3, 1, 0 };
	rsx_cmp_sender_config_init(&sc);
	sc.ring_size = 64;
	sc.fetch = lying_fetch;
	rsx_cmp_receiver_config_init(&rc);
	rc.nak_retry_us = 300;
	rc.nak_max_retries = 3;
	pair_open(&p, &f, &sc, &rc);
	send_range(&p, 1, 200);
	pump_until(&p, 200, 200);
	T_EQ(p.got, 3);	/* 1..3 delivered, seq 4 lost and never served */
	T_EQ(p.bad, 0);
	rsx_cmp_sender_stats(p.s, &ss);
	T_CHECK(ss.fetch_errors >= 1);
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.state, RSX_CMP_NEEDS_REPLAY);
	T_EQ(info.gap_start, 4);
	pair_close(&p);
}

static void test_tail_loss_by_heartbeat(void)
{
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_sender_config sc;
	struct pair p;
	struct rsx_cmp_receiver_stats rs;
	struct rsx_cmp_receiver_info info;
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_DATA, 47, 3, 0 };
	rsx_cmp_sender_config_init(&sc);
	sc.heartbeat_us = 2000;
	pair_open(&p, &f, &sc, NULL);
	send_range(&p, 1, 50);	/* 48, 49, 50 lost: nothing after them reveals the gap */
	pump_until(&p, 47, 1000);
	T_EQ(p.got, 47);
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.state, RSX_CMP_LIVE);	/* the receiver cannot know yet */
	pump_until(&p, 50, 1000);
	T_EQ(p.got, 50);
	T_EQ(p.bad, 0);
	rsx_cmp_receiver_stats(p.r, &rs);
	T_CHECK(rs.heartbeats >= 1);
	T_EQ(rs.recovered, 3);
	pair_close(&p);
}

/* Idle heartbeats back off (heartbeat_idle_us); data starts them over at heartbeat_us (cmp.md 3.5). */
static void test_idle_heartbeat_backoff(void)
{
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_sender_stats st;
	struct pair p;
	rsx_cmp_sender_config_init(&sc);
	sc.heartbeat_us = 1000;
	sc.heartbeat_idle_us = 8000;
	pair_open(&p, NULL, &sc, NULL);
	send_range(&p, 1, 5);
	pump_until(&p, 5, 1000);
	T_EQ(p.got, 5);
	rsx_cmp_sender_stats(p.s, &st);
	uint64_t h0 = st.heartbeats, end = rsx_cmp_now_ns() + 200000000ull;
	while (rsx_cmp_now_ns() < end) {
		pump(&p);
		t_sleep_us(50);
	}
	rsx_cmp_sender_stats(p.s, &st);
	/* 1, 2, 4, 8, 8, ... ms: about 27 in 200 ms, not the 200 of a fixed 1 ms */
	T_CHECK(st.heartbeats - h0 >= 5 && st.heartbeats - h0 <= 60);
	/* data: the next heartbeats come 1 ms and 2 ms after it again, not 8 ms apart */
	send_range(&p, 6, 6);
	uint64_t t0 = rsx_cmp_now_ns(), h1 = st.heartbeats;
	end = t0 + 100000000ull;
	while (rsx_cmp_now_ns() < end) {
		pump(&p);
		rsx_cmp_sender_stats(p.s, &st);
		if (st.heartbeats >= h1 + 2)
			break;
		t_sleep_us(50);
	}
	T_CHECK(st.heartbeats >= h1 + 2 && rsx_cmp_now_ns() - t0 < 12000000ull);
	pump_until(&p, 6, 1000);
	T_EQ(p.got, 6);
	T_EQ(p.bad, 0);
	pair_close(&p);
}

static void test_needs_replay_then_replay(void)
{
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_receiver_config rc;
	struct pair p;
	struct fake_wal wal = { .oldest = 500 };
	struct rsx_cmp_receiver_info info;
	struct rsx_cmp_receiver_stats rs;
	uint8_t rec[RSX_RECORD_MAX];
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_DATA, 100, 10, 0 };
	rsx_cmp_sender_config_init(&sc);
	sc.ring_size = 64;
	sc.fetch = fake_fetch;
	sc.fetch_ctx = &wal;
	rsx_cmp_receiver_config_init(&rc);
	rc.nak_retry_us = 300;
	rc.nak_max_retries = 4;
	pair_open(&p, &f, &sc, &rc);
	send_range(&p, 1, 1000);
	pump_until(&p, 1000, 500);
	T_EQ(p.got, 100);	/* 101..110 are past the horizon: delivery stops there */
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.state, RSX_CMP_NEEDS_REPLAY);
	T_EQ(info.gap_start, 101);
	T_EQ(info.gap_end, 110);
	T_EQ(info.expected, 101);
	T_EQ(rsx_cmp_receiver_read(p.r, p.out, RSX_RECORD_MAX, 10), RSX_EREPLAY);
	/* No NAKs while waiting for the replay, and the state is sticky. */
	rsx_cmp_receiver_stats(p.r, &rs);
	uint64_t naks = rs.naks_sent;
	for (int i = 0; i < 20; i++) {
		pump(&p);
		t_sleep_us(100);
	}
	rsx_cmp_receiver_stats(p.r, &rs);
	T_EQ(rs.naks_sent, naks);
	T_EQ(rs.faults, 1);
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.state, RSX_CMP_NEEDS_REPLAY);

	/* The replay (DXS) starts a little early: overlap is ignored. */
	int n = t_rec(rec, STREAM, 95);
	T_EQ(rsx_cmp_receiver_replay(p.r, rec, (size_t)n), 0);
	/* A replay that skips a seq is refused and changes nothing. */
	n = t_rec(rec, STREAM, 102);
	T_EQ(rsx_cmp_receiver_replay(p.r, rec, (size_t)n), RSX_ESEQ);
	n = t_rec(rec, STREAM + 1, 101);
	T_EQ(rsx_cmp_receiver_replay(p.r, rec, (size_t)n), RSX_ESTREAM);
	n = t_rec(rec, STREAM, 101);
	rec[20] ^= 4;
	T_EQ(rsx_cmp_receiver_replay(p.r, rec, (size_t)n), RSX_ECRC);
	int resumed = 0;
	for (uint64_t q = 101; q <= 110; q++) {
		n = t_rec(rec, STREAM, q);
		int rc2 = rsx_cmp_receiver_replay(p.r, rec, (size_t)n);
		T_EQ(rc2, q == 110 ? 1 : 0);
		resumed += rc2;
	}
	T_EQ(resumed, 1);
	rsx_cmp_receiver_info(p.r, &info);
	T_CHECK(info.state != RSX_CMP_NEEDS_REPLAY);
	/* Live delivery continues from the window: every seq once, in order. */
	pump_until(&p, 1000, 2000);
	T_EQ(p.got, 1000);
	T_EQ(p.bad, 0);
	rsx_cmp_receiver_stats(p.r, &rs);
	T_EQ(rs.replayed, 10);
	T_EQ(rs.replay_duplicates, 1);
	T_EQ(rs.resumes, 1);
	T_EQ(rs.delivered, 1000);
	/* After the gap, replayed records that live traffic already delivered are duplicates. */
	n = t_rec(rec, STREAM, 500);
	T_EQ(rsx_cmp_receiver_replay(p.r, rec, (size_t)n), 0);
	pair_close(&p);
}

/* A sender that stops running (descheduled, paused) is silent, not unable: its holes never exhaust. */
static void test_silent_sender_does_not_exhaust(void)
{
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_receiver_config rc;
	struct pair p;
	struct rsx_cmp_receiver_info info;
	struct rsx_cmp_receiver_stats rs;
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_DATA, 4, 1, 0 };
	rsx_cmp_sender_config_init(&sc);
	sc.heartbeat_us = 1000;
	rsx_cmp_receiver_config_init(&rc);
	rc.nak_retry_us = 200;
	rc.nak_max_retries = 2;
	pair_open(&p, &f, &sc, &rc);
	send_range(&p, 1, 10);
	uint64_t end = rsx_cmp_now_ns() + 30000000ull;
	while (rsx_cmp_now_ns() < end) {	/* only the receiver runs for 30 ms */
		rsx_cmp_poll(p.b, 0);
		t_sleep_us(50);
	}
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.state, RSX_CMP_RECOVERING);
	rsx_cmp_receiver_stats(p.r, &rs);
	T_CHECK(rs.naks_sent >= 4);	/* it kept asking */
	T_EQ(rs.faults, 0);
	pump_until(&p, 10, 1000);	/* the sender runs again and answers */
	T_EQ(p.got, 10);
	T_EQ(p.bad, 0);
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.state, RSX_CMP_LIVE);
	pair_close(&p);
}

static void test_stall_never_drops(void)
{
	struct pair p;
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_sender_stats ss;
	uint8_t rec[RSX_RECORD_MAX];
	rsx_cmp_sender_config_init(&sc);
	sc.ring_size = 64;
	pair_open(&p, NULL, &sc, NULL);
	/* Nobody drains b: the mem queue (4096) fills, then the 64-slot ring of pending records. */
	uint64_t q = 1;
	int rc = 0;
	for (; q < 10000; q++) {
		int n = t_rec(rec, STREAM, q);
		rc = rsx_cmp_sender_send(p.s, rec, (size_t)n);
		if (rc < 0)
			break;
	}
	T_EQ(rc, -EAGAIN);
	T_EQ(q, 4096 + 64 + 1);
	rsx_cmp_sender_stats(p.s, &ss);
	T_EQ(ss.stalls, 1);
	T_EQ(ss.pending, 64);
	T_EQ(ss.last_seq, q - 1);
	/* Drain, and the refused record goes through; nothing was lost. */
	pump_until(&p, q - 1, 2000);
	int n = t_rec(rec, STREAM, q);
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)n), n);
	pump_until(&p, q, 2000);
	T_EQ(p.got, q);
	T_EQ(p.bad, 0);
	pair_close(&p);
}

static void test_join_and_start_seq(void)
{
	struct pair p;
	struct rsx_cmp_receiver_config rc;
	struct rsx_cmp_receiver_info info;
	uint8_t rec[RSX_RECORD_MAX];
	rsx_cmp_receiver_config_init(&rc);
	rc.start_seq = 0;	/* join wherever the stream is */
	pair_open(&p, NULL, NULL, &rc);
	for (uint64_t q = 5000; q < 5010; q++) {
		int n = t_rec(rec, STREAM, q);
		T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)n), n);
	}
	rsx_cmp_poll(p.b, 0);
	int got = rsx_cmp_receiver_read(p.r, p.out, RSX_RECORD_MAX, 100);
	T_EQ(got, 10);
	T_CHECK(t_rec_ok(p.out, STREAM, 5000));
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.delivered, 5009);
	T_EQ(info.state, RSX_CMP_LIVE);
	pair_close(&p);

	/*
	 * A heartbeat with highest_seq 0 (a sender restarted from its WAL that has
	 * not sent yet) does not join at 1: the first record does, so nothing of
	 * the history is NAKed.
	 */
	rsx_cmp_receiver_config_init(&rc);
	rc.start_seq = 0;
	struct rsx_cmp_sender_config hb;
	rsx_cmp_sender_config_init(&hb);
	hb.heartbeat_us = 1;
	pair_open(&p, NULL, &hb, &rc);
	for (int i = 0; i < 5; i++) {
		usleep(100);
		rsx_cmp_poll(p.a, 0);
		rsx_cmp_poll(p.b, 0);
	}
	struct rsx_cmp_receiver_stats hs;
	rsx_cmp_receiver_stats(p.r, &hs);
	T_CHECK(hs.heartbeats > 0);
	int m = t_rec(rec, STREAM, 5000);
	T_EQ(rsx_cmp_sender_send(p.s, rec, (size_t)m), m);
	rsx_cmp_poll(p.b, 0);
	T_EQ(rsx_cmp_receiver_read(p.r, p.out, RSX_RECORD_MAX, 100), 1);
	T_CHECK(t_rec_ok(p.out, STREAM, 5000));
	rsx_cmp_receiver_stats(p.r, &hs);
	T_EQ(hs.naks_sent, 0);
	pair_close(&p);

	/* start_seq = tip + 1 of a consumer that recovered state: older seqs are duplicates. */
	rsx_cmp_receiver_config_init(&rc);
	rc.start_seq = 6;
	pair_open(&p, NULL, NULL, &rc);
	send_range(&p, 1, 10);
	rsx_cmp_poll(p.b, 0);
	got = rsx_cmp_receiver_read(p.r, p.out, RSX_RECORD_MAX, 100);
	T_EQ(got, 5);
	T_CHECK(t_rec_ok(p.out, STREAM, 6));
	struct rsx_cmp_receiver_stats rs;
	rsx_cmp_receiver_stats(p.r, &rs);
	T_EQ(rs.duplicates, 5);
	pair_close(&p);
}

static void test_stride_and_padding(void)
{
	struct pair p;
	pair_open(&p, NULL, NULL, NULL);
	send_range(&p, 1, 5);	/* 1..4 BBO (80 bytes), 5 FILL (144) */
	rsx_cmp_poll(p.b, 0);
	memset(p.out, 0xee, 5 * RSX_RECORD_MAX);
	T_EQ(rsx_cmp_receiver_read(p.r, p.out, 80, 10), 4);	/* stops before the FILL */
	T_EQ(rsx_cmp_receiver_read(p.r, p.out, 80, 10), RSX_EINVALID);
	T_EQ(rsx_cmp_receiver_read(p.r, p.out, 8, 10), RSX_EINVALID);
	T_EQ(rsx_cmp_receiver_read(p.r, p.out, 200, 10), 1);
	T_CHECK(t_rec_ok(p.out, STREAM, 5));
	T_EQ(p.out[150], 0);	/* the rest of the stride is zeroed */
	pair_close(&p);
}

static void test_window_overrun_recovered(void)
{
	struct pair p;
	struct rsx_cmp_receiver_config rc;
	struct rsx_cmp_receiver_stats rs;
	rsx_cmp_receiver_config_init(&rc);
	rc.window = 64;
	pair_open(&p, NULL, NULL, &rc);
	send_range(&p, 1, 200);
	while (rsx_cmp_poll(p.b, 0) > 0)	/* the caller does not read: 64 fit, 136 overrun */
		;
	rsx_cmp_receiver_stats(p.r, &rs);
	T_EQ(rs.overruns, 136);
	T_EQ(rs.received, 64);
	pump_until(&p, 200, 3000);	/* reading slides the window; overruns come back by NAK */
	T_EQ(p.got, 200);
	T_EQ(p.bad, 0);
	rsx_cmp_receiver_stats(p.r, &rs);
	T_EQ(rs.recovered, 136);
	pair_close(&p);
}

static void test_spoofed_heartbeat_is_bounded(void)
{
	struct pair p;
	struct rsx_cmp_receiver_config rc;
	struct rsx_cmp_receiver_info info;
	struct rsx_cmp_receiver_stats rs;
	struct rsx_cmp_addr to;
	uint8_t rec[RSX_RECORD_MAX];
	struct rsx_cmp_sender_config sc;
	rsx_cmp_sender_config_init(&sc);
	sc.heartbeat_us = 200;	/* the sender is alive, just does not have those seqs */
	rsx_cmp_receiver_config_init(&rc);
	rc.window = 256;
	rc.nak_retry_us = 200;
	rc.nak_max_retries = 2;
	pair_open(&p, NULL, &sc, &rc);
	send_range(&p, 1, 10);
	pump_until(&p, 10, 500);
	struct rsx_heartbeat hb;
	memset(&hb, 0, sizeof(hb));
	hb.stream_id = STREAM;
	hb.highest_seq = UINT64_MAX;
	int n = rsx_record_frame(rec, sizeof(rec), RSX_REC_HEARTBEAT, &hb, sizeof(hb));
	rsx_cmp_addr_set(&to, "10.0.0.2", 9001);
	T_EQ(rsx_cmp_send_raw(p.a, rec, (size_t)n, &to), n);
	uint64_t t0 = rsx_cmp_now_ns();
	for (int i = 0; i < 50; i++) {
		pump(&p);
		t_sleep_us(50);
	}
	T_CHECK(rsx_cmp_now_ns() - t0 < 1000000000ull);	/* no 2^64 loop */
	rsx_cmp_receiver_stats(p.r, &rs);
	T_CHECK(rs.nak_seqs <= 3 * 256);	/* NAKs clamped to the window */
	/* The sender's heartbeats say its tip is 10: the bogus holes are forgotten, no replay. */
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.state, RSX_CMP_LIVE);
	T_EQ(info.highest, 10);
	T_EQ(rs.faults, 0);
	T_CHECK(rs.unconfirmed >= 1);
	/* and the stream carries on */
	send_range(&p, 11, 20);
	pump_until(&p, 20, 500);
	T_EQ(p.got, 20);
	T_EQ(p.bad, 0);
	pair_close(&p);
}

static void test_stale_heartbeat(void)
{
	struct pair p;
	struct rsx_cmp_receiver_stats rs;
	struct rsx_cmp_addr to;
	uint8_t rec[RSX_RECORD_MAX];
	pair_open(&p, NULL, NULL, NULL);
	send_range(&p, 1, 10);
	pump_until(&p, 10, 500);
	struct rsx_heartbeat hb;
	memset(&hb, 0, sizeof(hb));
	hb.stream_id = STREAM;
	hb.highest_seq = 3;	/* a sender that restarted from scratch */
	int n = rsx_record_frame(rec, sizeof(rec), RSX_REC_HEARTBEAT, &hb, sizeof(hb));
	rsx_cmp_addr_set(&to, "10.0.0.2", 9001);
	T_EQ(rsx_cmp_send_raw(p.a, rec, (size_t)n, &to), n);
	pump(&p);
	rsx_cmp_receiver_stats(p.r, &rs);
	T_EQ(rs.stale_heartbeats, 1);
	pair_close(&p);
}

static void test_replay_window_full(void)
{
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_receiver_config rc;
	struct pair p;
	struct rsx_cmp_receiver_info info;
	uint8_t rec[RSX_RECORD_MAX];
	memset(&f, 0, sizeof(f));
	f.nrules = 1;
	f.rules[0] = (struct rsx_cmp_fault_rule){ RSX_CMP_FAULT_DROP, RSX_CMP_FC_DATA, 0, 1000000, 0 };
	rsx_cmp_receiver_config_init(&rc);
	rc.window = 64;
	pair_open(&p, &f, NULL, &rc);
	/* Everything is dropped; replay 64 records without reading: the 65th must wait. */
	for (uint64_t q = 1; q <= 64; q++) {
		int n = t_rec(rec, STREAM, q);
		T_EQ(rsx_cmp_receiver_replay(p.r, rec, (size_t)n), 0);
	}
	int n = t_rec(rec, STREAM, 65);
	T_EQ(rsx_cmp_receiver_replay(p.r, rec, (size_t)n), -EAGAIN);
	T_EQ(rsx_cmp_receiver_read(p.r, p.out, RSX_RECORD_MAX, 256), 64);
	T_EQ(rsx_cmp_receiver_replay(p.r, rec, (size_t)n), 0);
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.expected, 66);
	pair_close(&p);
}

int main(void)
{
	test_in_order();
	test_sender_checks();
	test_batch();
	test_loss_recovered_from_ring();
	test_loss_recovered_from_wal();
	test_fetch_mismatch_not_sent();
	test_tail_loss_by_heartbeat();
	test_idle_heartbeat_backoff();
	test_needs_replay_then_replay();
	test_silent_sender_does_not_exhaust();
	test_stall_never_drops();
	test_join_and_start_seq();
	test_stride_and_padding();
	test_window_overrun_recovered();
	test_spoofed_heartbeat_is_bounded();
	test_stale_heartbeat();
	test_replay_window_full();
	T_DONE();
}
