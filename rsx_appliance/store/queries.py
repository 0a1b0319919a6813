"""History queries over the store (specs/store.md 5 and 6): fills (FL), funding (FN), orders,
liquidations, realised PnL; ``open_store`` and the asyncio wrapper :class:`AsyncStore`.

Rows are raw integers, newest first; a :class:`Page` carries the cursor of the
next page. Arguments are checked before any SQL runs (:class:`StoreQueryError`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._native import ffi, lib
from ..codes import LiqKind
from .db import Database, open_database
from .errors import StoreQueryError
from .schema import check_schema

__all__ = ["Store", "AsyncStore", "open_store", "Cursor", "Page", "FillRow", "FundingRow", "OrderRow",
           "LiquidationRow", "PnlRow", "MAX_LIMIT"]

MAX_LIMIT = 100_000  # rsx history; the gateway caps FL/FN at 500 itself (specs/ws-api.md)
_U32 = (1 << 32) - 1


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: the sort key of the last row returned (exclusive)."""

    kind: str  # "fills", "funding", "orders", "liquidations"
    key: tuple[int, ...]

    def encode(self) -> str:
        return self.kind + ":" + ".".join(str(k) for k in self.key)

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            kind, rest = text.split(":", 1)
            key = tuple(int(k) for k in rest.split("."))
        except ValueError:
            raise StoreQueryError(f"{text!r} is not a store cursor") from None
        return cls(kind, key)


@dataclass(frozen=True)
class Page:
    rows: list
    next: Cursor | None  # None: no more rows


@dataclass(frozen=True)
class FillRow:
    """One leg of a fill, from the user's side."""

    symbol_id: int
    seq: int
    ts_ns: int
    order_id: uuid.UUID
    side: int  # the user's side
    price: int
    qty: int
    fee: int | None  # > 0 paid, < 0 rebate; None when the fill could not be valued
    is_maker: bool
    liquidation: bool  # the user's order was a liquidation order
    counterparty_user_id: int
    value: int | None


@dataclass(frozen=True)
class FundingRow:
    symbol_id: int
    interval_id: int
    ts_ns: int
    amount: int  # > 0 received, < 0 paid
    rate_e8: int | None
    position: int
    mark_px: int
    stream_id: int
    seq: int


@dataclass(frozen=True)
class OrderRow:
    symbol_id: int
    order_id: uuid.UUID
    user_id: int
    side: int | None
    tif: int | None
    flags: int | None
    stp: int | None
    price: int | None
    qty: int | None
    client_id: str | None
    status: int | None  # codes.Status
    reason: int | None  # codes.Reason
    filled_qty: int
    remaining_qty: int | None
    created_ns: int
    updated_ns: int


@dataclass(frozen=True)
class LiquidationRow:
    stream_id: int
    seq: int
    ts_ns: int
    symbol_id: int
    user_id: int
    kind: int  # codes.LiqKind
    side: int
    round: int
    slippage_bps: int
    order_id: uuid.UUID
    qty: int
    price: int
    mark_px: int
    equity: int
    maintenance_margin: int
    shortfall: int
    counterparty_user_id: int
    fill_tip: int | None


@dataclass(frozen=True)
class PnlRow:
    symbol_id: int
    realised_pnl: int
    fees: int
    funding: int
    net: int  # realised_pnl - fees + funding
    position: int  # signed net quantity now
    entry_cost: int  # signed entry value of the open position
    fills: int


def _user(user: Any) -> int:
    if isinstance(user, bool) or not isinstance(user, int) or not 1 <= user <= _U32:
        raise StoreQueryError(f"user must be an integer in 1..{_U32}, not {user!r}")
    return user


def _symbol(symbol: Any) -> int | None:
    if symbol is None or symbol == 0:
        return None
    if isinstance(symbol, bool) or not isinstance(symbol, int) or not 1 <= symbol <= 0xFFFF:
        raise StoreQueryError(f"symbol must be a symbol id in 1..65535 (0 or None = all), not {symbol!r}")
    return symbol


def _limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise StoreQueryError(f"limit must be an integer in 1..{MAX_LIMIT}, not {limit!r}")
    return limit


def _since(since: Any) -> int | None:
    if since is None:
        return None
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise StoreQueryError(f"since must be a time in ns >= 0, not {since!r}")
    return since


def _cursor(before: Any, kind: str, width: int) -> tuple[int, ...] | None:
    """The exclusive upper key: an int is RSX's ns cursor (rows older than it), else a Cursor."""
    if before is None or (isinstance(before, int) and not isinstance(before, bool) and before == 0):
        return None
    if isinstance(before, int) and not isinstance(before, bool):
        if before < 0:
            raise StoreQueryError(f"before must be a time in ns > 0 or a cursor, not {before}")
        return (before,) + (0,) * (width - 1)
    if isinstance(before, str):
        before = Cursor.decode(before)
    if not isinstance(before, Cursor) or before.kind != kind or len(before.key) != width:
        raise StoreQueryError(f"before must be a {kind} cursor or a time in ns, not {before!r}")
    return before.key


def _uuid(b: bytes | None) -> uuid.UUID | None:
    return None if b is None else uuid.UUID(bytes=bytes(b))


def _where(user_col: str, user: int, symbol: int | None, since: int | None, cols: tuple[str, ...],
           cur: tuple | None, inclusive: bool = False) -> tuple[str, list]:
    """The WHERE of a page: the user, the symbol, ``since`` on ``cols[0]`` (the time), and the keyset
    condition "strictly after ``cur`` in ``cols`` descending" (``inclusive``: equal on the last column too)."""
    where, args = [f"{user_col} = ?"], [user]
    if symbol is not None:
        where.append("symbol_id = ?")
        args.append(symbol)
    if since is not None:
        where.append(f"{cols[0]} >= ?")
        args.append(since)
    if cur is not None:
        cond, cargs = f"{cols[-1]} {'<=' if inclusive else '<'} ?", [cur[-1]]
        for col, key in zip(reversed(cols[:-1]), reversed(cur[:-1])):
            cond, cargs = f"({col} < ? OR ({col} = ? AND {cond}))", [key, key, *cargs]
        where.append(cond)
        args += cargs
    return " AND ".join(where), args


class Store:
    """Queries on one connection (thread-confined). ``open_store(url)`` makes one."""

    def __init__(self, db: Database, divisors: dict[int, int] | None = None, collateral_decimals: int = 6) -> None:
        self.db = db
        self.cd = collateral_decimals
        self._divisors = dict(divisors or {})

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- fills (FL) -------------------------------------------------------------------

    def fills(self, user: int, symbol: int | None = None, limit: int = 50, before: Any = None,
              since: int | None = None) -> Page:
        user, symbol, limit, since = _user(user), _symbol(symbol), _limit(limit), _since(since)
        cur = _cursor(before, "fills", 4)
        legs = []
        for is_maker, who, side_sql in ((0, "taker", "taker_side"), (1, "maker", "1 - taker_side")):
            other = "maker" if who == "taker" else "taker"
            # the cursor's (ts, symbol, seq) and its leg: this leg's row of the same fill comes after it
            # when it sorts below the cursor's leg (taker 0 < maker 1)
            where, args = _where(f"{who}_user_id", user, symbol, since, ("ts_ns", "symbol_id", "seq"),
                                 cur[:3] if cur else None, inclusive=cur is not None and is_maker < cur[3])
            sql = (f"SELECT symbol_id, seq, ts_ns, {who}_order_id, {side_sql}, price, qty, {who}_fee, "
                   f"{who}_flags, {other}_user_id, value FROM fills WHERE {where} "
                   f"ORDER BY ts_ns DESC, symbol_id DESC, seq DESC LIMIT ?")
            for r in self.db.query(sql, args + [limit + 1]):
                legs.append(((r[2], r[0], r[1], is_maker), r))
        legs.sort(key=lambda kr: kr[0], reverse=True)
        more = len(legs) > limit
        legs = legs[:limit]
        rows = [FillRow(r[0], r[1], r[2], _uuid(r[3]), int(r[4]), r[5], r[6], r[7], bool(k[3]),
                        bool(r[8] & 4), r[9], r[10]) for k, r in legs]
        return Page(rows, Cursor("fills", legs[-1][0]) if more else None)

    # -- funding (FN) -----------------------------------------------------------------

    def funding(self, user: int, symbol: int | None = None, limit: int = 50, before: Any = None,
                since: int | None = None) -> Page:
        user, symbol, limit, since = _user(user), _symbol(symbol), _limit(limit), _since(since)
        cur = _cursor(before, "funding", 3)
        where, args = _where("user_id", user, symbol, since, ("ts_ns", "stream_id", "seq"), cur)
        rows = self.db.query(
            "SELECT symbol_id, interval_id, ts_ns, amount, rate_e8, position, mark_px, stream_id, seq "
            f"FROM funding_payments WHERE {where} "
            "ORDER BY ts_ns DESC, stream_id DESC, seq DESC LIMIT ?", args + [limit + 1])
        more = len(rows) > limit
        rows = [FundingRow(*r) for r in rows[:limit]]
        nxt = Cursor("funding", (rows[-1].ts_ns, rows[-1].stream_id, rows[-1].seq)) if more else None
        return Page(rows, nxt)

    # -- orders ---------------------------------------------------------------------------

    def orders(self, user: int, symbol: int | None = None, limit: int = 50, before: Any = None,
               since: int | None = None) -> Page:
        user, symbol, limit, since = _user(user), _symbol(symbol), _limit(limit), _since(since)
        if isinstance(before, int) and not isinstance(before, bool) and before > 0:
            before = Cursor("orders", (before, 0, 0, 0))
        cur = _cursor(before, "orders", 4)
        if cur is not None:  # the order id travels as two u64 halves: the cursor stays integers
            cur = (cur[0], cur[1], ((cur[2] << 64) | cur[3]).to_bytes(16, "big"))
        where, args = _where("user_id", user, symbol, since, ("created_ns", "symbol_id", "order_id"), cur)
        rows = self.db.query(
            "SELECT symbol_id, order_id, user_id, side, tif, flags, stp, price, qty, client_id, status, reason, "
            f"filled_qty, remaining_qty, created_ns, updated_ns FROM orders WHERE {where} "
            "ORDER BY created_ns DESC, symbol_id DESC, order_id DESC LIMIT ?", args + [limit + 1])
        more = len(rows) > limit
        out = [OrderRow(r[0], _uuid(r[1]), *r[2:]) for r in rows[:limit]]
        nxt = None
        if more:
            last = out[-1]
            n = last.order_id.int
            nxt = Cursor("orders", (last.created_ns, last.symbol_id, n >> 64, n & ((1 << 64) - 1)))
        return Page(out, nxt)

    # -- liquidations ---------------------------------------------------------------------

    def liquidations(self, user: int, symbol: int | None = None, limit: int = 50, before: Any = None,
                     since: int | None = None) -> Page:
        user, symbol, limit, since = _user(user), _symbol(symbol), _limit(limit), _since(since)
        cur = _cursor(before, "liquidations", 3)
        cols = ("stream_id, seq, ts_ns, symbol_id, user_id, kind, side, round, slippage_bps, order_id, qty, "
                "price, mark_px, equity, maintenance_margin, shortfall, counterparty_user_id, fill_tip")
        found = []
        for who in ("user_id", "counterparty_user_id"):
            where, args = _where(who, user, symbol, since, ("ts_ns", "stream_id", "seq"), cur)
            found += self.db.query(f"SELECT {cols} FROM liquidations WHERE {where} "
                                   "ORDER BY ts_ns DESC, stream_id DESC, seq DESC LIMIT ?", args + [limit + 1])
        found = sorted(set(found), key=lambda r: (r[2], r[0], r[1]), reverse=True)
        more = len(found) > limit
        rows = [LiquidationRow(*r[:9], _uuid(r[9]), *r[10:]) for r in found[:limit]]
        nxt = Cursor("liquidations", (rows[-1].ts_ns, rows[-1].stream_id, rows[-1].seq)) if more else None
        return Page(rows, nxt)

    # -- realised PnL -----------------------------------------------------------------------

    def _divisor(self, symbol_id: int) -> int:
        rows = self.db.query("SELECT price_decimals, qty_decimals FROM symbol_configs WHERE symbol_id = ? "
                             "ORDER BY seq DESC LIMIT 1", (symbol_id,))
        if rows:
            e = rows[0][0] + rows[0][1] - self.cd
            return 10 ** e if 0 <= e <= 18 else 0
        return self._divisors.get(symbol_id, 0)

    def pnl(self, user: int, symbol: int | None = None) -> list[PnlRow]:
        """Per symbol: realised PnL (the user's legs replayed by the risk core), fees, funding."""
        user, symbol = _user(user), _symbol(symbol)
        sym_sql, sym_args = ("AND symbol_id = ?", [symbol]) if symbol is not None else ("", [])
        legs: dict[int, list[tuple]] = {}
        fees: dict[int, int] = {}
        counts: dict[int, int] = {}
        for who, order, dir_sql in (("taker", 0, "CASE WHEN taker_side = 0 THEN 1 ELSE -1 END"),
                                    ("maker", 1, "CASE WHEN taker_side = 0 THEN -1 ELSE 1 END")):
            for sym, seq, d, px, q, fee, self_trade in self.db.query(
                    f"SELECT symbol_id, seq, {dir_sql}, price, qty, {who}_fee, taker_user_id = maker_user_id "
                    f"FROM fills WHERE {who}_user_id = ? {sym_sql}", [user] + sym_args):
                fees[sym] = fees.get(sym, 0) + (fee or 0)
                if self_trade:      # bought and sold at one price: no position change, both fees (as the risk core)
                    legs.setdefault(sym, [])
                    counts[sym] = counts.get(sym, 0) + order
                    continue
                legs.setdefault(sym, []).append((seq, order, 0, d, px, q))
                counts[sym] = counts.get(sym, 0) + 1
        # ADL closes, after the fill their batch's barrier names (fill_tip): at (tip, 2, seq)
        adl = int(LiqKind.ADL)
        for who, sign in (("user_id", 1), ("counterparty_user_id", -1)):
            for sym, tip, seq, side, px, q in self.db.query(
                    f"SELECT symbol_id, fill_tip, seq, side, price, qty FROM liquidations WHERE {who} = ? "
                    f"AND kind = {adl} {sym_sql}", [user] + sym_args):
                d = (1 if side == 0 else -1) * sign
                legs.setdefault(sym, []).append((tip or 0, 2, seq, d, px, q))
        funding = dict(self.db.query(
            f"SELECT symbol_id, SUM(amount) FROM funding_payments WHERE user_id = ? {sym_sql} GROUP BY symbol_id",
            [user] + sym_args))
        out = []
        for sym in sorted(set(legs) | set(funding)):
            ls = sorted(legs.get(sym, []))
            net = ffi.new("int64_t *")
            cost = ffi.new("int64_t *")
            realised = ffi.new("int64_t *")
            if ls:
                arr = ffi.new("struct rsx_ledger_leg[]", len(ls))
                for i, (_, _, _, d, px, q) in enumerate(ls):
                    arr[i].price, arr[i].qty, arr[i].dir = px, q, d
                rc = lib.rsx_ledger_replay(arr, len(ls), self._divisor(sym), net, cost, realised, ffi.NULL)
                if rc < 0:
                    from ..errors import error_for
                    raise error_for(rc, f"replaying the fills of user {user} in symbol {sym}")
            f, fu = fees.get(sym, 0), int(funding.get(sym) or 0)
            out.append(PnlRow(sym, realised[0], f, fu, realised[0] - f + fu, net[0], cost[0], counts.get(sym, 0)))
        return out

    # -- the store itself ---------------------------------------------------------------------

    def tips(self) -> dict[int, tuple[int, int]]:
        return {s: (q, ts) for s, q, ts in self.db.query("SELECT stream_id, applied_seq, applied_ts_ns FROM "
                                                          "stream_tips")}


def open_store(url: str, *, collateral_decimals: int = 6, divisors: dict[int, int] | None = None) -> Store:
    """A query connection to the store at ``url`` (read-only); checks the schema version."""
    db = open_database(url, readonly=True)
    try:
        check_schema(db)
    except BaseException:
        db.close()
        raise
    return Store(db, divisors, collateral_decimals)


def _paged(name: str):
    """AsyncStore's coroutine for Store.<name> (user, symbol, limit, before, since) -> Page."""
    async def query(self: "AsyncStore", user: int, symbol: int | None = None, limit: int = 50, before: Any = None,
                    since: int | None = None) -> Page:
        return await self._run(name, user, symbol, limit, before, since)

    query.__name__ = query.__qualname__ = name
    query.__doc__ = f"``Store.{name}`` on the worker thread (same arguments, same Page)."
    return query


class AsyncStore:
    """The same queries for asyncio: each runs on one worker thread that owns the connection.

    Connects lazily (on the first query) so constructing it never blocks the
    loop; calls are serialised per instance.
    """

    def __init__(self, url: str, **kw: Any) -> None:
        self.url = url
        self._kw = kw
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rsx-store-query")
        self._store: Store | None = None

    def _call(self, name: str, *args: Any, **kw: Any) -> Any:
        if self._store is None:
            self._store = open_store(self.url, **self._kw)
        return getattr(self._store, name)(*args, **kw)

    async def _run(self, name: str, *args: Any, **kw: Any) -> Any:
        fn: Callable[[], Any] = lambda: self._call(name, *args, **kw)  # noqa: E731
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    fills = _paged("fills")
    funding = _paged("funding")
    orders = _paged("orders")
    liquidations = _paged("liquidations")

    async def pnl(self, user: int, symbol: int | None = None) -> list[PnlRow]:
        return await self._run("pnl", user, symbol)

    async def close(self) -> None:
        def shut() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None
        await asyncio.get_running_loop().run_in_executor(self._pool, shut)
        self._pool.shutdown(wait=False)
