"""Exceptions of the risk engine (specs/risk.md 9.3).

Refusals of a request carry a :class:`~rsx_appliance.codes.Reason` and are the
foundation's :class:`~rsx_appliance.errors.Rejected` subclasses. An ME stream
that cannot be applied raises the foundation's one
:class:`~rsx_appliance.errors.StreamError` (a gap: its :class:`SeqGapError`
subclass :class:`StreamGapError`), with the symbol and the C stop code as
attributes. Durability failures are :class:`RiskError` subclasses: they stop
an input, the state keeps everything applied before the failing record and
nothing of it.
"""

from __future__ import annotations

from ..codes import ErrorCode
from ..errors import RsxError, SeqGapError, StreamError

__all__ = ["RiskError", "StreamError", "StreamGapError", "CapacityError", "JournalError",
           "JournalCorruptError", "SnapshotError", "ShardFailed", "stream_error"]


class RiskError(RsxError):
    """Base class of the risk engine's own failures."""


def stream_error(code: int, stop: int, symbol_id: int, message: str) -> StreamError:
    """A StreamError for an ME record the shard cannot apply (``stop``: the C stop code)."""
    exc = StreamError(code, f"symbol {symbol_id}: {message}")
    exc.stop = stop
    exc.symbol_id = symbol_id
    return exc


class StreamGapError(SeqGapError):
    """seq > tip + 1 on an ME stream: recover [expected, got) (NAK / DXS), then resume."""

    stop = 1  # the C stop code GAP

    def __init__(self, symbol_id: int, expected: int, got: int) -> None:
        self.symbol_id = symbol_id
        self.expected = expected
        self.got = got
        super().__init__(ErrorCode.SEQ, f"symbol {symbol_id}: sequence gap: expected seq {expected}, got {got}")


class CapacityError(RiskError):
    """A table (accounts, positions, orders) is full; raise the shard's Capacity."""


class JournalError(RiskError):
    """The journal could not append or sync: the shard must stop taking decisions."""


class JournalCorruptError(JournalError):
    """An invalid record that is not a torn tail: the journal refuses to open."""


class SnapshotError(RiskError):
    """A snapshot file is corrupt or does not match this shard."""


class ShardFailed(RiskError):
    """The shard process stopped on a failure (its status file says `failed`); `rsx risk serve` exits 1."""

    exit_code = 1
