"""What the operate page shows, from status files and histograms (specs/console.md 5.2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from rsx_appliance.config import default_config, streams
from rsx_appliance.console.latency import LatencyWindows
from rsx_appliance.console.processes import ProcessTable, read_docs, stream_rows
from rsx_appliance.latency import Histogram
from rsx_appliance.status import StatusFile


@pytest.fixture
def cfg(tmp_path):
    return default_config(tmp_path)


def write(cfg, name: str, doc: dict) -> None:
    path = cfg.data_dir / "run" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_process_states_from_status_files(cfg):
    now = time.time_ns()
    me = os.getpid()
    born = int(psutil.Process(me).create_time() * 1e9)
    gone = dead_pid()
    StatusFile(cfg.data_dir / "run" / "gateway.0.json", "gateway.0", "gateway").write("ready")
    write(cfg, "marketdata.0", {"name": "marketdata.0", "pid": gone, "state": "ready", "started_ns": now,
                                "updated_ns": now})
    write(cfg, "mark.0", {"name": "mark.0", "pid": gone, "state": "stopping", "started_ns": now, "updated_ns": now})
    write(cfg, "risk.0", {"name": "risk.0", "pid": gone, "state": "failed", "error": "journal: bad CRC at 7",
                          "started_ns": now, "updated_ns": now})
    write(cfg, "me.BTC-PERP", {"name": "me.BTC-PERP", "pid": me, "state": "ready", "started_ns": born + 10**8,
                               "updated_ns": now - 10 * 10**9})            # alive, but silent for 10 s
    write(cfg, "me.ETH-PERP", {"name": "me.ETH-PERP", "pid": me, "state": "ready",
                               "started_ns": born - 100 * 10**9, "updated_ns": now})  # a reused pid
    write(cfg, "maker.0", {"name": "maker.0", "pid": me, "role": "maker", "state": "ready", "started_ns": born,
                           "updated_ns": now})                              # not in the config: shown too
    (cfg.data_dir / "run" / "junk.json").write_text("{not json")
    write(cfg, "up", {"name": "up", "pid": me, "state": "ready", "started_ns": born, "updated_ns": now,
                      "processes": {"gateway.0": {"restarts": 3, "state": "ready"},
                                    "recorder.0": {"restarts": 5, "state": "restarting"},
                                    "console.0": {"restarts": 10, "state": "failed", "reason": "crashed 10 times"}}})
    table = ProcessTable(cfg)
    rows = {r["name"]: r for r in table.rows(read_docs(cfg))}
    assert [r for r in rows][:len(cfg.processes)] == [p.name for p in cfg.processes]
    gw = rows["gateway.0"]
    assert (gw["state"], gw["pid"], gw["restarts"], gw["configured"]) == ("ready", me, 3, True)
    assert gw["cpu_pct"] is None and gw["rss_bytes"] > 0      # no interval yet for the CPU
    assert rows["marketdata.0"]["state"] == "dead" and rows["marketdata.0"]["pid"] is None
    assert rows["mark.0"]["state"] == "stopped"
    assert (rows["risk.0"]["state"], rows["risk.0"]["error"]) == ("failed", "journal: bad CRC at 7")
    assert rows["me.BTC-PERP"]["state"] == "stale" and rows["me.BTC-PERP"]["status_age_s"] >= 10
    assert rows["me.ETH-PERP"]["state"] == "dead"
    assert (rows["recorder.0"]["state"], rows["recorder.0"]["restarts"]) == ("restarting", 5)  # the supervisor says
    assert (rows["console.0"]["state"], rows["console.0"]["error"]) == ("failed", "crashed 10 times")
    assert rows["gateway.0"]["cpu_s"] >= 0
    assert (rows["maker.0"]["configured"], rows["maker.0"]["role"], rows["maker.0"]["state"]) == (False, "maker", "ready")
    assert rows["store.0"]["state"] == "not running" and "up" not in rows
    assert rows["junk"]["state"] == "unreadable" and "junk.json" in rows["junk"]["error"]
    sum(range(3_000_000))   # some CPU for the second reading
    rows = {r["name"]: r for r in table.rows(read_docs(cfg))}
    assert rows["gateway.0"]["cpu_pct"] is not None and rows["gateway.0"]["cpu_pct"] > 0


def test_stream_rows_owner_consumers_and_lag(cfg):
    write(cfg, "me.BTC-PERP", {"name": "me.BTC-PERP", "streams": {"me 1": {"stream_id": 1, "seq": 120,
                                                                            "durable_seq": 118}}})
    write(cfg, "gateway.0", {"name": "gateway.0", "streams": {
        "me 1": {"stream_id": 1, "applied_seq": 110, "lag": 4, "state": "live"},
        "gateway 0 -> risk 0": {"stream_id": streams.gateway_to_risk(0, 0), "seq": 9}}})
    write(cfg, "marketdata.0", {"name": "marketdata.0", "streams": {"1": {"stream_id": 1, "applied_seq": 100}}})
    write(cfg, "risk.0", {"name": "risk.0", "streams": {"x": {"stream_id": streams.gateway_to_risk(0, 0),
                                                              "applied_seq": 9}, "bad": "nonsense"}})
    rows = {r["stream"]: r for r in stream_rows(cfg, read_docs(cfg))}
    me1 = rows["me 1"]
    assert (me1["owner"], me1["seq"], me1["durable_seq"], me1["journaled"]) == ("me.BTC-PERP", 120, 118, True)
    # lag against the owner's durable seq (what rsx status shows), not what the consumer thinks it missed
    assert me1["consumers"] == [{"name": "gateway.0", "applied_seq": 110, "lag": 8, "state": "live"},
                                {"name": "marketdata.0", "applied_seq": 100, "lag": 18, "state": None}]
    link = rows["gateway 0 -> risk 0"]
    assert (link["owner"], link["seq"], link["journaled"]) == ("gateway.0", 9, False)
    assert link["consumers"] == [{"name": "risk.0", "applied_seq": 9, "lag": None, "state": None}]  # not journaled
    assert rows["me 2"]["owner"] == "me.ETH-PERP" and rows["me 2"]["seq"] is None   # configured, silent
    order = [r["journaled"] for r in stream_rows(cfg, read_docs(cfg))]
    assert order == sorted(order, reverse=True)   # journaled streams first


def hist(values) -> Histogram:
    h = Histogram()
    h.record(np.asarray(values, dtype=np.int64))
    return h


def test_latency_window_is_the_values_of_the_last_seconds():
    rng = np.random.default_rng(3)
    batches = [rng.integers(1_000, 1_000_000, n) for n in (5_000, 3_000, 2_000, 1_000)]
    w = LatencyWindows(10)
    cum: list = []
    views = []
    for t, b in zip((0.0, 5.0, 12.0, 16.0), batches, strict=True):
        cum.extend(b.tolist())
        h = {"me_in_to_sent": hist(cum)}
        w.observe("me.BTC-PERP", h, t)
        views.append(w.view("me.BTC-PERP", h, t))
    # at t=12 the copy taken at t=0 is the newest at least 10 s old: the window holds batches 1 and 2
    v = views[2]
    assert v["window_s"] == 12.0 and not v["restarted"]
    st = v["stages"][0]
    expect = hist(np.concatenate(batches[1:3]))
    assert st["window"]["summary"] == expect.summary("ns")
    assert st["total"]["summary"]["count"] == sum(len(b) for b in batches[:3])
    # at t=16 the copy of t=5 is: batches 2 and 3
    assert views[3]["window_s"] == 11.0
    assert views[3]["stages"][0]["window"]["summary"] == hist(np.concatenate(batches[2:])).summary("ns")
    spec = views[3]["stages"][0]["total"]["spectrum"]
    assert spec["labels"][-1] == "100% (max)" and spec["x"][-1] == sum(len(b) for b in batches)
    assert spec["y_ns"] == sorted(spec["y_ns"])   # a spectrum never goes down


def test_latency_window_starts_again_after_a_restart():
    w = LatencyWindows(30)
    w.observe("me.BTC-PERP", {"s": hist([1000] * 500)}, 0.0)
    fresh = {"s": hist([5000] * 20)}      # a new process: fewer values than before
    w.observe("me.BTC-PERP", fresh, 2.0)
    v = w.view("me.BTC-PERP", fresh, 2.0)
    assert v["restarted"] and v["stages"][0]["window"]["summary"]["count"] == 20
    later = w.view("me.BTC-PERP", fresh, 7.0)
    assert (later["window_s"], later["restarted"]) == (5.0, True)
    assert v["stages"][0]["window"]["summary"]["p50_ns"] == fresh["s"].percentile(50)
    empty = w.view("other", {"s": Histogram()}, 2.0)
    assert empty["stages"][0]["window"]["summary"]["count"] == 0
    assert empty["stages"][0]["window"]["spectrum"] == {"x": [], "y_ns": [], "labels": []}



def test_the_collector_works_only_while_a_page_watches(cfg):
    from rsx_appliance.console.collect import Collector

    now = [100.0]
    c = Collector(cfg, clock=lambda: now[0])
    assert not c.watched() and not c.tuning_due() and c.collections == 0
    c.demand()                                   # the first request collects at once
    assert c.watched() and c.collections == 1 and c.tuning_due()
    now[0] += cfg.console.refresh_s / 2
    c.demand()                                   # a fresh snapshot is served as it is
    assert c.collections == 1
    now[0] += cfg.console.refresh_s
    c.demand()
    assert c.collections == 2
    now[0] += max(10.0, 3 * cfg.console.refresh_s)   # nobody asked since: the console rests
    assert not c.watched() and not c.tuning_due()
