"""`rsx marketdata`: the public L2 book, BBO and trades over WebSocket (specs/marketdata.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("marketdata", help="serve the public market data WebSocket",
                       description="Follow every matching engine's stream (DXS from seq 1, then CMP with NAK "
                                   "and DXS replay), keep a shadow L2 book per symbol, and serve BBO, depth "
                                   "(snapshot + chained deltas) and trades on a public WebSocket.")
    p.add_argument("--config", help="exchange configuration (default: the embedded one)")
    p.add_argument("--data", help="data directory (status file under DATA/run)")
    p.add_argument("--instance", type=int, default=0, help="marketdata instance (default 0)")
    p.add_argument("--json", action="store_true", help="print the ready line as one JSON object")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ._serve import serve_process
    from ..marketdata.app import MarketdataApp

    return serve_process(args, "marketdata", lambda cfg: MarketdataApp(cfg, args.instance))
