/*
 * rsx/me.h - the matching engine of one symbol: CMP requests in, dedup,
 * ORDER_ACCEPTED, the book, the WAL with group commit, durable records out on
 * the symbol's one stream; snapshots from a replica, recovery, control, the
 * shared status file. specs/me.md is the prose form of this file.
 *
 * Threads: the loop (rsx_me_run or rsx_me_step: one thread drives the ME,
 * its endpoint, sender and links), the WAL's flusher and preparer, and the
 * snapshot thread. Nothing on the request path allocates or takes a lock.
 *
 * Return values: >= 0 success, -errno from the kernel, RSX_E* (errors.h).
 */
#ifndef RSX_ME_H
#define RSX_ME_H

#include <stddef.h>
#include <stdint.h>

#include "cmp.h"
#include "hist.h"
#include "records.h"

struct rsx_me;

enum rsx_me_durability {
	RSX_ME_FSYNC = 1,	/* release a request once its records are synced (default) */
	RSX_ME_ASYNC = 2,	/* release at once, sync within 10 ms (comparison only) */
};

enum rsx_me_wait {
	RSX_ME_SPIN = 1,	/* busy-poll (isolated cores) */
	RSX_ME_BACKOFF = 2,	/* spin, then yield, then sleep 50 us .. 1 ms */
	RSX_ME_BLOCK = 3,	/* sleep in the kernel */
};

enum rsx_me_state {
	RSX_ME_STARTING = 1,
	RSX_ME_RECOVERING = 2,
	RSX_ME_RUNNING = 3,
	RSX_ME_STOPPING = 4,
	RSX_ME_STOPPED = 5,
	RSX_ME_FAILED = 6,
};

/* rsx_me_config.flags */
#define RSX_ME_NO_SNAPSHOTS	0x1u	/* no snapshot thread (tests, benchmarks) */
#define RSX_ME_STATS_IN_DIR	0x2u	/* the status file in dir itself, not on /dev/shm */

#define RSX_ME_MAX_LINKS 64
#define RSX_ME_STATS_MAGIC "RSXMEST1"
#define RSX_ME_SNAP_MAGIC "RSXMESN1"

struct rsx_me_config {
	const char *dir;		/* <data>/me/<SYMBOL>: wal/, snapshots/, me.stats */
	struct rsx_config symbol;	/* the configured parameters (CONFIG_APPLIED payload); specs/me.md 5 */
	uint32_t durability;		/* enum rsx_me_durability */
	uint32_t wait_mode;		/* enum rsx_me_wait */
	uint32_t flags;			/* RSX_ME_* */
	uint32_t read_batch;		/* records read per link per iteration; default 256 */
	/* the book (book.h) */
	uint64_t capacity;		/* resting orders; default 1 Mi */
	uint64_t level_capacity;	/* 0 = capacity */
	uint32_t max_users;		/* default 64 Ki */
	uint32_t book_flags;		/* RSX_BOOK_* */
	int64_t ref_price;		/* initial map centre, raw, > 0 */
	uint64_t zone0_ticks;		/* 0 = the book's default */
	/* the WAL (wal.h) */
	uint32_t batch_records;		/* fsync mode: N (default 1) */
	uint32_t batch_us;		/* fsync mode: T (default 0) */
	uint64_t wal_file_size;		/* 0 = the WAL's default */
	uint64_t wal_ring_size;		/* 0 = the WAL's default */
	uint64_t retain_ns;		/* 0 = the WAL's default (4 h); must be >= dedup_window_ns */
	uint32_t wal_flags;		/* extra RSX_WAL_* (NO_PREALLOC, FULLSYNC; NOSYNC for benchmarks only) */
	uint32_t spin_us;		/* backoff: spin this long, then yield as long; default 50 */
	/* dedup and stale orders */
	uint64_t dedup_window_ns;	/* default 1 h */
	uint64_t dedup_capacity;	/* entries, a power of two; default 4 Mi */
	uint64_t order_timeout_ns;	/* refuse NEW_ORDER whose risk_out_ts_ns is older; default 5 s, 0 = off */
	/* snapshots */
	uint64_t snapshot_records;	/* default 1 000 000 */
	uint64_t snapshot_ns;		/* default 60 s */
	uint32_t snapshot_keep;		/* default 3 */
	uint32_t _pad0;
	/* rings and timers */
	uint64_t out_bytes;		/* outbound ring; default 64 MiB (power of two) */
	uint64_t request_slots;		/* in-flight requests; default 256 Ki (power of two) */
	uint64_t housekeeping_ns;	/* longest sleep in block mode; default 50 ms */
};

/* What rsx_me_open found and did (specs/me.md 7). */
struct rsx_me_recovery {
	uint64_t wal_tip;		/* durable seq found in the WAL */
	uint64_t wal_oldest;		/* first seq retained */
	uint64_t wal_cut_bytes;		/* torn tail the WAL cut off */
	uint64_t snapshot_seq;		/* wal_seq of the snapshot used, 0 = none */
	uint32_t snapshots_tried;
	uint32_t snapshots_rejected;
	int32_t reject_error;		/* why the newest rejected one was refused */
	uint32_t _pad0;
	char reject_file[64];
	uint64_t replayed_records;
	uint64_t replayed_requests;
	uint64_t completed_records;	/* appended to finish a request the crash cut */
	uint64_t dedup_entries;		/* rebuilt */
	uint64_t dedup_from_seq;	/* first seq scanned for them */
	uint64_t config_version;	/* after recovery */
	uint32_t config_appended;	/* 1 if a CONFIG_APPLIED was appended at start */
	uint32_t book_migrated;		/* 1 if the book's capacities changed (restored into a new one) */
	uint64_t elapsed_ns;
	char message[160];		/* what went wrong when rsx_me_open failed, else "" */
};

struct rsx_me_info {
	uint64_t next_seq;
	uint64_t durable_seq;
	uint64_t released_seq;
	uint64_t in_flight;		/* requests processed, not yet released */
	uint64_t config_version;
	uint32_t state;			/* enum rsx_me_state */
	uint32_t status;		/* the symbol's status (CONFIG_APPLIED.status) */
	int32_t error;			/* the fatal error, 0 */
	uint32_t nlinks;
};

/* Fill cfg with the defaults of specs/me.md (dir NULL, symbol zero: the caller sets them). */
void rsx_me_config_init(struct rsx_me_config *cfg);

/*
 * Create the ME: status file, book, dedup table, rings; open the WAL and
 * recover (newest usable snapshot + WAL tail, dedup window, completion of a
 * cut request, configuration); start the snapshot thread. rec (may be NULL)
 * receives the recovery report. Returns 0, RSX_EINVALID (bad config),
 * -EBUSY (another writer holds the WAL), RSX_EDIVERGED (replay did not
 * reproduce the WAL), RSX_EGONE (no snapshot and the WAL does not start at
 * seq 1), the WAL's open errors, or -errno.
 */
int rsx_me_open(const struct rsx_me_config *cfg, struct rsx_me **out, struct rsx_me_recovery *rec);

/*
 * Hand the ME its transport, which the loop drives from now on: a sender of
 * the ME's stream to tx->dest (tx NULL: no subscribers; stream_id, fetch and
 * fetch_ctx are set by the ME: retransmits past the hot ring come from the
 * WAL), and one receiver per input link stream (rx_template: window, NAK
 * timing; start_seq 0 = join at the first seq seen). Then sends the last
 * min(tip, ring_size) durable records again (specs/me.md 7). Returns 0,
 * RSX_EINVALID (already attached, too many links), or the CMP error.
 */
int rsx_me_attach(struct rsx_me *me, struct rsx_cmp_endpoint *ep, const struct rsx_cmp_sender_config *tx,
		  const struct rsx_cmp_receiver_config *rx_template, const uint32_t *links, uint32_t nlinks);

/* Run the loop until rsx_me_stop, then drain (specs/me.md 6). Returns 0 or the fatal error. */
int rsx_me_run(struct rsx_me *me);

/*
 * One loop iteration; with timeout_us > 0 and nothing to do, wait (by the
 * wait mode) at most that long. Returns the work done (records read +
 * records released), or the fatal error.
 */
int rsx_me_step(struct rsx_me *me, int64_t timeout_us);

/*
 * Process back-to-back request records (NEW_ORDER, CANCEL_*, AMEND_ORDER,
 * CONFIG_APPLIED) as if they had arrived on a link. Returns the number of
 * records processed, a record error for invalid bytes (records before it
 * were processed), or the fatal error.
 */
int64_t rsx_me_submit(struct rsx_me *me, const void *buf, size_t len);

/* Make everything processed durable and release it. Returns 0, -ETIMEDOUT, or the fatal error. */
int rsx_me_drain(struct rsx_me *me, int64_t timeout_ns);

/* Ask rsx_me_run to finish (any thread, signal handlers included). */
void rsx_me_stop(struct rsx_me *me);

/* Stop the snapshot thread, close the WAL, mark the status file STOPPED, free. Returns the WAL's close result. */
int rsx_me_close(struct rsx_me *me);

void rsx_me_info(const struct rsx_me *me, struct rsx_me_info *out);
/* The status file's path (specs/me.md 8). */
const char *rsx_me_stats_path(const struct rsx_me *me);

/*
 * Apply a control request (a new symbol configuration) from the caller's
 * thread; only while the loop is not running (tests). Returns 0, RSX_ESTALE
 * (version not newer), RSX_EINVALID (another symbol, decimals changed,
 * incoherent).
 */
int rsx_me_control(struct rsx_me *me, const struct rsx_config *cfg);

/* ---- the status file, for readers in other processes (specs/me.md 8) ---- */

struct rsx_me_stats_header {
	char magic[8];			/* RSX_ME_STATS_MAGIC */
	uint32_t version;		/* 1 */
	uint32_t size;			/* file bytes */
	uint32_t pid;
	uint32_t state;			/* enum rsx_me_state */
	uint32_t symbol_id;
	int32_t error;
	uint64_t started_ns;		/* CLOCK_REALTIME */
	uint64_t updated_ns;		/* CLOCK_REALTIME of the loop's last housekeeping */
	uint32_t ncounters;
	uint32_t nhist;
	uint32_t counters_off;
	uint32_t hist_off;
	uint32_t hist_stride;
	uint32_t control_off;
	uint32_t wait_mode;
	uint32_t durability;
	uint64_t config_seq;		/* seqlock of config: odd while written */
	uint8_t _pad0[40];
	struct rsx_config config;	/* offset 128: the applied CONFIG_APPLIED payload */
};

/* The control mailbox at control_off (specs/me.md 8). */
struct rsx_me_mailbox {
	uint64_t req_seq;		/* written by a client after config */
	uint64_t _pad0[7];
	struct rsx_config config;	/* the requested configuration */
	uint64_t done_seq;		/* written by the loop after result */
	int32_t result;			/* 0, RSX_ESTALE, RSX_EINVALID */
	uint32_t why;			/* enum rsx_me_control_why */
	uint64_t applied_version;
	uint64_t _pad1[5];
};

enum rsx_me_control_why {
	RSX_ME_CTL_OK = 0,
	RSX_ME_CTL_SYMBOL = 1,		/* another symbol */
	RSX_ME_CTL_VERSION = 2,		/* config_version not newer */
	RSX_ME_CTL_DECIMALS = 3,	/* price or quantity decimals changed */
	RSX_ME_CTL_INCOHERENT = 4,	/* rsx_symbol_config_check refused it */
};

/*
 * Copy histogram i of a mapped status file (base, len bytes) into dst, which
 * must have the same geometry; the total is recomputed from the counts (a
 * consistent copy even while the loop records). Returns 0 or RSX_EINVALID.
 */
int rsx_me_stats_hist_read(const void *base, size_t len, uint32_t i, struct rsx_hist *dst);

/* ---- offline ---- */

struct rsx_me_verify_report {
	uint64_t tip;			/* durable seq of the WAL */
	uint64_t oldest;
	uint64_t full_records;		/* records replayed from seq 1 (0 if the WAL does not start at 1) */
	uint64_t full_requests;
	uint64_t snapshot_seq;		/* the newest usable snapshot (0 = none) */
	uint64_t tail_records;		/* replayed after it */
	int32_t full_result;		/* 0, RSX_EDIVERGED, ... */
	int32_t tail_result;
	int32_t books_equal;		/* 1: both books are the same state; -1: not compared */
	uint32_t open_at_end;		/* 1: the WAL ends inside a request (a restart completes it) */
	uint64_t diverged_seq;
	char message[160];
};

/*
 * Replay the stream in dir (stopped or running: only durable records are
 * read) twice: from seq 1 into a fresh book, and from the newest usable
 * snapshot; check that both reproduce every outcome in the WAL and end in
 * the same book. cfg gives the book's parameters (capacity ...). Returns 0
 * if every check passed, RSX_EDIVERGED if one failed (see the report), or
 * an error opening the WAL.
 */
int rsx_me_verify(const struct rsx_me_config *cfg, struct rsx_me_verify_report *out);

#endif
