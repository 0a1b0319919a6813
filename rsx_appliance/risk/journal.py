"""The risk shard's own journal (specs/risk.md 8.1).

A :class:`Journal` appends back-to-back v1 records under the shard's stream id:
:meth:`~Journal.append` numbers them ``last_seq + 1, ...`` **in the caller's
buffer** (seq and stream id set, CRC resealed: the caller then holds exactly the
journaled bytes) and returns the first seq; :meth:`~Journal.sync` waits until
everything appended is durable; :attr:`~Journal.durable_seq` says how far that
is without waiting; :meth:`~Journal.read` gives the records back in order.

:class:`WalJournal` is the production journal: the shard's stream in the C WAL
(``rsx_appliance.wal``, specs/wal.md), whose flusher thread group-commits with
fdatasync, which recovers its next seq and cuts torn tails on reopen, and
refuses to open over corruption inside durable data. :class:`MemoryJournal`
keeps records in memory (tests, and what a crash test keeps as "the disk").
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from ..errors import RsxError
from ..records import RECORD_DTYPES, RecordType, seal_many
from ._recbuild import record_size, runs, split
from .errors import JournalCorruptError, JournalError
from .links import frame

__all__ = ["Journal", "WalJournal", "MemoryJournal"]


class Journal(Protocol):
    """Append framed records, make them durable, read them back from a seq."""

    stream_id: int

    @property
    def last_seq(self) -> int: ...

    @property
    def durable_seq(self) -> int: ...

    def append(self, buf: bytearray) -> int:
        """Number back-to-back records in place and append them (not yet durable); returns the first seq."""

    def sync(self) -> None:
        """Make everything appended so far durable; JournalError if it cannot."""

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """(seq, record bytes) from from_seq on, in order."""

    def close(self) -> None: ...


def _frame(buf: bytearray, stream_id: int, first: int) -> list[tuple[int, int, int, int]]:
    """Number the records in place; a record without a time gets the wall clock, as the WAL would give
    it, so that the caller's bytes are the journaled bytes. Returns the runs of one type."""
    now = 0
    found = runs(buf)
    for rtype, off, nbytes, count in found:
        recs = np.frombuffer(buf, dtype=RECORD_DTYPES[RecordType(rtype)], count=count, offset=off)
        ts = recs["payload"]["ts_ns"]
        zero = ts == 0
        if zero.any():
            now = now or time.time_ns()
            ts[zero] = now
            seal_many(recs)
    try:
        frame(buf, stream_id, first)
    except RsxError as exc:
        raise JournalError(f"cannot frame records for the journal: {exc}") from exc
    return found


def _chunks(view: memoryview, limit: int) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive pieces of back-to-back records, each at most ``limit`` bytes."""
    start = off = 0
    while off < len(view):
        size = record_size(view, off)
        if off + size - start > limit and off > start:
            yield start, off
            start = off
        off += size
    if off > start:
        yield start, off


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

    def append(self, buf: bytearray) -> int:
        # one C call frames, seals and appends the whole buffer in place (rsx_wal_append_framed); a
        # buffer over half the WAL ring goes in chunks cut at record boundaries
        first = self.last_seq + 1
        limit = self._w.ring_size // 2
        try:
            if len(buf) <= limit:
                self._w.append_framed(buf)
            else:
                with memoryview(buf) as view:
                    for off, end in _chunks(view, limit):
                        self._w.append_framed(view[off:end])
        except (RsxError, OSError, ValueError) as exc:
            raise JournalError(f"journal append failed near seq {self.last_seq + 1}: {exc}") from exc
        return first

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
    """The same interface in memory. ``crash()`` keeps only what was synced."""

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.records: list[bytes] = []
        self._durable = 0
        self.fail_next = False  # tests: make the next append raise JournalError
        self.auto_sync = False  # True: everything appended is durable at once (an instant disk)

    @property
    def last_seq(self) -> int:
        return len(self.records)

    @property
    def durable_seq(self) -> int:
        return self._durable

    def append(self, buf: bytearray) -> int:
        if self.fail_next:
            self.fail_next = False
            raise JournalError("injected journal failure")
        first = len(self.records) + 1
        _frame(buf, self.stream_id, first)
        self.records.extend(split(buf))
        if self.auto_sync:
            self._durable = len(self.records)
        return first

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
