"""The public marketdata WebSocket protocol: client messages and server frames (specs/marketdata.md 3).

Server messages are encoded once (msgspec JSON) and framed once as unmasked
WebSocket text frames, so the same bytes can be written to every subscriber's
transport.
"""

from __future__ import annotations

import struct

import msgspec

__all__ = ["BBO", "DEPTH", "TRADES", "ALL_CHANNELS", "ClientError", "parse", "frame", "message",
           "E_MALFORMED", "E_UNKNOWN_TYPE", "E_FIELDS", "E_SYMBOL", "E_CHANNELS", "E_TOO_MANY",
           "CLOSE_SLOW", "CLOSE_FULL", "MAX_FRAME"]

BBO, DEPTH, TRADES = 1, 2, 4
ALL_CHANNELS = BBO | DEPTH | TRADES
E_MALFORMED, E_UNKNOWN_TYPE, E_FIELDS, E_SYMBOL, E_CHANNELS, E_TOO_MANY = 1, 2, 3, 4, 5, 6
CLOSE_SLOW, CLOSE_FULL = 4000, 4001
MAX_FRAME = 4096            # client frames larger than this close the connection (1009)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_H2, _H8 = struct.Struct(">BBH"), struct.Struct(">BBQ")


class ClientError(Exception):
    """A bad client frame: answered with E [code, message], nothing changes."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def frame(payload: bytes) -> bytes:
    """An unmasked, final WebSocket text frame holding ``payload`` (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return _H2.pack(0x81, 126, n) + payload
    return _H8.pack(0x81, 127, n) + payload


def message(kind: str, fields: list) -> bytes:
    """One server message, encoded and framed."""
    return frame(_encoder.encode({kind: fields}))


def parse(data: str | bytes) -> tuple[str, list]:
    """(type, fields) of a client frame, or ClientError."""
    try:
        obj = _decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise ClientError(E_MALFORMED, "not a JSON object") from None
    if not isinstance(obj, dict) or len(obj) != 1:
        raise ClientError(E_MALFORMED, "a message is a JSON object with exactly one key")
    (kind, fields), = obj.items()
    if not isinstance(fields, list):
        raise ClientError(E_MALFORMED, f"{kind}: the value must be an array")
    if kind not in ("S", "X", "I", "H"):
        raise ClientError(E_UNKNOWN_TYPE, f"unknown message type {kind!r}")
    return kind, fields
