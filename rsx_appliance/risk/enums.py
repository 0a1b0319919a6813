"""Small enums of native/include/rsx/types.h the risk engine uses in records.

These are wire values of the v1 record format (stable once released); they are
mirrored here because the foundation does not expose them to Python yet.
tests/risk/test_enums.py checks them against records built by the C core.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

__all__ = ["Side", "Tif", "OrderFlag", "Stp", "LiqKind", "SymbolStatus"]


class Side(IntEnum):
    BUY = 0
    SELL = 1


class Tif(IntEnum):
    GTC = 0
    IOC = 1
    FOK = 2


class OrderFlag(IntFlag):
    POST_ONLY = 1
    REDUCE_ONLY = 2
    LIQUIDATION = 4


class Stp(IntEnum):
    CANCEL_TAKER = 0
    CANCEL_MAKER = 1
    CANCEL_BOTH = 2
    NONE = 3


class LiqKind(IntEnum):
    ROUND = 1
    INSURANCE = 2
    ADL = 3
    DONE = 4


class SymbolStatus(IntEnum):
    ACTIVE = 0
    PAUSED = 1
    HALTED = 2
