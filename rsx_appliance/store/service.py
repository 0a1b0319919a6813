"""`rsx store`: every ME stream and risk journal, through DXS, into the database (specs/store.md 7).

Asyncio consumers (one :class:`~rsx_appliance.dxs.DxsConsumer` per stream)
put batches on a bounded queue; one writer thread converts a run of them
(:class:`~.ingest.Ingest`) and commits it (:class:`~.writer.Writer`), retrying
the same rows while the database is unavailable. A full queue stops the
consumers reading, which is TCP backpressure on the DXS servers: the
exchange's WALs and order path never wait for the store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Config, streams
from ..dxs import DxsConsumer, DxsRejected
from ..errors import SeqGapError, StreamError
from ..wal.block import Block
from ..status import StatusFile
from .db import Database, open_database, parse_url
from .errors import StoreStreamError, StoreUnavailableError
from .ingest import Ingest, SymbolFees, Tables
from .schema import migrate
from .writer import Writer

__all__ = ["StoreService", "StreamSource", "sources"]

log = logging.getLogger("rsx.store")


@dataclass
class StreamSource:
    stream_id: int
    address: tuple[str, int]
    applied_seq: int = 0
    applied_ts: int = 0
    lag_ms: float = 0.0
    consumer: DxsConsumer | None = None


def sources(cfg: Config) -> list[StreamSource]:
    """Every journaled stream the store keeps: each ME's, each risk shard's."""
    out = [StreamSource(p.stream_id, p.dxs) for p in cfg.role("me")]
    out += [StreamSource(streams.risk(p.index), p.dxs) for p in cfg.role("risk")]
    return out


@dataclass
class Counters:
    records: int = 0
    fills: int = 0
    transactions: int = 0
    db_errors: int = 0
    aborted_records: int = 0
    ignored_records: int = 0
    db_wait_s: float = 0.0
    lag_samples: list = field(default_factory=list)  # per-fill commit - ts_ns (ns), when asked for


class StoreService:
    """The store process. ``record_lag``: keep every fill's commit lag (benchmarks)."""

    def __init__(self, cfg: Config, *, url: str | None = None, status_path: Path | None = None,
                 record_lag: bool = False) -> None:
        self.cfg = cfg
        self.url = parse_url(url or cfg.store.url, cfg.data_dir)
        self._status = StatusFile(status_path or cfg.data_dir / "run" / "store.0.json", "store.0", "store")
        self.sources = sources(cfg)
        self.record_lag = record_lag
        self.counters = Counters()
        self.state = "starting"
        self.db_state, self.db_error = "ok", ""
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rsx-store-writer")
        # the next run of batches is converted while the writer commits the previous one
        self._convert_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rsx-store-convert")
        self._db: Database | None = None
        self._writer: Writer | None = None
        self._stop = asyncio.Event()
        self._stopping = False
        self._interrupted = False
        fallback = {}
        for s in cfg.symbols:
            n = s.numbers
            e = n.price_decimals + n.qty_decimals - cfg.risk.collateral_decimals
            fallback[s.id] = SymbolFees(0, 10 ** e if 0 <= e <= 18 else 0, n.taker_fee_bps, n.maker_fee_bps)
        self.ingest = Ingest(cfg.risk.collateral_decimals, fallback, cfg.shard_of)

    # -- database (writer thread) ----------------------------------------------------------

    def _connect(self) -> None:
        if self._db is not None:
            return
        db = open_database(self.url)
        try:
            migrate(db)
            db.lock_writer()
        except BaseException:
            db.close()
            raise
        self._db, self._writer = db, Writer(db)

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db = self._writer = None

    def _open(self) -> None:
        """Connect, migrate, lock, and load the conversion state and the tips."""
        self._connect()
        db = self._db
        configs = db.query(
            "SELECT c.symbol_id, c.seq, c.price_decimals, c.qty_decimals, c.taker_fee_bps, c.maker_fee_bps "
            "FROM symbol_configs c JOIN (SELECT symbol_id, MAX(seq) AS seq FROM symbol_configs GROUP BY symbol_id) m "
            "ON c.symbol_id = m.symbol_id AND c.seq = m.seq")
        params = db.query("SELECT stream_id, seq, symbol_id, key, value, fill_tip FROM risk_params ORDER BY seq")
        tips = db.query("SELECT stream_id, applied_seq, applied_ts_ns FROM stream_tips")
        self.ingest.load(configs, params, [(s, q) for s, q, _ in tips])
        by_id = {s: (q, ts) for s, q, ts in tips}
        for src in self.sources:
            src.applied_seq, src.applied_ts = by_id.get(src.stream_id, (0, 0))

    def _write(self, tables: Tables) -> tuple[dict, int, np.ndarray | None]:
        """Commit one converted run of batches, retrying while the database is unavailable."""
        delay = 0.1
        while True:
            try:
                self._connect()
                self._writer.write(tables)
                break
            except StoreUnavailableError as exc:
                self.counters.db_errors += 1
                self.db_state, self.db_error = "waiting", str(exc)
                log.warning("store: %s; retrying in %.1f s", exc, delay)
                self._disconnect()
                if self._stopping:
                    raise
                t0 = time.monotonic()
                time.sleep(delay)
                self.counters.db_wait_s += time.monotonic() - t0
                delay = min(delay * 2, 5.0)
        now = time.time_ns()
        self.db_state, self.db_error = "ok", ""
        c = self.counters
        c.records += tables.records
        c.fills += tables.nfills
        c.transactions += 1
        c.aborted_records += tables.aborted
        c.ignored_records += tables.ignored
        lags = None
        if self.record_lag and tables.fills:
            lags = now - np.concatenate([f["ts_ns"] for f in tables.fills])
        return tables.tips, now, lags

    # -- status -----------------------------------------------------------------------------------

    def write_status(self, error: str | None = None) -> None:
        """D/run/store.0.json (specs/store.md 7): state, per-stream tips and lag, counters, the database."""
        c = self.counters
        streams_ = {}
        for src in self.sources:
            server = src.consumer.server_tip if src.consumer else 0
            streams_[streams.describe(src.stream_id)] = {
                "stream_id": src.stream_id, "applied_seq": src.applied_seq,
                "lag": max(server - src.applied_seq, 0), "lag_ms": round(src.lag_ms, 3)}
        database = {"url": self.url.redacted, "dialect": self.url.dialect, "state": self.db_state}
        if self.db_error:
            database["error"] = self.db_error
        self._status.write(self.state, streams=streams_, error=error, extra={"database": database}, counters={
            "records": c.records, "fills": c.fills, "transactions": c.transactions, "db_errors": c.db_errors,
            "aborted_records": c.aborted_records, "ignored_records": c.ignored_records,
            "db_wait_s": round(c.db_wait_s, 3)})

    # -- the process ----------------------------------------------------------------------------------

    def stop(self, interrupted: bool = False) -> None:
        """Finish the transaction in flight and stop; ``interrupted``: by Ctrl-C (run() returns 130)."""
        self._interrupted = self._interrupted or interrupted
        self._stopping = True
        self._stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop, sig == signal.SIGINT)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        self.write_status()
        try:
            await loop.run_in_executor(self._pool, self._open)
        except BaseException as exc:
            self.state = "failed"
            self.write_status(error=str(exc))
            raise
        queue: asyncio.Queue = asyncio.Queue(maxsize=max(self.cfg.store.queue_mb, 2))
        tasks = [asyncio.create_task(self._consume(src, queue), name=f"store-{src.stream_id:#x}")
                 for src in self.sources]
        writer = asyncio.create_task(self._drain(queue), name="store-writer")
        status = asyncio.create_task(self._status_loop(), name="store-status")
        stop = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait(tasks + [writer, stop], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stop and t.exception() is not None:
                    raise t.exception()
            self.state = "stopping"
            self.write_status()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await queue.put(None)
            await writer
            return 130 if self._interrupted else 0  # specs/cli.md: Ctrl-C is 130 after an orderly stop
        finally:
            for t in tasks + [writer, status, stop]:
                t.cancel()
            await asyncio.gather(*tasks, writer, status, stop, return_exceptions=True)
            for src in self.sources:
                if src.consumer is not None:
                    await src.consumer.close()
            await loop.run_in_executor(self._pool, self._disconnect)
            self._pool.shutdown(wait=False)
            self._convert_pool.shutdown(wait=False)
            if self.state != "failed":
                self.state = "stopped"
            self.write_status()

    async def _consume(self, src: StreamSource, queue: asyncio.Queue) -> None:
        c = DxsConsumer(src.address, src.stream_id, from_seq=src.applied_seq + 1 if src.applied_seq else 0,
                        name=self.cfg.store.consumer)
        src.consumer = c
        try:
            step = self.cfg.store.batch_records
            async for batch in c:
                # a replay batch can hold more than a transaction may: split, so that a transaction closes
                # at batch_records whatever the producer sends at once
                for i in range(0, len(batch), step):
                    await queue.put((src.stream_id, batch if len(batch) <= step else
                                     Block(batch.raw, batch.index[i:i + step])))
                if batch.caught_up:
                    self._check_ready()
        except DxsRejected as exc:
            raise StoreStreamError(f"{streams.describe(src.stream_id)} at {src.address[0]}:{src.address[1]} "
                                   f"refused the replay from seq {src.applied_seq + 1}: {exc}") from exc
        except (SeqGapError, StreamError) as exc:
            raise StoreStreamError(f"{streams.describe(src.stream_id)}: {exc}") from exc

    def _check_ready(self) -> None:
        if self.state == "starting" and all(s.consumer and s.consumer.caught_up.is_set() for s in self.sources):
            self.state = "ready"
            log.info("store: every stream caught up; ready")
            self.write_status()

    async def _drain(self, queue: asyncio.Queue) -> None:
        """Take runs of batches off the queue; convert run N+1 while run N is being committed.

        A commit is reported (tips, acks) as soon as it returns, even while the queue is idle.
        """
        loop = asyncio.get_running_loop()
        max_records, max_wait = self.cfg.store.batch_records, self.cfg.store.batch_ms / 1000
        closing = False
        writing: asyncio.Future | None = None
        while not closing:
            get = asyncio.ensure_future(queue.get())
            try:
                if writing is not None:
                    await asyncio.wait({get, writing}, return_when=asyncio.FIRST_COMPLETED)
                    if writing.done():
                        self._committed(writing.result())
                        writing = None
                item = await get
            finally:
                get.cancel()
            if item is None:
                break
            items, n = [item], len(item[1])
            deadline = loop.time() + max_wait
            while n < max_records:
                try:
                    item = queue.get_nowait() if queue.qsize() else await asyncio.wait_for(
                        queue.get(), max(deadline - loop.time(), 0))
                except asyncio.TimeoutError:
                    break
                if item is None:
                    closing = True
                    break
                items.append(item)
                n += len(item[1])
            tables = await loop.run_in_executor(self._convert_pool, self.ingest.convert, items)
            if writing is not None:
                self._committed(await writing)
            writing = loop.run_in_executor(self._pool, self._write, tables)
        if writing is not None:
            self._committed(await writing)

    def _committed(self, result: tuple[dict, int, np.ndarray | None]) -> None:
        """After a commit: the new tips, the lag, and the acks to the producers."""
        tips, now, lags = result
        if lags is not None:
            self.counters.lag_samples.append(lags)
        for src in self.sources:
            if src.stream_id in tips:
                src.applied_seq, src.applied_ts = tips[src.stream_id]
                src.lag_ms = (now - src.applied_ts) / 1e6 if src.applied_ts else 0.0
                if src.consumer is not None:
                    src.consumer.ack(src.applied_seq)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for src in self.sources:
                if src.consumer is not None and src.consumer.server_tip <= src.applied_seq:
                    src.lag_ms = 0.0  # caught up and idle: nothing waits
            self.write_status()
