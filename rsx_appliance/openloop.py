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
``completion - intended`` yourself.
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
    achieved_rate: float
    max_lag_ns: int          # how far the sender fell behind its schedule
    run: Run

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

    def schedule(self, start_ns: int | None = None) -> Iterator[tuple[int, int]]:
        """Yield ``(i, intended_ns)``, returning at (or, when behind, right after) each intended time."""
        t0 = now_ns() + 1_000_000 if start_ns is None else int(start_ns)
        for i in range(self.count):
            intended = t0 + int(i * self.period_ns)
            while True:
                gap = intended - now_ns()
                if gap <= 0:
                    break
                if gap > _SPIN_NS:
                    time.sleep((gap - _SPIN_NS / 2) / 1e9)
            yield i, intended

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
        return OpenLoopResult(run.stages["latency"].histogram, run.stages["service"].histogram,
                              self.count, self.rate, self.count / elapsed if elapsed > 0 else float("inf"),
                              int((started - intended).max()), run)
