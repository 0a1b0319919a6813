"""Test environment for marketdata: a config on free ports, a stand-in ME per symbol, a WS client model."""

from __future__ import annotations

import asyncio
import json
import textwrap

from rsx_appliance import cmp
from rsx_appliance.config import load_config
from rsx_appliance.dxs import DxsServer
from rsx_appliance.wal import WalWriter

from rsx_appliance.cli.bench._md_feed import free_base_port

from me_standin import StandinMe


def make_config(tmp_path, extra: str = "", md_port: int = 0, md_extra: str = ""):
    base = free_base_port()
    md_port = md_port or base + 850
    text = textwrap.dedent(f"""\
        version = 1
        [network]
        base_port = {base}
        [marketdata]
        port = {md_port}
        depth = 5
        {md_extra}
        [[symbols]]
        id = 1
        name = "BTC-PERP"
        price_decimals = 2
        qty_decimals = 3
        tick = "0.05"
        lot = "0.01"
        reference_price = "1000"
        [[symbols]]
        id = 2
        name = "ETH-PERP"
        price_decimals = 2
        qty_decimals = 3
        tick = "0.05"
        lot = "0.01"
        reference_price = "500"
        """) + textwrap.dedent(extra)
    path = tmp_path / "rsx.toml"
    path.write_text(text)
    return load_config(path, tmp_path / "data")


class MeStandinProcess:
    """A stand-in ME of one symbol: WAL + DXS server + CMP sender to the config's consumers."""

    def __init__(self, cfg, name: str, wal_dir, destinations=None, *, ring_size: int = 4096,
                 fault: cmp.Fault | None = None) -> None:
        self.cfg, self.proc, self.sym = cfg, cfg.process(f"me.{name}"), cfg.symbol(name)
        self.wal = WalWriter(wal_dir, self.sym.id)
        self.ep = cmp.Endpoint("udp", self.proc.cmp, mode="sleep", fault=fault)
        dests = destinations if destinations is not None else cfg.cmp_consumers(self.proc.name)
        # no deep retransmit source: a NAK past the hot ring goes unanswered (-> DXS replay)
        self.tx = self.ep.sender(self.sym.id, dests, ring_size=ring_size, fetch=None)
        self.me = StandinMe(self.sym.numbers, self.sym.reference_price, wal=self.wal, sender=self.tx)
        self.dxs = DxsServer(wal_dir, self.sym.id, host=self.proc.dxs[0], port=self.proc.dxs[1])

    async def start(self) -> None:
        await self.dxs.start()
        self.me.config_applied()

    def pump(self) -> None:
        """Answer NAKs, send heartbeats (the endpoint's thread is the caller's)."""
        self.ep.poll(0)

    async def close(self) -> None:
        await self.dxs.close()
        self.ep.close()
        self.wal.close()
        self.me.close()


class BookClient:
    """A client-side L2 model: applies B then D, checks the chain (specs/marketdata.md 3.2)."""

    def __init__(self) -> None:
        self.books: dict[int, tuple[dict, dict]] = {}
        self.u: dict[int, int] = {}
        self.trade_u: dict[int, int] = {}
        self.trades: dict[int, list] = {}
        self.bbo: dict[int, list] = {}
        self.broken = 0
        self.other: list = []

    def on(self, text) -> None:
        msg = json.loads(text)
        (kind, f), = msg.items()
        if kind == "B":
            sym, bids, asks, _ts, u = f
            self.books[sym] = ({p: (q, c) for p, q, c in bids}, {p: (q, c) for p, q, c in asks})
            self.u[sym] = u
        elif kind == "D":
            sym, changes, _ts, u, pu = f
            if self.u.get(sym) != pu:
                self.broken += 1
                return
            for side, p, q, c in changes:
                if q == 0:
                    self.books[sym][side].pop(p, None)
                else:
                    self.books[sym][side][p] = (q, c)
            self.u[sym] = u
        elif kind == "T":
            sym, trades, u, pu = f
            if sym in self.trade_u and self.trade_u[sym] != pu:
                self.broken += 1
            self.trade_u[sym] = u
            self.trades.setdefault(sym, []).extend(trades)
        elif kind == "BBO":
            self.bbo[f[0]] = f
        else:
            self.other.append(msg)

    def levels(self, sym: int, side: int, n: int) -> list[tuple[int, int, int]]:
        d = self.books[sym][side]
        prices = sorted(d, reverse=(side == 0))[:n]
        return [(p, *d[p]) for p in prices]


async def until(cond, timeout: float = 10.0, step: float = 0.01):
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)
