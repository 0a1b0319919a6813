"""`rsx bench marketdata`: N WebSocket subscribers of one symbol's depth at R book updates/s (specs/marketdata.md 6).

Driver (this module, not the production library): a stand-in ME (the C book's
records, pre-framed, appended to a WAL served by DXS and sent over CMP on an
open-loop schedule), the real `rsx marketdata` process, and a C load client
(md_client.c, compiled here with gcc) holding every connection. Latency of a
book update = the client's receive time of the D that carries it - the time
the update was scheduled to leave the ME (so a stall anywhere counts).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

from .._common import CliError, EnvironmentRefused, add_json, print_json

TARGET_P99_NS = 5_000_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("marketdata", help="public feed: delivery latency to many depth subscribers",
                       description="A stand-in ME offers book updates at a fixed rate to the real `rsx "
                                   "marketdata` process; a C client holds the subscribers, checks every "
                                   "delta chain and timestamps every frame.\n\n"
                                   "Exit codes: 0 done (target met or not), 1 a delta went missing, 2 bad "
                                   "usage, 3 no C compiler for the load client.")
    p.add_argument("--subscribers", type=int, default=1000, help="WebSocket subscribers (default 1000)")
    p.add_argument("--rate", type=int, default=10_000, help="book updates offered per second (default 10000)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of offered load (default 10)")
    p.add_argument("--depth", type=int, default=20, help="depth levels of the subscription (default 20)")
    p.add_argument("--warm", type=int, default=2000,
                   help="requests in the WAL before marketdata starts (default 2000)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ...latency import Histogram
    from ...latency.machine import CpuAccount, cpu_snapshot
    from ._md_feed import StandinFeed, bench_config

    from ...launch import rsx_argv

    if args.subscribers < 1 or args.rate < 1 or args.duration <= 0 or args.depth < 1 or args.warm < 0:
        raise CliError("--subscribers, --rate and --depth must be >= 1, --duration > 0, --warm >= 0")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise EnvironmentRefused("needs gcc (or cc) to build the load client")
    work = Path(tempfile.mkdtemp(prefix="rsx-bench-md-"))
    client_bin = work / "md_client"
    subprocess.run([cc, "-O2", "-o", str(client_bin), str(Path(__file__).with_name("md_client.c"))], check=True)
    toml, cfg = bench_config(work, textwrap.dedent(f"""\
        [marketdata]
        port = {{md_port}}
        depth = {args.depth}
        max_connections = {args.subscribers + 100}
        """))
    feed = StandinFeed(cfg, "BTC-PERP", work / "me-wal", depth=args.depth)
    n_live = int(args.rate * args.duration)
    feed.prepare(args.warm, n_live)
    md = client = None
    result: dict = {"benchmark": "marketdata", "subscribers": args.subscribers, "rate_per_s": args.rate,
                    "duration_s": args.duration, "depth": args.depth, "target_p99_ns": TARGET_P99_NS}
    try:
        feed.start()
        md = subprocess.Popen(rsx_argv("marketdata", "--config", str(toml), "--data", str(work / "data"), "--json"),
                              stdout=subprocess.PIPE, text=True)
        ready = json.loads(md.stdout.readline())
        host, port = cfg.marketdata.listen, cfg.marketdata.port
        client = subprocess.Popen([str(client_bin), host, str(port), str(args.subscribers), '{"S":[1,2]}',
                                   str(work / "rows.bin")], stdout=subprocess.PIPE, text=True)
        line = client.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError(f"load client did not get ready: {line}")
        result["connected"] = int(line[1])
        cpu0 = cpu_snapshot((md.pid, client.pid))
        md_cpu0 = _proc_cpu(md.pid)
        offered = feed.run_live(args.rate)
        time.sleep(1.0)                           # let the last deltas arrive
        md_cpu = _proc_cpu(md.pid) - md_cpu0
        cpu = CpuAccount.between(cpu0, cpu_snapshot((md.pid, client.pid)))
        client.send_signal(signal.SIGINT)
        counts = json.loads(client.stdout.read().strip().splitlines()[-1])
        client.wait(10)
        status = json.loads((work / "data" / "run" / "marketdata.0.json").read_text())
        rows = np.fromfile(work / "rows.bin", dtype=[("conn", "<u8"), ("u", "<u8"), ("pu", "<u8"),
                                                     ("recv", "<u8")])
        # latency of every live request at every connection: the D whose (pu, u] holds its last seq
        last_seq, due = feed.live_last_seq, feed.live_due_ns
        h = Histogram()
        for start in range(0, len(rows), 200_000):
            r = rows[start:start + 200_000]
            lo = np.searchsorted(last_seq, r["pu"], "right")
            hi = np.searchsorted(last_seq, r["u"], "right")
            cnt = (hi - lo).astype(np.int64)
            total = int(cnt.sum())
            if not total:
                continue
            first = np.repeat(lo, cnt)
            step = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            lat = np.repeat(r["recv"].astype(np.int64), cnt) - due[first + step]
            h.record(np.maximum(lat, 0))
        delivered = h.total
        expected = offered * int(counts["connected"])
        summary = h.summary("ns")
        result.update({
            "ready": ready, "offered": offered, "offered_rate_per_s": round(offered / feed.live_wall_s, 1),
            "deliveries": delivered, "deliveries_expected": expected,
            "every_delta_delivered": delivered == expected and counts["broken"] == 0,
            "client": counts, "server_counters": status.get("counters", {}),
            "latency": summary, "server_cpu_s": round(md_cpu, 3), "cpu": cpu.to_dict(),
            "meets_target": bool(delivered and summary["p99_ns"] <= TARGET_P99_NS and delivered == expected),
        })
    finally:
        for p in (client, md):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
            if p is not None:
                p.stdout.close()
        feed.close()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print_json(result)
    else:
        lat = result.get("latency") or {}
        print(f"{result.get('connected')} subscribers, {result.get('offered')} updates at "
              f"{result.get('offered_rate_per_s')}/s: p50 {(lat.get('p50_ns') or 0) / 1e6:.2f} ms, "
              f"p99 {(lat.get('p99_ns') or 0) / 1e6:.2f} ms, max {(lat.get('max_ns') or 0) / 1e6:.2f} ms; "
              f"every delta delivered: {result.get('every_delta_delivered')}; "
              f"target met: {result.get('meets_target')}")
    return 0 if result.get("every_delta_delivered") else 1


def _proc_cpu(pid: int) -> float:
    import psutil
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system
