"""Stream records -> table rows (specs/store.md 2 and 3), with numpy, per transaction.

:class:`Ingest` keeps what conversion needs across transactions (the symbol
configs in force, the risk parameters for liquidation fees, the uncommitted
tail of each risk journal) and turns a run of DXS batches into
:class:`Tables`, the rows of one transaction. It does no I/O; the writer
(:mod:`.writer`) stores the Tables and retries them as they are until they
commit, so the state advanced here always matches what will be committed (a
restart rebuilds it from the database with :meth:`Ingest.load`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from .._native import ffi, lib
from ..codes import LiqKind, OrderFlag
from ..config import streams
from ..records import RecordType as T
from ..risk.params import Key, RiskParams
from ..errors import check
from ..wal.block import ENTRY_DTYPE, Block

__all__ = ["Ingest", "Tables", "OrderFold", "FILL_COLUMNS", "ORDER_STAGE", "BalanceKind", "SymbolFees"]

log = logging.getLogger("rsx.store")

FILL_COLUMNS = ("symbol_id", "seq", "ts_ns", "taker_user_id", "maker_user_id", "taker_order_id",
                "maker_order_id", "price", "qty", "taker_side", "taker_flags", "maker_flags",
                "taker_remaining", "maker_remaining", "value", "taker_fee", "maker_fee")
# the fills columns, then a flag: the fill could not be valued (value and fees stored NULL)
_FILL_ROW = np.dtype([(c, "V16" if c.endswith("order_id") else "<i8") for c in FILL_COLUMNS] + [("unvalued", "<i8")])


def _struct_dtype(ctype: str) -> np.dtype:
    """The numpy dtype of a C struct of int64 fields and byte arrays, from the C declaration."""
    names, formats, offsets = [], [], []
    for name, f in ffi.typeof(ctype).fields:
        names.append(name)
        offsets.append(f.offset)
        formats.append(f"V{f.type.length}" if f.type.kind == "array" else "<i8")
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": ffi.sizeof(ctype)})


#: one row per order touched by a transaction (struct rsx_store_order: the C fold's output)
ORDER_STAGE = _struct_dtype("struct rsx_store_order")


class OrderFold:
    """The C order fold (rsx/store.h): a transaction's ME records -> one row per order."""

    def __init__(self, cap: int = 1 << 14) -> None:
        out = ffi.new("struct rsx_store_fold **")
        check(lib.rsx_store_fold_new(cap, out), "store order fold")
        self._f = ffi.gc(out[0], lib.rsx_store_fold_free)

    def add(self, block: Block) -> int:
        """Fold one ME batch (its records in stream order); returns how many touched an order."""
        if not len(block):
            return 0
        buf = ffi.from_buffer("uint8_t[]", block.raw)
        idx = np.ascontiguousarray(block.index)
        return check(lib.rsx_store_fold_add(self._f, buf, len(buf),
                                            ffi.cast("struct rsx_wal_entry *", idx.ctypes.data), len(idx)),
                     "store order fold")

    def take(self) -> np.ndarray:
        """The folded rows (ORDER_STAGE) in the order first seen; the fold is empty afterwards."""
        out = np.empty(lib.rsx_store_fold_count(self._f), dtype=ORDER_STAGE)
        n = check(lib.rsx_store_fold_take(self._f, ffi.cast("struct rsx_store_order *", out.ctypes.data),
                                          len(out)), "store order fold")
        return out[:n]


_LIQ_FLAG = int(OrderFlag.LIQUIDATION)
_RISK_DEFAULT_LIQ_FEE = RiskParams().default_liq_fee_bps


class BalanceKind:
    DEPOSIT, WITHDRAWAL, FUNDING, INSURANCE, ADL_CHARGE = 1, 2, 3, 4, 5


@dataclass
class SymbolFees:
    """The fee inputs of one symbol from a CONFIG_APPLIED (or the config file before one is seen)."""

    seq: int
    divisor: int  # 0 = the decimals give no valid divisor: fills stay unvalued
    taker_bps: int
    maker_bps: int


@dataclass
class Tables:
    """The rows of one transaction and the stream tips they bring."""

    fills: list[np.ndarray] = field(default_factory=list)
    orders: np.ndarray = field(default_factory=lambda: np.empty(0, ORDER_STAGE))  # folded, one per order
    symbol_configs: list[tuple] = field(default_factory=list)
    funding_payments: list[tuple] = field(default_factory=list)
    funding_rates: list[tuple] = field(default_factory=list)
    liquidations: list[tuple] = field(default_factory=list)
    balance_changes: list[tuple] = field(default_factory=list)
    risk_params: list[tuple] = field(default_factory=list)
    refee: list[tuple[int, int]] = field(default_factory=list)  # (symbol, fill_tip) to re-fee
    fees: "Ingest | None" = None  # the liquidation fee rates the re-fee reads (set with refee)
    tips: dict[int, tuple[int, int]] = field(default_factory=dict)  # stream -> (seq, ts_ns)
    records: int = 0
    nfills: int = 0
    aborted: int = 0
    ignored: int = 0
    newest_ts: int = 0  # ts_ns of the newest record stored (lag)

    def fill_rows(self) -> np.ndarray:
        return np.concatenate(self.fills) if self.fills else np.empty(0, _FILL_ROW)



def _cat(blocks: list[Block]) -> Block:
    """One block of several (the held tail of a risk journal and a new batch)."""
    if len(blocks) == 1:
        return blocks[0]
    raws, idx, off = [], [], 0
    for b in blocks:
        if not len(b):
            continue
        start = int(b.index["offset"][0])
        raw = bytes(memoryview(b.raw)[start:start + b.nbytes])
        i = b.index.copy()
        i["offset"] += off - start
        raws.append(raw)
        idx.append(i)
        off += len(raw)
    if not idx:
        return Block(b"", np.empty(0, ENTRY_DTYPE))
    return Block(b"".join(raws), np.concatenate(idx))


def _rest(block: Block, first: int) -> Block:
    """The records of block from index position `first` on."""
    if first >= len(block):
        return Block(b"", np.empty(0, ENTRY_DTYPE))
    idx = block.index[first:].copy()
    return Block(block.raw, idx)


def _p(arr: np.ndarray, name: str) -> np.ndarray:
    return arr["payload"][name]


class Ingest:
    """Conversion state across transactions; see the module docstring.

    ``collateral_decimals``: cd of the value divisor. ``fallback``: symbol id ->
    SymbolFees from the config file, used until the stream's CONFIG_APPLIED is
    seen. ``shard_of``: user id -> risk shard (liquidation fees are the taker's
    shard's).
    """

    def __init__(self, collateral_decimals: int, fallback: dict[int, SymbolFees] | None = None,
                 shard_of: Callable[[int], int] = lambda user: 0) -> None:
        self.cd = collateral_decimals
        self.fees: dict[int, SymbolFees] = dict(fallback or {})
        self.shard_of = shard_of
        self.liq_fee: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        self.default_liq: dict[int, int] = {}
        self.held: dict[int, Block] = {}  # risk stream -> records after its last COMMIT
        self.tips: dict[int, int] = {}
        self.orders = OrderFold()

    # -- state from the database ----------------------------------------------

    def divisor(self, price_decimals: int, qty_decimals: int) -> int:
        e = price_decimals + qty_decimals - self.cd
        return 10 ** e if 0 <= e <= 18 else 0

    def load(self, configs: Iterable[tuple], params: Iterable[tuple], tips: Iterable[tuple]) -> None:
        """configs: (symbol_id, seq, pd, qd, taker_bps, maker_bps) newest per symbol; params: risk_params
        rows (stream_id, seq, symbol_id, key, value, fill_tip) in seq order; tips: (stream_id, seq)."""
        for sid, seq, pd, qd, tb, mb in configs:
            self.fees[sid] = SymbolFees(seq, self.divisor(pd, qd), tb, mb)
        for row in params:
            self._param(*row)
        self.tips = {int(s): int(q) for s, q in tips}

    def _param(self, stream_id: int, seq: int, symbol_id: int, key: int, value: int, fill_tip: int | None) -> bool:
        """Track a liquidation fee parameter; True if it is one.

        Copy on write: the writer thread reads these tables (:meth:`liquidation_fee_bps`, re-feeing
        transaction N) while the next transaction is converted; it sees the old or the new table,
        never a half-updated one, and either gives the same end state (transaction N+1 re-fees what
        its parameters change).
        """
        shard = stream_id & 0x7FFFFFFF
        if key == Key.LIQUIDATION_FEE_BPS:
            self.liq_fee[(shard, symbol_id)] = sorted([*self.liq_fee.get((shard, symbol_id), ()),
                                                       (fill_tip or 0, seq, value)])
            return True
        if key == Key.DEFAULT_LIQ_FEE_BPS:
            self.default_liq = {**self.default_liq, shard: value}
            return True
        return False

    def liquidation_fee_bps(self, taker: int, symbol_id: int, seq: int) -> int:
        shard = self.shard_of(taker)
        best = None
        for tip, _, value in self.liq_fee.get((shard, symbol_id), ()):
            if tip < seq:
                best = value
        if best is not None:
            return best
        return self.default_liq.get(shard, _RISK_DEFAULT_LIQ_FEE)

    # -- conversion -------------------------------------------------------------

    def convert(self, items: Iterable[tuple[int, Block]]) -> Tables:
        """The rows of one transaction for these batches (per stream, in seq order)."""
        t = Tables()
        for stream_id, batch in items:
            if not len(batch):
                continue
            if stream_id & streams.RISK:
                self._risk(t, stream_id, batch)
            else:
                self._me(t, stream_id, batch)
            t.records += len(batch)
        t.orders = self.orders.take()
        if t.refee:
            t.fees = self
        return t

    def _me(self, t: Tables, stream_id: int, b: Block) -> None:
        seqs, types = b.index["seq"], b.index["type"]
        last = len(seqs) - 1
        used = np.isin(types, [T.CONFIG_APPLIED, T.FILL, T.ORDER_ACCEPTED, T.ORDER_INSERTED,
                               T.ORDER_AMENDED, T.ORDER_CANCELLED, T.ORDER_DONE, T.ORDER_FAILED, T.BBO,
                               T.CANCEL_ORDER, T.CANCEL_ALL, T.AMEND_ORDER])
        t.ignored += int(np.count_nonzero(~used))
        configs = b.view(T.CONFIG_APPLIED)
        fills = b.view(T.FILL)
        cfg_at = None
        if len(configs):
            for p in configs["payload"]:
                t.symbol_configs.append(tuple(int(p[k]) for k in (
                    "symbol_id", "seq", "ts_ns", "config_version", "price_decimals", "qty_decimals",
                    "tick_size", "lot_size", "min_qty", "max_qty", "status", "maker_fee_bps",
                    "taker_fee_bps", "initial_margin_bps", "maintenance_margin_bps", "funding_interval_s",
                    "max_funding_rate_bps")))
            cfg_at = configs
        if len(fills):
            t.fills.append(self._fill_rows(stream_id, fills, cfg_at))
            t.nfills += len(fills)
            t.newest_ts = max(t.newest_ts, int(_p(fills, "ts_ns")[-1]))
        if cfg_at is not None:
            p = cfg_at["payload"][-1]
            self.fees[stream_id] = SymbolFees(int(p["seq"]), self.divisor(int(p["price_decimals"]),
                                                                           int(p["qty_decimals"])),
                                              int(p["taker_fee_bps"]), int(p["maker_fee_bps"]))
        self.orders.add(b)
        ts_last = b.view(int(types[last]))["payload"]["ts_ns"][-1]
        t.tips[stream_id] = (int(seqs[last]), int(ts_last))
        t.newest_ts = max(t.newest_ts, int(ts_last))

    def _fill_rows(self, symbol_id: int, fills: np.ndarray, configs: np.ndarray | None) -> np.ndarray:
        p = fills["payload"]
        n = len(p)
        out = np.empty(n, dtype=_FILL_ROW)
        for c in FILL_COLUMNS[:14]:
            out[c] = p[c]
        # the config in force at each fill: the state's, then each CONFIG_APPLIED of the batch
        base = self.fees.get(symbol_id, SymbolFees(0, 0, 0, 0))
        table = [(base.seq, base.divisor, base.taker_bps, base.maker_bps)]
        if configs is not None:
            for c in configs["payload"]:
                table.append((int(c["seq"]), self.divisor(int(c["price_decimals"]), int(c["qty_decimals"])),
                              int(c["taker_fee_bps"]), int(c["maker_fee_bps"])))
        tab = np.array(table, dtype=np.int64)
        which = np.searchsorted(tab[:, 0], p["seq"].astype(np.int64), side="right") - 1
        which = np.maximum(which, 0)
        divisor = np.ascontiguousarray(tab[which, 1])
        taker_bps = tab[which, 2].astype(np.int32)
        maker_bps = np.ascontiguousarray(tab[which, 3].astype(np.int32))
        liq = np.flatnonzero(p["taker_flags"] & _LIQ_FLAG)
        for i in liq:
            taker_bps[i] = self.liquidation_fee_bps(int(p["taker_user_id"][i]), symbol_id, int(p["seq"][i]))
        price = np.ascontiguousarray(p["price"], dtype=np.int64)
        qty = np.ascontiguousarray(p["qty"], dtype=np.int64)
        taker_bps = np.ascontiguousarray(taker_bps)
        value, tfee, mfee = (np.empty(n, np.int64) for _ in range(3))
        ok = np.empty(n, np.uint8)
        i64 = lambda a: ffi.cast("int64_t *", a.ctypes.data)  # noqa: E731
        i32 = lambda a: ffi.cast("int32_t *", a.ctypes.data)  # noqa: E731
        bad = lib.rsx_ledger_fill_fees(n, i64(price), i64(qty), i64(divisor), i32(taker_bps), i32(maker_bps),
                                       i64(value), i64(tfee), i64(mfee), ffi.cast("uint8_t *", ok.ctypes.data))
        out["value"], out["taker_fee"], out["maker_fee"] = value, tfee, mfee
        out["unvalued"] = 0
        if bad:
            log.warning("store: %d fill(s) of symbol %d cannot be valued (no valid config or value "
                        "beyond int64): stored with value and fees NULL", bad, symbol_id)
            out["unvalued"] = ok == 0
        return out

    # -- risk journals -------------------------------------------------------------

    def _risk(self, t: Tables, stream_id: int, batch: Block) -> None:
        held = self.held.get(stream_id)
        b = _cat([held, batch]) if held is not None and len(held) else batch
        params = b.view(T.RISK_PARAM)
        pp = params["payload"]
        commits = pp[pp["key"] == Key.COMMIT]
        if not len(commits):
            self.held[stream_id] = b
            return
        seqs = b.index["seq"].astype(np.int64)
        # every record before the last COMMIT is settled: committed (its batch) or aborted
        c_seq = commits["seq"].astype(np.int64)
        c_len = commits["value"].astype(np.int64)
        pos_of = {int(s): i for i, s in enumerate(seqs)}
        batch_of = np.full(len(seqs), -1, dtype=np.int64)  # commit number, -1 = aborted or marker
        for k, (cs, n) in enumerate(zip(c_seq.tolist(), c_len.tolist())):
            c = pos_of[cs]
            if n < 0 or n > c or seqs[c - n] != cs - n:
                raise ValueError(f"risk stream {stream_id}: COMMIT at seq {cs} covers {n} records that "
                                 f"are not all held")
            batch_of[c - n:c] = k
        settled = pos_of[int(c_seq[-1])] + 1
        t.aborted += int(np.count_nonzero(batch_of[:settled] < 0)) - len(commits)
        self.held[stream_id] = _rest(b, settled)
        t.tips[stream_id] = (int(c_seq[-1]), int(commits["ts_ns"][-1]))
        t.newest_ts = max(t.newest_ts, int(commits["ts_ns"][-1]))

        def committed(rtype: int) -> tuple[np.ndarray, np.ndarray]:
            a = b.view(rtype)
            if not len(a):
                return a["payload"], np.empty(0, np.int64)
            pa = a["payload"]
            at = np.searchsorted(seqs, pa["seq"].astype(np.int64))
            k = batch_of[at]
            keep = k >= 0
            return pa[keep], k[keep]

        # barriers: (commit number, symbol) -> fill_tip
        pp_c, kp = committed(T.RISK_PARAM)
        barrier: dict[tuple[int, int], int] = {}
        for r, k in zip(pp_c, kp.tolist()):
            seq, ts, sym, key = int(r["seq"]), int(r["ts_ns"]), int(r["symbol_id"]), int(r["key"])
            value, fill_tip = int(r["value"]), int(r["fill_tip"])
            if key == Key.FILL_BARRIER:
                barrier[(k, sym)] = fill_tip
            elif key != Key.COMMIT:
                t.risk_params.append((stream_id, seq, ts, sym, key, value, fill_tip or None))
                if self._param(stream_id, seq, sym, key, value, fill_tip) and key == Key.LIQUIDATION_FEE_BPS:
                    t.refee.append((sym, fill_tip))
        for rtype, sign, kind in ((T.DEPOSIT, 1, BalanceKind.DEPOSIT), (T.WITHDRAWAL, -1, BalanceKind.WITHDRAWAL)):
            pa, _ = committed(rtype)
            for r in pa:
                t.balance_changes.append((stream_id, int(r["seq"]), int(r["user_id"]), int(r["ts_ns"]), kind,
                                          sign * int(r["amount"]), int(r["balance_after"]), None,
                                          bytes(r["request_id"])))
        rates: dict[tuple[int, int, int], int] = {}
        pa, ka = committed(T.FUNDING_RATE)
        for r in pa:
            t.funding_rates.append((stream_id, int(r["seq"]), int(r["ts_ns"]), int(r["symbol_id"]),
                                    int(r["interval_id"]), int(r["rate_e8"]), int(r["mark_px"]),
                                    int(r["index_px"])))
        for r, k in zip(pa, ka):
            rates[(int(k), int(r["symbol_id"]), int(r["interval_id"]))] = int(r["rate_e8"])
        pa, ka = committed(T.FUNDING_PAYMENT)
        for r, k in zip(pa, ka):
            sym, interval = int(r["symbol_id"]), int(r["interval_id"])
            t.funding_payments.append((stream_id, int(r["seq"]), int(r["ts_ns"]), sym, int(r["user_id"]),
                                       interval, int(r["amount"]), int(r["position"]), int(r["mark_px"]),
                                       rates.get((int(k), sym, interval))))
            t.balance_changes.append((stream_id, int(r["seq"]), int(r["user_id"]), int(r["ts_ns"]),
                                      BalanceKind.FUNDING, int(r["amount"]), None, sym, None))
        pa, ka = committed(T.LIQUIDATION)
        for r, k in zip(pa, ka):
            seq, ts, sym, user = int(r["seq"]), int(r["ts_ns"]), int(r["symbol_id"]), int(r["user_id"])
            kind, shortfall, cp = int(r["kind"]), int(r["shortfall"]), int(r["counterparty_user_id"])
            t.liquidations.append((stream_id, seq, ts, sym, user, kind, int(r["side"]), int(r["round"]),
                                   int(r["slippage_bps"]), bytes(r["order_id"]), int(r["qty"]),
                                   int(r["price"]), int(r["mark_px"]), int(r["equity"]),
                                   int(r["maintenance_margin"]), shortfall, cp, barrier.get((int(k), sym))))
            if kind == LiqKind.INSURANCE and shortfall:
                t.balance_changes.append((stream_id, seq, user, ts, BalanceKind.INSURANCE, shortfall, None,
                                          sym, None))
            elif kind == LiqKind.ADL and shortfall:
                t.balance_changes.append((stream_id, seq, user, ts, BalanceKind.ADL_CHARGE, shortfall, None,
                                          sym, None))
                t.balance_changes.append((stream_id, seq, cp, ts, BalanceKind.ADL_CHARGE, -shortfall, None,
                                          sym, None))
        t.ignored += int(np.count_nonzero(~np.isin(
            b.index["type"][:settled], [T.RISK_PARAM, T.DEPOSIT, T.WITHDRAWAL, T.FUNDING_RATE,
                                        T.FUNDING_PAYMENT, T.LIQUIDATION])))
