/*
 * test_wal_scan.c - rsx_wal_scan: index, stops, never past a bad record.
 */
#include "t_helpers.h"
#include "t_wal.h"

static size_t frame(uint8_t *buf, uint64_t seq, uint32_t stream, int fill)
{
	if (fill) {
		struct rsx_fill p = t_fill(seq);
		p.seq = seq;
		p.stream_id = stream;
		return (size_t)rsx_record_frame(buf, 1024, RSX_REC_FILL, &p, sizeof p);
	}
	struct rsx_order_inserted p = t_payload(seq);
	p.seq = seq;
	p.stream_id = stream;
	return (size_t)rsx_record_frame(buf, 1024, RSX_REC_ORDER_INSERTED, &p, sizeof p);
}

int main(void)
{
	uint8_t buf[8192];
	struct rsx_wal_entry e[64];
	size_t off = 0, offs[20];
	for (int i = 0; i < 20; i++) {
		offs[i] = off;
		off += frame(buf + off, 10 + (uint64_t)i, 7, i % 3 == 0);
	}
	size_t total = off;

	/* all valid, continuity from 10 */
	struct rsx_wal_scan st = { .next_seq = 10, .stream_id = 7 };
	T_EQ(rsx_wal_scan(buf, total, e, 64, &st), 20);
	T_EQ(st.stop, RSX_WAL_STOP_END);
	T_EQ(st.end, total);
	T_EQ(st.next_seq, 30);
	T_EQ(e[0].seq, 10);
	T_EQ(e[0].type, RSX_REC_FILL);
	T_EQ(e[0].size, 144);
	T_EQ(e[1].type, RSX_REC_ORDER_INSERTED);
	T_EQ(e[1].size, 80);
	T_EQ(e[5].offset, offs[5]);
	T_EQ(e[19].stream_id, 7);

	/* index capacity */
	st = (struct rsx_wal_scan){ .next_seq = 10 };
	T_EQ(rsx_wal_scan(buf, total, e, 5, &st), 5);
	T_EQ(st.stop, RSX_WAL_STOP_FULL);
	T_EQ(st.end, offs[5]);

	/* seq must be next_seq: starting at 11 fails at offset 0 */
	st = (struct rsx_wal_scan){ .next_seq = 11 };
	T_EQ(rsx_wal_scan(buf, total, e, 64, &st), 0);
	T_EQ(st.stop, RSX_WAL_STOP_BAD);
	T_EQ(st.error, RSX_ESEQ);
	T_EQ(st.found_seq, 10);
	T_EQ(st.valid, 1);	/* a whole record, just the wrong seq */
	/* 0 accepts any first seq; ANYSEQ accepts anything */
	st = (struct rsx_wal_scan){ .next_seq = 0 };
	T_EQ(rsx_wal_scan(buf, total, e, 64, &st), 20);
	st = (struct rsx_wal_scan){ .next_seq = 99, .flags = RSX_WAL_SCAN_ANYSEQ };
	T_EQ(rsx_wal_scan(buf, total, e, 64, &st), 20);

	/* stream filter */
	st = (struct rsx_wal_scan){ .stream_id = 8 };
	T_EQ(rsx_wal_scan(buf, total, e, 64, &st), 0);
	T_EQ(st.error, RSX_ESTREAM);

	/* partial record at the end */
	st = (struct rsx_wal_scan){ .next_seq = 10 };
	T_EQ(rsx_wal_scan(buf, offs[7] + 20, e, 64, &st), 7);
	T_EQ(st.stop, RSX_WAL_STOP_PARTIAL);
	T_EQ(st.end, offs[7]);
	st = (struct rsx_wal_scan){ .next_seq = 10 };
	T_EQ(rsx_wal_scan(buf, offs[7] + 5, e, 64, &st), 7);	/* not even a header */
	T_EQ(st.stop, RSX_WAL_STOP_PARTIAL);

	/* a flipped bit anywhere in record 12 stops at record 12, never beyond */
	for (size_t bit = 0; bit < (offs[13] - offs[12]) * 8; bit += 7) {
		uint8_t copy[8192];
		memcpy(copy, buf, total);
		copy[offs[12] + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		st = (struct rsx_wal_scan){ .next_seq = 10, .stream_id = 7 };
		int64_t n = rsx_wal_scan(copy, total, e, 64, &st);
		T_EQ(n, 12);
		T_EQ(st.end, offs[12]);
		T_CHECK(st.stop == RSX_WAL_STOP_BAD || st.stop == RSX_WAL_STOP_PARTIAL);
		T_CHECK(st.error != 0 || st.stop == RSX_WAL_STOP_PARTIAL);
		T_EQ(st.valid, 0);
	}

	/* zero tail: clean end only with the ZEROS flag */
	uint8_t z[8192];
	memcpy(z, buf, offs[4]);
	memset(z + offs[4], 0, 1000);
	st = (struct rsx_wal_scan){ .next_seq = 10, .flags = RSX_WAL_SCAN_ZEROS };
	T_EQ(rsx_wal_scan(z, offs[4] + 1000, e, 64, &st), 4);
	T_EQ(st.stop, RSX_WAL_STOP_ZEROS);
	st = (struct rsx_wal_scan){ .next_seq = 10 };
	T_EQ(rsx_wal_scan(z, offs[4] + 1000, e, 64, &st), 4);
	T_EQ(st.stop, RSX_WAL_STOP_BAD);
	T_EQ(st.error, RSX_EVERSION);
	/* zeros followed by data are not a clean end */
	z[offs[4] + 900] = 1;
	st = (struct rsx_wal_scan){ .next_seq = 10, .flags = RSX_WAL_SCAN_ZEROS };
	rsx_wal_scan(z, offs[4] + 1000, e, 64, &st);
	T_EQ(st.stop, RSX_WAL_STOP_BAD);

	/* control records: an error in a WAL, a stop when asked */
	uint8_t c[1024];
	size_t n1 = frame(c, 1, 7, 0);
	struct rsx_caught_up cu;
	memset(&cu, 0, sizeof cu);
	cu.stream_id = 7;
	cu.live_seq = 1;
	size_t n2 = (size_t)rsx_record_frame(c + n1, sizeof c - n1, RSX_REC_CAUGHT_UP, &cu, sizeof cu);
	size_t n3 = frame(c + n1 + n2, 2, 7, 0);
	st = (struct rsx_wal_scan){ .next_seq = 1 };
	T_EQ(rsx_wal_scan(c, n1 + n2 + n3, e, 64, &st), 1);
	T_EQ(st.stop, RSX_WAL_STOP_BAD);
	T_EQ(st.error, RSX_ETYPE);
	st = (struct rsx_wal_scan){ .next_seq = 1, .flags = RSX_WAL_SCAN_CONTROL };
	T_EQ(rsx_wal_scan(c, n1 + n2 + n3, e, 64, &st), 1);
	T_EQ(st.stop, RSX_WAL_STOP_CONTROL);
	T_EQ(st.end, n1);
	/* continue after the control record */
	T_EQ(rsx_wal_scan(c + n1 + n2, n3, e, 64, &st), 1);
	T_EQ(e[0].seq, 2);

	/* empty buffer */
	st = (struct rsx_wal_scan){ 0 };
	T_EQ(rsx_wal_scan(buf, 0, e, 0, &st), 0);
	T_EQ(st.stop, RSX_WAL_STOP_END);
	T_DONE();
}
