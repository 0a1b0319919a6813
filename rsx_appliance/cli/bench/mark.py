"""`rsx bench mark`: a source tick to every risk shard, through the real `rsx mark` process (specs/mark.md 8).

Driver (not the production library): a file source whose every tick moves the
index, `--shards` stand-in risk endpoints (CMP receivers, one thread each),
and per tick the time from the tick's arrival in the mark process
(MARK_PRICE.source_ts_ns) to its arrival at the last shard. Every record is
journaled and fdatasynced before it leaves, so the WAL's sync is in the path.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

TARGET_P99_NS = 1_000_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mark", help="mark publication: source tick -> every risk shard",
                       description="The real `rsx mark` process with a file source; stand-in risk shards "
                                   "receive the journaled MARK_PRICE records over CMP.")
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--ticks", type=int, default=5000)
    p.add_argument("--rate", type=int, default=500, help="ticks per second (at most 1000: the file has ms times)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ... import cmp
    from ...latency import Histogram
    from ...latency.machine import CpuAccount, cpu_snapshot
    from ...records import RecordType
    from ._md_feed import bench_config

    rate = max(1, min(args.rate, 1000))
    work = Path(tempfile.mkdtemp(prefix="rsx-bench-mark-"))
    ticks = work / "ticks.csv"
    step = 1000 // rate
    # prices walk up and down one tick at a time: every tick changes the index (min_sources = 1)
    ticks.write_text("ts_ms,symbol,price\n" + "".join(
        f"{i * step},BTC-PERP,{60000 + (i % 100 if (i // 100) % 2 == 0 else 100 - i % 100) * 0.5:.1f}\n"
        for i in range(args.ticks + 1)))
    toml, cfg = bench_config(work, textwrap.dedent(f"""\
        [risk]
        shards = {args.shards}
        [mark]
        min_sources = 1
        publish_ms = 60000
        [[mark.sources]]
        kind = "file"
        path = "{ticks}"
        loop = false
        """))
    stream = cfg.process("mark.0").stream_id
    stop = threading.Event()
    got: list[dict[int, tuple[int, int]]] = [dict() for _ in range(args.shards)]

    def shard(i: int) -> None:
        with cmp.Endpoint("udp", cfg.process(f"risk.{i}").cmp, mode="sleep") as ep:
            rx = ep.receiver(stream)
            while not stop.is_set():
                b = rx.receive(1024, timeout=0.05)
                t = time.time_ns()
                if len(b):
                    p = b.records(RecordType.MARK_PRICE)
                    seqs, srcs = p["payload"]["seq"], p["payload"]["source_id"]
                    ts = p["payload"]["source_ts_ns"]
                    for s, src, st in zip(seqs.tolist(), srcs.tolist(), ts.tolist()):
                        if src == 0:
                            got[i][s] = (st, t)

    threads = [threading.Thread(target=shard, args=(i,), daemon=True) for i in range(args.shards)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    result: dict = {"shards": args.shards, "ticks": args.ticks, "rate": rate, "target_p99_ns": TARGET_P99_NS}
    proc = None
    try:
        cpu0 = cpu_snapshot()
        proc = subprocess.Popen([sys.executable, "-c", "import sys; from rsx_appliance.cli import main; "
                                 "sys.exit(main())", "mark", "--config", str(toml), "--data", str(work / "data"),
                                 "--json"], stdout=subprocess.PIPE, text=True)
        result["ready"] = json.loads(proc.stdout.readline())
        time.sleep(args.ticks / rate + 1.5)
        status = json.loads((work / "data" / "run" / "mark.0.json").read_text())
        cpu = CpuAccount.between(cpu0, cpu_snapshot((proc.pid,)))
    finally:
        stop.set()
        for t in threads:
            t.join(2)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    common = set.intersection(*(set(g) for g in got)) if got else set()
    lat = np.array([max(g[s][1] for g in got) - got[0][s][0] for s in sorted(common)], dtype=np.int64)
    h = Histogram()
    if len(lat):
        h.record(np.maximum(lat, 0))
    s = h.summary()
    result.update({
        "marks_at_every_shard": len(common), "marks_published": status["counters"].get("marks_published"),
        "wal_sync_ns_max": status["counters"].get("sync_ns_max"),
        "latency_ns": {k: s[k] for k in ("min", "p50", "p90", "p99", "p99_9", "max", "mean")},
        "cpu": cpu.to_dict(),
        "meets_target": bool(len(lat) and s["p99"] <= TARGET_P99_NS),
    })
    if args.json:
        print(json.dumps(result))
    else:
        lt = result["latency_ns"]
        print(f"{len(common)} marks at all {args.shards} shards: p50 {(lt['p50'] or 0) / 1e3:.0f} us, "
              f"p99 {(lt['p99'] or 0) / 1e3:.0f} us, max {(lt['max'] or 0) / 1e3:.0f} us; "
              f"target met: {result['meets_target']}")
    return 0 if len(common) else 1
