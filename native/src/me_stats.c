/*
 * me_stats.c - the matching engine's status file (specs/me.md section 8):
 * state, config, counters, per-stage latency histograms and the control
 * mailbox, in one shared mapping that other processes read without locks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsx/errors.h"
#include "me_int.h"

static const char *const counter_names[MC_COUNT] = {
#define RSX_ME_COUNTER(name, msg) #name,
#include "rsx/me_counters.def"
#undef RSX_ME_COUNTER
};

static const char *const hist_names[MH_COUNT] = {
	[MH_IN_TO_ACCEPTED] = "me_in_to_accepted",
	[MH_ACCEPTED_TO_MATCHED] = "me_accepted_to_matched",
	[MH_ACCEPT_PATH] = "me_accept_path",
	[MH_MATCHED_TO_DURABLE] = "me_matched_to_durable",
	[MH_TO_DURABLE] = "me_to_durable",
	[MH_DURABLE_TO_OUT] = "durable_to_me_out",
	[MH_IN_TO_SENT] = "me_in_to_sent",
};

#define NAME_LEN 32
#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

_Static_assert(offsetof(struct rsx_me_stats_header, config) == 128, "config at 128");
_Static_assert(sizeof(struct rsx_me_stats_header) == 256, "stats header is 256 bytes");
_Static_assert(sizeof(struct rsx_me_mailbox) == 256, "mailbox is 256 bytes");

/* FNV-1a of the directory's real path: one status file per ME directory. */
static uint64_t path_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static int stats_target(struct rsx_me *me, char *target, size_t cap)
{
	struct stat st;
	char real[PATH_MAX];
	snprintf(me->stats_path, sizeof me->stats_path, "%s/me.stats", me->dir);
	if ((me->cfg.flags & RSX_ME_STATS_IN_DIR) || stat("/dev/shm", &st) < 0 || !S_ISDIR(st.st_mode) ||
	    !realpath(me->dir, real)) {
		snprintf(target, cap, "%s", me->stats_path);
		return 0;
	}
	snprintf(target, cap, "/dev/shm/rsx-me-%u-%016llx.stats", me->symbol_id,
		 (unsigned long long)path_hash(real));
	return 1;
}

int me_stats_open(struct rsx_me *me)
{
	char target[ME_PATH_MAX];
	int linked = stats_target(me, target, sizeof target);
	int64_t hfoot = rsx_hist_footprint(RSX_HIST_DEFAULT_LOWEST, RSX_HIST_DEFAULT_HIGHEST,
					   RSX_HIST_DEFAULT_DIGITS);
	if (hfoot < 0)
		return (int)hfoot;
	size_t names_off = sizeof(struct rsx_me_stats_header);
	size_t counters_off = ALIGN64(names_off + (MC_COUNT + MH_COUNT) * NAME_LEN);
	size_t hist_off = ALIGN64(counters_off + MC_COUNT * sizeof(uint64_t));
	size_t stride = ALIGN64((size_t)hfoot);
	size_t control_off = hist_off + MH_COUNT * stride;
	size_t size = control_off + sizeof(struct rsx_me_mailbox);

	int fd = open(target, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	int e = p == MAP_FAILED ? -errno : 0;
	close(fd);
	if (e)
		return e;
	if (linked) {
		unlink(me->stats_path);
		if (symlink(target, me->stats_path) < 0) {
			e = -errno;
			munmap(p, size);
			unlink(target);
			return e;
		}
	}
	struct rsx_me_stats_header *h = p;
	memcpy(h->magic, RSX_ME_STATS_MAGIC, 8);
	h->size = (uint32_t)size;
	h->pid = (uint32_t)getpid();
	h->symbol_id = me->symbol_id;
	h->started_ns = wal_real_ns();
	h->updated_ns = h->started_ns;
	h->ncounters = MC_COUNT;
	h->nhist = MH_COUNT;
	h->counters_off = (uint32_t)counters_off;
	h->hist_off = (uint32_t)hist_off;
	h->hist_stride = (uint32_t)stride;
	h->control_off = (uint32_t)control_off;
	h->wait_mode = me->cfg.wait_mode;
	h->durability = me->cfg.durability;
	char *names = (char *)p + names_off;
	for (int i = 0; i < MC_COUNT; i++)
		strncpy(names + i * NAME_LEN, counter_names[i], NAME_LEN - 1);
	for (int i = 0; i < MH_COUNT; i++)
		strncpy(names + (MC_COUNT + i) * NAME_LEN, hist_names[i], NAME_LEN - 1);
	me->c = (uint64_t *)((uint8_t *)p + counters_off);
	for (int i = 0; i < MH_COUNT; i++) {
		me->h[i] = (struct rsx_hist *)((uint8_t *)p + hist_off + i * stride);
		rsx_hist_init(me->h[i], stride, RSX_HIST_DEFAULT_LOWEST, RSX_HIST_DEFAULT_HIGHEST,
			      RSX_HIST_DEFAULT_DIGITS);
	}
	me->mbox = (struct rsx_me_mailbox *)((uint8_t *)p + control_off);
	me->shm = h;
	me->shm_len = size;
	/* the version last: a reader that sees it sees a laid-out file */
	__atomic_store_n(&h->version, 1, __ATOMIC_RELEASE);
	me_stats_set_state(me, RSX_ME_STARTING, 0);
	return 0;
}

void me_stats_close(struct rsx_me *me)
{
	if (me->shm)
		munmap(me->shm, me->shm_len);
	me->shm = NULL;
	me->c = NULL;
}

void me_stats_set_state(struct rsx_me *me, int state, int error)
{
	me->state = state;
	if (error)
		me->error = error;
	if (!me->shm)
		return;
	__atomic_store_n(&me->shm->error, me->error, __ATOMIC_RELAXED);
	__atomic_store_n(&me->shm->state, (uint32_t)state, __ATOMIC_RELEASE);
	__atomic_store_n(&me->shm->updated_ns, wal_real_ns(), __ATOMIC_RELAXED);
}

void me_stats_set_config(struct rsx_me *me)
{
	struct rsx_me_stats_header *h = me->shm;
	uint64_t v = __atomic_load_n(&h->config_seq, __ATOMIC_RELAXED);
	__atomic_store_n(&h->config_seq, v + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(&h->config, &me->sym, sizeof h->config);
	__atomic_store_n(&h->config_seq, v + 2, __ATOMIC_RELEASE);
}

int rsx_me_stats_hist_read(const void *base, size_t len, uint32_t i, struct rsx_hist *dst)
{
	const struct rsx_me_stats_header *h = base;
	if (len < sizeof *h || memcmp(h->magic, RSX_ME_STATS_MAGIC, 8) != 0 || i >= h->nhist ||
	    (size_t)h->hist_off + ((size_t)i + 1) * h->hist_stride > len)
		return RSX_EINVALID;
	const struct rsx_hist *src = (const void *)((const uint8_t *)base + h->hist_off + (size_t)i * h->hist_stride);
	if (src->lowest != dst->lowest || src->highest != dst->highest || src->digits != dst->digits ||
	    src->counts_len != dst->counts_len)
		return RSX_EINVALID;
	int64_t foot = rsx_hist_footprint(dst->lowest, dst->highest, dst->digits);
	if (foot < 0 || (size_t)foot > h->hist_stride)
		return RSX_EINVALID;
	const int64_t *counts = (const int64_t *)((const uint8_t *)src + (size_t)foot -
						  (size_t)src->counts_len * sizeof(int64_t));
	int64_t total = 0;
	for (int32_t k = 0; k < src->counts_len; k++) {
		int64_t v = __atomic_load_n(&counts[k], __ATOMIC_RELAXED);
		dst->counts[k] = v;
		total += v;
	}
	dst->total = total;
	dst->clamped = __atomic_load_n(&src->clamped, __ATOMIC_RELAXED);
	dst->min = __atomic_load_n(&src->min, __ATOMIC_RELAXED);
	dst->max = __atomic_load_n(&src->max, __ATOMIC_RELAXED);
	if (total == 0) {
		dst->min = INT64_MAX;
		dst->max = 0;
	}
	return 0;
}
