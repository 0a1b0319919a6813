"""The DXS consumer: replay a stream from a seq, then follow it live, reconnecting.

Usage (specs/dxs.md section 3)::

    async with DxsConsumer(("127.0.0.1", 7500), stream_id=1, from_seq=tip + 1,
                           name="risk-0") as consumer:
        async for batch in consumer:                 # rsx_appliance.wal.Batch
            fills = batch.view(RecordType.FILL)      # numpy, no per-record Python
            ...                                      # apply, store batch.last_seq
            consumer.ack(batch.last_seq)             # optional: frees producer retention

Guarantees: batches hold whole, CRC-checked records of this stream, and their
seqs are contiguous across batches *and across reconnects*: after a
disconnect the consumer asks for ``tip + 1`` (tip = the last seq it yielded),
so nothing is skipped and nothing repeats. A record that breaks continuity
raises :class:`~rsx_appliance.errors.SeqGapError` rather than being papered
over. A REPLAY_REJECT raises :class:`DxsRejected` (not retried: the same
request would be refused again). Every other failure (refused connection,
reset, EOF, silence longer than ``idle_timeout``) reconnects with exponential
backoff, forever, logging each attempt.

Persisting the tip is the caller's job, atomically with its own state;
:class:`TipFile` is a helper for callers that have no database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from pathlib import Path

from .._aio import raise_if_cancelling
from ..codes import ErrorCode
from ..errors import SeqGapError, StreamMismatchError
from ..fsutil import atomic_write
from ..records import RecordType, decode
from ..wal.block import SCAN_CONTROL, Batch, Stop, scan
from . import protocol as P
from .protocol import DxsProtocolError, DxsRejected

__all__ = ["DxsConsumer", "TipFile", "DxsRejected", "DxsProtocolError"]

log = logging.getLogger("rsx.dxs")


class TipFile:
    """A consumer tip in a file: 8 bytes little-endian, replaced atomically.

    ``load()`` returns 0 for a missing file; a file of the wrong size raises
    ValueError (never silently 0: that would replay everything, or worse,
    skip). ``store(seq)`` replaces it with :func:`~rsx_appliance.fsutil.atomic_write`
    (temp file, fsync, rename, directory fsync).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def load(self) -> int:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        if len(data) != 8:
            raise ValueError(f"{self.path}: a tip file holds 8 bytes, not {len(data)}")
        return int.from_bytes(data, "little")

    def store(self, seq: int) -> None:
        atomic_write(self.path, int(seq).to_bytes(8, "little"))


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = bytearray()

    def close(self) -> None:
        self.writer.close()


class DxsConsumer:
    """Follow one DXS stream as an async iterator of :class:`~rsx_appliance.wal.Batch`.

    ``address``: (host, port). ``from_seq``: the first seq wanted (0 = the
    oldest the server has). ``name``: registers this consumer with the
    producer's retention (up to 16 characters; '' = anonymous).
    ``idle_timeout``: reconnect after this long without a byte (the server
    heartbeats every second while idle). ``backoff``: (first, max) delay
    between reconnects in seconds. ``max_batch_bytes``: read size per batch.
    """

    def __init__(self, address: tuple[str, int], stream_id: int, *, from_seq: int = 0,
                 name: str = "", idle_timeout: float = 5.0, backoff: tuple[float, float] = (0.05, 5.0),
                 connect_timeout: float = 5.0, max_batch_bytes: int = 1 << 20,
                 ack_interval: float = 1.0) -> None:
        if from_seq < 0:
            raise ValueError("from_seq must be >= 0")
        P.request(stream_id, from_seq, name)   # validates name and ids early
        self.address = address
        self.stream_id = stream_id
        self.name = name
        self.from_seq = from_seq
        #: the last seq yielded (from_seq - 1 before the first record)
        self.tip = max(from_seq - 1, 0)
        self.idle_timeout = idle_timeout
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.max_batch_bytes = max_batch_bytes
        self.ack_interval = ack_interval
        #: True between a CAUGHT_UP and the next disconnect
        self.live = False
        #: live_seq of the last CAUGHT_UP
        self.live_seq: int | None = None
        #: set at the first CAUGHT_UP (stays set across reconnects)
        self.caught_up = asyncio.Event()
        #: the producer's durable seq as last heard (its heartbeats, CAUGHT_UP, records): for lag
        self.server_tip = 0
        self.connects = 0
        self._conn: _Conn | None = None
        self._closed = False
        self._started = False     # a record has been yielded: resume from tip + 1
        self._acked = 0
        self._ack_sent = 0
        self._ack_task: asyncio.Task | None = None

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> DxsConsumer:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._ack_task:
            self._ack_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ack_task
        await self._send_ack()
        if self._conn:
            self._conn.close()
            self._conn = None

    def ack(self, seq: int) -> None:
        """Tell the producer this consumer has stored everything up to ``seq``.

        Sent (as a HEARTBEAT) at most every ``ack_interval`` seconds; only
        named consumers affect retention.
        """
        if seq > self._acked:
            self._acked = seq

    async def _send_ack(self) -> None:
        if self._conn and self._acked > self._ack_sent:
            seq = self._acked
            with contextlib.suppress(ConnectionError, OSError):
                self._conn.writer.write(P.heartbeat(self.stream_id, seq))
                await self._conn.writer.drain()
                self._ack_sent = seq

    async def _ack_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ack_interval)
            await self._send_ack()

    # ------------------------------------------------------------ connection

    def _request_seq(self) -> int:
        return self.tip + 1 if self._started or self.from_seq else 0

    async def _connect(self) -> _Conn:
        delay = self.backoff[0]
        while True:
            if self._closed:
                raise asyncio.CancelledError
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.address, limit=self.max_batch_bytes),
                    self.connect_timeout)
                writer.write(P.request(self.stream_id, self._request_seq(), self.name))
                await writer.drain()
                self.connects += 1
                log.info("dxs consumer %s: connected to %s:%d, stream %d from seq %d",
                         self.name or "anonymous", *self.address, self.stream_id,
                         self._request_seq())
                self._ack_sent = 0
                if self._ack_task is None or self._ack_task.done():
                    self._ack_task = asyncio.create_task(self._ack_loop())
                return _Conn(reader, writer)
            except (OSError, asyncio.TimeoutError) as e:
                raise_if_cancelling()     # else a cancelled consumer retries forever (a stop that never ends)
                log.warning("dxs consumer %s: connect to %s:%d failed (%s); retry in %.2f s",
                            self.name or "anonymous", *self.address, e, delay)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, self.backoff[1])

    def _drop(self, why: str) -> None:
        if self._conn:
            log.warning("dxs consumer %s: connection lost (%s); resuming from seq %d",
                        self.name or "anonymous", why, self.tip + 1)
            self._conn.close()
            self._conn = None
        self.live = False

    # ------------------------------------------------------------ iteration

    def __aiter__(self) -> DxsConsumer:
        return self

    async def __anext__(self) -> Batch:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._conn is None:
                self._conn = await self._connect()
            batch = self._take(self._conn)
            if batch is not None:
                return batch
            try:
                chunk = await asyncio.wait_for(self._conn.reader.read(self.max_batch_bytes),
                                               self.idle_timeout)
            except asyncio.TimeoutError:
                self._drop(f"no data for {self.idle_timeout} s")
                continue
            except (ConnectionError, OSError) as e:
                self._drop(str(e) or type(e).__name__)
                continue
            if not chunk:
                self._drop("server closed the connection")
                continue
            self._conn.buf += chunk

    def _take(self, conn: _Conn) -> Batch | None:
        """The next batch from the buffered bytes, or None if more bytes are needed."""
        buf = conn.buf
        if not buf:
            return None
        res = scan(buf, next_seq=self.tip + 1 if self._started or self.from_seq else 0,
                   stream_id=self.stream_id, flags=SCAN_CONTROL)
        if res.stop == Stop.BAD:
            self._fail(res)
        n = len(res.index)
        caught_up = False
        end = res.end
        if res.stop == Stop.CONTROL and n == 0:
            rec = decode(buf, res.end)
            end = res.end + P.CONTROL_SIZE
            del buf[:end]
            if rec.type == RecordType.REPLAY_REJECT:
                self._closed = True
                raise DxsRejected(rec)
            if rec.stream_id != self.stream_id:
                raise StreamMismatchError(ErrorCode.STREAM, f"control record of stream {rec.stream_id}")
            if rec.type == RecordType.CAUGHT_UP:
                if rec.live_seq != self.tip and (self._started or self.from_seq):
                    raise DxsProtocolError(f"CAUGHT_UP live_seq {rec.live_seq} but the last seq "
                                           f"received is {self.tip}")
                self.live = True
                self.live_seq = rec.live_seq
                self.caught_up.set()
                return Batch.empty(caught_up=True)
            if rec.type == RecordType.HEARTBEAT:
                self.server_tip = max(self.server_tip, rec.highest_seq)
                return self._take(conn)
            raise DxsProtocolError(f"unexpected {rec.type.name} from the server")
        if n == 0:
            return None
        if res.stop == Stop.CONTROL:
            # the records before a CAUGHT_UP end the replay: mark this batch
            rec = decode(buf, res.end)
            if rec.type == RecordType.CAUGHT_UP:
                caught_up = True
                if rec.live_seq != int(res.index["seq"][-1]):
                    raise DxsProtocolError(f"CAUGHT_UP live_seq {rec.live_seq} but the last seq "
                                           f"received is {int(res.index['seq'][-1])}")
                end = res.end + P.CONTROL_SIZE
                self.live = True
                self.live_seq = rec.live_seq
                self.caught_up.set()
        raw = bytes(buf[:res.end])
        del buf[:end]
        self._started = True
        self.tip = int(res.index["seq"][-1])
        self.server_tip = max(self.server_tip, self.tip)
        return Batch(raw, res.index, caught_up)

    def _fail(self, res) -> None:
        if res.error == ErrorCode.SEQ:
            raise SeqGapError(ErrorCode.SEQ, f"stream {self.stream_id}: server sent seq "
                                             f"{res.found_seq} after {res.next_seq - 1}")
        if res.error == ErrorCode.STREAM:
            raise StreamMismatchError(ErrorCode.STREAM, f"server sent a record of another stream")
        raise DxsProtocolError(f"stream {self.stream_id}: invalid record after seq "
                               f"{res.next_seq - 1}: error {res.error}")
