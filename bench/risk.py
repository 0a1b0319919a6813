#!/usr/bin/env python3
"""Risk benchmarks: one JSON object on stdout.

    python bench/risk.py [--quick] [--only pretrade,fills,mark,recovery,cascade,cmp]

- pretrade, fills, mark, recovery: the library's targets, exactly `rsx bench risk` (specs/risk.md 13).
- cascade: the process loop's own code (ShardRunner) on a real journal (fsync) and real UDP sockets:
  100 000 exposed users, one mark drop makes 10 000 of them liquidatable while a load process keeps
  sending orders; the time from the drop to the last liquidation order handed to the kernel (and seen
  by the ME's socket), the longest stretch the loop did not look at its inputs, and how long orders
  waited in the shard meanwhile (risk_out_ts - gateway_ts of every order forwarded). Targets: <= 50 ms,
  <= 1 ms.
- cmp: `rsx risk serve` as a process over CMP on loopback, a load process as gateway and stand-in ME:
  NEW_ORDER batches on the gateway link (counted when they reach the ME link: checked and forwarded),
  then FILL records on the journaled ME stream at a fixed rate (the shard's applied seq from its status
  file). Targets: >= 200 000 orders/s, >= 300 000 fills/s.

Wall-clock figures on a shared 2-core machine are indicative (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEC = 1_000_000_000


def _percentiles(ns: np.ndarray) -> dict:
    from rsx_appliance.latency import Histogram

    if not len(ns):
        return {"n": 0}
    h = Histogram()
    h.record(np.maximum(ns, 0))
    p = h.percentiles([50, 99, 99.9, 100])
    return {"n": int(len(ns)), "p50_us": p[50] / 1e3, "p99_us": p[99] / 1e3, "p999_us": p[99.9] / 1e3,
            "max_us": float(ns.max()) / 1e3}


# --------------------------------------------------------------------------- cascade

def _cascade_load(conn, rate: int, seconds: float, gw_stream: int, me_stream: int) -> None:
    """A gateway (orders at `rate`/s on its link) and an ME socket (counts what the shard forwards)."""
    from rsx_appliance.cmp import Endpoint
    from rsx_appliance.records import RECORD_DTYPES, RecordType
    from rsx_appliance.risk._benchlib import order_records
    from rsx_appliance.risk.links import Link

    ep = Endpoint("udp", ("127.0.0.1", 0), mode="busy")
    rx = ep.receiver(me_stream, window=1 << 16, link=True)
    conn.send(ep.local)
    shard_addr = conn.recv()
    link = Link(gw_stream, ep.sender(gw_stream, [shard_addr], ring_size=1 << 15))
    conn.recv()                                         # go
    n_total = int(rate * seconds)
    rng = np.random.default_rng(9)
    users = rng.integers(1, 1001, n_total)             # the first 1 000 users: never liquidated
    buf = bytearray(order_records(users, rng.integers(0, 2, n_total), np.full(n_total, 4_990_000),
                                  np.full(n_total, 10), first_id=1 << 40))
    recs = np.frombuffer(buf, dtype=RECORD_DTYPES[RecordType.NEW_ORDER])
    size = recs.dtype.itemsize
    lat, liq_times = [], []
    start = time.monotonic_ns()
    sent = 0
    step = max(1, rate // 2000)                         # a batch every 0.5 ms
    while True:
        now = time.monotonic_ns()
        due = min(n_total, (now - start) * rate // SEC)
        if sent < due:
            k = min(step, due - sent)
            recs["payload"]["gateway_ts_ns"][sent:sent + k] = time.time_ns()
            from rsx_appliance.records import seal_many
            seal_many(recs[sent:sent + k])
            link.push(memoryview(buf)[sent * size:(sent + k) * size])
            link.flush(0)
            sent += k
        ep.poll(0)
        b = rx.read(1024)
        if len(b):
            o = b.records(RecordType.NEW_ORDER)["payload"]
            t = time.time_ns()
            liq = (o["flags"] & 4) != 0
            liq_times.extend([t] * int(liq.sum()))
            lat.extend((o["risk_out_ts_ns"][~liq].astype(np.int64) - o["gateway_ts_ns"][~liq].astype(np.int64)).tolist())
        if conn.poll():
            if conn.recv() == "stop":
                break
    conn.send({"sent": sent, "latency_ns": lat, "liq_count": len(liq_times),
               "liq_last_ns": max(liq_times) if liq_times else 0, "liq_first_ns": min(liq_times) if liq_times else 0})
    ep.close()


def bench_cascade(exposed: int, liquidated: int, rate: int, tmp: str) -> dict:
    from rsx_appliance.cmp import Endpoint
    from rsx_appliance.config import streams
    from rsx_appliance.risk import WalJournal, shard_stream_id
    from rsx_appliance.risk._benchlib import PRICE, fill_records, make_shard
    from rsx_appliance.risk.serve import Feed, GatewayWire, MeWire, ShardRunner, Wiring

    # users 1..exposed long q at PRICE; the last `liquidated` of them with thin margin: a 6 % drop
    # takes them below maintenance (equity 3 % < MM 4.7 %), the others stay safe
    q = 200_000
    v = PRICE * q // 100
    coll = np.full(exposed + 1, v * 30 // 100, dtype=np.int64)
    coll[exposed - liquidated:exposed] = v * 9 // 100
    coll[-1] = 10**17                                   # the market maker (user exposed + 1)
    t_setup = time.perf_counter()
    shard = make_shard(exposed + 1, 1, max_positions=exposed + 64, max_orders=1 << 20,
                       journal=WalJournal(Path(tmp) / "journal", shard_stream_id(0)), collateral=coll)
    users = np.arange(1, exposed + 1)
    shard.on_me(fill_records(1, 2, users, np.full(exposed, exposed + 1), np.zeros(exposed, dtype=np.int64),
                             np.full(exposed, PRICE), np.full(exposed, q)))
    shard.set_mark(1, PRICE)
    shard.durability, shard.scan_slice = "async", 10_000    # what the process runs
    setup_s = time.perf_counter() - t_setup

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    gw_stream, me_stream = streams.gateway_to_risk(0, 0), streams.risk_to_me(0, 1)
    load = ctx.Process(target=_cascade_load, args=(child, rate, 3.0, gw_stream, me_stream), daemon=True)
    load.start()
    load_addr = parent.recv()
    ep = Endpoint("udp", ("127.0.0.1", 0), mode="busy")
    wiring = Wiring(0, "risk.0", ep.local, None,
                    mes=(MeWire(1, Feed(1, None, "me.1"), me_stream, load_addr),),
                    gateways=(GatewayWire(0, gw_stream, streams.risk_to_gateway(0, 0), load_addr),))
    runner = ShardRunner(shard, ep, wiring, wait="spin", push_ms=0)
    parent.send(ep.local)
    parent.send("go")
    t_end = time.monotonic() + 1.0                      # orders flowing before the drop
    while time.monotonic() < t_end:
        runner.step(0)
    link = runner.me_links[1]
    rounds0 = int(shard.core.r.liq_rounds)
    runner.t.gap_ns = runner.t.longest_ns = runner.t.longest_cpu_ns = 0
    t_drop = time.time_ns()
    m0 = time.monotonic_ns()
    c0 = time.thread_time_ns()
    runner.dispatch(shard.set_mark(1, PRICE * 94 // 100))   # queued scan: the loop does it in slices
    done_ns = 0
    while time.monotonic_ns() - m0 < 2 * SEC:
        runner.step(0)
        if not done_ns and int(shard.core.r.liq_rounds) - rounds0 >= liquidated and not shard.queued \
                and not shard.outbox_pending and not link.pending:
            done_ns = time.monotonic_ns() - m0
            cpu_ns = time.thread_time_ns() - c0
            gap, longest, longest_cpu = runner.t.gap_ns, runner.t.longest_ns, runner.t.longest_cpu_ns
    if not done_ns:
        cpu_ns = time.thread_time_ns() - c0
        gap, longest, longest_cpu = runner.t.gap_ns, runner.t.longest_ns, runner.t.longest_cpu_ns
    parent.send("stop")
    res = parent.recv()
    load.join(5)
    ep.close()
    lat = np.asarray(res["latency_ns"], dtype=np.int64)
    during = lat[-max(1, len(lat) // 3):] if len(lat) else lat
    rounds = int(shard.core.r.liq_rounds) - rounds0
    liq_users = {int(u) for u in shard.core.accounts["user_id"][shard.core.liq_list[:shard.core.r.n_liq]]}
    expect = set(range(exposed - liquidated + 1, exposed + 1))
    shard.journal.close()
    return {"exposed_users": exposed, "liquidated": rounds, "setup_s": setup_s,
            "decided_and_placed_ms": done_ns / 1e6 if done_ns else None,
            "last_order_seen_by_me_ms": (res["liq_last_ns"] - t_drop) / 1e6 if res["liq_last_ns"] else None,
            "liquidation_orders_seen_by_me": res["liq_count"],
            "loop_cpu_ms": cpu_ns / 1e6,
            "longest_input_gap_ms": gap / 1e6, "longest_iteration_ms": longest / 1e6,
            "longest_iteration_cpu_ms": longest_cpu / 1e6,
            "orders_sent": res["sent"], "order_wait_in_shard": _percentiles(lat),
            "order_wait_last_second": _percentiles(during), "journal_batches": shard.stats["liq_slices"],
            "verified": rounds == liquidated and liq_users == expect and res["liq_count"] == liquidated
                        and shard.audit() == 0,
            "target": {"decided_and_placed_ms": 50, "longest_input_gap_ms": 1.0,
                       "met": bool(done_ns and done_ns <= 50e6 and gap <= 1e6)}}


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="pretrade,fills,mark,recovery,cascade,cmp")
    ap.add_argument("--rate", type=int, default=20_000, help="cascade: orders/s sent during the cascade")
    args = ap.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    bad = only - {"pretrade", "fills", "mark", "recovery", "cascade", "cmp"}
    if bad:
        print(f"bench/risk.py: unknown --only {sorted(bad)}", file=sys.stderr)
        return 2
    out: dict = {"bench": "risk", "quick": args.quick,
                 "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
                 "note": "wall-clock on a shared machine is indicative only", "results": {}}
    lib = only & {"pretrade", "fills", "mark", "recovery"}
    if lib:
        import contextlib
        import io

        from rsx_appliance.cli import main as rsx

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rsx(["bench", "risk", "--only", ",".join(sorted(lib))] + (["--quick"] if args.quick else []))
        out["results"].update(json.loads(buf.getvalue())["results"])
    if "cascade" in only:
        with tempfile.TemporaryDirectory(prefix="rsx-risk-cascade-", dir=os.environ.get("RSX_BENCH_DIR")) as tmp:
            out["results"]["cascade"] = bench_cascade(10_000 if args.quick else 100_000,
                                                      1_000 if args.quick else 10_000, args.rate, tmp)
    if "cmp" in only:
        from risk_cmp import bench_cmp   # bench/risk_cmp.py: the process over CMP

        out["results"]["cmp"] = bench_cmp(args.quick)
    print(json.dumps(out, indent=2))
    return 0 if all(r.get("verified", True) for r in out["results"].values()) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
