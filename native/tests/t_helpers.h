/*
 * t_helpers.h - tiny test harness for native/tests: one program per concern,
 * exit 0 = pass, 1 = fail, 77 = skip (the automake convention liburing uses).
 */
#ifndef T_HELPERS_H
#define T_HELPERS_H

#include <stdio.h>
#include <stdlib.h>

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

static int t_failures;

#define T_CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		t_failures++; \
	} \
} while (0)

#define T_EQ(a, b) do { \
	long long t_a = (long long)(a), t_b = (long long)(b); \
	if (t_a != t_b) { \
		fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", \
			__FILE__, __LINE__, #a, #b, t_a, t_b); \
		t_failures++; \
	} \
} while (0)

#define T_DONE() do { \
	if (t_failures) { \
		fprintf(stderr, "%s: %d check(s) failed\n", __FILE__, t_failures); \
		return T_EXIT_FAIL; \
	} \
	return T_EXIT_PASS; \
} while (0)

#endif
