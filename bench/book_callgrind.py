#!/usr/bin/env python3
"""Instructions per operation of the C book's replay loop, measured by callgrind.

Generates the shared workloads (bench/workload.py, seed 1, --n operations) into
a temporary directory, then for each variant runs

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=bk_replay_loop \\
        rsx book replay WORKLOAD.txt

and reads the instructions (Ir) collected inside bk_replay_loop: the loop that
applies every operation to the book and copies out the fills, the same loop that
`rsx bench book` times. Parsing, book creation and the digest are outside it.
Callgrind counts are stable on a loaded machine, unlike wall time.

Prints one JSON object: per variant, instr_per_op, the digest line (checked
against refmatch.py unless --no-check) and the peers' figures from
reference/baselines.md for comparison.

    .venv/bin/python bench/book_callgrind.py [--n 1000000] [--variants normal deep roam]

Targets (issue 21): normal and deep <= 220 instructions per op, roam (the mid roams 20 %
from the start) <= 260.
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

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = {  # instructions per op on this machine kind (reference/baselines.md)
    "rsx-book": {"normal": 1064, "deep": 1282},
    "rsx-book+guard": {"normal": 445, "deep": 443},
    "liquibook": {"normal": 884, "deep": 1262},
}
TARGETS = {"normal": 220, "deep": 220, "roam": 260}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="operations per workload (default 1e6)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variants", nargs="+", default=["normal", "deep", "roam"],
                    choices=["normal", "deep", "roam"])
    ap.add_argument("--no-check", action="store_true", help="skip the refmatch.py digest check")
    args = ap.parse_args(argv)
    if not shutil.which("valgrind"):
        print(json.dumps({"error": "valgrind is not installed"}))
        return 3
    out: dict = {"bench": "book_callgrind", "n": args.n, "seed": args.seed, "function": "bk_replay_loop",
                 "peers_instr_per_op": PEERS, "targets_instr_per_op": TARGETS, "variants": {}}
    ok = True
    with tempfile.TemporaryDirectory(prefix="rsx-book-cg-") as tmp:
        for variant in args.variants:
            path = os.path.join(tmp, f"{variant}.txt")
            subprocess.run([sys.executable, os.path.join(HERE, "workload.py"), "--seed", str(args.seed),
                            "--n", str(args.n), "--variant", variant, "-o", path],
                           check=True, stderr=subprocess.DEVNULL)
            cg = os.path.join(tmp, f"callgrind.{variant}")
            run = subprocess.run(
                ["valgrind", "--tool=callgrind", "--collect-atstart=no",
                 "--toggle-collect=bk_replay_loop", f"--callgrind-out-file={cg}",
                 sys.executable, "-c", "import sys; from rsx_appliance.cli import main; sys.exit(main())",
                 "book", "replay", path],
                capture_output=True, text=True)
            if run.returncode != 0:
                print(json.dumps({"error": f"replay under valgrind failed: {run.stderr[-2000:]}"}))
                return 1
            m = re.search(r"Collected\s*:\s*([0-9]+)", run.stderr)
            if not m:
                print(json.dumps({"error": "no 'Collected' line from callgrind", "stderr": run.stderr[-2000:]}))
                return 1
            instr = int(m.group(1))
            line = run.stdout.strip()
            entry = {"instructions": instr, "instr_per_op": round(instr / args.n, 1), "digest": line,
                     "within_target": instr / args.n <= TARGETS[variant]}
            if not args.no_check:
                ref = subprocess.run([sys.executable, os.path.join(HERE, "refmatch.py"), path],
                                     capture_output=True, text=True, check=True).stdout.strip()
                entry["digest_matches_refmatch"] = ref == line
                ok &= ref == line
            out["variants"][variant] = entry
    print(json.dumps(out, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
