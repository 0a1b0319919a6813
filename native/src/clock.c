/*
 * clock.c - TSC calibration against CLOCK_MONOTONIC_RAW, and the fallback.
 *
 * An anchor is a (TSC, CLOCK_MONOTONIC_RAW) pair: rdtsc, clock_gettime,
 * rdtsc, each rdtsc fenced so it cannot drift across the call. Of 64 tries
 * we keep the one with the narrowest bracket (a try interrupted by the
 * hypervisor or a preemption shows up as a wide bracket): its midpoint is
 * the TSC of the anchor, half its width the uncertainty u. Two anchors a
 * window apart give the rate, good to (u0 + u1) / window.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rsx/clock.h"
#include "rsx/errors.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

struct rsx_clock_cal rsx_clock_g;

#define ANCHOR_TRIES 64

uint64_t rsx_clock_gettime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int rsx_clock_tsc_invariant(void)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;
	if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007)
		return 0;
	__cpuid(0x80000007, a, b, c, d);
	return (d >> 8) & 1;
#else
	return 0;
#endif
}

/* 1 if the kernel's clocksource is the TSC (it validated cross-CPU sync). */
static int kernel_uses_tsc(void)
{
	char buf[32] = {0};
	int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		      O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n >= 3 && strncmp(buf, "tsc", 3) == 0 && (buf[3] == '\n' || buf[3] == 0);
}

#if defined(__x86_64__)
struct anchor {
	uint64_t tsc;		/* bracket midpoint */
	uint64_t ns;
	uint64_t width;		/* bracket, in TSC ticks */
};

static int take_anchor(struct anchor *best)
{
	best->width = UINT64_MAX;
	for (int i = 0; i < ANCHOR_TRIES; i++) {
		struct timespec ts;
		_mm_lfence();
		uint64_t t1 = __rdtsc();
		_mm_lfence();
		if (clock_gettime(CLOCK_MONOTONIC_RAW, &ts) < 0)
			return -errno;
		_mm_lfence();
		uint64_t t2 = __rdtsc();
		_mm_lfence();
		if (t2 - t1 < best->width) {
			best->width = t2 - t1;
			best->tsc = t1 + (t2 - t1) / 2;
			best->ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		}
	}
	return 0;
}

/* Fill the rate fields of cal from two anchors. */
static void fit(struct rsx_clock_cal *cal, const struct anchor *a0, const struct anchor *a1)
{
	uint64_t dtsc = a1->tsc - a0->tsc, dns = a1->ns - a0->ns;
	cal->tsc0 = a0->tsc;
	cal->ns0 = a0->ns;
	cal->mult = (uint64_t)((((unsigned __int128)dns << 32) + dtsc / 2) / dtsc);
	cal->tsc_hz = (uint64_t)((unsigned __int128)dtsc * 1000000000ull / dns);
	cal->window_ns = dns;
	/* half-widths in ns */
	uint64_t u0 = (uint64_t)(((unsigned __int128)a0->width * cal->mult) >> 33);
	uint64_t u1 = (uint64_t)(((unsigned __int128)a1->width * cal->mult) >> 33);
	cal->u_ns = (uint32_t)(u0 > UINT32_MAX ? UINT32_MAX : u0 + 1);
	uint64_t ppb = ((u0 + u1 + 1) * 1000000000ull + dns - 1) / dns;
	cal->ppb = (uint32_t)(ppb > UINT32_MAX ? UINT32_MAX : ppb);
	cal->source = RSX_CLOCK_TSC;
	cal->ready = 1;
}
#endif

int rsx_clock_calibrate(struct rsx_clock_cal *out, uint64_t window_ns)
{
#if defined(__x86_64__)
	if (!rsx_clock_tsc_invariant())
		return RSX_EINVALID;
	if (window_ns == 0)
		window_ns = RSX_CLOCK_DEFAULT_WINDOW_NS;
	struct anchor a0, a1;
	int rc = take_anchor(&a0);
	if (rc < 0)
		return rc;
	/* spin rather than sleep: a sleeping vCPU may wake on another core */
	while (rsx_clock_gettime_ns() - a0.ns < window_ns)
		;
	rc = take_anchor(&a1);
	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	fit(out, &a0, &a1);
	return 0;
#else
	(void)out;
	(void)window_ns;
	return RSX_EINVALID;
#endif
}

int rsx_clock_use(const struct rsx_clock_cal *cal)
{
	if (cal->source == RSX_CLOCK_TSC) {
		if (!rsx_clock_tsc_invariant() || cal->mult == 0)
			return RSX_EINVALID;
	} else if (cal->source != RSX_CLOCK_GETTIME) {
		return RSX_EINVALID;
	}
	rsx_clock_g = *cal;
	rsx_clock_g.ready = 1;
	return 0;
}

static int use_gettime(void)
{
	struct rsx_clock_cal cal;
	memset(&cal, 0, sizeof(cal));
	cal.source = RSX_CLOCK_GETTIME;
	rsx_clock_use(&cal);
	return RSX_CLOCK_GETTIME;
}

int rsx_clock_init(void)
{
	if (rsx_clock_g.ready)
		return rsx_clock_g.source;
	const char *force = getenv("RSX_CLOCK_SOURCE");
	if ((force && strcmp(force, "gettime") == 0) || !rsx_clock_tsc_invariant() || !kernel_uses_tsc())
		return use_gettime();
	const char *shared = getenv("RSX_CLOCK_CAL");
	if (shared && *shared) {
		int rc = rsx_clock_import(shared);
		return rc < 0 ? rc : rsx_clock_g.source;
	}
	struct rsx_clock_cal cal;
	if (rsx_clock_calibrate(&cal, 0) < 0)
		return use_gettime();
	rsx_clock_use(&cal);
	return rsx_clock_g.source;
}

int rsx_clock_get(struct rsx_clock_cal *out)
{
	if (!rsx_clock_g.ready)
		rsx_clock_init();
	*out = rsx_clock_g;
	return 0;
}

int rsx_clock_recalibrate(int64_t *step_ns)
{
#if defined(__x86_64__)
	if (!rsx_clock_g.ready)
		rsx_clock_init();
	if (rsx_clock_g.source != RSX_CLOCK_TSC)
		return RSX_EINVALID;
	struct anchor a0, a1;
	a0.tsc = rsx_clock_g.tsc0;
	a0.ns = rsx_clock_g.ns0;
	/* recover the anchor's bracket from its stored uncertainty */
	a0.width = (((uint64_t)rsx_clock_g.u_ns << 33) + rsx_clock_g.mult - 1) / rsx_clock_g.mult;
	int rc = take_anchor(&a1);
	if (rc < 0)
		return rc;
	uint64_t before = rsx_clock_convert(&rsx_clock_g, a1.tsc);
	struct rsx_clock_cal cal = rsx_clock_g;
	fit(&cal, &a0, &a1);
	if (step_ns)
		*step_ns = (int64_t)(rsx_clock_convert(&cal, a1.tsc) - before);
	rsx_clock_g = cal;
	return 0;
#else
	(void)step_ns;
	return RSX_EINVALID;
#endif
}

int64_t rsx_clock_offset_ns(void)
{
	if (!rsx_clock_g.ready)
		rsx_clock_init();
	int64_t best = 0;
	uint64_t best_width = UINT64_MAX;
	for (int i = 0; i < 16; i++) {
		uint64_t a = rsx_clock_now_ns();
		uint64_t k = rsx_clock_gettime_ns();
		uint64_t b = rsx_clock_now_ns();
		if (b - a < best_width) {
			best_width = b - a;
			best = (int64_t)(a + (b - a) / 2 - k);
		}
	}
	return best;
}

int rsx_clock_export(char *buf, size_t cap)
{
	if (!rsx_clock_g.ready)
		rsx_clock_init();
	const struct rsx_clock_cal *c = &rsx_clock_g;
	int n = snprintf(buf, cap, "%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%u:%u",
			 c->tsc0, c->ns0, c->mult, c->tsc_hz, c->window_ns, c->u_ns, c->ppb);
	if (n < 0 || (size_t)n >= cap)
		return RSX_EINVALID;
	return n;
}

int rsx_clock_import(const char *text)
{
	struct rsx_clock_cal cal;
	int used = 0;
	memset(&cal, 0, sizeof(cal));
	if (sscanf(text, "%" SCNu64 ":%" SCNu64 ":%" SCNu64 ":%" SCNu64 ":%" SCNu64 ":%u:%u%n",
		   &cal.tsc0, &cal.ns0, &cal.mult, &cal.tsc_hz, &cal.window_ns, &cal.u_ns, &cal.ppb,
		   &used) != 7 || text[used] != 0 || cal.mult == 0)
		return RSX_EINVALID;
	cal.source = RSX_CLOCK_TSC;
	return rsx_clock_use(&cal);
}

uint64_t rsx_clock_now_ns(void)
{
	if (__builtin_expect(!rsx_clock_g.ready, 0))
		rsx_clock_init();
#if defined(__x86_64__)
	if (rsx_clock_g.source == RSX_CLOCK_TSC)
		return rsx_clock_convert(&rsx_clock_g, __rdtsc());
#endif
	return rsx_clock_gettime_ns();
}

uint64_t rsx_clock_tsc(void)
{
#if defined(__x86_64__)
	return __rdtsc();
#else
	return 0;
#endif
}

uint64_t rsx_clock_tsc_to_ns(uint64_t tsc)
{
	if (!rsx_clock_g.ready)
		rsx_clock_init();
	if (rsx_clock_g.source != RSX_CLOCK_TSC)
		return 0;
	return rsx_clock_convert(&rsx_clock_g, tsc);
}
