"""Vectorised framing of many records of one type (funding payments, benchmarks).

The layout comes from the foundation's numpy dtypes (built from the C field
table) and the CRC from the C core (``rsx_risk_seal_batch``), so a batch is
framed without a Python loop per record.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from .._native import ffi, lib
from ..errors import check
from ..records import HEADER_SIZE, PAYLOAD_DTYPES, RECORD_DTYPES, RecordType

__all__ = ["build", "empty", "seal_all", "record_type", "split", "oid_bytes"]


def empty(rtype: RecordType, n: int) -> np.ndarray:
    """n zeroed records of rtype with the header filled in (not yet sealed)."""
    arr = np.zeros(n, dtype=RECORD_DTYPES[rtype])
    arr["header"]["version"] = 1
    arr["header"]["type"] = int(rtype)
    arr["header"]["len"] = PAYLOAD_DTYPES[rtype].itemsize
    return arr


def seal_all(arr: np.ndarray) -> bytes:
    """Compute the CRC of every record in arr (in place) and return the bytes."""
    if len(arr):
        check(lib.rsx_risk_seal_batch(ffi.from_buffer(arr, require_writable=True), len(arr),
                                      arr.dtype.itemsize), "seal")
    return arr.tobytes()


def build(rtype: RecordType, n: int, **columns) -> bytes:
    """n records of rtype; each keyword is a payload field set from a scalar or an array."""
    arr = empty(rtype, n)
    for name, value in columns.items():
        arr["payload"][name] = value
    return seal_all(arr)


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
