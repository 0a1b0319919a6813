"""Vectorised framing of many records of one type (funding payments, benchmarks).

The layout comes from the foundation's numpy dtypes (built from the C field
table) and the CRC from the C core (``rsx_risk_seal_batch``), so a batch is
framed without a Python loop per record.
"""

from __future__ import annotations

import struct
from collections import namedtuple
from collections.abc import Iterator

import numpy as np

from .._native import ffi, lib
from ..errors import check
from ..records import FIELDS, HEADER_SIZE, PAYLOAD_DTYPES, RECORD_DTYPES, FieldKind, RecordType

__all__ = ["build", "empty", "seal_all", "record_type", "split", "oid_bytes", "Codec", "codec"]


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


class Codec:
    """A fast codec for one record type, built from the C field table (struct module).

    ``encode(**fields)`` frames a record (CRC by the C core); ``decode(rec)`` unpacks a
    record the shard built or already validated (its own journal, checked on open) into a
    namedtuple with a ``type`` field; 16-byte ids come back as ``bytes``. For bytes from the
    outside use :func:`rsx_appliance.records.decode`, which validates.
    """

    _FMT = {FieldKind.U8: "B", FieldKind.U16: "H", FieldKind.U32: "I", FieldKind.U64: "Q",
            FieldKind.I32: "i", FieldKind.I64: "q", FieldKind.PRICE: "q", FieldKind.QTY: "q"}

    def __init__(self, rtype: RecordType) -> None:
        self.rtype = RecordType(rtype)
        size = PAYLOAD_DTYPES[self.rtype].itemsize
        fmt, at, names, defaults = "<", 0, [], []
        for f in FIELDS[self.rtype]:
            if f.kind == FieldKind.PAD:
                continue
            if f.offset > at:
                fmt += f"{f.offset - at}x"
            if f.kind in (FieldKind.OID, FieldKind.BYTES):
                fmt += f"{f.size}s"
                defaults.append(b"")
            else:
                fmt += self._FMT[f.kind]
                defaults.append(0)
            names.append(f.name)
            at = f.offset + f.size
        if at < size:
            fmt += f"{size - at}x"
        self.struct = struct.Struct(fmt)
        assert self.struct.size == size
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        self.defaults = defaults
        self.tuple = namedtuple(self.rtype.name.title().replace("_", ""), ["type"] + names)
        self.header = struct.pack("<BBHHHII", 1, 0, int(self.rtype), size, 0, 0, 0)

    def encode(self, **fields) -> bytes:
        values = list(self.defaults)
        for k, v in fields.items():
            values[self.index[k]] = v
        buf = bytearray(self.header + self.struct.pack(*values))
        check(lib.rsx_record_seal(ffi.from_buffer(buf), len(buf)), "encode")
        return bytes(buf)

    def decode(self, rec: bytes | memoryview):
        return self.tuple(self.rtype, *self.struct.unpack_from(rec, HEADER_SIZE))


_CODECS: dict[int, Codec] = {}


def codec(rtype: RecordType) -> Codec:
    c = _CODECS.get(int(rtype))
    if c is None:
        c = _CODECS[int(rtype)] = Codec(rtype)
    return c
