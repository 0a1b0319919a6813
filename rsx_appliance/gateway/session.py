"""One authenticated WebSocket connection: frames in, frames out (specs/ws-api.md 2-7).

Frames are delivered here synchronously by the connection (server.py), one by
one, in order; a connection that exceeds ``frame_rate_connection`` has its
reading paused and its already-received frames processed later (never
dropped), so one flooding client cannot take the loop from the others.
Output is written to the connection's protocol at once and flushed to the
socket once per loop iteration; a client that stops reading is closed as a slow
consumer instead of growing the gateway's memory.
"""

from __future__ import annotations

import collections
import logging
import time

from websockets.frames import Opcode

from .limits import TokenBucket
from .protocol import E, FrameError, error_frame, frame, parse

__all__ = ["Session", "CLOSE_IDLE", "CLOSE_SLOW", "CLOSE_TOKEN"]

log = logging.getLogger("rsx.gateway")

CLOSE_IDLE, CLOSE_SLOW, CLOSE_TOKEN = 4001, 4002, 4003


class Session:
    def __init__(self, gw, conn, user: int, ip: str, token_exp_ns: int) -> None:
        self.gw, self.conn = gw, conn
        self.user, self.ip = user, ip
        self.token_exp_ns = token_exp_ns
        self.closed = False
        self.shard = 0              # the user's risk shard (set by Gateway.attach)
        self.queries_in_flight = 0
        now = gw.clock()
        self.last_rx = now
        self.last_hb = now
        self.bucket = TokenBucket(gw.g.frame_rate_connection, now)
        self.backlog: collections.deque = collections.deque()
        self._drain_handle = None
        self._paused = False
        self._frag: bytearray | None = None
        self._frag_binary = False
        self.frames_in = 0
        self.frames_out = 0
        self._handlers = {
            "N": gw.new_order, "C": gw.cancel, "AM": gw.amend, "CA": gw.cancel_all,
            "O": self._query_o, "P": self._query_p, "A": self._query_a,
        }

    # -- input -------------------------------------------------------------

    def on_frame(self, opcode, data: bytes, fin: bool) -> None:
        """A data frame from the connection (text, binary or continuation)."""
        if self.closed:
            return
        if opcode is Opcode.CONT:
            if self._frag is None:
                return  # the protocol layer already refuses a stray continuation
            self._frag += data
            if not fin:
                return
            data, binary, self._frag = bytes(self._frag), self._frag_binary, None
        else:
            binary = opcode is Opcode.BINARY
            if not fin:
                self._frag, self._frag_binary = bytearray(data), binary
                return
        if binary:
            self.close(1003, "binary frames are not supported: send JSON text frames")
            return
        self.last_rx = self.gw.clock()
        links = self.gw.links
        if links.trace is not None:
            links.frame_t0 = time.perf_counter_ns()
        if self.backlog or not self.bucket.take(self.last_rx):
            self.backlog.append(data)
            self._pause()
            return
        self.handle(data)

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            self.conn.transport.pause_reading()
        if self._drain_handle is None:
            self._drain_handle = self.gw.loop.call_later(max(self.bucket.wait_s(), 0.001), self._drain)

    def _drain(self) -> None:
        self._drain_handle = None
        if self.closed:
            return
        now = self.gw.clock()
        while self.backlog and self.bucket.take(now):
            self.handle(self.backlog.popleft())
        if self.backlog:
            self._drain_handle = self.gw.loop.call_later(max(self.bucket.wait_s(), 0.001), self._drain)
        elif self._paused:
            self._paused = False
            self.conn.transport.resume_reading()
        self.gw.flush()

    def handle(self, data: bytes) -> None:
        self.frames_in += 1
        kind = None
        try:
            kind, fields = parse(data)
            h = self._handlers.get(kind)
            if h is not None:
                h(self, fields)
            elif kind == "H":
                self.gw.heartbeat(self)
                self.send(frame("H", [int(time.time() * 1000), fields[0]]))
            elif kind == "DM":
                self.gw.arm_dead_man(self, fields[0])
            elif kind == "M":
                self.send(self.gw.symbols_frame())
            else:  # FL, FN
                self._history(kind, fields)
        except FrameError as exc:
            if exc.code == E.BAD_FRAME and _bad_utf8(data):
                self.send(error_frame(E.INVALID_UTF8, "invalid utf-8"))
                self.close(1007, "invalid utf-8 in a text frame")
                return
            if exc.ref is None and kind is not None:
                # every refusal of a parsed frame names what it refuses: the cid / id, else the type
                exc.ref = fields[4] if kind == "N" else fields[0] if kind in ("C", "AM") else kind
            self.send_error(exc)

    def _query_o(self, _self, f) -> None:
        self.gw.query(self, "O", f)

    def _query_p(self, _self, f) -> None:
        self.gw.query(self, "P", f)

    def _query_a(self, _self, f) -> None:
        self.gw.query(self, "A", f)

    def _history(self, kind: str, f: list) -> None:
        sym, limit, before = f
        if sym and sym not in self.gw.symbols:
            raise FrameError(E.UNKNOWN_SYMBOL, f"unknown symbol {sym}", kind)
        if self.gw.history is None:
            raise FrameError(E.UNAVAILABLE, f"{kind}: the history store is not available on this gateway", kind)
        if self.queries_in_flight >= self.gw.g.max_queries_in_flight:
            raise FrameError(E.TOO_MANY_QUERIES, f"more than {self.gw.g.max_queries_in_flight} queries in "
                             "flight", kind)
        self.queries_in_flight += 1
        self.gw.loop.create_task(self._history_answer(kind, sym, limit, before))

    async def _history_answer(self, kind: str, sym: int, limit: int, before: int) -> None:
        h = self.gw.history
        try:
            rows = await (h.fills if kind == "FL" else h.funding)(self.user, sym, limit, before)
        except Exception as exc:
            log.warning("gateway: history query %s for user %d failed: %s", kind, self.user, exc)
            self.send_error(FrameError(E.UNAVAILABLE, f"{kind}: the history store did not answer ({exc})",
                                       kind))
        else:
            self.send(frame(kind, rows))
        finally:
            self.queries_in_flight -= 1
            self.gw.flush()

    # -- output ------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        self.conn.protocol.send_text(data)
        self.frames_out += 1
        self.gw.mark_dirty(self)

    def send_error(self, exc: FrameError) -> None:
        self.send(error_frame(exc.code, exc.message, exc.ref, exc.reason))

    def flush(self) -> None:
        if self.closed:
            return
        try:
            self.conn.send_data()
        except Exception as exc:  # the transport is gone; connection_lost follows
            log.debug("gateway: write to user %d failed: %s", self.user, exc)
            return
        if self.conn.transport.get_write_buffer_size() > self.gw.g.write_limit_bytes:
            self.gw.counters["slow_consumers"] += 1
            log.warning("gateway: user %d at %s is not reading (%d bytes unsent): closing", self.user, self.ip,
                        self.conn.transport.get_write_buffer_size())
            self.closed = True
            self.conn.transport.abort()

    # -- lifetime ----------------------------------------------------------

    def tick(self, now: float, now_ns: int) -> None:
        """Once a second: idle timeout, server heartbeat, token expiry."""
        g = self.gw.g
        if now - self.last_rx > g.idle_timeout_s:
            self.close(CLOSE_IDLE, f"nothing received for {g.idle_timeout_s} s")
        elif now_ns >= self.token_exp_ns:
            self.close(CLOSE_TOKEN, "token expired: reconnect with a fresh token")
        elif now - self.last_hb >= g.heartbeat_s:
            self.last_hb = now
            self.send(frame("H", [now_ns // 1_000_000]))

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.backlog.clear()
        self.gw.loop.create_task(self.conn.close(code, reason))

    def ended(self) -> None:
        self.closed = True
        self.backlog.clear()
        if self._drain_handle is not None:
            self._drain_handle.cancel()


def _bad_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else None
        return False
    except UnicodeDecodeError:
        return True
