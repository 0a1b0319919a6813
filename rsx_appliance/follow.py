"""Follow journaled streams exactly once: DXS catch-up, CMP live with NAK, DXS replay.

A :class:`StreamFollower` is the consumer side of DESIGN.md section 5 for a
process that needs whole streams in seq order (marketdata; any process that
consumes an ME stream the same way). One thread owns the CMP endpoint (an
endpoint is driven by one thread, specs/cmp.md 1) and, per stream:

1. replays the stream over DXS from ``from_seq`` until CAUGHT_UP;
2. opens a CMP receiver at ``tip + 1`` (what arrived before is NAKed and
   retransmitted by the sender);
3. when the receiver reports NEEDS_REPLAY, completes the gap from DXS
   (:meth:`rsx_appliance.cmp.Receiver.replay`) and goes on live.

Records reach ``on_records(stream_id, block)`` in seq order, each exactly
once, as :class:`rsx_appliance.wal.block.Block` objects (the framed bytes and
an index), on the follower's thread. The callback may block: the follower then
stalls and the CMP window absorbs, then NAKs, what arrives meanwhile (stall,
never drop). A DXS refusal (the stream cannot be served from ``from_seq``) or
an error in the callback stops the follower: :attr:`error` says why.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import cmp
from .dxs import DxsConsumer
from .errors import NeedsReplay
from .cmp import RECORD_MAX
from .records import HEADER_SIZE
from .wal.block import ENTRY_DTYPE, Block

__all__ = ["StreamFollower", "FollowedStream", "cmp_block"]

log = logging.getLogger("rsx_appliance.follow")


def cmp_block(batch: cmp.Batch) -> Block:
    """The records of a CMP batch as one back-to-back block (no copy per record in Python)."""
    n = len(batch)
    if n == 0:
        return Block(b"", np.empty(0, dtype=ENTRY_DTYPE))
    raw = batch.raw
    sizes = HEADER_SIZE + raw[:, 4].astype(np.int64) + (raw[:, 5].astype(np.int64) << 8)
    mask = np.arange(RECORD_MAX) < sizes[:, None]
    buf = raw[mask].tobytes()
    index = np.empty(n, dtype=ENTRY_DTYPE)
    index["offset"] = np.cumsum(sizes) - sizes
    index["seq"] = batch.seq
    index["type"] = batch.type
    index["size"] = sizes
    index["stream_id"] = batch.stream_id
    return Block(buf, index)


@dataclass
class FollowedStream:
    """One stream of a follower and where it stands."""

    stream_id: int
    dxs: tuple[str, int]
    from_seq: int = 1
    tip: int = 0                    # last seq delivered
    state: str = "bootstrap"        # bootstrap, live, replay, failed
    replays: int = 0                # DXS replays after NEEDS_REPLAY
    receiver: cmp.Receiver | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = {"stream_id": self.stream_id, "applied_seq": self.tip, "state": self.state,
             "replays": self.replays}
        if self.receiver is not None:
            info = self.receiver.info
            d["lag"] = max(0, info.highest - self.tip)
            d["cmp"] = self.receiver.stats
        else:
            d["lag"] = None
        return d


class StreamFollower:
    """Follow several journaled streams over one CMP endpoint (see the module docstring).

    ``streams`` maps stream id -> (DXS address, first seq wanted). ``local``
    is the CMP endpoint's address (the producers send there). ``mode`` is the
    CMP wait mode (``"sleep"``: block in the kernel; ``"busy"``: spin).
    """

    def __init__(self, local: tuple[str, int], streams: dict[int, tuple[tuple[str, int], int]],
                 on_records: Callable[[int, Block], None], *, name: str = "follower",
                 backend: str | None = None, mode: str = "sleep", window: int = 1 << 15,
                 poll_s: float = 0.05) -> None:
        self.local = local
        self.name = name
        self.streams = {sid: FollowedStream(sid, addr, max(1, int(first)))
                        for sid, (addr, first) in streams.items()}
        self._on_records = on_records
        self._backend, self._mode, self._window, self._poll_s = backend, mode, window, poll_s
        self.ready = threading.Event()      # every stream caught up and live
        self.done = threading.Event()       # the thread ended (stopped or failed)
        self.error: BaseException | None = None
        self.endpoint_stats: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-follow", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, dict]:
        return {str(sid): s.to_dict() for sid, s in self.streams.items()}

    # -- the thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported through .error; the owner decides what to do
            self.error = exc
            for s in self.streams.values():
                s.state = "failed" if s.state != "live" else s.state
            log.error("%s: stream follower stopped: %s", self.name, exc)
        finally:
            self.done.set()

    async def _main(self) -> None:
        with cmp.Endpoint(self._backend, self.local, mode=self._mode) as ep:
            for s in self.streams.values():
                await self._dxs(s, s.tip + 1 if s.tip else s.from_seq, None)
                s.receiver = ep.receiver(s.stream_id, window=self._window, start_seq=s.tip + 1)
                s.state = "live"
                log.info("%s: stream %d caught up to seq %d over DXS; live on CMP %s:%d",
                         self.name, s.stream_id, s.tip, *self.local)
            self.ready.set()
            while not self._stop.is_set():
                ep.poll(self._poll_s)
                for s in self.streams.values():
                    await self._drain(s)
                self.endpoint_stats = ep.stats

    async def _drain(self, s: FollowedStream) -> None:
        while True:
            try:
                batch = s.receiver.read(1024)
            except NeedsReplay as exc:
                info = exc.info
                log.warning("%s: stream %d needs replay from seq %d (gap %d..%d): asking DXS %s:%d",
                            self.name, s.stream_id, info.expected, info.gap_start, info.gap_end, *s.dxs)
                s.state, s.replays = "replay", s.replays + 1
                await self._dxs(s, info.expected, s.receiver)
                s.state = "live"
                continue
            if not len(batch):
                return
            self._deliver(s, cmp_block(batch))

    def _deliver(self, s: FollowedStream, block: Block) -> None:
        if not len(block):
            return
        first = block.first_seq
        if first != s.tip + 1:
            raise RuntimeError(f"stream {s.stream_id}: got seq {first} after {s.tip} (a gap or a repeat "
                               "reached the follower)")
        self._on_records(s.stream_id, block)
        s.tip = block.last_seq

    async def _dxs(self, s: FollowedStream, from_seq: int, rx: cmp.Receiver | None) -> None:
        """Replay from DXS; without a receiver until CAUGHT_UP, with one until it is live again."""
        task = asyncio.ensure_future(self._dxs_run(s, from_seq, rx))
        while not task.done():
            if self._stop.is_set():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                return
            await asyncio.wait([task], timeout=0.1)
        task.result()

    async def _dxs_run(self, s: FollowedStream, from_seq: int, rx: cmp.Receiver | None) -> None:
        async with DxsConsumer(s.dxs, s.stream_id, from_seq=from_seq, name=self.name) as dxs:
            async for batch in dxs:
                if rx is None:
                    self._deliver(s, batch)
                    if batch.caught_up:
                        return
                    continue
                raw = bytes(batch.raw)
                for e in batch.index:
                    rec = raw[int(e["offset"]):int(e["offset"]) + int(e["size"])]
                    while True:
                        try:
                            rx.replay(rec)
                            break
                        except BlockingIOError:   # window full of unread records: hand them on first
                            self._deliver(s, self._readable(rx))
                    self._deliver(s, self._readable(rx))
                if rx.info.state is not cmp.State.NEEDS_REPLAY:
                    return
                # else: DXS is at its durable tip and the gap is still open; its live tail goes on

    @staticmethod
    def _readable(rx: cmp.Receiver) -> Block:
        try:
            return cmp_block(rx.read(1024))
        except NeedsReplay:
            return Block(b"", np.empty(0, dtype=ENTRY_DTYPE))
