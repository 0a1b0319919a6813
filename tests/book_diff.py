"""The C book and the Python model (book_model.py) side by side, request by request.

Requests are tuples:
    ("new", user, oid, side, price, qty, tif, flags, stp)
    ("amend", user, oid, price, qty)          price 0 = keep
    ("cancel", user, oid)
    ("cancel_all", user, request_id)
``Lockstep.step`` applies one to both and asserts that the C book's event rows equal the
model's events exactly; ``check_state`` compares everything the C book shows (every level
of both sides with its total and count, every resting order, positions) with the model and
runs the C audit (rsx_book_check).
"""

from __future__ import annotations

import numpy as np

from book_model import INT64_MAX, Model, row_key
from rsx_appliance.book import OP_DTYPE, Book, OpKind, order_id_bytes
from rsx_appliance.numbers import SymbolConfig

REF = 100_000


def to_ops(reqs) -> np.ndarray:
    ops = np.zeros(len(reqs), dtype=OP_DTYPE)
    for i, r in enumerate(reqs):
        op = ops[i]
        op["user_id"] = r[1]
        op["order_id"] = np.void(order_id_bytes(r[2]))
        if r[0] == "new":
            op["kind"] = OpKind.NEW
            op["side"], op["price"], op["qty"], op["tif"], op["flags"], op["stp"] = r[3:9]
        elif r[0] == "amend":
            op["kind"] = OpKind.AMEND
            op["price"], op["qty"] = r[3], r[4]
        elif r[0] == "cancel":
            op["kind"] = OpKind.CANCEL
        else:
            op["kind"] = OpKind.CANCEL_ALL
    return ops


def apply_model(m: Model, r) -> list:
    if r[0] == "new":
        _, user, oid, side, px, qty, tif, flags, stp = r
        return m.new(user, oid, side, px, qty, tif, flags, stp)
    if r[0] == "amend":
        return m.amend(r[1], r[2], r[3], r[4])
    if r[0] == "cancel":
        return m.cancel(r[1], r[2])
    return m.cancel_all(r[1], r[2])


def symbol(tick: int = 1, lot: int = 1, max_qty: int = 0) -> SymbolConfig:
    return SymbolConfig(symbol_id=1, price_decimals=0, qty_decimals=0, tick_size=tick, lot_size=lot,
                        min_qty=lot, max_qty=max_qty)


def make_book(cap: int, lcap: int = 0, users: int = 64, *, zone0: int = 1000, ref: int = REF,
              tick: int = 1, lot: int = 1, max_qty: int = 0) -> Book:
    return Book(symbol(tick, lot, max_qty), capacity=cap, level_capacity=lcap, max_users=users,
                ref_price=ref, zone0_ticks=zone0, hugepages="never")


def model_for(cap: int, lcap: int = 0, users: int = 64, *, tick: int = 1, lot: int = 1,
              max_qty: int = 0) -> Model:
    return Model(tick=tick, lot=lot, min_qty=lot, max_qty=max_qty or INT64_MAX - INT64_MAX % lot,
                 capacity=cap, level_capacity=lcap or cap, max_users=users)


def check_state(book: Book, m: Model, users) -> None:
    """The C book shows exactly the model's state, and its own audit passes."""
    book.check()
    for side in (0, 1):
        want = [(p, min(sum(o.rem for o in m.levels[side][p]), INT64_MAX), len(m.levels[side][p]))
                for p in m.prices_best_first(side)]
        got = [(lv.price, lv.qty, lv.count) for lv in book.depth(side, len(want) + 1)]
        assert got == want, f"side {side} depth differs"
    for (user, oid), o in m.orders.items():
        info = book.order(user, oid)
        assert info is not None, f"order ({user}, {oid}) missing"
        assert (info.price, info.remaining, info.filled, info.side, info.flags) == \
            (o.price, o.rem, o.filled, o.side, o.flags), f"order ({user}, {oid}) differs"
    assert book.stats().orders == len(m.orders)
    for user in users:
        assert book.position(user) == m.net.get(user, 0), f"position of user {user}"
        assert book.open_orders(user) == len(m.user_orders.get(user, []))


class Lockstep:
    """One C book and its model; ``step`` applies a request to both and compares."""

    def __init__(self, book: Book, model: Model) -> None:
        self.book, self.model = book, model
        self.steps = 0

    def step(self, r) -> list:
        want = apply_model(self.model, r)
        got = [row_key(x) for x in self.book.run(to_ops([r]))]
        self.steps += 1
        assert got == want, f"request {self.steps} {r}:\n C   {got}\n py  {want}"
        return got
