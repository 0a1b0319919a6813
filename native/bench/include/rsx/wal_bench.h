/*
 * rsx/wal_bench.h - benchmark drivers behind `rsx bench wal` (not part of
 * the WAL's API). Each returns 0 or a negative error.
 */
#ifndef RSX_WAL_BENCH_H
#define RSX_WAL_BENCH_H

#include <stdint.h>

#include "rsx/wal.h"

struct rsx_wal_bench {
	uint64_t records;
	uint64_t elapsed_ns;	/* the timed section */
	uint64_t batches;
	uint64_t stalls;
	uint64_t stall_ns;
	uint64_t sync_ns_max;
	uint64_t sync_ns_total;
	uint64_t rotations;
};

/*
 * In-memory append: n ORDER_INSERTED records (64-byte payload, 80-byte
 * record) appended in rounds of `round` into a ring sized for one round;
 * only the appends are timed (between rounds the ring is drained to dir,
 * unsynced, untimed).
 */
int rsx_wal_bench_append(const char *dir, uint64_t n, uint64_t round, struct rsx_wal_bench *out);

/*
 * Durable throughput: the flusher thread syncs in groups while one appender
 * appends n records as fast as it can; timed from the first append until the
 * last record is durable.
 */
int rsx_wal_bench_durable(const char *dir, uint64_t n, uint32_t flags, uint64_t file_size,
			  struct rsx_wal_bench *out);

/*
 * Latency at a steady rate (open loop): lat_ns[i] = time record i became
 * durable - time its append call began; lat_sched_ns[i] (optional) = the
 * same from the time it was scheduled (coordinated-omission safe: includes
 * any lateness of the load generator itself).
 */
int rsx_wal_bench_latency(const char *dir, uint64_t n, uint64_t rate, uint32_t flags,
			  uint32_t batch_records, uint32_t batch_us, uint64_t *lat_ns,
			  uint64_t *lat_sched_ns, struct rsx_wal_bench *out);

/*
 * The baseline: append `size` bytes to path with write() then fsync()
 * (full = 1) or fdatasync() (full = 0), n times at `rate` per second (0 =
 * back to back); lat_ns[i] = that write + sync. path is removed after.
 */
int rsx_wal_bench_bare_sync(const char *path, uint64_t n, uint32_t size, uint64_t rate,
			    int full, uint64_t *lat_ns);

#endif
