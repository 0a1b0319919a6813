/*
 * test_wal_framed.c - rsx_wal_append_framed: records framed by the caller are
 * sealed in place with the WAL's seqs, and the caller's bytes equal the WAL's;
 * a malformed record anywhere appends nothing and leaves the buffer as it was.
 */
#include <errno.h>

#include "t_helpers.h"
#include "t_wal.h"

/* Lay out a record with only type and len set in its header. */
static size_t put(uint8_t *at, uint16_t type, const void *payload, size_t len)
{
	memset(at, 0, RSX_HEADER_SIZE);
	memcpy(at + 2, &type, 2);
	uint16_t l = (uint16_t)len;
	memcpy(at + 4, &l, 2);
	memcpy(at + RSX_HEADER_SIZE, payload, len);
	return RSX_HEADER_SIZE + len;
}

static void test_framed(void)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_MANUAL);
	T_EQ(rsx_wal_open(&w, &cfg), 0);

	static uint8_t buf[4096] __attribute__((aligned(16)));
	size_t len = 0;
	struct rsx_order_inserted a = t_payload(1);
	struct rsx_fill f = t_fill(2);
	struct rsx_order_inserted b = t_payload(3);
	b.ts_ns = 0;		/* the WAL stamps it */
	len += put(buf + len, RSX_REC_ORDER_INSERTED, &a, sizeof a);
	len += put(buf + len, RSX_REC_FILL, &f, sizeof f);
	len += put(buf + len, RSX_REC_ORDER_INSERTED, &b, sizeof b);

	/* malformed: nothing appended, buffer untouched */
	static uint8_t copy[4096];
	memcpy(copy, buf, len);
	uint64_t first = 0;
	T_EQ(rsx_wal_append_framed(w, buf, len - 1, 0, &first, 0), RSX_ESHORT);
	uint16_t bad = RSX_REC_NAK;
	memcpy(buf + 80 + 2, &bad, 2);
	T_EQ(rsx_wal_append_framed(w, buf, len, 0, &first, 0), RSX_ETYPE);
	memcpy(buf + 80 + 2, copy + 80 + 2, 2);
	uint16_t badlen = 64;
	memcpy(buf + 80 + 4, &badlen, 2);
	T_EQ(rsx_wal_append_framed(w, buf, len, 0, &first, 0), RSX_ELENGTH);
	memcpy(buf + 80 + 4, copy + 80 + 4, 2);
	T_EQ(memcmp(buf, copy, len), 0);
	T_EQ(rsx_wal_next_seq(w), 1);

	T_EQ(rsx_wal_append_framed(w, buf, len, 0, &first, 0), 3);
	T_EQ(first, 1);
	T_EQ(rsx_wal_next_seq(w), 4);
	/* sealed in place: every record checks and carries its seq and the stream */
	size_t off = 0;
	for (uint64_t seq = 1; seq <= 3; seq++) {
		int n = rsx_record_check(buf + off, len - off);
		T_CHECK(n > 0);
		uint64_t s;
		uint32_t stream;
		memcpy(&s, buf + off + 16, 8);
		memcpy(&stream, buf + off + 32, 4);
		T_EQ(s, seq);
		T_EQ(stream, 7);
		off += (size_t)n;
	}
	uint64_t ts;
	memcpy(&ts, buf + 80 + 144 + 24, 8);
	T_CHECK(ts > 1600000000000000000ull);
	T_EQ(rsx_wal_flush(w), 0);
	T_EQ(rsx_wal_durable_seq(w), 3);
	T_EQ(rsx_wal_close(w), 0);

	/* the WAL holds exactly the caller's bytes */
	struct rsx_wal_set *s;
	struct rsx_wal_reader *r;
	uint8_t rec[256];
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	off = 0;
	for (uint64_t seq = 1; seq <= 3; seq++) {
		int n = rsx_wal_read_seq(r, seq, rec, sizeof rec);
		T_CHECK(n > 0);
		T_EQ(memcmp(rec, buf + off, (size_t)n), 0);
		off += (size_t)n;
	}
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);
	t_rmdir(dir);
}

/* DEFER: in the ring, not shown to the flusher until published (or a flush / wait asks for it). */
static void test_deferred(void)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, 0);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	static uint8_t buf[256] __attribute__((aligned(16)));
	struct rsx_order_inserted a = t_payload(1);
	size_t len = put(buf, RSX_REC_ORDER_INSERTED, &a, sizeof a);
	uint64_t first;
	T_EQ(rsx_wal_append_framed(w, buf, len, 0, &first, RSX_WAL_APPEND_DEFER), 1);
	T_EQ(first, 1);
	usleep(30000);
	T_EQ(rsx_wal_durable_seq(w), 0);	/* the flusher has not seen it */
	rsx_wal_publish(w);
	T_EQ(rsx_wal_wait_durable(w, 1, 2000000000), 0);
	a = t_payload(2);
	put(buf, RSX_REC_ORDER_INSERTED, &a, sizeof a);
	T_EQ(rsx_wal_append_framed(w, buf, len, 0, &first, RSX_WAL_APPEND_DEFER), 1);
	T_EQ(rsx_wal_wait_durable(w, 2, 2000000000), 0);	/* a waiter publishes what it waits for */
	T_EQ(rsx_wal_close(w), 0);
	t_rmdir(dir);
}

int main(void)
{
	test_framed();
	test_deferred();
	T_DONE();
}
