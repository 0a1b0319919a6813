"""Price source plugins (specs/mark.md 1): one module per kind, one interface.

A source is built from its ``MarkSourceConfig`` and the symbols it may price,
and runs as one asyncio task: ``await source.run(emit)`` calls
``emit(source_id, symbol_name, raw_price, venue_ts_ns)`` for every accepted
tick, forever (until cancelled). Refused input is counted in
``source.counters`` and never raises out of ``run``.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Callable

__all__ = ["Source", "make_source", "parse_price", "Emit"]

log = logging.getLogger("rsx_appliance.mark")

Emit = Callable[[int, str, int, int], None]
_INT64_MAX = 2**63 - 1


def parse_price(text, decimals: int) -> int | None:
    """A venue's decimal price -> raw units (digits beyond ``decimals`` truncated), or None if unusable."""
    if not isinstance(text, (str, int)) or isinstance(text, bool):
        return None
    try:
        d = Decimal(str(text).strip())
    except InvalidOperation:
        return None
    if not d.is_finite() or d <= 0:
        return None
    raw = int(d.scaleb(decimals))          # int() truncates toward zero; d > 0
    if not 0 < raw <= _INT64_MAX:
        return None
    return raw


class Source:
    """Base of the source plugins: id, symbols, counters, and the tick path."""

    kind = "?"

    def __init__(self, config, symbols: dict) -> None:
        self.config = config
        self.id = config.id
        self.symbols = symbols            # our symbol name -> SymbolSpec
        self.counters = {"ticks": 0, "malformed": 0, "unknown_symbol": 0, "connects": 0,
                         "disconnects": 0}
        self.connected = False
        self.last: dict[str, tuple[int, int]] = {}   # symbol -> (raw price, observed_ns)
        self._unknown_logged: set[str] = set()

    def describe(self) -> str:
        return f"source {self.id} ({self.kind})"

    def malformed(self, why: str) -> None:
        self.counters["malformed"] += 1
        if self.counters["malformed"] <= 5 or self.counters["malformed"] % 1000 == 0:
            log.warning("mark: %s: refused input (%d so far): %s", self.describe(),
                        self.counters["malformed"], why[:200])

    def unknown(self, instrument: str) -> None:
        self.counters["unknown_symbol"] += 1
        if instrument not in self._unknown_logged and len(self._unknown_logged) < 100:
            self._unknown_logged.add(instrument)
            log.warning("mark: %s: ignoring unmapped instrument %r", self.describe(), instrument)

    def tick(self, emit: Emit, symbol: str, text, venue_ts_ns: int = 0) -> None:
        spec = self.symbols.get(symbol)
        if spec is None:
            self.unknown(symbol)
            return
        raw = parse_price(text, spec.numbers.price_decimals)
        if raw is None:
            self.malformed(f"price {text!r} for {symbol}")
            return
        self.counters["ticks"] += 1
        emit(self.id, symbol, raw, venue_ts_ns)

    async def run(self, emit: Emit) -> None:   # pragma: no cover - overridden
        raise NotImplementedError


def make_source(config, symbols: dict) -> Source:
    """The plugin for a source config (`kind` was checked by the config parser)."""
    if config.kind == "sim":
        from .sim import SimSource
        return SimSource(config, symbols)
    if config.kind == "file":
        from .file import FileSource
        return FileSource(config, symbols)
    if config.kind == "binance":
        from .binance import BinanceSource
        return BinanceSource(config, symbols)
    from .okx import OkxSource
    return OkxSource(config, symbols)
