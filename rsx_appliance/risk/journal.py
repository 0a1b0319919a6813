"""The risk shard's own journal (specs/risk.md 8.1).

A :class:`Journal` appends v1 records under the shard's stream id, numbering
them 1, 2, 3, ... (the seq is written into each record and its CRC resealed),
makes them durable on :meth:`Journal.sync`, and reads them back in order.

:class:`WalJournal` is the production journal: the shard's stream in the C WAL
(``rsx_appliance.wal``, specs/wal.md), which assigns the seqs, group-commits
with fdatasync, recovers its next seq and cuts torn tails on reopen, and
refuses to open over corruption inside durable data. :class:`MemoryJournal`
keeps records in memory (tests, and what a crash test keeps as "the disk").
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from typing import Protocol

from .._native import ffi, lib
from ..codes import ErrorCode
from ..errors import RsxError
from ..records import HEADER_SIZE
from .errors import JournalCorruptError, JournalError

__all__ = ["Journal", "WalJournal", "MemoryJournal", "frame_for_journal"]


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


class WalJournal:
    """The shard's journal as one stream of the C WAL in ``directory``.

    Every record is kept (no retention): recovery replays the journal from the
    newest snapshot's seq, and the journal is the audit trail of the shard's
    own decisions. Raises :class:`JournalCorruptError` when the WAL refuses to
    open over corruption inside durable data, :class:`JournalError` for any
    other failure (the shard must stop: a decision it cannot journal must not
    take effect).
    """

    def __init__(self, directory: str | os.PathLike, stream_id: int) -> None:
        from ..wal import WalWriter

        self.directory = os.fspath(directory)
        self.stream_id = stream_id
        try:
            self._w = WalWriter(self.directory, stream_id, retain_s=None, prealloc=False)
        except (RsxError, ValueError) as exc:
            raise JournalCorruptError(f"journal {self.directory} cannot be opened: {exc}") from exc
        except OSError as exc:
            raise JournalError(f"journal {self.directory} cannot be opened: {exc}") from exc

    @property
    def last_seq(self) -> int:
        return self._w.next_seq - 1

    @property
    def durable_seq(self) -> int:
        return self._w.durable_seq

    def append(self, records: Iterable[bytes]) -> int:
        seq = self.last_seq
        try:
            for rec in records:
                rtype = rec[2] | rec[3] << 8
                seq = self._w.append_payload(rtype, memoryview(rec)[HEADER_SIZE:])
        except (RsxError, OSError, ValueError) as exc:
            raise JournalError(f"journal append failed at seq {seq + 1}: {exc}") from exc
        return seq

    def sync(self) -> None:
        try:
            self._w.wait_durable(self.last_seq)
        except (RsxError, OSError, ValueError) as exc:
            raise JournalError(f"journal sync failed: {exc}") from exc

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        from ..wal import WalReader

        with WalReader(self.directory, self.stream_id) as r:
            if self.last_seq < max(from_seq, 1):
                return
            r.seek(max(from_seq, 1))
            for batch in r:
                raw = batch.raw
                for e in batch.index:
                    off = int(e["offset"])
                    yield int(e["seq"]), bytes(raw[off:off + int(e["size"])])

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None


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
