"""Fixed-point numbers: Price, Qty, SymbolConfig and exact decimal conversion.

Every price and quantity is an int64 in the symbol's smallest unit
(specs/numbers.md). Human values cross the API as decimal strings; converting
one is exact or refused, never rounded: ``"50000.005"`` on a 2-decimal symbol is
a :class:`~rsx_appliance.errors.TooPreciseError`, ``"50000.01"`` on a 0.05 tick
an :class:`~rsx_appliance.errors.OffTickError`.

Validation of an order and the 128-bit products are done by the C core
(native/src/numbers.c), the same code the matching engine runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from decimal import Decimal, localcontext
from typing import Any

from ._native import ffi, lib
from .codes import Reason, SymbolStatus
from .errors import ConfigError, NotionalOverflowError, check, rejected

__all__ = ["Price", "Qty", "SymbolConfig", "INT64_MAX", "notional", "mul_div_floor",
           "SymbolStatus"]

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)

# A plain decimal: optional minus, digits, optional fraction. No exponent, no
# '+', no whitespace, no '_' (all of which Decimal() would accept).
_DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class _Raw(int):
    """An int64 raw value of one unit family; subclasses keep the kinds apart."""

    __slots__ = ()

    def __new__(cls, raw: int):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError(f"{cls.__name__} takes an int raw value, not {type(raw).__name__}")
        if not INT64_MIN <= raw <= INT64_MAX:
            raise rejected(Reason.VALUE_OUT_OF_RANGE, f"{cls.__name__}({raw})")
        return super().__new__(cls, raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"


class Price(_Raw):
    """A raw price: human price x 10**price_decimals."""

    __slots__ = ()


class Qty(_Raw):
    """A raw quantity: human quantity x 10**qty_decimals."""

    __slots__ = ()


def _parse(text: Any, decimals: int, too_precise: Reason) -> int:
    """Exact human -> raw conversion shared by prices and quantities."""
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise rejected(Reason.BAD_NUMBER, repr(text))
        value = text
    elif isinstance(text, str) and _DECIMAL_RE.fullmatch(text):
        value = Decimal(text)
    elif isinstance(text, int) and not isinstance(text, bool):
        value = Decimal(text)
    else:
        # floats are refused on purpose: 0.1 is not 1/10 in binary.
        raise rejected(Reason.BAD_NUMBER, repr(text))
    with localcontext() as ctx:
        ctx.prec = 80  # exact for any value that could fit in int64 after scaling
        scaled = value.scaleb(decimals)
        if scaled != scaled.to_integral_value():
            raise rejected(too_precise, f"{text} has more than {decimals} decimals")
        raw = int(scaled)
    if not INT64_MIN <= raw <= INT64_MAX:
        raise rejected(Reason.VALUE_OUT_OF_RANGE, str(text))
    return raw


def _format(raw: int, decimals: int) -> str:
    sign = "-" if raw < 0 else ""
    digits = str(abs(raw)).rjust(decimals + 1, "0")
    if decimals == 0:
        return sign + digits
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


@dataclass(frozen=True)
class SymbolConfig:
    """A symbol's trading rules (the CONFIG_APPLIED record's fields).

    Sizes are raw units. Rates are integer basis points; a negative maker fee
    is a rebate. Construction checks coherence in C and raises ConfigError.
    """

    symbol_id: int
    price_decimals: int
    qty_decimals: int
    tick_size: int
    lot_size: int
    min_qty: int = 0  # 0 = one lot
    max_qty: int = 0  # 0 = the largest multiple of the lot that fits int64
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    initial_margin_bps: int = 1000
    maintenance_margin_bps: int = 500
    status: int = SymbolStatus.ACTIVE
    config_version: int = 1
    _c: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.min_qty == 0 and isinstance(self.lot_size, int):
            object.__setattr__(self, "min_qty", self.lot_size)
        if self.max_qty == 0 and isinstance(self.lot_size, int) and self.lot_size > 0:
            object.__setattr__(self, "max_qty", INT64_MAX - INT64_MAX % self.lot_size)
        c = ffi.new("struct rsx_symbol_config *")
        limits = {"symbol_id": (0, 2**32 - 1), "price_decimals": (0, 255),
                  "qty_decimals": (0, 255), "status": (0, 255), "config_version": (0, 2**64 - 1),
                  "maker_fee_bps": (-(2**31), 2**31 - 1), "taker_fee_bps": (-(2**31), 2**31 - 1),
                  "initial_margin_bps": (0, 2**32 - 1), "maintenance_margin_bps": (0, 2**32 - 1)}
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(f"{name}={value!r} is not an integer in [{lo}, {hi}]")
            setattr(c, name, value)
        for name in ("tick_size", "lot_size", "min_qty", "max_qty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
                raise ConfigError(f"{name}={value!r} is not an int64")
            getattr(c, name).raw = value
        if lib.rsx_symbol_config_check(c) != 0:
            raise ConfigError(
                f"incoherent symbol config {self!r}: see specs/numbers.md (tick and lot > 0, "
                "lot <= min_qty <= max_qty on the lot grid, decimals <= 18, "
                "maintenance <= initial margin <= 10000 bps, |fees| <= 10000 bps, "
                "maker + taker fee >= 0)")
        object.__setattr__(self, "_c", c)

    # -- conversion ---------------------------------------------------------

    def price(self, text: str | Decimal | int) -> Price:
        """Exact decimal -> raw price; must be positive and on the tick grid."""
        raw = _parse(text, self.price_decimals, Reason.PRICE_TOO_PRECISE)
        if raw <= 0:
            raise rejected(Reason.PRICE_NOT_POSITIVE, str(text))
        if raw % self.tick_size:
            raise rejected(Reason.PRICE_OFF_TICK,
                           f"{text} is not a multiple of {self.format_price(self.tick_size)}")
        return Price(raw)

    def qty(self, text: str | Decimal | int) -> Qty:
        """Exact decimal -> raw quantity; must be positive and on the lot grid."""
        raw = _parse(text, self.qty_decimals, Reason.QTY_TOO_PRECISE)
        if raw <= 0:
            raise rejected(Reason.QTY_NOT_POSITIVE, str(text))
        if raw % self.lot_size:
            raise rejected(Reason.QTY_OFF_LOT,
                           f"{text} is not a multiple of {self.format_qty(self.lot_size)}")
        return Qty(raw)

    def format_price(self, raw: int) -> str:
        """Raw price -> decimal string with exactly price_decimals decimals."""
        return _format(int(raw), self.price_decimals)

    def format_qty(self, raw: int) -> str:
        return _format(int(raw), self.qty_decimals)

    # -- validation ---------------------------------------------------------

    def check_order(self, price: int, qty: int) -> None:
        """Raise the typed Rejected error the matching engine would give, or return."""
        p, q = Price(int(price)), Qty(int(qty))
        reason = lib.rsx_order_check(self._c, (int(p),), (int(q),))
        if reason != Reason.NONE:
            raise rejected(reason, f"price {int(p)} qty {int(q)}")

    def record_fields(self) -> dict[str, int]:
        """The fields of this config's CONFIG_APPLIED record."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    @classmethod
    def from_record(cls, rec: Any) -> "SymbolConfig":
        """Build from a decoded CONFIG_APPLIED record (or any mapping with its fields)."""
        return cls(**{f.name: int(rec[f.name]) for f in fields(cls) if not f.name.startswith("_")})


def notional(price: int, qty: int) -> int:
    """price x qty in raw units (scale 10**-(price_decimals + qty_decimals)).

    Computed with a 128-bit intermediate in C; raises NotionalOverflowError
    when the product does not fit in int64.
    """
    out = ffi.new("int64_t *")
    if lib.rsx_notional((int(Price(int(price))),), (int(Qty(int(qty))),), out) < 0:
        raise NotionalOverflowError(Reason.NOTIONAL_OVERFLOW, f"{int(price)} x {int(qty)}")
    return out[0]


def mul_div_floor(a: int, b: int, d: int) -> int:
    """floor(a x b / d) with a 128-bit intermediate; d > 0; raises on overflow."""
    for v in (a, b, d):
        if not INT64_MIN <= v <= INT64_MAX:
            raise rejected(Reason.VALUE_OUT_OF_RANGE, str(v))
    out = ffi.new("int64_t *")
    check(lib.rsx_mul_div_floor(a, b, d, out), "mul_div_floor")
    return out[0]
