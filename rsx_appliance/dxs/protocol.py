"""DXS control records (specs/dxs.md section 1).

The layouts are the existing REPLAY_REQUEST / CAUGHT_UP / REPLAY_REJECT /
HEARTBEAT records of records.h; these helpers frame and read them. Data
records travel exactly as they are in the WAL.
"""

from __future__ import annotations

import time

from ..codes import ErrorCode, error_message
from ..errors import RsxError
from ..records import HEADER_SIZE, PAYLOAD_DTYPES, Record, RecordType, encode
from ..wal import consumer_name_ok

__all__ = [
    "REQUEST_SIZE", "CONTROL_SIZE", "request", "caught_up", "reject", "heartbeat", "DxsRejected",
    "DxsProtocolError", "consumer_name",
]

REQUEST_SIZE = HEADER_SIZE + PAYLOAD_DTYPES[RecordType.REPLAY_REQUEST].itemsize
CONTROL_SIZE = REQUEST_SIZE  # every DXS control record is 16 + 64 bytes


def _now() -> int:
    return time.time_ns()


def request(stream_id: int, from_seq: int, consumer: str = "") -> bytes:
    """A REPLAY_REQUEST: replay ``stream_id`` from ``from_seq`` (0 = oldest)."""
    name = consumer.encode("ascii", errors="replace")
    if len(name) > 16:
        raise ValueError("consumer name: at most 16 ASCII characters")
    if consumer and not consumer_name_ok(consumer):
        raise ValueError(f"consumer name {consumer!r}: A-Z a-z 0-9 . _ - only, not starting with '.', "
                         f"not ending in '.tmp' (retention must be able to keep it)")
    return encode(RecordType.REPLAY_REQUEST, ts_ns=_now(), stream_id=stream_id,
                  from_seq=from_seq, consumer=name)


def caught_up(stream_id: int, live_seq: int) -> bytes:
    return encode(RecordType.CAUGHT_UP, ts_ns=_now(), stream_id=stream_id, live_seq=live_seq)


def reject(stream_id: int, error: int, from_seq: int, first_seq: int, last_seq: int) -> bytes:
    return encode(RecordType.REPLAY_REJECT, ts_ns=_now(), stream_id=stream_id, error=error,
                  from_seq=from_seq, first_seq=first_seq, last_seq=last_seq)


def heartbeat(stream_id: int, highest_seq: int) -> bytes:
    return encode(RecordType.HEARTBEAT, ts_ns=_now(), stream_id=stream_id, highest_seq=highest_seq)


def consumer_name(rec: Record) -> str:
    """The consumer name of a REPLAY_REQUEST ('' = anonymous); raises ValueError if it could not be
    registered (the WAL's rule: rsx_wal_consumer_name_check)."""
    raw = rec.consumer.rstrip(b"\0")
    name = raw.decode("ascii", errors="replace")
    if name and (b"\0" in raw or not consumer_name_ok(name)):
        raise ValueError(f"consumer name {name!r} cannot be registered (A-Z a-z 0-9 . _ -, not "
                         f"starting with '.', not ending in '.tmp')")
    return name


class DxsProtocolError(RsxError):
    """The peer broke the DXS protocol (wrong record, bad CRC, wrong stream, bad live_seq)."""


class DxsRejected(RsxError):
    """The server refused the replay (REPLAY_REJECT); retrying the same request will not help.

    ``code`` is the reason (ErrorCode.GONE: the seq is older than anything
    retained or archived; AHEAD: the consumer is ahead of the producer;
    STREAM: wrong stream; CRC / SEQ / ...: the producer's WAL is broken there).
    ``first_seq`` is the oldest seq the server can serve, ``last_seq`` its tip.
    """

    def __init__(self, rec: Record) -> None:
        self.stream_id = rec.stream_id
        self.code = rec.error
        self.from_seq = rec.from_seq
        self.first_seq = rec.first_seq
        self.last_seq = rec.last_seq
        try:
            name = ErrorCode(self.code).name
        except ValueError:
            name = str(self.code)
        super().__init__(
            f"stream {self.stream_id}: replay from seq {self.from_seq} refused: "
            f"{error_message(self.code)} [{name}] (server holds {self.first_seq}..{self.last_seq})")

