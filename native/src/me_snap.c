/*
 * me_snap.c - book snapshots of the matching engine (specs/me.md section 7):
 * the file format, and the snapshot thread, which keeps a replica book by
 * replaying the stream's durable records from the WAL and writes the replica
 * out at request boundaries. The loop never waits for a snapshot.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rsx/crc32c.h"
#include "rsx/errors.h"
#include "me_int.h"

#define SNAP_HEADER 256
#define SNAP_CRC_AT 124
#define REPLICA_BUF (4u << 20)
#define REPLICA_ENT 16384

struct snap_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t wal_seq;
	uint64_t book_len;
	uint64_t created_ns;
	uint32_t symbol_id;
	uint8_t _pad0[SNAP_CRC_AT - 44];
	uint32_t crc;
	struct rsx_config cfg;
};
_Static_assert(sizeof(struct snap_header) == SNAP_HEADER, "snapshot header is 256 bytes");
_Static_assert(offsetof(struct snap_header, crc) == SNAP_CRC_AT, "crc at 124");

static int snap_seq(const char *name, uint64_t *seq)
{
	char tail[16];
	unsigned long long v;
	if (sscanf(name, "snap-%llu%15s", &v, tail) != 2 || strcmp(tail, ".rsxme") != 0)
		return 0;
	*seq = v;
	return 1;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = 0, y = 0;
	snap_seq(a, &x);
	snap_seq(b, &y);
	return x < y ? 1 : x > y ? -1 : 0;
}

int me_snap_list(const char *snap_dir, char (**names)[64])
{
	DIR *d = opendir(snap_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	int n = 0, cap = 16;
	char (*v)[64] = malloc(sizeof *v * (size_t)cap);
	struct dirent *de;
	uint64_t seq;
	while (v && (de = readdir(d)) != NULL) {
		if (!snap_seq(de->d_name, &seq) || strlen(de->d_name) >= 64)
			continue;
		if (n == cap) {
			char (*w)[64] = realloc(v, sizeof *v * (size_t)(cap *= 2));
			if (!w) {
				free(v);
				v = NULL;
				break;
			}
			v = w;
		}
		snprintf(v[n++], 64, "%s", de->d_name);
	}
	closedir(d);
	if (!v)
		return -ENOMEM;
	qsort(v, (size_t)n, sizeof *v, cmp_desc);
	*names = v;
	return n;
}

int me_snap_load(const char *snap_dir, const char *name, uint32_t symbol_id, struct me_snapshot *out)
{
	char path[ME_PATH_MAX];
	uint8_t *data;
	memset(out, 0, sizeof *out);
	snprintf(path, sizeof path, "%s/%s", snap_dir, name);
	int64_t n = me_read_file(path, &data);
	if (n < 0)
		return (int)n;
	struct snap_header h;
	int rc = 0;
	if ((size_t)n < SNAP_HEADER) {
		rc = RSX_ESHORT;
		goto bad;
	}
	memcpy(&h, data, sizeof h);
	if (memcmp(h.magic, RSX_ME_SNAP_MAGIC, 8) != 0 || h.version != 1 || h.header_size != SNAP_HEADER) {
		rc = RSX_EVERSION;
		goto bad;
	}
	if (rsx_crc32c(0, data, SNAP_CRC_AT) != h.crc) {
		rc = RSX_ECRC;
		goto bad;
	}
	if (h.symbol_id != symbol_id || h.cfg.symbol_id != symbol_id) {
		rc = RSX_ESTREAM;
		goto bad;
	}
	if (h.book_len != (uint64_t)n - SNAP_HEADER) {
		rc = RSX_ELENGTH;
		goto bad;
	}
	/* the book snapshot's own CRC and structure are checked by rsx_book_snapshot_params/restore */
	out->wal_seq = h.wal_seq;
	out->data = data;
	out->len = (size_t)n;
	out->book = data + SNAP_HEADER;
	out->book_len = (size_t)h.book_len;
	out->cfg = h.cfg;
	snprintf(out->name, sizeof out->name, "%s", name);
	return 0;
bad:
	free(data);
	return rc;
}

int me_snap_write(const char *snap_dir, struct rsx_book *book, const struct rsx_config *cfg,
		  uint64_t wal_seq, uint8_t **buf, size_t *cap)
{
	size_t blen = rsx_book_snapshot_size(book);
	size_t need = SNAP_HEADER + blen;
	if (*cap < need) {
		uint8_t *p = realloc(*buf, need);
		if (!p)
			return -ENOMEM;
		*buf = p;
		*cap = need;
	}
	uint8_t *b = *buf;
	int64_t got = rsx_book_snapshot(book, wal_seq, b + SNAP_HEADER, blen);
	if (got < 0)
		return (int)got;
	struct snap_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, RSX_ME_SNAP_MAGIC, 8);
	h.version = 1;
	h.header_size = SNAP_HEADER;
	h.wal_seq = wal_seq;
	h.book_len = (uint64_t)got;
	h.created_ns = wal_real_ns();
	h.symbol_id = cfg->symbol_id;
	h.cfg = *cfg;
	h.cfg.seq = 0;
	h.cfg.ts_ns = 0;
	memcpy(b, &h, sizeof h);
	h.crc = rsx_crc32c(0, b, SNAP_CRC_AT);
	memcpy(b + SNAP_CRC_AT, &h.crc, 4);

	char tmp[ME_PATH_MAX + 8], path[ME_PATH_MAX];
	snprintf(path, sizeof path, "%s/snap-%" PRIu64 ".rsxme", snap_dir, wal_seq);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t total = SNAP_HEADER + (size_t)got, off = 0;
	int rc = 0;
	while (off < total) {
		ssize_t w = write(fd, b + off, total - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	return wal_fsync_dir(snap_dir);
}

uint64_t me_snap_prune(const char *snap_dir, uint32_t keep)
{
	char (*names)[64] = NULL;
	int n = me_snap_list(snap_dir, &names);
	uint64_t oldest = 0;
	for (int i = 0; i < n; i++) {
		uint64_t seq = 0;
		snap_seq(names[i], &seq);
		if ((uint32_t)i < keep) {
			oldest = seq;
			continue;
		}
		char path[ME_PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", snap_dir, names[i]);
		unlink(path);
	}
	free(names);
	return oldest;
}

/* ------------------------------------------------------------ the replica */

static void snapshot_now(struct rsx_me *me)
{
	struct me_replica *r = &me->rep;
	int rc = me_snap_write(me->snap_dir, r->book, &r->rp.cfg, r->rp.seq, &r->snap_buf, &r->snap_cap);
	r->last_snap_ns = wal_mono_ns();
	if (rc < 0) {
		me->c[MC_snapshot_errors]++;
		me->c[MC_snapshot_error] = (uint64_t)(int64_t)rc;
		return;
	}
	r->last_snap_seq = r->rp.seq;
	me->c[MC_snapshots]++;
	me->c[MC_snapshot_seq] = r->rp.seq;
	me->c[MC_snapshot_error] = 0;
	uint64_t oldest = me_snap_prune(me->snap_dir, me->cfg.snapshot_keep);
	/* retention keeps every record the oldest kept snapshot needs */
	rsx_wal_consumer_set(me->wal_dir, "me-snapshots", oldest);
}

static void *replica_main(void *arg)
{
	struct rsx_me *me = arg;
	struct me_replica *r = &me->rep;
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	r->last_snap_ns = wal_mono_ns();
	unsigned idle_ms = 20;
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		size_t nb = 0;
		int64_t n = r->diverged ? 0 : rsx_wal_reader_read(r->rd, r->buf, REPLICA_BUF, r->ent, REPLICA_ENT, &nb);
		if (n < 0) {
			/* a break in the WAL the loop itself wrote: stop snapshotting, say why */
			me->c[MC_snapshot_errors]++;
			me->c[MC_snapshot_error] = (uint64_t)n;
			r->diverged = 1;
			continue;
		}
		for (int64_t i = 0; i < n; i++) {
			if (me_replay_feed(&r->rp, r->buf + r->ent[i].offset, r->ent[i].size) < 0) {
				me->c[MC_replica_divergence]++;
				me->c[MC_snapshot_error] = (uint64_t)(int64_t)RSX_EDIVERGED;
				r->diverged = 1;
				break;
			}
		}
		me->c[MC_replica_seq] = r->rp.seq;
		if (!r->diverged && r->rp.seq > r->last_snap_seq && me_replay_boundary(&r->rp) &&
		    (r->rp.seq - r->last_snap_seq >= me->cfg.snapshot_records ||
		     wal_mono_ns() - r->last_snap_ns >= me->cfg.snapshot_ns))
			snapshot_now(me);
		if (n == 0) {
			/* nothing new: nap 20 ms, backing off to 200 ms while the stream stays idle */
			struct timespec ts = { 0, (long)idle_ms * 1000000 };
			nanosleep(&ts, NULL);
			if (idle_ms < 200)
				idle_ms *= 2;
		} else {
			idle_ms = 20;
		}
	}
	return NULL;
}

int me_replica_start(struct rsx_me *me)
{
	struct me_replica *r = &me->rep;
	struct rsx_book_params p = me->book_params;
	struct rsx_symbol_config c;
	int rc;

	p.flags = (p.flags & ~RSX_BOOK_HUGETLB_REQUIRE) | RSX_BOOK_HUGETLB_NEVER;	/* leave the pool to the live book */
	me_book_config(&c, &me->sym);
	if ((rc = rsx_book_create(&r->book, &p, &c)) < 0)
		return rc;
	/* the replica starts as a copy of the recovered book */
	size_t len = rsx_book_snapshot_size(me->book);
	uint8_t *tmp = malloc(len);
	uint64_t seq = rsx_wal_next_seq(me->wal) - 1;
	if (!tmp)
		return -ENOMEM;
	int64_t got = rsx_book_snapshot(me->book, seq, tmp, len);
	rc = got < 0 ? (int)got : rsx_book_restore(r->book, tmp, (size_t)got, &seq);
	free(tmp);
	if (rc < 0)
		return rc;
	if ((rc = me_replay_init(&r->rp, r->book)) < 0)
		return rc;
	r->rp.cfg = me->sym;
	r->rp.have_cfg = 1;
	r->rp.seq = seq;
	r->last_snap_seq = me->rec.snapshot_seq;
	r->buf = malloc(REPLICA_BUF);
	r->ent = malloc(sizeof *r->ent * REPLICA_ENT);
	if (!r->buf || !r->ent)
		return -ENOMEM;
	if ((rc = rsx_wal_set_open(&r->set, me->wal_dir, me->symbol_id)) < 0)
		return rc;
	if ((rc = rsx_wal_reader_open(&r->rd, r->set)) < 0)
		return rc;
	if ((rc = rsx_wal_reader_seek(r->rd, seq + 1)) < 0)
		return rc;
	me->c[MC_replica_seq] = seq;
	me->c[MC_snapshot_seq] = me->rec.snapshot_seq;
	if (pthread_create(&r->thread, NULL, replica_main, me) != 0)
		return -EAGAIN;
	r->started = 1;
	return 0;
}

void me_replica_stop(struct rsx_me *me)
{
	struct me_replica *r = &me->rep;
	if (r->started) {
		atomic_store(&r->stop, 1);
		pthread_join(r->thread, NULL);
		r->started = 0;
	}
	if (r->rd)
		rsx_wal_reader_close(r->rd);
	if (r->set)
		rsx_wal_set_close(r->set);
	me_replay_free(&r->rp);
	if (r->book)
		rsx_book_destroy(r->book);
	free(r->buf);
	free(r->ent);
	free(r->snap_buf);
	memset(r, 0, sizeof *r);
}
