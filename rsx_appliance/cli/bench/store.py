"""`rsx bench store`: history store ingest, fills per second into SQLite and PostgreSQL (one JSON object).

    rsx bench store [--backend sqlite|postgresql|both] [--fills N] [--pg-url URL]

An ME stream of N fills (makers resting, takers crossing them; one CONFIG_APPLIED first) is
written to a WAL and read back as DXS-shaped batches (not timed); then the store's writer
path (conversion with numpy, fees through the C ledger, one transaction per --batch records)
runs into a fresh database, timed from the first batch to the last commit. PostgreSQL needs
--pg-url (an empty database the benchmark may write). Targets: 200 000 fills/s into SQLite,
100 000 into PostgreSQL. Wall-clock figures on a shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

TARGETS = {"sqlite": 200_000, "postgresql": 100_000}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="history store: ingest fills/s into SQLite and PostgreSQL",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    p.add_argument("--fills", type=int, default=500_000, help="fills in the stream (default 500 000)")
    p.add_argument("--batch", type=int, default=50_000, help="records per transaction (default 50 000)")
    p.add_argument("--pg-url", help="an empty PostgreSQL database to write (postgresql://...)")
    p.set_defaults(func=run)


def _stream(directory: str, n: int):
    """A WAL of one CONFIG_APPLIED and n FILLs; returns DXS-shaped batches read back."""
    import numpy as np

    from ...config import load_config
    from ...records import PAYLOAD_DTYPES, RecordType
    from ...wal import WalReader, WalWriter

    spec = load_config().symbol(1)
    rng = np.random.default_rng(1)
    with WalWriter(directory, 1, sync="none", prealloc=False, retain_s=None) as w:
        fields = {k: int(v) for k, v in spec.numbers.record_fields().items() if k != "symbol_id"}
        w.append(RecordType.CONFIG_APPLIED, symbol_id=1, **fields)
        p = np.zeros(n, dtype=PAYLOAD_DTYPES[RecordType.FILL])
        p["ts_ns"] = time.time_ns() + np.arange(n) * 1000
        p["symbol_id"] = 1
        p["taker_user_id"] = rng.integers(1, 1000, n)
        p["maker_user_id"] = rng.integers(1, 1000, n)
        ids = np.arange(1, 2 * n + 1, dtype=">u8")
        oid = np.zeros((2 * n, 2), dtype=">u8")
        oid[:, 0] = (time.time_ns() // 1_000_000) << 16 | 0x7000
        oid[:, 1] = ids
        taker = oid[:n].copy().view("V16").ravel()
        maker = oid[n + (np.arange(n) // 4)].copy().view("V16").ravel()  # a maker fills 4 takers
        p["taker_order_id"], p["maker_order_id"] = taker, maker
        p["price"] = spec.reference_price + rng.integers(-50, 50, n) * spec.numbers.tick_size
        p["qty"] = spec.numbers.lot_size * rng.integers(1, 20, n)
        p["taker_side"] = rng.integers(0, 2, n)
        w.append_batch(RecordType.FILL, p)
        w.flush()
    with WalReader(directory, 1) as r:
        r.seek(0)
        return [b for b in r]


def _ingest(url: str, batches, batch_records: int) -> dict:
    from ...store.db import open_database
    from ...store.ingest import Ingest
    from ...store.schema import migrate
    from ...store.writer import Writer

    db = open_database(url)
    migrate(db)
    ingest = Ingest(6)
    writer = Writer(db, ingest)
    fills = records = 0
    t0 = time.perf_counter()
    group, n = [], 0
    for b in batches + [None]:
        if b is not None:
            group.append((1, b))
            n += len(b)
        if group and (b is None or n >= batch_records):
            t = ingest.convert(group)
            writer.write(t)
            fills += t.nfills
            records += t.records
            group, n = [], 0
    elapsed = time.perf_counter() - t0
    (stored,), = db.query("SELECT COUNT(*) FROM fills")
    db.close()
    return {"fills": fills, "records": records, "stored_fills": stored, "seconds": round(elapsed, 3),
            "fills_per_s": round(fills / elapsed), "transactions": writer.transactions}


def run(args: argparse.Namespace) -> int:
    out = {"bench": "store", "fills": args.fills, "batch": args.batch, "targets_fills_per_s": TARGETS,
           "results": {}}
    with tempfile.TemporaryDirectory(prefix="rsx-bench-store-") as d:
        batches = _stream(f"{d}/wal", args.fills)
        if args.backend in ("sqlite", "both"):
            out["results"]["sqlite"] = _ingest(f"sqlite:{d}/h.db", batches, args.batch)
        if args.backend in ("postgresql", "both"):
            if not args.pg_url:
                out["results"]["postgresql"] = {"skipped": "no --pg-url given"}
            else:
                out["results"]["postgresql"] = _ingest(args.pg_url, batches, args.batch)
    for k, r in out["results"].items():
        if "fills_per_s" in r:
            r["meets_target"] = r["fills_per_s"] >= TARGETS[k]
    print(json.dumps(out, indent=2))
    return 0
