"""`rsx store [migrate|info]`: the history store process and its database (specs/store.md 7)."""

from __future__ import annotations

import argparse

from ._common import add_config_args, print_json


def _common(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--url", help="database URL (default: [store] url of the configuration)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="keep every order, fill, funding payment and liquidation in a database",
                       description="Follow every ME stream and every risk journal through DXS from the last "
                                   "stored seq and write them into SQLite (default, in the data directory) or "
                                   "PostgreSQL, exactly once by (stream, seq). Exit 1 if a producer refuses "
                                   "the replay, 2 on a bad configuration or a schema newer than this rsx, 3 if "
                                   "another store holds the database.")
    _common(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    p.set_defaults(func=run)
    inner = p.add_subparsers(dest="store_command", metavar="COMMAND")
    m = inner.add_parser("migrate", help="create or upgrade the database schema, then exit",
                         description="Apply every schema migration the database lacks (specs/store.md 3).")
    _common(m)
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.set_defaults(func=migrate)
    i = inner.add_parser("info", help="schema version, stream tips and row counts",
                         description="Print the database's schema version, the last stored seq of each "
                                     "stream and the number of rows of each table.")
    _common(i)
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(func=info)


def _cfg(args):
    from ..config import load_config

    return load_config(args.config, args.data)


def _url(args, cfg):
    from ..store.db import parse_url
    from ._common import CliError

    try:
        return parse_url(args.url or cfg.store.url, cfg.data_dir)
    except ValueError as exc:
        raise CliError(f"--url: {exc}") from None


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from ..store.service import StoreService

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = _cfg(args)
    svc = StoreService(cfg, url=_url(args, cfg).url)
    return asyncio.run(svc.run())


def migrate(args: argparse.Namespace) -> int:
    from ..store.db import open_database
    from ..store.schema import SCHEMA_VERSION, migrate as apply

    cfg = _cfg(args)
    url = _url(args, cfg)
    db = open_database(url)
    try:
        done = apply(db)
    finally:
        db.close()
    if args.json:
        print_json({"url": url.redacted, "applied": done, "version": SCHEMA_VERSION})
    else:
        print(f"{url.redacted}: schema version {SCHEMA_VERSION}"
              + (f" (applied {', '.join(map(str, done))})" if done else " (up to date)"))
    return 0


def info(args: argparse.Namespace) -> int:
    from ..config import streams
    from ..store.db import open_database
    from ..store.schema import TABLES, schema_version

    cfg = _cfg(args)
    url = _url(args, cfg)
    db = open_database(url, readonly=True)
    try:
        version = schema_version(db)
        tips, counts = [], {}
        if version:
            tips = db.query("SELECT stream_id, applied_seq, applied_ts_ns, updated_ns FROM stream_tips "
                            "ORDER BY stream_id")
            for t in TABLES:
                try:
                    counts[t] = db.query(f"SELECT COUNT(*) FROM {t}")[0][0]
                except Exception:  # a table of a newer migration
                    counts[t] = None
    finally:
        db.close()
    out = {"url": url.redacted, "dialect": url.dialect, "schema_version": version,
           "streams": [{"stream_id": s, "stream": streams.describe(s), "applied_seq": q, "applied_ts_ns": ts,
                        "updated_ns": u} for s, q, ts, u in tips], "rows": counts}
    if args.json:
        print_json(out)
        return 0
    print(f"database        {out['url']} ({url.dialect}), schema version {version}")
    for s in out["streams"]:
        print(f"  {s['stream']:<12} applied seq {s['applied_seq']}")
    for t, n in counts.items():
        print(f"  {t:<18} {n if n is not None else '-'} rows")
    return 0
