/*
 * test_cmp_trust.c - what CMP believes (specs/cmp.md section 12): only the
 * stream's receivers get retransmits; a forged huge seq does not push a
 * receiver into replay; a keyed stream accepts only datagrams with a valid
 * tag (SipHash-2-4-128, checked against the reference vectors).
 */
#include <stdio.h>
#include <stdlib.h>

#include "t_helpers.h"
#include "t_cmp.h"

#define STREAM 5

static const uint8_t KEY[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

struct pair {
	struct rsx_cmp_endpoint *a, *b;
	struct rsx_cmp_sender *s;
	struct rsx_cmp_receiver *r;
	uint64_t got;
	int bad;
};

static void pair_open(struct pair *p, const struct rsx_cmp_fault_config *fa, uint32_t heartbeat_us,
		      const uint8_t *skey, const uint8_t *rkey)
{
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_receiver_config rc;
	memset(p, 0, sizeof(*p));
	T_EQ(t_mem_pair(&p->a, &p->b, fa), 0);
	t_sender_config(&sc, STREAM);
	sc.heartbeat_us = heartbeat_us;
	if (skey) {
		sc.keyed = 1;
		memcpy(sc.key, skey, 16);
	}
	rsx_cmp_receiver_config_init(&rc);
	rc.stream_id = STREAM;
	rc.window = 256;
	rc.nak_retry_us = 200;
	rc.nak_max_retries = 2;
	if (rkey) {
		rc.keyed = 1;
		memcpy(rc.key, rkey, 16);
	}
	T_EQ(rsx_cmp_sender_open(p->a, &sc, &p->s), 0);
	T_EQ(rsx_cmp_receiver_open(p->b, &rc, &p->r), 0);
}

static void pump(struct pair *p, long ms)
{
	static uint8_t out[256 * RSX_RECORD_MAX];
	uint64_t end = rsx_cmp_now_ns() + (uint64_t)ms * 1000000;
	for (int pass = 0; pass < 20 || rsx_cmp_now_ns() < end; pass++) {
		rsx_cmp_poll(p->a, 0);
		rsx_cmp_poll(p->b, 0);
		int rc;
		while ((rc = rsx_cmp_receiver_read(p->r, out, RSX_RECORD_MAX, 256)) > 0)
			for (int i = 0; i < rc; i++) {
				if (!t_rec_ok(out + (size_t)i * RSX_RECORD_MAX, STREAM, p->got + 1))
					p->bad = 1;
				p->got++;
			}
		t_sleep_us(50);
	}
}

static void send_range(struct pair *p, uint64_t from, uint64_t to)
{
	uint8_t rec[RSX_RECORD_MAX];
	for (uint64_t q = from; q <= to; q++) {
		int n = t_rec(rec, STREAM, q);
		T_EQ(rsx_cmp_sender_send(p->s, rec, (size_t)n), n);
	}
}

static int nak(uint8_t *buf, uint64_t from, uint64_t count)
{
	struct rsx_nak k;
	memset(&k, 0, sizeof(k));
	k.stream_id = STREAM;
	k.from_seq = from;
	k.count = count;
	return rsx_record_frame(buf, RSX_RECORD_MAX, RSX_REC_NAK, &k, sizeof(k));
}

/* A NAK from an address that is not a destination gets nothing back: no data exposure, no amplification. */
static void test_nak_from_a_stranger_is_ignored(void)
{
	struct pair p;
	struct rsx_cmp_sender_stats ss;
	struct rsx_cmp_endpoint_stats es;
	struct rsx_cmp_addr to;
	uint8_t buf[RSX_RECORD_MAX];
	pair_open(&p, NULL, 0, NULL, NULL);
	send_range(&p, 1, 100);
	pump(&p, 2);
	T_EQ(p.got, 100);
	struct rsx_cmp_endpoint *c = t_mem_ep(3, 9002, NULL);	/* a stranger on the network */
	T_EQ(rsx_cmp_mem_link(p.a, c), 0);
	rsx_cmp_addr_set(&to, "10.0.0.1", 9000);
	int n = nak(buf, 1, 100);
	T_EQ(rsx_cmp_send_raw(c, buf, (size_t)n, &to), n);
	rsx_cmp_poll(p.a, 0);
	rsx_cmp_poll(c, 0);
	rsx_cmp_sender_stats(p.s, &ss);
	T_EQ(ss.naks_unknown, 1);
	T_EQ(ss.retx_ring, 0);
	rsx_cmp_endpoint_stats(c, &es);
	T_EQ(es.rx_datagrams + es.rx_unknown_stream, 0);	/* not one record reached it */
	rsx_cmp_close(c);
	rsx_cmp_close(p.a);
	rsx_cmp_close(p.b);
}

/*
 * A forged data record with a huge seq (a valid CRC is no proof of origin):
 * the receiver NAKs the window, the sender answers with its tip, the bogus
 * holes are forgotten. No NEEDS_REPLAY, and the stream carries on.
 */
static void test_forged_huge_seq_does_not_force_replay(uint64_t forged_ahead)
{
	struct pair p;
	struct rsx_cmp_receiver_info info;
	struct rsx_cmp_receiver_stats rs;
	struct rsx_cmp_sender_stats ss;
	struct rsx_cmp_addr to;
	uint8_t rec[RSX_RECORD_MAX];
	pair_open(&p, NULL, 0, NULL, NULL);	/* no periodic heartbeats: only the NAK answer tells */
	send_range(&p, 1, 10);
	pump(&p, 2);
	int n = t_bbo(rec, STREAM, 10 + forged_ahead);
	rsx_cmp_addr_set(&to, "10.0.0.2", 9001);
	T_EQ(rsx_cmp_send_raw(p.a, rec, (size_t)n, &to), n);
	pump(&p, 30);		/* far longer than the 2 x 200 us it takes to exhaust a hole */
	rsx_cmp_receiver_info(p.r, &info);
	rsx_cmp_receiver_stats(p.r, &rs);
	rsx_cmp_sender_stats(p.s, &ss);
	T_CHECK(info.state != RSX_CMP_NEEDS_REPLAY);
	T_EQ(rs.faults, 0);
	T_CHECK(ss.nak_replies >= 1);
	if (forged_ahead > 256)
		T_CHECK(rs.unconfirmed >= 1);	/* not held: the claim is forgotten */
	/*
	 * Inside the window the forged record is held (only the MAC can refuse it):
	 * the holes below it stay NAKed but never count, since the sender's tip is
	 * below them, until the real stream fills them.
	 */
	send_range(&p, 11, 30);
	pump(&p, 5);
	T_EQ(p.got, 30);
	T_EQ(p.bad, 0);
	rsx_cmp_receiver_info(p.r, &info);
	T_CHECK(info.state != RSX_CMP_NEEDS_REPLAY);
	rsx_cmp_close(p.a);
	rsx_cmp_close(p.b);
}

/* A real hole the sender cannot serve still ends in NEEDS_REPLAY: its tip says the seq exists. */
static void test_real_unservable_hole_still_needs_replay(void)
{
	struct pair p;
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_receiver_info info;
	struct rsx_cmp_sender_config sc;
	t_drop(&f, 4, 1);
	memset(&p, 0, sizeof(p));
	T_EQ(t_mem_pair(&p.a, &p.b, &f), 0);
	t_sender_config(&sc, STREAM);
	sc.ring_size = 64;
	sc.heartbeat_us = 0;
	T_EQ(rsx_cmp_sender_open(p.a, &sc, &p.s), 0);
	struct rsx_cmp_receiver_config rc;
	rsx_cmp_receiver_config_init(&rc);
	rc.stream_id = STREAM;
	rc.nak_retry_us = 200;
	rc.nak_max_retries = 2;
	T_EQ(rsx_cmp_receiver_open(p.b, &rc, &p.r), 0);
	send_range(&p, 1, 200);	/* seq 5 lost and past the 64-record ring */
	pump(&p, 30);
	rsx_cmp_receiver_info(p.r, &info);
	T_EQ(info.state, RSX_CMP_NEEDS_REPLAY);
	T_EQ(info.gap_start, 5);
	rsx_cmp_close(p.a);
	rsx_cmp_close(p.b);
}

/* SipHash-2-4-128 of the bytes 0..len-1 under the key 0..15 (the reference vectors). */
static void test_mac_vectors(void)
{
	static const struct { size_t len; uint8_t tag[16]; } v[] = {
		{ 0, { 0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93 } },
		{ 1, { 0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc, 0x45 } },
		{ 7, { 0xa1, 0xf1, 0xeb, 0xbe, 0xd8, 0xdb, 0xc1, 0x53, 0xc0, 0xb8, 0x4a, 0xa6, 0x1f, 0xf0, 0x82, 0x39 } },
		{ 8, { 0x3b, 0x62, 0xa9, 0xba, 0x62, 0x58, 0xf5, 0x61, 0x0f, 0x83, 0xe2, 0x64, 0xf3, 0x14, 0x97, 0xb4 } },
		{ 15, { 0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11, 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf, 0xc3, 0xd9 } },
		{ 16, { 0x6e, 0xe2, 0xa4, 0xca, 0x67, 0xb0, 0x54, 0xbb, 0xfd, 0x33, 0x15, 0xbf, 0x85, 0x23, 0x05, 0x77 } },
		{ 63, { 0x51, 0x50, 0xd1, 0x77, 0x2f, 0x50, 0x83, 0x4a, 0x50, 0x3e, 0x06, 0x9a, 0x97, 0x3f, 0xbd, 0x7c } },
	};
	uint8_t key[16], msg[64], out[16];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		rsx_cmp_mac(key, msg, v[i].len, out);
		if (memcmp(out, v[i].tag, 16) != 0) {
			fprintf(stderr, "SipHash-2-4-128 of %zu bytes does not match the reference\n", v[i].len);
			t_failures++;
		}
	}
}

/* A keyed stream: delivery and NAK recovery work with tags; untagged, mistagged or foreign-keyed datagrams are dropped. */
static void test_keyed_stream(void)
{
	struct pair p;
	struct rsx_cmp_fault_config f;
	struct rsx_cmp_endpoint_stats es;
	struct rsx_cmp_sender_stats ss;
	struct rsx_cmp_addr to;
	uint8_t rec[RSX_RECORD_MAX + 16];
	t_drop(&f, 3, 2);
	pair_open(&p, &f, 1000, KEY, KEY);
	send_range(&p, 1, 50);	/* 4 and 5 lost, recovered by a tagged NAK and tagged retransmits */
	pump(&p, 20);
	T_EQ(p.got, 50);
	T_EQ(p.bad, 0);
	rsx_cmp_endpoint_stats(p.b, &es);
	T_EQ(es.rx_bad_mac, 0);
	/* forgeries: a valid record without a tag, with a tag under another key, with a flipped tag */
	rsx_cmp_addr_set(&to, "10.0.0.2", 9001);
	uint8_t other[16] = { 0 };
	int n = t_rec(rec, STREAM, 51);
	T_EQ(rsx_cmp_send_raw(p.a, rec, (size_t)n, &to), n);
	rsx_cmp_mac(other, rec, (size_t)n, rec + n);
	T_EQ(rsx_cmp_send_raw(p.a, rec, (size_t)n + 16, &to), n + 16);
	rsx_cmp_mac(KEY, rec, (size_t)n, rec + n);
	rec[n + 3] ^= 1;
	T_EQ(rsx_cmp_send_raw(p.a, rec, (size_t)n + 16, &to), n + 16);
	rsx_cmp_poll(p.b, 0);
	rsx_cmp_endpoint_stats(p.b, &es);
	T_EQ(es.rx_bad_mac, 3);
	pump(&p, 2);
	T_EQ(p.got, 50);
	/* an untagged NAK to the keyed sender is dropped before it is looked at */
	rsx_cmp_addr_set(&to, "10.0.0.1", 9000);
	n = nak(rec, 1, 10);
	T_EQ(rsx_cmp_send_raw(p.b, rec, (size_t)n, &to), n);
	rsx_cmp_poll(p.a, 0);
	rsx_cmp_endpoint_stats(p.a, &es);
	T_EQ(es.rx_bad_mac, 1);
	rsx_cmp_sender_stats(p.s, &ss);
	T_EQ(ss.retx_ring, 2);	/* only the two real recoveries */
	rsx_cmp_close(p.a);
	rsx_cmp_close(p.b);

	/* a receiver with another key accepts nothing */
	pair_open(&p, NULL, 0, KEY, other);
	send_range(&p, 1, 10);
	pump(&p, 2);
	T_EQ(p.got, 0);
	rsx_cmp_endpoint_stats(p.b, &es);
	T_EQ(es.rx_bad_mac, 10);
	rsx_cmp_close(p.a);
	rsx_cmp_close(p.b);
}

int main(void)
{
	test_mac_vectors();
	test_nak_from_a_stranger_is_ignored();
	test_forged_huge_seq_does_not_force_replay(100);		/* inside the window: held */
	test_forged_huge_seq_does_not_force_replay(1000000000);	/* far beyond it */
	test_real_unservable_hole_still_needs_replay();
	test_keyed_stream();
	T_DONE();
}
