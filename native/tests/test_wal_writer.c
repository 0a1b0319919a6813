/*
 * test_wal_writer.c - append, group commit, stall, rotation naming, restart
 * continuity, recovery of torn tails, refusal on corrupt durable data, lock,
 * retention with consumers.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>

#include "t_helpers.h"
#include "t_wal.h"

/* Read every record of dir with a fresh reader; check seqs first..last and payload qty == seq. */
static uint64_t read_all(const char *dir, uint64_t first)
{
	struct rsx_wal_set *s;
	struct rsx_wal_reader *r;
	static uint8_t buf[1 << 20];
	static struct rsx_wal_entry e[8192];
	uint64_t expect = first, n = 0;
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	T_EQ(rsx_wal_reader_seek(r, first), 0);
	for (;;) {
		size_t nb;
		int64_t got = rsx_wal_reader_read(r, buf, sizeof buf, e, 8192, &nb);
		T_CHECK(got >= 0);
		if (got <= 0)
			break;
		for (int64_t i = 0; i < got; i++) {
			int64_t qty;
			T_EQ(e[i].seq, expect);
			size_t qoff = e[i].type == RSX_REC_FILL ? offsetof(struct rsx_fill, qty)
								  : offsetof(struct rsx_order_inserted, qty);
			memcpy(&qty, buf + e[i].offset + RSX_HEADER_SIZE + qoff, 8);
			T_EQ(qty, (int64_t)e[i].seq);
			T_EQ(rsx_record_check(buf + e[i].offset, e[i].size), e[i].size);
			expect++;
			n++;
		}
	}
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);
	return n;
}

/* Append n records whose qty is their seq (payload built from next_seq). */
static void append_n(struct rsx_wal *w, uint64_t n, int mix)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t seq = rsx_wal_next_seq(w), got;
		if (mix && seq % 5 == 0) {
			struct rsx_fill p = t_fill(seq);
			T_EQ(rsx_wal_append(w, RSX_REC_FILL, &p, sizeof p, &got), 144);
		} else {
			struct rsx_order_inserted p = t_payload(seq);
			T_EQ(rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, &got), 80);
		}
		T_EQ(got, seq);
	}
}

static void test_basic_manual(void)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_MANUAL);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	T_EQ(rsx_wal_next_seq(w), 1);
	T_EQ(rsx_wal_durable_seq(w), 0);
	append_n(w, 100, 1);
	T_EQ(rsx_wal_durable_seq(w), 0);	/* nothing is durable before a flush */
	T_EQ(rsx_wal_flush(w), 0);
	T_EQ(rsx_wal_durable_seq(w), 100);
	T_EQ(*rsx_wal_durable_ptr(w), 100);

	/* bad input changes nothing */
	struct rsx_order_inserted p = t_payload(0);
	uint64_t seq = 0;
	T_EQ(rsx_wal_append(w, RSX_REC_CAUGHT_UP, &p, 64, &seq), RSX_ETYPE);
	T_EQ(rsx_wal_append(w, 0, &p, 64, &seq), RSX_ETYPE);
	T_EQ(rsx_wal_append(w, 999, &p, 64, &seq), RSX_ETYPE);
	T_EQ(rsx_wal_append(w, RSX_REC_FILL, &p, 64, &seq), RSX_ELENGTH);
	T_EQ(rsx_wal_append_batch(w, RSX_REC_ORDER_INSERTED, &p, 64, 1, 8, &seq), RSX_EINVALID);
	T_EQ(rsx_wal_next_seq(w), 101);

	/* the writer stamps seq and stream; keeps a given ts, stamps a zero one */
	p.ts_ns = 0;
	p.stream_id = 99;
	T_EQ(rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, &seq), 80);
	T_EQ(seq, 101);
	T_EQ(rsx_wal_flush(w), 0);
	struct rsx_wal_stats st;
	rsx_wal_stats(w, &st);
	T_EQ(st.durable_seq, 101);
	T_EQ(st.records, 101);
	T_EQ(st.state, RSX_WAL_RUNNING);

	/* a second writer on the same directory is refused */
	struct rsx_wal *w2;
	T_EQ(rsx_wal_open(&w2, &cfg), -EBUSY);
	T_EQ(rsx_wal_close(w), 0);

	struct rsx_wal_set *s;
	struct rsx_wal_reader *r;
	uint8_t rec[256];
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	T_EQ(rsx_wal_read_seq(r, 101, rec, sizeof rec), 80);
	struct rsx_order_inserted out;
	memcpy(&out, rec + 16, sizeof out);
	T_EQ(out.seq, 101);
	T_EQ(out.stream_id, 7);
	T_CHECK(out.ts_ns > 1600000000000000000ull);
	T_EQ(rsx_wal_read_seq(r, 51, rec, sizeof rec), 80);
	memcpy(&out, rec + 16, sizeof out);
	T_EQ(out.ts_ns, 1700000000000000000ull + 51);
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);

	/* restart: seq continues, never regresses */
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	T_EQ(rsx_wal_next_seq(w), 102);
	T_EQ(rsx_wal_durable_seq(w), 101);
	T_EQ(rsx_wal_close(w), 0);
	t_rmdir(dir);
}

static void test_rotation_names(void)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_MANUAL);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	for (int round = 0; round < 10; round++) {
		append_n(w, 500, 1);
		T_EQ(rsx_wal_flush(w), 0);
	}
	struct rsx_wal_stats st;
	rsx_wal_stats(w, &st);
	T_CHECK(st.rotations >= 5);
	T_EQ(rsx_wal_close(w), 0);

	/* every rotated file holds exactly the seqs its name says, and fits the limit */
	struct rsx_wal_set *s;
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	uint64_t first, expect = 1;
	const char *name;
	for (uint32_t i = 0; (name = rsx_wal_set_file(s, i, &first)) != NULL; i++) {
		T_EQ(first, expect);
		uint64_t a, b;
		char path[512];
		snprintf(path, sizeof path, "%s/%s", dir, name);
		if (sscanf(name, "7_%" SCNu64 "_%" SCNu64 ".wal", &a, &b) == 2) {
			FILE *f = fopen(path, "rb");
			static uint8_t data[1 << 17];
			size_t n = fread(data, 1, sizeof data, f);
			fclose(f);
			T_CHECK(n <= cfg.file_size);
			struct rsx_wal_entry e[2048];
			struct rsx_wal_scan sc = { .next_seq = a, .stream_id = 7 };
			rsx_wal_scan(data, n, e, 2048, &sc);
			T_EQ(sc.stop, RSX_WAL_STOP_END);
			T_EQ(e[0].seq, a);
			T_EQ(e[sc.count - 1].seq, b);
			expect = b + 1;
		} else {
			T_CHECK(strstr(name, "_active.wal") != NULL);
		}
	}
	rsx_wal_set_close(s);
	T_EQ(read_all(dir, 1), 5000);
	t_rmdir(dir);
}

static uint64_t cb_calls, cb_last, cb_regress;
static void on_durable(void *ctx, uint64_t seq, uint64_t now)
{
	(void)ctx;
	(void)now;
	if (seq < cb_last)
		cb_regress++;
	cb_last = seq;
	cb_calls++;
}

static void test_threaded_stall(uint32_t flags)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, flags);
	cfg.file_size = 256 * 1024;
	cfg.on_durable = on_durable;
	cb_calls = cb_last = cb_regress = 0;
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	const uint64_t total = 20000;
	uint64_t eagain = 0;
	while (rsx_wal_next_seq(w) <= total) {
		uint64_t seq = rsx_wal_next_seq(w), got;
		struct rsx_order_inserted p = t_payload(seq);
		int rc = rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, &got);
		if (rc == -EAGAIN) {
			eagain++;
			T_EQ(rsx_wal_next_seq(w), seq);	/* nothing appended */
			rsx_wal_wait_durable(w, seq - 1, 1000000);
			continue;
		}
		T_EQ(rc, 80);
	}
	T_EQ(rsx_wal_wait_durable(w, total, 10000000000ll), 0);
	T_EQ(rsx_wal_durable_seq(w), total);
	struct rsx_wal_stats st;
	rsx_wal_stats(w, &st);
	/* a 64 KiB ring holds ~800 records: 20000 appends must have stalled */
	T_CHECK(st.stalls > 0);
	if (flags & RSX_WAL_NONBLOCK)
		T_CHECK(eagain > 0);
	T_CHECK(st.batches >= 1);
	T_EQ(st.records, total);
	T_EQ(rsx_wal_close(w), 0);
	T_CHECK(cb_calls > 0);
	T_EQ(cb_last, total);
	T_EQ(cb_regress, 0);
	T_EQ(read_all(dir, 1), total);
	t_rmdir(dir);
}

static void test_batch_append_and_timer(void)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, 0);
	cfg.batch_records = 100;
	cfg.batch_us = 200000;	/* 200 ms: a lone record waits for the timer */
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	struct rsx_order_inserted p[300];
	for (int i = 0; i < 300; i++)
		p[i] = t_payload((uint64_t)i + 1);
	uint64_t first;
	T_EQ(rsx_wal_append_batch(w, RSX_REC_ORDER_INSERTED, p, sizeof p[0], 300, sizeof p[0], &first), 300);
	T_EQ(first, 1);
	/* 300 >= N: flushed without waiting for T */
	T_EQ(rsx_wal_wait_durable(w, 300, 150000000), 0);
	uint64_t seq;
	struct rsx_order_inserted one = t_payload(301);
	T_EQ(rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &one, sizeof one, &seq), 80);
	/* 1 < N: not durable before T ... */
	T_EQ(rsx_wal_wait_durable(w, 301, 50000000), -ETIMEDOUT);
	/* ... and durable after it */
	T_EQ(rsx_wal_wait_durable(w, 301, 2000000000), 0);
	T_EQ(rsx_wal_close(w), 0);
	T_EQ(read_all(dir, 1), 301);
	t_rmdir(dir);
}

static int file_in(const char *dir, const char *suffix, char *out, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name), s = strlen(suffix);
		if (l >= s && strcmp(de->d_name + l - s, suffix) == 0) {
			snprintf(out, cap, "%s/%s", dir, de->d_name);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

static void test_recovery(uint32_t extra)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	char active[512];
	t_config(&cfg, dir, RSX_WAL_MANUAL | extra);
	cfg.file_size = 1 << 20;
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	append_n(w, 200, 1);
	T_EQ(rsx_wal_flush(w), 0);
	T_EQ(rsx_wal_close(w), 0);
	T_CHECK(file_in(dir, "_active.wal", active, sizeof active));

	/* 1. a torn tail past the durable size: cut off, reported, seq continues */
	struct rsx_wal_tip tip;
	T_EQ(rsx_wal_tip_read(dir, 7, &tip), 0);
	uint64_t data = tip.active_durable_bytes;
	int fd = open(active, O_RDWR);
	uint8_t junk[100];
	memset(junk, 0xAB, sizeof junk);
	T_EQ(pwrite(fd, junk, sizeof junk, (off_t)data), (ssize_t)sizeof junk);
	close(fd);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	struct rsx_wal_stats st;
	rsx_wal_stats(w, &st);
	T_EQ(st.recovered_offset, data);
	T_CHECK(st.recovered_bytes >= sizeof junk);
	T_EQ(st.recovered_error, RSX_EVERSION);
	T_EQ(rsx_wal_next_seq(w), 201);
	append_n(w, 10, 0);
	T_EQ(rsx_wal_close(w), 0);
	T_EQ(read_all(dir, 1), 210);

	/* 2. a half-written record at the end: cut as well */
	T_EQ(rsx_wal_tip_read(dir, 7, &tip), 0);
	data = tip.active_durable_bytes;
	struct rsx_order_inserted p = t_payload(211);
	p.seq = 211;
	p.stream_id = 7;
	uint8_t rec[128];
	T_EQ(rsx_record_frame(rec, sizeof rec, RSX_REC_ORDER_INSERTED, &p, sizeof p), 80);
	fd = open(active, O_RDWR);
	T_EQ(pwrite(fd, rec, 50, (off_t)data), 50);
	close(fd);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	rsx_wal_stats(w, &st);
	T_EQ(st.recovered_offset, data);
	/* a growing file ends mid-record; a preallocated one has zeros after it */
	T_EQ(st.recovered_error, (extra & RSX_WAL_NO_PREALLOC) ? RSX_ESHORT : RSX_ECRC);
	T_EQ(rsx_wal_next_seq(w), 211);
	T_EQ(rsx_wal_close(w), 0);

	/* 3. a valid record the writer never wrote (wrong seq) is not a torn tail: refuse */
	p.seq = 500;
	T_EQ(rsx_record_frame(rec, sizeof rec, RSX_REC_ORDER_INSERTED, &p, sizeof p), 80);
	fd = open(active, O_RDWR);
	T_EQ(pwrite(fd, rec, 80, (off_t)data), 80);
	close(fd);
	T_EQ(rsx_wal_open(&w, &cfg), RSX_ESEQ);
	fd = open(active, O_RDWR);
	uint8_t back[80];
	T_EQ(pread(fd, back, 80, (off_t)data), 80);
	T_CHECK(memcmp(back, rec, 80) == 0);	/* untouched */
	T_EQ(ftruncate(fd, (off_t)data), 0);
	close(fd);

	/* 4. a flipped bit inside durable data: refuse to open, touch nothing */
	fd = open(active, O_RDWR);
	uint8_t b;
	T_EQ(pread(fd, &b, 1, 1000), 1);
	b ^= 0x10;
	T_EQ(pwrite(fd, &b, 1, 1000), 1);
	struct stat before, after;
	fstat(fd, &before);
	close(fd);
	T_EQ(rsx_wal_open(&w, &cfg), RSX_ECRC);
	stat(active, &after);
	T_EQ(after.st_size, before.st_size);
	t_rmdir(dir);
}

static void test_crash_mid_rotation(void)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_MANUAL | RSX_WAL_NO_PREALLOC);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	append_n(w, 300, 0);
	T_EQ(rsx_wal_close(w), 0);
	/* rename the active file as rotation does, then "crash" before the new one exists */
	char from[512], to[512];
	snprintf(from, sizeof from, "%s/7_1_active.wal", dir);
	snprintf(to, sizeof to, "%s/7_1_300.wal", dir);
	T_EQ(rename(from, to), 0);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	T_EQ(rsx_wal_next_seq(w), 301);
	append_n(w, 5, 0);
	T_EQ(rsx_wal_close(w), 0);
	snprintf(from, sizeof from, "%s/7_301_active.wal", dir);
	T_EQ(access(from, F_OK), 0);
	T_EQ(read_all(dir, 1), 305);

	/* names that do not chain: refused */
	snprintf(to, sizeof to, "%s/7_302_active.wal", dir);
	T_EQ(rename(from, to), 0);
	T_EQ(rsx_wal_open(&w, &cfg), RSX_ESEQ);
	/* files of another stream in the directory: refused */
	T_EQ(rename(to, from), 0);
	snprintf(to, sizeof to, "%s/8_1_active.wal", dir);
	FILE *f = fopen(to, "w");
	fclose(f);
	T_EQ(rsx_wal_open(&w, &cfg), RSX_ESTREAM);
	unlink(to);
	/* an empty directory with everything deleted but the active file name keeps the seq */
	snprintf(to, sizeof to, "%s/7_1_300.wal", dir);
	unlink(to);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	T_EQ(rsx_wal_next_seq(w), 306);
	T_EQ(rsx_wal_close(w), 0);
	t_rmdir(dir);
}

static void test_retention(void)
{
	char *dir = t_mkdir();
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_MANUAL | RSX_WAL_NO_PREALLOC);
	cfg.retain_ns = 0;	/* delete as soon as consumers allow */
	T_EQ(rsx_wal_consumer_set(dir, "risk-0", 0), 0);
	T_EQ(rsx_wal_consumer_set(dir, "bad/name", 0), RSX_EINVALID);
	T_EQ(rsx_wal_consumer_set(dir, "", 0), RSX_EINVALID);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	for (int i = 0; i < 6; i++) {
		append_n(w, 1000, 0);
		T_EQ(rsx_wal_flush(w), 0);
	}
	struct rsx_wal_stats st;
	rsx_wal_stats(w, &st);
	T_CHECK(st.rotations >= 5);
	T_EQ(st.deleted_files, 0);		/* risk-0 at seq 0 needs everything */
	T_CHECK(st.retention_blocks > 0);
	T_EQ(st.retention_blocked_seq, 0);
	T_EQ(st.oldest_seq, 1);
	/* risk-0 stored up to 2500: files ending at or below 2500 may go */
	T_EQ(rsx_wal_consumer_set(dir, "risk-0", 2500), 0);
	uint64_t pos;
	T_EQ(rsx_wal_consumer_get(dir, "risk-0", &pos), 0);
	T_EQ(pos, 2500);
	append_n(w, 1000, 0);
	T_EQ(rsx_wal_flush(w), 0);
	rsx_wal_stats(w, &st);
	T_CHECK(st.deleted_files > 0);
	T_CHECK(st.oldest_seq > 1 && st.oldest_seq <= 2501);
	/* the reader refuses seqs that are gone, serves from oldest */
	struct rsx_wal_set *s;
	struct rsx_wal_reader *r;
	uint8_t rec[256];
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	T_EQ(rsx_wal_reader_seek(r, 1), RSX_EGONE);
	T_EQ(rsx_wal_read_seq(r, 1, rec, sizeof rec), RSX_EGONE);
	T_EQ(rsx_wal_read_seq(r, st.oldest_seq, rec, sizeof rec), 80);
	T_EQ(rsx_wal_read_seq(r, 2501, rec, sizeof rec), 80);
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);
	/* dropping the consumer frees everything due */
	T_EQ(rsx_wal_consumer_drop(dir, "risk-0"), 0);
	T_EQ(rsx_wal_consumer_get(dir, "risk-0", &pos), -ENOENT);
	append_n(w, 1000, 0);
	T_EQ(rsx_wal_flush(w), 0);
	rsx_wal_stats(w, &st);
	T_EQ(st.retention_blocked_seq, 0);
	T_EQ(rsx_wal_close(w), 0);
	/* only the newest rotated file (deleted at the next rotation) and the active remain */
	T_CHECK(t_count_files(dir, ".wal") <= 2);
	t_rmdir(dir);
}

int main(void)
{
	test_basic_manual();
	test_rotation_names();
	test_threaded_stall(0);
	test_threaded_stall(RSX_WAL_NONBLOCK);
	test_threaded_stall(RSX_WAL_NO_PREALLOC | RSX_WAL_FULLSYNC);
	test_batch_append_and_timer();
	test_recovery(0);
	test_recovery(RSX_WAL_NO_PREALLOC);
	test_crash_mid_rotation();
	test_retention();
	T_DONE();
}
