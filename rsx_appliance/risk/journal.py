"""The risk shard's own journal (specs/risk.md 8.1).

A :class:`Journal` appends v1 records under the shard's stream id, numbering
them 1, 2, 3, ... (the seq is written into each record and its CRC resealed),
makes them durable on :meth:`Journal.sync`, and reads them back in order.

:class:`FileJournal` is the stand-in until the C WAL (``rsx_wal_``) lands: one
append-only file of back-to-back records, ``fsync`` per sync. It is meant to be
swapped for the C WAL behind the same four methods. :class:`MemoryJournal`
keeps records in memory (tests, and what a crash test keeps as "the disk").
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from typing import Protocol

from .._native import ffi, lib
from ..codes import ErrorCode
from ..records import HEADER_SIZE
from .errors import JournalCorruptError, JournalError

__all__ = ["Journal", "FileJournal", "MemoryJournal", "frame_for_journal"]

_INDEX_EVERY = 1024


class Journal(Protocol):
    """Append framed records, make them durable, read them back from a seq."""

    stream_id: int

    @property
    def last_seq(self) -> int: ...

    def append(self, records: Iterable[bytes]) -> int:
        """Number and append records (not yet durable); returns the last seq assigned."""

    def sync(self) -> None:
        """Make everything appended so far durable; JournalError if it cannot."""

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """(seq, record bytes) from from_seq on, in order."""

    def close(self) -> None: ...


def frame_for_journal(record: bytes, seq: int, stream_id: int) -> bytes:
    """A copy of `record` with seq and stream_id set and its CRC resealed."""
    buf = bytearray(record)
    struct.pack_into("<Q", buf, HEADER_SIZE, seq)
    struct.pack_into("<I", buf, HEADER_SIZE + 16, stream_id)
    rc = lib.rsx_record_seal(ffi.from_buffer(buf), len(buf))
    if rc < 0:
        raise JournalError(f"cannot frame record for the journal: {ErrorCode(rc).name}")
    return bytes(buf)


def _scan(data: bytes | memoryview, stream_id: int) -> tuple[int, int, list[tuple[int, int]]]:
    """Validate records; returns (valid length, last seq, sparse index). Raises on corruption."""
    off, seq, index = 0, 0, []
    n = len(data)
    buf = ffi.from_buffer(data)
    while off < n:
        size = lib.rsx_record_check(buf + off, n - off)
        if size < 0:
            # a torn tail: the record is cut short, or it is the last thing in the file
            if size == ErrorCode.SHORT:
                break
            hdr_len = struct.unpack_from("<H", data, off + 4)[0] if n - off >= 6 else 0
            if off + HEADER_SIZE + hdr_len >= n:
                break
            raise JournalCorruptError(f"journal record at byte {off} is invalid "
                                      f"({ErrorCode(size).name}) and is not the tail")
        rseq = struct.unpack_from("<Q", data, off + HEADER_SIZE)[0]
        rstream = struct.unpack_from("<I", data, off + HEADER_SIZE + 16)[0]
        if rseq != seq + 1 or rstream != stream_id:
            raise JournalCorruptError(f"journal record at byte {off}: seq {rseq} stream {rstream:#x}, "
                                      f"expected seq {seq + 1} stream {stream_id:#x}")
        seq = rseq
        if seq % _INDEX_EVERY == 1:
            index.append((seq, off))
        off += size
    return off, seq, index


class FileJournal:
    """Append-only file of v1 records with fsync: the stand-in for the C WAL."""

    def __init__(self, path: str | os.PathLike, stream_id: int) -> None:
        self.path = os.fspath(path)
        self.stream_id = stream_id
        self._failed = False
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        self._fd = fd
        with open(self.path, "rb") as f:
            data = f.read()
        valid, self._last, self._index = _scan(data, stream_id)
        if valid < len(data):
            os.ftruncate(fd, valid)  # drop the torn tail of a crash mid-append
            os.fsync(fd)
        self._size = valid
        self._durable = self._last
        os.lseek(fd, valid, os.SEEK_SET)

    @property
    def last_seq(self) -> int:
        return self._last

    @property
    def durable_seq(self) -> int:
        return self._durable

    def append(self, records: Iterable[bytes]) -> int:
        if self._failed:
            raise JournalError("journal failed earlier; reopen it to recover")
        out = bytearray()
        seq = self._last
        starts = []
        for rec in records:
            seq += 1
            starts.append((seq, self._size + len(out)))
            out += frame_for_journal(rec, seq, self.stream_id)
        try:
            view = memoryview(out)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            self._failed = True
            raise JournalError(f"journal write failed: {exc}") from exc
        for s, off in starts:
            if s % _INDEX_EVERY == 1:
                self._index.append((s, off))
        self._size += len(out)
        self._last = seq
        return seq

    def sync(self) -> None:
        if self._failed:
            raise JournalError("journal failed earlier; reopen it to recover")
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._failed = True
            raise JournalError(f"journal fsync failed: {exc}") from exc
        self._durable = self._last

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        start_off, start_seq = 0, 1
        for s, off in self._index:
            if s <= from_seq:
                start_off, start_seq = off, s
        with open(self.path, "rb") as f:
            f.seek(start_off)
            data = f.read(self._size - start_off)
        off, seq = 0, start_seq
        while off < len(data):
            size = HEADER_SIZE + struct.unpack_from("<H", data, off + 4)[0]
            if seq >= from_seq:
                yield seq, data[off:off + size]
            seq += 1
            off += size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class MemoryJournal:
    """The same interface in memory. `crash()` keeps only what was synced."""

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.records: list[bytes] = []
        self._durable = 0
        self.fail_next = False  # tests: make the next append/sync raise JournalError

    @property
    def last_seq(self) -> int:
        return len(self.records)

    @property
    def durable_seq(self) -> int:
        return self._durable

    def append(self, records: Iterable[bytes]) -> int:
        if self.fail_next:
            self.fail_next = False
            raise JournalError("injected journal failure")
        for rec in records:
            self.records.append(frame_for_journal(rec, len(self.records) + 1, self.stream_id))
        return len(self.records)

    def sync(self) -> None:
        self._durable = len(self.records)

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        for i in range(max(0, from_seq - 1), len(self.records)):
            yield i + 1, self.records[i]

    def crash(self) -> "MemoryJournal":
        """What survives a crash: a new journal with only the synced records."""
        j = MemoryJournal(self.stream_id)
        j.records = list(self.records[:self._durable])
        j._durable = len(j.records)
        return j

    def close(self) -> None:
        pass
