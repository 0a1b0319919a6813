"""`rsx bench book WORKLOAD`: wall time of the C book's replay loop.

Prints refmatch's digest fields plus ns per operation (median, min, max over
``--repeat`` replays, each on a fresh book, timed around the C replay loop only,
the workload parsed beforehand), the Python batch entry's throughput, the
hugepage backing and the slab capacity. On a shared machine the times are
indicative; instruction counts come from bench/book_callgrind.py.

Exit codes: 0 done, 1 the replays disagree, 2 bad usage or a malformed workload.
"""

from __future__ import annotations

import argparse

from .._common import CliError, Progress, add_json, existing, print_json, print_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("book", help="order book replay speed on a workload file",
                       description=__doc__)
    p.add_argument("workload", metavar="WORKLOAD", help="workload text file (bench/workload.py format)")
    p.add_argument("--repeat", type=int, default=5, help="timed replays, 1..1000 (default 5)")
    add_json(p)
    p.add_argument("--capacity", type=int, default=0,
                   help="resting-order capacity (default 0: the number of orders in the file)")
    p.add_argument("--no-batch", action="store_true", help="skip the Python batch-entry timing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import statistics
    import time

    from ...workload import digest, load_workload, replay_book

    if not 1 <= args.repeat <= 1000 or args.capacity < 0:
        raise CliError("--repeat must be 1..1000 and --capacity >= 0")
    try:
        ops = load_workload(existing(args.workload, "file"))
    except ValueError as exc:
        raise CliError(f"{args.workload}: {exc}") from None
    n = max(len(ops), 1)
    per_op, digests = [], set()
    d = mem = None
    steps = args.repeat * (1 if args.no_batch else 2)
    with Progress("rsx bench book: replays", total=steps) as bar:
        for i in range(args.repeat):
            with replay_book(ops, args.capacity) as book:
                t0 = time.perf_counter_ns()
                fills = book.replay(ops)
                t1 = time.perf_counter_ns()
                per_op.append((t1 - t0) / n)
                d = digest(ops, book, fills)
                digests.add(d["fill_sha256"])
                mem = book.memory()
            bar.update(i + 1)
        batch = None
        if not args.no_batch:  # the Python batch entry (numpy in, numpy rows out), same repeats
            rates = []
            for i in range(args.repeat):
                with replay_book(ops, args.capacity) as book:
                    t0 = time.perf_counter_ns()
                    rows = book.run(ops)
                    t1 = time.perf_counter_ns()
                    rates.append(n / max((t1 - t0) / 1e9, 1e-9))
                bar.update(args.repeat + i + 1)
            batch = {"ops_per_s": {"median": round(statistics.median(rates)), "max": round(max(rates))},
                     "events": len(rows)}
    out = {"benchmark": "book", **d, "workload": args.workload, "runs": args.repeat,
           "ns_per_op": {"median": round(statistics.median(per_op), 1), "min": round(min(per_op), 1),
                         "max": round(max(per_op), 1)},
           "batch": batch,
           "hugepages": {"backing": mem.backing.name.lower(), "warning": mem.warning},
           "capacity": mem.capacity, "bytes_per_order": mem.bytes_per_order,
           "replays_agree": len(digests) == 1,
           "note": "wall times on a shared machine are indicative; instr/op: bench/book_callgrind.py"}
    if args.json:
        print_json(out)
    else:
        print_text(out)
    return 0 if len(digests) == 1 else 1
