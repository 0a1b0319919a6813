"""The WAL writer in Python: a thin layer over rsx_wal_* (specs/wal.md section 2).

The C writer does all the work (ring, flusher thread, group commit, rotation,
retention, recovery); this class maps its return codes to exceptions and its
counters to a dataclass. Appends release the GIL, so a Python thread may
block in :meth:`WalWriter.wait_durable` while another appends.

Errors: bad input raises FieldError / RecordTypeError / RecordLengthError and
appends nothing; a full ring raises BlockingIOError in non-blocking mode (retry
the same record later); a disk that stays full raises ``OSError(ENOSPC)`` from a
non-blocking append once the ring is full (the writer keeps retrying and
recovers when space is freed); a failed sync, whatever its errno (ENOSPC
included), raises that OSError forever after (the writer is FAILED; restart
the process).
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._native import ffi, lib
from ..codes import ErrorCode
from ..errors import DurableLossError, FieldError, error_for
from ..records import HEADER_SIZE, PAYLOAD_DTYPES, RecordType, encode
from .reader import STATES

__all__ = ["WalWriter", "WalStats", "SYNC_MODES"]

log = logging.getLogger("rsx.wal")

SYNC_MODES = {"data": 0, "full": lib.RSX_WAL_FULLSYNC, "none": lib.RSX_WAL_NOSYNC}


@dataclass(frozen=True)
class WalStats:
    """A snapshot of the writer's counters (struct rsx_wal_stats)."""

    next_seq: int
    appended_seq: int
    written_seq: int
    durable_seq: int
    oldest_seq: int
    active_first_seq: int
    active_bytes: int
    batches: int
    records: int
    bytes: int
    stalls: int
    stall_ns: int
    sync_ns_last: int
    sync_ns_max: int
    sync_ns_total: int
    rotations: int
    deleted_files: int
    retention_blocks: int
    retention_blocked_seq: int
    prealloc_misses: int
    write_retries: int
    prealloc_ready: bool
    state: str
    error: int
    recovered_file: str
    recovered_offset: int
    recovered_bytes: int
    recovered_error: int
    lost_first: int      # seqs recorded as SEQ_LOST at this open (accept_loss), 0 = none
    lost_last: int


def loss_evidence(loss) -> str:
    """Who reported the highest durable seq (a struct rsx_wal_loss), for messages."""
    who = []
    if loss.tip_seq and loss.tip_seq == loss.published_seq:
        who.append("the writer's tip file")
    if loss.consumer_seq and loss.consumer_seq == loss.published_seq:
        who.append(f"consumer {ffi.string(loss.consumer).decode(errors='replace')!r}")
    return " and ".join(who) or "the stream"


def _loss_message(directory: Path, stream_id: int, loss) -> str:
    return (f"WAL {directory} (stream {stream_id}): the files end at seq {loss.last_seq} but seq "
            f"{loss.published_seq} was reported durable ({loss_evidence(loss)}): seqs "
            f"{loss.last_seq + 1}..{loss.published_seq} are lost. The writer refuses to start, so "
            f"no seq is handed out twice. Restore the missing records (a replica, the archive), or "
            f"accept the loss: `rsx wal accept-loss {directory}` (WalWriter(accept_loss=True)) "
            f"records those seqs as SEQ_LOST and the stream continues after them")


class WalWriter:
    """Append records to one stream's WAL; seqs are assigned here.

    Parameters mirror struct rsx_wal_config: ``file_size`` (rotation limit),
    ``ring_size`` (in-memory buffer), ``batch_records`` / ``batch_us`` (a batch
    starts at N records or T microseconds; defaults flush as soon as the disk
    is free), ``retain_s`` (age after which rotated files may be deleted,
    consumers permitting; None keeps everything), ``first_seq`` (for a new
    stream), ``sync`` ("data" = fdatasync, "full" = fsync, "none" = unsafe,
    benchmarks only), ``prealloc`` (zero-filled next file), ``nonblocking``
    (a full ring raises BlockingIOError instead of blocking), ``manual`` (no
    flusher thread: call :meth:`flush`).

    A writer never starts below a seq its stream reported durable (the tip
    file, a consumer's stored position): if the files lost their tail it
    raises :class:`DurableLossError`. ``accept_loss=True`` is the operator's
    explicit choice to go on: the lost seqs are spent on SEQ_LOST tombstones
    (``stats().lost_first..lost_last``), so no seq is ever reused.
    """

    def __init__(self, directory: str | os.PathLike, stream_id: int, *,
                 file_size: int = 64 << 20, ring_size: int = 32 << 20, batch_records: int = 1,
                 batch_us: int = 0, retain_s: float | None = 4 * 3600, first_seq: int = 1,
                 sync: str = "data", prealloc: bool = True, prealloc_rate: int = 32 << 20,
                 nonblocking: bool = False, manual: bool = False, accept_loss: bool = False) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {sorted(SYNC_MODES)}")
        if not 0 < stream_id < 1 << 32:
            raise ValueError("stream_id must be in 1..2^32-1")
        self.directory = Path(directory)
        self.stream_id = stream_id
        self._dir_b = ffi.new("char[]", os.fsencode(self.directory))  # kept alive: C copies it
        cfg = ffi.new("struct rsx_wal_config *")
        lib.rsx_wal_config_default(cfg)
        cfg.dir = self._dir_b
        cfg.stream_id = stream_id
        cfg.flags = (SYNC_MODES[sync] | (0 if prealloc else lib.RSX_WAL_NO_PREALLOC)
                     | (lib.RSX_WAL_NONBLOCK if nonblocking else 0)
                     | (lib.RSX_WAL_MANUAL if manual else 0)
                     | (lib.RSX_WAL_ACCEPT_LOSS if accept_loss else 0))
        cfg.file_size = file_size
        cfg.ring_size = ring_size
        cfg.batch_records = batch_records
        cfg.batch_us = batch_us
        cfg.retain_ns = (1 << 64) - 1 if retain_s is None else int(retain_s * 1e9)
        cfg.first_seq = first_seq
        cfg.prealloc_rate = prealloc_rate
        loss = ffi.new("struct rsx_wal_loss *")
        cfg.loss = loss
        out = ffi.new("struct rsx_wal **")
        rc = lib.rsx_wal_open(out, cfg)
        if rc < 0:
            if rc == ErrorCode.LOST:
                raise DurableLossError(rc, _loss_message(self.directory, stream_id, loss))
            if rc == -errno.EBUSY:
                raise BlockingIOError(errno.EBUSY, f"{self.directory}: another writer holds stream "
                                                   f"{stream_id}")
            raise error_for(rc, f"open WAL {self.directory} (stream {stream_id})")
        self._w = out[0]
        # as configured: C rounds it up to a power of two, so half of this always fits one append_framed
        self.ring_size = ring_size
        self._nonblocking = nonblocking
        self._blocked_warned = 0
        st = self.stats()
        if st.lost_first:
            log.warning("WAL %s: seqs %d..%d were reported durable but are missing; recorded as "
                        "lost (SEQ_LOST) as the operator accepted; the stream continues at seq %d",
                        self.directory, st.lost_first, st.lost_last, st.lost_last + 1)
        if st.recovered_bytes:
            log.warning("WAL %s: cut a torn tail of %d bytes at offset %d of %s (%s); "
                        "records up to seq %d are intact", self.directory, st.recovered_bytes,
                        st.recovered_offset, st.recovered_file, st.recovered_error,
                        st.durable_seq)

    # -------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Make everything appended durable and stop; raises if some could not be."""
        if self._w is None:
            return
        w, self._w = self._w, None
        rc = lib.rsx_wal_close(w)
        if rc < 0:
            raise error_for(rc, f"close WAL {self.directory}: records above the durable seq "
                                f"were not made durable")

    def __enter__(self) -> WalWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_w", None) is not None:
            try:
                self.close()
            except Exception:
                pass

    def _live(self):
        if self._w is None:
            raise ValueError("WAL writer is closed")
        return self._w

    def _error(self, rc: int, what: str) -> Exception:
        if rc == -errno.EAGAIN:
            return BlockingIOError(errno.EAGAIN, f"{what}: WAL ring full (the flusher is behind); "
                                                 f"append the same record again later")
        if rc == -errno.ECANCELED:
            return ValueError(f"{what}: WAL writer {self.directory} was closed while this call "
                              f"waited; nothing was appended")
        st = self.stats()
        # FAILED first: a failed sync is fatal whatever its errno (ENOSPC included)
        if st.state == "failed":
            return error_for(rc, f"{what}: WAL {self.directory} FAILED: a sync failed, so nothing "
                                 f"after seq {st.durable_seq} can be trusted and nothing more becomes "
                                 f"durable; restart the process (recovery re-reads the disk)")
        if rc in (-errno.ENOSPC, -errno.EDQUOT, -errno.EFBIG):
            return OSError(-rc, f"{what}: WAL {self.directory} stalled: {os.strerror(-rc)} "
                                f"(ring full; durable up to seq {st.durable_seq}; the writer "
                                f"retries the write and resumes once space is freed)")
        return error_for(rc, what)

    # -------------------------------------------------------------- appends

    def append(self, rtype: int, /, **fields) -> int:
        """Encode and append one record; returns its seq (seq/stream_id are set here)."""
        fields.pop("seq", None)
        fields.pop("stream_id", None)
        rec = encode(rtype, **fields)
        return self.append_payload(rtype, rec[HEADER_SIZE:])

    def append_payload(self, rtype: int, payload: bytes | bytearray | memoryview) -> int:
        """Append one payload (the type's exact size); returns its seq."""
        seq = ffi.new("uint64_t *")
        buf = ffi.from_buffer(payload)
        rc = lib.rsx_wal_append(self._live(), int(rtype), buf, len(buf), seq)
        if rc < 0:
            raise self._error(rc, f"append type {int(rtype)}")
        return int(seq[0])

    def append_batch(self, rtype: int, payloads: np.ndarray) -> tuple[int, int]:
        """Append an array of ``PAYLOAD_DTYPES[rtype]`` payloads in one C call.

        Returns ``(first_seq, count)``. Blocking writers append all of them;
        a non-blocking writer may append fewer (count) and raises only if it
        could append none.
        """
        t = RecordType(rtype)
        if payloads.dtype != PAYLOAD_DTYPES[t] or payloads.ndim != 1:
            raise FieldError(f"append_batch needs a 1-d array of PAYLOAD_DTYPES[{t.name}]")
        if len(payloads) == 0:
            return self.next_seq, 0
        first = ffi.new("uint64_t *")
        n = lib.rsx_wal_append_batch(self._live(), int(t), ffi.cast("void *", payloads.ctypes.data),
                                     payloads.dtype.itemsize, len(payloads), payloads.strides[0],
                                     first)
        if n < 0:
            raise self._error(n, f"append {len(payloads)} {t.name}")
        if n < len(payloads) and not self._nonblocking:
            # a blocking append stops short only when close() cancelled it
            raise ValueError(f"append {len(payloads)} {t.name}: WAL writer {self.directory} was "
                             f"closed while this call waited; only seqs {int(first[0])}.."
                             f"{int(first[0]) + int(n) - 1} were appended")
        return int(first[0]), int(n)

    def append_framed(self, buf: bytearray, ts_ns: int = 0) -> tuple[int, int]:
        """Append back-to-back records framed in ``buf`` (type and len set) in one C call.

        Each gets the next seq, this stream's id, ``ts_ns`` (or the wall clock) where its ts_ns is 0,
        and its CRC, written IN ``buf``: ``buf`` then holds exactly the WAL's bytes. All or nothing:
        a malformed record anywhere raises its RecordError and appends nothing. ``buf`` may be at
        most half the ring (``ring_size // 2``). Returns ``(first_seq, count)``.
        """
        if not len(buf):
            return self.next_seq, 0
        first = ffi.new("uint64_t *")
        n = lib.rsx_wal_append_framed(self._live(), ffi.from_buffer(buf), len(buf), ts_ns, first, 0)
        if n < 0:
            raise self._error(n, f"append {len(buf)} bytes of framed records")
        return int(first[0]), int(n)

    # -------------------------------------------------------------- watermarks

    @property
    def next_seq(self) -> int:
        return int(lib.rsx_wal_next_seq(self._live()))

    @property
    def written_seq(self) -> int:
        return int(lib.rsx_wal_written_seq(self._live()))

    @property
    def durable_seq(self) -> int:
        """Every record up to this seq is synced: it may leave the process."""
        return int(lib.rsx_wal_durable_seq(self._live()))

    def wait_durable(self, seq: int, timeout: float | None = None) -> None:
        """Block until ``seq`` is durable; raises TimeoutError or the writer's error."""
        ns = -1 if timeout is None else int(timeout * 1e9)
        rc = lib.rsx_wal_wait_durable(self._live(), seq, ns)
        if rc == -errno.ETIMEDOUT:
            raise TimeoutError(f"seq {seq} not durable after {timeout} s "
                               f"(durable up to {self.durable_seq}, state {self.stats().state})")
        if rc < 0:
            raise self._error(rc, f"wait for seq {seq}")

    def flush(self) -> None:
        """Make everything appended so far durable (manual mode: write and sync now)."""
        rc = lib.rsx_wal_flush(self._live())
        if rc < 0:
            raise self._error(rc, "flush")

    def stats(self) -> WalStats:
        s = ffi.new("struct rsx_wal_stats *")
        lib.rsx_wal_stats(self._live(), s)
        st = WalStats(
            s.next_seq, s.appended_seq, s.written_seq, s.durable_seq, s.oldest_seq,
            s.active_first_seq, s.active_bytes, s.batches, s.records, s.bytes, s.stalls,
            s.stall_ns, s.sync_ns_last, s.sync_ns_max, s.sync_ns_total, s.rotations,
            s.deleted_files, s.retention_blocks, s.retention_blocked_seq, s.prealloc_misses,
            s.write_retries, bool(s.prealloc_ready), STATES.get(s.state, str(s.state)), s.error,
            ffi.string(s.recovered_file).decode(), s.recovered_offset, s.recovered_bytes,
            s.recovered_error, s.lost_first, s.lost_last)
        if st.retention_blocks > self._blocked_warned:
            self._blocked_warned = st.retention_blocks
            log.warning("WAL %s: retention blocked: a registered consumer is at seq %d and "
                        "still needs files that are due for deletion (see `rsx wal consumers`)",
                        self.directory, st.retention_blocked_seq)
        return st
