"""Cross margin, tiers, the pre-trade check, frozen margin and withdrawals (specs/risk.md 3, 4)."""

import pytest

from rsx_appliance.codes import Reason
from rsx_appliance.errors import Rejected
from rsx_appliance.records import RecordType, encode
from rsx_appliance.risk import SymbolRiskParams, Tier

from .helpers import BUY, ME, RO, SEC, SELL, SYM, make_shard, new_order, oid, rid

NOW = 2000 * SEC
P, Q = 10_000, 1_000_000          # 100.00 x 1 unit: V = 1e8 (100 USD)


def reasons(out):
    return [(r.reason, r.detail) for r in out.gateway_records() if r.type == RecordType.ORDER_FAILED]


@pytest.fixture
def env():
    s = make_shard()
    me = ME()
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=5))   # IM 10 %, MM 5 %
    return s, me


def need(v, imr=1000, fee=5):
    return v * imr // 10_000 + v * fee // 10_000


def test_exactly_at_the_limit_accepts_one_unit_less_rejects(env):
    s, _ = env
    n = need(100_000_000)                  # 10_000_000 + 50_000
    s.deposit(1, n, rid())
    s.deposit(2, n - 1, rid())
    out = s.submit(new_order(1, BUY, P, Q) + new_order(2, BUY, P, Q), NOW)
    assert reasons(out) == [(Reason.INSUFFICIENT_MARGIN, 1)]
    assert len(out.me_records()) == 1
    assert s.account(1)["frozen"] == n and s.account(1)["available"] == 0
    assert s.account(2)["frozen"] == 0


def test_zero_collateral_rejects_everything(env):
    s, _ = env
    s.deposit(1, 1, rid())
    s.withdraw(1, 1, rid())
    out = s.submit(new_order(1, BUY, 1, 1000) + new_order(1, SELL, P, Q), NOW)
    assert [r for r, _ in reasons(out)] == [Reason.INSUFFICIENT_MARGIN] * 2


def test_frozen_accumulates_and_releases(env):
    s, me = env
    s.deposit(1, 10**9, rid())
    o1, o2, o3 = oid(), oid(), oid()
    s.submit(new_order(1, BUY, P, Q, o1) + new_order(1, BUY, P, 2 * Q, o2) + new_order(1, SELL, P, Q, o3), NOW)
    assert s.account(1)["frozen"] == need(10**8) * 2 + need(2 * 10**8)
    # o1 fails at the ME, o2 partly fills (pro rata release), o3 is cancelled
    s.on_me(me.failed(1, o1) + me.accepted(1, o2, BUY, P, 2 * Q) + me.accepted(1, o3, SELL, P, Q))
    assert s.account(1)["frozen"] == need(2 * 10**8) + need(10**8)
    s.on_me(me.fill(2, 1, SELL, P, Q // 2, maker_oid=o2))
    assert s.account(1)["frozen"] == need(P * (2 * Q - Q // 2) // 100) + need(10**8)
    s.on_me(me.done(1, o2, filled=Q // 2, remaining=0, status=3) + me.cancelled(1, o3))
    assert s.account(1)["frozen"] == 0 and s.account(1)["n_orders"] == 0
    assert s.audit() == 0


def test_reduce_only_reserves_nothing(env):
    s, _ = env
    s.deposit(1, 10, rid())
    out = s.submit(new_order(1, SELL, P, Q, flags=RO), NOW)
    assert reasons(out) == [] and s.account(1)["frozen"] == 0


def test_liquidation_flag_from_the_gateway_is_refused(env):
    s, _ = env
    s.deposit(1, 10**12, rid())
    out = s.submit(new_order(1, SELL, P, Q, flags=4), NOW)
    assert reasons(out) == [(Reason.BAD_FLAGS, 0)]


def test_no_positions_everything_available(env):
    s, _ = env
    s.deposit(1, 12345, rid())
    a = s.account(1)
    assert a["available"] == a["equity"] == a["withdrawable"] == 12345


def test_upnl_moves_equity_and_mark_zero_values_at_entry(env):
    s, me = env
    s.deposit(1, 10**9, rid())
    s.deposit(2, 10**9, rid())
    s.on_me(me.fill(1, 2, BUY, P, Q))
    a = s.account(1)                 # no mark: valued at entry
    assert a["equity"] == 10**9 - 50_000 and a["im"] == 10_000_000 and a["mm"] == 5_000_000
    s.set_mark(SYM, 11_000)
    a = s.account(1)
    assert a["equity"] == 10**9 - 50_000 + 10_000_000 and a["im"] == 11_000_000
    b = s.account(2)
    assert b["equity"] == 10**9 - 10_000_000    # short: liability at mark
    assert s.audit() == 0


def test_multi_symbol_cross_margin():
    s = make_shard()
    m1, m2 = ME(1), ME(2)
    s.on_me(m1.config(maker_fee_bps=0, taker_fee_bps=0))
    s.on_me(m2.config(maker_fee_bps=0, taker_fee_bps=0, initial_margin_bps=2000, maintenance_margin_bps=1000))
    s.deposit(1, 10**9, rid())
    s.deposit(2, 10**9, rid())
    s.on_me(m1.fill(1, 2, BUY, P, Q) + m2.fill(2, 1, BUY, P, Q))
    s.set_mark(1, 12_000)
    s.set_mark(2, 12_000)
    a = s.account(1)   # long sym1 +20_000_000, short sym2 -20_000_000: uPnL nets; margins add
    assert a["equity"] == 10**9
    assert a["im"] == 12_000_000 + 24_000_000 and a["mm"] == 6_000_000 + 12_000_000
    assert a["positions"] == 2


def test_tiers_are_progressive_and_continuous(env):
    s, _ = env
    s.set_symbol_params(SYM, SymbolRiskParams(tiers=(Tier(1_000, 1000, 500), Tier(10_000, 2000, 1000),
                                                    Tier(100_000, 5000, 2500))))
    im = [s.core.tier_margin(SYM, v, 0) for v in (0, 1_000, 1_001, 10_000, 20_000, 200_000)]
    assert im == [0, 100, 100, 100 + 1800, 100 + 1800 + 5000, 100 + 1800 + 45_000 + 50_000]
    mm = s.core.tier_margin(SYM, 10_000, 1)
    assert mm == 50 + 900


def test_position_limit_is_the_last_tier(env):
    s, _ = env
    s.set_symbol_params(SYM, SymbolRiskParams(tiers=(Tier(10**8, 1000, 500),)))
    s.deposit(1, 10**12, rid())
    out = s.submit(new_order(1, BUY, P, Q) + new_order(1, BUY, P, 1), NOW)
    assert reasons(out) == [(Reason.POSITION_LIMIT, 0)]   # open orders count toward the limit


def test_tier_step_up_is_checked(env):
    s, _ = env
    s.set_symbol_params(SYM, SymbolRiskParams(tiers=(Tier(5 * 10**7, 1000, 500), Tier(10**9, 5000, 2500))))
    base = need(10**8)                           # what is reserved: base rate + fee
    step = (5 * 10**7 * 1000 + 5 * 10**7 * 5000) // 10_000 - 10**8 * 1000 // 10_000
    s.deposit(1, base + step, rid())
    s.deposit(2, base + step - 1, rid())
    out = s.submit(new_order(1, BUY, P, Q) + new_order(2, BUY, P, Q), NOW)
    assert reasons(out) == [(Reason.INSUFFICIENT_MARGIN, 1)]
    assert s.account(1)["frozen"] == base


def test_withdrawal_never_below_initial_margin(env):
    s, me = env
    s.deposit(1, 10**9, rid())
    s.deposit(2, 10**9, rid())
    s.on_me(me.fill(1, 2, BUY, P, Q))
    s.set_mark(SYM, 12_000)                       # +20M unrealised: not withdrawable
    a = s.account(1)
    w = a["withdrawable"]
    assert w == min(a["collateral"], a["available"]) < a["equity"] - a["im"]   # profit stays
    with pytest.raises(Rejected) as exc:
        s.withdraw(1, w + 1, rid())
    assert exc.value.reason == Reason.INSUFFICIENT_BALANCE
    rec = s.withdraw(1, w, rid())
    a = s.account(1)
    assert a["equity"] - a["im"] - a["frozen"] >= 0
    from rsx_appliance.records import decode
    assert decode(rec).balance_after == a["collateral"]


def test_amend_price_up_needs_margin(env):
    from rsx_appliance.records import encode

    s, me = env
    s.deposit(1, need(10**8) + 100, rid())
    o = oid()
    s.submit(new_order(1, BUY, P, Q, o), NOW)
    s.on_me(me.accepted(1, o, BUY, P, Q))
    amend = encode(RecordType.AMEND_ORDER, symbol_id=SYM, user_id=1, order_id=o, price=2 * P, qty=Q)
    out = s.submit(amend, NOW)
    assert reasons(out)[0][0] == Reason.INSUFFICIENT_MARGIN
    amend_down = encode(RecordType.AMEND_ORDER, symbol_id=SYM, user_id=1, order_id=o, price=0, qty=Q // 2)
    out = s.submit(amend_down, NOW)
    assert reasons(out) == [] and len(out.me_records()) == 1
    s.on_me(me.amended(1, o, P, Q // 2))
    assert s.account(1)["frozen"] == need(10**8 // 2)
    assert s.audit() == 0


def test_reconciliation_releases_an_order_the_me_never_saw(env):
    s, me = env
    s.deposit(1, 10**9, rid())
    lost, seen = oid(), oid()
    t0 = me.ts
    s.submit(new_order(1, BUY, P, Q, lost) + new_order(1, BUY, P, Q, seen), t0)
    s.on_me(me.accepted(1, seen, BUY, P, Q))
    assert s.account(1)["frozen"] == 2 * need(10**8)
    out = s.reconcile()
    assert out.gateway_records() == [] and s.account(1)["frozen"] == 2 * need(10**8)  # ME clock not past
    s.on_me(me.heartbeat(t0 + s.params.ack_timeout_ns + 1))
    out = s.reconcile()
    recs = out.gateway_records()
    assert [(r.reason, r.order_id.bytes) for r in recs] == [(Reason.TIMEOUT, lost)]
    assert s.account(1)["frozen"] == need(10**8)
    # a late ACCEPTED after the release re-reserves (margin is never skipped)
    s.on_me(me.accepted(1, lost, BUY, P, Q))
    assert s.account(1)["frozen"] == 2 * need(10**8) and s.core.r.late_acks == 1
    assert s.audit() == 0


def test_duplicate_live_order_id(env):
    s, _ = env
    s.deposit(1, 10**9, rid())
    o = oid()
    out = s.submit(new_order(1, BUY, P, Q, o) + new_order(1, BUY, P, Q, o), NOW)
    assert reasons(out) == [(Reason.DUPLICATE_ORDER_ID, 0)]


def test_symbol_halted_refuses_new_orders(env):
    s, me = env
    s.deposit(1, 10**9, rid())
    s.on_me(me.config(config_version=2, status=2))
    out = s.submit(new_order(1, BUY, P, Q), NOW)
    assert reasons(out) == [(Reason.SYMBOL_HALTED, 0)]


def test_close_only_lets_reduce_only_orders_through(env):
    """CLOSE_ONLY (status 3): a reduce-only order passes risk (the ME enforces what it may do), any other order
    is refused CLOSE_ONLY; an amend of a reserved order (never reduce-only) too; PAUSED still refuses all."""
    s, me = env
    s.deposit(1, 10**9, rid())
    o = oid()
    assert reasons(s.submit(new_order(1, BUY, P, Q, o), NOW)) == []
    s.on_me(me.accepted(1, o, BUY, P, Q))
    s.on_me(me.config(config_version=2, status=3))
    assert reasons(s.submit(new_order(1, BUY, P, Q), NOW)) == [(Reason.CLOSE_ONLY, 0)]
    out = s.submit(new_order(1, SELL, P, Q, flags=RO), NOW)
    assert reasons(out) == [] and len(out.to_me) > 0
    amend = encode(RecordType.AMEND_ORDER, symbol_id=SYM, user_id=1, order_id=o, price=0, qty=Q // 2)
    assert reasons(s.submit(amend, NOW)) == [(Reason.CLOSE_ONLY, 0)]
    s.on_me(me.config(config_version=3, status=1))
    assert reasons(s.submit(new_order(1, SELL, P, Q, flags=RO), NOW)) == [(Reason.SYMBOL_HALTED, 0)]
