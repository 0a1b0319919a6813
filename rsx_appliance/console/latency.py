"""Live per-stage latency: a sliding window over histograms a process keeps since it started.

A process's histograms only ever grow (specs/me.md 8). Every ``observe`` keeps a
sparse copy of each stage's counts (the non-empty buckets: a few hundred
numbers, where a dense copy is 270 KB); the window is the counts now minus the
copy taken ``window_s`` ago (:meth:`Histogram.from_counts`). Counts that went
down mean the process restarted: the window starts again from its new start.
Percentiles and spectrum points are `rsx report`'s (rsx_appliance.latency).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from ..latency import Histogram
from ..latency.report import spectrum_points

__all__ = ["LatencyWindows", "stage_view"]

_Sparse = dict[str, tuple[np.ndarray, np.ndarray]]  # stage -> (bucket indexes, counts)


def _sparse(hists: dict[str, Histogram]) -> _Sparse:
    out = {}
    for name, h in hists.items():
        c = h.counts
        idx = np.flatnonzero(c)
        out[name] = (idx, c[idx].copy())
    return out


def stage_view(h: Histogram) -> dict[str, Any]:
    """A stage's summary (``Histogram.summary('ns')``) and its percentile spectrum."""
    x, y, labels = spectrum_points(h)
    return {"summary": h.summary("ns"),
            "spectrum": {"x": [round(v, 4) for v in x], "y_ns": y, "labels": labels}}


class LatencyWindows:
    """Sparse snapshots per source (a process) and the window view of each of its stages."""

    def __init__(self, window_s: float) -> None:
        self.window_s = float(window_s)
        self._snaps: dict[str, deque[tuple[float, _Sparse]]] = {}

    def observe(self, source: str, hists: dict[str, Histogram], now: float) -> None:
        """Keep a sparse copy of ``hists`` taken at ``now`` (monotonic seconds)."""
        snaps = self._snaps.setdefault(source, deque())
        prev = snaps[-1][1] if snaps else {}
        if any(h.total < int(prev[n][1].sum()) for n, h in hists.items() if n in prev):
            snaps.clear()                         # counts went down: a new process, counted from nothing
            snaps.append((now, None))
        snaps.append((now, _sparse(hists)))
        while len(snaps) >= 2 and snaps[1][0] <= now - self.window_s:
            snaps.popleft()                       # snaps[0]: the newest copy at least window_s old

    def forget(self, source: str) -> None:
        self._snaps.pop(source, None)

    def view(self, source: str, hists: dict[str, Histogram], now: float) -> dict[str, Any]:
        """{"window_s", "restarted", "stages": [{name, window, total}]} for ``hists`` now.

        ``window_s`` is the window's real length; ``restarted``: the process
        restarted within it, so the window holds everything since its restart.
        """
        snaps = self._snaps.get(source)
        base_t, base = (snaps[0] if snaps else (now, {}))
        restarted = base is None
        base = base or {}
        stages = []
        for name, h in hists.items():
            idx, vals = base.get(name, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
            delta = h.counts.astype(np.int64, copy=True)
            delta[idx] -= vals
            try:
                window = Histogram.from_counts(delta, h.lowest, h.highest, h.digits)
            except ValueError:                    # restarted since the copy: its whole life is the window
                window = h
            stages.append({"name": name, "window": stage_view(window), "total": stage_view(h)})
        return {"window_s": round(now - base_t, 1), "restarted": restarted, "stages": stages}
