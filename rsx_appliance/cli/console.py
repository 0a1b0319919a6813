"""`rsx console`: serve the web console (specs/console.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from ._common import add_config_args, add_json

    p = sub.add_parser("console", help="serve the web console: trade and operate from a browser",
                       description="Serve the trade page (book, trades, orders, positions through the public "
                                   "marketdata and the private gateway WebSockets) and the operate page "
                                   "(processes, streams, tuning check, live latency; halt/resume with an "
                                   "operator token) at [console] listen:port (default http://127.0.0.1:8280/). "
                                   "Writes D/run/console.0.json; stops on SIGTERM (0) or SIGINT (130). "
                                   "Exit 3 when the port is taken. specs/console.md.")
    add_config_args(p)
    p.add_argument("--listen", metavar="ADDR", help="listen address (default: [console] listen, 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="P", help="port (default: [console] port, 8280; 0: any free port, "
                                                          "named in the ready line)")
    add_json(p, "print the ready line as one JSON object")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from ._common import CliError
    from ._serve import serve_process
    from ..console import ConsoleApp

    if args.port is not None and not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port}: must be 0..65535")
    logging.getLogger("websockets").setLevel(logging.WARNING)   # no line per HTTP request
    return serve_process(args, "console", lambda cfg: ConsoleApp(cfg, host=args.listen, port=args.port))
