"""`rsx marketdata`: the public L2 book, BBO and trades over WebSocket (specs/marketdata.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("marketdata", help="serve the public market data WebSocket",
                       description="Follow every matching engine's stream (DXS from seq 1, then CMP with NAK "
                                   "and DXS replay), keep a shadow L2 book per symbol, and serve BBO, depth "
                                   "(snapshot + chained deltas) and trades on a public WebSocket.")
    from ._serve import add_process_args

    add_process_args(p, "marketdata")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ._serve import serve_process
    from ..marketdata.app import MarketdataApp

    return serve_process(args, "marketdata", lambda cfg: MarketdataApp(cfg, args.instance))
