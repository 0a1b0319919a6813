/*
 * bench_me.c - the matching engine's accept path from C: every request of a
 * file of back-to-back request records (bench/me_callgrind.py writes one from
 * the shared workload) through rsx_me_submit, into an ME in a temporary
 * directory. Prints one JSON object with the wall time per request (only
 * meaningful on a quiet machine). For instructions, with source lines:
 *
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=me_process \
 *       native/build/bench/bench_me REQUESTS.bin
 *   callgrind_annotate --auto=yes callgrind.out.*
 *
 * Usage: bench_me REQUESTS.bin [--async]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rsx/book.h"
#include "rsx/me.h"
#include "rsx/wal.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s REQUESTS.bin [--async]\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)len);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "cannot read %s\n", argv[1]);
		return 2;
	}
	fclose(f);

	char dir[] = "/tmp/rsx-bench-me-XXXXXX";
	if (!mkdtemp(dir))
		return 3;
	struct rsx_me_config cfg;
	rsx_me_config_init(&cfg);
	cfg.dir = dir;
	cfg.symbol.symbol_id = 1;
	cfg.symbol.config_version = 1;
	cfg.symbol.tick_size.raw = 1;
	cfg.symbol.lot_size.raw = 1;
	cfg.symbol.min_qty.raw = 1;
	cfg.symbol.max_qty.raw = INT64_MAX;
	cfg.symbol.initial_margin_bps = 1000;
	cfg.symbol.maintenance_margin_bps = 500;
	cfg.durability = argc > 2 && strcmp(argv[2], "--async") == 0 ? RSX_ME_ASYNC : RSX_ME_FSYNC;
	cfg.flags = RSX_ME_NO_SNAPSHOTS | RSX_ME_STATS_IN_DIR;
	cfg.ref_price = 100000;
	cfg.capacity = 1 << 18;
	cfg.dedup_capacity = 1 << 20;
	cfg.out_bytes = 1 << 28;
	cfg.request_slots = 1 << 20;
	cfg.book_flags = RSX_BOOK_HUGETLB_NEVER;
	struct rsx_me *me;
	struct rsx_me_recovery rec;
	int rc = rsx_me_open(&cfg, &me, &rec);
	if (rc < 0) {
		fprintf(stderr, "open: %d %s\n", rc, rec.message);
		return 1;
	}
	uint64_t t0 = mono_ns();
	int64_t n = rsx_me_submit(me, buf, (size_t)len);
	uint64_t t1 = mono_ns();
	rsx_me_drain(me, -1);
	rsx_me_close(me);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	if (n <= 0) {
		fprintf(stderr, "submit: %lld\n", (long long)n);
		return 1;
	}
	printf("{\"requests\": %lld, \"ns_per_request\": %.1f, \"durability\": \"%s\"}\n", (long long)n,
	       (double)(t1 - t0) / (double)n, cfg.durability == RSX_ME_ASYNC ? "async" : "fsync");
	free(buf);
	return 0;
}
