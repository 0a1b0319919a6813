#!/usr/bin/env python3
"""Plant realistic bugs in the C book, one at a time, and check that the tests catch each.

For each mutant the project is copied to a temporary directory (the files git knows plus
new ones not ignored), one textual change is applied to native/src/book*.c, the C tests
and the cffi module are built there, and two suites run against the mutated book:

- ``c``: the book's C tests (native/tests/test_book*.c, but the 10-million-order one);
- ``py``: the differential tests against the Python model (tests/test_book_fuzz.py,
  tests/test_book_model.py) and the workload digests (tests/test_book_workloads.py).

A mutant is caught when a suite fails. Prints one JSON object (per mutant: caught by
which suite, and what the bug is); exits 1 if any mutant survives both. Not a test (it
rebuilds the C core per mutant, minutes in all):

    .venv/bin/python tests/book_mutants.py [--only NAME ...] [--suite c|py|both]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, file, exact text, replacement, the bug it plants
MUTANTS = [
    ("fok-edge-off-by-one", "book_match.c",
     "\t\tg += (uint64_t)L->qty;\n\t\tif (g >= need) {",
     "\t\tg += (uint64_t)L->qty;\n\t\tif (g > need) {",
     "a FOK for exactly the quantity whole levels hold is refused"),
    ("fok-ro-ignores-fills-ahead", "book_match.c",
     "int64_t ahead = sat_add(plain_ahead(b, M->uix, mside, buy, L->price), MU->dry);",
     "int64_t ahead = MU->dry;",
     "a reduce-only maker's room in the FOK check forgets its user's fills in whole levels ahead"),
    ("fok-own-ro-sign", "book_match.c",
     "moved = (int64_t)(buy ? got - ahead : ahead - got);",
     "moved = (int64_t)(buy ? ahead - got : got - ahead);",
     "the taker's own reduce-only maker (STP off) counts its position move the wrong way"),
    ("fok-cancel-maker-own-counted", "book_match.c",
     "\t\t\t\tif (lvl_plain(L))\n\t\t\t\t\town_plain += O->rem;",
     "\t\t\t\tif (0)\n\t\t\t\t\town_plain += O->rem;",
     "STP cancel-maker: the taker's own quantity in whole levels counts toward the FOK"),
    ("fok-ignores-stp-stop", "book_match.c",
     "if (LIKELY(l != stop_lvl && lvl_plain(L))) {",
     "if (LIKELY(lvl_plain(L))) {",
     "STP cancel-taker/both: the FOK check adds the stop level whole instead of stopping"),
    ("far-duplicate-level", "book_map.c",
     "\t\tif (price == tp)\n\t\t\treturn t;",
     "\t\tif (price == tp && (b->ops & 1))\n\t\t\treturn t;",
     "a second order at an existing far price sometimes gets a second level"),
    ("ro-maker-not-cancelled-at-zero", "book_match.c",
     "} else if (UNLIKELY(M->flags & RSX_ORDER_REDUCE_ONLY) && reducing(MU->net, M->side) == 0) {",
     "} else if (0) {",
     "a reduce-only maker whose room a fill used up stays in the book"),
    ("ro-maker-cancel-too-early", "book_match.c",
     "\t\t\tif (allow == 0) {\n\t\t\t\tev_cancelled(b, s, MU->user_id, M->side, RSX_REASON_REDUCE_ONLY_NO_POSITION,",
     "\t\t\tif (allow <= q / 2) {\n\t\t\t\tev_cancelled(b, s, MU->user_id, M->side, RSX_REASON_REDUCE_ONLY_NO_POSITION,",
     "a reduce-only maker with some room left is cancelled instead of filled"),
    ("bbo-saturated-repeat", "book_match.c",
     "if (b->bbo_sat && memcmp(p + 3, b->bbo_last, sizeof b->bbo_last) == 0) {",
     "if (0) {",
     "a saturated top that did not change emits a second identical BBO"),
    ("slide-keeps-bit", "book_map.c",
     "\tsd->ring[i] = NIL;\n\tbm_clear(sd, i);\n\tfor (; l != NIL",
     "\tsd->ring[i] = NIL;\n\tfor (; l != NIL",
     "an evicted tick keeps its occupancy bit"),
    ("slide-wrong-above", "book_map.c",
     "\t\t\t\tsd->above = after;",
     "\t\t\t\tsd->above = l;",
     "after loading the top, `above` points at a level now in the window"),
    ("window-wrap-no-check", "book_map.c",
     "\t\tif (succ == NIL || b->lvl[succ].price < price)\n\t\t\tsucc = sd->above;",
     "\t\tif (succ == NIL)\n\t\t\tsucc = sd->above;",
     "a new window level links before a lower level found by a wrapped ring scan"),
    ("offgrid-slot-cleared", "book_match.c",
     "if (UNLIKELY(n != NIL && bk_tick(b, b->lvl[n].price) == k)) {",
     "if (0) {",
     "removing a tick's lowest level drops the tick's other (off-grid) levels from the ring"),
    ("nro-not-decremented", "book_match.c",
     "\tif (UNLIKELY(O->flags & RSX_ORDER_REDUCE_ONLY))\n\t\tL->nro--;",
     "",
     "a level keeps counting a reduce-only order that left it"),
    ("amend-same-qty-accepted", "book_match.c",
     "\t\tif (qty >= O->rem) {",
     "\t\tif (qty > O->rem) {",
     "an amend to the same quantity is accepted instead of AMEND_NOT_DOWN"),
    ("cancel-other-users-order", "book_match.c",
     "while (*pp != NIL && !(oid_eq(&b->ord[*pp].oid, oid) && b->usr[b->ord[*pp].uix].user_id == user_id))",
     "while (*pp != NIL && !oid_eq(&b->ord[*pp].oid, oid))",
     "a cancel matches an order of another user with the same id"),
    ("stp-both-continues", "book_match.c",
     "\t\t\tif (stp == RSX_STP_CANCEL_BOTH) {\n\t\t\t\tt->stopped = 1;\n\t\t\t\tbreak;\n\t\t\t}",
     "",
     "STP cancel-both cancels the maker but lets the taker go on"),
    ("post-only-equal-price", "book_match.c",
     "const int crosses = best != NIL && (buy ? b->lvl[best].price <= price : b->lvl[best].price >= price);",
     "const int crosses = best != NIL && (buy ? b->lvl[best].price < price : b->lvl[best].price > price);",
     "an order at exactly the opposite best price is treated as not crossing"),
    ("fast-path-crosses-equal", "book_match.c",
     "const int crosses = best != NIL && (side == RSX_SIDE_BUY ? b->lvl[best].price <= price",
     "const int crosses = best != NIL && (side == RSX_SIDE_BUY ? b->lvl[best].price < price",
     "the inline path rests a buy at exactly the best ask instead of matching it"),
    ("ro-taker-not-clamped", "book_match.c",
     "\t\t\tgoto fail;\n\t\t}\n\t\tif (qty > allow)\n\t\t\tqty = allow;\n\t}\n\tconst int buy = side == RSX_SIDE_BUY;",
     "\t\t\tgoto fail;\n\t\t}\n\t}\n\tconst int buy = side == RSX_SIDE_BUY;",
     "a reduce-only taker is not clamped to its position"),
    ("amend-keeps-user-list-place", "book_match.c",
     "\tuser_unlink(b, oi);\n\tuser_append(b, u, oi);\n\ttaker_start(",
     "\ttaker_start(",
     "a price amend keeps the order's old place in its user's list (cancel-all order)"),
    ("amend-down-not-taken-off-total", "book_match.c",
     "\t\tO->rem = qty;\n\t\tlevel_sub(b, L, cut);",
     "\t\tO->rem = qty;",
     "an amend down in place leaves the level total as it was"),
    ("taker-position-not-moved", "book_match.c",
     "\t\t\tTU->net = sat_add(TU->net, buy ? q : -q);",
     "",
     "the taker's position does not move with its fills"),
    ("cancel-all-newest-first", "book_match.c",
     "\twhile ((oi = U->head) != NIL) {",
     "\twhile ((oi = U->tail) != NIL) {",
     "cancel-all cancels newest first"),
]

PY_TESTS = ["tests/test_book_fuzz.py", "tests/test_book_model.py", "tests/test_book_workloads.py"]


def copy_project(dst: str) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split("\n")
    for f in files:
        if f and os.path.isfile(os.path.join(ROOT, f)):
            os.makedirs(os.path.dirname(os.path.join(dst, f)) or dst, exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), os.path.join(dst, f))


def run(cmd: list[str], cwd: str, timeout: int = 1800) -> bool:
    try:
        return subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False  # a mutant that hangs a test is caught


def c_suite(d: str) -> bool:
    """True if the C book tests pass."""
    if not run(["make", "-s", "-C", "native", "-j2", "all"], d):
        return False
    for t in sorted(os.listdir(os.path.join(d, "native", "build", "tests"))):
        if t.startswith("test_book") and t != "test_book_big":
            if not run([os.path.join(d, "native", "build", "tests", t)], d):
                return False
    return True


def py_suite(d: str) -> bool:
    """True if the differential Python tests pass against the mutated book."""
    if not run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], d):
        return False
    return run([sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider"]
               + PY_TESTS, d)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="mutant names")
    ap.add_argument("--suite", choices=("c", "py", "both"), default="both")
    args = ap.parse_args(argv)
    out: dict = {"mutants": {}}
    survived = 0
    for name, fname, old, new, why in MUTANTS:
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="rsx-mutant-") as d:
            copy_project(d)
            path = os.path.join(d, "native", "src", fname)
            text = open(path).read()
            if text.count(old) != 1:
                out["mutants"][name] = {"error": f"the text to mutate occurs {text.count(old)} times"}
                print(json.dumps({name: out["mutants"][name]}), file=sys.stderr, flush=True)
                survived += 1
                continue
            with open(path, "w") as f:
                f.write(text.replace(old, new))
            entry = {"bug": why}
            if args.suite in ("c", "both"):
                entry["caught_by_c_tests"] = not c_suite(d)
            if args.suite in ("py", "both"):
                entry["caught_by_python_tests"] = not py_suite(d)
            caught = entry.get("caught_by_c_tests", False) or entry.get("caught_by_python_tests", False)
            survived += not caught
            out["mutants"][name] = entry
        print(json.dumps({name: entry}), file=sys.stderr, flush=True)
    out["survived"] = survived
    print(json.dumps(out, indent=2))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
