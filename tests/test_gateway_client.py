"""rsx_appliance.client, `rsx order` and `rsx token` against a real gateway and the stand-in."""

from __future__ import annotations

import asyncio
import json

import pytest

from cliutil import check
from gwharness import Harness, make_config
from rsx_appliance.cli import main
from rsx_appliance.client import Client, ConnectError, GatewayError, Refused, SyncClient
from rsx_appliance.codes import Reason, Status
from rsx_appliance.errors import OffLotError, OffTickError, TooPreciseError
from rsx_appliance.gateway.auth import ensure_secret


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("cl"), {"order_rate_user": 1000, "cancel_rate_user": 1000})
    ensure_secret(cfg.resolve(cfg.auth.secret_file))
    hh = Harness(cfg).start()
    yield hh
    hh.stop()


def test_async_client_trades_in_decimal_strings(h):
    async def go():
        async with Client.connect(h.url, lambda: h.token(21)) as a, Client.connect(h.url, lambda: h.token(22)) as b:
            assert set(a.symbols) == {"BTC-PERP", "ETH-PERP"}
            with pytest.raises(OffTickError):
                await a.new_order("BTC-PERP", "buy", "0.010", "60000.3")      # refused before sending
            with pytest.raises(OffLotError):
                await a.new_order("BTC-PERP", "buy", "0.0101", "60000.5")
            with pytest.raises(TooPreciseError):
                await a.new_order("BTC-PERP", "buy", "0.0000001", "60000.5")
            o = await a.new_order("BTC-PERP", "buy", "0.010", "60000.5", cid="a-1")
            assert (o.status, o.price, o.remaining, o.cid) == (Status.PENDING, "60000.50", "0.010000", "a-1")
            t = await b.new_order("BTC-PERP", "sell", "0.004", "60000", tif="ioc")
            done = await b.wait_terminal(t.oid)
            assert (done.status, done.filled) == (Status.FILLED, "0.004000")
            kinds = []
            async for kind, ev in a.events():
                kinds.append(kind)
                if kind == "F":
                    assert (ev.price, ev.qty, ev.maker, ev.remaining) == ("60000.50", "0.004000", True, "0.006000")
                    break
            assert "U" in kinds
            am = await a.amend("a-1", qty="0.002")
            assert (am.status, am.remaining) == (Status.RESTING, "0.002000")
            with pytest.raises(Refused) as exc:
                await a.amend("a-1", qty="0.005")
            assert exc.value.reason == Reason.AMEND_NOT_DOWN
            rows = await a.open_orders()
            assert [(r.oid, r.filled) for r in rows] == [(o.oid, "0.004000")]
            acct = await a.account()
            assert acct.collateral == "1000000.000000" and not acct.in_liquidation
            pos = await a.positions()
            assert [(p.symbol, p.qty) for p in pos] == [("BTC-PERP", "0.004000")]
            c = await a.cancel(o.oid)
            assert (c.status, c.reason) == (Status.CANCELLED, Reason.USER_CANCEL)
            with pytest.raises(GatewayError) as exc:
                await a.cancel("a-1")
            assert exc.value.code == 1005
            with pytest.raises(GatewayError) as exc:
                await a.fills()
            assert exc.value.code == 1010
            assert await a.cancel_all() == 2
    asyncio.run(go())


def test_sync_client_and_connect_errors(h):
    with SyncClient(h.url, lambda: h.token(23)) as c:
        o = c.new_order("ETH-PERP", "sell", "0.05", "4000", post_only=True)
        assert c.cancel(o.oid).status == Status.CANCELLED
        assert c.open_orders() == []
    with pytest.raises(ConnectError, match="HTTP 401"):
        SyncClient(h.url, "not-a-token")


def test_rsx_token_and_rsx_order_commands(h, capsys):
    base = ["--data", str(h.cfg.data_dir)]
    assert main(["token", "--user", "31", "--json"] + base) == 0
    (tok,) = check("token", capsys.readouterr().out)
    assert tok["user_id"] == 31 and tok["token"].count(".") == 2
    assert main(["token", "--user", "0"] + base) == 2
    capsys.readouterr()

    def order(*argv):
        rc = main(["order", *argv, "--url", h.url, "--user", "31", "--json"] + base)
        io = capsys.readouterr()
        if rc == 0 and io.out.strip():  # every answer has the schema of specs/schemas/order.schema.json
            check("order", io.out, lines=argv[0] == "watch")
        return rc, io

    rc, io = order("new", "BTC-PERP", "buy", "0.002", "59000", "--cid", "cli-1")
    assert rc == 0 and json.loads(io.out)["status"] == "resting"
    rc, io = order("open")
    assert [o["cid"] for o in json.loads(io.out)["orders"]] == ["cli-1"]
    rc, io = order("amend", "cli-1", "--qty", "0.001")
    assert rc == 0 and json.loads(io.out)["remaining"] == "0.001000"
    rc, io = order("cancel", "cli-1")
    assert rc == 0 and json.loads(io.out)["reason"] == "user_cancel"
    rc, io = order("new", "BTC-PERP", "buy", "0.002", "59000.1")
    assert rc == 2 and "tick" in io.err
    rc, io = order("new", "BTC-PERP", "buy", "0.002", "59000", "--post-only", "--tif", "ioc")
    assert rc == 1 and "1002" in io.err
    rc, io = order("cancel", "nope")
    assert rc == 1 and "1005" in io.err
    rc, io = order("account")
    assert rc == 0 and json.loads(io.out)["collateral"] == "1000000.000000"
    rc, io = order("positions")
    assert rc == 0 and "positions" in json.loads(io.out)
    rc, io = order("cancel-all", "ETH-PERP")
    assert rc == 0 and json.loads(io.out) == {"symbols": 1}
    rc, io = order("watch", "--seconds", "0.3")
    assert rc == 0
    rc = main(["order", "open", "--url", h.url, "--token", "bad"] + base)
    assert rc == 3 and "401" in capsys.readouterr().err
