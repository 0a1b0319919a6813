/*
 * wal_internal.h - helpers shared by the WAL's C files (not installed).
 */
#ifndef RSX_WAL_INTERNAL_H
#define RSX_WAL_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "rsx/wal.h"

#define WAL_NAME_MAX 255
#define WAL_PATH_MAX 4096

enum wal_kind {
	WAL_ROTATED = 1,	/* S_F_L.wal */
	WAL_ACTIVE,		/* S_F_active.wal */
	WAL_OTHER,		/* S_<anything>.wal (archive day files): first seq read from the data */
};

struct wal_name {
	uint64_t first;		/* from the name; 0 for WAL_OTHER */
	uint64_t last;		/* from the name; 0 unless WAL_ROTATED */
	int kind;
	char name[WAL_NAME_MAX + 1];
};

/* CLOCK_MONOTONIC / CLOCK_REALTIME in ns. */
uint64_t wal_mono_ns(void);
uint64_t wal_real_ns(void);

/* "dir/name" into out (WAL_PATH_MAX). Returns 0 or -ENAMETOOLONG. */
int wal_path(char *out, const char *dir, const char *name);

/* fsync a directory so that creates/renames/unlinks in it are durable. */
int wal_fsync_dir(const char *dir);

/* mkdir -p (mode 0755), syncing each parent it creates into. */
int wal_mkdirs(const char *dir);

/*
 * List dir's files of stream *stream (0: infer and store it; RSX_ESTREAM if
 * the directory holds several streams). *out is malloc'ed (free it), sorted:
 * ROTATED and ACTIVE by first seq, then OTHER by name. Returns the count.
 */
int wal_list(const char *dir, uint32_t *stream, struct wal_name **out);

/* Write zero bytes over [from, to) of fd (pwrite, 1 MiB at a time). */
int wal_zero_fill(int fd, uint64_t from, uint64_t to);

/* Whether p[0..n) is all zero. */
int wal_all_zero(const void *p, size_t n);

/* Whether pid holds the writer lock of dir/stream right now (1/0). */
int wal_lock_held(const char *dir, uint32_t stream);

/* Every registered consumer's stored position (dir/consumers/NAME). */
struct wal_consumer_bounds {
	uint64_t min;		/* lowest position; 0 if one is unreadable, UINT64_MAX if none */
	uint64_t max;		/* highest position (0 = none) */
	char max_name[64];	/* whose */
	uint32_t count;		/* consumers registered */
	uint32_t unreadable;	/* position files that do not parse (they hold retention at 0) */
};

/* Fill b from dir/consumers, whatever the names. Returns the count or -errno. */
int wal_consumer_bounds(const char *dir, struct wal_consumer_bounds *b);

/* The tip file name "S.tip" into out. */
void wal_tip_name(char *out, size_t cap, uint32_t stream);

/*
 * Consistent copy of a mapped tip (seqlock read). Returns 0, or RSX_EINVALID
 * if the magic is wrong, or -EAGAIN if the writer kept it busy too long.
 */
int wal_tip_copy(const volatile struct rsx_wal_tip *src, struct rsx_wal_tip *out);

#endif
