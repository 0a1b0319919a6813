"""A demo market maker: post-only ladders on both sides around the mark (specs/operations.md 8).

An ordinary client of the gateway (:class:`rsx_appliance.client.Client`), so it
trades exactly as anyone does. The mark price comes from the mark stream over
DXS (the price risk values positions at); until the first mark arrives a
symbol is quoted around its ``reference_price``. All prices and sizes are exact
integers in the symbol's units; the client converts them to decimal strings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from .config import Config
from .records import RecordType

__all__ = ["Maker", "MakerParams", "ladder", "follow_marks"]

log = logging.getLogger("rsx.maker")


@dataclass(frozen=True)
class MakerParams:
    levels: int = 5
    spread_bps: int = 10          # between the best bid and the best ask
    step_bps: int = 5             # between two levels of one side
    size_notional: int = 1000     # collateral (whole units, USD) per order
    requote_bps: int = 5          # requote when the mark moved this much from the ladder's


def ladder(mark: int, numbers, p: MakerParams, collateral_decimals: int) -> list[tuple[str, int, int]]:
    """[(side, price, qty)] in raw units: level k at mark -/+ (spread/2 + (k-1) x step) bps, rounded away from
    the mark to the tick; each order ``size_notional / price``, floored to the lot, at least one lot."""
    tick, lot = numbers.tick_size, numbers.lot_size
    scale = 10 ** (numbers.price_decimals + numbers.qty_decimals)   # raw price x raw qty per unit of value
    out = []
    for k in range(p.levels):
        off2 = p.spread_bps + 2 * k * p.step_bps                    # twice the offset in bps: exact halves
        bid = mark * (20_000 - off2) // 20_000 // tick * tick
        ask = -(-(mark * (20_000 + off2)) // 20_000) // tick * tick
        if ask <= mark:
            ask += tick
        for side, px in (("buy", bid), ("sell", ask)):
            if px <= 0:
                continue
            qty = p.size_notional * scale // px // lot * lot
            qty = max(lot, min(qty, numbers.max_qty // lot * lot))
            out.append((side, px, qty))
    return out


async def follow_marks(cfg: Config, marks: dict[int, int], *, lookback: int = 64) -> None:
    """Keep ``marks[symbol_id]`` = the latest mark (MARK_PRICE source 0) of ``mark.0``'s stream, forever.

    Starts near the tip: a request past it is refused with the tip (REPLAY_REJECT AHEAD), then
    ``lookback`` records before it are replayed, so the current mark is known at once."""
    from .dxs import DxsConsumer
    from .mark.bbo import dxs_tip

    mark = cfg.role("mark")[0]
    start = max(1, await dxs_tip(mark.dxs, mark.stream_id) - lookback)
    consumer = DxsConsumer(mark.dxs, mark.stream_id, from_seq=start, name="", backoff=(0.1, 2.0))
    async with consumer:
        async for batch in consumer:
            v = batch.view(RecordType.MARK_PRICE)["payload"]
            for sym, px, src in zip(v["symbol_id"].tolist(), v["price"].tolist(), v["source_id"].tolist()):
                if src == 0 and px > 0:
                    marks[sym] = px


@dataclass
class _Book:
    """One symbol's ladder as placed."""

    name: str
    mark: int = 0
    placed_at_mark: int = 0
    dirty: bool = True
    placed: int = 0
    fills: int = 0
    position: int = 0          # raw qty, signed, from this run's fills
    levels: list = field(default_factory=list)


class Maker:
    """Quote every symbol of ``symbols`` until ``stop`` is set (specs/operations.md 8)."""

    def __init__(self, cfg: Config, url: str, token, *, symbols: list[str] | None = None,
                 params: MakerParams = MakerParams(), report_s: float = 0.0) -> None:
        self.cfg, self.url, self.token, self.p = cfg, url, token, params
        names = symbols or [s.name for s in cfg.symbols]
        self.books = {cfg.symbol(n).id: _Book(cfg.symbol(n).name) for n in names}
        self.marks: dict[int, int] = {}
        self.report_s = report_s
        self.errors = 0

    def _mark(self, sym: int) -> int:
        spec = self.cfg.symbol(sym)
        return self.marks.get(sym) or spec.reference_price or 0

    async def _events(self, c) -> None:
        async for kind, ev in c.events():
            if kind == "F":
                b = next((b for i, b in self.books.items() if b.name == ev.symbol), None)
                if b is not None:
                    b.fills += 1
                    b.dirty = True
                    n = c.symbol(ev.symbol).numbers
                    q = n.qty(ev.qty)
                    b.position += q if ev.side == "buy" else -q

    async def _requote(self, c, sym: int, b: _Book) -> None:
        from .client import GatewayError

        mark = self._mark(sym)
        if mark <= 0:
            return
        numbers = c.by_id[sym].numbers
        await c.cancel_all(b.name)
        b.levels = ladder(mark, numbers, self.p, self.cfg.risk.collateral_decimals)
        b.mark = b.placed_at_mark = mark
        b.dirty = False
        for side, px, qty in b.levels:
            try:
                await c.new_order(b.name, side, numbers.format_qty(qty), numbers.format_price(px), post_only=True)
                b.placed += 1
            except GatewayError as exc:      # rate limited, overloaded: next requote
                self.errors += 1
                log.warning("maker: %s %s %s @ %s refused: %s", b.name, side, qty, px, exc)
                b.dirty = True
                break

    def summary(self, c=None) -> dict:
        out = {}
        for sym, b in self.books.items():
            n = self.cfg.symbol(sym).numbers
            bids = [px for side, px, _ in b.levels if side == "buy"]
            asks = [px for side, px, _ in b.levels if side == "sell"]
            out[b.name] = {"mark": n.format_price(b.mark) if b.mark else None,
                           "best_bid": n.format_price(max(bids)) if bids else None,
                           "best_ask": n.format_price(min(asks)) if asks else None,
                           "orders": b.placed, "fills": b.fills, "position": n.format_qty(b.position)}
        return out

    async def run(self, stop: asyncio.Event) -> dict:
        from .client import Client

        follower = asyncio.create_task(follow_marks(self.cfg, self.marks))
        follower.add_done_callback(lambda t: t.cancelled() or t.exception() is None or log.error(
            "maker: the mark stream failed: %s (quoting around the last mark)", t.exception()))
        try:
            async with Client.connect(self.url, self.token) as c:
                watcher = asyncio.create_task(self._events(c))
                last_report = time.monotonic()
                try:
                    while not stop.is_set():
                        for sym, b in self.books.items():
                            mark = self._mark(sym)
                            moved = b.placed_at_mark and abs(mark - b.placed_at_mark) * 10_000 >= \
                                self.p.requote_bps * b.placed_at_mark
                            if b.dirty or moved:
                                await self._requote(c, sym, b)
                        if self.report_s and time.monotonic() - last_report >= self.report_s:
                            last_report = time.monotonic()
                            log.info("maker: %s", self.summary())
                        try:
                            await asyncio.wait_for(stop.wait(), 0.25)
                        except asyncio.TimeoutError:
                            pass
                finally:
                    watcher.cancel()
                    for b in self.books.values():
                        try:
                            await c.cancel_all(b.name)
                        except Exception as exc:       # leaving: say so, do not hide why we stopped
                            log.warning("maker: cancel-all %s on the way out: %s", b.name, exc)
        finally:
            follower.cancel()
        return self.summary()
