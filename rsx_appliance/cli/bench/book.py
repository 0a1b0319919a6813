"""`rsx bench book WORKLOAD.txt`: wall time of the C book's replay loop.

Prints refmatch's digest fields plus ns per operation (median, min, max over
``--repeat`` replays, each on a fresh book, timed around the C replay loop only,
the workload parsed beforehand), the Python batch entry's throughput, the
hugepage backing and the slab capacity. On a shared machine the times are
indicative; instruction counts come from bench/book_callgrind.py.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("book", help="order book replay speed on a workload file (JSON with --json)")
    p.add_argument("workload", help="workload text file (bench/workload.py format)")
    p.add_argument("--repeat", type=int, default=5, help="timed replays (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--capacity", type=int, default=0,
                   help="resting-order capacity (default: the number of orders in the file)")
    p.add_argument("--no-batch", action="store_true", help="skip the Python batch-entry timing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import statistics
    import sys
    import time

    from ...errors import FieldError
    from ..book import digest, load_ops, replay_book

    if not 1 <= args.repeat <= 1000 or args.capacity < 0:
        print("rsx bench book: error: --repeat must be 1..1000 and --capacity >= 0", file=sys.stderr)
        return 2
    try:
        ops = load_ops(args.workload)
    except (OSError, FieldError) as exc:
        print(f"rsx bench book: error: {args.workload}: {exc}", file=sys.stderr)
        return 2
    n = max(len(ops), 1)
    per_op, digests = [], set()
    d = mem = None
    for _ in range(args.repeat):
        with replay_book(ops, args.capacity) as book:
            t0 = time.perf_counter_ns()
            fills = book.replay(ops)
            t1 = time.perf_counter_ns()
            per_op.append((t1 - t0) / n)
            d = digest(ops, book, fills)
            digests.add(d["fill_sha256"])
            mem = book.memory()
    batch = None
    if not args.no_batch:  # the Python batch entry (numpy in, numpy rows out), same repeats
        rates = []
        for _ in range(args.repeat):
            with replay_book(ops, args.capacity) as book:
                t0 = time.perf_counter_ns()
                rows = book.run(ops)
                t1 = time.perf_counter_ns()
                rates.append(n / max((t1 - t0) / 1e9, 1e-9))
        batch = {"ops_per_s_median": round(statistics.median(rates)), "ops_per_s_max": round(max(rates)),
                 "events": len(rows)}
    out = dict(d)
    out.update({
        "workload": args.workload,
        "runs": args.repeat,
        "ns_per_op": {"median": round(statistics.median(per_op), 1), "min": round(min(per_op), 1),
                      "max": round(max(per_op), 1)},
        "batch": batch,
        "hugepages": {"backing": mem.backing.name.lower(), "warning": mem.warning},
        "capacity": mem.capacity,
        "bytes_per_order": mem.bytes_per_order,
        "note": "wall times on a shared machine are indicative; instr/op: bench/book_callgrind.py",
    })
    if len(digests) != 1:
        out["error"] = "the replays disagree"
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0 if len(digests) == 1 else 1
