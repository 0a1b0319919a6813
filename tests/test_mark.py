"""rsx mark: index rules, venue sources against local fake servers, mark stream to risk, funding exactly once."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.server import serve

from rsx_appliance import cmp
from rsx_appliance.config import MarkConfig, MarkSourceConfig
from rsx_appliance.mark.app import INDEX_SOURCE, MARK_SOURCE, MarkApp
from rsx_appliance.mark.index import SymbolIndex
from rsx_appliance.mark.sources import make_source, parse_price
from rsx_appliance.records import RecordType as RT
from rsx_appliance.wal import WalReader

from md_env import make_config, until

S = 1_000_000_000


def btc(tmp_path, extra=""):
    return make_config(tmp_path, extra).symbol("BTC-PERP")


# -- index rules ----------------------------------------------------------------------

def test_index_is_the_median_of_fresh_sources(tmp_path):
    idx = SymbolIndex(btc(tmp_path), MarkConfig(min_sources=2, stale_ms=10_000, band_bps=500))
    t = 1000 * S
    idx.on_tick(1, 100_000, t)
    idx.compute(t)
    assert idx.index is None and not idx.degraded          # never had one: nothing, no warning
    idx.on_tick(2, 100_200, t)
    idx.on_tick(3, 100_100, t)
    idx.compute(t)
    assert idx.index == 100_100                              # odd: the middle
    idx.on_tick(4, 100_300, t)
    idx.compute(t)
    assert idx.index == (100_100 + 100_200) // 2             # even: floor of the middle two
    # a source replaces its previous price
    idx.on_tick(4, 100_000, t)
    idx.compute(t)
    assert idx.index == (100_000 + 100_100) // 2


def test_stale_sources_drop_out_and_too_few_keep_the_last_index(tmp_path):
    idx = SymbolIndex(btc(tmp_path), MarkConfig(min_sources=2, stale_ms=10_000))
    t = 1000 * S
    for sid, p in ((1, 100_000), (2, 100_100), (3, 100_200)):
        idx.on_tick(sid, p, t)
    idx.compute(t)
    assert idx.index == 100_100
    idx.on_tick(1, 101_000, t + 5 * S)
    idx.compute(t + 10 * S)                # sources 2, 3 are exactly 10 s old: still fresh
    assert idx.index == 100_200 and not idx.degraded
    idx.compute(t + 10 * S + 1)            # now only source 1 is fresh: degraded, last index kept
    assert idx.degraded and idx.index == 100_200 and idx.counters["degraded_events"] == 1
    assert idx.mark(t + 10 * S + 1) == 100_200           # still published for stale_ms ...
    assert idx.mark(t + 21 * S) is None                  # ... then risk's own fallback applies
    idx.on_tick(1, 101_000, t + 21 * S)
    idx.on_tick(2, 101_100, t + 21 * S)                  # a second source comes back
    idx.compute(t + 21 * S)
    assert not idx.degraded and idx.index == (101_000 + 101_100) // 2


def test_a_source_far_outside_the_band_is_refused(tmp_path):
    idx = SymbolIndex(btc(tmp_path), MarkConfig(min_sources=2, band_bps=500))
    t = 1000 * S
    idx.on_tick(1, 100_000, t)
    idx.on_tick(2, 100_400, t)
    idx.on_tick(3, 900_000, t)             # a venue gone mad (or a unit error)
    idx.compute(t)
    assert idx.outliers == {3} and idx.index == 100_200 and idx.counters["outliers"] == 1
    idx.on_tick(3, 100_300, t + S)         # back in line
    idx.compute(t + S)
    assert idx.outliers == frozenset() and idx.index == 100_300
    # two sources that disagree beyond the band: neither can be trusted
    idx2 = SymbolIndex(btc(tmp_path), MarkConfig(min_sources=2, band_bps=100))
    idx2.on_tick(1, 100_000, t)
    idx2.on_tick(2, 103_000, t)
    idx2.compute(t)
    assert idx2.index is None and idx2.outliers == {1, 2}


def test_mark_is_index_plus_clamped_basis(tmp_path):
    spec = btc(tmp_path)
    idx = SymbolIndex(spec, MarkConfig(min_sources=1, mark_band_bps=50, ema_bps=10_000,
                                       premium_sample_ms=1000))
    t = 1000 * S
    idx.on_tick(1, 100_000, t)
    idx.compute(t)
    assert idx.mark(t) == 100_000                       # no book: the index
    idx.bbo = {"bid_px": 100_990, "bid_qty": 10, "ask_px": 101_010, "ask_qty": 10, "me_ts": t}
    idx.bbo_fresh = lambda now: True
    assert idx.sample(t)                                 # premium 1000 (1 %), ema = 1000
    assert idx.mark(t) == 100_000 + 500                  # clamped to +50 bps
    assert sum(idx.prices.acc[t // (spec.funding_interval_s * S)]) == 1_000_000 + 1


def test_prices_are_parsed_exactly_and_garbage_is_refused():
    assert parse_price("60000.129", 2) == 6_000_012       # truncated, not rounded
    assert parse_price("1e2", 2) == 10_000
    for bad in ("", "abc", "-1", "0", "0.001", "nan", "inf", "9" * 30, None, True, [1]):
        assert parse_price(bad, 2) is None, bad


# -- venue sources against local fake servers ------------------------------------------------

async def _fake_venue(handler):
    server = await serve(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("kind", ["binance", "okx"])
def test_venue_sources_parse_reconnect_and_survive_garbage(tmp_path, kind):
    cfg = make_config(tmp_path)
    connections = []

    async def handler(ws):
        connections.append(ws)
        sub = json.loads(await ws.recv())
        n = len(connections)
        if kind == "binance":
            assert sub == {"method": "SUBSCRIBE", "params": ["btcusdt@markPrice@1s"], "id": 1}
            await ws.send(json.dumps({"result": None, "id": 1}))
            good = {"e": "markPriceUpdate", "E": 1, "s": "BTCUSDT", "p": f"{1000 + n}.25", "i": "999"}
            msgs = [json.dumps(good), json.dumps({"stream": "x", "data": [good]}),
                    json.dumps({"e": "markPriceUpdate", "s": "ETHUSDT", "p": "5"}),   # unmapped
                    '{"e":"markPriceUpdate","s":"BTCUSDT","p":"-3"}', "not json", "[1,2]"]
        else:
            assert sub == {"op": "subscribe", "args": [{"channel": "mark-price", "instId": "BTC-USDT-SWAP"}]}
            await ws.send(json.dumps({"event": "subscribe", "arg": sub["args"][0]}))
            good = {"arg": {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
                    "data": [{"instId": "BTC-USDT-SWAP", "markPx": f"{1000 + n}.25", "ts": "1"}]}
            msgs = [json.dumps(good), json.dumps({"arg": {"channel": "mark-price"}, "data": [{"instId": "X",
                                                                                           "markPx": "5"}]}),
                    json.dumps({"arg": {"channel": "mark-price"}, "data": [{"instId": "BTC-USDT-SWAP",
                                                                            "markPx": "abc"}]}),
                    json.dumps({"event": "error", "code": "60012", "msg": "bad"}), "not json", '{"arg":1}']
        for m in msgs:
            await ws.send(m)
        await asyncio.sleep(0.05)
        # then the venue drops the connection without a close frame
        ws.transport.abort()

    async def scenario():
        server, port = await _fake_venue(handler)
        inst = "BTCUSDT" if kind == "binance" else "BTC-USDT-SWAP"
        sc = MarkSourceConfig(id=1, kind=kind, url=f"ws://127.0.0.1:{port}", symbols=(("BTC-PERP", inst),),
                              reconnect_min_ms=20, reconnect_max_ms=80)
        src = make_source(sc, {s.name: s for s in cfg.symbols})
        ticks = []
        task = asyncio.create_task(src.run(lambda sid, sym, p, ts: ticks.append((sid, sym, p))))
        # a 5th connection means the client read all of the 4th one's messages and saw it drop
        await until(lambda: len(connections) >= 5, timeout=10)
        task.cancel()
        server.close()
        await server.wait_closed()
        return src, ticks

    src, ticks = asyncio.run(scenario())
    assert ticks[0] == (1, "BTC-PERP", 100_125)                  # first connection: 1001.25
    assert (1, "BTC-PERP", 100_225) in ticks                     # the reconnect delivered again
    assert src.counters["unknown_symbol"] >= 4 and src.counters["malformed"] >= 8
    assert src.counters["disconnects"] >= 3
    # each connection delivered a good tick, so the backoff restarted at its minimum every time
    assert set(src.delays) == {0.02}


def test_venue_backoff_doubles_to_its_cap_while_the_venue_is_down(tmp_path):
    cfg = make_config(tmp_path)

    async def scenario():
        server, port = await _fake_venue(lambda ws: ws.close())
        server.close()
        await server.wait_closed()                 # nothing listens on the port any more
        sc = MarkSourceConfig(id=1, kind="binance", url=f"ws://127.0.0.1:{port}",
                              symbols=(("BTC-PERP", "BTCUSDT"),), reconnect_min_ms=10, reconnect_max_ms=80)
        src = make_source(sc, {s.name: s for s in cfg.symbols})
        task = asyncio.create_task(src.run(lambda *a: None))
        await until(lambda: len(src.delays) >= 6, timeout=10)
        task.cancel()
        return src

    src = asyncio.run(scenario())
    assert src.delays[:6] == [0.01, 0.02, 0.04, 0.08, 0.08, 0.08]


# -- the process: mark stream to risk, journaled; funding exactly once --------------------------

def _ticks_file(tmp_path, prices):
    p = tmp_path / "ticks.csv"
    p.write_text("ts_ms,symbol,price\n" + "".join(f"{i * 10},BTC-PERP,{px}\n" for i, px in enumerate(prices)))
    return p


def test_marks_reach_every_risk_shard_and_the_wal(tmp_path):
    ticks = _ticks_file(tmp_path, ["1000", "1001", "1002", "1003"])
    cfg = make_config(tmp_path, f"""
        [risk]
        shards = 2
        [mark]
        min_sources = 1
        [[mark.sources]]
        kind = "file"
        path = "{ticks}"
        loop = false
        """)

    async def scenario():
        shards = [cmp.Endpoint("udp", cfg.process(f"risk.{s}").cmp, mode="sleep") for s in (0, 1)]
        rxs = [ep.receiver(cfg.process("mark.0").stream_id) for ep in shards]
        app = MarkApp(cfg)
        await app.start()
        got = [[], []]
        try:
            for _ in range(300):
                for i, (ep, rx) in enumerate(zip(shards, rxs)):
                    ep.poll(0)
                    b = rx.read(256)
                    got[i] += [(int(r["source_id"]), int(r["price"]))
                               for r in b.records(RT.MARK_PRICE)["payload"]]
                if all(len(g) >= 8 for g in got):
                    break
                await asyncio.sleep(0.01)
        finally:
            await app.close()
            for ep in shards:
                ep.close()
        return got, app

    got, app = asyncio.run(scenario())
    want = [(MARK_SOURCE, 100_000), (INDEX_SOURCE, 100_000), (MARK_SOURCE, 100_100), (INDEX_SOURCE, 100_100)]
    assert got[0][:4] == want and got[1][:4] == want
    with WalReader(app.wal_dir, app.proc.stream_id) as r:
        journaled = [(int(x["source_id"]), int(x["price"])) for b in r for x in b.view(RT.MARK_PRICE)["payload"]]
    assert journaled[:8] == got[0][:8]


def test_funding_is_published_once_per_interval_across_restarts(tmp_path):
    cfg = make_config(tmp_path, """
        [mark]
        min_sources = 1
        [[mark.sources]]
        kind = "sim"
        interval_ms = 20
        """)
    clock = [10_000 * 60 * S]              # fake wall clock; BTC's interval is 8 h, ETH's too

    def now():
        return clock[0]

    async def run_once(advance_s: int, destinations=()):
        app = MarkApp(cfg, destinations=list(destinations), clock=now)
        await app.start()
        await asyncio.sleep(0.3)
        clock[0] += advance_s * S
        await asyncio.sleep(0.4)
        await app.close()
        return app

    async def scenario():
        a = await run_once(8 * 3600)           # crosses one boundary: one rate per symbol
        clock[0] += 3 * 8 * 3600 * S           # down for three intervals
        b = await run_once(0)                  # publishes the three it missed, in order
        c = await run_once(0)                  # nothing new
        return a, b, c

    a, b, c = asyncio.run(scenario())
    with WalReader(a.wal_dir, a.proc.stream_id) as r:
        rates = [(int(x["symbol_id"]), int(x["interval_id"]), int(x["rate_e8"]))
                 for bt in r for x in bt.view(RT.FUNDING_RATE)["payload"]]
    start = 10_000 * 60 // 28800
    for sid in (1, 2):
        ks = [k for s, k, _ in rates if s == sid]
        assert ks == list(range(start, start + 4)), ks    # each interval once, none skipped
    # no sample in the missed intervals: F = clamp(I) = the interest rate
    assert all(rate == 10_000 for _s, k, rate in rates if k > start)
    assert a.counters["funding_published"] == 2 and b.counters["funding_published"] == 6
    assert c.counters["funding_published"] == 0


@pytest.mark.parametrize("extra,message", [
    ('[mark]\nmin_sources = 4\n', "more than the 3 sources"),
    ('[mark]\nband_bps = 20000\n', "at most 10000"),
    ('[[mark.sources]]\nkind = "bloomberg"\n', "must be one of"),
    ('[[mark.sources]]\nkind = "binance"\nsymbols = { "BTC-PERP" = "BTCUSDT" }\n', "url: is required"),
    ('[[mark.sources]]\nkind = "binance"\nurl = "http://x"\nsymbols = { "BTC-PERP" = "BTCUSDT" }\n', "not a ws://"),
    ('[[mark.sources]]\nkind = "okx"\nurl = "wss://x"\nsymbols = { "SOL-PERP" = "SOL" }\n', "not a symbol"),
    ('[[mark.sources]]\nkind = "sim"\npath = "x"\n', "is not a key of a 'sim' source"),
    ('[[mark.sources]]\nkind = "file"\n', "path: is required"),
    ("md:max_queue_bytes = 10", "max_queue_bytes: must be >= 4096"),
    ("md:max_subscriptions = 0", "max_subscriptions: must be >= 1"),
    ("md:max_connections = 2000000", "max_connections: must be at most 1000000"),
])
def test_bad_marketdata_and_mark_config_is_refused(tmp_path, extra, message):
    from rsx_appliance.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        if extra.startswith("md:"):
            make_config(tmp_path, md_extra=extra[3:])
        else:
            make_config(tmp_path, extra)


def test_the_mark_wal_is_served_over_dxs(tmp_path):
    from rsx_appliance.dxs import DxsConsumer

    ticks = _ticks_file(tmp_path, ["1000", "1001"])
    cfg = make_config(tmp_path, f"""
        [mark]
        min_sources = 1
        [[mark.sources]]
        kind = "file"
        path = "{ticks}"
        loop = false
        """)

    async def scenario():
        app = MarkApp(cfg, destinations=[])
        await app.start()
        try:
            await until(lambda: app.publisher.counters["durable_seq"] >= 4)
            got = []
            async with DxsConsumer(cfg.process("mark.0").dxs, app.proc.stream_id, from_seq=1) as c:
                async for batch in c:
                    got += [(int(r["source_id"]), int(r["price"]))
                            for r in batch.view(RT.MARK_PRICE)["payload"]]
                    if batch.caught_up:
                        break
            return got
        finally:
            await app.close()

    got = asyncio.run(scenario())
    assert got[:4] == [(0, 100_000), (1, 100_000), (0, 100_100), (1, 100_100)]
