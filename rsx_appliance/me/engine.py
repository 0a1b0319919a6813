"""The matching engine of one symbol, a thin layer over the C core (native/include/rsx/me.h).

Python creates it (recovery runs in C), hands it a CMP endpoint, and calls
:meth:`MatchingEngine.run`, which loops in C with the GIL released until
:meth:`stop`. Tests and the in-process benchmark drive it with :meth:`step`
and :meth:`submit` instead. specs/me.md is the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Iterable

from .._native import ffi, lib
from ..cmp import Endpoint, _addr
from ..errors import InvalidArgumentError, check, error_for
from ..codes import ErrorCode
from ..records import RecordType, encode
from .options import MeOptions

__all__ = ["MatchingEngine", "State", "Durability", "Wait", "Recovery", "Info", "config_payload"]

_NS = 1_000_000_000


class State(IntEnum):
    STARTING = lib.RSX_ME_STARTING
    RECOVERING = lib.RSX_ME_RECOVERING
    RUNNING = lib.RSX_ME_RUNNING
    STOPPING = lib.RSX_ME_STOPPING
    STOPPED = lib.RSX_ME_STOPPED
    FAILED = lib.RSX_ME_FAILED


class Durability(IntEnum):
    FSYNC = lib.RSX_ME_FSYNC
    ASYNC = lib.RSX_ME_ASYNC


class Wait(IntEnum):
    SPIN = lib.RSX_ME_SPIN
    BACKOFF = lib.RSX_ME_BACKOFF
    BLOCK = lib.RSX_ME_BLOCK


def _fields(obj: Any, ctype: str) -> dict[str, Any]:
    out = {}
    for name, f in ffi.typeof(ctype).fields:
        if name.startswith("_"):
            continue
        v = getattr(obj, name)
        out[name] = ffi.string(v).decode(errors="replace") if f.type.kind == "array" else int(v)
    return out


@dataclass(frozen=True)
class Recovery:
    """What :class:`MatchingEngine` found and did at start (struct rsx_me_recovery)."""

    wal_tip: int
    wal_oldest: int
    wal_cut_bytes: int
    snapshot_seq: int
    snapshots_tried: int
    snapshots_rejected: int
    reject_error: int
    reject_file: str
    replayed_records: int
    replayed_requests: int
    completed_records: int
    dedup_entries: int
    dedup_from_seq: int
    config_version: int
    config_appended: int
    book_migrated: int
    elapsed_ns: int
    message: str

    def lines(self) -> list[str]:
        """Log lines an operator reads at start."""
        out = []
        if self.snapshots_rejected:
            out.append(f"snapshot {self.reject_file} unusable ({ErrorCode(self.reject_error).name.lower()})"
                       + (f"; {self.snapshots_rejected - 1} more rejected" if self.snapshots_rejected > 1 else "")
                       + (": using an older one" if self.snapshot_seq else ": replaying the WAL from seq 1"))
        elif not self.snapshot_seq and self.wal_tip:
            out.append("no snapshot: replaying the WAL from seq 1")
        if self.wal_cut_bytes:
            out.append(f"the WAL's torn tail was cut ({self.wal_cut_bytes} bytes never reported durable)")
        if self.completed_records:
            out.append(f"completed the last request with {self.completed_records} records the crash cut")
        if self.book_migrated:
            out.append("the book's capacities changed: restored into a new book")
        out.append(f"recovered to seq {self.wal_tip + self.completed_records + self.config_appended} in "
                   f"{self.elapsed_ns / 1e6:.1f} ms: snapshot {self.snapshot_seq or 'none'}, "
                   f"{self.replayed_records} records replayed, {self.dedup_entries} dedup entries "
                   f"(from seq {self.dedup_from_seq}), config version {self.config_version}"
                   + (" (appended)" if self.config_appended else ""))
        return out


@dataclass(frozen=True)
class Info:
    next_seq: int
    durable_seq: int
    released_seq: int
    in_flight: int
    config_version: int
    state: State
    status: int
    error: int
    nlinks: int


def config_payload(opts: MeOptions, **changes: Any) -> bytes:
    """The CONFIG_APPLIED payload (128 bytes) of the options' symbol, with ``changes``."""
    s = opts.symbol
    fields = dict(symbol_id=s.symbol_id, config_version=s.config_version, tick_size=s.tick_size,
                  lot_size=s.lot_size, min_qty=s.min_qty, max_qty=s.max_qty, price_decimals=s.price_decimals,
                  qty_decimals=s.qty_decimals, status=int(s.status), maker_fee_bps=s.maker_fee_bps,
                  taker_fee_bps=s.taker_fee_bps, initial_margin_bps=s.initial_margin_bps,
                  maintenance_margin_bps=s.maintenance_margin_bps, funding_interval_s=opts.funding_interval_s,
                  max_funding_rate_bps=opts.max_funding_rate_bps)
    fields.update(changes)
    return encode(RecordType.CONFIG_APPLIED, **fields)[16:]


class MatchingEngine:
    """One symbol's matching engine. Opening it recovers from its directory (specs/me.md 7).

    Raises the typed error of the C core with the reason in the message
    (``ReplayDivergedError``, ``SeqGoneError`` when no snapshot covers a WAL
    that no longer starts at seq 1, ``OSError(EBUSY)`` when another ME holds
    the directory, ``InvalidArgumentError`` for a configuration the C refuses).
    """

    def __init__(self, opts: MeOptions) -> None:
        self.opts = opts
        self._me = None
        self._endpoint: Endpoint | None = None
        c = ffi.new("struct rsx_me_config *")
        lib.rsx_me_config_init(c)
        self._dir = ffi.new("char[]", str(opts.directory).encode())
        c.dir = self._dir
        payload = config_payload(opts)
        ffi.memmove(ffi.addressof(c, "symbol"), payload, len(payload))
        c.durability = Durability[opts.durability.upper()]
        c.wait_mode = Wait[opts.wait.upper()] if opts.wait != "auto" else Wait.BLOCK
        c.flags = (0 if opts.snapshots else lib.RSX_ME_NO_SNAPSHOTS) | \
            (lib.RSX_ME_STATS_IN_DIR if opts.stats_in_dir else 0)
        c.read_batch = opts.read_batch
        c.capacity = opts.capacity
        c.max_users = opts.max_users
        c.book_flags = {"auto": 0, "never": lib.RSX_BOOK_HUGETLB_NEVER,
                        "require": lib.RSX_BOOK_HUGETLB_REQUIRE}[opts.hugepages]
        c.ref_price = opts.ref_price
        c.batch_records = opts.batch_records
        c.batch_us = opts.batch_us
        c.wal_file_size = opts.wal_file_size
        c.retain_ns = int(opts.retain_s * _NS)
        c.wal_flags = lib.RSX_WAL_NOSYNC if opts.unsafe_nosync else 0
        c.dedup_window_ns = opts.dedup_window_s * _NS
        c.dedup_capacity = opts.dedup_capacity
        c.order_timeout_ns = opts.order_timeout_ms * 1_000_000
        c.snapshot_records = opts.snapshot_records
        c.snapshot_ns = int(opts.snapshot_seconds * _NS)
        c.snapshot_keep = opts.snapshots_kept
        c.out_bytes = opts.out_bytes
        c.request_slots = opts.request_slots
        for k, v in opts.extra.items():  # tests: any other C field
            setattr(c, k, v)
        self._cfg = c
        out = ffi.new("struct rsx_me **")
        rec = ffi.new("struct rsx_me_recovery *")
        rc = lib.rsx_me_open(c, out, rec)
        self.recovery = Recovery(**_fields(rec, "struct rsx_me_recovery"))
        if rc < 0:
            raise error_for(rc, f"matching engine {opts.name} in {opts.directory}"
                            + (f": {self.recovery.message}" if self.recovery.message else ""))
        self._me = out[0]

    # -- life cycle ---------------------------------------------------------

    @property
    def ptr(self):
        if self._me is None:
            raise InvalidArgumentError(ErrorCode.INVALID, "the matching engine is closed")
        return self._me

    def attach(self, endpoint: Endpoint, *, subscribers: Iterable[tuple[str, int]] | None = None,
               links: Iterable[int] | None = None) -> None:
        """Give the loop its endpoint: a sender of the ME's stream to ``subscribers`` and link
        receivers for ``links`` (defaults: the options'). The loop drives the endpoint from now on."""
        subs = list(self.opts.subscribers if subscribers is None else subscribers)
        lks = list(self.opts.links if links is None else links)
        tx = ffi.NULL
        if subs:
            tx = ffi.new("struct rsx_cmp_sender_config *")
            lib.rsx_cmp_sender_config_init(tx)
            if len(subs) > lib.RSX_CMP_MAX_DEST:
                raise InvalidArgumentError(ErrorCode.INVALID, f"at most {lib.RSX_CMP_MAX_DEST} subscribers")
            tx.ndest = len(subs)
            for i, d in enumerate(subs):
                _addr(ffi.addressof(tx.dest, i), d[0], d[1], d[2] if len(d) > 2 else None)
            tx.ring_size = self.opts.sender_ring
            tx.heartbeat_us = self.opts.heartbeat_us
            tx.heartbeat_idle_us = self.opts.heartbeat_idle_us
        rx = ffi.new("struct rsx_cmp_receiver_config *")
        lib.rsx_cmp_receiver_config_init(rx)
        rx.window = self.opts.window
        rx.start_seq = 0
        arr = ffi.new("uint32_t[]", lks or [0])
        check(lib.rsx_me_attach(self.ptr, endpoint.ptr, tx, rx, arr, len(lks)), "attach the endpoint")
        self._endpoint = endpoint  # keep it alive as long as the ME drives it

    def run(self) -> None:
        """Loop until :meth:`stop` (GIL released), then drain. Raises the fatal error if the loop failed."""
        check(lib.rsx_me_run(self.ptr), f"matching engine {self.opts.name}")

    def stop(self) -> None:
        """Ask :meth:`run` to finish; safe from any thread."""
        if self._me is not None:
            lib.rsx_me_stop(self._me)

    def step(self, timeout: float = 0.0) -> int:
        """One loop iteration (waits up to ``timeout`` s when idle). Returns the work done."""
        return check(lib.rsx_me_step(self.ptr, int(timeout * 1e6)), "step")

    def submit(self, records: bytes | bytearray | memoryview) -> int:
        """Process back-to-back request records as if they came from a link. Returns how many."""
        return check(lib.rsx_me_submit(self.ptr, ffi.from_buffer(records), len(records)), "submit")

    def drain(self, timeout: float | None = 10.0) -> None:
        """Make everything processed durable and release it."""
        ns = -1 if timeout is None else int(timeout * _NS)
        check(lib.rsx_me_drain(self.ptr, ns), "drain")

    def control(self, **changes: Any) -> None:
        """Apply a configuration change from this thread (only while the loop is not running)."""
        payload = config_payload(self.opts, **changes)
        check(lib.rsx_me_control(self.ptr, ffi.from_buffer("struct rsx_config *", bytearray(payload))),
              "control")

    def close(self) -> None:
        """Stop the snapshot thread, close the WAL, mark the status file stopped. Idempotent."""
        if self._me is not None:
            me, self._me = self._me, None
            check(lib.rsx_me_close(me), f"close matching engine {self.opts.name}")

    def __enter__(self) -> "MatchingEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_me", None) is not None:
            lib.rsx_me_close(self._me)
            self._me = None

    # -- facts --------------------------------------------------------------

    @property
    def info(self) -> Info:
        i = ffi.new("struct rsx_me_info *")
        lib.rsx_me_info(self.ptr, i)
        d = _fields(i, "struct rsx_me_info")
        d["state"] = State(d["state"])
        return Info(**d)

    @property
    def stats_path(self) -> str:
        return ffi.string(lib.rsx_me_stats_path(self.ptr)).decode()

    @property
    def wal_dir(self) -> str:
        return str(self.opts.directory / "wal")
