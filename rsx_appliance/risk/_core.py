"""Thin binding over the C risk core (native/src/risk_*.c).

:class:`Core` owns every table as a numpy array (accounts, positions, the
order table, symbols, the vshard table, events) and points one
``struct rsx_risk`` at them; C never allocates. Every C return code goes
through :func:`rsx_appliance.errors.check` or a typed exception here. Nothing
in this module re-implements what the C does: it allocates, converts and
raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._native import ffi, lib
from ..errors import check
from .errors import CapacityError, StreamGapError, stream_error

__all__ = ["Capacity", "Core", "ACCOUNT_DTYPE", "POSITION_DTYPE", "ORDER_DTYPE", "SYMBOL_DTYPE",
           "EVENT_DTYPE", "LIQ_ORDER_DTYPE", "Stop", "LiqStop", "Event", "ACCT_LIQ", "ACCT_DIRTY", "ORD_LIQ",
           "EXTERNAL", "FUND", "CLEARING", "REVENUE", "VSHARDS", "MAX_POSITION_CAP", "NO_ORIGIN", "vshard_of",
           "liq_id", "liq_id_counter", "raise_stop"]

VSHARDS = lib.RSX_RISK_VSHARDS
MAX_POSITION_CAP = 1 << 53
NO_ORIGIN = lib.RSX_RISK_NO_ORIGIN
ACCT_LIQ, ACCT_DIRTY = 1, 2
ORD_LIQ = 1
ORD_PENDING, ORD_ACKED = 1, 2
EXTERNAL, FUND, CLEARING, REVENUE = (lib.RSX_RISK_EXTERNAL, lib.RSX_RISK_FUND, lib.RSX_RISK_CLEARING,
                                     lib.RSX_RISK_REVENUE)


class Stop:
    """enum rsx_risk_stop."""

    (NONE, GAP, UNKNOWN_SYMBOL, BAD_CONFIG, OVERFLOW, FULL, EVENTS, OUT, RECORD, TYPE, CONFIG, LIMIT,
     CUT) = range(13)


class LiqStop:
    """enum rsx_risk_liq_stop."""

    DONE, ADL, OUT, DEADLINE = range(4)


class Event:
    """enum rsx_risk_event_kind."""

    LIQUIDATABLE, LATE_ACK, CONFIG = 1, 3, 4


def _dtype(struct: str, fields: list[tuple[str, str]]) -> np.dtype:
    """A numpy dtype with the C compiler's offsets for the named fields (others are opaque bytes)."""
    names, formats, offsets = [], [], []
    for name, fmt in fields:
        names.append(name)
        formats.append(fmt)
        offsets.append(ffi.offsetof(struct, name))
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": ffi.sizeof(struct)})


ACCOUNT_DTYPE = _dtype("struct rsx_risk_account", [
    ("user_id", "<u4"), ("flags", "<u4"), ("collateral", "<i8"), ("frozen", "<i8"),
    ("pos_head", "<i4"), ("n_orders", "<i4"), ("version", "<u8"), ("liq_round", "<u2"),
    ("liq_inflight", "<u2"), ("liq_slot", "<i4"), ("liq_next_at", "<u8"), ("liq_reserved", "<i8")])
POSITION_DTYPE = _dtype("struct rsx_risk_position", [
    ("acct", "<i4"), ("symbol_id", "<u4"), ("next", "<i4"), ("n_orders", "<i4"), ("net", "<i8"),
    ("cost", "<i8"), ("rpnl", "<i8"), ("funding", "<i8"), ("fees", "<i8"), ("open_qty", "<i8"),
    ("value", "<i8"), ("im", "<i8"), ("mm", "<i8"), ("last_seq", "<u8"), ("version", "<u8"),
    ("order_head", "<i4"), ("flags", "<u4")])
ORDER_DTYPE = _dtype("struct rsx_risk_order", [
    ("oid", "V16"), ("acct", "<i4"), ("pos", "<i4"), ("symbol_id", "<u4"), ("state", "u1"),
    ("side", "u1"), ("flags", "u1"), ("tif", "u1"), ("price", "<i8"), ("remaining", "<i8"), ("need", "<i8"),
    ("ts_ns", "<u8"), ("filled", "<i8"), ("placed_ts_ns", "<u8"), ("prev", "<i4"), ("next", "<i4"),
    ("origin", "<u2"), ("client_id", "V20")])


def _symbol_dtype() -> np.dtype:
    st = "struct rsx_risk_symbol"
    cfg = ffi.offsetof(st, "cfg")
    names, formats, offsets = [], [], []
    for name, fmt in [("symbol_id", "<u4"), ("price_decimals", "u1"), ("qty_decimals", "u1"),
                      ("status", "u1"), ("tick_size", "<i8"), ("lot_size", "<i8"),
                      ("min_qty", "<i8"), ("max_qty", "<i8"), ("maker_fee_bps", "<i4"),
                      ("taker_fee_bps", "<i4"), ("initial_margin_bps", "<u4"),
                      ("maintenance_margin_bps", "<u4"), ("config_version", "<u8")]:
        names.append(name)
        formats.append(fmt)
        offsets.append(cfg + ffi.offsetof("struct rsx_symbol_config", name))
    for name, fmt in [("configured", "u1"), ("funding_interval_s", "<u4"),
                      ("max_funding_rate_bps", "<u4"), ("n_tiers", "<u4"), ("liq_fee_bps", "<u4"),
                      ("ins_share_bps", "<u4"), ("divisor", "<i8"), ("tier_bound", "(8,)<i8"),
                      ("tier_imr", "(8,)<u4"), ("tier_mmr", "(8,)<u4"), ("tiers_custom", "u1"),
                      ("mark_stale", "u1"), ("mark", "<i8"), ("tip", "<u8"), ("me_ts", "<u8"),
                      ("bid_px", "<i8"), ("bid_qty", "<i8"), ("ask_px", "<i8"), ("ask_qty", "<i8"),
                      ("bbo_ts", "<u8"), ("n_fills", "<u8"), ("funding_cut_ns", "<u8")]:
        names.append(name)
        formats.append(fmt)
        offsets.append(ffi.offsetof(st, name))
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": ffi.sizeof(st)})


SYMBOL_DTYPE = _symbol_dtype()
EVENT_DTYPE = _dtype("struct rsx_risk_event", [
    ("kind", "<u2"), ("reason", "<u2"), ("symbol_id", "<u4"), ("acct", "<i4"), ("user_id", "<u4"),
    ("value", "<i8"), ("value2", "<i8"), ("oid", "V16")])
LIQ_ORDER_DTYPE = _dtype("struct rsx_risk_liq_order", [
    ("symbol_id", "<u4"), ("side", "u1"), ("qty", "<i8"), ("price", "<i8"), ("mark", "<i8")])

# The shard struct's scalar fields that snapshots carry (pointers, capacities and what a load rebuilds excluded).
SCALARS = ("n_users", "n_positions", "shard_id", "collateral_decimals", "default_max_position",
           "insurance_fund", "fee_revenue", "funding_clearing", "insurance_reserved", "liq_id_counter",
           "default_liq_fee_bps", "default_ins_share_bps", "fills_applied", "dup_skipped", "late_acks",
           "unknown_terminals", "reconciled", "saturations", "orders_accepted", "orders_rejected", "queries",
           "liq_rounds", "liq_adl", "liq_insurance", "liq_done")
# Counters a status file shows.
COUNTERS = ("fills_applied", "dup_skipped", "late_acks", "unknown_terminals", "reconciled", "saturations",
            "orders_accepted", "orders_rejected", "queries", "liq_rounds", "liq_adl", "liq_insurance",
            "liq_done")


_submit = lib.rsx_risk_submit
_apply = lib.rsx_risk_apply_stream


def vshard_of(user_id: int) -> int:
    """The fixed user -> virtual shard hash (C, MurmurHash3 fmix32 & 4095)."""
    return lib.rsx_risk_vshard(user_id)


def liq_id(ts_ns: int, shard_id: int, counter: int) -> bytes:
    """The 16-byte UUIDv7 of a liquidation order (C, rsx_risk_liq_id)."""
    if not 0 <= counter < (1 << 58) or not 0 <= shard_id < (1 << 16):
        raise ValueError("liq_id: counter or shard id out of range")
    out = ffi.new("rsx_oid_t *")
    lib.rsx_risk_liq_id(out, ts_ns, shard_id, counter)
    return bytes(ffi.buffer(out))


def liq_id_counter(oid: bytes) -> int:
    """The counter inside a liquidation order id."""
    o = ffi.new("rsx_oid_t *")
    ffi.memmove(o, oid, 16)
    return lib.rsx_risk_liq_id_counter(o)


def _pow2(n: int) -> int:
    return 1 << max(1, (n - 1).bit_length())


def _aligned_zeros(n: int, dtype: np.dtype, align: int = 64) -> np.ndarray:
    """Zeroed array whose data is `align`-aligned (the account struct holds __int128), every page touched
    now: the first write to a lazily mapped page faults (with transparent huge pages, a 2 MiB zeroing or a
    compaction stall), which must happen at start, not in the middle of an order batch."""
    nbytes = max(1, n) * dtype.itemsize
    raw = np.empty(nbytes + align, dtype=np.uint8)
    raw.fill(0)
    start = (-raw.ctypes.data) % align
    return raw[start:start + nbytes].view(dtype)[:n] if n else raw[start:start + nbytes].view(dtype)[:0]


@dataclass(frozen=True)
class Capacity:
    """Table sizes of one shard (fixed at creation; a snapshot may be loaded into larger ones)."""

    max_users: int = 100_000
    max_positions: int = 400_000
    max_orders: int = 200_000
    max_symbols: int = 256
    events_cap: int = 4096

    def __post_init__(self) -> None:
        for name in ("max_users", "max_positions", "max_orders", "max_symbols", "events_cap"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= (1 << 30):
                raise ValueError(f"Capacity.{name}={v!r} must be an int in [1, 2^30]")
        if self.events_cap < 8:
            raise ValueError("Capacity.events_cap must be >= 8")


class Core:
    """The C shard struct and its arrays."""

    def __init__(self, shard_id: int, capacity: Capacity, collateral_decimals: int,
                 default_max_position: int, default_liq_fee_bps: int,
                 default_ins_share_bps: int) -> None:
        self.capacity = capacity
        c = capacity
        self.accounts = _aligned_zeros(c.max_users, ACCOUNT_DTYPE)
        self.user_hash = np.full(_pow2(2 * c.max_users), -1, dtype=np.int32)
        self.positions = _aligned_zeros(c.max_positions, POSITION_DTYPE)
        self.orders = _aligned_zeros(c.max_orders, ORDER_DTYPE)
        self.order_hash = np.full(_pow2(2 * c.max_orders), -1, dtype=np.int32)
        self.symbols = _aligned_zeros(c.max_symbols, SYMBOL_DTYPE)
        self.vshard_owner = np.full(VSHARDS, shard_id, dtype=np.uint16)
        self.events = _aligned_zeros(c.events_cap, EVENT_DTYPE)
        self.liq_list = np.zeros(c.max_users, dtype=np.int32)
        self.dirty_list = np.zeros(c.max_users, dtype=np.int32)
        r = ffi.new("struct rsx_risk *")
        r.accounts = ffi.from_buffer("struct rsx_risk_account[]", self.accounts, require_writable=True)
        r.user_hash = ffi.from_buffer("int32_t[]", self.user_hash, require_writable=True)
        r.positions = ffi.from_buffer("struct rsx_risk_position[]", self.positions, require_writable=True)
        r.orders = ffi.from_buffer("struct rsx_risk_order[]", self.orders, require_writable=True)
        r.order_hash = ffi.from_buffer("int32_t[]", self.order_hash, require_writable=True)
        r.symbols = ffi.from_buffer("struct rsx_risk_symbol[]", self.symbols, require_writable=True)
        r.vshard_owner = ffi.from_buffer("uint16_t[]", self.vshard_owner, require_writable=True)
        r.events = ffi.from_buffer("struct rsx_risk_event[]", self.events, require_writable=True)
        r.liq_list = ffi.from_buffer("int32_t[]", self.liq_list, require_writable=True)
        r.dirty_list = ffi.from_buffer("int32_t[]", self.dirty_list, require_writable=True)
        r.max_users = c.max_users
        r.user_hash_mask = len(self.user_hash) - 1
        r.max_positions = c.max_positions
        r.order_mask = len(self.order_hash) - 1
        r.max_orders = c.max_orders
        r.order_free = -1
        r.max_symbols = c.max_symbols
        r.events_cap = c.events_cap
        r.shard_id = shard_id
        r.collateral_decimals = collateral_decimals
        r.default_max_position = default_max_position
        r.default_liq_fee_bps = default_liq_fee_bps
        r.default_ins_share_bps = default_ins_share_bps
        self.r = r
        check(lib.rsx_risk_init(r), "risk init")
        self._res = ffi.new("struct rsx_risk_result *")
        self._margin = ffi.new("struct rsx_risk_margin *")
        self._i64 = ffi.new("int64_t *")
        self._oid = ffi.new("rsx_oid_t *")
        self._order = ffi.new("struct rsx_risk_order *")
        self._size = ffi.new("size_t *")

    def set_liquidation_params(self, base_delay_ns: int, base_slip_bps: int, max_slip_bps: int,
                               max_rounds: int) -> None:
        r = self.r
        r.liq_base_delay_ns, r.liq_base_slip_bps = base_delay_ns, base_slip_bps
        r.liq_max_slip_bps, r.liq_max_rounds = max_slip_bps, max_rounds

    # -- lookups ------------------------------------------------------------

    def find_account(self, user_id: int) -> int:
        return lib.rsx_risk_find_account(self.r, user_id)

    def open_account(self, user_id: int) -> int:
        slot = lib.rsx_risk_open_account(self.r, user_id)
        if slot < 0:
            raise CapacityError(f"account table full ({self.capacity.max_users} users)")
        return slot

    def find_position(self, acct: int, symbol_id: int) -> int:
        return lib.rsx_risk_find_position(self.r, acct, symbol_id)

    def owns(self, user_id: int) -> bool:
        return bool(lib.rsx_risk_owns(self.r, user_id))

    def margin(self, acct: int) -> dict[str, int]:
        check(lib.rsx_risk_margin(self.r, acct, self._margin), "margin")
        m = self._margin
        return {"collateral": m.collateral, "frozen": m.frozen, "equity": m.equity, "im": m.im,
                "mm": m.mm, "available": m.available, "withdrawable": m.withdrawable,
                "liquidatable": bool(m.liquidatable), "positions": m.positions}

    def value(self, symbol_id: int, price: int, qty: int) -> int:
        check(lib.rsx_risk_value(self.r, symbol_id, price, qty, self._i64), "value")
        return self._i64[0]

    def tier_margin(self, symbol_id: int, notional: int, which: int) -> int:
        check(lib.rsx_risk_tier_margin(self.r, symbol_id, notional, which, self._i64), "tier margin")
        return self._i64[0]

    def get_order(self, oid: bytes) -> dict[str, Any] | None:
        self._oid.b = oid
        if lib.rsx_risk_get_order(self.r, self._oid, self._order) < 0:
            return None
        o = self._order
        return {"acct": o.acct, "pos": o.pos, "symbol_id": o.symbol_id, "state": o.state,
                "side": o.side, "flags": o.flags, "tif": o.tif, "price": o.price, "remaining": o.remaining,
                "filled": o.filled, "need": o.need, "ts_ns": o.ts_ns, "origin": o.origin,
                "client_id": bytes(o.client_id).rstrip(b"\0")}

    def fund_available(self, acct: int) -> int:
        return lib.rsx_risk_fund_available(self.r, acct)

    def bad_debt(self) -> int:
        return lib.rsx_risk_bad_debt(self.r)

    def liq_price(self, pos: int) -> int:
        return lib.rsx_risk_liq_price(self.r, pos)

    # -- mutations ----------------------------------------------------------

    def move(self, src: int, dst: int, amount: int) -> None:
        check(lib.rsx_risk_move(self.r, src, dst, amount), "move")

    def apply_stream(self, buf, stride: int = 0) -> tuple[int, Any]:
        """Apply ME records (back to back, or one per ``stride`` bytes); returns (bytes consumed, result)."""
        n = _apply(self.r, ffi.from_buffer(buf), len(buf), stride, self._res)
        return n, self._res

    def bind_outputs(self, out_me: bytearray, out_gw: bytearray) -> None:
        """The output buffers submit_into writes to (kept alive by the caller)."""
        self._me_p, self._me_n = ffi.from_buffer(out_me), len(out_me)
        self._gw_p, self._gw_n = ffi.from_buffer(out_gw), len(out_gw)

    def submit_into(self, buf, stride: int, origin: int, now_ns: int, lens) -> tuple[int, Any]:
        """Pre-trade over buf; outputs at the start of the bound buffers, lengths in lens[0..1]."""
        n = _submit(self.r, ffi.from_buffer(buf), len(buf), stride, origin, now_ns, self._me_p, self._me_n, lens,
                    self._gw_p, self._gw_n, lens + 1, self._res)
        return n, self._res

    def set_mark(self, symbol_id: int, mark: int, index: np.ndarray) -> np.ndarray:
        out = np.empty(max(1, len(index)), dtype=np.int32)
        index = np.ascontiguousarray(index, dtype=np.int32)
        n = lib.rsx_risk_set_mark(self.r, symbol_id, mark, ffi.from_buffer("int32_t[]", index),
                                  len(index), ffi.from_buffer("int32_t[]", out), len(out))
        check(n, "set_mark")
        return out[:n]

    def check_accounts(self, accts: np.ndarray) -> np.ndarray:
        accts = np.ascontiguousarray(accts, dtype=np.int32)
        out = np.empty(max(1, len(accts)), dtype=np.int32)
        n = lib.rsx_risk_check_accounts(self.r, ffi.from_buffer("int32_t[]", accts), len(accts),
                                        ffi.from_buffer("int32_t[]", out), len(out))
        return out[:n]

    def scan_all(self) -> np.ndarray:
        out = np.empty(max(1, self.r.n_users), dtype=np.int32)
        n = lib.rsx_risk_scan_all(self.r, ffi.from_buffer("int32_t[]", out), len(out))
        return out[:n]

    def set_tiers(self, symbol_id: int, bounds, imr, mmr) -> None:
        b = np.asarray(bounds, dtype=np.int64)
        i = np.asarray(imr, dtype=np.uint32)
        m = np.asarray(mmr, dtype=np.uint32)
        check(lib.rsx_risk_set_tiers(self.r, symbol_id, len(b), ffi.from_buffer("int64_t[]", b),
                                     ffi.from_buffer("uint32_t[]", i),
                                     ffi.from_buffer("uint32_t[]", m)), "set_tiers")

    def renormalise(self, symbol_id: int) -> int:
        """Re-reserve every live order of a symbol under its current rates."""
        return check(lib.rsx_risk_renormalise(self.r, symbol_id), "renormalise")

    def reconcile(self, ack_timeout_ns: int, cap: int = 4096, scan: int = 0) -> np.ndarray:
        """Release up to cap PENDING orders the MEs' clocks have passed (copies of them come back), looking at
        most ``scan`` order slots from where the last call stopped (0: to the end); ``r.recon_cursor`` is 0
        once a pass is complete."""
        if getattr(self, "_released", None) is None or len(self._released) < cap:
            self._released = _aligned_zeros(cap, ORDER_DTYPE)
        out = self._released
        n = lib.rsx_risk_reconcile(self.r, ack_timeout_ns,
                                   ffi.from_buffer("struct rsx_risk_order[]", out, require_writable=True), cap, scan)
        return out[:n].copy()

    def preview_close(self, acct: int, symbol_id: int, qtys, price: int) -> int:
        q = np.ascontiguousarray(qtys, dtype=np.int64)
        check(lib.rsx_risk_preview_close(self.r, acct, symbol_id, ffi.from_buffer("int64_t[]", q),
                                         len(q), price, self._i64), "preview close")
        return self._i64[0]

    def funding_amounts(self, symbol_id: int, mark: int, rate_e8: int, nets: np.ndarray) -> np.ndarray:
        nets = np.ascontiguousarray(nets, dtype=np.int64)
        amt = np.empty(max(1, len(nets)), dtype=np.int64)
        check(lib.rsx_risk_funding_amounts(self.r, symbol_id, mark, rate_e8, ffi.from_buffer("int64_t[]", nets),
                                           len(nets), ffi.from_buffer("int64_t[]", amt)), "funding amounts")
        return amt[:len(nets)]

    def apply_funding(self, symbol_id: int, user_ids: np.ndarray, amounts: np.ndarray) -> None:
        u = np.ascontiguousarray(user_ids, dtype=np.uint32)
        a = np.ascontiguousarray(amounts, dtype=np.int64)
        check(lib.rsx_risk_apply_funding(self.r, symbol_id, ffi.from_buffer("uint32_t[]", u),
                                         ffi.from_buffer("int64_t[]", a), len(u)), "apply funding")

    def adl_candidates(self, symbol_id: int, sign: int, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = max(1, len(index))
        index = np.ascontiguousarray(index, dtype=np.int32)
        pos = np.empty(n, dtype=np.int32)
        score = np.empty(n, dtype=np.int64)
        k = lib.rsx_risk_adl_candidates(self.r, symbol_id, sign, ffi.from_buffer("int32_t[]", index),
                                        len(index), ffi.from_buffer("int32_t[]", pos),
                                        ffi.from_buffer("int64_t[]", score), n)
        return pos[:k], score[:k]

    def liq_decide(self, accts: np.ndarray, now_ns: int, deadline_ns: int, out) -> int:
        """rsx_risk_liq_decide over accts into ``out`` (a struct rsx_risk_liq_out); returns accounts consumed."""
        accts = np.ascontiguousarray(accts, dtype=np.int32)
        check(lib.rsx_risk_liq_decide(self.r, ffi.from_buffer("int32_t[]", accts), len(accts), now_ns,
                                      deadline_ns, out), "liquidation decision")
        return out.consumed

    def liq_apply(self, buf) -> int:
        return check(lib.rsx_risk_liq_apply(self.r, ffi.from_buffer(buf), len(buf)), "apply liquidation")

    def liq_due(self, now_ns: int) -> np.ndarray:
        out = np.empty(max(1, self.r.n_liq), dtype=np.int32)
        n = lib.rsx_risk_liq_due(self.r, now_ns, ffi.from_buffer("int32_t[]", out), len(out))
        return out[:n]

    def push(self, ts_ns: int, out: bytearray) -> int:
        """ACCOUNT/POSITION records of the dirty accounts into out (from 0); returns bytes written."""
        self._size[0] = 0
        lib.rsx_risk_push(self.r, ts_ns, ffi.from_buffer(out), len(out), self._size)
        return self._size[0]

    def drain_events(self) -> np.ndarray:
        n = self.r.n_events
        if n == 0:
            return self.events[:0]
        ev = self.events[:n].copy()
        self.r.n_events = 0
        return ev

    def audit(self) -> int:
        return lib.rsx_risk_audit(self.r)

    # -- snapshot support ---------------------------------------------------

    def dump_orders(self) -> np.ndarray:
        out = _aligned_zeros(max(1, self.r.n_orders), ORDER_DTYPE)
        n = check(lib.rsx_risk_dump_orders(
            self.r, ffi.from_buffer("struct rsx_risk_order[]", out, require_writable=True), len(out)),
            "dump orders")
        return out[:n].copy()

    def load_orders(self, orders: np.ndarray) -> None:
        buf = _aligned_zeros(len(orders), ORDER_DTYPE)
        buf.view(np.uint8).reshape(-1)[:] = orders.view(np.uint8).reshape(-1)
        check(lib.rsx_risk_load_orders(self.r, ffi.from_buffer("struct rsx_risk_order[]", buf),
                                       len(buf)), "load orders")

    def rebuild_users(self) -> None:
        check(lib.rsx_risk_rebuild_users(self.r), "rebuild users")

    def scalars(self) -> dict[str, int]:
        return {name: int(getattr(self.r, name)) for name in SCALARS}

    def counters(self) -> dict[str, int]:
        return {name: int(getattr(self.r, name)) for name in COUNTERS}


def raise_stop(res: Any, where: str) -> None:
    """Turn a batch's stop code into the typed exception (specs/risk.md 9.3)."""
    from ..codes import ErrorCode, Reason
    from ..errors import error_for

    stop = res.stop
    if stop == Stop.GAP:
        raise StreamGapError(res.symbol_id, res.expected_seq, res.got_seq)
    if stop == Stop.RECORD:
        raise error_for(res.err, where)
    if stop == Stop.FULL:
        raise CapacityError(f"{where}: account, position or order table full "
                            f"(symbol {res.symbol_id})")
    if stop == Stop.BAD_CONFIG:
        raise stream_error(ErrorCode.INVALID, stop, res.symbol_id,
                           f"{where}: CONFIG_APPLIED refused: {Reason(res.err).name}")
    if stop == Stop.OVERFLOW:
        raise stream_error(ErrorCode.OVERFLOW, stop, res.symbol_id,
                           f"{where}: fill arithmetic does not fit int64 (fill not applied)")
    names = {Stop.UNKNOWN_SYMBOL: "record for an unconfigured symbol",
             Stop.TYPE: f"record type {res.err} does not belong on this input"}
    raise stream_error(ErrorCode.INVALID, stop, res.symbol_id, f"{where}: "
                       + names.get(stop, f"stop code {stop}"))
