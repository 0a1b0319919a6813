"""Processes and streams of a running exchange, from its status files (specs/console.md 5.2).

Everything here is read from what the processes publish about themselves:
``D/run/<process>.json`` (specs/config.md, status files) and, for CPU and
memory, the kernel's view of each pid (psutil). Nothing is asked of a process.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from ..config import Config, streams
from ..status import read_status_dir

__all__ = ["ProcessTable", "stream_rows", "read_docs", "STALE_S"]

#: a status file is rewritten about once a second; older than this and its pid gone = dead
STALE_S = 5.0
#: the supervisor's status file (specs/operations.md, `rsx up`), holding each child's restart count
SUPERVISOR_FILE = "up"


class ProcessTable:
    """Rows of the processes table; keeps one psutil handle per live pid for CPU between calls."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._handles: dict[int, psutil.Process] = {}

    def rows(self, docs: dict[str, dict], now_ns: int | None = None) -> list[dict[str, Any]]:
        now_ns = time.time_ns() if now_ns is None else now_ns
        supervisor = docs.get(SUPERVISOR_FILE, {})
        children = supervisor.get("processes") if isinstance(supervisor.get("processes"), dict) else {}
        sup_pid = supervisor.get("pid") if isinstance(supervisor.get("pid"), int) else None
        if sup_pid is None or not _wrote_it(sup_pid, supervisor.get("started_ns")):
            children = {}       # a dead supervisor's view of its children is history, not state
        configured = [p.name for p in self.cfg.processes]
        names = configured + sorted(n for n in docs if n not in configured)
        seen: set[int] = set()
        measured: dict[int, dict | None] = {}
        out = []
        for name in names:
            doc = docs.get(name)
            role = next((p.role for p in self.cfg.processes if p.name == name), None)
            row: dict[str, Any] = {"name": name, "role": role or (doc or {}).get("role"),
                                   "configured": role is not None, "state": "not running", "pid": None,
                                   "uptime_s": None, "status_age_s": None, "restarts": None, "cpu_pct": None,
                                   "cpu_s": None, "rss_bytes": None, "error": None}
            child = children.get(name) if isinstance(children.get(name), dict) else {}
            if isinstance(child.get("restarts"), int):
                row["restarts"] = child["restarts"]
            row["error"] = (doc or {}).get("error") or child.get("reason")
            if doc is None:
                if child.get("state") in ("restarting", "failed"):
                    row["state"] = child["state"]
                out.append(row)
                continue
            state = str(doc.get("state", "unknown"))
            pid = doc.get("pid") if isinstance(doc.get("pid"), int) else None
            started_ns = doc.get("started_ns") if isinstance(doc.get("started_ns"), int) else None
            updated_ns = doc.get("updated_ns") if isinstance(doc.get("updated_ns"), int) else None
            if updated_ns:
                row["status_age_s"] = round(max(0, now_ns - updated_ns) / 1e9, 3)
            got = self._measure(pid, started_ns, measured) if pid else None
            if got is None:
                if state in ("starting", "ready"):
                    state = "dead"           # the file says it serves, but its pid is gone
                elif state == "stopping":
                    state = "stopped"
            else:
                seen.add(pid)
                row["pid"] = pid
                row.update(got)
                if row["status_age_s"] is not None and row["status_age_s"] > STALE_S and state == "ready":
                    state = "stale"      # alive, but not writing its status: hung or overloaded
            # the supervisor knows what a status file cannot say: restarting (nobody writes), failed for good
            if child.get("state") in ("restarting", "failed") and row["pid"] is None:
                state = child["state"]
            row["state"] = state
            out.append(row)
        for pid in list(self._handles):
            if pid not in seen:
                del self._handles[pid]
        return out

    def _measure(self, pid: int, started_ns: int | None, measured: dict) -> dict | None:
        """Uptime, CPU % since the previous table and RSS of the live process that wrote the file.

        None when ``pid`` is gone, or is not that process: the file's
        ``started_ns`` is taken after the process started (1 s allowed for
        clock slop), so an older ``started_ns`` means the pid was reused.
        Each pid is measured once per table (CPU % is an interval).
        """
        if pid not in measured:
            proc = self._handles.get(pid)
            fresh = proc is None
            try:
                if proc is None:
                    proc = psutil.Process(pid)
                with proc.oneshot():
                    if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                        raise psutil.NoSuchProcess(pid)
                    cpu = proc.cpu_percent(None)   # since the previous call: none before the first
                    times = proc.cpu_times()
                    measured[pid] = {"created": proc.create_time(), "cpu_s": round(times.user + times.system, 2),
                                     "uptime_s": round(max(0.0, time.time() - proc.create_time()), 1),
                                     "cpu_pct": None if fresh else round(cpu, 1),
                                     "rss_bytes": proc.memory_info().rss}
                self._handles[pid] = proc
            except psutil.Error:
                self._handles.pop(pid, None)
                measured[pid] = None
        got = measured[pid]
        if got is None or (started_ns is not None and got["created"] > started_ns / 1e9 + 1.0):
            return None
        return {k: v for k, v in got.items() if k != "created"}


def _wrote_it(pid: int, started_ns: int | None) -> bool:
    """``pid`` is alive and is the process that wrote a status file started at ``started_ns`` (not a reused pid)."""
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and not (
            isinstance(started_ns, int) and p.create_time() > started_ns / 1e9 + 1.0)
    except psutil.Error:
        return False


def stream_rows(cfg: Config, docs: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per stream seen in any status file (or owned by a configured process).

    An entry with ``seq``/``durable_seq`` is the owner's view (the sender's,
    for a link), one with ``applied_seq`` (or ``received``) a consumer's. A
    consumer's lag on a journaled stream is the owner's durable seq minus what
    it applied (what `rsx status` shows, specs/operations.md), else the lag it
    reports. Journaled streams first.
    """
    rows: dict[int, dict[str, Any]] = {}

    def row(sid: int) -> dict[str, Any]:
        if sid not in rows:
            rows[sid] = {"stream_id": sid, "stream": streams.describe(sid), "journaled": not streams.is_link(sid),
                         "owner": None, "seq": None, "durable_seq": None, "consumers": []}
        return rows[sid]

    for p in cfg.processes:
        if p.stream_id is not None:
            row(p.stream_id)["owner"] = p.name
    for name, doc in docs.items():
        entries = doc.get("streams")
        if name == SUPERVISOR_FILE or not isinstance(entries, dict):
            continue
        for entry in entries.values():
            if not isinstance(entry, dict) or not isinstance(entry.get("stream_id"), int):
                continue
            r = row(entry["stream_id"])
            if "applied_seq" in entry or "received" in entry:
                lag = entry.get("lag")
                r["consumers"].append({"name": name, "applied_seq": entry.get("applied_seq", entry.get("received")),
                                       "lag": lag if isinstance(lag, int) else None,
                                       "state": entry.get("state")})
            elif "seq" in entry or "durable_seq" in entry:
                r["owner"] = r["owner"] or name
                if r["owner"] == name:
                    r["seq"], r["durable_seq"] = entry.get("seq"), entry.get("durable_seq")
    for r in rows.values():
        top = r["durable_seq"] if isinstance(r["durable_seq"], int) else None
        for c in r["consumers"]:
            if r["journaled"] and top is not None and isinstance(c["applied_seq"], int):
                c["lag"] = max(0, top - c["applied_seq"])
        r["consumers"].sort(key=lambda c: c["name"])
    return sorted(rows.values(), key=lambda r: (not r["journaled"], r["stream_id"]))


def read_docs(cfg: Config) -> dict[str, dict]:
    return read_status_dir(cfg.data_dir / "run")
