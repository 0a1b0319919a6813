"""What `rsx status` shows, from the status files alone (specs/operations.md 7).

Every figure is read from what the processes publish about themselves
(``D/run/<name>.json``, the supervisor's ``D/run/up.json``) and from the
kernel's view of each pid (psutil): nothing is asked of a process, so a hung
process cannot hang `rsx status`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil

from ..config import Config, streams
from ..status import read_status_dir

__all__ = ["collect", "supervisor_view", "process_rows", "stream_rows", "STALE_S", "SUPERVISOR"]

STALE_S = 5.0           # a status file is rewritten about once a second; older than this: stale
SUPERVISOR = "up"       # the supervisor's status file, D/run/up.json


def _alive(pid: int, started_ns: int | None) -> psutil.Process | None:
    """The live process ``pid`` if it is the one that wrote the file (started no later than the file says,
    1 s of slop), else None (gone, a zombie, or the pid reused)."""
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        if started_ns and p.create_time() > started_ns / 1e9 + 1.0:
            return None
        return p
    except psutil.Error:
        return None


def _supervisor(doc: dict | None, now_ns: int) -> dict[str, Any]:
    if doc is None:
        return {"pid": None, "state": "none", "since_ns": None, "config": None, "alive": False}
    pid = doc.get("pid") if isinstance(doc.get("pid"), int) else None
    alive = pid is not None and _alive(pid, doc.get("started_ns")) is not None
    state = str(doc.get("state", "unknown"))
    if not alive and state in ("starting", "ready", "stopping"):
        state = "dead"
    return {"pid": pid, "state": state, "since_ns": doc.get("started_ns"), "config": doc.get("config"),
            "alive": alive}


def supervisor_view(docs: dict[str, dict], now_ns: int) -> tuple[dict[str, Any], dict, dict]:
    """Takes the supervisor's file out of ``docs``: (its row, its view of its children (``{}`` unless it
    lives), the endpoints it printed)."""
    up = docs.pop(SUPERVISOR, None)
    children = up.get("processes") if up and isinstance(up.get("processes"), dict) else {}
    sup = _supervisor(up, now_ns)
    if not sup["alive"]:
        children = {}       # a dead supervisor's view of its children is history, not state
    return sup, children, (up or {}).get("endpoints") or {}


Measure = Callable[[list[dict], dict[str, psutil.Process]], None]


def process_rows(cfg: Config, docs: dict[str, dict], children: dict, now_ns: int,
                 measure: Measure) -> list[dict[str, Any]]:
    """One row per configured process, then per other status file. ``measure(rows, handles)`` fills in CPU,
    RSS and uptime from the live processes (``handles``: name -> psutil.Process): over an interval for
    `rsx status`, between two collections for the console."""
    configured = [p.name for p in cfg.processes]
    names = configured + sorted(n for n in docs if n not in configured)
    role_of = {p.name: p.role for p in cfg.processes}
    rows, handles = [], {}
    for name in names:
        doc = docs.get(name) or {}
        child = children.get(name) if isinstance(children.get(name), dict) else {}
        row: dict[str, Any] = {"name": name, "role": role_of.get(name) or doc.get("role"),
                               "configured": name in role_of, "pid": None, "state": "not running",
                               "restarts": child.get("restarts") if isinstance(child.get("restarts"), int) else None,
                               "cpu_pct": None, "cpu_s": None, "rss_bytes": None, "uptime_s": None,
                               "status_age_s": None, "error": doc.get("error") or child.get("reason")}
        if doc:
            state = str(doc.get("state", "unknown"))
            pid = doc.get("pid") if isinstance(doc.get("pid"), int) else None
            updated = doc.get("updated_ns") if isinstance(doc.get("updated_ns"), int) else None
            if updated:
                row["status_age_s"] = round(max(0, now_ns - updated) / 1e9, 3)
            proc = _alive(pid, doc.get("started_ns")) if pid else None
            if proc is None:
                if state in ("starting", "ready"):
                    state = "dead"
                elif state == "stopping":
                    state = "stopped"
            else:
                row["pid"] = pid
                handles[name] = proc
                if row["status_age_s"] is not None and row["status_age_s"] > STALE_S and state == "ready":
                    state = "stale"
            row["state"] = state
        # the supervisor knows what a status file cannot say: restarting (nobody writes), failed for good
        if child.get("state") in ("restarting", "failed") and row["pid"] is None:
            row["state"] = child["state"]
        rows.append(row)
    measure(rows, handles)
    return rows


def _measure(rows: list[dict], handles: dict[str, psutil.Process], interval: float) -> None:
    """CPU % of one core over ``interval`` (one sleep for every process), CPU seconds, RSS, uptime."""
    for p in handles.values():
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    if handles and interval > 0:
        time.sleep(interval)
    for row in rows:
        p = handles.get(row["name"])
        if p is None:
            continue
        try:
            with p.oneshot():
                t = p.cpu_times()
                row["cpu_pct"] = round(p.cpu_percent(None), 1) if interval > 0 else None
                row["cpu_s"] = round(t.user + t.system, 2)
                row["rss_bytes"] = p.memory_info().rss
                row["uptime_s"] = round(max(0.0, time.time() - p.create_time()), 1)
        except psutil.Error:
            row["pid"], row["state"] = None, "dead"


def stream_rows(cfg: Config, docs: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per stream any status file mentions, or a configured process owns; journaled streams first.

    An entry with ``seq``/``durable_seq`` is the owner's (the sender's, for a link), one with ``applied_seq``
    or ``received`` a consumer's. A consumer's lag is the owner's durable seq minus what it applied, else the
    lag it reports (links have none: they are not journaled)."""
    rows: dict[int, dict[str, Any]] = {}

    def row(sid: int) -> dict[str, Any]:
        if sid not in rows:
            rows[sid] = {"stream_id": sid, "stream": streams.describe(sid), "journaled": not streams.is_link(sid),
                         "owner": None, "seq": None, "durable_seq": None, "consumers": []}
        return rows[sid]

    owner_of = {p.stream_id: p.name for p in cfg.processes if p.stream_id is not None}
    for sid, name in owner_of.items():
        row(sid)["owner"] = name
    for name, doc in docs.items():
        entries = doc.get("streams")
        if name == SUPERVISOR or not isinstance(entries, dict):
            continue
        for entry in entries.values():
            if not isinstance(entry, dict) or not isinstance(entry.get("stream_id"), int):
                continue
            r = row(entry["stream_id"])
            if "applied_seq" in entry or "received" in entry:
                lag = entry.get("lag")
                r["consumers"].append({"name": name, "applied_seq": entry.get("applied_seq", entry.get("received")),
                                       "lag": lag if isinstance(lag, int) else None, "state": entry.get("state")})
            elif "seq" in entry and (r["owner"] in (None, name)):
                r["owner"] = name
                r["seq"], r["durable_seq"] = entry.get("seq"), entry.get("durable_seq")
    for r in rows.values():
        top = r["durable_seq"] if isinstance(r["durable_seq"], int) else None
        for c in r["consumers"]:
            if r["journaled"] and top is not None and isinstance(c["applied_seq"], int):
                c["lag"] = max(0, top - c["applied_seq"])
        r["consumers"].sort(key=lambda c: c["name"])
    return sorted(rows.values(), key=lambda r: (not r["journaled"], r["stream_id"]))


def collect(cfg: Config, *, cpu_interval: float = 0.5) -> dict[str, Any]:
    """Everything `rsx status` prints (specs/operations.md 7; specs/schemas/status.schema.json)."""
    now_ns = time.time_ns()
    docs = read_status_dir(cfg.data_dir / "run")
    sup, children, endpoints = supervisor_view(docs, now_ns)
    processes = process_rows(cfg, docs, children, now_ns, lambda rows, handles: _measure(rows, handles, cpu_interval))
    configured = [p for p in processes if p["configured"]]
    return {"data_dir": str(cfg.data_dir), "config": cfg.path, "supervisor": sup,
            "endpoints": endpoints, "processes": processes,
            "streams": stream_rows(cfg, docs),
            "ready": bool(configured) and all(p["state"] == "ready" for p in configured),
            "time_ns": now_ns}
