"""Simulated source: a mean-reverting random walk per symbol (specs/mark.md 1, the default of `rsx up`)."""

from __future__ import annotations

import asyncio
import random
import time

from . import Emit, Source

__all__ = ["SimSource"]


class SimSource(Source):
    """Walks from each symbol's reference price; per-source noise so several sims disagree a little."""

    kind = "sim"

    def __init__(self, config, symbols: dict) -> None:
        super().__init__(config, symbols)
        seed = config.seed if config.seed is not None else config.id
        self.rng = random.Random(seed)
        # one shared walk per seed family would need coordination; instead every sim
        # walks from the reference with its own noise, and the reversion keeps them close
        self.price = {name: s.reference_price for name, s in symbols.items() if s.reference_price}
        self.ref = dict(self.price)

    def step(self, name: str) -> int:
        c = self.config
        p, ref = self.price[name], self.ref[name]
        step = p * self.rng.randint(-c.step_bps, c.step_bps) // 10_000
        revert = (ref - p) * c.revert_bps // 10_000
        p = max(1, p + step + revert)
        self.price[name] = p
        noise = p * self.rng.randint(-c.noise_bps, c.noise_bps) // 10_000
        return max(1, p + noise)

    async def run(self, emit: Emit) -> None:
        self.connected = True
        interval = self.config.interval_ms / 1000
        while True:
            for name in self.price:
                self.counters["ticks"] += 1
                emit(self.id, name, self.step(name), time.time_ns())
            await asyncio.sleep(interval)
