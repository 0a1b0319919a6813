"""Order ids the shard mints itself (liquidation rounds, ADL events).

RFC 9562 UUIDv7: 48-bit Unix milliseconds, version 7, then 74 bits that here
are not random but (shard id, counter), so ids are unique per shard and carry
their counter: applying a journaled id raises the shard's counter past it, and
a restarted shard never mints one twice. The C core builds and reads them
(``rsx_risk_liq_id``); the ME deduplicates by (user, order id), so every round
needs a fresh one.
"""

from __future__ import annotations

from ._core import liq_id as uuid7, liq_id_counter

__all__ = ["uuid7", "liq_id_counter"]
