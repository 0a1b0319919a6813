"""`rsx wal dump|stats|verify|follow|consumers|accept-loss PATH` (specs/wal.md section 7).

PATH is a stream's WAL directory, an archive directory, or one .wal file; anything else
(a missing path, a text file, a directory without WAL files) is refused (exit 2).
Exit codes: 0 ok, 1 a check failed or the stream breaks, 2 bad usage or input,
3 permissions, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from ._common import (CliError, Progress, add_json, command_group, existing, print_json, print_json_line,
                      wal_input)


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--type", help="record types, comma separated (FILL,BBO,...; default: every type)")
    p.add_argument("--from", dest="from_seq", type=int, help="first seq (default: the oldest)")
    p.add_argument("--to", dest="to_seq", type=int, help="last seq (default: the newest)")
    p.add_argument("--symbol", type=int, help="symbol id (default: every symbol)")
    p.add_argument("--user", type=int, help="user id: user, taker, maker or counterparty (default: every user)")
    p.add_argument("--since", help="from this time: ns since the epoch or ISO 8601, UTC unless a zone is given")
    p.add_argument("--until", help="up to this time (same forms as --since)")


def register(sub: argparse._SubParsersAction) -> None:
    p, inner = command_group(sub, "wal", help="inspect WAL and archive files",
                             description="Dump, count, verify and follow WAL files (specs/wal.md section 7).\n\n"
                                         "Exit codes: 0 ok, 1 a check failed or the stream breaks, 2 bad usage "
                                         "or input, 3 permissions, 130 Ctrl-C.")
    p.add_argument("--stream", type=int, default=0,
                   help="stream id, when a directory holds several (default 0: inferred)")

    d = inner.add_parser("dump", help="records, one per line",
                         description="One line per record with its decoded fields: `seq TYPE field=value ...`, "
                                     "or a JSON object per line with --json (ids as UUID strings). A break is "
                                     "reported on stderr after the valid records; exit 1 then.")
    d.add_argument("path", metavar="PATH", help="WAL directory, archive directory or one .wal file")
    _filters(d)
    d.add_argument("--limit", type=int, help="stop after N records (default: no limit)")
    add_json(d, "one JSON object per record (JSON lines)")
    d.set_defaults(func=dump)

    s = inner.add_parser("stats", help="counts per type, seq range, gaps, bytes",
                         description="Counts per type, seq range, gaps, bytes, breaks, the writer's tip and the "
                                     "registered consumers. Exit 1 when a gap or a break is found.")
    s.add_argument("path", metavar="PATH", help="WAL directory, archive directory or one .wal file")
    add_json(s)
    s.set_defaults(func=stats)

    v = inner.add_parser("verify", help="exit 0 only if every record checks and seqs are contiguous",
                         description="Check every record (CRC, layout) and seq continuity within and across "
                                     "files; print where it breaks. Exit 0 only if all holds, 1 otherwise.")
    v.add_argument("path", metavar="PATH", help="WAL directory, archive directory or one .wal file")
    add_json(v)
    v.set_defaults(func=verify)

    f = inner.add_parser("follow", help="print records as they become durable (like tail -f)",
                         description="Print the last N records, then each new durable record, until a break "
                                     "(exit 1) or Ctrl-C (exit 130).")
    f.add_argument("path", metavar="PATH", help="the stream's WAL directory (or a file in it)")
    f.add_argument("-n", "--lines", type=int, default=10, help="start with the last N records (default 10)")
    f.add_argument("--start", type=int, help="start at this seq instead (0 = the oldest)")
    _filters(f)
    f.add_argument("--poll-ms", type=float, default=50.0, help="how often to look for new records, ms (default 50)")
    add_json(f, "one JSON object per record (JSON lines)")
    f.set_defaults(func=follow)

    c = inner.add_parser("consumers", help="registered consumers and their positions",
                         description="List (or drop) the consumers the writer's retention waits for.")
    c.add_argument("path", metavar="PATH", help="the stream's WAL directory")
    c.add_argument("--drop", metavar="NAME", help="unregister NAME (exit 2 if it is not registered)")
    add_json(c)
    c.set_defaults(func=consumers)

    a = inner.add_parser("accept-loss", help="record a lost tail as SEQ_LOST so the writer can start",
                         description="When the active file lost records that were reported durable, the "
                                     "writer refuses to start. This records the lost seqs as SEQ_LOST "
                                     "tombstones (no seq is ever reused) so it can: the operator's explicit "
                                     "decision (specs/wal.md 2.7). Exit 1 if the writer cannot open for "
                                     "another reason (another writer runs, corrupt durable data).")
    a.add_argument("path", metavar="DIR", help="the stream's WAL directory")
    add_json(a)
    a.set_defaults(func=accept_loss)


def _make_filter(args):
    from ..wal.tools import Filter, parse_time, parse_types

    try:
        return Filter(
            types=parse_types(args.type) if args.type else None,
            from_seq=args.from_seq, to_seq=args.to_seq, symbol=args.symbol, user=args.user,
            since_ns=parse_time(args.since) if args.since else None,
            until_ns=parse_time(args.until) if args.until else None)
    except ValueError as e:
        raise CliError(str(e)) from None


def _line(rec: dict) -> str:
    """A record as one line of text: seq, type, then field=value."""
    rest = " ".join(f"{k}={v}" for k, v in rec.items() if k not in ("seq", "type"))
    return f"{rec['seq']} {rec['type']} {rest}"


def dump(args) -> int:
    from ..wal.tools import _open, filtered_records, stream_files

    flt = _make_filter(args)
    if args.limit is not None and args.limit < 0:
        raise CliError("--limit must be >= 0")
    files, sid = stream_files(wal_input(args.path, args.stream), args.stream)
    out = sys.stdout
    printed, broke = 0, False
    for f in files:
        wf = _open(f, check_seq=False, stream_id=sid)
        if len(wf) and flt.to_seq is not None and wf.first_seq > flt.to_seq:
            break
        for rec in filtered_records(wf, flt):
            if args.limit is not None and printed >= args.limit:
                return 0
            if args.json:
                print_json_line(rec, out)
            else:
                out.write(_line(rec) + "\n")
            printed += 1
        if wf.brk is not None:
            print(f"rsx wal dump: {wf.brk}", file=sys.stderr)
            broke = True
    return 1 if broke else 0


def _stats_json(res: dict) -> dict:
    """The library's stats with the CLI's key rules (units as suffixes; specs/cli.md)."""
    out = dict(res)
    out["per_file"] = [{**{k: v for k, v in f.items() if k != "size"}, "size_bytes": f["size"]}
                       for f in res["per_file"]]
    w = res.get("writer")
    if w:
        out["writer"] = {**{k: v for k, v in w.items() if k not in ("sync_ns_last", "sync_ns_max")},
                         "last_sync_ns": w["sync_ns_last"], "max_sync_ns": w["sync_ns_max"]}
    return out


def stats(args) -> int:
    from ..wal.tools import stats as compute

    path = wal_input(args.path, args.stream)
    with Progress("rsx wal stats: reading"):
        res = _stats_json(compute(path, args.stream))
    failed = bool(res["gaps"] or res["breaks"])
    if args.json:
        print_json(res)
        return 1 if failed else 0
    print(f"stream {res['stream_id']}: {res['files']} file(s), {res['records']} records, "
          f"{res['bytes']} bytes, seqs {res['first_seq']}..{res['last_seq']}")
    for t, c in res["types"].items():
        print(f"  {t:<16} {c}")
    print(f"gaps: {len(res['gaps'])}")
    for g in res["gaps"][:20]:
        print(f"  after seq {g['after']} comes {g['next']} ({g['missing']} missing) in {g['file']}")
    print(f"breaks: {len(res['breaks'])}")
    for b in res["breaks"]:
        print(f"  {b['file']} offset {b['offset']}: {b['reason']} [{b['code']}], "
              f"last good seq {b['last_seq']}{' (torn tail)' if b['tail'] else ''}")
    w = res.get("writer")
    if w:
        alive = "alive" if w["alive"] else "not running"
        err = f", error {w['error']}" if w["error"] else ""
        print(f"writer: pid {w['pid']} ({alive}), state {w['state']}{err}, durable seq "
              f"{w['durable_seq']}, {w['batches']} batches, {w['stalls']} stalls, "
              f"last sync {w['last_sync_ns'] / 1000:.0f} us, max {w['max_sync_ns'] / 1000:.0f} us")
        if w["retention_blocked_seq"]:
            print(f"  RETENTION BLOCKED: a consumer at seq {w['retention_blocked_seq']} keeps "
                  f"files due for deletion")
    if "consumers" in res:
        print(f"consumers: {len(res['consumers'])}")
        for name, seq in res["consumers"].items():
            print(f"  {name:<16} seq {seq}")
    return 1 if failed else 0


def verify(args) -> int:
    from ..wal.tools import stream_files
    from ..wal.tools import verify as check

    path = wal_input(args.path, args.stream)
    with Progress("rsx wal verify", total=len(stream_files(path, args.stream)[0]), unit="files"):
        rep = check(path, args.stream)
    if args.json:
        print_json({"ok": rep.ok, "files": rep.files, "records": rep.records, "first_seq": rep.first_seq,
                    "last_seq": rep.last_seq, "problems": rep.problems, "notes": rep.notes,
                    "breaks": [b.to_dict() for b in rep.breaks]})
        return 0 if rep.ok else 1
    for p in rep.problems:
        print(f"BREAK: {p}")
    for n in rep.notes:
        print(f"NOTE: {n}")
    if rep.ok:
        print(f"OK: {rep.files} file(s), {rep.records} records, seqs {rep.first_seq}..{rep.last_seq}, "
              f"contiguous, every CRC checks")
        return 0
    print(f"FAILED: {len(rep.problems)} problem(s); the stream is valid up to the first break "
          f"({rep.records} records checked)")
    return 1


def accept_loss(args) -> int:
    from ..errors import RsxError
    from ..wal import WalSet, WalWriter

    path = wal_input(existing(args.path, "dir"), args.stream)
    try:
        sid = args.stream or WalSet(path).stream_id
        with WalWriter(path, sid, prealloc=False, accept_loss=True) as w:
            st = w.stats()
    except RsxError as e:           # the writer refuses for another reason: a failure, not bad usage
        e.exit_code = 1
        raise
    if args.json:
        print_json({"path": path, "stream_id": sid, "lost_first": st.lost_first,
                    "lost_last": st.lost_last, "next_seq": st.next_seq})
    elif st.lost_first:
        print(f"stream {sid}: recorded seqs {st.lost_first}..{st.lost_last} as lost (SEQ_LOST); "
              f"the stream continues at seq {st.lost_last + 1}")
    else:
        print(f"stream {sid}: nothing lost; durable up to seq {st.durable_seq}")
    return 0


def follow(args) -> int:
    import time
    from pathlib import Path

    from ..wal import WalBreakError, WalReader
    from ..wal.tools import filtered_records

    flt = _make_filter(args)
    if args.poll_ms <= 0 or args.lines < 0:
        raise CliError("--poll-ms must be > 0 and --lines >= 0")
    path = Path(wal_input(args.path, args.stream))
    if path.is_file():
        path = path.parent
    reader = WalReader(path, args.stream)
    info = reader.info()
    if args.start is not None:
        start = args.start
    else:
        start = max(info.durable_seq - args.lines + 1, info.oldest_seq, 1)
    try:
        reader.seek(start)
        while True:
            batch = reader.read()
            if not len(batch):
                time.sleep(args.poll_ms / 1000)
                continue
            for rec in filtered_records(batch, flt):
                if args.json:
                    print_json_line(rec)
                else:
                    sys.stdout.write(_line(rec) + "\n")
            sys.stdout.flush()
    except WalBreakError as e:
        print(f"rsx wal follow: {e.brk}", file=sys.stderr)
        return 1
    finally:
        reader.close()


def consumers(args) -> int:
    import os

    from ..wal import consumer_drop
    from ..wal import consumers as listing

    existing(args.path, "dir")
    if not os.path.isdir(os.path.join(args.path, "consumers")):
        wal_input(args.path, args.stream)  # a WAL directory where nobody registered yet is fine
    if args.drop:
        try:
            consumer_drop(args.path, args.drop)
        except FileNotFoundError:
            raise CliError(f"no consumer {args.drop!r} in {args.path}") from None
        if args.json:
            print_json({"path": args.path, "dropped": args.drop})
        else:
            print(f"dropped {args.drop}")
        return 0
    found = listing(args.path)
    if args.json:
        print_json({"path": args.path, "consumers": found})
    elif not found:
        print(f"no consumers registered in {args.path}")
    else:
        for name, seq in found.items():
            print(f"{name}\t{'unreadable (holds retention at 0)' if seq is None else seq}")
    return 0
