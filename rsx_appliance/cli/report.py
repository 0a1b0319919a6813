"""`rsx report FILE...`: latency tables, JSON and a self-contained HTML report.

Reads run files (``*.lat.json``, written through rsx_appliance.latency) and
HdrHistogram interval logs (``.hlog``). specs/latency.md section 6.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="latency report of run files (.lat.json / .hlog): table, JSON or HTML",
        description="Show the latency of one or more runs: p50, p90, p99, p99.9, p99.99, max and count "
                    "per stage. Several files are compared. --html writes a self-contained page "
                    "(percentile spectrum, histogram, per-stage breakdown, setup).")
    p.add_argument("files", nargs="+", metavar="FILE", help="run file (.lat.json) or HdrHistogram .hlog")
    p.add_argument("--html", metavar="OUT", help="write a self-contained HTML report to OUT")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--unit", default="auto", choices=["auto", "ns", "us", "ms", "s"],
                   help="unit of the table and charts (default: auto)")
    p.add_argument("--export", metavar="DIR",
                   help="also write <run>.<stage>.hgrm and <run>.hlog files into DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..latency import load_run
    from ..latency.report import format_text, to_json

    runs = [load_run(f) for f in args.files]  # RunFileError -> exit 2 with the file named
    seen: dict[str, int] = {}
    for r in runs:  # two runs with one name would be indistinguishable in the charts
        seen[r.name] = seen.get(r.name, 0) + 1
        if seen[r.name] > 1:
            r.name = f"{r.name} ({seen[r.name]})"
    if args.export:
        out = Path(args.export)
        for r in runs:
            r.save_hgrm(out)
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in r.name)
            r.save_hlog(out / f"{safe}.hlog")
    if args.html:
        from ..fsutil import atomic_write
        from ..latency.html import render_html

        target = atomic_write(args.html, render_html(runs, args.unit), make_parents=True)
        print(f"wrote {target}", file=sys.stderr)
    if args.json:
        print(json.dumps(to_json(runs), indent=1))
    elif not args.html or sys.stdout.isatty():
        sys.stdout.write(format_text(runs, args.unit))
    return 0
