"""Run files: the one way every benchmark hands its latencies to `rsx report`.

A run = a name, a setup block (machine, benchmark parameters, offered load,
clock, CPU use by others) and one histogram per stage, optionally cut into
time intervals. Format: specs/latency.md 4.1 (JSON, ``*.lat.json``); runs are
also written and read as HdrHistogram interval logs (``.hlog``, 4.3).

Simplest use::

    latency.write_run("out/x.lat.json", {"match": ns_array}, setup={...}, offered_rate=1e5)

With the CPU use of other processes measured during the run::

    with latency.Run("x", setup={...}, offered_rate=1e5) as run:
        run.record("match", ns_array)
        run.tick()                      # optional: close a time interval
    run.save("out/x.lat.json")
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RsxError
from ..fsutil import atomic_write
from .histogram import HOUR_NS, Histogram, InvalidHistogramError, _as_int64

__all__ = ["Run", "Stage", "RunFileError", "write_run", "load_run", "ORDER_PATH_STAGES",
           "stages_from_stamps", "RUN_FORMAT", "RUN_VERSION", "STAGE_NAME"]

RUN_FORMAT = "rsx-latency-run"
RUN_VERSION = 1
STAGE_NAME = re.compile(r"[a-z0-9_.-]{1,64}")

#: The stages of the order path, in path order (specs/latency.md 3).
ORDER_PATH_STAGES = ("gw_to_risk", "risk", "risk_to_me", "me_to_durable", "durable_to_me_out",
                     "return", "total")


class RunFileError(RsxError, ValueError):
    """A run file (or .hlog) that cannot be read: names the file and the problem."""

    exit_code = 2


def _check_stage(name: str) -> str:
    """A stage name this package records under (specs/latency.md 3)."""
    if not isinstance(name, str) or not STAGE_NAME.fullmatch(name):
        raise ValueError(f"stage name {name!r} must match [a-z0-9_.-]{{1,64}}")
    return name


def file_name(name: str) -> str:
    """``name`` as a safe file name component (runs and stages are named by their writers)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip(".")
    return safe or "_"


def _check_read_stage(name: object) -> str:
    """A stage name read from a file: whatever tag another tool wrote, on one line."""
    if not isinstance(name, str) or not 0 < len(name) <= 256 or any(c in name for c in "\r\n\0"):
        raise ValueError(f"stage name {name!r} must be a one-line string of 1..256 characters")
    return name


@dataclass
class Stage:
    """One stage of a run: its whole-run histogram and, optionally, intervals.

    ``intervals``: ``(start_s, length_s, max_ns, blob)`` tuples, start relative
    to the run start, blob a V2 histogram (decode with :meth:`interval_histograms`).
    """

    name: str
    histogram: Histogram
    description: str = ""
    intervals: list[tuple[float, float, int, str]] = field(default_factory=list)

    def interval_histograms(self) -> Iterator[tuple[float, float, Histogram]]:
        for start, length, _, blob in self.intervals:
            yield start, length, Histogram.decode(blob)


class Run:
    """A latency run being recorded, or one loaded from a file.

    ``Run(name, setup=None, offered_rate=None, *, description="", load_mode=None,
    lowest=1, highest=HOUR_NS, digits=3, own_pids=(), collect_machine=True)``.
    ``setup`` is the benchmark's own parameters (any JSON-able dict);
    ``offered_rate`` (ops/s) and ``load_mode`` ("open-loop" / "closed-loop")
    describe the load. As a context manager it measures the CPU time other
    processes used meanwhile (``own_pids``: helper processes that count as ours).
    """

    def __init__(self, name: str, setup: Mapping[str, Any] | None = None,
                 offered_rate: float | None = None, *, description: str = "",
                 load_mode: str | None = None, lowest: int = 1, highest: int = HOUR_NS,
                 digits: int = 3, own_pids: tuple[int, ...] = (), collect_machine: bool = True) -> None:
        if not isinstance(name, str) or not name or len(name) > 200 or "\n" in name:
            raise ValueError("run name must be a non-empty single-line string (<= 200 chars)")
        if offered_rate is not None and not (isinstance(offered_rate, (int, float))
                                             and math.isfinite(offered_rate) and offered_rate > 0):
            raise ValueError(f"offered_rate must be a positive number of ops/s, got {offered_rate!r}")
        self.name = name
        self.description = description
        self.created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.start_epoch_s = time.time()
        self._start_mono = time.monotonic_ns()
        self._geometry = (lowest, highest, digits)
        Histogram(lowest, highest, digits)  # validate the geometry now
        self.stages: dict[str, Stage] = {}
        self._interval: dict[str, Histogram] = {}
        self._interval_start = 0.0
        self._ticked = False
        self._own_pids = tuple(own_pids)
        self._snap = None
        self.path: Path | None = None
        from .clock import clock_info
        from .machine import machine_setup

        self.setup: dict[str, Any] = {
            "machine": machine_setup() if collect_machine else {},
            "benchmark": json.loads(json.dumps(dict(setup or {}), default=str)),
            "load": {"mode": load_mode, "offered_rate_per_s": offered_rate},
            "clock": clock_info().to_dict(),
            "cpu": None,
            "command": " ".join(sys.argv),
        }

    # --- recording ----------------------------------------------------------

    def stage(self, name: str, description: str = "") -> Stage:
        """The stage called ``name``, created empty on first use."""
        st = self.stages.get(name)
        if st is None:
            _check_stage(name)
            st = self.stages[name] = Stage(name, Histogram(*self._geometry), description)
            self._interval[name] = Histogram(*self._geometry)
        elif description and not st.description:
            st.description = description
        if name not in self._interval:  # a loaded run can be extended too
            self._interval[name] = Histogram(*self._geometry)
        return st

    def record(self, stage: str, values: Any, description: str = "") -> int:
        """Record ns values (integer array, int, or a Histogram) into a stage.

        Returns the number clamped to the histogram's highest value. Raises
        like :meth:`Histogram.record` (nothing recorded on error).
        """
        if isinstance(values, Histogram):
            st = self.stage(stage, description)
            st.histogram.add(values)
            self._interval[stage].add(values)
            return values.clamped
        _check_stage(stage)
        arr = _as_int64(values)  # TypeError for non-integers, before any state changes
        if arr.size and int(arr.min()) < 0:
            bad = int(np.flatnonzero(arr < 0)[0])
            raise ValueError(f"negative latency value {int(arr[bad])} at index {bad} "
                             f"in stage {stage!r}; nothing recorded")
        st = self.stage(stage, description)
        clamped = st.histogram.record(arr)
        self._interval[stage].record(arr)
        return clamped

    def set_load(self, *, achieved_rate_per_s: float | None = None, max_backlog: int | None = None,
                 max_lag_ns: int | None = None, count: int | None = None) -> None:
        """What the load generator achieved (specs/latency.md 7): the rate it kept, the most
        operations that were due but not yet sent (backlog) and how late the sender ran.
        `rsx report` says a run fell behind when the achieved rate is below its offered rate."""
        load = self.setup.setdefault("load", {})
        for key, value in (("achieved_rate_per_s", achieved_rate_per_s), ("max_backlog", max_backlog),
                           ("max_lag_ns", max_lag_ns), ("count", count)):
            if value is not None:
                load[key] = round(value, 1) if isinstance(value, float) else int(value)

    def elapsed_s(self) -> float:
        return (time.monotonic_ns() - self._start_mono) / 1e9

    def tick(self) -> None:
        """Close the current time interval of every stage (for .hlog and max-over-time)."""
        now = self.elapsed_s()
        for name, ih in self._interval.items():
            if ih.total:
                self.stages[name].intervals.append(
                    (round(self._interval_start, 6), round(now - self._interval_start, 6), ih.max,
                     ih.encode()))
                ih.reset()
        self._interval_start = now
        self._ticked = True

    def __enter__(self) -> Run:
        from .machine import cpu_snapshot

        self.start_epoch_s = time.time()
        self._start_mono = time.monotonic_ns()
        self._snap = cpu_snapshot(self._own_pids)
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def finish(self) -> None:
        """Stop the CPU accounting (and close the last interval if tick() was used)."""
        from .machine import CpuAccount, cpu_snapshot

        if self._snap is not None:
            self.setup["cpu"] = CpuAccount.between(self._snap, cpu_snapshot(self._own_pids)).to_dict()
            self._snap = None
        if self._ticked and any(h.total for h in self._interval.values()):
            self.tick()

    # --- files --------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RUN_FORMAT, "version": RUN_VERSION, "name": self.name,
            "description": self.description, "created": self.created,
            "start_epoch_s": round(self.start_epoch_s, 3), "unit": "ns",
            "histogram": {"lowest": self._geometry[0], "highest": self._geometry[1],
                          "digits": self._geometry[2]},
            "setup": self.setup,
            "stages": [{"name": s.name, "description": s.description, "count": s.histogram.total,
                        "clamped": s.histogram.clamped, "histogram": s.histogram.encode(),
                        "intervals": [list(iv) for iv in s.intervals]}
                       for s in self.stages.values()],
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the run file atomically (parents created); returns the path."""
        if self._snap is not None:
            self.finish()
        path = Path(path)
        atomic_write(path, json.dumps(self.to_dict(), indent=1) + "\n", make_parents=True)
        self.path = path
        return path

    def save_hlog(self, path: str | os.PathLike) -> Path:
        from .hlog import write_hlog

        path = Path(path)
        atomic_write(path, write_hlog(self), make_parents=True)
        return path

    def save_hgrm(self, directory: str | os.PathLike, unit_ratio: float = 1000.0) -> list[Path]:
        """One ``<run>.<stage>.hgrm`` per stage (values in us by default)."""
        directory = Path(directory)
        out: list[Path] = []
        for st in self.stages.values():
            p = directory / f"{file_name(self.name)}.{file_name(st.name)}.hgrm"
            n = 1
            while p in out:  # two tags that differ only in characters a file name cannot hold
                n += 1
                p = directory / f"{file_name(self.name)}.{file_name(st.name)}-{n}.hgrm"
            atomic_write(p, st.histogram.to_hgrm(unit_ratio), make_parents=True)
            out.append(p)
        return out

    def total_stage(self) -> Stage | None:
        """The stage called ``total``, if any."""
        return self.stages.get("total")


def write_run(path: str | os.PathLike, stages: Mapping[str, Any], *, name: str | None = None,
              setup: Mapping[str, Any] | None = None, offered_rate: float | None = None,
              load_mode: str | None = None, description: str = "",
              descriptions: Mapping[str, str] | None = None, digits: int = 3) -> Path:
    """Record ``{stage: ns array or Histogram}`` and write a run file in one call.

    ``name`` defaults to the file name without ``.lat.json``. CPU use by other
    processes is not known here (use ``with Run(...)`` for that): the file says
    ``"cpu": null``. Raises ``TypeError``/``ValueError`` for bad values or
    stage names before anything is written.
    """
    path = Path(path)
    if not stages:
        raise ValueError("write_run needs at least one stage")
    run = Run(name or path.name.removesuffix(".json").removesuffix(".lat"), setup, offered_rate,
              description=description, load_mode=load_mode, digits=digits)
    for stage, values in stages.items():
        run.record(stage, values, (descriptions or {}).get(stage, ""))
    return run.save(path)


def stages_from_stamps(**stamps: Any) -> dict[str, np.ndarray]:
    """Order-path stage latencies from per-order stamp arrays (specs/latency.md 3).

    Keyword arrays (same length, rsx-clock ns, 0 = not stamped): ``gw_recv``,
    ``risk_in``, ``risk_out``, ``me_in``, ``durable``, ``me_out``, ``gw_send``.
    Returns ``{stage: int64 differences}`` for every stage whose two endpoints
    were given, keeping only orders where both are stamped. Negative
    differences are kept (recording them raises: a clock problem must be loud).
    """
    pairs = {"gw_to_risk": ("gw_recv", "risk_in"), "risk": ("risk_in", "risk_out"),
             "risk_to_me": ("risk_out", "me_in"), "me_to_durable": ("me_in", "durable"),
             "durable_to_me_out": ("durable", "me_out"), "total": ("gw_recv", "gw_send")}
    known = {a for p in pairs.values() for a in p}
    unknown = set(stamps) - known
    if unknown:
        raise ValueError(f"unknown stamps {sorted(unknown)}; known: {sorted(known)}")
    arrs = {k: np.asarray(v).astype(np.int64, copy=False).reshape(-1) for k, v in stamps.items()}
    if len({a.size for a in arrs.values()}) > 1:
        raise ValueError("stamp arrays must have the same length")
    out = {}
    for stage, (a, b) in pairs.items():
        if a in arrs and b in arrs:
            keep = (arrs[a] != 0) & (arrs[b] != 0)
            out[stage] = arrs[b][keep] - arrs[a][keep]
    return out


# --- reading -----------------------------------------------------------------

def load_run(path: str | os.PathLike, progress: Callable[[int, int], None] | None = None) -> Run:
    """Read a run file (``*.lat.json``) or an HdrHistogram ``.hlog``.

    Raises :class:`RunFileError` naming the file for anything unreadable:
    missing, not JSON/hlog, wrong format or a newer version, bad stage names,
    malformed histograms. ``progress(done, total)`` is called now and then while
    a large log is read (lines done of total).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RunFileError(f"{path}: is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path}: cannot read: {exc}") from None
    if text.lstrip().startswith("{"):
        run = _from_json(path, text)
    else:
        from .hlog import read_hlog

        run = read_hlog(path, text, progress)
    run.path = path
    return run


def _from_json(path: Path, text: str) -> Run:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(d, dict) or d.get("format") != RUN_FORMAT:
        raise RunFileError(f"{path}: not an rsx latency run file (format != {RUN_FORMAT!r})")
    if not isinstance(d.get("version"), int) or d["version"] > RUN_VERSION or d["version"] < 1:
        raise RunFileError(f"{path}: run file version {d.get('version')!r} is not supported "
                           f"(this rsx reads version <= {RUN_VERSION})")
    try:
        geo = d.get("histogram") or {}
        run = Run.__new__(Run)
        run.name = str(d.get("name") or path.name)
        run.description = str(d.get("description") or "")
        run.created = str(d.get("created") or "")
        run.start_epoch_s = float(d.get("start_epoch_s") or 0.0)
        run._start_mono = time.monotonic_ns()
        run._geometry = (int(geo.get("lowest", 1)), int(geo.get("highest", HOUR_NS)), int(geo.get("digits", 3)))
        run.setup = d.get("setup") if isinstance(d.get("setup"), dict) else {}
        run.stages, run._interval = {}, {}
        run._interval_start, run._ticked, run._own_pids, run._snap, run.path = 0.0, False, (), None, None
        stages = d.get("stages")
        if not isinstance(stages, list):
            raise RunFileError(f"{path}: 'stages' must be a list")
        for s in stages:
            name = _check_read_stage(s.get("name"))
            if name in run.stages:
                raise RunFileError(f"{path}: stage {name!r} appears twice")
            hist = Histogram.decode(s["histogram"])
            intervals = []
            for iv in s.get("intervals") or []:
                start, length, mx, blob = iv
                intervals.append((float(start), float(length), int(mx), str(blob)))
            run.stages[name] = Stage(name, hist, str(s.get("description") or ""), intervals)
    except RunFileError:
        raise
    except InvalidHistogramError as exc:
        raise RunFileError(f"{path}: bad histogram: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunFileError(f"{path}: malformed run file: {exc!r}") from None
    return run
