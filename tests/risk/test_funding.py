"""Funding: rate rule, zero-sum settlement, exactly once across crashes (specs/risk.md 6)."""

from fractions import Fraction

import pytest

from rsx_appliance.errors import Rejected
from rsx_appliance.records import RecordType
from rsx_appliance.risk import WalJournal, RiskShard, shard_stream_id
from rsx_appliance.risk.funding import funding_rate_e8

from .helpers import BUY, ME, SEC, SYM, make_shard, mark_rec, rid

INTERVAL = 8 * SEC          # the helpers' CONFIG_APPLIED uses 8 s intervals


def test_rate_rule():
    # F = P + clamp(I - P, -C, C), then +-cap
    assert funding_rate_e8(0, 10_000, 50_000, 100) == 10_000            # interest only
    assert funding_rate_e8(30_000, 10_000, 50_000, 100) == 10_000      # |I-P| within the clamp: F = I
    assert funding_rate_e8(200_000, 10_000, 50_000, 100) == 150_000    # rich perp: longs pay more
    assert funding_rate_e8(-200_000, 10_000, 50_000, 100) == -150_000  # cheap perp: shorts pay
    assert funding_rate_e8(10**8, 10_000, 50_000, 100) == 1_000_000    # capped at 100 bps
    assert funding_rate_e8(10**8, 10_000, 50_000, 0) == 0              # cap 0: no funding


@pytest.fixture
def env():
    s = make_shard()
    me = ME(ts=1000 * SEC)
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=0))
    for u in (1, 2, 3, 4):
        s.deposit(u, 10**12, rid())
    # 1 long 3_333_337, 2 short 1_111_111, 3 short 2_222_226; 4 flat
    s.on_me(me.fill(1, 2, BUY, 10_007, 1_111_111) + me.fill(1, 3, BUY, 10_007, 2_222_226))
    s.set_mark(SYM, 10_013)
    return s, me


def payments(out):
    return {r.user_id: r.amount for r in out.gateway_records() if r.type == RecordType.FUNDING_PAYMENT}


def test_zero_sum_with_stated_rounding(env):
    s, _ = env
    s.clock = 132 * INTERVAL                    # intervals up to 131 have ended
    before = {u: s.account(u)["collateral"] for u in (1, 2, 3, 4)}
    clearing0 = s.ledgers()["funding_clearing"]
    rate = 123_457                                   # force an awkward rate through the interest term
    s.set_params(s.params.__class__(**{**s.params.__dict__, "funding_interest_e8": rate,
                                       "funding_premium_clamp_e8": 10**8}))
    out = s.settle_funding(SYM, 130)
    pay = payments(out)
    assert 4 not in pay                                       # flat pays nothing
    exact = {u: Fraction(abs(s.position(u, SYM)["net"]) * 10_013 * rate, 100 * 10**8) for u in (1, 2, 3)}
    assert pay[1] == -(-(-exact[1].numerator // exact[1].denominator))   # payer: ceil
    assert pay[1] == -int(-(-exact[1] // 1))
    assert pay[2] == int(exact[2] // 1) and pay[3] == int(exact[3] // 1)  # receivers: floor
    clearing = s.ledgers()["funding_clearing"] - clearing0
    assert sum(pay.values()) + clearing == 0                  # exactly zero-sum
    assert 0 <= clearing <= 3                                 # the clearing account absorbs the dust
    for u in (1, 2, 3):
        assert s.account(u)["collateral"] == before[u] + pay[u]
        assert s.position(u, SYM)["funding"] == pay[u]
    rate_rec = [r for r in out.gateway_records() if r.type == RecordType.FUNDING_RATE][0]
    assert rate_rec.rate_e8 == rate and rate_rec.interval_id == 130 and rate_rec.mark_px == 10_013


def test_idempotent_per_interval(env):
    s, _ = env
    s.clock = 132 * INTERVAL
    with pytest.raises(Rejected):
        s.settle_funding(SYM, 132)             # not ended yet
    s.settle_funding(SYM, 130)
    snap = s.canonical_state()
    out = s.settle_funding(SYM, 130)
    assert out.gateway_records() == [] and s.canonical_state() == snap
    s.settle_funding(SYM, 129)                 # older than the last settled: nothing
    assert s.canonical_state() == snap


def test_tick_settles_each_missed_interval_once(env):
    s, _ = env
    last = s.funding_last[SYM]
    out = s.tick((last + 4) * INTERVAL)         # intervals last+1 .. last+3 ended
    rates = [r.interval_id for r in out.gateway_records() if r.type == RecordType.FUNDING_RATE]
    assert rates == [last + 1, last + 2, last + 3]
    out = s.tick((last + 4) * INTERVAL + 1)
    assert [r for r in out.gateway_records() if r.type == RecordType.FUNDING_RATE] == []


def test_premium_from_our_book_makes_longs_pay(env):
    s, me = env
    base = (s.funding_last[SYM] + 2) * INTERVAL   # inside the next interval
    # index 100.00 from two sources; our book trades 1 % rich
    for i in range(5):
        t = base + i * SEC
        s.on_me(me.heartbeat(t) + me.bbo(10_090, 10**6, 10_112, 10**6))
        s.on_mark(mark_rec(10_000, t, 1) + mark_rec(10_002, t, 2), t)
        s.tick(t)
    ps = s.prices[SYM]
    assert ps.index == 10_001 and ps.acc[base // INTERVAL][1] == 5 and ps.acc[base // INTERVAL][0] > 0
    assert s.core.symbols["mark"][SYM] > 10_001             # mark = index + smoothed premium
    out = s.tick(base + INTERVAL)
    pay = payments(out)
    rate = [r for r in out.gateway_records() if r.type == RecordType.FUNDING_RATE][0].rate_e8
    prem = ((10_090 + 10_112) // 2 - 10_001) * 10**8 // 10_001
    assert rate == prem - 50_000 > 10_000 and pay[1] < 0 and pay[2] > 0 and pay[3] > 0


def _fresh(tmp_path):
    j = WalJournal(tmp_path / "j", shard_stream_id(0))
    s = RiskShard.create(j)
    me = ME(ts=1000 * SEC)
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=0))
    for u in (1, 2):
        s.deposit(u, 10**12, rid())
    s.on_me(me.fill(1, 2, BUY, 10_000, 5_000_000))
    s.set_mark(SYM, 10_050)
    s.clock = 2000 * SEC
    return s, me, j


def test_exactly_once_crash_after_commit(tmp_path, monkeypatch):
    s, me, j = _fresh(tmp_path)
    s.snapshot_dir = str(tmp_path / "snap")
    s.snapshot()
    coll_before = s.account(1)["collateral"]
    # the process dies after the settlement is durable but before it is applied
    monkeypatch.setattr(RiskShard, "_apply_batch", lambda self, recs: (_ for _ in ()).throw(SystemExit))
    with pytest.raises(SystemExit):
        s.settle_funding(SYM, 200)
    monkeypatch.undo()
    j.close()
    j2 = WalJournal(tmp_path / "j", shard_stream_id(0))
    r = RiskShard.recover(j2, {SYM: me.source}, snapshot_dir=str(tmp_path / "snap"))
    paid = r.account(1)["collateral"] - coll_before
    assert paid < 0 and r.funding_last[SYM] == 200
    assert r.account(2)["collateral"] - 10**12 == -paid - r.ledgers()["funding_clearing"]
    r.clock = max(r.clock, 2000 * SEC)
    out = r.settle_funding(SYM, 200)               # once only
    assert out.gateway_records() == [] and r.account(1)["collateral"] - coll_before == paid


def test_exactly_once_crash_before_commit(tmp_path, monkeypatch):
    s, me, j = _fresh(tmp_path)
    coll_before = s.account(1)["collateral"]
    real_append = WalJournal.append

    def torn(self, records):
        records = list(records)
        real_append(self, records[:-2])          # payments reach the disk, the rate (commit) does not
        raise SystemExit

    monkeypatch.setattr(WalJournal, "append", torn)
    with pytest.raises(SystemExit):
        s.settle_funding(SYM, 200)
    monkeypatch.undo()
    j.close()
    j2 = WalJournal(tmp_path / "j", shard_stream_id(0))
    r = RiskShard.recover(j2, {SYM: me.source})
    assert r.account(1)["collateral"] == coll_before and r.funding_last.get(SYM, -1) < 200
    r.set_mark(SYM, 10_050)                         # prices come back with the next inputs
    r.clock = max(r.clock, 2000 * SEC)
    r.settle_funding(SYM, 200)
    once = r.account(1)["collateral"]
    assert once < coll_before
    j2.close()
    r2 = RiskShard.recover(WalJournal(tmp_path / "j", shard_stream_id(0)), {SYM: me.source})
    assert r2.account(1)["collateral"] == once        # the aborted records are skipped again
    assert r2.canonical_state(money_only=True) == r.canonical_state(money_only=True)
