/*
 * me_int.h - what the matching engine's C files share (not installed).
 */
#ifndef RSX_ME_INT_H
#define RSX_ME_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rsx/book.h"
#include "rsx/cmp.h"
#include "rsx/me.h"
#include "rsx/numbers.h"
#include "rsx/records.h"
#include "rsx/wal.h"
#include "wal_internal.h"	/* wal_real_ns, wal_mono_ns, wal_fsync_dir */

#define ME_PATH_MAX 4096
#define ME_SINK_CHUNK (1u << 20)	/* bytes of events one book call may write before it suspends */
#define ME_STRIDE 192			/* read stride: 48 + i*192 + 16 puts every payload on 64 bytes */
#define ME_MIN_ROOM (RSX_RECORD_MAX + RSX_BOOK_SINK_MIN)	/* out-ring room a request needs to start */

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

enum me_counter {
#define RSX_ME_COUNTER(name, msg) MC_##name,
#include "rsx/me_counters.def"
#undef RSX_ME_COUNTER
	MC_COUNT
};

enum me_hist {
	MH_IN_TO_ACCEPTED,
	MH_ACCEPTED_TO_MATCHED,
	MH_ACCEPT_PATH,
	MH_MATCHED_TO_DURABLE,
	MH_TO_DURABLE,
	MH_DURABLE_TO_OUT,
	MH_IN_TO_SENT,
	MH_COUNT
};

/* ---------------------------------------------------------------- dedup */

struct me_dedup_entry {
	rsx_oid_t oid;
	uint32_t user_id;
	uint32_t t;		/* ts_ns >> 30 of the ORDER_ACCEPTED; 0 = empty slot */
	uint64_t seq;		/* the ORDER_ACCEPTED's seq */
};

struct me_dedup {
	struct me_dedup_entry *tab;
	size_t map_len;
	uint64_t mask;
	uint64_t count;		/* live + expired-not-yet-swept entries */
	uint64_t limit;		/* 3/4 of the slots */
	uint32_t window_t;	/* window in 2^30 ns ticks, rounded up, + 1 */
	uint32_t swept_full;	/* a full table was swept since the last housekeeping sweep */
	uint64_t sweep_pos;
	uint64_t expired;	/* removed by the sweeper */
};

#define ME_DEDUP_NEW 0
#define ME_DEDUP_DUPLICATE 1
#define ME_DEDUP_FULL 2

static inline uint32_t me_dedup_tick(uint64_t ts_ns)
{
	return (uint32_t)(ts_ns >> 30);
}

int me_dedup_init(struct me_dedup *d, uint64_t capacity, uint64_t window_ns);
void me_dedup_free(struct me_dedup *d);
/*
 * Look (user, oid) up at time t; if it is not a live entry, insert it with
 * seq. Returns ME_DEDUP_NEW, ME_DEDUP_DUPLICATE (*orig = the original seq),
 * or ME_DEDUP_FULL (nothing inserted).
 */
int me_dedup_check_insert(struct me_dedup *d, uint32_t user, const rsx_oid_t *oid, uint32_t t,
			  uint64_t seq, uint64_t *orig);
/* Insert or refresh during recovery. Returns 0, or ME_DEDUP_FULL: the window does not fit the table. */
int me_dedup_rebuild_insert(struct me_dedup *d, uint32_t user, const rsx_oid_t *oid, uint32_t t, uint64_t seq);
/* Remove expired entries among the next n slots (housekeeping). Returns how many were removed. */
uint64_t me_dedup_sweep(struct me_dedup *d, uint32_t now_t, uint64_t n);

/* --------------------------------------------------------------- replay */

/*
 * Applies a stream's records to a book the way the loop did, and checks that
 * the events the book makes again are the records that follow (recovery, the
 * snapshot thread's replica, rsx me verify).
 */
struct me_replay {
	struct rsx_book *book;
	struct rsx_config cfg;		/* the applied CONFIG_APPLIED payload (status as the ME has it) */
	int have_cfg;
	int pending;			/* the book suspended the current request */
	uint8_t *exp;			/* expected events (a sink buffer) */
	size_t exp_len, exp_pos;
	struct rsx_book_sink sink;
	uint64_t seq;			/* last record consumed */
	uint64_t records, requests;
	uint64_t diverged_seq;
	char why[160];
};

int me_replay_init(struct me_replay *rp, struct rsx_book *book);
void me_replay_free(struct me_replay *rp);
/* Consume one whole, checked record. Returns 0 or RSX_EDIVERGED (rp->why says how). */
int me_replay_feed(struct me_replay *rp, const uint8_t *rec, size_t len);
/* 1 when no request is half-consumed (its events all matched). */
static inline int me_replay_boundary(const struct me_replay *rp)
{
	return rp->exp_pos == rp->exp_len && !rp->pending;
}
/*
 * The events still expected of the current request, chunk by chunk: calls
 * emit(ctx, buf, len) for each chunk (records back to back, seq 0). Returns 0
 * or emit's error.
 */
int me_replay_rest(struct me_replay *rp, int (*emit)(void *ctx, uint8_t *buf, size_t len), void *ctx);

/* The book's view of a symbol config: CLOSE_ONLY runs the book ACTIVE (the ME filters). */
void me_book_config(struct rsx_symbol_config *out, const struct rsx_config *rec);
/* Whether two configs have the same parameters (status, version, seq, ts, effective time ignored). */
int me_config_same_params(const struct rsx_config *a, const struct rsx_config *b);
/*
 * Check a control request against the current config. Returns 0, RSX_ESTALE
 * or RSX_EINVALID with *why (enum rsx_me_control_why).
 */
int me_config_check(const struct rsx_config *cur, const struct rsx_config *want, uint32_t *why);
/* Read a whole file into a malloc'ed buffer. Returns its size or -errno. */
int64_t me_read_file(const char *path, uint8_t **out);

/* ------------------------------------------------------------ snapshots */

struct me_snapshot {
	uint64_t wal_seq;
	uint8_t *data;			/* the whole file (free it) */
	size_t len;
	const uint8_t *book;		/* the book snapshot inside data */
	size_t book_len;
	struct rsx_config cfg;
	char name[64];
};

/* Snapshot files of dir, newest first (malloc'ed array of names). Returns the count or -errno. */
int me_snap_list(const char *snap_dir, char (**names)[64]);
/*
 * Load and check one snapshot file (both CRCs, symbol). Returns 0 or the
 * error (RSX_ECRC, RSX_EVERSION, RSX_ESHORT, RSX_ESTREAM, -errno).
 */
int me_snap_load(const char *snap_dir, const char *name, uint32_t symbol_id, struct me_snapshot *out);
/* Write snap-<wal_seq>.rsxme from book (temp file, fsync, rename, fsync dir). Returns 0 or -errno. */
int me_snap_write(const char *snap_dir, struct rsx_book *book, const struct rsx_config *cfg,
		  uint64_t wal_seq, uint8_t **buf, size_t *cap);
/* Delete all but the newest keep; returns the oldest kept wal_seq (0 if none). */
uint64_t me_snap_prune(const char *snap_dir, uint32_t keep);

/* ------------------------------------------------------------ the ME */

/* One in-flight request (or chunk of one) in the request ring. */
struct me_req {
	uint64_t last_seq;
	uint64_t end;			/* out-ring offset just past its records */
	uint64_t t_in;			/* rsx-clock ns: read from the link */
	uint64_t t_start;		/* its processing began */
	uint64_t t_acc;			/* ORDER_ACCEPTED (or the request) framed */
	uint64_t t_match;		/* matched; 0 for a chunk that is not the request's last */
	uint64_t t_durable;
	uint64_t _pad0;
};

struct me_replica {
	pthread_t thread;
	int started;
	_Atomic int stop;
	struct rsx_book *book;
	struct me_replay rp;
	struct rsx_wal_set *set;
	struct rsx_wal_reader *rd;
	uint8_t *buf;
	struct rsx_wal_entry *ent;
	uint8_t *snap_buf;
	size_t snap_cap;
	uint64_t last_snap_seq;
	uint64_t last_snap_ns;
	int diverged;
};

struct rsx_me {
	struct rsx_me_config cfg;
	char dir[ME_PATH_MAX - 128];
	char wal_dir[ME_PATH_MAX];
	char snap_dir[ME_PATH_MAX];
	char stats_path[ME_PATH_MAX];
	uint32_t symbol_id;
	int fsync_mode;

	/* the symbol */
	struct rsx_config sym;		/* applied CONFIG_APPLIED payload */
	uint8_t status;			/* sym.status */
	struct rsx_symbol_config book_cfg;	/* what the book runs with (me_book_config of sym) */
	struct rsx_book_params book_params;
	struct rsx_book *book;

	/* the WAL */
	struct rsx_wal *wal;
	const uint64_t *durable_ptr;
	_Atomic uint64_t dur_seq;	/* set by on_durable: the last synced seq ... */
	_Atomic uint64_t dur_ts;	/* ... and the rsx-clock time its sync returned */

	/* outbound ring: framed records, double-mapped so every record is contiguous */
	uint8_t *out;
	uint64_t out_size, out_mask;
	uint64_t out_head;		/* bytes framed */
	uint64_t out_sent;		/* bytes handed to CMP */

	/* request ring */
	struct me_req *rq;
	uint64_t rq_mask;
	uint64_t rq_head, rq_durable, rq_sent;
	uint64_t released_seq;

	struct me_dedup dd;

	/* transport */
	struct rsx_cmp_endpoint *ep;
	struct rsx_cmp_sender *tx;
	struct rsx_cmp_receiver *links[RSX_ME_MAX_LINKS];
	uint32_t nlinks;
	uint32_t link_next;
	struct rsx_wal_set *fetch_set;
	struct rsx_wal_reader *fetch_rd;

	/* input batch: records at in + 48 + i * ME_STRIDE */
	uint8_t *in;
	uint32_t in_n, in_pos;
	uint64_t in_t;			/* me_in of the batch */
	uint64_t t_last;		/* end of the previous request: start of the next */

	/* clocks */
	int64_t real_off;		/* CLOCK_REALTIME - rsx clock, refreshed by housekeeping */
	uint64_t hk_last;
	uint64_t hk_accepted;		/* MC_accepted at the last housekeeping */
	uint64_t idle_since;
	int just_polled;		/* the wait ended in rsx_cmp_poll */
	uint64_t sleep_us;

	/* status file */
	struct rsx_me_stats_header *shm;
	size_t shm_len;
	uint64_t *c;			/* counters */
	struct rsx_hist *h[MH_COUNT];
	struct rsx_me_mailbox *mbox;
	uint64_t mbox_seen;

	_Atomic int stop;
	int state;
	int error;

	struct me_replica rep;
	struct rsx_me_recovery rec;
};

/* me_stats.c */
int me_stats_open(struct rsx_me *me);
void me_stats_close(struct rsx_me *me);
void me_stats_set_state(struct rsx_me *me, int state, int error);
void me_stats_set_config(struct rsx_me *me);

/* me_loop.c */
int me_apply_control(struct rsx_me *me, const struct rsx_config *want, uint32_t *why, uint64_t t_in);
void me_housekeeping(struct rsx_me *me, uint64_t now);

/* me_recover.c */
int me_recover(struct rsx_me *me);
int me_open_wal(struct rsx_me *me);

/* me_snap.c */
int me_replica_start(struct rsx_me *me);
void me_replica_stop(struct rsx_me *me);

/*
 * Zeroed anonymous memory on transparent hugepages where the kernel gives them
 * (a random-access table on 4 KiB pages pays a TLB miss per lookup), faulted
 * in now so the loop never takes a page fault. NULL if mmap failed.
 */
void *me_map_anon(size_t len);

#endif
