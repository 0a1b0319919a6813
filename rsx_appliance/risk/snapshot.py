"""Snapshots and recovery (specs/risk.md 8.4, 8.5), and the canonical state.

File: ``snap-<journal_seq>.rsx`` = magic ``RSXRISK1`` | u32 format | u32 sections |
per section (u16 name length, name, u64 length, u32 CRC32C, bytes) | u32 CRC32C
of everything before. Tables are stored as their used rows (raw struct bytes,
the liquidation state of every account included); Python state as JSON;
funding cuts as one binary section. Written with
:func:`~rsx_appliance.fsutil.atomic_write` (temporary file, fsync, rename,
directory fsync); the newest `keep` are kept.
"""

from __future__ import annotations

import glob
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from .._native import ffi, lib
from ..codes import ErrorCode
from ..fsutil import atomic_write
from ..records import RecordType, codec
from . import _recbuild
from ._core import ACCOUNT_DTYPE, ACCT_DIRTY, ORDER_DTYPE, POSITION_DTYPE, SYMBOL_DTYPE, Capacity
from .errors import RiskError, SnapshotError, stream_error
from .funding import FundingState
from .params import Key, RiskParams, SymbolRiskParams
from .prices import PriceState

__all__ = ["write_snapshot", "read_snapshot", "load_snapshot", "recover", "canonical_state",
           "list_snapshots", "encode_snapshot", "decode_snapshot"]

MAGIC = b"RSXRISK1"
FORMAT = 2
_PARAM = codec(RecordType.RISK_PARAM)


def _crc(data: bytes | memoryview) -> int:
    return lib.rsx_crc32c(0, ffi.from_buffer(data), len(data))


def list_snapshots(directory: str) -> list[str]:
    """Snapshot files in directory, newest (highest journal seq) first."""
    files = glob.glob(os.path.join(directory, "snap-*.rsx"))
    return sorted(files, key=lambda f: int(os.path.basename(f)[5:-4]), reverse=True)


def encode_snapshot(shard) -> bytes:
    """The snapshot of a shard's current state as bytes (the file format)."""
    core = shard.core
    r = core.r
    meta = {
        "format": FORMAT, "shard_id": shard.shard_id, "collateral_decimals": int(r.collateral_decimals),
        "capacity": asdict(core.capacity), "scalars": core.scalars(), "journal_seq": shard.journal_seq,
        "clock": shard.clock, "last_reconcile": shard.last_reconcile, "last_snapshot": shard.clock,
        "params": asdict(shard.params),
        "sym_params": {str(k): v.keys() for k, v in shard.sym_params.items()},
        "prices": {str(k): v.to_json() for k, v in shard.prices.items()},
        "funding": shard.funding.to_json(),
        "mark_tips": {str(k): v for k, v in shard.mark_tips.items()},
        "mark_journaled": {str(k): list(v) for k, v in shard.mark_journaled.items()},
        "itemsizes": [ACCOUNT_DTYPE.itemsize, POSITION_DTYPE.itemsize, ORDER_DTYPE.itemsize,
                      SYMBOL_DTYPE.itemsize],
    }
    reqs = np.frombuffer(b"".join(sorted(shard.requests)), dtype="V16") if shard.requests else \
        np.zeros(0, dtype="V16")
    sections = [
        ("meta", json.dumps(meta, sort_keys=True).encode()),
        ("accounts", core.accounts[:r.n_users].tobytes()),
        ("positions", core.positions[:r.n_positions].tobytes()),
        ("symbols", core.symbols.tobytes()),
        ("vshard", core.vshard_owner.tobytes()),
        ("orders", core.dump_orders().tobytes()),
        ("requests", reqs.tobytes()),
        ("funding_cuts", shard.funding.cut_arrays()),
    ]
    body = bytearray(MAGIC + struct.pack("<II", FORMAT, len(sections)))
    for name, data in sections:
        nb = name.encode()
        body += struct.pack("<H", len(nb)) + nb + struct.pack("<QI", len(data), _crc(data)) + data
    body += struct.pack("<I", _crc(body))
    return bytes(body)


def write_bytes(body: bytes, directory: str, journal_seq: int, keep: int = 3) -> str:
    """Write an encoded snapshot (atomic_write); keep the newest."""
    path = os.path.join(directory, f"snap-{journal_seq:020d}.rsx")
    atomic_write(path, body, make_parents=True)
    for old in list_snapshots(directory)[keep:]:
        os.unlink(old)
    return path


def write_snapshot(shard, directory: str, keep: int = 3) -> str:
    if not directory:
        raise SnapshotError("no snapshot directory configured")
    return write_bytes(encode_snapshot(shard), directory, shard.journal_seq, keep)


def read_snapshot(path: str) -> tuple[dict, dict[str, bytes]]:
    """(meta, sections) of a snapshot file; SnapshotError if any CRC or field is wrong."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise SnapshotError(f"{path}: {exc}") from exc
    return decode_snapshot(data, path)


def decode_snapshot(data: bytes, path: str = "snapshot") -> tuple[dict, dict[str, bytes]]:
    if len(data) < 20 or data[:8] != MAGIC:
        raise SnapshotError(f"{path}: not a risk snapshot")
    if struct.unpack_from("<I", data, len(data) - 4)[0] != _crc(memoryview(data)[:-4]):
        raise SnapshotError(f"{path}: trailer CRC mismatch (torn or corrupt)")
    fmt, n = struct.unpack_from("<II", data, 8)
    if fmt != FORMAT:
        raise SnapshotError(f"{path}: format {fmt}, expected {FORMAT}")
    off, sections = 16, {}
    for _ in range(n):
        (ln,) = struct.unpack_from("<H", data, off)
        name = data[off + 2:off + 2 + ln].decode()
        off += 2 + ln
        size, crc = struct.unpack_from("<QI", data, off)
        off += 12
        chunk = data[off:off + size]
        if len(chunk) != size or _crc(chunk) != crc:
            raise SnapshotError(f"{path}: section {name} CRC mismatch")
        sections[name] = chunk
        off += size
    meta = json.loads(sections["meta"])
    if meta["itemsizes"] != [ACCOUNT_DTYPE.itemsize, POSITION_DTYPE.itemsize, ORDER_DTYPE.itemsize,
                             SYMBOL_DTYPE.itemsize]:
        raise SnapshotError(f"{path}: table layouts differ from this build")
    return meta, sections


def load_snapshot(cls, journal, path: str | bytes, capacity: Capacity | None = None, **kw):
    """A shard in the state of a snapshot file (or its bytes); journal position = the snapshot's."""
    meta, sec = decode_snapshot(path) if isinstance(path, bytes) else read_snapshot(path)
    cap = Capacity(**meta["capacity"])
    if capacity is not None:
        cap = Capacity(*(max(a, b) for a, b in zip(asdict(cap).values(), asdict(capacity).values())))
    if cap.max_symbols != meta["capacity"]["max_symbols"]:
        raise SnapshotError("max_symbols cannot change across a snapshot")
    shard = cls(journal, shard_id=meta["shard_id"], capacity=cap,
                collateral_decimals=meta["collateral_decimals"], params=RiskParams(**meta["params"]), **kw)
    core = shard.core
    sc = meta["scalars"]
    acc = np.frombuffer(sec["accounts"], dtype=ACCOUNT_DTYPE)
    pos = np.frombuffer(sec["positions"], dtype=POSITION_DTYPE)
    if len(acc) != sc["n_users"] or len(pos) != sc["n_positions"]:
        raise SnapshotError(f"{path}: table sizes disagree with the header")
    # raw byte copies: a structured assignment would skip the bytes no field names (the 128-bit sums)
    _raw(core.accounts)[:len(sec["accounts"])] = np.frombuffer(sec["accounts"], dtype=np.uint8)
    _raw(core.positions)[:len(sec["positions"])] = np.frombuffer(sec["positions"], dtype=np.uint8)
    if len(sec["symbols"]) != core.symbols.nbytes:
        raise SnapshotError(f"{path if isinstance(path, str) else 'snapshot'}: symbol table size differs")
    _raw(core.symbols)[:] = np.frombuffer(sec["symbols"], dtype=np.uint8)
    core.vshard_owner[:] = np.frombuffer(sec["vshard"], dtype=np.uint16)
    for name, value in sc.items():
        setattr(core.r, name, value)
    core.rebuild_users()
    core.load_orders(np.frombuffer(sec["orders"], dtype=ORDER_DTYPE))
    shard.requests = {bytes(x) for x in np.frombuffer(sec["requests"], dtype="V16")}
    shard.journal_seq = meta["journal_seq"]
    shard.clock = meta["clock"]
    shard.last_reconcile = meta["last_reconcile"]
    shard.last_snapshot = meta["last_snapshot"]
    shard.sym_params = {int(k): SymbolRiskParams.from_keys([tuple(x) for x in v])
                        for k, v in meta["sym_params"].items()}
    shard.prices = {int(k): PriceState.from_json(v) for k, v in meta["prices"].items()}
    shard.funding = FundingState.from_json(meta["funding"], sec["funding_cuts"])
    shard.mark_tips = {int(k): int(v) for k, v in meta["mark_tips"].items()}
    shard.mark_journaled = {int(k): (int(v[0]), int(v[1])) for k, v in meta["mark_journaled"].items()}
    shard.symbol_positions(0)
    return shard


def _raw(arr: np.ndarray) -> np.ndarray:
    """The bytes of a contiguous structured array, writable, padding included."""
    return arr.view(np.uint8).reshape(-1)


class _Source:
    """An ME's records from tip + 1, pulled on demand (barriers), remainder kept."""

    def __init__(self, shard, symbol_id: int, fn) -> None:
        self.shard, self.symbol_id, self.fn = shard, symbol_id, fn
        self.it = None
        self.pending = memoryview(b"")

    def _tip(self) -> int:
        return self.shard.tips().get(self.symbol_id, 0)

    def _next(self) -> bool:
        if self.it is None:
            self.it = iter(self.fn(self._tip() + 1))
        for buf in self.it:
            if len(buf):
                self.pending = memoryview(bytes(buf))
                return True
        return False

    def pull(self, upto: int | None) -> None:
        """Apply records up to seq `upto` (None: until the source ends)."""
        shard = self.shard
        core = shard.core
        while upto is None or self._tip() < upto:
            if not len(self.pending) and not self._next():
                if upto is not None:
                    raise RiskError(f"recovery: the ME source of symbol {self.symbol_id} ended at seq "
                                    f"{self._tip()}, the journal needs {upto}")
                return
            core.r.limit_seq = upto or 0
            try:
                used = shard.apply_me(self.pending)
            finally:
                core.r.limit_seq = 0
            self.pending = self.pending[used:]
            if upto is not None and len(self.pending) and self._tip() >= upto:
                return


def _batches(journal, from_seq: int):
    """Committed batches after from_seq: COMMIT(value = n) closes the n records before it."""
    buf: list[tuple[int, bytes]] = []
    for seq, rec in journal.read(from_seq):
        if _recbuild.record_type(rec) == RecordType.RISK_PARAM:
            r = _PARAM.unpack(rec)
            if r.key == Key.COMMIT:
                n = r.value
                yield seq, [x for _, x in buf[len(buf) - n:]] if n else []
                buf = []
                continue
        buf.append((seq, rec))
    # an uncommitted tail is a decision that never took effect: dropped


def recover(cls, journal, me_sources: Mapping[int, Any], *, snapshot_dir: str | None, shard_id: int,
            capacity: Capacity | None, collateral_decimals: int, durability: str = "wait",
            scan_slice: int | None = None):
    kw = dict(durability=durability, scan_slice=scan_slice)
    shard, notes = None, []
    if snapshot_dir and os.path.isdir(snapshot_dir):
        for path in list_snapshots(snapshot_dir):
            try:
                shard = load_snapshot(cls, journal, path, capacity, **kw)
                break
            except SnapshotError as exc:
                notes.append(str(exc))  # fall back to an older snapshot
    if shard is None:
        shard = cls(journal, shard_id=shard_id, capacity=capacity or Capacity(),
                    collateral_decimals=collateral_decimals, params=RiskParams(), **kw)
        shard.journal_seq = 0
    shard.snapshot_dir = snapshot_dir
    shard.recovery_notes = notes
    sources = {int(s): _Source(shard, int(s), fn) for s, fn in me_sources.items()}
    shard.begin_replay()
    try:
        shard.arm_cuts(False)                   # 2: the journal says where cuts were taken
        last = shard.journal_seq
        for seq, recs in _batches(journal, shard.journal_seq + 1):
            for rec in recs:
                if _recbuild.record_type(rec) != RecordType.RISK_PARAM:
                    continue
                r = _PARAM.unpack(rec)
                if r.key in (Key.FILL_BARRIER, Key.FUNDING_CUT):
                    if r.symbol_id not in sources:
                        raise stream_error(ErrorCode.INVALID, 0, r.symbol_id,
                                           "recovery: no ME source for a journal barrier")
                    sources[r.symbol_id].pull(r.fill_tip)
            shard.apply_batch(b"".join(recs))
            last = seq
        shard.journal_seq = max(journal.last_seq, last)
        shard.arm_cuts(True)                    # 3: boundaries crossed from here are cut (and journaled)
        for sym in sorted(sources):
            sources[sym].pull(None)
    finally:
        shard.end_replay()
    shard.go_live()
    return shard


def canonical_state(shard, money_only: bool = False) -> dict[str, Any]:
    core = shard.core
    r = core.r
    acc = core.accounts[:r.n_users]
    pos = core.positions[:r.n_positions]
    uid = acc["user_id"]
    # money_only drops what a crash legitimately loses: reservations of orders no ME has
    # acknowledged (PENDING; the gateway times them out) and everything derived from them.
    accounts = sorted(
        (int(a["user_id"]), int(a["flags"]) & ~ACCT_DIRTY, int(a["collateral"]), int(a["version"]),
         int(a["liq_round"]), int(a["liq_reserved"]), int(a["liq_next_at"]))
        + (() if money_only else (int(a["frozen"]), int(a["n_orders"]), int(a["liq_inflight"]))) for a in acc)
    pfields = ["net", "cost", "rpnl", "funding", "fees", "last_seq", "version"]
    if not money_only:
        pfields += ["open_qty", "n_orders", "value", "im", "mm"]
    positions = []
    for p in pos:
        vals = tuple(int(p[f]) for f in pfields)
        if any(vals):  # an untouched slot (created for an order the ME refused) is not state
            positions.append((int(uid[p["acct"]]), int(p["symbol_id"])) + vals)
    positions.sort()
    orders = sorted(
        (bytes(o["oid"]).hex(), int(uid[o["acct"]]), int(o["symbol_id"]), int(o["state"]), int(o["side"]),
         int(o["flags"]), int(o["price"]), int(o["remaining"]), int(o["need"]))
        for o in core.dump_orders() if not money_only or int(o["state"]) == 2)
    sym = core.symbols
    configured = np.flatnonzero(sym["configured"]).tolist()
    sfields = ["tip", "tick_size", "lot_size", "maker_fee_bps", "taker_fee_bps", "n_tiers",
               "liq_fee_bps", "ins_share_bps", "divisor", "status"]
    if not money_only:   # heartbeats (the ME clock) and prices are not replayed: live inputs only
        sfields += ["me_ts", "mark", "bid_px", "bid_qty", "ask_px", "ask_qty"]
    symbols = {i: [int(sym[f][i]) for f in sfields] + sym["tier_bound"][i].tolist() + sym["tier_imr"][i].tolist()
               + sym["tier_mmr"][i].tolist() for i in configured}
    out = {
        "accounts": accounts, "positions": positions, "orders": orders, "symbols": symbols,
        "ledgers": (int(r.insurance_fund), int(r.fee_revenue), int(r.funding_clearing)),
        "insurance_reserved": int(r.insurance_reserved),
        "vshard": core.vshard_owner.tobytes(), "funding": shard.funding.canonical(),
        "requests": sorted(shard.requests), "liq_id_counter": int(r.liq_id_counter),
        "params": asdict(shard.params), "sym_params": {k: v.keys() for k, v in sorted(shard.sym_params.items())},
    }
    if not money_only:
        out["prices"] = {k: v.to_json() for k, v in sorted(shard.prices.items())}
        out["clock"] = shard.clock
    return out
