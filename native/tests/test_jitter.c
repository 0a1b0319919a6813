/* jitter: every gap lands in the histogram; affinity is restored; bad args refused. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "rsx/hist.h"
#include "rsx/jitter.h"
#include "t_helpers.h"

int main(void)
{
	struct rsx_jitter_result r;
	struct rsx_hist *h = NULL;
	cpu_set_t before, after;
	int cpu;

	if (sched_getaffinity(0, sizeof(before), &before) < 0)
		return T_EXIT_FAIL;
	for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &before); cpu++)
		;
	T_EQ(rsx_hist_new(1, 3600000000000LL, 3, &h), 0);

	T_EQ(rsx_jitter_run(-1, 1000000, 1000, h, &r), -EINVAL);
	T_EQ(rsx_jitter_run(cpu, 0, 1000, h, &r), -EINVAL);
	T_EQ(rsx_jitter_run(cpu, 1000000, 0, h, &r), -EINVAL);
	T_EQ(rsx_jitter_run(cpu, 1000000, 1000, NULL, &r), -EINVAL);
	T_EQ(rsx_jitter_run(cpu, 1000000, 1000, h, NULL), -EINVAL);
	T_EQ(rsx_jitter_run(CPU_SETSIZE - 1, 1000000, 1000, h, &r), -EINVAL); /* not online */
	T_EQ(h->total, 0);	/* refused calls record nothing */

	/* 30 ms with a 50 ns threshold: many gaps (the 4 ms tick, cache misses, the hypervisor). */
	T_EQ(rsx_jitter_run(cpu, 30000000, 50, h, &r), 0);
	T_CHECK(r.loops > 1000);
	T_EQ(r.cpu, cpu);
	T_EQ(r.migrated, 0);
	T_CHECK(r.elapsed_ns >= 30000000);
	T_CHECK(r.gaps > 4);
	T_EQ(h->total, (int64_t)r.gaps);	/* every gap recorded, none left out */
	T_EQ(h->max, (int64_t)r.max_gap_ns);
	T_CHECK(h->min > 50);
	T_CHECK(r.lost_ns >= r.gaps * 50 && r.lost_ns <= r.elapsed_ns);
	T_CHECK(r.min_period_ns < 50000);

	/* A second run accumulates into the same histogram. */
	uint64_t first = r.gaps;
	T_EQ(rsx_jitter_run(cpu, 5000000, 50, h, &r), 0);
	T_EQ(h->total, (int64_t)(first + r.gaps));

	if (sched_getaffinity(0, sizeof(after), &after) < 0)
		return T_EXIT_FAIL;
	T_CHECK(CPU_EQUAL(&before, &after));
	rsx_hist_free(h);
	T_DONE();
}
