"""The order book and matcher of one symbol (the C core ``rsx_book_*``).

A :class:`Book` holds the resting orders of one symbol in one prefaulted
hugepage mapping and matches incoming orders with exact price-time priority
(specs/book.md, specs/matching.md). Two ways in:

* the small API, one request at a time: :meth:`Book.submit`, :meth:`Book.cancel`,
  :meth:`Book.cancel_all`, :meth:`Book.amend` return the request's events as
  decoded :class:`~rsx_appliance.records.Record` objects (FILL, ORDER_INSERTED,
  ORDER_DONE, ORDER_CANCELLED, ORDER_AMENDED, ORDER_FAILED, BBO), in the order
  the matching engine would write them;
* the batch entry :meth:`Book.run`: a numpy array of :data:`OP_DTYPE` in, a
  numpy array of :data:`EVENT_DTYPE` rows out, with no Python work per
  operation.

Refusals by the exchange (bad tick, post-only that would cross, FOK not
fillable, unknown order, full book...) are ``ORDER_FAILED`` events, exactly
what the matching engine writes to its WAL, not exceptions. Misuse of the API
(a value that does not fit its field, a closed book, a corrupt snapshot)
raises: ``TypeError`` / ``ValueError`` (:class:`~rsx_appliance.errors.FieldError`),
or the typed exception of the C return code (:func:`rsx_appliance.errors.check`).

Memory: when the reserved hugepage pool cannot hold the book, it falls back to
transparent hugepages and logs a WARNING on the ``rsx_appliance.book`` logger;
:meth:`Book.memory` says which backing is in use.

A book is single-threaded, like the C core: use one book from one thread.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from . import records
from .codes import ErrorCode, OrderFlag, Side, Stp, Tif
from ._native import ffi, lib
from .errors import FieldError, InvalidArgumentError, RsxError, check
from .numbers import INT64_MAX, INT64_MIN, SymbolConfig

__all__ = [
    "Side", "Tif", "Stp", "OrderFlag", "OpKind", "Backing", "OP_DTYPE", "EVENT_DTYPE",
    "FILL_DTYPE", "Level", "OrderInfo", "MemoryInfo", "Stats", "MapInfo", "Book", "BookClosedError",
    "parse_workload", "order_id_bytes", "make_ops",
]

log = logging.getLogger("rsx_appliance.book")
_thp_warned = False


class OpKind(IntEnum):
    NEW = lib.RSX_BOOK_OP_NEW
    CANCEL = lib.RSX_BOOK_OP_CANCEL
    CANCEL_ALL = lib.RSX_BOOK_OP_CANCEL_ALL
    AMEND = lib.RSX_BOOK_OP_AMEND


class Backing(IntEnum):
    HUGETLB = lib.RSX_BOOK_MEM_HUGETLB
    THP = lib.RSX_BOOK_MEM_THP
    SMALL = lib.RSX_BOOK_MEM_SMALL


def _struct_dtype(ctype: str, fields: list[tuple[str, str]]) -> np.dtype:
    """A numpy dtype for a C struct, offsets and size taken from the compiled C."""
    return np.dtype({
        "names": [n for n, _ in fields],
        "formats": [f for _, f in fields],
        "offsets": [ffi.offsetof(ctype, n) for n, _ in fields],
        "itemsize": ffi.sizeof(ctype),
    })


#: One operation of :meth:`Book.run` (``struct rsx_book_op``, 48 bytes).
OP_DTYPE = _struct_dtype("struct rsx_book_op", [
    ("kind", "u1"), ("side", "u1"), ("tif", "u1"), ("flags", "u1"), ("stp", "u1"),
    ("user_id", "<u4"), ("order_id", "V16"), ("price", "<i8"), ("qty", "<i8"),
])

#: One event row of :meth:`Book.run` (``struct rsx_book_event``, 128 bytes). Which
#: fields are set depends on ``type`` (specs/matching.md §7); for BBO, ``price`` /
#: ``qty`` are the bid and ``ask_px`` / ``ask_qty`` the ask.
EVENT_DTYPE = _struct_dtype("struct rsx_book_event", [
    ("type", "<u2"), ("reason", "<u2"), ("status", "u1"), ("side", "u1"), ("flags", "u1"),
    ("tif", "u1"), ("op_index", "<u4"), ("user_id", "<u4"), ("maker_user_id", "<u4"),
    ("maker_flags", "u1"), ("request_type", "<u2"), ("order_id", "V16"),
    ("maker_order_id", "V16"), ("price", "<i8"), ("qty", "<i8"), ("remaining", "<i8"),
    ("maker_remaining", "<i8"), ("filled", "<i8"), ("ask_px", "<i8"), ("ask_qty", "<i8"),
    ("bid_count", "<u4"), ("ask_count", "<u4"), ("detail", "<i8"),
])

#: One fill of :meth:`Book.replay`: low 64 bits of the order ids, price, quantity.
FILL_DTYPE = _struct_dtype("struct rsx_book_fill_row", [
    ("taker", "<u8"), ("maker", "<u8"), ("price", "<i8"), ("qty", "<i8"),
])


@dataclass(frozen=True)
class Level:
    """One price of one side: total open quantity and number of orders."""

    price: int
    qty: int
    count: int


@dataclass(frozen=True)
class OrderInfo:
    price: int
    remaining: int
    filled: int
    side: Side
    tif: Tif
    flags: OrderFlag
    stp: Stp


@dataclass(frozen=True)
class MemoryInfo:
    backing: Backing
    mapped_bytes: int
    capacity: int
    level_capacity: int
    max_users: int
    bytes_per_order: int
    hugetlb_errno: int
    warning: str


@dataclass(frozen=True)
class Stats:
    orders: int
    levels: int
    users: int
    ops: int
    fills: int
    recentres: int
    center: int
    bid_levels: int
    ask_levels: int


@dataclass(frozen=True)
class MapInfo:
    """The price index (specs/book.md §3-§5): the target window's centre, W, R/2, R, and for
    each side (bids, asks) its window now as prices [lo, hi) and its far level count."""

    center: int
    tick: int
    zone0_ticks: int
    half: int
    slots: int
    window: tuple = ()
    far_levels: tuple = ()


class BookClosedError(RsxError, ValueError):
    """The book was closed (its memory is unmapped)."""


def order_id_bytes(order_id: Any) -> bytes:
    """An order id as its 16 bytes: a :class:`uuid.UUID`, 16 bytes, or an int (``UUID(int=k)``)."""
    if isinstance(order_id, uuid.UUID):
        return order_id.bytes
    if isinstance(order_id, (bytes, bytearray)):
        if len(order_id) != 16:
            raise FieldError(f"order id must be 16 bytes, got {len(order_id)}")
        return bytes(order_id)
    if isinstance(order_id, (int, np.integer)) and not isinstance(order_id, bool):
        if not 0 <= int(order_id) < 1 << 128:
            raise FieldError(f"order id {order_id} does not fit 128 bits")
        return int(order_id).to_bytes(16, "big")
    raise TypeError(f"order id must be a UUID, 16 bytes or an int, not {type(order_id).__name__}")


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not lo <= int(value) <= hi:
        raise FieldError(f"{name}={value} is out of range [{lo}, {hi}]")
    return int(value)


def make_ops(n: int) -> np.ndarray:
    """A zeroed array of ``n`` operations (fill in ``kind``, ``user_id``... then :meth:`Book.run`)."""
    return np.zeros(n, dtype=OP_DTYPE)


def parse_workload(text: bytes, users: int = 64, stp: Stp = Stp.NONE) -> np.ndarray:
    """Parse bench/workload.py's text format into :data:`OP_DTYPE` operations (in C).

    Order id ``k`` becomes ``UUID(int=k)`` and belongs to user ``1 + k % users``;
    ``POST`` is GTC + POST_ONLY; every order gets the STP mode ``stp``. Raises
    :class:`~rsx_appliance.errors.FieldError` naming the first bad line.
    """
    if isinstance(text, str):
        text = text.encode()
    users = _int("users", users, 1, 2**32 - 1)
    cap = text.count(b"\n") + 1
    ops = np.zeros(cap, dtype=OP_DTYPE)
    n = ffi.new("size_t *")
    rc = lib.rsx_book_parse_workload(text, len(text), users, int(stp),
                                     ffi.from_buffer("struct rsx_book_op[]", ops), cap, n)
    if rc == ErrorCode.INVALID and n[0]:
        raise FieldError(f"workload line {n[0]}: expected 'A|C B|S price qty id GTC|IOC|FOK|POST'")
    check(rc, "parse_workload")
    return ops[:n[0]]


_HUGEPAGES = {
    "auto": 0,
    "require": lib.RSX_BOOK_HUGETLB_REQUIRE,
    "never": lib.RSX_BOOK_HUGETLB_NEVER,
}
_SINK_BYTES = 1 << 16


class Book:
    """The book of one symbol; see the module docstring.

    ``capacity`` resting orders (up to 2**31), ``level_capacity`` resting prices
    (default: ``capacity``), ``max_users`` users with state at once, the price
    window centred on ``ref_price`` (raw units), reaching at least ``zone0_ticks``
    ticks each way (default 5 % of ``ref_price``; it follows the mid). ``hugepages``: ``"auto"`` (reserved
    pool, else THP with a warning), ``"require"`` (raise ``OSError(ENOMEM)``
    without a big enough pool) or ``"never"``.
    """

    def __init__(self, config: SymbolConfig, *, capacity: int, ref_price: int,
                 max_users: int = 65536, level_capacity: int = 0, zone0_ticks: int = 0,
                 stream_id: int = 0, hugepages: str = "auto") -> None:
        if not isinstance(config, SymbolConfig):
            raise TypeError("config must be a SymbolConfig")
        if hugepages not in _HUGEPAGES:
            raise ValueError(f"hugepages must be one of {sorted(_HUGEPAGES)}, not {hugepages!r}")
        p = ffi.new("struct rsx_book_params *")
        p.capacity = _int("capacity", capacity, 1, 2**31)
        p.level_capacity = _int("level_capacity", level_capacity, 0, 2**31)
        p.max_users = _int("max_users", max_users, 1, 2**31)
        p.ref_price.raw = _int("ref_price", ref_price, 1, INT64_MAX)
        p.zone0_ticks = _int("zone0_ticks", zone0_ticks, 0, 2**40)
        p.stream_id = _int("stream_id", stream_id, 0, 2**32 - 1)
        p.flags = _HUGEPAGES[hugepages]
        out = ffi.new("struct rsx_book **")
        check(lib.rsx_book_create(out, p, config._c), "rsx_book_create")
        self._b = out[0]
        self._config = config
        self._sink_buf = ffi.new("uint8_t[]", _SINK_BYTES + 64)
        addr = int(ffi.cast("uintptr_t", self._sink_buf))
        self._sink_base = self._sink_buf + ((-addr) % 64)
        self._sink = ffi.new("struct rsx_book_sink *")
        self._req_buf = ffi.new("uint8_t[]", records.PAYLOAD_MAX + 64)
        self._req_base = self._req_buf + ((-int(ffi.cast("uintptr_t", self._req_buf))) % 64)
        mem = self.memory()
        if mem.backing != Backing.HUGETLB:
            # A warning when the reserved pool was tried and could not serve the book: once per
            # process (a benchmark creates many books), then at INFO.
            global _thp_warned
            warn = mem.hugetlb_errno and not _thp_warned
            _thp_warned = _thp_warned or warn
            log.log(logging.WARNING if warn else logging.INFO,
                    "order book (%d orders, %d MiB): %s", mem.capacity, mem.mapped_bytes >> 20,
                    mem.warning)

    # -- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        """Unmap the book; every later call raises :class:`BookClosedError`."""
        if self._b is not None:
            lib.rsx_book_destroy(self._b)
            self._b = None

    def __enter__(self) -> "Book":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    @property
    def _book(self):
        if self._b is None:
            raise BookClosedError("the book is closed")
        return self._b

    @property
    def config(self) -> SymbolConfig:
        return self._config

    def set_config(self, config: SymbolConfig) -> None:
        """Apply a new symbol config to new orders (resting ones are kept as they are)."""
        if not isinstance(config, SymbolConfig):
            raise TypeError("config must be a SymbolConfig")
        check(lib.rsx_book_set_config(self._book, config._c), "rsx_book_set_config")
        self._config = config

    # -- one request at a time ---------------------------------------------

    def _collect(self, rc: int, context: str) -> list[records.Record]:
        out: list[records.Record] = []
        while True:
            check(rc, context)
            n = self._sink.len
            buf = bytearray(ffi.buffer(self._sink_base, n))
            off = 0
            while off < n:  # the framer's job: seal (CRC), then decode strictly
                off += records.seal(buf, off)
            out.extend(records.iter_records(buf))
            if rc == 0:
                return out
            self._reset_sink()
            rc = lib.rsx_book_resume(self._book, self._sink)

    def _reset_sink(self) -> None:
        self._sink.buf = self._sink_base
        self._sink.cap = _SINK_BYTES
        self._sink.len = 0
        self._sink.count = 0

    def _request(self, rtype: records.RecordType, fields: dict[str, Any], context: str) -> list[records.Record]:
        """Lay a request payload out as records.h does (the numpy view of the C
        field table), 64-byte aligned, and apply it."""
        raw = np.zeros((), dtype=records.PAYLOAD_DTYPES[rtype])
        for name, value in fields.items():
            raw[name] = value
        ffi.memmove(self._req_base, raw.tobytes(), raw.nbytes)
        self._reset_sink()
        return self._collect(lib.rsx_book_apply(self._book, int(rtype), self._req_base, self._sink),
                             context)

    def submit(self, user_id: int, order_id: Any, side: int, price: int, qty: int, *,
               tif: int = Tif.GTC, post_only: bool = False, reduce_only: bool = False,
               liquidation: bool = False, stp: int = Stp.CANCEL_TAKER) -> list[records.Record]:
        """Place a limit order; returns its events (fills, maker completions, outcome, BBO).

        Refusals (validation, duplicate id, post-only crossing, FOK not fillable,
        reduce-only without position, full book) come back as one ORDER_FAILED.
        """
        flags = ((OrderFlag.POST_ONLY if post_only else 0) |
                 (OrderFlag.REDUCE_ONLY if reduce_only else 0) |
                 (OrderFlag.LIQUIDATION if liquidation else 0))
        return self._request(records.RecordType.NEW_ORDER, {
            "symbol_id": self._config.symbol_id,
            "user_id": _int("user_id", user_id, 0, 2**32 - 1),
            "order_id": np.void(order_id_bytes(order_id)),
            "side": _int("side", side, 0, 255),
            "tif": _int("tif", tif, 0, 255),
            "flags": int(flags),
            "stp": _int("stp", stp, 0, 255),
            "price": _int("price", price, INT64_MIN, INT64_MAX),
            "qty": _int("qty", qty, INT64_MIN, INT64_MAX),
        }, "submit")

    def cancel(self, user_id: int, order_id: Any) -> list[records.Record]:
        """Cancel one resting order: ORDER_CANCELLED (+ BBO), or ORDER_FAILED(UNKNOWN_ORDER)."""
        return self._request(records.RecordType.CANCEL_ORDER, {
            "symbol_id": self._config.symbol_id,
            "user_id": _int("user_id", user_id, 0, 2**32 - 1),
            "order_id": np.void(order_id_bytes(order_id)),
        }, "cancel")

    def cancel_all(self, user_id: int, request_id: Any = 0) -> list[records.Record]:
        """Cancel every resting order of a user, oldest first; no events if there is none."""
        return self._request(records.RecordType.CANCEL_ALL, {
            "symbol_id": self._config.symbol_id,
            "user_id": _int("user_id", user_id, 0, 2**32 - 1),
            "request_id": np.void(order_id_bytes(request_id)),
        }, "cancel_all")

    def amend(self, user_id: int, order_id: Any, qty: int, price: int | None = None) -> list[records.Record]:
        """Change a resting order's open quantity and/or price.

        Same price (or ``price=None``): a smaller ``qty`` keeps priority; a larger
        one is refused (AMEND_NOT_DOWN). A new price re-enters the order with
        ``qty`` at the back of the new price (it may trade), keeping its id.
        """
        return self._request(records.RecordType.AMEND_ORDER, {
            "symbol_id": self._config.symbol_id,
            "user_id": _int("user_id", user_id, 0, 2**32 - 1),
            "order_id": np.void(order_id_bytes(order_id)),
            "qty": _int("qty", qty, INT64_MIN, INT64_MAX),
            "price": 0 if price is None else _int("price", price, 1, INT64_MAX),
        }, "amend")

    def apply(self, record: records.Record) -> list[records.Record]:
        """Apply a decoded request record (NEW_ORDER, ORDER_ACCEPTED, CANCEL_ORDER,
        CANCEL_ALL, AMEND_ORDER) as the matching engine does; any other type
        raises :class:`~rsx_appliance.errors.RecordTypeError`."""
        t = records.RecordType(record.type)
        fields: dict[str, Any] = {}
        for spec in records.FIELDS[t]:
            if spec.kind == records.FieldKind.PAD or spec.name not in record.fields:
                continue
            value = record.fields[spec.name]
            fields[spec.name] = np.void(value.bytes) if isinstance(value, uuid.UUID) else value
        return self._request(t, fields, "apply")

    # -- batch ----------------------------------------------------------------

    def run(self, ops: np.ndarray) -> np.ndarray:
        """Apply an array of :data:`OP_DTYPE` operations; return all events as :data:`EVENT_DTYPE` rows.

        One C call per chunk of output, no Python work per operation. ``op_index``
        of each row is the index of the operation that produced it. An operation
        with an unknown ``kind`` refuses the whole array (``InvalidArgumentError``)
        before anything is applied.
        """
        if not isinstance(ops, np.ndarray) or ops.dtype != OP_DTYPE:
            raise TypeError("ops must be a numpy array of book.OP_DTYPE (see make_ops)")
        ops = np.ascontiguousarray(ops)
        n = len(ops)
        cap = max(2 * lib.RSX_BOOK_RUN_MIN_ROWS, 2 * n + 1024)
        rows = np.empty(cap, dtype=EVENT_DTYPE)
        done = ffi.new("size_t *")
        nrows = ffi.new("size_t *")
        cops = ffi.from_buffer("struct rsx_book_op[]", ops)
        while True:
            rc = lib.rsx_book_run(self._book, cops, n, done,
                                  ffi.from_buffer("struct rsx_book_event[]", rows), cap, nrows)
            if rc != lib.RSX_BOOK_MORE:
                check(rc, "run")
                return rows[:nrows[0]]
            cap *= 2
            grown = np.empty(cap, dtype=EVENT_DTYPE)
            grown[:nrows[0]] = rows[:nrows[0]]
            rows = grown

    def replay(self, ops: np.ndarray) -> np.ndarray:
        """The benchmark loop: apply ``ops``, return only the fills (:data:`FILL_DTYPE`)."""
        if not isinstance(ops, np.ndarray) or ops.dtype != OP_DTYPE:
            raise TypeError("ops must be a numpy array of book.OP_DTYPE")
        ops = np.ascontiguousarray(ops)
        fills = np.empty(2 * len(ops) + 1, dtype=FILL_DTYPE)
        nf = ffi.new("size_t *")
        check(lib.rsx_book_replay(self._book, ffi.from_buffer("struct rsx_book_op[]", ops), len(ops),
                                  ffi.from_buffer("struct rsx_book_fill_row[]", fills), len(fills), nf),
              "replay")
        return fills[:nf[0]]

    # -- inspection ---------------------------------------------------------

    def _best(self, side: int) -> Level | None:
        lv = ffi.new("struct rsx_book_level_info *")
        if lib.rsx_book_best(self._book, side, lv) == 1:
            return Level(lv.price, lv.qty, lv.count)
        return None

    @property
    def best_bid(self) -> Level | None:
        """The best bid level (exact price, quantity and orders at that price), or None."""
        return self._best(Side.BUY)

    @property
    def best_ask(self) -> Level | None:
        return self._best(Side.SELL)

    def depth(self, side: int, levels: int = 10) -> list[Level]:
        """Up to ``levels`` price levels of a side, best first."""
        side = _int("side", side, 0, 1)
        levels = _int("levels", levels, 0, 1 << 24)
        rows = ffi.new("struct rsx_book_level_info[]", max(levels, 1))
        n = check(lib.rsx_book_depth(self._book, side, rows, levels), "depth")
        return [Level(rows[i].price, rows[i].qty, rows[i].count) for i in range(n)]

    def order(self, user_id: int, order_id: Any) -> OrderInfo | None:
        """A resting order of a user, or None."""
        info = ffi.new("struct rsx_book_order_info *")
        oid = ffi.new("rsx_oid_t *")
        ffi.memmove(oid, order_id_bytes(order_id), 16)
        if lib.rsx_book_order(self._book, _int("user_id", user_id, 0, 2**32 - 1), oid, info) != 1:
            return None
        return OrderInfo(info.price, info.remaining, info.filled, Side(info.side), Tif(info.tif),
                         OrderFlag(info.flags), Stp(info.stp))

    def position(self, user_id: int) -> int:
        """The user's net position in this book (buys minus sells), 0 without state."""
        return lib.rsx_book_position(self._book, _int("user_id", user_id, 0, 2**32 - 1), ffi.NULL)

    def open_orders(self, user_id: int) -> int:
        n = ffi.new("uint32_t *")
        lib.rsx_book_position(self._book, _int("user_id", user_id, 0, 2**32 - 1), n)
        return n[0]

    def stats(self) -> Stats:
        s = ffi.new("struct rsx_book_stats *")
        lib.rsx_book_stats(self._book, s)
        return Stats(s.orders, s.levels, s.users, s.ops, s.fills, s.recentres, s.center,
                     s.bid_levels, s.ask_levels)

    def memory(self) -> MemoryInfo:
        m = ffi.new("struct rsx_book_mem *")
        lib.rsx_book_mem(self._book, m)
        return MemoryInfo(Backing(m.backing), m.mapped_bytes, m.capacity, m.level_capacity,
                          m.max_users, m.bytes_per_order, m.hugetlb_errno,
                          ffi.string(m.warning).decode())

    def map_info(self) -> MapInfo:
        m = ffi.new("struct rsx_book_map_info *")
        lib.rsx_book_map_info(self._book, m)
        return MapInfo(m.center, m.tick, m.zone0_ticks, m.half, m.slots,
                       tuple((m.window_lo[s], m.window_hi[s]) for s in (0, 1)),
                       tuple(m.far_levels[s] for s in (0, 1)))

    def slot_of(self, price: int) -> int:
        """The window ring slot of a price (its tick mod R), or 2**64 - 1 outside the target
        window (for tests and diagnostics)."""
        return lib.rsx_book_slot_of(self._book, (_int("price", price, INT64_MIN, INT64_MAX),))

    @property
    def pending(self) -> bool:
        return bool(lib.rsx_book_pending(self._book))

    def check(self) -> None:
        """Audit every invariant (specs/book.md §8); raises InvalidArgumentError with the first violation."""
        msg = ffi.new("char[512]")
        rc = lib.rsx_book_check(self._book, msg, len(msg))
        if rc != 0:
            raise InvalidArgumentError(rc, "book invariant broken: " + ffi.string(msg).decode())

    # -- snapshot -----------------------------------------------------------

    def snapshot(self, wal_seq: int) -> bytes:
        """The book's state as of WAL seq ``wal_seq`` (specs/book.md §7), CRC-protected."""
        wal_seq = _int("wal_seq", wal_seq, 0, 2**64 - 1)
        size = lib.rsx_book_snapshot_size(self._book)
        buf = bytearray(size)
        n = lib.rsx_book_snapshot(self._book, wal_seq, ffi.from_buffer(buf), size)
        check(n, "snapshot")
        return bytes(buf)

    @classmethod
    def restore(cls, data: bytes, *, hugepages: str = "auto") -> tuple["Book", int]:
        """A new book from a snapshot, created with the snapshot's own parameters.

        Returns ``(book, wal_seq)``: replay the WAL from ``wal_seq + 1``. Raises the
        typed record errors for a short, corrupt (CRC) or foreign snapshot.
        """
        data = bytes(data)
        p = ffi.new("struct rsx_book_params *")
        c = ffi.new("struct rsx_symbol_config *")
        seq = ffi.new("uint64_t *")
        check(lib.rsx_book_snapshot_params(data, len(data), p, c, seq), "restore")
        config = SymbolConfig(
            symbol_id=c.symbol_id, price_decimals=c.price_decimals, qty_decimals=c.qty_decimals,
            tick_size=c.tick_size.raw, lot_size=c.lot_size.raw, min_qty=c.min_qty.raw,
            max_qty=c.max_qty.raw, maker_fee_bps=c.maker_fee_bps, taker_fee_bps=c.taker_fee_bps,
            initial_margin_bps=c.initial_margin_bps, maintenance_margin_bps=c.maintenance_margin_bps,
            status=c.status, config_version=c.config_version)
        book = cls(config, capacity=p.capacity, level_capacity=p.level_capacity,
                   max_users=p.max_users, ref_price=p.ref_price.raw, zone0_ticks=p.zone0_ticks,
                   stream_id=p.stream_id, hugepages=hugepages)
        try:
            check(lib.rsx_book_restore(book._book, data, len(data), seq), "restore")
        except BaseException:
            book.close()
            raise
        return book, seq[0]
