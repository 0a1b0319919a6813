"""`rsx order`: trade through a gateway from the command line (specs/ws-api.md 10).

Human decimals in and out (converted exactly by the symbol's numbers), ``--json``
for scripts. Exit codes: 0 done, 1 the venue or the gateway refused, 2 bad
input, 3 cannot connect or unauthorized.
"""

from __future__ import annotations

import argparse

EXIT_CODES = ("Exit codes: 0 done, 1 the venue or the gateway refused (or no answer in time), 2 bad input, "
              "3 cannot connect or unauthorized.")

from ._common import add_config_args, add_json, command_group, print_json, print_json_line


def register(sub: argparse._SubParsersAction) -> None:
    _, inner = command_group(sub, "order", help="place, cancel, amend orders; query orders, positions, account",
                             description=__doc__)

    def cmd(name: str, help: str, description: str):
        c = inner.add_parser(name, help=help, description=f"{description}\n\n{EXIT_CODES}")
        add_config_args(c)
        c.add_argument("--url", help="gateway WebSocket (default: instance 0 of the config)")
        c.add_argument("--user", type=int, default=1, help="user to mint a token for (default 1)")
        c.add_argument("--token", help="a bearer token instead of minting one")
        c.add_argument("--key", metavar="FILE", help="private key to mint with (EdDSA, RS256)")
        c.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for answers (default 10)")
        add_json(c, "print one JSON object (watch: one per line)")
        c.set_defaults(func=run, action=name)
        return c

    c = cmd("new", "place a limit order", "Place a limit order and print what the engine answered (resting, "
            "filled, refused) within --wait seconds.")
    c.add_argument("symbol", metavar="SYMBOL", help="symbol name, e.g. BTC-PERP")
    c.add_argument("side", metavar="SIDE", choices=("buy", "sell"), help="buy or sell")
    c.add_argument("qty", metavar="QTY", help="quantity, a decimal string (e.g. 0.010)")
    c.add_argument("price", metavar="PRICE", help="limit price, a decimal string (e.g. 60000.5)")
    c.add_argument("--tif", choices=("gtc", "ioc", "fok"), default="gtc", help="time in force (default gtc)")
    c.add_argument("--post-only", action="store_true", help="refuse the order if it would take liquidity")
    c.add_argument("--reduce-only", action="store_true", help="only reduce a position, never open or grow one")
    c.add_argument("--stp", choices=("cancel_taker", "cancel_maker", "cancel_both", "none"), default="cancel_taker",
                   help="self-trade prevention (default cancel_taker)")
    c.add_argument("--cid", help="client order id (1..20 of A-Z a-z 0-9 . _ : -)")
    c.add_argument("--wait", type=float, default=2.0,
                   help="seconds to wait for the engine's answer (default 2; 0: the gateway's ack only)")
    c = cmd("cancel", "cancel one order by order id or client id", "Cancel one order by its order id or client id.")
    c.add_argument("id", metavar="ID", help="order id (UUID) or client order id")
    c = cmd("amend", "amend an order: new open quantity, optionally a new price",
            "Amend an order: a new open quantity (down keeps priority), optionally a new price.")
    c.add_argument("id", metavar="ID", help="order id (UUID) or client order id")
    c.add_argument("--qty", required=True, help="new open quantity, a decimal string")
    c.add_argument("--price", help="new limit price, a decimal string (default: unchanged)")
    c = cmd("cancel-all", "cancel every resting order (of one symbol)",
            "Cancel every resting order of the user, of one symbol or of all.")
    c.add_argument("symbol", metavar="SYMBOL", nargs="?", help="symbol name (default: every symbol)")
    c = cmd("open", "open orders", "List the user's open orders.")
    c.add_argument("symbol", metavar="SYMBOL", nargs="?", help="symbol name (default: every symbol)")
    cmd("positions", "positions", "List the user's positions: quantity, entry, mark, unrealised PnL, liquidation.")
    cmd("account", "collateral, margin, available", "The user's collateral, margin in use and available balance.")
    c = cmd("fills", "fills history (from the history store)", "The user's fills, newest first, from the history "
            "store.")
    c.add_argument("symbol", metavar="SYMBOL", nargs="?", help="symbol name (default: every symbol)")
    c.add_argument("--limit", type=int, default=50, help="most fills to show (default 50)")
    c = cmd("watch", "print order updates, fills and pushes as they come",
            "Print order updates, fills and pushes as they come, until --seconds pass or Ctrl-C (exit 130).")
    c.add_argument("--seconds", type=float, default=0, help="stop after this long (default 0: until Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_run(args))


def _show_order(o) -> str:
    reason = "" if o.reason == 0 else f" ({o.reason.name.lower()})"
    return (f"{o.oid}  {o.cid:<20} {o.symbol:<10} {o.side:<4} @ {o.price:>14}  {o.status.name}{reason}  "
            f"filled {o.filled}, open {o.remaining}")


def _jsonable(x):
    from dataclasses import asdict, is_dataclass

    if is_dataclass(x):
        d = asdict(x)
        for k, v in d.items():
            if hasattr(v, "name") and isinstance(v, int):
                d[k] = v.name.lower()
        return d
    return x


async def _run(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from ..client import Client, GatewayError, Refused
    from ..codes import Status
    from ..config import load_config

    cfg = load_config(args.config, args.data)
    url = args.url
    if url is None:
        host, port = cfg.process("gateway.0").ws
        url = f"ws://{host}:{port}/ws"

    def token() -> str:
        if args.token:
            return args.token
        from ..gateway.auth import mint_token, signing_key

        a = cfg.auth
        return mint_token(signing_key(cfg, args.key), a.algorithm, args.user, audience=a.audience,
                          issuer=a.issuer, ttl_s=600)[0]

    out = (print_json_line if args.action == "watch" else print_json) if args.json else None
    act = args.action
    async with Client.connect(url, token, timeout=args.timeout) as c:
        try:
            if act == "new":
                o = await c.new_order(args.symbol, args.side, args.qty, args.price, tif=args.tif,
                                      post_only=args.post_only, reduce_only=args.reduce_only, stp=args.stp,
                                      cid=args.cid, timeout=args.timeout)
                if args.wait > 0:
                    try:
                        o = await c.wait_answer(o.oid, args.wait)
                    except asyncio.TimeoutError:
                        pass
                out(_jsonable(o)) if out else print(_show_order(o))
                return 1 if o.status == Status.FAILED else 0
            if act == "cancel":
                await c.open_orders()          # learn client ids of orders placed by other connections
                o = await c.cancel(args.id, timeout=args.timeout)
                out(_jsonable(o)) if out else print(_show_order(o))
            elif act == "amend":
                await c.open_orders()          # learn the order (placed by another connection)
                o = await c.amend(args.id, qty=args.qty, price=args.price, timeout=args.timeout)
                out(_jsonable(o)) if out else print(_show_order(o))
            elif act == "cancel-all":
                n = await c.cancel_all(args.symbol)
                out({"symbols": n}) if out else print(f"cancel-all sent to {n} symbol(s)")
            elif act == "open":
                rows = await c.open_orders(args.symbol)
                if out:
                    out({"orders": [_jsonable(o) for o in rows]})
                else:
                    print("\n".join(_show_order(o) for o in rows) or "no open orders")
            elif act == "positions":
                rows = await c.positions()
                if out:
                    out({"positions": [_jsonable(p) for p in rows]})
                for p in ([] if out else rows):
                    print(f"{p.symbol:<10} qty {p.qty:>14}  entry {p.entry_price}  mark {p.mark_price}  "
                          f"upnl {p.unrealized_pnl}  liq {p.liquidation_price or '-'}")
                if not rows and not out:
                    print("no positions")
            elif act == "account":
                a = await c.account()
                if out:
                    out(_jsonable(a))
                else:
                    for k, v in _jsonable(a).items():
                        print(f"{k:<20} {v}")
            elif act == "fills":
                rows = await c.fills(args.symbol, args.limit)
                out({"fills": [_jsonable(f) for f in rows]}) if out else \
                    print("\n".join(f"{f.ts_ns} {f.symbol} {f.side} {f.qty} @ {f.price}" for f in rows) or "no fills")
            elif act == "watch":
                async def watch():
                    async for kind, ev in c.events():
                        out({"type": kind, "event": _jsonable(ev)}) if out else print(kind, ev, flush=True)
                try:
                    await asyncio.wait_for(watch(), args.seconds or None)
                except asyncio.TimeoutError:
                    pass
        except (GatewayError, Refused) as exc:
            print(f"{args._command}: error: {exc}", file=sys.stderr)
            return 1
        except asyncio.TimeoutError:
            print(f"{args._command}: error: no answer within {args.timeout} s", file=sys.stderr)
            return 1
    return 0
