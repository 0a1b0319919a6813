"""Small helpers for records the risk shard handles: framing of back-to-back records, ids.

Offsets come from the header layout that :mod:`rsx_appliance.records` builds
from the C field table (``HEADER_DTYPE``), never from numbers written here.
Record encoding itself lives in the foundation: :func:`rsx_appliance.records.codec`
(one record), :func:`rsx_appliance.records.encode_many` (many of one type).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

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


def runs(buf: bytes | bytearray | memoryview) -> list[tuple[int, int, int, int]]:
    """(type, offset, bytes, count) of each maximal run of records of one type, in order (one C scan,
    which also checks every record; a buffer that does not scan whole raises its RecordError)."""
    from ..errors import error_for
    from ..wal.block import SCAN_ANYSEQ, scan

    if not len(buf):
        return []
    res = scan(buf, flags=SCAN_ANYSEQ)
    if res.end != len(buf):
        raise error_for(res.error or -5001, "records")
    types = res.index["type"]
    starts = np.flatnonzero(np.concatenate(([True], types[1:] != types[:-1])))
    ends = np.append(starts[1:], len(types))
    offs = res.index["offset"]
    out = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        end = len(buf) if b == len(types) else int(offs[b])
        out.append((int(types[a]), int(offs[a]), end - int(offs[a]), b - a))
    return out


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
