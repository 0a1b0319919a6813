"""Small helpers for records the risk shard handles (framing of back-to-back records, ids).

Record encoding itself lives in the foundation: :func:`rsx_appliance.records.codec`
(one record, struct-based), :func:`rsx_appliance.records.encode_many` (many of one
type, sealed by the C core in one call).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from ..records import HEADER_SIZE

__all__ = ["record_type", "split", "oid_bytes"]


def record_type(rec: bytes | memoryview, offset: int = 0) -> int:
    return struct.unpack_from("<H", rec, offset + 2)[0]


def split(buf: bytes | bytearray | memoryview) -> Iterator[bytes]:
    """Back-to-back records -> one bytes per record (framing only; callers validate)."""
    off, n = 0, len(buf)
    view = memoryview(buf)
    while off < n:
        size = HEADER_SIZE + struct.unpack_from("<H", view, off + 4)[0]
        yield bytes(view[off:off + size])
        off += size


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
