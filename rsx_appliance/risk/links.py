"""The shard's output links (specs/risk.md 15.1): streams it sequences itself.

A :class:`Link` numbers the records it frames from 1 (seq, stream id, CRC
resealed by ``rsx_risk_link_frame``) and keeps what the CMP sender has not
taken yet: the sender's hot ring is the link's only memory, and a full ring
stalls the link (``pending``), never drops. :class:`Router` sends what the
shard forwards to the MEs to each symbol's link in one C pass
(``rsx_risk_route``). :func:`frame` numbers records in place for the journal.
"""

from __future__ import annotations

import errno
import time

from .._native import ffi, lib
from ..errors import check, error_for

__all__ = ["Link", "Router", "frame"]

_STAGE = 1 << 20


def frame(buf: bytearray, stream_id: int, first_seq: int) -> int:
    """Set seq (first_seq, first_seq + 1, ...) and stream_id of back-to-back records in place; returns the count."""
    link = ffi.new("struct rsx_risk_link *")
    link.stream_id = stream_id
    link.next_seq = first_seq
    return check(lib.rsx_risk_link_frame(link, ffi.from_buffer(buf), len(buf)), "frame records")


class Link:
    """One output stream: frames records for it and hands them to its CMP sender in order.

    ``sender`` is a :class:`rsx_appliance.cmp.Sender` (or None: records only
    accumulate, for tests and benchmarks that read ``pending``).
    """

    def __init__(self, stream_id: int, sender=None) -> None:
        self.stream_id = stream_id
        self.sender = sender
        self._stage = bytearray(_STAGE)
        self.c = ffi.new("struct rsx_risk_link *")
        self.c.buf = ffi.from_buffer(self._stage)
        self.c.cap = len(self._stage)
        self.c.stream_id = stream_id
        self.c.next_seq = 1
        self.pending = bytearray()
        self.sent = 0          # records handed to the sender
        self.stalls = 0        # sends refused because the sender's ring was full
        self._used = ffi.new("size_t *")

    @property
    def next_seq(self) -> int:
        return int(self.c.next_seq)

    def push(self, records: bytes | bytearray | memoryview) -> None:
        """Frame a copy of back-to-back records for this link and queue it."""
        if not records:
            return
        start = len(self.pending)
        self.pending += records
        view = memoryview(self.pending)[start:]
        try:
            check(lib.rsx_risk_link_frame(self.c, ffi.from_buffer(view), len(view)), "frame link")
        finally:
            view.release()

    def take_staged(self) -> None:
        """Queue what the router staged for this link."""
        n = self.c.len
        if n:
            self.pending += memoryview(self._stage)[:n]
            self.c.len = 0

    def flush(self, max_records: int = 4096) -> int:
        """Hand queued records to the sender (at most max_records); returns how many it took."""
        if not self.pending or self.sender is None:
            return 0
        view = memoryview(self.pending)
        limit = len(view)
        if max_records:
            # max_records of at most RECORD_MAX bytes: cut at a record boundary below that many bytes
            limit = min(limit, _record_boundary(view, max_records))
        try:
            rc = lib.rsx_cmp_sender_send_batch(self.sender.ptr, ffi.from_buffer(view[:limit]), limit, self._used)
        finally:
            view.release()
        if rc == -errno.EAGAIN:
            self.stalls += 1
            return 0
        if rc < 0:
            raise error_for(rc, f"send on link {self.stream_id:#x}")
        used = self._used[0]
        if used:
            del self.pending[:used]
        self.sent += rc
        if rc and used < limit:
            self.stalls += 1
        return rc


def _record_boundary(view: memoryview, count: int) -> int:
    from ._recbuild import record_size

    off, n = 0, len(view)
    while off < n and count:
        off += record_size(view, off)
        count -= 1
    return off


class Router:
    """Routes records for the MEs to the link of their symbol."""

    def __init__(self, links: dict[int, Link]) -> None:
        self.links = links
        self.n = max(links, default=0) + 1
        self._table = ffi.new("struct rsx_risk_link *[]", self.n)
        for sym, link in links.items():
            self._table[sym] = link.c
        self._err = ffi.new("int *")

    def route(self, buf: bytes | bytearray | memoryview) -> None:
        """Frame every record for its symbol's link; raises for a symbol without one (nothing after it sent).
        A NEW_ORDER's ``risk_out_ts_ns`` is stamped now, as it leaves the shard (CLOCK_REALTIME, the clock of
        every cross-process stamp: specs/latency.md 3)."""
        now = time.time_ns()
        for link in self.links.values():
            link.c.out_ts_ns = now
        view = memoryview(buf)
        off = 0
        while off < len(view):
            used = lib.rsx_risk_route(ffi.from_buffer(view[off:]), len(view) - off, self._table, self.n, self._err)
            off += used
            for link in self.links.values():
                link.take_staged()
            err = self._err[0]
            if err == -errno.EAGAIN:
                continue        # a stage filled up: it was queued, go on
            if err:
                raise error_for(err, "route to the matching engines")
