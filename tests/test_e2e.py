"""End to end: real processes under `rsx up`, real WebSocket clients (specs/operations.md 10).

One exchange for the module: the embedded default on free ports, the mark from one file source (so the
test decides the prices), BTC-PERP funding every minute, a few small accounts for the liquidation.
Every outcome is read back from what the exchange publishes (order updates, fills, queries, the public
feed) and checked against the truth: the matching engines' WALs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from decimal import Decimal

import pytest

from exchange import Up, exchange_toml, user_ledger, wal_records
from rsx_appliance.book import Book
from rsx_appliance.codes import Reason, Status
from rsx_appliance.records import RecordType

pytestmark = pytest.mark.timeout(600)

BIG, SMALL, VICTIM, COUNTER = 1_000_000, 1000, 20, 21
RETRY_MAKER, RETRY_TAKER = 30, 31
ACCOUNTS = [(u, str(BIG)) for u in range(1, 11)] + [(VICTIM, str(SMALL)), (COUNTER, str(BIG)),
                                                     (RETRY_MAKER, str(BIG)), (RETRY_TAKER, str(BIG)),
                                                     (1000, "100000000")]


def _prices(path, btc: str, eth: str) -> None:
    lines = [f"{t * 100},{sym},{px}" for t in range(10) for sym, px in (("BTC-PERP", btc), ("ETH-PERP", eth))]
    path.write_text("ts_ms,symbol,price\n" + "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def ex(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    prices = work / "prices.csv"
    _prices(prices, "60000", "3000")
    toml = exchange_toml(
        symbols={"BTC-PERP": {"funding_interval_s": 60}}, accounts=ACCOUNTS,
        gateway={"order_rate_user": 0, "order_rate_ip": 0, "cancel_rate_user": 0, "cancel_rate_ip": 0},
        mark=f'min_sources = 1\nsources = [{{ kind = "file", path = "{prices}", loop = true }}]')
    u = Up(work, toml)
    u.prices = prices
    with u:
        yield u


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Trader:
    """A connected user with every event it received (U, F, R, Q, PU, AU, FP ...)."""

    def __init__(self, ex, user: int) -> None:
        self.ex, self.user = ex, user
        self.events: list[tuple[str, object]] = []

    async def __aenter__(self) -> "Trader":
        self._cm = self.ex.client(self.user)
        self.c = await self._cm.__aenter__()
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        async for kind, ev in self.c.events():
            self.events.append((kind, ev))

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await self._cm.__aexit__(*exc)

    def fills(self, oid: str | None = None) -> list:
        return [e for k, e in self.events if k == "F" and (oid is None or e.oid == oid)]

    async def wait(self, pred, timeout: float = 10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = [e for k, e in self.events if pred(k, e)]
            if got:
                return got
            await asyncio.sleep(0.02)
        raise AssertionError(f"user {self.user}: no such event in {timeout} s; got {self.events[-10:]}")

    async def order(self, *args, **kw):
        """Place, and wait for its first answer (resting or terminal)."""
        o = await self.c.new_order(*args, **kw)
        return await self.c.wait_answer(o.oid)

    async def terminal(self, *args, **kw):
        o = await self.c.new_order(*args, **kw)
        return await self.c.wait_terminal(o.oid)


def test_an_order_filled_on_both_sides(ex):
    async def go():
        async with Trader(ex, 1) as a, Trader(ex, 2) as b:
            rest = await a.order("BTC-PERP", "buy", "0.010", "60000", cid="e2e-buy")
            assert rest.status == Status.RESTING
            take = await b.terminal("BTC-PERP", "sell", "0.010", "60000", cid="e2e-sell")
            assert take.status == Status.FILLED and take.filled == "0.010000"
            made = await a.c.wait_terminal(rest.oid)
            assert made.status == Status.FILLED
            fa, fb = (await a.wait(lambda k, e: k == "F"))[0], (await b.wait(lambda k, e: k == "F"))[0]
            assert (fa.seq, fa.price, fa.qty, fa.maker, fa.side) == (fb.seq, "60000.00", "0.010000", True, "buy")
            assert (fb.maker, fb.side, fb.cid) == (False, "sell", "e2e-sell")
            pa, pb = await a.c.positions(), await b.c.positions()
            assert [(p.symbol, p.qty) for p in pa] == [("BTC-PERP", "0.010000")]
            assert [(p.symbol, p.qty) for p in pb] == [("BTC-PERP", "-0.010000")]
            return fa.seq
    seq = run(go())
    fills = [r for r in wal_records(ex.cfg.process("me.BTC-PERP").data_dir / "wal", 1) if r.seq == seq]
    assert fills and fills[0].type == RecordType.FILL and (fills[0].taker_user_id, fills[0].maker_user_id) == (2, 1)


def test_a_plain_websocket_client(ex):
    """The README's quickstart: any WebSocket library, a bearer token, one JSON object per frame."""
    import websockets

    async def go():
        async with Trader(ex, 3) as m:
            await m.order("BTC-PERP", "buy", "0.010", "60000", cid="plain-bid")
            async with websockets.connect(ex.url, additional_headers={"Authorization": f"Bearer {ex.token(4)}"}) as ws:
                await ws.send(json.dumps({"N": [1, 1, 6000000, 10000, "q1"]}))
                frames = []
                while not any("U" in f and f["U"][1] == int(Status.FILLED) for f in frames):
                    frames.append(json.loads(await ws.recv()))
                return frames

    frames = run(go())
    kinds = [next(iter(f)) for f in frames]
    assert kinds[0] == "H" and "F" in kinds
    pending = next(f["U"] for f in frames if "U" in f)
    assert pending[1] == int(Status.PENDING) and pending[5] == "q1"
    fill = next(f["F"] for f in frames if "F" in f)
    assert fill[1:5] == [1, 1, 6000000, 10000] and fill[9] == "q1"


def test_a_retry_with_the_same_client_order_id_is_not_executed_again(ex):
    """A client that saw no answer (its connection dropped after it sent N) sends the order again with the same
    client order id, as specs/ws-api.md 5.1 tells it to, after the first try filled: the retry is refused (E 1011),
    not executed a second time; the engine accepted the cid once; the store keeps the first try's outcome.
    (Regression: the order id was a fresh UUIDv7 per try, so the engine's dedup could not see a retry.)"""
    import websockets

    async def go():
        async with Trader(ex, RETRY_MAKER) as m:
            for i in range(2):      # liquidity for the first try and, were it executed, for the retry
                await m.order("BTC-PERP", "sell", "0.010", "60000", cid=f"retry-ask-{i}")
            auth = {"Authorization": f"Bearer {ex.token(RETRY_TAKER)}"}
            async with websockets.connect(ex.url, additional_headers=auth) as ws:
                frames = []
                for _ in range(2):
                    await ws.send(json.dumps({"N": [1, 0, 6000000, 10000, "retry-1", 1]}))
                    while True:
                        (k, v), = json.loads(await ws.recv()).items()
                        frames.append((k, v))
                        if (k == "U" and v[1] in (2, 3, 4)) or k == "E":
                            break
            await m.c.cancel_all()
            return frames

    frames = run(go())
    fills = [v for k, v in frames if k == "F"]
    assert len(fills) == 1 and fills[0][9] == "retry-1"
    first, again = [v for k, v in frames if k == "U" and v[1] == int(Status.PENDING)]
    assert first[0] == again[0]            # the same order id: a function of (user, symbol, cid)
    assert frames[-1][0] == "E" and frames[-1][1][0] == 1011 and frames[-1][1][2:] == ["retry-1",
                                                                                      int(Reason.DUPLICATE_ORDER_ID)]
    spec = ex.cfg.symbol("BTC-PERP")
    records = list(wal_records(ex.cfg.process("me.BTC-PERP").data_dir / "wal", spec.id))
    accepted = [r for r in records
                if r.type == RecordType.ORDER_ACCEPTED and bytes(r.client_id).rstrip(b"\0") == b"retry-1"]
    assert len(accepted) == 1
    refusal = next(r for r in records if r.type == RecordType.ORDER_FAILED and r.order_id == accepted[0].order_id)
    assert refusal.reason == Reason.DUPLICATE_ORDER_ID
    end = time.monotonic() + 30            # the store has read past the refusal
    while ((ex.status("store.0") or {}).get("streams", {}).get("me 1", {}).get("applied_seq", 0) < refusal.seq
           and time.monotonic() < end):
        time.sleep(0.1)
    r = ex.rsx("history", "orders", "--user", str(RETRY_TAKER), "--json")
    rows = [o for o in json.loads(r.stdout)["rows"] if o.get("client_id") == "retry-1"]
    assert [o["status"] for o in rows] == ["FILLED"], r.stdout


def test_time_in_force_and_post_only(ex):
    async def go():
        async with Trader(ex, 3) as m, Trader(ex, 4) as t:
            await m.order("BTC-PERP", "sell", "0.020", "60500", cid="tif-ask1")
            ioc = await t.terminal("BTC-PERP", "buy", "0.050", "60500", tif="ioc", cid="tif-ioc")
            assert (ioc.status, ioc.reason, ioc.filled) == (Status.CANCELLED, Reason.IOC_REMAINDER, "0.020000")
            fok = await t.terminal("BTC-PERP", "buy", "0.050", "60500", tif="fok", cid="tif-fok1")
            assert (fok.status, fok.reason, fok.filled) == (Status.FAILED, Reason.FOK_NOT_FILLABLE, "0.000000")
            await m.order("BTC-PERP", "sell", "0.020", "60500", cid="tif-ask2")
            fok = await t.terminal("BTC-PERP", "buy", "0.020", "60500", tif="fok", cid="tif-fok2")
            assert (fok.status, fok.filled) == (Status.FILLED, "0.020000")
            await m.order("BTC-PERP", "sell", "0.010", "60600", cid="tif-ask3")
            po = await t.terminal("BTC-PERP", "buy", "0.010", "60600", post_only=True, cid="tif-po1")
            assert (po.status, po.reason) == (Status.FAILED, Reason.POST_ONLY_WOULD_CROSS)
            po = await t.order("BTC-PERP", "buy", "0.010", "59000", post_only=True, cid="tif-po2")
            assert po.status == Status.RESTING
            await t.c.cancel_all("BTC-PERP")
            await m.c.cancel_all("BTC-PERP")
            await t.wait(lambda k, e: k == "U" and e.oid == po.oid and e.status == Status.CANCELLED)
    run(go())


def test_reduce_only(ex):
    async def go():
        async with Trader(ex, 5) as flat, Trader(ex, 6) as m, Trader(ex, 7) as longer:
            await m.order("BTC-PERP", "buy", "0.050", "59500", cid="ro-bid")
            o = await flat.terminal("BTC-PERP", "sell", "0.010", "59500", reduce_only=True, cid="ro-flat")
            assert o.status in (Status.FAILED, Status.CANCELLED) and o.filled == "0.000000"
            assert o.reason == Reason.REDUCE_ONLY_NO_POSITION
            assert await flat.c.positions() == []
            await m.order("BTC-PERP", "sell", "0.030", "60400", cid="ro-ask")
            got = await longer.terminal("BTC-PERP", "buy", "0.030", "60400", cid="ro-open")
            assert got.status == Status.FILLED
            red = await longer.terminal("BTC-PERP", "sell", "0.010", "59500", reduce_only=True, cid="ro-red")
            assert (red.status, red.filled) == (Status.FILLED, "0.010000")
            assert [(p.symbol, p.qty) for p in await longer.c.positions()] == [("BTC-PERP", "0.020000")]
            await m.c.cancel_all("BTC-PERP")
    run(go())


@pytest.mark.parametrize("stp, taker, maker", [
    ("cancel_taker", Status.CANCELLED, Status.RESTING),
    ("cancel_maker", Status.RESTING, Status.CANCELLED),
    ("cancel_both", Status.CANCELLED, Status.CANCELLED),
    ("none", Status.FILLED, Status.FILLED),
])
def test_self_trade_modes(ex, stp, taker, maker):
    async def go():
        async with Trader(ex, 8) as u:
            before = await u.c.positions()
            made = await u.order("BTC-PERP", "sell", "0.010", "61000", cid=f"st-m-{stp}"[:20])
            took = await u.order("BTC-PERP", "buy", "0.010", "61000", stp=stp, cid=f"st-t-{stp}"[:20])
            if taker != Status.RESTING:
                took = await u.c.wait_terminal(took.oid)
            assert took.status == taker
            if taker == Status.CANCELLED:
                assert took.reason == Reason.SELF_TRADE
            if maker == Status.RESTING:
                assert made.oid in u.c.orders
            else:
                got = await u.c.wait_terminal(made.oid)
                assert got.status == maker
            if stp == "none":            # a self-trade changes no position (specs/risk.md 3.1)
                assert len(u.fills()) == 2
                assert await u.c.positions() == before
            await u.c.cancel_all("BTC-PERP")
    run(go())


def test_amend_cancel_and_cancel_all(ex):
    async def go():
        async with Trader(ex, 9) as u, Trader(ex, 9) as other:
            o = await u.order("BTC-PERP", "buy", "0.050", "59000", cid="am-1")
            a = await u.c.amend(o.oid, qty="0.030")
            assert (a.status, a.remaining, a.price) == (Status.RESTING, "0.030000", "59000.00")
            a = await u.c.amend(o.oid, qty="0.030", price="59100")
            assert (a.status, a.remaining, a.price) == (Status.RESTING, "0.030000", "59100.00")
            o2 = await u.order("BTC-PERP", "buy", "0.010", "58000", cid="am-2")
            o3 = await u.order("ETH-PERP", "sell", "0.50", "3500", cid="am-3")
            c = await u.c.cancel(o2.oid)
            assert (c.status, c.reason) == (Status.CANCELLED, Reason.USER_CANCEL)
            assert await other.c.cancel_all() == 2     # from another connection of the same user
            for oid in (o.oid, o3.oid):
                e = (await u.wait(lambda k, e, oid=oid: k == "U" and e.oid == oid and e.terminal))[0]
                assert (e.status, e.reason) == (Status.CANCELLED, Reason.CANCEL_ALL)
            assert await u.c.open_orders() == []
    run(go())


def test_positions_and_balances_equal_the_fills(ex):
    """Every user's position and collateral, as risk answers them, equal what the fills in the ME WALs (and the
    funding payments in risk's journal) add up to, recomputed here by the rules of specs/risk.md 3.1 and 3.4."""
    deposits = {u: int(d) * 10 ** ex.cfg.risk.collateral_decimals for u, d in ACCOUNTS}

    async def answers():
        out = {}
        for u, _ in ACCOUNTS:
            async with Trader(ex, u) as t:
                pos = {(t.c.symbol(p.symbol).id): t.c.symbol(p.symbol).numbers.qty(p.qty.lstrip("-")) *
                       (-1 if p.qty.startswith("-") else 1) for p in await t.c.positions()}
                acct = await t.c.account()
                out[u] = (pos, int(acct.collateral.replace(".", "")))
        return out

    for attempt in range(3):            # a funding payment between the two reads: read again
        got = run(answers())
        positions, collateral = user_ledger(ex.cfg, deposits)
        want = {u: ({s: p[0] for (uu, s), p in positions.items() if uu == u and p[0]}, collateral.get(u, 0))
                for u, _ in ACCOUNTS}
        if got == want:
            break
    assert got == want
    assert any(pos for pos, _ in got.values())


def test_the_public_book_matches_the_engines_book(ex):
    """The marketdata snapshot (`B`) after ME record `u` equals the C book rebuilt from the ME's WAL up to `u`."""
    import websockets

    async def go():
        async with Trader(ex, 10) as u:
            for i, (side, px) in enumerate([("buy", "59800"), ("buy", "59800"), ("buy", "59750"), ("sell", "60200"),
                                            ("sell", "60300")]):
                await u.order("BTC-PERP", side, "0.011", px, cid=f"pb-{i}")
            async with websockets.connect(ex.md_url) as ws:
                await ws.send(json.dumps({"S": [1, 2]}))
                while True:
                    (kind, v), = json.loads(await ws.recv()).items()
                    if kind == "B":
                        return v

    sym, bids, asks, _ts, u = run(go())
    spec = ex.cfg.symbol("BTC-PERP")
    book = Book(spec.numbers, capacity=4096, ref_price=spec.reference_price)
    for r in wal_records(ex.cfg.process("me.BTC-PERP").data_dir / "wal", 1):
        if r.seq > u:
            break
        if r.type in (RecordType.ORDER_ACCEPTED, RecordType.CANCEL_ORDER, RecordType.CANCEL_ALL,
                      RecordType.AMEND_ORDER):
            book.apply(r)
    depth = ex.cfg.marketdata.depth
    assert sym == 1 and bids and asks
    assert bids == [[lv.price, lv.qty, lv.count] for lv in book.depth(0, depth)]
    assert asks == [[lv.price, lv.qty, lv.count] for lv in book.depth(1, depth)]
    assert [59800_00, 22000, 2] in bids
    run(_cancel_all(ex, 10))


async def _cancel_all(ex, user: int) -> None:
    async with Trader(ex, user) as u:
        await u.c.cancel_all()


def test_a_liquidation_ends_with_the_insurance_fund_and_adl(ex):
    """A long on ETH-PERP with 1000 USD of collateral; the index drops 17 %: the account is bankrupt at any
    price the book could give and the fund is nearly empty, so round 1 goes to ADL against the profitable
    short (specs/risk.md 7): LIQUIDATION notices ADL, INSURANCE (what the fund had, from fees), DONE; both
    flat; the counterparty pays the rest of the shortfall; the shard's books balance."""
    async def open_positions():
        async with Trader(ex, VICTIM) as v, Trader(ex, COUNTER) as c:
            await c.order("ETH-PERP", "sell", "3.00", "3000", cid="liq-short")
            got = await v.terminal("ETH-PERP", "buy", "3.00", "3000", cid="liq-long")
            assert got.status == Status.FILLED

    run(open_positions())

    async def crash():
        async with Trader(ex, VICTIM) as v, Trader(ex, COUNTER) as c:
            _prices(ex.prices, "60000", "2500")
            os.kill(ex.pid("mark.0"), signal.SIGKILL)     # the mark process restarts on the new prices
            done = await v.wait(lambda k, e: k == "Q" and e[1] == 4, timeout=60)
            kinds = [e[1] for k, e in v.events if k == "Q"]
            assert 3 in kinds and kinds[-1] == 4, kinds
            assert await v.c.positions() == []
            assert [p for p in await c.c.positions() if p.symbol == "ETH-PERP"] == []
            acct = await v.c.account()
            return done, acct, await c.c.account()

    done, victim, counter = run(crash(), timeout=120)
    assert victim.collateral == "0.000000" and not victim.in_liquidation
    ex.wait_ready("mark.0", restarts=1)
    risk = ex.cfg.process("risk.0")
    recs = [r for r in wal_records(risk.data_dir / "wal", risk.stream_id) if r.type == RecordType.LIQUIDATION]
    adl = [r for r in recs if r.kind == 3]
    assert adl and {r.counterparty_user_id for r in adl} == {COUNTER} and sum(r.qty for r in adl) == 300_000
    shortfall = sum(r.shortfall for r in adl)
    assert shortfall > 0                               # the counterparty carried what the fund could not
    ins = [r for r in recs if r.kind == 2]
    # the victim lost everything: 1000 USD + the 1500 USD loss at the mark; the fund and ADL covered the rest
    assert sum(r.shortfall for r in ins) + shortfall == 1500_000000 - 1000_000000 + sum(
        v for v in _fees_paid(ex, VICTIM))
    run(_cancel_all(ex, COUNTER))


def _fees_paid(ex, user: int):
    """Taker and maker fees the user paid on ETH-PERP (from the ME WAL)."""
    spec = ex.cfg.symbol("ETH-PERP")
    n = spec.numbers
    d = 10 ** (n.price_decimals + n.qty_decimals - ex.cfg.risk.collateral_decimals)
    for r in wal_records(ex.cfg.process("me.ETH-PERP").data_dir / "wal", 2):
        if r.type == RecordType.FILL:
            v = r.price * r.qty // d
            if r.taker_user_id == user:
                yield v * n.taker_fee_bps // 10_000
            if r.maker_user_id == user:
                yield v * n.maker_fee_bps // 10_000


@pytest.mark.slow
def test_a_funding_interval_settles(ex):
    """BTC-PERP pays funding every minute: at the next boundary every open position gets a FUNDING_PAYMENT,
    longs and shorts of one rate (zero-sum on one shard), pushed to the connected users as FP."""
    async def go():
        async with Trader(ex, 1) as a, Trader(ex, 2) as b:
            if not [p for p in await a.c.positions() if p.symbol == "BTC-PERP" and Decimal(p.qty) != 0]:
                # run alone (-m slow): the positions the tests before it leave are opened here
                rest = await a.order("BTC-PERP", "buy", "0.010", "60000", cid="e2e-fund-buy")
                assert rest.status == Status.RESTING
                take = await b.terminal("BTC-PERP", "sell", "0.010", "60000", cid="e2e-fund-sell")
                assert take.status == Status.FILLED
            fa = await a.wait(lambda k, e: k == "FP", timeout=90)
            fb = await b.wait(lambda k, e: k == "FP", timeout=30)
            return fa[0], fb[0]

    fa, fb = run(go(), timeout=150)
    assert fa[0] == fb[0] == 1 and fa[1] == -fb[1] != 0 and fa[2] == -fb[2]
    risk = ex.cfg.process("risk.0")
    pays = [r for r in wal_records(risk.data_dir / "wal", risk.stream_id) if r.type == RecordType.FUNDING_PAYMENT]
    per_interval = {}
    for r in pays:
        per_interval.setdefault(r.interval_id, []).append(r.amount)
    assert per_interval and all(abs(sum(v)) <= len(v) for v in per_interval.values())    # zero-sum but rounding
