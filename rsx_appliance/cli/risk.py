"""`rsx risk inspect`: a read-only look at a risk shard's durable state (specs/risk.md 8).

    rsx risk inspect [--snapshots DIR] [--journal PATH] [--shard-id N] [--json]

Every snapshot (journal seq, users, positions, live orders, ledgers, tips, CRC verdict) and
the journal (last seq, records by type, torn tail). Nothing is modified (a torn tail is
reported, not truncated).

Exit codes: 0 every snapshot and the journal are valid; 1 a corrupt snapshot or a break in
the journal; 2 bad usage or input (nothing to inspect, a missing path, a directory without
snapshots, a journal path that is not the shard's WAL).
"""

from __future__ import annotations

import argparse

from ._common import CliError, add_json, command_group, existing, print_json, wal_input


def register(sub: argparse._SubParsersAction) -> None:
    _, inner = command_group(sub, "risk", help="risk engine tools", description="Risk engine tools (specs/risk.md).")
    i = inner.add_parser("inspect", help="summarise a shard's snapshots and journal (read-only)", description=__doc__)
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

    from ..risk._core import ORDER_DTYPE, SYMBOL_DTYPE
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
        sc = meta["scalars"]
        out.append({
            "path": path, "valid": True, "journal_seq": meta["journal_seq"], "shard_id": meta["shard_id"],
            "clock_ns": meta["clock"], "users": sc["n_users"], "positions": sc["n_positions"],
            "live_orders": len(sec["orders"]) // ORDER_DTYPE.itemsize,
            "ledgers": {k: sc[k] for k in ("insurance_fund", "fee_revenue", "funding_clearing")},
            "in_liquidation": len(meta["liq"]), "bad_debt": meta["bad_debt"],
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
