/*
 * risk_ledger.c - fees and realised PnL of fills after the fact, for the
 * history store, through the risk core's own leg and fee functions.
 */
#include "risk_internal.h"
#include "rsx/ledger.h"

size_t rsx_ledger_fill_fees(size_t n, const int64_t *price, const int64_t *qty, const int64_t *divisor,
			    const int32_t *taker_bps, const int32_t *maker_bps, int64_t *value,
			    int64_t *taker_fee, int64_t *maker_fee, uint8_t *ok)
{
	struct rsx_risk_symbol s;
	size_t bad = 0;
	memset(&s, 0, sizeof(s));
	for (size_t i = 0; i < n; i++) {
		int64_t v;
		value[i] = taker_fee[i] = maker_fee[i] = 0;
		ok[i] = 0;
		if (price[i] <= 0 || qty[i] <= 0 || divisor[i] <= 0 || taker_bps[i] < -10000 ||
		    taker_bps[i] > 10000 || maker_bps[i] < -10000 || maker_bps[i] > 10000) {
			bad++;
			continue;
		}
		s.divisor = divisor[i];
		if (risk_value(&s, price[i], qty[i], &v) < 0) {
			bad++;
			continue;
		}
		value[i] = v;
		taker_fee[i] = risk_fee(v, taker_bps[i]);
		maker_fee[i] = risk_fee(v, maker_bps[i]);
		ok[i] = 1;
	}
	return bad;
}

int rsx_ledger_replay(const struct rsx_ledger_leg *legs, size_t n, int64_t divisor, int64_t *net,
		      int64_t *cost, int64_t *realised, int64_t *leg_realised)
{
	struct rsx_risk_symbol s;
	int64_t nn = *net, nc = *cost;
	__int128 sum = 0;
	if (divisor <= 0)
		return RSX_EINVALID;
	memset(&s, 0, sizeof(s));
	s.divisor = divisor;
	for (size_t i = 0; i < n; i++) {
		const struct rsx_ledger_leg *l = &legs[i];
		int64_t v, re;
		if (l->price <= 0 || l->qty <= 0 || (l->dir != 1 && l->dir != -1))
			return RSX_EINVALID;
		if (risk_value(&s, l->price, l->qty, &v) < 0)
			return RSX_EOVERFLOW;
		if (risk_leg(&s, nn, nc, l->dir, l->price, l->qty, v, &nn, &nc, &re) < 0)
			return RSX_EOVERFLOW;
		sum += re;
		if (leg_realised)
			leg_realised[i] = re;
	}
	if (!fits64(sum))
		return RSX_EOVERFLOW;
	*net = nn;
	*cost = nc;
	*realised = (int64_t)sum;
	return 0;
}
