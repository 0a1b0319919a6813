"""Reading WAL files and directories (specs/wal.md section 3).

- :func:`read_file` maps one file zero-copy (``np.memmap``) and indexes it with
  one C scan: a :class:`WalFile` with numpy views per record type.
- :class:`WalSet` / :class:`WalReader` read a stream directory by seq with the C
  reader: exact start, durable bound, rotation boundaries, breaks reported.
- :func:`read_tip` reads a writer's published state.

A break (bad CRC, torn tail, seq gap) ends the valid stream at the last good
record; it is reported as a :class:`Break` (file, offset, last good seq, error)
and never skipped over.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._native import ffi, lib
from ..codes import ErrorCode, error_message
from ..errors import RsxError, StreamMismatchError, check, error_for
from ..records import HEADER_SIZE, RECORD_VERSION
from .block import ENTRY_DTYPE, SCAN_ANYSEQ, SCAN_ZEROS, Batch, Block, Stop, scan

__all__ = [
    "Break", "WalBreakError", "WalFile", "read_file", "WalSet", "WalReader", "SetInfo", "Tip",
    "read_tip", "tip_durable_bytes", "STATES",
]

STATES = {0: "none", lib.RSX_WAL_RUNNING: "running", lib.RSX_WAL_STALLED: "stalled",
          lib.RSX_WAL_FAILED: "failed", lib.RSX_WAL_CLOSED: "closed"}


def _code_name(code: int) -> str:
    if code == 0:
        return "OK"
    try:
        return ErrorCode(code).name
    except ValueError:
        return errno.errorcode.get(-code, str(code))


@dataclass(frozen=True)
class Break:
    """Where a stream of records stops being valid.

    ``tail`` is True for a torn tail (the end of the newest file, past what
    any writer reported durable: bytes a crashed writer never synced, which
    the next writer start cuts off); False for corruption or a gap.
    """

    file: str
    offset: int
    last_seq: int       # last good seq before the break (0 = none)
    found_seq: int      # seq carried by the offending record, if readable
    error: int          # RSX_ECRC, RSX_ESHORT, RSX_ESEQ, ...
    tail: bool

    @property
    def reason(self) -> str:
        if self.error == ErrorCode.SEQ:
            return (f"seq {self.found_seq} follows seq {self.last_seq} (expected {self.last_seq + 1})"
                    if self.found_seq else "seq gap")
        return error_message(self.error)

    def __str__(self) -> str:
        kind = "torn tail" if self.tail else "break"
        return (f"{kind} in {self.file} at offset {self.offset}: {self.reason} "
                f"[{_code_name(self.error)}]; last good seq {self.last_seq}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["code"] = _code_name(self.error)
        d["reason"] = self.reason
        return d


class WalBreakError(RsxError):
    """A read hit a break: the stream is valid only up to ``brk.last_seq``."""

    def __init__(self, brk: Break) -> None:
        self.brk = brk
        self.code = brk.error
        super().__init__(str(brk))


# ---------------------------------------------------------------- one file

_NAMED = re.compile(r"^\d+_(\d+)_(?:\d+|active)\.wal$")
_STREAM_NAMED = re.compile(r"^(\d+)_[^/]*\.wal$")

class WalFile(Block):
    """One WAL or archive file, mapped read-only and indexed.

    ``raw`` is an ``np.memmap`` of the file (zero-copy); ``index`` has one
    :data:`~rsx_appliance.wal.block.ENTRY_DTYPE` row per valid record;
    ``brk`` is the :class:`Break` that ended the valid records, or None when
    the file is valid to its end (a zero-filled tail counts as a clean end).
    """

    __slots__ = ("path", "brk", "size")

    def __init__(self, path: Path, raw, index: np.ndarray, brk: Break | None, size: int) -> None:
        super().__init__(raw, index)
        self.path = path
        self.brk = brk
        self.size = size

    def __repr__(self) -> str:
        return f"WalFile({self.path.name}, {len(self)} records, seq {self.first_seq}..{self.last_seq})"


def read_file(path: str | os.PathLike, *, next_seq: int = 0, check_seq: bool = True,
              stream_id: int | None = 0, newest: bool = True, limit: int | None = None,
              durable: int | None = None) -> WalFile:
    """Map and index one file.

    ``next_seq``: the seq the first record must carry (0 = the first seq in
    the file's name for WAL files named ``S_F_L.wal`` / ``S_F_active.wal``,
    else whatever it is).
    ``check_seq=False`` accepts any seq order (for ``stats``, which reports
    gaps instead of stopping at them). ``stream_id``: the stream every record
    must belong to; 0 (default) = the stream the file's name says
    (``S_...wal``), or for a file without one the stream of its first record;
    None = any stream, as asked for. A file whose first record belongs to
    another stream raises :class:`StreamMismatchError`; a later record of
    another stream is a break. ``newest``: whether a break at the end may be a torn tail (the file
    is the last of its stream). ``limit``: read only this many bytes (a live
    writer's durable size: bytes past it may be in flight). ``durable``: how
    many bytes of the file its writer's tip reported durable (None: read
    from the tip beside an active file): a break below that is corruption,
    never a torn tail.
    """
    path = Path(path)
    if next_seq == 0 and check_seq:
        # a WAL file's name says its first seq: hold the data to it
        m = _NAMED.match(path.name)
        if m:
            next_seq = int(m.group(1))
    size = path.stat().st_size
    length = size if limit is None else min(size, limit)
    if length == 0:
        return WalFile(path, b"", np.empty(0, dtype=ENTRY_DTYPE), None, size)
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    flags = SCAN_ZEROS | (0 if check_seq else SCAN_ANYSEQ)
    want = _stream_of(path, raw[:length]) if stream_id == 0 else (stream_id or 0)
    if want and length >= HEADER_SIZE + 20:
        first_stream = int(raw[HEADER_SIZE + 16:HEADER_SIZE + 20].view("<u4")[0])
        # only a whole, valid first record says whose file this is: a damaged one is a break below
        if raw[0] == RECORD_VERSION and first_stream != want and \
                lib.rsx_record_check(ffi.from_buffer(raw[:length]), length) > 0:
            raise StreamMismatchError(
                int(ErrorCode.STREAM),
                f"{path}: holds records of stream {first_stream}, not stream {want}"
                f"{' as its name says' if stream_id == 0 else ''}; pass stream_id={first_stream} "
                f"(or None for any) to read it anyway")
    res = scan(raw, length=length, next_seq=next_seq, stream_id=want, flags=flags)
    if durable is None and res.stop in (Stop.PARTIAL, Stop.BAD):
        durable = tip_durable_bytes(path, want)
    brk = None
    if res.stop in (Stop.PARTIAL, Stop.BAD):
        error = res.error if res.stop == Stop.BAD else ErrorCode.SHORT
        last = int(res.index["seq"][-1]) if len(res.index) else max(next_seq - 1, 0)
        # a torn tail is only what no writer ever reported durable (specs/wal.md 2.7)
        torn = (newest and res.error not in (ErrorCode.SEQ, ErrorCode.STREAM) and limit is None
                and (durable is None or res.end >= durable))
        brk = Break(str(path), res.end, last, res.found_seq, int(error), torn)
    return WalFile(path, raw, res.index, brk, size)


_ACTIVE_NAMED = re.compile(r"^(\d+)_(\d+)_active\.wal$")


def tip_durable_bytes(path: str | os.PathLike, stream_id: int) -> int | None:
    """Bytes of an active file that its writer's tip (running, closed or dead) reported durable, or None."""
    path = Path(path)
    m = _ACTIVE_NAMED.match(path.name)
    if not m or not stream_id:
        return None
    try:
        tip = read_tip(path.parent, stream_id)
    except RsxError:
        return None
    if tip is None or tip.active_first_seq != int(m.group(2)):
        return None
    return tip.active_durable_bytes


def _stream_of(path: Path, raw) -> int:
    """The stream a file must hold: its name's (``S_...wal``), else its first record's (0 = unknown)."""
    m = _STREAM_NAMED.match(path.name)
    if m and 0 < int(m.group(1)) < 1 << 32:
        return int(m.group(1))
    if len(raw) >= HEADER_SIZE + 20 and raw[0] == RECORD_VERSION:
        return int(raw[HEADER_SIZE + 16:HEADER_SIZE + 20].view("<u4")[0])
    return 0


# ---------------------------------------------------------------- directories

@dataclass(frozen=True)
class SetInfo:
    """What a stream directory holds right now."""

    stream_id: int
    oldest_seq: int      # first seq retained (0 = none)
    durable_seq: int     # last seq readable now (0 = none)
    nfiles: int
    has_tip: bool
    writer_state: str    # "running", "stalled", "failed", "closed", "none"
    writer_error: int
    writer_pid: int
    writer_alive: bool


@dataclass(frozen=True)
class Tip:
    """A writer's published state (the S.tip file, specs/wal.md section 5)."""

    stream_id: int
    writer_pid: int
    state: str
    error: int
    durable_seq: int
    active_first_seq: int
    active_durable_bytes: int
    appended_seq: int
    oldest_seq: int
    updated_ns: int
    batches: int
    records: int
    bytes: int
    stalls: int
    stall_ns: int
    sync_ns_last: int
    sync_ns_max: int
    retention_blocked_seq: int


def read_tip(directory: str | os.PathLike, stream_id: int) -> Tip | None:
    """The tip of ``stream_id`` in ``directory``, or None if it has none."""
    t = ffi.new("struct rsx_wal_tip *")
    rc = lib.rsx_wal_tip_read(os.fsencode(directory), stream_id, t)
    if rc == -errno.ENOENT:
        return None
    check(rc, f"read tip of {directory}")
    return Tip(t.stream_id, t.writer_pid, STATES.get(t.state, str(t.state)), t.error,
               t.durable_seq, t.active_first_seq, t.active_durable_bytes, t.appended_seq,
               t.oldest_seq, t.updated_ns, t.batches, t.records, t.bytes, t.stalls, t.stall_ns,
               t.sync_ns_last, t.sync_ns_max, t.retention_blocked_seq)


class WalSet:
    """The files of one stream directory, shared by the readers of one thread.

    It keeps each file mapped and a sparse seq->offset index per file, so new
    readers and seeks do not rescan. ``stream_id=0`` infers the stream (the
    directory must then hold exactly one). Not thread-safe: one per thread.
    """

    def __init__(self, directory: str | os.PathLike, stream_id: int = 0) -> None:
        self.directory = Path(directory)
        out = ffi.new("struct rsx_wal_set **")
        check(lib.rsx_wal_set_open(out, os.fsencode(self.directory), stream_id),
              f"open WAL directory {self.directory}")
        self._set = out[0]
        self._readers = 0

    def close(self) -> None:
        if self._set is not None:
            if self._readers:
                raise RuntimeError("close every reader of a WalSet before the set")
            lib.rsx_wal_set_close(self._set)
            self._set = None

    def __enter__(self) -> WalSet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_set", None) is not None and not self._readers:
            lib.rsx_wal_set_close(self._set)
            self._set = None

    def refresh(self) -> None:
        check(lib.rsx_wal_set_refresh(self._set), "re-list WAL directory")

    def info(self) -> SetInfo:
        i = ffi.new("struct rsx_wal_set_info *")
        check(lib.rsx_wal_set_info(self._set, i), "WAL directory info")
        return SetInfo(i.stream_id, i.oldest_seq, i.durable_seq, i.nfiles, bool(i.has_tip),
                       STATES.get(i.writer_state, str(i.writer_state)), i.writer_error,
                       i.writer_pid, bool(i.writer_alive))

    def tip_seq(self) -> int:
        """The durable seq the writer's tip publishes (0 without a tip); no syscall."""
        return int(lib.rsx_wal_set_tip_seq(self._set))

    def files(self) -> list[tuple[str, int]]:
        """(file name, first seq) of every file, oldest first."""
        out = []
        first = ffi.new("uint64_t *")
        i = 0
        while (name := lib.rsx_wal_set_file(self._set, i, first)) != ffi.NULL:
            out.append((ffi.string(name).decode(), int(first[0])))
            i += 1
        return out

    @property
    def stream_id(self) -> int:
        return self.info().stream_id


class WalReader:
    """Read a stream directory by seq with the C reader (specs/wal.md 3.2).

    ``source`` is a directory path (a private :class:`WalSet` is opened) or a
    shared :class:`WalSet`. The reader starts at the oldest record; ``seek(n)``
    makes the next record exactly ``n``. Reads stop at the durable bound: a
    record the writer has not synced is never returned.
    """

    def __init__(self, source: str | os.PathLike | WalSet, stream_id: int = 0,
                 buffer_size: int = 1 << 20) -> None:
        self._own = not isinstance(source, WalSet)
        self.set = WalSet(source, stream_id) if self._own else source
        out = ffi.new("struct rsx_wal_reader **")
        check(lib.rsx_wal_reader_open(out, self.set._set), "open WAL reader")
        self._r = out[0]
        self.set._readers += 1
        self._buffer_size = max(buffer_size, 4096)
        self._entries = np.empty(self._buffer_size // 80 + 1, dtype=ENTRY_DTYPE)
        self._spare: bytearray | None = None

    def close(self) -> None:
        if self._r is not None:
            lib.rsx_wal_reader_close(self._r)
            self._r = None
            self.set._readers -= 1
            if self._own:
                self.set.close()

    def __enter__(self) -> WalReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    @property
    def next_seq(self) -> int:
        """The seq the next read returns first."""
        return int(lib.rsx_wal_reader_next_seq(self._r))

    def seek(self, seq: int) -> None:
        """Make the next record read exactly ``seq`` (0 = the oldest retained).

        Raises :class:`~rsx_appliance.errors.SeqGoneError` when ``seq`` is
        older than anything retained. A seq beyond the tip is accepted.
        """
        if seq < 0:
            raise ValueError("seq must be >= 0")
        check(lib.rsx_wal_reader_seek(self._r, seq), f"seek to seq {seq}")

    def _break(self) -> Break | None:
        b = ffi.new("struct rsx_wal_break *")
        if lib.rsx_wal_reader_break(self._r, b) != 0:
            return None
        name = ffi.string(b.file).decode()
        return Break(str(self.set.directory / name), b.offset, b.last_seq, b.found_seq, b.error,
                     bool(b.tail))

    def _raise(self, rc: int, context: str):
        brk = self._break()
        if brk is not None and brk.error == rc:
            raise WalBreakError(brk)
        raise error_for(rc, context)

    def read(self, max_bytes: int | None = None) -> Batch:
        """The next whole records up to the durable bound (an empty batch = caught up).

        Raises :class:`WalBreakError` at a break (after the records before it
        were returned by earlier calls), SeqGoneError if retention deleted
        the file holding the next seq.
        """
        cap = min(max_bytes or self._buffer_size, self._buffer_size)
        # a buffer is handed out with the batch it holds; an unused one is kept
        buf = self._spare if self._spare is not None and len(self._spare) >= cap else bytearray(cap)
        self._spare = None
        nbytes = ffi.new("size_t *")
        n = lib.rsx_wal_reader_read(self._r, ffi.from_buffer(buf), cap,
                                    ffi.cast("struct rsx_wal_entry *", self._entries.ctypes.data),
                                    len(self._entries), nbytes)
        if n <= 0:
            self._spare = buf
            if n < 0:
                self._raise(n, "read WAL")
            return Batch.empty()
        return Batch(memoryview(buf)[:nbytes[0]], self._entries[:n].copy())

    def read_seq(self, seq: int) -> bytes:
        """The framed record with this seq (the CMP deep-retransmit path).

        Raises BlockingIOError if it is not durable yet, SeqGoneError if no
        longer retained, WalBreakError if the stream breaks before it.
        """
        out = ffi.new("uint8_t[]", lib.RSX_RECORD_MAX)
        n = lib.rsx_wal_read_seq(self._r, seq, out, len(out))
        if n < 0:
            self._raise(n, f"read seq {seq}")
        return bytes(ffi.buffer(out, n))

    def __iter__(self) -> Iterator[Batch]:
        """Batches until caught up with the durable tip."""
        while True:
            batch = self.read()
            if not len(batch):
                return
            yield batch

    def info(self) -> SetInfo:
        return self.set.info()
