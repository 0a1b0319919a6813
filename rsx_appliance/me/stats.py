"""Read a running matching engine's status file, and send it control requests (specs/me.md 8).

The file (``<dir>/me.stats``) is a shared mapping the engine's loop writes
without locks: state, the applied symbol configuration, counters, per-stage
latency histograms, and the control mailbox. :class:`MeStats` maps it
read-only (read-write for :meth:`MeStats.control`); names of counters and
histograms come from the file itself.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._native import ffi, lib
from ..codes import ErrorCode, SymbolStatus
from ..errors import RsxError, StaleConfigError, InvalidArgumentError, check
from ..latency import Histogram
from ..records import PAYLOAD_DTYPES, RecordType, encode
from .engine import State

__all__ = ["MeStats", "StatsFileError", "ControlError", "CONTROL_WHY"]

_HEADER = ffi.sizeof("struct rsx_me_stats_header")
_CONFIG_OFF = ffi.offsetof("struct rsx_me_stats_header", "config")
_CONFIG_SEQ_OFF = ffi.offsetof("struct rsx_me_stats_header", "config_seq")
_NAME = 32
_MAGIC = b"RSXMEST1"  # RSX_ME_STATS_MAGIC
CONTROL_WHY = {lib.RSX_ME_CTL_OK: "", lib.RSX_ME_CTL_SYMBOL: "another symbol",
               lib.RSX_ME_CTL_VERSION: "config_version is not newer than the applied one",
               lib.RSX_ME_CTL_DECIMALS: "price and quantity decimals cannot change",
               lib.RSX_ME_CTL_INCOHERENT: "incoherent configuration (specs/numbers.md)"}


class StatsFileError(RsxError, ValueError):
    """The file is not a matching engine's status file (or not one this version reads)."""


class ControlError(RsxError):
    """A control request was refused or not answered; ``.code`` is the C code, ``.why`` the reason."""

    def __init__(self, message: str, code: int = 0, why: int = 0) -> None:
        super().__init__(message)
        self.code, self.why = code, why


def _config_fields(raw: bytes) -> dict[str, int]:
    rec = np.frombuffer(raw, dtype=PAYLOAD_DTYPES[RecordType.CONFIG_APPLIED], count=1)[0]
    return {name: int(rec[name]) for name in rec.dtype.names if not name.startswith("_")}


class MeStats:
    """A view of one ME's status file. ``path``: the file, or the ME's directory."""

    def __init__(self, path: str | os.PathLike, *, writable: bool = False) -> None:
        p = Path(path)
        if p.is_dir():
            p = p / "me.stats"
        self.path = p
        self.writable = writable
        flags = os.O_RDWR if writable else os.O_RDONLY
        self._fd = os.open(p, flags | os.O_CLOEXEC)
        try:
            size = os.fstat(self._fd).st_size
            if size < _HEADER:
                raise StatsFileError(f"{p}: {size} bytes is too short for a status file")
            self._mm = mmap.mmap(self._fd, size, mmap.MAP_SHARED,
                                 mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0))
        except BaseException:
            os.close(self._fd)
            raise
        self._buf = ffi.from_buffer(self._mm)
        self._h = ffi.cast("struct rsx_me_stats_header *", self._buf)
        if bytes(self._mm[:8]) != _MAGIC:
            self.close()
            raise StatsFileError(f"{p}: not a matching engine status file")
        if self._h.version != 1 or self._h.size != size:
            self.close()
            raise StatsFileError(f"{p}: version {self._h.version}, size {self._h.size} (file {size}): "
                                 "written by another version")
        h = self._h
        names = bytes(self._mm[_HEADER:_HEADER + (h.ncounters + h.nhist) * _NAME])
        split = [names[i * _NAME:(i + 1) * _NAME].rstrip(b"\0").decode() for i in range(h.ncounters + h.nhist)]
        self.counter_names = split[:h.ncounters]
        self.histogram_names = split[h.ncounters:]
        self._counters = np.frombuffer(self._mm, dtype=np.uint64, count=h.ncounters, offset=h.counters_off)

    def close(self) -> None:
        if getattr(self, "_mm", None) is not None:
            self._counters = None
            self._h = self._buf = None
            self._mm.close()
            self._mm = None
            os.close(self._fd)

    def __enter__(self) -> "MeStats":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- reading ------------------------------------------------------------

    def config(self) -> dict[str, int]:
        """The applied CONFIG_APPLIED payload's fields (a consistent copy: seqlock)."""
        for _ in range(1000):
            v0 = int(np.frombuffer(self._mm, np.uint64, 1, _CONFIG_SEQ_OFF)[0])
            raw = bytes(self._mm[_CONFIG_OFF:_CONFIG_OFF + 128])
            v1 = int(np.frombuffer(self._mm, np.uint64, 1, _CONFIG_SEQ_OFF)[0])
            if v0 == v1 and not v0 & 1:
                return _config_fields(raw)
        raise StatsFileError(f"{self.path}: the config kept changing while read")

    def counters(self) -> dict[str, int]:
        values = self._counters.copy()
        return {n: int(v) for n, v in zip(self.counter_names, values)}

    def alive(self) -> bool:
        """The process that wrote the file exists and its loop is running."""
        try:
            os.kill(self._h.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return self._h.state in (State.RUNNING, State.STOPPING, State.RECOVERING, State.STARTING)

    def read(self) -> dict[str, Any]:
        """Everything but the histograms, as plain values (for `rsx status`, JSON)."""
        h = self._h
        state = State(h.state) if h.state in State._value2member_map_ else h.state
        now = time.time_ns()
        cfg = self.config()
        return {"path": str(self.path), "pid": int(h.pid), "symbol_id": int(h.symbol_id),
                "state": state.name.lower() if isinstance(state, State) else int(state),
                "alive": self.alive(), "error": int(h.error),
                "error_name": ErrorCode(h.error).name.lower() if h.error in ErrorCode._value2member_map_
                else (os.strerror(-h.error) if h.error else ""),
                "started_ns": int(h.started_ns), "updated_ns": int(h.updated_ns),
                "age_s": max(0.0, (now - int(h.updated_ns)) / 1e9),
                "wait": {1: "spin", 2: "backoff", 3: "block"}.get(int(h.wait_mode), "?"),
                "durability": {1: "fsync", 2: "async"}.get(int(h.durability), "?"),
                "config": cfg, "status": SymbolStatus(cfg["status"]).name.lower()
                if cfg["status"] in SymbolStatus._value2member_map_ else cfg["status"],
                "counters": self.counters()}

    def histograms(self, into: dict[str, Histogram] | None = None) -> dict[str, Histogram]:
        """{stage: a copy of its latency histogram} (specs/me.md 8).

        ``into``: the histograms of an earlier call, overwritten in place (a reader that polls, like the
        console, allocates nothing after its first read).
        """
        out = {}
        for i, name in enumerate(self.histogram_names):
            hist = (into or {}).get(name) or Histogram()
            check(lib.rsx_me_stats_hist_read(self._buf, len(self._mm), i, hist._h), f"histogram {name}")
            out[name] = hist
        return out

    # -- control (specs/me.md 5) ----------------------------------------------

    def control(self, timeout: float = 5.0, **changes: Any) -> dict[str, int]:
        """Ask the running ME for its current config with ``changes`` and the next version.

        ``changes``: CONFIG_APPLIED fields (``status=SymbolStatus.HALTED``,
        ``taker_fee_bps=4`` ...). Returns the applied config. Raises
        :class:`ControlError` when the ME refuses it (``.why``) or does not answer within
        ``timeout`` (not running?), ``StaleConfigError`` if another change won the race.
        """
        if not self.writable:
            raise InvalidArgumentError(ErrorCode.INVALID, "open MeStats(writable=True) to send control")
        off = self._h.control_off
        box = ffi.cast("struct rsx_me_mailbox *", self._buf + off)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if not self.alive():
                raise ControlError(f"{self.path}: the matching engine (pid {self._h.pid}) is not running")
            fields = self.config()
            fields.update({k: int(v) for k, v in changes.items()})
            fields["config_version"] = self.config()["config_version"] + 1
            for k in ("seq", "ts_ns", "stream_id", "effective_at_ns"):
                fields.pop(k, None)
            payload = encode(RecordType.CONFIG_APPLIED, **fields)[16:]
            ffi.memmove(ffi.addressof(box, "config"), payload, len(payload))
            seq = int(box.done_seq) + 1
            box.req_seq = seq  # one aligned 8-byte store, after the config (x86 keeps store order)
            deadline = time.monotonic() + timeout
            while int(box.done_seq) != seq:
                if time.monotonic() > deadline:
                    raise ControlError(f"{self.path}: no answer from the matching engine in {timeout} s")
                time.sleep(0.001)
            result, why = int(box.result), int(box.why)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        if result == ErrorCode.STALE:
            raise StaleConfigError(result, CONTROL_WHY.get(why, ""))
        if result < 0:
            raise ControlError(f"refused: {CONTROL_WHY.get(why) or ErrorCode(result).name.lower()}", result, why)
        return self.config()
