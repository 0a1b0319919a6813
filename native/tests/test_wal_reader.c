/*
 * test_wal_reader.c - reading by seq: exact start, rotation boundaries,
 * beyond the tip, the durable bound, breaks (where and why), gaps, a live
 * writer rotating under a reader, read_seq random access.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/mman.h>

#include "t_helpers.h"
#include "t_wal.h"

static uint8_t buf[1 << 20];
static struct rsx_wal_entry ent[16384];

static void write_stream(const char *dir, uint64_t n, uint32_t flags)
{
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_MANUAL | flags);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t seq = rsx_wal_next_seq(w);
		if (seq % 7 == 0) {
			struct rsx_fill p = t_fill(seq);
			T_EQ(rsx_wal_append(w, RSX_REC_FILL, &p, sizeof p, NULL), 144);
		} else {
			struct rsx_order_inserted p = t_payload(seq);
			T_EQ(rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, NULL), 80);
		}
		if (i % 333 == 0)
			T_EQ(rsx_wal_flush(w), 0);
	}
	T_EQ(rsx_wal_close(w), 0);
}

/* Read from `from` to the end; returns the count and checks contiguity from `from`. */
static uint64_t drain(struct rsx_wal_reader *r, uint64_t from, int64_t *last_rc)
{
	uint64_t n = 0, expect = from;
	for (;;) {
		size_t nb;
		int64_t got = rsx_wal_reader_read(r, buf, sizeof buf, ent, 16384, &nb);
		*last_rc = got;
		if (got <= 0)
			break;
		for (int64_t i = 0; i < got; i++) {
			T_EQ(ent[i].seq, expect);
			expect++;
		}
		n += (uint64_t)got;
	}
	return n;
}

static void test_seek_exact(void)
{
	char *dir = t_mkdir();
	write_stream(dir, 5000, 0);
	struct rsx_wal_set *s;
	struct rsx_wal_reader *r;
	int64_t rc;
	T_EQ(rsx_wal_set_open(&s, dir, 0), 0);	/* stream inferred */
	struct rsx_wal_set_info info;
	T_EQ(rsx_wal_set_info(s, &info), 0);
	T_EQ(info.stream_id, 7);
	T_EQ(info.oldest_seq, 1);
	T_EQ(info.durable_seq, 5000);
	T_CHECK(info.nfiles >= 5);
	T_EQ(info.has_tip, 1);
	T_EQ(info.writer_alive, 0);
	T_EQ(info.writer_state, RSX_WAL_CLOSED);
	T_EQ(rsx_wal_reader_open(&r, s), 0);

	/* from 0 = oldest, from 1, from the middle, from every rotation boundary */
	T_EQ(rsx_wal_reader_seek(r, 0), 0);
	T_EQ(drain(r, 1, &rc), 5000);
	T_EQ(rc, 0);
	uint64_t starts[] = { 1, 2, 2500, 4999, 5000 };
	for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
		T_EQ(rsx_wal_reader_seek(r, starts[i]), 0);
		T_EQ(rsx_wal_reader_next_seq(r), starts[i]);
		T_EQ(drain(r, starts[i], &rc), 5001 - starts[i]);
	}
	uint64_t first;
	const char *name;
	int boundaries = 0;
	for (uint32_t i = 1; (name = rsx_wal_set_file(s, i, &first)) != NULL; i++) {
		uint64_t around[] = { first - 1, first, first + 1 };
		for (int k = 0; k < 3; k++) {
			T_EQ(rsx_wal_reader_seek(r, around[k]), 0);
			T_EQ(drain(r, around[k], &rc), 5001 - around[k]);
		}
		boundaries++;
	}
	T_CHECK(boundaries >= 4);

	/* beyond the tip: nothing now, exactly the seq once written */
	T_EQ(rsx_wal_reader_seek(r, 5003), 0);
	T_EQ(drain(r, 5003, &rc), 0);
	T_EQ(rc, 0);
	write_stream(dir, 10, 0);	/* appends 5001..5010 */
	T_EQ(drain(r, 5003, &rc), 8);

	/* read_seq: random access across files, then sequential */
	uint8_t rec[256];
	uint64_t probe[] = { 4000, 1, 3333, 5010, 17, 18, 19, 2048 };
	for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
		int n = rsx_wal_read_seq(r, probe[i], rec, sizeof rec);
		T_EQ(n, probe[i] % 7 == 0 ? 144 : 80);
		uint64_t seq;
		memcpy(&seq, rec + 16, 8);
		T_EQ(seq, probe[i]);
	}
	T_EQ(rsx_wal_read_seq(r, 5011, rec, sizeof rec), -EAGAIN);
	T_EQ(rsx_wal_read_seq(r, 0, rec, sizeof rec), RSX_EINVALID);
	T_EQ(rsx_wal_read_seq(r, 14, rec, 100), RSX_ESHORT);	/* a FILL does not fit 100 bytes */
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);

	/* a directory that does not exist */
	T_EQ(rsx_wal_set_open(&s, "/nonexistent/rsx", 7), -ENOENT);
	t_rmdir(dir);
}

/* A tip that says less is durable than the file holds: the reader stops there. */
static void test_durable_bound(void)
{
	char *dir = t_mkdir();
	write_stream(dir, 100, RSX_WAL_NO_PREALLOC);
	char path[512];
	snprintf(path, sizeof path, "%s/7.tip", dir);
	int fd = open(path, O_RDWR);
	struct rsx_wal_tip *t = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	T_CHECK(t != MAP_FAILED);
	/* as if a writer had died with records 51..100 written but never synced */
	t->version += 2;
	t->state = RSX_WAL_RUNNING;
	uint64_t bytes = 0;
	for (uint64_t seq = 1; seq <= 50; seq++)
		bytes += seq % 7 == 0 ? 144 : 80;
	t->active_durable_bytes = bytes;
	t->durable_seq = 50;
	struct rsx_wal_set *s;
	struct rsx_wal_reader *r;
	int64_t rc;
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	T_EQ(drain(r, 1, &rc), 50);
	T_EQ(rc, 0);
	uint8_t rec[256];
	T_EQ(rsx_wal_read_seq(r, 51, rec, sizeof rec), -EAGAIN);
	/* the writer syncs more: the reader follows */
	t->version += 2;
	t->active_durable_bytes = bytes + 80;
	t->durable_seq = 51;
	T_EQ(rsx_wal_read_seq(r, 51, rec, sizeof rec), 80);
	munmap(t, 4096);
	close(fd);
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);
	t_rmdir(dir);
}

static void flip(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	T_EQ(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x01;
	T_EQ(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static void test_breaks(void)
{
	char *dir = t_mkdir();
	write_stream(dir, 3000, RSX_WAL_NO_PREALLOC);
	struct rsx_wal_set *s;
	struct rsx_wal_reader *r;
	int64_t rc;
	uint64_t first2;
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	const char *fname = rsx_wal_set_file(s, 1, &first2);
	T_CHECK(fname != NULL);
	char name[256], file2[512];
	snprintf(name, sizeof name, "%s", fname);
	snprintf(file2, sizeof file2, "%s/%s", dir, name);
	rsx_wal_set_close(s);

	/* a flipped bit in the 11th record of the second file: the stream ends before it */
	uint64_t off = 0;
	for (uint64_t seq = first2; seq < first2 + 10; seq++)
		off += seq % 7 == 0 ? 144 : 80;
	flip(file2, off + 30);
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	T_EQ(drain(r, 1, &rc), first2 + 10 - 1);
	T_EQ(rc, RSX_ECRC);
	struct rsx_wal_break b;
	T_EQ(rsx_wal_reader_break(r, &b), 0);
	T_CHECK(strcmp(b.file, name) == 0);
	T_EQ(b.offset, off);
	T_EQ(b.last_seq, first2 + 9);
	T_EQ(b.error, RSX_ECRC);
	T_EQ(b.tail, 0);
	/* the break is sticky: later reads do not skip over it */
	size_t nb;
	T_EQ(rsx_wal_reader_read(r, buf, sizeof buf, ent, 10, &nb), RSX_ECRC);
	/* reading past it by seq is refused too */
	uint8_t rec[256];
	T_EQ(rsx_wal_read_seq(r, first2 + 11, rec, sizeof rec), RSX_ECRC);
	/* before it, reads still work */
	T_EQ(rsx_wal_read_seq(r, first2 + 9, rec, sizeof rec), (first2 + 9) % 7 == 0 ? 144 : 80);
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);
	flip(file2, off + 30);

	/* a deleted middle file: a gap, reported at the next file */
	T_EQ(unlink(file2), 0);
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	T_EQ(drain(r, 1, &rc), first2 - 1);
	T_EQ(rc, RSX_ESEQ);
	T_EQ(rsx_wal_reader_break(r, &b), 0);
	T_EQ(b.last_seq, first2 - 1);
	T_CHECK(b.found_seq > first2);
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);
	t_rmdir(dir);

	/* junk after the last record: invisible while the tip bounds the file, a torn tail without it */
	dir = t_mkdir();
	write_stream(dir, 50, RSX_WAL_NO_PREALLOC);
	char path[512];
	snprintf(path, sizeof path, "%s/7_1_active.wal", dir);
	int fd = open(path, O_WRONLY | O_APPEND);
	uint8_t junk[40];
	memset(junk, 0x5A, sizeof junk);
	T_EQ(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	T_EQ(drain(r, 1, &rc), 50);
	T_EQ(rc, 0);
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);
	snprintf(path, sizeof path, "%s/7.tip", dir);
	T_EQ(unlink(path), 0);
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	T_EQ(drain(r, 1, &rc), 50);
	T_EQ(rc, RSX_EVERSION);
	T_EQ(rsx_wal_reader_break(r, &b), 0);
	T_EQ(b.tail, 1);
	T_EQ(b.last_seq, 50);
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);
	t_rmdir(dir);
}

/* A live writer rotating fast while a reader follows: every seq once, in order. */
struct live {
	const char *dir;
	uint64_t total;
};

static void *live_writer(void *arg)
{
	struct live *l = arg;
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, l->dir, 0);
	cfg.file_size = 16 * 1024;
	cfg.retain_ns = UINT64_MAX;
	if (rsx_wal_open(&w, &cfg) != 0)
		return NULL;
	for (uint64_t i = 1; i <= l->total; i++) {
		struct rsx_order_inserted p = t_payload(i);
		rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, NULL);
		if (i % 100 == 0)
			usleep(200);
	}
	rsx_wal_close(w);
	return NULL;
}

static void test_live_follow(void)
{
	char *dir = t_mkdir();
	struct live l = { dir, 20000 };
	pthread_t th;
	/* the writer must exist before the set is opened */
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	t_config(&cfg, dir, RSX_WAL_MANUAL);
	T_EQ(rsx_wal_open(&w, &cfg), 0);
	T_EQ(rsx_wal_close(w), 0);
	struct rsx_wal_set *s;
	struct rsx_wal_reader *r, *r2;
	T_EQ(rsx_wal_set_open(&s, dir, 7), 0);
	T_EQ(rsx_wal_reader_open(&r, s), 0);
	T_EQ(rsx_wal_reader_open(&r2, s), 0);
	T_EQ(rsx_wal_reader_seek(r, 1), 0);
	T_EQ(rsx_wal_reader_seek(r2, 1), 0);
	pthread_create(&th, NULL, live_writer, &l);
	uint64_t expect = 1, expect2 = 1, polls = 0;
	int bad = 0;
	while ((expect <= l.total || expect2 <= l.total) && polls < 2000000 && !bad) {
		size_t nb;
		int64_t got = rsx_wal_reader_read(r, buf, 4096, ent, 100, &nb);
		if (got < 0) {
			fprintf(stderr, "read error %" PRId64 " at %" PRIu64 "\n", got, expect);
			bad = 1;
		}
		for (int64_t i = 0; i < got; i++) {
			if (ent[i].seq != expect)
				bad = 1;
			expect++;
		}
		/* the second reader reads one record at a time by seq */
		uint8_t rec[256];
		int n = rsx_wal_read_seq(r2, expect2, rec, sizeof rec);
		if (n == 80)
			expect2++;
		else if (n != -EAGAIN)
			bad = 1;
		if (got == 0 && n == -EAGAIN)
			usleep(50);
		polls++;
	}
	pthread_join(th, NULL);
	T_EQ(bad, 0);
	T_EQ(expect, l.total + 1);
	T_EQ(expect2, l.total + 1);
	rsx_wal_reader_close(r);
	rsx_wal_reader_close(r2);
	rsx_wal_set_close(s);
	T_CHECK(t_count_files(dir, ".wal") > 20);
	t_rmdir(dir);
}

int main(void)
{
	test_seek_exact();
	test_durable_bound();
	test_breaks();
	test_live_follow();
	T_DONE();
}
