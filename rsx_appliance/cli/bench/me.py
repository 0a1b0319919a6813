"""`rsx bench me`: the matching engine's targets (specs/me.md 11); text, or one JSON object with --json.

Cases:
  accept      in-process (mem CMP backend): median of the ME's own `me_accept_path` stage
              (validate + dedup + ORDER_ACCEPTED + match + WAL append)          target <= 150 ns
  throughput  in-process, sustained, `async` and `fsync`, with one subscriber and with none:
              requests/s over the ME loop's own time (`loop_ns`) and over wall time
                                                                                  target >= 2 M/s async,
                                                                                         >= 1 M/s fsync
  latency     in-process, open loop at --rate orders/s (fsync): p50 of `me_in_to_sent` vs a bare
              write + fdatasync of the same bytes per order, interleaved in the same run
                                                                                  target <= 1.3x
  udp         the ME loop in a thread on a UDP socket, load from a forked process (capacity mode);
              the CMP one-way throughput on the same machine right after         target >= 0.8x
  idle        an `rsx me` process at rest in block mode                            target < 1 % of a core
  all         every case

The workload is bench/workload.py (seed 1, normal variant; --workload FILE for another), replayed
--passes times with fresh order ids. Wall-clock figures on a shared machine are indicative; quote
them from a quiet one. Instruction counts: bench/me_callgrind.py. Exit 0 whether targets are met or
not (see meets_target); 1 if a run failed its own checks.
"""

from __future__ import annotations

import argparse

CASES = ("accept", "throughput", "latency", "udp", "idle")


def register(sub: argparse._SubParsersAction) -> None:
    from .._common import add_json

    p = sub.add_parser("me", help="matching engine: accept path, throughput, durable latency, UDP, idle CPU",
                       description=__doc__)
    p.add_argument("case", nargs="?", default="all", choices=[*CASES, "all"], metavar="CASE",
                   help="accept, throughput, latency, udp, idle or all (default all)")
    p.add_argument("--workload", metavar="FILE", help="workload text file in the bench/workload.py format "
                   "(default: generated, seed 1, normal variant)")
    p.add_argument("--ops", type=int, default=200_000, help="operations of the generated workload (default 200000)")
    p.add_argument("--passes", type=int, default=5, help="throughput: times the workload is replayed (default 5)")
    p.add_argument("--rate", type=int, default=10_000, help="latency: orders per second (default 10000)")
    p.add_argument("--latency-orders", type=int, default=20_000, help="latency: orders sent (default 20000)")
    p.add_argument("--dir", metavar="DIR", help="where the WALs go: a real disk (default: the temp directory)")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle: seconds measured (default 10)")
    p.add_argument("--short", action="store_true", help="tiny sizes: check that it runs")
    p.add_argument("--save", metavar="FILE", help="latency: write the ME's stage histograms and the bare "
                   "fdatasync as a run file for `rsx report`")
    add_json(p)
    p.set_defaults(func=run)


def bench_accept(D, ops, base) -> dict:
    import tempfile
    from pathlib import Path

    buf, offsets = D.requests(ops, passes=1)
    with tempfile.TemporaryDirectory(dir=base, prefix="rsx-bench-me-") as d:
        r = D.InProc(D.options(Path(d), "fsync"))
        try:
            r.run(buf, offsets)
            h = r.stats.histograms()
            c = r.stats.counters()
        finally:
            r.close()
    ap = h["me_accept_path"]
    med = int(ap.percentile(50)) if ap.total else None
    return {"case": "accept", "requests": len(ops), "accepted": c["accepted"], "fills": c["fills"],
            "records": c["records"], "accept_path": ap.summary("ns"),
            "in_to_accepted_p50_ns": int(h["me_in_to_accepted"].percentile(50)) if ap.total else None,
            "accepted_to_matched_p50_ns": int(h["me_accepted_to_matched"].percentile(50)) if ap.total else None,
            "target_p50_ns": 150, "meets_target": med is not None and med <= 150,
            "how": "the ME's own me_accept_path histogram: from the start of a request's processing to its "
                   "records in the WAL's ring (checks, dedup, ORDER_ACCEPTED, book, append; the two clock "
                   "reads included), every request of the workload, stepped in-process over the mem backend"}


def bench_throughput(D, ops, passes: int, base) -> dict:
    import tempfile
    from pathlib import Path

    buf, offsets = D.requests(ops, passes=passes)
    n = len(offsets) - 1
    runs = {}
    for mode, target in (("async", 2_000_000), ("fsync", 1_000_000)):
        for subs in (1, 0):
            with tempfile.TemporaryDirectory(dir=base, prefix="rsx-bench-me-") as d:
                extra = {} if subs else {"subscribers": ()}
                r = D.InProc(D.options(Path(d), mode, **extra))
                try:
                    wall = r.run(buf, offsets)
                    c = r.stats.counters()
                finally:
                    r.close()
            loop_rate = n / (c["loop_ns"] / 1e9)
            runs[mode if subs else f"{mode}_no_subscriber"] = {
                "loop_requests_per_s": round(loop_rate), "wall_requests_per_s": round(n / wall),
                "loop_s": round(c["loop_ns"] / 1e9, 3), "wall_s": round(wall, 3), "records_out": c["released"],
                "wal_syncs": c["wal_batches"], "avg_batch_records": round(c["records"] / max(c["wal_batches"], 1), 1),
                "out_stalls": c["out_stalls"], "send_stalls": c["send_stalls"], "wal_stalls": c["wal_stalls"],
                "target_requests_per_s": target, "meets_target": loop_rate >= target}
    return {"case": "throughput", "requests": n, "record_bytes_per_request": round(len(buf) / n, 1),
            "runs": runs, "meets_target": runs["async"]["meets_target"] and runs["fsync"]["meets_target"],
            "how": "the whole loop in one thread: CMP receive from the link, checks, dedup, book, WAL append, "
                   "release after the sync (fsync) or at once (async), CMP send to one subscriber (the "
                   "*_no_subscriber runs release without sending); loop_requests_per_s counts the ME's time "
                   "inside its iterations (loop_ns), wall_requests_per_s also the in-process driver and "
                   "consumer sharing the thread"}


def bench_latency(D, ops, rate: int, n: int, base, save: str | None) -> dict:
    import os
    import tempfile
    from pathlib import Path

    import numpy as np

    from ..._bench import ffi, lib
    from ...errors import check
    from ...latency import Histogram, write_run

    buf, offsets = D.requests(ops[:n], passes=1)
    per = int(round(len(buf) / n * 2.1))  # an order's records on the WAL: the request is about half
    blocks = 4
    bare = []
    with tempfile.TemporaryDirectory(dir=base, prefix="rsx-bench-me-") as d:
        r = D.InProc(D.options(Path(d) / "me", "fsync", wait="block"))
        try:
            step = (len(offsets) - 1) // blocks
            for b in range(blocks):
                a = np.zeros(min(step, 2000), dtype=np.uint64)
                check(lib.rsx_wal_bench_bare_sync(os.path.join(d, "bare").encode(), len(a), per, rate, 0,
                                                  ffi.cast("uint64_t *", a.ctypes.data)), "bare fdatasync")
                bare.append(a)
                lo, hi = b * step, (b + 1) * step if b < blocks - 1 else len(offsets) - 1
                lag = D.paced(r, buf[offsets[lo]:offsets[hi]], offsets[lo:hi + 1] - offsets[lo], rate)
            hs = r.stats.histograms()
            c = r.stats.counters()
        finally:
            r.close()
    hb = Histogram()
    hb.record(np.concatenate(bare).astype(np.int64))
    me = hs["me_in_to_sent"]
    ratio = me.percentile(50) / hb.percentile(50)
    if save:
        write_run(save, {**hs, "bare_write_fdatasync": hb}, offered_rate=rate, load_mode="open-loop",
                  name="me-latency", description="ME: request in -> durable release at a fixed rate, fsync "
                  "mode; bare write + fdatasync of the same bytes per order in the same run",
                  setup={"orders": n, "bytes_per_order": per})
    return {"case": "latency", "orders": n, "rate_per_s": rate, "bytes_per_order": per,
            "latency": {"me_in_to_sent": me.summary("us"), "me_to_durable": hs["me_to_durable"].summary("us"),
                        "bare_write_fdatasync": hb.summary("us")},
            "p50_ratio": round(ratio, 3), "avg_batch_records": round(c["records"] / max(c["wal_batches"], 1), 2),
            "sender_lag_at_end_s": round(lag, 4), "target_p50_ratio": 1.3, "meets_target": ratio <= 1.3,
            "how": "open loop; me_in_to_sent from the ME's histograms (read from the link -> handed to CMP "
                   "after its sync); bare = write of the same bytes per order + fdatasync at the same rate, "
                   "in blocks interleaved with the ME's"}


UDP_INFLIGHT = 256  # requests the load keeps ahead of the ME: enough to keep it busy, few enough for socket buffers


def bench_udp(D, ops, base) -> dict:
    import multiprocessing
    import tempfile
    import threading
    import time
    from pathlib import Path

    from ... import cmp, cmpbench

    buf, offsets = D.requests(ops, passes=1)
    with tempfile.TemporaryDirectory(dir=base, prefix="rsx-bench-me-") as d:
        # fork the load before the ME's threads exist
        parent, child = multiprocessing.Pipe()
        ctx = multiprocessing.get_context("fork")
        stats = str(Path(d) / "me.stats")
        port = D.free_udp_port()
        load = ctx.Process(target=D.load_process, args=(child, port, stats, buf, offsets, UDP_INFLIGHT), daemon=True)
        load.start()  # forked before the ME's endpoint and threads exist
        load_port = parent.recv()
        ep = cmp.Endpoint("udp", ("127.0.0.1", port), mode="busy")
        me = D.MatchingEngine(D.options(Path(d), "fsync", wait="spin", subscribers=(("127.0.0.1", load_port),)))
        me.attach(ep)
        t = threading.Thread(target=me.run)
        t.start()
        try:
            parent.send("go")
            if not parent.poll(300):
                raise RuntimeError("the load process did not report in 300 s")
            reqs, got, t_in, wall, naks, drops, lost = parent.recv()
            load.join(30)
        finally:
            me.stop()
            t.join(60)
            me.close()
            ep.close()
            if load.is_alive():
                load.kill()
    time.sleep(0.5)
    ref = cmpbench.oneway(cmpbench.Side("udp"), cmpbench.Side("udp"), count=200_000, payload=128)
    ref_rate = ref.done / (ref.elapsed_ns / 1e9)
    me_dgrams = (reqs + got) / wall
    return {"case": "udp", "requests": reqs, "records_out": got, "requests_per_s": round(reqs / t_in),
            "records_out_per_s": round(got / wall), "datagrams_per_s": round(me_dgrams),
            "consumer_naks": naks, "kernel_drops": drops, "link_losses": lost,
            "cmp_one_way_records_per_s": round(ref_rate),
            "to_transport_ratio": round(me_dgrams / ref_rate, 3), "target_to_transport_ratio": 0.8,
            "meets_target": me_dgrams / ref_rate >= 0.8,
            "how": "the ME loop (spin, fsync) in a thread on one UDP socket; a forked load process keeps at "
                   "most " + str(UDP_INFLIGHT) + " requests ahead of the ME's request counters and consumes the stream; the ratio "
                   "is the ME's datagrams in + out per second over `rsx bench cmp`'s one-way records/s "
                   "(128-byte payloads) measured right after on the same machine"}


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from .._common import CliError, existing, print_json, print_text
    from . import _me_driver as D

    for name in ("ops", "passes", "rate", "latency_orders"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be >= 1")
    if args.workload:
        existing(args.workload, "file")
    base = Path(existing(args.dir, "dir")) if args.dir else Path(tempfile.gettempdir())
    cases = CASES if args.case == "all" else (args.case,)
    n_ops = 20_000 if args.short else args.ops
    ops = D.workload(n_ops, path=args.workload) if set(cases) - {"idle"} else None
    out = {"benchmark": "me", "workload": args.workload or f"bench/workload.py seed 1 n {n_ops} normal",
           "dir": str(base), "cases": []}
    for case in cases:
        if case == "accept":
            out["cases"].append(bench_accept(D, ops, base))
        elif case == "throughput":
            out["cases"].append(bench_throughput(D, ops, 1 if args.short else args.passes, base))
        elif case == "latency":
            n = 2000 if args.short else args.latency_orders
            out["cases"].append(bench_latency(D, ops, args.rate, min(n, len(ops)), base, args.save))
        elif case == "udp":
            out["cases"].append(bench_udp(D, ops, base))
        elif case == "idle":
            with tempfile.TemporaryDirectory(dir=base, prefix="rsx-bench-me-") as d:
                out["cases"].append(D.idle_cpu(1.0, Path(d), settle_s=1.0) if args.short
                                    else D.idle_cpu(args.idle_seconds, Path(d)))
    if args.json:
        print_json(out)
    else:
        print_text(out)
    return 0
