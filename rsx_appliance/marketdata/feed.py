"""Per-symbol publication: BBO, depth deltas with chained seqs, trades (specs/marketdata.md 3.2, 4).

A :class:`SymbolFeed` owns the symbol's :class:`ShadowBook`. Records are
applied as they arrive; :meth:`SymbolFeed.flush` then turns everything that
changed since the previous flush into at most one BBO, one D and one T
message, each encoded and framed once.
"""

from __future__ import annotations

from ..codes import Side
from ..records import RecordType
from ..wal.block import Block
from .book import ShadowBook
from .protocol import BBO, DEPTH, TRADES, message

__all__ = ["SymbolFeed"]

_FILL = int(RecordType.FILL)
_SIDES = (int(Side.BUY), int(Side.SELL))


class SymbolFeed:
    """The book and the published state of one symbol."""

    def __init__(self, symbol_id: int, name: str, depth: int) -> None:
        self.symbol_id, self.name, self.depth = symbol_id, name, depth
        self.book = ShadowBook(symbol_id)
        self.live = False             # subscribers may exist: keep the published state
        self.published: tuple[dict, dict] = ({}, {})  # per side: price -> (qty, count) subscribers hold
        self.depth_u = 0              # u of the last D (or of the state when going live)
        self.trade_u = 0              # u of the last T
        self.bbo: tuple | None = None  # last BBO sent (without ts/u)
        self.bbo_u = 0
        self.last_ts = 0
        self._touched: set[int] = set()   # sides touched since the last flush
        self._trades: list[list[int]] = []
        self._snapshot: tuple[int, bytes] | None = None
        self.records = 0

    # -- input ------------------------------------------------------------------

    def apply(self, block: Block) -> None:
        touched, trades = self._touched, self._trades
        for seq, rtype, ts, rec, levels in self.book.apply_block(block):
            for side, _price in levels:
                touched.add(side)
            if ts:
                self.last_ts = ts
            if rtype == _FILL and self.live:
                trades.append([rec.price, rec.qty, rec.taker_side, ts, seq])
        self.records += len(block)

    def go_live(self) -> None:
        """Start publishing from the book as it is now (the end of the bootstrap)."""
        self.published = tuple({p: (q, c) for p, q, c in self.book.top(s, self.depth)} for s in _SIDES)
        self.depth_u = self.book.tip
        self.bbo = self._bbo_now()
        self.bbo_u = self.book.tip
        self._touched.clear()
        self._trades.clear()
        self.live = True

    # -- output -------------------------------------------------------------------

    def _bbo_now(self) -> tuple:
        b, a = self.book.best(Side.BUY), self.book.best(Side.SELL)
        return (b[0], b[1], b[2], a[0], a[1], a[2])

    def flush(self) -> dict[int, bytes]:
        """Frames of everything that changed since the last flush, by channel."""
        out: dict[int, bytes] = {}
        if not self.live:
            return out
        u = self.book.tip
        if self._touched:
            changes = []
            for side in sorted(self._touched):
                old = self.published[side]
                new = {p: (q, c) for p, q, c in self.book.top(side, self.depth)}
                rows = [[side, p, q, c] for p, (q, c) in new.items() if old.get(p) != (q, c)]
                rows += [[side, p, 0, 0] for p in old if p not in new]
                if rows:
                    rows.sort(key=lambda r: -r[1] if side == 0 else r[1])
                    changes += rows
                    self.published = (new, self.published[1]) if side == 0 else (self.published[0], new)
            self._touched.clear()
            if changes:
                out[DEPTH] = message("D", [self.symbol_id, changes, self.last_ts, u, self.depth_u])
                self.depth_u = u
            bbo = self._bbo_now()
            if bbo != self.bbo:
                self.bbo, self.bbo_u = bbo, u
                out[BBO] = message("BBO", [self.symbol_id, *bbo, self.last_ts, u])
        if self._trades:
            last = self._trades[-1][4]
            out[TRADES] = message("T", [self.symbol_id, self._trades, last, self.trade_u])
            self.trade_u = last
            self._trades = []
        return out

    def snapshot_frame(self) -> bytes:
        """The B message for a new depth subscriber (call after a flush: published == book)."""
        if self._snapshot is None or self._snapshot[0] != self.depth_u:
            bids = [[p, q, c] for p, q, c in self.book.top(0, self.depth)]
            asks = [[p, q, c] for p, q, c in self.book.top(1, self.depth)]
            self._snapshot = (self.depth_u, message("B", [self.symbol_id, bids, asks, self.last_ts,
                                                          self.depth_u]))
        return self._snapshot[1]

    def bbo_frame(self) -> bytes:
        return message("BBO", [self.symbol_id, *(self.bbo or self._bbo_now()), self.last_ts, self.bbo_u])
