/*
 * risk_margin.c - value, tiered margin, per-position caches and account sums,
 * symbol configuration and mark updates (specs/risk.md 1, 3.2, 5).
 */
#include "risk_internal.h"

static const int64_t pow10_tab[19] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
	10000000000, 100000000000, 1000000000000, 10000000000000, 100000000000000,
	1000000000000000, 10000000000000000, 100000000000000000, 1000000000000000000,
};

int risk_value(const struct rsx_risk_symbol *s, int64_t price, int64_t qty, int64_t *out)
{
	__int128 v = div128((__int128)price * qty, s->divisor);	/* price, qty >= 0: truncation is floor */
	if (!fits64(v))
		return RSX_EOVERFLOW;
	*out = (int64_t)v;
	return 0;
}

int rsx_risk_value(const struct rsx_risk *r, uint32_t symbol_id, int64_t price, int64_t qty, int64_t *out)
{
	const struct rsx_risk_symbol *s = risk_sym(r, symbol_id);
	if (!s || price < 0 || qty < 0)
		return RSX_EINVALID;
	return risk_value(s, price, qty, out);
}

/* Progressive tiers: each bracket's slice at its own rate, one floor at the end. */
int64_t risk_tier(const struct rsx_risk_symbol *s, int64_t notional, int which)
{
	const uint32_t *rate = which ? s->tier_mmr : s->tier_imr;
	__int128 acc = 0;
	int64_t prev = 0;
	uint32_t n = s->n_tiers;
	if (notional <= 0 || n == 0)
		return 0;
	for (uint32_t k = 0; k < n && notional > prev; k++) {
		int64_t top = notional < s->tier_bound[k] ? notional : s->tier_bound[k];
		acc += (__int128)(top - prev) * rate[k];
		prev = s->tier_bound[k];
	}
	if (notional > s->tier_bound[n - 1])
		acc += (__int128)(notional - s->tier_bound[n - 1]) * rate[n - 1];
	return (int64_t)div128(acc, 10000);	/* <= notional: fits */
}

int rsx_risk_tier_margin(const struct rsx_risk *r, uint32_t symbol_id, int64_t notional, int which, int64_t *out)
{
	const struct rsx_risk_symbol *s = risk_sym(r, symbol_id);
	if (!s || notional < 0 || (which != 0 && which != 1))
		return RSX_EINVALID;
	*out = risk_tier(s, notional, which);
	return 0;
}

int64_t risk_need(const struct rsx_risk *r, const struct rsx_risk_symbol *s, int64_t price, int64_t remaining)
{
	int64_t v;
	(void)r;
	if (remaining <= 0 || price <= 0)
		return 0;
	if (risk_value(s, price, remaining, &v) < 0)
		return I64_MAX / 4;	/* cannot happen for an order the ME validated */
	int32_t fee = s->cfg.taker_fee_bps > 0 ? s->cfg.taker_fee_bps : 0;
	__int128 need = div128((__int128)v * s->tier_imr[0], 10000) + div128((__int128)v * fee, 10000);
	return sat64(need);
}

int risk_pos_eval(const struct rsx_risk_symbol *s, int64_t net, int64_t cost, int64_t *value, int64_t *im, int64_t *mm)
{
	int sat = 0;
	int64_t v;
	if (net == 0) {
		*value = cost;	/* 0 for a consistent flat position */
		*im = *mm = 0;
		return 0;
	}
	if (s->mark > 0) {
		__int128 x = floordiv128((__int128)net * s->mark, s->divisor);
		if (!fits64(x)) {
			sat = 1;
			x = x > 0 ? I64_MAX : I64_MIN + 1;
		}
		v = (int64_t)x;
	} else {
		v = cost;	/* never priced: valued at entry, uPnL 0 */
	}
	*value = v;
	if (sat) {
		/* Absurd value: demand everything, so the account is blocked and liquidatable. */
		*im = *mm = I64_MAX;
		return 1;
	}
	int64_t notional = abs64sat(v);
	*im = risk_tier(s, notional, 0);
	*mm = risk_tier(s, notional, 1);
	return 0;
}

static void pos_store(struct rsx_risk *r, int32_t p, int64_t net, int64_t cost)
{
	struct rsx_risk_position *pos = &r->positions[p];
	struct rsx_risk_account *a = &r->accounts[pos->acct];
	const struct rsx_risk_symbol *s = &r->symbols[pos->symbol_id];
	int64_t v, im, mm;
	if (risk_pos_eval(s, net, cost, &v, &im, &mm))
		r->saturations++;
	a->value_sum += (__int128)v - pos->value;
	a->cost_sum += (__int128)cost - pos->cost;
	a->im_sum += (__int128)im - pos->im;
	a->mm_sum += (__int128)mm - pos->mm;
	pos->net = net;
	pos->cost = cost;
	pos->value = v;
	pos->im = im;
	pos->mm = mm;
}

void risk_pos_commit(struct rsx_risk *r, int32_t p, int64_t net, int64_t cost)
{
	pos_store(r, p, net, cost);
}

void risk_pos_refresh(struct rsx_risk *r, int32_t p)
{
	pos_store(r, p, r->positions[p].net, r->positions[p].cost);
}

__int128 risk_equity(const struct rsx_risk_account *a)
{
	return (__int128)a->collateral + a->value_sum - a->cost_sum;
}

/*
 * equity < MM_used. With no margin in use this is "equity < 0": a flat account
 * left with a negative balance (a reduce-only close at a loss, funding) is
 * caught too, so the insurance fund settles it instead of it lingering.
 */
int risk_liquidatable(const struct rsx_risk_account *a)
{
	return risk_equity(a) < a->mm_sum;
}

int rsx_risk_margin(const struct rsx_risk *r, int32_t acct, struct rsx_risk_margin *out)
{
	if (acct < 0 || (uint32_t)acct >= r->n_users)
		return RSX_EINVALID;
	const struct rsx_risk_account *a = &r->accounts[acct];
	__int128 eq = risk_equity(a);
	__int128 avail = eq - a->im_sum - a->frozen;
	out->collateral = a->collateral;
	out->frozen = a->frozen;
	out->equity = sat64(eq);
	out->im = sat64(a->im_sum);
	out->mm = sat64(a->mm_sum);
	out->available = sat64(avail);
	__int128 w = avail < a->collateral ? avail : a->collateral;
	out->withdrawable = w > 0 ? sat64(w) : 0;
	out->liquidatable = risk_liquidatable(a);
	int32_t n = 0;
	for (int32_t p = a->pos_head; p >= 0; p = r->positions[p].next)
		n += r->positions[p].net != 0;
	out->positions = n;
	return 0;
}

int rsx_risk_config_check(const struct rsx_config *rec, uint8_t collateral_decimals)
{
	struct rsx_symbol_config cfg;
	rsx_symbol_config_from_record(&cfg, rec);
	if (rsx_symbol_config_check(&cfg) != 0)
		return RSX_REASON_BAD_NUMBER;
	int e = (int)cfg.price_decimals + cfg.qty_decimals - collateral_decimals;
	if (e < 0 || e > 18)
		return RSX_REASON_VALUE_OUT_OF_RANGE;
	uint32_t iv = rec->funding_interval_s;
	if (iv != 0 && (iv > 7u * 86400 || (86400 % iv != 0 && iv % 86400 != 0)))
		return RSX_REASON_VALUE_OUT_OF_RANGE;	/* boundaries must fall on a fixed UTC grid */
	if (rec->max_funding_rate_bps > 10000)
		return RSX_REASON_VALUE_OUT_OF_RANGE;	/* above 100 % per interval: no rate can be applied */
	return RSX_REASON_NONE;
}

int rsx_risk_configure_symbol(struct rsx_risk *r, const struct rsx_config *rec)
{
	struct rsx_symbol_config cfg;
	if (rec->symbol_id >= r->max_symbols)
		return RSX_REASON_UNKNOWN_SYMBOL;
	int reason = rsx_risk_config_check(rec, r->collateral_decimals);
	if (reason != RSX_REASON_NONE)
		return reason;
	rsx_symbol_config_from_record(&cfg, rec);
	int e = (int)cfg.price_decimals + cfg.qty_decimals - r->collateral_decimals;
	struct rsx_risk_symbol *s = &r->symbols[rec->symbol_id];
	if (s->configured && (s->cfg.price_decimals != cfg.price_decimals || s->cfg.qty_decimals != cfg.qty_decimals)) {
		/* Raw units would change meaning under existing positions and orders. */
		for (uint32_t p = 0; p < r->n_positions; p++)
			if (r->positions[p].symbol_id == rec->symbol_id &&
			    (r->positions[p].net != 0 || r->positions[p].n_orders != 0))
				return RSX_REASON_VALUE_OUT_OF_RANGE;
	}
	if (!s->configured) {
		s->liq_fee_bps = r->default_liq_fee_bps;
		s->ins_share_bps = r->default_ins_share_bps;
	}
	s->cfg = cfg;
	s->divisor = pow10_tab[e];
	s->funding_interval_s = rec->funding_interval_s ? rec->funding_interval_s : 28800;
	s->max_funding_rate_bps = rec->max_funding_rate_bps;
	if (!s->tiers_custom) {
		s->n_tiers = 1;
		s->tier_bound[0] = r->default_max_position;
		s->tier_imr[0] = cfg.initial_margin_bps;
		s->tier_mmr[0] = cfg.maintenance_margin_bps;
	}
	s->configured = 1;
	return RSX_REASON_NONE;
}

int rsx_risk_tiers_check(uint32_t n, const int64_t *bounds, const uint32_t *imr, const uint32_t *mmr)
{
	if (n == 0 || n > RSX_RISK_TIERS)
		return RSX_EINVALID;
	for (uint32_t k = 0; k < n; k++) {
		if (bounds[k] <= 0 || bounds[k] > RSX_RISK_MAX_POSITION_CAP)
			return RSX_EINVALID;
		if (mmr[k] > imr[k] || imr[k] > 10000)
			return RSX_EINVALID;
		if (k && (bounds[k] <= bounds[k - 1] || imr[k] < imr[k - 1] || mmr[k] < mmr[k - 1]))
			return RSX_EINVALID;
	}
	return 0;
}

int rsx_risk_set_tiers(struct rsx_risk *r, uint32_t symbol_id, uint32_t n, const int64_t *bounds,
		       const uint32_t *imr, const uint32_t *mmr)
{
	struct rsx_risk_symbol *s = risk_sym(r, symbol_id);
	if (!s || rsx_risk_tiers_check(n, bounds, imr, mmr) < 0)
		return RSX_EINVALID;
	s->n_tiers = n;
	for (uint32_t k = 0; k < RSX_RISK_TIERS; k++) {
		s->tier_bound[k] = k < n ? bounds[k] : 0;
		s->tier_imr[k] = k < n ? imr[k] : 0;
		s->tier_mmr[k] = k < n ? mmr[k] : 0;
	}
	s->tiers_custom = 1;
	return 0;
}

int rsx_risk_set_mark(struct rsx_risk *r, uint32_t symbol_id, int64_t mark, const int32_t *pos_index,
		      uint32_t n, int32_t *out, uint32_t cap)
{
	struct rsx_risk_symbol *s = risk_sym(r, symbol_id);
	if (!s || mark < 0)
		return RSX_EINVALID;
	s->mark = mark;
	int found = 0;
	for (uint32_t i = 0; i < n; i++) {
		int32_t p = pos_index[i];
		if (p < 0 || (uint32_t)p >= r->n_positions)
			continue;
		struct rsx_risk_position *pos = &r->positions[p];
		if (pos->symbol_id != symbol_id || pos->net == 0)
			continue;
		pos_store(r, p, pos->net, pos->cost);
		const struct rsx_risk_account *a = &r->accounts[pos->acct];
		if (!(a->flags & RSX_RISK_ACCT_LIQ) && risk_liquidatable(a)) {
			if ((uint32_t)found < cap)
				out[found] = pos->acct;
			found++;
		}
	}
	return found;
}

int rsx_risk_check_accounts(const struct rsx_risk *r, const int32_t *accts, uint32_t n, int32_t *out, uint32_t cap)
{
	int found = 0;
	for (uint32_t i = 0; i < n; i++) {
		int32_t u = accts[i];
		if (u < 0 || (uint32_t)u >= r->n_users)
			continue;
		const struct rsx_risk_account *a = &r->accounts[u];
		if (!(a->flags & RSX_RISK_ACCT_LIQ) && risk_liquidatable(a)) {
			if ((uint32_t)found < cap)
				out[found] = u;
			found++;
		}
	}
	return found;
}

int rsx_risk_scan_all(const struct rsx_risk *r, int32_t *out, uint32_t cap)
{
	int found = 0;
	for (uint32_t u = 0; u < r->n_users; u++) {
		const struct rsx_risk_account *a = &r->accounts[u];
		if (!(a->flags & RSX_RISK_ACCT_LIQ) && risk_liquidatable(a)) {
			if ((uint32_t)found < cap)
				out[found] = (int32_t)u;
			found++;
		}
	}
	return found;
}
