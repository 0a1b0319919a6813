"""Open-loop load: offer operations at a fixed rate, measure from the intended time.

A closed-loop benchmark (send, wait, send) stops sending while the target
stalls, so the stall shows up in one sample instead of in every request that
a real client would have sent meanwhile: coordinated omission. Here operation
``i`` is *intended* at ``t0 + i / rate``; its latency is ``done - intended``,
so a stall is charged to everything scheduled behind it (wrk2, Aeron's
LoadTestRig). specs/latency.md section 7.

    ol = OpenLoop(rate=10_000, duration=2.0)
    result = ol.run(lambda i: client.roundtrip(msgs[i]), name="rtt", setup={...})
    result.latency.percentile(99.9); result.save("out/rtt.lat.json")

For pipelined / asynchronous targets use :meth:`OpenLoop.schedule` and record
``completion - intended`` yourself, then ``run.set_load(**ol.load_stats())``.

Every run records what the load achieved: the rate actually kept, the peak
backlog (operations due but not yet sent) and the peak lag; a run whose
achieved rate fell below the offered rate is reported as having fallen behind
(its latencies then include the target's growing queue).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .latency import Histogram, Run, now_ns

__all__ = ["OpenLoop", "OpenLoopResult"]

_SPIN_NS = 200_000  # closer than this to the intended time: spin, don't sleep (wake-ups cost ~50 us)


@dataclass
class OpenLoopResult:
    latency: Histogram       # done - intended: what a fixed-rate client sees
    service: Histogram       # done - actual start: what a closed-loop benchmark would report
    count: int
    offered_rate: float
    achieved_rate: float     # operations / (last done - first intended)
    max_lag_ns: int          # how far the sender fell behind its schedule
    max_backlog: int         # most operations due and not yet started at one time
    run: Run

    @property
    def fell_behind(self) -> bool:
        """The target could not keep the offered rate (specs/latency.md 7)."""
        from .latency.report import FELL_BEHIND_SHARE

        return self.achieved_rate < FELL_BEHIND_SHARE * self.offered_rate

    def save(self, path: str | Path) -> Path:
        return self.run.save(path)


class OpenLoop:
    """Fixed-rate schedule of ``count`` operations (or ``duration`` seconds) at ``rate`` ops/s.

    Raises ``ValueError`` for a non-positive/non-finite rate, or unless exactly
    one of ``count`` / ``duration`` is given and positive.
    """

    def __init__(self, rate: float, *, count: int | None = None, duration: float | None = None) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of ops/s, got {rate!r}")
        if (count is None) == (duration is None):
            raise ValueError("give exactly one of count= or duration=")
        if duration is not None:
            if not (math.isfinite(duration) and duration > 0):
                raise ValueError(f"duration must be > 0 s, got {duration!r}")
            count = max(1, int(rate * duration))
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        self.rate = float(rate)
        self.count = count
        self.period_ns = 1e9 / self.rate
        self._t0 = self._last = 0
        self._yielded = self._max_backlog = self._max_lag = 0

    def schedule(self, start_ns: int | None = None) -> Iterator[tuple[int, int]]:
        """Yield ``(i, intended_ns)``, returning at (or, when behind, right after) each intended time.

        Tracks how far behind the schedule the caller runs: :meth:`load_stats`.
        """
        t0 = now_ns() + 1_000_000 if start_ns is None else int(start_ns)
        self._t0, self._yielded, self._max_backlog, self._max_lag = t0, 0, 0, 0
        for i in range(self.count):
            intended = t0 + int(i * self.period_ns)
            while True:
                now = now_ns()
                gap = intended - now
                if gap <= 0:
                    break
                if gap > _SPIN_NS:
                    time.sleep((gap - _SPIN_NS / 2) / 1e9)
            # operations due by now and not yet handed out, this one included
            due = min(self.count, int((now - t0) // self.period_ns) + 1)
            self._max_backlog = max(self._max_backlog, due - i)
            self._max_lag = max(self._max_lag, now - intended)
            self._yielded, self._last = i + 1, now
            yield i, intended

    def load_stats(self, end_ns: int | None = None) -> dict[str, Any]:
        """What the last :meth:`schedule` achieved, for :meth:`Run.set_load`: achieved rate (operations
        over first intended time to ``end_ns``, default the last hand-out), peak backlog and lag."""
        end = self._last if end_ns is None else int(end_ns)
        elapsed = (end - self._t0) / 1e9
        rate = self._yielded / elapsed if elapsed > 0 else float(self.rate)
        return {"achieved_rate_per_s": rate, "max_backlog": self._max_backlog,
                "max_lag_ns": self._max_lag, "count": self._yielded}

    def run(self, op: Callable[[int], Any], *, name: str = "openloop",
            setup: Mapping[str, Any] | None = None) -> OpenLoopResult:
        """Call ``op(i)`` for every scheduled operation; measure both latencies.

        The run's CPU use by other processes is recorded (``result.run``).
        An exception from ``op`` propagates (the partial result is lost: a
        benchmark with failing operations has no latency to report).
        """
        intended = np.empty(self.count, dtype=np.int64)
        started = np.empty(self.count, dtype=np.int64)
        done = np.empty(self.count, dtype=np.int64)
        clock = now_ns
        with Run(name, setup, self.rate, load_mode="open-loop") as run:
            for i, t in self.schedule():
                started[i] = clock()
                op(i)
                done[i] = clock()
                intended[i] = t
            run.record("latency", done - intended, "done - intended send time (coordinated-omission free)")
            run.record("service", done - started, "done - actual send time (what a closed loop reports)")
            elapsed = (int(done[-1]) - int(intended[0])) / 1e9
            achieved = self.count / elapsed if elapsed > 0 else self.rate
            # backlog when operation i started: the operations already due, i included
            backlog = np.searchsorted(intended, started, side="right") - np.arange(self.count)
            max_backlog, max_lag = int(backlog.max()), int((started - intended).max())
            run.set_load(achieved_rate_per_s=achieved, max_backlog=max_backlog, max_lag_ns=max_lag,
                         count=self.count)
        return OpenLoopResult(run.stages["latency"].histogram, run.stages["service"].histogram,
                              self.count, self.rate, achieved, max_lag, max_backlog, run)
