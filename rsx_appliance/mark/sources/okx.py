"""OKX v5 public mark-price channel (specs/mark.md 1).

Subscribes with ``{"op":"subscribe","args":[{"channel":"mark-price","instId":"BTC-USDT-SWAP"}]}``;
pushes are ``{"arg": {...}, "data": [{"instId", "markPx", "ts"}]}``; a text ``ping`` every 20 s
keeps the connection (OKX closes silent ones after 30 s).
"""

from __future__ import annotations

import json
import logging

from . import Emit
from ._ws import VenueSource

__all__ = ["OkxSource"]

log = logging.getLogger("rsx_appliance.mark")


class OkxSource(VenueSource):
    kind = "okx"
    keepalive_s = 20.0

    def subscribe_messages(self) -> list[str]:
        args = [{"channel": "mark-price", "instId": inst} for inst in self.instruments]
        return [json.dumps({"op": "subscribe", "args": args})]

    def on_message(self, obj, emit: Emit) -> None:
        if not isinstance(obj, dict):
            raise TypeError("message is not an object")
        if "event" in obj:
            if obj["event"] == "error":
                log.warning("mark: %s: venue error %s: %s", self.describe(), obj.get("code"), obj.get("msg"))
            return
        if obj["arg"]["channel"] != "mark-price":
            raise ValueError(f"unexpected channel {obj['arg']['channel']!r}")
        for d in obj["data"]:
            self.venue_tick(emit, d["instId"], d["markPx"], d.get("ts", 0))
