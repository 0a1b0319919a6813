"""The gateway's CMP side: its link to each risk shard and every engine stream (specs/config.md 5).

One endpoint, bound to ``cfg.process("gateway.<g>").cmp``, driven by the
asyncio loop (one thread, as CMP requires):

- a **sender** per risk shard on the link ``gateway_to_risk(g, s)``; the
  gateway frames its own records (seq from 1 at start, CRC sealed once) and
  flushes what one loop iteration produced in one ``send_batch``;
- a **link receiver** per shard for ``risk_to_gateway(s, g)`` (joins the
  shard where it is, follows its restarts, counts unrecoverable holes);
- an ordinary receiver per engine stream, joined at its current tip (the
  gateway keeps no state); a gap NAKs cannot fill is replayed from the
  engine's DXS server, so no fill is lost.

The endpoint uses the ``udp`` backend whatever ``network.cmp_backend`` says:
its socket's readiness wakes the event loop (``loop.add_reader``), so an idle
gateway sleeps; the protocol on the wire is the same for every backend.
Timers (NAK retries, heartbeats) run from a light periodic poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .. import cmp
from ..config import streams
from ..errors import NeedsReplay
from .._native import ffi, lib
from ..records import HEADER_SIZE, RecordType, codec

__all__ = ["Links", "RecordBuilder"]

log = logging.getLogger("rsx.gateway")

POLL_IDLE_S = 0.05      # at most this long between two polls: the endpoint's own timers say when sooner
POLL_BUSY_S = 0.0005    # a stream recovering: NAK retries every 1 ms
HEARTBEAT_S = 0.01      # the links' first heartbeat after data (the senders' heartbeat_us)
READ_MAX = 256          # records per read: the batch array stays below malloc's mmap threshold


class RecordBuilder:
    """Frames one link stream's records: seq, ts_ns, stream_id, CRC (the gateway owns its links)."""

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.seq = 0

    def build(self, rtype: RecordType, **fields) -> bytearray:
        c = codec(rtype)
        values = list(c.defaults)
        index = c.index
        self.seq += 1
        fields["seq"] = self.seq
        fields["ts_ns"] = time.time_ns()
        fields["stream_id"] = self.stream_id
        for k, v in fields.items():
            values[index[k]] = v
        buf = bytearray(c.header)
        buf += c.struct.pack(*values)
        lib.rsx_record_seal(ffi.from_buffer(buf), len(buf))   # our own fields, already in range
        return buf


class Links:
    """The endpoint, its senders and receivers; delivers received batches to ``on_batch``.

    ``on_batch(source, batch)``: ``source`` is ("risk", shard) or ("me", symbol_id).
    """

    def __init__(self, cfg, instance: int, on_batch: Callable, *, local: tuple[str, int] | None = None,
                 risk_endpoints: dict[int, tuple[str, int]] | None = None,
                 me_streams: dict[int, tuple[str, int] | None] | None = None) -> None:
        self.cfg, self.g = cfg, instance
        self.on_batch = on_batch
        me = cfg.process(f"gateway.{instance}")
        self.local = local or me.cmp
        self.ep = cmp.Endpoint("udp", self.local, mode="sleep")
        self.builders: dict[int, RecordBuilder] = {}
        self.senders: dict[int, cmp.Sender] = {}
        self.risk_rx: dict[int, cmp.Receiver] = {}
        risk_endpoints = risk_endpoints or {s: cfg.process(f"risk.{s}").cmp for s in range(cfg.risk.shards)}
        for s, addr in risk_endpoints.items():
            sid = streams.gateway_to_risk(instance, s)
            self.builders[s] = RecordBuilder(sid)
            self.senders[s] = self.ep.sender(sid, [addr], heartbeat_idle_us=cmp.LINK_HEARTBEAT_IDLE_US)
            self.risk_rx[s] = self._receiver(streams.risk_to_gateway(s, instance), link=True)
        # engine streams: symbol id -> DXS address
        if me_streams is None:
            me_streams = {p.symbol_id: p.dxs for p in cfg.role("me")}
        self.me_rx = {sym: self._receiver(streams.me(sym), link=False) for sym in me_streams}
        self.me_dxs = dict(me_streams)
        self.replaying: dict[int, asyncio.Task] = {}
        self._out: dict[int, bytearray] = {}
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.Handle | None = None
        self._timer_due = 0.0       # loop time the timer fires (uvloop returns a plain Handle, no when(),
                                    # for delays under its 1 ms resolution)
        self._fd: int | None = None
        # stage latencies for `rsx bench gateway` (None: off; the hot path pays one attribute test)
        self.trace: dict | None = None
        self.frame_t0 = 0
        self._stamps: list = []
        self.counters = {"records_out": 0, "records_in": 0, "send_stalls": 0, "replays": 0,
                         "replayed_records": 0, "send_errors": 0}

    def _receiver(self, stream_id: int, link: bool) -> cmp.Receiver:
        return self.ep.receiver(stream_id, link=link, start_seq=0, window=8192)

    # -- lifetime --------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._fd = self.ep.fileno()    # the udp socket: readable when datagrams wait
        loop.add_reader(self._fd, self.pump)
        self._arm(POLL_IDLE_S)

    def close(self) -> None:
        if self._loop is not None and self._fd is not None:
            self._loop.remove_reader(self._fd)
        if self._timer is not None:
            self._timer.cancel()
        for t in self.replaying.values():
            t.cancel()
        self.flush()
        self.ep.close()

    # -- sending ---------------------------------------------------------

    def send(self, shard: int, rtype: RecordType, traced: bool = False, **fields) -> None:
        """Frame a record on the shard's link; it leaves at the end of this loop iteration."""
        rec = self.builders[shard].build(rtype, **fields)
        if traced and self.trace is not None:
            self._stamps.append(self.frame_t0)
        buf = self._out.get(shard)
        if buf is None:
            self._out[shard] = rec
        else:
            buf += rec
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        for shard, buf in list(self._out.items()):
            sender = self.senders[shard]
            view = memoryview(buf)
            while view.nbytes:
                try:
                    n = sender.send_batch(view)
                except BlockingIOError:
                    n = 0
                if n <= 0:
                    # every hot-ring slot pending: stall (poll lets the kernel drain), never drop
                    self.counters["send_stalls"] += 1
                    self.ep.poll(0.0005)
                    continue
                self.counters["records_out"] += n
                size = 0
                for _ in range(n):
                    size += HEADER_SIZE + int.from_bytes(view[size + 4:size + 6], "little")
                view = view[size:]
        self._out.clear()
        self._poll_soon()
        if self.trace is not None and self._stamps:
            now = time.perf_counter_ns()
            self.trace["in"].extend(now - t for t in self._stamps)
            self._stamps.clear()

    # -- receiving -------------------------------------------------------

    def pump(self) -> None:
        """Receive what arrived, run timers, hand every deliverable batch to ``on_batch``."""
        t0 = time.perf_counter_ns() if self.trace is not None else 0
        self.ep.poll(0)
        for s, rx in self.risk_rx.items():
            while True:
                batch = rx.read(READ_MAX)
                if not len(batch):
                    break
                self.counters["records_in"] += len(batch)
                self.on_batch(("risk", s), batch)
        for sym, rx in self.me_rx.items():
            while True:
                try:
                    batch = rx.read(READ_MAX)
                except NeedsReplay as exc:
                    self._replay(sym, exc.info)
                    break
                if not len(batch):
                    break
                self.counters["records_in"] += len(batch)
                self.on_batch(("me", sym), batch)
                if self.trace is not None:
                    self.trace["out"].extend([time.perf_counter_ns() - t0] * len(batch))

    def _tick(self) -> None:
        """Poll by the endpoint's next timer (a heartbeat backs off to 50 ms on an idle link, specs/cmp.md
        3.5), so an idle gateway wakes a few times a second, not 200."""
        self.pump()
        busy = any(rx.info.state is not cmp.State.LIVE for rx in self.me_rx.values())
        due = self.ep.next_due_s()
        delay = POLL_BUSY_S if busy or self._fd is None else min(POLL_IDLE_S, POLL_IDLE_S if due is None else due)
        self._arm(max(delay, POLL_BUSY_S))

    def _arm(self, delay: float) -> None:
        self._timer_due = self._loop.time() + delay
        self._timer = self._loop.call_later(delay, self._tick)

    def _poll_soon(self) -> None:
        """After sending: the link's next heartbeat is due sooner (heartbeat_us after the data)."""
        if self._timer is not None and self._timer_due > self._loop.time() + HEARTBEAT_S:
            self._timer.cancel()
            self._arm(HEARTBEAT_S)

    def _replay(self, sym: int, info) -> None:
        """A gap NAKs could not fill: replay the engine stream from DXS into the receiver."""
        if sym in self.replaying and not self.replaying[sym].done():
            return
        addr = self.me_dxs.get(sym)
        if addr is None:
            log.error("gateway: engine stream %d needs replay from %d but has no DXS server", sym,
                      info.expected)
            return
        self.counters["replays"] += 1
        log.warning("gateway: engine stream %d: gap at %d..%d, replaying from DXS %s:%d", sym,
                    info.gap_start, info.gap_end, *addr)
        self.replaying[sym] = self._loop.create_task(self._run_replay(sym, addr, info.expected))

    async def _run_replay(self, sym: int, addr, from_seq: int) -> None:
        from ..dxs import DxsConsumer

        rx = self.me_rx[sym]
        async with DxsConsumer(addr, streams.me(sym), from_seq=from_seq, name=f"gateway-{self.g}") as dxs:
            async for batch in dxs:
                raw = bytes(batch.raw)
                for e in batch.index:
                    rec = raw[int(e["offset"]):int(e["offset"]) + int(e["size"])]
                    while True:
                        try:
                            rx.replay(rec)
                            break
                        except BlockingIOError:   # window full of unread records: deliver them first
                            self.pump()
                    self.counters["replayed_records"] += 1
                if rx.info.state is cmp.State.LIVE:
                    break
        log.info("gateway: engine stream %d recovered through DXS", sym)
        self.pump()

    # -- facts -----------------------------------------------------------

    def stream_status(self) -> dict:
        out = {}
        for sym, rx in self.me_rx.items():
            i = rx.info
            out[streams.describe(streams.me(sym))] = {"stream_id": streams.me(sym), "applied_seq": i.delivered,
                                                     "lag": max(0, i.highest - i.delivered),
                                                     "state": i.state.name.lower()}
        for s, rx in self.risk_rx.items():
            i, st = rx.info, rx.stats
            sid = streams.risk_to_gateway(s, self.g)
            out[streams.describe(sid)] = {"stream_id": sid, "applied_seq": i.delivered,
                                          "link_losses": st.get("link_losses", 0),
                                          "resyncs": st.get("resyncs", 0)}
        for s, b in self.builders.items():
            out[streams.describe(b.stream_id)] = {"stream_id": b.stream_id, "seq": b.seq}
        return out
