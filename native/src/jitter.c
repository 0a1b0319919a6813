/*
 * jitter.c - the hiccups loop: spin on one CPU, record every gap in the clock into a histogram.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "rsx/jitter.h"

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	/* vDSO on TSC clocksources: ~20 ns, no syscall, so the loop itself is short. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int rsx_jitter_run(int cpu, uint64_t duration_ns, uint64_t threshold_ns,
		   struct rsx_hist *hist, struct rsx_jitter_result *out)
{
	cpu_set_t old, want;

	if (cpu < 0 || cpu >= CPU_SETSIZE || duration_ns == 0 || threshold_ns == 0 || !hist || !out)
		return -EINVAL;
	if (sched_getaffinity(0, sizeof(old), &old) < 0)
		return -errno;
	CPU_ZERO(&want);
	CPU_SET(cpu, &want);
	if (sched_setaffinity(0, sizeof(want), &want) < 0)
		return -errno;
	sched_yield(); /* make sure we are running on the new CPU before the first read */

	struct rsx_jitter_result r;
	memset(&r, 0, sizeof(r));
	r.min_period_ns = UINT64_MAX;
	r.cpu = sched_getcpu();
	if (r.cpu != cpu)
		r.migrated = 1;

	const uint64_t start = now_ns();
	const uint64_t end = start + duration_ns;
	uint64_t prev = start, now = start;
	while (now < end) {
		now = now_ns();
		uint64_t d = now - prev;
		prev = now;
		r.loops++;
		if (d < r.min_period_ns)
			r.min_period_ns = d;
		if (d > threshold_ns) {
			r.gaps++;
			r.lost_ns += d;
			if (d > r.max_gap_ns)
				r.max_gap_ns = d;
			rsx_hist_record(hist, d);
		}
	}
	r.elapsed_ns = now - start;
	if (sched_getcpu() != cpu)
		r.migrated = 1;
	if (r.min_period_ns == UINT64_MAX)
		r.min_period_ns = 0;
	*out = r;

	if (sched_setaffinity(0, sizeof(old), &old) < 0)
		return -errno;
	return 0;
}
