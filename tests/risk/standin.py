"""Stand-ins for the risk process tests: an ME, a mark stream and a gateway, on loopback.

The matching engine process is built elsewhere (specs/me.md); until it lands, :class:`StandInMe` plays
its part of specs/risk.md 11 with the real components: the C book (rsx_appliance.book.Book) produces
the records, a WalWriter journals them (fsync), a CMP sender releases durable records to the risk
shards (deep retransmits from the WAL), and a DxsServer serves replays. It runs in a thread of the
test process. :class:`StandInMark` journals MARK_PRICE and FUNDING_RATE records the same way.
:class:`Gateway` sends requests on its link and collects what the shard answers.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

from rsx_appliance.book import Book
from rsx_appliance.cmp import Endpoint
from rsx_appliance.config import streams
from rsx_appliance.dxs import DxsServer
from rsx_appliance.records import RecordType, decode, encode, iter_records
from rsx_appliance.risk.links import Link
from rsx_appliance.wal import WalReader, WalWriter

_DROP = ("seq", "ts_ns", "stream_id")


def _fields(rec) -> dict:
    return {k: v for k, v in rec.fields.items() if k not in _DROP}


class _Journaled:
    """A journaled stream: a WAL, a CMP sender of durable records, a DXS server, all on one thread."""

    def __init__(self, directory: Path, stream_id: int, cmp_addr, dxs_addr, destinations) -> None:
        self.dir = Path(directory) / "wal"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stream_id = stream_id
        self.wal = WalWriter(self.dir, stream_id, retain_s=None, prealloc=False)
        self.sent = self.wal.durable_seq      # a restart re-sends nothing: receivers NAK what they miss
        self.ep = Endpoint("udp", cmp_addr, mode="sleep")
        self.reader = WalReader(self.dir, stream_id)
        self.sender = self.ep.sender(stream_id, destinations, ring_size=1 << 15, fetch=self.reader)
        self.dxs_addr = dxs_addr
        self._loop = asyncio.new_event_loop()
        self._dxs = None
        self._started = threading.Event()
        self._dxs_thread = threading.Thread(target=self._serve_dxs, daemon=True)
        self._dxs_thread.start()
        self._started.wait(5)

    def _serve_dxs(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._dxs = DxsServer(self.dir, self.stream_id, host=self.dxs_addr[0], port=self.dxs_addr[1],
                              heartbeat_s=0.2)
        self._loop.run_until_complete(self._dxs.start())
        self._started.set()
        self._loop.run_forever()

    def append(self, rtype, **fields) -> int:
        return self.wal.append(rtype, **fields)

    def release(self) -> None:
        """Send every durable record not sent yet (the release step of specs/me.md 2)."""
        durable = self.wal.durable_seq
        if durable <= self.sent:
            return
        with WalReader(self.dir, self.stream_id) as r:
            r.seek(self.sent + 1)
            for batch in r:
                n = self.sender.send_batch(batch.raw) if len(batch) else 0
                self.sent += n
                if n < len(batch) or self.sent >= durable:
                    break

    def close(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._dxs.close(), self._loop)
        fut.result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._dxs_thread.join(5)
        self.ep.close()
        self.reader.close()
        self.wal.close()


class StandInMe(_Journaled):
    """One symbol's ME: requests from the risk shards' links, the C book, the journaled stream."""

    def __init__(self, cfg, symbol: str, shards: int = 1, destinations=None, directory: Path | None = None) -> None:
        spec = cfg.symbol(symbol)
        proc = cfg.process(f"me.{symbol}")
        dests = destinations or [cfg.process(f"risk.{s}").cmp for s in range(shards)]
        super().__init__(directory or proc.data_dir, spec.id, proc.cmp, proc.dxs, dests)
        self.spec = spec
        self.links = [self.ep.receiver(streams.risk_to_me(s, spec.id), link=True) for s in range(shards)]
        self.book = Book(spec.numbers, capacity=1 << 16, ref_price=spec.reference_price or spec.numbers.tick_size,
                         max_users=1 << 14, hugepages="never")
        self.requests = 0
        self.fills = 0
        if self.wal.next_seq == 1:
            self.append(RecordType.CONFIG_APPLIED, **spec.numbers.record_fields(),
                        funding_interval_s=spec.funding_interval_s, max_funding_rate_bps=spec.max_funding_rate_bps)
        else:
            self._rebuild()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"me-{symbol}", daemon=True)

    def _rebuild(self) -> None:
        """A restarted stand-in replays its requests into a fresh book (events already journaled)."""
        with WalReader(self.dir, self.stream_id) as r:
            for batch in r:
                for rec in iter_records(bytes(batch.raw)):
                    if rec.type in (RecordType.ORDER_ACCEPTED, RecordType.CANCEL_ORDER, RecordType.CANCEL_ALL,
                                    RecordType.AMEND_ORDER):
                        self.book.apply(rec)

    def start(self) -> "StandInMe":
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            self.ep.poll(0.002)
            for rx in self.links:
                batch = rx.read(256)
                for i in range(len(batch)):
                    self.handle(decode(batch.record_bytes(i)))
            self.release()

    def handle(self, rec) -> None:
        self.requests += 1
        t = rec.type
        if t == RecordType.NEW_ORDER:
            self.append(RecordType.ORDER_ACCEPTED, **_fields(rec))
            events = self.book.apply(decode(encode(RecordType.ORDER_ACCEPTED, **_fields(rec))))
        elif t in (RecordType.CANCEL_ORDER, RecordType.CANCEL_ALL, RecordType.AMEND_ORDER):
            self.append(t, **_fields(rec))
            events = self.book.apply(rec)
        else:
            return
        for ev in events:
            self.fills += ev.type == RecordType.FILL
            self.append(ev.type, **_fields(ev))

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        super().close()
        self.book.close()


class StandInMark(_Journaled):
    """The mark process's journaled stream: MARK_PRICE and FUNDING_RATE records on demand."""

    def __init__(self, cfg, shards: int = 1, directory: Path | None = None) -> None:
        proc = cfg.process("mark.0")
        dests = [cfg.process(f"risk.{s}").cmp for s in range(shards)]
        super().__init__(directory or proc.data_dir, proc.stream_id, proc.cmp, proc.dxs, dests)

    def mark(self, symbol_id: int, price: int, source: int = 1, ts: int | None = None) -> None:
        ts = ts or time.time_ns()
        self.append(RecordType.MARK_PRICE, ts_ns=ts, symbol_id=symbol_id, source_id=source, price=price,
                    source_ts_ns=ts)

    def rate(self, symbol_id: int, interval_id: int, rate_e8: int, mark: int) -> None:
        self.append(RecordType.FUNDING_RATE, symbol_id=symbol_id, interval_id=interval_id, rate_e8=rate_e8,
                    mark_px=mark, index_px=mark)

    def flush(self, timeout: float = 5.0) -> None:
        self.wal.wait_durable(self.wal.next_seq - 1, timeout)
        deadline = time.monotonic() + timeout
        while self.sent < self.wal.durable_seq and time.monotonic() < deadline:
            self.release()
            self.ep.poll(0.001)


class Gateway:
    """Gateway g of the configuration as the risk shard sees it: requests on its link, answers back."""

    def __init__(self, cfg, g: int = 0, shard: int = 0) -> None:
        proc = cfg.process(f"gateway.{g}")
        self.ep = Endpoint("udp", proc.cmp, mode="sleep")
        self.link = Link(streams.gateway_to_risk(g, shard),
                         self.ep.sender(streams.gateway_to_risk(g, shard), [cfg.process(f"risk.{shard}").cmp],
                                        ring_size=1 << 15))
        self.rx = self.ep.receiver(streams.risk_to_gateway(shard, g), window=1 << 15, link=True)
        self.received: list = []

    def send(self, *records: bytes) -> None:
        self.link.push(b"".join(records))
        while self.link.pending:
            self.link.flush()
            self.ep.poll(0.0005)

    def pump(self, seconds: float = 0.05) -> list:
        end = time.monotonic() + seconds
        got = []
        while time.monotonic() < end:
            batch = self.rx.receive(1024, timeout=0.005)
            got += [decode(batch.record_bytes(i)) for i in range(len(batch))]
        self.received += got
        return got

    def wait_for(self, pred, timeout: float = 10.0) -> list:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.02)
            hits = [r for r in self.received if pred(r)]
            if hits:
                return hits
        raise TimeoutError("the shard did not answer in time")

    def close(self) -> None:
        self.ep.close()


def order(user: int, symbol_id: int, side: int, price: int, qty: int, *, tif: int = 0, flags: int = 0,
          oid: bytes | None = None, stp: int = 0) -> bytes:
    return encode(RecordType.NEW_ORDER, symbol_id=symbol_id, user_id=user, side=side, tif=tif, flags=flags, stp=stp,
                  order_id=oid or uuid.uuid4().bytes, price=price, qty=qty, client_id=b"t", gateway_ts_ns=time.time_ns())


def query(user: int, kind: int, symbol_id: int = 0) -> bytes:
    return encode(RecordType.QUERY, user_id=user, symbol_id=symbol_id, kind=kind, request_id=uuid.uuid4().bytes)
