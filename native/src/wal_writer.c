/*
 * wal_writer.c - the WAL writer: ring, append, flusher (group commit),
 * rotation, retention, open/recovery, close. specs/wal.md section 2.
 *
 * Threads and who owns what:
 *   appender (the caller)  head, next_seq; publishes head_pub, appended_seq
 *   flusher                the active file; publishes tail, written_seq,
 *                          durable_seq and the tip; runs rotation and GC
 *   preparer               zero-fills S.next.tmp when asked (prep_*)
 * Sleeping and waking use futexes; every wait is paired with a "waiting"
 * flag and a re-check, so a wake is never lost and the fast paths make no
 * syscall.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "rsx/crc32c.h"
#include "rsx/errors.h"
#include "rsx/records.h"
#include "mirror.h"
#include "wal_internal.h"

#define MiB (1024ull * 1024ull)
#define CACHELINE 64
#define TIP_FILE_SIZE 4096

struct rsx_wal {
	/* ---- configuration, read-only after open ---- */
	struct rsx_wal_config cfg;
	char dir[WAL_PATH_MAX];
	uint8_t *ring;
	uint64_t ring_size;
	uint64_t mask;
	int lock_fd;
	int tip_fd;
	struct rsx_wal_tip *tip;

	/* ---- appender-owned ---- */
	_Alignas(CACHELINE) uint64_t head;	/* bytes appended */
	uint64_t hdr_crc_known;			/* append_framed: bit t set when hdr_crc[t] holds ... */
	uint32_t hdr_crc[48];			/* ... the CRC32C of a type-t header's bytes 0..7 */
	uint64_t next_seq;
	uint64_t tail_seen;			/* cached copy of tail */
	uint64_t stalls;
	uint64_t stall_ns;

	/* ---- published by the appender ---- */
	_Alignas(CACHELINE) _Atomic uint64_t head_pub;
	_Atomic uint64_t appended_seq;

	/* ---- published by the flusher ---- */
	_Alignas(CACHELINE) _Atomic uint64_t tail;	/* bytes handed to write() */
	_Atomic uint64_t written_seq;
	_Alignas(CACHELINE) uint64_t durable_seq;	/* atomic via __atomic_* (exposed by pointer) */

	/* ---- futex words and flags ---- */
	_Alignas(CACHELINE) _Atomic uint32_t flusher_word;
	_Atomic uint32_t flusher_idle;	/* 0 busy, 1 asleep, 2 waiting for N records or T */
	_Alignas(CACHELINE) _Atomic uint32_t space_word;
	_Atomic uint32_t space_waiting;
	_Alignas(CACHELINE) _Atomic uint32_t durable_word;
	_Atomic uint32_t durable_waiters;
	_Atomic int fatal;		/* sticky: a sync failed */
	_Atomic int closing;		/* rsx_wal_close has begun: blocked calls fail with -ECANCELED */
	_Atomic uint32_t blocked;	/* appenders inside a stalled append (close waits for them) */
	_Atomic int stall_error;	/* transient: the current batch cannot be written */
	_Atomic int stopping;
	_Atomic uint64_t flush_req;	/* rsx_wal_flush: flush up to this head now, whatever N and T say */

	/* ---- flusher-owned ---- */
	_Alignas(CACHELINE) int fd;	/* the active file, -1 between rotation steps */
	uint64_t file_first;		/* first seq of the active file */
	uint64_t file_bytes;		/* data bytes written into it */
	uint64_t file_last;		/* last seq written into it (file_first - 1 if none) */
	int file_prezeroed;		/* zeros follow the data up to the file's size */
	int sync_failed;		/* a sync failed (fatal whatever its errno) */
	uint64_t tail_local;
	uint64_t written_local;
	uint64_t oldest_seq;
	pthread_t flusher;
	int flusher_started;

	/* ---- counters (written by one thread, read racily by stats) ---- */
	_Atomic uint64_t n_batches, n_records, n_bytes, sync_ns_last, sync_ns_max, sync_ns_total;
	_Atomic uint64_t n_rotations, n_deleted, n_retention_blocks, retention_blocked_seq;
	_Atomic uint64_t n_prealloc_misses, n_write_retries;
	_Atomic uint64_t a_stalls, a_stall_ns;
	_Atomic int32_t state;
	_Atomic int32_t last_error;

	/* ---- preparer ---- */
	pthread_t preparer;
	int preparer_started;
	pthread_mutex_t prep_lock;
	pthread_cond_t prep_cond;
	int prep_ready;			/* S.next.tmp is zero-filled and synced */
	int prep_want;
	int prep_stop;

	/* ---- recovery report ---- */
	struct rsx_wal_loss loss;	/* published vs held at open (specs/wal.md 2.7) */
	uint64_t lost_first, lost_last;	/* recorded as SEQ_LOST at this open */
	uint64_t recovered_offset, recovered_bytes;
	int32_t recovered_error;
	char recovered_file[256];
};

/* ------------------------------------------------------------ futex */

static void futex_wait(_Atomic uint32_t *addr, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_ns != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
		ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
		tsp = &ts;
	}
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* ------------------------------------------------------------ small helpers */

static uint16_t get_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int is_transient(int rc)
{
	return rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG;
}

static void active_name(char *out, size_t cap, uint32_t s, uint64_t first)
{
	snprintf(out, cap, "%" PRIu32 "_%" PRIu64 "_active.wal", s, first);
}

static void rotated_name(char *out, size_t cap, uint32_t s, uint64_t first, uint64_t last)
{
	snprintf(out, cap, "%" PRIu32 "_%" PRIu64 "_%" PRIu64 ".wal", s, first, last);
}

static void next_name(char *out, size_t cap, uint32_t s)
{
	snprintf(out, cap, "%" PRIu32 ".next.tmp", s);
}

static int wal_file_path(const struct rsx_wal *w, char *out, const char *name)
{
	return wal_path(out, w->dir, name);
}

static int do_sync(const struct rsx_wal *w, int fd)
{
	if (w->cfg.flags & RSX_WAL_NOSYNC)
		return 0;
	int rc = (w->cfg.flags & RSX_WAL_FULLSYNC) ? fsync(fd) : fdatasync(fd);
	return rc < 0 ? -errno : 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off, size_t *done)
{
	*done = 0;
	while (*done < n) {
		ssize_t r = pwrite(fd, p + *done, n - *done, (off_t)(off + *done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		*done += (size_t)r;
	}
	return 0;
}

/* ------------------------------------------------------------ tip */

/*
 * Rewrite the tip under its seqlock. `durable` is the durable seq to publish:
 * the flusher publishes a new one here before the in-process watermark moves
 * (publish_durable), so nobody can see a durable seq the tip does not cover.
 */
static void tip_publish_seq(struct rsx_wal *w, uint64_t durable)
{
	struct rsx_wal_tip *t = w->tip;
	if (!t)
		return;
	uint64_t v = __atomic_load_n(&t->version, __ATOMIC_RELAXED);
	__atomic_store_n(&t->version, v + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	t->state = atomic_load(&w->state);
	t->error = atomic_load(&w->last_error);
	t->durable_seq = durable;
	t->active_first_seq = w->file_first;
	t->active_durable_bytes = w->file_bytes;
	t->appended_seq = atomic_load_explicit(&w->appended_seq, memory_order_relaxed);
	t->oldest_seq = w->oldest_seq;
	t->updated_ns = wal_real_ns();
	t->batches = atomic_load(&w->n_batches);
	t->records = atomic_load(&w->n_records);
	t->bytes = atomic_load(&w->n_bytes);
	t->stalls = atomic_load(&w->a_stalls);
	t->stall_ns = atomic_load(&w->a_stall_ns);
	t->sync_ns_last = atomic_load(&w->sync_ns_last);
	t->sync_ns_max = atomic_load(&w->sync_ns_max);
	t->retention_blocked_seq = atomic_load(&w->retention_blocked_seq);
	__atomic_store_n(&t->version, v + 2, __ATOMIC_RELEASE);
}

static void tip_publish(struct rsx_wal *w)
{
	tip_publish_seq(w, __atomic_load_n(&w->durable_seq, __ATOMIC_RELAXED));
}

static int tip_open(struct rsx_wal *w)
{
	char name[64], path[WAL_PATH_MAX];
	wal_tip_name(name, sizeof name, w->cfg.stream_id);
	int rc = wal_file_path(w, path, name);
	if (rc < 0)
		return rc;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, TIP_FILE_SIZE) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	void *p = mmap(NULL, TIP_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		close(fd);
		return rc;
	}
	w->tip_fd = fd;
	w->tip = p;
	struct rsx_wal_tip *t = p;
	uint64_t v = t->magic == RSX_WAL_TIP_MAGIC ? t->version : 0;
	__atomic_store_n(&t->version, v | 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memset((uint8_t *)t + offsetof(struct rsx_wal_tip, stream_id), 0,
	       sizeof *t - offsetof(struct rsx_wal_tip, stream_id));
	t->magic = RSX_WAL_TIP_MAGIC;
	t->stream_id = w->cfg.stream_id;
	t->writer_pid = (uint32_t)getpid();
	__atomic_store_n(&t->version, (v | 1) + 1, __ATOMIC_RELEASE);
	tip_publish(w);
	return 0;
}

/* ------------------------------------------------------------ preparer */

/* Create dir/name zero-filled to size and synced. Checks *stop between chunks. */
static int make_zeroed(const struct rsx_wal *w, const char *name, uint64_t size, const int *stop)
{
	char path[WAL_PATH_MAX];
	int rc = wal_file_path(w, path, name);
	if (rc < 0)
		return rc;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	const uint64_t chunk = 1 * MiB;
	uint64_t t0 = wal_mono_ns();
	for (uint64_t off = 0; off < size && rc == 0; off += chunk) {
		/* pace: the zeros must not crowd out the flusher's syncs */
		if (stop && w->cfg.prealloc_rate && off > 0) {
			uint64_t due = t0 + off * 1000000000ull / w->cfg.prealloc_rate;
			uint64_t now = wal_mono_ns();
			if (due > now) {
				struct timespec ts = { .tv_sec = (time_t)((due - now) / 1000000000ull),
						       .tv_nsec = (long)((due - now) % 1000000000ull) };
				nanosleep(&ts, NULL);
			}
		}
		if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED)) {
			rc = -ECANCELED;
			break;
		}
		uint64_t end = off + chunk < size ? off + chunk : size;
		rc = wal_zero_fill(fd, off, end);
		/* keep at most one chunk in flight so the flusher's syncs do not queue behind us */
		if (rc == 0 && !(w->cfg.flags & RSX_WAL_NOSYNC))
			sync_file_range(fd, (off64_t)off, (off64_t)(end - off),
					SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
					SYNC_FILE_RANGE_WAIT_AFTER);
	}
	if (rc == 0 && !(w->cfg.flags & RSX_WAL_NOSYNC) && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0)
		unlink(path);
	return rc;
}

static void *preparer_main(void *arg)
{
	struct rsx_wal *w = arg;
	char name[64];
	next_name(name, sizeof name, w->cfg.stream_id);
	pthread_mutex_lock(&w->prep_lock);
	for (;;) {
		while (!w->prep_stop && (w->prep_ready || !w->prep_want))
			pthread_cond_wait(&w->prep_cond, &w->prep_lock);
		if (w->prep_stop)
			break;
		pthread_mutex_unlock(&w->prep_lock);
		int rc = make_zeroed(w, name, w->cfg.file_size, &w->prep_stop);
		pthread_mutex_lock(&w->prep_lock);
		if (rc == 0) {
			w->prep_ready = 1;
			w->prep_want = 0;
		} else if (!w->prep_stop) {
			/* disk full or similar: try again later, never compete hard for space */
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&w->prep_cond, &w->prep_lock, &until);
		}
	}
	pthread_mutex_unlock(&w->prep_lock);
	return NULL;
}

/* Take the prepared file if it is ready: returns 1 and renames it to `to`. */
static int take_prepared(struct rsx_wal *w, const char *to_path)
{
	if (w->cfg.flags & RSX_WAL_NO_PREALLOC)
		return 0;
	char name[64], path[WAL_PATH_MAX];
	next_name(name, sizeof name, w->cfg.stream_id);
	if (wal_file_path(w, path, name) < 0)
		return 0;
	int taken = 0;
	pthread_mutex_lock(&w->prep_lock);
	if (w->prep_ready && rename(path, to_path) == 0)
		taken = 1;
	if (w->prep_ready || taken) {
		w->prep_ready = 0;
		w->prep_want = 1;
		pthread_cond_signal(&w->prep_cond);
	}
	pthread_mutex_unlock(&w->prep_lock);
	return taken;
}

/* ------------------------------------------------------------ active file */

/* Open S_{file_first}_active.wal (take the prepared file or create one). */
static int open_active(struct rsx_wal *w)
{
	char name[96], path[WAL_PATH_MAX];
	active_name(name, sizeof name, w->cfg.stream_id, w->file_first);
	int rc = wal_file_path(w, path, name);
	if (rc < 0)
		return rc;
	int prezeroed = take_prepared(w, path);
	if (!prezeroed && !(w->cfg.flags & RSX_WAL_NO_PREALLOC))
		atomic_fetch_add(&w->n_prealloc_misses, 1);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (!prezeroed && ftruncate(fd, 0) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if ((rc = wal_fsync_dir(w->dir)) < 0) {
		close(fd);
		return rc;
	}
	w->fd = fd;
	w->file_bytes = 0;
	w->file_last = w->file_first - 1;
	w->file_prezeroed = prezeroed;
	return 0;
}

/* ------------------------------------------------------------ retention */

/*
 * The lowest position of every registered consumer, whatever its name; one
 * whose position cannot be read holds everything (0). Retention never
 * deletes what a consumer might need because its file looked odd.
 */
static uint64_t min_consumer_seq(const struct rsx_wal *w)
{
	struct wal_consumer_bounds b;
	return wal_consumer_bounds(w->dir, &b) < 0 ? 0 : b.min;
}

static void gc(struct rsx_wal *w)
{
	struct wal_name *v = NULL;
	uint32_t stream = w->cfg.stream_id;
	int n = wal_list(w->dir, &stream, &v);
	if (n < 0)
		return;
	uint64_t now = wal_real_ns(), min = UINT64_MAX, blocked = 0;
	int consumers_read = 0, deleted = 0, i;
	for (i = 0; i < n && v[i].kind == WAL_ROTATED; i++) {
		char path[WAL_PATH_MAX];
		struct stat st;
		if (w->cfg.retain_ns == UINT64_MAX || wal_file_path(w, path, v[i].name) < 0 ||
		    stat(path, &st) < 0)
			break;
		uint64_t mtime = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
		if (now < mtime || now - mtime < w->cfg.retain_ns)
			break;		/* younger files follow: keep them all */
		if (!consumers_read) {
			min = min_consumer_seq(w);
			consumers_read = 1;
		}
		if (min < v[i].last) {
			/* due for deletion, but a registered consumer still needs it */
			blocked = min;
			atomic_fetch_add(&w->n_retention_blocks, 1);
			break;
		}
		if (unlink(path) < 0)
			break;
		deleted++;
		atomic_fetch_add(&w->n_deleted, 1);
	}
	atomic_store(&w->retention_blocked_seq, blocked);
	w->oldest_seq = i < n && v[i].kind != WAL_OTHER ? v[i].first : w->file_first;
	free(v);
	if (deleted)
		wal_fsync_dir(w->dir);
}

/* ------------------------------------------------------------ rotation */

/*
 * Close the active file under its ranged name. The file is synced; on
 * return fd is -1 and file_first is the next file's first seq (open_active
 * makes that file, possibly later if the disk is full).
 */
static int rotate_close(struct rsx_wal *w)
{
	char from[WAL_PATH_MAX], to[WAL_PATH_MAX], name[96];
	int rc;
	if (w->file_prezeroed) {
		if (ftruncate(w->fd, (off_t)w->file_bytes) < 0)
			return -errno;
		w->file_prezeroed = 0;
	}
	/* fsync, not fdatasync: the size just changed */
	if (!(w->cfg.flags & RSX_WAL_NOSYNC) && fsync(w->fd) < 0) {
		w->sync_failed = -errno;	/* as fatal as a failed batch sync */
		return w->sync_failed;
	}
	active_name(name, sizeof name, w->cfg.stream_id, w->file_first);
	if ((rc = wal_file_path(w, from, name)) < 0)
		return rc;
	rotated_name(name, sizeof name, w->cfg.stream_id, w->file_first, w->file_last);
	if ((rc = wal_file_path(w, to, name)) < 0)
		return rc;
	if (rename(from, to) < 0)
		return -errno;
	close(w->fd);
	w->fd = -1;
	w->file_first = w->file_last + 1;
	w->file_bytes = 0;
	atomic_fetch_add(&w->n_rotations, 1);
	return 0;
}

static int rotate(struct rsx_wal *w)
{
	int rc = rotate_close(w);
	if (rc < 0)
		return rc;
	rc = open_active(w);	/* fsyncs the directory: both renames are durable */
	if (rc < 0)
		return rc;
	gc(w);
	tip_publish(w);
	return 0;
}

/* ------------------------------------------------------------ flushing */

static void set_state(struct rsx_wal *w, int state, int error)
{
	atomic_store(&w->state, state);
	atomic_store(&w->last_error, error);
}

static void publish_durable(struct rsx_wal *w, uint64_t seq)
{
	__atomic_store_n(&w->durable_seq, seq, __ATOMIC_RELEASE);
	atomic_fetch_add(&w->durable_word, 1);
	if (atomic_load(&w->durable_waiters))
		futex_wake(&w->durable_word);
	if (w->cfg.on_durable)
		w->cfg.on_durable(w->cfg.ctx, seq, wal_mono_ns());
}

static void release_space(struct rsx_wal *w, uint64_t tail, uint64_t seq)
{
	atomic_store_explicit(&w->written_seq, seq, memory_order_release);
	atomic_store(&w->tail, tail);	/* seq_cst: pairs with space_waiting */
	atomic_fetch_add(&w->space_word, 1);
	if (atomic_load(&w->space_waiting)) {
		atomic_store(&w->space_waiting, 0);
		futex_wake(&w->space_word);
	}
}

/*
 * Write and sync the ring bytes [tail_local, head): one write + one sync per
 * file touched. Returns 0 or an error: transient (the unwritten part stays in
 * the ring; the file is cut back to its last complete batch) or fatal.
 */
static int flush_to(struct rsx_wal *w, uint64_t head)
{
	while (w->tail_local < head) {
		int rc;
		if (w->fd < 0 && (rc = open_active(w)) < 0)
			return rc;
		const uint8_t *base = w->ring + (w->tail_local & w->mask);
		uint64_t avail = head - w->tail_local;
		uint64_t part = 0, last = w->file_last, count = 0;
		while (part < avail) {
			uint64_t size = RSX_HEADER_SIZE + get_u16(base + part + 4);
			if (w->file_bytes + part + size > w->cfg.file_size && w->file_bytes + part > 0)
				break;
			last = get_u64(base + part + RSX_HEADER_SIZE);
			part += size;
			count++;
		}
		if (part == 0) {
			/* the active file is full: rotate first (it is synced) */
			if ((rc = rotate(w)) < 0)
				return rc;
			continue;
		}
		size_t done;
		rc = pwrite_all(w->fd, base, part, w->file_bytes, &done);
		if (rc < 0) {
			/* nothing of this batch counts: cut the file back to its last batch */
			if (done > 0) {
				if (w->file_prezeroed)
					wal_zero_fill(w->fd, w->file_bytes, w->file_bytes + done);
				else if (ftruncate(w->fd, (off_t)w->file_bytes) < 0)
					return -errno;
			}
			return rc;
		}
		w->file_bytes += part;
		w->file_last = last;
		w->tail_local += part;
		w->written_local = last;
		release_space(w, w->tail_local, last);

		uint64_t t0 = wal_mono_ns();
		rc = do_sync(w, w->fd);
		uint64_t dt = wal_mono_ns() - t0;
		if (rc < 0) {
			/* after a failed fsync the dirty pages may be gone: never trust them again */
			w->sync_failed = rc;
			return rc;
		}
		atomic_store_explicit(&w->sync_ns_last, dt, memory_order_relaxed);
		if (dt > atomic_load_explicit(&w->sync_ns_max, memory_order_relaxed))
			atomic_store_explicit(&w->sync_ns_max, dt, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->sync_ns_total, dt, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->n_batches, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->n_records, count, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->n_bytes, part, memory_order_relaxed);
		if (atomic_load(&w->stall_error)) {
			atomic_store(&w->stall_error, 0);
			set_state(w, RSX_WAL_RUNNING, 0);
		}
		/*
		 * The tip first, then the watermark (a release store): whoever sees
		 * the new durable seq (a hot loop, a woken waiter) finds the tip
		 * covering it, so the seq is on record before it can leave.
		 */
		tip_publish_seq(w, last);
		publish_durable(w, last);
		/* rotate eagerly once no record of the largest type fits any more */
		if (w->cfg.file_size - w->file_bytes < RSX_RECORD_MAX && (rc = rotate(w)) < 0)
			return rc;
	}
	return 0;
}

/* One flush attempt, with the error bookkeeping shared by both modes. */
static int flush_once(struct rsx_wal *w, uint64_t head)
{
	int rc = flush_to(w, head);
	if (rc < 0) {
		/* the tip says what happened before anyone woken here can look at it */
		if (w->sync_failed || atomic_load(&w->fatal) || !is_transient(rc)) {
			set_state(w, RSX_WAL_FAILED, rc);
			tip_publish(w);
			if (!atomic_load(&w->fatal))
				atomic_store(&w->fatal, rc);
			/* wake everyone: they must see the error */
			atomic_fetch_add(&w->space_word, 1);
			futex_wake(&w->space_word);
			atomic_fetch_add(&w->durable_word, 1);
			futex_wake(&w->durable_word);
		} else {
			atomic_store(&w->stall_error, rc);
			set_state(w, RSX_WAL_STALLED, rc);
			tip_publish(w);
			atomic_fetch_add(&w->n_write_retries, 1);
			atomic_fetch_add(&w->space_word, 1);
			futex_wake(&w->space_word);
		}
	}
	return rc;
}

static void *flusher_main(void *arg)
{
	struct rsx_wal *w = arg;
	uint64_t first_seen = 0, backoff_ns = 1000000;
	const uint32_t n_min = w->cfg.batch_records ? w->cfg.batch_records : 1;
	const uint64_t t_ns = (uint64_t)w->cfg.batch_us * 1000ull;

	for (;;) {
		uint64_t head = atomic_load(&w->head_pub);
		int stopping = atomic_load(&w->stopping);
		if (head == w->tail_local) {
			if (stopping)
				break;
			uint32_t word = atomic_load(&w->flusher_word);
			atomic_store(&w->flusher_idle, 1);
			if (atomic_load(&w->head_pub) == w->tail_local && !atomic_load(&w->stopping))
				futex_wait(&w->flusher_word, word, UINT64_MAX);
			atomic_store(&w->flusher_idle, 0);
			continue;
		}
		if (!stopping && (n_min > 1 || t_ns > 0)) {
			uint64_t pending = atomic_load(&w->appended_seq) - w->written_local;
			uint64_t now = wal_mono_ns();
			if (first_seen == 0)
				first_seen = now;
			if (pending < n_min && now - first_seen < t_ns &&
			    atomic_load(&w->flush_req) < head) {
				uint32_t word = atomic_load(&w->flusher_word);
				atomic_store(&w->flusher_idle, 2);
				if (atomic_load(&w->appended_seq) - w->written_local < n_min &&
				    !atomic_load(&w->stopping) && atomic_load(&w->flush_req) < head)
					futex_wait(&w->flusher_word, word, t_ns - (now - first_seen));
				atomic_store(&w->flusher_idle, 0);
				continue;
			}
		}
		first_seen = 0;
		int rc = flush_once(w, head);
		if (rc < 0) {
			if (atomic_load(&w->fatal) || atomic_load(&w->stopping))
				break;
			/* disk full: retry the same batch, 1 ms doubling to 100 ms */
			uint32_t word = atomic_load(&w->flusher_word);
			futex_wait(&w->flusher_word, word, backoff_ns);
			backoff_ns = backoff_ns * 2 > 100000000ull ? 100000000ull : backoff_ns * 2;
		} else {
			backoff_ns = 1000000;
		}
	}
	return NULL;
}

static void wake_flusher(struct rsx_wal *w, uint64_t seq)
{
	uint32_t idle = atomic_load(&w->flusher_idle);
	if (idle == 0)
		return;
	if (idle == 2 && w->cfg.batch_records > 1 &&
	    seq - atomic_load_explicit(&w->written_seq, memory_order_relaxed) < w->cfg.batch_records)
		return;
	atomic_fetch_add(&w->flusher_word, 1);
	futex_wake(&w->flusher_word);
}

/* ------------------------------------------------------------ append */

static int sticky(const struct rsx_wal *w)
{
	return atomic_load_explicit(&w->fatal, memory_order_relaxed);
}

static void publish_head(struct rsx_wal *w)
{
	atomic_store_explicit(&w->appended_seq, w->next_seq - 1, memory_order_relaxed);
	atomic_store(&w->head_pub, w->head);	/* seq_cst: pairs with flusher_idle */
	if (!(w->cfg.flags & RSX_WAL_MANUAL))
		wake_flusher(w, w->next_seq - 1);
}

/* Make room for need bytes; blocks, flushes (MANUAL) or says why it cannot. */
static int wait_space(struct rsx_wal *w, uint64_t need)
{
	uint64_t t0 = 0;
	int rc = 0;
	w->stalls++;
	atomic_store_explicit(&w->a_stalls, w->stalls, memory_order_relaxed);
	for (int spins = 0;; spins++) {
		w->tail_seen = atomic_load(&w->tail);
		if (w->ring_size - (w->head - w->tail_seen) >= need)
			break;
		if ((rc = sticky(w)) != 0)
			break;
		if (atomic_load(&w->closing)) {
			rc = -ECANCELED;	/* the writer is being closed under us: nothing appended */
			break;
		}
		if (w->cfg.flags & RSX_WAL_MANUAL) {
			publish_head(w);
			if ((rc = flush_once(w, w->head)) < 0)
				break;
			continue;
		}
		if (w->cfg.flags & RSX_WAL_NONBLOCK) {
			rc = atomic_load(&w->stall_error);
			rc = rc ? rc : -EAGAIN;
			break;
		}
		if (t0 == 0)
			t0 = wal_mono_ns();
		if (spins < 200) {
			cpu_relax();
			continue;
		}
		uint32_t word = atomic_load(&w->space_word);
		atomic_store(&w->space_waiting, 1);
		if (w->ring_size - (w->head - atomic_load(&w->tail)) < need && !sticky(w) &&
		    !atomic_load(&w->closing))
			futex_wait(&w->space_word, word, UINT64_MAX);
	}
	if (t0) {
		w->stall_ns += wal_mono_ns() - t0;
		atomic_store_explicit(&w->a_stall_ns, w->stall_ns, memory_order_relaxed);
	}
	return rc;
}

static int check_type(uint16_t type, size_t len)
{
	size_t want = rsx_record_payload_len(type);
	if (want == 0 || (type >= 48 && type <= 63))
		return RSX_ETYPE;
	if (len != want)
		return RSX_ELENGTH;
	return 0;
}

/* Frame one record at the ring's head; the caller has checked space and type. */
static inline void put_record(struct rsx_wal *w, uint16_t type, const void *payload, size_t len)
{
	uint8_t *rec = w->ring + (w->head & w->mask);
	uint8_t *pl = rec + RSX_HEADER_SIZE;
	uint64_t seq = w->next_seq;
	uint32_t stream = w->cfg.stream_id;
	uint16_t l16 = (uint16_t)len;
	memset(rec, 0, RSX_HEADER_SIZE);
	rec[0] = RSX_RECORD_VERSION;
	memcpy(rec + 2, &type, 2);
	memcpy(rec + 4, &l16, 2);
	memcpy(pl, payload, len);
	memcpy(pl, &seq, 8);
	memcpy(pl + 16, &stream, 4);
	if (get_u64(pl + 8) == 0) {
		uint64_t ts = wal_real_ns();
		memcpy(pl + 8, &ts, 8);
	}
	rsx_record_seal(rec, RSX_HEADER_SIZE + len);
	w->head += RSX_HEADER_SIZE + len;
	w->next_seq = seq + 1;
}

int rsx_wal_append(struct rsx_wal *w, uint16_t type, const void *payload, size_t len,
		   uint64_t *seq)
{
	int rc = check_type(type, len);
	if (rc < 0)
		return rc;
	if ((rc = sticky(w)) != 0)
		return rc;
	if (atomic_load_explicit(&w->closing, memory_order_relaxed))
		return -ECANCELED;
	uint64_t need = RSX_HEADER_SIZE + len;
	int slow = w->ring_size - (w->head - w->tail_seen) < need;
	if (slow) {
		atomic_fetch_add(&w->blocked, 1);	/* close() waits until we have left */
		if ((rc = wait_space(w, need)) < 0) {
			atomic_fetch_sub(&w->blocked, 1);
			return rc;
		}
	}
	if (seq)
		*seq = w->next_seq;
	put_record(w, type, payload, len);
	publish_head(w);
	if (slow)
		atomic_fetch_sub(&w->blocked, 1);
	return (int)need;
}

int64_t rsx_wal_append_batch(struct rsx_wal *w, uint16_t type, const void *payloads,
			     size_t len, size_t count, size_t stride, uint64_t *first_seq)
{
	int rc = check_type(type, len);
	if (rc < 0)
		return rc;
	if (stride < len)
		return RSX_EINVALID;
	if ((rc = sticky(w)) != 0)
		return rc;
	if (atomic_load_explicit(&w->closing, memory_order_relaxed))
		return -ECANCELED;
	uint64_t need = RSX_HEADER_SIZE + len;
	const uint8_t *p = payloads;
	size_t i;
	int slow = 0;
	if (first_seq)
		*first_seq = w->next_seq;
	for (i = 0; i < count; i++) {
		if (w->ring_size - (w->head - w->tail_seen) < need) {
			if (!slow++)
				atomic_fetch_add(&w->blocked, 1);	/* close() waits until we have left */
			publish_head(w);
			if ((rc = wait_space(w, need)) < 0)
				break;
		}
		put_record(w, type, p + i * stride, len);
	}
	if (i > 0)
		publish_head(w);
	if (slow)
		atomic_fetch_sub(&w->blocked, 1);
	return i > 0 ? (int64_t)i : (count == 0 ? 0 : rc);
}

/*
 * Append records the caller framed (the matching engine's outbound buffer):
 * every record gets its seq, stream id and ts_ns (if 0) and is sealed in
 * place, so the caller's bytes are exactly the WAL's; then all of them are
 * copied into the ring and published at once (one flusher wake-up).
 */
int64_t rsx_wal_append_framed(struct rsx_wal *w, void *buf, size_t len, uint64_t ts_ns,
			      uint64_t *first_seq, unsigned flags)
{
	uint8_t *p = buf;
	size_t off = 0, n = 0;
	int rc;
	int need_ts = 0;

	if (len == 0)
		return 0;
	if (len > w->ring_size / 2)
		return RSX_EINVALID;
	while (off < len) {
		if (len - off < RSX_HEADER_SIZE)
			return RSX_ESHORT;
		uint16_t type = get_u16(p + off + 2);
		size_t plen = rsx_record_payload_len(type);
		if (plen == 0 || type >= 48)	/* unknown, or a transport-control type (check_type) */
			return RSX_ETYPE;
		if (get_u16(p + off + 4) != plen)
			return RSX_ELENGTH;
		if (len - off < RSX_HEADER_SIZE + plen)
			return RSX_ESHORT;
		need_ts |= get_u64(p + off + RSX_HEADER_SIZE + 8) == 0;
		off += RSX_HEADER_SIZE + plen;
		n++;
	}
	if ((rc = sticky(w)) != 0)
		return rc;
	if (w->ring_size - (w->head - w->tail_seen) < len) {
		publish_head(w);	/* what is deferred must reach the flusher before waiting for room */
		if ((rc = wait_space(w, len)) < 0)
			return rc;
	}
	uint64_t seq = w->next_seq, ts = need_ts ? (ts_ns ? ts_ns : wal_real_ns()) : 0;
	uint32_t stream = w->cfg.stream_id;
	if (first_seq)
		*first_seq = seq;
	for (off = 0; off < len; seq++) {
		uint8_t *rec = p + off, *pl = rec + RSX_HEADER_SIZE;
		size_t plen = get_u16(rec + 4);
		uint64_t h0;
		rec[0] = RSX_RECORD_VERSION;
		rec[1] = 0;
		memset(rec + 6, 0, RSX_HEADER_SIZE - 6);
		memcpy(pl, &seq, 8);
		memcpy(pl + 16, &stream, 4);
		if (get_u64(pl + 8) == 0)
			memcpy(pl + 8, &ts, 8);
		/* the header was checked above: seal without checking it again (specs/records.md 1);
		   bytes 0..7 depend only on the type, so their CRC is computed once per type */
		uint16_t type = get_u16(rec + 2);
		if (!(w->hdr_crc_known & (1ull << type))) {
			memcpy(&h0, rec, 8);
			w->hdr_crc[type] = rsx_crc32c(0, &h0, 8);
			w->hdr_crc_known |= 1ull << type;
		}
		uint32_t crc = rsx_crc32c(w->hdr_crc[type], pl, plen);
		memcpy(rec + 8, &crc, 4);
		off += RSX_HEADER_SIZE + plen;
	}
	memcpy(w->ring + (w->head & w->mask), p, len);
	w->head += len;
	w->next_seq = seq;
	if (!(flags & RSX_WAL_APPEND_DEFER))
		publish_head(w);
	return (int64_t)n;
}

void rsx_wal_publish(struct rsx_wal *w)
{
	if (atomic_load_explicit(&w->head_pub, memory_order_relaxed) != w->head)
		publish_head(w);
}

/* ------------------------------------------------------------ watermarks */

uint64_t rsx_wal_next_seq(const struct rsx_wal *w)
{
	return w->next_seq;
}

uint64_t rsx_wal_written_seq(const struct rsx_wal *w)
{
	return atomic_load_explicit(&w->written_seq, memory_order_acquire);
}

uint64_t rsx_wal_durable_seq(const struct rsx_wal *w)
{
	return __atomic_load_n(&w->durable_seq, __ATOMIC_ACQUIRE);
}

const uint64_t *rsx_wal_durable_ptr(const struct rsx_wal *w)
{
	return &w->durable_seq;
}

int rsx_wal_flush(struct rsx_wal *w)
{
	int rc = sticky(w);
	if (rc)
		return rc;
	rsx_wal_publish(w);
	if (w->cfg.flags & RSX_WAL_MANUAL) {
		publish_head(w);
		return flush_once(w, w->head);
	}
	/* override the batch policy (N, T) for what is appended now */
	atomic_store(&w->flush_req, w->head);
	atomic_fetch_add(&w->flusher_word, 1);
	futex_wake(&w->flusher_word);
	return rsx_wal_wait_durable(w, w->next_seq - 1, -1);
}

int rsx_wal_wait_durable(struct rsx_wal *w, uint64_t seq, int64_t timeout_ns)
{
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : wal_mono_ns() + (uint64_t)timeout_ns;
	int rc = 0;
	if (w->cfg.flags & RSX_WAL_MANUAL) {
		if (rsx_wal_durable_seq(w) >= seq)
			return 0;
		publish_head(w);
		return flush_once(w, w->head);
	}
	rsx_wal_publish(w);
	atomic_fetch_add(&w->durable_waiters, 1);
	for (;;) {
		if (rsx_wal_durable_seq(w) >= seq)
			break;
		if ((rc = sticky(w)) != 0)
			break;
		if (atomic_load(&w->closing)) {
			rc = -ECANCELED;
			break;
		}
		uint64_t now = wal_mono_ns();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		uint32_t word = atomic_load(&w->durable_word);
		if (rsx_wal_durable_seq(w) >= seq || atomic_load(&w->closing))
			continue;
		futex_wait(&w->durable_word, word, deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
	}
	atomic_fetch_sub(&w->durable_waiters, 1);
	return rc;
}

int rsx_wal_stats(const struct rsx_wal *w, struct rsx_wal_stats *o)
{
	memset(o, 0, sizeof *o);
	o->next_seq = w->next_seq;
	o->appended_seq = atomic_load(&((struct rsx_wal *)w)->appended_seq);
	o->written_seq = rsx_wal_written_seq(w);
	o->durable_seq = rsx_wal_durable_seq(w);
	o->oldest_seq = w->oldest_seq;
	o->active_first_seq = w->file_first;
	o->active_bytes = w->file_bytes;
	o->batches = atomic_load(&w->n_batches);
	o->records = atomic_load(&w->n_records);
	o->bytes = atomic_load(&w->n_bytes);
	o->stalls = atomic_load(&w->a_stalls);
	o->stall_ns = atomic_load(&w->a_stall_ns);
	o->sync_ns_last = atomic_load(&w->sync_ns_last);
	o->sync_ns_max = atomic_load(&w->sync_ns_max);
	o->sync_ns_total = atomic_load(&w->sync_ns_total);
	o->rotations = atomic_load(&w->n_rotations);
	o->deleted_files = atomic_load(&w->n_deleted);
	o->retention_blocks = atomic_load(&w->n_retention_blocks);
	o->retention_blocked_seq = atomic_load(&w->retention_blocked_seq);
	o->prealloc_misses = atomic_load(&w->n_prealloc_misses);
	o->write_retries = atomic_load(&w->n_write_retries);
	pthread_mutex_lock((pthread_mutex_t *)&w->prep_lock);
	o->prealloc_ready = w->prep_ready;
	pthread_mutex_unlock((pthread_mutex_t *)&w->prep_lock);
	o->state = atomic_load(&w->state);
	o->error = atomic_load(&w->last_error);
	o->recovered_offset = w->recovered_offset;
	o->recovered_bytes = w->recovered_bytes;
	o->recovered_error = w->recovered_error;
	memcpy(o->recovered_file, w->recovered_file, sizeof o->recovered_file);
	o->lost_first = w->lost_first;
	o->lost_last = w->lost_last;
	return 0;
}

/* ------------------------------------------------------------ open */

void rsx_wal_config_default(struct rsx_wal_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->file_size = 64 * MiB;
	cfg->ring_size = 32 * MiB;
	cfg->batch_records = 1;
	cfg->batch_us = 0;
	cfg->retain_ns = 4ull * 3600 * 1000000000ull;
	cfg->first_seq = 1;
	cfg->prealloc_rate = 32 * MiB;
}

/*
 * RSX_WAL_ACCEPT_LOSS: spend the lost seqs first..last on SEQ_LOST tombstones
 * and make them durable, so no seq is ever handed out twice (specs/wal.md
 * 2.7). Runs in open, before the threads start and before the tip is reset.
 */
static int record_loss(struct rsx_wal *w, uint64_t first, uint64_t last)
{
	struct rsx_seq_lost t;
	memset(&t, 0, sizeof t);
	t.ts_ns = wal_real_ns();
	t.first_lost = first;
	t.last_lost = last;
	const uint64_t need = RSX_HEADER_SIZE + sizeof t;
	for (uint64_t s = first; s <= last; s++) {
		if (w->ring_size - (w->head - w->tail_local) < need) {
			publish_head(w);
			int rc = flush_once(w, w->head);
			if (rc < 0)
				return rc;
		}
		put_record(w, RSX_REC_SEQ_LOST, &t, sizeof t);
	}
	publish_head(w);
	int rc = flush_once(w, w->head);
	if (rc < 0)
		return rc;
	w->tail_seen = atomic_load(&w->tail);
	w->lost_first = first;
	w->lost_last = last;
	return 0;
}

/* A memfd mapped twice back to back: every record and batch is contiguous. */
static int ring_map(struct rsx_wal *w)
{
	uint64_t size = 64 * 1024;
	while (size < w->cfg.ring_size)
		size <<= 1;
	int rc = mirror_map("rsx-wal-ring", size, &w->ring);
	if (rc < 0)
		return rc;
	w->ring_size = size;
	w->mask = size - 1;
	return 0;
}

static int take_lock(struct rsx_wal *w)
{
	char name[64], path[WAL_PATH_MAX];
	snprintf(name, sizeof name, "%" PRIu32 ".lock", w->cfg.stream_id);
	int rc = wal_file_path(w, path, name);
	if (rc < 0)
		return rc;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		rc = (errno == EAGAIN || errno == EACCES) ? -EBUSY : -errno;
		close(fd);
		return rc;
	}
	w->lock_fd = fd;
	return 0;
}

/*
 * Recover the active file (specs/wal.md 2.7 step 3): find the end of its
 * valid records; cut a torn tail that was never reported durable; refuse to
 * touch anything if durable data is corrupt. Sets file_* and returns the last
 * valid seq in *last.
 */
static int recover_active(struct rsx_wal *w, const char *name, uint64_t first,
			  const struct rsx_wal_tip *old, int have_old, uint64_t *last)
{
	const uint64_t published = w->loss.published_seq;
	char path[WAL_PATH_MAX];
	int rc = wal_file_path(w, path, name);
	if (rc < 0)
		return rc;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	uint64_t size = (uint64_t)st.st_size;
	struct rsx_wal_scan sc = { .next_seq = first, .flags = RSX_WAL_SCAN_ZEROS,
				   .stream_id = w->cfg.stream_id };
	struct rsx_wal_entry *ent = malloc(4096 * sizeof *ent);
	if (!ent) {
		rc = -ENOMEM;
		goto fail;
	}
	uint64_t end = 0, last_seq = first - 1;
	const uint8_t *map = NULL;
	if (size > 0) {
		map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			rc = -errno;
			free(ent);
			goto fail;
		}
		do {
			rsx_wal_scan(map + end, size - end, ent, 4096, &sc);
			if (sc.count)
				last_seq = ent[sc.count - 1].seq;
			end += sc.end;
		} while (sc.stop == RSX_WAL_STOP_FULL);
	}
	free(ent);
	int torn = size > 0 && (sc.stop == RSX_WAL_STOP_PARTIAL || sc.stop == RSX_WAL_STOP_BAD);
	if (torn) {
		uint64_t durable = have_old && old->active_first_seq == first ? old->active_durable_bytes : 0;
		/* a valid record with a wrong seq or stream is never a torn write */
		int foreign = sc.stop == RSX_WAL_STOP_BAD && sc.valid;
		if (end < durable || foreign) {
			rc = sc.stop == RSX_WAL_STOP_PARTIAL ? RSX_ESHORT : sc.error;
			munmap((void *)map, size);
			goto fail;
		}
	}
	w->loss.last_seq = last_seq;
	if (last_seq < published && !(w->cfg.flags & RSX_WAL_ACCEPT_LOSS)) {
		/*
		 * Whole records are missing below a seq this stream reported durable
		 * (truncated or zeroed at a record boundary): handing those seqs out
		 * again would give consumers two different records under one seq.
		 * Refuse, touching nothing; the operator restores or accepts (2.7).
		 */
		if (map)
			munmap((void *)map, size);
		rc = RSX_ELOST;
		goto fail;
	}
	if (torn) {
		/* what a crashed batch left, not the zeros of a preallocated file after it */
		uint64_t dirty = size;
		while (size >= w->cfg.file_size && dirty > end && map[dirty - 1] == 0)
			dirty--;
		w->recovered_offset = end;
		w->recovered_bytes = dirty - end;
		w->recovered_error = sc.stop == RSX_WAL_STOP_PARTIAL ? RSX_ESHORT : sc.error;
		snprintf(w->recovered_file, sizeof w->recovered_file, "%s", name);
	}
	if (map)
		munmap((void *)map, size);
	w->file_prezeroed = 0;
	if (torn) {
		if (ftruncate(fd, (off_t)end) < 0) {
			rc = -errno;
			goto fail;
		}
		if (!(w->cfg.flags & RSX_WAL_NO_PREALLOC) && end < w->cfg.file_size &&
		    wal_zero_fill(fd, end, w->cfg.file_size) == 0)
			w->file_prezeroed = 1;
	} else if (sc.stop == RSX_WAL_STOP_ZEROS && size > end) {
		w->file_prezeroed = 1;
	}
	/* whatever a killed writer left in the page cache is durable from now on */
	if (fsync(fd) < 0) {
		rc = -errno;
		goto fail;
	}
	w->fd = fd;
	w->file_first = first;
	w->file_bytes = end;
	w->file_last = last_seq;
	*last = last_seq;
	return 0;
fail:
	close(fd);
	return rc;
}

static int open_files(struct rsx_wal *w)
{
	struct rsx_wal_tip old;
	int have_old = rsx_wal_tip_read(w->dir, w->cfg.stream_id, &old) == 0;
	/* what was ever reported durable: the files must reach it (2.7) */
	int rc0 = rsx_wal_published(w->dir, w->cfg.stream_id, &w->loss);
	if (rc0 < 0)
		return rc0;
	struct wal_name *v = NULL;
	uint32_t any = 0;
	int n = wal_list(w->dir, &any, &v);
	if (n < 0)
		return n;
	free(v);
	if (any != 0 && any != w->cfg.stream_id)
		return RSX_ESTREAM;
	uint32_t stream = w->cfg.stream_id;
	n = wal_list(w->dir, &stream, &v);
	if (n < 0)
		return n;
	int rc = 0, active = -1, nrot = 0;
	uint64_t expect = 0;
	for (int i = 0; i < n; i++) {
		if (v[i].kind == WAL_ROTATED) {
			if (active >= 0 || (expect && v[i].first != expect)) {
				rc = RSX_ESEQ;
				goto out;
			}
			expect = v[i].last + 1;
			if (nrot++ == 0)
				w->oldest_seq = v[i].first;
		} else if (v[i].kind == WAL_ACTIVE) {
			if (active >= 0 || (expect && v[i].first != expect)) {
				rc = RSX_ESEQ;
				goto out;
			}
			active = i;
		}
	}
	uint64_t first = active >= 0 ? v[active].first : (expect ? expect : w->cfg.first_seq);
	if (nrot == 0)
		w->oldest_seq = first;
	if (active < 0) {
		char name[96];
		active_name(name, sizeof name, w->cfg.stream_id, first);
		w->file_first = first;
		if (!(w->cfg.flags & RSX_WAL_NO_PREALLOC)) {
			char nn[64], from[WAL_PATH_MAX], to[WAL_PATH_MAX];
			next_name(nn, sizeof nn, w->cfg.stream_id);
			if ((rc = make_zeroed(w, nn, w->cfg.file_size, NULL)) == 0 &&
			    wal_file_path(w, from, nn) == 0 && wal_file_path(w, to, name) == 0 &&
			    rename(from, to) < 0)
				rc = -errno;
			if (rc < 0 && !is_transient(rc))
				goto out;
			rc = 0;	/* no room to preallocate: fall back to a growing file */
		}
		char path[WAL_PATH_MAX];
		if ((rc = wal_file_path(w, path, name)) < 0)
			goto out;
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		close(fd);
		if ((rc = wal_fsync_dir(w->dir)) < 0)
			goto out;
		uint64_t last;
		rc = recover_active(w, name, first, &old, 0, &last);
	} else {
		uint64_t last;
		rc = recover_active(w, v[active].name, first, &old, have_old, &last);
	}
out:
	free(v);
	return rc;
}

int rsx_wal_open(struct rsx_wal **out, const struct rsx_wal_config *cfg)
{
	if (!cfg || !cfg->dir || !cfg->dir[0] || cfg->stream_id == 0 ||
	    cfg->file_size < 4096 || cfg->first_seq == 0 || strlen(cfg->dir) >= WAL_PATH_MAX - 128)
		return RSX_EINVALID;
	struct rsx_wal *w = aligned_alloc(CACHELINE, (sizeof *w + CACHELINE - 1) & ~(size_t)(CACHELINE - 1));
	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof *w);
	w->cfg = *cfg;
	snprintf(w->dir, sizeof w->dir, "%s", cfg->dir);
	w->cfg.dir = w->dir;
	if (w->cfg.ring_size < 64 * 1024)
		w->cfg.ring_size = 64 * 1024;
	w->fd = w->lock_fd = w->tip_fd = -1;
	pthread_mutex_init(&w->prep_lock, NULL);
	pthread_cond_init(&w->prep_cond, NULL);
	int rc;
	if ((rc = wal_mkdirs(w->dir)) < 0 || (rc = take_lock(w)) < 0)
		goto fail;
	{
		char nn[64], path[WAL_PATH_MAX];
		next_name(nn, sizeof nn, w->cfg.stream_id);
		if (wal_file_path(w, path, nn) == 0)
			unlink(path);	/* unknown state: prepare again */
	}
	if ((rc = open_files(w)) < 0)
		goto fail;
	if ((rc = ring_map(w)) < 0)
		goto fail;
	w->next_seq = w->file_last + 1;
	atomic_store(&w->appended_seq, w->file_last);
	atomic_store(&w->written_seq, w->file_last);
	w->written_local = w->file_last;
	__atomic_store_n(&w->durable_seq, w->file_last, __ATOMIC_RELEASE);
	set_state(w, RSX_WAL_RUNNING, 0);
	/* an accepted loss is on record before the tip can forget it (2.7) */
	if (w->loss.published_seq > w->file_last &&
	    (rc = record_loss(w, w->file_last + 1, w->loss.published_seq)) < 0)
		goto fail;
	if ((rc = tip_open(w)) < 0)
		goto fail;
	if (!(w->cfg.flags & RSX_WAL_NO_PREALLOC)) {
		w->prep_want = 1;
		if (pthread_create(&w->preparer, NULL, preparer_main, w) != 0) {
			rc = -EAGAIN;
			goto fail;
		}
		w->preparer_started = 1;
	}
	if (!(w->cfg.flags & RSX_WAL_MANUAL)) {
		if (pthread_create(&w->flusher, NULL, flusher_main, w) != 0) {
			rc = -EAGAIN;
			goto fail;
		}
		w->flusher_started = 1;
	}
	if (cfg->loss)
		*cfg->loss = w->loss;
	*out = w;
	return 0;
fail:
	if (cfg->loss)
		*cfg->loss = w->loss;
	atomic_store(&w->stopping, 1);
	if (w->preparer_started) {
		pthread_mutex_lock(&w->prep_lock);
		__atomic_store_n(&w->prep_stop, 1, __ATOMIC_RELAXED);
		pthread_cond_signal(&w->prep_cond);
		pthread_mutex_unlock(&w->prep_lock);
		pthread_join(w->preparer, NULL);
	}
	if (w->ring)
		munmap(w->ring, 2 * w->ring_size);
	if (w->tip)
		munmap(w->tip, TIP_FILE_SIZE);
	if (w->tip_fd >= 0)
		close(w->tip_fd);
	if (w->fd >= 0)
		close(w->fd);
	if (w->lock_fd >= 0)
		close(w->lock_fd);
	pthread_mutex_destroy(&w->prep_lock);
	pthread_cond_destroy(&w->prep_cond);
	free(w);
	return rc;
}

int rsx_wal_close(struct rsx_wal *w)
{
	int rc = 0;
	if (!w)
		return 0;
	/*
	 * Fail every call blocked in another thread (a stalled append, a wait
	 * for durability) and wait until each has left, before anything is
	 * freed. An append running on its fast path concurrently with close is
	 * the caller's bug: appends and close belong to one appender.
	 */
	atomic_store(&w->closing, 1);
	for (;;) {
		atomic_fetch_add(&w->space_word, 1);
		futex_wake(&w->space_word);
		atomic_fetch_add(&w->durable_word, 1);
		futex_wake(&w->durable_word);
		if (!atomic_load(&w->blocked) && !atomic_load(&w->durable_waiters))
			break;
		struct timespec ts = { 0, 50000 };
		nanosleep(&ts, NULL);
	}
	publish_head(w);
	if (w->cfg.flags & RSX_WAL_MANUAL) {
		if (!sticky(w) && w->tail_local < w->head)
			rc = flush_once(w, w->head);
	}
	atomic_store(&w->stopping, 1);
	if (w->flusher_started) {
		atomic_fetch_add(&w->flusher_word, 1);
		futex_wake(&w->flusher_word);
		pthread_join(w->flusher, NULL);
	}
	if (rc == 0)
		rc = sticky(w);
	if (rc == 0 && rsx_wal_durable_seq(w) < w->next_seq - 1)
		rc = atomic_load(&w->stall_error) ? atomic_load(&w->stall_error) : -EIO;
	if (w->preparer_started) {
		pthread_mutex_lock(&w->prep_lock);
		__atomic_store_n(&w->prep_stop, 1, __ATOMIC_RELAXED);
		pthread_cond_signal(&w->prep_cond);
		pthread_mutex_unlock(&w->prep_lock);
		pthread_join(w->preparer, NULL);
		char nn[64], path[WAL_PATH_MAX];
		next_name(nn, sizeof nn, w->cfg.stream_id);
		if (wal_file_path(w, path, nn) == 0)
			unlink(path);
	}
	if (atomic_load(&w->state) != RSX_WAL_FAILED)
		set_state(w, RSX_WAL_CLOSED, rc);
	tip_publish(w);
	munmap(w->ring, 2 * w->ring_size);
	munmap(w->tip, TIP_FILE_SIZE);
	close(w->tip_fd);
	if (w->fd >= 0)
		close(w->fd);
	close(w->lock_fd);
	pthread_mutex_destroy(&w->prep_lock);
	pthread_cond_destroy(&w->prep_cond);
	free(w);
	return rc;
}
