"""A stand-in matching engine stream for marketdata and mark tests.

The C book (rsx_appliance.book.Book) produces the real ME outcome records; this
frames them the way the ME does (specs/me.md 3: the request or ORDER_ACCEPTED
first, then the book's events, one seq space), optionally appends them to a
WAL (served by a DXS server) and sends them over CMP. It is not the ME: no
dedup, no durability wait before sending unless asked, one thread.
"""

from __future__ import annotations

import random
import time
import uuid

from rsx_appliance import records
from rsx_appliance.book import Book, Side, Stp, Tif
from rsx_appliance.numbers import SymbolConfig
from rsx_appliance.records import RecordType as RT

CFG = SymbolConfig(symbol_id=1, price_decimals=2, qty_decimals=3, tick_size=5, lot_size=10)
REF = 100_000


def _fields(rec: records.Record) -> dict:
    out = {}
    for k, v in rec.fields.items():
        out[k] = v.bytes if isinstance(v, uuid.UUID) else v
    return out


class StandinMe:
    """A C book plus the framing of an ME stream (stream id = symbol id)."""

    def __init__(self, config: SymbolConfig = CFG, ref: int = REF, *, wal=None, sender=None,
                 capacity: int = 100_000) -> None:
        self.config = config
        self.ref = ref
        self.stream_id = config.symbol_id
        self.book = Book(config, capacity=capacity, ref_price=ref, max_users=1024, hugepages="never",
                         stream_id=self.stream_id)
        self.wal, self.sender = wal, sender
        self.seq = wal.next_seq - 1 if wal is not None else 0
        self.stream: list[bytes] = []          # every record framed so far
        self.next_oid = 1
        self.resting: list[tuple[int, int]] = []  # (user, order id int) possibly resting

    def close(self) -> None:
        self.book.close()

    def frame(self, rtype: int, fields: dict, ts_ns: int | None = None) -> bytes:
        self.seq += 1
        fields = dict(fields)
        fields.update(seq=self.seq, stream_id=self.stream_id,
                      ts_ns=ts_ns if ts_ns is not None else time.time_ns())
        rec = records.encode(rtype, **fields)
        if self.wal is not None:
            got = self.wal.append_payload(rtype, rec[records.HEADER_SIZE:])
            assert got == self.seq, (got, self.seq)
        self.stream.append(rec)
        return rec

    def _emit(self, request: tuple[int, dict], events: list[records.Record], ts_ns=None) -> list[bytes]:
        out = [self.frame(request[0], request[1], ts_ns)]
        out += [self.frame(e.type, _fields(e), ts_ns) for e in events]
        if self.sender is not None:
            if self.wal is not None:
                self.wal.wait_durable(self.seq, timeout=10)
            for rec in out:
                self.sender.send(rec)
        return out

    def config_applied(self) -> list[bytes]:
        c = self.config
        rec = self.frame(RT.CONFIG_APPLIED, dict(
            symbol_id=c.symbol_id, config_version=1, tick_size=c.tick_size, lot_size=c.lot_size,
            min_qty=c.min_qty, max_qty=c.max_qty, price_decimals=c.price_decimals,
            qty_decimals=c.qty_decimals, maker_fee_bps=c.maker_fee_bps, taker_fee_bps=c.taker_fee_bps,
            initial_margin_bps=c.initial_margin_bps, maintenance_margin_bps=c.maintenance_margin_bps,
            funding_interval_s=28800, max_funding_rate_bps=75))
        if self.sender is not None:
            if self.wal is not None:
                self.wal.wait_durable(self.seq, timeout=10)
            self.sender.send(rec)
        return [rec]

    # -- requests -------------------------------------------------------------

    def submit(self, user: int, side: int, price: int, qty: int, *, tif=Tif.GTC, flags=0,
               stp=Stp.CANCEL_TAKER, ts_ns=None) -> list[bytes]:
        oid = self.next_oid
        self.next_oid += 1
        events = self.book.submit(user, oid, side, price, qty, tif=tif, post_only=bool(flags & 1),
                                  reduce_only=bool(flags & 2), stp=stp)
        req = dict(symbol_id=self.config.symbol_id, user_id=user, side=int(side), tif=int(tif),
                   flags=int(flags), stp=int(stp), order_id=uuid.UUID(int=oid).bytes, price=price, qty=qty)
        if any(e.type == RT.ORDER_INSERTED for e in events):
            self.resting.append((user, oid))
        return self._emit((RT.ORDER_ACCEPTED, req), events, ts_ns)

    def cancel(self, user: int, oid: int, ts_ns=None) -> list[bytes]:
        events = self.book.cancel(user, oid)
        req = dict(symbol_id=self.config.symbol_id, user_id=user, order_id=uuid.UUID(int=oid).bytes)
        return self._emit((RT.CANCEL_ORDER, req), events, ts_ns)

    def cancel_all(self, user: int, ts_ns=None) -> list[bytes]:
        events = self.book.cancel_all(user)
        req = dict(symbol_id=self.config.symbol_id, user_id=user, request_id=uuid.UUID(int=999).bytes)
        return self._emit((RT.CANCEL_ALL, req), events, ts_ns)

    def amend(self, user: int, oid: int, qty: int, price: int | None = None, ts_ns=None) -> list[bytes]:
        events = self.book.amend(user, oid, qty, price)
        req = dict(symbol_id=self.config.symbol_id, user_id=user, order_id=uuid.UUID(int=oid).bytes,
                   qty=qty, price=price or 0)
        return self._emit((RT.AMEND_ORDER, req), events, ts_ns)

    def random_request(self, rng: random.Random, users: int = 6, spread_ticks: int = 12) -> list[bytes]:
        """One random request near the mid: new orders of every kind, cancels, amends, cancel-all."""
        tick, lot = self.config.tick_size, self.config.lot_size
        r = rng.random()
        if self.resting and r < 0.25:
            user, oid = rng.choice(self.resting)
            return self.cancel(user, oid)
        if self.resting and r < 0.40:
            user, oid = rng.choice(self.resting)
            info = self.book.order(user, oid)
            if info is not None and rng.random() < 0.5:
                return self.amend(user, oid, max(lot, (info.remaining // lot // 2) * lot))
            price = self.ref + rng.randint(-spread_ticks, spread_ticks) * tick
            return self.amend(user, oid, rng.randint(1, 8) * lot, price)
        if r < 0.42:
            return self.cancel_all(rng.randint(1, users))
        side = rng.choice((Side.BUY, Side.SELL))
        price = self.ref + rng.randint(-spread_ticks, spread_ticks) * tick
        tif = rng.choices((Tif.GTC, Tif.IOC, Tif.FOK), (8, 1, 1))[0]
        flags = rng.choices((0, 1, 2), (8, 1, 1))[0]   # post-only or reduce-only sometimes
        stp = rng.choice((Stp.CANCEL_TAKER, Stp.CANCEL_MAKER, Stp.CANCEL_BOTH, Stp.NONE))
        return self.submit(rng.randint(1, users), side, price, rng.randint(1, 10) * lot,
                           tif=tif, flags=flags, stp=stp)
