"""CMP from Python: endpoints, senders and receivers over the C transport.

A thin binding of ``rsx_cmp_*`` (specs/cmp.md): every hot loop (polling,
validation, NAKs, reordering, copying records out) runs in C; Python gets
records in batches as numpy arrays, one C call per batch, with the GIL
released while C waits. Errors are the typed exceptions of
:mod:`rsx_appliance.errors` (``SeqGapError``, ``NeedsReplay``, ``OSError``...).

Example::

    from rsx_appliance import cmp
    with cmp.Endpoint("udp", ("127.0.0.1", 0)) as ep:
        tx = ep.sender(stream_id=7, destinations=[("127.0.0.1", 9101)])
        tx.send(record_bytes)

An endpoint and everything attached to it must be used from one thread at a
time (the C side takes no locks).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._native import ffi, lib
from .errors import InvalidArgumentError, NeedsReplay, check
from .codes import ErrorCode
from .records import HEADER_SIZE, PAYLOAD_MAX, RECORD_DTYPES, PAYLOAD_DTYPES, Record, RecordType, decode
from .wal.reader import WalReader

__all__ = [
    "RECORD_MAX", "Backend", "Mode", "State", "Fault", "Rule", "Endpoint", "Sender", "Receiver",
    "ReceiverInfo", "Batch", "HEARTBEAT_IDLE_US", "LINK_HEARTBEAT_IDLE_US",
]

#: Bytes per row of a Batch: the largest record (16-byte header + 128-byte payload).
RECORD_MAX: int = HEADER_SIZE + PAYLOAD_MAX
#: The longest heartbeat interval of an idle stream (specs/cmp.md 3.5): an exchange at rest wakes its
#: receivers 20 times a second per stream, not 100 (DESIGN.md 11), and a consumer still hears a live sender
#: well within risk's 100 ms (specs/risk.md 3.5).
HEARTBEAT_IDLE_US: int = 50_000
#: The same for link streams (gateway -> risk, risk -> ME, risk -> gateway; specs/cmp.md 4.6): nobody reads
#: liveness from their heartbeats, and tail loss is still found one heartbeat_us after the data.
LINK_HEARTBEAT_IDLE_US: int = 250_000


class Backend(enum.IntEnum):
    """Socket backends (specs/cmp.md section 5)."""

    UDP = lib.RSX_CMP_UDP
    URING = lib.RSX_CMP_URING
    XDP = lib.RSX_CMP_XDP
    MEM = lib.RSX_CMP_MEM


class Mode(enum.IntEnum):
    """How an endpoint waits: spin on the receive path, or sleep in the kernel."""

    BUSY = lib.RSX_CMP_BUSY
    SLEEP = lib.RSX_CMP_SLEEP


class State(enum.IntEnum):
    """Receiver states (specs/cmp.md section 4.4)."""

    LIVE = lib.RSX_CMP_LIVE
    RECOVERING = lib.RSX_CMP_RECOVERING
    NEEDS_REPLAY = lib.RSX_CMP_NEEDS_REPLAY


_ACTIONS = {"drop": lib.RSX_CMP_FAULT_DROP, "dup": lib.RSX_CMP_FAULT_DUP,
            "reorder": lib.RSX_CMP_FAULT_REORDER, "delay": lib.RSX_CMP_FAULT_DELAY}
_CLASSES = {"any": lib.RSX_CMP_FC_ANY, "data": lib.RSX_CMP_FC_DATA, "control": lib.RSX_CMP_FC_CONTROL}


def _enum(kind: type[enum.IntEnum], value: Any, what: str) -> enum.IntEnum:
    try:
        return kind[value.upper()] if isinstance(value, str) else kind(value)
    except (KeyError, ValueError):
        raise InvalidArgumentError(ErrorCode.INVALID, f"{what}: {value!r}") from None


def _choice(table: dict[str, int], value: str, what: str) -> int:
    try:
        return table[value]
    except KeyError:
        raise InvalidArgumentError(ErrorCode.INVALID, f"{what}: {value!r} (one of {', '.join(table)})") from None


@dataclass(frozen=True)
class Rule:
    """A fault pattern: act on datagrams of class ``cls`` whose ordinal is in [first, first+count), every ``every``."""

    action: str           # drop, dup, reorder, delay
    first: int = 0
    count: int = 1
    every: int = 0
    cls: str = "data"     # data, control, any


@dataclass(frozen=True)
class Fault:
    """Fault injection on an endpoint's outgoing datagrams (specs/cmp.md section 6).

    Rates are probabilities in [0, 1] applied to datagrams of class ``cls``;
    ``rules`` are exact patterns applied first. Same ``seed``, same traffic:
    same faults.
    """

    drop: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    delay_us: int = 1000
    reorder_depth: int = 3
    seed: int = 1
    cls: str = "any"
    rules: tuple[Rule, ...] = ()

    def _fill(self, c) -> None:
        for name in ("drop", "dup", "reorder", "delay"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise InvalidArgumentError(ErrorCode.INVALID, f"fault {name} rate {p} is not in [0, 1]")
            setattr(c, f"{name}_ppm", round(p * 1_000_000))
        if len(self.rules) > lib.RSX_CMP_FAULT_RULES:
            raise InvalidArgumentError(ErrorCode.INVALID, f"at most {lib.RSX_CMP_FAULT_RULES} fault rules")
        c.seed = self.seed
        c.rate_cls = _choice(_CLASSES, self.cls, "fault class")
        c.reorder_depth = self.reorder_depth
        c.delay_us = self.delay_us
        c.nrules = len(self.rules)
        for i, r in enumerate(self.rules):
            c.rules[i].action = _choice(_ACTIONS, r.action, "fault action")
            c.rules[i].cls = _choice(_CLASSES, r.cls, "fault class")
            c.rules[i].first, c.rules[i].count, c.rules[i].every = r.first, r.count, r.every


def _addr(c_addr, host: str, port: int, mac: str | None = None) -> None:
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidArgumentError(ErrorCode.INVALID, f"port {port!r}")
    check(lib.rsx_cmp_addr_set(c_addr, host.encode(), port), f"address {host!r}")
    if mac:
        raw = bytes.fromhex(mac.replace(":", ""))
        if len(raw) != 6:
            raise InvalidArgumentError(ErrorCode.INVALID, f"MAC address {mac!r}")
        c_addr.mac = list(raw)


def _key(c, key: bytes | None) -> None:
    """Set a config's optional per-stream MAC key (specs/cmp.md section 12)."""
    if key is None:
        return
    if not isinstance(key, (bytes, bytearray)) or len(key) != lib.RSX_CMP_KEY_BYTES:
        raise InvalidArgumentError(ErrorCode.INVALID, f"key must be {lib.RSX_CMP_KEY_BYTES} bytes")
    c.keyed = 1
    c.key = list(bytes(key))


def _host(c_addr) -> tuple[str, int]:
    ip = int(c_addr.ip).to_bytes(4, "little")
    return ".".join(str(b) for b in ip), int(c_addr.port)


def _struct_dict(obj, ctype: str) -> dict[str, int]:
    return {name: int(getattr(obj, name)) for name, _ in ffi.typeof(ctype).fields if not name.startswith("_")}


class Endpoint:
    """One socket bound to a local address, with its senders and receivers.

    ``backend``: "udp", "uring", "xdp" or "mem" (test double); None picks io_uring
    where the kernel allows it, else udp (DESIGN.md 7); ``mode``: "busy"
    (spin) or "sleep". ``xdp`` needs ``ifname`` and a fixed port, and root.
    ``netns`` is a namespace path (``/var/run/netns/NAME``) to open the socket
    in. Raises :class:`InvalidArgumentError` for a bad configuration and
    ``OSError`` when the kernel refuses (``PermissionError`` without
    privileges, ``OSError(EADDRINUSE)`` for a port in use).
    """

    def __init__(self, backend: str | Backend | None = None, local: tuple[str, int] = ("127.0.0.1", 0), *,
                 mode: str | Mode = "busy", ifname: str | None = None, netns: str | None = None,
                 queue: int = 0, xdp_mode: str = "skb", sndbuf: int = 4 << 20, rcvbuf: int = 4 << 20,
                 batch: int = 32, fault: Fault | None = None) -> None:
        self._ep = None
        c = ffi.new("struct rsx_cmp_config *")
        lib.rsx_cmp_config_init(c)
        if backend is not None:
            c.backend = _enum(Backend, backend, "backend")
        c.mode = _enum(Mode, mode, "mode")
        _addr(ffi.addressof(c, "local"), local[0], local[1])
        for name, value, size in (("ifname", ifname, 16), ("netns", netns, 128)):
            raw = (value or "").encode()
            if len(raw) >= size:
                raise InvalidArgumentError(ErrorCode.INVALID, f"{name} longer than {size - 1} bytes")
            setattr(c, name, raw)
        c.queue = queue
        c.xdp_mode = {"skb": lib.RSX_CMP_XDP_SKB, "drv": lib.RSX_CMP_XDP_DRV}.get(xdp_mode, 0)
        c.sndbuf, c.rcvbuf, c.batch = sndbuf, rcvbuf, batch
        if fault is not None:
            c.fault_enabled = 1
            fault._fill(ffi.addressof(c, "fault"))
        out = ffi.new("struct rsx_cmp_endpoint **")
        check(lib.rsx_cmp_open(c, out), f"open {Backend(c.backend).name.lower()} endpoint")
        self._ep = out[0]
        self._children: list[Any] = []
        self.backend = Backend(c.backend)
        self.mode = Mode(c.mode)

    # -- lifetime --
    def close(self) -> None:
        """Close the socket and free every sender and receiver. Idempotent."""
        if self._ep is not None:
            for child in self._children:
                child._dead()
            lib.rsx_cmp_close(self._ep)
            self._ep = None

    def __enter__(self) -> "Endpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    @property
    def ptr(self):
        if self._ep is None:
            raise InvalidArgumentError(ErrorCode.INVALID, "endpoint is closed")
        return self._ep

    # -- facts --
    @property
    def local(self) -> tuple[str, int]:
        """The bound (ip, port); the port is the one the kernel chose when 0 was asked."""
        a = ffi.new("struct rsx_cmp_addr *")
        lib.rsx_cmp_local_addr(self.ptr, a)
        return _host(a)

    @property
    def stats(self) -> dict[str, int]:
        """Endpoint counters (specs/cmp.md section 7)."""
        st = ffi.new("struct rsx_cmp_endpoint_stats *")
        lib.rsx_cmp_endpoint_stats(self.ptr, st)
        return _struct_dict(st, "struct rsx_cmp_endpoint_stats")

    def fileno(self) -> int:
        """A descriptor that polls readable when datagrams wait (udp, xdp), for an event loop's
        ``add_reader``; the endpoint owns it. Still call :meth:`poll` by the timers' deadline.

        Raises ``OSError(EOPNOTSUPP)`` for the uring and mem backends, which wait inside :meth:`poll`.
        """
        return check(lib.rsx_cmp_endpoint_fd(self.ptr), "fileno")

    def next_due_s(self) -> float | None:
        """Seconds until the endpoint's next timer (heartbeat, NAK retry) is due, as of the last
        :meth:`poll` (0.0 when it is already due); None when no timer runs. A loop sleeping on
        :meth:`fileno` polls again by then."""
        due = lib.rsx_cmp_next_due_ns(self.ptr)
        if not due:
            return None
        return max(0, due - lib.rsx_cmp_now_ns()) / 1e9

    @property
    def fault_stats(self) -> dict[str, int]:
        """Fault-layer counters (all zero without a fault layer)."""
        st = ffi.new("struct rsx_cmp_fault_stats *")
        lib.rsx_cmp_fault_stats(self.ptr, st)
        return _struct_dict(st, "struct rsx_cmp_fault_stats")

    # -- work --
    def poll(self, timeout: float | None = 0.0) -> int:
        """Receive, dispatch, run timers; wait up to ``timeout`` s (None: until something arrives).

        Returns the number of datagrams handled.
        """
        us = -1 if timeout is None else int(timeout * 1e6)
        return check(lib.rsx_cmp_poll(self.ptr, us), "poll")

    def send_raw(self, data: bytes, to: tuple[str, int], mac: str | None = None) -> int:
        """Send arbitrary bytes (1..2048) to ``to``, bypassing every check: for tests and tools."""
        a = ffi.new("struct rsx_cmp_addr *")
        _addr(a, to[0], to[1], mac)
        return check(lib.rsx_cmp_send_raw(self.ptr, ffi.from_buffer(data), len(data), a), "send_raw")

    def link(self, other: "Endpoint") -> None:
        """mem backend only: deliver this endpoint's datagrams to ``other`` and back."""
        check(lib.rsx_cmp_mem_link(self.ptr, other.ptr), "link")

    def sender(self, stream_id: int, destinations: Iterable[tuple[str, int] | tuple[str, int, str]], *,
               ring_size: int = 4096, heartbeat_us: int = 10_000, heartbeat_idle_us: int = HEARTBEAT_IDLE_US,
               retx_dedup_us: int = 250, fetch: "WalReader | Callable[[int], bytes | None] | None" = None,
               key: bytes | None = None) -> "Sender":
        """Attach the sender of ``stream_id``; see :class:`Sender`.

        ``key`` (16 bytes, shared with the stream's receivers) tags every datagram
        of the stream with a MAC, for networks that are not private. While the stream is idle each
        heartbeat doubles the interval, from ``heartbeat_us`` up to ``heartbeat_idle_us`` (0: no back-off);
        data starts over (specs/cmp.md 3.5).
        """
        s = Sender(self, stream_id, list(destinations), ring_size, heartbeat_us, retx_dedup_us, fetch, key,
                   heartbeat_idle_us)
        self._children.append(s)
        return s

    def receiver(self, stream_id: int, *, window: int = 4096, start_seq: int = 1, nak_delay_us: int = 100,
                 nak_retry_us: int = 1000, nak_max_retries: int = 8, nak_max_count: int = 1024,
                 nak_max_runs: int = 64, link: bool = False, key: bytes | None = None) -> "Receiver":
        """Attach the receiver of ``stream_id``; see :class:`Receiver`.

        ``link=True`` for a stream that is not journaled (requests and replies
        between gateway, risk and ME, specs/cmp.md 4.6): the receiver joins the
        sender where it is, follows a sender that restarted at seq 1 (counted in
        ``stats["resyncs"]``), and skips a hole NAKs cannot fill (counted in
        ``stats["link_losses"]``) instead of needing replay. ``start_seq`` must
        then be left at 0 or 1. Never for a journaled stream (ME, risk, mark).
        ``key``: the stream's MAC key (see :meth:`sender`); datagrams without a
        valid tag are dropped (``stats["rx_bad_mac"]`` of the endpoint).
        """
        r = Receiver(self, stream_id, window, start_seq, nak_delay_us, nak_retry_us, nak_max_retries,
                     nak_max_count, nak_max_runs, link, key)
        self._children.append(r)
        return r


class Sender:
    """Sends one stream's framed records; answers NAKs; heartbeats when idle.

    ``fetch`` is the deep retransmit source (seam 1) for seqs no longer in the
    hot ring: a :class:`rsx_appliance.wal.WalReader` of the stream's WAL (the
    production path: the C sender reads the WAL directly, ``rsx_cmp_wal_fetch``;
    the reader must only be used by the thread that polls this endpoint), or
    a Python ``fetch(seq) -> bytes | None`` (None means "gone"), called from
    inside :meth:`Endpoint.poll` at the cost of a Python call per seq, for
    tests and tools.
    """

    def __init__(self, ep: Endpoint, stream_id: int, destinations: list, ring_size: int, heartbeat_us: int,
                 retx_dedup_us: int, fetch: "WalReader | Callable[[int], bytes | None] | None",
                 key: bytes | None = None, heartbeat_idle_us: int = 0) -> None:
        c = ffi.new("struct rsx_cmp_sender_config *")
        lib.rsx_cmp_sender_config_init(c)
        c.stream_id = stream_id
        _key(c, key)
        if not 1 <= len(destinations) <= lib.RSX_CMP_MAX_DEST:
            raise InvalidArgumentError(ErrorCode.INVALID, f"1..{lib.RSX_CMP_MAX_DEST} destinations")
        c.ndest = len(destinations)
        for i, d in enumerate(destinations):
            _addr(ffi.addressof(c.dest, i), d[0], d[1], d[2] if len(d) > 2 else None)
        c.ring_size, c.heartbeat_us, c.retx_dedup_us = ring_size, heartbeat_us, retx_dedup_us
        c.heartbeat_idle_us = heartbeat_idle_us
        self._fetch = None
        if isinstance(fetch, WalReader):
            # The production path: C to C, no Python per retransmit (native/src/cmp_wal.c).
            self._fetch = fetch  # keeps the reader alive as long as the sender
            c.fetch = ffi.addressof(lib, "rsx_cmp_wal_fetch")
            c.fetch_ctx = fetch._r
        elif fetch is not None:
            self._fetch = ffi.callback("int(void *, uint32_t, uint64_t, void *, size_t)",
                                       self._make_fetch(fetch), onerror=self._fetch_error)
            c.fetch = self._fetch
        out = ffi.new("struct rsx_cmp_sender **")
        check(lib.rsx_cmp_sender_open(ep.ptr, c, out), f"sender of stream {stream_id}")
        self._s = out[0]
        self._ep = ep
        self.stream_id = stream_id

    @staticmethod
    def _make_fetch(fetch):
        def call(_ctx, _stream, seq, buf, cap):
            rec = fetch(int(seq))
            if rec is None:
                return ErrorCode.GONE
            if len(rec) > cap:
                return ErrorCode.SHORT
            ffi.memmove(buf, rec, len(rec))
            return len(rec)
        return call

    @staticmethod
    def _fetch_error(exc, value, tb):
        return int(ErrorCode.INVALID)  # counted as a fetch error by the sender; the NAK goes unanswered

    def _dead(self) -> None:
        self._s = None

    @property
    def ptr(self):
        if self._s is None:
            raise InvalidArgumentError(ErrorCode.INVALID, "endpoint is closed")
        return self._s

    def send(self, record: bytes | bytearray | memoryview) -> int:
        """Send one framed record (seq = last + 1). Returns its size.

        Raises the record's error, ``SeqGapError``, ``StreamMismatchError``,
        ``RecordTypeError`` (a control type) or ``BlockingIOError`` (every
        hot-ring slot is pending: poll and retry). Nothing changes on error.
        """
        return check(lib.rsx_cmp_sender_send(self.ptr, ffi.from_buffer(record), len(record)), "send")

    def send_batch(self, buf: bytes | bytearray | memoryview | np.ndarray) -> int:
        """Send back-to-back records; returns how many were accepted (the rest: call again)."""
        used = ffi.new("size_t *")
        mv = memoryview(buf).cast("B")
        return check(lib.rsx_cmp_sender_send_batch(self.ptr, ffi.from_buffer(mv), len(mv), used), "send_batch")

    @property
    def stats(self) -> dict[str, int]:
        st = ffi.new("struct rsx_cmp_sender_stats *")
        lib.rsx_cmp_sender_stats(self.ptr, st)
        return _struct_dict(st, "struct rsx_cmp_sender_stats")


@dataclass(frozen=True)
class ReceiverInfo:
    """Where a receiver stands (specs/cmp.md section 4)."""

    state: State
    stream_id: int
    link: bool         # a link receiver (specs/cmp.md 4.6)
    delivered: int     # last seq handed out
    expected: int      # first seq not held: replay from here
    highest: int
    gap_start: int     # NEEDS_REPLAY: the range NAKs could not fill
    gap_end: int
    last_heard_ns: int


@dataclass
class Batch:
    """Records delivered in one call, in seq order.

    ``raw`` is an (n, RECORD_MAX) uint8 array, one record per row (zero
    padded); ``seq``, ``type`` and ``stream_id`` are column arrays read from
    it. ``records(t)`` gives the records of type ``t`` as a numpy structured
    array with ``RECORD_DTYPES[t]`` (header + payload fields).
    """

    raw: np.ndarray
    seq: np.ndarray = field(init=False)
    type: np.ndarray = field(init=False)
    stream_id: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.seq = self.raw[:, HEADER_SIZE:HEADER_SIZE + 8].copy().view("<u8").reshape(-1)
        self.type = self.raw[:, 2:4].copy().view("<u2").reshape(-1)
        self.stream_id = self.raw[:, HEADER_SIZE + 16:HEADER_SIZE + 20].copy().view("<u4").reshape(-1)

    def __len__(self) -> int:
        return len(self.raw)

    def records(self, rtype: int) -> np.ndarray:
        t = RecordType(rtype)
        size = HEADER_SIZE + PAYLOAD_DTYPES[t].itemsize
        rows = self.raw[self.type == t][:, :size]
        return np.ascontiguousarray(rows).view(RECORD_DTYPES[t]).reshape(-1)

    def record_bytes(self, i: int) -> bytes:
        """The exact bytes of record i (its header says how long it is)."""
        row = self.raw[i]
        return bytes(row[:HEADER_SIZE + int(row[4]) + (int(row[5]) << 8)])

    def __iter__(self) -> Iterator[Record]:
        """Decode each record (a Python object per record: for tools, not hot paths)."""
        for i in range(len(self)):
            yield decode(self.record_bytes(i))


class Receiver:
    """Delivers one stream's records exactly once, in seq order, in batches.

    NAKs gaps, buffers reordering within ``window``; when a gap cannot be
    filled by NAK it enters NEEDS_REPLAY and :meth:`receive` raises
    :class:`NeedsReplay` once everything before the gap was delivered; feed
    the replayed records (DXS, seam 2) to :meth:`replay`. A link receiver
    (``link=True``) skips and counts such a gap instead, and has no replay.
    """

    def __init__(self, ep: Endpoint, stream_id: int, window: int, start_seq: int, nak_delay_us: int,
                 nak_retry_us: int, nak_max_retries: int, nak_max_count: int, nak_max_runs: int,
                 link: bool = False, key: bytes | None = None) -> None:
        c = ffi.new("struct rsx_cmp_receiver_config *")
        lib.rsx_cmp_receiver_config_init(c)
        _key(c, key)
        c.stream_id, c.window, c.start_seq = stream_id, window, start_seq
        c.nak_delay_us, c.nak_retry_us, c.nak_max_retries = nak_delay_us, nak_retry_us, nak_max_retries
        c.nak_max_count, c.nak_max_runs = nak_max_count, nak_max_runs
        if not isinstance(link, bool):
            raise InvalidArgumentError(ErrorCode.INVALID, f"link must be True or False, not {link!r}")
        c.link = int(link)
        out = ffi.new("struct rsx_cmp_receiver **")
        check(lib.rsx_cmp_receiver_open(ep.ptr, c, out), f"receiver of stream {stream_id}")
        self._r = out[0]
        self._ep = ep
        self.stream_id = stream_id

    def _dead(self) -> None:
        self._r = None

    @property
    def ptr(self):
        if self._r is None:
            raise InvalidArgumentError(ErrorCode.INVALID, "endpoint is closed")
        return self._r

    def _batch(self, rc: int, raw: np.ndarray) -> Batch:
        if rc == ErrorCode.REPLAY:
            exc = NeedsReplay(rc, f"stream {self.stream_id}")
            exc.info = self.info
            raise exc
        return Batch(raw[:check(rc, "receive")])

    def receive(self, max: int = 1024, timeout: float | None = 0.0) -> Batch:
        """Poll the endpoint until records are deliverable or ``timeout`` s passed, then read up to ``max``.

        One C call; ``timeout=0`` polls the socket once without waiting.
        Returns a possibly empty :class:`Batch`; raises
        :class:`NeedsReplay` (with ``.info``) when nothing is deliverable and
        the stream needs replay.
        """
        if max < 1:
            raise InvalidArgumentError(ErrorCode.INVALID, "max must be >= 1")
        raw = np.empty((max, RECORD_MAX), dtype=np.uint8)
        us = -1 if timeout is None else int(timeout * 1e6)
        rc = lib.rsx_cmp_receive(self._ep.ptr, self.ptr, ffi.from_buffer(raw), RECORD_MAX, max, us)
        return self._batch(rc, raw)

    def read(self, max: int = 1024) -> Batch:
        """Read what is deliverable now, without polling the endpoint."""
        if max < 1:
            raise InvalidArgumentError(ErrorCode.INVALID, "max must be >= 1")
        raw = np.empty((max, RECORD_MAX), dtype=np.uint8)
        return self._batch(lib.rsx_cmp_receiver_read(self.ptr, ffi.from_buffer(raw), RECORD_MAX, max), raw)

    def replay(self, record: bytes | bytearray | memoryview) -> bool:
        """Feed one replayed record, in seq order from ``info.expected``; True if it closed the gap.

        Records below ``expected`` are ignored (False). Raises ``SeqGapError`` if
        the replay skipped a seq, ``BlockingIOError`` if the window is full of
        unread records (read first), the record's error, or
        ``InvalidArgumentError`` on a link receiver (nothing to replay from).
        """
        return bool(check(lib.rsx_cmp_receiver_replay(self.ptr, ffi.from_buffer(record), len(record)), "replay"))

    @property
    def info(self) -> ReceiverInfo:
        i = ffi.new("struct rsx_cmp_receiver_info *")
        lib.rsx_cmp_receiver_info(self.ptr, i)
        d = _struct_dict(i, "struct rsx_cmp_receiver_info")
        d["state"] = State(d["state"])
        d["link"] = bool(d["link"])
        return ReceiverInfo(**d)

    @property
    def state(self) -> State:
        return self.info.state

    @property
    def stats(self) -> dict[str, int]:
        st = ffi.new("struct rsx_cmp_receiver_stats *")
        lib.rsx_cmp_receiver_stats(self.ptr, st)
        return _struct_dict(st, "struct rsx_cmp_receiver_stats")
