"""Funding rates, exactly once per symbol and interval (specs/mark.md 6)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..records import RecordType
from ..risk.funding import funding_rate_e8
from ..fsutil import atomic_write
from ..wal import WalReader

__all__ = ["last_published", "SampleStore", "due_rates"]


def last_published(wal_dir: str | os.PathLike, stream_id: int) -> dict[int, int]:
    """symbol id -> the last interval a FUNDING_RATE of this stream's WAL published."""
    out: dict[int, int] = {}
    d = Path(wal_dir)
    if not d.is_dir() or not any(d.glob("*.wal")):
        return out
    with WalReader(d, stream_id) as r:
        for batch in r:
            rows = batch.view(RecordType.FUNDING_RATE)["payload"]
            for sym, k in zip(rows["symbol_id"].tolist(), rows["interval_id"].tolist()):
                out[sym] = max(out.get(sym, -1), k)
    return out


class SampleStore:
    """Premium samples of unpublished intervals, kept across a process kill (rename, no fsync)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def load(self) -> dict[int, dict[int, list[int]]]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {int(s): {int(k): [int(a), int(b)] for k, (a, b) in acc.items()} for s, acc in raw.items()}

    def save(self, acc_by_symbol: dict[int, dict[int, list[int]]]) -> None:
        doc = {str(s): {str(k): v for k, v in acc.items()} for s, acc in acc_by_symbol.items()}
        atomic_write(self.path, json.dumps(doc), make_parents=True, durable=False)


def due_rates(symbol, prices, last: int, now_s: int, interest_e8: int, clamp_e8: int) -> list[dict]:
    """FUNDING_RATE fields for every interval after ``last`` that ended before ``now_s``, in order."""
    interval = symbol.funding_interval_s
    current = now_s // interval
    out = []
    for k in range(last + 1, current):
        rate = funding_rate_e8(prices.premium_average_e8(k), interest_e8, clamp_e8,
                               symbol.max_funding_rate_bps)
        out.append({"symbol_id": symbol.id, "interval_id": k, "rate_e8": rate,
                    "mark_px": prices.mark, "index_px": prices.index})
    return out
