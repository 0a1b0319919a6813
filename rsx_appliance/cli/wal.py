"""`rsx wal dump|stats|verify|follow|consumers PATH` (specs/wal.md section 7).

PATH is a stream's WAL directory, an archive directory, or one .wal file.
Exit codes: 0 ok, 1 a check failed or the stream breaks, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import sys


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--type", help="record types, comma separated (FILL,BBO,...)")
    p.add_argument("--from", dest="from_seq", type=int, help="first seq")
    p.add_argument("--to", dest="to_seq", type=int, help="last seq")
    p.add_argument("--symbol", type=int, help="symbol id")
    p.add_argument("--user", type=int, help="user id (user, taker, maker or counterparty)")
    p.add_argument("--since", help="from this time: ns since the epoch or ISO 8601 (UTC)")
    p.add_argument("--until", help="up to this time")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("wal", help="inspect WAL and archive files",
                       description="Dump, count, verify and follow WAL files (specs/wal.md).")
    p.add_argument("--stream", type=int, default=0,
                   help="stream id, when a directory holds several (default: inferred)")
    inner = p.add_subparsers(dest="wal_command", metavar="COMMAND")

    d = inner.add_parser("dump", help="records as JSON lines",
                         description="One JSON object per record with decoded fields.")
    d.add_argument("path")
    _filters(d)
    d.add_argument("--limit", type=int, help="stop after N records")
    d.set_defaults(func=dump)

    s = inner.add_parser("stats", help="counts per type, seq range, gaps, bytes",
                         description="Counts per type, seq range, gaps, bytes, breaks, the writer's "
                                     "tip and the registered consumers.")
    s.add_argument("path")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(func=stats)

    v = inner.add_parser("verify", help="exit 0 only if every record checks and seqs are contiguous",
                         description="Check every record (CRC, layout) and seq continuity within and "
                                     "across files; print where it breaks.")
    v.add_argument("path")
    v.set_defaults(func=verify)

    a = inner.add_parser("accept-loss", help="record a lost tail as SEQ_LOST so the writer can start",
                         description="When the active file lost records that were reported durable, "
                                     "the writer refuses to start. This records the lost seqs as "
                                     "SEQ_LOST tombstones (no seq is ever reused) so it can: the "
                                     "operator's explicit decision (specs/wal.md 2.7).")
    a.add_argument("path")
    a.set_defaults(func=accept_loss)

    f = inner.add_parser("follow", help="print records as they become durable (like tail -f)",
                         description="Print the last N records, then each new durable record.")
    f.add_argument("path")
    f.add_argument("-n", "--lines", type=int, default=10, help="start with the last N records")
    f.add_argument("--start", type=int, help="start at this seq instead (0 = the oldest)")
    _filters(f)
    f.add_argument("--poll-ms", type=float, default=50.0)
    f.set_defaults(func=follow)

    c = inner.add_parser("consumers", help="registered consumers and their positions",
                         description="List (or drop) the consumers the writer's retention waits for.")
    c.add_argument("path")
    c.add_argument("--drop", metavar="NAME", help="unregister NAME")
    c.set_defaults(func=consumers)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def _make_filter(args):
    from ..wal.tools import Filter, parse_time, parse_types

    try:
        return Filter(
            types=parse_types(args.type) if args.type else None,
            from_seq=args.from_seq, to_seq=args.to_seq, symbol=args.symbol, user=args.user,
            since_ns=parse_time(args.since) if args.since else None,
            until_ns=parse_time(args.until) if args.until else None)
    except ValueError as e:
        print(f"rsx wal: error: {e}", file=sys.stderr)
        return None


def _usage_error(msg: str) -> int:
    print(f"rsx wal: error: {msg}", file=sys.stderr)
    return 2


def dump(args) -> int:
    import json

    from ..wal.tools import _open, filtered_records, stream_files

    flt = _make_filter(args)
    if flt is None:
        return 2
    try:
        files, sid = stream_files(args.path, args.stream)
    except (FileNotFoundError, NotADirectoryError) as e:
        return _usage_error(str(e))
    out = sys.stdout
    printed, broke = 0, False
    for f in files:
        wf = _open(f, check_seq=False, stream_id=sid)
        if len(wf) and flt.to_seq is not None and wf.first_seq > flt.to_seq:
            break
        for rec in filtered_records(wf, flt):
            out.write(json.dumps(rec) + "\n")
            printed += 1
            if args.limit is not None and printed >= args.limit:
                return 0
        if wf.brk is not None:
            print(f"rsx wal dump: {wf.brk}", file=sys.stderr)
            broke = True
    return 1 if broke else 0


def stats(args) -> int:
    import json

    from ..wal.tools import stats as compute

    try:
        res = compute(args.path, args.stream)
    except (FileNotFoundError, NotADirectoryError) as e:
        return _usage_error(str(e))
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
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
              f"last sync {w['sync_ns_last'] / 1000:.0f} us, max {w['sync_ns_max'] / 1000:.0f} us")
        if w["retention_blocked_seq"]:
            print(f"  RETENTION BLOCKED: a consumer at seq {w['retention_blocked_seq']} keeps "
                  f"files due for deletion")
    if "consumers" in res:
        print(f"consumers: {len(res['consumers'])}")
        for name, seq in res["consumers"].items():
            print(f"  {name:<16} seq {seq}")
    return 0


def verify(args) -> int:
    from ..wal.tools import verify as check

    try:
        rep = check(args.path, args.stream)
    except (FileNotFoundError, NotADirectoryError) as e:
        return _usage_error(str(e))
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
    from pathlib import Path

    from ..errors import RsxError
    from ..wal import WalSet, WalWriter

    path = Path(args.path)
    if not path.is_dir():
        return _usage_error(f"{args.path}: not a WAL directory")
    try:
        sid = args.stream or WalSet(path).stream_id
        with WalWriter(path, sid, prealloc=False, accept_loss=True) as w:
            st = w.stats()
    except (RsxError, OSError) as e:
        print(f"rsx wal accept-loss: error: {e}", file=sys.stderr)
        return 1
    if st.lost_first:
        print(f"stream {sid}: recorded seqs {st.lost_first}..{st.lost_last} as lost (SEQ_LOST); "
              f"the stream continues at seq {st.lost_last + 1}")
    else:
        print(f"stream {sid}: nothing lost; durable up to seq {st.durable_seq}")
    return 0


def follow(args) -> int:
    import json
    import time
    from pathlib import Path

    from ..errors import RsxError
    from ..wal import WalBreakError, WalReader
    from ..wal.tools import filtered_records

    flt = _make_filter(args)
    if flt is None:
        return 2
    path = Path(args.path)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        return _usage_error(f"{args.path}: no such file or directory")
    try:
        reader = WalReader(path, args.stream)
    except (RsxError, OSError) as e:
        return _usage_error(str(e))
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
                sys.stdout.write(json.dumps(rec) + "\n")
            sys.stdout.flush()
    except WalBreakError as e:
        print(f"rsx wal follow: {e.brk}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        reader.close()


def consumers(args) -> int:
    from ..wal import consumer_drop
    from ..wal import consumers as listing

    if args.drop:
        try:
            consumer_drop(args.path, args.drop)
        except FileNotFoundError:
            return _usage_error(f"no consumer {args.drop!r} in {args.path}")
        print(f"dropped {args.drop}")
        return 0
    for name, seq in listing(args.path).items():
        print(f"{name}\t{'unreadable (holds retention at 0)' if seq is None else seq}")
    return 0
