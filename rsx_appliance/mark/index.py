"""Index and mark of one symbol (specs/mark.md 2, 3).

The index rules (freshness, band, minimum sources) are the mark service's; the
premium, basis EMA, mark and funding accumulators are the risk library's own
code (``rsx_appliance.risk.prices.PriceState``), so a shard and the mark
service cannot disagree on a formula.
"""

from __future__ import annotations

import logging

from ..risk.prices import PriceState, median

__all__ = ["SymbolIndex"]

log = logging.getLogger("rsx_appliance.mark")


class SymbolIndex:
    """Ticks of every source for one symbol, the index, and the mark built on it."""

    def __init__(self, spec, mc, collateral_decimals: int = 6) -> None:
        self.spec, self.mc = spec, mc
        self.ticks: dict[int, tuple[int, int]] = {}      # source id -> (raw price, observed_ns)
        self.prices = PriceState()                       # ema, mark, funding samples (risk library)
        self.index: int | None = None
        self.index_ts = 0          # newest observed_ns among the sources of the index
        self.last_good_ns = 0      # when the index was last computed from enough sources
        self.degraded = False
        self.outliers: frozenset[int] = frozenset()
        self.bbo: dict | None = None                     # bid_px, bid_qty, ask_px, ask_qty, me_ts
        self.bbo_fresh = lambda now_ns: False
        self.published: int | None = None                # last mark published
        self.published_ns = 0
        n = spec.numbers
        self._div = 10 ** max(0, n.price_decimals + n.qty_decimals - collateral_decimals)
        self.counters = {"outliers": 0, "degraded_events": 0}

    def on_tick(self, source_id: int, price: int, observed_ns: int) -> None:
        self.ticks[source_id] = (price, observed_ns)

    def compute(self, now_ns: int) -> None:
        """Recompute the index from the fresh, in-band sources (or keep the last one, degraded)."""
        stale = self.mc.stale_ms * 1_000_000
        fresh = {sid: (p, ts) for sid, (p, ts) in self.ticks.items() if now_ns - ts <= stale}
        out: set[int] = set()
        if fresh:
            m = median([p for p, _ in fresh.values()])
            out = {sid for sid, (p, _) in fresh.items() if abs(p - m) * 10_000 > self.mc.band_bps * m}
        if frozenset(out) != self.outliers:
            if out - self.outliers:
                self.counters["outliers"] += len(out - self.outliers)
                log.warning("mark: %s: refusing source(s) %s: more than %d bps from the median",
                            self.spec.name, sorted(out), self.mc.band_bps)
            self.outliers = frozenset(out)
        used = {sid: v for sid, v in fresh.items() if sid not in out}
        if len(used) >= self.mc.min_sources:
            self.index = median([p for p, _ in used.values()])
            self.index_ts = max(ts for _, ts in used.values())
            self.last_good_ns = now_ns
            if self.degraded:
                self.degraded = False
                log.warning("mark: %s: index restored from %d sources", self.spec.name, len(used))
        elif not self.degraded and self.index is not None:
            self.degraded = True
            self.counters["degraded_events"] += 1
            log.warning("mark: %s: only %d fresh in-band source(s), %d needed: keeping the last index %s",
                        self.spec.name, len(used), self.mc.min_sources, self.index)

    def _value(self, price: int, qty: int) -> int:
        return price * qty // self._div

    def mid(self, now_ns: int) -> int | None:
        if self.bbo is None or not self.bbo_fresh(now_ns):
            return None
        bbo = dict(self.bbo, me_ts=now_ns)        # freshness was decided by the BBO follower
        return PriceState.impact_mid(bbo, now_ns, 1, self.mc.impact_notional, self._value)

    def sample(self, now_ns: int) -> bool:
        """A premium sample if a new sampling slot started (and index and book are usable)."""
        index = None if self.degraded else self.index
        return self.prices.sample(now_ns, self.mc.premium_sample_ms * 1_000_000,
                                  self.spec.funding_interval_s * 1_000_000_000, index, self.mid(now_ns),
                                  self.mc.ema_bps)

    def mark(self, now_ns: int) -> int | None:
        """The mark to publish now, or None (no index yet, or degraded for longer than stale_ms)."""
        if self.index is None:
            return None
        if self.degraded and now_ns - self.last_good_ns > self.mc.stale_ms * 1_000_000:
            return None
        return self.prices.update_mark(self.index, self.mid(now_ns), self.mc.mark_band_bps)

    def to_dict(self, now_ns: int) -> dict:
        return {"index": self.index, "mark": self.published, "degraded": self.degraded,
                "ema": self.prices.ema_premium, "outliers": sorted(self.outliers),
                "bbo": None if self.bbo is None else {k: self.bbo[k] for k in ("bid_px", "ask_px")},
                "bbo_fresh": bool(self.bbo is not None and self.bbo_fresh(now_ns)),
                "sources": {str(sid): {"price": p, "age_ms": (now_ns - ts) // 1_000_000}
                            for sid, (p, ts) in sorted(self.ticks.items())}}
