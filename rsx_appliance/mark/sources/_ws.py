"""The venue WebSocket connection loop shared by the venue plugins: reconnect with backoff, log, count."""

from __future__ import annotations

import asyncio
import logging

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from . import Emit, Source

__all__ = ["VenueSource"]

log = logging.getLogger("rsx_appliance.mark")
_decode = msgspec.json.Decoder().decode


class VenueSource(Source):
    """Subclasses give ``subscribe_messages()``, ``on_message(obj, emit)`` and may add ``keepalive``."""

    keepalive_s: float | None = None
    keepalive_text = "ping"

    def __init__(self, config, symbols: dict) -> None:
        super().__init__(config, symbols)
        # venue instrument -> our symbol name
        self.instruments = {inst: name for name, inst in config.symbols}
        self.symbols = {name: spec for name, spec in symbols.items() if name in dict(config.symbols)}
        self.delays: list[float] = []          # backoffs taken, for the log and the tests

    def subscribe_messages(self) -> list[str]:   # pragma: no cover - overridden
        raise NotImplementedError

    def on_message(self, obj, emit: Emit) -> None:   # pragma: no cover - overridden
        raise NotImplementedError

    def venue_tick(self, emit: Emit, instrument, price, ts_ms) -> None:
        name = self.instruments.get(instrument) if isinstance(instrument, str) else None
        if name is None:
            self.unknown(str(instrument))
            return
        try:
            ts_ns = int(ts_ms) * 1_000_000
        except (TypeError, ValueError):
            ts_ns = 0
        self.tick(emit, name, price, ts_ns)

    async def run(self, emit: Emit) -> None:
        c = self.config
        delay = c.reconnect_min_ms / 1000
        while True:
            self.counters["connects"] += 1
            log.info("mark: %s: connecting to %s", self.describe(), c.url)
            good = False
            try:
                async with connect(c.url, open_timeout=10, close_timeout=2, max_size=1 << 22,
                                   compression=None) as ws:
                    self.connected = True
                    for m in self.subscribe_messages():
                        await ws.send(m)
                    ka = asyncio.create_task(self._keepalive(ws)) if self.keepalive_s else None
                    try:
                        async for data in ws:
                            before = self.counters["ticks"]
                            self._handle(data, emit)
                            if self.counters["ticks"] > before and not good:
                                good = True
                                delay = c.reconnect_min_ms / 1000   # reset after a working connection
                    finally:
                        if ka is not None:
                            ka.cancel()
                log.warning("mark: %s: the venue closed the connection", self.describe())
            except (OSError, WebSocketException, asyncio.TimeoutError) as exc:
                log.warning("mark: %s: connection failed: %s", self.describe(), exc or type(exc).__name__)
            self.connected = False
            self.counters["disconnects"] += 1
            self.delays.append(delay)
            log.info("mark: %s: reconnecting in %.1f s", self.describe(), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, c.reconnect_max_ms / 1000)

    def _handle(self, data, emit: Emit) -> None:
        if isinstance(data, str) and data == "pong":
            return
        try:
            obj = _decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError):
            self.malformed(f"not JSON: {str(data)[:80]}")
            return
        try:
            self.on_message(obj, emit)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            self.malformed(f"unexpected shape ({exc}): {str(data)[:120]}")

    async def _keepalive(self, ws) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            await ws.send(self.keepalive_text)
