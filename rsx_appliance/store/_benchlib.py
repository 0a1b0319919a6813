"""Builders and timed runs behind `rsx bench store` (rsx_appliance/cli/bench/store.py).

Streams are generated vectorised (numpy, one C append per record type and
chunk) into a real WAL and read back as the batches DXS would hand the store;
only the store's own work is timed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

SEC = 1_000_000_000
CHUNK = 1024  # takers per generated chunk (the crossing mix)


def _oids(n: int, start: int, ms: int) -> np.ndarray:
    """n UUIDv7-shaped order ids (time-ordered, like the gateway's), as V16."""
    oid = np.zeros((n, 2), dtype=">u8")
    oid[:, 0] = (ms << 16) | 0x7000
    oid[:, 1] = (0x8 << 60) | (start + np.arange(n, dtype=np.uint64))
    return oid.view("V16").ravel()


MIXES = ("crossing", "fills")


def write_stream(directory: str, n: int, mix: str = "crossing", users: int = 1000, seed: int = 1,
                 symbol: int = 1) -> dict:
    """An ME stream with n fills into a WAL at ``directory``; returns its shape.

    mix ``fills``: one CONFIG_APPLIED and n FILLs (a store catching up on fills only: every order row
    is a partial row). mix ``crossing``: what the ME writes for makers resting and takers crossing
    them (:func:`crossing_chunks`).
    """
    from ..records import PAYLOAD_DTYPES
    from ..records import RecordType as T
    from ..wal import WalWriter

    if mix not in MIXES:
        raise ValueError(f"mix must be one of {', '.join(MIXES)}, not {mix!r}")
    spec = _spec(symbol)
    num = spec.numbers
    rng = np.random.default_rng(seed)
    ms = time.time_ns() // 1_000_000
    ts = time.time_ns()
    with WalWriter(directory, symbol, sync="none", prealloc=False, retain_s=None) as w:
        _config(w, spec)
        if mix == "fills":
            p = np.zeros(n, dtype=PAYLOAD_DTYPES[T.FILL])
            p["ts_ns"], p["symbol_id"] = ts + np.arange(n) * 1000, symbol
            p["taker_user_id"] = rng.integers(1, users + 1, n)
            p["maker_user_id"] = rng.integers(1, users + 1, n)
            p["taker_order_id"] = _oids(n, 1, ms)
            p["maker_order_id"] = _oids(n, n + 1, ms)[np.arange(n) // 4]  # a maker fills 4 takers
            p["price"] = spec.reference_price + rng.integers(-50, 50, n) * num.tick_size
            p["qty"] = num.lot_size * rng.integers(1, 20, n)
            p["taker_side"] = rng.integers(0, 2, n)
            w.append_batch(T.FILL, p)
        else:
            for chunk in crossing_chunks(spec, n, CHUNK, users, rng):
                for rtype, p in chunk:
                    p["ts_ns"], ts = ts + np.arange(len(p)) * 1000, ts + len(p) * 1000
                    w.append_batch(rtype, p)
        w.flush()
        records = w.next_seq - 1
    return {"mix": mix, "fills": n, "records": records, "users": users}


def _spec(symbol: int):
    from ..config import load_config

    return load_config().symbol(symbol)


def _config(w, spec) -> None:
    from ..records import RecordType as T

    fields = {k: int(v) for k, v in spec.numbers.record_fields().items() if k != "symbol_id"}
    w.append(T.CONFIG_APPLIED, symbol_id=spec.id, **fields)


def crossing_chunks(spec, n: int, chunk: int, users: int, rng):
    """Yield, per chunk of takers, the ``(record type, payloads)`` the ME writes, in stream order.

    Makers rest and takers cross them: per 4 fills, 4 taker orders (ORDER_ACCEPTED, FILL,
    ORDER_DONE) against one maker (ORDER_ACCEPTED and ORDER_INSERTED one chunk before its fills,
    ORDER_DONE after its fourth). Within a chunk records are grouped by type (the takers'
    ACCEPTED, then their FILLs, then their DONEs): each order's own records keep their order.
    ``ts_ns`` is left to the caller.
    """
    from ..codes import Side, Status, Tif
    from ..records import PAYLOAD_DTYPES
    from ..records import RecordType as T

    num = spec.numbers
    lot, per_maker = num.lot_size, 4
    ms = time.time_ns() // 1_000_000
    next_id = [1]

    def payloads(rtype: int, k: int) -> np.ndarray:
        p = np.zeros(k, dtype=PAYLOAD_DTYPES[rtype])
        p["symbol_id"] = spec.id
        return p

    def ids(k: int) -> np.ndarray:
        out = _oids(k, next_id[0], ms)
        next_id[0] += k
        return out

    def makers(k: int, side: int) -> dict:
        return {"user": rng.integers(1, users + 1, k), "oid": ids(k), "side": side,
                "price": spec.reference_price + rng.integers(0, 20, k) * num.tick_size,
                "fill": lot * rng.integers(1, 10, k)}  # qty of each of its 4 fills

    def rest(m: dict) -> list:
        k = len(m["oid"])
        a = payloads(T.ORDER_ACCEPTED, k)
        a["user_id"], a["side"], a["tif"], a["stp"] = m["user"], m["side"], int(Tif.GTC), 3
        a["order_id"], a["price"], a["qty"], a["client_id"] = m["oid"], m["price"], m["fill"] * per_maker, b"mm"
        i = payloads(T.ORDER_INSERTED, k)
        i["user_id"], i["side"], i["tif"] = m["user"], m["side"], int(Tif.GTC)
        i["order_id"], i["price"], i["qty"] = m["oid"], m["price"], m["fill"] * per_maker
        return [(T.ORDER_ACCEPTED, a), (T.ORDER_INSERTED, i)]

    def makers_for(k: int, c: int) -> dict:
        return makers((k + per_maker - 1) // per_maker, int(Side.BUY if c % 2 else Side.SELL))

    left, c = n, 0
    nxt = makers_for(min(chunk, left), 0)
    out = rest(nxt)
    while left:
        k = min(chunk, left)
        left -= k
        cur, m = nxt, len(nxt["oid"])
        if left:
            nxt = makers_for(min(chunk, left), c + 1)
            out += rest(nxt)
        j = np.arange(k) // per_maker  # the maker of each taker
        qty, price = cur["fill"][j], cur["price"][j]
        taker_user, taker_oid, taker_side = rng.integers(1, users + 1, k), ids(k), 1 - cur["side"]
        a = payloads(T.ORDER_ACCEPTED, k)
        a["user_id"], a["side"], a["tif"], a["stp"] = taker_user, taker_side, int(Tif.IOC), 3
        a["order_id"], a["price"], a["qty"], a["client_id"] = taker_oid, price, qty, b"taker"
        f = payloads(T.FILL, k)
        f["taker_user_id"], f["maker_user_id"] = taker_user, cur["user"][j]
        f["taker_order_id"], f["maker_order_id"] = taker_oid, cur["oid"][j]
        f["price"], f["qty"], f["taker_side"] = price, qty, taker_side
        f["maker_remaining"] = cur["fill"][j] * (per_maker - (np.arange(k) % per_maker + 1))
        d = payloads(T.ORDER_DONE, k)
        d["user_id"], d["side"], d["status"] = taker_user, taker_side, int(Status.FILLED)
        d["order_id"], d["filled_qty"] = taker_oid, qty
        full = np.bincount(j, minlength=m) == per_maker  # makers whose 4 fills all happened
        md = payloads(T.ORDER_DONE, int(full.sum()))
        md["user_id"], md["side"], md["status"] = cur["user"][full], cur["side"], int(Status.FILLED)
        md["order_id"], md["filled_qty"] = cur["oid"][full], cur["fill"][full] * per_maker
        out += [(T.ORDER_ACCEPTED, a), (T.FILL, f), (T.ORDER_DONE, d), (T.ORDER_DONE, md)]
        c += 1
        yield out
        out = []


def read_batches(directory: str, symbol: int = 1, max_records: int | None = None) -> list:
    """The WAL read back as the store receives it from DXS (batches of at most max_records)."""
    from ..wal import WalReader
    from ..wal.block import Block

    with WalReader(directory, symbol) as r:
        r.seek(0)
        batches = list(r)
    if max_records:
        batches = [Block(b.raw, b.index[i:i + max_records]) for b in batches
                   for i in range(0, len(b), max_records)]
    return batches


def ingest(url: str, batches: list, batch_records: int, symbol: int = 1,
           server_cpu: Callable[[], float] | None = None) -> dict:
    """The store's writer path into a fresh database: runs of batch_records records, each converted
    (numpy, the C order fold, fees through the C ledger) while the previous one is committed, as
    ``rsx store`` does.

    Timed from the first batch to the last commit; ``cpu_s`` is this process's CPU time over the same
    span, ``server_cpu_s`` the database server's (``server_cpu``: a PostgreSQL server of our own);
    ``fills_per_cpu_s`` counts both (the figure to compare on a loaded machine).
    """
    from concurrent.futures import ThreadPoolExecutor

    from .db import open_database
    from .ingest import Ingest
    from .schema import migrate
    from .writer import Writer

    runs, group, n = [], [], 0
    for b in batches:
        group.append((symbol, b))
        n += len(b)
        if n >= batch_records:
            runs.append(group)
            group, n = [], 0
    if group:
        runs.append(group)
    db = open_database(url)
    migrate(db)
    conv = Ingest(6)
    writer = Writer(db)
    fills = records = 0
    s0 = server_cpu() if server_cpu else 0.0
    c0, t0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(1, thread_name_prefix="rsx-bench-convert") as pool:
        nxt = pool.submit(conv.convert, runs[0]) if runs else None
        for i in range(len(runs)):
            t = nxt.result()
            if i + 1 < len(runs):
                nxt = pool.submit(conv.convert, runs[i + 1])
            writer.write(t)
            fills += t.nfills
            records += t.records
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    server = server_cpu() - s0 if server_cpu else 0.0
    (stored,), = db.query("SELECT COUNT(*) FROM fills")
    (orders,), = db.query("SELECT COUNT(*) FROM orders")
    db.close()
    out = {"fills": fills, "records": records, "stored_fills": stored, "order_rows": orders,
           "wall_s": round(wall, 3), "fills_per_s": round(fills / wall), "records_per_s": round(records / wall),
           "cpu_s": round(cpu, 3)}
    if server_cpu:
        out["server_cpu_s"] = round(server, 3)
    out.update({"fills_per_cpu_s": round(fills / (cpu + server)), "transactions": writer.transactions})
    return out


def median_run(runs: list[dict], key: str = "fills_per_s") -> dict:
    """The run with the median ``key`` (the lower middle for an even count), with every run's figure."""
    ordered = sorted(runs, key=lambda r: r[key])
    out = dict(ordered[(len(ordered) - 1) // 2])
    out["runs_" + key] = [r[key] for r in runs]
    return out


def fresh_sqlite(directory: str, run: int) -> str:
    """The URL of a new SQLite file for one run (any leftover of the same name removed first)."""
    path = os.path.join(directory, f"bench-{os.getpid()}-{run}.db")
    remove_sqlite(path)
    return f"sqlite:{path}"


def remove_sqlite(url_or_path: str) -> None:
    path = url_or_path.removeprefix("sqlite:")
    for suffix in ("", "-wal", "-shm", ".lock"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def fresh_pg_schema(url: str, run: int) -> tuple[str, str]:
    """A new, empty schema on the server at url for one run: (its URL, its name)."""
    import psycopg
    from urllib.parse import quote

    name = f"rsx_bench_{os.getpid()}_{run}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-c search_path={name}')}", name


def drop_pg_schema(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


# -- lag at a steady rate: the whole process path ------------------------------------------------

def produce(directory: str, rate: float, seconds: float, users: int, seed: int, symbol: int, tick_s: float,
            conn) -> None:
    """The ME's side, in its own process: the crossing mix appended open loop at ``rate`` fills/s.

    Tick i is intended at t0 + i x tick_s (rsx_appliance.openloop) and appends rate x tick_s fills
    with every record stamped ts_ns = the tick's intended time (CLOCK_REALTIME), so a store that falls
    behind is charged from when the fills were due, never from when a late producer wrote them.
    Starts when ``conn`` says "go"; sends (last seq, fills, max lateness ns) on ``conn`` when done.
    """
    from ..latency import now_ns
    from ..openloop import OpenLoop
    from ..records import RecordType as T
    from ..wal import WalWriter

    spec = _spec(symbol)
    per_tick = max(1, round(rate * tick_s))
    loop = OpenLoop(1 / tick_s, duration=seconds)
    ticks = crossing_chunks(spec, per_tick * loop.count, per_tick, users, np.random.default_rng(seed))
    fills, late = 0, 0
    with WalWriter(directory, symbol, retain_s=None) as w:
        _config(w, spec)
        w.flush()
        conn.send("ready")
        if conn.recv() != "go":  # the store is up and caught up: measure the steady state, not its start
            return
        offset = time.time_ns() - now_ns()  # the schedule's clock -> CLOCK_REALTIME
        for _, intended in loop.schedule():
            late = max(late, now_ns() - intended)
            for rtype, p in next(ticks):
                p["ts_ns"] = intended + offset
                w.append_batch(rtype, p)
                fills += len(p) if rtype == T.FILL else 0
        w.flush()
        last = w.next_seq - 1
    conn.send((last, fills, late))


def lag(url: str, directory: str, rate: float, seconds: float, users: int = 1000, seed: int = 1,
        symbol: int = 1, tick_s: float = 0.001, timeout_s: float = 120.0) -> tuple[dict, np.ndarray]:
    """The store's lag at a steady offered rate, over the real process path.

    Three processes: the producer (:func:`produce`: a WAL writer with group commit), ``rsx dxs
    serve`` on that WAL, and here the store (StoreService: DXS consumer, queue, writer thread,
    ``[store]`` defaults: transactions of up to 50 000 records or 50 ms). The load starts once the
    store is ready. Returns the summary and every fill's lag (commit time - the time the fill was
    due, ns).
    """
    import asyncio
    import multiprocessing
    import subprocess

    from ..config import load_config
    from ..launch import rsx_argv
    from .service import StoreService, StreamSource

    wal = os.path.join(directory, "wal")
    cfg = load_config(None, data_dir=os.path.join(directory, "data"))
    with _socket() as sock:
        port = sock.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    producer = ctx.Process(target=produce, args=(wal, rate, seconds, users, seed, symbol, tick_s, child),
                           name="rsx-bench-producer", daemon=True)
    producer.start()
    server = None
    try:
        if not parent.poll(60) or parent.recv() != "ready":
            raise RuntimeError("the producer did not start")
        server = subprocess.Popen(rsx_argv("dxs", "serve", "--wal", wal, "--port", str(port), "--stream", str(symbol)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = server.stdout.readline()
        if "dxs: stream" not in line:
            raise RuntimeError(f"rsx dxs serve did not start: {line!r} {server.stderr.read()}")
        svc = StoreService(cfg, url=url, record_lag=True)
        svc.sources = [StreamSource(symbol, ("127.0.0.1", port))]

        async def main() -> tuple[int, int, int]:
            task = asyncio.create_task(svc.run())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while svc.state != "ready":  # connected and caught up with the (empty) stream
                if task.done():
                    await task
                    raise RuntimeError("the store stopped early")
                if loop.time() > deadline:
                    raise RuntimeError("the store did not start")
                await asyncio.sleep(0.01)
            parent.send("go")
            got = await loop.run_in_executor(None, parent.poll, seconds + timeout_s)
            if not got:
                raise RuntimeError("the producer did not finish")
            last, fills, late = parent.recv()
            deadline = loop.time() + timeout_s
            while svc.sources[0].applied_seq < last:
                if task.done():
                    await task
                    raise RuntimeError("the store stopped early")
                if loop.time() > deadline:
                    raise RuntimeError(f"the store did not catch up: {svc.sources[0].applied_seq} of {last}")
                await asyncio.sleep(0.01)
            svc.stop()
            await task
            return last, fills, late

        last, fills, late = asyncio.run(main())
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        producer.join(10)
        if producer.is_alive():
            producer.kill()
    lags = np.concatenate(svc.counters.lag_samples) if svc.counters.lag_samples else np.empty(0, np.int64)
    out = {"offered_fills_per_s": rate, "duration_s": seconds, "fills": fills, "records": last,
           "lagged_fills": int(len(lags)), "producer_max_late_ms": round(late / 1e6, 3),
           "transactions": svc.counters.transactions, "store_db_errors": svc.counters.db_errors}
    return out, lags


def _socket():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s
