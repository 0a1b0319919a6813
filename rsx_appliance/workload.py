"""Workload files (bench/workload.py's text format) through the C book, and refmatch's digest.

`rsx book replay` and `rsx bench book` use these, and so do the tests: order
``k`` of a workload belongs to user ``1 + k mod 64`` and self-trade prevention
is off, as in the baseline runs (specs/matching.md section 9); the digest is
the one bench/refmatch.py prints, field for field.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from .book import Book, OpKind, Stp, parse_workload
from .numbers import SymbolConfig

__all__ = ["REPLAY_USERS", "load_workload", "replay_book", "digest", "digest_line"]

REPLAY_USERS = 64


def load_workload(path: str | os.PathLike) -> np.ndarray:
    """Read and parse a workload file; raises OSError, or FieldError naming the first bad line."""
    with open(path, "rb") as f:
        data = f.read()
    return parse_workload(data, users=REPLAY_USERS, stp=Stp.NONE)


def replay_book(ops: np.ndarray, capacity: int = 0) -> Book:
    """A fresh book sized for ``ops`` (tick 1, lot 1, centred on the first order's price)."""
    new = ops["kind"] == OpKind.NEW
    n_new = int(np.count_nonzero(new))
    ref = int(ops["price"][new][0]) if n_new and ops["price"][new][0] > 0 else 1
    config = SymbolConfig(symbol_id=1, price_decimals=0, qty_decimals=0, tick_size=1, lot_size=1)
    return Book(config, capacity=capacity or max(n_new, 1024), ref_price=ref, max_users=REPLAY_USERS + 1)


def digest(ops: np.ndarray, book: Book, fills: np.ndarray) -> dict[str, Any]:
    """refmatch.py's digest fields of a finished replay (best_bid / best_ask None when that side is empty)."""
    sha = hashlib.sha256()
    taker, maker = fills["taker"].tolist(), fills["maker"].tolist()
    price, qty = fills["price"].tolist(), fills["qty"].tolist()
    sha.update("".join(f"{t} {m} {p} {q}\n" for t, m, p, q in zip(taker, maker, price, qty)).encode())
    bid, ask = book.best_bid, book.best_ask
    return {
        "ops": len(ops), "fills": len(fills), "filled_qty": int(sum(qty)), "fill_sha256": sha.hexdigest(),
        "best_bid": None if bid is None else bid.price, "best_ask": None if ask is None else ask.price,
        "resting": book.stats().orders,
    }


def digest_line(d: dict[str, Any]) -> str:
    """The digest as refmatch.py prints it, byte for byte ("-" for an empty side)."""
    bid = "-" if d["best_bid"] is None else d["best_bid"]
    ask = "-" if d["best_ask"] is None else d["best_ask"]
    return (f"ops={d['ops']} fills={d['fills']} filled_qty={d['filled_qty']} "
            f"fill_sha256={d['fill_sha256']} best_bid={bid} best_ask={ask} resting={d['resting']}")
