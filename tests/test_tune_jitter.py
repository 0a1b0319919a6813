"""`rsx tune jitter`: the numbers, the histogram, bad input, and a deliberately disturbed core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import numpy as np
import pytest

from rsx_appliance.tune import TuneInputError
from rsx_appliance.latency import Histogram
from rsx_appliance.tune.jitter import measure, summarise

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "specs/schemas/tune-jitter.schema.json").read_text())
CPU = max(os.sched_getaffinity(0))


def rsx(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "rsx"
    return subprocess.run([str(exe), "tune", "jitter", *args], capture_output=True, text=True, timeout=120)


def test_summary_numbers_match_numpy():
    rng = np.random.default_rng(7)
    gaps = rng.integers(1001, 5_000_000, size=5000).astype(np.int64)
    hist = Histogram()
    hist.record(gaps)
    res = SimpleNamespace(gaps=5000, loops=10**7, min_period_ns=15, lost_ns=int(gaps.sum()),
                          max_gap_ns=int(gaps.max()), elapsed_ns=10**9, migrated=0)
    s = summarise(3, res, hist, 1000)
    srt = np.sort(gaps)
    # HdrHistogram rank floor(p*N/100 + 0.5), reported as its bucket's highest value (<= 1/1024 above)
    for got, rank in ((s.p99_ns, 4950), (s.p99_9_ns, 4995)):
        exact = int(srt[rank - 1])
        assert exact <= got <= exact + exact // 1024 + 1
    assert s.max_ns == int(gaps.max()) and s.gaps == 5000
    assert sum(b["count"] for b in s.histogram) == 5000  # every gap is in a bucket
    for b in s.histogram:
        n = int(((gaps >= b["lo_ns"]) & (gaps < b["hi_ns"])).sum())
        assert b["count"] == n and b["hi_ns"] == 2 * b["lo_ns"]
    assert s.lost_pct == round(100 * res.lost_ns / 1e9, 3)
    empty = summarise(0, SimpleNamespace(gaps=0, loops=5, min_period_ns=10, lost_ns=0, max_gap_ns=0,
                                         elapsed_ns=10, migrated=0), Histogram(), 1000)
    assert empty.p99_ns is None and empty.histogram == []


def test_every_gap_is_in_the_histogram_and_saved_for_rsx_report(tmp_path):
    (r,) = measure([CPU], 0.1, threshold_ns=50)
    assert r.gaps > 3 and r.hist.total == r.gaps
    assert r.max_ns <= r.hist.max <= r.max_ns + r.max_ns // 1024 + 1  # bucket's highest equivalent value
    assert sum(b["count"] for b in r.histogram) == r.gaps
    run = tmp_path / "jitter.lat.json"
    out = rsx("--cpus", str(CPU), "--seconds", "0.1", "--threshold-ns", "50", "--save", str(run))
    assert out.returncode == 0, out.stderr
    exe = Path(sys.executable).parent / "rsx"
    rep = subprocess.run([str(exe), "report", str(run), "--json"], capture_output=True, text=True, timeout=60)
    assert rep.returncode == 0, rep.stderr
    assert f"cpu{CPU}" in rep.stdout


def test_cli_json_and_table():
    cpus = sorted(os.sched_getaffinity(0))
    out = rsx("--cpus", ",".join(map(str, cpus)), "--seconds", "0.2", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    jsonschema.validate(data, SCHEMA)
    assert [c["cpu"] for c in data["cpus"]] == cpus
    for c in data["cpus"]:
        assert c["loops"] > 1000 and not c["migrated"] and c["seconds"] >= 0.2
        assert c["gaps"] >= sum(b["count"] for b in c["histogram"])
    text = rsx("--cpus", str(CPU), "--seconds", "0.1")
    assert text.returncode == 0 and "P99.9" in text.stdout and f"cpu {CPU} gaps" in text.stdout


@pytest.mark.parametrize("args,match", [
    (["--cpus", "9999", "--seconds", "1"], "CPU 9999 is not available"),
    (["--cpus", "x", "--seconds", "1"], "not a CPU list"),
    (["--cpus", str(CPU), "--seconds", "0"], "--seconds must be in"),
    (["--cpus", str(CPU), "--seconds", "1", "--threshold-ns", "0"], "--threshold-ns must be positive"),
])
def test_bad_arguments(args, match):
    out = rsx(*args)
    assert out.returncode == 2 and match in out.stderr, out.stderr
    with pytest.raises(TuneInputError):
        measure([9999], 1)


def _noisy(cpu: int) -> subprocess.Popen:
    def pin():
        os.sched_setaffinity(0, {cpu})
        if os.geteuid() == 0:
            os.nice(-5)  # a heavier competitor than anything else on the box

    return subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=pin)


def test_disturbed_core_shows_more_gaps_than_quiet():
    """Acceptance: a noisy process pinned to the core makes the jitter numbers worse, measured.

    The machine is shared, so the comparison is made back to back on the same
    core (quiet, then disturbed), and repeated up to three times.
    """
    attempts = []
    for _ in range(3):
        (quiet,) = measure([CPU], 0.4)
        noisy = _noisy(CPU)
        try:
            time.sleep(0.05)
            (busy,) = measure([CPU], 0.4)
        finally:
            noisy.kill()
            noisy.wait()
        attempts.append((quiet.lost_pct, busy.lost_pct, quiet.max_ns, busy.max_ns))
        # the competitor takes a large share of the core, in slices of half a millisecond or more
        # (counts are not compared: a heavier competitor makes fewer, longer gaps)
        if busy.lost_pct >= quiet.lost_pct + 15 and busy.max_ns >= 500_000:
            return
    pytest.fail(f"disturbed core not worse than quiet (lost% quiet, lost% busy, max q, max b): {attempts}")
