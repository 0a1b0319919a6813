/*
 * rsx/wal.h - the write-ahead log of one stream: writer with group commit,
 * buffer scan, directory reader, tip file. specs/wal.md is the prose form.
 *
 * Return contract (all functions unless stated): >= 0 on success, a negative
 * value on failure: -errno for kernel errors, RSX_E* (errors.h) for ours.
 */
#ifndef RSX_WAL_H
#define RSX_WAL_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- writer */

/* cfg.flags */
#define RSX_WAL_MANUAL		0x01u	/* no flusher thread: the caller calls rsx_wal_flush() */
#define RSX_WAL_NONBLOCK	0x02u	/* a full ring returns -EAGAIN instead of blocking */
#define RSX_WAL_NO_PREALLOC	0x04u	/* no zero-filled next file; append to growing files */
#define RSX_WAL_FULLSYNC	0x08u	/* fsync() instead of fdatasync() */
#define RSX_WAL_NOSYNC		0x10u	/* UNSAFE: never sync; durable = written (benchmarks only) */
#define RSX_WAL_ACCEPT_LOSS	0x20u	/* an operator accepts a lost tail: record it (SEQ_LOST), go on */

/* writer states (also in the tip) */
#define RSX_WAL_RUNNING	1
#define RSX_WAL_STALLED	2	/* a transient error (disk full): retrying, appends stall */
#define RSX_WAL_FAILED	3	/* a sync failed: nothing more becomes durable; restart */
#define RSX_WAL_CLOSED	4

/*
 * What a stream directory says was reported durable, against what its files
 * hold (specs/wal.md 2.7). A writer refuses to start below published_seq.
 */
struct rsx_wal_loss {
	uint64_t last_seq;	/* last seq the files hold (filled by rsx_wal_open) */
	uint64_t published_seq;	/* highest seq ever reported durable: the max of the two below */
	uint64_t tip_seq;	/* the writer tip's durable_seq (0 = no tip) */
	uint64_t consumer_seq;	/* highest position a registered consumer stored (0 = none) */
	char consumer[64];	/* that consumer's name */
};

struct rsx_wal_config {
	const char *dir;	/* the stream's directory (created if missing) */
	uint32_t stream_id;	/* != 0 */
	uint32_t flags;		/* RSX_WAL_* */
	uint64_t file_size;	/* rotate before a file would exceed this; default 64 MiB */
	uint64_t ring_size;	/* in-memory buffer; default 32 MiB, rounded up to 2^k */
	uint32_t batch_records;	/* N: start a batch once N records are pending; default 1 */
	uint32_t batch_us;	/* T: ... or once the oldest pending is T us old; default 0 */
	uint64_t retain_ns;	/* delete rotated files older than this (consumers permitting); default 4 h, UINT64_MAX = never */
	uint64_t first_seq;	/* seq of the first record of a new (empty) stream; default 1 */
	uint64_t prealloc_rate;	/* bytes/s the preparer zero-fills at (its I/O competes with
				   the flusher's syncs); default 32 MiB/s, 0 = unpaced */
	/* Called on the flusher thread after each durable batch. Must not block. */
	void (*on_durable)(void *ctx, uint64_t durable_seq, uint64_t now_ns);
	void *ctx;
	/* Optional out: what open found (last_seq < published_seq: a lost tail). */
	struct rsx_wal_loss *loss;
};

struct rsx_wal_stats {
	uint64_t next_seq;
	uint64_t appended_seq;
	uint64_t written_seq;
	uint64_t durable_seq;
	uint64_t oldest_seq;		/* first seq of the oldest retained file */
	uint64_t active_first_seq;
	uint64_t active_bytes;		/* durable bytes in the active file */
	uint64_t batches;		/* syncs that made records durable */
	uint64_t records;		/* records made durable by this process */
	uint64_t bytes;
	uint64_t stalls;		/* appends that found the ring full */
	uint64_t stall_ns;		/* time appends spent blocked */
	uint64_t sync_ns_last;
	uint64_t sync_ns_max;
	uint64_t sync_ns_total;		/* time spent in fdatasync/fsync */
	uint64_t rotations;
	uint64_t deleted_files;
	uint64_t retention_blocks;	/* rotations where a consumer kept a due file */
	uint64_t retention_blocked_seq;	/* the lagging consumer's seq (0 = none) */
	uint64_t prealloc_misses;	/* rotations with no prepared file ready */
	uint64_t write_retries;		/* batches retried after a transient error */
	int32_t prealloc_ready;		/* the next file is zero-filled and waiting */
	uint32_t _pad1;
	int32_t state;			/* RSX_WAL_RUNNING ... */
	int32_t error;			/* last error (0, -ENOSPC, -EIO, ...) */
	/* recovery done by rsx_wal_open */
	uint64_t recovered_offset;	/* where the torn tail began */
	uint64_t recovered_bytes;	/* bytes cut off (0 = clean) */
	int32_t recovered_error;	/* why the first cut record failed (RSX_ECRC, RSX_ESHORT ...) */
	uint32_t _pad0;
	char recovered_file[256];	/* name of the file cut */
	uint64_t lost_first;		/* seqs recorded as SEQ_LOST at this open (ACCEPT_LOSS), */
	uint64_t lost_last;		/* 0 = none */
};

struct rsx_wal;

/* Fill cfg with the defaults (dir NULL, stream_id 0: the caller sets them). */
void rsx_wal_config_default(struct rsx_wal_config *cfg);

/*
 * Open (create, or recover) the stream's WAL and start its threads. Returns 0
 * and *out, or: RSX_EINVALID (bad config), -EBUSY (another writer holds the
 * directory), RSX_ESEQ (file names inconsistent), RSX_ESTREAM (files of
 * another stream id), a record error (durable data corrupt: nothing
 * touched), RSX_ELOST (the files end below a seq that was reported durable:
 * nothing touched; cfg.loss says where, RSX_WAL_ACCEPT_LOSS records the lost
 * seqs as SEQ_LOST tombstones instead), or -errno.
 */
int rsx_wal_open(struct rsx_wal **out, const struct rsx_wal_config *cfg);

/*
 * Make everything appended durable, stop the threads, release the directory.
 * First fails every append or wait blocked in another thread (-ECANCELED)
 * and waits until each has returned, so nothing is freed under them.
 * Always frees w. Returns 0, or the error that kept records from becoming
 * durable (rsx_wal_stats before close says how far it got).
 */
int rsx_wal_close(struct rsx_wal *w);

/*
 * Append one record: frame type + payload into the ring, assign its seq
 * (payload offset 0), stream_id (offset 16), ts_ns (offset 8) if 0, seal.
 * One appender thread only. Returns the record size and *seq, or: RSX_ETYPE
 * (0, unknown or control type), RSX_ELENGTH, -EAGAIN (NONBLOCK and the ring
 * is full: append the same record again later), the stall error (NONBLOCK,
 * ring full and the writer is stalled, e.g. -ENOSPC), -ECANCELED (the writer
 * is being closed), or the sticky error of a FAILED writer. Nothing is
 * appended when it fails.
 */
int rsx_wal_append(struct rsx_wal *w, uint16_t type, const void *payload, size_t len,
		   uint64_t *seq);

/*
 * Append count payloads of one type, stride bytes apart (stride >= len).
 * Returns how many were appended (all of them when blocking, unless close
 * cancelled the call; possibly fewer with NONBLOCK) and the first one's seq,
 * or an error if none was.
 */
int64_t rsx_wal_append_batch(struct rsx_wal *w, uint16_t type, const void *payloads,
			     size_t len, size_t count, size_t stride, uint64_t *first_seq);

/*
 * Append back-to-back records framed by the caller in buf[0..len) (each
 * header's type and len set; seq, stream_id, CRC and the other header bytes
 * are the WAL's to write). Each record gets the next seq, the WAL's stream
 * id and, if its ts_ns is 0, ts_ns (or, when that is 0 too, the current
 * CLOCK_REALTIME), and is sealed IN
 * buf, so that buf then holds exactly the bytes the WAL holds; the records
 * are then copied into the ring and published together (one flusher wake-up
 * for all). One appender thread only. All or nothing: returns the number of
 * records appended and the first one's seq, or RSX_ETYPE / RSX_ELENGTH /
 * RSX_ESHORT for a malformed record anywhere in buf, RSX_EINVALID if len is
 * more than half the ring, -EAGAIN / the stall error (NONBLOCK and the ring
 * is full), or the sticky error of a FAILED writer; nothing is appended
 * (and buf is untouched) on failure. With RSX_WAL_APPEND_DEFER the records
 * are in the ring but not yet shown to the flusher: a later append without it,
 * rsx_wal_publish(), rsx_wal_flush() or rsx_wal_wait_durable() publishes them
 * (an appender that processes a batch of requests publishes once per batch).
 */
#define RSX_WAL_APPEND_DEFER 0x1u
int64_t rsx_wal_append_framed(struct rsx_wal *w, void *buf, size_t len, uint64_t ts_ns,
			      uint64_t *first_seq, unsigned flags);
/* Show every record appended so far to the flusher (one store, at most one wake-up). */
void rsx_wal_publish(struct rsx_wal *w);

/* Watermarks (acquire loads). The tip file covers a durable seq before this returns it. */
uint64_t rsx_wal_next_seq(const struct rsx_wal *w);
uint64_t rsx_wal_written_seq(const struct rsx_wal *w);
uint64_t rsx_wal_durable_seq(const struct rsx_wal *w);
/* The durable watermark's address, for a hot loop: read with an acquire load. */
const uint64_t *rsx_wal_durable_ptr(const struct rsx_wal *w);

/*
 * Wait until durable_seq >= seq. timeout_ns < 0 waits forever. Returns 0,
 * -ETIMEDOUT, -ECANCELED (the writer is being closed), or the sticky error of
 * a FAILED writer. In MANUAL mode it flushes instead of waiting.
 */
int rsx_wal_wait_durable(struct rsx_wal *w, uint64_t seq, int64_t timeout_ns);

/*
 * Make everything appended so far durable: MANUAL mode writes and syncs
 * (one batch per file); threaded mode waits for the flusher. Returns 0 or
 * the error (-ENOSPC while stalled in MANUAL mode, the sticky error).
 */
int rsx_wal_flush(struct rsx_wal *w);

/* A snapshot of the counters and state. Returns 0. */
int rsx_wal_stats(const struct rsx_wal *w, struct rsx_wal_stats *out);

/*
 * The highest seq dir's stream ever reported durable, from what its writer
 * (the tip) and its consumers (their stored positions) left there; fills
 * every field but last_seq. Returns 0 or -errno.
 */
int rsx_wal_published(const char *dir, uint32_t stream_id, struct rsx_wal_loss *out);

/* ------------------------------------------------------- consumer positions */

/*
 * Whether name may be registered: 1..63 chars of [A-Za-z0-9._-], not
 * starting with '.', not ending in ".tmp" (how a position is written).
 * Returns 0 or RSX_EINVALID.
 */
int rsx_wal_consumer_name_check(const char *name);
/*
 * Register / move a consumer's position (dir/consumers/name = seq), written
 * atomically. Returns 0, RSX_EINVALID (a name rsx_wal_consumer_name_check
 * refuses), -errno.
 */
int rsx_wal_consumer_set(const char *dir, const char *name, uint64_t seq);
/*
 * Read a position into *seq. Any name retention honours is accepted (every
 * plain file in consumers/ but NAME.tmp, even one that predates the rules).
 * Returns 0, -ENOENT (not registered), RSX_EINVALID (no position in it).
 */
int rsx_wal_consumer_get(const char *dir, const char *name, uint64_t *seq);
/* Unregister (any name rsx_wal_consumer_get takes). Returns 0 or -ENOENT. */
int rsx_wal_consumer_drop(const char *dir, const char *name);

/* -------------------------------------------------------------------- scan */

#define RSX_WAL_SCAN_ANYSEQ	0x01u	/* do not check seq continuity */
#define RSX_WAL_SCAN_ZEROS	0x02u	/* a zero tail is a clean end (preallocated file) */
#define RSX_WAL_SCAN_CONTROL	0x04u	/* stop (not fail) at a valid control record */

enum rsx_wal_stop {
	RSX_WAL_STOP_END = 0,	/* consumed every byte */
	RSX_WAL_STOP_FULL,	/* the entry array is full */
	RSX_WAL_STOP_PARTIAL,	/* fewer bytes left than the next record needs */
	RSX_WAL_STOP_ZEROS,	/* the rest is zero bytes */
	RSX_WAL_STOP_CONTROL,	/* a control record at end */
	RSX_WAL_STOP_BAD,	/* an invalid record at end: see error */
};

/* One index entry per record: numpy ENTRY_DTYPE mirrors it. */
struct rsx_wal_entry {
	uint64_t offset;	/* of the record in the scanned buffer */
	uint64_t seq;
	uint16_t type;
	uint16_t size;		/* header + payload */
	uint32_t stream_id;
};

struct rsx_wal_scan {
	uint64_t next_seq;	/* in: seq the next record must carry (0 = any); out: after the last valid */
	uint64_t end;		/* out: offset just past the last valid record */
	uint64_t count;		/* out: entries filled */
	uint64_t found_seq;	/* out: seq carried by the record that stopped the scan, if readable */
	uint32_t flags;		/* in: RSX_WAL_SCAN_* */
	uint32_t stream_id;	/* in: required stream id (0 = any) */
	int32_t stop;		/* out: enum rsx_wal_stop */
	int32_t error;		/* out: why STOP_BAD (RSX_ECRC, RSX_ESEQ, RSX_ESTREAM, ...), else 0 */
	int32_t valid;		/* out: the record that stopped the scan passed every record check
				   (it is a whole, CRC-valid record of the wrong seq, stream or class) */
	uint32_t _pad0;
};

/*
 * Index the records at the start of buf (n bytes) into entries (cap of
 * them; cap 0 stops with FULL at once unless buf is empty). Returns the
 * number of entries filled (also st->count);
 * st says where and why it stopped. Never reads past buf + n, never looks
 * past the first invalid record.
 */
int64_t rsx_wal_scan(const void *buf, size_t n, struct rsx_wal_entry *entries, size_t cap,
		     struct rsx_wal_scan *st);

/*
 * Copy the records of one type, in order, from buf (indexed by entries[0..n))
 * to out, back to back (cap bytes). Returns how many were copied. Python's
 * per-type numpy tables of a mixed buffer are built with it.
 */
size_t rsx_wal_gather(const void *buf, const struct rsx_wal_entry *entries, size_t n,
		      uint16_t type, void *out, size_t cap);

/* ----------------------------------------------------------------- reader */

struct rsx_wal_break {
	uint64_t offset;	/* in the file */
	uint64_t last_seq;	/* last good seq before the break (0 = none) */
	uint64_t found_seq;	/* seq carried by the offending record if readable, else 0 */
	int32_t error;		/* RSX_ECRC, RSX_ESHORT (torn), RSX_ESEQ (gap), ... */
	uint32_t tail;		/* 1: a torn tail of the newest file, no live writer; 0: corruption/gap */
	char file[256];		/* the file's name in the directory */
};

struct rsx_wal_set_info {
	uint64_t oldest_seq;	/* first seq retained (0 = no record at all) */
	uint64_t durable_seq;	/* the tip: last seq readable now (0 = none) */
	uint64_t next_seq;	/* the seq the stream will write next (durable + 1) */
	uint32_t stream_id;
	uint32_t nfiles;
	int32_t has_tip;	/* a writer tip file exists */
	int32_t writer_state;	/* from the tip, 0 without one */
	int32_t writer_error;
	uint32_t writer_pid;
	int32_t writer_alive;	/* the tip's writer pid holds the lock right now */
	uint32_t _pad0;
};

struct rsx_wal_set;
struct rsx_wal_reader;

/*
 * Open the file set of one stream directory (stream_id 0: infer it; the
 * directory must then hold one stream). Returns 0, -ENOENT (no such
 * directory), RSX_ESTREAM (several streams and none chosen), -errno.
 */
int rsx_wal_set_open(struct rsx_wal_set **out, const char *dir, uint32_t stream_id);
/* Re-list the files (new rotations, deletions). Returns 0 or -errno. */
int rsx_wal_set_refresh(struct rsx_wal_set *s);
/* Free the set. Every reader of it must be closed first. */
void rsx_wal_set_close(struct rsx_wal_set *s);
/* Re-read the tip and fill *out. Returns 0. */
int rsx_wal_set_info(struct rsx_wal_set *s, struct rsx_wal_set_info *out);
/*
 * The durable seq the writer's tip publishes right now (0 without a tip): a
 * memory read of the mapped tip, no syscall; for pollers.
 */
uint64_t rsx_wal_set_tip_seq(struct rsx_wal_set *s);
/* Path of the i-th file (oldest first) and its first seq; NULL past the end. */
const char *rsx_wal_set_file(struct rsx_wal_set *s, uint32_t i, uint64_t *first_seq);

/* A reader positioned at the oldest record. Returns 0 or -ENOMEM. */
int rsx_wal_reader_open(struct rsx_wal_reader **out, struct rsx_wal_set *s);
void rsx_wal_reader_close(struct rsx_wal_reader *r);

/*
 * Position the reader so the next record read is exactly seq (0 = oldest).
 * Returns 0, or RSX_EGONE (seq below the oldest retained record). A seq above
 * the tip is accepted: reads return nothing until the stream reaches it.
 */
int rsx_wal_reader_seek(struct rsx_wal_reader *r, uint64_t seq);

/* The seq the next read returns first. */
uint64_t rsx_wal_reader_next_seq(const struct rsx_wal_reader *r);

/*
 * Copy whole records, in seq order and up to the durable bound, into buf
 * (cap bytes; at least RSX_RECORD_MAX) and one entry per record into entries
 * (ecap; offsets are into buf). Returns the number of records (0 = caught
 * up), or after the records before it a break error (RSX_ECRC, RSX_ESEQ, ...;
 * details from rsx_wal_reader_break), RSX_EGONE if the file holding the next
 * seq was deleted. *nbytes gets the bytes copied.
 */
int64_t rsx_wal_reader_read(struct rsx_wal_reader *r, void *buf, size_t cap,
			    struct rsx_wal_entry *entries, size_t ecap, size_t *nbytes);

/* Where the last break was. Returns 0, or -ENOENT when there was none. */
int rsx_wal_reader_break(const struct rsx_wal_reader *r, struct rsx_wal_break *out);

/*
 * Copy the record with this seq into out (cap >= its size). Cheap to call
 * repeatedly (section 3.2 of specs/wal.md); moves the reader to seq + 1.
 * Returns the record size, RSX_EGONE, -EAGAIN (not durable yet), RSX_ESHORT
 * (cap too small), or a break error.
 */
int rsx_wal_read_seq(struct rsx_wal_reader *r, uint64_t seq, void *out, size_t cap);

/* -------------------------------------------------------------------- tip */

#define RSX_WAL_TIP_MAGIC 0x31504954574c5352ull	/* "RSXWTIP1" little-endian */

struct rsx_wal_tip {
	uint64_t magic;
	uint64_t version;		/* seqlock: odd while the writer updates */
	uint32_t stream_id;
	uint32_t writer_pid;
	int32_t state;
	int32_t error;
	uint64_t durable_seq;
	uint64_t active_first_seq;
	uint64_t active_durable_bytes;
	uint64_t appended_seq;
	uint64_t oldest_seq;
	uint64_t updated_ns;
	uint64_t batches;
	uint64_t records;
	uint64_t bytes;
	uint64_t stalls;
	uint64_t stall_ns;
	uint64_t sync_ns_last;
	uint64_t sync_ns_max;
	uint64_t retention_blocked_seq;
};

/*
 * Read dir's tip for stream_id consistently (retries while the writer
 * updates it). Returns 0, -ENOENT (no tip), RSX_EINVALID (not a tip file).
 */
int rsx_wal_tip_read(const char *dir, uint32_t stream_id, struct rsx_wal_tip *out);

#endif
