"""Processes and streams of a running exchange, from its status files (specs/console.md 5.2).

The rows are `rsx status`'s own (``rsx_appliance.up.collect``: the same states,
restarts and lags); what differs is how CPU is measured. `rsx status` sleeps
over an interval; the console keeps one psutil handle per live process and
reports its CPU between two collections, so a collection never waits.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from ..config import Config
from ..status import read_status_dir
from ..up.collect import STALE_S, process_rows, stream_rows, supervisor_view

__all__ = ["ProcessTable", "stream_rows", "read_docs", "STALE_S"]


class ProcessTable:
    """Rows of the processes table; keeps one psutil handle per live process for CPU between calls."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._handles: dict[tuple[int, float], psutil.Process] = {}

    def rows(self, docs: dict[str, dict], now_ns: int | None = None) -> list[dict[str, Any]]:
        now_ns = time.time_ns() if now_ns is None else now_ns
        docs = dict(docs)     # supervisor_view takes the supervisor's file out
        _, children, _ = supervisor_view(docs, now_ns)
        return process_rows(self.cfg, docs, children, now_ns, self._measure)

    def _measure(self, rows: list[dict], handles: dict[str, psutil.Process]) -> None:
        """CPU % since the previous table (None on a process's first), CPU seconds, RSS, uptime.

        A handle is kept per (pid, start time), so a reused pid starts over;
        each process is measured once per table (CPU % is an interval)."""
        kept: dict[tuple[int, float], psutil.Process] = {}
        measured: dict[tuple[int, float], dict | None] = {}
        for row in rows:
            fresh = handles.get(row["name"])
            if fresh is None:
                continue
            key = None
            try:
                key = (fresh.pid, fresh.create_time())
                if key not in measured:
                    proc = self._handles.get(key)
                    first = proc is None
                    proc = fresh if first else proc
                    with proc.oneshot():
                        cpu = proc.cpu_percent(None)   # since the previous call on this handle
                        t = proc.cpu_times()
                        measured[key] = {"cpu_pct": None if first else round(cpu, 1),
                                         "cpu_s": round(t.user + t.system, 2), "rss_bytes": proc.memory_info().rss,
                                         "uptime_s": round(max(0.0, time.time() - key[1]), 1)}
                    kept[key] = proc
            except psutil.Error:
                measured[key] = None
            got = measured.get(key)
            if got is None:
                row["pid"], row["state"] = None, "dead"
            else:
                row.update(got)
        self._handles = kept


def read_docs(cfg: Config) -> dict[str, dict]:
    return read_status_dir(cfg.data_dir / "run")
