"""The DXS replay server: one per stream, over that stream's WAL directory.

States per connection (specs/dxs.md section 2): AWAIT_REQUEST -> admission ->
REPLAY (archive, then hot WAL) -> CAUGHT_UP -> LIVE (durable tail, heartbeats).
Only durable records are sent; every byte read from disk is CRC-checked by the
C reader on the way out; a break in the WAL ends the connection with a
REPLAY_REJECT naming the first seq that cannot be delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from ..codes import ErrorCode
from ..errors import RecordError, RsxError, SeqGoneError
from ..records import RecordType, decode
from ..wal import WalBreakError, WalReader, WalSet, consumer_set
from . import protocol as P

__all__ = ["DxsServer"]

log = logging.getLogger("rsx.dxs")

IDLE_POLL_S = 0.25     # the tip poll interval of a quiet stream (specs/dxs.md 2)


class _Tip:
    """One poller per server: wakes live connections when the durable seq moves."""

    def __init__(self, wal: WalSet, poll_s: float) -> None:
        self.wal = wal
        self.poll_s = poll_s
        self.seq = wal.tip_seq()
        self._event = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.waiters = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dxs-tip-poller")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        interval = self.poll_s
        while True:
            # poll fast only while someone is live and the tip moves: each quiet poll doubles the interval up
            # to IDLE_POLL_S, the next move starts over at poll_s (a server at rest wakes 4 times a second,
            # not 1000: its live consumers, the recorder and the mark process, need no sub-ms tail)
            await asyncio.sleep(interval if self.waiters else max(interval, IDLE_POLL_S))
            seq = self.wal.tip_seq()
            if seq != self.seq:
                self.seq = seq
                interval = self.poll_s
                self.notify()
            else:
                interval = min(interval * 2, max(self.poll_s, IDLE_POLL_S))

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        """The event the next change sets: take it before reading, wait on it after."""
        return self._event

    async def wait(self, ev: asyncio.Event, timeout: float) -> None:
        self.waiters += 1
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self.waiters -= 1


class DxsServer:
    """Serve replays of one stream's WAL over TCP.

    ``wal_dir``: the stream's WAL directory (the writer may run in this
    process or another). ``archive_dir``: the recorder's archive root (its
    ``<stream_id>/`` subdirectory is used), consulted for seqs older than the
    hot WAL. ``port=0`` picks a free port (see :attr:`port` after start).
    """

    def __init__(self, wal_dir: str | os.PathLike, stream_id: int = 0, *, host: str = "127.0.0.1",
                 port: int = 0, archive_dir: str | os.PathLike | None = None,
                 poll_s: float = 0.001, heartbeat_s: float = 1.0, chunk_bytes: int = 1 << 20,
                 request_timeout_s: float = 5.0) -> None:
        self.wal_dir = Path(wal_dir)
        self.wal = WalSet(self.wal_dir, stream_id)
        self.stream_id = self.wal.stream_id or stream_id
        if not self.stream_id:
            raise ValueError(f"{self.wal_dir}: no stream found and no stream_id given")
        self.archive_dir = Path(archive_dir) if archive_dir else None
        self.host, self.port = host, port
        self.poll_s, self.heartbeat_s = poll_s, heartbeat_s
        self.chunk_bytes = chunk_bytes
        self.request_timeout_s = request_timeout_s
        self._server: asyncio.base_events.Server | None = None
        self._tip: _Tip | None = None
        self._conns: set[asyncio.Task] = set()
        self.connections = 0      # served so far (for tests and stats)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._tip = _Tip(self.wal, self.poll_s)
        self._tip.start()
        self._server = await asyncio.start_server(self._handle, self.host, self.port,
                                                  limit=1 << 16, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("dxs: serving stream %d from %s on %s:%d", self.stream_id, self.wal_dir,
                 self.host, self.port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server:
            self._server.close()
        for t in list(self._conns):
            t.cancel()
        for t in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._server:
            await self._server.wait_closed()
            self._server = None
        if self._tip:
            await self._tip.stop()
        self.wal.close()

    async def __aenter__(self) -> DxsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------------ connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._conns.add(task)
        peer = writer.get_extra_info("peername")
        self.connections += 1
        try:
            await self._serve(reader, writer, peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("dxs: %s went away", peer)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("dxs: connection %s failed", peer)
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader, peer):
        try:
            raw = await asyncio.wait_for(reader.readexactly(P.REQUEST_SIZE), self.request_timeout_s)
            rec = decode(raw)
        except asyncio.TimeoutError:
            log.warning("dxs: %s sent no request within %.1f s", peer, self.request_timeout_s)
            return None
        except RecordError as e:
            log.warning("dxs: %s: first record invalid (%s)", peer, e)
            return None
        if rec.type != RecordType.REPLAY_REQUEST:
            log.warning("dxs: %s: first record is %s, not REPLAY_REQUEST", peer, rec.type.name)
            return None
        return rec

    async def _serve(self, reader, writer, peer) -> None:
        req = await self._read_request(reader, peer)
        if req is None:
            return
        tip = self.wal.info()
        oldest, durable = tip.oldest_seq, tip.durable_seq
        try:
            name = P.consumer_name(req)
        except ValueError as e:
            # a name retention could not keep: refuse it, with the reason, before it is registered
            log.warning("dxs: %s: %s", peer, e)
            writer.write(P.reject(req.stream_id, ErrorCode.INVALID, req.from_seq, oldest, durable))
            await writer.drain()
            return
        if req.stream_id != self.stream_id:
            # echo the stream asked for: the consumer matches the answer to its request
            writer.write(P.reject(req.stream_id, ErrorCode.STREAM, req.from_seq, oldest, durable))
            await writer.drain()
            return
        from_seq = req.from_seq
        archive = None
        if from_seq != 0 and oldest and from_seq < oldest:
            archive = self._open_archive(from_seq, oldest)
            if archive is None:
                first = self._archive_oldest() or oldest
                log.warning("dxs: %s (%s) asked for seq %d; oldest servable is %d", peer,
                            name or "anonymous", from_seq, first)
                writer.write(P.reject(self.stream_id, ErrorCode.GONE, from_seq, first, durable))
                await writer.drain()
                return
        elif from_seq == 0:
            archived = self._archive_oldest()
            if archived and oldest and archived < oldest:
                from_seq = archived
                archive = self._open_archive(from_seq, oldest)
            else:
                from_seq = oldest or 1
        if from_seq > durable + 1:
            writer.write(P.reject(self.stream_id, ErrorCode.AHEAD, from_seq, oldest, durable))
            await writer.drain()
            return
        if name:
            consumer_set(self.wal_dir, name, from_seq - 1)
        log.info("dxs: %s (%s) replays stream %d from seq %d (tip %d)", peer, name or "anonymous",
                 self.stream_id, from_seq, durable)
        acks = asyncio.create_task(self._read_acks(reader, name, peer))
        try:
            await self._stream(writer, from_seq, archive, acks)
        finally:
            acks.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await acks

    # ------------------------------------------------------------ archive

    def _archive_stream_dir(self) -> Path | None:
        if not self.archive_dir:
            return None
        d = self.archive_dir / str(self.stream_id)
        return d if d.is_dir() else (self.archive_dir if self.archive_dir.is_dir() else None)

    def _archive_oldest(self) -> int:
        d = self._archive_stream_dir()
        if d is None:
            return 0
        try:
            with WalSet(d, self.stream_id) as s:
                return s.info().oldest_seq
        except (RsxError, OSError):
            return 0

    def _open_archive(self, from_seq: int, hot_oldest: int) -> WalReader | None:
        """A reader of the archive positioned at from_seq, if the archive holds it and reaches the hot WAL."""
        d = self._archive_stream_dir()
        if d is None:
            return None
        try:
            r = WalReader(d, self.stream_id)
        except (RsxError, OSError):
            return None
        info = r.info()
        if not info.oldest_seq or from_seq < info.oldest_seq or info.durable_seq + 1 < hot_oldest:
            r.close()
            return None
        r.seek(from_seq)
        return r

    # ------------------------------------------------------------ replay + live

    async def _stream(self, writer: asyncio.StreamWriter, from_seq: int, archive: WalReader | None,
                      acks: asyncio.Task) -> None:
        last = from_seq - 1
        hot: WalReader | None = None
        caught_up_sent = False
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        try:
            while not acks.done():
                changed = self._tip.current()
                if archive is not None:
                    batch = archive.read(self.chunk_bytes)
                    if not len(batch):
                        archive.close()
                        archive = None
                        continue
                else:
                    if hot is None:
                        hot = WalReader(self.wal)
                        hot.seek(last + 1)
                    batch = hot.read(self.chunk_bytes)
                if len(batch):
                    if batch.first_seq != last + 1:
                        # archive -> hot hand-off overlap: drop what was already sent
                        keep = batch.index["seq"] > last
                        if not keep.any():
                            continue
                        start = int(batch.index["offset"][keep.argmax()])
                        if int(batch.index["seq"][keep.argmax()]) != last + 1:
                            raise WalBreakError(_gap(last, batch))
                        data = bytes(batch.raw[start:])
                    else:
                        data = batch.raw
                    writer.write(data)
                    last = batch.last_seq
                    await writer.drain()
                    idle_since = loop.time()
                    continue
                # caught up with the durable tip
                if not caught_up_sent:
                    writer.write(P.caught_up(self.stream_id, last))
                    await writer.drain()
                    caught_up_sent = True
                    idle_since = loop.time()
                if loop.time() - idle_since >= self.heartbeat_s:
                    writer.write(P.heartbeat(self.stream_id, self.wal.tip_seq()))
                    await writer.drain()
                    idle_since = loop.time()
                await self._tip.wait(changed, self.heartbeat_s)
        except WalBreakError as e:
            log.error("dxs: stream %d: %s", self.stream_id, e.brk)
            writer.write(P.reject(self.stream_id, e.brk.error, e.brk.last_seq + 1,
                                  self.wal.info().oldest_seq, self.wal.tip_seq()))
            await writer.drain()
        except SeqGoneError:
            info = self.wal.info()
            log.warning("dxs: stream %d: consumer at seq %d fell behind retention (oldest %d)",
                        self.stream_id, last + 1, info.oldest_seq)
            writer.write(P.reject(self.stream_id, ErrorCode.GONE, last + 1, info.oldest_seq,
                                  info.durable_seq))
            await writer.drain()
        finally:
            if archive is not None:
                archive.close()
            if hot is not None:
                hot.close()

    async def _read_acks(self, reader: asyncio.StreamReader, name: str, peer) -> None:
        """Consumer -> server: HEARTBEAT(highest_seq) acks; EOF ends the connection."""
        while True:
            try:
                raw = await reader.readexactly(P.CONTROL_SIZE)
                rec = decode(raw)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            except RecordError as e:
                log.warning("dxs: %s: bad record from consumer (%s); closing", peer, e)
                return
            if rec.type == RecordType.HEARTBEAT and rec.stream_id == self.stream_id:
                if name:
                    await asyncio.to_thread(consumer_set, self.wal_dir, name, rec.highest_seq)
            else:
                log.warning("dxs: %s: unexpected %s from consumer; closing", peer, rec.type.name)
                return


def _gap(last: int, batch):
    from ..wal import Break

    return Break("(archive -> wal hand-off)", 0, last, batch.first_seq, int(ErrorCode.SEQ), False)
