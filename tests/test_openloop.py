"""Open-loop load shows a stall that a closed loop hides (coordinated omission)."""

from __future__ import annotations

import json
import time

import pytest

from rsx_appliance.cli import main
from rsx_appliance.latency import Histogram, load_run
from rsx_appliance.latency.report import warnings_for
from rsx_appliance.openloop import OpenLoop

STALL_AT, STALL_S, RATE, COUNT = 100, 0.1, 1000, 500


def stalling_target(i: int) -> None:
    """Answers at once, except one 100 ms stall (a GC pause, an fsync, a page fault storm)."""
    if i == STALL_AT:
        time.sleep(STALL_S)


def test_open_loop_charges_the_stall_to_everything_behind_it(tmp_path):
    res = OpenLoop(RATE, count=COUNT).run(stalling_target, name="stall", setup={"stall_ms": 100})
    assert res.count == COUNT and res.latency.total == COUNT and res.service.total == COUNT
    # ~100 operations were due during the stall: each waited for it
    assert res.max_lag_ns >= 0.08e9
    assert res.latency.percentile(90) >= 20_000_000          # >= 20 ms: the stall is visible
    assert res.latency.percentile(99) >= 80_000_000
    # the closed-loop view (service time) sees one slow sample: p90 stays far below 1 ms
    assert res.service.percentile(90) < 1_000_000
    assert res.service.percentile(100) >= 0.09e9
    assert res.latency.percentile(90) > 20 * res.service.percentile(90)
    run = res.run
    load = run.setup["load"]
    assert load["mode"] == "open-loop" and load["offered_rate_per_s"] == RATE and load["count"] == COUNT
    # ~100 operations piled up behind the stall, then the sender caught up: it did not fall behind
    assert 80 <= load["max_backlog"] <= 120 and res.max_backlog == load["max_backlog"]
    assert load["max_lag_ns"] == res.max_lag_ns
    assert load["achieved_rate_per_s"] >= 0.99 * RATE and not res.fell_behind
    assert run.setup["cpu"]["wall_s"] >= 0.45
    back = res.save(tmp_path / "stall.lat.json")
    assert back.exists()
    assert not any("fell behind" in w for w in warnings_for(load_run(back)))


def saturated_target(i: int) -> None:
    """Takes 2 ms per operation at 1000 offered per second: the queue only grows."""
    time.sleep(0.002)


def test_a_run_that_fell_behind_says_so(tmp_path, capsys):
    res = OpenLoop(RATE, count=200).run(saturated_target, name="saturated")
    assert res.fell_behind and res.achieved_rate < 0.6 * RATE
    assert res.max_backlog >= 90  # about half of the 200 operations were due and unsent at the end
    path = res.save(tmp_path / "sat.lat.json")
    warnings = warnings_for(load_run(path))
    assert any("fell behind its schedule" in w and "backlog peaked at" in w for w in warnings), warnings
    assert main(["report", str(path)]) == 0
    assert "warning: the load fell behind its schedule" in capsys.readouterr().out
    assert main(["report", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["runs"][0]["fell_behind"] is True
    assert doc["runs"][0]["load"]["max_backlog"] == res.max_backlog


def test_schedule_users_report_their_load():
    ol = OpenLoop(2000, count=100)
    for i, _ in ol.schedule():
        if i == 10:
            time.sleep(0.02)  # 40 operations fall due meanwhile
    stats = ol.load_stats()
    assert stats["count"] == 100 and 35 <= stats["max_backlog"] <= 50
    assert stats["max_lag_ns"] >= 15_000_000


def test_post_hoc_correction_recovers_the_hidden_samples():
    """HdrHistogram's record_corrected on closed-loop data back-fills what a fixed-rate client saw."""
    closed = [10_000] * (COUNT - 1) + [int(STALL_S * 1e9)]
    raw, corrected = Histogram(), Histogram()
    raw.record(closed)
    corrected.record_corrected(closed, int(1e9 / RATE))
    assert raw.percentile(99) < 20_000  # the stall hides above p99.8
    assert corrected.total == COUNT - 1 + 100
    assert corrected.percentile(90) >= 20_000_000


def test_schedule_is_fixed_rate():
    ol = OpenLoop(20_000, count=200)
    times = [t for _, t in ol.schedule()]
    gaps = {b - a for a, b in zip(times, times[1:])}
    assert gaps <= {49_999, 50_000, 50_001}


@pytest.mark.parametrize("kw", [dict(rate=0, count=1), dict(rate=float("inf"), count=1),
                                dict(rate=10), dict(rate=10, count=1, duration=1.0),
                                dict(rate=10, count=0), dict(rate=10, duration=-1.0)])
def test_bad_parameters(kw):
    rate = kw.pop("rate")
    with pytest.raises(ValueError):
        OpenLoop(rate, **kw)
