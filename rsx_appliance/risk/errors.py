"""Exceptions of the risk engine (specs/risk.md 9.3).

Refusals of a request carry a :class:`~rsx_appliance.codes.Reason` and are the
foundation's :class:`~rsx_appliance.errors.Rejected` subclasses. Stream and
durability failures are :class:`RiskError` subclasses: they stop an input, the
state keeps everything applied before the failing record and nothing of it.
"""

from __future__ import annotations

from ..errors import RsxError

__all__ = ["RiskError", "StreamError", "StreamGapError", "CapacityError", "JournalError",
           "JournalCorruptError", "SnapshotError"]


class RiskError(RsxError):
    """Base class of the risk engine's own failures."""


class StreamError(RiskError):
    """An ME record could not be applied; the stream stops before it."""

    def __init__(self, stop: int, symbol_id: int, message: str) -> None:
        self.stop = stop
        self.symbol_id = symbol_id
        super().__init__(f"symbol {symbol_id}: {message}")


class StreamGapError(StreamError):
    """seq > tip + 1 on an ME stream: recover [expected, got) (NAK / DXS), then resume."""

    def __init__(self, symbol_id: int, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(1, symbol_id, f"sequence gap: expected seq {expected}, got {got}")


class CapacityError(RiskError):
    """A table (accounts, positions, orders) is full; raise the shard's Capacity."""


class JournalError(RiskError):
    """The journal could not append or sync: the shard must stop taking decisions."""


class JournalCorruptError(JournalError):
    """An invalid record that is not a torn tail: the journal refuses to open."""


class SnapshotError(RiskError):
    """A snapshot file is corrupt or does not match this shard."""
