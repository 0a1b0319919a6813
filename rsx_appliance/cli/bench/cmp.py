"""`rsx bench cmp`: CMP ping-pong RTT and one-way throughput, loss-free and under injected loss.

One harness for every backend (the CMP benchmark driver, native/bench/): two C
threads pinned to CPUs 0 and 1, each driving its own endpoint. udp and uring
run on loopback; xdp runs across a veth pair between two network namespaces
this command creates and removes (root needed). Prints one JSON object with
--json (specs/cmp.md section 11).

Exit codes: 0 done, 1 a run failed (records lost, out of order, timed out),
2 bad usage, 3 the backend is not available here (io_uring disabled, no root
for the veth pair).
"""

from __future__ import annotations

import argparse

from .._common import CliError, EnvironmentRefused, Progress, add_json, print_json

TARGET_RTT_P50_NS = {"xdp": 4000, "udp": 7000, "uring": 10000}
TARGET_RATE = 500_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cmp", help="CMP transport: RTT and throughput per backend", description=__doc__)
    p.add_argument("--backend", choices=["udp", "uring", "xdp"], default="udp",
                   help="socket backend of both endpoints (default udp)")
    p.add_argument("--mode", choices=["busy", "sleep"], default="busy",
                   help="wait mode of both endpoints (default busy)")
    p.add_argument("--phases", default="rtt,throughput,lossy",
                   help="comma-separated subset of rtt, throughput, lossy (default: all)")
    p.add_argument("--rtt", type=int, default=100_000, metavar="N", help="sampled round trips (default 100000)")
    p.add_argument("--warmup", type=int, default=10_000, metavar="N",
                   help="round trips before sampling (default 10000)")
    p.add_argument("--records", type=int, default=1_000_000, metavar="N",
                   help="records per throughput run (default 1000000)")
    p.add_argument("--payload", type=int, choices=[64, 128], default=64,
                   help="payload bytes of the throughput records (default 64; RTT always uses 64)")
    p.add_argument("--batch", type=int, default=32, help="records per send call, 1..64 (default 32)")
    p.add_argument("--rate", type=int, default=0,
                   help="offered records/s (open loop); default 0: as fast as the sender goes")
    p.add_argument("--inflight", type=int, default=2048,
                   help="most records the sender may be ahead of the receiver's delivery "
                        "(default 2048; 0 = no bound)")
    p.add_argument("--drop", type=float, default=0.05, help="lossy run: drop rate in [0, 1) (default 0.05)")
    p.add_argument("--dup", type=float, default=0.01, help="lossy run: duplicate rate in [0, 1) (default 0.01)")
    p.add_argument("--reorder", type=float, default=0.01,
                   help="lossy run: reorder rate in [0, 1) (default 0.01)")
    p.add_argument("--seed", type=int, default=1, help="seed of the fault injector (default 1)")
    p.add_argument("--cpus", default="0,1", help="CPUs for the two threads (default 0,1)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before a run gives up (default 120)")
    p.add_argument("--save", metavar="FILE", help="also write the RTT samples as a latency run file "
                                                  "(rsx report FILE)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...cmp import Fault
    from ...cmpbench import Side, oneway, rtt
    from ...latency import Histogram
    from ...latency.machine import CpuAccount, cpu_snapshot
    from ..._native import lib

    phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    bad = set(phases) - {"rtt", "throughput", "lossy"}
    if bad or not phases:
        raise CliError(f"unknown phase(s) {', '.join(sorted(bad)) or '(none)'}; choose from rtt, throughput, "
                       "lossy")
    try:
        cpu_a, cpu_b = (int(x) for x in args.cpus.split(","))
    except ValueError:
        raise CliError("--cpus wants two CPU numbers, e.g. 0,1") from None
    if args.rtt < 1 or args.records < 1 or not 1 <= args.batch <= 64:
        raise CliError("--rtt and --records must be >= 1, --batch 1..64")
    if not all(0 <= x < 1 for x in (args.drop, args.dup, args.reorder)):
        raise CliError("--drop, --dup and --reorder are rates in [0, 1)")
    if args.backend == "uring" and lib.rsx_probe_io_uring() != 0:
        raise EnvironmentRefused("io_uring is not available here (see rsx version)")

    timeout_ms = int(args.timeout * 1000)
    out: dict = {"benchmark": "cmp", "backend": args.backend, "mode": args.mode, "cpus": [cpu_a, cpu_b]}

    bar = Progress(f"rsx bench cmp {args.backend}", total=len(phases), unit="phases")

    def measure(a_side, b_side) -> None:
        failed = False
        if "rtt" in phases:
            bar.update(0, label=f"rsx bench cmp {args.backend}: rtt")
            r = rtt(a_side(), b_side(), count=args.rtt, warmup=args.warmup, payload=64, cpu_a=cpu_a,
                    cpu_b=cpu_b, timeout_ms=timeout_ms)
            hist = Histogram()
            hist.record(r.samples.astype("int64"))
            pct = {k: v for k, v in hist.summary("ns").items() if k.endswith("_ns")}
            target = TARGET_RTT_P50_NS[args.backend]
            out["rtt"] = {
                "round_trips": r.done, "payload_bytes": 64, "pinned": r.pinned, **pct,
                "round_trips_per_s": round(r.rate),
                "target_p50_ns": target, "meets_target": bool(hist.total) and pct["p50_ns"] <= target,
                "error": r.error_text or None,
            }
            if args.save and r.done:
                from ...latency import write_run

                write_run(args.save, {"cmp_rtt": r.samples.astype("int64")},
                          setup={"backend": args.backend, "mode": args.mode, "payload_bytes": 64,
                                 "topology": out.get("topology"), "warmup": args.warmup},
                          load_mode="closed-loop",
                          descriptions={"cmp_rtt": "CMP ping-pong round trip, A send to A delivery"})
                out["rtt"]["saved"] = str(args.save)
            failed |= not r.ok
            bar.advance()
        base = None
        if "throughput" in phases:
            bar.update(bar.done, label=f"rsx bench cmp {args.backend}: throughput")
            r = oneway(a_side(), b_side(), count=args.records, payload=args.payload, batch=args.batch,
                       rate=args.rate, inflight=args.inflight, cpu_a=cpu_a, cpu_b=cpu_b, timeout_ms=timeout_ms)
            drops = r.endpoint_b["rx_kernel_drops"]
            base = r.rate if r.ok else None
            out["throughput"] = {
                "records": r.done, "payload_bytes": args.payload, "records_per_s": round(r.rate),
                "zero_loss": r.ok and r.receiver["naks_sent"] == 0 and drops == 0,
                "naks": r.receiver["naks_sent"], "kernel_drops": drops,
                "target_records_per_s": TARGET_RATE, "meets_target": r.ok and r.rate >= TARGET_RATE,
                "error": r.error_text or None,
            }
            failed |= not r.ok
            bar.advance()
        if "lossy" in phases:
            bar.update(bar.done, label=f"rsx bench cmp {args.backend}: lossy")
            fault = Fault(drop=args.drop, dup=args.dup, reorder=args.reorder, seed=args.seed)
            r = oneway(a_side(fault), b_side(), count=args.records, payload=args.payload, batch=args.batch,
                       rate=args.rate, inflight=args.inflight, cpu_a=cpu_a, cpu_b=cpu_b, timeout_ms=timeout_ms)
            ratio = (r.rate / base) if (base and r.ok) else None
            out["lossy_throughput"] = {
                "records": r.done, "payload_bytes": args.payload, "records_per_s": round(r.rate),
                "drop_share": args.drop, "dup_share": args.dup, "reorder_share": args.reorder, "seed": args.seed,
                "complete_and_in_order": r.ok and r.done == args.records,
                "dropped": r.fault_a["dropped"], "duplicated": r.fault_a["duplicated"],
                "reordered": r.fault_a["reordered"], "naks": r.receiver["naks_sent"],
                "recovered": r.receiver["recovered"], "retransmits": r.sender["retx_ring"] + r.sender["retx_fetched"],
                "to_loss_free_ratio": round(ratio, 3) if ratio is not None else None,
                "meets_target": ratio is not None and ratio >= 0.5,
                "error": r.error_text or None,
            }
            failed |= not r.ok
        out["failed"] = failed

    snap0 = cpu_snapshot()
    try:
        if args.backend == "xdp":
            from ...netns import VethPair, available

            ok, why = available()
            if not ok:
                raise EnvironmentRefused(f"xdp runs across a veth pair: {why}")
            with VethPair() as vp:
                out["topology"] = "AF_XDP copy mode, veth pair between two network namespaces"

                def mk(s, port):
                    return lambda fault=None: Side(backend="xdp", mode=args.mode, ip=s.ip, port=port,
                                                   ifname=s.ifname, netns=s.netns, fault=fault)
                measure(mk(vp.a, 9100), mk(vp.b, 9200))
        else:
            out["topology"] = "loopback"

            def mk():
                return lambda fault=None: Side(backend=args.backend, mode=args.mode, fault=fault)
            measure(mk(), mk())
    except PermissionError as exc:
        raise EnvironmentRefused(str(exc)) from None
    finally:
        bar.close()
    cpu = CpuAccount.between(snap0, cpu_snapshot())
    out["wall_s"] = round(cpu.wall_s, 3)
    out["other_cpu_s"] = cpu.others_cpu_s
    out["note"] = ("shared 2-core machine: wall-clock figures are indicative; other_cpu_s is the CPU time "
                   "other processes used during the run")
    if args.json:
        print_json(out)
    else:
        _print_human(out)
    return 1 if out.get("failed") else 0


def _print_human(out: dict) -> None:
    print(f"cmp {out['backend']} ({out['mode']}, {out['topology']})")
    if "rtt" in out:
        r = out["rtt"]
        print(f"  rtt: p50 {r.get('p50_ns', 0) / 1000:.1f} us  p99 {r.get('p99_ns', 0) / 1000:.1f} us  "
              f"max {r.get('max_ns', 0) / 1000:.1f} us over {r['round_trips']} round trips "
              f"(target p50 <= {r['target_p50_ns'] / 1000:.0f} us: {'met' if r['meets_target'] else 'MISSED'})")
    if "throughput" in out:
        r = out["throughput"]
        print(f"  throughput: {r['records_per_s']:,} records/s, zero loss: {r['zero_loss']} "
              f"(target {r['target_records_per_s']:,}: {'met' if r['meets_target'] else 'MISSED'})")
    if "lossy_throughput" in out:
        r = out["lossy_throughput"]
        print(f"  under loss ({r['drop_share']:.0%} drop, {r['dup_share']:.0%} dup, {r['reorder_share']:.0%} "
              f"reorder): {r['records_per_s']:,} records/s, complete and in order: {r['complete_and_in_order']}, "
              f"ratio {r['to_loss_free_ratio']} ({'met' if r['meets_target'] else 'MISSED'})")
    print(f"  wall {out['wall_s']} s, other processes' CPU {out['other_cpu_s']} s")
