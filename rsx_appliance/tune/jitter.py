"""`rsx tune jitter`: per-CPU gaps seen by a spinning thread (native/src/jitter.c).

One thread per CPU calls ``rsx_jitter_run`` (cffi releases the GIL, so the
loops run in parallel). Each records every gap above the threshold into its
own latency histogram (:class:`rsx_appliance.latency.Histogram`, C
``rsx_hist_*``: fixed memory, no gap left out), from which the percentiles
and the log2 table are read; the histograms can be saved as a run file that
``rsx report`` shows.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, fields

import numpy as np

from ..errors import check
from ..latency import Histogram
from .errors import TuneInputError

__all__ = ["CoreJitter", "measure", "summarise", "validate_cpus"]


@dataclass(frozen=True)
class CoreJitter:
    cpu: int
    seconds: float
    threshold_ns: int
    loops: int
    loop_ns: int  # shortest interval between two clock reads
    gaps: int  # gaps above the threshold, every one in `hist`
    lost_ns: int
    lost_pct: float
    p99_ns: int | None  # from the histogram (within 1/1024); None when there are no gaps
    p99_9_ns: int | None
    max_ns: int
    histogram: list[dict]  # [{lo_ns, hi_ns, count}] power-of-two buckets of `hist`
    migrated: bool
    hist: Histogram | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "hist"}


def validate_cpus(cpus: list[int]) -> None:
    """Refuse CPUs this process may not run on (offline, outside its cpuset or affinity)."""
    if not cpus:
        raise TuneInputError("--cpus: no CPU given")
    allowed = os.sched_getaffinity(0)
    bad = [c for c in cpus if c not in allowed]
    if bad:
        raise TuneInputError(f"--cpus: CPU {bad[0]} is not available to this process "
                             f"(allowed: {','.join(map(str, sorted(allowed)))})")


def log2_buckets(hist: Histogram) -> list[dict]:
    """The histogram regrouped into power-of-two ns buckets (1024-2048, 2048-4096, ...).

    HdrHistogram buckets never straddle a power of two, so the regrouping is exact.
    """
    if hist.total == 0:
        return []
    lo, _hi, counts = hist.recorded()
    exps = np.floor(np.log2(np.maximum(lo, 1).astype(np.float64))).astype(np.int64)
    out: dict[int, int] = {}
    for e, c in zip(exps.tolist(), counts.tolist()):
        out[e] = out.get(e, 0) + c
    return [{"lo_ns": 1 << e, "hi_ns": 1 << (e + 1), "count": c} for e, c in sorted(out.items())]


def summarise(cpu: int, res, hist: Histogram, threshold_ns: int) -> CoreJitter:
    """One CPU's numbers: the C loop's counters plus percentiles and buckets of its histogram."""
    p99 = p99_9 = None
    if hist.total:
        p99, p99_9 = hist.percentile(99.0), hist.percentile(99.9)
    elapsed = max(int(res.elapsed_ns), 1)
    return CoreJitter(cpu, elapsed / 1e9, threshold_ns, int(res.loops), int(res.min_period_ns),
                      int(res.gaps), int(res.lost_ns), round(100.0 * int(res.lost_ns) / elapsed, 3),
                      p99, p99_9, int(res.max_gap_ns), log2_buckets(hist), bool(res.migrated), hist)


def measure(cpus: list[int], seconds: float, *, threshold_ns: int = 1000) -> list[CoreJitter]:
    """Spin ``seconds`` on every CPU of ``cpus`` at once; one :class:`CoreJitter` per CPU, in order.

    Raises :class:`TuneInputError` for bad arguments, ``OSError`` when the
    kernel refuses to pin a thread.
    """
    from .._native import ffi, lib

    validate_cpus(cpus)
    if len(set(cpus)) != len(cpus):
        raise TuneInputError("--cpus: a CPU is listed twice")
    if not 0 < seconds <= 3600:
        raise TuneInputError(f"--seconds must be in (0, 3600], not {seconds}")
    if threshold_ns <= 0:
        raise TuneInputError(f"--threshold-ns must be positive, not {threshold_ns}")
    hists = {c: Histogram() for c in cpus}
    results = {c: ffi.new("struct rsx_jitter_result *") for c in cpus}
    rcs: dict[int, int] = {}
    run = lib.rsx_jitter_run

    def worker(c: int) -> None:
        rcs[c] = run(c, int(seconds * 1e9), threshold_ns, hists[c]._h, results[c])

    threads = [threading.Thread(target=worker, args=(c,), name=f"rsx-jitter-{c}") for c in cpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in cpus:
        check(rcs[c], f"rsx_jitter_run(cpu {c})")
    return [summarise(c, results[c], hists[c], threshold_ns) for c in cpus]
