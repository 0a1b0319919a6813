"""Helpers for the WAL / DXS / recorder tests."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import numpy as np

from rsx_appliance.launch import rsx_argv
from rsx_appliance.records import PAYLOAD_DTYPES, RecordType
from rsx_appliance.wal import WalReader, WalWriter

INSERTED = RecordType.ORDER_INSERTED
FILL = RecordType.FILL
TS0 = 1_700_000_000_000_000_000


def payloads(first_seq: int, n: int, rtype: RecordType = INSERTED, ts: np.ndarray | None = None):
    """n payloads whose qty (and user_id) encode the seq they will get."""
    p = np.zeros(n, dtype=PAYLOAD_DTYPES[rtype])
    seqs = np.arange(first_seq, first_seq + n, dtype=np.int64)
    p["qty"] = seqs
    p["ts_ns"] = TS0 + seqs if ts is None else ts
    p["symbol_id"] = 1 + seqs % 3
    for f in ("user_id", "taker_user_id"):
        if f in p.dtype.names:
            p[f] = seqs % 1000
    return p


def append_n(w: WalWriter, n: int, rtype: RecordType = INSERTED) -> tuple[int, int]:
    """Append n records whose qty is their seq; returns (first, last) seq."""
    first = w.next_seq
    done = 0
    while done < n:
        k = min(n - done, 50_000)
        got_first, got = w.append_batch(rtype, payloads(first + done, k, rtype))
        assert got_first == first + done
        done += got
    return first, first + n - 1


def write_stream(directory, n: int, stream_id: int = 1, mixed: bool = False, **cfg) -> None:
    """A closed WAL of n records (qty == seq); mixed alternates ORDER_INSERTED and FILL runs."""
    cfg.setdefault("file_size", 64 << 10)
    cfg.setdefault("ring_size", 256 << 10)
    with WalWriter(directory, stream_id, **cfg) as w:
        if not mixed:
            append_n(w, n)
        else:
            left = n
            i = 0
            while left:
                k = min(left, 1 + (i * 37) % 50)
                append_n(w, k, FILL if i % 2 else INSERTED)
                left -= k
                i += 1


def qty_of_all(batch) -> np.ndarray:
    """qty of every record of a batch, in seq order (any mix of INSERTED / FILL)."""
    out = np.empty(len(batch), dtype=np.int64)
    for t in np.unique(batch.index["type"]):
        rows = np.flatnonzero(batch.index["type"] == t)
        out[rows] = batch.view(int(t))["payload"]["qty"]
    return out


def read_all(directory, from_seq: int = 0, stream_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(seqs, qtys) of every readable record from from_seq."""
    seqs, qtys = [], []
    with WalReader(directory, stream_id) as r:
        r.seek(from_seq)
        for b in r:
            seqs.append(b.seqs.copy())
            qtys.append(qty_of_all(b))
    if not seqs:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    return np.concatenate(seqs), np.concatenate(qtys)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RSX = rsx_argv()  # the installed package, never the source tree by accident (specs/cli.md)


def start_server(wal: Path, port: int, *extra: str) -> subprocess.Popen:
    """`rsx dxs serve` in its own process; returns once it listens."""
    p = subprocess.Popen([*RSX, "dxs", "serve", "--wal", str(wal), "--port", str(port), *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if "dxs: stream" not in line:
        p.kill()
        raise RuntimeError(f"server did not start: {line!r} {p.stderr.read()}")
    return p


def wait_for(cond, timeout: float = 10.0, step: float = 0.01) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("condition not met in time")
        time.sleep(step)
