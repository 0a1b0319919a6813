"""Our book's top of book for the premium: each ME stream's last BBO, over DXS (specs/mark.md 5)."""

from __future__ import annotations

import asyncio
import logging

from ..dxs import DxsConsumer, DxsRejected
from ..records import RecordType

__all__ = ["BboFollower", "dxs_tip"]

log = logging.getLogger("rsx_appliance.mark")
_AHEAD = 1 << 62


async def dxs_tip(address: tuple[str, int], stream_id: int) -> int:
    """The durable tip of a stream: a request beyond it is refused with ``last_seq`` (specs/dxs.md 2)."""
    c = DxsConsumer(address, stream_id, from_seq=_AHEAD, idle_timeout=5.0)
    try:
        async for _batch in c:
            break
    except DxsRejected as exc:
        return int(exc.last_seq)
    finally:
        await c.close()
    raise RuntimeError(f"DXS {address[0]}:{address[1]} served seq {_AHEAD} of stream {stream_id}")


class BboFollower:
    """Keeps ``target.bbo`` current from the stream's BBO records; fresh while the DXS tail is live."""

    def __init__(self, address: tuple[str, int], stream_id: int, target, *, lookback: int, name: str) -> None:
        self.address, self.stream_id, self.target = address, stream_id, target
        self.lookback, self.name = lookback, name
        self.consumer: DxsConsumer | None = None
        self.records = 0
        target.bbo_fresh = lambda now_ns: self.consumer is not None and self.consumer.live

    async def run(self) -> None:
        delay = 0.05
        while True:
            try:
                tip = await dxs_tip(self.address, self.stream_id)
                break
            except (OSError, RuntimeError, asyncio.TimeoutError) as exc:
                log.info("mark: ME stream %d at %s:%d not reachable yet (%s)", self.stream_id,
                         *self.address, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        start = max(1, tip - self.lookback + 1)
        self.consumer = DxsConsumer(self.address, self.stream_id, from_seq=start, name=self.name)
        async with self.consumer as c:
            async for batch in c:
                self.records += len(batch)
                rows = batch.view(RecordType.BBO)
                if len(rows):
                    r = rows[-1]["payload"]
                    self.target.bbo = {"bid_px": int(r["bid_px"]), "bid_qty": int(r["bid_qty"]),
                                       "ask_px": int(r["ask_px"]), "ask_qty": int(r["ask_qty"]),
                                       "me_ts": int(r["ts_ns"])}
