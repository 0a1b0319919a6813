/*
 * tables.c - names and messages of return codes, reasons and statuses,
 * expanded from the .def tables so C, Python and specs/errors.md share one source.
 */
#include <stddef.h>

#include "rsx/errors.h"
#include "rsx/types.h"

struct entry {
	int code;
	const char *name;
	const char *message;
	int terminal;
};

static const struct entry errs[] = {
#define RSX_ERR(name, value, msg) { value, #name, msg, 0 },
#include "rsx/errors.def"
#undef RSX_ERR
};

static const struct entry reasons[] = {
#define RSX_REASON(name, code, msg) { code, #name, msg, 0 },
#include "rsx/reason.def"
#undef RSX_REASON
};

static const struct entry statuses[] = {
#define RSX_STATUS(name, code, terminal, msg) { code, #name, msg, terminal },
#include "rsx/status.def"
#undef RSX_STATUS
};

#define N(t) (sizeof(t) / sizeof((t)[0]))

static const struct entry *find(const struct entry *t, size_t n, int code)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].code == code)
			return &t[i];
	return NULL;
}

static int at(const struct entry *t, size_t n, unsigned i, int *code)
{
	if (i >= n)
		return RSX_EINVALID;
	*code = t[i].code;
	return 0;
}

const char *rsx_err_name(int code)
{
	const struct entry *e = find(errs, N(errs), code);
	return e ? e->name : NULL;
}

const char *rsx_err_message(int code)
{
	const struct entry *e = find(errs, N(errs), code);
	return e ? e->message : NULL;
}

const char *rsx_reason_name(int code)
{
	const struct entry *e = find(reasons, N(reasons), code);
	return e ? e->name : NULL;
}

const char *rsx_reason_message(int code)
{
	const struct entry *e = find(reasons, N(reasons), code);
	return e ? e->message : NULL;
}

const char *rsx_status_name(int code)
{
	const struct entry *e = find(statuses, N(statuses), code);
	return e ? e->name : NULL;
}

const char *rsx_status_message(int code)
{
	const struct entry *e = find(statuses, N(statuses), code);
	return e ? e->message : NULL;
}

int rsx_status_is_terminal(int code)
{
	const struct entry *e = find(statuses, N(statuses), code);
	return e ? e->terminal : RSX_EINVALID;
}

int rsx_err_at(unsigned i, int *code) { return at(errs, N(errs), i, code); }
int rsx_reason_at(unsigned i, int *code) { return at(reasons, N(reasons), i, code); }
int rsx_status_at(unsigned i, int *code) { return at(statuses, N(statuses), i, code); }
