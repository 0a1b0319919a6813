/*
 * me.c - the matching engine's life cycle: configuration, open (memory,
 * status file, WAL, recovery, snapshot thread), close, info.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rsx/clock.h"
#include "rsx/errors.h"
#include "me_int.h"
#include "mirror.h"

#define MiB (1024ull * 1024ull)
#define DEFAULT_RETAIN_NS (4ull * 3600 * 1000000000ull)	/* the WAL's own default */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void *me_map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_HUGEPAGE);	/* before the first touch, or the pages are 4 KiB */
	if (madvise(p, len, MADV_POPULATE_WRITE) < 0) {
		long page = sysconf(_SC_PAGESIZE);
		for (size_t off = 0; off < len; off += (size_t)page)
			((volatile uint8_t *)p)[off] = 0;	/* kernels before 5.14 */
	}
	return p;
}

void rsx_me_config_init(struct rsx_me_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->durability = RSX_ME_FSYNC;
	cfg->wait_mode = RSX_ME_BLOCK;
	cfg->read_batch = 256;
	cfg->capacity = 1ull << 20;
	cfg->max_users = 1u << 16;
	cfg->batch_records = 1;
	cfg->spin_us = 50;
	cfg->dedup_window_ns = 3600ull * 1000000000ull;
	cfg->dedup_capacity = 1ull << 22;
	cfg->order_timeout_ns = 5ull * 1000000000ull;
	cfg->snapshot_records = 1000000;
	cfg->snapshot_ns = 60ull * 1000000000ull;
	cfg->snapshot_keep = 3;
	cfg->out_bytes = 64 * MiB;
	cfg->request_slots = 1ull << 18;
	cfg->housekeeping_ns = 50ull * 1000000ull;
}

static int pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int check_config(const struct rsx_me_config *c)
{
	struct rsx_symbol_config s;
	uint64_t retain = c->retain_ns ? c->retain_ns : DEFAULT_RETAIN_NS;
	if (!c->dir || !*c->dir || strlen(c->dir) >= ME_PATH_MAX - 128)
		return RSX_EINVALID;
	if (c->symbol.symbol_id == 0 || c->symbol.symbol_id > 0xffff)
		return RSX_EINVALID;	/* link stream ids carry the symbol in 16 bits */
	if (c->durability != RSX_ME_FSYNC && c->durability != RSX_ME_ASYNC)
		return RSX_EINVALID;
	if (c->wait_mode < RSX_ME_SPIN || c->wait_mode > RSX_ME_BLOCK)
		return RSX_EINVALID;
	if (c->read_batch == 0 || c->read_batch > 4096 || c->snapshot_keep == 0)
		return RSX_EINVALID;
	if (!pow2(c->dedup_capacity) || c->dedup_capacity < 64 || c->dedup_capacity > (1ull << 32))
		return RSX_EINVALID;
	if (!pow2(c->out_bytes) || c->out_bytes < 4 * MiB || !pow2(c->request_slots) || c->request_slots < 1024)
		return RSX_EINVALID;
	if (c->dedup_window_ns == 0 || retain < c->dedup_window_ns)
		return RSX_EINVALID;	/* the WAL must keep the whole window for the rebuild */
	if (c->ref_price <= 0 || c->capacity == 0 || c->max_users == 0 || c->housekeeping_ns == 0)
		return RSX_EINVALID;
	rsx_symbol_config_from_record(&s, &c->symbol);
	return rsx_symbol_config_check(&s) ? RSX_EINVALID : 0;
}


static int mkdir_p(const char *dir)
{
	char tmp[ME_PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void me_free(struct rsx_me *me)
{
	me_replica_stop(me);
	if (me->fetch_rd)
		rsx_wal_reader_close(me->fetch_rd);
	if (me->fetch_set)
		rsx_wal_set_close(me->fetch_set);
	if (me->book)
		rsx_book_destroy(me->book);
	me_dedup_free(&me->dd);
	mirror_unmap(me->out, me->out_size);
	if (me->rq)
		munmap(me->rq, (me->rq_mask + 1) * sizeof *me->rq);
	free(me->in);
	me_stats_close(me);
	free(me);
}

int rsx_me_open(const struct rsx_me_config *cfg, struct rsx_me **out, struct rsx_me_recovery *rec)
{
	int rc = check_config(cfg);
	if (rc < 0)
		return rc;
	struct rsx_me *me = calloc(1, sizeof *me);
	if (!me)
		return -ENOMEM;
	me->cfg = *cfg;
	me->symbol_id = cfg->symbol.symbol_id;
	me->fsync_mode = cfg->durability == RSX_ME_FSYNC;
	snprintf(me->dir, sizeof me->dir, "%s", cfg->dir);
	me->cfg.dir = me->dir;
	snprintf(me->wal_dir, sizeof me->wal_dir, "%s/wal", me->dir);
	snprintf(me->snap_dir, sizeof me->snap_dir, "%s/snapshots", me->dir);
	if ((rc = mkdir_p(me->dir)) < 0 || (rc = mkdir_p(me->snap_dir)) < 0)
		goto fail;
	rsx_clock_init();
	if ((rc = me_stats_open(me)) < 0)
		goto fail;
	if ((rc = me_dedup_init(&me->dd, cfg->dedup_capacity, cfg->dedup_window_ns)) < 0)
		goto fail;
	me->c[MC_dedup_capacity] = cfg->dedup_capacity;
	if ((rc = mirror_map("rsx-me-out", cfg->out_bytes, &me->out)) < 0)
		goto fail;
	me->out_size = cfg->out_bytes;
	me->out_mask = cfg->out_bytes - 1;
	me->rq = me_map_anon(cfg->request_slots * sizeof *me->rq);
	if (!me->rq) {
		rc = -ENOMEM;
		goto fail;
	}
	me->rq_mask = cfg->request_slots - 1;
	if (posix_memalign((void **)&me->in, 64, 64 + (size_t)cfg->read_batch * ME_STRIDE)) {
		rc = -ENOMEM;
		goto fail;
	}
	me->real_off = (int64_t)(wal_real_ns() - rsx_clock_now_ns());

	me_stats_set_state(me, RSX_ME_RECOVERING, 0);
	if ((rc = me_open_wal(me)) < 0 || (rc = me_recover(me)) < 0)
		goto fail;
	me_stats_set_config(me);
	me->released_seq = rsx_wal_durable_seq(me->wal);
	me_housekeeping(me, rsx_clock_now_ns());
	if (!(cfg->flags & RSX_ME_NO_SNAPSHOTS) && (rc = me_replica_start(me)) < 0)
		goto fail;
	me_stats_set_state(me, RSX_ME_RUNNING, 0);	/* recovered: requests are taken from now on */
	if (rec)
		*rec = me->rec;
	*out = me;
	return 0;
fail:
	if (rec)
		*rec = me->rec;
	if (me->shm)
		me_stats_set_state(me, RSX_ME_FAILED, rc);
	if (me->wal)
		rsx_wal_close(me->wal);
	me->wal = NULL;
	me_free(me);
	return rc;
}

int rsx_me_close(struct rsx_me *me)
{
	if (!me)
		return 0;
	me_replica_stop(me);
	int rc = me->wal ? rsx_wal_close(me->wal) : 0;
	me->wal = NULL;
	if (me->shm)
		me_stats_set_state(me, me->error ? RSX_ME_FAILED : RSX_ME_STOPPED, rc);
	me_free(me);
	return rc;
}

void rsx_me_stop(struct rsx_me *me)
{
	atomic_store(&me->stop, 1);
}

void rsx_me_info(const struct rsx_me *me, struct rsx_me_info *o)
{
	memset(o, 0, sizeof *o);
	o->next_seq = rsx_wal_next_seq(me->wal);
	o->durable_seq = rsx_wal_durable_seq(me->wal);
	o->released_seq = me->released_seq;
	o->in_flight = me->rq_head - me->rq_sent;
	o->config_version = me->sym.config_version;
	o->state = (uint32_t)me->state;
	o->status = me->sym.status;
	o->error = me->error;
	o->nlinks = me->nlinks;
}

const char *rsx_me_stats_path(const struct rsx_me *me)
{
	return me->stats_path;
}
