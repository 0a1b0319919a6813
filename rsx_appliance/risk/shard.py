"""The risk shard: orchestration of the C core, journal, prices, funding and liquidation.

Order of work of one loop step (specs/risk.md 9.1): :meth:`RiskShard.on_me`
(ME records, never skipped), own inputs (:meth:`deposit`, :meth:`withdraw`,
:meth:`set_params`, ...), :meth:`submit` (gateway requests), :meth:`on_mark`
(prices), :meth:`tick` (premium samples, funding, liquidation rounds,
reconciliation, snapshots). :class:`ShardLoop` runs one step in that order.

Every method returns an :class:`Outputs` (records for the MEs and for the
gateway) or raises a typed error having changed nothing (specs/risk.md 9.3).
Hot per-record work (fills, pre-trade, mark scans, funding amounts) is in C.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._native import ffi
from ..codes import Reason
from ..errors import ConfigError, rejected
from ..records import HEADER_SIZE, RECORD_DTYPES, RecordType, codec, decode, iter_records
from . import _recbuild
from ._core import ACCT_LIQ, EXTERNAL, FUND, ORD_LIQ, Capacity, Core, Event, Stop, raise_stop
from .errors import JournalError
from .funding import funding_rate_e8, payment_records, rate_record
from .journal import Journal
from .params import SHARD_WIDE, Key, RiskParams, SymbolRiskParams
from .prices import PriceState

__all__ = ["RiskShard", "Outputs", "ShardLoop", "shard_stream_id"]

_OUT_CAP = 1 << 20
_PARAM = codec(RecordType.RISK_PARAM)
_RATE = codec(RecordType.FUNDING_RATE)
_LIQ = codec(RecordType.LIQUIDATION)
_FAILED = codec(RecordType.ORDER_FAILED)
_TRANSFER = {RecordType.DEPOSIT: codec(RecordType.DEPOSIT),
             RecordType.WITHDRAWAL: codec(RecordType.WITHDRAWAL)}
_U64 = (1 << 64) - 1


def shard_stream_id(shard_id: int) -> int:
    """The stream id of a shard's journal and outputs (0x80000000 | shard_id)."""
    return 0x80000000 | shard_id


@dataclass
class Outputs:
    """Records a call produced: back-to-back v1 records for the MEs and for the gateway."""

    to_me: bytearray = field(default_factory=bytearray)
    to_gateway: bytearray = field(default_factory=bytearray)

    def extend(self, other: "Outputs") -> "Outputs":
        self.to_me += other.to_me
        self.to_gateway += other.to_gateway
        return self

    def me_records(self) -> list:
        return list(iter_records(bytes(self.to_me)))

    def gateway_records(self) -> list:
        return list(iter_records(bytes(self.to_gateway)))


@dataclass
class LiqState:
    """A user in liquidation (specs/risk.md 7)."""

    round: int = 0
    next_at: int = 0
    reserved: int = 0                               # insurance fund reserved for the round in flight
    in_flight: set[bytes] = field(default_factory=set)   # liquidation orders not ended yet

    def to_json(self) -> dict:
        return {"round": self.round, "next_at": self.next_at, "reserved": self.reserved,
                "in_flight": sorted(o.hex() for o in self.in_flight)}

    @classmethod
    def from_json(cls, d: dict) -> "LiqState":
        return cls(d["round"], d["next_at"], d["reserved"], {bytes.fromhex(o) for o in d["in_flight"]})


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
    """One risk shard (specs/risk.md). Build with :meth:`create` or :meth:`recover`."""

    def __init__(self, journal: Journal, *, shard_id: int, capacity: Capacity,
                 collateral_decimals: int, params: RiskParams) -> None:
        if not 0 <= shard_id < 0xFFFF:
            raise ConfigError(f"shard_id {shard_id} out of range")
        if not 0 <= collateral_decimals <= 18:
            raise ConfigError("collateral_decimals must be in 0..18")
        self.journal = journal
        self.shard_id = shard_id
        self.stream_id = shard_stream_id(shard_id)
        self.params = params
        self.core = Core(shard_id, capacity, collateral_decimals, params.default_max_position,
                         params.default_liq_fee_bps, params.default_ins_share_bps)
        self.sym_params: dict[int, SymbolRiskParams] = {}
        self.prices: dict[int, PriceState] = {}
        self.funding_last: dict[int, int] = {}
        self.liq: dict[int, LiqState] = {}
        self.requests: set[bytes] = set()
        self.clock = 0
        self.id_counter = 0
        self.bad_debt = 0
        self.journal_seq = journal.last_seq      # last journal seq applied to this state
        self.last_reconcile = 0
        self.last_snapshot = 0
        self.snapshot_dir: str | None = None
        self.snapshot_keep = 3
        self._index = _SymbolIndex()
        self._replaying = False
        self._pending = Outputs()   # outputs of paths that have no caller's Outputs at hand
        self._lens = ffi.new("size_t[2]")
        self._out_me = bytearray(_OUT_CAP)
        self._out_gw = bytearray(_OUT_CAP)
        self._out_me_view = memoryview(self._out_me)
        self._out_gw_view = memoryview(self._out_gw)
        self.core.bind_outputs(self._out_me, self._out_gw)
        from .liquidation import Liquidator
        self.liquidator = Liquidator(self)

    # ------------------------------------------------------------------ build

    @classmethod
    def create(cls, journal: Journal, *, shard_id: int = 0, capacity: Capacity | None = None,
               collateral_decimals: int = 6, params: RiskParams | None = None,
               vshard_owner: Iterable[int] | None = None, now_ns: int = 0) -> "RiskShard":
        """A fresh shard on an empty journal; its parameters are journaled as the first batch."""
        if journal.last_seq != 0:
            raise ConfigError("create() needs an empty journal; use recover()")
        params = params or RiskParams()
        shard = cls(journal, shard_id=shard_id, capacity=capacity or Capacity(),
                    collateral_decimals=collateral_decimals, params=params)
        shard.clock = now_ns
        recs = [shard._param(SHARD_WIDE, k, v) for k, v in params.all_keys()]
        if vshard_owner is not None:
            table = np.asarray(list(vshard_owner), dtype=np.int64)
            if table.shape != (4096,) or table.min() < 0 or table.max() >= 0xFFFF:
                raise ConfigError("vshard_owner must list 4096 shard ids")
            recs += [shard._param(int(v), Key.VSHARD_OWNER, int(o))
                     for v, o in enumerate(table.tolist()) if o != shard_id]
        shard._commit(recs)
        return shard

    # --------------------------------------------------------- journal batches

    def _param(self, symbol_id: int, key: int, value: int, fill_tip: int = 0) -> bytes:
        return _PARAM.encode(ts_ns=self.clock, stream_id=self.stream_id, symbol_id=symbol_id, key=int(key),
                             value=int(value), fill_tip=fill_tip)

    def _barrier(self, symbol_id: int) -> bytes:
        return self._param(symbol_id, Key.FILL_BARRIER, 0, int(self.core.symbols["tip"][symbol_id]))

    def _commit(self, records: list[bytes], barriers: Iterable[int] = ()) -> int:
        """Journal a batch (barriers first, COMMIT last), make it durable, then apply it.

        Returns the journal seq of the first of `records`. Every batch that names a symbol carries
        that symbol's barrier, so recovery replays it at the same point of the ME stream."""
        bars = [self._barrier(s) for s in sorted(set(barriers))]
        recs = bars + list(records)
        recs.append(self._param(SHARD_WIDE, Key.COMMIT, len(recs)))
        first = self.journal.last_seq + 1 + len(bars)
        self.journal.append(recs)
        self.journal.sync()
        self.journal_seq = self.journal.last_seq
        self._apply_batch(recs[:-1])
        return first

    def _apply_batch(self, recs: list[bytes]) -> None:
        """Apply one committed batch (live after sync, or in recovery). Decisions are not re-taken."""
        shard_params: list[tuple[int, int]] = []
        sym_params: dict[int, list[tuple[int, int]]] = {}
        funding: list[bytes] = []
        for rec in recs:
            t = _recbuild.record_type(rec)
            if t == RecordType.FUNDING_PAYMENT:
                funding.append(rec)
                continue
            ts = struct.unpack_from("<Q", rec, HEADER_SIZE + 8)[0]
            self.clock = max(self.clock, ts)
            if t == RecordType.FUNDING_RATE:
                self._apply_funding(funding, _RATE.unpack(rec))
                funding = []
            elif t == RecordType.RISK_PARAM:
                r = _PARAM.unpack(rec)
                if r.key in (Key.COMMIT, Key.FILL_BARRIER):
                    continue
                if r.key == Key.VSHARD_OWNER:
                    self.core.vshard_owner[r.symbol_id] = r.value
                elif r.symbol_id == SHARD_WIDE:
                    shard_params.append((r.key, r.value))
                else:
                    sym_params.setdefault(r.symbol_id, []).append((r.key, r.value))
            elif t in (RecordType.DEPOSIT, RecordType.WITHDRAWAL):
                self._apply_transfer(_TRANSFER[t].unpack(rec))
            elif t == RecordType.LIQUIDATION:
                self.liquidator.apply(_LIQ.unpack(rec))
            else:
                raise JournalError(f"unexpected record type {t} in the journal")
        if shard_params:
            p = self.params
            for k, v in shard_params:
                p = p.with_key(k, v)
            self.params = p
            r = self.core.r
            r.default_max_position = p.default_max_position
            r.default_liq_fee_bps = p.default_liq_fee_bps
            r.default_ins_share_bps = p.default_ins_share_bps
        for sym, pairs in sym_params.items():
            self._apply_symbol_params(sym, SymbolRiskParams.from_keys(pairs))

    # ------------------------------------------------------------ ME streams

    def on_me(self, buf: bytes | bytearray | memoryview) -> Outputs:
        """Apply ME records (any streams, each in seq order). Raises on a gap or a bad record,
        having applied every record before it."""
        out = Outputs()
        self._apply_me(memoryview(buf), out)
        return self._take_pending(out)

    def _apply_me(self, view: memoryview, out: Outputs) -> int:
        """Apply records until the end, or the recovery limit (core.r.limit_seq); returns bytes used."""
        off = 0
        try:
            while True:
                n, res = self.core.apply_stream(view[off:])
                off += n
                stop = res.stop
                if stop == Stop.CONFIG:
                    self._on_config(res.symbol_id)
                elif stop not in (Stop.NONE, Stop.EVENTS, Stop.LIMIT):
                    self._drain(out)
                    raise_stop(res, "ME stream")
                self._drain(out)
                if stop in (Stop.NONE, Stop.LIMIT) or off >= len(view):
                    return off
        finally:
            self._index.sync(self.core.positions, self.core.r.n_positions)

    def _on_config(self, sym: int) -> None:
        """A CONFIG_APPLIED took effect: revalue the symbol's positions under the new rates."""
        self._index.sync(self.core.positions, self.core.r.n_positions)
        s = self.core.symbols[sym]
        self.prices.setdefault(sym, PriceState())
        if sym not in self.funding_last:
            interval_ns = int(s["funding_interval_s"]) * 1_000_000_000
            self.funding_last[sym] = int(s["me_ts"]) // interval_ns - 1
        self.core.renormalise(sym)
        self._revalue(sym, int(s["mark"]))

    def _revalue(self, sym: int, mark: int, out: Outputs | None = None) -> None:
        found = self.core.set_mark(sym, mark, self._index.get(sym))
        if len(found) and not self._replaying:
            self.liquidator.enter(found.tolist(), out if out is not None else self._pending)

    def _take_pending(self, out: Outputs) -> Outputs:
        if self._pending.to_me or self._pending.to_gateway:
            out.extend(self._pending)
            self._pending = Outputs()
        return out

    def _drain(self, out: Outputs) -> None:
        liquidatable = []
        for ev in self.core.drain_events():
            kind = int(ev["kind"])
            if kind == Event.LIQUIDATABLE and not self._replaying:
                liquidatable.append(int(ev["acct"]))
            elif kind == Event.LIQ_ORDER_DONE:
                self.liquidator.order_done(int(ev["user_id"]), bytes(ev["oid"]), int(ev["reason"]),
                                           int(ev["symbol_id"]))
        if liquidatable:
            self._index.sync(self.core.positions, self.core.r.n_positions)
            self.liquidator.enter(liquidatable, out)

    # ------------------------------------------------------- gateway requests

    def submit(self, buf: bytes | bytearray | memoryview, now_ns: int) -> Outputs:
        """Pre-trade: NEW_ORDER / CANCEL_ORDER / CANCEL_ALL / AMEND_ORDER from the gateway.

        Accepted requests come back in `to_me` (risk timestamps set), refusals as ORDER_FAILED
        in `to_gateway`; a batch is one C call (the per-request path is C)."""
        if now_ns > self.clock:
            self.clock = now_ns
        out = Outputs()
        core, lens = self.core, self._lens
        view = memoryview(buf)
        off, total = 0, len(view)
        while off < total:
            lens[0] = lens[1] = 0
            n, res = core.submit_into(view[off:] if off else view, now_ns, lens)
            off += n
            if lens[0]:
                out.to_me += self._out_me_view[:lens[0]]
            if lens[1]:
                out.to_gateway += self._out_gw_view[:lens[1]]
            stop = res.stop
            if core.r.n_positions != self._index.done:
                self._index.sync(core.positions, core.r.n_positions)
            if stop not in (Stop.NONE, Stop.EVENTS, Stop.OUT):
                raise_stop(res, "gateway request")
            if core.r.n_events:
                self._drain(out)
        if self._pending.to_me or self._pending.to_gateway:
            self._take_pending(out)
        return out

    # ---------------------------------------------------------------- prices

    def on_mark(self, buf: bytes | bytearray | memoryview, now_ns: int | None = None) -> Outputs:
        """MARK_PRICE records (one per source); recomputes index and mark of the symbols touched."""
        if now_ns is not None:
            self.clock = max(self.clock, now_ns)
        out = Outputs()
        touched = set()
        for rec in iter_records(bytes(buf)):
            if rec.type != RecordType.MARK_PRICE:
                raise rejected(Reason.BAD_REQUEST, f"on_mark takes MARK_PRICE records, not {rec.type.name}")
            sym = rec.symbol_id
            if sym >= self.core.capacity.max_symbols or not self.core.symbols["configured"][sym]:
                raise rejected(Reason.UNKNOWN_SYMBOL, f"mark for symbol {sym}")
            self.prices.setdefault(sym, PriceState()).on_source(rec.source_id, rec.price, rec.source_ts_ns)
            touched.add(sym)
        for sym in sorted(touched):
            self._refresh_mark(sym, out, sample=False)
        return self._take_pending(out)

    def _bbo(self, sym: int) -> dict:
        s = self.core.symbols[sym]
        return {k: int(s[k]) for k in ("bid_px", "bid_qty", "ask_px", "ask_qty", "me_ts")}

    def _refresh_mark(self, sym: int, out: Outputs, sample: bool) -> None:
        p = self.params
        ps = self.prices.setdefault(sym, PriceState())
        now = self.clock
        index = ps.compute_index(now, p.price_stale_ns)
        mid = ps.impact_mid(self._bbo(sym), now, p.price_stale_ns, p.impact_notional,
                            lambda px, q: self.core.value(sym, px, q))
        if sample:
            interval_ns = int(self.core.symbols["funding_interval_s"][sym]) * 1_000_000_000
            ps.sample(now, p.premium_sample_ns, interval_ns, index, mid, p.premium_ema_bps)
        mark = ps.update_mark(index, mid, p.mark_band_bps)
        if mark != int(self.core.symbols["mark"][sym]):
            self._revalue(sym, mark, out)

    def set_mark(self, symbol_id: int, mark: int) -> Outputs:
        """Force a symbol's mark (tests, operator tools): revalue and scan for liquidations."""
        if mark < 0 or symbol_id >= self.core.capacity.max_symbols or \
                not self.core.symbols["configured"][symbol_id]:
            raise rejected(Reason.UNKNOWN_SYMBOL if mark >= 0 else Reason.PRICE_NOT_POSITIVE, str(symbol_id))
        out = Outputs()
        ps = self.prices.setdefault(symbol_id, PriceState())
        ps.mark = mark
        self._revalue(symbol_id, mark, out)
        return self._take_pending(out)

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
        """Debit collateral; never below IM in use + reservations, never unrealised profit."""
        return self._transfer(RecordType.WITHDRAWAL, user_id, amount, request_id, now_ns, asset_id)

    def handle_transfer(self, record: bytes, now_ns: int | None = None) -> bytes:
        """A DEPOSIT or WITHDRAWAL record from an admin input (same checks)."""
        r = decode(record)
        if r.type not in (RecordType.DEPOSIT, RecordType.WITHDRAWAL):
            raise rejected(Reason.BAD_REQUEST, f"{r.type.name} is not a transfer")
        return self._transfer(r.type, r.user_id, r.amount, r.request_id.bytes, now_ns, r.asset_id)

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
                avail = int(self.core.r.insurance_fund) - self.liquidator.reserved_total()
            else:
                if acct < 0:
                    raise rejected(Reason.UNKNOWN_USER, f"user {user_id}")
                if self.core.accounts["flags"][acct] & ACCT_LIQ:
                    raise rejected(Reason.USER_IN_LIQUIDATION, f"user {user_id}")
                avail = self.core.margin(acct)["withdrawable"]
            if amount > avail:
                raise rejected(Reason.INSUFFICIENT_BALANCE, f"{amount} > withdrawable {max(avail, 0)}")
            bal = int(self.core.r.insurance_fund) if fund else int(self.core.accounts["collateral"][acct])
            after = bal - amount
        rec = _TRANSFER[rtype].encode(ts_ns=self.clock, stream_id=self.stream_id, asset_id=0, user_id=user_id,
                                      request_id=rid, amount=amount, balance_after=after)
        self._commit([rec])
        return bytes(self.journal_record(self.journal_seq - 1))

    def journal_record(self, seq: int) -> bytes:
        """The journaled bytes of one record (e.g. a confirmation with its seq)."""
        for s, rec in self.journal.read(seq):
            return rec
        raise KeyError(seq)

    def _apply_transfer(self, r) -> None:
        rid = r.request_id
        if r.user_id == 0:
            src, dst = (EXTERNAL, FUND) if r.type == RecordType.DEPOSIT else (FUND, EXTERNAL)
        else:
            acct = self.core.open_account(r.user_id)
            src, dst = (EXTERNAL, acct) if r.type == RecordType.DEPOSIT else (acct, EXTERNAL)
        self.core.move(src, dst, r.amount)
        self.requests.add(rid)

    # ------------------------------------------------------------ parameters

    def set_params(self, params: RiskParams) -> Outputs:
        """Change shard-wide parameters (journaled, then applied)."""
        if not isinstance(params, RiskParams):
            raise ConfigError("set_params takes a RiskParams")
        changes = self.params.changes(params)
        if changes:
            self._commit([self._param(SHARD_WIDE, k, v) for k, v in changes])
        return self._take_pending(Outputs())

    def set_symbol_params(self, symbol_id: int, sp: SymbolRiskParams) -> Outputs:
        """Tiers / liquidation fee / insurance share of one configured symbol (journaled with a
        fill barrier: they change how later fills of that symbol are booked)."""
        if symbol_id >= self.core.capacity.max_symbols or not self.core.symbols["configured"][symbol_id]:
            raise rejected(Reason.UNKNOWN_SYMBOL, str(symbol_id))
        if not isinstance(sp, SymbolRiskParams):
            raise ConfigError("set_symbol_params takes a SymbolRiskParams")
        keys = sp.keys()
        if keys:
            self._commit([self._param(symbol_id, k, v) for k, v in keys], barriers=[symbol_id])
        return self._take_pending(Outputs())

    def set_vshard_owner(self, vshard: int, owner: int) -> None:
        """Move one virtual shard (specs/risk.md 10); journaled."""
        if not 0 <= vshard < 4096 or not 0 <= owner < 0xFFFF:
            raise ConfigError("vshard in 0..4095, owner in 0..65534")
        self._commit([self._param(vshard, Key.VSHARD_OWNER, owner)])

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
        self._index.sync(self.core.positions, self.core.r.n_positions)
        self.core.renormalise(sym)
        self._revalue(sym, int(self.core.symbols["mark"][sym]))

    # ------------------------------------------------------------------ tick

    def tick(self, now_ns: int) -> Outputs:
        """Time-driven work: premium samples and marks, funding, liquidation rounds,
        reconciliation, snapshots (in that order)."""
        self.clock = max(self.clock, now_ns)
        out = Outputs()
        syms = np.flatnonzero(self.core.symbols["configured"]).tolist()
        for sym in syms:
            self._refresh_mark(sym, out, sample=True)
        for sym in syms:
            self._funding_due(sym, out)
        self.liquidator.tick(out)
        if self.clock - self.last_reconcile >= self.params.reconcile_interval_ns:
            self.reconcile(out)
        if self.snapshot_dir and self.clock - self.last_snapshot >= self.params.snapshot_interval_ns:
            self.snapshot()
        return self._take_pending(out)

    def reconcile(self, out: Outputs | None = None) -> Outputs:
        """Release reservations the MEs never acknowledged (specs/risk.md 3.5)."""
        out = out if out is not None else Outputs()
        self.last_reconcile = self.clock
        released = self.core.reconcile(self.params.ack_timeout_ns)
        for o in released:
            acct = int(o["acct"])
            user = int(self.core.accounts["user_id"][acct])
            oid = bytes(o["oid"])
            if int(o["flags"]) & ORD_LIQ:
                self.liquidator.order_done(user, oid, int(Reason.TIMEOUT), int(o["symbol_id"]))
                continue
            out.to_gateway += _FAILED.encode(ts_ns=self.clock, stream_id=self.stream_id,
                                             symbol_id=int(o["symbol_id"]), user_id=user,
                                             reason=int(Reason.TIMEOUT), request_type=int(RecordType.NEW_ORDER),
                                             order_id=oid, detail=0)
        return out

    # --------------------------------------------------------------- funding

    def _funding_due(self, sym: int, out: Outputs) -> None:
        interval_ns = int(self.core.symbols["funding_interval_s"][sym]) * 1_000_000_000
        cur = self.clock // interval_ns
        last = self.funding_last.get(sym, cur - 1)
        for k in range(last + 1, cur):
            self.settle_funding(sym, k, out)

    def settle_funding(self, sym: int, interval_id: int, out: Outputs | None = None) -> Outputs:
        """Settle (symbol, interval) once: journal the payments and the rate (the commit), then
        apply them. A second call for a settled interval does nothing."""
        out = out if out is not None else Outputs()
        if sym >= self.core.capacity.max_symbols or not self.core.symbols["configured"][sym]:
            raise rejected(Reason.UNKNOWN_SYMBOL, str(sym))
        if interval_id <= self.funding_last.get(sym, -1):
            return out
        s = self.core.symbols[sym]
        if interval_id >= self.clock // (int(s["funding_interval_s"]) * 1_000_000_000):
            raise rejected(Reason.BAD_REQUEST, f"funding interval {interval_id} has not ended")
        mark = int(s["mark"])
        ps = self.prices.setdefault(sym, PriceState())
        p = self.params
        rate = 0
        if mark > 0:
            rate = funding_rate_e8(ps.premium_average_e8(interval_id), p.funding_interest_e8,
                                   p.funding_premium_clamp_e8, int(s["max_funding_rate_bps"]))
        pay = b""
        if mark > 0 and rate != 0:
            pos, amt = self.core.funding_amounts(sym, mark, rate, self._index.get(sym))
            keep = amt != 0
            pos, amt = pos[keep], amt[keep]
            users = self.core.accounts["user_id"][self.core.positions["acct"][pos]]
            pay = payment_records(self.stream_id, self.clock, sym, interval_id, mark, users, amt,
                                  self.core.positions["net"][pos])
        rate_rec = rate_record(self.stream_id, self.clock, sym, interval_id, rate, mark, ps.index)
        recs = list(_recbuild.split(pay)) + [rate_rec]
        first = self._commit(recs, barriers=[sym])
        out.to_gateway += b"".join(self.journal_record_range(first, len(recs)))
        self.liquidator.run_deferred(out)
        return out

    def journal_record_range(self, first_seq: int, count: int) -> list[bytes]:
        out = []
        for s, rec in self.journal.read(first_seq):
            if len(out) >= count:
                break
            out.append(rec)
        return out

    def _apply_funding(self, payments: list[bytes], rate) -> None:
        sym = rate.symbol_id
        if payments:
            arr = np.frombuffer(b"".join(payments), dtype=RECORD_DTYPES[RecordType.FUNDING_PAYMENT])
            pl = arr["payload"]
            if np.any(pl["symbol_id"] != sym) or np.any(pl["interval_id"] != rate.interval_id):
                raise JournalError("funding payments do not match their FUNDING_RATE commit")
            self.core.apply_funding(sym, pl["user_id"], pl["amount"])
        self.funding_last[sym] = max(self.funding_last.get(sym, -1), rate.interval_id)
        self.prices.setdefault(sym, PriceState()).settled(rate.interval_id)
        if not self._replaying:
            # funding moved collateral: accounts paying may now be under maintenance
            accts = self.core.positions["acct"][self._index.get(sym)]
            self.liquidator.defer(self.core.check_accounts(np.unique(accts)).tolist())

    # ------------------------------------------------------------ snapshots

    def snapshot(self, directory: str | None = None) -> str:
        """Write a snapshot now (specs/risk.md 8.4); returns its path."""
        from .snapshot import write_snapshot

        path = write_snapshot(self, directory or self.snapshot_dir, keep=self.snapshot_keep)
        self.last_snapshot = self.clock
        return path

    @classmethod
    def recover(cls, journal: Journal, me_sources: Mapping[int, Any], *, snapshot_dir: str | None = None,
                shard_id: int = 0, capacity: Capacity | None = None,
                collateral_decimals: int = 6) -> "RiskShard":
        """Snapshot + own journal + ME records from tip + 1 (specs/risk.md 8.5)."""
        from .snapshot import recover

        return recover(cls, journal, me_sources, snapshot_dir=snapshot_dir, shard_id=shard_id,
                       capacity=capacity, collateral_decimals=collateral_decimals)

    # --------------------------------------------------------------- views

    def account(self, user_id: int) -> dict[str, Any]:
        """Margin view of a user; raises Rejected(UNKNOWN_USER) if there is no account."""
        acct = self.core.find_account(user_id)
        if acct < 0:
            raise rejected(Reason.UNKNOWN_USER, str(user_id))
        m = self.core.margin(acct)
        m["user_id"] = user_id
        m["in_liquidation"] = bool(self.core.accounts["flags"][acct] & ACCT_LIQ)
        m["version"] = int(self.core.accounts["version"][acct])
        m["n_orders"] = int(self.core.accounts["n_orders"][acct])
        return m

    def position(self, user_id: int, symbol_id: int) -> dict[str, int] | None:
        acct = self.core.find_account(user_id)
        p = self.core.find_position(acct, symbol_id) if acct >= 0 else -1
        if p < 0:
            return None
        row = self.core.positions[p]
        return {name: int(row[name]) for name in ("net", "cost", "rpnl", "funding", "fees", "open_qty",
                                                  "value", "im", "mm", "last_seq", "version")}

    def ledgers(self) -> dict[str, int]:
        r = self.core.r
        return {"insurance_fund": int(r.insurance_fund), "fee_revenue": int(r.fee_revenue),
                "funding_clearing": int(r.funding_clearing),
                "insurance_reserved": self.liquidator.reserved_total(), "bad_debt": self.bad_debt}

    def tips(self) -> dict[int, int]:
        s = self.core.symbols
        return {int(i): int(s["tip"][i]) for i in np.flatnonzero(s["configured"])}

    def audit(self) -> int:
        """Mismatches between the incremental state and a recomputation (0 = consistent)."""
        return self.core.audit()

    def canonical_state(self, money_only: bool = False) -> dict[str, Any]:
        """Everything that defines the shard, keyed by ids (not slots): equal states compare equal.

        money_only keeps what recovery must reproduce exactly (positions, collateral, ledgers,
        tips, funding, liquidation flags, acknowledged reservations) and drops prices and clocks.
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
