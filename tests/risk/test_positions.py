"""Position accounting through fills (specs/risk.md 3.1, 3.4, 8.3)."""

import pytest

from rsx_appliance.risk import StreamError, StreamGapError

from .helpers import BUY, LIQ, ME, SELL, SYM, make_shard, rid

# pd=2, qd=6, cd=6: D = 100. Price 100 = 1.00; qty 1_000_000 = 1 unit.


@pytest.fixture
def env():
    s = make_shard()
    me = ME()
    s.on_me(me.config(maker_fee_bps=0, taker_fee_bps=0))
    for u in (1, 2, 3):
        s.deposit(u, 10**12, rid())
    return s, me


def fill(s, me, taker, maker, side, price, qty, **kw):
    s.on_me(me.fill(taker, maker, side, price, qty, **kw))


def pos(s, u):
    return s.position(u, SYM)


def conservation(s):
    """sum(collateral) + ledgers - sum(cost) == deposits - withdrawals (single shard)."""
    st = s.canonical_state(money_only=True)
    coll = sum(a[2] for a in st["accounts"])
    cost = sum(p[3] for p in st["positions"])
    return coll + sum(st["ledgers"]) - cost


def test_open_long_and_short(env):
    s, me = env
    fill(s, me, 1, 2, BUY, 10_000, 1_000_000)  # 1 unit at 100.00 -> V = 10_000 * 1e6 / 100 = 1e8
    assert pos(s, 1)["net"] == 1_000_000 and pos(s, 1)["cost"] == 100_000_000
    assert pos(s, 2)["net"] == -1_000_000 and pos(s, 2)["cost"] == -100_000_000
    assert pos(s, 1)["version"] == pos(s, 2)["version"] == 1
    assert pos(s, 1)["last_seq"] == me.seq


def test_add_weighted_entry_and_truncation(env):
    s, me = env
    fill(s, me, 1, 2, BUY, 10_000, 3)     # V = floor(30000/100) = 300
    fill(s, me, 1, 2, BUY, 10_001, 3)     # V = floor(30003/100) = 300 (truncated)
    assert pos(s, 1) ["net"] == 6 and pos(s, 1)["cost"] == 600
    assert pos(s, 1)["version"] == 2


def test_partial_close_keeps_average(env):
    """long 10 cost 1000, sell 3 at 110 -> close_cost 300, rpnl +30, long 7 cost 700."""
    s, me = env
    fill(s, me, 1, 2, BUY, 100, 1000)      # V = 100*1000/100 = 1000 for 1000 raw qty
    fill(s, me, 1, 3, SELL, 110, 300)      # V = 330
    p = pos(s, 1)
    assert (p["net"], p["cost"], p["rpnl"]) == (700, 700, 30)
    assert s.account(1)["collateral"] == 10**12 + 30


def test_full_close_is_flat(env):
    s, me = env
    fill(s, me, 1, 2, BUY, 100, 1000)
    fill(s, me, 1, 2, SELL, 95, 1000)
    p = pos(s, 1)
    assert (p["net"], p["cost"], p["value"], p["im"], p["mm"]) == (0, 0, 0, 0, 0)
    assert p["rpnl"] == -50 and pos(s, 2)["rpnl"] == 50
    assert s.account(1)["positions"] == 0


def test_fill_at_entry_realises_zero(env):
    s, me = env
    fill(s, me, 1, 2, BUY, 100, 1000)
    fill(s, me, 1, 3, SELL, 100, 400)
    assert pos(s, 1)["rpnl"] == 0


def test_flip_long_to_short_and_back(env):
    """long 10 cost 1000, sell 15 at 110 -> rpnl +100, short 5 cost -550."""
    s, me = env
    fill(s, me, 1, 2, BUY, 100, 1000)
    fill(s, me, 1, 3, SELL, 110, 1500)
    p = pos(s, 1)
    assert (p["net"], p["cost"], p["rpnl"]) == (-500, -550, 100)
    fill(s, me, 1, 3, BUY, 100, 700)       # close 500 at 100 (+50), open long 200 at 100
    p = pos(s, 1)
    assert (p["net"], p["cost"], p["rpnl"]) == (200, 200, 150)
    assert conservation(s) == 3 * 10**12


def test_flip_splits_the_fill_value_exactly(env):
    """The close and open parts of a flip add up to the fill's value, so the fill stays zero-sum."""
    s, me = env
    fill(s, me, 1, 2, BUY, 7, 1)           # V = 0
    fill(s, me, 1, 3, SELL, 33, 7)         # V = floor(231/100) = 2; close 1 (V 0), open 6 with 2
    p = pos(s, 1)
    assert p["net"] == -6 and p["cost"] == -2
    assert conservation(s) == 3 * 10**12


def test_self_trade(env):
    """taker == maker: the position does not change, nothing is realised, both fees are charged."""
    s, me = env
    s.on_me(me.config(config_version=2, maker_fee_bps=-1, taker_fee_bps=5))
    fill(s, me, 1, 2, BUY, 100, 1000)            # long 1000 cost 1000 (fees: 0 and -0)
    fill(s, me, 1, 1, SELL, 120, 1_000_000)      # self-trade: V = 1_200_000
    p = pos(s, 1)
    assert p["net"] == 1000
    assert p["cost"] == 1000                     # unchanged: bought and sold the same
    assert p["rpnl"] == 0
    assert p["version"] == 3                     # one + two legs
    # taker fee floor(1.2e6*5/1e4)=600, maker rebate -floor(1.2e6*1/1e4)=-120
    assert p["fees"] == 600 - 120
    assert conservation(s) == 3 * 10**12


def test_tiny_fill_has_zero_value(env):
    s, me = env
    fill(s, me, 1, 2, BUY, 1, 1)
    p = pos(s, 1)
    assert p["net"] == 1 and p["cost"] == 0
    fill(s, me, 1, 2, SELL, 1, 1)
    assert pos(s, 1)["net"] == 0 and pos(s, 1)["cost"] == 0


def test_huge_values_without_overflow(env):
    s, me = env
    # the largest fill whose value fits: price * qty / 100 near 2^62
    price, qty = 2**31, 2**31 * 100 - 1
    fill(s, me, 1, 2, BUY, price, qty)
    assert pos(s, 1)["cost"] == price * qty // 100
    assert s.audit() == 0


def test_overflow_is_refused_and_changes_nothing(env):
    s, me = env
    q = 60 * 2**32                          # V = 0.6 * 2^63: fits once, not twice
    fill(s, me, 1, 2, BUY, 2**31, q)
    before = s.canonical_state()
    tip = s.tips()[SYM]
    with pytest.raises(StreamError) as exc:
        fill(s, me, 1, 2, BUY, 2**31, q)     # cost would pass int64
    assert exc.value.stop == 4
    assert s.canonical_state() == before and s.tips()[SYM] == tip


def test_value_overflow_refused(env):
    s, me = env
    before = s.canonical_state()
    with pytest.raises(StreamError):
        fill(s, me, 1, 2, BUY, 2**62, 2**10)
    assert s.canonical_state() == before


def test_fees_and_rebates_floor(env):
    s, me = env
    s.on_me(me.config(config_version=2, maker_fee_bps=-3, taker_fee_bps=7))
    fill(s, me, 1, 2, BUY, 12_345, 6_789)      # V = floor(12345*6789/100) = 838_102
    v = 12_345 * 6_789 // 100
    assert pos(s, 1)["fees"] == v * 7 // 10_000
    assert pos(s, 2)["fees"] == -(v * 3 // 10_000)          # rebate rounded down in magnitude
    led = s.ledgers()
    taker_fee = v * 7 // 10_000
    assert led["insurance_fund"] == taker_fee * 2000 // 10_000
    assert led["fee_revenue"] == taker_fee - taker_fee * 2000 // 10_000 - v * 3 // 10_000
    assert conservation(s) == 3 * 10**12


def test_liquidation_fill_pays_liquidation_fee_to_fund(env):
    s, me = env
    fill(s, me, 1, 2, SELL, 10_000, 1_000_000, taker_flags=LIQ)   # V = 1e8, liq fee 50 bps
    assert pos(s, 1)["fees"] == 100_000_000 * 50 // 10_000
    assert s.ledgers()["insurance_fund"] == 500_000


def test_dedup_by_seq_and_tip(env):
    s, me = env
    rec = me.fill(1, 2, BUY, 100, 1000)
    s.on_me(rec)
    before = s.canonical_state()
    s.on_me(rec)               # the same (symbol, seq) again: skipped
    assert s.canonical_state() == before
    assert s.core.r.dup_skipped == 1


def test_gap_stops_before_the_record(env):
    s, me = env
    a = me.fill(1, 2, BUY, 100, 1000)
    me.fill(1, 2, BUY, 100, 1000)          # seq lost in transit
    c = me.fill(1, 2, BUY, 100, 1000)
    with pytest.raises(StreamGapError) as exc:
        s.on_me(a + c)
    assert (exc.value.expected, exc.value.got) == (me.seq - 1, me.seq)
    assert pos(s, 1)["net"] == 1000        # the record before the gap was applied


def test_other_shard_users_are_ignored():
    table = [0] * 4096
    from rsx_appliance.risk import vshard_of
    table[vshard_of(99)] = 1                # user 99 lives on shard 1
    s = make_shard(vshard_owner=table)
    me = ME()
    s.on_me(me.config())
    s.deposit(1, 10**9, rid())
    s.on_me(me.fill(1, 99, BUY, 100, 1000))
    assert pos(s, 1)["net"] == 1000
    assert s.core.find_account(99) == -1
    s.on_me(me.fill(99, 1, BUY, 100, 1000))  # taker on the other shard: maker leg only
    assert pos(s, 1)["net"] == 0


def test_position_is_sum_of_fills(env):
    import random

    s, me = env
    rnd = random.Random(5)
    expect = {1: 0, 2: 0, 3: 0}
    for _ in range(300):
        t, m = rnd.sample([1, 2, 3], 2)
        side = rnd.choice([BUY, SELL])
        q = rnd.randint(1, 5000)
        fill(s, me, t, m, side, rnd.randint(50, 150), q)
        expect[t] += q if side == BUY else -q
        expect[m] -= q if side == BUY else -q
    for u in (1, 2, 3):
        assert pos(s, u)["net"] == expect[u]
    assert conservation(s) == 3 * 10**12
    assert s.audit() == 0
