/*
 * rsx/jitter.h - measure how often, and for how long, a CPU is taken away from a spinning thread.
 *
 * The hiccups method (Rigtorp): a thread pinned to one CPU reads a cheap clock
 * in a tight loop; any gap between two consecutive reads longer than a
 * threshold is time the CPU spent elsewhere (an interrupt, a kernel thread,
 * another task, the hypervisor). Isolation is verified by this measurement,
 * not by reading configuration back.
 *
 * Every gap above the threshold is recorded into a caller-provided latency
 * histogram (rsx/hist.h): fixed memory, no allocation, and no gap is ever
 * left out (a gap beyond the histogram's range is recorded at its top and
 * counted as clamped by the histogram).
 */
#ifndef RSX_JITTER_H
#define RSX_JITTER_H

#include <stdint.h>

#include "hist.h"

struct rsx_jitter_result {
	uint64_t loops;         /* clock reads made */
	uint64_t gaps;          /* gaps above the threshold, each recorded in the histogram */
	uint64_t max_gap_ns;    /* longest gap */
	uint64_t lost_ns;       /* sum of every gap above the threshold */
	uint64_t min_period_ns; /* shortest interval between two reads: the loop's own cost */
	uint64_t elapsed_ns;    /* wall time of the loop */
	int32_t cpu;            /* the CPU the loop ran on */
	int32_t migrated;       /* 1 if the thread was seen on another CPU (pinning broken) */
};

/*
 * Pin the calling thread to `cpu`, spin for `duration_ns` reading
 * CLOCK_MONOTONIC (vDSO), record every gap > `threshold_ns` into `hist`
 * (which keeps what it already holds), then restore the thread's previous
 * CPU affinity.
 *
 * Returns 0 and fills *out; -EINVAL for a negative cpu, a zero duration or
 * threshold, a NULL hist or out; -errno when the kernel refuses the pinning
 * (EINVAL: CPU offline or outside the cpuset).
 */
int rsx_jitter_run(int cpu, uint64_t duration_ns, uint64_t threshold_ns,
		   struct rsx_hist *hist, struct rsx_jitter_result *out);

#endif
