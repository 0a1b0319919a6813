"""The history store against stand-in streams (the C book behind an ME WAL, the risk library on its
journal), served by real DXS servers: what the database holds equals what the streams hold."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid

import numpy as np
import pytest

from rsx_appliance.codes import Reason, Side, Status
from rsx_appliance.config import load_config
from rsx_appliance.dxs import DxsServer
from rsx_appliance.records import RecordType as T
from rsx_appliance.records import decode, encode
from rsx_appliance.store import StoreQueryError, StoreSchemaError, open_store
from rsx_appliance.store.db import open_database
from rsx_appliance.store.schema import SCHEMA_VERSION, migrate
from rsx_appliance.store.service import StoreService
from rsx_appliance.wal import WalReader

from storeutil import MeStandIn, RiskStandIn, free_base_port, trade_mix, write_config

RISK0 = 0x80000000


def wal_records(directory, stream_id):
    with WalReader(directory, stream_id) as r:
        r.seek(0)
        return [b.record_bytes(i) for b in r for i in range(len(b))]


def expected_orders(records):
    """A plain per-record model of specs/store.md 3 (orders table)."""
    orders = {}

    def get(sym, oid, ts):
        return orders.setdefault((sym, oid), {"filled": 0, "created": ts})

    for raw in records:
        r = decode(raw)
        t, f = r.type, r.fields
        if t == T.ORDER_ACCEPTED:
            o = get(r.symbol_id, f["order_id"].bytes, r.ts_ns)
            o.update(user=f["user_id"], price=f["price"], qty=f["qty"], status=Status.PENDING, rem=f["qty"],
                     created=r.ts_ns)
        elif t == T.FILL:
            for who in ("taker", "maker"):
                o = get(r.symbol_id, f[f"{who}_order_id"].bytes, r.ts_ns)
                o["filled"] += f["qty"]
                o["rem"] = f[f"{who}_remaining"]
        elif t == T.ORDER_INSERTED:
            o = get(r.symbol_id, f["order_id"].bytes, r.ts_ns)
            o.update(status=Status.RESTING, price=f["price"], rem=f["qty"])
        elif t == T.ORDER_AMENDED:
            o = get(r.symbol_id, f["order_id"].bytes, r.ts_ns)
            o.update(price=f["price"], rem=f["remaining_qty"])
        elif t == T.ORDER_CANCELLED:
            o = get(r.symbol_id, f["order_id"].bytes, r.ts_ns)
            o.update(status=Status.CANCELLED, price=f["price"], rem=f["remaining_qty"])
        elif t == T.ORDER_DONE:
            o = get(r.symbol_id, f["order_id"].bytes, r.ts_ns)
            o.update(status=f["status"], rem=f["remaining_qty"], filled=f["filled_qty"])
        elif t == T.ORDER_FAILED and f["request_type"] == T.NEW_ORDER and f["reason"] != Reason.DUPLICATE_ORDER_ID:
            # a refused retry names the first try's order id; that order is not changed
            get(r.symbol_id, f["order_id"].bytes, r.ts_ns).update(status=Status.FAILED)
    return orders


def db_orders(db):
    return {(s, bytes(o)): (st, f, rem) for s, o, st, f, rem in
            db.query("SELECT symbol_id, order_id, status, filled_qty, remaining_qty FROM orders")}


class Venue:
    """Two MEs and one risk shard on WALs, with users trading, funding settled and a deposit."""

    def __init__(self, root, seed=1, orders=600, batch_records=500):
        self.root = root
        self.base = free_base_port()
        self.cfg_path = write_config(root / "rsx.toml", root / "data", self.base, batch_ms=20,
                                     batch_records=batch_records)
        self.cfg = load_config(self.cfg_path)
        self.risk = RiskStandIn(root / "wal" / "risk0")
        for u in list(range(1, 11)):
            self.risk.deposit(u, 10**13)
        self.mes = {s.id: MeStandIn(root / "wal" / f"me{s.id}", s, sinks=[self.risk.on_me])
                    for s in self.cfg.symbols}
        self.rng = random.Random(seed)
        self.trade(orders)

    def trade(self, orders):
        for me in self.mes.values():
            trade_mix(me, self.rng, orders)
            me.flush()

    def settle_funding(self, rate_e8=12_345):
        """Each ME stream passes its next funding boundary (the shard cuts), then the mark process's rate."""
        sh = self.risk.shard
        for sid, me in self.mes.items():
            ref = me.spec.reference_price
            sh.set_mark(sid, ref)
            interval_ns = me.spec.funding_interval_s * 1_000_000_000
            k = me.ts // interval_ns
            me.ts = (k + 1) * interval_ns
            me.append(T.BBO, bid_px=ref - me.spec.numbers.tick_size, bid_qty=me.spec.numbers.lot_size,
                      ask_px=ref + me.spec.numbers.tick_size, ask_qty=me.spec.numbers.lot_size)
            sh.on_funding_rate(encode(T.FUNDING_RATE, seq=sid, ts_ns=(k + 1) * interval_ns, stream_id=0x40000000,
                                      symbol_id=sid, interval_id=k, rate_e8=rate_e8, mark_px=ref, index_px=ref))
        self.risk.journal.sync()

    def dirs(self):
        return [(me.sid, self.root / "wal" / f"me{me.sid}") for me in self.mes.values()] + \
               [(RISK0, self.root / "wal" / "risk0")]

    def close(self):
        for me in self.mes.values():
            me.close()
        self.risk.close()


async def serve(venue):
    servers = []
    for sid, d in venue.dirs():
        name = f"me.{venue.cfg.symbol(sid).name}" if sid != RISK0 else "risk.0"
        host, port = venue.cfg.process(name).dxs
        s = DxsServer(d, sid, host=host, port=port, poll_s=0.002)
        await s.start()
        servers.append(s)
    return servers


async def run_until(svc, want: dict, timeout=60.0):
    task = asyncio.create_task(svc.run())
    t0 = time.monotonic()
    while True:
        await asyncio.sleep(0.05)
        if task.done():
            return await task
        got = {s.stream_id: s.applied_seq for s in svc.sources}
        if all(got.get(k, 0) >= v for k, v in want.items()) and svc.state == "ready":
            break
        assert time.monotonic() - t0 < timeout, f"store stuck at {got}, want {want}"
    svc.stop()
    return await task


def store_venue(venue, timeout=120):
    """Serve the venue's streams over DXS and run a StoreService until it stored all of them."""
    want = tips_of(venue)

    async def main():
        servers = await serve(venue)
        try:
            svc = StoreService(venue.cfg)
            return await run_until(svc, want), svc
        finally:
            for s in servers:
                await s.close()

    rc, svc = asyncio.run(asyncio.wait_for(main(), timeout))
    assert rc == 0
    return svc


def tips_of(venue):
    out = {}
    for sid, d in venue.dirs():
        recs = wal_records(d, sid)
        if sid == RISK0:  # the last COMMIT
            out[sid] = max(decode(r).seq for r in recs if decode(r).type == T.RISK_PARAM and decode(r).key == 1)
        else:
            out[sid] = len(recs)
    return out


def check_equal(venue, db):
    """Every fill, order, funding payment and deposit of the streams, once, with the risk shard's PnL."""
    for sid, d in venue.dirs():
        if sid == RISK0:
            continue
        recs = wal_records(d, sid)
        fills = [decode(r) for r in recs if decode(r).type == T.FILL]
        got = db.query("SELECT seq, taker_user_id, maker_user_id, price, qty, taker_side FROM fills "
                       "WHERE symbol_id = ? ORDER BY seq", (sid,))
        assert got == [(f.seq, f.taker_user_id, f.maker_user_id, f.price, f.qty, f.taker_side) for f in fills]
        want = expected_orders(recs)
        have = db_orders(db)
        have = {k: v for k, v in have.items() if k[0] == sid}
        assert set(have) == set(want)
        for k, o in want.items():
            assert have[k] == (o.get("status"), o["filled"], o.get("rem")), k
    risk = [decode(r) for r in wal_records(venue.root / "wal" / "risk0", RISK0)]
    pays = sorted((r.seq, r.user_id, r.amount) for r in risk if r.type == T.FUNDING_PAYMENT)
    assert db.query("SELECT seq, user_id, amount FROM funding_payments ORDER BY seq") == pays
    deps = sorted((r.seq, r.user_id, r.amount) for r in risk if r.type == T.DEPOSIT)
    assert db.query("SELECT seq, user_id, amount FROM balance_changes WHERE kind = 1 ORDER BY seq") == deps


def test_store_equals_the_streams_and_the_risk_shard(tmp_path):
    venue = Venue(tmp_path)
    venue.settle_funding()
    venue.trade(100)
    want = tips_of(venue)

    async def main():
        servers = await serve(venue)
        try:
            svc = StoreService(venue.cfg)
            assert await run_until(svc, want) == 0
            return svc
        finally:
            for s in servers:
                await s.close()

    svc = asyncio.run(asyncio.wait_for(main(), 120))
    status = json.loads((venue.cfg.data_dir / "run" / "store.0.json").read_text())
    assert status["state"] == "stopped" and status["streams"]["me 1"]["applied_seq"] == want[1]
    assert status["streams"]["risk 0"]["applied_seq"] == want[RISK0]
    assert status["counters"]["fills"] > 100 and status["database"]["dialect"] == "sqlite"
    db = open_database(venue.cfg.store.url, readonly=True)
    check_equal(venue, db)
    # realised PnL and fees per user equal the risk shard's own numbers
    st = open_store(venue.cfg.store.url)
    sh = venue.risk.shard
    checked = 0
    for user in range(1, 11):
        for row in st.pnl(user):
            pos = sh.position(user, row.symbol_id)
            assert row.realised_pnl == pos["rpnl"], (user, row.symbol_id)
            assert row.fees == pos["fees"]
            assert row.funding == pos["funding"]
            assert row.position == pos["net"] and row.entry_cost == pos["cost"]
            checked += 1
    assert checked >= 10
    assert svc.counters.transactions > 1
    venue.close()


def test_fills_pages_walk_every_leg_once(tmp_path):
    venue = Venue(tmp_path, seed=3, orders=400)
    store_venue(venue)
    st = open_store(venue.cfg.store.url)
    db = open_database(venue.cfg.store.url, readonly=True)
    for user in (1, 5):
        (n_t,), = db.query("SELECT COUNT(*) FROM fills WHERE taker_user_id = ?", (user,))
        (n_m,), = db.query("SELECT COUNT(*) FROM fills WHERE maker_user_id = ?", (user,))
        seen, cursor, pages = [], None, 0
        while True:
            page = st.fills(user, limit=7, before=cursor)
            seen += [(r.symbol_id, r.seq, r.is_maker) for r in page.rows]
            pages += 1
            if page.next is None:
                break
            cursor = page.next if pages % 2 else page.next.encode()  # objects and wire strings
        assert len(seen) == len(set(seen)) == n_t + n_m
        keys = [(r[0], r[1]) for r in seen]
        assert pages > 3 and len(keys) == len(seen)
        # one symbol only; the RSX-style ns cursor
        page = st.fills(user, symbol=2, limit=500)
        assert all(r.symbol_id == 2 for r in page.rows)
        older = st.fills(user, limit=500, before=page.rows[0].ts_ns).rows if page.rows else []
        assert all(r.ts_ns < page.rows[0].ts_ns for r in older)
        orders = st.orders(user, limit=1000).rows
        assert orders and all(o.user_id == user for o in orders)
        assert [o.created_ns for o in orders] == sorted((o.created_ns for o in orders), reverse=True)
        paged, cursor = [], None
        while True:  # the orders cursor walks the same rows, each once
            page = st.orders(user, limit=3, before=cursor)
            paged += page.rows
            if page.next is None:
                break
            cursor = page.next.encode()
        assert paged == orders

    async def from_asyncio():  # the gateway's API: the same pages, off the event loop
        from rsx_appliance.gateway.history import History
        from rsx_appliance.store import AsyncStore

        ast = AsyncStore(venue.cfg.store.url)
        try:
            page = await ast.fills(1, None, 5, None)
            nxt = await ast.fills(1, None, 5, page.next)
            wire = await History(ast).fills(1, 0, 5, 0)
            return page, nxt, wire, await ast.funding(1, 1, 50, None)
        finally:
            await ast.close()

    page, nxt, wire, funding = asyncio.run(from_asyncio())
    assert page.rows == st.fills(1, limit=5).rows and nxt.rows == st.fills(1, limit=5, before=page.next).rows
    assert [w[-1] for w in wire] == [r.seq for r in page.rows]
    assert funding.rows == st.funding(1, 1).rows
    venue.close()


@pytest.mark.parametrize("call,bad", [
    ("fills", dict(user=0)), ("fills", dict(user=2**32)), ("fills", dict(user="7")),
    ("fills", dict(user=1, limit=0)), ("fills", dict(user=1, limit=10**6)),
    ("fills", dict(user=1, symbol=70000)), ("fills", dict(user=1, before="orders:1.2.3.4")),
    ("fills", dict(user=1, before="garbage")), ("funding", dict(user=1, since=-1)),
    ("orders", dict(user=1, before=-5)), ("pnl", dict(user=True)),
])
def test_bad_query_arguments_are_refused_before_sql(tmp_path, call, bad):
    url = f"sqlite:{tmp_path}/h.db"
    migrate(open_database(url))
    st = open_store(url)
    with pytest.raises(StoreQueryError):
        getattr(st, call)(**bad)


def test_schema_versions(tmp_path):
    url = f"sqlite:{tmp_path}/h.db"
    db = open_database(url)
    with pytest.raises(StoreSchemaError, match="run `rsx store migrate`"):
        open_store(url)
    assert migrate(db) == list(range(1, SCHEMA_VERSION + 1))
    assert migrate(db) == []
    open_store(url).close()
    # a database from a newer rsx is never written by this one
    db.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (SCHEMA_VERSION + 1, 0, "future"))
    with pytest.raises(StoreSchemaError, match="newer"):
        migrate(db)
    with pytest.raises(StoreSchemaError, match="newer"):
        open_store(url)


@pytest.fixture(params=["native", "module"])
def binder(request, monkeypatch):
    """The SQLite writer binding rows in C (native), or through the sqlite3 module (a Python whose
    sqlite3 uses no shared libsqlite3): both must store the same rows."""
    from rsx_appliance.store import sqlite_native

    if request.param == "module":
        monkeypatch.setattr(sqlite_native, "connect", lambda *a, **k: None)
    return request.param


@pytest.mark.parametrize("mix", ["crossing", "fills"])
def test_benchmark_streams_fold_to_the_per_record_model(tmp_path, mix, binder):
    """The writer path `rsx bench store` times (C order fold, upserts, small transactions so that
    orders span them) stores exactly what a per-record model of the stream says."""
    from rsx_appliance.store import _benchlib as B

    shape = B.write_stream(str(tmp_path / "wal"), 3000, mix, users=20)
    batches = B.read_batches(str(tmp_path / "wal"), max_records=300)
    r = B.ingest(f"sqlite:{tmp_path}/h.db", batches, 700)
    assert r["fills"] == r["stored_fills"] == 3000 and r["transactions"] > 3
    recs = wal_records(tmp_path / "wal", 1)
    assert len(recs) == shape["records"]
    want = expected_orders(recs)
    db = open_database(f"sqlite:{tmp_path}/h.db", readonly=True)
    have = db_orders(db)
    assert set(have) == {(1, oid) for _, oid in want}
    for (sym, oid), o in want.items():
        assert have[(sym, oid)] == (o.get("status"), o["filled"], o.get("rem")), oid
    if mix == "crossing":  # every order seen accepted: no partial row; client ids as text
        assert db.query("SELECT COUNT(*) FROM orders WHERE accepted_seq IS NULL") == [(0,)]
        assert sorted(db.query("SELECT DISTINCT client_id FROM orders")) == [("mm",), ("taker",)]


def test_client_ids_as_text_odd_bytes_escaped(tmp_path, binder):
    from rsx_appliance.store.ingest import Ingest
    from rsx_appliance.store.writer import Writer

    spec = load_config().symbol(1)
    me = MeStandIn(tmp_path / "wal", spec)
    ids = [b"plain-id", b"caf\xc3\xa9", b"a\x00b", b"x" * 20, b""]
    oids = [me.submit(1, int(Side.BUY), spec.reference_price - 100 * spec.numbers.tick_size,
                      spec.numbers.lot_size, client_id=c) for c in ids]
    me.flush()
    with WalReader(tmp_path / "wal", 1) as r:
        r.seek(0)
        batches = [(1, b) for b in r]
    url = f"sqlite:{tmp_path}/h.db"
    db = open_database(url)
    migrate(db)
    ing = Ingest(6)
    Writer(db).write(ing.convert(batches))
    got = dict(db.query("SELECT order_id, client_id FROM orders"))
    assert [got[o] for o in oids] == ["plain-id", "caf\\xc3\\xa9", "a\\x00b", "x" * 20, ""]
    me.close()


def reused_order_id_stream(directory):
    """ME records where an order id is accepted, filled, done, then accepted again in a later run."""
    from rsx_appliance.codes import Tif
    from rsx_appliance.wal import WalWriter

    spec = load_config().symbol(1)
    px, lot = spec.reference_price, spec.numbers.lot_size
    oid, maker = uuid.uuid4().bytes, uuid.uuid4().bytes
    runs = []
    with WalWriter(directory, 1, retain_s=None, prealloc=False) as w:
        fields = {k: int(v) for k, v in spec.numbers.record_fields().items() if k != "symbol_id"}
        w.append(T.CONFIG_APPLIED, symbol_id=1, **fields)
        w.append(T.ORDER_ACCEPTED, symbol_id=1, user_id=2, side=0, tif=int(Tif.GTC), order_id=maker, price=px,
                 qty=10 * lot, client_id=b"m")
        w.append(T.ORDER_INSERTED, symbol_id=1, user_id=2, side=0, order_id=maker, price=px, qty=10 * lot)
        w.append(T.ORDER_ACCEPTED, symbol_id=1, user_id=3, side=1, tif=int(Tif.IOC), order_id=oid, price=px,
                 qty=4 * lot, client_id=b"first")
        w.append(T.FILL, symbol_id=1, taker_user_id=3, maker_user_id=2, taker_order_id=oid, maker_order_id=maker,
                 price=px, qty=4 * lot, taker_side=1, taker_remaining=0, maker_remaining=6 * lot)
        w.append(T.ORDER_DONE, symbol_id=1, user_id=3, side=1, status=int(Status.FILLED), order_id=oid,
                 filled_qty=4 * lot)
        runs.append(w.next_seq - 1)
        w.append(T.ORDER_ACCEPTED, symbol_id=1, user_id=3, side=1, tif=int(Tif.IOC), order_id=oid, price=px,
                 qty=lot, client_id=b"again")
        w.append(T.FILL, symbol_id=1, taker_user_id=3, maker_user_id=2, taker_order_id=oid, maker_order_id=maker,
                 price=px, qty=lot, taker_side=1, taker_remaining=0, maker_remaining=5 * lot)
        w.append(T.ORDER_DONE, symbol_id=1, user_id=3, side=1, status=int(Status.FILLED), order_id=oid,
                 filled_qty=lot)
        w.flush()
        runs.append(w.next_seq - 1)
    return oid, maker, lot, runs


def check_reused_order_id(directory, url):
    """Each run is one transaction; the second ORDER_ACCEPTED of the id starts its row over."""
    from rsx_appliance.store.ingest import Ingest
    from rsx_appliance.store.writer import Writer
    from rsx_appliance.wal.block import Block

    oid, maker, lot, runs = reused_order_id_stream(directory)
    with WalReader(directory, 1) as r:
        r.seek(0)
        block = next(iter(r))
    db = open_database(url)
    migrate(db)
    ing = Ingest(6)
    w = Writer(db)
    w.write(ing.convert([(1, Block(block.raw, block.index[:runs[0]]))]))
    w.write(ing.convert([(1, Block(block.raw, block.index[runs[0]:]))]))
    got = {bytes(o): rest for o, *rest in db.query(
        "SELECT order_id, qty, filled_qty, status, client_id, accepted_seq FROM orders")}
    assert got[oid] == [lot, lot, int(Status.FILLED), "again", runs[0] + 1]
    assert got[maker][1] == 5 * lot  # the maker's fills of both runs
    assert db.query("SELECT COUNT(*) FROM fills") == [(2,)]
    db.close()


def test_an_order_id_accepted_again_starts_its_row_over(tmp_path, binder):
    check_reused_order_id(tmp_path / "wal", f"sqlite:{tmp_path}/h.db")


def test_postgresql_without_its_driver_is_an_environment_error(monkeypatch):
    from rsx_appliance.store import StoreUnavailableError

    monkeypatch.setitem(__import__("sys").modules, "psycopg", None)  # `import psycopg` now fails
    with pytest.raises(StoreUnavailableError, match=r"rsx-appliance\[postgres\]") as e:
        open_database("postgresql://rsx@127.0.0.1:1/postgres")
    assert e.value.exit_code == 3


def test_commands_json_against_their_schemas(tmp_path, capsys):
    """rsx store migrate|info, rsx history and rsx bench store: --json against specs/schemas/ and the key
    rules of specs/cli.md (snake_case, the unit last)."""
    pytest.importorskip("jsonschema", reason="jsonschema not installed (test extra)")
    from cliutil import check

    from rsx_appliance.cli import main
    from rsx_appliance.store import _benchlib as B

    def rsx(*argv):
        assert main(list(argv)) == 0
        return capsys.readouterr().out

    url = f"sqlite:{tmp_path}/h.db"
    (doc,) = check("store-migrate", rsx("store", "migrate", "--url", url, "--json"))
    assert doc["applied"] == [SCHEMA_VERSION]
    B.write_stream(str(tmp_path / "wal"), 500, "crossing", users=5)
    B.ingest(url, B.read_batches(str(tmp_path / "wal")), 10_000)
    (doc,) = check("store-info", rsx("store", "info", "--url", url, "--json"))
    assert doc["rows"]["fills"] == 500 and doc["streams"][0]["applied_seq"] > 500
    for kind in ("fills", "orders", "pnl"):
        (doc,) = check("history", rsx("history", kind, "--user", "3", "--url", url, "--json"))
        assert doc["rows"]
    (doc,) = check("bench-store", rsx("bench", "store", "--fills", "2000", "--repeat", "1", "--dir",
                                      str(tmp_path), "--json"))
    assert doc["results"]["sqlite"]["ingest"]["stored_fills"] == 2000


@pytest.mark.slow
def test_bench_store_lag_runs_the_process_path(tmp_path, capsys):
    """The lag case end to end, briefly: producer process, rsx dxs serve, the store; a run file."""
    pytest.importorskip("jsonschema", reason="jsonschema not installed (test extra)")
    from cliutil import check

    from rsx_appliance.cli import main
    from rsx_appliance.latency.run import load_run

    save = tmp_path / "lag.lat.json"
    assert main(["bench", "store", "lag", "--rate", "2000", "--seconds", "1", "--dir", str(tmp_path),
                 "--save", str(save), "--json"]) == 0
    (doc,) = check("bench-store", capsys.readouterr().out)
    lag = doc["results"]["sqlite"]["lag"]
    assert lag["fills"] == lag["lagged_fills"] == lag["lag"]["count"] == 2000
    assert 0 < lag["lag"]["p50_ms"] <= lag["lag"]["max_ms"]
    assert load_run(save).stages["fill_due_to_commit"].histogram.total == 2000


def test_fills_that_cannot_be_valued_keep_null_value_and_fees(tmp_path, binder):
    check_unvalued_fills(tmp_path / "wal", f"sqlite:{tmp_path}/h.db")


def check_unvalued_fills(directory, url):
    """No CONFIG_APPLIED and no configured symbol: no value divisor, so value and fees are NULL, the rest
    of the fill is stored."""
    from rsx_appliance.records import PAYLOAD_DTYPES
    from rsx_appliance.store.ingest import Ingest
    from rsx_appliance.store.writer import Writer
    from rsx_appliance.wal import WalWriter

    p = np.zeros(5, dtype=PAYLOAD_DTYPES[T.FILL])
    p["symbol_id"], p["taker_user_id"], p["maker_user_id"], p["price"], p["qty"] = 1, 3, 4, 100, 7
    p["taker_order_id"] = np.frombuffer(b"".join(uuid.uuid4().bytes for _ in range(5)), dtype="V16")
    p["maker_order_id"] = np.frombuffer(b"".join(uuid.uuid4().bytes for _ in range(5)), dtype="V16")
    with WalWriter(directory, 1, retain_s=None, prealloc=False) as w:
        w.append_batch(T.FILL, p)
    with WalReader(directory, 1) as r:
        r.seek(0)
        batches = [(1, b) for b in r]
    db = open_database(url)
    migrate(db)
    ing = Ingest(6)  # no fallback fees: nothing to value with
    Writer(db).write(ing.convert(batches))
    assert db.query("SELECT seq, qty, value, taker_fee, maker_fee FROM fills ORDER BY seq") == [
        (seq, 7, None, None, None) for seq in range(1, 6)]
