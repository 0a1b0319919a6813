"""A stand-in ME for the marketdata benchmark: pre-framed C-book records on an open-loop schedule.

Benchmark driver code (not the production library). The records are the C
book's own outcomes (rsx_appliance.book.Book), framed with the stream's seqs
once, in advance; at run time each request's records are appended to the WAL
(served by a DXS server for the bootstrap and replays) and sent over CMP at
the time the schedule says.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
import uuid

import numpy as np

from ... import cmp, records
from ...book import Book, Side, Tif
from ...dxs import DxsServer
from ...records import RecordType as RT
from ...wal import WalReader, WalWriter

__all__ = ["StandinFeed", "free_base_port", "bench_config"]

_SYMBOL = """
[[symbols]]
id = 1
name = "BTC-PERP"
price_decimals = 2
qty_decimals = 3
tick = "0.5"
lot = "0.001"
reference_price = "60000"
"""


def bench_config(work, tables: str):
    """A private config in `work` (free ports, udp CMP, one symbol BTC-PERP) plus `tables`; its path and Config.

    ``{md_port}`` in `tables` is replaced by a free port for the marketdata WebSocket.
    """
    from ...config import load_config

    toml = work / "rsx.toml"
    base = free_base_port()
    toml.write_text(f'version = 1\n[engines]\nsymbols = ["BTC-PERP"]\n[network]\ncmp_backend = "udp"\n'
                    f'base_port = {base}\n' + tables.replace("{md_port}", str(base + 850)) + _SYMBOL)
    return toml, load_config(toml, work / "data")


def free_base_port() -> int:
    """A base port whose derived ports look free (the benchmark's private config)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 900 > 65535:
            continue
        try:
            for off in (0, 100, 500, 850):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as t:
                        t.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port range")


class StandinFeed:
    def __init__(self, cfg, symbol: str, wal_dir, *, depth: int, seed: int = 1) -> None:
        self.cfg, self.sym = cfg, cfg.symbol(symbol)
        self.proc = cfg.process(f"me.{symbol}")
        self.wal_dir, self.depth, self.rng = wal_dir, depth, random.Random(seed)
        self.seq = 0
        self.warm: list[bytes] = []
        self.live: list[bytes] = []
        self.live_last_seq = np.empty(0, dtype=np.uint64)
        self.live_due_ns = np.empty(0, dtype=np.int64)
        self.live_wall_s = 0.0
        self._dxs_thread = None
        self._dxs_loop = None

    # -- the workload ---------------------------------------------------------------

    def _frame(self, rtype, fields) -> bytes:
        self.seq += 1
        return records.encode(rtype, seq=self.seq, ts_ns=0, stream_id=self.sym.id, **fields)

    def prepare(self, warm: int, live: int) -> None:
        """Frame `warm` + `live` requests; each one changes the published top of the book."""
        n = self.sym.numbers
        tick, lot, ref = n.tick_size, n.lot_size, self.sym.reference_price
        levels = max(1, min(self.depth, 15))
        book = Book(n, capacity=1 << 16, ref_price=ref, max_users=64, hugepages="never", stream_id=self.sym.id)
        resting: list[tuple[int, int]] = []
        oid = 0
        out: list[bytes] = []
        last: list[int] = []
        c = n
        self.warm.append(self._frame(RT.CONFIG_APPLIED, dict(
            symbol_id=self.sym.id, config_version=1, tick_size=c.tick_size, lot_size=c.lot_size,
            min_qty=c.min_qty, max_qty=c.max_qty, price_decimals=c.price_decimals, qty_decimals=c.qty_decimals,
            funding_interval_s=self.sym.funding_interval_s, max_funding_rate_bps=self.sym.max_funding_rate_bps)))
        rng = self.rng
        for i in range(warm + live):
            r = rng.random()
            if resting and (r < 0.45 and len(resting) > 40 or len(resting) > 400):
                k = rng.randrange(len(resting))
                user, o = resting[k]
                resting[k] = resting[-1]
                resting.pop()
                ev = book.cancel(user, o)
                req = (RT.CANCEL_ORDER, dict(symbol_id=self.sym.id, user_id=user, order_id=uuid.UUID(int=o).bytes))
            else:
                oid += 1
                user = rng.randint(1, 32)
                if r > 0.92 and resting:
                    side = rng.choice((Side.BUY, Side.SELL))
                    price = ref + (levels + 1) * tick * (1 if side == Side.BUY else -1)
                    tif = Tif.IOC
                else:
                    side = rng.choice((Side.BUY, Side.SELL))
                    k = rng.randint(1, levels)
                    price = ref - k * tick if side == Side.BUY else ref + k * tick
                    tif = Tif.GTC
                qty = rng.randint(1, 5) * lot
                ev = book.submit(user, oid, side, price, qty, tif=tif)
                req = (RT.ORDER_ACCEPTED, dict(symbol_id=self.sym.id, user_id=user, side=int(side), tif=int(tif),
                                                order_id=uuid.UUID(int=oid).bytes, price=price, qty=qty))
                if any(e.type == RT.ORDER_INSERTED for e in ev):
                    resting.append((user, oid))
            recs = [self._frame(*req)]
            for e in ev:
                f = {k: (v.bytes if isinstance(v, uuid.UUID) else v) for k, v in e.fields.items()}
                f.pop("seq", None), f.pop("ts_ns", None), f.pop("stream_id", None)
                recs.append(self._frame(e.type, f))
            # makers filled to zero are no longer resting
            if any(e.type == RT.FILL for e in ev):
                resting = [(u, o) for u, o in resting if book.order(u, o) is not None]
            if i < warm:
                self.warm.extend(recs)
            else:
                out.append(b"".join(recs))
                last.append(self.seq)
        book.close()
        self.live = out
        self.live_last_seq = np.array(last, dtype=np.uint64)

    # -- serving --------------------------------------------------------------------

    def start(self) -> None:
        self.wal = WalWriter(self.wal_dir, self.sym.id, sync="none", retain_s=None)
        for rec in self.warm:
            self.wal.append_payload(int.from_bytes(rec[2:4], "little"), rec[records.HEADER_SIZE:])
        self.wal.flush()
        self.fetch = WalReader(self.wal_dir, self.sym.id)
        self.ep = cmp.Endpoint("udp", self.proc.cmp, mode="sleep")
        self.tx = self.ep.sender(self.sym.id, self.cfg.cmp_consumers(self.proc.name), fetch=self.fetch)
        started = threading.Event()

        def serve():
            self._dxs_loop = asyncio.new_event_loop()
            self._dxs = DxsServer(self.wal_dir, self.sym.id, host=self.proc.dxs[0], port=self.proc.dxs[1])
            self._dxs_loop.run_until_complete(self._dxs.start())
            started.set()
            self._dxs_loop.run_forever()

        self._dxs_thread = threading.Thread(target=serve, daemon=True)
        self._dxs_thread.start()
        started.wait(10)

    def run_live(self, rate: int) -> int:
        """Offer the live requests at `rate` per second (open loop); returns how many were offered."""
        n = len(self.live)
        due = np.empty(n, dtype=np.int64)
        t0 = time.time_ns() + 20_000_000
        period = 1e9 / rate
        poll = self.ep.poll
        for i, buf in enumerate(self.live):
            d = t0 + int(i * period)
            due[i] = d
            ahead = d - time.time_ns()
            if ahead > 150_000:                       # sleep in the kernel (NAKs wake it), never spin
                poll((ahead - 100_000) / 1e9)
            off = 0
            while off < len(buf):
                size = records.HEADER_SIZE + int.from_bytes(buf[off + 4:off + 6], "little")
                self.wal.append_payload(int.from_bytes(buf[off + 2:off + 4], "little"),
                                        buf[off + records.HEADER_SIZE:off + size])
                while True:
                    try:
                        self.tx.send(buf[off:off + size])
                        break
                    except BlockingIOError:           # the hot ring is all pending: stall, never drop
                        poll(0.0001)
                off += size
            poll(0)
        end = time.time_ns()
        self.live_due_ns = due
        self.live_wall_s = (end - t0) / 1e9
        deadline = time.monotonic() + 1.0          # answer late NAKs for a moment
        while time.monotonic() < deadline:
            poll(0.001)
        return n

    def close(self) -> None:
        if self._dxs_loop is not None:
            fut = asyncio.run_coroutine_threadsafe(self._dxs.close(), self._dxs_loop)
            try:
                fut.result(5)
            except Exception:
                pass
            self._dxs_loop.call_soon_threadsafe(self._dxs_loop.stop)
        for name in ("ep", "fetch", "wal"):
            obj = getattr(self, name, None)
            if obj is not None:
                obj.close()
