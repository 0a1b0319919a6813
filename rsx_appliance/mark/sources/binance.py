"""Binance USD-M futures public mark price stream (specs/mark.md 1).

Subscribes with ``{"method":"SUBSCRIBE","params":["btcusdt@markPrice@1s"],"id":1}``; accepts
``markPriceUpdate`` events alone, wrapped as ``{"stream", "data"}``, or in arrays
(``!markPrice@arr``). Price field ``p`` (mark) or ``i`` (index), event time ``E`` (ms).
"""

from __future__ import annotations

import json

from . import Emit
from ._ws import VenueSource

__all__ = ["BinanceSource"]


class BinanceSource(VenueSource):
    kind = "binance"

    def subscribe_messages(self) -> list[str]:
        params = [f"{inst.lower()}@markPrice@1s" for inst in self.instruments]
        return [json.dumps({"method": "SUBSCRIBE", "params": params, "id": 1})]

    def on_message(self, obj, emit: Emit) -> None:
        if isinstance(obj, dict) and "stream" in obj and "data" in obj:
            obj = obj["data"]
        events = obj if isinstance(obj, list) else [obj]
        for ev in events:
            if not isinstance(ev, dict):
                raise TypeError("event is not an object")
            if "result" in ev and "id" in ev:       # the answer to SUBSCRIBE
                continue
            if ev.get("e") != "markPriceUpdate":
                raise ValueError(f"unexpected event {ev.get('e')!r}")
            self.venue_tick(emit, ev["s"], ev[self.config.field], ev.get("E", 0))
