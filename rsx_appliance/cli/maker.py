"""`rsx maker`: a demo market maker on every symbol (specs/operations.md 8)."""

from __future__ import annotations

import argparse

from ._common import add_config_args, add_json

DESCRIPTION = """\
Quote both sides of every symbol around its mark price, as an ordinary client of the gateway: LEVELS
post-only GTC orders per side, the best bid and ask SPREAD-BPS apart, levels STEP-BPS apart, each worth
about SIZE-NOTIONAL of collateral. The ladder is replaced when the mark moves REQUOTE-BPS from the
price it was built on, or after a fill. The mark comes from the mark stream (the price risk uses);
until the first one, a symbol is quoted around its reference_price. Runs until Ctrl-C (exit 130),
SIGTERM (exit 0) or --seconds, then cancels its orders.

Exit codes: 3 the gateway cannot be reached or refused the token."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("maker", help="a demo market maker: both sides around the mark on every symbol",
                       description=DESCRIPTION)
    add_config_args(p)
    p.add_argument("--url", help="gateway WebSocket (default: instance 0 of the config)")
    p.add_argument("--user", type=int, default=1000,
                   help="the maker's user id (default 1000, the embedded config's maker account)")
    p.add_argument("--symbols", help="comma-separated symbol names (default: every symbol)")
    p.add_argument("--levels", type=int, default=5, help="orders per side (default 5)")
    p.add_argument("--spread-bps", type=int, default=10, help="best ask - best bid, bps of the mark (default 10)")
    p.add_argument("--step-bps", type=int, default=5, help="between two levels of one side, bps (default 5)")
    p.add_argument("--size-notional", type=int, default=1000,
                   help="value of each order in whole collateral units, e.g. USD (default 1000)")
    p.add_argument("--requote-bps", type=int, default=5,
                   help="requote when the mark moved this many bps from the ladder's (default 5)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (default 0: until a signal)")
    add_json(p, "print the final summary as one JSON object")
    p.add_argument("-v", "--verbose", action="store_true", help="log the ladders once a second on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal
    import sys

    from ..client import ConnectError
    from ..config import load_config
    from ..maker import Maker, MakerParams
    from ._common import CliError, EnvironmentRefused, print_json

    for name in ("levels", "spread_bps", "step_bps", "size_notional", "requote_bps"):
        v = getattr(args, name)
        if not 1 <= v <= (100 if name == "levels" else 10**9):
            raise CliError(f"--{name.replace('_', '-')} {v}: out of range")
    if args.seconds < 0:
        raise CliError("--seconds must be >= 0")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(message)s", force=True)
    cfg = load_config(args.config, args.data)
    symbols = [s.strip() for s in args.symbols.split(",")] if args.symbols else None
    for s in symbols or []:
        cfg.symbol(s)
    url = args.url
    if url is None:
        host, port = cfg.process("gateway.0").ws
        url = f"ws://{host}:{port}/ws"

    def token() -> str:
        from ..gateway.auth import mint_token, signing_key

        a = cfg.auth
        return mint_token(signing_key(cfg), a.algorithm, args.user, audience=a.audience, issuer=a.issuer,
                          ttl_s=min(86_400, cfg.gateway.token_max_lifetime_s))[0]

    params = MakerParams(args.levels, args.spread_bps, args.step_bps, args.size_notional, args.requote_bps)
    maker = Maker(cfg, url, token, symbols=symbols, params=params, report_s=1.0 if args.verbose else 0.0)
    got: list[int] = []

    async def main() -> dict:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda s=sig: (got.append(s), stop.set()))
        if args.seconds:
            loop.call_later(args.seconds, stop.set)
        return await maker.run(stop)

    try:
        summary = asyncio.run(main())
    except ConnectError as exc:
        raise EnvironmentRefused(str(exc)) from None
    if args.json:
        print_json({"user_id": args.user, "symbols": summary, "refusals": maker.errors})
    else:
        for name, s in summary.items():
            print(f"{name:<10} mark {s['mark'] or '-':>12}  bid {s['best_bid'] or '-':>12}  ask "
                  f"{s['best_ask'] or '-':>12}  orders {s['orders']}  fills {s['fills']}  position {s['position']}")
    if got and got[0] == signal.SIGINT:
        print("rsx maker: interrupted", file=sys.stderr)
        return 130
    return 0
