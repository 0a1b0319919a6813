"""Index, impact mid, premium and mark for one symbol (specs/risk.md 5).

Low-rate, per-symbol state (a few MARK_PRICE records per second per source),
so this is plain Python over integers. The mark process (specs/mark.md) runs the
same code and also accumulates the premium samples of each funding interval
(``interval_ns``, :meth:`PriceState.premium_average_e8`) for the rate it
publishes; a shard does not (it applies the published rate, specs/risk.md 6).
Every computation is a function of the
inputs and the clock passed in, so two shards fed the same records compute the
same marks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PriceState", "MarkSource", "median"]


def median(values: list[int]) -> int:
    """Median of integers; an even count gives floor((a + b) / 2) of the middle two."""
    v = sorted(values)
    n = len(v)
    if n % 2:
        return v[n // 2]
    return (v[n // 2 - 1] + v[n // 2]) // 2


class MarkSource:
    """Which rung of the fallback chain produced the mark."""

    NONE = "none"            # never priced
    INDEX_PREMIUM = "index+premium"
    INDEX = "index"
    BOOK = "book"
    LAST = "last"            # everything stale: the last mark is held


@dataclass
class PriceState:
    """Prices of one symbol. `sources` maps source_id -> (price, source_ts_ns)."""

    sources: dict[int, tuple[int, int]] = field(default_factory=dict)
    index: int = 0
    index_fresh: bool = False
    ema_premium: int = 0
    has_ema: bool = False
    mark: int = 0
    mark_source: str = MarkSource.NONE
    last_sample_slot: int = -1
    refused: int = 0          # source prices refused (out of the band, not positive)
    acc: dict[int, list[int]] = field(default_factory=dict)   # mark process: interval -> [sum rate_e8, samples]

    # -- inputs -------------------------------------------------------------

    def accepts(self, price: int, now_ns: int, stale_ns: int, band_bps: int) -> bool:
        """Whether a source price may be stored: positive and, when a fresh reference exists (the
        index, else a mark from the book), within band_bps of it (specs/risk.md 5)."""
        if price <= 0:
            return False
        ref = self.compute_index(now_ns, stale_ns)
        if ref is None and self.mark_source == MarkSource.BOOK:
            ref = self.mark
        if not ref:
            return True
        return abs(price - ref) * 10_000 <= band_bps * ref

    def on_source(self, source_id: int, price: int, source_ts_ns: int) -> None:
        """A MARK_PRICE record that passed :meth:`accepts`. An older observation is ignored."""
        old = self.sources.get(source_id)
        if old is not None and source_ts_ns < old[1]:
            return
        self.sources[source_id] = (price, source_ts_ns)

    # -- derived ------------------------------------------------------------

    def compute_index(self, now_ns: int, stale_ns: int) -> int | None:
        fresh = [p for sid, (p, ts) in self.sources.items() if sid >= 1 and now_ns - ts <= stale_ns]
        if fresh:
            return median(fresh)
        comp = self.sources.get(0)
        if comp is not None and now_ns - comp[1] <= stale_ns:
            return comp[0]
        return None

    @staticmethod
    def impact_mid(bbo: dict, now_ns: int, stale_ns: int, impact_notional: int, value) -> int | None:
        """Mid of our own top of book if both sides hold at least impact_notional and the ME is fresh.

        `value(price, qty)` is the symbol's V (C); `bbo` has bid_px, bid_qty, ask_px, ask_qty, me_ts.
        """
        if bbo["bid_px"] <= 0 or bbo["ask_px"] <= 0 or bbo["bid_qty"] <= 0 or bbo["ask_qty"] <= 0:
            return None
        if bbo["bid_px"] >= bbo["ask_px"] or now_ns - bbo["me_ts"] > stale_ns:
            return None
        if impact_notional > 0 and (value(bbo["bid_px"], bbo["bid_qty"]) < impact_notional
                                    or value(bbo["ask_px"], bbo["ask_qty"]) < impact_notional):
            return None
        return (bbo["bid_px"] + bbo["ask_px"]) // 2

    def sample(self, now_ns: int, sample_ns: int, interval_ns: int | None, index: int | None,
               mid: int | None, ema_bps: int) -> bool:
        """Take one premium sample (the EMA of the mark) if a new grid slot was reached; True if one was
        taken. With ``interval_ns`` (the mark process) the sample's premium rate is also added to its
        funding interval's accumulator; a shard passes None."""
        slot = now_ns // sample_ns
        if slot <= self.last_sample_slot:
            return False
        self.last_sample_slot = slot
        if index is None or mid is None or index <= 0:
            return False
        prem = mid - index
        if not self.has_ema:
            self.ema_premium, self.has_ema = prem, True
        else:
            self.ema_premium += (prem - self.ema_premium) * ema_bps // 10_000
        if interval_ns:
            a = self.acc.setdefault(now_ns // interval_ns, [0, 0])
            a[0] += prem * 100_000_000 // index
            a[1] += 1
        return True

    def update_mark(self, index: int | None, mid: int | None, band_bps: int) -> int:
        """Apply the fallback chain; returns the new mark (0 = never priced)."""
        if index is not None:
            self.index, self.index_fresh = index, True
        else:
            self.index_fresh = False
        if index is not None and mid is not None:
            lo = index * (10_000 - band_bps) // 10_000
            hi = index * (10_000 + band_bps) // 10_000
            mark, src = min(max(index + self.ema_premium, lo), hi), MarkSource.INDEX_PREMIUM
        elif index is not None:
            mark, src = index, MarkSource.INDEX
        elif mid is not None:
            mark, src = mid, MarkSource.BOOK
        elif self.mark > 0:
            mark, src = self.mark, MarkSource.LAST
        else:
            mark, src = 0, MarkSource.NONE
        self.mark, self.mark_source = max(mark, 0), src
        return self.mark

    def premium_average_e8(self, interval: int) -> int:
        """Average premium rate (rate_e8) of the samples of `interval`, 0 if none (the mark process)."""
        a = self.acc.get(interval)
        if not a or a[1] == 0:
            return 0
        return a[0] // a[1]

    def settled(self, interval: int) -> None:
        """Drop the accumulators of published intervals (the mark process)."""
        for k in [k for k in self.acc if k <= interval]:
            del self.acc[k]

    @property
    def fresh(self) -> bool:
        """The mark came from a fresh input (rungs 1-3 of the fallback chain)."""
        return self.mark_source in (MarkSource.INDEX_PREMIUM, MarkSource.INDEX, MarkSource.BOOK)

    # -- snapshot -----------------------------------------------------------

    def to_json(self) -> dict:
        d = self.__dict__.copy()
        d["sources"] = [[k, p, t] for k, (p, t) in sorted(self.sources.items())]
        d["acc"] = [[k, v[0], v[1]] for k, v in sorted(self.acc.items())]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "PriceState":
        d = dict(d)
        d["sources"] = {int(k): (int(p), int(t)) for k, p, t in d["sources"]}
        d["acc"] = {int(k): [int(a), int(b)] for k, a, b in d.get("acc", [])}
        return cls(**d)
