"""The operate page's snapshot: processes, streams, symbols, tuning check, latency (specs/console.md 5.2).

:meth:`Collector.tick` runs every ``refresh_s`` while a page watches (asked for
a snapshot in the last few refreshes; at rest the console collects nothing): it
reads the status files, the kernel's view of each pid and each matching
engine's shared status file, and keeps sparse copies of the ME latency
histograms for the live window.
:meth:`Collector.snapshot` turns the last tick into the JSON the page polls
(the latency views are computed once per tick, on the first request after it).
The tuning check runs in a worker thread every ``tune_check_s`` while watched.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ..config import Config
from .latency import LatencyWindows
from .processes import ProcessTable, read_docs, stream_rows

__all__ = ["Collector", "me_stats", "ME_READER_MISSING"]

log = logging.getLogger("rsx_appliance.console")

ME_READER_MISSING = "the matching engine's status reader (rsx_appliance.me) is not in this build"


def me_stats(path: Path, *, writable: bool = False):
    """An open ``MeStats`` of the ME status file at ``path`` (specs/me.md 8), or (None, why not)."""
    try:
        from ..me import MeStats
    except ImportError:
        return None, ME_READER_MISSING
    if not path.exists():
        return None, f"{path} does not exist: the matching engine is not running"
    try:
        return MeStats(path, writable=writable), None
    except (OSError, ValueError) as exc:
        return None, f"{path}: {exc}"



class Collector:
    def __init__(self, cfg: Config, *, clock=time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self.table = ProcessTable(cfg)
        self.windows = LatencyWindows(cfg.console.latency_window_s)
        self.tune: dict[str, Any] = {"checked_ns": None, "profile": cfg.profile, "summary": None,
                                     "problems": [], "error": "not checked yet"}
        self.collections = 0
        self.collect_ms = 0.0
        self._tick: dict[str, Any] | None = None
        self._hists: dict[str, dict] = {}        # source -> {stage: Histogram} of the last tick
        self._latency: dict[str, Any] | None = None
        self._tick_t = 0.0
        self._demanded: float | None = None       # when a page last asked for a snapshot

    # -- every refresh_s, while a page watches ---------------------------------------

    def watched(self) -> bool:
        """A page asked for a snapshot in the last ``max(10, 3 x refresh_s)`` seconds. A console nobody
        watches does not collect (the exchange at rest stays quiet); the first request ticks at once."""
        idle_after = max(10.0, 3.0 * self.cfg.console.refresh_s)
        return self._demanded is not None and self.clock() - self._demanded < idle_after

    def demand(self) -> None:
        """A page wants the snapshot: watched from now; a tick now if the last is ``refresh_s`` old."""
        self._demanded = self.clock()
        if self._tick is None or self._demanded - self._tick_t >= self.cfg.console.refresh_s:
            self.tick()

    def tuning_due(self) -> bool:
        """Watched, and the tuning check never ran or is ``tune_check_s`` old."""
        t = self.tune["checked_ns"]
        return self.watched() and (t is None or time.time_ns() - t >= self.cfg.console.tune_check_s * 10**9)

    def tick(self) -> None:
        t0 = time.perf_counter()
        now, now_ns = self.clock(), time.time_ns()
        docs = read_docs(self.cfg)
        symbols, sources, notes = [], {}, {}
        for s in self.cfg.symbols:
            row = {"id": s.id, "name": s.name, "process": None, "status": None, "config_version": None,
                   "source": None, "note": None}
            if s.name in self.cfg.engine_symbols:
                name = f"me.{s.name}"
                row["process"] = name
                doc = docs.get(name, {})
                path = Path(doc.get("stats_file") or self.cfg.process(name).data_dir / "me.stats")
                stats, why = me_stats(path)
                if stats is not None:
                    try:
                        r = stats.read()
                        if r.get("alive"):
                            row.update(status=r["status"], config_version=r["config"]["config_version"],
                                       source="me.stats")
                            sources[name] = stats.histograms(into=self._hists.get(name))
                        else:
                            why = f"the matching engine (pid {r['pid']}) is not running"
                    except (OSError, ValueError) as exc:
                        why = f"{path}: {exc}"
                    finally:
                        stats.close()
                if row["source"] is None and doc.get("symbol_status") is not None:
                    row.update(status=doc.get("symbol_status"), config_version=doc.get("config_version"),
                               source="status file")
                row["note"] = why
                notes[name] = why
            else:
                row["note"] = "no matching engine on this host"
            symbols.append(row)
        for name, hists in sources.items():
            self.windows.observe(name, hists, now)
        for name in set(self._hists) - set(sources):
            self.windows.forget(name)
        self._hists = sources
        self._latency = None
        self._tick_t = now
        self._tick = {"time_ns": now_ns, "processes": self.table.rows(docs, now_ns),
                      "streams": stream_rows(self.cfg, docs), "symbols": symbols, "latency_notes": notes}
        self.collections += 1
        self.collect_ms = round((time.perf_counter() - t0) * 1e3, 2)

    # -- the page's JSON -----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        if self._tick is None:
            self.tick()
        if self._latency is None:
            self._latency = self._latency_view()
        c = self.cfg.console
        return {**{k: v for k, v in self._tick.items() if k != "latency_notes"},
                "refresh_s": c.refresh_s, "data_dir": str(self.cfg.data_dir), "tune": self.tune,
                "latency": self._latency}

    def _latency_view(self) -> dict[str, Any]:
        out = []
        for name, hists in self._hists.items():
            v = self.windows.view(name, hists, self._tick_t)
            out.append({"process": name, "window_s": v["window_s"], "restarted": v["restarted"],
                        "stages": v["stages"], "note": None})
        for name, why in self._tick["latency_notes"].items():
            if name not in self._hists:
                out.append({"process": name, "window_s": None, "restarted": False, "stages": [], "note": why})
        return {"window_s": self.cfg.console.latency_window_s, "sources": out}

    def latency_run(self) -> dict[str, Any]:
        """The since-start histograms of the last tick as a run file document (specs/latency.md 5)."""
        from ..latency import Run

        run = Run("console", setup={"source": "rsx console", "data_dir": str(self.cfg.data_dir)})
        for name, hists in self._hists.items():
            for stage, h in hists.items():
                if h.total:
                    run.record(f"{name}.{stage}".lower(), h)
        run.finish()
        return run.to_dict()

    # -- the tuning check (a worker thread) ---------------------------------------

    def check_tuning(self) -> None:
        from ..fsutil import Root
        from ..tune.check import STATUSES, run_check
        from ..tune.host import discover
        from ..tune.profile import load_profile

        try:
            rows = run_check(discover(Root("/")), load_profile(self.cfg.profile), self.cfg.topology)
        except Exception as exc:   # the page says why instead of showing nothing
            log.warning("console: tuning check failed: %s", exc)
            self.tune = dict(self.tune, checked_ns=time.time_ns(), error=f"{type(exc).__name__}: {exc}")
            return
        self.tune = {"checked_ns": time.time_ns(), "profile": self.cfg.profile,
                     "summary": {s: sum(r.status == s for r in rows) for s in STATUSES},
                     "problems": [r.to_dict() for r in rows if r.status != "pass"], "error": None}
