"""The public WebSocket: connections, subscriptions, fan-out, slow subscribers (specs/marketdata.md 3).

Built on the websockets asyncio server (compression off). Every message this
server sends is a pre-built frame written straight to the connection's
transport, in order: the same bytes go to every subscriber of the same
channels, and a subscriber whose write buffer would pass ``max_queue_bytes``
is dropped with close code 4000 instead of being written to with a hole in
its stream. The websockets library still handles the handshake, pings and
the closing handshake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from .feed import SymbolFeed
from .protocol import (ALL_CHANNELS, BBO, CLOSE_FULL, CLOSE_SLOW, DEPTH, E_CHANNELS, E_FIELDS,
                       E_SYMBOL, E_TOO_MANY, MAX_FRAME, TRADES, ClientError, message, parse)

__all__ = ["FeedServer", "Client"]

log = logging.getLogger("rsx_appliance.marketdata")


class Client:
    """One connection: its subscriptions (symbol id -> channel mask) and its state."""

    __slots__ = ("ws", "transport", "subs", "dropped", "last_write", "last_read", "peer")

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.transport = ws.transport
        self.subs: dict[int, int] = {}
        self.dropped = False
        self.last_write = self.last_read = time.monotonic()
        self.peer = ws.remote_address


class FeedServer:
    """Serves the feeds of a set of symbols; :meth:`flush` publishes what changed."""

    def __init__(self, feeds: dict[int, SymbolFeed], *, max_queue_bytes: int = 1 << 20,
                 max_connections: int = 10_000, max_subscriptions: int = 64, heartbeat_s: float = 5,
                 idle_timeout_s: float = 0, close_timeout_s: float = 2.0) -> None:
        self.feeds = feeds
        self.by_name = {f.name: f for f in feeds.values()}
        self.max_queue_bytes, self.max_connections = max_queue_bytes, max_connections
        self.max_subscriptions, self.heartbeat_s = max_subscriptions, heartbeat_s
        self.idle_timeout_s, self.close_timeout_s = idle_timeout_s, close_timeout_s
        self.clients: set[Client] = set()
        # symbol id -> channel mask -> subscribers
        self.groups: dict[int, dict[int, set[Client]]] = {sid: defaultdict(set) for sid in feeds}
        self.counters = dict(connections=0, accepted=0, subscriptions=0, flushes=0, messages=0,
                             writes=0, bytes_out=0, slow_disconnects=0, bad_frames=0, refused=0)
        self._server = None
        self._ticker: asyncio.Task | None = None

    # -- lifecycle --------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        self._server = await serve(self._handle, host, port, compression=None, max_size=MAX_FRAME,
                                   ping_interval=20, ping_timeout=20, close_timeout=self.close_timeout_s)
        self._ticker = asyncio.create_task(self._tick())

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._server is not None:
            self._server.close()          # closes every connection with 1001
            await self._server.wait_closed()

    # -- writing ----------------------------------------------------------------

    def write(self, c: Client, data: bytes) -> None:
        """Queue pre-framed bytes on a connection, or drop it if that would pass the limit."""
        if c.dropped:
            return
        if c.ws.protocol.state is not State.OPEN:
            return
        queued = c.transport.get_write_buffer_size()
        if queued + len(data) > self.max_queue_bytes:
            self._drop_slow(c, queued)
            return
        c.transport.write(data)
        c.last_write = time.monotonic()
        self.counters["writes"] += 1
        self.counters["bytes_out"] += len(data)

    def _drop_slow(self, c: Client, queued: int) -> None:
        c.dropped = True
        self.counters["slow_disconnects"] += 1
        self._unsubscribe(c, None)
        log.warning("marketdata: %s dropped: slow consumer (%d bytes queued)", c.peer, queued)
        asyncio.ensure_future(self._close(c, CLOSE_SLOW, f"slow consumer: {queued} bytes queued"))

    async def _close(self, c: Client, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(c.ws.close(code, reason), self.close_timeout_s + 1)
        except (asyncio.TimeoutError, ConnectionClosed, OSError):
            pass
        finally:
            c.transport.abort()

    # -- publication ------------------------------------------------------------

    def flush(self) -> None:
        """Publish every symbol's changes: one write per subscriber per symbol.

        The per-subscriber loop is the hot path of the feed (one send system call each):
        it does nothing but the queue check and the write.
        """
        now = time.monotonic()
        writes = nbytes = 0
        for sid, feed in self.feeds.items():
            frames = feed.flush()
            if not frames:
                continue
            self.counters["flushes"] += 1
            self.counters["messages"] += len(frames)
            for mask, members in self.groups[sid].items():
                if not members:
                    continue
                data = b"".join(frames[ch] for ch in (BBO, DEPTH, TRADES) if ch & mask and ch in frames)
                if not data:
                    continue
                limit = self.max_queue_bytes - len(data)
                for c in tuple(members):
                    t = c.transport
                    if t.is_closing():
                        continue
                    queued = t.get_write_buffer_size()
                    if queued > limit:
                        self._drop_slow(c, queued)
                        continue
                    t.write(data)
                    c.last_write = now
                    writes += 1
                    nbytes += len(data)
        self.counters["writes"] += writes
        self.counters["bytes_out"] += nbytes

    # -- connections -------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        c = Client(ws)
        if len(self.clients) >= self.max_connections:
            self.counters["refused"] += 1
            await ws.close(CLOSE_FULL, f"server full: {self.max_connections} connections")
            return
        self.clients.add(c)
        self.counters["connections"] = len(self.clients)
        self.counters["accepted"] += 1
        try:
            async for data in ws:
                c.last_read = time.monotonic()
                if c.dropped:
                    continue
                try:
                    self._on_message(c, data)
                except ClientError as exc:
                    self.counters["bad_frames"] += 1
                    self.write(c, message("E", [exc.code, str(exc)]))
        except ConnectionClosed:
            pass
        finally:
            self._unsubscribe(c, None)
            self.clients.discard(c)
            self.counters["connections"] = len(self.clients)

    def _symbol(self, value) -> SymbolFeed:
        feed = None
        if isinstance(value, int) and not isinstance(value, bool):
            feed = self.feeds.get(value)
        elif isinstance(value, str):
            feed = self.by_name.get(value)
        if feed is None:
            raise ClientError(E_SYMBOL, f"unknown symbol {value!r}")
        return feed

    @staticmethod
    def _channels(value) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ALL_CHANNELS:
            raise ClientError(E_CHANNELS, f"channels must be a mask in 1..{ALL_CHANNELS}, not {value!r}")
        return value

    def _on_message(self, c: Client, data) -> None:
        kind, f = parse(data)
        if kind == "H":
            if len(f) != 1 or isinstance(f[0], bool) or not isinstance(f[0], int):
                raise ClientError(E_FIELDS, "H: [ts]")
            self.write(c, message("H", f))
        elif kind == "I":
            if f:
                raise ClientError(E_FIELDS, "I: []")
            self.write(c, message("I", [self._info(feed) for feed in self.feeds.values()]))
        elif kind == "S":
            if len(f) != 2:
                raise ClientError(E_FIELDS, "S: [symbol, channels]")
            feed, mask = self._symbol(f[0]), self._channels(f[1])
            if feed.symbol_id not in c.subs and len(c.subs) >= self.max_subscriptions:
                raise ClientError(E_TOO_MANY, f"at most {self.max_subscriptions} symbols per connection")
            self._subscribe(c, feed, mask)
        else:  # X
            if not f:
                self._unsubscribe(c, None)
                return
            if len(f) != 2:
                raise ClientError(E_FIELDS, "X: [symbol, channels] or []")
            feed, mask = self._symbol(f[0]), self._channels(f[1])
            self._unsubscribe(c, feed.symbol_id, mask)

    @staticmethod
    def _info(feed: SymbolFeed) -> list:
        cfg = feed.book.config
        if cfg is None:
            return [feed.symbol_id, feed.name, None, None, None, None, feed.depth]
        return [feed.symbol_id, feed.name, cfg.price_decimals, cfg.qty_decimals, cfg.tick_size,
                cfg.lot_size, feed.depth]

    def _subscribe(self, c: Client, feed: SymbolFeed, mask: int) -> None:
        # Everything applied so far goes out first, so the snapshot is the state the
        # next D starts from (its pu is the snapshot's u).
        self.flush()
        sid = feed.symbol_id
        old = c.subs.get(sid, 0)
        if mask & DEPTH:
            self.write(c, feed.snapshot_frame())
        if mask & BBO:
            self.write(c, feed.bbo_frame())
        new = old | mask
        if old:
            self.groups[sid][old].discard(c)
        else:
            self.counters["subscriptions"] += 1
        self.groups[sid][new].add(c)
        c.subs[sid] = new

    def _unsubscribe(self, c: Client, sid: int | None, mask: int = ALL_CHANNELS) -> None:
        for s in ([sid] if sid is not None else list(c.subs)):
            old = c.subs.get(s, 0)
            if not old:
                continue
            self.groups[s][old].discard(c)
            new = old & ~mask
            if new:
                self.groups[s][new].add(c)
                c.subs[s] = new
            else:
                del c.subs[s]
                self.counters["subscriptions"] -= 1

    async def _tick(self) -> None:
        """Heartbeats after silence, idle timeouts."""
        while True:
            await asyncio.sleep(min(1.0, self.heartbeat_s / 2))
            now = time.monotonic()
            for c in tuple(self.clients):
                if self.idle_timeout_s and now - c.last_read > self.idle_timeout_s and not c.dropped:
                    c.dropped = True
                    asyncio.ensure_future(self._close(c, 1000, "idle"))
                elif now - c.last_write >= self.heartbeat_s:
                    self.write(c, message("H", [int(time.time() * 1000)]))
