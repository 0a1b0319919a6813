"""HdrHistogram interval logs (.hlog, format 1.3): write a run, read any log.

Writing: one ``Tag=<stage>`` line per stage and interval (a run without
intervals gets one interval per stage spanning the run). Timestamps are
seconds relative to BaseTime = StartTime; Interval_Max is in ms (the Java
default ratio of 1e6 for ns values). ``#[rsx ...]`` comment lines carry the
run's name and setup; HdrHistogram readers skip them.

Reading (:func:`read_hlog`): any log Java HdrHistogram or jHiccup writes; lines
may be tagged or not (untagged = stage ``total``), comments and the legend are
skipped, and every interval of a stage is merged into the stage's histogram
without clamping. Malformed lines raise RunFileError with the line number.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .histogram import Histogram, InvalidHistogramError, blob_encoding

if TYPE_CHECKING:
    from .run import Run

__all__ = ["write_hlog", "read_hlog"]

_LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
_START = re.compile(r"#\[StartTime: *(-?[\d.]+)")
_BASE = re.compile(r"#\[BaseTime: *(-?[\d.]+)")
_VERSION = re.compile(r"#\[Histogram log format version ([\w.]+)\]")


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


def _number(text: str, what: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise ValueError(f"{what} {text.strip()[:30]!r} is not a number") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"{what} {text.strip()[:30]!r} is not a finite number")
    return x


def _interval_line(line: str) -> tuple[str | None, float, float, str]:
    """(tag or None, start_s, length_s, blob) of one interval line.

    Parsed from the right, so a tag may hold anything Java's writer lets through
    (spaces, commas: its check only refuses 3-character tags with a delimiter in the
    middle), and fields may be separated by commas and spaces as Java's reader allows.
    """
    head, length, mx, blob = (f.strip() for f in line.rsplit(",", 3)) if line.count(",") >= 3 else \
        ("", "", "", "")
    if not blob:
        raise ValueError("not an interval line (want [Tag=T,]start,length,max,histogram)")
    tag = None
    if head.startswith("Tag="):
        tag, sep, head = head[4:].rpartition(",")
        if not sep or not tag:
            raise ValueError("Tag= without a tag")
    start = _number(head, "start timestamp")
    length = _number(length, "interval length")
    _number(mx, "interval max")  # Java's readers ignore it too: the histogram says it
    return tag, start, length, blob


def read_hlog(path: Path, text: str, progress=None) -> Run:
    """A run from any interval log Java HdrHistogram (1.x, 2.x) or jHiccup writes, or ours.

    Log format versions 1.01 to 1.3 (and logs without a version line); histogram encodings
    V0, V1 and V2 (:meth:`Histogram.decode`). Each tag is a stage, named by the tag as
    written; untagged lines are stage ``total``. A stage's histogram is built as Java's
    HistogramLogProcessor does: the first interval's lowest and digits, its range grown to
    hold every interval's values (auto-resizing Java histograms grow across intervals), so
    nothing is clamped. Times follow Java's HistogramLogReader: StartTime (else the first
    timestamp) is the run start; BaseTime, when given, is added to every timestamp,
    otherwise timestamps more than a year before StartTime are taken as relative to it.
    Raises RunFileError naming the file and line.
    """
    from .run import Run, RunFileError, Stage

    run = Run(path.name.removesuffix(".hlog"), collect_machine=False)
    run.setup = {"source": "hlog"}
    run.start_epoch_s = 0.0
    info: dict = {"format_version": None, "comments": [], "encodings": []}
    start_time = base = None
    tag_of: dict[str | None, str] = {}
    lines = text.splitlines()
    for no, raw in enumerate(lines, 1):
        if progress is not None and no % 256 == 0:
            progress(no, len(lines))
        line = raw.strip()
        if not line or line.startswith('"StartTimestamp"'):
            continue
        if line.startswith("#"):
            if m := _START.match(line):
                start_time = float(m.group(1))
            elif m := _BASE.match(line):
                base = float(m.group(1))
            elif m := _VERSION.match(line):
                info["format_version"] = m.group(1)
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
            elif len(info["comments"]) < 5:
                info["comments"].append(line[1:].strip("[] ")[:200])
            continue
        try:
            tag, start, length, blob = _interval_line(line)
            hist = Histogram.decode(blob)
        except (ValueError, InvalidHistogramError) as exc:
            raise RunFileError(f"{path}:{no}: {exc}") from None
        if start_time is None:
            start_time = start  # Java: no StartTime comment = the first timestamp
        if base is None:
            base = start_time if start < start_time - 365 * 86400.0 else 0.0
        enc = blob_encoding(blob)
        if enc not in info["encodings"]:
            info["encodings"].append(enc)
        name = tag_of.get(tag)
        if name is None:
            name = tag_of[tag] = tag if tag is not None else "total"
        st = run.stages.get(name)
        if st is None:  # Java: a copy of the first interval's geometry ...
            top = max(hist.highest, hist.max) if hist.total else hist.highest
            st = run.stages[name] = Stage(name, Histogram(hist.lowest, top, hist.digits))
        elif hist.total and hist.max > st.histogram.highest:  # ... resized to each new max
            grown = Histogram(st.histogram.lowest, hist.max, st.histogram.digits)
            grown.add(st.histogram)
            st.histogram = grown
        st.histogram.add(hist)
        st.intervals.append((round(start + base - start_time, 6), length, hist.max if hist.total else 0, blob))
    if not any(st.intervals for st in run.stages.values()):
        raise RunFileError(f"{path}: no interval histograms found (not an HdrHistogram log?)")
    if start_time is not None and start_time > 365 * 86400.0:  # an epoch time, not a relative one
        run.start_epoch_s = start_time
        run.created = datetime.fromtimestamp(start_time, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        run.created = ""
    if run.setup.get("source") == "hlog":
        run.setup["hlog"] = info
    run._start_mono = time.monotonic_ns()
    return run

