/*
 * rsx/jitter.h - measure how often, and for how long, a CPU is taken away from a spinning thread.
 *
 * The hiccups method (Rigtorp): a thread pinned to one CPU reads a cheap clock
 * in a tight loop; any gap between two consecutive reads longer than a
 * threshold is time the CPU spent elsewhere (an interrupt, a kernel thread,
 * another task, the hypervisor). Isolation is verified by this measurement,
 * not by reading configuration back.
 *
 * Every gap above the threshold is stored in a caller-provided buffer; gaps
 * that do not fit are counted in `overflow` (and still counted in `gaps`,
 * `lost_ns` and `max_gap_ns`), never dropped silently.
 */
#ifndef RSX_JITTER_H
#define RSX_JITTER_H

#include <stdint.h>

struct rsx_jitter_result {
	uint64_t loops;         /* clock reads made */
	uint64_t gaps;          /* gaps above the threshold: stored + overflow */
	uint64_t stored;        /* gaps written into the buffer (<= cap) */
	uint64_t overflow;      /* gaps that did not fit into the buffer */
	uint64_t max_gap_ns;    /* longest gap, stored or not */
	uint64_t lost_ns;       /* sum of every gap above the threshold */
	uint64_t min_period_ns; /* shortest interval between two reads: the loop's own cost */
	uint64_t elapsed_ns;    /* wall time of the loop */
	int32_t cpu;            /* the CPU the loop ran on */
	int32_t migrated;       /* 1 if the thread was seen on another CPU (pinning broken) */
};

/*
 * Pin the calling thread to `cpu`, spin for `duration_ns` reading
 * CLOCK_MONOTONIC (vDSO), store every gap > `threshold_ns` into gaps[0..cap),
 * then restore the thread's previous CPU affinity.
 *
 * Returns 0 and fills *out; -EINVAL for a negative cpu, a zero duration or
 * threshold, a NULL out, or a NULL buffer with cap > 0; -errno when the
 * kernel refuses the pinning (EINVAL: CPU offline or outside the cpuset).
 */
int rsx_jitter_run(int cpu, uint64_t duration_ns, uint64_t threshold_ns,
		   uint64_t *gaps, uint64_t cap, struct rsx_jitter_result *out);

#endif
