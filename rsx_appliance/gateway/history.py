"""FL and FN: fills and funding history from the history store (`rsx store`, specs/store.md 5, 6).

The gateway asks the store's asyncio API (``AsyncStore.fills`` / ``.funding``:
user, symbol (0 = all), limit 1..500, ``before`` = RSX's ns cursor, 0 =
newest) and turns its raw rows into the wire rows of specs/ws-api.md 4. The
store's queries run on a worker thread of their own, never on the event loop.
"""

from __future__ import annotations

import logging
import uuid

__all__ = ["History", "open_history"]

log = logging.getLogger("rsx.gateway")


class History:
    def __init__(self, store) -> None:
        self.store = store   # rsx_appliance.store.AsyncStore (or anything with its two coroutines)

    async def fills(self, user: int, sym: int, limit: int, before: int) -> list:
        page = await self.store.fills(user, sym or None, limit, before or None)
        return [[r.order_id.hex if isinstance(r.order_id, uuid.UUID) else bytes(r.order_id).hex(), r.symbol_id,
                 r.side, r.price, r.qty, r.fee, int(r.is_maker), r.ts_ns, r.seq] for r in page.rows]

    async def funding(self, user: int, sym: int, limit: int, before: int) -> list:
        page = await self.store.funding(user, sym or None, limit, before or None)
        return [[r.symbol_id, r.amount, r.rate_e8, r.position, r.mark_px, r.ts_ns] for r in page.rows]

    async def close(self) -> None:
        await self.store.close()


def open_history(cfg) -> History | None:
    """The store of the configuration, or None where the store is not part of this installation."""
    store_cfg = getattr(cfg, "store", None)
    try:
        from ..store import AsyncStore
    except ImportError:
        log.warning("gateway: rsx_appliance.store is not installed: FL and FN answer E 1010")
        return None
    if store_cfg is None:
        log.warning("gateway: the configuration has no [store]: FL and FN answer E 1010")
        return None
    return History(AsyncStore(store_cfg.url, collateral_decimals=cfg.risk.collateral_decimals))
