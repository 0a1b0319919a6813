"""`rsx book ...`: the order book from the command line.

`rsx book replay WORKLOAD.txt` replays a workload file in the text format of
bench/workload.py through the C book and prints exactly the digest line that
bench/refmatch.py prints for it: workload order k belongs to user 1 + k mod 64
and self-trade prevention is off, as in the baseline runs (specs/matching.md §9).
"""

from __future__ import annotations

import argparse

REPLAY_USERS = 64


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("book", help="order book tools (replay a workload)",
                       description="Order book tools.")
    inner = p.add_subparsers(dest="book_command", metavar="BOOK_COMMAND")
    r = inner.add_parser("replay", help="replay a workload file and print refmatch's digest line",
                         description="Replay a bench/workload.py text file through the C book and "
                                     "print the digest line refmatch.py prints for it.")
    r.add_argument("workload", help="workload text file (bench/workload.py format)")
    r.add_argument("--capacity", type=int, default=0,
                   help="resting-order capacity (default: the number of orders in the file)")
    r.set_defaults(func=run_replay)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def load_ops(path: str):
    """Read and parse a workload file; raises OSError or FieldError (line number)."""
    from ..book import Stp, parse_workload

    with open(path, "rb") as f:
        data = f.read()
    return parse_workload(data, users=REPLAY_USERS, stp=Stp.NONE)


def replay_book(ops, capacity: int = 0):
    """A fresh book sized for ``ops`` (tick 1, lot 1, centred on the first order's price)."""
    import numpy as np

    from ..book import Book, OpKind
    from ..numbers import SymbolConfig

    new = ops["kind"] == OpKind.NEW
    n_new = int(np.count_nonzero(new))
    ref = int(ops["price"][new][0]) if n_new and ops["price"][new][0] > 0 else 1
    config = SymbolConfig(symbol_id=1, price_decimals=0, qty_decimals=0, tick_size=1, lot_size=1)
    return Book(config, capacity=capacity or max(n_new, 1024), ref_price=ref,
                max_users=REPLAY_USERS + 1)


def digest(ops, book, fills) -> dict:
    """refmatch.py's digest fields for a finished replay."""
    import hashlib

    sha = hashlib.sha256()
    taker, maker = fills["taker"].tolist(), fills["maker"].tolist()
    price, qty = fills["price"].tolist(), fills["qty"].tolist()
    sha.update("".join(f"{t} {m} {p} {q}\n" for t, m, p, q in zip(taker, maker, price, qty)).encode())
    bid, ask = book.best_bid, book.best_ask
    return {
        "ops": len(ops), "fills": len(fills), "filled_qty": int(sum(qty)),
        "fill_sha256": sha.hexdigest(),
        "best_bid": "-" if bid is None else bid.price,
        "best_ask": "-" if ask is None else ask.price,
        "resting": book.stats().orders,
    }


def digest_line(d: dict) -> str:
    return (f"ops={d['ops']} fills={d['fills']} filled_qty={d['filled_qty']} "
            f"fill_sha256={d['fill_sha256']} best_bid={d['best_bid']} best_ask={d['best_ask']} "
            f"resting={d['resting']}")


def run_replay(args: argparse.Namespace) -> int:
    import sys

    from ..errors import FieldError

    try:
        ops = load_ops(args.workload)
    except OSError as exc:
        print(f"rsx book replay: error: {args.workload}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except FieldError as exc:
        print(f"rsx book replay: error: {args.workload}: {exc}", file=sys.stderr)
        return 2
    if args.capacity < 0:
        print("rsx book replay: error: --capacity must be >= 0", file=sys.stderr)
        return 2
    with replay_book(ops, args.capacity) as book:
        fills = book.replay(ops)
        print(digest_line(digest(ops, book, fills)))
    return 0
