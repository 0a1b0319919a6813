"""The shared workloads (bench/workload.py) through the C book give refmatch's digest.

Both variants and several seeds, kept small for a fast suite; a workload whose mid
drifts 30 % up (and one 25 % down) with orders left resting far behind and far
orders beyond every compression zone; and the `rsx book replay` command itself,
whose output must be byte for byte refmatch.py's line.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
sys.path.insert(0, BENCH)

import refmatch  # noqa: E402
import workload  # noqa: E402

from rsx_appliance.cli import main as rsx_main  # noqa: E402
from rsx_appliance.workload import digest, digest_line, replay_book  # noqa: E402
from rsx_appliance.book import Stp, parse_workload  # noqa: E402

SIDES = "BS"


def to_text(ops) -> str:
    return "".join(f"{op} {SIDES[side]} {price} {qty} {oid} {tif}\n"
                   for op, side, price, qty, oid, tif in ops)


def ref_digest(ops) -> str:
    book, fills = refmatch.replay(ops)
    return refmatch.digest_line(len(ops), fills, book.best_bid(), book.best_ask(), len(book.orders))


def c_digest(text: str, capacity: int = 0) -> str:
    ops = parse_workload(text.encode(), users=64, stp=Stp.NONE)
    with replay_book(ops, capacity) as book:
        fills = book.replay(ops)
        book.check()
        return digest_line(digest(ops, book, fills))


@pytest.mark.parametrize("variant", ["normal", "deep"])
@pytest.mark.parametrize("seed", [1, 2, 3, 17])
def test_shared_workload_digest(variant, seed):
    ops, _ = workload.generate(seed, 8000 if variant == "normal" else 12000, workload.VARIANTS[variant])
    assert c_digest(to_text(ops)) == ref_digest(ops)


def drifting_ops(seed: int, n: int, drift: float, p0: int = 100_000):
    """Zero-intelligence flow around a mid that trends by ``drift`` (0.3 = +30 %) over the
    stream, with far orders (30-90 % away) now and then; every cancel targets a live order."""
    rnd = random.Random(seed)
    book = refmatch.Book()
    ops, next_id = [], 1
    for i in range(n):
        mid = int(p0 * (1 + drift * i / n)) + rnd.randint(-3, 3)
        u = rnd.random()
        bid, ask = book.best_bid(), book.best_ask()
        if u < 0.38 and book.orders:
            oid = rnd.choice(list(book.orders))
            o = book.orders[oid]
            ops.append(("C", o.side, o.price, 0, oid, "-"))
            book.cancel(oid)
            continue
        side = rnd.randint(0, 1)
        qty = rnd.choice((1, 2, 3, 5, 10, 20))
        if u < 0.85:
            d = int(rnd.expovariate(1 / 6))
            px, tif = (mid - d, "GTC") if side == 0 else (mid + 1 + d, "GTC")
        elif u < 0.89:
            far = rnd.choice((0.3, 0.45, 0.55, 0.9))
            px, tif = (max(1, int(mid * (1 - far))), "GTC") if side == 0 else (int(mid * (1 + far)), "GTC")
        else:
            k = int(rnd.expovariate(1 / 2))
            tif = rnd.choice(("IOC", "GTC", "FOK", "POST"))
            px = ((ask if ask is not None else mid) + k) if side == 0 else ((bid if bid is not None else mid) - k)
            qty *= 4
        if tif == "GTC" and u < 0.89:  # passive: never cross
            px = min(px, ask - 1) if side == 0 and ask is not None else px
            px = max(px, bid + 1) if side == 1 and bid is not None else px
        ops.append(("A", side, max(px, 1), qty, next_id, tif))
        book.submit(next_id, side, max(px, 1), qty, tif)
        next_id += 1
    return ops


@pytest.mark.parametrize("drift,seed", [(0.30, 5), (-0.25, 6), (0.6, 7)])
def test_drifting_mid_digest(drift, seed):
    ops = drifting_ops(seed, 15000, drift)
    assert c_digest(to_text(ops)) == ref_digest(ops)
    # the book did recentre, and kept the far orders exact
    parsed = parse_workload(to_text(ops).encode())
    with replay_book(parsed) as book:
        book.replay(parsed)
        assert book.stats().recentres >= 3


def test_cli_replay_prints_refmatch_line(tmp_path):
    ops, _ = workload.generate(4, 3000, workload.VARIANTS["normal"])
    path = tmp_path / "w.txt"
    workload.write_text(str(path), ops, ["test workload"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert rsx_main(["book", "replay", str(path)]) == 0
    ref = io.StringIO()
    with contextlib.redirect_stdout(ref):
        refmatch.main([str(path)])
    assert out.getvalue() == ref.getvalue()
    assert out.getvalue().startswith("ops=3000 fills=")


def test_cli_replay_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("# header\nA B 100 5 1 GTC\nA X 100 5 2 GTC\n")
    assert rsx_main(["book", "replay", str(bad)]) == 2
    assert "line 3" in capsys.readouterr().err
    assert rsx_main(["book", "replay", str(tmp_path / "missing.txt")]) == 2
    bad.write_text("A B 100 5 1 DAY\n")
    assert rsx_main(["book", "replay", str(bad)]) == 2
    bad.write_text("A B 99999999999999999999 5 1 GTC\n")
    assert rsx_main(["book", "replay", str(bad)]) == 2


@pytest.mark.parametrize("variant,cut", [("normal", 3000), ("deep", 7000)])
def test_snapshot_mid_workload_gives_the_same_digest(variant, cut):
    """Replay the first part, snapshot, restore into a new book, replay the rest there:
    the combined fills and the final book give refmatch's digest for the whole workload."""
    import numpy as np

    from rsx_appliance.book import Book

    ops, _ = workload.generate(11, 10000, workload.VARIANTS[variant])
    parsed = parse_workload(to_text(ops).encode(), users=64, stp=Stp.NONE)
    with replay_book(parsed) as first:
        head = first.replay(parsed[:cut])
        snap = first.snapshot(wal_seq=cut)
    restored, seq = Book.restore(snap, hugepages="never")
    with restored:
        assert seq == cut
        tail = restored.replay(parsed[cut:])
        fills = np.concatenate([head, tail])
        assert digest_line(digest(parsed, restored, fills)) == ref_digest(ops)
