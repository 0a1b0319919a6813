"""Sharding by virtual shards (specs/risk.md 10) and index/mark prices (specs/risk.md 5)."""

import numpy as np
import pytest

from rsx_appliance.codes import Reason
from rsx_appliance.errors import Rejected
from rsx_appliance.risk import vshard_of
from rsx_appliance.risk.enums import LiqKind, OrderFlag, Side, Stp, SymbolStatus, Tif
from rsx_appliance.risk.prices import MarkSource, PriceState, median

from .helpers import ME, SEC, SYM, make_shard, mark_rec, new_order, rid

NOW = 5000 * SEC


def _fmix32(h):
    # the reference MurmurHash3 finaliser (test oracle)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def test_vshard_hash_is_fixed():
    # MurmurHash3 fmix32 & 4095: these values must never change (users would move shards)
    users = (0, 1, 2, 3, 1000, 2**32 - 1)
    assert [vshard_of(u) for u in users] == [_fmix32(u) & 4095 for u in users]
    assert [vshard_of(u) for u in users] == [0, 2231, 774, 1063, 1624, 3897]
    counts = np.bincount([vshard_of(u) for u in range(200_000)], minlength=4096)
    assert counts.min() > 20 and counts.max() < 80          # spread evenly


def test_moving_a_vshard_moves_its_users():
    s = make_shard()
    me = ME()
    s.on_me(me.config())
    s.deposit(42, 10**9, rid())
    v = vshard_of(42)
    s.set_vshard_owner(v, 7)
    out = s.submit(new_order(42, 0, 10_000, 100), NOW)
    assert out.gateway_records()[0].reason == Reason.WRONG_SHARD
    with pytest.raises(Rejected) as exc:
        s.deposit(42, 1, rid())
    assert exc.value.reason == Reason.WRONG_SHARD
    s.set_vshard_owner(v, 0)
    assert s.submit(new_order(42, 0, 10_000, 100), NOW).gateway_records() == []


def test_two_shards_split_the_users():
    table = [u % 2 for u in range(4096)]
    s0, s1 = make_shard(vshard_owner=table), make_shard(shard_id=1, vshard_owner=table)
    users = list(range(1, 200))
    owned0 = {u for u in users if vshard_of(u) % 2 == 0}
    for s, mine in ((s0, owned0), (s1, set(users) - owned0)):
        for u in users:
            if u in mine:
                s.deposit(u, 10, rid())
            else:
                with pytest.raises(Rejected):
                    s.deposit(u, 10, rid())
    assert s0.core.r.n_users + s1.core.r.n_users == len(users)


def test_median_and_index_staleness():
    assert median([5]) == 5 and median([3, 1, 2]) == 2 and median([1, 2, 3, 10]) == 2
    assert median([10, 11]) == 10
    ps = PriceState()
    ps.on_source(1, 100, 0)
    ps.on_source(2, 104, 5 * SEC)
    ps.on_source(3, 102, 5 * SEC)
    assert ps.compute_index(6 * SEC, 10 * SEC) == 102
    assert ps.compute_index(12 * SEC, 10 * SEC) == 103      # source 1 went stale
    ps.on_source(2, 50, 1 * SEC)                            # an older observation is ignored
    assert ps.sources[2] == (104, 5 * SEC)
    assert ps.compute_index(30 * SEC, 10 * SEC) is None
    ps.on_source(0, 99, 29 * SEC)                           # the composite as a fallback
    assert ps.compute_index(30 * SEC, 10 * SEC) == 99


def test_mark_fallback_chain():
    ps = PriceState()
    assert ps.update_mark(None, None, 500) == 0 and ps.mark_source == MarkSource.NONE
    assert ps.update_mark(None, 10_100, 500) == 10_100 and ps.mark_source == MarkSource.BOOK
    ps.ema_premium = 40
    assert ps.update_mark(10_000, 10_100, 500) == 10_040 and ps.mark_source == MarkSource.INDEX_PREMIUM
    ps.ema_premium = 4_000
    assert ps.update_mark(10_000, 14_000, 500) == 10_500                  # clamped to the band
    assert ps.update_mark(10_000, None, 500) == 10_000 and ps.mark_source == MarkSource.INDEX
    assert ps.update_mark(None, None, 500) == 10_000 and ps.mark_source == MarkSource.LAST


def test_impact_mid_needs_a_fresh_thick_book():
    s = make_shard()
    me = ME(ts=NOW)
    s.on_me(me.config())
    s.on_me(me.bbo(9_990, 10, 10_010, 10**6))
    s.clock = me.ts
    s.set_params(s.params.__class__(**{**s.params.__dict__, "impact_notional": 1000}))
    ps = s.prices[SYM]
    value = lambda p, q: s.core.value(SYM, p, q)
    assert ps.impact_mid(s._bbo(SYM), me.ts, SEC, 1000, value) is None     # bid side too thin
    assert ps.impact_mid(s._bbo(SYM), me.ts, SEC, 0, value) == 10_000
    assert ps.impact_mid(s._bbo(SYM), me.ts + 2 * SEC, SEC, 0, value) is None   # ME silent: stale


def test_marks_flow_from_records():
    s = make_shard()
    me = ME(ts=NOW)
    s.on_me(me.config())
    s.on_mark(mark_rec(10_000, NOW, 1) + mark_rec(10_020, NOW, 2) + mark_rec(9_500, NOW, 3), NOW)
    assert s.core.symbols["mark"][SYM] == 10_000 and s.prices[SYM].index == 10_000
    s.on_mark(mark_rec(5_000, NOW + 1, 3), NOW + 1)        # 50 % off the index: refused
    assert s.prices[SYM].sources[3] == (9_500, NOW) and s.counters()["marks_refused"] == 1


def test_enums_match_the_c_records():
    """The Python mirrors of types.h: a LIQUIDATION order built here is what the C checks accept."""
    s = make_shard()
    me = ME(ts=NOW)
    s.on_me(me.config())
    s.deposit(1, 10**9, rid())
    ok = new_order(1, Side.SELL, 10_000, 10, tif=Tif.FOK, stp=Stp.NONE, flags=OrderFlag.POST_ONLY)
    assert s.submit(ok, NOW).gateway_records() == []
    bad = new_order(1, Side.SELL, 10_000, 10, flags=OrderFlag.LIQUIDATION)
    assert s.submit(bad, NOW).gateway_records()[0].reason == Reason.BAD_FLAGS
    assert new_order(1, 2, 1, 1)  # side 2 is out of the enum
    assert s.submit(new_order(1, 2, 10_000, 10), NOW).gateway_records()[0].reason == Reason.BAD_SIDE
    assert s.submit(new_order(1, 0, 10_000, 10, tif=Tif.FOK + 1), NOW).gateway_records()[0].reason == Reason.BAD_TIF
    assert s.submit(new_order(1, 0, 10_000, 10, stp=Stp.NONE + 1), NOW).gateway_records()[0].reason == Reason.BAD_STP
    s.on_me(me.config(config_version=2, status=SymbolStatus.HALTED))
    assert s.submit(new_order(1, 0, 10_000, 10), NOW).gateway_records()[0].reason == Reason.SYMBOL_HALTED
    assert [k.value for k in LiqKind] == [1, 2, 3, 4]
