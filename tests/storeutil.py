"""Stand-in streams for the store tests: an ME (the C book behind a WAL) and a risk shard
(the risk library on its WAL journal), each servable by a DXS server, plus a PostgreSQL
server started in a temporary directory."""

from __future__ import annotations

import itertools
import random
import socket
import time
import uuid
from pathlib import Path

import pytest

from rsx_appliance.book import Book
from rsx_appliance.codes import Side, Tif
from rsx_appliance.config import load_config
from rsx_appliance.records import HEADER_SIZE, RecordType, encode
from rsx_appliance.risk import Capacity, RiskShard, WalJournal
from rsx_appliance.wal import WalWriter

SEC = 1_000_000_000
_oids = itertools.count(1)


def new_oid() -> bytes:
    """A UUIDv7-shaped id: time-ordered, unique per test run."""
    ms = time.time_ns() // 1_000_000
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0x2 << 62) | next(_oids)).bytes


class MeStandIn:
    """One symbol's ME stream: ORDER_ACCEPTED, then the C book's events, into a WAL.

    ``sinks`` receive every framed record (e.g. the risk stand-in's ``on_me``).
    """

    def __init__(self, directory: Path, spec, *, sinks=(), ts0: int | None = None) -> None:
        self.spec = spec
        self.sid = spec.id
        self.w = WalWriter(directory, self.sid, retain_s=None, prealloc=False)
        self.book = Book(spec.numbers, capacity=1 << 14, ref_price=spec.reference_price, hugepages="never")
        self.sinks = list(sinks)
        self.ts = ts0 or time.time_ns()
        self.records: list[bytes] = []
        fields = {k: int(v) for k, v in spec.numbers.record_fields().items() if k != "symbol_id"}
        self.append(RecordType.CONFIG_APPLIED, **fields, funding_interval_s=spec.funding_interval_s,
                    max_funding_rate_bps=spec.max_funding_rate_bps)

    def append(self, rtype, **fields) -> bytes:
        self.ts += 1000
        fields.update(seq=self.w.next_seq, ts_ns=self.ts, stream_id=self.sid, symbol_id=self.sid)
        rec = encode(rtype, **fields)
        seq = self.w.append_payload(rtype, rec[HEADER_SIZE:])
        assert seq == fields["seq"]
        self.records.append(rec)
        for sink in self.sinks:
            sink(rec)
        return rec

    def submit(self, user: int, side: int, price: int, qty: int, tif: int = Tif.GTC, flags: int = 0,
               client_id: bytes = b"cid") -> bytes:
        oid = new_oid()
        self.append(RecordType.ORDER_ACCEPTED, user_id=user, side=side, tif=tif, flags=flags, stp=3,
                    order_id=oid, price=price, qty=qty, client_id=client_id)
        for ev in self.book.submit(user, oid, side, price, qty, tif=tif, stp=3,
                                   reduce_only=bool(flags & 2), liquidation=bool(flags & 4)):
            self._event(ev)
        return oid

    def cancel(self, user: int, oid: bytes) -> None:
        for ev in self.book.cancel(user, oid):
            self._event(ev)

    def amend(self, user: int, oid: bytes, qty: int, price: int | None = None) -> None:
        for ev in self.book.amend(user, oid, qty, price):
            self._event(ev)

    def _event(self, ev) -> None:
        fields = {k: v for k, v in ev.fields.items() if k not in ("seq", "ts_ns", "stream_id", "symbol_id")}
        self.append(ev.type, **fields)

    def flush(self) -> None:
        self.w.flush()

    def close(self) -> None:
        self.w.close()
        self.book.close()


class RiskStandIn:
    """A risk shard (the risk library) journaling to its WAL: deposits, funding, liquidations."""

    def __init__(self, directory: Path, shard: int = 0) -> None:
        self.journal = WalJournal(directory, 0x80000000 | shard)
        self.shard = RiskShard.create(self.journal, shard_id=shard,
                                      capacity=Capacity(max_users=4096, max_positions=8192, max_orders=1 << 15,
                                                        max_symbols=16))
        self.clock = 0

    def on_me(self, rec: bytes) -> None:
        self.shard.on_me(rec)

    def deposit(self, user: int, amount: int) -> None:
        self.shard.deposit(user, amount, uuid.uuid4().bytes, now_ns=self.clock or None)

    def close(self) -> None:
        self.journal.close()


def trade_mix(me: MeStandIn, rng: random.Random, orders: int, users=range(1, 11)) -> None:
    """A realistic mix: resting orders around the reference price, crossing orders, cancels, amends."""
    spec = me.spec
    tick, lot = spec.numbers.tick_size, spec.numbers.lot_size
    ref = spec.reference_price
    live: list[tuple[int, bytes]] = []
    for _ in range(orders):
        user = rng.choice(list(users))
        side = rng.choice((Side.BUY, Side.SELL))
        off = rng.randint(-5, 5) * tick
        price = ref + off if side == Side.BUY else ref - off
        qty = lot * rng.randint(1, 20)
        r = rng.random()
        if r < 0.1 and live:
            u, oid = live.pop(rng.randrange(len(live)))
            me.cancel(u, oid)
        elif r < 0.15 and live:
            u, oid = live[rng.randrange(len(live))]
            me.amend(u, oid, lot)
        else:
            tif = Tif.IOC if r > 0.9 else Tif.GTC
            oid = me.submit(user, int(side), price, qty, tif=tif)
            if tif == Tif.GTC:
                live.append((user, oid))


def free_base_port(span: int = 800) -> int:
    """A base port whose derived ports (base .. base + span) are free right now."""
    for _ in range(50):
        base = random.randrange(20000, 60000 - span, 100)
        ok = True
        for off in (100, 101, 102, 300, 301):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", base + off))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def write_config(path: Path, data_dir: Path, base_port: int, url: str | None = None, shards: int = 1,
                 **store) -> Path:
    """The embedded default with its own ports, data directory and store table."""
    from rsx_appliance.config import DEFAULT_TOML

    text = DEFAULT_TOML.replace("base_port = 7400", f"base_port = {base_port}")
    text = text.replace("shards = 1", f"shards = {shards}")
    lines = [f'url = "{url or "sqlite:store/history.db"}"'] + [f"{k} = {v!r}".replace("'", '"')
                                                               for k, v in store.items()]
    text = text.replace('url = "sqlite:store/history.db"  # history database; a venue uses '
                        'postgresql://user@host/dbname', "\n".join(lines))
    text = f'data_dir = "{data_dir}"\n' + text
    path.write_text(text)
    load_config(path)  # it must load
    return path


# -- a PostgreSQL server of the test's own ---------------------------------------------------------

def pg_server() -> "TempPostgres":
    """A fresh server (fsync off: tests), or skip with the reason when it cannot run here."""
    from rsx_appliance.store.pgtemp import PostgresUnavailableError, TempPostgres

    try:
        return TempPostgres(durable=False, shared_buffers="64MB")
    except PostgresUnavailableError as exc:
        pytest.skip(str(exc))
