/*
 * test_me.c - the matching engine in one thread: requests in, the records of
 * the stream out (ORDER_ACCEPTED before the book's events), refusals with a
 * reason, dedup across a restart, control, recovery of a request a crash cut,
 * snapshots with a corrupt newest one, and the CMP path over the mem backend.
 */
#include <errno.h>
#include <fcntl.h>

#include "t_helpers.h"
#include "t_me.h"

static struct rsx_me *open_me(const char *dir, struct rsx_me_recovery *rec)
{
	struct rsx_me_config cfg;
	struct rsx_me *me = NULL;
	t_me_config(&cfg, dir);
	int rc = rsx_me_open(&cfg, &me, rec);
	if (rc < 0)
		fprintf(stderr, "open: %d %s\n", rc, rec ? rec->message : "");
	T_EQ(rc, 0);
	return me;
}

static int64_t submit(struct rsx_me *me, const uint8_t *rec, int len)
{
	int64_t n = rsx_me_submit(me, rec, (size_t)len);
	T_EQ(rsx_me_drain(me, 2000000000), 0);
	return n;
}

/* Types of the records after seq `from` (1-based), into types[]; returns how many. */
static int types_from(const char *dir, uint64_t from, uint16_t *types, int max)
{
	uint64_t n;
	size_t len;
	uint8_t *buf = t_read_stream(dir, &n, &len);
	int k = 0;
	for (uint64_t i = from - 1; i < n && k < max; i++)
		types[k++] = t_type(t_nth(buf, i));
	free(buf);
	return k;
}

static struct rsx_order_failed failed_at(const char *dir, uint64_t seq)
{
	uint64_t n;
	size_t len;
	struct rsx_order_failed f;
	memset(&f, 0, sizeof f);
	uint8_t *buf = t_read_stream(dir, &n, &len);
	if (seq <= n) {
		const uint8_t *r = t_nth(buf, seq - 1);
		T_EQ(t_type(r), RSX_REC_ORDER_FAILED);
		memcpy(&f, r + RSX_HEADER_SIZE, sizeof f);
	}
	free(buf);
	return f;
}

static void test_orders_and_refusals(void)
{
	char *dir = t_me_dir();
	struct rsx_me_recovery rec;
	struct rsx_me *me = open_me(dir, &rec);
	uint8_t r[RSX_RECORD_MAX];
	uint16_t ty[16];
	struct rsx_me_info info;

	T_EQ(rec.config_appended, 1);
	rsx_me_info(me, &info);
	T_EQ(info.next_seq, 2);	/* seq 1 = CONFIG_APPLIED */
	T_EQ(types_from(dir, 1, ty, 16), 1);
	T_EQ(ty[0], RSX_REC_CONFIG_APPLIED);

	/* a resting sell: ACCEPTED, INSERTED, BBO */
	T_EQ(submit(me, r, t_order(r, 10, 1, RSX_SIDE_SELL, 50010, 5, RSX_TIF_GTC, 0)), 1);
	T_EQ(types_from(dir, 2, ty, 16), 3);
	T_EQ(ty[0], RSX_REC_ORDER_ACCEPTED);
	T_EQ(ty[1], RSX_REC_ORDER_INSERTED);
	T_EQ(ty[2], RSX_REC_BBO);
	/* a crossing buy: ACCEPTED, FILL, maker DONE, taker DONE, BBO */
	T_EQ(submit(me, r, t_order(r, 11, 2, RSX_SIDE_BUY, 50010, 5, RSX_TIF_GTC, 0)), 1);
	T_EQ(types_from(dir, 5, ty, 16), 5);
	T_EQ(ty[0], RSX_REC_ORDER_ACCEPTED);
	T_EQ(ty[1], RSX_REC_FILL);
	T_EQ(ty[2], RSX_REC_ORDER_DONE);
	T_EQ(ty[3], RSX_REC_ORDER_DONE);
	T_EQ(ty[4], RSX_REC_BBO);

	/* the same (user, id) again: refused DUPLICATE, detail = seq of the original ORDER_ACCEPTED */
	T_EQ(submit(me, r, t_order(r, 10, 1, RSX_SIDE_SELL, 50010, 5, RSX_TIF_GTC, 0)), 1);
	struct rsx_order_failed f = failed_at(dir, 10);
	T_EQ(f.reason, RSX_REASON_DUPLICATE_ORDER_ID);
	T_EQ(f.request_type, RSX_REC_NEW_ORDER);
	T_EQ(f.detail, 2);
	T_EQ(f.user_id, 10);
	/* another user may use the same id */
	T_EQ(submit(me, r, t_order(r, 12, 1, RSX_SIDE_SELL, 50020, 1, RSX_TIF_GTC, 0)), 1);
	T_EQ(types_from(dir, 11, ty, 16), 3);
	T_EQ(ty[0], RSX_REC_ORDER_ACCEPTED);

	/* refusals by the ME: each one ORDER_FAILED, nothing accepted */
	struct {
		uint32_t user;
		int side, tif, flags;
		int64_t price, qty;
		uint16_t reason;
	} bad[] = {
		{ 0, 0, 0, 0, 50000, 1, RSX_REASON_UNKNOWN_USER },
		{ 13, 2, 0, 0, 50000, 1, RSX_REASON_BAD_SIDE },
		{ 13, 0, 3, 0, 50000, 1, RSX_REASON_BAD_TIF },
		{ 13, 0, 0, 0x80, 50000, 1, RSX_REASON_BAD_FLAGS },
		{ 13, 0, RSX_TIF_IOC, RSX_ORDER_POST_ONLY, 50000, 1, RSX_REASON_BAD_FLAGS },
		{ 13, 0, 0, 0, 0, 1, RSX_REASON_PRICE_NOT_POSITIVE },
		{ 13, 0, 0, 0, 50000, 0, RSX_REASON_QTY_NOT_POSITIVE },
		{ 13, 0, 0, 0, 50000, 2000000000, RSX_REASON_QTY_ABOVE_MAX },
	};
	uint64_t seq = 14;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++, seq++) {
		T_EQ(submit(me, r, t_order(r, bad[i].user, 100 + i, bad[i].side, bad[i].price, bad[i].qty,
					   bad[i].tif, bad[i].flags)), 1);
		f = failed_at(dir, seq);
		T_EQ(f.reason, bad[i].reason);
	}
	/* another symbol */
	t_order(r, 13, 200, 0, 50000, 1, 0, 0);
	uint32_t other = 9;
	memcpy(r + RSX_HEADER_SIZE + 20, &other, 4);
	rsx_record_seal(r, sizeof r);
	T_EQ(submit(me, r, 144), 1);
	f = failed_at(dir, seq++);
	T_EQ(f.reason, RSX_REASON_UNKNOWN_SYMBOL);
	T_EQ(f.detail, 9);
	T_EQ(f.symbol_id, T_SYM);
	/* an order risk released long ago: TIMEOUT */
	t_order(r, 13, 201, 0, 50000, 1, 0, 0);
	uint64_t old = 1000000000ull;	/* 1 s after the epoch */
	memcpy(r + RSX_HEADER_SIZE + offsetof(struct rsx_order, risk_out_ts_ns), &old, 8);
	rsx_record_seal(r, sizeof r);
	T_EQ(submit(me, r, 144), 1);
	f = failed_at(dir, seq++);
	T_EQ(f.reason, RSX_REASON_TIMEOUT);
	/* cancel of an unknown order, and of another user's order: the request, then UNKNOWN_ORDER */
	T_EQ(submit(me, r, t_cancel(r, 13, 999)), 1);
	T_EQ(types_from(dir, seq, ty, 16), 2);
	T_EQ(ty[0], RSX_REC_CANCEL_ORDER);
	T_EQ(failed_at(dir, seq + 1).reason, RSX_REASON_UNKNOWN_ORDER);
	seq += 2;
	T_EQ(submit(me, r, t_cancel(r, 13, 1)), 1);	/* user 12's order id 1 rests; 13 is not its owner */
	T_EQ(failed_at(dir, seq + 1).reason, RSX_REASON_UNKNOWN_ORDER);
	seq += 2;
	/* a record the ME does not take: dropped, counted, nothing on the stream */
	struct rsx_bbo bb;
	memset(&bb, 0, sizeof bb);
	bb.seq = 1;
	bb.symbol_id = T_SYM;
	rsx_record_frame(r, sizeof r, RSX_REC_BBO, &bb, sizeof bb);
	T_EQ(submit(me, r, 80), 1);
	rsx_me_info(me, &info);
	T_EQ(info.next_seq, seq);
	/* the owner cancels: CANCEL_ORDER, ORDER_CANCELLED, BBO */
	T_EQ(submit(me, r, t_cancel(r, 12, 1)), 1);
	T_EQ(types_from(dir, seq, ty, 16), 3);
	T_EQ(ty[1], RSX_REC_ORDER_CANCELLED);

	/* counters in the status file */
	int fd = open(rsx_me_stats_path(me), O_RDONLY);
	T_CHECK(fd >= 0);
	struct rsx_me_stats_header h;
	T_EQ(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	uint64_t c[64];
	T_EQ(pread(fd, c, sizeof c, h.counters_off), (ssize_t)sizeof c);
	close(fd);
	T_EQ(memcmp(h.magic, RSX_ME_STATS_MAGIC, 8), 0);
	T_EQ(h.state, RSX_ME_RUNNING);
	T_EQ(c[0], 14);		/* req_new */
	T_EQ(c[12], 1);		/* duplicates */
	T_EQ(c[16], 1);		/* bad_type */
	T_EQ(rsx_me_close(me), 0);
	t_me_rmdir(dir);
}

static void test_restart_dedup_and_control(void)
{
	char *dir = t_me_dir();
	struct rsx_me_recovery rec;
	struct rsx_me *me = open_me(dir, &rec);
	uint8_t r[RSX_RECORD_MAX];
	for (uint64_t k = 1; k <= 50; k++)
		rsx_me_submit(me, r, (size_t)t_order(r, 1 + k % 5, k, (int)(k & 1), 50000 + (int64_t)(k % 7), 3, 0, 0));
	T_EQ(rsx_me_drain(me, 2000000000), 0);
	struct rsx_me_info before;
	rsx_me_info(me, &before);
	T_EQ(rsx_me_close(me), 0);

	me = open_me(dir, &rec);
	T_EQ(rec.snapshot_seq, 0);
	T_EQ(rec.replayed_records, before.next_seq - 1);
	T_EQ(rec.dedup_entries, 50);
	T_EQ(rec.config_appended, 0);
	struct rsx_me_info info;
	rsx_me_info(me, &info);
	T_EQ(info.next_seq, before.next_seq);	/* no seq reused */
	/* a resend of an order accepted before the restart is refused */
	T_EQ(submit(me, r, t_order(r, 1 + 7 % 5, 7, 1, 50000, 3, 0, 0)), 1);
	T_EQ(failed_at(dir, info.next_seq).reason, RSX_REASON_DUPLICATE_ORDER_ID);

	/* control: halt, then a new order is refused; close-only admits reduce-only orders only */
	struct rsx_config cur;
	t_symbol(&cur);
	cur.config_version = 2;
	cur.status = RSX_SYMBOL_HALTED;
	T_EQ(rsx_me_control(me, &cur), 0);
	T_EQ(rsx_me_drain(me, 2000000000), 0);
	T_EQ(submit(me, r, t_order(r, 3, 500, 0, 50000, 1, 0, 0)), 1);
	rsx_me_info(me, &info);
	T_EQ(info.status, RSX_SYMBOL_HALTED);
	T_EQ(failed_at(dir, info.next_seq - 1).reason, RSX_REASON_SYMBOL_HALTED);
	cur.config_version = 3;
	cur.status = RSX_SYMBOL_CLOSE_ONLY;
	T_EQ(rsx_me_control(me, &cur), 0);
	T_EQ(submit(me, r, t_order(r, 3, 501, 0, 50000, 1, 0, 0)), 1);
	rsx_me_info(me, &info);
	T_EQ(failed_at(dir, info.next_seq - 1).reason, RSX_REASON_CLOSE_ONLY);
	T_EQ(submit(me, r, t_order(r, 3, 502, 0, 50000, 1, 0, RSX_ORDER_REDUCE_ONLY)), 1);
	uint16_t ty[4];
	T_CHECK(types_from(dir, info.next_seq, ty, 4) >= 2);
	T_EQ(ty[0], RSX_REC_ORDER_ACCEPTED);	/* accepted; the book then decides about the position */
	/* stale version, changed decimals, another symbol: refused, nothing on the stream */
	rsx_me_info(me, &before);
	T_EQ(rsx_me_control(me, &cur), RSX_ESTALE);
	cur.config_version = 4;
	cur.price_decimals = 3;
	T_EQ(rsx_me_control(me, &cur), RSX_EINVALID);
	cur.price_decimals = 2;
	cur.min_qty.raw = 0;
	T_EQ(rsx_me_control(me, &cur), RSX_EINVALID);
	rsx_me_info(me, &info);
	T_EQ(info.next_seq, before.next_seq);
	T_EQ(rsx_me_close(me), 0);

	/* the status survives a restart: still close-only */
	me = open_me(dir, &rec);
	rsx_me_info(me, &info);
	T_EQ(info.status, RSX_SYMBOL_CLOSE_ONLY);
	T_EQ(info.config_version, 3);
	T_EQ(rec.config_appended, 0);
	T_EQ(rsx_me_close(me), 0);

	/* a changed parameter in the configuration becomes a new version at start, status kept */
	struct rsx_me_config cfg;
	t_me_config(&cfg, dir);
	cfg.symbol.taker_fee_bps = 7;
	T_EQ(rsx_me_open(&cfg, &me, &rec), 0);
	T_EQ(rec.config_appended, 1);
	rsx_me_info(me, &info);
	T_EQ(info.config_version, 4);
	T_EQ(info.status, RSX_SYMBOL_CLOSE_ONLY);
	T_EQ(rsx_me_close(me), 0);
	struct rsx_me_verify_report vr;
	T_EQ(rsx_me_verify(&cfg, &vr), 0);
	T_EQ(vr.full_result, 0);
	t_me_rmdir(dir);
}

/* Copy the first k records of src's stream into a fresh WAL in dst: a crash that cut the stream there. */
static void cut_copy(const char *src, const char *dst, uint64_t k)
{
	uint64_t n;
	size_t len;
	uint8_t *buf = t_read_stream(src, &n, &len);
	char wal[256];
	snprintf(wal, sizeof wal, "%s/wal", dst);
	struct rsx_wal_config wc;
	struct rsx_wal *w;
	rsx_wal_config_default(&wc);
	wc.dir = wal;
	wc.stream_id = T_SYM;
	wc.flags = RSX_WAL_MANUAL | RSX_WAL_NO_PREALLOC;
	T_EQ(rsx_wal_open(&w, &wc), 0);
	const uint8_t *p = buf;
	for (uint64_t i = 0; i < k; i++) {
		uint16_t type;
		memcpy(&type, p + 2, 2);
		T_CHECK(rsx_wal_append(w, type, p + RSX_HEADER_SIZE, t_size(p) - RSX_HEADER_SIZE, NULL) > 0);
		p += t_size(p);
	}
	T_EQ(rsx_wal_close(w), 0);
	free(buf);
}

static void test_completion_of_a_cut_request(void)
{
	char *a = t_me_dir(), *b = t_me_dir();
	struct rsx_me_recovery rec;
	struct rsx_me *me = open_me(a, &rec);
	uint8_t r[RSX_RECORD_MAX];
	/* five resting sells, then a buy that sweeps them: one request with 11+ records */
	for (uint64_t k = 1; k <= 5; k++)
		rsx_me_submit(me, r, (size_t)t_order(r, (uint32_t)k, k, 1, 50000 + (int64_t)k, 2, 0, 0));
	T_EQ(rsx_me_drain(me, 2000000000), 0);
	struct rsx_me_info mid;
	rsx_me_info(me, &mid);
	T_EQ(submit(me, r, t_order(r, 9, 99, 0, 50010, 10, 0, 0)), 1);
	struct rsx_me_info end;
	rsx_me_info(me, &end);
	T_EQ(rsx_me_close(me), 0);
	T_CHECK(end.next_seq - mid.next_seq >= 12);

	/* the stream cut after the sweep's 4th record: recovery re-runs it and appends the rest */
	uint64_t cut = mid.next_seq - 1 + 4;
	cut_copy(a, b, cut);
	me = open_me(b, &rec);
	T_EQ(rec.completed_records, end.next_seq - 1 - cut);
	struct rsx_me_info info;
	rsx_me_info(me, &info);
	T_EQ(info.next_seq, end.next_seq);
	T_EQ(rsx_me_close(me), 0);
	uint64_t na, nb;
	size_t la, lb;
	uint8_t *sa = t_read_stream(a, &na, &la), *sb = t_read_stream(b, &nb, &lb);
	T_EQ(na, nb);
	T_EQ(la, lb);
	/* the same records, except seq 1..: ts_ns and CRC differ where they were framed again */
	const uint8_t *pa = sa, *pb = sb;
	for (uint64_t i = 0; i < na && i < nb; i++) {
		size_t s = t_size(pa);
		T_EQ(t_type(pa), t_type(pb));
		T_EQ(memcmp(pa + RSX_HEADER_SIZE, pb + RSX_HEADER_SIZE, 8), 0);	/* seq */
		T_EQ(memcmp(pa + RSX_HEADER_SIZE + 16, pb + RSX_HEADER_SIZE + 16, s - RSX_HEADER_SIZE - 16), 0);
		pa += s;
		pb += t_size(pb);
	}
	free(sa);
	free(sb);
	t_me_rmdir(a);
	t_me_rmdir(b);
}

static void test_snapshots_and_a_corrupt_one(void)
{
	char *dir = t_me_dir();
	struct rsx_me_config cfg;
	struct rsx_me *me;
	struct rsx_me_recovery rec;
	t_me_config(&cfg, dir);
	cfg.flags = RSX_ME_STATS_IN_DIR;	/* with the snapshot thread */
	cfg.snapshot_records = 100;
	cfg.snapshot_ns = 10000000;
	cfg.snapshot_keep = 2;
	T_EQ(rsx_me_open(&cfg, &me, &rec), 0);
	uint8_t r[RSX_RECORD_MAX];
	for (uint64_t k = 1; k <= 600; k++) {
		int side = (int)(k % 2);
		rsx_me_submit(me, r, (size_t)t_order(r, 1 + (uint32_t)(k % 9), k, side, 50000 + (int64_t)(k % 13) - 6,
						     1 + (int64_t)(k % 4), 0, 0));
		if (k % 100 == 0) {
			T_EQ(rsx_me_drain(me, 2000000000), 0);
			usleep(30000);
		}
	}
	T_EQ(rsx_me_drain(me, 2000000000), 0);
	usleep(100000);
	struct rsx_me_info info;
	rsx_me_info(me, &info);
	T_EQ(rsx_me_close(me), 0);

	char snaps[256];
	snprintf(snaps, sizeof snaps, "%s/snapshots", dir);
	T_EQ(t_count_snaps(snaps), 2);	/* keep = 2 */
	T_EQ(rsx_me_verify(&cfg, &(struct rsx_me_verify_report){ 0 }), 0);

	/* corrupt the newest: recovery says so and uses the older one */
	char newest[512];
	T_CHECK(t_newest_snap(snaps, newest, sizeof newest));
	int fd = open(newest, O_WRONLY);
	T_CHECK(fd >= 0);
	T_EQ(pwrite(fd, "X", 1, 300), 1);
	close(fd);
	T_EQ(rsx_me_open(&cfg, &me, &rec), 0);
	T_EQ(rec.snapshots_rejected, 1);
	T_EQ(rec.reject_error, RSX_ECRC);
	T_CHECK(rec.snapshot_seq > 0);
	struct rsx_me_info after;
	rsx_me_info(me, &after);
	T_EQ(after.next_seq, info.next_seq);
	T_EQ(rsx_me_close(me), 0);
	t_me_rmdir(dir);
}

/* The whole path over CMP (mem backend): a link in, the stream out, byte for byte the WAL's. */
static void test_cmp_path(void)
{
	char *dir = t_me_dir();
	struct rsx_me_recovery rec;
	struct rsx_me *me = open_me(dir, &rec);
	struct rsx_cmp_config ec;
	struct rsx_cmp_endpoint *mep, *dep;
	rsx_cmp_config_init(&ec);
	ec.backend = RSX_CMP_MEM;
	rsx_cmp_addr_set(&ec.local, "10.0.0.1", 9100);
	T_EQ(rsx_cmp_open(&ec, &mep), 0);
	rsx_cmp_addr_set(&ec.local, "10.0.0.2", 9200);
	T_EQ(rsx_cmp_open(&ec, &dep), 0);
	T_EQ(rsx_cmp_mem_link(mep, dep), 0);

	struct rsx_cmp_sender_config tx;
	rsx_cmp_sender_config_init(&tx);
	tx.ndest = 1;
	rsx_cmp_addr_set(&tx.dest[0], "10.0.0.2", 9200);
	tx.ring_size = 64;
	struct rsx_cmp_receiver_config rx;
	rsx_cmp_receiver_config_init(&rx);
	rx.start_seq = 0;
	uint32_t link = 0x20000000u | (0u << 16) | T_SYM;
	T_EQ(rsx_me_attach(me, mep, &tx, &rx, &link, 1), 0);

	/* the driver: a sender on the link stream, a receiver of the ME's stream */
	struct rsx_cmp_sender_config dtx;
	struct rsx_cmp_sender *ds;
	rsx_cmp_sender_config_init(&dtx);
	dtx.stream_id = link;
	dtx.ndest = 1;
	rsx_cmp_addr_set(&dtx.dest[0], "10.0.0.1", 9100);
	T_EQ(rsx_cmp_sender_open(dep, &dtx, &ds), 0);
	struct rsx_cmp_receiver_config drx;
	struct rsx_cmp_receiver *dr;
	rsx_cmp_receiver_config_init(&drx);
	drx.stream_id = T_SYM;
	drx.start_seq = 1;
	T_EQ(rsx_cmp_receiver_open(dep, &drx, &dr), 0);

	static uint8_t got[4096 * RSX_RECORD_MAX];
	size_t ngot = 0;
	uint8_t r[RSX_RECORD_MAX];
	for (uint64_t k = 1; k <= 200; k++) {
		int n = t_order(r, 1 + (uint32_t)(k % 3), k, (int)(k & 1), 50000 + (int64_t)(k % 5), 2, 0, 0);
		/* the link's own seq (the sender frames nothing: set it, reseal) */
		memcpy(r + RSX_HEADER_SIZE, &k, 8);
		memcpy(r + RSX_HEADER_SIZE + 16, &link, 4);
		rsx_record_seal(r, sizeof r);
		T_EQ(rsx_cmp_sender_send(ds, r, (size_t)n), n);
		for (int i = 0; i < 3; i++) {
			rsx_cmp_poll(dep, 0);
			T_CHECK(rsx_me_step(me, 0) >= 0);
		}
	}
	for (int spin = 0; spin < 20000; spin++) {
		rsx_cmp_poll(dep, 0);
		rsx_me_step(me, 0);
		int n = rsx_cmp_receiver_read(dr, got + ngot * RSX_RECORD_MAX, RSX_RECORD_MAX, 4096 - ngot);
		if (n > 0)
			ngot += (size_t)n;
		struct rsx_me_info info;
		rsx_me_info(me, &info);
		if (info.in_flight == 0 && ngot == info.next_seq - 1)
			break;
		usleep(50);
	}
	struct rsx_me_info info;
	rsx_me_info(me, &info);
	T_EQ(ngot, info.next_seq - 1);
	T_CHECK(ngot > 400);
	uint64_t n;
	size_t len;
	uint8_t *wal = t_read_stream(dir, &n, &len);
	const uint8_t *p = wal;
	int same = 1;
	for (size_t i = 0; i < ngot && i < n; i++) {
		size_t s = t_size(p);
		same &= memcmp(p, got + i * RSX_RECORD_MAX, s) == 0;
		p += s;
	}
	T_CHECK(same);	/* every record that left the ME is in its WAL, byte for byte */
	free(wal);
	T_EQ(rsx_me_close(me), 0);
	rsx_cmp_close(mep);
	rsx_cmp_close(dep);
	t_me_rmdir(dir);
}

int main(void)
{
	test_orders_and_refusals();
	test_restart_dedup_and_control();
	test_completion_of_a_cut_request();
	test_snapshots_and_a_corrupt_one();
	test_cmp_path();
	T_DONE();
}
