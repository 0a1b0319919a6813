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
    # the fill reaches the shard on the ME stream (asynchronously: wait until it is applied),
    # then the position answers the query
    st = wait_status(shard, cfg, lambda st: st.get("counters", {}).get("fills_applied", 0) >= 1)
    assert st["counters"]["fills_applied"] == 1
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


def test_adl_and_insurance_cascade_conserves_money(tmp_path):
    """Two users bankrupt by a mark crash, an empty book and a fund of a few dollars: a round goes to the
    empty book while the fund can back it, then the fund pays what it has, ADL closes them against the
    profitable short and charges the rest; every step reaches the gateway, and the money recovered from
    the journal and the ME streams is conserved to the unit."""
    from rsx_appliance.risk import RiskShard, WalJournal
    from rsx_appliance.risk.enums import LiqKind
    from rsx_appliance.risk._recbuild import split
    from rsx_appliance.wal import WalReader

    deposits = {1: "1000", 2: "1200", 1000: "100000000"}
    path, cfg = write_config(tmp_path, accounts=deposits)
    mes = {s: StandInMe(cfg, s).start() for s in ("BTC-PERP", "ETH-PERP")}
    mark = StandInMark(cfg)
    shard = Shard(path).start()
    gw = Gateway(cfg)
    btc = cfg.symbol("BTC-PERP")
    px = btc.reference_price
    try:
        mark.mark(btc.id, px)
        mark.flush()
        gw.send(order(1000, btc.id, SELL, px, 300_000))             # the short: 0.3 BTC
        gw.send(order(1, btc.id, BUY, px, 150_000, tif=1), order(2, btc.id, BUY, px, 150_000, tif=1))
        gw.wait_for(lambda r: r.type == RecordType.POSITION and r.user_id == 2 and r.qty == 150_000)
        for p in (55_000_00, 50_500_00, 48_000_00):                  # -20 % in steps inside the band
            mark.mark(btc.id, p)
            mark.flush()
            time.sleep(0.3)
        done = gw.wait_for(lambda r: r.type == RecordType.LIQUIDATION and r.kind == LiqKind.DONE and r.user_id == 2)
        gw.wait_for(lambda r: r.type == RecordType.LIQUIDATION and r.kind == LiqKind.DONE and r.user_id == 1)
        liq = [r for r in gw.received if r.type == RecordType.LIQUIDATION]
        adl = [r for r in liq if r.kind == LiqKind.ADL]
        assert {r.user_id for r in adl} == {1, 2} and all(r.counterparty_user_id == 1000 for r in adl)
        assert sum(r.shortfall for r in adl) > 0                    # the short carried the rest
        assert [r for r in liq if r.kind == LiqKind.INSURANCE]      # the fund paid what it had
        assert done
        assert shard.stop() == 0
    finally:
        gw.close()
        if shard.proc.poll() is None:
            shard.kill()
        mark.close()
        logs = {}
        for name, me in mes.items():
            me.close()
            p = cfg.process(f"me.{name}")
            with WalReader(p.data_dir / "wal", p.symbol_id) as r:
                logs[p.symbol_id] = b"".join(bytes(b.raw) for b in r)

    def source(sym):
        def gen(from_seq):
            yield b"".join(list(split(logs[sym]))[from_seq - 1:])
        return gen

    proc = cfg.process("risk.0")
    s = RiskShard.recover(WalJournal(proc.data_dir / "wal", 0x80000000), {k: source(k) for k in logs},
                          snapshot_dir=str(proc.data_dir / "snapshots"))
    st = s.canonical_state(money_only=True)
    coll = sum(a[2] for a in st["accounts"])
    cost = sum(p[3] for p in st["positions"])
    total = sum(int(d) * 10**6 for d in deposits.values())
    assert coll + sum(st["ledgers"]) - cost == total            # to the unit
    assert s.position(1, btc.id)["net"] == 0 and s.position(2, btc.id)["net"] == 0
    assert s.account(1)["collateral"] >= 0 and s.account(2)["collateral"] >= 0
    assert s.account(1000)["equity"] >= 0 and s.audit() == 0
    s.journal.close()


def test_serves_without_the_mark_process_and_takes_its_stream_later(tmp_path):
    """The mark process down at start: the shard serves after 10 s (specs/risk.md 15.2 step 4); once the
    process is up, its stream is taken from seq 1 (the shard's mark tip + 1) and prices the positions."""
    path, cfg = write_config(tmp_path)
    mes = {s: StandInMe(cfg, s).start() for s in ("BTC-PERP", "ETH-PERP")}
    t0 = time.monotonic()
    shard = Shard(path).start()
    gw = Gateway(cfg)
    mark = None
    try:
        assert time.monotonic() - t0 < 40
        btc = cfg.symbol("BTC-PERP")
        px = btc.reference_price
        gw.send(order(1000, btc.id, SELL, px, 2_000), order(1, btc.id, BUY, px, 1_000))
        gw.wait_for(lambda r: r.type == RecordType.POSITION and r.request_id.int == 0 and r.user_id == 1)
        mark = StandInMark(cfg)
        for _ in range(3):
            mark.mark(btc.id, px - 1_000)
        mark.flush()
        deadline = time.monotonic() + 10
        while True:
            gw.received.clear()
            gw.send(query(1, 2, btc.id))
            pos = gw.wait_for(lambda r: r.type == RecordType.POSITION and r.request_id.int != 0)[-1]
            if pos.mark_px == px - 1_000 or time.monotonic() > deadline:
                break
            mark.ep.poll(0.05)
        assert pos.mark_px == px - 1_000
        st = wait_status(shard, cfg, lambda st: st["streams"]["mark.0"]["applied_seq"] >= 3)
        assert st["streams"]["mark.0"]["applied_seq"] == 3 and st["counters"]["gap_replays"] == 0
        assert shard.stop() == 0
    finally:
        gw.close()
        if shard.proc.poll() is None:
            shard.stop()
        if mark:
            mark.close()
        for me in mes.values():
            me.close()


def test_cli_ready_line_json_and_exit_codes(tmp_path):
    """specs/cli.md: the ready line as one JSON line (its schema), SIGINT -> 130 after an orderly stop with
    `interrupted`, a shard the configuration does not have -> 2, the CMP port taken -> 3; errors one line."""
    import signal
    import socket
    import subprocess

    from cliutil import check
    from rsx_appliance.launch import rsx_argv

    path, cfg = write_config(tmp_path)
    mes = {s: StandInMe(cfg, s).start() for s in ("BTC-PERP", "ETH-PERP")}
    mark = StandInMark(cfg)
    try:
        p = subprocess.Popen(rsx_argv("risk", "serve", "--shard", "0", "--config", str(path), "--json"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        (doc,) = check("risk-serve", line)
        assert doc["event"] == "ready" and doc["process"] == "risk.0" and doc["tips"] == {"1": 1, "2": 1}
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 130 and err.strip().splitlines()[-1] == "rsx risk serve: interrupted"
        assert shard_status(cfg)["state"] == "stopping"

        p = subprocess.run(rsx_argv("risk", "serve", "--shard", "3", "--config", str(path)),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and p.stdout == ""
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("rsx risk serve: error: ")
        assert "no risk shard 3" in p.stderr

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(cfg.process("risk.0").cmp)
            p = subprocess.run(rsx_argv("risk", "serve", "--shard", "0", "--config", str(path)),
                               capture_output=True, text=True, timeout=60)
        assert p.returncode == 3 and p.stdout == ""
        assert p.stderr.strip().splitlines()[-1].startswith("rsx risk serve: error: ")
    finally:
        mark.close()
        for me in mes.values():
            me.close()


def shard_status(cfg) -> dict:
    import json

    return json.loads((cfg.data_dir / "run" / "risk.0.json").read_text())
