/*
 * t_me.h - helpers for the matching-engine tests: a small ME configuration,
 * request framing, reading the stream back from the WAL.
 */
#ifndef T_ME_H
#define T_ME_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsx/book.h"
#include "rsx/errors.h"
#include "rsx/me.h"
#include "rsx/records.h"
#include "rsx/wal.h"
#include "t_wal.h"

#define T_SYM 1

/* A fresh temporary directory (t_wal.h) for one ME. */
#define t_me_dir t_mkdir
#define t_me_rmdir t_rmdir

static inline void t_symbol(struct rsx_config *c)
{
	memset(c, 0, sizeof *c);
	c->symbol_id = T_SYM;
	c->config_version = 1;
	c->tick_size.raw = 1;
	c->lot_size.raw = 1;
	c->min_qty.raw = 1;
	c->max_qty.raw = 1000000000;
	c->price_decimals = 2;
	c->qty_decimals = 3;
	c->maker_fee_bps = 1;
	c->taker_fee_bps = 5;
	c->initial_margin_bps = 1000;
	c->maintenance_margin_bps = 500;
	c->funding_interval_s = 28800;
	c->max_funding_rate_bps = 75;
}

static inline void t_me_config(struct rsx_me_config *cfg, const char *dir)
{
	rsx_me_config_init(cfg);
	cfg->dir = dir;
	t_symbol(&cfg->symbol);
	cfg->flags = RSX_ME_NO_SNAPSHOTS | RSX_ME_STATS_IN_DIR;
	cfg->capacity = 4096;
	cfg->max_users = 1024;
	cfg->ref_price = 50000;
	cfg->wal_flags = RSX_WAL_NO_PREALLOC;
	cfg->wal_file_size = 1 << 20;
	cfg->wal_ring_size = 1 << 22;
	cfg->dedup_capacity = 4096;
	cfg->out_bytes = 4 << 20;
	cfg->request_slots = 1024;
	cfg->book_flags = RSX_BOOK_HUGETLB_NEVER;
}

static inline void t_oid(rsx_oid_t *o, uint64_t k)
{
	memset(o, 0, sizeof *o);
	for (int i = 0; i < 8; i++)
		o->b[15 - i] = (uint8_t)(k >> (8 * i));
}

/* A NEW_ORDER record (GTC unless tif given). Returns its size. */
static inline int t_order(uint8_t *out, uint32_t user, uint64_t id, int side, int64_t price, int64_t qty,
			  int tif, int flags)
{
	struct rsx_order o;
	memset(&o, 0, sizeof o);
	o.seq = 1;
	o.ts_ns = 1;
	o.symbol_id = T_SYM;
	o.user_id = user;
	o.side = (uint8_t)side;
	o.tif = (uint8_t)tif;
	o.flags = (uint8_t)flags;
	o.stp = RSX_STP_NONE;
	t_oid(&o.order_id, id);
	o.price.raw = price;
	o.qty.raw = qty;
	return rsx_record_frame(out, RSX_RECORD_MAX, RSX_REC_NEW_ORDER, &o, sizeof o);
}

static inline int t_cancel(uint8_t *out, uint32_t user, uint64_t id)
{
	struct rsx_cancel c;
	memset(&c, 0, sizeof c);
	c.seq = 1;
	c.symbol_id = T_SYM;
	c.user_id = user;
	t_oid(&c.order_id, id);
	return rsx_record_frame(out, RSX_RECORD_MAX, RSX_REC_CANCEL_ORDER, &c, sizeof c);
}

/* The stream's records from the WAL, back to back; *n records, sizes in sz. Returns malloc'ed bytes. */
static inline uint8_t *t_read_stream(const char *dir, uint64_t *n, size_t *len)
{
	char wal[512];
	snprintf(wal, sizeof wal, "%s/wal", dir);
	struct rsx_wal_set *s;
	struct rsx_wal_reader *r;
	static struct rsx_wal_entry e[65536];
	uint8_t *buf = malloc(64 << 20);
	*n = 0;
	*len = 0;
	if (rsx_wal_set_open(&s, wal, T_SYM) < 0 || rsx_wal_reader_open(&r, s) < 0)
		return buf;
	for (;;) {
		size_t nb;
		int64_t got = rsx_wal_reader_read(r, buf + *len, (64u << 20) - *len, e, 65536, &nb);
		if (got <= 0)
			break;
		*n += (uint64_t)got;
		*len += nb;
	}
	rsx_wal_reader_close(r);
	rsx_wal_set_close(s);
	return buf;
}

static inline uint16_t t_type(const uint8_t *rec)
{
	uint16_t t;
	memcpy(&t, rec + 2, 2);
	return t;
}

static inline size_t t_size(const uint8_t *rec)
{
	uint16_t l;
	memcpy(&l, rec + 4, 2);
	return RSX_HEADER_SIZE + l;
}

/* Record k (0-based) of a back-to-back buffer. */
static inline const uint8_t *t_nth(const uint8_t *buf, uint64_t k)
{
	const uint8_t *p = buf;
	while (k--)
		p += t_size(p);
	return p;
}

#include <dirent.h>

static inline int t_count_snaps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".rsxme") && !strstr(de->d_name, ".tmp");
	if (d)
		closedir(d);
	return n;
}

/* Path of the snapshot with the highest seq. */
static inline int t_newest_snap(const char *dir, char *out, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned long long best = 0, v;
	int found = 0;
	while (d && (de = readdir(d)) != NULL) {
		if (sscanf(de->d_name, "snap-%llu.rsxme", &v) == 1 && v >= best) {
			best = v;
			snprintf(out, cap, "%s/%s", dir, de->d_name);
			found = 1;
		}
	}
	if (d)
		closedir(d);
	return found;
}

#endif
