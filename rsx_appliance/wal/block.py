"""Runs of records as numpy: the C scan, the index, per-type views.

A *block* is a buffer of back-to-back v1 records plus an index with one
:data:`ENTRY_DTYPE` row per record (offset, seq, type, size, stream_id), built
by one call to the C scan (``rsx_wal_scan``), never by a Python loop.
:class:`Batch` (what readers and the DXS consumer hand out) and
:class:`~rsx_appliance.wal.reader.WalFile` (a whole mapped file) are blocks.

Per-type tables: ``block.view(RecordType.FILL)`` returns a numpy array of
``RECORD_DTYPES[FILL]`` (``arr["payload"]["price"]`` ...). It is a zero-copy
view when that type's records lie at a constant stride in the buffer (a
single-type run, a file of one type), else one C gather (``rsx_wal_gather``)
into a fresh array.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .._native import ffi, lib
from ..records import RECORD_DTYPES, Record, RecordType, decode

__all__ = ["ENTRY_DTYPE", "Stop", "ScanResult", "scan", "Block", "Batch"]

#: One index row per record; mirrors struct rsx_wal_entry (24 bytes).
ENTRY_DTYPE = np.dtype({
    "names": ["offset", "seq", "type", "size", "stream_id"],
    "formats": ["<u8", "<u8", "<u2", "<u2", "<u4"],
    "offsets": [0, 8, 16, 18, 20],
    "itemsize": 24,
})
assert ENTRY_DTYPE.itemsize == ffi.sizeof("struct rsx_wal_entry")

SCAN_ANYSEQ = lib.RSX_WAL_SCAN_ANYSEQ
SCAN_ZEROS = lib.RSX_WAL_SCAN_ZEROS
SCAN_CONTROL = lib.RSX_WAL_SCAN_CONTROL
MIN_RECORD = 16 + 64


class Stop(IntEnum):
    """Why a scan stopped (enum rsx_wal_stop)."""

    END = lib.RSX_WAL_STOP_END
    FULL = lib.RSX_WAL_STOP_FULL
    PARTIAL = lib.RSX_WAL_STOP_PARTIAL
    ZEROS = lib.RSX_WAL_STOP_ZEROS
    CONTROL = lib.RSX_WAL_STOP_CONTROL
    BAD = lib.RSX_WAL_STOP_BAD


@dataclass(frozen=True)
class ScanResult:
    """Where and why a scan stopped."""

    index: np.ndarray    # ENTRY_DTYPE rows, one per valid record
    end: int             # offset just past the last valid record
    next_seq: int        # the seq the next record must carry
    stop: Stop
    error: int           # negative code when stop is BAD, else 0
    found_seq: int       # seq carried by the record that stopped the scan, if readable


def _cbuf(buf):
    return ffi.from_buffer("uint8_t[]", buf)


def scan(buf, *, offset: int = 0, length: int | None = None, next_seq: int = 0,
         stream_id: int = 0, flags: int = 0, max_records: int | None = None) -> ScanResult:
    """Index the records in ``buf[offset:offset+length]`` with the C scan.

    ``next_seq`` is the seq the first record must carry (0 = any, then
    continuity) unless ``flags`` has SCAN_ANYSEQ. Stops at the first record
    that does not check and never looks past it. Index offsets are relative
    to ``offset``.
    """
    view = memoryview(buf).cast("B")
    if length is None:
        length = len(view) - offset
    if offset < 0 or length < 0 or offset + length > len(view):
        raise ValueError("scan window outside the buffer")
    cap = max_records if max_records is not None else length // MIN_RECORD + 1
    index = np.empty(cap, dtype=ENTRY_DTYPE)
    st = ffi.new("struct rsx_wal_scan *", {"next_seq": next_seq, "flags": flags,
                                           "stream_id": stream_id})
    cb = _cbuf(view) if len(view) else ffi.new("uint8_t[]", 1)
    n = lib.rsx_wal_scan(cb + offset, length, ffi.cast("struct rsx_wal_entry *", index.ctypes.data),
                         cap, st)
    return ScanResult(index[:n], st.end, st.next_seq, Stop(st.stop), st.error, st.found_seq)


class Block:
    """Records in a buffer plus their index. Read-only; cheap to slice by type."""

    __slots__ = ("raw", "index")

    def __init__(self, raw, index: np.ndarray) -> None:
        self.raw = raw          # bytes-like: the records, back to back
        self.index = index      # ENTRY_DTYPE, offsets into raw

    def __len__(self) -> int:
        return len(self.index)

    @property
    def seqs(self) -> np.ndarray:
        return self.index["seq"]

    @property
    def types(self) -> np.ndarray:
        return self.index["type"]

    @property
    def first_seq(self) -> int:
        """Seq of the first record (0 if empty)."""
        return int(self.index["seq"][0]) if len(self.index) else 0

    @property
    def last_seq(self) -> int:
        """Seq of the last record (0 if empty)."""
        return int(self.index["seq"][-1]) if len(self.index) else 0

    @property
    def nbytes(self) -> int:
        if not len(self.index):
            return 0
        last = self.index[-1]
        return int(last["offset"]) + int(last["size"]) - int(self.index["offset"][0])

    def counts(self) -> dict[RecordType, int]:
        """Records per type."""
        types, counts = np.unique(self.index["type"], return_counts=True)
        return {RecordType(int(t)): int(c) for t, c in zip(types, counts)}

    def view(self, rtype: int) -> np.ndarray:
        """The records of one type as a numpy array of ``RECORD_DTYPES[rtype]``.

        Zero-copy when they lie at a constant stride in the buffer, else one C
        gather into a new array. An empty array when there are none.
        """
        t = RecordType(rtype)
        dtype = RECORD_DTYPES[t]
        rows = self.index[self.index["type"] == t]
        if len(rows) == 0:
            return np.empty(0, dtype=dtype)
        offsets = rows["offset"]
        strides = np.diff(offsets)
        if len(rows) == 1 or (strides[0] >= dtype.itemsize and np.all(strides == strides[0])):
            stride = int(strides[0]) if len(rows) > 1 else dtype.itemsize
            arr = np.ndarray(shape=(len(rows),), dtype=dtype, buffer=self.raw,
                             offset=int(offsets[0]), strides=(stride,))
            arr.flags.writeable = False     # a view of the records: never edit them in place
            return arr
        out = np.empty(len(rows), dtype=dtype)
        got = lib.rsx_wal_gather(_cbuf(self.raw), ffi.cast("struct rsx_wal_entry *",
                                                          self.index.ctypes.data),
                                 len(self.index), int(t), ffi.cast("void *", out.ctypes.data),
                                 out.nbytes)
        assert got == len(rows)
        return out

    def record_bytes(self, i: int) -> bytes:
        """The framed bytes of the i-th record."""
        e = self.index[i]
        off = int(e["offset"])
        return bytes(memoryview(self.raw)[off:off + int(e["size"])])

    def records(self) -> Iterator[Record]:
        """Decode every record (the slow path: one Python object per record)."""
        mv = memoryview(self.raw)
        for off in self.index["offset"]:
            yield decode(mv, int(off))


class Batch(Block):
    """Whole, CRC-checked, contiguous records handed out by a reader or a DXS consumer.

    ``raw`` holds exactly the records (offset 0 = the first record), so
    ``bytes(batch.raw)`` is the framed stream, ready to append to a file or
    to forward. ``caught_up`` is set by a DXS consumer on the batch that ends
    a replay.
    """

    __slots__ = ("caught_up",)

    def __init__(self, raw, index: np.ndarray, caught_up: bool = False) -> None:
        super().__init__(raw, index)
        self.caught_up = caught_up

    def __repr__(self) -> str:
        return (f"Batch({len(self)} records, seq {self.first_seq}..{self.last_seq}"
                f"{', caught up' if self.caught_up else ''})")

    @classmethod
    def empty(cls, caught_up: bool = False) -> Batch:
        return cls(b"", np.empty(0, dtype=ENTRY_DTYPE), caught_up)
