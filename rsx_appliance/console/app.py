"""The `rsx console` process: the listener, the collector's clock, the tuning check, the status file."""

from __future__ import annotations

import asyncio
import logging
import os

from ..config import Config
from ..status import StatusFile
from .collect import Collector
from .server import ConsoleServer

__all__ = ["ConsoleApp"]

log = logging.getLogger("rsx_appliance.console")


class ConsoleApp:
    """``await start()``, then ``await wait()`` (forever: the console has no failure of its own), ``close()``."""

    def __init__(self, cfg: Config, *, host: str | None = None, port: int | None = None) -> None:
        self.cfg = cfg
        self.collector = Collector(cfg)
        self.server = ConsoleServer(cfg, self.collector, host=host, port=port)
        self.status = StatusFile(cfg.data_dir / "run" / "console.0.json", "console.0", "console")
        self._tasks: list[asyncio.Task] = []
        self.tune_checks = 0

    async def start(self) -> None:
        self.status.write("starting")
        await self.server.start()
        self._write("ready")
        self._tasks = [asyncio.create_task(self._refresh()), asyncio.create_task(self._tune()),
                       asyncio.create_task(self._status())]

    async def wait(self) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        self._write("stopping")
        for t in self._tasks:
            t.cancel()
        await self.server.close()

    def ready_line(self) -> dict:
        base = f"http://{self.server.host}:{self.server.port}"
        return {"url": base + "/", "operate_url": base + "/operate", "listen": self.server.host,
                "port": self.server.port, "pid": os.getpid(), "data_dir": str(self.cfg.data_dir)}

    # -- background ----------------------------------------------------------------

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.console.refresh_s)
            if not self.collector.watched():
                continue
            try:
                self.collector.tick()
            except Exception:   # a bad status file must not stop the console; say so and go on
                log.exception("console: collecting the snapshot failed")

    async def _tune(self) -> None:
        while True:
            if self.collector.tuning_due():
                await asyncio.to_thread(self.collector.check_tuning)
                self.tune_checks += 1
            await asyncio.sleep(1.0)

    async def _status(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._write("ready")

    def _write(self, state: str) -> None:
        self.status.write(state, counters=dict(self.server.status_counters(), tune_checks=self.tune_checks),
                          extra={"url": f"http://{self.server.host}:{self.server.port}/"})
