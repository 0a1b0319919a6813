/*
 * rsx/clock.h - a cheap monotonic nanosecond clock for latency stamps.
 *
 * Timeline: CLOCK_MONOTONIC_RAW (never stepped, never slewed), so stamps
 * from every process on one box are comparable. Read from the TSC when the
 * CPU says it is invariant and the kernel itself uses it as clocksource
 * (it has checked the TSCs are synchronised); else clock_gettime.
 * Calibration and its error: specs/latency.md section 2.
 */
#ifndef RSX_CLOCK_H
#define RSX_CLOCK_H

#include <stddef.h>
#include <stdint.h>

enum rsx_clock_source {
	RSX_CLOCK_GETTIME = 0,	/* clock_gettime(CLOCK_MONOTONIC_RAW) */
	RSX_CLOCK_TSC = 1,	/* calibrated TSC */
};

#define RSX_CLOCK_DEFAULT_WINDOW_NS 50000000ull	/* 50 ms */

struct rsx_clock_cal {
	uint64_t tsc0;		/* anchor: TSC count ... */
	uint64_t ns0;		/* ... and CLOCK_MONOTONIC_RAW ns at the same instant */
	uint64_t mult;		/* ns per TSC tick, x 2^32 */
	uint64_t tsc_hz;	/* measured TSC rate */
	uint64_t window_ns;	/* calibration baseline */
	uint32_t u_ns;		/* anchor uncertainty: half the narrowest rdtsc bracket */
	uint32_t ppb;		/* rate error bound, parts per billion */
	int32_t source;		/* enum rsx_clock_source */
	int32_t ready;		/* 1 once installed */
};

/* The process-wide calibration the inline readers use. */
extern struct rsx_clock_cal rsx_clock_g;

/* 1 if CPUID says the TSC is invariant (leaf 0x80000007 EDX bit 8), else 0. */
int rsx_clock_tsc_invariant(void);

/*
 * Choose the source and calibrate (or import $RSX_CLOCK_CAL), once per
 * process; later calls return the chosen source. $RSX_CLOCK_SOURCE=gettime
 * forces clock_gettime. Call before threads read the clock. Returns
 * enum rsx_clock_source (>= 0), or RSX_EINVALID for a malformed
 * $RSX_CLOCK_CAL.
 */
int rsx_clock_init(void);

/*
 * Measure a TSC calibration over window_ns (0 = default) without
 * installing it. Returns 0, RSX_EINVALID (no invariant TSC / not x86-64),
 * or -errno from clock_gettime.
 */
int rsx_clock_calibrate(struct rsx_clock_cal *out, uint64_t window_ns);

/* Install a calibration (source TSC or GETTIME). Returns 0 or RSX_EINVALID. */
int rsx_clock_use(const struct rsx_clock_cal *cal);

/* Copy the installed calibration (initialising if needed). Returns 0. */
int rsx_clock_get(struct rsx_clock_cal *out);

/*
 * Re-measure the rate over the whole time since the installed anchor (a
 * longer baseline, a smaller rate error) and install it. Stamps taken
 * before and after differ by up to the old error (the step is returned in
 * *step_ns when non-NULL). Returns 0, or RSX_EINVALID if the source is not TSC.
 */
int rsx_clock_recalibrate(int64_t *step_ns);

/*
 * Current distance of this clock from CLOCK_MONOTONIC_RAW, in ns (ours
 * minus the kernel's, measured with the narrowest of 16 brackets).
 */
int64_t rsx_clock_offset_ns(void);

/* Text form "tsc0:ns0:mult:tsc_hz:window_ns:u_ns:ppb" for $RSX_CLOCK_CAL. */
int rsx_clock_export(char *buf, size_t cap);	/* chars written or RSX_EINVALID */
int rsx_clock_import(const char *text);		/* 0 or RSX_EINVALID; installs it */

/* Exported readers (cffi, other languages). */
uint64_t rsx_clock_now_ns(void);
uint64_t rsx_clock_tsc(void);
uint64_t rsx_clock_tsc_to_ns(uint64_t tsc);	/* 0 when the source is not the TSC */
uint64_t rsx_clock_gettime_ns(void);	/* CLOCK_MONOTONIC_RAW, always */

#if defined(__x86_64__)
static inline uint64_t rsx_clock_rdtsc(void)
{
	return __builtin_ia32_rdtsc();
}
#endif

/* TSC count -> ns on the installed calibration (signed: counts before tsc0 work). */
static inline uint64_t rsx_clock_convert(const struct rsx_clock_cal *c, uint64_t tsc)
{
	__int128 d = (__int128)(int64_t)(tsc - c->tsc0) * (__int128)c->mult;
	return c->ns0 + (uint64_t)(int64_t)(d >> 32);
}

/* The hot-path reader: inline, a few ns on the TSC path. */
static inline uint64_t rsx_clock_now_inline(void)
{
#if defined(__x86_64__)
	if (__builtin_expect(rsx_clock_g.source == RSX_CLOCK_TSC, 1))
		return rsx_clock_convert(&rsx_clock_g, rsx_clock_rdtsc());
#endif
	return rsx_clock_now_ns();
}

#endif
