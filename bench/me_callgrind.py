#!/usr/bin/env python3
"""Instructions per request of the matching engine's accept path, measured by callgrind.

Builds the requests of the shared workload (bench/workload.py, seed 1, --n operations; order ids
distinct) outside valgrind, then runs

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=me_process \\
        python THIS.py --child REQUESTS.bin

in which one C call (rsx_me_submit) hands every request to the ME: me_process is the path from a
request read off a link to its records appended to the WAL (checks, dedup, ORDER_ACCEPTED, the book,
the append, the stage clocks and histograms). Releasing to CMP is outside it. Counts are stable on a
loaded machine, unlike wall time. Prints one JSON object: instructions per request, and the inclusive
share of the main callees.

    .venv/bin/python bench/me_callgrind.py [--n 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CALLEES = ("rsx_book_apply", "rsx_wal_append_framed", "me_dedup_check_insert", "rsx_crc32c",
           "rsx_cmp_sender_send_batch", "rsx_cmp_poll", "rsx_record_check")



def child(path: str, loop: str) -> None:
    from rsx_appliance.cli.bench import _me_driver as D
    from rsx_appliance.records import check_record

    data = Path(path).read_bytes()
    if loop != "none":
        import numpy as np

        offsets, mv = [0], memoryview(data)
        while offsets[-1] < len(data):
            offsets.append(offsets[-1] + check_record(mv, offsets[-1]))
        with tempfile.TemporaryDirectory() as d:
            extra = {} if loop == "subscriber" else {"subscribers": ()}
            r = D.InProc(D.options(Path(d), "fsync", dedup_capacity=1 << 20, capacity=1 << 18,
                                   hugepages="never", **extra))
            r.run(data, np.array(offsets))
            r.close()
        return
    with tempfile.TemporaryDirectory() as d:
        me = D.MatchingEngine(D.options(Path(d), "fsync", subscribers=(), links=(), dedup_capacity=1 << 20,
                                        capacity=1 << 18, out_bytes=1 << 28, request_slots=1 << 20,
                                        hugepages="never"))
        n = me.submit(data)
        me.drain()
        me.close()
    print(n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--child")
    ap.add_argument("--loop", default="none", choices=["none", "subscriber", "bare"])
    args = ap.parse_args()
    if args.child:
        child(args.child, args.loop)
        return 0
    if not shutil.which("valgrind"):
        print(json.dumps({"error": "valgrind not installed"}))
        return 3
    from rsx_appliance.cli.bench import _me_driver as D

    ops = D.workload(args.n)
    buf, offsets = D.requests(ops)
    with tempfile.TemporaryDirectory() as d:
        req = Path(d) / "requests.bin"
        req.write_bytes(buf)
        per, ann = measure(req, "me_process", "none", d)
        loops = {}
        for loop in ("subscriber", "bare"):
            total, _ = measure(req, "rsx_me_step", loop, d)
            loops[loop] = round(total.get("rsx_me_step", 0) / len(ops), 1)
    n = len(ops)
    print(json.dumps({"benchmark": "me instructions", "requests": n,
                      "accept_path_instr_per_request": round(per.get("me_process", 0) / n, 1),
                      "accept_path_inclusive_per_request": {k: round(v / n, 1) for k, v in sorted(per.items())},
                      "loop_instr_per_request": {"one_subscriber": loops["subscriber"],
                                                 "no_subscriber": loops["bare"]},
                      "how": "callgrind Ir inside me_process (toggle-collect): every request of the workload "
                             "through rsx_me_submit; and inside rsx_me_step for the whole loop in-process over "
                             "the mem backend (CMP receive, the accept path, release, CMP send to one "
                             "subscriber or none). Peers: RSX's full accept path 205-341 ns "
                             "(reference/rsx-core.md 9.3); the book alone 274 instr/op (bench/README.md); "
                             "CMP ~1000 instr per record end to end (specs/cmp.md 11)"},
                     indent=2))
    return 0


def measure(req: Path, fn: str, loop: str, d: str) -> tuple[dict, str]:
    out = Path(d) / f"callgrind.{fn}.{loop}.out"
    subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no", f"--toggle-collect={fn}",
                    f"--callgrind-out-file={out}", sys.executable, os.path.abspath(__file__), "--child",
                    str(req), "--loop", loop], check=True, capture_output=True)
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
                         capture_output=True, text=True, check=True).stdout
    per: dict[str, int] = {}
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S+)", line)
        if not m:
            continue
        ir, where = int(m.group(1).replace(",", "")), m.group(2)
        name = where.split(":")[-1].split("'")[0]
        if name in CALLEES + (fn,):
            per[name] = max(per.get(name, 0), ir)
    return per, ann


if __name__ == "__main__":
    sys.exit(main())
