"""Every bad input is refused with a typed reason and changes no state (specs/risk.md 9.3)."""

import pytest

from rsx_appliance.codes import Reason
from rsx_appliance.errors import ConfigError, RecordCrcError, Rejected
from rsx_appliance.records import RecordType, encode
from rsx_appliance.risk import (Capacity, CapacityError, JournalError, RiskParams, StreamError,
                                StreamGapError, SymbolRiskParams, Tier, vshard_of)

from .helpers import BUY, ME, SEC, SELL, SYM, make_shard, mark_rec, oid, rid

NOW = 2000 * SEC


@pytest.fixture
def env():
    table = [0] * 4096
    table[vshard_of(500)] = 3                  # user 500 belongs to shard 3
    s = make_shard(vshard_owner=table)
    me = ME()
    s.on_me(me.config())
    s.deposit(1, 10**9, rid())
    s.deposit(2, 10**9, rid())
    s.on_me(me.fill(1, 2, BUY, 10_000, 1_000_000))
    s.tick(NOW)              # the clock is where the bad inputs arrive: time passing is not a change
    return s, me


def unchanged(s, fn):
    before = s.canonical_state()
    jseq = s.journal.last_seq
    try:
        return fn()
    finally:
        assert s.canonical_state() == before
        assert s.journal.last_seq == jseq


@pytest.mark.parametrize("user,amount,req,reason", [
    (1, 0, None, Reason.AMOUNT_NOT_POSITIVE),
    (1, -5, None, Reason.AMOUNT_NOT_POSITIVE),
    (1, 2**63, None, Reason.VALUE_OUT_OF_RANGE),
    (1, 2**63 - 1, None, Reason.VALUE_OUT_OF_RANGE),       # the balance would overflow
    (500, 10, None, Reason.WRONG_SHARD),
    (1, 1.5, None, Reason.BAD_NUMBER),
    (1, True, None, Reason.BAD_NUMBER),
    (-1, 10, None, Reason.UNKNOWN_USER),
])
def test_bad_deposits(env, user, amount, req, reason):
    s, _ = env
    with pytest.raises(Rejected) as exc:
        unchanged(s, lambda: s.deposit(user, amount, req or rid()))
    assert exc.value.reason == reason


def test_duplicate_request_id(env):
    s, _ = env
    r = rid()
    s.deposit(1, 5, r)
    with pytest.raises(Rejected) as exc:
        unchanged(s, lambda: s.deposit(1, 5, r))
    assert exc.value.reason == Reason.DUPLICATE_REQUEST
    with pytest.raises(Rejected) as exc:
        unchanged(s, lambda: s.withdraw(1, 5, r))
    assert exc.value.reason == Reason.DUPLICATE_REQUEST


def test_unknown_asset(env):
    s, _ = env
    with pytest.raises(Rejected) as exc:
        unchanged(s, lambda: s.deposit(1, 5, rid(), asset_id=3))
    assert exc.value.reason == Reason.VALUE_OUT_OF_RANGE


@pytest.mark.parametrize("user,amount,reason", [
    (77, 1, Reason.UNKNOWN_USER),
    (1, 10**9, Reason.INSUFFICIENT_BALANCE),
    (1, -1, Reason.AMOUNT_NOT_POSITIVE),
    (500, 1, Reason.WRONG_SHARD),
    (0, 10**15, Reason.INSUFFICIENT_BALANCE),                # the insurance fund cannot go negative
])
def test_bad_withdrawals(env, user, amount, reason):
    s, _ = env
    with pytest.raises(Rejected) as exc:
        unchanged(s, lambda: s.withdraw(user, amount, rid()))
    assert exc.value.reason == reason


def _order(**kw):
    base = dict(symbol_id=SYM, user_id=1, side=0, tif=0, flags=0, stp=0, price=10_000, qty=1000,
                order_id=oid(), client_id=b"x")
    base.update(kw)
    return encode(RecordType.NEW_ORDER, **base)


@pytest.mark.parametrize("fields,reason", [
    (dict(symbol_id=7), Reason.UNKNOWN_SYMBOL),
    (dict(symbol_id=10**6), Reason.UNKNOWN_SYMBOL),
    (dict(user_id=500), Reason.WRONG_SHARD),
    (dict(user_id=77), Reason.UNKNOWN_USER),
    (dict(user_id=0), Reason.UNKNOWN_USER),
    (dict(side=2), Reason.BAD_SIDE),
    (dict(tif=3), Reason.BAD_TIF),
    (dict(stp=9), Reason.BAD_STP),
    (dict(flags=8), Reason.BAD_FLAGS),
    (dict(flags=4), Reason.BAD_FLAGS),
    (dict(price=0), Reason.PRICE_NOT_POSITIVE),
    (dict(price=-5), Reason.PRICE_NOT_POSITIVE),
    (dict(qty=0), Reason.QTY_NOT_POSITIVE),
    (dict(price=2**62, qty=4), Reason.NOTIONAL_OVERFLOW),
    (dict(price=2**40, qty=2**20), Reason.POSITION_LIMIT),
    (dict(qty=10**10), Reason.INSUFFICIENT_MARGIN),
])
def test_bad_orders_get_typed_failures(env, fields, reason):
    s, _ = env
    rec = _order(**fields)
    out = unchanged(s, lambda: s.submit(rec, NOW))
    (f,) = out.gateway_records()
    assert f.type == RecordType.ORDER_FAILED and f.reason == reason
    assert f.request_type == RecordType.NEW_ORDER and f.order_id.bytes == rec[16 + 32:16 + 48]
    assert out.to_me == b""


def test_off_tick_and_lot(env):
    s, me = env
    s.on_me(me.config(config_version=2, tick_size=5, lot_size=10, min_qty=10))
    for fields, reason in ((dict(price=10_001), Reason.PRICE_OFF_TICK), (dict(qty=1005), Reason.QTY_OFF_LOT)):
        out = unchanged(s, lambda: s.submit(_order(**fields), NOW))
        assert out.gateway_records()[0].reason == reason


def test_cancel_for_other_shard_and_unknown_user(env):
    s, _ = env
    for user, reason in ((500, Reason.WRONG_SHARD), (77, Reason.UNKNOWN_USER)):
        rec = encode(RecordType.CANCEL_ORDER, symbol_id=SYM, user_id=user, order_id=oid())
        out = unchanged(s, lambda: s.submit(rec, NOW))
        assert out.gateway_records()[0].reason == reason


def test_corrupt_request_bytes(env):
    s, _ = env
    rec = bytearray(_order())
    rec[40] ^= 1
    with pytest.raises(RecordCrcError):
        unchanged(s, lambda: s.submit(bytes(rec), NOW))


def test_me_stream_errors_change_nothing(env):
    s, me = env
    good = me.fill(1, 2, BUY, 10_000, 1)
    gap = me.fill(1, 2, BUY, 10_000, 1)
    with pytest.raises(StreamGapError):
        unchanged(s, lambda: s.on_me(gap))
    s.on_me(good + gap)
    other = ME(5)
    with pytest.raises(StreamError):
        unchanged(s, lambda: s.on_me(other.fill(1, 2, BUY, 10_000, 1)))      # symbol never configured
    wrong = encode(RecordType.NEW_ORDER, seq=me.seq + 1, symbol_id=SYM, user_id=1, order_id=oid())
    with pytest.raises(StreamError):
        unchanged(s, lambda: s.on_me(wrong))
    bad_cfg = ME(SYM)
    bad_cfg.seq = me.seq
    with pytest.raises(StreamError):
        unchanged(s, lambda: s.on_me(bad_cfg.config(price_decimals=0, qty_decimals=0)))   # pd+qd < cd
    crc = bytearray(me.fill(1, 2, BUY, 10_000, 1))
    crc[30] ^= 0x40
    with pytest.raises(RecordCrcError):
        unchanged(s, lambda: s.on_me(bytes(crc)))


def test_decimals_change_under_positions_refused(env):
    s, me = env
    with pytest.raises(StreamError):
        unchanged(s, lambda: s.on_me(me.config(config_version=2, price_decimals=3, qty_decimals=6)))


def test_bad_marks(env):
    s, _ = env
    with pytest.raises(Rejected) as exc:
        unchanged(s, lambda: s.on_mark(mark_rec(100, NOW, symbol_id=9), NOW))
    assert exc.value.reason == Reason.UNKNOWN_SYMBOL
    with pytest.raises(Rejected) as exc:
        unchanged(s, lambda: s.on_mark(_order(), NOW))
    assert exc.value.reason == Reason.BAD_REQUEST


def test_bad_parameters(env):
    s, _ = env
    with pytest.raises(ConfigError):
        RiskParams(liq_max_slip_bps=-1)
    with pytest.raises(ConfigError):
        SymbolRiskParams(tiers=(Tier(100, 500, 1000),))                # mmr > imr
    with pytest.raises(ConfigError):
        SymbolRiskParams(tiers=(Tier(100, 500, 100), Tier(50, 600, 200)))   # bounds must increase
    with pytest.raises(ConfigError):
        SymbolRiskParams(tiers=(Tier(2**54, 500, 100),))               # above 2^53
    with pytest.raises(Rejected):
        unchanged(s, lambda: s.set_symbol_params(9, SymbolRiskParams(liquidation_fee_bps=5)))


def test_table_full_stops_the_fill_without_change():
    s = make_shard(capacity=Capacity(max_users=3, max_positions=8, max_orders=8, max_symbols=4))
    me = ME()
    s.on_me(me.config())
    s.deposit(1, 10**9, rid())
    s.deposit(2, 10**9, rid())
    s.on_me(me.fill(1, 2, BUY, 10_000, 5))
    s.deposit(3, 10**9, rid())
    with pytest.raises(Rejected) as exc:
        unchanged(s, lambda: s.deposit(4, 10**9, rid()))
    assert exc.value.reason == Reason.OVERLOADED
    with pytest.raises(CapacityError):
        unchanged(s, lambda: s.on_me(me.fill(4, 1, SELL, 10_000, 5)))      # a fourth account


def test_journal_failure_changes_nothing(env):
    s, _ = env
    s.journal.fail_next = True
    with pytest.raises(JournalError):
        unchanged(s, lambda: s.deposit(1, 5, rid()))
