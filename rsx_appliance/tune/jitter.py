"""`rsx tune jitter`: per-CPU gaps seen by a spinning thread (native/src/jitter.c), summarised with numpy.

One thread per CPU calls ``rsx_jitter_run`` (cffi releases the GIL, so the
loops run in parallel). Each stores its gaps into its own numpy buffer; gaps
beyond the buffer are counted as ``overflow`` by the C loop and reported, and
the percentiles then cover only the stored gaps (said in the report).

The latency histogram module (rsx_appliance.latency, C ``rsx_hist_*``) is
being built in parallel; when it lands, :func:`summarise` should record the
stored gaps into one histogram per CPU instead of computing percentiles and
log2 buckets here, and the report should export it in its format.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import check
from .errors import TuneInputError

__all__ = ["CoreJitter", "measure", "summarise", "validate_cpus"]


@dataclass(frozen=True)
class CoreJitter:
    cpu: int
    seconds: float
    threshold_ns: int
    loops: int
    loop_ns: int  # shortest interval between two clock reads
    gaps: int  # stored + overflow
    overflow: int
    lost_ns: int
    lost_pct: float
    p99_ns: int | None  # over the stored gaps; None when there are none
    p999_ns: int | None
    max_ns: int
    histogram: list[dict]  # [{lo_ns, hi_ns, count}] log2 buckets over the stored gaps
    migrated: bool

    def to_dict(self) -> dict:
        return asdict(self)


def validate_cpus(cpus: list[int]) -> None:
    """Refuse CPUs this process may not run on (offline, outside its cpuset or affinity)."""
    if not cpus:
        raise TuneInputError("--cpus: no CPU given")
    allowed = os.sched_getaffinity(0)
    bad = [c for c in cpus if c not in allowed]
    if bad:
        raise TuneInputError(f"--cpus: CPU {bad[0]} is not available to this process "
                             f"(allowed: {','.join(map(str, sorted(allowed)))})")


def summarise(cpu: int, res, stored: np.ndarray, threshold_ns: int) -> CoreJitter:
    """Percentiles and log2 histogram of one CPU's stored gaps, with the C loop's counters."""
    gaps = stored[: int(res.stored)]
    if gaps.size:
        # nearest rank, in integers: the smallest gap with at least p of the stored gaps at or below it
        srt = np.sort(gaps)
        n = int(srt.size)
        p99, p999 = (int(srt[-(-num * n // den) - 1]) for num, den in ((99, 100), (999, 1000)))
        exps = np.floor(np.log2(gaps.astype(np.float64))).astype(np.int64)
        lo_exp = int(exps.min())
        counts = np.bincount(exps - lo_exp)
        hist = [{"lo_ns": 1 << (lo_exp + i), "hi_ns": 1 << (lo_exp + i + 1), "count": int(n)}
                for i, n in enumerate(counts) if n]
    else:
        p99 = p999 = None
        hist = []
    elapsed = max(int(res.elapsed_ns), 1)
    return CoreJitter(cpu, elapsed / 1e9, threshold_ns, int(res.loops), int(res.min_period_ns),
                      int(res.gaps), int(res.overflow), int(res.lost_ns),
                      round(100.0 * int(res.lost_ns) / elapsed, 3), p99, p999, int(res.max_gap_ns), hist,
                      bool(res.migrated))


def measure(cpus: list[int], seconds: float, *, threshold_ns: int = 1000,
            max_gaps: int = 1 << 20) -> list[CoreJitter]:
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
    if max_gaps < 0:
        raise TuneInputError(f"--max-gaps must be >= 0, not {max_gaps}")
    bufs = {c: np.zeros(max_gaps, dtype=np.uint64) for c in cpus}
    results = {c: ffi.new("struct rsx_jitter_result *") for c in cpus}
    rcs: dict[int, int] = {}
    run = lib.rsx_jitter_run

    def worker(c: int) -> None:
        ptr = ffi.cast("uint64_t *", ffi.from_buffer(bufs[c])) if max_gaps else ffi.NULL
        rcs[c] = run(c, int(seconds * 1e9), threshold_ns, ptr, max_gaps, results[c])

    threads = [threading.Thread(target=worker, args=(c,), name=f"rsx-jitter-{c}") for c in cpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in cpus:
        check(rcs[c], f"rsx_jitter_run(cpu {c})")
    return [summarise(c, results[c], bufs[c], threshold_ns) for c in cpus]
