"""Fixed-point numbers: exact conversion, typed refusals, 128-bit-safe products."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsx_appliance.codes import Reason
from rsx_appliance.errors import (ArithmeticOverflowError, BadNumberError, ConfigError,
                                  InvalidArgumentError, NotionalOverflowError, NotPositiveError,
                                  OffLotError, OffTickError, OutOfRangeError, Rejected,
                                  SizeLimitError, TooPreciseError)
from rsx_appliance.numbers import INT64_MAX, Price, Qty, SymbolConfig, mul_div_floor, notional

BTC = SymbolConfig(symbol_id=1, price_decimals=2, qty_decimals=6, tick_size=5, lot_size=1000,
                   min_qty=1000, max_qty=100_000_000_000, maker_fee_bps=-1, taker_fee_bps=5)


def test_exact_conversion_and_formatting():
    assert BTC.price("50000.05") == Price(5_000_005)
    assert BTC.price("50000") == 5_000_000
    assert BTC.price(Decimal("0.05")) == 5
    assert BTC.price(50000) == 5_000_000
    assert BTC.qty("0.002") == Qty(2000)
    assert BTC.format_price(5_000_005) == "50000.05"
    assert BTC.format_price(5) == "0.05"
    assert BTC.format_qty(1500) == "0.001500"
    assert repr(Price(3)) == "Price(3)"


@pytest.mark.parametrize("text,exc,reason", [
    ("50000.005", TooPreciseError, Reason.PRICE_TOO_PRECISE),  # never rounded to 50000.00
    ("50000.01", OffTickError, Reason.PRICE_OFF_TICK),
    ("0", NotPositiveError, Reason.PRICE_NOT_POSITIVE),
    ("-5", NotPositiveError, Reason.PRICE_NOT_POSITIVE),
    ("1e5", BadNumberError, Reason.BAD_NUMBER),
    ("+5", BadNumberError, Reason.BAD_NUMBER),
    (" 5", BadNumberError, Reason.BAD_NUMBER),
    ("1_000", BadNumberError, Reason.BAD_NUMBER),
    ("NaN", BadNumberError, Reason.BAD_NUMBER),
    ("5.", BadNumberError, Reason.BAD_NUMBER),
    ("", BadNumberError, Reason.BAD_NUMBER),
    (0.1, BadNumberError, Reason.BAD_NUMBER),
    (True, BadNumberError, Reason.BAD_NUMBER),
    (Decimal("Infinity"), BadNumberError, Reason.BAD_NUMBER),
    ("92233720368547758.08", OutOfRangeError, Reason.VALUE_OUT_OF_RANGE),
])
def test_price_refusals_are_typed(text, exc, reason):
    with pytest.raises(exc) as info:
        BTC.price(text)
    assert info.value.reason == reason
    assert isinstance(info.value, Rejected) and isinstance(info.value, ValueError)


def test_qty_refusals_are_typed():
    with pytest.raises(TooPreciseError) as info:
        BTC.qty("0.0000015")
    assert info.value.reason == Reason.QTY_TOO_PRECISE
    with pytest.raises(OffLotError):
        BTC.qty("0.0015")  # 1500 raw is not a multiple of the 1000 lot
    with pytest.raises(NotPositiveError):
        BTC.qty("0")


def test_check_order_uses_the_c_validation_order():
    BTC.check_order(5_000_000, 2000)
    cases = [((0, 0), Reason.PRICE_NOT_POSITIVE), ((5, 0), Reason.QTY_NOT_POSITIVE),
             ((6, 1500), Reason.PRICE_OFF_TICK), ((5, 1500), Reason.QTY_OFF_LOT),
             ((5, 100_000_001_000), Reason.QTY_ABOVE_MAX)]
    for (p, q), reason in cases:
        with pytest.raises(Rejected) as info:
            BTC.check_order(p, q)
        assert info.value.reason == reason
    big = SymbolConfig(symbol_id=2, price_decimals=0, qty_decimals=0, tick_size=1, lot_size=1)
    with pytest.raises(NotionalOverflowError):
        big.check_order(2**40, 2**40)
    with pytest.raises(SizeLimitError):
        SymbolConfig(symbol_id=3, price_decimals=0, qty_decimals=0, tick_size=1, lot_size=1,
                     min_qty=10).check_order(5, 9)
    with pytest.raises(OutOfRangeError):
        BTC.check_order(2**63, 1000)


def test_notional_and_floor_division_are_128_bit_safe():
    assert notional(3037000499, 3037000499) == 3037000499 ** 2
    with pytest.raises(NotionalOverflowError):
        notional(3037000500, 3037000500)
    with pytest.raises(NotionalOverflowError):
        notional(INT64_MAX, 2)
    assert mul_div_floor(INT64_MAX, INT64_MAX, INT64_MAX) == INT64_MAX
    assert mul_div_floor(-7, 3, 2) == -11
    with pytest.raises(ArithmeticOverflowError):
        mul_div_floor(INT64_MAX, 2, 1)
    with pytest.raises(InvalidArgumentError):
        mul_div_floor(1, 1, 0)


@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1),
       st.integers(1, 2**63 - 1))
def test_mul_div_floor_matches_python(a, b, d):
    want = (a * b) // d
    if -(2**63) <= want < 2**63:
        assert mul_div_floor(a, b, d) == want
    else:
        with pytest.raises(ArithmeticOverflowError):
            mul_div_floor(a, b, d)


@given(st.integers(1, (2**63 - 1) // 5).map(lambda k: k * 5))
def test_price_text_round_trip(raw):
    assert BTC.price(BTC.format_price(raw)) == raw


@pytest.mark.parametrize("kwargs", [
    dict(tick_size=0), dict(lot_size=-1), dict(min_qty=1500), dict(max_qty=500),
    dict(maintenance_margin_bps=2000, initial_margin_bps=1000), dict(price_decimals=19),
    dict(maker_fee_bps=-6, taker_fee_bps=5), dict(taker_fee_bps=20000), dict(status=7),
    dict(symbol_id=-1), dict(tick_size=1.5), dict(symbol_id=True),
])
def test_incoherent_configs_are_refused(kwargs):
    base = dict(symbol_id=1, price_decimals=2, qty_decimals=6, tick_size=5, lot_size=1000)
    with pytest.raises(ConfigError):
        SymbolConfig(**{**base, **kwargs})


def test_config_record_round_trip():
    from rsx_appliance.records import RecordType, decode, encode

    rec = decode(encode(RecordType.CONFIG_APPLIED, seq=1, stream_id=1, **BTC.record_fields()))
    assert SymbolConfig.from_record(rec) == BTC


def test_raw_types_refuse_out_of_range_and_non_ints():
    with pytest.raises(OutOfRangeError):
        Price(2**63)
    with pytest.raises(TypeError):
        Qty(1.0)
