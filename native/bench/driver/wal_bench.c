/*
 * wal_bench.c - benchmark drivers for `rsx bench wal` (rsx_appliance/cli/bench/wal.py).
 * The loops that are measured must run in C: a Python loop would measure
 * Python. Each driver fills a struct rsx_wal_bench; latencies go to a caller
 * array (numpy) so percentiles / histograms are computed outside.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "rsx/errors.h"
#include "rsx/records.h"
#include "rsx/wal_bench.h"
#include "wal_internal.h"

static struct rsx_order_inserted bench_payload(uint64_t i)
{
	struct rsx_order_inserted p;
	memset(&p, 0, sizeof p);
	p.ts_ns = 1700000000000000000ull + i;	/* non-zero: the writer keeps it */
	p.symbol_id = 1;
	p.user_id = (uint32_t)i;
	p.price.raw = 100000 + (int64_t)(i & 1023);
	p.qty.raw = 1 + (int64_t)(i & 7);
	return p;
}

static void fill_stats(struct rsx_wal *w, struct rsx_wal_bench *out)
{
	struct rsx_wal_stats st;
	rsx_wal_stats(w, &st);
	out->batches = st.batches;
	out->stalls = st.stalls;
	out->stall_ns = st.stall_ns;
	out->sync_ns_max = st.sync_ns_max;
	out->sync_ns_total = st.sync_ns_total;
	out->rotations = st.rotations;
}

int rsx_wal_bench_append(const char *dir, uint64_t n, uint64_t round, struct rsx_wal_bench *out)
{
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	memset(out, 0, sizeof *out);
	rsx_wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.stream_id = 1;
	cfg.flags = RSX_WAL_MANUAL | RSX_WAL_NOSYNC | RSX_WAL_NO_PREALLOC;
	cfg.ring_size = round * (RSX_HEADER_SIZE + sizeof(struct rsx_order_inserted)) + 4096;
	cfg.file_size = 16ull << 20;
	cfg.retain_ns = 0;
	int rc = rsx_wal_open(&w, &cfg);
	if (rc < 0)
		return rc;
	/* payloads prepared outside the timed loop: we time the WAL, not their making */
	struct rsx_order_inserted *p = malloc(round * sizeof *p);
	if (!p) {
		rsx_wal_close(w);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < round; i++)
		p[i] = bench_payload(i);
	uint64_t done = 0;
	while (done < n && rc >= 0) {
		uint64_t k = n - done < round ? n - done : round;
		uint64_t t0 = wal_mono_ns();
		for (uint64_t i = 0; i < k; i++) {
			rc = rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p[i], sizeof p[i], NULL);
			if (rc < 0)
				break;
		}
		out->elapsed_ns += wal_mono_ns() - t0;
		done += k;
		/* untimed: drain the ring (page cache only: NOSYNC) */
		if (rc >= 0)
			rc = rsx_wal_flush(w);
	}
	out->records = done;
	fill_stats(w, out);
	free(p);
	int crc = rsx_wal_close(w);
	return rc < 0 ? rc : crc;
}

int rsx_wal_bench_durable(const char *dir, uint64_t n, uint32_t flags, uint64_t file_size,
			  struct rsx_wal_bench *out)
{
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	memset(out, 0, sizeof *out);
	rsx_wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.stream_id = 1;
	cfg.flags = flags & ~(uint32_t)(RSX_WAL_MANUAL | RSX_WAL_NONBLOCK);
	if (file_size)
		cfg.file_size = file_size;
	cfg.retain_ns = 0;
	int rc = rsx_wal_open(&w, &cfg);
	if (rc < 0)
		return rc;
	enum { CHUNK = 1024 };
	struct rsx_order_inserted p[CHUNK];
	for (int i = 0; i < CHUNK; i++)
		p[i] = bench_payload((uint64_t)i);
	uint64_t first = rsx_wal_next_seq(w), t0 = wal_mono_ns(), done = 0;
	while (done < n) {
		uint64_t k = n - done < CHUNK ? n - done : CHUNK;
		int64_t got = rsx_wal_append_batch(w, RSX_REC_ORDER_INSERTED, p, sizeof p[0], k,
						   sizeof p[0], NULL);
		if (got < 0) {
			rc = (int)got;
			break;
		}
		done += (uint64_t)got;
	}
	if (rc >= 0)
		rc = rsx_wal_wait_durable(w, first + done - 1, -1);
	out->elapsed_ns = wal_mono_ns() - t0;
	out->records = done;
	fill_stats(w, out);
	int crc = rsx_wal_close(w);
	return rc < 0 ? rc : crc;
}

/* ---- latency: open loop at a fixed rate, append -> durable per record ---- */

struct lat_ctx {
	uint64_t first;		/* seq of sched[0] */
	uint64_t n;
	const uint64_t *sched;	/* intended append time per record (CLOCK_MONOTONIC) */
	const uint64_t *began;	/* when the append call began */
	uint64_t *lat;		/* durable - began */
	uint64_t *lat_sched;	/* durable - sched (includes the load generator's lateness) */
	uint64_t done;		/* seqs handled so far (flusher thread only) */
};

static void lat_on_durable(void *vctx, uint64_t seq, uint64_t now)
{
	struct lat_ctx *c = vctx;
	if (seq < c->first)
		return;
	uint64_t upto = seq - c->first + 1;
	if (upto > c->n)
		upto = c->n;
	for (uint64_t i = c->done; i < upto; i++) {
		c->lat[i] = now - c->began[i];
		if (c->lat_sched)
			c->lat_sched[i] = now - c->sched[i];
	}
	if (upto > c->done)
		c->done = upto;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull), .tv_nsec = (long)(t % 1000000000ull) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

int rsx_wal_bench_latency(const char *dir, uint64_t n, uint64_t rate, uint32_t flags,
			  uint32_t batch_records, uint32_t batch_us, uint64_t *lat_ns,
			  uint64_t *lat_sched_ns, struct rsx_wal_bench *out)
{
	struct rsx_wal_config cfg;
	struct rsx_wal *w;
	memset(out, 0, sizeof *out);
	if (rate == 0 || n == 0)
		return RSX_EINVALID;
	uint64_t *sched = calloc(2 * n, sizeof *sched);
	if (!sched)
		return -ENOMEM;
	uint64_t *began = sched + n;
	struct lat_ctx ctx = { .n = n, .sched = sched, .began = began, .lat = lat_ns,
			       .lat_sched = lat_sched_ns };
	/* wake on time: the default 50 us timer slack would skew the schedule */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	rsx_wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.stream_id = 1;
	cfg.flags = flags & ~(uint32_t)(RSX_WAL_MANUAL | RSX_WAL_NONBLOCK);
	cfg.batch_records = batch_records;
	cfg.batch_us = batch_us;
	cfg.on_durable = lat_on_durable;
	cfg.ctx = &ctx;
	cfg.retain_ns = 0;
	cfg.file_size = 4ull << 20;	/* holds 50 k records: no rotation while timing */
	cfg.prealloc_rate = 0;
	int rc = rsx_wal_open(&w, &cfg);
	if (rc < 0) {
		free(sched);
		return rc;
	}
	ctx.first = rsx_wal_next_seq(w);
	/* steady state: let the preparer finish the next file before timing */
	for (int i = 0; i < 6000 && !(cfg.flags & RSX_WAL_NO_PREALLOC); i++) {
		struct rsx_wal_stats st;
		rsx_wal_stats(w, &st);
		if (st.prealloc_ready)
			break;
		usleep(10000);
	}
	uint64_t period = 1000000000ull / rate;
	uint64_t t0 = wal_mono_ns() + 1000000;
	for (uint64_t i = 0; i < n && rc >= 0; i++) {
		uint64_t t = t0 + i * period;
		sched[i] = t;
		/* open loop: if we are late we append at once, and the lateness counts */
		if (wal_mono_ns() < t)
			sleep_until(t);
		struct rsx_order_inserted p = bench_payload(i);
		began[i] = wal_mono_ns();
		rc = rsx_wal_append(w, RSX_REC_ORDER_INSERTED, &p, sizeof p, NULL);
	}
	if (rc >= 0)
		rc = rsx_wal_wait_durable(w, ctx.first + n - 1, -1);
	out->elapsed_ns = wal_mono_ns() - t0;
	out->records = n;
	fill_stats(w, out);
	int crc = rsx_wal_close(w);
	free(sched);
	return rc < 0 ? rc : crc;
}

int rsx_wal_bench_bare_sync(const char *path, uint64_t n, uint32_t size, uint64_t rate,
			    int full, uint64_t *lat_ns)
{
	if (size == 0 || size > 65536 || n == 0)
		return RSX_EINVALID;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	uint8_t *buf = calloc(1, size);
	int rc = 0;
	uint64_t period = rate ? 1000000000ull / rate : 0;
	uint64_t t0 = wal_mono_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (period) {
			uint64_t t = t0 + i * period;
			if (wal_mono_ns() < t)
				sleep_until(t);
		}
		memset(buf, (int)(i & 0xff), size);
		uint64_t t = wal_mono_ns();
		/* the naive WAL: append one record, sync it */
		if (write(fd, buf, size) != (ssize_t)size || (full ? fsync(fd) : fdatasync(fd)) < 0) {
			rc = -errno;
			break;
		}
		lat_ns[i] = wal_mono_ns() - t;
	}
	free(buf);
	close(fd);
	unlink(path);
	return rc;
}
