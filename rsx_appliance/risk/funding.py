"""Funding: the cuts at interval boundaries and the records of one settlement (specs/risk.md 6).

The rate comes from the mark process (a FUNDING_RATE record); the shard pays
it on the positions it held at the interval's boundary (a *cut*: the users and
nets of the symbol's open positions, taken at a point of the ME's stream and
journaled), at the record's mark. The per-position amounts are computed in C
(``rsx_risk_funding_amounts``: 128-bit, payers rounded up, receivers down);
this module keeps the cuts and frames the FUNDING_PAYMENT records of a
settlement without a Python loop per user.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..records import RecordType, encode_many

__all__ = ["funding_rate_e8", "clamp_rate", "payment_records", "rate_record", "Cut", "FundingState"]


def _clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def funding_rate_e8(premium_e8: int, interest_e8: int, clamp_e8: int, cap_bps: int) -> int:
    """The rate the mark process publishes: F = P + clamp(I - P, -C, +C), then clamped to +-cap (cap in
    bps per interval). > 0: longs pay shorts. cap_bps 0 pins the rate to 0 (the symbol pays no funding)."""
    return clamp_rate(premium_e8 + _clamp(interest_e8 - premium_e8, -clamp_e8, clamp_e8), cap_bps)


def clamp_rate(rate_e8: int, cap_bps: int) -> int:
    """The rate applied: the published one clamped to +-cap (bps per interval), on every shard alike."""
    cap = cap_bps * 10_000
    return _clamp(rate_e8, -cap, cap)


def payment_records(stream_id: int, ts_ns: int, symbol_id: int, interval_id: int, mark: int,
                    user_ids: np.ndarray, amounts: np.ndarray, positions: np.ndarray) -> bytearray:
    """One FUNDING_PAYMENT per row (seq assigned by the journal)."""
    return bytearray(encode_many(RecordType.FUNDING_PAYMENT, len(user_ids), ts_ns=ts_ns, stream_id=stream_id,
                                 symbol_id=symbol_id, user_id=user_ids, interval_id=interval_id,
                                 amount=amounts, position=positions, mark_px=mark))


def rate_record(stream_id: int, ts_ns: int, symbol_id: int, interval_id: int, rate_e8: int,
                mark: int, index: int) -> bytes:
    """The shard's FUNDING_RATE record: the commit of a settlement (the rate it applied)."""
    return encode_many(RecordType.FUNDING_RATE, 1, ts_ns=ts_ns, stream_id=stream_id,
                       symbol_id=symbol_id, interval_id=interval_id, rate_e8=rate_e8,
                       mark_px=mark, index_px=index)


@dataclass
class Cut:
    """The open positions of one symbol at one interval boundary."""

    user_ids: np.ndarray     # uint32
    nets: np.ndarray         # int64, signed


@dataclass
class FundingState:
    """Per symbol: the next boundary to cut, the cuts not settled yet, the last settled interval and
    rates that arrived before their cut."""

    next_cut_ns: dict[int, int] = field(default_factory=dict)
    cuts: dict[int, dict[int, Cut]] = field(default_factory=dict)
    last_settled: dict[int, int] = field(default_factory=dict)
    parked: dict[int, dict[int, bytes]] = field(default_factory=dict)   # symbol -> interval -> FUNDING_RATE

    def to_json(self) -> dict:
        return {"next_cut_ns": {str(k): v for k, v in self.next_cut_ns.items()},
                "last_settled": {str(k): v for k, v in self.last_settled.items()},
                "parked": {str(s): {str(k): r.hex() for k, r in d.items()} for s, d in self.parked.items()},
                "cuts": {str(s): sorted(d) for s, d in self.cuts.items()}}

    def cut_arrays(self) -> bytes:
        """Every cut as one binary section: (symbol, interval, n) u64 triples, then the arrays."""
        parts = []
        for sym in sorted(self.cuts):
            for k in sorted(self.cuts[sym]):
                c = self.cuts[sym][k]
                parts.append(np.array([sym, k, len(c.nets)], dtype="<u8").tobytes())
                parts.append(c.user_ids.astype("<u4").tobytes())
                parts.append(c.nets.astype("<i8").tobytes())
        return b"".join(parts)

    @classmethod
    def from_json(cls, d: dict, arrays: bytes) -> "FundingState":
        st = cls(next_cut_ns={int(k): int(v) for k, v in d["next_cut_ns"].items()},
                 last_settled={int(k): int(v) for k, v in d["last_settled"].items()},
                 parked={int(s): {int(k): bytes.fromhex(r) for k, r in v.items()} for s, v in d["parked"].items()})
        off = 0
        while off < len(arrays):
            sym, k, n = (int(x) for x in np.frombuffer(arrays, dtype="<u8", count=3, offset=off))
            off += 24
            users = np.frombuffer(arrays, dtype="<u4", count=n, offset=off).copy()
            off += 4 * n
            nets = np.frombuffer(arrays, dtype="<i8", count=n, offset=off).copy()
            off += 8 * n
            st.cuts.setdefault(sym, {})[k] = Cut(users, nets)
        return st

    def canonical(self) -> dict:
        return {"next_cut_ns": dict(sorted(self.next_cut_ns.items())),
                "last_settled": dict(sorted(self.last_settled.items())),
                "cuts": {s: {k: (c.user_ids.tolist(), c.nets.tolist()) for k, c in sorted(d.items())}
                         for s, d in sorted(self.cuts.items()) if d}}
