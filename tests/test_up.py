"""`rsx up` and `rsx status` (specs/operations.md 3-7): the whole exchange under one supervisor.

One exchange for the module (starting one takes several seconds here): the ready line, every process
ready, `rsx status`, a second `rsx up` refused, an order through `rsx order`, a child SIGKILLed and
restarted, then SIGTERM: every process stopped in order, and a new `rsx up` on the same directory
finds the fill. Separately: a process that cannot start fails the start cleanly; a process running on
the directory without a supervisor is refused.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from cliutil import check
from exchange import Up, _alive, exchange_toml
from rsx_appliance.launch import rsx_argv

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    u = Up(tmp_path_factory.mktemp("up"))
    with u:
        yield u


def test_ready_line_and_every_process(up):
    ready = up.ready
    check("up", json.dumps(ready))
    names = [p.name for p in up.cfg.processes]
    assert list(ready["processes"]) == names
    assert ready["endpoints"] == {"gateway.0": up.url, "marketdata.0": up.md_url, "console.0": up.console_url}
    assert ready["data_dir"] == str(up.data) and ready["config"] == str(up.config)
    for name, pid in ready["processes"].items():
        doc = up.status(name)
        assert doc["state"] == "ready" and doc["pid"] == pid, (name, doc)
    sup = up.supervisor()
    assert sup["state"] == "ready" and sup["pid"] == up.proc.pid
    assert all(p["restarts"] == 0 for p in sup["processes"].values())
    # the printed token opens one connection
    from rsx_appliance.client import SyncClient

    with SyncClient(up.url, token=ready["token"]) as c:
        assert c.account().collateral == "1000000.000000"


def test_status(up):
    r = up.rsx("status", "--json", "--cpu-interval", "0.2")
    assert r.returncode == 0, r.stderr
    doc = check("status", r.stdout)[0]
    assert doc["ready"] and doc["supervisor"]["pid"] == up.proc.pid
    rows = {p["name"]: p for p in doc["processes"]}
    assert set(rows) == {p.name for p in up.cfg.processes}
    for row in rows.values():
        assert row["state"] == "ready" and row["pid"] and row["restarts"] == 0 and row["cpu_s"] is not None
    streams = {s["stream"]: s for s in doc["streams"]}
    me1 = streams["me 1"]
    assert me1["owner"] == "me.BTC-PERP" and me1["durable_seq"] >= 1
    assert {c["name"] for c in me1["consumers"]} >= {"risk.0", "marketdata.0", "gateway.0", "recorder.0"}
    assert streams["risk 0"]["owner"] == "risk.0" and streams["mark 0"]["owner"] == "mark.0"
    text = up.rsx("status")
    n = len(up.cfg.processes)
    assert text.returncode == 0 and f"{n} of {n} processes ready" in text.stdout and "me.BTC-PERP" in text.stdout
    # without --config: the file the supervisor recorded
    bare = subprocess.run(rsx_argv("status", "--data", str(up.data), "--json", "--cpu-interval", "0"),
                          capture_output=True, text=True, timeout=60)
    assert bare.returncode == 0 and json.loads(bare.stdout)["config"] == str(up.config)


def test_a_second_up_is_refused(up):
    r = subprocess.run(rsx_argv("up", "--config", str(up.config), "--data", str(up.data)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3
    assert r.stderr.strip() == (f"rsx up: error: {up.data} is already run by rsx up (pid {up.proc.pid}, since "
                                f"{json.loads((up.data / 'run' / 'rsx-up.lock').read_text())['since']}): stop it "
                                f"first (Ctrl-C in its terminal, or kill -TERM {up.proc.pid})")
    assert up.supervisor()["pid"] == up.proc.pid      # the running one is untouched


def test_an_order_through_rsx_order(up):
    buy = up.rsx("order", "new", "BTC-PERP", "buy", "0.010", "60000", "--user", "1", "--cid", "up-b1", "--json")
    assert buy.returncode == 0, buy.stderr
    assert json.loads(buy.stdout)["status"] == "resting"
    sell = up.rsx("order", "new", "BTC-PERP", "sell", "0.010", "60000", "--user", "2", "--cid", "up-s1", "--json")
    assert sell.returncode == 0, sell.stderr
    assert json.loads(sell.stdout)["status"] == "filled"
    pos = json.loads(up.rsx("order", "positions", "--user", "1", "--json").stdout)
    assert [(p["symbol"], p["qty"]) for p in pos["positions"]] == [("BTC-PERP", "0.010000")]


def test_a_killed_process_is_restarted(up):
    pid = up.pid("me.ETH-PERP")
    os.kill(pid, signal.SIGKILL)
    p = up.wait_ready("me.ETH-PERP", restarts=1)
    assert p["pid"] != pid and p["last_exit"]["signal"] == signal.SIGKILL
    kinds = [(e["event"], e.get("process")) for e in up.events]
    assert ("exited", "me.ETH-PERP") in kinds and ("restarted", "me.ETH-PERP") in kinds
    exited = next(e for e in up.events if e["event"] == "exited")
    assert exited["why"] == "killed by SIGKILL" and exited["restart_in_s"] == 1.0
    for e in up.events:
        check("up", json.dumps(e))
    r = up.rsx("status", "--json", "--cpu-interval", "0")
    rows = {p["name"]: p for p in json.loads(r.stdout)["processes"]}
    assert rows["me.ETH-PERP"]["restarts"] == 1 and rows["me.ETH-PERP"]["pid"] == p["pid"]
    # it serves again: an ETH order rests
    r = up.rsx("order", "new", "ETH-PERP", "buy", "0.10", "2900", "--user", "3", "--cid", "up-e1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "resting", r.stdout + r.stderr


def test_status_latency_writes_run_files(up, tmp_path):
    r = up.rsx("status", "--latency", "--json", "--cpu-interval", "0", "--out", str(tmp_path))
    doc = check("status", r.stdout)[0]
    lat = doc["latency"]["me.BTC-PERP"]
    assert lat["stages"]["me_to_durable"]["count"] >= 2 and lat["file"].startswith(str(tmp_path))
    rep = subprocess.run(rsx_argv("report", lat["file"], "--json"), capture_output=True, text=True, timeout=60)
    assert rep.returncode == 0 and "me_to_durable" in json.loads(rep.stdout)["runs"][0]["stages"]


def test_sigterm_stops_in_order_and_nothing_is_lost(up):
    """Last in the module: SIGTERM stops every process in reverse start order (each exits 0), then a new
    `rsx up` on the same directory has the position of the earlier fill."""
    pids = dict(up.ready["processes"], **{"me.ETH-PERP": up.pid("me.ETH-PERP")})
    assert up.stop(signal.SIGTERM) == 0
    sup = up.supervisor()
    assert sup["state"] == "stopped"
    exits = {n: p["last_exit"] for n, p in sup["processes"].items()}
    assert all(e["code"] == 0 for e in exits.values()), exits
    order = [n for n, _ in sorted(exits.items(), key=lambda kv: kv[1]["at_ns"])]
    roles = [n.split(".")[0] for n in order]
    assert roles.index("gateway") < roles.index("risk") < roles.index("me") < roles.index("mark"), order
    assert not any(_alive(pid) for pid in pids.values())
    again = Up(up.work, up.config.read_text())
    with again:
        pos = json.loads(again.rsx("order", "positions", "--user", "2", "--json").stdout)
        assert [(p["symbol"], p["qty"]) for p in pos["positions"]] == [("BTC-PERP", "-0.010000")]


def test_a_process_that_cannot_start_fails_the_start(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        u = Up(tmp_path, exchange_toml(gateway={"port": port}))
        r = subprocess.run(rsx_argv("up", "--config", str(u.config), "--data", str(u.data)),
                           capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("rsx up: error: gateway.0 did not start: ") and str(u.data / "log" / "gateway.0.log") in line
    sup = u.supervisor()
    assert sup["state"] == "stopped"
    assert all(p["state"] in ("stopped", "failed") for p in sup["processes"].values())
    assert sup["processes"]["gateway.0"]["state"] == "failed"
    assert sup["processes"]["recorder.0"]["pid"] is None        # never started: after the gateway
    st = subprocess.run(rsx_argv("status", "--data", str(u.data), "--cpu-interval", "0"), capture_output=True,
                        text=True, timeout=60)
    assert st.returncode == 1 and "NOT READY" in st.stdout


def test_a_process_running_without_a_supervisor_is_refused(tmp_path):
    u = Up(tmp_path)
    me = subprocess.Popen(rsx_argv("me", "--symbol", "ETH-PERP", "--config", str(u.config), "--data", str(u.data)),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 60
        while (u.status("me.ETH-PERP") or {}).get("state") != "ready":
            assert time.monotonic() < end and me.poll() is None
            time.sleep(0.1)
        r = subprocess.run(rsx_argv("up", "--config", str(u.config), "--data", str(u.data)),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 3
        assert r.stderr.strip() == (f"rsx up: error: {u.data}: me.ETH-PERP (pid {me.pid}) already runs on it without "
                                    f"rsx up: stop it first (kill -TERM {me.pid})")
    finally:
        me.terminate()
        me.wait(30)
