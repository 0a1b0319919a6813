"""Frames of the private WebSocket API: parse and validate, encode (specs/ws-api.md 2-4, 7).

JSON is decoded and encoded with msgspec (measured fastest here for these
small frames: `rsx bench gateway --codecs`). Decoding is untyped, then each
message's positional fields are checked by hand against a small table, so
every refusal names the field: ``N.qty: expected an integer``. Nothing here
knows about orders or users; it turns bytes into validated tuples and tuples
into bytes.
"""

from __future__ import annotations

import re

import msgspec

from ..codes import Reason

__all__ = ["FrameError", "parse", "frame", "error_frame", "E", "CLIENT_TYPES", "SERVER_TYPES",
           "OID_RE", "CID_RE", "INT64_MAX"]

INT64_MAX = (1 << 63) - 1
U32_MAX = (1 << 32) - 1
CID_RE = re.compile(r"[A-Za-z0-9._:-]{1,20}")
OID_RE = re.compile(r"[0-9a-f]{32}")


class E:
    """E frame codes (specs/ws-api.md 7) and HTTP refusal codes (1.)."""

    INVALID_UTF8 = 1001
    BAD_FRAME = 1002
    OVERLOADED = 1003
    UNSUPPORTED = 1004
    UNKNOWN_ORDER = 1005
    RATE_LIMITED = 1006
    UNKNOWN_SYMBOL = 1007
    BAD_PRICE = 1008
    BAD_QTY = 1009
    UNAVAILABLE = 1010
    DUPLICATE_CID = 1011
    TOO_MANY_QUERIES = 1012
    UNAUTHORIZED = 1101
    REPLAYED = 1102
    TOO_MANY_CONNECTIONS = 1103
    GATEWAY_FULL = 1104


class FrameError(Exception):
    """A refused frame: E code, message, and optionally the id it concerns and a reason code."""

    def __init__(self, code: int, message: str, ref=None, reason: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.ref, self.reason = code, message, ref, reason


# field kinds: (name, kind, lo, hi); kind "int" (JSON integer in [lo, hi]), "cid", "id"
_I64 = ("int", 0, INT64_MAX)
_SYM = ("int", 0, U32_MAX)
_SPECS: dict[str, tuple[int, tuple]] = {
    # type: (required fields, ((name, kind, lo, hi), ...))
    "N": (5, (("sym", *_SYM), ("side", "int", 0, 1), ("px", "int", -INT64_MAX - 1, INT64_MAX),
              ("qty", "int", -INT64_MAX - 1, INT64_MAX), ("cid", "cid", 0, 0), ("tif", "int", 0, 2),
              ("ro", "int", 0, 1), ("po", "int", 0, 1), ("stp", "int", 0, 3))),
    "C": (1, (("id", "id", 0, 0),)),
    "AM": (3, (("id", "id", 0, 0), ("px", "int", -INT64_MAX - 1, INT64_MAX),
               ("qty", "int", -INT64_MAX - 1, INT64_MAX))),
    "CA": (0, (("sym", *_SYM),)),
    "DM": (1, (("timeout_ms", "int", 0, 600_000),)),
    "H": (0, (("ts", *_I64),)),
    "O": (0, (("sym", *_SYM),)),
    "P": (0, (("sym", *_SYM),)),
    "A": (0, ()),
    "M": (0, ()),
    "FL": (0, (("sym", *_SYM), ("limit", "int", 1, 500), ("before", *_I64))),
    "FN": (0, (("sym", *_SYM), ("limit", "int", 1, 500), ("before", *_I64))),
}
_DEFAULTS = {"N": (0, 0, 0, 0), "CA": (0,), "H": (0,), "O": (0,), "P": (0,), "FL": (0, 50, 0),
             "FN": (0, 50, 0)}
CLIENT_TYPES = frozenset(_SPECS)
SERVER_TYPES = frozenset({"U", "F", "R", "E", "Q", "PU", "AU", "FP", "CA", "DM"}) - CLIENT_TYPES

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def parse(data: bytes | str) -> tuple[str, tuple]:
    """One text frame -> (type, fields with defaults filled in), or FrameError."""
    try:
        obj = _decode(data)
    except (msgspec.DecodeError, RecursionError, ValueError) as exc:
        raise FrameError(E.BAD_FRAME, f"not JSON: {exc}", reason=Reason.BAD_REQUEST) from None
    if type(obj) is not dict or len(obj) != 1:
        raise FrameError(E.BAD_FRAME, "a frame is a JSON object with exactly one key (the message type)",
                         reason=Reason.BAD_REQUEST)
    (kind, value), = obj.items()
    spec = _SPECS.get(kind)
    if spec is None:
        what = "a server message" if kind in SERVER_TYPES else "an unknown message type"
        raise FrameError(E.UNSUPPORTED, f"{str(kind)[:8]!r} is {what}", reason=Reason.BAD_REQUEST)
    if type(value) is not list:
        raise FrameError(E.BAD_FRAME, f"{kind}: the value must be an array of fields", reason=Reason.BAD_REQUEST)
    required, fields = spec
    n = len(value)
    if n < required or n > len(fields):
        want = f"{required}" if required == len(fields) else f"{required}..{len(fields)}"
        raise FrameError(E.BAD_FRAME, f"{kind}: expected {want} fields, got {n}", reason=Reason.BAD_REQUEST)
    for i in range(n):
        name, ftype, lo, hi = fields[i]
        v = value[i]
        if ftype == "int":
            if type(v) is not int:
                raise FrameError(E.BAD_FRAME, f"{kind}.{name}: expected an integer, got {_jtype(v)}",
                                 reason=Reason.BAD_REQUEST)
            if not lo <= v <= hi:
                raise FrameError(E.BAD_FRAME, f"{kind}.{name}: {v} is out of range {lo}..{hi}",
                                 reason=Reason.BAD_REQUEST)
        elif type(v) is not str:
            raise FrameError(E.BAD_FRAME, f"{kind}.{name}: expected a string, got {_jtype(v)}",
                             reason=Reason.BAD_REQUEST)
        elif ftype == "cid":
            if not CID_RE.fullmatch(v):
                raise FrameError(E.BAD_FRAME, f"{kind}.cid: 1..20 characters of A-Z a-z 0-9 . _ : -",
                                 reason=Reason.BAD_REQUEST)
        elif not (len(v) == 32 and OID_RE.fullmatch(v)) and not CID_RE.fullmatch(v):
            raise FrameError(E.BAD_FRAME, f"{kind}.id: an order id (32 hex) or a client order id",
                             reason=Reason.BAD_REQUEST)
    if n < len(fields):
        defaults = _DEFAULTS[kind]
        value.extend(defaults[len(defaults) - (len(fields) - n):])
    return kind, value


def _jtype(v) -> str:
    return {bool: "a boolean", float: "a number with a fraction or exponent", str: "a string",
            list: "an array", dict: "an object", type(None): "null"}.get(type(v), type(v).__name__)


def frame(kind: str, fields) -> bytes:
    """A server frame: ``{"kind": fields}`` as UTF-8 JSON bytes."""
    return _encode({kind: fields})


def error_frame(code: int, message: str, ref=None, reason: int | None = None) -> bytes:
    fields: list = [code, message]
    if ref is not None or reason is not None:
        fields.append(ref)
    if reason is not None:
        fields.append(int(reason))
    return _encode({"E": fields})
