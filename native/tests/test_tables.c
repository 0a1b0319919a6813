/* The code tables: unique codes, names and messages for every entry. */
#include <string.h>

#include "rsx/errors.h"
#include "rsx/types.h"
#include "t_helpers.h"

typedef int (*at_fn)(unsigned, int *);
typedef const char *(*name_fn)(int);

static unsigned check_table(at_fn at, name_fn name, name_fn message)
{
	int code, other;
	unsigned n = 0;
	while (at(n, &code) == 0) {
		T_CHECK(name(code) != NULL && message(code) != NULL);
		for (unsigned j = 0; j < n; j++) {
			at(j, &other);
			T_CHECK(other != code);
			T_CHECK(strcmp(name(other), name(code)) != 0);
		}
		n++;
	}
	return n;
}

int main(void)
{
	T_CHECK(check_table(rsx_err_at, rsx_err_name, rsx_err_message) >= 8);
	T_CHECK(check_table(rsx_reason_at, rsx_reason_name, rsx_reason_message) >= 40);
	T_EQ(check_table(rsx_status_at, rsx_status_name, rsx_status_message), 5);

	int code;
	for (unsigned i = 0; rsx_err_at(i, &code) == 0; i++)
		T_CHECK(code <= -5000);	/* never collides with -errno */
	T_CHECK(strcmp(rsx_err_name(RSX_ECRC), "CRC") == 0);
	T_CHECK(rsx_err_name(-5) == NULL);
	T_CHECK(strcmp(rsx_reason_name(RSX_REASON_PRICE_OFF_TICK), "PRICE_OFF_TICK") == 0);
	T_CHECK(rsx_reason_name(9999) == NULL);
	T_EQ(rsx_status_is_terminal(RSX_STATUS_FILLED), 1);
	T_EQ(rsx_status_is_terminal(RSX_STATUS_RESTING), 0);
	T_EQ(rsx_status_is_terminal(99), RSX_EINVALID);
	T_DONE();
}
