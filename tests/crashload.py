"""The crash matrix's load client (specs/operations.md 11): traders that place crossing orders over raw
WebSocket frames, reconnect when their gateway goes away, and retry every order without an answer with the
**same client order id**, as specs/ws-api.md tells a client to.

Each pair of users trades with itself: the maker places a GTC order at a price near the reference, the taker an
IOC at the same price on the other side, on both symbols, sides alternating so positions stay small. Every
frame a trader receives is kept: ``fills`` (by (symbol, seq), from `F` frames), the order states by client id.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time

import websockets

PENDING, FILLED, CANCELLED, FAILED = 0, 2, 3, 4
TERMINAL = (FILLED, CANCELLED, FAILED)
RETRY_LATER = (1003, 1104, 1006)   # breaker open, gateway full/stopping, rate limited: nothing was placed
DUPLICATE_CID = 1011               # the cid is live at the gateway: the order exists
ACK_TIMEOUT_S = 2.0                # no U PENDING this long on a live connection: send again, same cid
BLIND_EVERY = 10                   # every 10th order is sent again after its outcome, as if the answer was lost


class Trader:
    def __init__(self, up, user: int) -> None:
        self.up, self.user = up, user
        self.ws = None
        self.orders: dict[str, dict] = {}       # cid -> {frame, acked, status, sent_at, sends}
        self.fills: dict[tuple[int, int], int] = {}   # (symbol, seq) -> times an F frame said it
        self.connects = self.retries = self.blind_retries = self.dup_refused = self.refused = 0
        self._cids = itertools.count(1)

    # -- orders ---------------------------------------------------------------------------------

    async def place(self, sym: int, side: int, px: int, qty: int, tif: int) -> str:
        cid = f"u{self.user}-{next(self._cids)}"
        self.orders[cid] = {"frame": [sym, side, px, qty, cid, tif, 0, 0, 0], "acked": False, "status": None,
                            "sent_at": 0.0, "sends": 0}
        await self._send(cid)
        return cid

    async def _send(self, cid: str) -> None:
        o = self.orders[cid]
        if self.ws is None:
            return                      # sent again at the next connect
        o["sends"] += 1
        if o["sends"] > 1:
            self.retries += 1
        o["sent_at"] = time.monotonic()
        try:
            await self.ws.send(json.dumps({"N": o["frame"]}))
        except websockets.ConnectionClosed:
            pass

    def unanswered(self) -> list[str]:
        return [c for c, o in self.orders.items() if not o["acked"] and o["status"] not in TERMINAL]

    def open(self) -> list[str]:
        return [c for c, o in self.orders.items() if o["status"] not in TERMINAL]

    # -- the connection -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, read, reconnect, until ``stop``; every unanswered order is sent again after a connect."""
        while not stop.is_set():
            try:
                self.ws = await websockets.connect(
                    self.up.url, additional_headers={"Authorization": f"Bearer {self.up.token(self.user)}"},
                    compression=None, open_timeout=2, max_size=1 << 22)
            except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake):
                await asyncio.sleep(0.1)
                continue
            self.connects += 1
            for cid in self.unanswered():
                await self._send(cid)
            watchdog = asyncio.create_task(self._watchdog())
            try:
                async for msg in self.ws:
                    (kind, v), = json.loads(msg).items()
                    await self._on(kind, v)
            except websockets.ConnectionClosed:
                pass
            finally:
                watchdog.cancel()
                self.ws = None
        if self.ws is not None:
            await self.ws.close()

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for cid in self.unanswered():
                if self.orders[cid]["sent_at"] and now - self.orders[cid]["sent_at"] > ACK_TIMEOUT_S:
                    await self._send(cid)

    async def _on(self, kind: str, v: list) -> None:
        if kind == "U":
            o = self.orders.get(v[5])
            if o is not None:
                o["acked"] = True
                if v[1] in TERMINAL or o["status"] not in TERMINAL:
                    o["status"] = v[1]
                if v[1] in TERMINAL and not o.get("blind") and int(v[5].split("-")[1]) % BLIND_EVERY == 0:
                    o["blind"] = True       # the client "lost" this answer: it retries, same cid
                    self.blind_retries += 1
                    await self._send(v[5])
        elif kind == "F":
            key = (v[1], v[8])
            self.fills[key] = self.fills.get(key, 0) + 1
        elif kind == "E":
            code, ref = v[0], v[2] if len(v) > 2 else None
            o = self.orders.get(ref) if isinstance(ref, str) else None
            if o is None:
                return
            if code in RETRY_LATER:
                o["sent_at"] = time.monotonic() - ACK_TIMEOUT_S + 0.2   # again in ~0.2 s
            elif code == DUPLICATE_CID:
                self.dup_refused += 1
                o["acked"] = True
            else:
                self.refused += 1
                o["acked"], o["status"] = True, FAILED

    # -- after the run ----------------------------------------------------------------------------

    async def history(self) -> set[tuple[int, int]]:
        """Every fill of the user the history store answers (FL, paged by time), as (symbol, seq)."""
        out: set[tuple[int, int]] = set()
        async with websockets.connect(self.up.url, compression=None, max_size=1 << 24, additional_headers={
                "Authorization": f"Bearer {self.up.token(self.user)}"}) as ws:
            before = 0
            while True:
                await ws.send(json.dumps({"FL": [0, 500, before]}))
                while True:
                    (kind, v), = json.loads(await asyncio.wait_for(ws.recv(), 30)).items()
                    if kind == "FL":
                        break
                    if kind == "E":
                        raise RuntimeError(f"FL refused: {v}")
                new = {(r[1], r[8]) for r in v} - out
                out |= new
                if len(v) < 500:
                    return out
                low = min(r[7] for r in v)
                before = low + 1 if new else low     # ties at a page's edge: read that instant again once


async def drive(traders: list[Trader], stop: asyncio.Event, *, rate: float, symbols: list[dict]) -> None:
    """Pairs (maker, taker) of ``traders`` place one crossing pair each tick, ``rate`` pairs/s in all."""
    pairs = [(traders[i], traders[i + 1]) for i in range(0, len(traders) - 1, 2)]
    rng = random.Random(7)
    tick = 0
    t0 = time.monotonic()
    while not stop.is_set():
        maker, taker = pairs[tick % len(pairs)]
        s = symbols[tick % len(symbols)]
        side = (tick // len(pairs)) % 2
        px = s["ref"] + s["tick"] * rng.randint(-20, 20)
        await maker.place(s["id"], side, px, s["lot"], 0)         # GTC
        await taker.place(s["id"], 1 - side, px, s["lot"], 1)     # IOC at the same price
        tick += 1
        delay = t0 + tick / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
