/*
 * test_cmp_link.c - link receivers (specs/cmp.md 4.6): streams that are not
 * journaled. A link receiver joins a running sender, follows a sender that
 * restarted at seq 1, and skips (and counts) a hole nobody can fill; an
 * ordinary receiver in the same situations waits for replay or drops the
 * new sender's records as duplicates, which is what each test checks first.
 * Single-threaded over the in-memory backend, real clock.
 */
#include <stdio.h>
#include <stdlib.h>

#include "t_helpers.h"
#include "t_cmp.h"

#define STREAM 9
#define EPOCH_NS 1000000000ull

/* A BBO of incarnation `epoch` of the sender: the same seq in two incarnations has other bytes. */
static int rec_of(uint8_t *out, uint64_t seq, uint64_t epoch)
{
	struct rsx_bbo b;
	memset(&b, 0, sizeof(b));
	b.seq = seq;
	b.ts_ns = epoch * EPOCH_NS + seq;
	b.stream_id = STREAM;
	b.bid_px.raw = (int64_t)seq;
	return rsx_record_frame(out, RSX_RECORD_MAX, RSX_REC_BBO, &b, sizeof(b));
}

struct side {
	struct rsx_cmp_endpoint *ep;
	struct rsx_cmp_sender *s;
	struct rsx_cmp_receiver *r;
};

/* The sender's endpoint 10.0.0.1:9000 (a new one = a restarted sender process). */
static void sender_up(struct side *a, struct side *b, const struct rsx_cmp_fault_config *fault, uint32_t ring,
		      uint32_t heartbeat_us)
{
	struct rsx_cmp_sender_config sc;
	a->ep = t_mem_ep(1, 9000, fault);
	T_CHECK(a->ep != NULL);
	if (b->ep)
		T_EQ(rsx_cmp_mem_link(a->ep, b->ep), 0);
	rsx_cmp_sender_config_init(&sc);
	sc.stream_id = STREAM;
	sc.ndest = 1;
	sc.ring_size = ring;
	sc.heartbeat_us = heartbeat_us;
	rsx_cmp_addr_set(&sc.dest[0], "10.0.0.2", 9001);
	T_EQ(rsx_cmp_sender_open(a->ep, &sc, &a->s), 0);
}

/* The receiver's endpoint 10.0.0.2:9001 (a new one = a restarted receiver process). */
static void receiver_up(struct side *b, struct side *a, int link, uint32_t window)
{
	struct rsx_cmp_receiver_config rc;
	b->ep = t_mem_ep(2, 9001, NULL);
	T_CHECK(b->ep != NULL);
	if (a->ep)
		T_EQ(rsx_cmp_mem_link(a->ep, b->ep), 0);
	rsx_cmp_receiver_config_init(&rc);
	rc.stream_id = STREAM;
	rc.link = (uint32_t)link;
	rc.window = window;
	rc.nak_retry_us = 300;
	rc.nak_max_retries = 3;
	T_EQ(rsx_cmp_receiver_open(b->ep, &rc, &b->r), 0);
}

static void down(struct side *x)
{
	rsx_cmp_close(x->ep);
	memset(x, 0, sizeof(*x));
}

static void send_range(struct side *a, uint64_t from, uint64_t to, uint64_t epoch)
{
	uint8_t rec[RSX_RECORD_MAX];
	for (uint64_t q = from; q <= to; q++) {
		int n = rec_of(rec, q, epoch);
		T_EQ(rsx_cmp_sender_send(a->s, rec, (size_t)n), n);
	}
}

/* What the receiver delivered: seq and incarnation of each record, in order. */
struct got {
	uint64_t n;
	uint64_t seq[4096];
	uint64_t epoch[4096];
	int replay;	/* read returned RSX_EREPLAY */
};

static void drain(struct side *a, struct side *b, struct got *g, long ms)
{
	static uint8_t out[256 * RSX_RECORD_MAX];
	uint64_t end = rsx_cmp_now_ns() + (uint64_t)ms * 1000000;
	for (int pass = 0; pass < 20 || rsx_cmp_now_ns() < end; pass++) {	/* 20 passes even if descheduled */
		if (a->ep)
			rsx_cmp_poll(a->ep, 0);
		if (b->ep)
			rsx_cmp_poll(b->ep, 0);
		int rc;
		while ((rc = rsx_cmp_receiver_read(b->r, out, RSX_RECORD_MAX, 256)) > 0) {
			for (int i = 0; i < rc && g->n < 4096; i++) {
				struct rsx_bbo bbo;
				memcpy(&bbo, out + (size_t)i * RSX_RECORD_MAX + RSX_HEADER_SIZE, sizeof(bbo));
				g->seq[g->n] = bbo.seq;
				g->epoch[g->n] = bbo.ts_ns / EPOCH_NS;
				g->n++;
			}
		}
		if (rc == RSX_EREPLAY)
			g->replay = 1;
		t_sleep_us(50);
	}
}

/* Did g get exactly seqs from..to of incarnation epoch, starting at index at? */
static int got_range(const struct got *g, uint64_t at, uint64_t from, uint64_t to, uint64_t epoch)
{
	if (g->n < at + (to - from + 1))
		return 0;
	for (uint64_t q = from; q <= to; q++, at++)
		if (g->seq[at] != q || g->epoch[at] != epoch)
			return 0;
	return 1;
}

static struct rsx_cmp_receiver_stats rstats(const struct side *b)
{
	struct rsx_cmp_receiver_stats st;
	rsx_cmp_receiver_stats(b->r, &st);
	return st;
}

static struct rsx_cmp_receiver_info rinfo(const struct side *b)
{
	struct rsx_cmp_receiver_info in;
	rsx_cmp_receiver_info(b->r, &in);
	return in;
}

/*
 * A receiver that restarts while its sender runs on: the sender's hot ring no
 * longer holds seq 1, nobody journals the stream. An ordinary receiver waits
 * for seq 1 and ends in NEEDS_REPLAY; a link receiver joins where the sender is.
 */
static void test_receiver_restart_joins(int link)
{
	struct side a = { 0 }, b = { 0 };
	struct got g = { 0 };
	sender_up(&a, &b, NULL, 64, 1000);
	receiver_up(&b, &a, link, 4096);
	send_range(&a, 1, 100, 1);
	drain(&a, &b, &g, 5);
	T_CHECK(got_range(&g, 0, 1, 100, 1));
	down(&b);			/* the receiver's process dies ... */
	send_range(&a, 101, 300, 1);	/* ... the sender runs on; nobody listens */
	receiver_up(&b, &a, link, 4096);	/* ... and starts again */
	memset(&g, 0, sizeof(g));
	send_range(&a, 301, 310, 1);
	drain(&a, &b, &g, 30);
	struct rsx_cmp_receiver_info in = rinfo(&b);
	struct rsx_cmp_receiver_stats st = rstats(&b);
	if (!link) {
		T_EQ(g.n, 0);
		T_EQ(in.state, RSX_CMP_NEEDS_REPLAY);
		T_EQ(g.replay, 1);
	} else {
		T_EQ(g.n, 10);
		T_CHECK(got_range(&g, 0, 301, 310, 1));
		T_EQ(in.state, RSX_CMP_LIVE);
		T_EQ(in.link, 1);
		T_EQ(st.naks_sent, 0);
		T_EQ(st.link_losses, 0);
		T_EQ(st.resyncs, 0);
	}
	down(&a);
	down(&b);
}

/* First contact by a heartbeat: the receiver joins after the sender's tip. */
static void test_join_by_heartbeat(void)
{
	struct side a = { 0 }, b = { 0 };
	struct got g = { 0 };
	sender_up(&a, &b, NULL, 64, 1000);
	send_range(&a, 1, 200, 1);	/* before the receiver exists */
	receiver_up(&b, &a, 1, 4096);
	drain(&a, &b, &g, 10);		/* heartbeats (1 ms) arrive */
	T_EQ(g.n, 0);
	T_EQ(rinfo(&b).delivered, 200);
	send_range(&a, 201, 205, 1);
	drain(&a, &b, &g, 5);
	T_EQ(g.n, 5);
	T_CHECK(got_range(&g, 0, 201, 205, 1));
	T_EQ(rstats(&b).naks_sent, 0);
	down(&a);
	down(&b);
}

/*
 * The sender restarts at seq 1 (a new process, new record contents). An
 * ordinary receiver drops seqs 1..10 as duplicates of what it delivered: the
 * link is dead until the new seqs pass 100. A link receiver resyncs.
 * `window` 64 makes delivered (100) more than a window above seq 1.
 */
static void test_sender_restart(int link, uint32_t window)
{
	struct side a = { 0 }, b = { 0 };
	struct got g = { 0 };
	sender_up(&a, &b, NULL, 4096, 0);
	receiver_up(&b, &a, link, window);
	send_range(&a, 1, 100, 1);
	drain(&a, &b, &g, 5);
	T_EQ(g.n, 100);
	down(&a);
	sender_up(&a, &b, NULL, 4096, 0);
	send_range(&a, 1, 10, 2);
	drain(&a, &b, &g, 10);
	struct rsx_cmp_receiver_stats st = rstats(&b);
	if (!link) {
		T_EQ(g.n, 100);
		T_EQ(st.duplicates, 10);
	} else {
		T_EQ(g.n, 110);
		T_CHECK(got_range(&g, 100, 1, 10, 2));
		T_EQ(st.resyncs, 1);
		T_EQ(st.link_losses, 0);
		T_EQ(rinfo(&b).state, RSX_CMP_LIVE);
	}
	down(&a);
	down(&b);
}

/* The restarted sender's seq 1 is lost: seq 2 differs from the old seq 2, so it is a restart; 1 is NAKed back. */
static void test_sender_restart_first_lost(void)
{
	struct side a = { 0 }, b = { 0 };
	struct got g = { 0 };
	struct rsx_cmp_fault_config f;
	t_drop(&f, 0, 1);
	sender_up(&a, &b, NULL, 4096, 0);
	receiver_up(&b, &a, 1, 4096);
	send_range(&a, 1, 50, 1);
	drain(&a, &b, &g, 5);
	down(&a);
	sender_up(&a, &b, &f, 4096, 0);
	send_range(&a, 1, 10, 2);
	drain(&a, &b, &g, 20);
	T_EQ(g.n, 60);
	T_CHECK(got_range(&g, 50, 1, 10, 2));
	struct rsx_cmp_receiver_stats st = rstats(&b);
	T_EQ(st.resyncs, 1);
	T_EQ(st.recovered, 1);
	T_EQ(st.link_losses, 0);
	down(&a);
	down(&b);
}

/*
 * Restart seen by a heartbeat: a restarted sender that sent nothing says 0;
 * one whose records were all lost says its tip, and they are NAKed back.
 */
static void test_sender_restart_by_heartbeat(void)
{
	struct side a = { 0 }, b = { 0 };
	struct got g = { 0 };
	struct rsx_cmp_fault_config f;
	sender_up(&a, &b, NULL, 4096, 1000);
	receiver_up(&b, &a, 1, 4096);
	send_range(&a, 1, 100, 1);
	drain(&a, &b, &g, 5);
	T_EQ(g.n, 100);
	down(&a);
	sender_up(&a, &b, NULL, 4096, 1000);	/* silent: heartbeats with highest_seq 0 */
	drain(&a, &b, &g, 10);
	struct rsx_cmp_receiver_info in = rinfo(&b);
	T_EQ(in.delivered, 0);
	T_EQ(in.expected, 1);
	T_EQ(rstats(&b).resyncs, 1);
	send_range(&a, 1, 5, 2);
	drain(&a, &b, &g, 5);
	T_EQ(g.n, 105);
	T_CHECK(got_range(&g, 100, 1, 5, 2));

	/* Again, with the new sender's first five records lost on the wire. */
	send_range(&a, 6, 100, 2);
	drain(&a, &b, &g, 5);
	T_EQ(g.n, 200);
	down(&a);
	t_drop(&f, 0, 5);
	sender_up(&a, &b, &f, 4096, 1000);
	send_range(&a, 1, 5, 3);
	drain(&a, &b, &g, 20);		/* heartbeat 5 < 100: resync at 1, NAK 1..5 */
	T_EQ(g.n, 205);
	T_CHECK(got_range(&g, 200, 1, 5, 3));
	struct rsx_cmp_receiver_stats st = rstats(&b);
	T_EQ(st.resyncs, 2);
	T_EQ(st.recovered, 5);
	T_EQ(st.link_losses, 0);
	down(&a);
	down(&b);
}

/* A duplicate of seq 1 (same bytes) is a duplicate, not a restart. */
static void test_duplicate_is_not_a_restart(void)
{
	struct side a = { 0 }, b = { 0 };
	struct got g = { 0 };
	struct rsx_cmp_addr to;
	uint8_t rec[RSX_RECORD_MAX];
	sender_up(&a, &b, NULL, 4096, 0);
	receiver_up(&b, &a, 1, 4096);
	send_range(&a, 1, 50, 1);
	drain(&a, &b, &g, 5);
	rsx_cmp_addr_set(&to, "10.0.0.2", 9001);
	for (uint64_t q = 1; q <= 40; q += 13) {
		int n = rec_of(rec, q, 1);
		T_EQ(rsx_cmp_send_raw(a.ep, rec, (size_t)n, &to), n);
	}
	drain(&a, &b, &g, 5);
	struct rsx_cmp_receiver_stats st = rstats(&b);
	T_EQ(g.n, 50);
	T_EQ(st.duplicates, 4);
	T_EQ(st.resyncs, 0);
	down(&a);
	down(&b);
}

/* Records received but not read when the sender restarts belong to the old incarnation: lost, counted. */
static void test_undelivered_at_restart_are_counted(void)
{
	struct side a = { 0 }, b = { 0 };
	struct got g = { 0 };
	sender_up(&a, &b, NULL, 4096, 0);
	receiver_up(&b, &a, 1, 4096);
	send_range(&a, 1, 30, 1);
	rsx_cmp_poll(b.ep, 0);		/* received, not read */
	down(&a);
	sender_up(&a, &b, NULL, 4096, 0);
	send_range(&a, 1, 3, 2);
	drain(&a, &b, &g, 5);
	T_EQ(g.n, 3);
	T_CHECK(got_range(&g, 0, 1, 3, 2));
	T_EQ(rstats(&b).link_losses, 30);
	down(&a);
	down(&b);
}

/*
 * A hole past the sender's hot ring (no WAL behind it): an ordinary receiver
 * ends in NEEDS_REPLAY; a link receiver skips it, counts it, delivers the rest.
 */
static void test_unrecoverable_hole(int link)
{
	struct side a = { 0 }, b = { 0 };
	struct got g = { 0 };
	struct rsx_cmp_fault_config f;
	t_drop(&f, 9, 3);
	sender_up(&a, &b, &f, 64, 1000);	/* heartbeats: a live sender that cannot serve the seqs */
	receiver_up(&b, &a, link, 4096);
	send_range(&a, 1, 200, 1);	/* 10..12 lost; the ring keeps 137..200 */
	drain(&a, &b, &g, 40);
	struct rsx_cmp_receiver_stats st = rstats(&b);
	struct rsx_cmp_receiver_info in = rinfo(&b);
	if (!link) {
		T_EQ(g.n, 9);
		T_EQ(in.state, RSX_CMP_NEEDS_REPLAY);
	} else {
		T_EQ(g.n, 197);
		T_CHECK(got_range(&g, 0, 1, 9, 1));
		T_CHECK(got_range(&g, 9, 13, 200, 1));
		T_EQ(in.state, RSX_CMP_LIVE);
		T_EQ(in.delivered, 200);
		T_EQ(st.link_losses, 3);
		T_EQ(st.faults, 0);
		T_EQ(g.replay, 0);
		/* A late original of a skipped seq is a duplicate. */
		uint8_t rec[RSX_RECORD_MAX];
		struct rsx_cmp_addr to;
		rsx_cmp_addr_set(&to, "10.0.0.2", 9001);
		int n = rec_of(rec, 11, 1);
		T_EQ(rsx_cmp_send_raw(a.ep, rec, (size_t)n, &to), n);
		drain(&a, &b, &g, 2);
		T_EQ(g.n, 197);
		T_EQ(rstats(&b).duplicates, st.duplicates + 1);
		T_EQ(rstats(&b).resyncs, 0);
		/* Nothing to replay a link from. */
		n = rec_of(rec, 201, 1);
		T_EQ(rsx_cmp_receiver_replay(b.r, rec, (size_t)n), RSX_EINVALID);
	}
	down(&a);
	down(&b);
}

/* rsx_cmp_receive delivers across a skipped seq: every record but the lost one, in order. */
static void test_receive_across_skipped(void)
{
	struct side a = { 0 }, b = { 0 };
	struct rsx_cmp_fault_config f;
	uint8_t out[16 * RSX_RECORD_MAX];
	uint64_t seqs[128], n = 0;
	t_drop(&f, 5, 1);
	sender_up(&a, &b, &f, 64, 1000);
	receiver_up(&b, &a, 1, 4096);
	send_range(&a, 1, 100, 1);	/* seq 6 lost and past the ring */
	uint64_t end = rsx_cmp_now_ns() + 200000000ull;
	while (n < 99 && rsx_cmp_now_ns() < end) {
		rsx_cmp_poll(a.ep, 0);
		int k = rsx_cmp_receive(b.ep, b.r, out, RSX_RECORD_MAX, 16, 1000);
		T_CHECK(k >= 0);
		for (int i = 0; i < k && n < 128; i++)
			memcpy(&seqs[n++], out + (size_t)i * RSX_RECORD_MAX + RSX_HEADER_SIZE, 8);
	}
	T_EQ(n, 99);
	for (uint64_t i = 0; i < n && i < 99; i++)
		T_EQ(seqs[i], i < 5 ? i + 1 : i + 2);
	T_EQ(rstats(&b).link_losses, 1);
	down(&a);
	down(&b);
}

static void test_config(void)
{
	struct rsx_cmp_endpoint *ep = t_mem_ep(2, 9001, NULL);
	struct rsx_cmp_receiver_config rc;
	struct rsx_cmp_receiver *r;
	rsx_cmp_receiver_config_init(&rc);
	rc.stream_id = STREAM;
	rc.link = 1;
	rc.start_seq = 5;	/* a link has no position of its own to start from */
	T_EQ(rsx_cmp_receiver_open(ep, &rc, &r), RSX_EINVALID);
	rc.start_seq = 1;
	rc.link = 2;
	T_EQ(rsx_cmp_receiver_open(ep, &rc, &r), RSX_EINVALID);
	rc.link = 1;
	T_EQ(rsx_cmp_receiver_open(ep, &rc, &r), 0);
	rsx_cmp_close(ep);
}

int main(void)
{
	test_config();
	test_receiver_restart_joins(0);
	test_receiver_restart_joins(1);
	test_join_by_heartbeat();
	test_sender_restart(0, 4096);
	test_sender_restart(1, 4096);
	test_sender_restart(1, 64);
	test_sender_restart_first_lost();
	test_sender_restart_by_heartbeat();
	test_duplicate_is_not_a_restart();
	test_undelivered_at_restart_are_counted();
	test_unrecoverable_hole(0);
	test_unrecoverable_hole(1);
	test_receive_across_skipped();
	T_DONE();
}
