"""HdrHistogram interval logs (.hlog, format 1.3): write a run, read any log.

Writing: one ``Tag=<stage>`` line per stage and interval (a run without
intervals gets one interval per stage spanning the run). Timestamps are
seconds relative to BaseTime = StartTime; Interval_Max is in ms (the Java
default ratio of 1e6 for ns values). ``#[rsx ...]`` comment lines carry the
run's name and setup; HdrHistogram readers skip them.

Reading: lines may be tagged or not (untagged = stage ``total``), comments and
the legend are skipped, and every interval of a stage is merged into the
stage's histogram. Malformed lines raise RunFileError with the line number.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .histogram import Histogram, InvalidHistogramError

if TYPE_CHECKING:
    from .run import Run

__all__ = ["write_hlog", "read_hlog"]

_LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
_INTERVAL = re.compile(r"(?:Tag=([^,]+),)?([\d.]+),([\d.]+),([\d.]+),(\S+)\s*$")
_START = re.compile(r"#\[StartTime: *([\d.]+)")
_BASE = re.compile(r"#\[BaseTime: *([\d.]+)")


def write_hlog(run: Run) -> str:
    start = run.start_epoch_s
    date = datetime.fromtimestamp(start, timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y")
    lines = [
        "#[Logged with rsx-appliance latency]",
        "#[Histogram log format version 1.3]",
        f"#[StartTime: {start:.3f} (seconds since epoch), {date}]",
        f"#[BaseTime: {start:.3f} (seconds since epoch)]",
        f"#[rsx run: {json.dumps(run.name)}]",
        f"#[rsx setup: {json.dumps(run.setup, separators=(',', ':'), default=str)}]",
        _LEGEND,
    ]
    rows = []
    wall = float(((run.setup.get("cpu") or {}).get("wall_s")) or 0.0)
    for st in run.stages.values():
        if st.intervals:
            for s, length, mx, blob in st.intervals:
                rows.append((s, st.name, length, mx, blob))
        elif st.histogram.total:
            rows.append((0.0, st.name, wall, st.histogram.max, st.histogram.encode()))
    for s, name, length, mx, blob in sorted(rows, key=lambda r: (r[0], r[1])):
        lines.append(f"Tag={name},{s:.3f},{length:.3f},{mx / 1e6:.3f},{blob}")
    return "\n".join(lines) + "\n"


def read_hlog(path: Path, text: str) -> Run:
    from .run import Run, RunFileError, Stage, _check_stage

    run = Run(path.name.removesuffix(".hlog"), collect_machine=False)
    run.setup = {"source": "hlog"}
    run.start_epoch_s = 0.0
    base = None
    intervals = 0
    for no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('"StartTimestamp"'):
            continue
        if line.startswith("#"):
            if m := _START.match(line):
                run.start_epoch_s = float(m.group(1))
            elif m := _BASE.match(line):
                base = float(m.group(1))
            elif line.startswith("#[rsx run: ") and line.endswith("]"):
                try:
                    run.name = str(json.loads(line[len("#[rsx run: "):-1]))
                except json.JSONDecodeError:
                    pass
            elif line.startswith("#[rsx setup: ") and line.endswith("]"):
                try:
                    setup = json.loads(line[len("#[rsx setup: "):-1])
                    if isinstance(setup, dict):
                        run.setup = setup
                except json.JSONDecodeError:
                    pass
            continue
        m = _INTERVAL.match(line)
        if not m:
            raise RunFileError(f"{path}:{no}: not an interval line: {line[:60]!r}")
        tag = m.group(1) or "total"
        try:
            _check_stage(tag)
        except ValueError as exc:
            raise RunFileError(f"{path}:{no}: {exc}") from None
        try:
            hist = Histogram.decode(m.group(5))
        except InvalidHistogramError as exc:
            raise RunFileError(f"{path}:{no}: bad histogram: {exc}") from None
        start = float(m.group(2))
        if base:
            start += base - (run.start_epoch_s or base)  # relative to BaseTime -> to StartTime
        elif start > 365 * 86400 and run.start_epoch_s:
            start -= run.start_epoch_s  # absolute timestamps
        st = run.stages.get(tag)
        if st is None:
            st = run.stages[tag] = Stage(tag, Histogram(hist.lowest, hist.highest, hist.digits))
        st.histogram.add(hist)
        st.intervals.append((start, float(m.group(3)), hist.max if hist.total else 0, m.group(5)))
        intervals += 1
    if not intervals:
        raise RunFileError(f"{path}: no interval histograms found (not an .hlog?)")
    run._start_mono = time.monotonic_ns()
    if run.start_epoch_s:
        run.created = datetime.fromtimestamp(run.start_epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return run
