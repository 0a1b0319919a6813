"""`rsx bench hist`: cost of recording latencies through rsx_appliance.latency.

Reports ns per value of the bulk (numpy -> C) recording path, against numpy's
own sort-based percentile on the same data as the in-run baseline, and the
cost of one latency.now_ns() call from Python. The pure C figures come from
`make -C native bench` (native/build/bench/bench_hist).
"""

from __future__ import annotations

import argparse

from .._common import CliError, Progress, add_json, print_json, print_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hist", help="latency histogram recording cost", description=__doc__)
    p.add_argument("--n", type=int, default=1_000_000, help="values per round (default 1000000)")
    p.add_argument("--rounds", type=int, default=5, help="rounds, 1..101; the median is reported (default 5)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import statistics
    import time

    import numpy as np

    from ...latency import Histogram, clock_info, now_ns

    if args.n < 1 or not 1 <= args.rounds <= 101:
        raise CliError("--n must be >= 1 and --rounds 1..101")
    rng = np.random.default_rng(1)
    values = np.minimum(1000 * (1 + rng.pareto(1.2, args.n)), 1e9).astype(np.int64)
    h = Histogram()
    rec, ref, clk = [], [], []
    with Progress("rsx bench hist: rounds", total=args.rounds) as bar:
        for i in range(args.rounds):
            t0 = time.perf_counter_ns()
            h.record(values)
            t1 = time.perf_counter_ns()
            np.percentile(values, [50, 99, 99.9])
            t2 = time.perf_counter_ns()
            for _ in range(10_000):
                now_ns()
            t3 = time.perf_counter_ns()
            rec.append((t1 - t0) / args.n)
            ref.append((t2 - t1) / args.n)
            clk.append((t3 - t2) / 10_000)
            bar.update(i + 1)
    med = statistics.median
    out = {
        "benchmark": "hist", "values": args.n, "rounds": args.rounds,
        "record_array_ns_per_value": round(med(rec), 3),
        "numpy_percentile_ns_per_value": round(med(ref), 3),
        "record_vs_numpy_percentile_ratio": round(med(rec) / med(ref), 3) if med(ref) else None,
        "python_clock_call_ns": round(med(clk), 1),
        "clock": clock_info().source,
        "p99_9_ns": h.percentile(99.9),
        "note": "shared machine: wall figures indicative; C per-value cost: make -C native bench",
    }
    if args.json:
        print_json(out)
    else:
        print_text(out)
    return 0
