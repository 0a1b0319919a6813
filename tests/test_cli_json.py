"""Every command's --json against its schema (specs/schemas/) and the key rules of specs/cli.md section 5.

Each command runs once, small, on data made here; its output must validate against
``specs/schemas/<command>.schema.json`` and every key its schema names must follow the
convention: snake_case, the unit last (``scan_median_ms``, not ``scan_ms_median``),
percentiles spelled p50 .. p99_99. Keys of data maps (stage names, record types,
consumers, sysctls) are data and exempt: their schema has no ``properties``.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("jsonschema", reason="jsonschema not installed (test extra)")

from cliutil import SCHEMAS, check, jsonschema, key_problem  # noqa: E402
from rsx_appliance.cli import main  # noqa: E402
from rsx_appliance.launch import rsx_argv  # noqa: E402

from walutil import free_port, write_stream  # noqa: E402

DATA = Path(__file__).parent / "data" / "java"

def rsx(capsys, *argv, code: int = 0) -> str:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc == code, err
    return out


def test_the_key_rules_catch_what_they_should():
    assert key_problem("scan_ms_median") == "its unit is not last"
    assert key_problem("p999_us") and key_problem("MB_per_s") and key_problem("ratioP50")
    for good in ("scan_median_ms", "records_per_s", "ns_per_op", "p99_9_ns", "p99_99_us", "max_sync_ns",
                 "record_array_ns_per_value", "drop_share", "p50_ratio"):
        assert key_problem(good) is None, good


def test_every_schema_is_a_valid_schema():
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    d = tmp_path_factory.mktemp("wal")
    write_stream(d, 300, mixed=True, file_size=16 << 10)
    from rsx_appliance.wal import consumer_set

    consumer_set(d, "risk-0", 5)
    return d


def test_wal_commands(stream, capsys):
    check("wal-stats", rsx(capsys, "wal", "stats", str(stream), "--json"))
    check("wal-verify", rsx(capsys, "wal", "verify", str(stream), "--json"))
    (doc,) = check("wal-consumers", rsx(capsys, "wal", "consumers", str(stream), "--json"))
    assert doc["consumers"] == {"risk-0": 5}
    rows = check("wal-dump", rsx(capsys, "wal", "dump", str(stream), "--json", "--limit", "20"), lines=True)
    assert len(rows) == 20


def test_version_book_and_report(tmp_path, capsys):
    check("version", rsx(capsys, "version", "--json"))
    w = tmp_path / "w.txt"
    w.write_text("A B 100 5 1 GTC\nA S 100 3 2 GTC\nA S 101 2 3 GTC\n")
    (doc,) = check("book-replay", rsx(capsys, "book", "replay", str(w), "--json"))
    assert doc["best_bid"] == 100 and doc["best_ask"] == 101
    check("report", rsx(capsys, "report", str(DATA / "v0.hlog"), str(DATA / "autoresize.hlog"), "--json"))
    from rsx_appliance.openloop import OpenLoop

    ol = OpenLoop(5000, count=50).run(lambda i: None, name="ol")
    (doc,) = check("report", rsx(capsys, "report", str(ol.save(tmp_path / "ol.lat.json")), "--json"))
    assert doc["runs"][0]["load"]["mode"] == "open-loop"


def test_risk_inspect(tmp_path, capsys):
    from rsx_appliance.risk import RiskShard, WalJournal, shard_stream_id

    j = WalJournal(tmp_path / "j", shard_stream_id(0))
    RiskShard.create(j).snapshot(str(tmp_path / "snap"))
    j.close()
    (doc,) = check("risk-inspect", rsx(capsys, "risk", "inspect", "--snapshots", str(tmp_path / "snap"),
                                       "--journal", str(tmp_path / "j"), "--json"))
    assert doc["snapshots"][0]["valid"] and doc["journal"]["last_seq"] >= 1


def test_tune_commands(tmp_path, monkeypatch, capsys):
    import faketree

    import rsx_appliance.fsutil

    root = faketree.build(tmp_path / "host")
    monkeypatch.setattr(rsx_appliance.fsutil, "Root", faketree.FakeKernel)
    monkeypatch.setenv("RSX_TUNE_STATE_DIR", str(tmp_path / "state"))
    topo = tmp_path / "topo.toml"
    topo.write_text('version = 1\n[nic]\ninterface = "ens1f0"\n[engines]\nsymbols = ["BTC-PERP"]\n'
                    'slab_mib = 256\n[risk]\nshards = 1\n')
    r = ["--root", str(root)]
    check("tune-host", rsx(capsys, "tune", "host", *r, "--json"))
    check("tune-check", rsx(capsys, "tune", "check", *r, "--json", code=1))
    check("tune-plan", rsx(capsys, "tune", "plan", *r, "--topology", str(topo), "--json"))
    check("tune-apply", rsx(capsys, "tune", "apply", *r, "--topology", str(topo), "--json"))
    check("tune-apply", rsx(capsys, "tune", "apply", *r, "--topology", str(topo), "--json", "--execute"))
    check("tune-show", rsx(capsys, "tune", "show", *r, "--json"))
    check("tune-rollback", rsx(capsys, "tune", "rollback", *r, "--json"))
    check("tune-jitter", rsx(capsys, "tune", "jitter", "--cpus", "0", "--seconds", "0.05", "--json"))


def test_benchmarks(tmp_path, capsys):
    w = tmp_path / "w.txt"
    w.write_text("A B 100 5 1 GTC\nA S 100 3 2 GTC\n")
    check("bench-book", rsx(capsys, "bench", "book", str(w), "--repeat", "1", "--json"))
    check("bench-hist", rsx(capsys, "bench", "hist", "--n", "1000", "--rounds", "1", "--json"))
    check("bench-cmp", rsx(capsys, "bench", "cmp", "--rtt", "200", "--warmup", "20", "--records", "5000", "--json"))
    check("bench-cmp", rsx(capsys, "bench", "cmp", "--phases", "rtt", "--rtt", "100", "--warmup", "10", "--json"))
    check("bench-risk", rsx(capsys, "bench", "risk", "--quick", "--repeat", "1", "--orders", "2000", "--fills",
                           "3000", "--exposed", "2000", "--users", "3000", "--replay", "8000", "--json"))
    check("bench-gateway", rsx(capsys, "bench", "gateway", "--quick", "--phases", "codecs,jwt", "--json"))
    (doc,) = check("bench-wal", rsx(capsys, "bench", "wal", "all", "--short", "--dir", str(tmp_path / "b"), "--json"))
    assert [c["case"] for c in doc["cases"]] == ["latency", "append", "durable", "replay"]
    assert not list((tmp_path / "b").iterdir())  # cleans up after itself


def test_config_show(capsys):
    check("config-show", rsx(capsys, "config", "show", "--json"))


@pytest.mark.slow
def test_process_benchmarks(capsys):
    """The real rsx mark and rsx marketdata processes under their benchmarks (a few seconds each)."""
    (doc,) = check("bench-mark", rsx(capsys, "bench", "mark", "--ticks", "200", "--rate", "1000", "--shards", "1",
                                     "--json"))
    check("mark", json.dumps(doc["ready"]))
    (doc,) = check("bench-marketdata", rsx(capsys, "bench", "marketdata", "--subscribers", "4", "--rate", "500",
                                           "--duration", "1", "--warm", "100", "--json"))
    check("marketdata", json.dumps(doc["ready"]))
    check("bench-gateway", rsx(capsys, "bench", "gateway", "--quick", "--phases", "gateway,stacks", "--json"))


def test_bench_e2e(tmp_path, capsys):
    """`rsx bench e2e` smoke: a private exchange, a small open-loop rate for 2 s, a run file rsx report reads."""
    from rsx_appliance.latency import load_run

    out = tmp_path / "e2e.lat.json"
    (doc,) = check("bench-e2e", rsx(capsys, "bench", "e2e", "--rate", "200", "--duration", "2", "--warmup", "0.5",
                                    "--connections", "2", "--idle", "1", "--save", str(out), "--json"))
    assert doc["load"]["count"] > 0 and doc["stages"]["total"]["count"] == doc["load"]["count"]
    assert set(doc["stages"]) == {"client_to_gateway", "gateway_to_risk", "risk", "risk_to_me", "me_to_client",
                                  "total"}
    assert doc["idle_cpu_pct"] is not None and doc["targets"]["fsync_p50_us"]["target"] == 450
    assert "total" in {s.name for s in load_run(out).stages.values()}


@pytest.mark.parametrize("args", [["--rate", "1"], ["--duration", "0"], ["--connections", "1"], ["--idle", "-1"]])
def test_bench_e2e_refuses_bad_arguments_before_starting_anything(args):
    r = subprocess.run(rsx_argv("bench", "e2e", *args), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("rsx bench e2e: error: --rate >= 2") and not r.stdout


def test_services_print_json_lines(stream, tmp_path):
    port = free_port()
    srv = subprocess.Popen(rsx_argv("dxs", "serve", "--wal", str(stream), "--port", str(port), "--json"),
                           stdout=subprocess.PIPE, text=True)
    rec = None
    try:
        (doc,) = check("dxs-serve", srv.stdout.readline(), lines=True)
        assert doc["port"] == port and doc["stream_id"] == 1
        rec = subprocess.Popen(rsx_argv("recorder", "--archive", str(tmp_path / "arch"), "--stream",
                                        f"1=127.0.0.1:{port}", "--json"), stdout=subprocess.PIPE, text=True)
        (doc,) = check("recorder", rec.stdout.readline(), lines=True)
        assert doc == {"event": "started", "stream_ids": [1], "archive": str(tmp_path / "arch")}
        rec.send_signal(signal.SIGTERM)
        assert rec.wait(20) == 0
    finally:
        for p in (rec, srv):
            if p is not None:
                p.kill()
                p.wait()
