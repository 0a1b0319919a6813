"""The `rsx marketdata` process: follower thread -> shadow books -> WebSocket (specs/marketdata.md 1, 5)."""

from __future__ import annotations

import asyncio
import logging
import queue
import time

from ..config import Config
from ..follow import StreamFollower
from ..status import StatusFile
from ..wal.block import Block
from .book import BookInconsistent
from .feed import SymbolFeed
from .server import FeedServer

__all__ = ["MarketdataApp"]

log = logging.getLogger("rsx_appliance.marketdata")


class MarketdataApp:
    """One marketdata instance: ``await start()``, then ``await wait()`` until stopped or failed."""

    def __init__(self, cfg: Config, instance: int = 0, *, ws_port: int | None = None,
                 cmp_local: tuple[str, int] | None = None,
                 dxs: dict[int, tuple[str, int]] | None = None) -> None:
        self.cfg = cfg
        self.proc = cfg.process(f"marketdata.{instance}")
        mc = cfg.marketdata
        self.feeds: dict[int, SymbolFeed] = {}
        streams = {}
        for name in cfg.engine_symbols:
            sym = cfg.symbol(name)
            self.feeds[sym.id] = SymbolFeed(sym.id, sym.name, mc.depth)
            addr = (dxs or {}).get(sym.id) or cfg.process(f"me.{name}").dxs
            streams[sym.id] = (addr, 1)
        self.server = FeedServer(self.feeds, max_queue_bytes=mc.max_queue_bytes,
                                 max_connections=mc.max_connections, max_subscriptions=mc.max_subscriptions,
                                 heartbeat_s=mc.heartbeat_s, idle_timeout_s=mc.idle_timeout_s)
        self.ws_addr = (self.proc.ws[0], self.proc.ws[1] if ws_port is None else ws_port)
        self._blocks: queue.Queue = queue.Queue(maxsize=1024)   # bounded: a slow loop stalls the follower
        self._woken = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.follower = StreamFollower(cmp_local or self.proc.cmp, streams, self._on_records,
                                       name=self.proc.name, backend=_backend(cfg),
                                       mode="sleep")  # off the order path: sleep in the kernel
        self.status = StatusFile(cfg.data_dir / "run" / f"{self.proc.name}.json", self.proc.name, "marketdata")
        self.error: BaseException | None = None
        self._failed = asyncio.Event()
        self._status_task: asyncio.Task | None = None
        self.records = 0

    # -- records from the follower thread ----------------------------------------

    def _on_records(self, stream_id: int, block: Block) -> None:
        self._blocks.put((stream_id, block))       # blocks when the loop is behind: stall, never drop
        if not self._woken:
            self._woken = True
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._woken = False
        try:
            for _ in range(256):
                try:
                    sid, block = self._blocks.get_nowait()
                except queue.Empty:
                    break
                self.feeds[sid].apply(block)
                self.records += len(block)
            else:
                self._loop.call_soon(self._drain)   # more waiting: let the loop breathe first
            self.server.flush()
        except BookInconsistent as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            log.error("marketdata: %s", exc)
            self._failed.set()

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.status.write("starting", streams=self.follower.status())
        self.follower.start()
        while not self.follower.ready.is_set():
            if self.follower.done.is_set():
                raise self.follower.error or RuntimeError("stream follower stopped")
            if self.error is not None:
                raise self.error
            await asyncio.sleep(0.01)
        # apply what the bootstrap delivered, then publish from there
        while not self._blocks.empty():
            self._drain()
        if self.error is not None:
            raise self.error
        for feed in self.feeds.values():
            feed.go_live()
        await self.server.start(*self.ws_addr)
        self.ws_addr = (self.ws_addr[0], self.server.port)
        self._status_task = asyncio.create_task(self._status_loop())
        self._write_status("ready")

    async def wait(self) -> None:
        """Until a stream fails (raises) or the task is cancelled."""
        follower_done = asyncio.ensure_future(asyncio.to_thread(self.follower.done.wait))
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait([follower_done, failed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
        if self.error is None:
            self.error = self.follower.error or RuntimeError("stream follower stopped")
        raise self.error

    async def close(self) -> None:
        self._write_status("stopping")
        if self._status_task is not None:
            self._status_task.cancel()
        await self.server.close()
        await asyncio.to_thread(self.follower.stop)

    def _write_status(self, state: str) -> None:
        counters = dict(self.server.counters, records=self.records)
        self.status.write(state, streams=self.follower.status(), counters=counters,
                          error=None if self.error is None else str(self.error),
                          extra={"ws": f"{self.ws_addr[0]}:{self.ws_addr[1]}",
                                 "cmp": f"{self.follower.local[0]}:{self.follower.local[1]}"})

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._write_status("failed" if self.error else "ready")

    def ready_line(self) -> dict:
        return {"process": self.proc.name, "ws": f"ws://{self.ws_addr[0]}:{self.ws_addr[1]}",
                "cmp": f"{self.follower.local[0]}:{self.follower.local[1]}",
                "streams": {str(sid): s.tip for sid, s in self.follower.streams.items()},
                "time": time.time()}


def _backend(cfg: Config) -> str | None:
    b = cfg.network.cmp_backend
    return None if b == "auto" else b
