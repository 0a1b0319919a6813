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
  NEW_ORDER batches on the gateway link (counted when they reach the ME link: checked and forwarded);
  then, against a fresh shard, FILL records on the journaled ME stream at a fixed rate (the shard's
  applied seq from its status file). Targets: >= 200 000 orders/s, >= 300 000 fills/s.

Wall-clock figures on a shared 2-core machine are indicative (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEC = 1_000_000_000
USERS = 100                  # cmp: demo accounts trading


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

    # the load process is forked before the shard exists: a fork after it would make every page the
    # cascade writes copy-on-write (a fault per page, which the real process never pays)
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    gw_stream, me_stream = streams.gateway_to_risk(0, 0), streams.risk_to_me(0, 1)
    load = ctx.Process(target=_cascade_load, args=(child, rate, 3.0, gw_stream, me_stream), daemon=True)
    load.start()
    load_addr = parent.recv()
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
    from rsx_appliance.risk.shard import RECONCILE_SCAN

    # what the process runs: sliced revaluation and reconciliation (a shard made for the library
    # reconciles every order slot at once: with 1M slots, a multi-ms iteration once a second)
    shard.durability, shard.scan_slice, shard.reconcile_scan = "async", 10_000, RECONCILE_SCAN
    setup_s = time.perf_counter() - t_setup

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
    runner.t.gap_ns = runner.t.longest_ns = runner.t.slice_cpu_ns = 0
    t_drop = time.time_ns()
    m0 = time.monotonic_ns()
    c0 = time.thread_time_ns()
    w0 = runner.t.work_ns
    step_cpu = 0                                        # the longest iteration in CPU time (not descheduled)
    runner.dispatch(shard.set_mark(1, PRICE * 94 // 100))   # queued scan: the loop does it in slices
    done_ns = decided_ns = 0
    while time.monotonic_ns() - m0 < 2 * SEC:
        c1 = time.thread_time_ns()
        runner.step(0)
        step_cpu = max(step_cpu, time.thread_time_ns() - c1)
        if not decided_ns and int(shard.core.r.liq_rounds) - rounds0 >= liquidated and not shard.queued:
            decided_ns = time.monotonic_ns() - m0           # every decision taken and journaled (not yet synced)
        if not done_ns and int(shard.core.r.liq_rounds) - rounds0 >= liquidated and not shard.queued \
                and not shard.outbox_pending and not link.pending:
            done_ns = time.monotonic_ns() - m0
            cpu_ns, work_ns = time.thread_time_ns() - c0, runner.t.work_ns - w0
            gap, longest, longest_cpu = runner.t.gap_ns, runner.t.longest_ns, step_cpu
    if not done_ns:
        cpu_ns, work_ns = time.thread_time_ns() - c0, runner.t.work_ns - w0
        gap, longest, longest_cpu = runner.t.gap_ns, runner.t.longest_ns, step_cpu
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
            "decided_ms": decided_ns / 1e6 if decided_ns else None,
            "decided_and_placed_ms": done_ns / 1e6 if done_ns else None,
            "last_order_seen_by_me_ms": (res["liq_last_ns"] - t_drop) / 1e6 if res["liq_last_ns"] else None,
            "liquidation_orders_seen_by_me": res["liq_count"],
            "loop_cpu_ms": cpu_ns / 1e6, "loop_work_ms": work_ns / 1e6,
            "longest_input_gap_ms": gap / 1e6, "longest_iteration_ms": longest / 1e6,
            "longest_iteration_cpu_ms": longest_cpu / 1e6, "longest_slice_cpu_ms": runner.t.slice_cpu_ns / 1e6,
            "orders_sent": res["sent"], "order_wait_in_shard": _percentiles(lat),
            "order_wait_last_second": _percentiles(during), "journal_batches": shard.stats["liq_slices"],
            "verified": rounds == liquidated and liq_users == expect and res["liq_count"] == liquidated
                        and shard.audit() == 0,
            "target": {"decided_and_placed_ms": 50, "longest_input_gap_ms": 1.0,
                       "met": bool(done_ns and done_ns <= 50e6 and gap <= 1e6)}}


# --------------------------------------------------------------------------- cmp (the process)

def _cmp_config(data: Path, base: int, wait: str, max_orders: int) -> str:
    """The embedded default (specs/config.md 7) cut to BTC-PERP, one shard, one gateway, no mark process,
    on other ports, with USERS well funded demo accounts."""
    from rsx_appliance.config import DEFAULT_TOML

    text = DEFAULT_TOML[:DEFAULT_TOML.index("[[symbols]]\nid = 2")]
    accounts = ", ".join(f'{{ user_id = {u}, deposit = "100000000" }}' for u in range(1, USERS + 1))
    text = re.sub(r"accounts = \[.*?\n\]\n", f"accounts = [{accounts}]\n", text, flags=re.S)
    for old, new in (("base_port = 7400", f"base_port = {base}"), ('cmp_backend = "auto"', 'cmp_backend = "udp"'),
                     ("[marketdata]\n", "[marketdata]\ninstances = 0\n"),
                     ("[risk]\nshards = 1\n", f'[risk]\nwait = "{wait}"\nmax_accounts = 1000\nmax_orders = {max_orders}\n')):
        text = text.replace(old, new)
    return f'data_dir = "{data}"\n' + text + "[mark]\ninstances = 0\n[recorder]\ninstances = 0\n"




def _cmp_load(conn, cfg_path: str, n_orders: int, n_fills: int, fill_rate: int) -> None:
    """The gateway and the stand-in ME: orders in capacity mode, then fills at a fixed rate."""
    import asyncio
    import threading

    from rsx_appliance.cmp import Endpoint
    from rsx_appliance.codes import Reason
    from rsx_appliance.config import load_config, streams
    from rsx_appliance.dxs import DxsServer
    from rsx_appliance.records import RECORD_DTYPES, RecordType, encode
    from rsx_appliance.risk._benchlib import fill_records, order_records
    from rsx_appliance.risk.links import Link
    from rsx_appliance.wal import WalWriter

    cfg = load_config(cfg_path)
    me, gwp, risk = cfg.process("me.BTC-PERP"), cfg.process("gateway.0"), cfg.process("risk.0")
    spec = cfg.symbol(1)
    wal = WalWriter(me.data_dir / "wal", 1, retain_s=None, prealloc=False)
    wal.append(RecordType.CONFIG_APPLIED, **spec.numbers.record_fields(), funding_interval_s=28800,
               max_funding_rate_bps=75)
    wal.wait_durable(1)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def dxs() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(DxsServer(me.data_dir / "wal", 1, host=me.dxs[0], port=me.dxs[1]).start())
        started.set()
        loop.run_forever()

    threading.Thread(target=dxs, daemon=True).start()
    started.wait()
    # the load process is descheduled on a busy host: large socket buffers and NAK retries over ~32 ms, so
    # its own receivers do not count link losses the shard did not cause
    ep_me = Endpoint("udp", me.cmp, mode="busy", rcvbuf=32 << 20)
    sink = ep_me.receiver(streams.risk_to_me(0, 1), window=1 << 16, link=True, nak_max_retries=32)
    fills_tx = ep_me.sender(1, [risk.cmp], ring_size=1 << 16)
    ep_gw = Endpoint("udp", gwp.cmp, mode="busy", rcvbuf=32 << 20)
    orders_tx = Link(streams.gateway_to_risk(0, 0), ep_gw.sender(streams.gateway_to_risk(0, 0), [risk.cmp],
                                                                  ring_size=1 << 16))
    answers = ep_gw.receiver(streams.risk_to_gateway(0, 0), window=1 << 16, link=True, nak_max_retries=32)
    rng = np.random.default_rng(5)
    orders = order_records(rng.integers(1, USERS + 1, n_orders), rng.integers(0, 2, n_orders),
                           spec.reference_price + 50 * rng.integers(-100, 100, n_orders), np.full(n_orders, 1000),
                           first_id=1 << 40)
    size = 144
    conn.send("ready")
    conn.recv()
    # orders: at most `inflight` ahead of what the ME received (capacity mode, like `rsx bench cmp`)
    inflight, sent, got, refused, reasons = 8192, 0, 0, 0, {}
    t0 = time.monotonic_ns()
    while got + refused < n_orders:
        if sent < n_orders and sent - got < inflight:
            k = min(1024, n_orders - sent, inflight - (sent - got))
            orders_tx.push(memoryview(orders)[sent * size:(sent + k) * size])
            sent += k
        orders_tx.flush(1024)
        ep_me.poll(0)
        got += len(sink.read(4096))
        ep_gw.poll(0)
        b = answers.read(4096)
        if len(b):
            f = b.records(RecordType.ORDER_FAILED)["payload"]
            for r in f["reason"].tolist():          # TIMEOUT: released later, the sink never acknowledges
                reasons[int(r)] = reasons.get(int(r), 0) + 1
                refused += int(r) != int(Reason.TIMEOUT)
        if time.monotonic_ns() - t0 > 120 * SEC:
            break
    t_orders = (time.monotonic_ns() - t0) / 1e9
    conn.send({"orders": got, "orders_s": t_orders, "refused": refused, "reasons": reasons})
    conn.recv()
    # fills: journaled (async) and sent at a fixed rate, open loop, as an ME releases them
    takers = rng.integers(1, USERS + 1, n_fills)
    makers = (takers + rng.integers(1, USERS, n_fills) - 1) % USERS + 1
    buf = fill_records(1, wal.next_seq, takers, makers, rng.integers(0, 2, n_fills),
                       np.full(n_fills, spec.reference_price), np.full(n_fills, 1000), ts0=time.time_ns())
    recs = np.frombuffer(buf, dtype=RECORD_DTYPES[RecordType.FILL])
    t0 = time.monotonic_ns()
    t0_real = time.time_ns()
    done = 0
    chunk = 4096
    while done < n_fills:
        due = min(n_fills, (time.monotonic_ns() - t0) * fill_rate // SEC)
        if due - done >= min(chunk, n_fills - done):
            k = min(chunk, n_fills - done)
            wal.append_batch(RecordType.FILL, recs["payload"][done:done + k])
            n = fills_tx.send_batch(memoryview(buf)[done * size:(done + k) * size])
            done += n
        ep_me.poll(0)
        if done % (16 * chunk) == 0:
            ep_gw.poll(0)
            answers.read(4096)
    t_fills = (time.monotonic_ns() - t0) / 1e9
    conn.send({"fills": done, "fills_send_s": t_fills,
               "last_seq": int(recs["payload"]["seq"][-1]) if n_fills else wal.next_seq - 1,
               "first_sent_ns": t0_real})
    end = time.monotonic() + 60
    while time.monotonic() < end and not conn.poll():      # keep serving NAKs and heartbeats
        ep_me.poll(0.001)
        ep_gw.poll(0)
        answers.read(4096)
        sink.read(4096)
    conn.recv()
    wal.close()


def bench_cmp(quick: bool, wait: str = "spin") -> dict:
    """Orders and fills each against a fresh shard process: the stand-in ME acknowledges no order, so
    in one process the fills would meet a storm of a million ORDER_FAILED(TIMEOUT) (ack_timeout, 5 s
    after each order) that a real ME's ORDER_ACCEPTED prevents; each figure is the shard's capacity
    for that record kind alone."""
    n_orders = 100_000 if quick else 1_000_000
    n_fills = 300_000 if quick else 3_000_000
    fill_rate = int(os.environ.get("RSX_BENCH_FILL_RATE", 400_000))
    o = _cmp_run(wait, n_orders, 0, fill_rate)
    f = _cmp_run(wait, 0, n_fills, fill_rate)
    orders_per_s, rate = o["orders_per_s"], f["fills_applied_per_s_at_least"]
    return {**{k: o[k] for k in ("orders_forwarded", "orders_refused", "refusal_reasons", "orders_per_s",
                                 "shard_cpu_us_per_order")},
            **{k: f[k] for k in ("fills_sent", "fill_offered_per_s", "fills_applied", "fills_applied_per_s_at_least",
                                 "shard_cpu_us_per_fill", "longest_iteration_us", "gap_replays")},
            "longest_iteration_us_orders": o["longest_iteration_us"], "wait": wait,
            "verified": o["verified"] and f["verified"],
            "target": {"orders_per_s": 200_000, "fills_per_s": 300_000,
                       "met": bool(orders_per_s and orders_per_s >= 200_000 and rate and rate >= 300_000)}}


def _cmp_run(wait: str, n_orders: int, n_fills: int, fill_rate: int) -> dict:
    import random
    import signal
    import subprocess

    with tempfile.TemporaryDirectory(prefix="rsx-risk-cmp-", dir=os.environ.get("RSX_BENCH_DIR")) as tmp:
        base = random.randrange(20_000, 55_000, 10)
        path = Path(tmp) / "rsx.toml"
        path.write_text(_cmp_config(Path(tmp) / "data", base, wait, n_orders + 10_000))
        ctx = mp.get_context("fork")
        parent, child = ctx.Pipe()
        load = ctx.Process(target=_cmp_load, args=(child, str(path), n_orders, n_fills, fill_rate), daemon=True)
        load.start()
        assert parent.recv() == "ready"
        from rsx_appliance.launch import rsx_argv

        log = open(Path(tmp) / "risk.log", "wb")
        shard = subprocess.Popen(rsx_argv("risk", "serve", "--shard", "0", "--config", str(path)),
                                 stdout=subprocess.PIPE, stderr=log)
        line = shard.stdout.readline()
        status_path = Path(tmp) / "data" / "run" / "risk.0.json"
        try:
            if b"ready" not in line:
                raise RuntimeError(f"the shard did not start: {line!r}")
            import psutil

            proc = psutil.Process(shard.pid)

            def cpu() -> float:
                t = proc.cpu_times()
                return t.user + t.system

            c0 = cpu()
            parent.send("orders")
            o = parent.recv()
            c1 = cpu()
            parent.send("fills")
            f = parent.recv()
            samples = []                                  # (updated_ns, applied_seq) from the status file
            end = time.monotonic() + 120
            while time.monotonic() < end:
                try:
                    st = json.loads(status_path.read_text())
                except (OSError, ValueError):
                    time.sleep(0.05)
                    continue
                s = (st["updated_ns"], st["streams"]["me.BTC-PERP"]["applied_seq"], st["counters"]["fills_applied"])
                if not samples or s[0] != samples[-1][0]:
                    samples.append(s)
                if s[1] >= f["last_seq"]:
                    break
                time.sleep(0.1)
            c2 = cpu()
            parent.send("stop")
            st = json.loads(status_path.read_text())
        finally:
            shard.send_signal(signal.SIGTERM)
            shard.wait(30)
            load.join(10)
            log.close()
        # the status file is written about once a second: the first one showing every fill applied is at
        # most a second late, so fills / (that time - the first fill sent) is a lower bound of the rate
        done_at = next((x[0] for x in samples if x[1] >= f["last_seq"]), None)
        rate = n_fills / ((done_at - f["first_sent_ns"]) / 1e9) if done_at and n_fills else None
        applied = st["counters"]["fills_applied"]
        orders_per_s = o["orders"] / o["orders_s"] if o["orders_s"] and n_orders else None
        return {"orders_forwarded": o["orders"], "orders_refused": o["refused"], "refusal_reasons": o["reasons"],
                "orders_per_s": orders_per_s,
                "fills_sent": f["fills"], "fill_offered_per_s": f["fills"] / f["fills_send_s"] if n_fills else None,
                "fills_applied": applied, "fills_applied_per_s_at_least": rate, "wait": wait,
                # CPU the shard process used per record (its loop spins between records, so these are upper
                # bounds of the work a record costs; 1 / them is what one core sustains at least)
                "shard_cpu_us_per_order": (c1 - c0) * 1e6 / max(o["orders"], 1),
                "shard_cpu_us_per_fill": (c2 - c1) * 1e6 / max(applied, 1),
                "longest_iteration_us": st["counters"]["longest_iteration_us"],
                "gap_replays": st["counters"]["gap_replays"],
                "verified": o["orders"] == n_orders and o["refused"] == 0 and applied == n_fills}


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="pretrade,fills,mark,recovery,cascade,cmp")
    ap.add_argument("--rate", type=int, default=20_000, help="cascade: orders/s sent during the cascade")
    ap.add_argument("--wait", default="spin", choices=("spin", "block"), help="cmp: the shard's wait mode")
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
            rsx(["bench", "risk", "--json", "--only", ",".join(sorted(lib))] + (["--quick"] if args.quick else []))
        out["results"].update(json.loads(buf.getvalue())["results"])
    if "cascade" in only:
        with tempfile.TemporaryDirectory(prefix="rsx-risk-cascade-", dir=os.environ.get("RSX_BENCH_DIR")) as tmp:
            out["results"]["cascade"] = bench_cascade(10_000 if args.quick else 100_000,
                                                      1_000 if args.quick else 10_000, args.rate, tmp)
    if "cmp" in only:
        out["results"]["cmp"] = bench_cmp(args.quick, args.wait)
    print(json.dumps(out, indent=2))
    return 0 if all(r.get("verified", True) for r in out["results"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
