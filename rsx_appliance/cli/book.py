"""`rsx book ...`: the order book from the command line.

`rsx book replay WORKLOAD.txt` replays a workload file in the text format of
bench/workload.py through the C book and prints exactly the digest line that
bench/refmatch.py prints for it: workload order k belongs to user 1 + k mod 64
and self-trade prevention is off, as in the baseline runs (specs/matching.md §9).
"""

from __future__ import annotations

import argparse

from ._common import CliError, Progress, add_json, command_group, existing, print_json


def register(sub: argparse._SubParsersAction) -> None:
    _, inner = command_group(sub, "book", help="order book tools (replay a workload)",
                             description="Order book tools (specs/matching.md section 9).")
    r = inner.add_parser("replay", help="replay a workload file and print refmatch's digest line",
                         description="Replay a bench/workload.py text file through the C book and print the "
                                     "digest line bench/refmatch.py prints for it (ops, fills, filled "
                                     "quantity, SHA-256 of the fills, best bid and ask, resting orders).\n\n"
                                     "Exit codes: 0 replayed, 2 a missing or malformed workload file.")
    r.add_argument("workload", metavar="WORKLOAD", help="workload text file (bench/workload.py format)")
    r.add_argument("--capacity", type=int, default=0,
                   help="resting-order capacity of the book (default 0: the number of orders in the file)")
    add_json(r, "print the digest as one JSON object (best_bid / best_ask null for an empty side)")
    r.set_defaults(func=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    from ..workload import digest, digest_line, load_workload, replay_book

    if args.capacity < 0:
        raise CliError("--capacity must be >= 0")
    with Progress("rsx book replay: reading", total=2, unit="steps") as bar:
        try:
            ops = load_workload(existing(args.workload, "file"))
        except ValueError as exc:
            raise CliError(f"{args.workload}: {exc}") from None
        bar.update(1, label=f"rsx book replay: {len(ops):,} operations")
        with replay_book(ops, args.capacity) as book:
            fills = book.replay(ops)
            d = digest(ops, book, fills)
    if args.json:
        print_json(d)
    else:
        print(digest_line(d))
    return 0
