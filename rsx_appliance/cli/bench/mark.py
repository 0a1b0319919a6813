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
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from .._common import CliError, add_json, print_json

TARGET_P99_NS = 1_000_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mark", help="mark publication: source tick -> every risk shard",
                       description="The real `rsx mark` process with a file source; stand-in risk shards "
                                   "receive the journaled MARK_PRICE records over CMP. Latency per tick: its "
                                   "arrival in the mark process to its arrival at the last shard.\n\n"
                                   "Exit codes: 0 done (target met or not), 1 no mark reached every shard, "
                                   "2 bad usage.")
    p.add_argument("--shards", type=int, default=2, help="stand-in risk shards (default 2)")
    p.add_argument("--ticks", type=int, default=5000, help="source ticks to send (default 5000)")
    p.add_argument("--rate", type=int, default=500,
                   help="ticks per second, at most 1000: the file has ms times (default 500)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ... import cmp
    from ...launch import rsx_argv
    from ...latency import Histogram
    from ...latency.machine import CpuAccount, cpu_snapshot
    from ...records import RecordType
    from ._md_feed import bench_config

    if args.shards < 1 or args.ticks < 1 or args.rate < 1:
        raise CliError("--shards, --ticks and --rate must be >= 1")
    rate = min(args.rate, 1000)
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
    result: dict = {"benchmark": "mark", "shards": args.shards, "ticks": args.ticks, "rate_per_s": rate,
                    "target_p99_ns": TARGET_P99_NS}
    proc = None
    try:
        cpu0 = cpu_snapshot()
        proc = subprocess.Popen(rsx_argv("mark", "--config", str(toml), "--data", str(work / "data"), "--json"),
                                stdout=subprocess.PIPE, text=True)
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
        if proc is not None:
            proc.stdout.close()
        shutil.rmtree(work, ignore_errors=True)
    common = set.intersection(*(set(g) for g in got)) if got else set()
    lat = np.array([max(g[s][1] for g in got) - got[0][s][0] for s in sorted(common)], dtype=np.int64)
    h = Histogram()
    if len(lat):
        h.record(np.maximum(lat, 0))
    s = h.summary("ns")
    result.update({
        "marks_at_every_shard": len(common), "marks_published": status["counters"].get("marks_published"),
        "max_wal_sync_ns": status["counters"].get("sync_ns_max"),
        "latency": s, "cpu": cpu.to_dict(),
        "meets_target": bool(len(lat) and s["p99_ns"] <= TARGET_P99_NS),
    })
    if args.json:
        print_json(result)
    else:
        print(f"{len(common)} marks at all {args.shards} shards: p50 {(s['p50_ns'] or 0) / 1e3:.0f} us, "
              f"p99 {(s['p99_ns'] or 0) / 1e3:.0f} us, max {(s['max_ns'] or 0) / 1e3:.0f} us; "
              f"target met: {result['meets_target']}")
    return 0 if len(common) else 1
