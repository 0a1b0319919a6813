"""Liquidation rounds, insurance fund and ADL (specs/risk.md 7)."""

import pytest

from rsx_appliance.codes import Reason
from rsx_appliance.errors import Rejected
from rsx_appliance.records import RecordType
from rsx_appliance.risk import RiskParams
from rsx_appliance.risk.enums import LiqKind, OrderFlag, Stp, Tif

from .helpers import BUY, ME, SEC, SELL, SYM, conserved as conservation, liq_records as liq_recs, liq_shard
from .helpers import make_shard, new_order, rid

T0 = 2000 * SEC
Q = 1_000_000                # one unit; price 10_000 = 100.00; V(10_000, Q) = 1e8


def mk(params=None, fund=10**12):
    return liq_shard(params, fund, T0)


def open_long(s, me, user, coll, qty=Q, maker=99, maker_coll=10**12, price=10_000):
    if coll:
        s.deposit(user, coll, rid())
    if s.core.find_account(maker) < 0:
        s.deposit(maker, maker_coll, rid())
    s.on_me(me.fill(user, maker, BUY, price, qty))


def test_mark_drop_starts_round_one(tmp_path):
    s, me = mk()
    open_long(s, me, 1, 6_000_000)
    out = s.set_mark(SYM, 9_900)
    assert liq_recs(out) == [] and not s.account(1)["in_liquidation"]
    out = s.set_mark(SYM, 9_850)           # equity 4.5e6 < MM 4.925e6
    a = s.account(1)
    assert a["in_liquidation"]
    me_recs = out.me_records()
    assert [r.type for r in me_recs] == [RecordType.NEW_ORDER]     # no open order: nothing to cancel
    o = me_recs[0]
    assert o.side == SELL and o.qty == Q and o.tif == Tif.IOC and o.stp == Stp.CANCEL_MAKER
    assert o.flags == int(OrderFlag.REDUCE_ONLY | OrderFlag.LIQUIDATION)
    assert o.price == 9_850 * (10_000 - 10) // 10_000             # 1^2 x 10 bps, floored to the tick
    (r,) = liq_recs(out, LiqKind.ROUND)
    assert (r.round, r.slippage_bps, r.order_id, r.qty, r.price) == (1, 10, o.order_id, Q, o.price)
    assert r.mark_px == 9_850 and r.equity == 4_500_000 and r.maintenance_margin == 4_925_000
    assert a["frozen"] == 0                                         # liquidation orders reserve nothing
    # the user cannot trade or withdraw meanwhile
    out = s.submit(new_order(1, SELL, 9_000, 10), T0)
    assert out.gateway_records()[0].reason == Reason.USER_IN_LIQUIDATION
    with pytest.raises(Rejected) as exc:
        s.withdraw(1, 1, rid())
    assert exc.value.reason == Reason.USER_IN_LIQUIDATION


def test_entry_cancels_the_orders_risk_tracks():
    s, me = mk()
    s.deposit(1, 6_000_000, rid())
    assert s.submit(new_order(1, BUY, 9_000, 1000), T0).gateway_records() == []   # a resting bid, reserved
    open_long(s, me, 1, 0)
    out = s.set_mark(SYM, 9_850)
    me_recs = out.me_records()
    assert [r.type for r in me_recs] == [RecordType.CANCEL_ALL, RecordType.NEW_ORDER]
    assert me_recs[0].user_id == 1 and me_recs[0].symbol_id == SYM


def test_rounds_escalate_with_fresh_ids():
    s, me = mk(RiskParams(liq_base_slip_bps=1, liq_max_slip_bps=500, liq_max_rounds=20))
    open_long(s, me, 1, 6_000_000)
    slips, ids = [], []
    out = s.set_mark(SYM, 9_850)
    for rnd in range(1, 11):
        (r,) = liq_recs(out, LiqKind.ROUND)
        assert r.round == rnd
        slips.append(r.slippage_bps)
        ids.append(r.order_id)
        s.on_me(me.accepted(1, r.order_id.bytes, SELL, r.price, Q, flags=6) +
                me.done(1, r.order_id.bytes, filled=0, remaining=Q, status=3, reason=37))
        out = s.tick(s.clock + rnd * s.params.liq_base_delay_ns - 1)
        assert liq_recs(out) == []                      # round n+1 waits n x base delay
        out = s.tick(s.clock + 1)
    assert slips[:3] == [1, 4, 9] and slips[9] == 100
    assert len(set(ids)) == 10


def test_round_waits_for_the_order_in_flight():
    s, me = mk()
    open_long(s, me, 1, 6_000_000)
    s.set_mark(SYM, 9_850)
    out = s.tick(s.clock + 10 * SEC)
    assert liq_recs(out) == []                          # no terminal event yet for round 1


def test_filled_round_settles_without_insurance():
    s, me = mk()
    open_long(s, me, 1, 6_000_000)
    out = s.set_mark(SYM, 9_850)
    (r,) = liq_recs(out, LiqKind.ROUND)
    fund0 = s.ledgers()["insurance_fund"]
    s.on_me(me.fill(1, 99, SELL, r.price, Q, taker_oid=r.order_id.bytes, taker_flags=6) +
            me.done(1, r.order_id.bytes, filled=Q))
    v = r.price * Q // 100
    liq_fee = v * 50 // 10_000
    assert s.account(1)["collateral"] == 6_000_000 + v - 100_000_000 - liq_fee > 0
    out = s.tick(s.clock + SEC)
    assert [x.kind for x in liq_recs(out)] == [LiqKind.DONE]
    assert not s.account(1)["in_liquidation"] and s.core.r.n_liq == 0
    assert s.ledgers()["insurance_fund"] == fund0 + liq_fee   # liquidation fee funds the fund
    assert s.ledgers()["insurance_reserved"] == 0


def test_insurance_fund_pays_the_real_shortfall():
    s, me = mk()
    open_long(s, me, 1, 6_000_000)
    out = s.set_mark(SYM, 9_000)                        # equity -4e6: bankrupt
    (r,) = liq_recs(out, LiqKind.ROUND)
    assert r.shortfall > 0 and s.ledgers()["insurance_reserved"] == r.shortfall
    fund0 = s.ledgers()["insurance_fund"]
    s.on_me(me.fill(1, 99, SELL, r.price, Q, taker_oid=r.order_id.bytes, taker_flags=6) +
            me.done(1, r.order_id.bytes, filled=Q))
    c = s.account(1)["collateral"]
    assert c < 0 and -c == r.shortfall                 # filled at the limit: the worst case
    out = s.tick(s.clock + SEC)
    kinds = [(x.kind, x.shortfall) for x in liq_recs(out)]
    assert kinds == [(LiqKind.INSURANCE, -c), (LiqKind.DONE, 0)]
    assert s.account(1)["collateral"] == 0
    liq_fee = r.price * Q // 100 * 50 // 10_000
    assert s.ledgers()["insurance_fund"] == fund0 + liq_fee + c
    assert conservation(s, 10**12 + 6_000_000 + 10**12)


def test_recovered_user_leaves_liquidation():
    s, me = mk()
    open_long(s, me, 1, 6_000_000)
    out = s.set_mark(SYM, 9_850)
    (r,) = liq_recs(out, LiqKind.ROUND)
    s.on_me(me.done(1, r.order_id.bytes, filled=0, remaining=Q, status=3, reason=37))
    s.set_mark(SYM, 10_100)
    out = s.tick(s.clock + SEC)
    assert [x.kind for x in liq_recs(out)] == [LiqKind.DONE]
    assert not s.account(1)["in_liquidation"]
    assert s.submit(new_order(1, SELL, 10_000, 10, flags=2), s.clock).gateway_records() == []


def test_deposit_recovers_a_user():
    s, me = mk()
    open_long(s, me, 1, 6_000_000)
    out = s.set_mark(SYM, 9_850)
    (r,) = liq_recs(out, LiqKind.ROUND)
    s.on_me(me.done(1, r.order_id.bytes, filled=0, remaining=Q, status=3, reason=37))
    s.deposit(1, 10**8, rid())
    out = s.tick(s.clock + SEC)
    assert [x.kind for x in liq_recs(out)] == [LiqKind.DONE]


def test_fund_too_small_goes_to_adl_ranked():
    s, me = mk(fund=1_000_000)
    s.deposit(2, 10_000_000, rid())          # high leverage short
    s.deposit(3, 10**10, rid())              # low leverage short
    s.deposit(4, 10**10, rid())              # an unrelated long (not a counterparty)
    open_long(s, me, 1, 6_000_000, qty=600_000, maker=2)
    s.on_me(me.fill(1, 3, BUY, 10_000, 400_000))
    s.on_me(me.fill(4, 3, BUY, 10_000, 500_000))
    deposits = 1_000_000 + 10_000_000 + 2 * 10**10 + 6_000_000
    out = s.set_mark(SYM, 9_000)
    adl = liq_recs(out, LiqKind.ADL)
    assert [(x.counterparty_user_id, x.qty) for x in adl] == [(2, 600_000), (3, 400_000)]
    assert all(x.price == 9_000 and x.side == SELL for x in adl)
    ins = liq_recs(out, LiqKind.INSURANCE)
    assert [x.shortfall for x in ins] == [1_000_000]            # all the fund had
    # shortfall: 6e6 - 1e7 = -4e6; fund 1e6; 3e6 charged pro rata of the closed value (54 : 36)
    assert [x.shortfall for x in adl] == [1_800_000, 1_200_000]
    assert [x.kind for x in liq_recs(out)][-1] == LiqKind.DONE
    assert s.account(1)["collateral"] == 0 and s.account(1)["positions"] == 0
    assert s.position(2, SYM)["net"] == 0 and s.position(3, SYM)["net"] == -500_000
    assert s.ledgers()["insurance_fund"] == 0
    assert out.me_records() == []                               # ADL never goes to the book
    assert conservation(s, deposits) and s.audit() == 0


def test_max_rounds_then_adl_at_mark():
    s, me = mk(RiskParams(liq_base_slip_bps=10, liq_max_rounds=2))
    s.deposit(2, 10**10, rid())
    open_long(s, me, 1, 6_000_000, maker=2)
    out = s.set_mark(SYM, 9_850)
    for _ in range(2):
        (r,) = liq_recs(out, LiqKind.ROUND)
        s.on_me(me.done(1, r.order_id.bytes, filled=0, remaining=Q, status=3, reason=37))
        out = s.tick(s.clock + 10 * SEC)
    kinds = [x.kind for x in liq_recs(out)]
    assert kinds == [LiqKind.ADL, LiqKind.DONE]                 # equity >= 0: no charge, no fund
    (a,) = liq_recs(out, LiqKind.ADL)
    assert a.counterparty_user_id == 2 and a.shortfall == 0 and a.round == 3
    assert s.account(1)["collateral"] == 6_000_000 - 1_500_000


def test_cascade_of_100_users_in_one_scan():
    s, me = mk()
    s.deposit(1000, 10**13, rid())
    for u in range(1, 101):
        open_long(s, me, u, 6_000_000 + u * 10_000, maker=1000)
    jseq = s.journal.last_seq
    out = s.set_mark(SYM, 9_700)
    rounds = liq_recs(out, LiqKind.ROUND)
    assert len(rounds) == 100 and len({r.user_id for r in rounds}) == 100
    assert sum(1 for r in out.me_records() if r.type == RecordType.NEW_ORDER) == 100
    barriers_and_commit = 2
    assert s.journal.last_seq - jseq == 100 + barriers_and_commit   # one journal batch, one fsync


def test_liquidation_after_a_fill():
    s, me = mk()
    open_long(s, me, 1, 6_000_000)
    s.set_mark(SYM, 9_900)
    out = s.on_me(me.fill(1, 99, BUY, 10_300, Q))            # buys above mark: equity falls
    assert s.account(1)["in_liquidation"] and len(liq_recs(out, LiqKind.ROUND)) == 1


def test_halted_symbol_places_nothing():
    s, me = mk()
    open_long(s, me, 1, 6_000_000)
    s.on_me(me.config(config_version=2, maker_fee_bps=0, taker_fee_bps=0, status=2, max_funding_rate_bps=0))
    out = s.set_mark(SYM, 9_000)
    assert liq_recs(out) == [] and out.me_records() == []


def test_sell_price_never_below_one_tick():
    s, me = mk(RiskParams(liq_base_slip_bps=10_000, liq_max_slip_bps=10_000))
    open_long(s, me, 1, 6_000_000)
    out = s.set_mark(SYM, 9_000)
    (r,) = liq_recs(out, LiqKind.ROUND)
    assert r.price == 1


def test_short_buys_above_mark_rounded_up():
    s, me = mk()
    s.deposit(1, 6_000_000, rid())
    s.deposit(99, 10**12, rid())
    s.on_me(me.fill(1, 99, SELL, 10_000, Q))
    out = s.set_mark(SYM, 10_150)
    (r,) = liq_recs(out, LiqKind.ROUND)
    assert r.side == BUY and r.price == -(-10_150 * 10_010 // 10_000)


def test_cascade_drains_the_fund_then_deleverages():
    """Five bankrupt longs: the fund covers the first round, is partly left for the second, and the
    rest go to ADL against the short at the bankruptcy price."""
    s, me = mk(fund=5_000_000)
    s.deposit(99, 10**12, rid())
    for u in range(1, 6):
        open_long(s, me, u, 6_000_000)
    deposits = 5_000_000 + 10**12 + 5 * 6_000_000
    out = s.set_mark(SYM, 9_000)                    # each long: 6e6 - 1e7 = -4e6
    rounds = liq_recs(out, LiqKind.ROUND)
    adl = liq_recs(out, LiqKind.ADL)
    assert [r.user_id for r in rounds] == [1]       # the fund can only back one round
    w = rounds[0].shortfall
    v = 8_991 * Q // 100                            # round 1 sells at mark - 10 bps
    assert w == -(6_000_000 + v - 10**8 - v * 50 // 10_000) == 4_539_550
    assert [a.user_id for a in adl] == [2, 3, 4, 5] and all(a.counterparty_user_id == 99 for a in adl)
    ins = {r.user_id: r.shortfall for r in liq_recs(out, LiqKind.INSURANCE)}
    assert ins == {2: 5_000_000 - w}                # what was left after the reservation
    assert [a.shortfall for a in adl] == [4_000_000 - (5_000_000 - w)] + [4_000_000] * 3
    for u in (2, 3, 4, 5):
        assert s.account(u)["collateral"] == 0 and not s.account(u)["in_liquidation"]
    # round 1 of user 1 fills at its limit: the reserved worst case is exactly what the fund pays
    r = rounds[0]
    s.on_me(me.fill(1, 99, SELL, r.price, Q, taker_oid=r.order_id.bytes, taker_flags=6) +
            me.done(1, r.order_id.bytes, filled=Q))
    out = s.tick(s.clock + SEC)
    assert [(x.kind, x.shortfall) for x in liq_recs(out)] == [(LiqKind.INSURANCE, w), (LiqKind.DONE, 0)]
    assert s.ledgers()["insurance_fund"] == r.price * Q // 100 * 50 // 10_000   # only the liq fee is left
    assert s.ledgers()["insurance_reserved"] == 0 and s.core.r.n_liq == 0
    assert conservation(s, deposits) and s.audit() == 0


def test_handle_transfer_and_loop_order():
    from rsx_appliance.records import encode as enc
    from rsx_appliance.risk import ShardLoop

    s, me = mk()
    rec = enc(RecordType.DEPOSIT, user_id=5, amount=10**9, request_id=rid())
    assert s.handle_transfer(rec) and s.account(5)["collateral"] == 10**9
    loop = ShardLoop(s)
    o = new_order(5, BUY, 10_000, 1000)
    # fills first, own inputs, then requests: the deposit lands before the order is checked
    out = loop.step(T0 + SEC, me=[me.config(config_version=2, maker_fee_bps=0, taker_fee_bps=0,
                                            max_funding_rate_bps=0)],
                    own=[lambda sh: sh.deposit(6, 10**9, rid())],
                    requests=[new_order(6, BUY, 10_000, 1000), o])
    assert out.gateway_records() == [] and len(out.me_records()) == 2


def test_periodic_snapshot_from_tick(tmp_path):
    s, me = mk(RiskParams(liq_base_slip_bps=10, snapshot_interval_ns=5 * SEC))
    s.snapshot_dir = str(tmp_path)
    s.tick(T0 + SEC)
    s.tick(T0 + 7 * SEC)
    from rsx_appliance.risk.snapshot import list_snapshots
    assert len(list_snapshots(str(tmp_path))) == 1


def test_partial_adl_when_the_shard_lacks_opposite_interest():
    """With several shards the opposite positions may live elsewhere: what the shard can close is
    closed at the mark (no charges), the user stays in liquidation and rounds go on at max slip."""
    from rsx_appliance.risk import vshard_of

    table = [0] * 4096
    table[vshard_of(50)] = 1                          # the big short lives on shard 1
    s = make_shard(params=RiskParams(liq_base_slip_bps=10), vshard_owner=table)
    me = ME(ts=T0)
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=0, max_funding_rate_bps=0))
    s.clock = T0
    s.deposit(1, 6_000_000, rid())
    s.deposit(3, 10**10, rid())
    s.deposit(4, 10**10, rid())
    s.on_me(me.fill(1, 50, BUY, 10_000, Q))           # 1's counterparty is on the other shard
    s.on_me(me.fill(4, 3, BUY, 10_000, 400_000))      # 3 is short 0.4 here
    out = s.set_mark(SYM, 9_000)
    adl = liq_recs(out, LiqKind.ADL)
    assert [(a.counterparty_user_id, a.qty, a.shortfall) for a in adl] == [(3, 400_000, 0)]
    assert liq_recs(out, LiqKind.DONE) == [] and s.account(1)["in_liquidation"]
    assert s.position(1, SYM)["net"] == 600_000
    out = s.tick(s.clock + 2 * SEC)                   # no more counterparty: back to the book
    (r,) = liq_recs(out, LiqKind.ROUND)
    assert r.qty == 600_000 and r.slippage_bps == s.params.liq_max_slip_bps
    assert s.audit() == 0


def test_flat_account_in_debt_is_settled_by_the_fund():
    """A reduce-only close at a loss can leave a flat account negative: the fund settles it."""
    s, me = mk()
    open_long(s, me, 1, 6_000_000)
    fund0 = s.ledgers()["insurance_fund"]
    out = s.on_me(me.fill(1, 99, SELL, 9_000, Q))     # closes at -1e7 with 6e6 of collateral
    assert [(x.kind, x.shortfall) for x in liq_recs(out)] == [(LiqKind.INSURANCE, 4_000_000), (LiqKind.DONE, 0)]
    assert s.account(1)["collateral"] == 0 and s.ledgers()["insurance_fund"] == fund0 - 4_000_000
