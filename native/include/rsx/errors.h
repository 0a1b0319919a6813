/*
 * rsx/errors.h - return codes of the C core.
 *
 * Every function returns >= 0 on success and a negative value on failure:
 * -errno (-1..-4095) for kernel errors, or one of the RSX_E* codes below.
 */
#ifndef RSX_ERRORS_H
#define RSX_ERRORS_H

enum rsx_err {
	RSX_OK = 0,
#define RSX_ERR(name, value, msg) RSX_E##name = value,
#include "errors.def"
#undef RSX_ERR
};

/* Name ("SHORT") and message of a code, or NULL if `code` is not an RSX_E*. */
const char *rsx_err_name(int code);
const char *rsx_err_message(int code);

/* Name and message of a reason / status code, or NULL if unknown. */
const char *rsx_reason_name(int code);
const char *rsx_reason_message(int code);
const char *rsx_status_name(int code);
const char *rsx_status_message(int code);
int rsx_status_is_terminal(int code);	/* 1, 0, or RSX_EINVALID */

/*
 * Walk the tables: the i-th defined code (i from 0) is stored in *code;
 * returns 0, or RSX_EINVALID when i is past the end.
 */
int rsx_err_at(unsigned i, int *code);
int rsx_reason_at(unsigned i, int *code);
int rsx_status_at(unsigned i, int *code);

#endif
