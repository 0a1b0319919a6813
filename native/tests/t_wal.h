/*
 * t_wal.h - helpers for the WAL tests: temp directories, payloads.
 */
#ifndef T_WAL_H
#define T_WAL_H

#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsx/errors.h"
#include "rsx/records.h"
#include "rsx/wal.h"

/* A fresh directory under /tmp; removed (with its files) by t_rmdir. */
static inline char *t_mkdir(void)
{
	static char buf[8][64];
	static int i;
	char *p = buf[i++ % 8];
	snprintf(p, 64, "/tmp/rsx-wal-test-XXXXXX");
	if (!mkdtemp(p)) {
		perror("mkdtemp");
		exit(1);
	}
	return p;
}

static inline void t_rmdir(const char *dir)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* An ORDER_INSERTED payload (64 bytes) whose qty encodes n. */
static inline struct rsx_order_inserted t_payload(uint64_t n)
{
	struct rsx_order_inserted p;
	memset(&p, 0, sizeof p);
	p.ts_ns = 1700000000000000000ull + n;
	p.symbol_id = 7;
	p.user_id = (uint32_t)(n % 1000);
	p.price.raw = 100;
	p.qty.raw = (int64_t)n;
	return p;
}

/* A FILL payload (128 bytes) whose qty encodes n. */
static inline struct rsx_fill t_fill(uint64_t n)
{
	struct rsx_fill p;
	memset(&p, 0, sizeof p);
	p.ts_ns = 1700000000000000000ull + n;
	p.symbol_id = 7;
	p.price.raw = 100;
	p.qty.raw = (int64_t)n;
	return p;
}

static inline int t_count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name), s = strlen(suffix);
		if (l >= s && strcmp(de->d_name + l - s, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static inline void t_config(struct rsx_wal_config *cfg, const char *dir, uint32_t flags)
{
	rsx_wal_config_default(cfg);
	cfg->dir = dir;
	cfg->stream_id = 7;
	cfg->flags = flags;
	cfg->file_size = 64 * 1024;
	cfg->ring_size = 64 * 1024;
}

#endif
