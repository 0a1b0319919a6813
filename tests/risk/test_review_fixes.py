"""The risk defects found in review (issue 12), each shown by a test that failed before its fix.

ADL eligibility and caps, fund reservations that replace, journaled marks and MARK_STALE after a
recovery without a snapshot, set-time validation, the scan after recovery, a mark source far
outside the band, amend and the position cap, the liquidation id counter, self-trades.
"""

import pytest

from rsx_appliance.codes import Reason
from rsx_appliance.errors import ConfigError, Rejected
from rsx_appliance.records import RecordType
from rsx_appliance.risk import MemoryJournal, RiskParams, RiskShard, StreamError, SymbolRiskParams, Tier
from rsx_appliance.risk.enums import LiqKind

from .helpers import BUY, ME, SEC, SELL, SYM, conserved, liq_records as liq, liq_shard, make_shard, mark_rec
from .helpers import new_order, oid, rid

T0 = 2000 * SEC
Q = 1_000_000                 # one unit; price 10_000 = 100.00 USD; V(10_000, Q) = 100 USD = 1e8
USD = 1_000_000


def mk(params=None, fund=0, **cfg):
    return liq_shard(params, fund, T0, **cfg)


# ---------------------------------------------------------------- ADL

def test_adl_charge_never_takes_a_counterparty_below_zero():
    """The review's example: a trader with 17 USD of equity must not end at -23 USD because
    someone else went bankrupt. The charge is capped at its equity; the rest is bad debt."""
    s, me = mk(initial_margin_bps=200, maintenance_margin_bps=100)
    s.deposit(99, 10**12, rid())
    s.deposit(1, 60 * USD, rid())             # long 10 at 100: bankrupt at 90 (-40 USD)
    s.deposit(2, 7 * USD, rid())              # short 10 at 91: at 90 upnl +10, equity 17, MM 9
    s.on_me(me.fill(1, 99, BUY, 10_000, 10 * Q))
    s.on_me(me.fill(2, 99, SELL, 9_100, 10 * Q))
    deposits = 10**12 + 67 * USD
    out = s.set_mark(SYM, 9_000)
    adl = liq(out, LiqKind.ADL)
    assert [(a.counterparty_user_id, a.qty) for a in adl] == [(2, 10 * Q)]
    assert adl[0].shortfall == 17 * USD                     # capped at its equity
    a2 = s.account(2)
    assert a2["equity"] == 0 and a2["positions"] == 0
    assert s.account(1)["positions"] == 0 and not s.account(1)["in_liquidation"]
    assert s.ledgers()["bad_debt"] == 23 * USD              # what nobody could carry
    (done,) = liq(out, LiqKind.DONE)
    assert done.shortfall == 23 * USD
    assert conserved(s, deposits) and s.audit() == 0


def test_adl_ranks_only_solvent_profitable_counterparties():
    """A short that is losing at the mark (entered below it) is not deleveraged against."""
    s, me = mk()
    s.deposit(99, 10**12, rid())
    s.deposit(1, 6 * USD, rid())
    s.deposit(4, 10**10, rid())
    s.on_me(me.fill(1, 99, BUY, 10_000, Q))
    s.on_me(me.fill(4, 99, SELL, 8_500, Q))   # short at 85: losing at 90
    out = s.set_mark(SYM, 9_000)
    assert liq(out, LiqKind.ADL) == []
    assert s.position(4, SYM)["net"] == -Q
    assert s.account(1)["in_liquidation"]
    (r,) = liq(out, LiqKind.ROUND)                           # back to the book, at max slippage
    assert r.slippage_bps == s.params.liq_max_slip_bps


def test_adl_reranks_a_charged_counterparty():
    """Two bankrupt longs in one pass. The first ADL charges A (top ranked); A is then below its
    maintenance margin, so it is ranked again and no longer eligible: the second goes to B."""
    s, me = mk(initial_margin_bps=200, maintenance_margin_bps=100)
    s.deposit(99, 10**12, rid())
    for u in (1, 5):
        s.deposit(u, 30 * USD, rid())         # long 5 at 100: at 90 -20 USD each
        s.on_me(me.fill(u, 99, BUY, 10_000, 5 * Q))
    s.deposit(10, 4 * USD, rid())             # A: short 10 at 92; at 90 upnl 20, equity 24, MM 9
    s.on_me(me.fill(10, 99, SELL, 9_200, 10 * Q))
    s.deposit(11, 10**10, rid())              # B: short 10 at 100, tiny leverage
    s.on_me(me.fill(11, 99, SELL, 10_000, 10 * Q))
    deposits = 10**12 + 60 * USD + 4 * USD + 10**10
    out = s.set_mark(SYM, 9_000)
    by_user = {}
    for a in liq(out, LiqKind.ADL):
        by_user.setdefault(a.user_id, []).append((a.counterparty_user_id, a.qty, a.shortfall))
    assert by_user[1] == [(10, 5 * Q, 20 * USD)]            # A first: equity 24 -> 4 < MM 4.5
    assert by_user[5] == [(11, 5 * Q, 20 * USD)]            # A re-ranked: insolvent, skipped
    for u in (10, 11):
        assert s.account(u)["equity"] >= 0
    assert conserved(s, deposits) and s.audit() == 0


# ---------------------------------------------------------------- insurance fund

def _w_long(coll, qty, mark, slip, cost):
    px = mark * (10_000 - slip) // 10_000
    v = px * qty // 100
    fee = v * 50 // 10_000
    return max(0, -(coll + v - cost - fee))


def test_new_reservation_replaces_the_old_one_in_a_pass():
    """A and B both at round 2 in one pass: A's new reservation must replace A's round-1
    reservation, so B still finds the fund that is really left and gets a round, not ADL."""
    p = RiskParams(liq_base_slip_bps=100, liq_max_slip_bps=500)
    s, me = mk(p)
    s.deposit(99, 10**12, rid())
    s.deposit(1, 6 * USD, rid())
    s.deposit(2, 6 * USD, rid())
    s.on_me(me.fill(1, 99, BUY, 10_000, Q))
    s.on_me(me.fill(2, 99, BUY, 10_000, Q))
    s.deposit(50, 10**10, rid())              # a profitable short: ADL would find it
    s.on_me(me.fill(50, 99, SELL, 10_000, Q))
    w1 = _w_long(6 * USD, Q, 9_000, 100, 100 * USD)
    w2 = _w_long(6 * USD, Q, 9_000, 400, 100 * USD)
    assert w2 > w1 > 0
    s.deposit(0, 2 * w1, rid())
    out = s.set_mark(SYM, 9_000)
    rounds = liq(out, LiqKind.ROUND)
    assert [(r.user_id, r.round, r.shortfall) for r in rounds] == [(1, 1, w1), (2, 1, w1)]
    for r in rounds:                            # both IOCs end unfilled
        s.on_me(me.done(r.user_id, r.order_id.bytes, filled=0, remaining=Q, status=3, reason=37))
    s.deposit(0, 2 * w2 - 2 * w1, rid())        # the fund now holds exactly both round-2 worst cases
    out = s.tick(T0 + 2 * SEC)
    assert liq(out, LiqKind.ADL) == []
    assert [(r.user_id, r.round, r.shortfall) for r in liq(out, LiqKind.ROUND)] == [(1, 2, w2), (2, 2, w2)]
    assert s.ledgers()["insurance_reserved"] == 2 * w2


# ---------------------------------------------------------------- recovery without a snapshot

def _priced_shard():
    j = MemoryJournal(0x80000000)
    s = make_shard(journal=j, params=RiskParams(liq_base_slip_bps=10))
    me = ME(ts=T0)
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=0, max_funding_rate_bps=0))
    s.deposit(1, 50 * USD, rid())
    s.deposit(99, 10**12, rid())
    s.on_me(me.fill(1, 99, BUY, 10_000, Q))
    s.on_mark(mark_rec(10_500, T0 + SEC), T0 + SEC)         # a fresh mark: +5 USD
    s.tick(T0 + 3 * SEC)                                     # the mark is journaled (1 s cadence)
    return s, me, j


def test_recovery_without_a_snapshot_values_at_the_journaled_mark():
    s, me, j = _priced_shard()
    assert s.position(1, SYM)["value"] == 105 * USD
    r = RiskShard.recover(j.crash(), {SYM: me.source}, capacity=s.core.capacity)
    assert r.position(1, SYM)["value"] == 105 * USD           # never valued at mark 0
    assert r.account(1)["equity"] == 55 * USD


def test_stale_mark_refuses_risk_increasing_orders_and_withdrawals():
    s, me, j = _priced_shard()
    r = RiskShard.recover(j.crash(), {SYM: me.source}, capacity=s.core.capacity)
    now = T0 + 10 * SEC
    out = r.submit(new_order(1, BUY, 10_000, 10), now)                 # adds to the long
    assert out.gateway_records()[0].reason == Reason.MARK_STALE
    assert r.submit(new_order(1, SELL, 10_000, 10), now).gateway_records() == []   # reduces: fine
    with pytest.raises(Rejected) as exc:
        r.withdraw(1, USD, rid(), now)
    assert exc.value.reason == Reason.MARK_STALE
    r.on_mark(mark_rec(10_400, now), now)                       # a fresh mark: trading resumes
    assert r.submit(new_order(1, BUY, 10_000, 10), now).gateway_records() == []
    r.withdraw(1, USD, rid(), now)


# ---------------------------------------------------------------- validation at set time

def test_parameter_group_is_applied_whole():
    """Raising base and max slippage together: valid as a whole, invalid key by key. It must be
    accepted, applied, and replay; before the fix it was journaled and then failed to apply."""
    j = MemoryJournal(0x80000000)
    s = make_shard(journal=j)
    s.set_params(RiskParams(liq_base_slip_bps=600, liq_max_slip_bps=700))
    assert (s.params.liq_base_slip_bps, s.params.liq_max_slip_bps) == (600, 700)
    r = RiskShard.recover(j.crash(), {}, capacity=s.core.capacity)
    assert (r.params.liq_base_slip_bps, r.params.liq_max_slip_bps) == (600, 700)


def test_config_with_an_impossible_funding_cap_is_refused_when_set():
    s = make_shard()
    me = ME()
    s.on_me(me.config())
    before = s.canonical_state()
    with pytest.raises(StreamError) as exc:
        s.on_me(me.config(config_version=2, max_funding_rate_bps=20_000))   # above 100 %
    assert exc.value.symbol_id == SYM
    assert s.canonical_state() == before
    s.tick(s.clock + 100 * SEC)                                  # periodic work keeps working


def test_bad_tier_table_refused_before_it_is_journaled():
    s = make_shard()
    me = ME()
    s.on_me(me.config())
    last = s.journal.last_seq
    with pytest.raises(ConfigError):
        s.set_symbol_params(SYM, SymbolRiskParams(tiers=(Tier(10**9, 500, 600),)))   # mmr > imr
    assert s.journal.last_seq == last


# ---------------------------------------------------------------- scan after recovery

def test_liquidation_scan_right_after_recovery():
    """Fills replayed during recovery take no decision; the scan after recovery must find the
    account they made liquidatable without waiting for a new mark."""
    j = MemoryJournal(0x80000000)
    s = make_shard(journal=j, params=RiskParams(liq_base_slip_bps=10))
    me = ME(ts=T0)
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=0, max_funding_rate_bps=0))
    s.deposit(0, 10**12, rid())
    s.deposit(1, 6 * USD, rid())
    s.deposit(99, 10**12, rid())
    s.on_me(me.fill(1, 99, BUY, 10_000, Q))
    s.set_mark(SYM, 10_000)
    s.tick(T0 + 3 * SEC)
    me.fill(1, 99, BUY, 12_000, Q)            # the shard is down: bought at 120 with mark 100
    r = RiskShard.recover(j.crash(), {SYM: me.source}, capacity=s.core.capacity)
    assert r.position(1, SYM)["net"] == 2 * Q
    assert r.account(1)["in_liquidation"]


# ---------------------------------------------------------------- marks

def test_a_bad_record_in_a_mark_buffer_changes_nothing():
    s = make_shard()
    me = ME()
    s.on_me(me.config())
    now = T0
    before = s.canonical_state()
    with pytest.raises(Rejected):
        s.on_mark(mark_rec(10_000, now) + mark_rec(10_000, now, symbol_id=9), now)
    assert s.canonical_state() == before


def test_a_source_far_outside_the_band_is_refused():
    s = make_shard()
    me = ME()
    s.on_me(me.config())
    now = T0
    s.on_mark(mark_rec(10_000, now, source=1), now)
    assert int(s.core.symbols["mark"][SYM]) == 10_000
    s.on_mark(mark_rec(5_000, now + 1, source=2), now + 1)       # one venue prints 50 % off
    assert int(s.core.symbols["mark"][SYM]) == 10_000
    s.on_mark(mark_rec(10_100, now + 2, source=2), now + 2)      # within the band: taken
    assert int(s.core.symbols["mark"][SYM]) == 10_050


# ---------------------------------------------------------------- amend, ids, self-trade

def test_amend_rechecks_the_position_cap():
    s = make_shard()
    me = ME()
    s.on_me(me.config())
    s.set_symbol_params(SYM, SymbolRiskParams(tiers=(Tier(1_000 * USD, 1000, 500),)))
    s.deposit(1, 10**12, rid())
    o = oid()
    assert s.submit(new_order(1, BUY, 10_000, 9 * Q, o), T0).gateway_records() == []  # 900 USD
    from rsx_appliance.records import encode
    amend = encode(RecordType.AMEND_ORDER, symbol_id=SYM, user_id=1, order_id=o, price=12_000, qty=9 * Q)
    out = s.submit(amend, T0)                                   # 1 080 USD: above the last tier
    assert [(r.type, r.reason) for r in out.gateway_records()] == [(RecordType.ORDER_FAILED,
                                                                    Reason.POSITION_LIMIT)]
    assert out.me_records() == []


def test_liquidation_ids_never_repeat_after_a_restart():
    j = MemoryJournal(0x80000000)
    s = make_shard(journal=j, params=RiskParams(liq_base_slip_bps=10, liq_base_delay_ns=0))
    me = ME(ts=T0)
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=0, max_funding_rate_bps=0))
    s.clock = T0
    s.deposit(0, 10**12, rid())
    s.deposit(1, 6 * USD, rid())
    s.deposit(99, 10**12, rid())
    s.on_me(me.fill(1, 99, BUY, 10_000, Q))
    (r1,) = liq(s.set_mark(SYM, 9_850), LiqKind.ROUND)
    me.done(1, r1.order_id.bytes, filled=0, remaining=Q, status=3, reason=37)
    r = RiskShard.recover(j.crash(), {SYM: me.source}, capacity=s.core.capacity)
    r.set_mark(SYM, 9_850)
    out = r.tick(r.clock)                                        # the same millisecond as round 1
    (r2,) = liq(out, LiqKind.ROUND)
    assert r2.round == 2 and r2.order_id != r1.order_id


def test_self_trade_leaves_the_position_unchanged():
    s, me = mk(maker_fee_bps=1, taker_fee_bps=5)
    s.deposit(1, 10**10, rid())
    s.deposit(99, 10**12, rid())
    s.on_me(me.fill(1, 99, BUY, 10_000, 10 * Q))              # long 10, cost 1 000 USD
    p0 = s.position(1, SYM)
    c0 = s.account(1)["collateral"]
    s.on_me(me.fill(1, 1, BUY, 11_000, 3 * Q))                # self-trade 3 at 110: adds, then sells
    p = s.position(1, SYM)
    assert (p["net"], p["cost"], p["rpnl"]) == (p0["net"], p0["cost"], p0["rpnl"])
    v = 330 * USD
    fees = v * 5 // 10_000 + v * 1 // 10_000
    assert s.account(1)["collateral"] == c0 - fees
    assert s.audit() == 0
