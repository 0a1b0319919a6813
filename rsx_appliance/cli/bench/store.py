"""`rsx bench store`: the history store's targets (text, or one JSON object with --json).

    rsx bench store [ingest|lag|all] [--backend sqlite|postgresql|both] [--mix crossing|fills]
                    [--fills N] [--repeat R] [--rate R --seconds S] [--dir DIR] [--pg-url URL] [--json]

ingest: an ME stream of --fills fills (mix crossing: makers resting, takers crossing them, every
  order's ORDER_ACCEPTED/INSERTED/DONE as the ME writes them; mix fills: FILL records only) is
  written to a WAL and read back as DXS batches (not timed), then the store's writer path
  (conversion, the C order fold, fees through the C ledger, one transaction per --batch records,
  the next converted while the previous commits) runs into a fresh database, timed from the first
  batch to the last commit. --repeat runs, the median reported. Targets: >= 200 000 fills/s into
  SQLite, >= 100 000 into PostgreSQL.
lag: --rate fills/s offered open loop for --seconds by a producer process (WAL with group
  commit), served by `rsx dxs serve`, consumed by the store's process path; lag = commit time -
  the time each fill was due. Target: p99 <= 1 s at 10 000 fills/s. --save FILE writes the lags
  as a run file for `rsx report`.

SQLite files go in --dir (default: the system's temporary directory; use a real disk).
PostgreSQL: a server the benchmark starts itself in a temporary directory (initdb, durable
defaults: fsync on), or --pg-url (a fresh schema per run is created and dropped there).
Wall-clock figures on a shared machine are indicative only: cpu_s is the CPU the store used.

Exit codes: 0 done (targets met or not: see each `target`), 1 a run stored a different number of
fills than it was given, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from .._common import CliError, Progress, add_json, print_json, print_text

TARGETS = {"sqlite_fills_per_s": 200_000, "postgresql_fills_per_s": 100_000, "lag_p99_ms": 1000.0}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="history store: ingest fills/s into SQLite and PostgreSQL; lag at a rate",
                       description=__doc__)
    p.add_argument("case", nargs="?", default="ingest", choices=("ingest", "lag", "all"),
                   help="ingest (fills/s), lag (at a steady rate) or all (default: ingest)")
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite",
                   help="the database (default: sqlite)")
    p.add_argument("--mix", choices=("crossing", "fills"), default="crossing",
                   help="ingest stream (default: crossing, the ME's records of resting and crossing orders)")
    p.add_argument("--fills", type=int, default=500_000, help="ingest: fills in the stream (default 500 000)")
    p.add_argument("--batch", type=int, default=50_000, help="ingest: records per transaction (default 50 000, "
                   "the [store] batch_records default)")
    p.add_argument("--repeat", type=int, default=3, help="ingest: runs per backend, the median is reported "
                   "(default 3)")
    p.add_argument("--users", type=int, default=1000, help="distinct users in the stream (default 1000)")
    p.add_argument("--rate", type=float, default=10_000, help="lag: fills per second offered (default 10 000)")
    p.add_argument("--seconds", type=float, default=20.0, help="lag: how long (default 20 s)")
    p.add_argument("--dir", help="where the WAL and the SQLite files go (default: a temporary directory)")
    p.add_argument("--pg-url", help="an existing PostgreSQL server to use instead of starting one")
    p.add_argument("--save", metavar="FILE", help="lag: write the per-fill lags as a run file for `rsx report`")
    add_json(p)
    p.set_defaults(func=run)


def _backends(args) -> list[str]:
    return ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]


def run(args: argparse.Namespace) -> int:
    from ...store import _benchlib as B
    from ...store.pgtemp import PostgresUnavailableError, TempPostgres

    for name in ("fills", "repeat", "batch", "users", "rate", "seconds"):
        if getattr(args, name) <= 0:
            raise CliError(f"--{name} must be > 0")
    if args.dir and not os.path.isdir(args.dir):
        raise CliError(f"--dir {args.dir}: not a directory")
    out = {"benchmark": "store", "case": args.case, "machine": {"cpus": os.cpu_count(),
                                                                "loadavg": [round(x, 2) for x in os.getloadavg()]},
           "note": "wall-clock on a shared machine is indicative only; cpu_s is the CPU the store used "
                   "(with a server of its own, the server's too)", "results": {}}
    pg = None
    with tempfile.TemporaryDirectory(prefix="rsx-bench-store-", dir=args.dir) as d:
        try:
            pg_url = args.pg_url
            if "postgresql" in _backends(args):
                try:
                    import psycopg  # noqa: F401
                    if not pg_url:
                        pg = TempPostgres()
                        pg_url = pg.url
                except ImportError:
                    pg_url = None
                    out["results"]["postgresql"] = {"skipped": "the psycopg driver is not installed: pip "
                                                               "install 'rsx-appliance[postgres]'"}
                except PostgresUnavailableError as exc:
                    out["results"]["postgresql"] = {"skipped": str(exc)}
            if args.case in ("ingest", "all"):
                _ingest(args, d, pg_url, pg, out["results"], B)
            if args.case in ("lag", "all"):
                _lag(args, d, pg_url, out["results"], B)
        finally:
            if pg is not None:
                pg.cleanup()
    if args.json:
        print_json(out)
    else:
        print_text(out)
    ok = all(r["ingest"]["stored_fills"] == r["ingest"]["fills"] for r in out["results"].values() if "ingest" in r)
    return 0 if ok else 1


def _ingest(args, d: str, pg_url: str | None, pg, results: dict, B) -> None:
    shape = B.write_stream(os.path.join(d, "ingest-wal"), args.fills, args.mix, args.users)
    batches = B.read_batches(os.path.join(d, "ingest-wal"))
    backends = [b for b in _backends(args) if b == "sqlite" or pg_url]
    bar = Progress("rsx bench store: ingest", total=len(backends) * args.repeat, unit="runs")
    for backend in backends:
        runs = []
        for i in range(args.repeat):
            if backend == "sqlite":
                url = B.fresh_sqlite(d, i)
                try:
                    runs.append(B.ingest(url, batches, args.batch))
                finally:
                    B.remove_sqlite(url)
            else:
                url, schema = B.fresh_pg_schema(pg_url, i)
                try:
                    runs.append(B.ingest(url, batches, args.batch, server_cpu=pg.cpu_seconds if pg else None))
                finally:
                    B.drop_pg_schema(pg_url, schema)
            bar.advance()
        r = {**shape, "batch_records": args.batch, **B.median_run(runs)}
        target = TARGETS[f"{backend}_fills_per_s"]
        r["target"] = {"fills_per_s": target, "met": r["fills_per_s"] >= target}
        results.setdefault(backend, {})["ingest"] = r
    bar.close()


def _lag(args, d: str, pg_url: str | None, results: dict, B) -> None:
    from ...latency import Histogram, write_run

    for backend in _backends(args):
        if backend == "postgresql" and not pg_url:
            continue
        run_dir = os.path.join(d, f"lag-{backend}")
        os.makedirs(run_dir)
        schema = None
        if backend == "sqlite":
            url = B.fresh_sqlite(run_dir, 0)
        else:
            url, schema = B.fresh_pg_schema(pg_url, 0)
        with Progress(f"rsx bench store: lag ({backend})", total=None, unit="s"):
            try:
                r, lags = B.lag(url, run_dir, args.rate, args.seconds, args.users)
            finally:
                if schema:
                    B.drop_pg_schema(pg_url, schema)
        h = Histogram()
        h.record(lags)
        r["lag"] = h.summary("ms")
        r["target"] = {"p99_ms": TARGETS["lag_p99_ms"],
                       "met": bool(h.total) and r["lag"]["p99_ms"] <= TARGETS["lag_p99_ms"]}
        r["how"] = ("open loop: a producer process appends the crossing mix every 1 ms with each record's "
                    "ts_ns = when it was due; rsx dxs serve; the store's process path with the [store] "
                    "defaults; lag = commit time - ts_ns, per fill")
        if args.save:
            path = args.save if args.backend != "both" else f"{args.save}.{backend}"
            write_run(path, {"fill_due_to_commit": lags}, offered_rate=args.rate, load_mode="open-loop",
                      description=f"history store lag ({backend}): commit time - the time the fill was due",
                      setup={"backend": backend, "rate": args.rate, "seconds": args.seconds,
                             "users": args.users})
            r["saved"] = path
        results.setdefault(backend, {})["lag"] = r
