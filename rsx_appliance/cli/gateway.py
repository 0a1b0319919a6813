"""`rsx gateway`: serve the private WebSocket API (specs/ws-api.md 10)."""

from __future__ import annotations

import argparse

from ._common import add_config_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gateway", help="serve the private WebSocket API (orders, fills, queries)",
                       description="Serve instance G of [gateway]: the WebSocket at gateway.port + G (JWT "
                                   "checked at the upgrade), CMP links to every risk shard and every engine "
                                   "stream. Writes D/run/gateway.G.json; stops on SIGTERM/SIGINT. "
                                   "specs/ws-api.md.")
    add_config_args(p)
    p.add_argument("--instance", type=int, default=0, metavar="G", help="gateway instance (default 0)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="log level on stderr (default info)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..config import load_config
    from ..errors import ConfigError
    from ..gateway import run as serve

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        force=True)
    if args.log_level != "debug":   # one line per HTTP request and connection is too much for a venue's log
        logging.getLogger("websockets").setLevel(logging.WARNING)
    cfg = load_config(args.config, args.data)
    if not 0 <= args.instance < cfg.gateway.instances:
        raise ConfigError(f"no gateway instance {args.instance} (the config has {cfg.gateway.instances})")
    try:
        return serve(cfg, args.instance)
    except OSError as exc:
        import sys

        print(f"rsx gateway: error: {exc}", file=sys.stderr)
        return 3
