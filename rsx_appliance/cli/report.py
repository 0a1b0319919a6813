"""`rsx report FILE...`: latency tables, JSON and a self-contained HTML report.

Reads run files (``*.lat.json``, written through rsx_appliance.latency) and
any HdrHistogram interval log (``.hlog``: Java HdrHistogram, jHiccup, ours).
specs/latency.md section 6.
"""

from __future__ import annotations

import argparse
import sys

from ._common import CliError, Progress, add_json, existing, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="latency report of run files (.lat.json / .hlog): table, JSON or HTML",
        description="Show the latency of one or more runs: count, p50, p90, p99, p99.9, p99.99, max and mean per "
                    "stage, with the setup and warnings (clamped values, few samples, other processes' CPU, a "
                    "load that fell behind). Several files are compared with the first: ratios of p50, p99, "
                    "p99.9, p99.99 and max, a tail two or more times worse flagged as a regression. --html "
                    "writes a self-contained page (percentile spectrum, histogram, per-stage breakdown, "
                    "comparison, setup).\n\n"
                    "Reads run files and every HdrHistogram log Java HdrHistogram 1.x-2.2 and jHiccup write "
                    "(encodings V0, V1, V2; any tag).\n\n"
                    "Exit codes: 0 reported, 2 a missing, unreadable or invalid file (named in the message), "
                    "3 the output cannot be written.")
    p.add_argument("files", nargs="+", metavar="FILE", help="run file (.lat.json) or HdrHistogram log (.hlog)")
    p.add_argument("--html", metavar="OUT", help="also write a self-contained HTML report to OUT")
    add_json(p, "print one JSON object (values in ns) instead of the tables")
    p.add_argument("--unit", default="auto", choices=["auto", "ns", "us", "ms", "s"],
                   help="unit of the tables and charts (default auto: ns below 10 us, else us; ms beyond 10 s)")
    p.add_argument("--export", metavar="DIR",
                   help="also write <run>.<stage>.hgrm and <run>.hlog files into DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from ..latency import load_run
    from ..latency.run import file_name

    for f in args.files:
        existing(f, "file")
    total = sum(os.path.getsize(f) for f in args.files)
    runs = []
    with Progress("rsx report: reading", total=total, unit="bytes") as bar:
        base = 0
        for f in args.files:
            size = os.path.getsize(f)
            runs.append(load_run(f, progress=lambda done, n, b=base, s=size: bar.update(b + s * done / max(n, 1))))
            base += size
            bar.update(base)
    seen: dict[str, int] = {}
    for r in runs:  # two runs with one name would be indistinguishable in the charts
        seen[r.name] = seen.get(r.name, 0) + 1
        if seen[r.name] > 1:
            r.name = f"{r.name} ({seen[r.name]})"
    if args.export:
        out = Path(args.export)
        if out.exists() and not out.is_dir():
            raise CliError(f"{out}: not a directory (--export wants one)")
        for r in runs:
            r.save_hgrm(out)
            r.save_hlog(out / f"{file_name(r.name)}.hlog")
    if args.html:
        from ..fsutil import atomic_write
        from ..latency.html import render_html

        target = atomic_write(args.html, render_html(runs, args.unit), make_parents=True)
        print(f"wrote {target}", file=sys.stderr)
    if args.json:
        from ..latency.report import to_json

        print_json(to_json(runs))
    elif not args.html or sys.stdout.isatty():
        from ..latency.report import format_text

        sys.stdout.write(format_text(runs, args.unit))
    return 0
