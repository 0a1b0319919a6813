"""A Python client of the private WebSocket API (specs/ws-api.md 11).

:class:`Client` (asyncio) and :class:`SyncClient` (the same calls, blocking).
Human decimal strings go in and come out; they are converted exactly through
each symbol's :class:`~rsx_appliance.numbers.SymbolConfig` (loaded with ``M``
at connect), so ``"60000.3"`` on a 0.5 tick raises
:class:`~rsx_appliance.errors.OffTickError` before anything is sent.

Refusals: a gateway ``E`` raises :class:`GatewayError`; a venue refusal of a
cancel or amend raises :class:`Refused`; a refused order ends as an
:class:`Order` with status FAILED and its reason. Every ``U``, ``F``, ``R``,
``Q``, ``PU``, ``AU`` and ``FP`` is also available as an event stream
(:meth:`Client.events`).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import websockets

from .codes import Reason, Status, Stp, Tif, status_is_terminal
from .errors import RsxError, rejected
from .numbers import SymbolConfig

__all__ = ["Client", "SyncClient", "GatewayError", "Refused", "Order", "Fill", "Position", "Account", "Symbol",
           "ConnectError"]

_SIDES = {"buy": 0, "sell": 1}
_TIFS = {"gtc": Tif.GTC, "ioc": Tif.IOC, "fok": Tif.FOK}
_STPS = {"cancel_taker": Stp.CANCEL_TAKER, "cancel_maker": Stp.CANCEL_MAKER, "cancel_both": Stp.CANCEL_BOTH,
         "none": Stp.NONE}


class GatewayError(RsxError):
    """The gateway refused a frame (an ``E``): ``code`` (specs/ws-api.md 7), ``reason`` (specs/errors.md)."""

    exit_code = 1

    def __init__(self, code: int, message: str, ref=None, reason: int | None = None) -> None:
        super().__init__(f"E {code}: {message}")
        self.code, self.message, self.ref = code, message, ref
        self.reason = None if reason is None else Reason(reason)


class Refused(RsxError):
    """The venue refused a cancel, amend or cancel-all (an ``R``); the order is unchanged."""

    exit_code = 1

    def __init__(self, req: str, ident: str, reason: int) -> None:
        self.req, self.ident, self.reason = req, ident, Reason(reason)
        super().__init__(f"{req} {ident} refused: {self.reason.name}")


class ConnectError(RsxError):
    """The gateway could not be reached, or refused the token (HTTP 401/429/503)."""

    exit_code = 3


@dataclass(frozen=True)
class Symbol:
    id: int
    name: str
    numbers: SymbolConfig
    collateral_decimals: int


@dataclass
class Order:
    oid: str
    cid: str
    symbol: str
    side: str
    price: str
    filled: str
    remaining: str
    status: Status
    reason: Reason

    @property
    def terminal(self) -> bool:
        return status_is_terminal(self.status)


@dataclass(frozen=True)
class Fill:
    oid: str
    symbol: str
    side: str
    price: str
    qty: str
    remaining: str
    maker: bool
    ts_ns: int
    seq: int
    cid: str


@dataclass(frozen=True)
class Position:
    symbol: str
    qty: str            # signed: > 0 long
    entry_price: str
    mark_price: str
    unrealized_pnl: str
    liquidation_price: str | None
    realized_pnl: str
    initial_margin: str
    maintenance_margin: str


@dataclass(frozen=True)
class Account:
    collateral: str
    equity: str
    unrealized_pnl: str
    initial_margin: str
    maintenance_margin: str
    frozen: str
    available: str
    withdrawable: str
    in_liquidation: bool


def _money(raw: int, decimals: int) -> str:
    return str(Decimal(raw).scaleb(-decimals))


class Client:
    """One connection to a gateway; use ``async with Client.connect(url, token) as c``."""

    def __init__(self, ws, token_factory: Callable[[], str], url: str, heartbeat_s: float) -> None:
        self.ws, self.url = ws, url
        self._token = token_factory
        self.heartbeat_s = heartbeat_s
        self.symbols: dict[str, Symbol] = {}
        self.by_id: dict[int, Symbol] = {}
        self.orders: dict[str, Order] = {}
        self.ended: collections.OrderedDict[str, Order] = collections.OrderedDict()   # recent terminals
        self._cid_oid: dict[str, str] = {}
        self._acks: dict[str, asyncio.Future] = {}
        self._fifo: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._watch: dict[str, list[asyncio.Future]] = collections.defaultdict(list)
        self._events: asyncio.Queue = asyncio.Queue()
        self._cids = itertools.count(1)
        self._tasks: list[asyncio.Task] = []
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()

    # -- connecting --------------------------------------------------------

    @classmethod
    def connect(cls, url: str, token: str | Callable[[], str], *, heartbeat_s: float = 5.0,
                timeout: float = 10.0) -> "_Connecting":
        factory = token if callable(token) else (lambda: token)
        return _Connecting(cls, url, factory, heartbeat_s, timeout)

    @classmethod
    async def _open(cls, url, factory, heartbeat_s, timeout) -> "Client":
        try:
            ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {factory()}"},
                                          compression=None, open_timeout=timeout, max_size=1 << 22)
        except websockets.InvalidStatus as exc:
            body = exc.response.body or b""
            try:
                code, msg = json.loads(body)["E"][:2]
                detail = f"E {code}: {msg}"
            except (ValueError, KeyError, TypeError):
                detail = body.decode("utf-8", "replace")[:200]
            raise ConnectError(f"{url}: HTTP {exc.response.status_code}: {detail}") from None
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as exc:
            raise ConnectError(f"{url}: {exc}") from None
        c = cls(ws, factory, url, heartbeat_s)
        c._tasks = [asyncio.create_task(c._reader()), asyncio.create_task(c._heartbeats())]
        rows = await c._ask("M", [])
        for r in rows:
            n = SymbolConfig(symbol_id=r[0], price_decimals=r[2], qty_decimals=r[3], tick_size=r[4], lot_size=r[5],
                             min_qty=r[6], max_qty=r[7], maker_fee_bps=r[8], taker_fee_bps=r[9], status=r[10])
            s = Symbol(r[0], r[1], n, r[11])
            c.symbols[s.name], c.by_id[s.id] = s, s
        return c

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.ws.close()

    # -- the reader ----------------------------------------------------------

    async def _reader(self) -> None:
        try:
            async for msg in self.ws:
                (kind, v), = json.loads(msg).items()
                self._dispatch(kind, v)
        except websockets.ConnectionClosed:
            pass
        finally:
            exc = ConnectError(f"connection closed ({self.ws.close_code} {self.ws.close_reason or ''})".strip())
            for fut in itertools.chain(self._acks.values(), *self._fifo.values(), *self._watch.values()):
                if not fut.done():
                    fut.set_exception(exc)
            if not self.closed.done():
                self.closed.set_result(self.ws.close_code)
            self._events.put_nowait(None)

    def _dispatch(self, kind: str, v: list) -> None:
        if kind == "U":
            o = self._order(v)
            if o.status == Status.PENDING and o.reason == Reason.NONE:
                fut = self._acks.pop(o.cid, None)
                if fut is not None and not fut.done():
                    fut.set_result(o)
            self._wake(o.oid, o)
        elif kind == "E":
            err = GatewayError(*v)
            ref = v[2] if len(v) > 2 else None
            fut = self._acks.pop(ref, None) if isinstance(ref, str) else None
            if fut is None and ref in self._fifo and self._fifo[ref]:
                fut = self._fifo[ref].popleft()
            if fut is None and isinstance(ref, str):
                for w in self._watch.pop(self._cid_oid.get(ref, ref), []):
                    if not w.done():
                        w.set_exception(err)
                return
            if fut is not None and not fut.done():
                fut.set_exception(err)
            return
        elif kind == "R":
            self._wake(v[1], Refused(*v))
        elif kind in ("O", "P", "A", "M", "FL", "FN", "CA", "DM") and self._fifo[kind]:
            if kind == "DM" and v[1] == 2:   # fired: an event, not an answer
                pass
            else:
                fut = self._fifo[kind].popleft()
                if not fut.done():
                    fut.set_result(v)
                return
        self._events.put_nowait((kind, self._event(kind, v)))

    def _wake(self, oid: str, value) -> None:
        for w in self._watch.pop(oid, []):
            if not w.done():
                if isinstance(value, Exception):
                    w.set_exception(value)
                else:
                    w.set_result(value)

    def _order(self, v: list) -> Order:
        oid, status, filled, remaining, reason, cid, sym, side, px = v
        s = self.by_id.get(sym)
        n = s.numbers if s else None
        o = Order(oid, cid, s.name if s else str(sym), "buy" if side == 0 else "sell",
                  n.format_price(px) if n else str(px), n.format_qty(filled) if n else str(filled),
                  n.format_qty(remaining) if n else str(remaining), Status(status), Reason(reason))
        if o.terminal:
            self.orders.pop(oid, None)
            self._cid_oid.pop(cid, None)
            self.ended[oid] = o
            if len(self.ended) > 10_000:
                self.ended.popitem(last=False)
        else:
            self.orders[oid] = o
            if cid:
                self._cid_oid[cid] = oid
        return o

    def _event(self, kind: str, v: list):
        if kind == "U":
            return self._order(v)
        if kind == "F":
            s = self.by_id[v[1]]
            return Fill(v[0], s.name, "buy" if v[2] == 0 else "sell", s.numbers.format_price(v[3]),
                        s.numbers.format_qty(v[4]), s.numbers.format_qty(v[5]), bool(v[6]), v[7], v[8], v[9])
        if kind == "PU":
            return self._position(v)
        if kind == "AU":
            return self._account(v)
        return v

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.ws.send(json.dumps({"H": [int(time.time() * 1000)]}))

    async def _ask(self, kind: str, fields: list, timeout: float = 10.0):
        fut = asyncio.get_running_loop().create_future()
        self._fifo[kind].append(fut)
        await self.ws.send(json.dumps({kind: fields}))
        return await asyncio.wait_for(fut, timeout)

    # -- conversions ---------------------------------------------------------

    def symbol(self, name_or_id) -> Symbol:
        s = self.symbols.get(name_or_id) or self.by_id.get(name_or_id)
        if s is None:
            raise rejected(Reason.UNKNOWN_SYMBOL, f"{name_or_id!r} (known: {', '.join(self.symbols)})")
        return s

    def _position(self, r: list) -> Position:
        s = self.by_id[r[0]]
        n, cd = s.numbers, s.collateral_decimals
        return Position(s.name, n.format_qty(r[1]), n.format_price(r[2]), n.format_price(r[3]), _money(r[4], cd),
                        n.format_price(r[5]) if r[5] else None, _money(r[6], cd), _money(r[7], cd),
                        _money(r[8], cd))

    def _account(self, r: list) -> Account:
        cd = next(iter(self.by_id.values())).collateral_decimals if self.by_id else 6
        return Account(*(_money(x, cd) for x in r[:8]), bool(r[8] & 1))

    # -- orders --------------------------------------------------------------

    async def new_order(self, symbol, side: str, qty, price, *, tif: str = "gtc", post_only: bool = False,
                        reduce_only: bool = False, stp: str = "cancel_taker", cid: str | None = None,
                        timeout: float = 10.0) -> Order:
        """Place a limit order; returns the gateway's PENDING acknowledgement (with the order id)."""
        s = self.symbol(symbol)
        if side not in _SIDES or tif not in _TIFS or stp not in _STPS:
            raise ValueError(f"side buy|sell, tif {'|'.join(_TIFS)}, stp {'|'.join(_STPS)}")
        px, q = s.numbers.price(price), s.numbers.qty(qty)
        s.numbers.check_order(px, q)
        cid = cid or f"c{int(time.time() * 1000) % 10**9}-{next(self._cids)}"
        fut = asyncio.get_running_loop().create_future()
        self._acks[cid] = fut
        await self.ws.send(json.dumps({"N": [s.id, _SIDES[side], int(px), int(q), cid, int(_TIFS[tif]),
                                             int(reduce_only), int(post_only), int(_STPS[stp])]}))
        return await asyncio.wait_for(fut, timeout)

    def _oid(self, ident: str) -> str:
        return self._cid_oid.get(ident, ident)

    async def wait_terminal(self, ident: str, timeout: float = 10.0) -> Order:
        """Wait until the order ends (FILLED, CANCELLED or FAILED)."""
        end = time.monotonic() + timeout
        oid = self._oid(ident)
        if oid in self.ended:
            return self.ended[oid]
        while True:
            o = await self._next_update(oid, end - time.monotonic())
            if isinstance(o, Order) and o.terminal:
                return o

    async def wait_answer(self, ident: str, timeout: float = 10.0) -> Order:
        """Wait for the venue's first answer to an order: RESTING, a terminal state, or PENDING+TIMEOUT."""
        end = time.monotonic() + timeout
        oid = self._oid(ident)
        while True:
            o = self.ended.get(oid) or self.orders.get(oid)
            if o is not None and (o.status != Status.PENDING or o.reason != Reason.NONE):
                return o
            await self._next_update(oid, end - time.monotonic())

    async def _next_update(self, oid: str, timeout: float):
        fut = asyncio.get_running_loop().create_future()
        self._watch[oid].append(fut)
        return await asyncio.wait_for(fut, max(timeout, 0.001))

    async def cancel(self, ident: str, timeout: float = 10.0) -> Order:
        """Cancel one order (order id or client id); returns it ended, or raises Refused / GatewayError."""
        oid = self._oid(ident)
        fut = asyncio.get_running_loop().create_future()
        self._watch[oid].append(fut)
        await self.ws.send(json.dumps({"C": [ident]}))
        end = time.monotonic() + timeout
        o = await asyncio.wait_for(fut, timeout)
        while not o.terminal:
            o = await self._next_update(oid, end - time.monotonic())
        return o

    async def amend(self, ident: str, *, qty, price=None, timeout: float = 10.0) -> Order:
        """Change an order's open quantity (and price); returns its next state."""
        oid = self._oid(ident)
        o = self.orders.get(oid)
        if o is None:
            raise GatewayError(1005, f"no live order {ident!r} known to this client")
        s = self.symbol(o.symbol)
        px = int(s.numbers.price(price)) if price is not None else 0
        fut = asyncio.get_running_loop().create_future()
        self._watch[oid].append(fut)
        await self.ws.send(json.dumps({"AM": [ident, px, int(s.numbers.qty(qty))]}))
        return await asyncio.wait_for(fut, timeout)

    async def cancel_all(self, symbol=None) -> int:
        """Cancel every resting order (of one symbol); returns how many symbols it went to."""
        sym = self.symbol(symbol).id if symbol is not None else 0
        return (await self._ask("CA", [sym]))[1]

    async def dead_man(self, timeout_ms: int) -> None:
        """Arm (>= 1000 ms) or disarm (0) this connection's dead-man switch."""
        await self._ask("DM", [timeout_ms])

    # -- queries -------------------------------------------------------------

    async def open_orders(self, symbol=None) -> list[Order]:
        rows = await self._ask("O", [self.symbol(symbol).id if symbol is not None else 0])
        return [self._order([r[0], r[7], r[6], r[5] - r[6], 0, r[1], r[2], r[3], r[4]]) for r in rows]

    async def positions(self, symbol=None) -> list[Position]:
        rows = await self._ask("P", [self.symbol(symbol).id if symbol is not None else 0])
        return [self._position(r) for r in rows]

    async def account(self) -> Account:
        return self._account(await self._ask("A", []))

    async def fills(self, symbol=None, limit: int = 50, before_ns: int = 0) -> list[Fill]:
        rows = await self._ask("FL", [self.symbol(symbol).id if symbol is not None else 0, limit, before_ns])
        out = []
        for r in rows:
            s = self.by_id[r[1]]
            out.append(Fill(r[0], s.name, "buy" if r[2] == 0 else "sell", s.numbers.format_price(r[3]),
                            s.numbers.format_qty(r[4]), "", bool(r[6]), r[7], r[8], ""))
        return out

    async def events(self) -> AsyncIterator[tuple[str, object]]:
        """Every pushed event as (type, object), until the connection closes."""
        while True:
            ev = await self._events.get()
            if ev is None:
                return
            yield ev


class _Connecting:
    def __init__(self, cls, url, factory, heartbeat_s, timeout) -> None:
        self.args = (url, factory, heartbeat_s, timeout)
        self.cls = cls
        self.client: Client | None = None

    def __await__(self):
        return self.cls._open(*self.args).__await__()

    async def __aenter__(self) -> Client:
        self.client = await self.cls._open(*self.args)
        return self.client

    async def __aexit__(self, *exc) -> None:
        await self.client.close()


class SyncClient:
    """The :class:`Client` API, blocking, on a private event loop thread."""

    def __init__(self, url: str, token: str | Callable[[], str], **kw) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rsx-client", daemon=True)
        self._thread.start()
        self._c: Client = self._run(Client._open(url, token if callable(token) else (lambda: token),
                                                 kw.get("heartbeat_s", 5.0), kw.get("timeout", 10.0)))

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __getattr__(self, name: str):
        attr = getattr(self._c, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr
        return lambda *a, **kw: self._run(attr(*a, **kw))

    def close(self) -> None:
        self._run(self._c.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
