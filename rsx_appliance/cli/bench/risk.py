"""`rsx bench risk`: the risk engine's four targets (text, or one JSON object with --json).

    rsx bench risk [--quick] [--only pretrade,fills,mark,recovery] [--repeat N] [--json]

- pretrade: NEW_ORDER checks per second through RiskShard.submit (batches of --batch records).
- fills: FILL applications per second through RiskShard.on_me (batches of --batch records).
- mark: one mark update for a symbol with --exposed users: the C scan that revalues every
  position and returns every liquidatable account (ms), checked against an independent numpy
  computation; the full path with liquidation entry is reported separately.
- recovery: snapshot of --users accounts + --replay fills from the ME source, end to end (s).

Wall-clock figures on a shared machine are noise: quote them from a quiet machine. Setup
(accounts, positions, record generation) is not timed. Latency samples are kept as raw ns in
numpy arrays, recorded into latency histograms for the percentiles (`--save` writes a run file).

Exit codes: 0 done (targets met or not: see each `target`), 1 a result failed its
verification, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from .._common import CliError, Progress, add_json, print_json, print_text

TARGETS = {"pretrade_per_s": 200_000, "fills_per_s": 300_000, "mark_scan_ms": 10.0, "recovery_s": 30.0}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("risk", help="risk engine: pre-trade, fills, mark scan, recovery", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run, not the targets)")
    p.add_argument("--only", default="pretrade,fills,mark,recovery",
                   help="comma-separated subset of pretrade,fills,mark,recovery (default: all four)")
    p.add_argument("--batch", type=int, default=1024, help="records per call, pretrade and fills (default 1024)")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions, the median is reported (default 3)")
    p.add_argument("--orders", type=int, default=None, help="pre-trade checks (default 200k; quick 20k)")
    p.add_argument("--fills", type=int, default=None, help="fills (default 600k; quick 60k)")
    p.add_argument("--exposed", type=int, default=None, help="exposed users (default 100k; quick 10k)")
    p.add_argument("--users", type=int, default=None, help="recovery accounts (default 1M; quick 50k)")
    p.add_argument("--replay", type=int, default=None, help="recovery fills (default 10M; quick 200k)")
    p.add_argument("--save", metavar="FILE", help="write the single-call pre-trade latencies as a run "
                   "file for `rsx report`")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...risk import _benchlib as B

    only = {x.strip() for x in args.only.split(",") if x.strip()}
    bad = only - {"pretrade", "fills", "mark", "recovery"}
    if bad or not only:
        raise CliError(f"unknown --only part(s) {', '.join(sorted(bad)) or '(none)'}; choose from pretrade, "
                       "fills, mark, recovery")
    if args.batch < 1 or args.repeat < 1:
        raise CliError("--batch and --repeat must be >= 1")
    q = args.quick
    sizes = {
        "orders": args.orders or (20_000 if q else 200_000),
        "fills": args.fills or (60_000 if q else 600_000),
        "exposed": args.exposed or (10_000 if q else 100_000),
        "users": args.users or (50_000 if q else 1_000_000),
        "replay": args.replay or (200_000 if q else 10_000_000),
    }
    result = {"benchmark": "risk", "quick": q, "sizes": sizes, "batch": args.batch, "repeat": args.repeat,
              "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
              "note": "wall-clock on a shared machine is indicative only", "results": {}}
    res = result["results"]
    bar = Progress("rsx bench risk", total=len(only), unit="parts")
    if "pretrade" in only:
        bar.update(bar.done, label="rsx bench risk: pretrade")
        res["pretrade"] = B.bench_pretrade(sizes["orders"], args.batch, args.repeat)
        bar.advance()
        samples = res["pretrade"].pop("_samples")
        if args.save:
            from ...latency import write_run

            write_run(args.save, samples, description="risk pre-trade check, one NEW_ORDER per call "
                      "through RiskShard.submit (Python call included)", load_mode="closed-loop")
    if "fills" in only:
        bar.update(bar.done, label="rsx bench risk: fills")
        res["fills"] = B.bench_fills(sizes["fills"], args.batch, args.repeat)
        bar.advance()
    if "mark" in only:
        bar.update(bar.done, label="rsx bench risk: mark")
        res["mark"] = B.bench_mark(sizes["exposed"], args.repeat)
        bar.advance()
    if "recovery" in only:
        bar.update(bar.done, label="rsx bench risk: recovery")
        with tempfile.TemporaryDirectory(prefix="rsx-risk-bench-") as tmp:
            res["recovery"] = B.bench_recovery(sizes["users"], sizes["replay"], tmp)
    bar.close()
    checks = {"pretrade": ("pretrade_per_s", "checks_per_s", "ge"), "fills": ("fills_per_s", "fills_per_s", "ge"),
              "mark": ("mark_scan_ms", "scan_median_ms", "le"), "recovery": ("recovery_s", "total_s", "le")}
    for name, (target, key, how) in checks.items():
        if name in res:
            v = res[name][key]
            t = TARGETS[target]
            res[name]["target"] = {target: t, "met": v >= t if how == "ge" else v <= t}
    if args.json:
        print_json(result)
    else:
        print_text(result)
    ok = all(r.get("verified", True) for r in res.values())
    return 0 if ok else 1
