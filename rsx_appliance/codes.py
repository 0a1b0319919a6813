"""The shared code tables: C return codes, order failure reasons, order statuses, wire enums.

Each table is defined once, in native/include/rsx/*.def; these enums are built
from the compiled C tables at import, so C, Python and the WebSocket API cannot
drift apart. specs/errors.md documents them (and tests/test_tables.py checks it).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from ._native import ffi, lib

__all__ = ["ErrorCode", "Reason", "Status", "Side", "Tif", "OrderFlag", "Stp", "SymbolStatus",
           "LiqKind", "QueryKind", "AccountFlag", "reason_message", "status_is_terminal"]


def _table(at, name) -> dict[str, int]:
    out: dict[str, int] = {}
    code = ffi.new("int *")
    i = 0
    while at(i, code) == 0:
        out[ffi.string(name(code[0])).decode()] = code[0]
        i += 1
    return out


#: Negative return codes of the C core (besides -errno).
ErrorCode = IntEnum("ErrorCode", _table(lib.rsx_err_at, lib.rsx_err_name), module=__name__)
ErrorCode.__doc__ = "Negative return codes of the C core (native/include/rsx/errors.def)."

#: Why an order was refused or ended (u16 in records, the same number in the WS API).
Reason = IntEnum("Reason", _table(lib.rsx_reason_at, lib.rsx_reason_name), module=__name__)
Reason.__doc__ = "Order failure and cancel reasons (native/include/rsx/reason.def)."

#: The status of an order (u8 in ORDER_DONE, the same number in the WS API).
Status = IntEnum("Status", _table(lib.rsx_status_at, lib.rsx_status_name), module=__name__)
Status.__doc__ = "Order statuses (native/include/rsx/status.def)."


# The small enums of native/include/rsx/types.h: record field values, stable once released.
# Their values come from the C compiler (native/cdef/types.cdef), never from a second copy.


class Side(IntEnum):
    BUY = lib.RSX_SIDE_BUY
    SELL = lib.RSX_SIDE_SELL


class Tif(IntEnum):
    GTC = lib.RSX_TIF_GTC
    IOC = lib.RSX_TIF_IOC
    FOK = lib.RSX_TIF_FOK


class OrderFlag(IntFlag):
    POST_ONLY = lib.RSX_ORDER_POST_ONLY
    REDUCE_ONLY = lib.RSX_ORDER_REDUCE_ONLY
    LIQUIDATION = lib.RSX_ORDER_LIQUIDATION


class Stp(IntEnum):
    """Self-trade prevention, chosen per order (the taker's mode decides)."""

    CANCEL_TAKER = lib.RSX_STP_CANCEL_TAKER
    CANCEL_MAKER = lib.RSX_STP_CANCEL_MAKER
    CANCEL_BOTH = lib.RSX_STP_CANCEL_BOTH
    NONE = lib.RSX_STP_NONE


class SymbolStatus(IntEnum):
    ACTIVE = lib.RSX_SYMBOL_ACTIVE
    PAUSED = lib.RSX_SYMBOL_PAUSED  # cancels only
    HALTED = lib.RSX_SYMBOL_HALTED
    CLOSE_ONLY = lib.RSX_SYMBOL_CLOSE_ONLY  # cancels and reduce-only orders (the ME enforces it)


class QueryKind(IntEnum):
    """QUERY.kind: what a gateway asks a risk shard for."""

    OPEN_ORDERS = lib.RSX_QUERY_OPEN_ORDERS
    POSITIONS = lib.RSX_QUERY_POSITIONS
    ACCOUNT = lib.RSX_QUERY_ACCOUNT


class AccountFlag(IntFlag):
    IN_LIQUIDATION = lib.RSX_ACCOUNT_IN_LIQUIDATION


class LiqKind(IntEnum):
    ROUND = lib.RSX_LIQ_ROUND
    INSURANCE = lib.RSX_LIQ_INSURANCE
    ADL = lib.RSX_LIQ_ADL
    DONE = lib.RSX_LIQ_DONE


def reason_message(reason: int) -> str:
    """The human message of a reason code; raises ValueError if unknown."""
    msg = lib.rsx_reason_message(int(reason))
    if msg == ffi.NULL:
        raise ValueError(f"unknown reason code {reason}")
    return ffi.string(msg).decode()


def error_message(code: int) -> str:
    """The message of a negative C return code (RSX_E* or -errno)."""
    msg = lib.rsx_err_message(int(code))
    if msg != ffi.NULL:
        return ffi.string(msg).decode()
    import os

    return os.strerror(-int(code))


def status_is_terminal(status: int) -> bool:
    """True for FILLED, CANCELLED and FAILED; raises ValueError if unknown."""
    rc = lib.rsx_status_is_terminal(int(status))
    if rc < 0:
        raise ValueError(f"unknown status code {status}")
    return bool(rc)
