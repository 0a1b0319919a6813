"""The recorder: archive DXS streams into daily files (specs/dxs.md section 4).

``ARCHIVE/<stream>/<stream>_YYYY-MM-DD.wal`` holds the stream's records byte
for byte, one file per UTC day of the records' ``ts_ns``. A record never goes
to an earlier file than its predecessor, so seqs stay contiguous across files.
Records are appended in batches and fdatasynced; only then is the seq acked to
the producer (whose retention may then free it). After a crash the newest file
is checked, a torn tail is cut (the cut bytes are kept beside it as
``<file>.cut-<offset>``) and the recorder asks for the last archived seq + 1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._aio import raise_if_cancelling
from .dxs import DxsConsumer, DxsRejected
from .fsutil import atomic_write, fsync_dir, make_dirs
from .records import HEADER_SIZE
from .wal import Batch, read_file

__all__ = ["StreamRecorder", "archive_files", "resume_point", "DAY_NS"]

log = logging.getLogger("rsx.recorder")

DAY_NS = 86_400 * 1_000_000_000
TS_OFFSET = HEADER_SIZE + 8     # ts_ns in every payload


def _day_name(stream_id: int, day: int) -> str:
    date = dt.datetime.fromtimestamp(day * 86_400, tz=dt.timezone.utc).date()
    return f"{stream_id}_{date.isoformat()}.wal"


def _day_of(name: str) -> int | None:
    try:
        date = dt.date.fromisoformat(name.rsplit("_", 1)[1].removesuffix(".wal"))
    except (IndexError, ValueError):
        return None
    return (date - dt.date(1970, 1, 1)).days


def archive_files(stream_dir: Path, stream_id: int) -> list[Path]:
    """The stream's day files, oldest first."""
    if not stream_dir.is_dir():
        return []
    out = [p for p in stream_dir.glob(f"{stream_id}_*.wal") if _day_of(p.name) is not None]
    return sorted(out, key=lambda p: _day_of(p.name))


def resume_point(stream_dir: Path, stream_id: int) -> tuple[int, int | None]:
    """(last archived seq, day of the newest file); repairs a torn tail first.

    Returns (0, None) for an empty archive.
    """
    files = archive_files(stream_dir, stream_id)
    for path in reversed(files):
        wf = read_file(path, stream_id=stream_id)
        if wf.brk is not None:
            _cut(path, wf.brk.offset, str(wf.brk))
            wf = read_file(path, stream_id=stream_id)
        if len(wf):
            return wf.last_seq, _day_of(path.name)
    return 0, (_day_of(files[-1].name) if files else None)


def _cut(path: Path, offset: int, why: str) -> None:
    """Keep path[:offset], replacing the file atomically; save the rest beside it."""
    data = path.read_bytes()
    side = path.with_name(f"{path.name}.cut-{offset}")
    atomic_write(side, data[offset:])    # the evidence is durable before the file loses it
    atomic_write(path, data[:offset])    # readers that mapped the old file keep it intact
    log.warning("recorder: %s: %s; cut %d bytes (kept in %s); resuming after the last good record",
                path, why, len(data) - offset, side.name)


@dataclass
class RecorderStats:
    records: int = 0
    bytes: int = 0
    flushes: int = 0
    archived_seq: int = 0
    connects: int = 0


class StreamRecorder:
    """Archive one stream from a DXS server; resumes from the archive's last seq.

    ``from_seq`` is used only when the archive is empty (0 = the oldest the
    server has). Data is flushed (written + fdatasynced) when ``flush_bytes``
    are pending or the oldest pending batch is ``flush_ms`` old.
    """

    def __init__(self, archive_root: str | os.PathLike, stream_id: int, address: tuple[str, int],
                 *, name: str = "recorder", from_seq: int = 0, flush_bytes: int = 4 << 20,
                 flush_ms: float = 50.0, idle_timeout: float = 5.0,
                 backoff: tuple[float, float] = (0.05, 5.0)) -> None:
        self.stream_dir = Path(archive_root) / str(stream_id)
        self.stream_id = stream_id
        self.address = address
        self.name = name
        self.from_seq = from_seq
        self.flush_bytes = flush_bytes
        self.flush_s = flush_ms / 1000
        self.idle_timeout = idle_timeout
        self.backoff = backoff
        self.stats = RecorderStats()
        self._pending: list[tuple[int, bytes]] = []     # (day, records)
        self._pending_bytes = 0
        self._pending_since = 0.0
        self._pending_last = 0
        self._day: int | None = None
        self._fd: int | None = None
        self._fd_day: int | None = None
        self.consumer: DxsConsumer | None = None

    async def run(self) -> None:
        """Record until cancelled; raises DxsRejected when the server refuses (exit loudly)."""
        make_dirs(self.stream_dir)
        last, self._day = resume_point(self.stream_dir, self.stream_id)
        self.stats.archived_seq = last
        start = last + 1 if last else self.from_seq
        log.info("recorder: stream %d: archive at seq %d; asking %s:%d from seq %d",
                 self.stream_id, last, *self.address, start)
        self.consumer = DxsConsumer(self.address, self.stream_id, from_seq=start, name=self.name,
                                    idle_timeout=self.idle_timeout, backoff=self.backoff)
        try:
            it = aiter(self.consumer)
            while True:
                timeout = None
                if self._pending:
                    timeout = max(0.0, self._pending_since + self.flush_s - time.monotonic())
                try:
                    batch = await asyncio.wait_for(anext(it), timeout)
                except asyncio.TimeoutError:
                    self.flush()
                    continue
                finally:
                    raise_if_cancelling()     # else a stopped recorder keeps recording
                self._add(batch)
                if self._pending_bytes >= self.flush_bytes or (
                        self._pending and time.monotonic() - self._pending_since >= self.flush_s):
                    self.flush()
        except DxsRejected as e:
            log.error("recorder: stream %d: %s; the archive ends at seq %d and cannot continue",
                      self.stream_id, e, self.stats.archived_seq)
            raise
        finally:
            try:
                self.flush()
            finally:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                self.stats.connects = self.consumer.connects
                await self.consumer.close()

    def _add(self, batch: Batch) -> None:
        if not len(batch):
            return
        raw = np.frombuffer(batch.raw, dtype=np.uint8)
        offs = batch.index["offset"].astype(np.int64)
        ts = raw[offs[:, None] + TS_OFFSET + np.arange(8)].copy().view("<u8").ravel()
        days = (ts // DAY_NS).astype(np.int64)
        floor = self._day if self._day is not None else int(days[0])
        days = np.maximum.accumulate(np.maximum(days, floor))
        # split the batch where the day changes
        cuts = np.flatnonzero(np.diff(days)) + 1
        bounds = [0, *cuts.tolist(), len(days)]
        mv = memoryview(batch.raw)
        for a, b in zip(bounds, bounds[1:]):
            start = int(offs[a])
            end = int(offs[b - 1]) + int(batch.index["size"][b - 1])
            self._pending.append((int(days[a]), bytes(mv[start:end])))
            self._pending_bytes += end - start
        if not self._pending_since:
            self._pending_since = time.monotonic()
        self._day = int(days[-1])
        self._pending_last = batch.last_seq
        self.stats.records += len(batch)

    def _open_day(self, day: int) -> int:
        if self._fd is not None and self._fd_day == day:
            return self._fd
        if self._fd is not None:
            os.fdatasync(self._fd)
            os.close(self._fd)
        path = self.stream_dir / _day_name(self.stream_id, day)
        new = not path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._fd_day = day
        if new:
            fsync_dir(self.stream_dir)
        return self._fd

    def flush(self) -> None:
        """Write and fdatasync everything pending, then ack it to the producer."""
        if not self._pending:
            return
        for day, data in self._pending:
            fd = self._open_day(day)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            self.stats.bytes += len(data)
        os.fdatasync(self._fd)
        self._pending.clear()
        self._pending_bytes = 0
        self._pending_since = 0.0
        self.stats.flushes += 1
        self.stats.archived_seq = self._pending_last
        if self.consumer is not None:
            self.consumer.ack(self._pending_last)
