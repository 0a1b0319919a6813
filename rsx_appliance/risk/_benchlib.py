"""Builders and timed runs behind `rsx bench risk` (rsx_appliance/cli/bench/risk.py).

Record streams are generated vectorised (numpy + the C CRC), accounts are
opened directly in the core (setup, not timed: a real shard gets them from
journaled deposits), and only the operation under test is timed.
"""

from __future__ import annotations

import time

import numpy as np

from ..records import RecordType, empty_many, encode, seal_many
from ._core import EXTERNAL, Capacity
from .journal import WalJournal, MemoryJournal
from .params import RiskParams
from .shard import RiskShard, shard_stream_id
from .snapshot import load_snapshot, list_snapshots

SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC
PRICE = 5_000_000          # 50 000.00 with pd=2
BIG = 10**17               # collateral of market makers


def _config(symbol: int, seq: int = 1) -> bytes:
    return encode(RecordType.CONFIG_APPLIED, seq=seq, ts_ns=T0, stream_id=symbol, symbol_id=symbol,
                  config_version=1, tick_size=1, lot_size=1, min_qty=1, max_qty=10**12, price_decimals=2,
                  qty_decimals=6, status=0, maker_fee_bps=-1, taker_fee_bps=5, initial_margin_bps=1000,
                  maintenance_margin_bps=500, funding_interval_s=28800, max_funding_rate_bps=75)


def make_shard(n_users: int, n_symbols: int, *, max_positions: int | None = None, max_orders: int = 1024,
               journal=None, collateral=None) -> RiskShard:
    cap = Capacity(max_users=n_users + 16, max_positions=max_positions or (n_users * 2 + 64),
                   max_orders=max_orders, max_symbols=max(16, n_symbols + 1), events_cap=1 << 16)
    shard = RiskShard.create(journal or MemoryJournal(shard_stream_id(0)), capacity=cap,
                             params=RiskParams(), now_ns=T0)
    for s in range(1, n_symbols + 1):
        shard.on_me(_config(s))
    core = shard.core
    coll = np.full(n_users, 10**13, dtype=np.int64) if collateral is None else collateral
    open_account, move = core.open_account, core.move
    for u, c in zip(range(1, n_users + 1), coll.tolist()):
        move(EXTERNAL, open_account(u), c)        # setup shortcut: no journal per account
    return shard


def fill_records(symbol: int, first_seq: int, takers, makers, sides, prices, qtys, ts0: int = T0) -> bytes:
    n = len(takers)
    arr = empty_many(RecordType.FILL, n)
    p = arr["payload"]
    p["seq"] = first_seq + np.arange(n, dtype=np.uint64)
    p["ts_ns"] = ts0 + np.arange(n, dtype=np.uint64)
    p["stream_id"] = symbol
    p["symbol_id"] = symbol
    p["taker_user_id"] = takers
    p["maker_user_id"] = makers
    p["taker_side"] = sides
    p["price"] = prices
    p["qty"] = qtys
    return seal_many(arr)


def order_records(users, sides, prices, qtys, first_id: int, symbol: int = 1) -> bytes:
    n = len(users)
    arr = empty_many(RecordType.NEW_ORDER, n)
    p = arr["payload"]
    p["symbol_id"] = symbol
    p["user_id"] = users
    p["side"] = sides
    p["price"] = prices
    p["qty"] = qtys
    ids = np.zeros((n, 16), dtype=np.uint8)
    ids[:, 8:] = (first_id + np.arange(n, dtype=np.uint64)).astype(">u8").view(np.uint8).reshape(n, 8)
    ids[:, 0] = 0x01
    p["order_id"] = ids.view("V16").reshape(n)
    return seal_many(arr)


def _pct(samples_ns: np.ndarray) -> dict:
    """The latency summary of ns samples in us (the one percentile dict: count, min_us ... max_us)."""
    from ..latency import Histogram

    h = Histogram()
    h.record(samples_ns)
    return h.summary("us")


def _chunks(buf: bytes, rec_size: int, per: int) -> list[memoryview]:
    step = rec_size * per
    view = memoryview(buf)
    return [view[i:i + step] for i in range(0, len(buf), step)]


def bench_pretrade(n: int, batch: int, repeat: int) -> dict:
    users = 10_000
    shard = make_shard(users, 1, max_orders=n * repeat + 20_000, max_positions=users * 2 + 64,
                       collateral=np.full(users, 10**15, dtype=np.int64))
    shard.set_mark(1, PRICE)
    rng = np.random.default_rng(1)
    rec_size = 16 + 128
    times = []
    accepted = 0
    for rep in range(repeat):
        buf = order_records(rng.integers(1, users + 1, n), rng.integers(0, 2, n),
                            PRICE + rng.integers(-5000, 5000, n), rng.integers(1, 100_000, n),
                            first_id=rep * n)
        chunks = _chunks(buf, rec_size, batch)
        submit = shard.submit
        t = time.perf_counter_ns()
        for c in chunks:
            out = submit(c, T0)
            accepted += len(out.to_me) // rec_size
        times.append(time.perf_counter_ns() - t)
    # one record per call: the per-request cost including the Python call
    single = order_records(rng.integers(1, users + 1, 5000), rng.integers(0, 2, 5000),
                           np.full(5000, PRICE), np.full(5000, 10), first_id=10**12)
    lat = np.empty(5000, dtype=np.int64)
    view = memoryview(single)
    for i in range(5000):
        t = time.perf_counter_ns()
        shard.submit(view[i * rec_size:(i + 1) * rec_size], T0)
        lat[i] = time.perf_counter_ns() - t
    med = float(np.median(times))
    return {"checks": n, "checks_per_s": n / (med / 1e9), "median_s": med / 1e9,
            "runs_s": [x / 1e9 for x in times],
            "accepted": accepted, "verified": accepted == n * repeat and shard.audit() == 0,
            "single_call": _pct(lat), "single_call_per_s": 1e9 / float(np.median(lat)),
            "_samples": {"pretrade_single_call": lat}}


def bench_fills(n: int, batch: int, repeat: int) -> dict:
    users = 10_000
    shard = make_shard(users, 1, max_positions=users * 2 + 64)
    rng = np.random.default_rng(2)
    total = n * repeat
    takers = rng.integers(1, users + 1, total)
    makers = (takers + rng.integers(1, users, total) - 1) % users + 1      # never the taker
    buf = fill_records(1, 2, takers, makers, rng.integers(0, 2, total), PRICE + rng.integers(-500, 500, total),
                       rng.integers(1, 1000, total))
    rec_size = 16 + 128
    times = []
    on_me = shard.on_me
    for rep in range(repeat):
        part = memoryview(buf)[rep * n * rec_size:(rep + 1) * n * rec_size]
        chunks = _chunks(part, rec_size, batch)
        t = time.perf_counter_ns()
        for c in chunks:
            on_me(c)
        times.append(time.perf_counter_ns() - t)
    nets = shard.core.positions["net"][:shard.core.r.n_positions]
    med = float(np.median(times))
    return {"fills": n, "fills_per_s": n / (med / 1e9), "median_s": med / 1e9, "runs_s": [x / 1e9 for x in times],
            "verified": int(shard.core.r.fills_applied) == total and int(nets.sum()) == 0 and shard.audit() == 0}


def bench_mark(exposed: int, repeat: int) -> dict:
    rng = np.random.default_rng(3)
    mm_user = exposed + 1
    qty = rng.integers(100_000, 600_000, exposed)           # 0.1 .. 0.6 BTC at 50 000
    sides = rng.integers(0, 2, exposed)
    # margin between 8 % and 30 % of the notional (+ 20 % of the second symbol's): a 6 % drop
    # liquidates the longs under ~10.7 %, a few percent of the users
    v1 = PRICE * qty // 100
    coll = np.empty(exposed + 1, dtype=np.int64)
    coll[:-1] = v1 * rng.integers(800, 3000, exposed) // 10_000 + (300_000 * qty // 100) // 5
    coll[-1] = BIG
    shard = make_shard(exposed + 1, 2, max_positions=2 * exposed + 64, max_orders=2 * exposed + 64,
                       collateral=coll)
    core = shard.core
    users = np.arange(1, exposed + 1)
    shard.on_me(fill_records(1, 2, users, np.full(exposed, mm_user), sides, np.full(exposed, PRICE), qty))
    half = users[: exposed // 2]
    shard.on_me(fill_records(2, 2, half, np.full(len(half), mm_user), sides[: len(half)],
                             np.full(len(half), 300_000), qty[: len(half)]))
    shard.set_mark(2, 300_000)
    shard.set_mark(1, PRICE)
    index = shard.symbol_positions(1)
    down = PRICE * 94 // 100
    scans, found_n = [], 0
    for _ in range(repeat):
        for m in (down, PRICE):
            t = time.perf_counter_ns()
            found = core.set_mark(1, m, index)
            dt = time.perf_counter_ns() - t
            if m == down:
                scans.append(dt)
                found_n = len(found)
                found_set = set(core.accounts["user_id"][found].tolist())
    # independent check: equity < MM from the positions with numpy (single tier, values fit int64)
    pos = core.positions[:core.r.n_positions]
    acc = core.accounts[:core.r.n_users]
    marks = {1: down, 2: 300_000}
    value = np.zeros(len(pos), dtype=np.int64)
    for s, m in marks.items():
        sel = pos["symbol_id"] == s
        value[sel] = np.floor_divide(pos["net"][sel] * m, 100)
    mm = np.abs(value) * 500 // 10_000
    upnl = value - pos["cost"]
    eq = acc["collateral"].astype(np.int64).copy()
    np.add.at(eq, pos["acct"], upnl)
    mmsum = np.zeros(len(acc), dtype=np.int64)
    np.add.at(mmsum, pos["acct"], mm)
    liq = eq < mmsum
    expect = set(acc["user_id"][liq].tolist())
    # the full path once: scan + entering liquidation (journal batch, round orders)
    t = time.perf_counter_ns()
    out = shard.set_mark(1, down)
    full = time.perf_counter_ns() - t
    rounds = sum(1 for r in out.gateway_records() if r.type == RecordType.LIQUIDATION)
    med = float(np.median(scans))
    return {"exposed_users": exposed, "positions_scanned": int(len(index)), "liquidatable": found_n,
            "scan_median_ms": med / 1e6, "scan_runs_ms": [x / 1e6 for x in scans],
            "full_path_ms": full / 1e6, "liquidation_records": rounds,
            "verified": found_set == expect and rounds >= len(expect) and shard.audit() == 0}


def bench_recovery(n_users: int, n_fills: int, tmp: str) -> dict:
    n_sym = 4
    t_setup = time.perf_counter()
    jpath = f"{tmp}/journal"
    shard = make_shard(n_users, n_sym, max_positions=n_users * n_sym + 64,
                       journal=WalJournal(jpath, shard_stream_id(0)))
    rng = np.random.default_rng(4)
    tips = {}
    # every user opens a position in one symbol before the snapshot
    users = np.arange(1, n_users + 1)
    sym_of = (users % n_sym) + 1
    for s in range(1, n_sym + 1):
        us = users[sym_of == s]
        makers = np.roll(us, 1)
        shard.on_me(fill_records(s, 2, us, makers, rng.integers(0, 2, len(us)), np.full(len(us), PRICE),
                                 rng.integers(1, 1000, len(us))))
        tips[s] = 1 + len(us)
    shard.snapshot(f"{tmp}/snap")
    base = {s: int(shard.core.symbols["tip"][s]) for s in range(1, n_sym + 1)}
    shard.journal.close()
    # the fills the MEs replay from tip + 1, held as DXS would stream them (buffers of 64k records)
    per = n_fills // n_sym
    streams = {}
    for s in range(1, n_sym + 1):
        t = rng.integers(1, n_users + 1, per)
        m = (t + rng.integers(1, n_users, per) - 1) % n_users + 1
        buf = fill_records(s, base[s] + 1, t, m, rng.integers(0, 2, per), PRICE + rng.integers(-500, 500, per),
                           rng.integers(1, 1000, per))
        streams[s] = _chunks(buf, 144, 65536)
    setup_s = time.perf_counter() - t_setup

    def source(s):
        def gen(from_seq):
            assert from_seq == base[s] + 1
            yield from streams[s]
        return gen

    t = time.perf_counter()
    t0 = time.perf_counter()
    snap = load_snapshot(RiskShard, MemoryJournal(shard_stream_id(0)), list_snapshots(f"{tmp}/snap")[0])
    load_s = time.perf_counter() - t0
    del snap
    t = time.perf_counter()
    r = RiskShard.recover(WalJournal(jpath, shard_stream_id(0)), {s: source(s) for s in streams},
                          snapshot_dir=f"{tmp}/snap")
    total = time.perf_counter() - t
    applied = sum(int(r.core.symbols["tip"][s]) - base[s] for s in streams)
    ok = applied == per * n_sym and r.core.r.n_users == n_users
    r.journal.close()
    return {"users": n_users, "fills": per * n_sym, "total_s": total, "snapshot_load_s": load_s,
            "fills_per_s": per * n_sym / max(total - load_s, 1e-9), "setup_s": setup_s,
            "verified": bool(ok), "positions": int(r.core.r.n_positions)}
