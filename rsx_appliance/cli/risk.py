"""`rsx risk serve` (the shard process) and `rsx risk inspect` (specs/risk.md 14, 15)."""

from __future__ import annotations

import argparse
import sys

from ._common import (CliError, add_config_args, add_json, command_group, existing, print_json,
                      print_json_line, wal_input)

SERVE_DOC = """Run risk shard N of the configuration until SIGTERM or Ctrl-C (specs/risk.md 15).

    rsx risk serve --shard N [--config FILE] [--data DIR] [--wait MODE] [--backend B] [--json] [-v]

It recovers (snapshot, journal, every ME stream over DXS), replays the mark stream, applies the
configured demo deposits once, then takes orders from the gateways, checks and forwards them,
applies fills, marks and funding, liquidates, and writes D/run/risk.N.json. One ready line on
stdout when it serves (with --json: {"event": "ready", ...}).

Exit codes: 0 stopped by SIGTERM; 1 the shard failed (a corrupt journal, an ME stream it cannot
apply, a replay the producer refuses); 2 bad usage or configuration; 3 the environment refused
(a port in use, permissions); 130 Ctrl-C, after an orderly stop.
"""

INSPECT_DOC = """A read-only look at a risk shard's durable state (specs/risk.md 8).

    rsx risk inspect [--snapshots DIR] [--journal PATH] [--shard-id N] [--json]

Every snapshot (journal seq, users, positions, live orders, ledgers, tips, CRC verdict) and
the journal (last seq, records by type, torn tail). Nothing is modified (a torn tail is
reported, not truncated).

Exit codes: 0 every snapshot and the journal are valid; 1 a corrupt snapshot or a break in
the journal; 2 bad usage or input (nothing to inspect, a missing path, a directory without
snapshots, a journal path that is not the shard's WAL).
"""


def register(sub: argparse._SubParsersAction) -> None:
    _, inner = command_group(sub, "risk", help="risk engine tools", description="Risk engine tools (specs/risk.md).")
    sv = inner.add_parser("serve", help="run one risk shard process", description=SERVE_DOC)
    sv.add_argument("--shard", metavar="N", type=int, required=True,
                    help="the shard's index (risk.N in the configuration)")
    add_config_args(sv)
    sv.add_argument("--wait", choices=("auto", "spin", "backoff", "block"),
                    help="waiting mode (default: [risk] wait, itself auto)")
    sv.add_argument("--backend", choices=("auto", "udp", "uring"),
                    help="CMP backend (default: [network] cmp_backend)")
    add_json(sv, "print the ready line as a JSON object")
    sv.add_argument("-v", "--verbose", action="store_true", help="log every recovery and replay step (INFO)")
    sv.set_defaults(func=run_serve)
    i = inner.add_parser("inspect", help="summarise a shard's snapshots and journal (read-only)",
                         description=INSPECT_DOC)
    i.add_argument("--snapshots", metavar="DIR", help="snapshot directory (snap-<seq>.rsx files)")
    i.add_argument("--journal", metavar="PATH", help="journal: the shard's WAL directory (stream 0x80000000 | id)")
    i.add_argument("--shard-id", type=int, default=0, help="shard id (default 0)")
    add_json(i)
    i.set_defaults(func=run_inspect)


def _journal(path: str, shard_id: int) -> tuple[dict, bool]:
    """The journal is the shard's WAL stream: summarise it with the WAL tools (read-only)."""
    import os

    from ..risk.shard import shard_stream_id
    from ..wal import tools

    sid = shard_stream_id(shard_id)
    wal_input(path, sid)
    st = tools.stats(path, sid)
    breaks = st["breaks"]
    torn = [b for b in breaks if b["tail"]]
    result = {"path": path, "stream_id": sid, "bytes": st["bytes"], "last_seq": st["last_seq"],
              "records": st["types"], "gaps": st["gaps"],
              "torn_tail_bytes": sum(os.path.getsize(b["file"]) - b["offset"] for b in torn),
              "breaks": [b for b in breaks if not b["tail"]]}
    return result, not result["breaks"] and not st["gaps"]


def _snapshots(directory: str) -> tuple[list, bool]:
    import numpy as np

    from ..risk._core import ACCOUNT_DTYPE, ACCT_LIQ, ORDER_DTYPE, POSITION_DTYPE, SYMBOL_DTYPE
    from ..risk.errors import SnapshotError
    from ..risk.snapshot import list_snapshots, read_snapshot

    existing(directory, "dir")
    paths = list_snapshots(directory)
    if not paths:
        raise CliError(f"{directory}: no snapshots in it (snap-<seq>.rsx)")
    out, ok = [], True
    for path in paths:
        try:
            meta, sec = read_snapshot(path)
        except SnapshotError as exc:
            out.append({"path": path, "valid": False, "error": str(exc)})
            ok = False
            continue
        sym = np.frombuffer(sec["symbols"], dtype=SYMBOL_DTYPE)
        acc = np.frombuffer(sec["accounts"], dtype=ACCOUNT_DTYPE)
        pos = np.frombuffer(sec["positions"], dtype=POSITION_DTYPE)
        flat = np.ones(len(acc), dtype=bool)                # bad debt: what flat accounts owe (specs/risk.md 7)
        flat[pos["acct"][pos["net"] != 0]] = False
        sc = meta["scalars"]
        out.append({
            "path": path, "valid": True, "journal_seq": meta["journal_seq"], "shard_id": meta["shard_id"],
            "clock_ns": meta["clock"], "users": sc["n_users"], "positions": sc["n_positions"],
            "live_orders": len(sec["orders"]) // ORDER_DTYPE.itemsize,
            "ledgers": {k: sc[k] for k in ("insurance_fund", "fee_revenue", "funding_clearing")},
            "in_liquidation": int(np.count_nonzero(acc["flags"] & ACCT_LIQ)),
            "bad_debt": int(-acc["collateral"][flat & (acc["collateral"] < 0)].sum()),
            "tips": {str(i): int(sym["tip"][i]) for i in np.flatnonzero(sym["configured"])},
        })
    return out, ok


def _text(result: dict) -> str:
    lines = []
    for snap in result.get("snapshots", []):
        if not snap["valid"]:
            lines.append(f"snapshot {snap['path']}: CORRUPT: {snap['error']}")
            continue
        led = ", ".join(f"{k} {v:,}" for k, v in snap["ledgers"].items())
        lines.append(f"snapshot {snap['path']}: journal seq {snap['journal_seq']:,}, shard {snap['shard_id']}, "
                     f"{snap['users']:,} users, {snap['positions']:,} positions, {snap['live_orders']:,} live "
                     f"orders, {snap['in_liquidation']} in liquidation, bad debt {snap['bad_debt']:,}; {led}")
        if snap["tips"]:
            lines.append("  tips: " + ", ".join(f"symbol {k} seq {v:,}" for k, v in snap["tips"].items()))
    j = result.get("journal")
    if j:
        kinds = ", ".join(f"{t} {n:,}" for t, n in j["records"].items()) or "none"
        lines.append(f"journal {j['path']} (stream {j['stream_id']:#x}): last seq {j['last_seq']:,}, "
                     f"{j['bytes']:,} bytes; records: {kinds}")
        if j["torn_tail_bytes"]:
            lines.append(f"  torn tail: {j['torn_tail_bytes']:,} bytes a crashed writer never synced "
                         "(cut at the next start)")
        for g in j["gaps"]:
            lines.append(f"  GAP after seq {g['after']}: next is {g['next']} ({g['missing']} missing)")
        for b in j["breaks"]:
            lines.append(f"  BREAK in {b['file']} at offset {b['offset']}: {b['reason']}")
    return "\n".join(lines)


def run_inspect(args: argparse.Namespace) -> int:
    if not args.snapshots and not args.journal:
        raise CliError("give --snapshots DIR and/or --journal PATH")
    if not 0 <= args.shard_id < 1 << 31:
        raise CliError("--shard-id must be 0..2^31-1")
    result, ok = {}, True
    if args.snapshots:
        result["snapshots"], good = _snapshots(args.snapshots)
        ok &= good
    if args.journal:
        result["journal"], good = _journal(args.journal, args.shard_id)
        ok &= good
    if args.json:
        print_json(result)
    else:
        print(_text(result))
    return 0 if ok else 1


def run_serve(args: argparse.Namespace) -> int:
    import logging

    from ..risk.serve import serve

    if args.verbose:
        logging.basicConfig(level=logging.INFO, force=True,
                            format=f"%(asctime)s {args._command} %(name)s %(levelname)s %(message)s")

    def ready(line: dict) -> None:
        if args.json:
            print_json_line({"event": "ready", **line})
        else:
            print(f"{line['process']}: ready (" + ", ".join(f"{k} {v}" for k, v in line.items()
                                                          if k != "process") + ")")
        sys.stdout.flush()

    code = serve(args.config, args.shard, data_dir=args.data, wait=args.wait, backend=args.backend, ready=ready)
    if code == 130:
        print(f"{args._command}: interrupted", file=sys.stderr)
    return code
