"""rsx marketdata: shadow book, snapshot + chained deltas over a real WebSocket, slow subscribers, bad frames."""

from __future__ import annotations

import asyncio
import json
import random
import socket

import pytest
from hypothesis import given, settings, strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from rsx_appliance.marketdata.app import MarketdataApp
from rsx_appliance.marketdata.book import BookInconsistent, ShadowBook
from rsx_appliance.marketdata.protocol import CLOSE_SLOW, frame
from rsx_appliance.records import RecordType as RT
from rsx_appliance.wal.block import Block, scan

from md_env import BookClient, MeStandinProcess, make_config, until
from me_standin import StandinMe


def block_of(recs: list[bytes]) -> Block:
    buf = b"".join(recs)
    return Block(buf, scan(buf).index)


# -- the shadow book against the C book ---------------------------------------------

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(50, 600))
def test_shadow_book_equals_the_me_book_after_every_request(seed, n):
    """Random workloads (every order type, STP mode, cancels, amends in place and to a new
    price, cancel-all) through the C book; the shadow built from its records holds exactly
    the book's L2 (every level, quantity and order count) after every request."""
    rng = random.Random(seed)
    me = StandinMe()
    sb = ShadowBook(1)
    try:
        for _ in sb.apply_block(block_of(me.config_applied())):
            pass
        types = set()
        for _ in range(n):
            recs = me.random_request(rng)
            for _seq, rtype, *_ in sb.apply_block(block_of(recs)):
                types.add(rtype)
            for side in (0, 1):
                assert sb.top(side, 10**6) == [(lv.price, lv.qty, lv.count)
                                                for lv in me.book.depth(side, 10**6)]
        assert sb.tip == me.seq
    finally:
        me.close()


def test_the_workload_exercises_every_book_record():
    rng = random.Random(7)
    me = StandinMe()
    seen = set()
    try:
        for _ in range(3000):
            for rec in me.random_request(rng):
                seen.add(int.from_bytes(rec[2:4], "little"))
    finally:
        me.close()
    assert {RT.ORDER_INSERTED, RT.FILL, RT.ORDER_CANCELLED, RT.ORDER_AMENDED, RT.ORDER_DONE,
            RT.ORDER_FAILED, RT.BBO} <= seen


def test_a_record_that_contradicts_the_book_is_refused():
    me = StandinMe()
    try:
        me.config_applied()
        recs = me.submit(1, 0, 100_000, 10)
        sb = ShadowBook(1)
        ok = block_of(me.stream[:1])
        list(sb.apply_block(ok))
        # skip the ORDER_ACCEPTED + ORDER_INSERTED: the book sees a gap
        with pytest.raises(BookInconsistent, match="expected seq 2"):
            list(sb.apply_block(block_of(recs[1:])))
        # a cancel of an order the book never saw rest, a fill larger than the maker
        from rsx_appliance import records
        forged = records.encode(RT.ORDER_CANCELLED, seq=2, stream_id=1, symbol_id=1, user_id=1,
                                order_id=b"\x07" * 16, price=100_000, remaining_qty=10)
        with pytest.raises(BookInconsistent, match="unknown order"):
            list(sb.apply_block(block_of([forged])))
        assert sb.tip == 1 and not sb.orders                  # nothing applied
        list(sb.apply_block(block_of(recs)))                   # the real records still fit
        overfill = records.encode(RT.FILL, seq=sb.tip + 1, stream_id=1, symbol_id=1,
                                  maker_order_id=recs[1][16 + 32:16 + 48], price=100_000, qty=20,
                                  taker_side=1, maker_remaining=-10)
        with pytest.raises(BookInconsistent, match="does not fit"):
            list(sb.apply_block(block_of([overfill])))
    finally:
        me.close()


def test_frames_are_plain_websocket_text_frames():
    assert frame(b"x" * 5)[:2] == b"\x81\x05"
    assert frame(b"x" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert frame(b"x" * 70000)[:2] == b"\x81\x7f" and len(frame(b"x" * 70000)) == 70010


# -- the process, over real sockets -------------------------------------------------

async def _env(tmp_path, extra=""):
    cfg = make_config(tmp_path, extra)
    mes = {}
    for name in ("BTC-PERP", "ETH-PERP"):
        m = MeStandinProcess(cfg, name, tmp_path / f"wal-{name}")
        await m.start()
        mes[name] = m
    return cfg, mes


async def _pump(mes, stop: asyncio.Event):
    while not stop.is_set():
        for m in mes.values():
            m.pump()
        await asyncio.sleep(0.002)


def test_subscribers_hold_the_me_book_through_snapshot_and_deltas(tmp_path):
    async def scenario():
        cfg, mes = await _env(tmp_path)
        btc = mes["BTC-PERP"]
        rng = random.Random(3)
        for _ in range(300):                 # history before marketdata starts: the DXS bootstrap
            btc.me.random_request(rng, spread_ticks=30)
        app = MarketdataApp(cfg)
        stop = asyncio.Event()
        pump = asyncio.create_task(_pump(mes, stop))
        await app.start()
        try:
            url = f"ws://{app.ws_addr[0]}:{app.ws_addr[1]}"
            async with connect(url) as ws1, connect(url) as ws2:
                c1, c2 = BookClient(), BookClient()
                await ws1.send(json.dumps({"S": [1, 7]}))
                await ws2.send(json.dumps({"S": ["BTC-PERP", 2]}))

                async def reader(ws, c):
                    async for text in ws:
                        c.on(text)
                tasks = [asyncio.create_task(reader(ws1, c1)), asyncio.create_task(reader(ws2, c2))]
                for i in range(400):
                    btc.me.random_request(rng, spread_ticks=30)
                    if i % 50 == 0:
                        await asyncio.sleep(0.01)
                await until(lambda: c1.u.get(1, -1) == app.feeds[1].book.tip == btc.me.seq
                            or (c1.u.get(1) == app.feeds[1].depth_u and app.feeds[1].book.tip == btc.me.seq))
                await asyncio.sleep(0.2)
                for c in (c1, c2):
                    assert c.broken == 0
                    for side in (0, 1):
                        assert c.levels(1, side, 5) == [(lv.price, lv.qty, lv.count)
                                                        for lv in btc.me.book.depth(side, 5)]
                # trades: one per FILL since c1 subscribed, chained, taker side kept
                fills = [r for r in btc.me.stream if int.from_bytes(r[2:4], "little") == RT.FILL]
                assert c1.trades[1] and c1.broken == 0
                assert c1.trades[1][-1][4] == int.from_bytes(fills[-1][16:24], "little")
                bid, ask = btc.me.book.best_bid, btc.me.book.best_ask
                assert c1.bbo[1][1:7] == [bid.price if bid else 0, bid.qty if bid else 0,
                                          bid.count if bid else 0, ask.price if ask else 0,
                                          ask.qty if ask else 0, ask.count if ask else 0]
                assert 1 not in c2.bbo and 1 not in c2.trades    # depth only
                for t in tasks:
                    t.cancel()
        finally:
            stop.set()
            await pump
            await app.close()
            for m in mes.values():
                await m.close()

    asyncio.run(scenario())


def test_bad_frames_get_an_error_and_change_nothing(tmp_path):
    async def scenario():
        cfg, mes = await _env(tmp_path)
        app = MarketdataApp(cfg)
        await app.start()
        try:
            async with connect(f"ws://{app.ws_addr[0]}:{app.ws_addr[1]}") as ws:
                for bad, code in (("nope", 1), ('{"S":[1,2],"X":[]}', 1), ('{"Q":[]}', 2),
                                  ('{"S":[1]}', 3), ('{"S":[99,2]}', 4), ('{"S":[1,8]}', 5),
                                  ('{"S":[1,0]}', 5), ('{"S":"x"}', 1), ('{"H":["x"]}', 3)):
                    await ws.send(bad)
                    msg = json.loads(await ws.recv())
                    assert msg["E"][0] == code, (bad, msg)
                assert app.server.counters["subscriptions"] == 0
                await ws.send('{"H":[123]}')
                assert json.loads(await ws.recv()) == {"H": [123]}
                await ws.send('{"I":[]}')
                info = json.loads(await ws.recv())["I"]
                assert [row[:4] for row in info] == [[1, "BTC-PERP", 2, 3], [2, "ETH-PERP", 2, 3]]
                # subscribe, unsubscribe one channel, unsubscribe all
                await ws.send('{"S":[2,3]}')
                assert "B" in json.loads(await ws.recv()) and "BBO" in json.loads(await ws.recv())
                await ws.send('{"X":[2,1]}')
                await until(lambda: app.server.groups[2][2])
                await ws.send('{"X":[]}')
                await until(lambda: app.server.counters["subscriptions"] == 0)
                with pytest.raises(Exception):   # a frame over 4 KiB closes the connection
                    await ws.send("x" * 5000)
                    await ws.recv()
        finally:
            await app.close()
            for m in mes.values():
                await m.close()

    asyncio.run(scenario())


def test_a_slow_subscriber_is_disconnected_and_does_not_slow_the_others(tmp_path):
    async def scenario():
        cfg, mes = await _env(tmp_path, "")
        app = MarketdataApp(cfg)
        app.server.max_queue_bytes = 64 * 1024
        stop = asyncio.Event()
        pump = asyncio.create_task(_pump(mes, stop))
        await app.start()
        btc = mes["BTC-PERP"]
        try:
            url = f"ws://{app.ws_addr[0]}:{app.ws_addr[1]}"
            # the slow one: subscribes with a tiny receive buffer and never reads
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # a small window fills fast
            sock.connect(app.ws_addr)
            slow = await connect(url, sock=sock, max_queue=1)
            slow.transport.pause_reading()
            await slow.send('{"S":[1,7]}')
            await until(lambda: app.server.counters["subscriptions"] == 1)
            # and a small kernel send buffer on the server side, so the backlog reaches user space
            (srv_side,) = app.server.clients
            srv_side.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            fast = await connect(url)
            good = BookClient()
            await fast.send('{"S":[1,7]}')

            async def reader():
                async for text in fast:
                    good.on(text)
            rt = asyncio.create_task(reader())
            rng = random.Random(5)
            for i in range(20000):
                btc.me.random_request(rng, spread_ticks=30)
                if i % 100 == 0:
                    await asyncio.sleep(0.005)
                if app.server.counters["slow_disconnects"]:
                    break
            await until(lambda: app.server.counters["slow_disconnects"] == 1)
            await until(lambda: good.u.get(1) == app.feeds[1].depth_u and app.feeds[1].book.tip == btc.me.seq)
            assert good.broken == 0
            for side in (0, 1):
                assert good.levels(1, side, 5) == [(lv.price, lv.qty, lv.count)
                                                   for lv in btc.me.book.depth(side, 5)]
            slow.transport.resume_reading()
            with pytest.raises(Exception) as exc:   # it reads its backlog, then the clear reason
                while True:
                    await slow.recv()
            assert getattr(exc.value, "rcvd", None) is not None and exc.value.rcvd.code == CLOSE_SLOW
            assert "slow consumer" in exc.value.rcvd.reason
            rt.cancel()
            await fast.close()
        finally:
            stop.set()
            await pump
            await app.close()
            for m in mes.values():
                await m.close()

    asyncio.run(scenario())


# -- the process killed with SIGKILL while clients are subscribed ------------------------------

def test_marketdata_killed_and_restarted_while_clients_are_subscribed(tmp_path):
    """SIGKILL the real `rsx marketdata` process mid-stream: the client sees its connection drop,
    reconnects, resubscribes, and holds exactly the ME's book again (rebuilt from DXS, then CMP)."""
    import os
    import signal
    import subprocess
    import sys

    async def scenario():
        cfg, mes = await _env(tmp_path)
        btc = mes["BTC-PERP"]
        stop = asyncio.Event()
        pump = asyncio.create_task(_pump(mes, stop))
        rng = random.Random(11)
        for _ in range(200):
            btc.me.random_request(rng, spread_ticks=30)
        cmd = [sys.executable, "-c", "import sys; from rsx_appliance.cli import main; sys.exit(main())", "marketdata", "--config", str(tmp_path / "rsx.toml"),
               "--data", str(tmp_path / "data"), "--json"]
        url = f"ws://{cfg.marketdata.listen}:{cfg.marketdata.port}"
        kills = 0
        proc = None
        try:
            for round_ in range(3):
                proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE)
                line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
                assert line["process"] == "marketdata.0"
                status = json.loads((tmp_path / "data" / "run" / "marketdata.0.json").read_text())
                assert status["state"] == "ready" and status["pid"] == proc.pid
                client = BookClient()
                async with connect(url) as ws:
                    await ws.send('{"S":[1,2]}')

                    async def reader():
                        try:
                            async for text in ws:
                                client.on(text)
                        except ConnectionClosed:      # killed: no close frame, and the client sees it
                            client.other.append("closed")
                    rt = asyncio.create_task(reader())
                    for i in range(150):
                        btc.me.random_request(rng, spread_ticks=30)
                        if i % 25 == 0:
                            await asyncio.sleep(0.01)
                    # caught up = holds the ME's top 5 (u need not reach the ME's last seq: records that
                    # leave the top 5 as it was send no D, specs/marketdata.md 4)
                    def holds_me_book():
                        return 1 in client.books and all(
                            client.levels(1, side, 5) == [(lv.price, lv.qty, lv.count)
                                                          for lv in btc.me.book.depth(side, 5)]
                            for side in (0, 1))
                    await until(lambda: client.broken or holds_me_book())
                    await asyncio.sleep(0.3)
                    assert client.broken == 0
                    assert holds_me_book()
                    # records keep flowing while the process dies
                    os.kill(proc.pid, signal.SIGKILL)
                    kills += 1
                    for _ in range(50):
                        btc.me.random_request(rng, spread_ticks=30)
                    await asyncio.wait_for(rt, 10)      # the connection ends: the client knows
                    assert client.other == ["closed"]
                assert await proc.wait() == -signal.SIGKILL
        finally:
            if proc is not None and proc.returncode is None:     # a failed round leaves no orphan
                proc.kill()
                await proc.wait()
            stop.set()
            await pump
            for m in mes.values():
                await m.close()
        return kills

    assert asyncio.run(scenario()) == 3


def test_a_gap_naks_cannot_fill_is_replayed_from_dxs(tmp_path):
    """Records lost on the wire while the ME's hot ring moved past them: NAKs go unanswered,
    the follower's receiver needs replay, DXS fills the gap, and subscribers never see a hole."""
    from rsx_appliance import cmp

    async def scenario():
        cfg = make_config(tmp_path)
        mes = {}
        for name in ("BTC-PERP", "ETH-PERP"):
            fault = cmp.Fault(rules=(cmp.Rule("drop", first=60, count=10, cls="data"),)) \
                if name == "BTC-PERP" else None
            m = MeStandinProcess(cfg, name, tmp_path / f"wal-{name}", ring_size=64, fault=fault)
            await m.start()
            mes[name] = m
        btc = mes["BTC-PERP"]
        app = MarketdataApp(cfg)
        await app.start()
        stop = asyncio.Event()
        pump = None
        try:
            async with connect(f"ws://{app.ws_addr[0]}:{app.ws_addr[1]}") as ws:
                client = BookClient()
                await ws.send('{"S":[1,6]}')

                async def reader():
                    async for text in ws:
                        client.on(text)
                rt = asyncio.create_task(reader())
                await until(lambda: 1 in client.u)
                rng = random.Random(2)
                for _ in range(300):          # a burst: the 64-slot ring moves on before any NAK is read
                    btc.me.random_request(rng, spread_ticks=30)
                pump = asyncio.create_task(_pump(mes, stop))
                await until(lambda: app.feeds[1].book.tip == btc.me.seq, timeout=20)
                await until(lambda: client.u.get(1) == app.feeds[1].depth_u)
                assert app.follower.streams[1].replays >= 1
                assert btc.tx.stats["retx_gone"] > 0
                assert client.broken == 0
                for side in (0, 1):
                    assert client.levels(1, side, 5) == [(lv.price, lv.qty, lv.count)
                                                         for lv in btc.me.book.depth(side, 5)]
                rt.cancel()
        finally:
            stop.set()
            if pump is not None:
                await pump
            await app.close()
            for m in mes.values():
                await m.close()

    asyncio.run(scenario())
