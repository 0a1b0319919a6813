"""`rsx mark`: index, mark price and funding rates for the risk shards (specs/mark.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mark", help="publish index, mark prices and funding rates",
                       description="Read external prices from the configured sources (simulated by "
                                   "default), compute each symbol's index and mark, sample our book's "
                                   "premium, and publish MARK_PRICE and FUNDING_RATE records: journaled, "
                                   "then sent over CMP to every risk shard and served over DXS.")
    from ._serve import add_process_args

    add_process_args(p, "mark")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ._serve import serve_process
    from ..mark.app import MarkApp

    return serve_process(args, "mark", lambda cfg: MarkApp(cfg, args.instance))
