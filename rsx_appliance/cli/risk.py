"""`rsx risk serve` (the shard process) and `rsx risk inspect` (specs/risk.md 14, 15).

    rsx risk serve --shard N [--config rsx.toml] [--data DIR] [--wait auto|spin|backoff|block]
                   [--backend auto|udp|uring]
    rsx risk inspect [--snapshots DIR] [--journal PATH] [--shard-id N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

SERVE_DOC = """Run risk shard N of the configuration until SIGTERM or SIGINT (specs/risk.md 15).

It recovers (snapshot, journal, every ME stream over DXS), replays the mark stream, applies the
configured demo deposits once, then takes orders from the gateways, checks and forwards them,
applies fills, marks and funding, liquidates, and writes D/run/risk.N.json. One 'ready' line on
stdout when it serves. Exit 0: stopped cleanly; 1: the shard failed (journal, an ME stream it
cannot apply, a replay the producer refuses); 2: bad usage or configuration; 3: the environment
refused (a port in use, permissions).
"""

INSPECT_DOC = """A read-only look at a risk shard's durable state (specs/risk.md 8).

Prints one JSON object: every snapshot (journal seq, users, positions, live orders, ledgers,
tips, CRC verdict) and the journal (last seq, records by type, torn tail). Nothing is modified
(a torn tail is reported, not truncated). Exit 0: all valid; 1: a corrupt snapshot or journal;
2: bad usage (nothing to inspect, missing path).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("risk", help="risk engine tools", description="Risk engine tools.")
    inner = p.add_subparsers(dest="risk_command", metavar="COMMAND")
    sv = inner.add_parser("serve", help="run one risk shard process", description=SERVE_DOC,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    sv.add_argument("--shard", type=int, required=True, help="the shard's index (risk.N in the configuration)")
    sv.add_argument("--config", help="rsx.toml (default: the embedded configuration)")
    sv.add_argument("--data", help="data directory (overrides the configuration)")
    sv.add_argument("--wait", choices=("auto", "spin", "backoff", "block"), help="waiting mode (default: [risk] wait)")
    sv.add_argument("--backend", choices=("auto", "udp", "uring"), help="CMP backend (default: [network] cmp_backend)")
    sv.set_defaults(func=run_serve)
    i = inner.add_parser("inspect", help="summarise a shard's snapshots and journal (read-only)",
                         description=INSPECT_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("--snapshots", help="snapshot directory")
    i.add_argument("--journal", help="journal directory (the shard's WAL stream)")
    i.add_argument("--shard-id", type=int, default=0, help="shard id (journal stream 0x80000000|id)")
    i.set_defaults(func=run_inspect)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _journal(path: str, shard_id: int) -> tuple[dict, bool]:
    """The journal is the shard's WAL stream: summarise it with the WAL tools (read-only)."""
    import os

    from ..risk.shard import shard_stream_id
    from ..wal import tools

    sid = shard_stream_id(shard_id)
    try:
        st = tools.stats(path, sid)
    except (OSError, ValueError) as exc:
        return {"path": path, "error": str(exc)}, False
    breaks = st["breaks"]
    torn = [b for b in breaks if b["tail"]]
    result = {"path": path, "bytes": st["bytes"], "last_seq": st["last_seq"],
              "records": st["types"], "gaps": st["gaps"],
              "torn_tail_bytes": sum(os.path.getsize(b["file"]) - b["offset"] for b in torn),
              "breaks": [b for b in breaks if not b["tail"]]}
    return result, not result["breaks"] and not st["gaps"] and st["files"] > 0


def _snapshots(directory: str) -> tuple[list, bool]:
    import numpy as np

    from ..risk._core import ACCOUNT_DTYPE, ACCT_LIQ, ORDER_DTYPE, SYMBOL_DTYPE
    from ..risk.errors import SnapshotError
    from ..risk.snapshot import list_snapshots, read_snapshot

    out, ok = [], True
    for path in list_snapshots(directory):
        try:
            meta, sec = read_snapshot(path)
        except SnapshotError as exc:
            out.append({"path": path, "valid": False, "error": str(exc)})
            ok = False
            continue
        sym = np.frombuffer(sec["symbols"], dtype=SYMBOL_DTYPE)
        sc = meta["scalars"]
        out.append({
            "path": path, "valid": True, "journal_seq": meta["journal_seq"], "shard_id": meta["shard_id"],
            "clock_ns": meta["clock"], "users": sc["n_users"], "positions": sc["n_positions"],
            "live_orders": len(sec["orders"]) // ORDER_DTYPE.itemsize,
            "ledgers": {k: sc[k] for k in ("insurance_fund", "fee_revenue", "funding_clearing",
                                           "insurance_reserved")},
            "in_liquidation": int(np.count_nonzero(
                np.frombuffer(sec["accounts"], dtype=ACCOUNT_DTYPE)["flags"] & ACCT_LIQ)),
            "tips": {str(i): int(sym["tip"][i]) for i in np.flatnonzero(sym["configured"])},
        })
    return out, ok


def run_serve(args: argparse.Namespace) -> int:
    import errno
    import logging

    from ..risk.serve import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return serve(args.config, args.shard, data_dir=args.data, wait=args.wait, backend=args.backend,
                     ready=lambda line: print(line, flush=True))
    except OSError as exc:
        if isinstance(exc, PermissionError) or exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EPERM):
            print(f"rsx risk: error: {exc}", file=sys.stderr)
            return 3
        raise


def run_inspect(args: argparse.Namespace) -> int:
    if not args.snapshots and not args.journal:
        print("rsx risk inspect: give --snapshots DIR and/or --journal PATH", file=sys.stderr)
        return 2
    for p in (args.snapshots, args.journal):
        if p and not os.path.exists(p):
            print(f"rsx risk inspect: {p}: no such file or directory", file=sys.stderr)
            return 2
    result, ok = {}, True
    if args.snapshots:
        result["snapshots"], good = _snapshots(args.snapshots)
        ok &= good
    if args.journal:
        result["journal"], good = _journal(args.journal, args.shard_id)
        ok &= good
    print(json.dumps(result, indent=2))
    return 0 if ok else 1
