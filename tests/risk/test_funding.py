"""Funding: the mark process's rate on the positions at the interval boundary, zero-sum within a
shard and across shards, exactly once across crashes (specs/risk.md 6)."""

from fractions import Fraction

import numpy as np
import pytest

from rsx_appliance.errors import Rejected
from rsx_appliance.records import RecordType, encode
from rsx_appliance.risk import MemoryJournal, RiskShard, WalJournal, shard_stream_id, vshard_of

from .helpers import BUY, ME, SEC, SELL, SYM, make_shard, rid

INTERVAL = 8 * SEC          # the helpers' CONFIG_APPLIED uses 8 s intervals
T0 = 1000 * SEC             # interval 125 starts here; its boundary is 1008 s
K = 125


def rate(k, rate_e8, mark, sym=SYM, seq=1):
    return encode(RecordType.FUNDING_RATE, seq=seq, ts_ns=(k + 1) * INTERVAL, stream_id=0x40000000,
                  symbol_id=sym, interval_id=k, rate_e8=rate_e8, mark_px=mark, index_px=mark)


def cross(s, me, t):
    """The ME stream passes time t (a heartbeat, then a sequenced record)."""
    s.on_me(me.heartbeat(t) + me.bbo(10_000, 10**6, 10_010, 10**6))


def payments(out):
    return {r.user_id: r.amount for r in out.gateway_records() if r.type == RecordType.FUNDING_PAYMENT}


@pytest.fixture
def env():
    s = make_shard()
    me = ME(ts=T0)
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=0))
    for u in (1, 2, 3, 4):
        s.deposit(u, 10**12, rid())
    # 1 long 3_333_337, 2 short 1_111_111, 3 short 2_222_226; 4 flat
    s.on_me(me.fill(1, 2, BUY, 10_007, 1_111_111) + me.fill(1, 3, BUY, 10_007, 2_222_226))
    s.set_mark(SYM, 10_013)
    return s, me


def test_zero_sum_with_stated_rounding(env):
    s, me = env
    cross(s, me, (K + 1) * INTERVAL)
    assert set(s.funding.cuts[SYM]) == {K}
    before = {u: s.account(u)["collateral"] for u in (1, 2, 3, 4)}
    clearing0 = s.ledgers()["funding_clearing"]
    r = 123_457
    out = s.on_funding_rate(rate(K, r, 10_013))
    pay = payments(out)
    assert 4 not in pay                                       # flat pays nothing
    exact = {u: Fraction(abs(s.position(u, SYM)["net"]) * 10_013 * r, 100 * 10**8) for u in (1, 2, 3)}
    assert pay[1] == -int(-(-exact[1] // 1))                  # the payer rounds up
    assert pay[2] == int(exact[2] // 1) and pay[3] == int(exact[3] // 1)   # receivers down
    clearing = s.ledgers()["funding_clearing"] - clearing0
    assert sum(pay.values()) + clearing == 0                  # exactly zero-sum
    assert 0 <= clearing <= 3                                 # the clearing account absorbs the dust
    for u in (1, 2, 3):
        assert s.account(u)["collateral"] == before[u] + pay[u]
        assert s.position(u, SYM)["funding"] == pay[u]
    rr = [x for x in out.gateway_records() if x.type == RecordType.FUNDING_RATE][0]
    assert (rr.rate_e8, rr.interval_id, rr.mark_px, rr.stream_id) == (r, K, 10_013, s.stream_id)


def test_positions_as_of_the_boundary(env):
    """A fill after the boundary does not pay the interval; one before it does."""
    s, me = env
    s.on_me(me.fill(4, 2, BUY, 10_000, 1_000_000))            # before the boundary
    me.ts = (K + 1) * INTERVAL
    s.on_me(me.fill(4, 3, BUY, 10_000, 5_000_000)            # the first record past it: after the cut
            + me.fill(2, 4, BUY, 10_000, 1_000_000))
    assert s.position(4, SYM)["net"] == 5_000_000
    pay = payments(s.on_funding_rate(rate(K, 100_000, 10_000)))
    assert pay[4] == -(1_000_000 * 10_000 * 100_000 // (100 * 10**8))   # on the 1 unit it held at the boundary


def test_idempotent_per_interval(env):
    s, me = env
    cross(s, me, (K + 1) * INTERVAL)
    s.on_funding_rate(rate(K, 50_000, 10_013))
    snap = s.canonical_state()
    out = s.on_funding_rate(rate(K, 50_000, 10_013))          # the mark stream replayed: nothing
    assert out.gateway_records() == [] and s.canonical_state() == snap
    s.on_funding_rate(rate(K - 1, 50_000, 10_013))            # older than the last settled: nothing
    assert s.canonical_state() == snap and s.counters()["funding_duplicates"] == 2


def test_rate_before_its_cut_waits(env):
    s, me = env
    out = s.on_funding_rate(rate(K, 50_000, 10_013))          # the boundary has not come on the ME stream
    assert payments(out) == {} and s.counters()["funding_parked"] == 1
    me.ts = (K + 1) * INTERVAL
    out = s.on_me(me.bbo(10_000, 10**6, 10_010, 10**6))        # now it has: cut, then settle
    assert set(payments(out)) == {1, 2, 3}
    assert s.funding.last_settled[SYM] == K


def test_rate_is_clamped_to_the_symbol_cap(env):
    s, me = env
    cross(s, me, (K + 1) * INTERVAL)
    out = s.on_funding_rate(rate(K, 10**8, 10_013))           # 100 %: the config caps at 100 bps
    rr = [x for x in out.gateway_records() if x.type == RecordType.FUNDING_RATE][0]
    assert rr.rate_e8 == 100 * 10_000


def test_bad_rate_buffer_changes_nothing(env):
    s, me = env
    cross(s, me, (K + 1) * INTERVAL)
    before = s.canonical_state()
    with pytest.raises(Rejected):
        s.on_funding_rate(rate(K, 10_000, 10_013) + rate(K, 10_000, 10_013, sym=9))
    assert s.canonical_state() == before


def test_idle_me_is_cut_by_the_process_clock(env):
    s, me = env
    boundary = (K + 1) * INTERVAL
    s.tick(boundary + 50_000_000, me_idle=[SYM])              # 50 ms past: too early to be sure
    assert SYM not in s.funding.cuts or K not in s.funding.cuts[SYM]
    s.tick(boundary + 200_000_000, me_idle=[SYM])
    assert K in s.funding.cuts[SYM]
    assert s.core.symbols["me_ts"][SYM] == boundary + 100_000_000


def test_two_shards_pay_zero_sum_across_the_venue():
    """Users split over two shards, fed the same ME stream and the same rate: the venue's payments sum
    to minus the rounding dust."""
    users = list(range(1, 41))
    table = [0] * 4096
    for u in users[::2]:
        table[vshard_of(u)] = 1
    shards = [make_shard(shard_id=i, vshard_owner=table, journal=MemoryJournal(shard_stream_id(i)))
              for i in (0, 1)]
    me = ME(ts=T0)
    stream = me.config(maker_fee_bps=0, taker_fee_bps=0)
    rng = np.random.default_rng(7)
    for _ in range(200):
        t, m = (int(x) for x in rng.choice(users, 2, replace=False))
        stream += me.fill(t, m, int(rng.integers(0, 2)), int(rng.integers(9_000, 11_000)),
                          int(rng.integers(1, 3_000_000)))
    me.ts = (K + 1) * INTERVAL
    stream += me.bbo(10_000, 10**6, 10_010, 10**6)
    total, clearing, positions = 0, 0, 0
    for s in shards:
        for u in users:
            if s.core.owns(u):
                s.deposit(u, 10**12, rid())
        s.on_me(stream)
        out = s.on_funding_rate(rate(K, 87_654, 10_013))
        total += sum(payments(out).values())
        clearing += s.ledgers()["funding_clearing"]
        positions += sum(1 for u in users if s.core.owns(u) and s.position(u, SYM) and s.position(u, SYM)["net"])
    nets = sum(s.position(u, SYM)["net"] for s in shards for u in users
               if s.core.owns(u) and s.position(u, SYM))
    assert nets == 0                                          # the longs of both shards hold the shorts
    assert -positions <= total <= 0                           # payers up, receivers down: the dust
    assert total + clearing == 0


def _fresh(tmp_path):
    j = WalJournal(tmp_path / "j", shard_stream_id(0))
    s = RiskShard.create(j)
    me = ME(ts=T0)
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=0))
    for u in (1, 2):
        s.deposit(u, 10**12, rid())
    s.on_me(me.fill(1, 2, BUY, 10_000, 5_000_000))
    s.set_mark(SYM, 10_050)
    cross(s, me, (K + 1) * INTERVAL)
    return s, me, j


def test_exactly_once_crash_after_commit(tmp_path, monkeypatch):
    s, me, j = _fresh(tmp_path)
    s.snapshot_dir = str(tmp_path / "snap")
    s.snapshot()
    coll_before = s.account(1)["collateral"]
    # the process dies after the settlement is durable but before it is applied
    monkeypatch.setattr(RiskShard, "apply_batch", lambda self, recs: (_ for _ in ()).throw(SystemExit))
    with pytest.raises(SystemExit):
        s.on_funding_rate(rate(K, 80_000, 10_050))
    monkeypatch.undo()
    j.close()
    r = RiskShard.recover(WalJournal(tmp_path / "j", shard_stream_id(0)), {SYM: me.source},
                          snapshot_dir=str(tmp_path / "snap"))
    paid = r.account(1)["collateral"] - coll_before
    assert paid < 0 and r.funding.last_settled[SYM] == K
    assert r.account(2)["collateral"] - 10**12 == -paid - r.ledgers()["funding_clearing"]
    out = r.on_funding_rate(rate(K, 80_000, 10_050))         # the mark stream replays it: once only
    assert out.gateway_records() == [] and r.account(1)["collateral"] - coll_before == paid


def test_exactly_once_crash_before_commit(tmp_path, monkeypatch):
    s, me, j = _fresh(tmp_path)
    coll_before = s.account(1)["collateral"]
    real_append = WalJournal.append

    def torn(self, buf):
        real_append(self, bytearray(buf[:-160]))     # payments reach the disk, the rate and commit do not
        raise SystemExit

    monkeypatch.setattr(WalJournal, "append", torn)
    with pytest.raises(SystemExit):
        s.on_funding_rate(rate(K, 80_000, 10_050))
    monkeypatch.undo()
    j.close()
    r = RiskShard.recover(WalJournal(tmp_path / "j", shard_stream_id(0)), {SYM: me.source})
    assert r.account(1)["collateral"] == coll_before and r.funding.last_settled.get(SYM, -1) < K
    assert K in r.funding.cuts[SYM]                          # the cut itself was committed before
    r.on_funding_rate(rate(K, 80_000, 10_050))               # the mark stream replays it: settled now
    once = r.account(1)["collateral"]
    assert once < coll_before
    r.journal.close()
    r2 = RiskShard.recover(WalJournal(tmp_path / "j", shard_stream_id(0)), {SYM: me.source})
    assert r2.account(1)["collateral"] == once                # the aborted records are skipped again
    assert r2.canonical_state(money_only=True) == r.canonical_state(money_only=True)
