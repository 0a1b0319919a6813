"""The shard with the real producers of its inputs: `rsx mark` (specs/mark.md) and, once it is on this
branch, `rsx me` (specs/me.md; until then the stand-in ME of standin.py). Marks priced from the mark
process's stream, its funding rates paid on the positions held at the boundary, exactly once
(specs/risk.md 5, 6, 11)."""

from __future__ import annotations

import importlib.util
import time

import pytest

from rsx_appliance.records import RecordType
from rsx_appliance.wal import WalReader

from .procs import Child, Shard, write_config
from .standin import Gateway, StandInMe, order, query

pytestmark = pytest.mark.slow

BUY, SELL = 0, 1
REAL_ME = importlib.util.find_spec("rsx_appliance.me") is not None


def _funding_rates(cfg) -> dict[tuple[int, int], tuple[int, int]]:
    """(symbol, interval) -> (rate_e8, mark_px) of every FUNDING_RATE in the mark process's WAL."""
    proc = cfg.process("mark.0")
    out = {}
    with WalReader(proc.data_dir / "wal", proc.stream_id) as r:
        for batch in r:
            rows = batch.view(RecordType.FUNDING_RATE)["payload"]
            for sym, k, rate, px in zip(rows["symbol_id"].tolist(), rows["interval_id"].tolist(),
                                        rows["rate_e8"].tolist(), rows["mark_px"].tolist()):
                out[(sym, k)] = (rate, px)
    return out


@pytest.fixture
def venue(tmp_path):
    path, cfg = write_config(tmp_path)
    started = []
    try:
        if REAL_ME:
            mes = {s: Child(["me", "--config", str(path), "--symbol", s, "--dedup-capacity", "65536", "--no-mlock"],
                            tmp_path / f"me.{s}.log").start() for s in ("BTC-PERP", "ETH-PERP")}
        else:
            mes = {s: StandInMe(cfg, s).start() for s in ("BTC-PERP", "ETH-PERP")}
        started += mes.values()
        mark = Child(["mark", "--config", str(path)], tmp_path / "mark.log").start()
        started.append(mark)
        shard = Shard(path).start()
        started.append(shard)
        gw = Gateway(cfg)
        yield cfg, shard, mark, gw
        gw.close()
    finally:
        for p in reversed(started):
            if isinstance(p, Child):
                if p.proc.poll() is None:
                    p.stop()
            else:
                p.close()


def test_marks_and_funding_from_the_mark_process(venue):
    cfg, shard, mark, gw = venue
    btc = cfg.symbol("BTC-PERP")
    px = btc.reference_price
    gw.send(order(1000, btc.id, SELL, px, 2_000), order(1, btc.id, BUY, px, 1_000))
    gw.wait_for(lambda r: r.type == RecordType.POSITION and r.request_id.int == 0 and r.user_id == 1, 20)
    # the position is valued at the mark computed from the mark process's stream (the simulated walk
    # stays within a few bps of the reference; with no two-sided book the mark is the index)
    deadline = time.monotonic() + 20
    while True:
        gw.received.clear()
        gw.send(query(1, 2, btc.id))
        pos = gw.wait_for(lambda r: r.type == RecordType.POSITION and r.request_id.int != 0)[-1]
        if pos.mark_px > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert pos.qty == 1_000 and abs(pos.mark_px - px) * 100 < px
    # the live stream keeps coming (the status file is rewritten about once a second)
    deadline = time.monotonic() + 10
    while (st := shard.status(cfg.data_dir))["counters"]["mark_records"] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert st["streams"]["mark.0"]["applied_seq"] > 0 and st["counters"]["mark_records"] > 0
    # the next funding boundary (60 s intervals): the rate the mark process published is paid once,
    # the long pays and the short receives, at the rate record's mark
    pays = gw.wait_for(lambda r: r.type == RecordType.FUNDING_PAYMENT and r.user_id == 1, 150)
    k = pays[0].interval_id
    got = gw.wait_for(lambda r: r.type == RecordType.FUNDING_PAYMENT and r.user_id == 1000 and r.interval_id == k, 10)
    rates = _funding_rates(cfg)
    rate, mark_px = rates[(btc.id, k)]
    assert rate > 0                         # no premium samples (no two-sided book): the interest rate
    long_, short = pays[0], got[0]
    assert long_.position == 1_000 and short.position == -1_000
    assert long_.mark_px == short.mark_px == mark_px
    assert long_.amount < 0 < short.amount and -long_.amount - short.amount in (0, 1)   # payers round up
    # exactly once: a later look sees no second payment for the interval
    gw.pump(1.0)
    assert len([r for r in gw.received if r.type == RecordType.FUNDING_PAYMENT and r.user_id == 1
                and r.interval_id == k]) == 1
    assert shard.stop() == 0
