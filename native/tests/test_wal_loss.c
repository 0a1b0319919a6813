/*
 * test_wal_loss.c - a lost tail of the active file (specs/wal.md 2.7): the
 * file loses its last records exactly at a record boundary (truncated, or
 * zeroed to its end). The writer must refuse to start below any seq that
 * was reported durable (the tip, a consumer's stored position), touching
 * nothing; with RSX_WAL_ACCEPT_LOSS it spends the lost seqs on SEQ_LOST
 * tombstones and carries on after them, never handing a seq out twice.
 */
#include <errno.h>
#include <fcntl.h>

#include "t_helpers.h"
#include "t_wal.h"

#define N 100
#define KEEP 60

static void write_n(const char *dir, uint64_t n)
{
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_MANUAL | RSX_WAL_NO_PREALLOC);
	cfg.file_size = 1 << 20;
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	for (uint64_t i = 1; i <= n; i++) {
		struct rsx_order_inserted p = t_payload(i);
		T_EQ(rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, NULL), 80);
	}
	T_EQ(rsx_wal_close(w), 0);
}

static void active_path(char *out, const char *dir)
{
	snprintf(out, 256, "%s/7_1_active.wal", dir);
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int open_with(const char *dir, uint32_t flags, struct rsx_wal_loss *loss, struct rsx_wal **w)
{
	struct rsx_wal_config cfg;
	t_config(&cfg, dir, RSX_WAL_MANUAL | RSX_WAL_NO_PREALLOC | flags);
	cfg.file_size = 1 << 20;
	cfg.loss = loss;
	return rsx_wal_open(w, &cfg);
}

static void test_truncated_at_a_record_boundary(void)
{
	char *dir = t_mkdir(), path[256];
	struct rsx_wal_loss loss;
	struct rsx_wal *w;
	write_n(dir, N);
	active_path(path, dir);
	T_EQ(truncate(path, KEEP * 80), 0);
	T_EQ(open_with(dir, 0, &loss, &w), RSX_ELOST);
	T_EQ(loss.last_seq, KEEP);
	T_EQ(loss.published_seq, N);
	T_EQ(loss.tip_seq, N);
	T_EQ(loss.consumer_seq, 0);
	T_EQ(file_size(path), KEEP * 80);	/* untouched */
	struct rsx_wal_tip tip;
	T_EQ(rsx_wal_tip_read(dir, 7, &tip), 0);
	T_EQ(tip.durable_seq, N);		/* the evidence stays */
	struct rsx_wal_loss pub;
	T_EQ(rsx_wal_published(dir, 7, &pub), 0);
	T_EQ(pub.published_seq, N);
	t_rmdir(dir);
}

static void test_zeroed_to_the_end(void)
{
	char *dir = t_mkdir(), path[256];
	struct rsx_wal_loss loss;
	struct rsx_wal *w;
	write_n(dir, N);
	active_path(path, dir);
	int fd = open(path, O_WRONLY);
	static const uint8_t zeros[(N - KEEP) * 80];
	T_EQ(pwrite(fd, zeros, sizeof zeros, KEEP * 80), (long)sizeof zeros);
	close(fd);
	T_EQ(open_with(dir, 0, &loss, &w), RSX_ELOST);
	T_EQ(loss.last_seq, KEEP);
	T_EQ(file_size(path), N * 80);
	t_rmdir(dir);
}

/* No tip (lost with the power, or deleted): a consumer's stored position is proof enough. */
static void test_consumer_position_is_proof(void)
{
	char *dir = t_mkdir(), path[256];
	struct rsx_wal_loss loss;
	struct rsx_wal *w;
	write_n(dir, N);
	active_path(path, dir);
	T_EQ(truncate(path, KEEP * 80), 0);
	snprintf(path, sizeof path, "%s/7.tip", dir);
	T_EQ(unlink(path), 0);
	T_EQ(rsx_wal_consumer_set(dir, "risk-0", 80), 0);
	T_EQ(rsx_wal_consumer_set(dir, "recorder", 20), 0);
	T_EQ(open_with(dir, 0, &loss, &w), RSX_ELOST);
	T_EQ(loss.tip_seq, 0);
	T_EQ(loss.consumer_seq, 80);
	T_EQ(loss.published_seq, 80);
	T_CHECK(strcmp(loss.consumer, "risk-0") == 0);
	/* a consumer at or below what the files hold is no loss */
	T_EQ(rsx_wal_consumer_set(dir, "risk-0", KEEP), 0);
	T_EQ(open_with(dir, 0, &loss, &w), 0);
	T_EQ(rsx_wal_next_seq(w), KEEP + 1);
	T_EQ(rsx_wal_close(w), 0);
	t_rmdir(dir);
}

static void test_accepted_loss_is_recorded_never_reused(void)
{
	char *dir = t_mkdir(), path[256];
	struct rsx_wal_loss loss;
	struct rsx_wal *w;
	struct rsx_wal_stats st;
	write_n(dir, N);
	active_path(path, dir);
	T_EQ(truncate(path, KEEP * 80), 0);
	T_EQ(open_with(dir, RSX_WAL_ACCEPT_LOSS, &loss, &w), 0);
	T_EQ(loss.last_seq, KEEP);
	rsx_wal_stats(w, &st);
	T_EQ(st.lost_first, KEEP + 1);
	T_EQ(st.lost_last, N);
	T_EQ(st.durable_seq, N);
	T_EQ(rsx_wal_next_seq(w), N + 1);
	struct rsx_order_inserted p = t_payload(N + 1);
	uint64_t seq;
	T_EQ(rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, &seq), 80);
	T_EQ(seq, N + 1);
	T_EQ(rsx_wal_close(w), 0);

	/* the stream reads 1..60 as written, 61..100 as tombstones, then 101 */
	struct rsx_wal_set *s;
	struct rsx_wal_reader *r;
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	uint8_t rec[RSX_RECORD_MAX];
	for (uint64_t q = 1; q <= N + 1; q++) {
		T_EQ(rsx_wal_read_seq(r, q, rec, sizeof rec), 80);
		uint16_t type;
		memcpy(&type, rec + 2, 2);
		if (q > KEEP && q <= N) {
			struct rsx_seq_lost t;
			memcpy(&t, rec + RSX_HEADER_SIZE, sizeof t);
			T_EQ(type, RSX_REC_SEQ_LOST);
			T_EQ(t.seq, q);
			T_EQ(t.first_lost, KEEP + 1);
			T_EQ(t.last_lost, N);
		} else {
			struct rsx_order_inserted o;
			memcpy(&o, rec + RSX_HEADER_SIZE, sizeof o);
			T_EQ(type, RSX_REC_ORDER_INSERTED);
			T_EQ(o.qty.raw, (int64_t)q);
		}
	}
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);

	/* nothing is lost any more: a plain open works and records no new loss */
	T_EQ(open_with(dir, 0, &loss, &w), 0);
	rsx_wal_stats(w, &st);
	T_EQ(st.lost_first, 0);
	T_EQ(rsx_wal_next_seq(w), N + 2);
	T_EQ(rsx_wal_close(w), 0);
	t_rmdir(dir);
}

/* The whole active file gone: the next file the writer would make starts below the published tip. */
static void test_missing_active_file(void)
{
	char *dir = t_mkdir(), path[256];
	struct rsx_wal_loss loss;
	struct rsx_wal *w;
	write_n(dir, N);
	active_path(path, dir);
	T_EQ(unlink(path), 0);
	T_EQ(open_with(dir, 0, &loss, &w), RSX_ELOST);
	T_EQ(loss.last_seq, 0);
	T_EQ(loss.published_seq, N);
	t_rmdir(dir);
}

int main(void)
{
	test_truncated_at_a_record_boundary();
	test_zeroed_to_the_end();
	test_consumer_position_is_proof();
	test_accepted_loss_is_recorded_never_reused();
	test_missing_active_file();
	T_DONE();
}
