"""Funding: the rate rule and the records of one settlement (specs/risk.md 6).

The per-position amounts are computed in C (``rsx_risk_funding_amounts``:
128-bit, payers rounded up, receivers down); this module picks the rate and
frames the FUNDING_PAYMENT records of a settlement without a Python loop per
user.
"""

from __future__ import annotations

import numpy as np

from ..records import RecordType, encode_many

__all__ = ["funding_rate_e8", "payment_records", "rate_record"]


def _clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def funding_rate_e8(premium_e8: int, interest_e8: int, clamp_e8: int, cap_bps: int) -> int:
    """F = P + clamp(I - P, -C, +C), then clamped to +-cap (cap in bps per interval).

    > 0: longs pay shorts. cap_bps 0 pins the rate to 0 (the symbol pays no funding).
    """
    f = premium_e8 + _clamp(interest_e8 - premium_e8, -clamp_e8, clamp_e8)
    cap = cap_bps * 10_000
    return _clamp(f, -cap, cap)


def payment_records(stream_id: int, ts_ns: int, symbol_id: int, interval_id: int, mark: int,
                    user_ids: np.ndarray, amounts: np.ndarray, positions: np.ndarray) -> bytes:
    """One FUNDING_PAYMENT per row (seq assigned by the journal)."""
    return encode_many(RecordType.FUNDING_PAYMENT, len(user_ids), ts_ns=ts_ns, stream_id=stream_id,
                           symbol_id=symbol_id, user_id=user_ids, interval_id=interval_id,
                           amount=amounts, position=positions, mark_px=mark)


def rate_record(stream_id: int, ts_ns: int, symbol_id: int, interval_id: int, rate_e8: int,
                mark: int, index: int) -> bytes:
    """The FUNDING_RATE record: the commit of a settlement."""
    return encode_many(RecordType.FUNDING_RATE, 1, ts_ns=ts_ns, stream_id=stream_id,
                           symbol_id=symbol_id, interval_id=interval_id, rate_e8=rate_e8,
                           mark_px=mark, index_px=index)
