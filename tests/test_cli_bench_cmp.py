"""`rsx bench cmp` runs the harness and prints one JSON object (specs/cmp.md section 11)."""

from __future__ import annotations

import json

from rsx_appliance.cli import main


def test_bench_cmp_udp_json(capsys):
    rc = main(["bench", "cmp", "--backend", "udp", "--rtt", "500", "--warmup", "50", "--records", "20000",
               "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["failed"] is False
    assert out["backend"] == "udp" and out["topology"] == "loopback"
    rtt = out["rtt"]
    assert rtt["round_trips"] == 500 and 0 < rtt["min_ns"] <= rtt["p50_ns"] <= rtt["p99_ns"] <= rtt["max_ns"]
    assert rtt["target_p50_ns"] == 7000
    assert out["throughput"]["records"] == 20000 and out["throughput"]["records_per_s"] > 0
    lossy = out["lossy_throughput"]
    assert lossy["complete_and_in_order"] is True and lossy["dropped"] > 0 and lossy["recovered"] > 0
    assert lossy["to_loss_free_ratio"] > 0
    assert out["other_cpu_s"] >= 0


def test_bench_cmp_bad_usage(capsys):
    assert main(["bench", "cmp", "--phases", "nope"]) == 2
    assert "unknown phase" in capsys.readouterr().err
    assert main(["bench", "cmp", "--records", "0"]) == 2
