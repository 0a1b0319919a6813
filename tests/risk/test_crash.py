"""The shard process killed with SIGKILL under load, 30 times at random points (specs/risk.md 8.5, 15):
afterwards every position equals the sum of the fills in the ME streams, every fill's fees were
charged exactly once, money is conserved to the unit, every reservation is released once the orders
have ended, and every funding interval was paid exactly once."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict

import numpy as np
import pytest

from rsx_appliance.records import RECORD_DTYPES, RecordType, encode
from rsx_appliance.risk import RiskShard, WalJournal
from rsx_appliance.risk._recbuild import split
from rsx_appliance.wal import WalReader

from .procs import Shard, write_config
from .standin import Gateway, StandInMark, StandInMe, order, query

pytestmark = pytest.mark.slow

USERS = (1, 2, 3, 1000)
DEPOSITS = {1: 10**12, 2: 10**12, 3: 10**12, 1000: 10**14}
KILLS = 30


class Load(threading.Thread):
    """Random orders from every user on both symbols (crossing ones trade), a few hundred per second."""

    def __init__(self, cfg, gw) -> None:
        super().__init__(daemon=True)
        self.cfg, self.gw = cfg, gw
        self.stop = threading.Event()
        self.sent = 0
        self.rng = random.Random(12)

    def run(self) -> None:
        syms = [self.cfg.symbol(n) for n in ("BTC-PERP", "ETH-PERP")]
        while not self.stop.is_set():
            batch = []
            for _ in range(8):
                s = self.rng.choice(syms)
                n = s.numbers
                px = s.reference_price + self.rng.randint(-5, 5) * n.tick_size
                qty = n.lot_size * self.rng.randint(1, 20)
                user = self.rng.choice(USERS)
                batch.append(order(user, s.id, self.rng.randint(0, 1), px, qty, tif=self.rng.choice((0, 1, 1))))
            try:
                self.gw.send(*batch)
            except Exception:
                pass
            self.sent += len(batch)
            time.sleep(0.03)


class Marks(threading.Thread):
    """Fresh marks every 100 ms and the funding rate of each interval once it has ended."""

    def __init__(self, cfg, mark) -> None:
        super().__init__(daemon=True)
        self.cfg, self.mark = cfg, mark
        self.stop = threading.Event()
        self.rates: dict[tuple[int, int], int] = {}

    def run(self) -> None:
        syms = [self.cfg.symbol(n) for n in ("BTC-PERP", "ETH-PERP")]
        while not self.stop.is_set():
            now = time.time_ns()
            for s in syms:
                self.mark.mark(s.id, s.reference_price, source=1, ts=now)
                interval = s.funding_interval_s * 10**9
                k = now // interval - 1
                if now - (k + 1) * interval > 500_000_000 and (s.id, k) not in self.rates:
                    self.rates[(s.id, k)] = 37_000 if s.id == 1 else -21_000
                    self.mark.rate(s.id, k, self.rates[(s.id, k)], s.reference_price)
            self.mark.flush()
            time.sleep(0.1)


def _me_log(cfg, name):
    p = cfg.process(f"me.{name}")
    recs = []
    with WalReader(p.data_dir / "wal", p.symbol_id) as r:
        for batch in r:
            recs.append(bytes(batch.raw))
    return b"".join(recs)


def test_thirty_sigkills_under_load(tmp_path):
    path, cfg = write_config(tmp_path, push_ms=100, snapshot_s=2)
    mes = {s: StandInMe(cfg, s).start() for s in ("BTC-PERP", "ETH-PERP")}
    mark = StandInMark(cfg)
    shard = Shard(path).start()
    gw = Gateway(cfg)
    load, marks = Load(cfg, gw), Marks(cfg, mark)
    load.start()
    marks.start()
    rng = random.Random(3)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 2.0))          # a random point of the shard's work under load
            shard.kill()
            shard.start()
        # let a funding boundary pass with the shard alive, then stop the load
        deadline = time.time() + 70
        while time.time() < deadline and len(marks.rates) < 2:
            time.sleep(0.5)
        load.stop.set()
        load.join()
        for s in ("BTC-PERP", "ETH-PERP"):
            sid = cfg.symbol(s).id
            gw.send(*(encode(RecordType.CANCEL_ALL, symbol_id=sid, user_id=u, request_id=bytes(16)) for u in USERS))
        time.sleep(7)                                   # orders lost with a crash: released by reconciliation
        marks.stop.set()
        marks.join()
        time.sleep(1)
        gw.received.clear()
        gw.send(*(query(u, 3) for u in USERS))
        accts = {r.user_id: r for r in gw.wait_for(
            lambda r: r.type == RecordType.ACCOUNT and r.request_id.int != 0)} if True else {}
        end = time.monotonic() + 5
        while len(accts) < len(USERS) and time.monotonic() < end:
            gw.pump(0.1)
            accts = {r.user_id: r for r in gw.received if r.type == RecordType.ACCOUNT and r.request_id.int != 0}
        assert set(accts) == set(USERS)
        assert all(a.frozen == 0 for a in accts.values()), {u: a.frozen for u, a in accts.items()}
        assert shard.stop() == 0
    finally:
        load.stop.set()
        marks.stop.set()
        gw.close()
        if shard.proc.poll() is None:
            shard.kill()
        for me in mes.values():
            me.stop.set()
    for me in mes.values():
        me.thread.join(5)
    logs = {cfg.symbol(n).id: _me_log(cfg, n) for n in ("BTC-PERP", "ETH-PERP")}
    mark.close()
    for me in mes.values():
        me.close()

    # the shard's state, recovered offline from its journal, snapshots and the ME WALs
    proc = cfg.process("risk.0")

    def source(sym):
        def gen(from_seq):
            recs = list(split(logs[sym]))
            yield b"".join(recs[from_seq - 1:])
        return gen

    s = RiskShard.recover(WalJournal(proc.data_dir / "wal", 0x80000000), {k: source(k) for k in logs},
                          snapshot_dir=str(proc.data_dir / "snapshots"))
    assert s.audit() == 0
    assert load.sent > 2000 and sum(me.fills for me in mes.values()) > 200

    # positions = the sum of the fills; fees charged exactly once per fill leg
    net, fees = defaultdict(int), defaultdict(int)
    for sym, buf in logs.items():
        spec = cfg.symbol(sym).numbers
        d = 10 ** (spec.price_decimals + spec.qty_decimals - 6)
        for rec in split(buf):
            if rec[2] | rec[3] << 8 != RecordType.FILL:
                continue
            f = np.frombuffer(rec, dtype=RECORD_DTYPES[RecordType.FILL])["payload"][0]
            q, v = int(f["qty"]), int(f["price"]) * int(f["qty"]) // d
            sgn = 1 if int(f["taker_side"]) == 0 else -1
            t, m = int(f["taker_user_id"]), int(f["maker_user_id"])
            net[(t, sym)] += sgn * q
            net[(m, sym)] -= sgn * q
            fees[(t, sym)] += v * spec.taker_fee_bps // 10_000
            fees[(m, sym)] += v * spec.maker_fee_bps // 10_000
    for (u, sym), n in net.items():
        p = s.position(u, sym)
        assert p["net"] == n, (u, sym)
        assert p["fees"] == fees[(u, sym)], (u, sym)
        assert p["last_seq"] > 0

    # money is conserved to the unit: deposits = collateral + ledgers - entry values
    st = s.canonical_state(money_only=True)
    coll = sum(a[2] for a in st["accounts"])
    cost = sum(p[3] for p in st["positions"])
    assert coll + sum(st["ledgers"]) - cost == sum(DEPOSITS.values())

    # funding: each (symbol, interval) settled once, each payment once, and positions carry them
    seen, pays = Counter(), defaultdict(int)
    for seq, rec in s.journal.read(1):
        t = rec[2] | rec[3] << 8
        if t == RecordType.FUNDING_RATE:
            r = np.frombuffer(rec, dtype=RECORD_DTYPES[RecordType.FUNDING_RATE])["payload"][0]
            seen[(int(r["symbol_id"]), int(r["interval_id"]))] += 1
        elif t == RecordType.FUNDING_PAYMENT:
            r = np.frombuffer(rec, dtype=RECORD_DTYPES[RecordType.FUNDING_PAYMENT])["payload"][0]
            pays[(int(r["user_id"]), int(r["symbol_id"]))] += int(r["amount"])
    assert seen and all(c == 1 for c in seen.values()), seen
    assert set(seen) <= set(marks.rates)
    for (u, sym), amount in pays.items():
        assert s.position(u, sym)["funding"] == amount
    s.journal.close()
