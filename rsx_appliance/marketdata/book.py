"""The shadow L2 book of one symbol, built from the ME's outcome records (specs/marketdata.md 2).

Resting orders by id and, per side, the levels at exact prices with their
total quantity and order count. It is an aggregation of the ME's events, not a
second matcher: every change comes from an ORDER_INSERTED, FILL,
ORDER_CANCELLED or ORDER_AMENDED record. A record that contradicts the book
raises :class:`BookInconsistent` (the feed must not go on serving a book it
knows is wrong).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Iterator

from ..codes import Side
from ..errors import RsxError
from ..records import RecordType, codec
from ..wal.block import Block

__all__ = ["ShadowBook", "BookInconsistent", "BOOK_TYPES"]

BOOK_TYPES = frozenset({RecordType.ORDER_INSERTED, RecordType.FILL, RecordType.ORDER_CANCELLED,
                        RecordType.ORDER_AMENDED, RecordType.ORDER_DONE, RecordType.CONFIG_APPLIED})
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_INSERTED, _FILL = int(RecordType.ORDER_INSERTED), int(RecordType.FILL)
_CANCELLED, _AMENDED = int(RecordType.ORDER_CANCELLED), int(RecordType.ORDER_AMENDED)
_CONFIG, _DONE = int(RecordType.CONFIG_APPLIED), int(RecordType.ORDER_DONE)
_UNPACK = {int(t): codec(t).unpack for t in BOOK_TYPES}


class BookInconsistent(RsxError):
    """A record does not fit the shadow book (unknown order, overfill, duplicate insert...)."""

    def __init__(self, seq: int, message: str) -> None:
        super().__init__(f"seq {seq}: {message}")
        self.seq = seq


class _Side:
    """Levels of one side: price -> [qty, count], plus the prices in ascending order."""

    __slots__ = ("levels", "prices")

    def __init__(self) -> None:
        self.levels: dict[int, list[int]] = {}
        self.prices: list[int] = []

    def add(self, price: int, qty: int) -> None:
        lv = self.levels.get(price)
        if lv is None:
            self.levels[price] = [qty, 1]
            insort(self.prices, price)
        else:
            lv[0] += qty
            lv[1] += 1

    def reduce(self, price: int, qty: int, leaves: bool) -> None:
        lv = self.levels[price]
        lv[0] -= qty
        if leaves:
            lv[1] -= 1
            if lv[1] == 0:
                del self.levels[price]
                del self.prices[bisect_left(self.prices, price)]


class ShadowBook:
    """L2 of one symbol; :meth:`apply` one record at a time, in seq order."""

    def __init__(self, symbol_id: int) -> None:
        self.symbol_id = symbol_id
        self.sides = (_Side(), _Side())       # index = Side (0 bids, 1 asks)
        self.orders: dict[bytes, list[int]] = {}   # order id -> [side, price, remaining]
        # resting orders re-entered by a price amend that traded: out of the book until
        # their outcome (ORDER_AMENDED puts them back, ORDER_DONE ends them)
        self.pulled: dict[bytes, int] = {}
        self.tip = 0                           # last seq applied
        self.config = None                     # the last CONFIG_APPLIED (namedtuple)

    # -- applying records ---------------------------------------------------

    def apply_block(self, block: Block) -> Iterator[tuple[int, int, int, object, tuple]]:
        """Apply every record of a block; yield (seq, type, ts_ns, record, touched) per record.

        ``record`` is the unpacked record for the types the book uses (else None);
        ``touched`` is the set of (side, price) levels the record changed.
        """
        raw = block.raw
        for off, seq, rtype in zip(block.index["offset"].tolist(), block.index["seq"].tolist(),
                                   block.index["type"].tolist()):
            unpack = _UNPACK.get(rtype)
            if unpack is None:
                self._advance(seq)
                yield seq, rtype, 0, None, ()
                continue
            rec = unpack(raw, off)
            yield seq, rtype, rec.ts_ns, rec, self.apply(rtype, rec)

    def _advance(self, seq: int) -> None:
        if seq != self.tip + 1:
            raise BookInconsistent(seq, f"expected seq {self.tip + 1}")
        self.tip = seq

    def apply(self, rtype: int, rec) -> tuple:
        """Apply one unpacked record (see :data:`BOOK_TYPES`); return the levels it touched.

        A record that does not fit raises before anything changes (the tip included).
        """
        if rec.seq != self.tip + 1:
            raise BookInconsistent(rec.seq, f"expected seq {self.tip + 1}")
        touched = ()
        if rtype == _FILL:
            touched = self._fill(rec)
        elif rtype == _INSERTED:
            touched = self._insert(rec)
        elif rtype == _CANCELLED:
            touched = self._cancel(rec)
        elif rtype == _AMENDED:
            touched = self._amend(rec)
        elif rtype == _DONE:
            touched = self._done(rec)
        elif rtype == _CONFIG:
            self.config = rec
        self.tip = rec.seq
        return touched

    def _insert(self, r) -> tuple:
        if r.side not in (_BUY, _SELL) or r.price <= 0 or r.qty <= 0:
            raise BookInconsistent(r.seq, f"ORDER_INSERTED with side {r.side}, price {r.price}, qty {r.qty}")
        if r.order_id in self.orders:
            raise BookInconsistent(r.seq, f"order {r.order_id.hex()} inserted twice")
        self.orders[r.order_id] = [r.side, r.price, r.qty]
        self.sides[r.side].add(r.price, r.qty)
        return ((r.side, r.price),)

    def _fill(self, r) -> tuple:
        o = self.orders.get(r.maker_order_id)
        if o is None:
            raise BookInconsistent(r.seq, f"fill of unknown maker {r.maker_order_id.hex()}")
        side, price, remaining = o
        if price != r.price or side == r.taker_side or r.qty <= 0 or r.qty > remaining \
                or r.maker_remaining != remaining - r.qty or r.taker_order_id == r.maker_order_id:
            raise BookInconsistent(r.seq, f"fill {r.qty}@{r.price} (maker left {r.maker_remaining}) does "
                                          f"not fit maker {r.maker_order_id.hex()} ({remaining}@{price})")
        touched = ()
        taker = self.orders.get(r.taker_order_id)
        if taker is not None:
            # the taker is a resting order amended to a new price: it left its level when
            # its request started (specs/matching.md 2), which the stream shows first here
            tside, tprice, tremaining = taker
            self.sides[tside].reduce(tprice, tremaining, True)
            del self.orders[r.taker_order_id]
            self.pulled[r.taker_order_id] = tside
            touched = ((tside, tprice),)
        leaves = r.maker_remaining == 0
        self.sides[side].reduce(price, r.qty, leaves)
        if leaves:
            del self.orders[r.maker_order_id]
        else:
            o[2] = r.maker_remaining
        return touched + ((side, price),)

    def _cancel(self, r) -> tuple:
        o = self.orders.pop(r.order_id, None)
        if o is None:
            raise BookInconsistent(r.seq, f"cancel of unknown order {r.order_id.hex()}")
        side, price, remaining = o
        if price != r.price or remaining != r.remaining_qty:
            self.orders[r.order_id] = o
            raise BookInconsistent(r.seq, f"cancel of {r.remaining_qty}@{r.price} does not fit order "
                                          f"{r.order_id.hex()} ({remaining}@{price})")
        self.sides[side].reduce(price, remaining, True)
        return ((side, price),)

    def _amend(self, r) -> tuple:
        o = self.orders.get(r.order_id)
        if r.price <= 0 or r.remaining_qty <= 0:
            raise BookInconsistent(r.seq, f"ORDER_AMENDED to {r.remaining_qty}@{r.price}")
        if o is None:
            side = self.pulled.pop(r.order_id, None)
            if side is None or side != r.side:
                raise BookInconsistent(r.seq, f"amend of unknown order {r.order_id.hex()}")
            self.orders[r.order_id] = [side, r.price, r.remaining_qty]
            self.sides[side].add(r.price, r.remaining_qty)
            return ((side, r.price),)
        side, price, remaining = o
        s = self.sides[side]
        s.reduce(price, remaining, True)
        s.add(r.price, r.remaining_qty)
        o[1], o[2] = r.price, r.remaining_qty
        return ((side, price), (side, r.price)) if price != r.price else ((side, price),)

    def _done(self, r) -> tuple:
        if self.pulled.pop(r.order_id, None) is not None:
            return ()
        o = self.orders.pop(r.order_id, None)
        if o is None:       # a taker's outcome, or a maker already removed by its last fill
            return ()
        # a resting order amended to a new price and stopped (STP) before any fill
        side, price, remaining = o
        self.sides[side].reduce(price, remaining, True)
        return ((side, price),)

    # -- reading ------------------------------------------------------------

    def top(self, side: int, n: int) -> list[tuple[int, int, int]]:
        """Up to n levels of a side, best first: (price, qty, count)."""
        s = self.sides[side]
        prices = s.prices[:-n - 1:-1] if side == _BUY else s.prices[:n]
        lv = s.levels
        return [(p, lv[p][0], lv[p][1]) for p in prices]

    def best(self, side: int) -> tuple[int, int, int]:
        """(price, qty, count) of the best level, or zeros for an empty side."""
        s = self.sides[side]
        if not s.prices:
            return (0, 0, 0)
        p = s.prices[-1] if side == _BUY else s.prices[0]
        q, c = s.levels[p]
        return (p, q, c)

    def depth(self, side: int) -> int:
        return len(self.sides[side].prices)
