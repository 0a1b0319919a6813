"""The risk shard process: ``rsx risk serve --shard N`` (specs/risk.md 15).

:class:`ShardRunner` is the loop: one thread over one CMP endpoint that reads
the ME streams, the gateway links and the mark streams, feeds them to a
:class:`~rsx_appliance.risk.RiskShard`, runs the sliced work (mark scans,
liquidation decisions), and sends what the shard released on its links. It
owns no socket of its own making, so tests and the cascade benchmark drive it
on endpoints they open. :func:`serve` is the process: configuration,
placement, recovery, the endpoint, the journal's DXS server, signals and the
status file.

A journaled stream (an ME's, a mark's) that loses records NAKs them; when NAKs
cannot fill a gap the receiver needs replay, and the runner replays it from the
producer's DXS server (:class:`DxsReplay`) before it goes on: a fill is never
skipped. Links (requests from gateways, everything the shard sends) are CMP
link streams (specs/cmp.md 4.6).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._native import ffi, lib
from ..cmp import LINK_HEARTBEAT_IDLE_US, RECORD_MAX, Batch, Endpoint, State
from ..codes import ErrorCode
from ..config import Config, streams
from ..errors import NeedsReplay, check
from ..records import RecordType
from ._core import NO_ORIGIN
from ._recbuild import split
from .links import Link, Router
from .shard import Outputs, RiskShard

__all__ = ["Feed", "MeWire", "GatewayWire", "Wiring", "wiring_from_config", "DxsReplay", "ShardRunner",
           "BackgroundWriter", "serve", "demo_request_id"]

log = logging.getLogger("rsx.risk")

_MARK, _RATE = int(RecordType.MARK_PRICE), int(RecordType.FUNDING_RATE)
IDLE_HEARD_NS = 100_000_000      # an ME heard within this is alive (specs/risk.md 3.5)
_READ = 512                      # records read from one receiver per iteration (512 orders: about 0.15-0.7 ms)
_TICK_NS = 10_000_000            # time-driven work (rounds due, reconciliation, marks, idle cuts) every 10 ms


@dataclass(frozen=True)
class Feed:
    """A journaled stream the shard consumes: its id, its producer's DXS server, a name for logs."""

    stream_id: int
    dxs: tuple[str, int] | None
    name: str


@dataclass(frozen=True)
class MeWire:
    """One matching engine: its journaled stream, and the link the shard sends it requests on."""

    symbol_id: int
    feed: Feed
    link_stream: int
    address: tuple[str, int]


@dataclass(frozen=True)
class GatewayWire:
    """One gateway: the link its requests arrive on, the link the shard answers it on."""

    index: int
    rx_stream: int
    tx_stream: int
    address: tuple[str, int]


@dataclass(frozen=True)
class Wiring:
    """Everything the shard process connects to (specs/risk.md 15.1)."""

    shard: int
    name: str
    local: tuple[str, int]
    dxs: tuple[str, int] | None
    mes: tuple[MeWire, ...] = ()
    marks: tuple[Feed, ...] = ()
    gateways: tuple[GatewayWire, ...] = ()


def wiring_from_config(cfg: Config, shard: int) -> Wiring:
    """The shard's streams, links and addresses as the configuration derives them (specs/config.md 5)."""
    me = cfg.process(f"risk.{shard}")
    mes = tuple(MeWire(p.symbol_id, Feed(p.symbol_id, p.dxs, p.name), streams.risk_to_me(shard, p.symbol_id), p.cmp)
                for p in cfg.role("me"))
    marks = tuple(Feed(p.stream_id, p.dxs, p.name) for p in cfg.role("mark"))
    gws = tuple(GatewayWire(p.index, streams.gateway_to_risk(p.index, shard), streams.risk_to_gateway(shard, p.index),
                            p.cmp) for p in cfg.role("gateway"))
    return Wiring(shard, me.name, me.cmp, me.dxs, mes, marks, gws)


def demo_request_id(user_id: int) -> bytes:
    """The request id of a configured demo deposit: applied once, found applied after a restart."""
    return b"rsx-demo-dep" + user_id.to_bytes(4, "big")


class DxsReplay:
    """A blocking replay of one journaled stream from its DXS server, from ``from_seq`` until CAUGHT_UP.

    The asyncio :class:`~rsx_appliance.dxs.DxsConsumer` runs on a private event loop; iterating yields
    the records as bytes (back to back, contiguous, CRC-checked). It waits, logging, while the server
    is down; ``stop()`` (a signal) makes it end early, and so does ``give_up_s`` seconds without a
    first answer (``gave_up`` is then set). A REPLAY_REJECT raises :class:`~rsx_appliance.dxs.DxsRejected`.
    """

    def __init__(self, address: tuple[str, int], stream_id: int, from_seq: int, name: str = "",
                 give_up_s: float | None = None) -> None:
        self.address, self.stream_id, self.from_seq, self.name = address, stream_id, from_seq, name
        self.give_up_s = give_up_s
        self.stopped = self.gave_up = False

    def stop(self) -> None:
        self.stopped = True

    def __iter__(self) -> Iterator[bytes]:
        from ..dxs import DxsConsumer

        loop = asyncio.new_event_loop()
        consumer = DxsConsumer(self.address, self.stream_id, from_seq=self.from_seq, name=self.name)
        it = consumer.__aiter__()
        give_up = None if self.give_up_s is None else time.monotonic() + self.give_up_s
        try:
            while not self.stopped:
                try:
                    batch = loop.run_until_complete(asyncio.wait_for(it.__anext__(), 0.5))
                except asyncio.TimeoutError:
                    if give_up is not None and time.monotonic() > give_up:
                        self.gave_up = True
                        return
                    continue            # the server is quiet or down: look at the stop flag, wait on
                give_up = None
                if len(batch):
                    yield bytes(batch.raw)
                if batch.caught_up:
                    return
        finally:
            loop.run_until_complete(consumer.close())
            loop.close()


class BackgroundWriter:
    """One thread for the slow writes the loop must not wait for (status files, snapshots)."""

    def __init__(self) -> None:
        self._q: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._t = threading.Thread(target=self._run, name="risk-writer", daemon=True)
        self._t.start()
        self.errors: list[str] = []

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            try:
                job()
            except Exception as exc:    # a failed status or snapshot write is reported, never fatal
                self.errors.append(str(exc))
                log.error("risk: background write failed: %s", exc)

    def submit(self, job: Callable[[], None]) -> None:
        self._q.put(job)

    def close(self) -> None:
        self._q.put(None)
        self._t.join()


class _Reader:
    """Reads a receiver into one buffer allocated once (an empty read costs a C call, nothing more)."""

    def __init__(self, rx) -> None:
        self.rx = rx
        self.rows = np.empty((_READ, RECORD_MAX), dtype=np.uint8)
        self._p = ffi.from_buffer(self.rows)

    def read(self) -> Batch | None:
        """The records deliverable now (a view of the buffer, valid until the next read), or None."""
        rc = lib.rsx_cmp_receiver_read(self.rx.ptr, self._p, RECORD_MAX, _READ)
        if rc == ErrorCode.REPLAY:
            exc = NeedsReplay(rc, f"stream {self.rx.stream_id}")
            exc.info = self.rx.info
            raise exc
        return Batch(self.rows[:check(rc, "receive")]) if rc else None


@dataclass
class _In:
    """A receiver and what the runner knows about it."""

    rx: Any
    feed: Feed | None = None
    symbol_id: int | None = None
    gateway: int | None = None
    replays: int = 0
    full: bool = False           # the last read took as many records as it could: read again
    reader: _Reader | None = None

    def __post_init__(self) -> None:
        self.reader = _Reader(self.rx)


@dataclass
class _Timers:
    tick_ns: int = 0
    push_ns: int = 0
    status_ns: int = 0
    snapshot_ns: int = 0
    longest_ns: int = 0          # the longest iteration (work time) since start
    gap_ns: int = 0              # the longest stretch between two looks at the inputs
    last_input_ns: int = 0
    work_ns: int = 0
    slice_cpu_ns: int = 0        # the longest scan + liquidation slice of one iteration, thread CPU time


class ShardRunner:
    """The shard's loop over one endpoint (specs/risk.md 15.3). See the module doc."""

    def __init__(self, shard: RiskShard, ep: Endpoint, wiring: Wiring, *, wait: str = "block",
                 push_ms: int = 100, liq_slice_us: int = 400, send_slice: int = 128,
                 snapshot_dir: str | None = None, snapshot_s: float = 60.0,
                 status: Callable[..., None] | None = None, writer: BackgroundWriter | None = None) -> None:
        if wait not in ("spin", "backoff", "block"):
            raise ValueError(f"wait must be spin, backoff or block, not {wait!r}")
        self.shard, self.ep, self.wiring, self.wait = shard, ep, wiring, wait
        self.push_ns = push_ms * 1_000_000
        self.liq_slice_ns = liq_slice_us * 1000
        self.send_slice = send_slice
        self.snapshot_dir = snapshot_dir
        self.snapshot_ns = int(snapshot_s * 1e9)
        self.status = status
        self.writer = writer
        self.state = "starting"
        self.error: str | None = None
        self.t = _Timers()
        self.stats = {"iterations": 0, "me_records": 0, "requests": 0, "mark_records": 0, "funding_records": 0,
                      "pushed": 0, "gap_replays": 0, "snapshots": 0, "unknown_link": 0}
        tips = shard.tips()
        # journaled streams: NAK retries spread over ~32 ms before a DXS replay (a descheduled loop must not
        # send a stream to replay), a window of 64k records
        self.me_in = [_In(ep.receiver(w.feed.stream_id, window=1 << 16, start_seq=tips.get(w.symbol_id, 0) + 1,
                                      nak_max_retries=32), feed=w.feed, symbol_id=w.symbol_id) for w in wiring.mes]
        self.mark_in = [_In(ep.receiver(f.stream_id, window=1 << 14, start_seq=shard.mark_tips.get(f.stream_id, 0) + 1,
                                        nak_max_retries=32), feed=f) for f in wiring.marks]
        # gateway links: the same ~32 ms of NAK retries before a hole is given up as a link loss
        self.gw_in = [_In(ep.receiver(g.rx_stream, window=1 << 14, link=True, nak_max_retries=32), gateway=g.index)
                      for g in wiring.gateways]
        self.me_links = {w.symbol_id: Link(w.link_stream, ep.sender(w.link_stream, [w.address], ring_size=1 << 16,
                                                                  heartbeat_idle_us=LINK_HEARTBEAT_IDLE_US))
                         for w in wiring.mes}
        self.gw_links = {g.index: Link(g.tx_stream, ep.sender(g.tx_stream, [g.address], ring_size=1 << 16,
                                                           heartbeat_idle_us=LINK_HEARTBEAT_IDLE_US))
                         for g in wiring.gateways}
        self.router = Router(self.me_links)

    # ------------------------------------------------------------------ one iteration

    def step(self, timeout: float = 0.0) -> bool:
        """Poll, then one round of every input and every slice of work; True if anything was done."""
        got = self.ep.poll(timeout)
        t0 = time.monotonic_ns()
        if self.t.last_input_ns:
            self.t.gap_ns = max(self.t.gap_ns, t0 - self.t.last_input_ns)
        self.t.last_input_ns = t0
        now = time.time_ns()
        s = self.shard
        # a receiver is read when datagrams arrived, or when its last read was full (more may be held)
        fresh = got > 0
        work = self._read_mes(fresh) + self._read_gateways(now, fresh) + self._read_marks(now, fresh)
        # the sliced work shares one budget per iteration: a scan slice, then decisions until the deadline
        # the sliced work shares one budget per iteration, counted from the iteration's start: a scan slice,
        # then decisions until the deadline (at least a quarter of it when no scan ran; after a scan only if
        # a quarter is left, so one iteration never does a scan slice and a full decision slice)
        if s.scan_pending or s.queued:
            c0 = time.thread_time_ns()
            deadline = t0 + self.liq_slice_ns
            quarter = self.liq_slice_ns // 4
            scanned = bool(s.scan_pending)
            if scanned:
                s.scan_step()
                work += 1
            if s.queued and (not scanned or time.monotonic_ns() + quarter <= deadline):
                s.liquidate(max(deadline, time.monotonic_ns() + quarter))
                work += 1
            self.t.slice_cpu_ns = max(self.t.slice_cpu_ns, time.thread_time_ns() - c0)
        if now - self.t.tick_ns >= _TICK_NS:
            self.t.tick_ns = now
            self.dispatch(s.tick(now, me_idle=self._idle_mes()))
            self._snapshot_if_due(now)
        self.dispatch(s.release())
        if self.push_ns and now - self.t.push_ns >= self.push_ns:
            self.t.push_ns = now
            pushes = s.take_pushes()
            if pushes:
                self.stats["pushed"] += len(pushes)
                for link in self.gw_links.values():
                    link.push(pushes)
        # the MEs' links first (forwarded orders, liquidation orders); while one still holds records,
        # the gateways' links send half a slice: what closes risk leaves before the notices about it
        me_behind = False
        for link in self.me_links.values():
            if link.pending:
                work += 1 if link.flush(self.send_slice) else 0
                me_behind = me_behind or bool(link.pending)
        gw_slice = self.send_slice // 2 if me_behind else self.send_slice
        for link in self.gw_links.values():
            if link.pending:
                work += 1 if link.flush(gw_slice) else 0
        if self.status and now - self.t.status_ns >= 1_000_000_000:
            self.t.status_ns = now
            self.status(**self.status_fields())
        dt = time.monotonic_ns() - t0
        self.t.work_ns += dt
        self.t.longest_ns = max(self.t.longest_ns, dt)
        self.stats["iterations"] += 1
        return work > 0

    def busy(self) -> bool:
        """Work is waiting that must not wait for a datagram (sliced work, outputs, unsent records)."""
        s = self.shard
        return bool(s.queued or s.outbox_pending or s.scan_pending or
                    any(link.pending for link in (*self.me_links.values(), *self.gw_links.values())))

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set, waiting as the wait mode says (specs/risk.md 15.3)."""
        self.state = "ready"
        last_work = time.monotonic_ns()
        while not stop.is_set():
            if self.wait == "spin" or self.busy():
                timeout = 0.0
            elif self.wait == "backoff" and time.monotonic_ns() - last_work < 50_000:
                timeout = 0.0
            else:
                timeout = 0.05 if not self.shard.outbox_pending else 0.001
            if self.step(timeout):
                last_work = time.monotonic_ns()

    # ------------------------------------------------------------------ inputs

    def _read_mes(self, fresh: bool) -> int:
        n = 0
        for inp in self.me_in:
            batch = self._read(inp, fresh)
            if batch is not None and len(batch):
                self.shard.on_me(batch.raw.reshape(-1), stride=RECORD_MAX)
                n += len(batch)
        self.stats["me_records"] += n
        return n

    def _read(self, inp: _In, fresh: bool = True):
        if not fresh and not inp.full:
            return None
        try:
            batch = inp.reader.read()
        except NeedsReplay:
            self.replay_gap(inp)
            batch = inp.reader.read()
        inp.full = batch is not None and len(batch) == _READ
        return batch

    def replay_gap(self, inp: _In) -> None:
        """A journaled stream NAKs could not repair: replay it from its producer's DXS server (never skip)."""
        rx, feed = inp.rx, inp.feed
        info = rx.info
        log.warning("risk: %s stream %d needs replay from seq %d (gap %d..%d): replaying over DXS",
                    feed.name, feed.stream_id, info.expected, info.gap_start, info.gap_end)
        if feed.dxs is None:
            raise NeedsReplay(-5104, f"{feed.name}: a gap and no DXS server to replay it from")
        self.stats["gap_replays"] += 1
        inp.replays += 1
        replay = DxsReplay(feed.dxs, feed.stream_id, info.expected, name=self.wiring.name)
        for buf in replay:
            for rec in split(buf):
                while True:
                    try:
                        closed = rx.replay(rec)
                        break
                    except BlockingIOError:     # the window is full of unread records: apply them first
                        self._apply_feed(inp, inp.reader.read())
                if closed:
                    replay.stop()
                    break
            if replay.stopped:
                break

    def _apply_feed(self, inp: _In, batch) -> None:
        if batch is None:
            return
        if inp.symbol_id is not None:
            self.shard.on_me(batch.raw.reshape(-1), stride=RECORD_MAX)
        else:
            self._apply_marks(inp, batch, time.time_ns())

    def _read_gateways(self, now: int, fresh: bool) -> int:
        n = 0
        for inp in self.gw_in:
            batch = self._read(inp, fresh)
            if batch is None or not len(batch):
                continue
            n += len(batch)
            out = self.shard.submit(batch.raw.reshape(-1), now, stride=RECORD_MAX, origin=inp.gateway)
            self.dispatch(out, asking=inp.gateway)
        self.stats["requests"] += n
        return n

    def _read_marks(self, now: int, fresh: bool) -> int:
        n = 0
        for inp in self.mark_in:
            batch = self._read(inp, fresh)
            if batch is not None and len(batch):
                self._apply_marks(inp, batch, now)
                n += len(batch)
        return n

    def _apply_marks(self, inp: _In, batch, now: int) -> None:
        """MARK_PRICE and FUNDING_RATE from a mark stream; anything else on it is counted and dropped."""
        s = self.shard
        for rtype, fn, key in ((_MARK, s.on_mark, "mark_records"), (_RATE, s.on_funding_rate, "funding_records")):
            rows = batch.raw[batch.type == rtype]
            if len(rows):
                size = 16 + int(rows[0][4]) + (int(rows[0][5]) << 8)
                try:
                    self.dispatch(fn(rows[:, :size].tobytes(), now))
                except Exception as exc:     # a bad mark record changes nothing: counted, logged
                    from ..errors import Rejected
                    if not isinstance(exc, Rejected):
                        raise
                    log.warning("risk: %s: records refused: %s", inp.feed.name, exc)
                self.stats[key] += len(rows)
        known = (batch.type == _MARK) | (batch.type == _RATE)
        self.stats["unknown_link"] += int((~known).sum())
        s.mark_tips[inp.feed.stream_id] = int(batch.seq[-1])

    def _idle_mes(self) -> list[int]:
        """ME streams caught up and heard from recently: their clock is ours (specs/risk.md 3.5)."""
        mono = time.monotonic_ns()
        out = []
        for inp in self.me_in:
            i = inp.rx.info
            if i.state == State.LIVE and i.delivered == i.highest and i.last_heard_ns and \
                    mono - i.last_heard_ns < IDLE_HEARD_NS:
                out.append(inp.symbol_id)
        return out

    # ------------------------------------------------------------------ outputs

    def dispatch(self, out: Outputs, asking: int | None = None) -> None:
        """Send what the shard produced: to the MEs by symbol, answers to the asking gateway, the rest to
        the gateways they are for."""
        if out.to_me:
            self.router.route(out.to_me)
        if out.to_gateway and asking is not None and asking in self.gw_links:
            self.gw_links[asking].push(out.to_gateway)
        for g, buf in out.to_origin.items():
            if g in self.gw_links:
                self.gw_links[g].push(buf)
        if out.to_all:
            for link in self.gw_links.values():
                link.push(out.to_all)

    def _snapshot_if_due(self, now: int) -> None:
        s = self.shard
        if not self.snapshot_dir or now - self.t.snapshot_ns < self.snapshot_ns:
            return
        if s.journal.durable_seq < s.journal_seq:
            return          # only durable state is snapshotted: next tick
        from .snapshot import encode_snapshot, write_bytes

        self.t.snapshot_ns = now
        body, seq, keep, directory = encode_snapshot(s), s.journal_seq, s.snapshot_keep, self.snapshot_dir
        s.last_snapshot = s.clock
        self.stats["snapshots"] += 1
        job = lambda: write_bytes(body, directory, seq, keep)    # noqa: E731
        if self.writer:
            self.writer.submit(job)
        else:
            job()

    def flush(self, timeout: float = 1.0) -> None:
        """Make the journal durable and hand everything released to the kernel (a clean stop)."""
        s = self.shard
        s.journal.sync()
        self.dispatch(s.release())
        deadline = time.monotonic() + timeout
        links = (*self.me_links.values(), *self.gw_links.values())
        while any(link.pending for link in links) and time.monotonic() < deadline:
            for link in links:
                link.flush(0)
            self.ep.poll(0.001)

    # ------------------------------------------------------------------ status

    def status_fields(self) -> dict[str, Any]:
        """The status file's fields for StatusFile.write (specs/config.md, status files; specs/risk.md 15.5)."""
        s = self.shard
        j = s.journal
        st: dict[str, Any] = {}
        st[streams.describe(s.stream_id)] = {"stream_id": s.stream_id, "seq": j.last_seq,
                                             "durable_seq": j.durable_seq}
        for inp in (*self.me_in, *self.mark_in):
            i = inp.rx.info
            st[inp.feed.name] = {"stream_id": inp.feed.stream_id, "applied_seq": i.delivered,
                                 "lag": max(0, i.highest - i.delivered), "state": State(i.state).name.lower(),
                                 "replays": inp.replays}
        for inp in self.gw_in:
            rs = inp.rx.stats
            st[streams.describe(inp.rx.stream_id)] = {"stream_id": inp.rx.stream_id, "received": rs["received"],
                                                      "link_losses": rs["link_losses"], "resyncs": rs["resyncs"]}
        for link in (*self.me_links.values(), *self.gw_links.values()):
            st[streams.describe(link.stream_id)] = {"stream_id": link.stream_id, "seq": link.next_seq - 1,
                                                     "queued_bytes": len(link.pending), "stalls": link.stalls}
        counters = dict(s.counters())
        counters.update(self.stats)
        counters.update(longest_iteration_us=self.t.longest_ns // 1000, longest_input_gap_us=self.t.gap_ns // 1000,
                        longest_slice_cpu_us=self.t.slice_cpu_ns // 1000, busy_ms=self.t.work_ns // 1_000_000)
        return {"state": self.state, "streams": st, "counters": counters, "error": self.error}


# ---------------------------------------------------------------------- the process


class _DxsThread:
    """The journal's DXS server (store, recorder) on an event loop of its own."""

    def __init__(self, wal_dir: Path, stream_id: int, address: tuple[str, int]) -> None:
        from ..dxs import DxsServer

        self.loop = asyncio.new_event_loop()
        self.server = DxsServer(wal_dir, stream_id, host=address[0], port=address[1])
        ready = threading.Event()
        self.error: BaseException | None = None

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self.server.start())
            except BaseException as exc:
                self.error = exc
                ready.set()
                return
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="risk-dxs", daemon=True)
        self.thread.start()
        ready.wait()
        if self.error:
            raise self.error

    def close(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self.server.close(), self.loop)
        try:
            fut.result(5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def _status_writer(path: Path, name: str, writer: BackgroundWriter) -> Callable[..., None]:
    """``status(state, streams=, counters=, error=)``: the StatusFile written on the background thread."""
    from ..status import StatusFile

    sf = StatusFile(path, name, "risk")

    def write(state: str, **fields: Any) -> None:
        writer.submit(lambda: sf.write(state, **fields))
    return write


def resolve_wait(mode: str, name: str) -> tuple[str, str]:
    """(wait mode, how it was chosen): ``auto`` is spin on a core the applied tuning plan isolated."""
    if mode != "auto":
        return mode, "as configured"
    from ..tune.errors import PlacementError
    from ..tune.placement import lookup

    try:
        plan = lookup(name)
    except (PlacementError, OSError) as exc:
        return "block", f"auto: no placement ({str(exc).splitlines()[0]})"
    return ("spin", "auto: an isolated core") if plan.isolated else ("block", "auto: a shared core")


def _place(name: str) -> str:
    from ..tune.errors import PlacementError
    from ..tune.placement import place

    try:
        p = place(name)
    except (PlacementError, OSError) as exc:
        return f"unplaced ({str(exc).splitlines()[0]})"
    return f"placed on cpus {p.cpus}"


def _recover(cfg: Config, wiring: Wiring, journal, snap_dir: Path) -> RiskShard:
    """Snapshot + journal + every ME from the shard's tips over DXS (a new shard journals its parameters
    and the configuration's vshard table first)."""
    from .snapshot import list_snapshots

    rc = cfg.risk
    params = _params(cfg)
    capacity = _capacity(cfg)
    table = [v % rc.shards for v in range(4096)]
    if journal.last_seq == 0 and not list_snapshots(str(snap_dir)):
        RiskShard.create(journal, shard_id=wiring.shard, capacity=capacity,
                         collateral_decimals=rc.collateral_decimals, params=params, vshard_owner=table,
                         now_ns=time.time_ns())
    sources = {w.symbol_id: (lambda f: lambda from_seq: DxsReplay(f.dxs, f.stream_id, from_seq, wiring.name))(w.feed)
               for w in wiring.mes}
    shard = RiskShard.recover(journal, sources, snapshot_dir=str(snap_dir), shard_id=wiring.shard,
                              capacity=capacity, collateral_decimals=rc.collateral_decimals, durability="async",
                              scan_slice=rc.scan_slice)
    shard.snapshot_dir = None           # the runner snapshots, encoding in the loop, writing on a thread
    from ..errors import ConfigError

    if list(shard.core.vshard_owner) != table:
        raise ConfigError(f"{cfg.path}: risk.shards = {rc.shards} does not match the vshard table this shard "
                          f"journaled: moving users between shards is an operation, not a restart")
    if shard.params != params:
        shard.set_params(params)
    return shard


def _params(cfg: Config):
    from .params import RiskParams

    return RiskParams(snapshot_interval_ns=cfg.risk.snapshot_seconds * 1_000_000_000)


def _capacity(cfg: Config):
    from ._core import Capacity

    rc = cfg.risk
    ids = [s.id for s in cfg.symbols]
    return Capacity(max_users=rc.max_accounts, max_positions=rc.max_positions, max_orders=rc.max_orders,
                    max_symbols=max(ids) + 1, events_cap=1 << 16)


_MARK_WAIT_S = 10.0     # at start, how long a shard waits for an unreachable mark process before serving


def _catch_up_marks(shard: RiskShard, wiring: Wiring, stop: threading.Event) -> None:
    """Replay each mark stream from the shard's mark tip (old prices move nothing: the time rule; rates not
    settled yet are settled). A mark process unreachable for ``_MARK_WAIT_S`` is not waited for: the shard
    serves with the marks it has (stale symbols refuse what adds risk, specs/risk.md 5) and its mark
    receiver fills the gap from the tip once the process is back (NAKs, else a DXS replay)."""
    from ..codes import ErrorCode
    from ..dxs import DxsRejected

    for feed in wiring.marks:
        if feed.dxs is None:
            continue
        start = shard.mark_tips.get(feed.stream_id, 0) + 1
        while not stop.is_set():
            replay = DxsReplay(feed.dxs, feed.stream_id, start if start > 1 else 0, wiring.name,
                               give_up_s=_MARK_WAIT_S)
            try:
                for buf in replay:
                    if stop.is_set():
                        replay.stop()
                    _apply_mark_buffer(shard, feed, buf)
                if replay.gave_up:
                    log.warning("risk: %s: no answer from its DXS server %s:%d in %.0f s: serving with the marks "
                                "this shard has; the live stream fills the gap", feed.name, *feed.dxs, _MARK_WAIT_S)
                break
            except DxsRejected as exc:
                if exc.code != ErrorCode.GONE or not exc.first_seq:
                    raise
                log.warning("risk: %s no longer holds seq %d: replaying from its oldest, %d", feed.name, start,
                            exc.first_seq)
                start = exc.first_seq


def _apply_mark_buffer(shard: RiskShard, feed: Feed, buf: bytes) -> None:
    from ..errors import Rejected
    from ..records import decode

    now = time.time_ns()
    for rec in split(buf):
        t = decode(rec)
        try:
            if t.type == RecordType.MARK_PRICE:
                shard.on_mark(rec, now)
            elif t.type == RecordType.FUNDING_RATE:
                shard.on_funding_rate(rec, now)
        except Rejected as exc:
            log.warning("risk: %s seq %d refused: %s", feed.name, t.seq, exc)
        shard.mark_tips[feed.stream_id] = t.seq


def _demo_deposits(cfg: Config, shard: RiskShard) -> int:
    from ..errors import Rejected

    n = 0
    for acct in cfg.accounts:
        if not shard.core.owns(acct.user_id):
            continue
        try:
            shard.deposit(acct.user_id, acct.deposit, demo_request_id(acct.user_id), time.time_ns())
            n += 1
        except Rejected as exc:
            from ..codes import Reason
            if exc.reason != Reason.DUPLICATE_REQUEST:
                raise
    return n


def _backend(cfg: Config, override: str | None):
    b = override or cfg.network.cmp_backend
    return None if b == "auto" else b


def serve(config_path: str | None, shard_index: int, *, data_dir: str | None = None, wait: str | None = None,
          backend: str | None = None, ready: Callable[[dict], None] | None = None) -> int:
    """Run shard ``shard_index`` until SIGTERM (returns 0) or SIGINT (130), after an orderly stop
    (specs/risk.md 15). ``ready(line)`` gets the ready line's fields once the shard serves. A failure
    writes status `failed` and raises :class:`ShardFailed` (exit 1); a bad configuration raises
    ConfigError, a refused port OSError."""
    from ..config import load_config
    from ..errors import ConfigError, RsxError
    from ..fsutil import make_dirs
    from .errors import ShardFailed
    from .journal import WalJournal

    cfg = load_config(config_path, data_dir)
    if not 0 <= shard_index < cfg.risk.shards:
        raise ConfigError(f"{cfg.path}: there is no risk shard {shard_index} (risk.shards = {cfg.risk.shards})")
    wiring = wiring_from_config(cfg, shard_index)
    proc = cfg.process(wiring.name)
    mode, why = resolve_wait(wait or cfg.risk.wait, wiring.name)
    placed = _place(wiring.name)
    run_dir = cfg.data_dir / "run"
    make_dirs(proc.data_dir / "wal")
    make_dirs(run_dir)
    writer = BackgroundWriter()
    status = _status_writer(run_dir / f"{wiring.name}.json", wiring.name, writer)
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(signum, frame) -> None:
        signals.append(signum)
        if len(signals) > 1:
            os._exit(1)                 # a second signal: at once (recovery handles it)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    status("starting")
    shard = runner = dxs = ep = None
    try:
        journal = WalJournal(proc.data_dir / "wal", wiring.shard | 0x80000000)
        shard = _recover(cfg, wiring, journal, proc.data_dir / "snapshots")
        if not stop.is_set():
            _catch_up_marks(shard, wiring, stop)
        if not stop.is_set():
            deposits = _demo_deposits(cfg, shard)
            ep = Endpoint(_backend(cfg, backend), wiring.local, mode="busy" if mode == "spin" else "sleep",
                          rcvbuf=32 << 20, sndbuf=8 << 20)
            runner = ShardRunner(shard, ep, wiring, wait=mode, push_ms=cfg.risk.push_ms,
                                 snapshot_dir=str(proc.data_dir / "snapshots"),
                                 snapshot_s=cfg.risk.snapshot_seconds, status=status, writer=writer)
            if wiring.dxs:
                dxs = _DxsThread(proc.data_dir / "wal", shard.stream_id, wiring.dxs)
            runner.state = "ready"
            status(**runner.status_fields())
            if ready:
                ready({"process": wiring.name, "shard": wiring.shard, "journal_seq": shard.journal_seq,
                       "tips": {str(k): v for k, v in shard.tips().items()}, "users": int(shard.core.r.n_users),
                       "demo_deposits": deposits, "cmp": f"{wiring.local[0]}:{wiring.local[1]}",
                       "backend": ep.backend.name.lower(), "wait": mode, "wait_reason": why, "placement": placed})
            runner.run(stop)
            runner.state = "stopping"
            status(**runner.status_fields())
            runner.flush()
            shard.snapshot(str(proc.data_dir / "snapshots"))
    except ConfigError:
        raise
    except Exception as exc:            # the status file says failed, whatever failed
        msg = " ".join(str(exc).split()) or type(exc).__name__
        log.error("risk: %s", msg)
        status(**{**(runner.status_fields() if runner else {}), "state": "failed", "error": msg})
        if isinstance(exc, RsxError):
            raise ShardFailed(msg) from exc
        raise
    finally:
        if dxs:
            dxs.close()
        if ep:
            ep.close()
        if shard:
            shard.journal.close()
        writer.close()
    return 130 if signals and signals[0] == signal.SIGINT else 0
