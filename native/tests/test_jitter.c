/* jitter: gaps are stored up to the cap and counted beyond it; affinity is restored; bad args refused. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "rsx/jitter.h"
#include "t_helpers.h"

int main(void)
{
	struct rsx_jitter_result r;
	uint64_t buf[4];
	cpu_set_t before, after;
	int cpu;

	if (sched_getaffinity(0, sizeof(before), &before) < 0)
		return T_EXIT_FAIL;
	for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &before); cpu++)
		;

	T_EQ(rsx_jitter_run(-1, 1000000, 1000, buf, 4, &r), -EINVAL);
	T_EQ(rsx_jitter_run(cpu, 0, 1000, buf, 4, &r), -EINVAL);
	T_EQ(rsx_jitter_run(cpu, 1000000, 0, buf, 4, &r), -EINVAL);
	T_EQ(rsx_jitter_run(cpu, 1000000, 1000, NULL, 4, &r), -EINVAL);
	T_EQ(rsx_jitter_run(cpu, 1000000, 1000, buf, 4, NULL), -EINVAL);
	T_EQ(rsx_jitter_run(CPU_SETSIZE - 1, 1000000, 1000, buf, 4, &r), -EINVAL); /* not online */

	/* 30 ms with a 50 ns threshold: far more gaps than 4 slots (the loop alone is ~20-40 ns,
	 * but the 4 ms tick, cache misses and the hypervisor all exceed 50 ns many times). */
	T_EQ(rsx_jitter_run(cpu, 30000000, 50, buf, 4, &r), 0);
	T_CHECK(r.loops > 1000);
	T_EQ(r.cpu, cpu);
	T_EQ(r.migrated, 0);
	T_CHECK(r.elapsed_ns >= 30000000);
	T_CHECK(r.stored <= 4);
	T_EQ(r.gaps, r.stored + r.overflow);
	T_CHECK(r.gaps > 4 && r.overflow > 0);
	uint64_t sum = 0;
	for (uint64_t i = 0; i < r.stored; i++) {
		T_CHECK(buf[i] > 50);
		T_CHECK(buf[i] <= r.max_gap_ns);
		sum += buf[i];
	}
	T_CHECK(r.lost_ns >= sum);
	T_CHECK(r.lost_ns <= r.elapsed_ns);
	T_CHECK(r.min_period_ns < 50000);

	/* cap 0 is allowed: count only */
	T_EQ(rsx_jitter_run(cpu, 5000000, 50, NULL, 0, &r), 0);
	T_EQ(r.stored, 0);
	T_EQ(r.overflow, r.gaps);

	if (sched_getaffinity(0, sizeof(after), &after) < 0)
		return T_EXIT_FAIL;
	T_CHECK(CPU_EQUAL(&before, &after));
	T_DONE();
}
