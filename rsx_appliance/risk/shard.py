"""The risk shard: orchestration of the C core, journal, prices, funding and liquidation.

Inputs (specs/risk.md 9.1): :meth:`RiskShard.on_me` (ME records, never
skipped), own inputs (:meth:`~RiskShard.deposit`, :meth:`~RiskShard.withdraw`,
:meth:`~RiskShard.set_params`, ...), :meth:`~RiskShard.submit` (gateway
requests and queries), :meth:`~RiskShard.on_mark` (prices),
:meth:`~RiskShard.on_funding_rate` (the mark process's rates),
:meth:`~RiskShard.tick` (time-driven work). :class:`ShardLoop` runs one step in
that order.

Every method returns an :class:`Outputs` (records for the MEs and for the
gateways) or raises a typed error having changed nothing (specs/risk.md 9.3).
Hot per-record work (fills, pre-trade, mark scans, liquidation decisions,
funding amounts) is in C.

The public interface the liquidator, recovery and the process use:
:meth:`~RiskShard.commit` (journal a batch), :meth:`~RiskShard.apply_batch`
(apply a committed one), :meth:`~RiskShard.apply_me` (ME records up to a
barrier), :meth:`~RiskShard.symbol_positions`, :meth:`~RiskShard.enqueue`
(accounts to decide), :meth:`~RiskShard.liquidate` and
:meth:`~RiskShard.scan_step` (the sliced work), :meth:`~RiskShard.release`
(outputs of durable batches), :attr:`~RiskShard.replaying`.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.ma  # noqa: F401  np.unique imports it lazily: once here, never in the middle of a liquidation

from .._native import ffi
from ..codes import Reason
from ..errors import ConfigError, rejected
from ..records import (HEADER_SIZE, PAYLOAD_DTYPES, RECORD_DTYPES, RecordType, codec, decode, encode_many,
                       iter_records)
from . import _recbuild
from ._core import ACCT_LIQ, EXTERNAL, FUND, NO_ORIGIN, ORD_LIQ, Capacity, Core, Event, LiqStop, Stop, raise_stop
from .errors import JournalError
from .funding import Cut, FundingState, clamp_rate, payment_records, rate_record
from .journal import Journal
from .params import SHARD_WIDE, Key, RiskParams, SymbolRiskParams
from .prices import PriceState

__all__ = ["RiskShard", "Outputs", "ShardLoop", "shard_stream_id"]

_OUT_CAP = 4 << 20
_PARAM = codec(RecordType.RISK_PARAM)
_RATE = codec(RecordType.FUNDING_RATE)
_TRANSFER = {RecordType.DEPOSIT: codec(RecordType.DEPOSIT),
             RecordType.WITHDRAWAL: codec(RecordType.WITHDRAWAL)}
_TS = struct.Struct("<Q")
_TS_AT = HEADER_SIZE + PAYLOAD_DTYPES[RecordType.RISK_PARAM].fields["ts_ns"][1]   # in the prefix all share
_ROUND, _ADL = 1, 3     # enum rsx_liq_kind values that name a symbol
IDLE_LAG_NS = 100_000_000   # an idle ME's clock: the process's own, this far behind (specs/risk.md 3.5)
RECONCILE_SCAN = 4_096       # order slots per reconciliation call in the process (sliced work, specs/risk.md 3.5)


def shard_stream_id(shard_id: int) -> int:
    """The stream id of a shard's journal and outputs (0x80000000 | shard_id)."""
    return 0x80000000 | shard_id


@dataclass
class Outputs:
    """Records a call produced, back-to-back v1 records: for the MEs (route by symbol), for the gateway
    that asked (refusals, query answers), for one gateway each (by its index: TIMEOUT answers), and for
    every gateway (LIQUIDATION, FUNDING_PAYMENT, FUNDING_RATE notices, pushes)."""

    to_me: bytearray = field(default_factory=bytearray)
    to_gateway: bytearray = field(default_factory=bytearray)
    to_origin: dict[int, bytearray] = field(default_factory=dict)
    to_all: bytearray = field(default_factory=bytearray)

    def extend(self, other: "Outputs") -> "Outputs":
        self.to_me += other.to_me
        self.to_gateway += other.to_gateway
        for g, buf in other.to_origin.items():
            self.to_origin.setdefault(g, bytearray()).extend(buf)
        self.to_all += other.to_all
        return self

    def __bool__(self) -> bool:
        return bool(self.to_me or self.to_gateway or self.to_all or any(self.to_origin.values()))

    def me_records(self) -> list:
        return list(iter_records(bytes(self.to_me)))

    def gateway_records(self) -> list:
        """Every record for any gateway: answers, per-gateway records, then the broadcast ones."""
        buf = bytes(self.to_gateway) + b"".join(bytes(b) for _, b in sorted(self.to_origin.items()))
        return list(iter_records(buf + bytes(self.to_all)))


class _SymbolIndex:
    """Per-symbol arrays of position slots (positions are never freed, so it only grows)."""

    def __init__(self) -> None:
        self.done = 0
        self.parts: dict[int, list[np.ndarray]] = {}
        self.cache: dict[int, np.ndarray] = {}

    def sync(self, positions: np.ndarray, n: int) -> None:
        if n <= self.done:
            return
        syms = positions["symbol_id"][self.done:n]
        slots = np.arange(self.done, n, dtype=np.int32)
        order = np.argsort(syms, kind="stable")
        syms, slots = syms[order], slots[order]
        uniq, starts = np.unique(syms, return_index=True)
        bounds = list(starts[1:]) + [len(syms)]
        for s, a, b in zip(uniq.tolist(), starts.tolist(), bounds):
            self.parts.setdefault(s, []).append(slots[a:b])
            self.cache.pop(s, None)
        self.done = n

    def get(self, symbol_id: int) -> np.ndarray:
        arr = self.cache.get(symbol_id)
        if arr is None:
            parts = self.parts.get(symbol_id)
            arr = np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)
            self.cache[symbol_id] = arr
        return arr


class RiskShard:
    """One risk shard (specs/risk.md). Build with :meth:`create` or :meth:`recover`.

    ``durability``: ``"wait"`` (a journaled batch is synced before the call that made it returns, and its
    outputs come back from that call) or ``"async"`` (decisions take effect when appended; their outputs
    are handed out by :meth:`release` once durable: the process). ``scan_slice``: None revalues a symbol
    and decides liquidations before a call returns; a number makes mark scans sliced work for
    :meth:`scan_step` and liquidations queued work for :meth:`liquidate` (the process).
    """

    def __init__(self, journal: Journal, *, shard_id: int, capacity: Capacity,
                 collateral_decimals: int, params: RiskParams, durability: str = "wait",
                 scan_slice: int | None = None) -> None:
        if not 0 <= shard_id < 0xFFFF:
            raise ConfigError(f"shard_id {shard_id} out of range")
        if not 0 <= collateral_decimals <= 18:
            raise ConfigError("collateral_decimals must be in 0..18")
        if durability not in ("wait", "async"):
            raise ConfigError(f"durability must be 'wait' or 'async', not {durability!r}")
        self.journal = journal
        self.shard_id = shard_id
        self.stream_id = shard_stream_id(shard_id)
        self.params = params
        self.durability = durability
        self.scan_slice = scan_slice
        # order slots one reconciliation call looks at (4k x 128 B: about 0.1 ms); the library sweeps all
        self.reconcile_scan = RECONCILE_SCAN if scan_slice else 0
        self.core = Core(shard_id, capacity, collateral_decimals, params.default_max_position,
                         params.default_liq_fee_bps, params.default_ins_share_bps)
        self._params_changed()
        self.sym_params: dict[int, SymbolRiskParams] = {}
        self.prices: dict[int, PriceState] = {}
        self.funding = FundingState()
        self.requests: set[bytes] = set()
        self.mark_tips: dict[int, int] = {}          # mark stream id -> last seq applied (the process)
        self.mark_journaled: dict[int, tuple[int, int]] = {}   # symbol -> (mark, clock) last journaled
        self.clock = 1          # the shard clock (ns); never 0, which a WAL would replace by its own time
        self.journal_seq = journal.last_seq      # last journal seq applied to this state
        self.last_reconcile = 0
        self.last_snapshot = 0
        self.snapshot_dir: str | None = None
        self.snapshot_keep = 3
        self.recovery_notes: list[str] = []
        self.stats = {"marks_refused": 0, "funding_settled": 0, "funding_duplicates": 0,
                      "funding_parked": 0, "funding_cuts": 0, "adl_decisions": 0, "liq_slices": 0}
        self._index = _SymbolIndex()
        self._replaying = False
        self._cuts_armed = True
        self._ready = Outputs()                  # outputs of durable batches, not handed out yet
        self._outbox: deque[tuple[int, Outputs]] = deque()
        self._liq_queue: deque[np.ndarray] = deque()
        self._force_book = -1
        self._reconcile_more = False
        self._revalue_jobs: dict[int, list[int]] = {}    # symbol -> [mark, next offset in its index]
        self._lens = ffi.new("size_t[2]")
        self._out_me = bytearray(_OUT_CAP)
        self._out_gw = bytearray(_OUT_CAP)
        self._out_me_view = memoryview(self._out_me)
        self._out_gw_view = memoryview(self._out_gw)
        self.core.bind_outputs(self._out_me, self._out_gw)
        self._liq_buf = bytearray(_OUT_CAP)
        self._liq_me = bytearray(2 * _OUT_CAP)
        self._liq_out = ffi.new("struct rsx_risk_liq_out *")
        self._liq_out.liq = ffi.from_buffer(self._liq_buf)
        self._liq_out.liq_cap = len(self._liq_buf)
        self._liq_out.me = ffi.from_buffer(self._liq_me)
        self._liq_out.me_cap = len(self._liq_me)
        self._push_buf = bytearray(_OUT_CAP)
        from .liquidation import Liquidator
        self.liquidator = Liquidator(self)

    # ------------------------------------------------------------------ build

    @classmethod
    def create(cls, journal: Journal, *, shard_id: int = 0, capacity: Capacity | None = None,
               collateral_decimals: int = 6, params: RiskParams | None = None,
               vshard_owner: Iterable[int] | None = None, now_ns: int = 0, durability: str = "wait",
               scan_slice: int | None = None) -> "RiskShard":
        """A fresh shard on an empty journal; its parameters are journaled as the first batch."""
        if journal.last_seq != 0:
            raise ConfigError("create() needs an empty journal; use recover()")
        params = params or RiskParams()
        shard = cls(journal, shard_id=shard_id, capacity=capacity or Capacity(),
                    collateral_decimals=collateral_decimals, params=params, durability=durability,
                    scan_slice=scan_slice)
        shard.clock = max(now_ns, 1)
        recs = [shard._param(SHARD_WIDE, k, v) for k, v in params.all_keys()]
        if vshard_owner is not None:
            table = np.asarray(list(vshard_owner), dtype=np.int64)
            if table.shape != (4096,) or table.min() < 0 or table.max() >= 0xFFFF:
                raise ConfigError("vshard_owner must list 4096 shard ids")
            recs += [shard._param(int(v), Key.VSHARD_OWNER, int(o))
                     for v, o in enumerate(table.tolist()) if o != shard_id]
        shard.commit(bytearray(b"".join(recs)), operator=True)
        return shard

    @classmethod
    def recover(cls, journal: Journal, me_sources: Mapping[int, Any], *, snapshot_dir: str | None = None,
                shard_id: int = 0, capacity: Capacity | None = None, collateral_decimals: int = 6,
                durability: str = "wait", scan_slice: int | None = None) -> "RiskShard":
        """Snapshot + own journal + ME records from tip + 1, then the scan (specs/risk.md 8.5)."""
        from .snapshot import recover

        return recover(cls, journal, me_sources, snapshot_dir=snapshot_dir, shard_id=shard_id,
                       capacity=capacity, collateral_decimals=collateral_decimals, durability=durability,
                       scan_slice=scan_slice)

    # --------------------------------------------------------- journal batches

    @property
    def replaying(self) -> bool:
        """True while recovery replays the journal and the ME streams (no decision is taken)."""
        return self._replaying

    def begin_replay(self) -> None:
        self._replaying = True
        self.core.r.replay = 1

    def end_replay(self) -> None:
        self._replaying = False
        self.core.r.replay = 0

    def _param(self, symbol_id: int, key: int, value: int, fill_tip: int = 0) -> bytes:
        return _PARAM.encode(ts_ns=self.clock, stream_id=self.stream_id, symbol_id=symbol_id, key=int(key),
                             value=int(value), fill_tip=fill_tip)

    def _barrier(self, symbol_id: int) -> bytes:
        return self._param(symbol_id, Key.FILL_BARRIER, 0, int(self.core.symbols["tip"][symbol_id]))

    def commit(self, records: bytearray, symbols: Iterable[int] = (), *, applied: bool = False,
               notify: bool = False, outputs: Outputs | None = None, operator: bool = False,
               count: int | None = None) -> int:
        """Journal a batch (a FILL_BARRIER per symbol it names, the records, a COMMIT) and apply it.

        ``applied``: the records already took effect (the C liquidation engine applies as it decides).
        ``notify``: the journaled records also go to every gateway. ``outputs`` leave once the batch is
        durable (:meth:`release`). ``operator``: an operator input, made durable before it is applied
        and answered, whatever the shard's durability. ``count``: the number of records, when the
        caller knows it. Returns the journal seq of the first record.
        The caller's ``records`` buffer ends up holding the journaled bytes (seq and CRC set)."""
        syms = sorted(set(int(x) for x in symbols))
        bars = b"".join(self._barrier(s) for s in syms)
        n = len(syms) + (count if count is not None else sum(c for _, _, _, c in _recbuild.runs(records)))
        end = self._param(SHARD_WIDE, Key.COMMIT, n)
        buf = bytearray(bars)
        buf += records
        buf += end
        first = self.journal.append(buf)
        self.journal_seq = self.journal.last_seq
        if self.durability == "wait" or operator:
            self.journal.sync()
        with memoryview(buf) as view:
            records[:] = view[len(bars):len(buf) - len(end)]
        if not applied:
            self.apply_batch(records)
        out = outputs if outputs is not None else Outputs()
        if notify:
            out.to_all += records
        self._park(self.journal_seq, out)
        return first + len(syms)

    def _park(self, seq: int, out: Outputs) -> None:
        if not out:
            return
        if self.durability == "wait" or self.journal.durable_seq >= seq and not self._outbox:
            self._ready.extend(out)
        else:
            self._outbox.append((seq, out))

    def release(self) -> Outputs:
        """Outputs of every batch that is durable now (in journal order), and nothing else."""
        durable = self.journal.durable_seq
        while self._outbox and self._outbox[0][0] <= durable:
            self._ready.extend(self._outbox.popleft()[1])
        out, self._ready = self._ready, Outputs()
        return out

    @property
    def outbox_pending(self) -> int:
        """Batches whose outputs wait for their fsync."""
        return len(self._outbox)

    def apply_batch(self, recs: bytes | bytearray | memoryview) -> None:
        """Apply one committed batch's records (live after the journal append, or in recovery); decisions
        are not re-taken."""
        view = memoryview(recs)
        shard_params: list[tuple[int, int]] = []
        sym_params: dict[int, list[tuple[int, int]]] = {}
        funding: list[bytes] = []
        for rtype, off, nbytes, count in _recbuild.runs(view):
            chunk = view[off:off + nbytes]
            last_ts = _TS.unpack_from(chunk, nbytes - _recbuild.record_size(chunk, 0) + _TS_AT)[0]
            self.clock = max(self.clock, last_ts)
            if rtype == RecordType.LIQUIDATION:
                self.core.liq_apply(chunk)
                self._index.sync(self.core.positions, self.core.r.n_positions)
                self._drain_events()
                continue
            if rtype == RecordType.FUNDING_PAYMENT:
                funding.append(bytes(chunk))
                continue
            for rec in _recbuild.split(chunk):
                if rtype == RecordType.FUNDING_RATE:
                    self._apply_funding(b"".join(funding), _RATE.unpack(rec))
                    funding = []
                elif rtype == RecordType.RISK_PARAM:
                    r = _PARAM.unpack(rec)
                    if r.key in (Key.COMMIT, Key.FILL_BARRIER):
                        continue
                    if r.key == Key.MARK:
                        self._apply_mark_record(r.symbol_id, r.value)
                    elif r.key == Key.FUNDING_CUT:
                        self._take_cut(r.symbol_id, r.value)
                    elif r.key == Key.VSHARD_OWNER:
                        self.core.vshard_owner[r.symbol_id] = r.value
                    elif r.symbol_id == SHARD_WIDE:
                        shard_params.append((r.key, r.value))
                    else:
                        sym_params.setdefault(r.symbol_id, []).append((r.key, r.value))
                elif rtype in (RecordType.DEPOSIT, RecordType.WITHDRAWAL):
                    self._apply_transfer(_TRANSFER[RecordType(rtype)].unpack(rec))
                else:
                    raise JournalError(f"unexpected record type {rtype} in the journal")
        if shard_params:
            self.params = self.params.with_keys(shard_params)   # the group at once (validated when set)
            self._params_changed()
        for sym, pairs in sym_params.items():
            self._apply_symbol_params(sym, SymbolRiskParams.from_keys(pairs))

    def go_live(self) -> None:
        """The end of recovery (specs/risk.md 8.5 step 4): revalue every symbol at its recovered mark and
        mark it stale until a fresh one (a symbol never priced stays unpriced), reconcile, then the
        liquidation scan of every account."""
        core = self.core
        for sym in np.flatnonzero(core.symbols["configured"]).tolist():
            mark = int(core.symbols["mark"][sym])
            core.set_mark(sym, mark, self.symbol_positions(sym))
            core.symbols["mark_stale"][sym] = mark > 0     # a symbol never priced stays valued at entry
        core.rebuild_users()          # the liquidation list; no push is due for replayed changes
        self.reconcile()
        self.enqueue(core.scan_all())
        self._settle_work()

    def _params_changed(self) -> None:
        p, r = self.params, self.core.r
        r.default_max_position = p.default_max_position
        r.default_liq_fee_bps = p.default_liq_fee_bps
        r.default_ins_share_bps = p.default_ins_share_bps
        self.core.set_liquidation_params(p.liq_base_delay_ns, p.liq_base_slip_bps, p.liq_max_slip_bps,
                                         p.liq_max_rounds)

    # ------------------------------------------------------------ ME streams

    def on_me(self, buf: bytes | bytearray | memoryview, stride: int = 0) -> Outputs:
        """Apply ME records (any streams, each in seq order; back to back, or one per ``stride`` bytes).
        Raises on a gap or a bad record, having applied every record before it."""
        out = Outputs()
        self.apply_me(memoryview(buf), stride)
        self._settle_work()
        return out.extend(self.release())

    def apply_me(self, view: memoryview, stride: int = 0) -> int:
        """Apply records until the end, or the recovery limit (core.r.limit_seq); returns bytes used."""
        off = 0
        core = self.core
        try:
            while off < len(view):
                n, res = core.apply_stream(view[off:], stride)
                off += n
                stop = res.stop
                if stop == Stop.CONFIG:
                    self._on_config(res.symbol_id)
                elif stop == Stop.CUT:
                    self._cut(res.symbol_id)
                elif stop == Stop.LIMIT:
                    self._drain_events()
                    return off
                elif stop not in (Stop.NONE, Stop.EVENTS):
                    self._drain_events()
                    raise_stop(res, "ME stream")
                self._drain_events()
            return off
        finally:
            self._index.sync(core.positions, core.r.n_positions)

    def _on_config(self, sym: int) -> None:
        """A CONFIG_APPLIED took effect: revalue the symbol's positions under the new rates."""
        self._index.sync(self.core.positions, self.core.r.n_positions)
        s = self.core.symbols[sym]
        self.prices.setdefault(sym, PriceState())
        interval_ns = int(s["funding_interval_s"]) * 1_000_000_000
        if sym not in self.funding.next_cut_ns:
            self.funding.next_cut_ns[sym] = (int(s["me_ts"]) // interval_ns + 1) * interval_ns
        self._arm_cut(sym)
        self.core.renormalise(sym)
        self._revalue(sym, int(s["mark"]), whole=True)

    def symbol_positions(self, symbol_id: int) -> np.ndarray:
        """Slots of every position of a symbol (never shrinks)."""
        self._index.sync(self.core.positions, self.core.r.n_positions)
        return self._index.get(symbol_id)

    def _drain_events(self) -> None:
        ev = self.core.drain_events()
        if not len(ev) or self._replaying:
            return
        liq = ev["acct"][ev["kind"] == Event.LIQUIDATABLE]
        if len(liq):
            self.enqueue(liq)

    # ------------------------------------------------------- funding

    def _arm_cut(self, sym: int) -> None:
        self.core.symbols["funding_cut_ns"][sym] = self.funding.next_cut_ns.get(sym, 0) if self._cuts_armed else 0

    def arm_cuts(self, armed: bool) -> None:
        """Recovery: journal replay takes cuts from the journal only (disarmed); live and catch-up cut
        at the boundaries themselves (armed)."""
        self._cuts_armed = armed
        for sym in np.flatnonzero(self.core.symbols["configured"]).tolist():
            self._arm_cut(sym)

    def _cut(self, sym: int) -> None:
        """The stream reached the symbol's boundary: journal the cut (the tip is its barrier)."""
        interval_ns = int(self.core.symbols["funding_interval_s"][sym]) * 1_000_000_000
        k = self.funding.next_cut_ns[sym] // interval_ns - 1
        tip = int(self.core.symbols["tip"][sym])
        self.commit(bytearray(self._param(sym, Key.FUNDING_CUT, k, tip)))
        parked = self.funding.parked.get(sym, {}).pop(k, None)
        if parked is not None and not self._replaying:
            self._settle(sym, _RATE.unpack(parked))

    def _take_cut(self, sym: int, k: int) -> None:
        idx = self.symbol_positions(sym)
        nets = self.core.positions["net"][idx]
        keep = nets != 0
        users = self.core.accounts["user_id"][self.core.positions["acct"][idx[keep]]]
        self.funding.cuts.setdefault(sym, {})[k] = Cut(users.astype(np.uint32), nets[keep].astype(np.int64))
        interval_ns = int(self.core.symbols["funding_interval_s"][sym]) * 1_000_000_000
        self.funding.next_cut_ns[sym] = max(self.funding.next_cut_ns.get(sym, 0), (k + 2) * interval_ns)
        self.stats["funding_cuts"] += 1
        self._arm_cut(sym)

    def on_funding_rate(self, buf: bytes | bytearray | memoryview, now_ns: int | None = None) -> Outputs:
        """FUNDING_RATE records from the mark process: each settled once, on its interval's cut."""
        recs = list(iter_records(bytes(buf)))
        for rec in recs:           # the whole buffer is checked before anything of it is applied
            if rec.type != RecordType.FUNDING_RATE:
                raise rejected(Reason.BAD_REQUEST, f"on_funding_rate takes FUNDING_RATE records, not {rec.type.name}")
            self._configured(rec.symbol_id)
        if now_ns is not None:
            self.clock = max(self.clock, now_ns)
        for raw in _recbuild.split(buf):
            self._on_rate(_RATE.unpack(raw), raw)
        self._settle_work()
        return self.release()

    def _configured(self, sym: int) -> None:
        if sym >= self.core.capacity.max_symbols or not self.core.symbols["configured"][sym]:
            raise rejected(Reason.UNKNOWN_SYMBOL, str(sym))

    def _on_rate(self, r, raw: bytes) -> None:
        sym, k = r.symbol_id, r.interval_id
        if k <= self.funding.last_settled.get(sym, -1):
            self.stats["funding_duplicates"] += 1
            return
        if k not in self.funding.cuts.get(sym, {}):
            self.funding.parked.setdefault(sym, {}).setdefault(k, bytes(raw))
            self.stats["funding_parked"] += 1
            return
        self._settle(sym, r)

    def _settle(self, sym: int, r) -> None:
        k = r.interval_id
        cut = self.funding.cuts[sym][k]
        rate = clamp_rate(r.rate_e8, int(self.core.symbols["max_funding_rate_bps"][sym]))
        mark = r.mark_px
        pay = bytearray()
        if mark > 0 and rate != 0 and len(cut.nets):
            amounts = self.core.funding_amounts(sym, mark, rate, cut.nets)
            keep = amounts != 0
            pay = payment_records(self.stream_id, self.clock, sym, k, mark, cut.user_ids[keep], amounts[keep],
                                  cut.nets[keep])
        pay += rate_record(self.stream_id, self.clock, sym, k, rate, mark, r.index_px)
        self.commit(pay, symbols=[sym], notify=True)
        self.stats["funding_settled"] += 1

    def _apply_funding(self, payments: bytes, rate) -> None:
        sym = rate.symbol_id
        payers = np.empty(0, dtype=np.uint32)
        if payments:
            arr = np.frombuffer(payments, dtype=RECORD_DTYPES[RecordType.FUNDING_PAYMENT])
            pl = arr["payload"]
            if np.any(pl["symbol_id"] != sym) or np.any(pl["interval_id"] != rate.interval_id):
                raise JournalError("funding payments do not match their FUNDING_RATE commit")
            self.core.apply_funding(sym, pl["user_id"], pl["amount"])
            payers = pl["user_id"][pl["amount"] < 0]
        self.funding.last_settled[sym] = max(self.funding.last_settled.get(sym, -1), rate.interval_id)
        for table in (self.funding.cuts, self.funding.parked):
            for k in [k for k in table.get(sym, {}) if k <= rate.interval_id]:
                del table[sym][k]
        self._index.sync(self.core.positions, self.core.r.n_positions)
        if not self._replaying and len(payers):
            find = self.core.find_account
            self.enqueue(self.core.check_accounts(np.array([find(int(u)) for u in payers], dtype=np.int32)))

    # ------------------------------------------------------- gateway requests

    def submit(self, buf: bytes | bytearray | memoryview, now_ns: int, stride: int = 0,
               origin: int = NO_ORIGIN) -> Outputs:
        """Pre-trade: NEW_ORDER / CANCEL_ORDER / CANCEL_ALL / AMEND_ORDER, and QUERY, from one gateway.

        Accepted requests come back in `to_me` (risk timestamps set), refusals as ORDER_FAILED and query
        answers in `to_gateway`; a batch is one C call (the per-request path is C)."""
        if now_ns > self.clock:
            self.clock = now_ns
        out = Outputs()
        core, lens = self.core, self._lens
        view = memoryview(buf)
        off, total = 0, len(view)
        while off < total:
            lens[0] = lens[1] = 0
            n, res = core.submit_into(view[off:] if off else view, stride, origin, now_ns, lens)
            off += n
            if lens[0]:
                out.to_me += self._out_me_view[:lens[0]]
            if lens[1]:
                out.to_gateway += self._out_gw_view[:lens[1]]
            stop = res.stop
            if core.r.n_positions != self._index.done:
                self._index.sync(core.positions, core.r.n_positions)
            if core.r.n_events:
                self._drain_events()
            if stop not in (Stop.NONE, Stop.EVENTS, Stop.OUT):
                raise_stop(res, "gateway request")
        self._settle_work()
        return out.extend(self.release())

    # ---------------------------------------------------------------- prices

    def on_mark(self, buf: bytes | bytearray | memoryview, now_ns: int | None = None) -> Outputs:
        """MARK_PRICE records (one per source): every record checked first, then each source price
        taken or refused (the band), then index and mark of the symbols touched (specs/risk.md 5)."""
        recs = list(iter_records(bytes(buf)))
        for rec in recs:
            if rec.type != RecordType.MARK_PRICE:
                raise rejected(Reason.BAD_REQUEST, f"on_mark takes MARK_PRICE records, not {rec.type.name}")
            self._configured(rec.symbol_id)
        if now_ns is not None:
            self.clock = max(self.clock, now_ns)
        p = self.params
        touched = set()
        for rec in recs:
            ps = self.prices.setdefault(rec.symbol_id, PriceState())
            if ps.accepts(rec.price, self.clock, p.price_stale_ns, p.source_band_bps):
                ps.on_source(rec.source_id, rec.price, rec.source_ts_ns)
                touched.add(rec.symbol_id)
            else:
                ps.refused += 1
                self.stats["marks_refused"] += 1
        for sym in sorted(touched):
            self._refresh_mark(sym, sample=False)
        self._settle_work()
        return self.release()

    def _bbo(self, sym: int) -> dict:
        s = self.core.symbols[sym]
        return {k: int(s[k]) for k in ("bid_px", "bid_qty", "ask_px", "ask_qty", "me_ts")}

    def _refresh_mark(self, sym: int, sample: bool) -> None:
        p = self.params
        ps = self.prices.setdefault(sym, PriceState())
        now = self.clock
        index = ps.compute_index(now, p.price_stale_ns)
        mid = ps.impact_mid(self._bbo(sym), now, p.price_stale_ns, p.impact_notional,
                            lambda px, q: self.core.value(sym, px, q))
        if sample:
            ps.sample(now, p.premium_sample_ns, None, index, mid, p.premium_ema_bps)
        mark = ps.update_mark(index, mid, p.mark_band_bps)
        if ps.fresh:
            self.core.symbols["mark_stale"][sym] = 0
        if mark != self._target_mark(sym):
            self._revalue(sym, mark)

    def _target_mark(self, sym: int) -> int:
        job = self._revalue_jobs.get(sym)
        return job[0] if job else int(self.core.symbols["mark"][sym])

    def set_mark(self, symbol_id: int, mark: int) -> Outputs:
        """Force a symbol's mark (tests, operator tools): revalue and scan for liquidations."""
        if mark < 0 or symbol_id >= self.core.capacity.max_symbols or \
                not self.core.symbols["configured"][symbol_id]:
            raise rejected(Reason.UNKNOWN_SYMBOL if mark >= 0 else Reason.PRICE_NOT_POSITIVE, str(symbol_id))
        ps = self.prices.setdefault(symbol_id, PriceState())
        ps.mark = mark
        self.core.symbols["mark_stale"][symbol_id] = 0
        self._revalue(symbol_id, mark)
        self._settle_work()
        return self.release()

    def _apply_mark_record(self, sym: int, mark: int) -> None:
        """A journaled MARK: the value in force (recovery revalues once, at its end)."""
        self.prices.setdefault(sym, PriceState()).mark = mark
        self.mark_journaled[sym] = (mark, self.clock)
        if self._replaying:
            self.core.symbols["mark"][sym] = mark

    def _revalue(self, sym: int, mark: int, whole: bool = False) -> None:
        if self._replaying:
            self.core.symbols["mark"][sym] = mark   # positions revalued once, at the end of recovery
            return
        if self.scan_slice is None or whole:
            self._revalue_jobs.pop(sym, None)
            self.enqueue(self.core.set_mark(sym, mark, self.symbol_positions(sym)))
        else:
            self._revalue_jobs[sym] = [mark, 0]

    def scan_step(self) -> bool:
        """One slice of pending mark revaluations (at most scan_slice positions); True while work remains."""
        budget = self.scan_slice or (1 << 62)
        for sym in list(self._revalue_jobs):
            mark, off = self._revalue_jobs[sym]
            idx = self.symbol_positions(sym)
            take = idx[off:off + budget]
            self.enqueue(self.core.set_mark(sym, mark, take))
            budget -= len(take)
            off += len(take)
            if off >= len(idx):
                del self._revalue_jobs[sym]
                if not len(take):
                    self.core.set_mark(sym, mark, take)     # an empty symbol still takes the mark
            else:
                self._revalue_jobs[sym][1] = off
            if budget <= 0:
                break
        return bool(self._revalue_jobs)

    # ------------------------------------------------------- liquidation

    def enqueue(self, accts: np.ndarray) -> None:
        """Accounts to decide (liquidatable, due, or to re-check), in user-id order per call."""
        accts = np.asarray(accts, dtype=np.int32)
        if not len(accts) or self._replaying:
            return
        uids = self.core.accounts["user_id"][accts]
        self._liq_queue.append(np.ascontiguousarray(accts[np.argsort(uids, kind="stable")]))

    @property
    def scan_pending(self) -> bool:
        """Mark revaluations not finished yet (sliced)."""
        return bool(self._revalue_jobs)

    @property
    def queued(self) -> int:
        """Accounts waiting for a liquidation decision."""
        return sum(len(a) for a in self._liq_queue)

    def liquidate(self, deadline_ns: int = 0) -> None:
        """Decide the queued accounts (C), journal each slice, ADL where needed; until the queue is empty or
        the CLOCK_MONOTONIC deadline (0: none) passes. Outputs come out of :meth:`release`."""
        core, lo = self.core, self._liq_out
        if deadline_ns:
            # the C decisions stop at three quarters of what is left: the slice's journal batch (about a
            # quarter of a decision's cost) is written after them and must fit in the same budget
            now = time.monotonic_ns()
            deadline_ns = now + max(0, deadline_ns - now) * 3 // 4
        while self._liq_queue:
            arr = self._liq_queue[0]
            lo.liq_len = lo.me_len = 0
            lo.force_book = self._force_book
            consumed = core.liq_decide(arr, self.clock, deadline_ns, lo)
            if self._force_book >= 0 and consumed:
                self._force_book = -1
            self._index.sync(core.positions, core.r.n_positions)
            self._drain_events()
            if lo.liq_len:
                liq = bytearray(memoryview(self._liq_buf)[:lo.liq_len])
                pl = np.frombuffer(liq, dtype=RECORD_DTYPES[RecordType.LIQUIDATION])["payload"]
                syms = np.unique(pl["symbol_id"][pl["kind"] == _ROUND]).tolist()
                self.commit(liq, symbols=syms, applied=True, notify=True, count=len(pl),
                            outputs=Outputs(to_me=bytearray(memoryview(self._liq_me)[:lo.me_len])))
                self.stats["liq_slices"] += 1
            rest = arr[consumed:]
            if lo.stop == LiqStop.ADL:
                acct = int(rest[0])
                if self.liquidator.adl(acct):
                    rest = rest[1:]
                    self.stats["adl_decisions"] += 1
                else:
                    self._force_book = acct     # nobody to deleverage against: the book at max slippage
            if len(rest):
                self._liq_queue[0] = rest
            else:
                self._liq_queue.popleft()
            if lo.stop == LiqStop.DEADLINE:
                break

    def _settle_work(self) -> None:
        """Library mode: finish the mark scans and liquidation decisions a call triggered."""
        if self.scan_slice is None and not self._replaying:
            while self._revalue_jobs:
                self.scan_step()
            self.liquidate()

    # ------------------------------------------------------- money movements

    def _check_amount(self, amount: Any) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise rejected(Reason.BAD_NUMBER, f"amount {amount!r}")
        if amount <= 0:
            raise rejected(Reason.AMOUNT_NOT_POSITIVE, str(amount))
        if amount > (1 << 63) - 1:
            raise rejected(Reason.VALUE_OUT_OF_RANGE, str(amount))
        return amount

    def deposit(self, user_id: int, amount: int, request_id: bytes, now_ns: int | None = None,
                asset_id: int = 0) -> bytes:
        """Credit collateral (user 0: the insurance fund). Returns the DEPOSIT record with
        balance_after. Raises Rejected (AMOUNT_NOT_POSITIVE, WRONG_SHARD, DUPLICATE_REQUEST,
        VALUE_OUT_OF_RANGE, OVERLOADED) having changed nothing."""
        return self._transfer(RecordType.DEPOSIT, user_id, amount, request_id, now_ns, asset_id)

    def withdraw(self, user_id: int, amount: int, request_id: bytes, now_ns: int | None = None,
                 asset_id: int = 0) -> bytes:
        """Debit collateral; never below IM in use + reservations, never unrealised profit, never while a
        position's mark is stale."""
        return self._transfer(RecordType.WITHDRAWAL, user_id, amount, request_id, now_ns, asset_id)

    def handle_transfer(self, record: bytes, now_ns: int | None = None) -> bytes:
        """A DEPOSIT or WITHDRAWAL record from an admin input (same checks)."""
        r = decode(record)
        if r.type not in (RecordType.DEPOSIT, RecordType.WITHDRAWAL):
            raise rejected(Reason.BAD_REQUEST, f"{r.type.name} is not a transfer")
        return self._transfer(r.type, r.user_id, r.amount, r.request_id.bytes, now_ns, r.asset_id)

    def _stale_position(self, acct: int) -> int | None:
        core = self.core
        p = int(core.accounts["pos_head"][acct])
        while p >= 0:
            row = core.positions[p]
            if int(row["net"]) != 0 and core.symbols["mark_stale"][int(row["symbol_id"])]:
                return int(row["symbol_id"])
            p = int(row["next"])
        return None

    def _transfer(self, rtype: RecordType, user_id: int, amount: int, request_id: bytes,
                  now_ns: int | None, asset_id: int) -> bytes:
        if now_ns is not None:
            self.clock = max(self.clock, now_ns)
        amount = self._check_amount(amount)
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 <= user_id <= 0xFFFFFFFF:
            raise rejected(Reason.UNKNOWN_USER, str(user_id))
        if asset_id != 0:
            raise rejected(Reason.VALUE_OUT_OF_RANGE, f"asset {asset_id}: only asset 0 (quote) exists")
        try:
            rid = _recbuild.oid_bytes(request_id)
        except (TypeError, ValueError):
            raise rejected(Reason.BAD_REQUEST, "request_id must be 16 bytes") from None
        fund = user_id == 0
        if not fund and not self.core.owns(user_id):
            raise rejected(Reason.WRONG_SHARD, f"user {user_id}")
        if rid in self.requests:
            raise rejected(Reason.DUPLICATE_REQUEST, rid.hex())
        acct = -1 if fund else self.core.find_account(user_id)
        if rtype == RecordType.DEPOSIT:
            bal = int(self.core.r.insurance_fund) if fund else (
                int(self.core.accounts["collateral"][acct]) if acct >= 0 else 0)
            if bal + amount > (1 << 63) - 1:
                raise rejected(Reason.VALUE_OUT_OF_RANGE, "balance would overflow int64")
            if acct < 0 and not fund and self.core.r.n_users >= self.core.capacity.max_users:
                raise rejected(Reason.OVERLOADED, "account table full")
            after = bal + amount
        else:
            if fund:
                avail = int(self.core.r.insurance_fund) - int(self.core.r.insurance_reserved)
            else:
                if acct < 0:
                    raise rejected(Reason.UNKNOWN_USER, f"user {user_id}")
                if self.core.accounts["flags"][acct] & ACCT_LIQ:
                    raise rejected(Reason.USER_IN_LIQUIDATION, f"user {user_id}")
                stale = self._stale_position(acct)
                if stale is not None:
                    raise rejected(Reason.MARK_STALE, f"symbol {stale} has no fresh mark since the restart")
                avail = self.core.margin(acct)["withdrawable"]
            if amount > avail:
                raise rejected(Reason.INSUFFICIENT_BALANCE, f"{amount} > withdrawable {max(avail, 0)}")
            bal = int(self.core.r.insurance_fund) if fund else int(self.core.accounts["collateral"][acct])
            after = bal - amount
        rec = bytearray(_TRANSFER[rtype].encode(ts_ns=self.clock, stream_id=self.stream_id, asset_id=0,
                                                user_id=user_id, request_id=rid, amount=amount, balance_after=after))
        self.commit(rec, operator=True)
        self._settle_work()
        return bytes(rec)

    def _apply_transfer(self, r) -> None:
        rid = r.request_id
        if r.user_id == 0:
            src, dst = (EXTERNAL, FUND) if r.type == RecordType.DEPOSIT else (FUND, EXTERNAL)
        else:
            acct = self.core.open_account(r.user_id)
            src, dst = (EXTERNAL, acct) if r.type == RecordType.DEPOSIT else (acct, EXTERNAL)
            if not self._replaying and r.type == RecordType.DEPOSIT:
                self.enqueue(np.array([acct], dtype=np.int32))   # a deposit may end a liquidation
        self.core.move(src, dst, r.amount)
        self.requests.add(rid)

    # ------------------------------------------------------------ parameters

    def set_params(self, params: RiskParams) -> Outputs:
        """Change shard-wide parameters (validated whole, journaled, then applied whole)."""
        if not isinstance(params, RiskParams):
            raise ConfigError("set_params takes a RiskParams")
        changes = self.params.changes(params)
        if changes:
            self.commit(bytearray(b"".join(self._param(SHARD_WIDE, k, v) for k, v in changes)), operator=True)
        self._settle_work()
        return self.release()

    def set_symbol_params(self, symbol_id: int, sp: SymbolRiskParams) -> Outputs:
        """Tiers / liquidation fee / insurance share of one configured symbol (journaled with a
        fill barrier: they change how later fills of that symbol are booked)."""
        self._configured(symbol_id)
        if not isinstance(sp, SymbolRiskParams):
            raise ConfigError("set_symbol_params takes a SymbolRiskParams")
        keys = sp.keys()
        if keys:
            self.commit(bytearray(b"".join(self._param(symbol_id, k, v) for k, v in keys)), symbols=[symbol_id],
                        operator=True)
        self._settle_work()
        return self.release()

    def set_vshard_owner(self, vshard: int, owner: int) -> None:
        """Move one virtual shard (specs/risk.md 10); journaled."""
        if not 0 <= vshard < 4096 or not 0 <= owner < 0xFFFF:
            raise ConfigError("vshard in 0..4095, owner in 0..65534")
        self.commit(bytearray(self._param(vshard, Key.VSHARD_OWNER, owner)), operator=True)

    def _apply_symbol_params(self, sym: int, sp: SymbolRiskParams) -> None:
        if sp.tiers is not None:
            self.core.set_tiers(sym, [t.max_notional for t in sp.tiers], [t.imr_bps for t in sp.tiers],
                                [t.mmr_bps for t in sp.tiers])
        if sp.liquidation_fee_bps is not None:
            self.core.symbols["liq_fee_bps"][sym] = sp.liquidation_fee_bps
        if sp.insurance_fee_share_bps is not None:
            self.core.symbols["ins_share_bps"][sym] = sp.insurance_fee_share_bps
        old = self.sym_params.get(sym, SymbolRiskParams())
        self.sym_params[sym] = SymbolRiskParams(
            tiers=sp.tiers if sp.tiers is not None else old.tiers,
            liquidation_fee_bps=sp.liquidation_fee_bps if sp.liquidation_fee_bps is not None
            else old.liquidation_fee_bps,
            insurance_fee_share_bps=sp.insurance_fee_share_bps if sp.insurance_fee_share_bps is not None
            else old.insurance_fee_share_bps)
        self.core.renormalise(sym)
        self._revalue(sym, int(self.core.symbols["mark"][sym]), whole=True)

    # ------------------------------------------------------------------ tick

    def tick(self, now_ns: int, me_idle: Iterable[int] = ()) -> Outputs:
        """Time-driven work: premium samples and marks, idle streams' clocks and funding cuts, journaled
        marks, liquidation rounds due, reconciliation, snapshots. ``me_idle``: symbols whose ME stream is
        caught up and alive (the process knows it from its receivers, specs/risk.md 3.5)."""
        self.clock = max(self.clock, now_ns)
        out = Outputs()
        syms = np.flatnonzero(self.core.symbols["configured"]).tolist()
        for sym in syms:
            self._refresh_mark(sym, sample=True)
        behind = self.clock - IDLE_LAG_NS
        for sym in me_idle:
            s = self.core.symbols
            if s["configured"][sym] and behind > int(s["me_ts"][sym]):
                s["me_ts"][sym] = behind
                cut = self.funding.next_cut_ns.get(sym, 0)
                if self._cuts_armed and cut and behind >= cut:
                    self._cut(sym)
        self._journal_marks(syms)
        due = self.core.liq_due(self.clock)
        if len(due):
            self.enqueue(due)
        if self._reconcile_more or self.clock - self.last_reconcile >= self.params.reconcile_interval_ns:
            self.reconcile(out, scan=self.reconcile_scan)
        self._settle_work()
        if (self.snapshot_dir and self.clock - self.last_snapshot >= self.params.snapshot_interval_ns
                and self.journal.durable_seq >= self.journal_seq):
            self.snapshot()
        return out.extend(self.release())

    def _journal_marks(self, syms: list[int]) -> None:
        recs = []
        for sym in syms:
            mark = int(self.core.symbols["mark"][sym])
            last = self.mark_journaled.get(sym)
            if mark > 0 and (last is None or (last[0] != mark and self.clock - last[1] >= self.params.mark_journal_ns)):
                recs.append(self._param(sym, Key.MARK, mark))
        if recs:
            self.commit(bytearray(b"".join(recs)))

    def reconcile(self, out: Outputs | None = None, cap: int = 4096, scan: int = 0) -> Outputs:
        """Release reservations the MEs never acknowledged (specs/risk.md 3.5), at most ``cap`` per call and
        looking at most ``scan`` order slots (0: all; the process passes RECONCILE_SCAN, so a sweep over a
        million orders is spread over ticks); the next tick goes on. TIMEOUT to the gateway each came from."""
        out = out if out is not None else Outputs()
        if not self._reconcile_more:
            self.last_reconcile = self.clock        # a pass starts
        released = self.core.reconcile(self.params.ack_timeout_ns, cap, scan)
        self._reconcile_more = int(self.core.r.recon_cursor) != 0
        released = released[(released["flags"] & ORD_LIQ) == 0]   # a liquidation order's end is liq_inflight
        if not len(released):
            return out
        recs = np.frombuffer(encode_many(
            RecordType.ORDER_FAILED, len(released), ts_ns=self.clock, stream_id=self.stream_id,
            symbol_id=released["symbol_id"], user_id=self.core.accounts["user_id"][released["acct"]],
            reason=int(Reason.TIMEOUT), request_type=int(RecordType.NEW_ORDER), order_id=released["oid"]),
            dtype=np.uint8).reshape(len(released), -1)
        origins = released["origin"]
        for origin in np.unique(origins).tolist():
            rows = recs[origins == origin].tobytes()
            if origin == NO_ORIGIN:
                out.to_all += rows
            else:
                out.to_origin.setdefault(origin, bytearray()).extend(rows)
        return out

    def take_pushes(self) -> bytes:
        """ACCOUNT and POSITION records of every account changed since the last call (for every gateway)."""
        parts = []
        while self.core.r.n_dirty:
            n = self.core.push(self.clock, self._push_buf)
            if not n:
                break
            parts.append(bytes(memoryview(self._push_buf)[:n]))
        return b"".join(parts)

    # ------------------------------------------------------------ snapshots

    def snapshot(self, directory: str | None = None) -> str:
        """Write a snapshot now (specs/risk.md 8.4); returns its path. Waits for the journal first."""
        from .snapshot import write_snapshot

        if self.journal.durable_seq < self.journal_seq:
            self.journal.sync()
        path = write_snapshot(self, directory or self.snapshot_dir, keep=self.snapshot_keep)
        self.last_snapshot = self.clock
        return path

    # --------------------------------------------------------------- views

    def account(self, user_id: int) -> dict[str, Any]:
        """Margin view of a user; raises Rejected(UNKNOWN_USER) if there is no account."""
        acct = self.core.find_account(user_id)
        if acct < 0:
            raise rejected(Reason.UNKNOWN_USER, str(user_id))
        m = self.core.margin(acct)
        a = self.core.accounts[acct]
        m["user_id"] = user_id
        m["in_liquidation"] = bool(a["flags"] & ACCT_LIQ)
        m["version"] = int(a["version"])
        m["n_orders"] = int(a["n_orders"])
        m["liq_round"] = int(a["liq_round"])
        m["liq_reserved"] = int(a["liq_reserved"])
        return m

    def position(self, user_id: int, symbol_id: int) -> dict[str, int] | None:
        acct = self.core.find_account(user_id)
        p = self.core.find_position(acct, symbol_id) if acct >= 0 else -1
        if p < 0:
            return None
        row = self.core.positions[p]
        d = {name: int(row[name]) for name in ("net", "cost", "rpnl", "funding", "fees", "open_qty",
                                               "value", "im", "mm", "last_seq", "version")}
        d["liq_px"] = self.core.liq_price(p)
        return d

    def ledgers(self) -> dict[str, int]:
        r = self.core.r
        return {"insurance_fund": int(r.insurance_fund), "fee_revenue": int(r.fee_revenue),
                "funding_clearing": int(r.funding_clearing), "insurance_reserved": int(r.insurance_reserved),
                "bad_debt": self.core.bad_debt()}

    def tips(self) -> dict[int, int]:
        s = self.core.symbols
        return {int(i): int(s["tip"][i]) for i in np.flatnonzero(s["configured"])}

    def counters(self) -> dict[str, int]:
        """The C core's counters and the shard's own (specs/risk.md 15.5)."""
        c = self.core.counters()
        c.update(self.stats)
        c.update(in_liquidation=int(self.core.r.n_liq), liq_queued=self.queued,
                 revalue_pending=len(self._revalue_jobs), outbox=len(self._outbox), live_orders=int(self.core.r.n_orders),
                 users=int(self.core.r.n_users), bad_debt=self.core.bad_debt())
        return c

    def audit(self) -> int:
        """Mismatches between the incremental state and a recomputation (0 = consistent)."""
        return self.core.audit()

    def canonical_state(self, money_only: bool = False) -> dict[str, Any]:
        """Everything that defines the shard, keyed by ids (not slots): equal states compare equal.

        money_only keeps what recovery must reproduce exactly (positions, collateral, ledgers,
        tips, funding, liquidation state, acknowledged reservations) and drops prices and clocks.
        """
        from .snapshot import canonical_state

        return canonical_state(self, money_only)


class ShardLoop:
    """One step of the shard loop in the order of specs/risk.md 9.1."""

    def __init__(self, shard: RiskShard) -> None:
        self.shard = shard

    def step(self, now_ns: int, me: Iterable[bytes] = (), own: Iterable[Any] = (),
             requests: Iterable[bytes] = (), marks: Iterable[bytes] = ()) -> Outputs:
        """me: ME record buffers; own: callables taking the shard (deposits, params);
        requests: gateway buffers; marks: MARK_PRICE buffers."""
        s = self.shard
        out = Outputs()
        for buf in me:
            out.extend(s.on_me(buf))
        for fn in own:
            fn(s)
        for buf in requests:
            out.extend(s.submit(buf, now_ns))
        for buf in marks:
            out.extend(s.on_mark(buf, now_ns))
        out.extend(s.tick(now_ns))
        return out
