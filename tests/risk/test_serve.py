"""`rsx risk serve` over CMP on loopback with stand-ins for the ME, the mark process and a gateway
(specs/risk.md 15): orders checked and forwarded, refusals and query answers to the asking gateway,
fills applied from the ME stream, pushes, status file, a clean stop."""

from __future__ import annotations

import time

import pytest

from rsx_appliance.codes import Reason
from rsx_appliance.records import RecordType

from .procs import Shard, write_config
from .standin import Gateway, StandInMark, StandInMe, order, query

BUY, SELL = 0, 1


def wait_status(shard, cfg, pred, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        st = shard.status(cfg.data_dir)
        if pred(st) or time.monotonic() > end:
            return st
        time.sleep(0.1)


@pytest.fixture
def venue(tmp_path):
    path, cfg = write_config(tmp_path)
    mes = {s: StandInMe(cfg, s).start() for s in ("BTC-PERP", "ETH-PERP")}
    mark = StandInMark(cfg)
    shard = Shard(path).start()
    gw = Gateway(cfg)
    yield cfg, shard, mes, mark, gw
    gw.close()
    if shard.proc.poll() is None:
        shard.stop()
    mark.close()
    for me in mes.values():
        me.close()


def test_orders_fills_queries_and_a_clean_stop(venue):
    cfg, shard, mes, mark, gw = venue
    btc = cfg.symbol("BTC-PERP")
    px = btc.reference_price
    # a resting ask from the market maker, then user 1 takes half of it
    gw.send(order(1000, btc.id, SELL, px, 2_000))
    gw.send(order(1, btc.id, BUY, px, 1_000))
    deadline = time.monotonic() + 10
    while mes["BTC-PERP"].fills < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mes["BTC-PERP"].fills == 1
    # the fill reaches the shard on the ME stream: the position answers the query
    gw.send(query(1, 2, btc.id))
    pos = gw.wait_for(lambda r: r.type == RecordType.POSITION and r.request_id.int != 0)
    assert pos[0].qty == 1_000 and pos[0].symbol_id == btc.id
    done = gw.wait_for(lambda r: r.type == RecordType.QUERY_DONE)
    assert done[0].count == 1 and done[0].reason == 0
    # the pushes after the fill carry the same position
    pushed = gw.wait_for(lambda r: r.type == RecordType.POSITION and r.request_id.int == 0 and r.user_id == 1)
    assert pushed[-1].qty == 1_000
    # the maker's remaining order is an OPEN_ORDER with its client id
    gw.send(query(1000, 1))
    oo = gw.wait_for(lambda r: r.type == RecordType.OPEN_ORDER)
    assert oo[0].remaining_qty == 1_000 and oo[0].client_id == b"t" and oo[0].state == 1
    # a refusal goes back to the asking gateway with the shard's reason
    gw.send(order(1, btc.id, BUY, px + 1, 1_000))      # off the 0.5 tick
    failed = gw.wait_for(lambda r: r.type == RecordType.ORDER_FAILED)
    assert failed[0].reason == Reason.PRICE_OFF_TICK and failed[0].user_id == 1
    gw.send(query(99, 3))                             # no such account
    done = gw.wait_for(lambda r: r.type == RecordType.QUERY_DONE and r.user_id == 99)
    assert done[0].reason == Reason.UNKNOWN_USER
    st = wait_status(shard, cfg, lambda st: st["counters"]["fills_applied"] >= 1)
    assert st["state"] == "ready" and st["streams"]["me.BTC-PERP"]["applied_seq"] >= 4
    assert st["streams"]["risk 0"]["durable_seq"] == st["streams"]["risk 0"]["seq"]
    assert shard.stop() == 0
    st = shard.status(cfg.data_dir)
    assert st["state"] == "stopping"


def test_restart_keeps_the_state_and_deposits_once(venue, tmp_path):
    cfg, shard, mes, mark, gw = venue
    btc = cfg.symbol("BTC-PERP")
    px = btc.reference_price
    gw.send(order(1000, btc.id, SELL, px, 2_000), order(2, btc.id, BUY, px, 2_000))
    gw.wait_for(lambda r: r.type == RecordType.POSITION and r.user_id == 2 and r.qty == 2_000)   # filled
    gw.send(query(2, 3))
    acct = gw.wait_for(lambda r: r.type == RecordType.ACCOUNT and r.request_id.int != 0)[-1]
    assert shard.stop() == 0
    shard.start()
    gw.received.clear()
    gw.send(query(2, 3), query(2, 2, btc.id))
    again = gw.wait_for(lambda r: r.type == RecordType.ACCOUNT and r.request_id.int != 0)[-1]
    assert again.collateral == acct.collateral           # the demo deposit was not applied twice
    pos = gw.wait_for(lambda r: r.type == RecordType.POSITION and r.request_id.int != 0)[-1]
    assert pos.qty == 2_000
