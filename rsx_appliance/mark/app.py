"""The `rsx mark` process: sources -> index -> mark and funding -> journaled stream (specs/mark.md)."""

from __future__ import annotations

import asyncio
import logging
import time

from ..config import Config
from ..records import RecordType
from ..status import StatusFile
from .bbo import BboFollower
from .funding import SampleStore, due_rates, last_published
from .index import SymbolIndex
from .publisher import Publisher
from .sources import make_source

__all__ = ["MarkApp", "INDEX_SOURCE", "MARK_SOURCE"]

log = logging.getLogger("rsx_appliance.mark")
MARK_SOURCE, INDEX_SOURCE = 0, 1      # MARK_PRICE.source_id on the mark stream (specs/mark.md 4)


class MarkApp:
    """One mark instance; ``await start()``, then ``await wait()``."""

    def __init__(self, cfg: Config, instance: int = 0, *, destinations: list | None = None,
                 me_dxs: dict[int, tuple[str, int]] | None = None, clock=time.time_ns) -> None:
        self.cfg, self.mc = cfg, cfg.mark
        self.proc = cfg.process(f"mark.{instance}")
        self.clock = clock
        self.symbols = {s.name: s for s in cfg.symbols}
        self.index = {s.id: SymbolIndex(s, self.mc, cfg.risk.collateral_decimals) for s in cfg.symbols}
        self.sources = [make_source(sc, self.symbols) for sc in self.mc.effective_sources]
        if not self.mc.sources:
            log.warning("mark: no [[mark.sources]] configured: publishing SIMULATED prices (3 random walks)")
        self.wal_dir = self.proc.data_dir / "wal"
        self.publisher = Publisher(self.wal_dir, self.proc.stream_id, self.proc.cmp,
                                   cfg.cmp_consumers(self.proc.name) if destinations is None else destinations,
                                   backend=None if cfg.network.cmp_backend == "auto" else cfg.network.cmp_backend)
        self.samples = SampleStore(self.proc.data_dir / "samples.json")
        self.bbo = []
        for s in cfg.symbols:
            if s.name in cfg.engine_symbols:
                addr = (me_dxs or {}).get(s.id) or cfg.process(f"me.{s.name}").dxs
                self.bbo.append(BboFollower(addr, s.id, self.index[s.id], lookback=self.mc.bbo_lookback,
                                            name=f"{self.proc.name}"[:16]))
        self.last_funding: dict[int, int] = {}
        self.status = StatusFile(cfg.data_dir / "run" / f"{self.proc.name}.json", self.proc.name, "mark")
        self.counters = {"ticks": 0, "funding_published": 0, "marks_published": 0}
        self.dxs = None
        self._tasks: list[asyncio.Task] = []
        self._failed = asyncio.Event()
        self.error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        from ..dxs import DxsServer

        self.status.write("starting")
        now = self.clock()
        done = last_published(self.wal_dir, self.proc.stream_id)
        for sid, idx in self.index.items():
            interval = idx.spec.funding_interval_s
            self.last_funding[sid] = done.get(sid, now // 1_000_000_000 // interval - 1)
        for sid, acc in self.samples.load().items():
            if sid in self.index:
                self.index[sid].prices.acc.update(acc)
        await asyncio.to_thread(self.publisher.start)
        self.dxs = DxsServer(self.wal_dir, self.proc.stream_id, host=self.proc.dxs[0], port=self.proc.dxs[1])
        await self.dxs.start()
        self._publish_funding(now)          # intervals that ended while we were down
        loop_tasks = [s.run(self._on_tick) for s in self.sources] + [f.run() for f in self.bbo]
        self._tasks = [asyncio.create_task(self._guard(t)) for t in loop_tasks]
        self._tasks.append(asyncio.create_task(self._sweep()))
        self._tasks.append(asyncio.create_task(self._status_loop()))
        self._write_status("ready")

    async def _guard(self, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:          # a plugin bug must not take the index down silently
            log.exception("mark: a task failed: %s", exc)
            self.error = exc
            self._failed.set()

    async def wait(self) -> None:
        await self._failed.wait()
        raise self.error

    async def close(self) -> None:
        self._write_status("stopping")
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.publisher.stop)
        if self.dxs is not None:
            await self.dxs.close()

    # -- prices -----------------------------------------------------------------

    def _on_tick(self, source_id: int, symbol: str, price: int, venue_ts_ns: int) -> None:
        now = self.clock()
        idx = self.index[self.symbols[symbol].id]
        idx.on_tick(source_id, price, now)
        self.counters["ticks"] += 1
        self._update(idx, now)

    def _update(self, idx: SymbolIndex, now: int) -> None:
        idx.compute(now)
        if idx.sample(now):
            self.samples.save({sid: i.prices.acc for sid, i in self.index.items() if i.prices.acc})
        mark = idx.mark(now)
        if mark is None:
            return
        if mark != idx.published or now - idx.published_ns >= self.mc.publish_ms * 1_000_000:
            idx.published, idx.published_ns = mark, now
            sid = idx.spec.id
            self.publisher.publish([
                (RecordType.MARK_PRICE, {"symbol_id": sid, "source_id": MARK_SOURCE, "price": mark,
                                         "source_ts_ns": idx.index_ts}),
                (RecordType.MARK_PRICE, {"symbol_id": sid, "source_id": INDEX_SOURCE, "price": idx.index,
                                         "source_ts_ns": idx.index_ts})])
            self.counters["marks_published"] += 1

    def _publish_funding(self, now: int) -> None:
        items = []
        for sid, idx in self.index.items():
            for fields in due_rates(idx.spec, idx.prices, self.last_funding[sid], now // 1_000_000_000,
                                    self.mc.funding_interest_e8, self.mc.funding_clamp_e8):
                items.append((RecordType.FUNDING_RATE, fields))
                self.last_funding[sid] = fields["interval_id"]
                idx.prices.settled(fields["interval_id"])
                log.info("mark: %s funding interval %d: rate %d e-8", idx.spec.name, fields["interval_id"],
                         fields["rate_e8"])
        if items:
            self.publisher.publish(items)
            self.counters["funding_published"] += len(items)
            self.samples.save({sid: i.prices.acc for sid, i in self.index.items() if i.prices.acc})

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.mc.sweep_ms / 1000)
            now = self.clock()
            for idx in self.index.values():
                self._update(idx, now)
            self._publish_funding(now)
            if self.publisher.error is not None:
                self.error = self.publisher.error
                self._failed.set()

    # -- status -----------------------------------------------------------------

    def _write_status(self, state: str) -> None:
        now = self.clock()
        c = dict(self.counters, **self.publisher.counters)
        for idx in self.index.values():
            for k, v in idx.counters.items():
                c[k] = c.get(k, 0) + v
        self.status.write(state, streams={"mark": {"stream_id": self.proc.stream_id,
                                                   "seq": self.publisher.counters["seq"],
                                                   "durable_seq": self.publisher.counters["durable_seq"]}},
                          counters=c, error=None if self.error is None else str(self.error),
                          extra={"symbols": {idx.spec.name: dict(idx.to_dict(now),
                                                                 last_funding_interval=self.last_funding[sid])
                                             for sid, idx in self.index.items()},
                                 "sources": {str(s.id): {"kind": s.kind, "connected": s.connected,
                                                         **s.counters} for s in self.sources}})

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._write_status("failed" if self.error else "ready")

    def ready_line(self) -> dict:
        return {"process": self.proc.name, "stream": self.proc.stream_id,
                "dxs": f"{self.proc.dxs[0]}:{self.proc.dxs[1]}",
                "risk": [f"{h}:{p}" for h, p in self.publisher.destinations],
                "sources": [f"{s.id}:{s.kind}" for s in self.sources], "time": time.time()}
