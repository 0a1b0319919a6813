"""`rsx bench wal`: WAL and DXS benchmarks (text, or one JSON object with --json).

Cases (issue 4 targets):
  append   in-memory append of 64-byte-payload records from C   (target >= 10 M/s)
  durable  group-commit throughput, every record synced before it
           is reported durable                                  (target >= 1 M/s)
  latency  append -> durable at a steady rate, vs a bare
           write + fsync of one record in the same run          (target p50 <= 1.5x bare)
  replay   DXS replay to a local consumer (server in its own
           process, consumer hands numpy batches)               (target >= 2 M/s)
  all      every case

Latencies are nanosecond samples recorded from C into numpy arrays, then
into latency histograms (rsx_appliance.latency) for the percentiles; `--save
FILE` writes the latency case's median run as a run file for `rsx report`.

Exit codes: 0 done (targets met or not: see meets_target), 2 bad usage, 3 the
directory cannot be written.
"""

from __future__ import annotations

import argparse

from .._common import CliError, Progress, add_json, print_json, print_text

DEFAULTS = {"append": 10_000_000, "durable": 5_000_000, "latency": 20_000, "replay": 10_000_000}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("wal", help="WAL append / durable / latency and DXS replay", description=__doc__)
    p.add_argument("case", nargs="?", default="all", choices=["append", "durable", "latency", "replay", "all"],
                   help="which case to run (default all)")
    p.add_argument("--records", type=int, help="records per case (default: append 10M, durable 5M, "
                                               "latency 20k, replay 10M)")
    p.add_argument("--rate", type=int, default=10_000, help="latency case: records per second (default 10000)")
    p.add_argument("--dir", default=".", help="where to put the WAL: a real disk for durable and latency "
                                              "(default: the current directory)")
    p.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported (default 3)")
    p.add_argument("--short", action="store_true", help="tiny sizes: check that it runs")
    add_json(p)
    p.add_argument("--save", metavar="FILE", help="latency case: write the median run's histograms "
                   "(wal append->durable, bare fsync, bare fdatasync) as a run file for `rsx report`")
    p.set_defaults(func=run)


def _pct(hist, q):
    return float(hist.percentile(q)) if hist.total else 0.0


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def bench_append(base, n: int, repeat: int) -> dict:
    import tempfile

    from ..._bench import ffi, lib
    from ...errors import check

    rates = []
    o = ffi.new("struct rsx_wal_bench *")
    shm = "/dev/shm" if __import__("os").path.isdir("/dev/shm") else base
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=shm, prefix="rsx-bench-append-") as d:
            check(lib.rsx_wal_bench_append(d.encode(), n, 65536, o), "bench append")
            rates.append(o.records / (o.elapsed_ns / 1e9))
    r = _median(rates)
    return {"case": "append", "records": n, "record_bytes": 80, "payload_bytes": 64,
            "records_per_s": round(r), "ns_per_record": round(1e9 / r, 2),
            "runs_records_per_s": [round(x) for x in rates],
            "target_records_per_s": 10_000_000, "meets_target": r >= 10_000_000,
            "how": "C loop of rsx_wal_append into the ring (64 Ki records per round); "
                   "only appends timed; the ring is drained untimed between rounds"}


def bench_durable(base, n: int, repeat: int) -> dict:
    import tempfile

    from ..._bench import ffi, lib
    from ...errors import check

    runs = []
    o = ffi.new("struct rsx_wal_bench *")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=base, prefix="rsx-bench-durable-") as d:
            check(lib.rsx_wal_bench_durable(d.encode(), n, 0, 0, o), "bench durable")
            runs.append({"records_per_s": o.records / (o.elapsed_ns / 1e9), "batches": o.batches,
                         "avg_batch": o.records / max(o.batches, 1),
                         "avg_sync_us": o.sync_ns_total / max(o.batches, 1) / 1e3,
                         "max_sync_us": o.sync_ns_max / 1e3, "stalls": o.stalls,
                         "rotations": o.rotations})
    med = sorted(runs, key=lambda x: x["records_per_s"])[len(runs) // 2]
    r = med["records_per_s"]
    return {"case": "durable", "records": n, "record_bytes": 80, "records_per_s": round(r),
            "mb_per_s": round(r * 80 / 1e6, 1), "batches": med["batches"],
            "avg_batch_records": round(med["avg_batch"], 1), "avg_sync_us": round(med["avg_sync_us"], 1),
            "max_sync_us": round(med["max_sync_us"], 1), "appender_stalls": med["stalls"],
            "rotations": med["rotations"], "runs_records_per_s": [round(x["records_per_s"]) for x in runs],
            "target_records_per_s": 1_000_000, "meets_target": r >= 1_000_000,
            "how": "one C appender as fast as it can; flusher thread: one write + one fdatasync "
                   "per batch; timed from the first append until the last record is durable"}


def bench_latency(base, n: int, rate: int, repeat: int, blocks: int = 4, save: str | None = None) -> dict:
    """WAL latency and the bare baseline, interleaved in blocks so both see the same disk."""
    import os
    import tempfile

    import numpy as np

    from ..._bench import ffi, lib
    from ...errors import check
    from ...latency import Histogram, write_run

    def ptr(a):
        return ffi.cast("uint64_t *", a.ctypes.data)

    runs = []
    o = ffi.new("struct rsx_wal_bench *")
    per = max(n // blocks, 1)
    nb = max(min(per, 2000), 1)
    for _ in range(repeat):
        lat, lat_s, fsync, fdatasync = [], [], [], []
        batches = syncs = 0
        sync_ns = 0
        with tempfile.TemporaryDirectory(dir=base, prefix="rsx-bench-latency-") as d:
            for b in range(blocks):
                for out, full in ((fsync, 1), (fdatasync, 0)):
                    a = np.zeros(nb, dtype=np.uint64)
                    check(lib.rsx_wal_bench_bare_sync(os.path.join(d, "bare").encode(), nb, 80,
                                                      rate, full, ptr(a)), "bench bare sync")
                    out.append(a)
                x = np.zeros(per, dtype=np.uint64)
                y = np.zeros(per, dtype=np.uint64)
                check(lib.rsx_wal_bench_latency(os.path.join(d, f"wal{b}").encode(), per, rate, 0,
                                                1, 0, ptr(x), ptr(y), o), "bench latency")
                lat.append(x)
                lat_s.append(y)
                batches += o.batches
                sync_ns += o.sync_ns_total
        hists = {}
        for stage, parts in (("wal_append_to_durable", lat), ("wal_scheduled_to_durable", lat_s),
                             ("bare_write_fsync", fsync), ("bare_write_fdatasync", fdatasync)):
            hists[stage] = Histogram()
            hists[stage].record(np.concatenate(parts).astype(np.int64))
        wal, bare = hists["wal_append_to_durable"], hists["bare_write_fsync"]
        runs.append({"hists": hists, "p50_ratio": _pct(wal, 50) / max(_pct(bare, 50), 1e-9),
                     "avg_batch_records": round(wal.total / max(batches, 1), 2),
                     "avg_sync_us": round(sync_ns / max(batches, 1) / 1e3, 2)})
    med = sorted(runs, key=lambda r: r["p50_ratio"])[len(runs) // 2]
    hists = med["hists"]
    if save:
        write_run(save, hists, offered_rate=rate, load_mode="open-loop",
                  description="WAL append -> durable at a fixed rate vs a bare write + sync, same run",
                  setup={"records": n, "record_bytes": 80, "dir": base})
    out = {"case": "latency", "records": n, "rate_per_s": rate, "record_bytes": 80,
           "latency": {stage: h.summary("us") for stage, h in hists.items()},
           "p50_ratio": round(med["p50_ratio"], 3), "avg_batch_records": med["avg_batch_records"],
           "avg_sync_us": med["avg_sync_us"]}
    out.update({"runs_p50_ratio": [round(r["p50_ratio"], 3) for r in runs], "target_p50_ratio": 1.5,
                "percentiles": "from rsx_appliance.latency histograms (3 significant digits)",
                "meets_target": med["p50_ratio"] <= 1.5,
                "how": f"open loop at a fixed rate from C, in {blocks} blocks interleaved with the "
                       "baseline; wal_append_to_durable = durable callback time - append call time "
                       "(wal_scheduled_to_durable from the scheduled time instead); bare = write(80 B) + "
                       "fsync (or fdatasync) of a growing file at the same rate; p50_ratio = WAL p50 / "
                       "bare write + fsync p50"})
    return out


def bench_replay(base, n: int, repeat: int) -> dict:
    import asyncio
    import json
    import os
    import subprocess
    import tempfile
    import time

    import numpy as np

    from ...launch import rsx_argv
    from ...dxs import DxsConsumer
    from ...records import PAYLOAD_DTYPES, RecordType
    from ...wal import WalWriter

    rates = []
    with tempfile.TemporaryDirectory(dir=base, prefix="rsx-bench-replay-") as d:
        wal = os.path.join(d, "wal")
        with WalWriter(wal, 1, sync="none", prealloc=False) as w:
            chunk = np.zeros(min(n, 1 << 18), dtype=PAYLOAD_DTYPES[RecordType.ORDER_INSERTED])
            chunk["qty"] = 1
            chunk["ts_ns"] = time.time_ns()
            left = n
            while left:
                k = min(left, len(chunk))
                w.append_batch(RecordType.ORDER_INSERTED, chunk[:k])
                left -= k
        srv = subprocess.Popen(rsx_argv("dxs", "serve", "--wal", wal, "--port", "0", "--json"),
                               stdout=subprocess.PIPE, text=True)
        try:
            line = srv.stdout.readline()
            if not line:
                raise RuntimeError(f"rsx dxs serve exited with code {srv.wait(10)} before listening")
            port = int(json.loads(line)["port"])

            async def once() -> tuple[float, int]:
                c = DxsConsumer(("127.0.0.1", port), 1, from_seq=1)
                got = total = 0
                t0 = time.perf_counter()
                async for b in c:
                    got += len(b)
                    total += int(b.view(RecordType.ORDER_INSERTED)["payload"]["qty"].sum())
                    if b.caught_up:
                        break
                dt = time.perf_counter() - t0
                await c.close()
                if got != n or total != n:
                    raise RuntimeError(f"replay delivered {got} records (qty sum {total}), expected {n}")
                return dt, got

            for _ in range(repeat):
                dt, got = asyncio.run(once())
                rates.append(got / dt)
        finally:
            srv.terminate()
            srv.wait(10)
            srv.stdout.close()
    r = _median(rates)
    return {"case": "replay", "records": n, "record_bytes": 80, "records_per_s": round(r),
            "mb_per_s": round(r * 80 / 1e6, 1), "runs_records_per_s": [round(x) for x in rates],
            "target_records_per_s": 2_000_000, "meets_target": r >= 2_000_000,
            "how": "`rsx dxs serve` in its own process over a WAL of n records; DxsConsumer from "
                   "seq 1 to CAUGHT_UP over loopback, summing a field per batch through numpy views"}


def run(args: argparse.Namespace) -> int:
    import os

    if args.repeat < 1 or (args.records is not None and args.records < 1) or args.rate < 1:
        raise CliError("--repeat, --records and --rate must be >= 1")
    base = os.path.abspath(args.dir)
    os.makedirs(base, exist_ok=True)
    # latency first: the big writes of the other cases leave writeback and discards behind them
    cases = ["latency", "append", "durable", "replay"] if args.case == "all" else [args.case]
    results = []
    with Progress("rsx bench wal", total=len(cases), unit="cases") as bar:
        for i, case in enumerate(cases):
            bar.update(i, label=f"rsx bench wal: {case}")
            n = args.records or DEFAULTS[case]
            repeat = args.repeat
            if args.short:
                n = min(n, {"append": 200_000, "durable": 100_000, "latency": 500, "replay": 100_000}[case])
                repeat = 1
            if case == "append":
                results.append(bench_append(base, n, repeat))
            elif case == "durable":
                results.append(bench_durable(base, n, repeat))
            elif case == "latency":
                results.append(bench_latency(base, n, args.rate, repeat, save=args.save))
            else:
                results.append(bench_replay(base, n, repeat))
            os.sync()
    out = {"benchmark": "wal", "dir": base, "cases": results}
    if args.json:
        print_json(out)
    else:
        print_text(out)
    return 0
