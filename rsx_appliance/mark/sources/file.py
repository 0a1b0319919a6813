"""File replay source: CSV `ts_ms,symbol,price` or JSON lines `{"ts", "symbol", "price"}` (specs/mark.md 1)."""

from __future__ import annotations

import asyncio
import json
import time

from . import Emit, Source

__all__ = ["FileSource", "read_ticks"]


def read_ticks(path: str, on_bad) -> list[tuple[int, str, str]]:
    """(ts_ms, symbol, price text) of every usable line; ``on_bad(why)`` for the others."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#") or line.lower().startswith("ts"):
                continue
            try:
                if line.startswith("{"):
                    obj = json.loads(line)
                    ts, sym, price = obj["ts"], obj["symbol"], obj["price"]
                else:
                    ts, sym, price = (x.strip() for x in line.split(","))
                ts = int(ts)
                if not isinstance(sym, str):
                    raise ValueError("symbol")
            except (ValueError, KeyError, TypeError) as exc:
                on_bad(f"{path}:{n}: {exc}: {line[:80]}")
                continue
            out.append((ts, sym, str(price)))
    return out


class FileSource(Source):
    kind = "file"

    async def run(self, emit: Emit) -> None:
        ticks = read_ticks(self.config.path, self.malformed)
        self.connected = True
        if not ticks:
            self.malformed(f"{self.config.path}: no usable tick")
            return
        speed = self.config.speed
        while True:
            start, t0 = time.monotonic(), ticks[0][0]
            for ts, sym, price in ticks:
                due = start + (ts - t0) / 1000 / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.tick(emit, sym, price, ts * 1_000_000)
            if not self.config.loop:
                return
            await asyncio.sleep(0.001)
