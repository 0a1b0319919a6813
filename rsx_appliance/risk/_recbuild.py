"""Small helpers for records the risk shard handles: framing of back-to-back records, ids.

Offsets come from the header layout that :mod:`rsx_appliance.records` builds
from the C field table (``HEADER_DTYPE``), never from numbers written here.
Record encoding itself lives in the foundation: :func:`rsx_appliance.records.codec`
(one record), :func:`rsx_appliance.records.encode_many` (many of one type).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from ..records import HEADER_DTYPE, HEADER_SIZE

__all__ = ["record_type", "record_size", "split", "runs", "oid_bytes"]

_U16 = struct.Struct("<H")
_TYPE_AT = HEADER_DTYPE.fields["type"][1]
_LEN_AT = HEADER_DTYPE.fields["len"][1]


def record_type(rec: bytes | bytearray | memoryview, offset: int = 0) -> int:
    return _U16.unpack_from(rec, offset + _TYPE_AT)[0]


def record_size(rec: bytes | bytearray | memoryview, offset: int = 0) -> int:
    return HEADER_SIZE + _U16.unpack_from(rec, offset + _LEN_AT)[0]


def split(buf: bytes | bytearray | memoryview) -> Iterator[bytes]:
    """Back-to-back records -> one bytes per record (framing only; callers validate)."""
    off, n = 0, len(buf)
    view = memoryview(buf)
    while off < n:
        size = record_size(view, off)
        yield bytes(view[off:off + size])
        off += size


def runs(buf: bytes | bytearray | memoryview) -> Iterator[tuple[int, int, int, int]]:
    """(type, offset, bytes, count) of each maximal run of records of one type, in order."""
    off, n = 0, len(buf)
    view = memoryview(buf)
    start, rtype, count = 0, -1, 0
    while off < n:
        t = record_type(view, off)
        if t != rtype:
            if count:
                yield rtype, start, off - start, count
            start, rtype, count = off, t, 0
        off += record_size(view, off)
        count += 1
    if count:
        yield rtype, start, off - start, count


def oid_bytes(value) -> bytes:
    """A 16-byte order id from bytes, a UUID or a numpy void."""
    if isinstance(value, (bytes, bytearray)):
        b = bytes(value)
    elif hasattr(value, "bytes"):
        b = value.bytes
    else:
        b = bytes(value)
    if len(b) != 16:
        raise ValueError("an order id is 16 bytes")
    return b
