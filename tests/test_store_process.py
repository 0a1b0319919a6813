"""`rsx store` as a process: SIGKILL in the middle of its batches, restart, no duplicate and no gap;
a second store on the same database is refused; `rsx store info`."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from rsx_appliance.store.db import open_database
from rsx_appliance.store.schema import SCHEMA_VERSION

from storeutil import MeStandIn  # noqa: F401  (the stand-ins live there)
from test_store import RISK0, Venue, check_equal, tips_of
from walutil import RSX, start_server


def start_servers(venue):
    procs = []
    for sid, d in venue.dirs():
        name = f"me.{venue.cfg.symbol(sid).name}" if sid != RISK0 else "risk.0"
        procs.append(start_server(d, venue.cfg.process(name).dxs[1], "--stream", str(sid)))
    return procs


def store_proc(venue, *extra):
    return subprocess.Popen([*RSX, "store", "--config", str(venue.cfg_path), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ready(venue, pid):
    try:
        st = json.loads((venue.cfg.data_dir / "run" / "store.0.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return st["pid"] == pid and st["state"] == "ready"


def applied(venue):
    try:
        db = open_database(venue.cfg.store.url, readonly=True)
    except Exception:
        return {}
    try:
        return dict(db.query("SELECT stream_id, applied_seq FROM stream_tips"))
    except Exception:
        return {}
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_mid_batch_then_restart_no_duplicate_no_gap(tmp_path):
    # small transactions: many commits to land in while the store catches up
    venue = Venue(tmp_path, seed=7, orders=4000, batch_records=100)
    venue.settle_funding()
    want = tips_of(venue)
    servers = start_servers(venue)
    rng = random.Random(11)
    kills = partial = 0
    try:
        deadline = time.monotonic() + 180
        while True:
            p = store_proc(venue)
            if kills < 4 and applied(venue) != want:
                # kill it while it is writing: once it made progress, at a random moment after
                before = applied(venue)
                while applied(venue) == before:
                    assert p.poll() is None, p.stderr.read()
                    assert time.monotonic() < deadline, "the store made no progress"
                    time.sleep(0.01)
                time.sleep(rng.uniform(0, 0.05))
                p.send_signal(signal.SIGKILL)
                p.wait(10)
                kills += 1
                got = applied(venue)
                partial += any(got.get(k, 0) < v for k, v in want.items())
                continue
            while time.monotonic() < deadline:
                got = applied(venue)
                if all(got.get(k, 0) >= v for k, v in want.items()) and ready(venue, p.pid):
                    break
                assert p.poll() is None, p.stderr.read()
                time.sleep(0.1)
            p.send_signal(signal.SIGTERM)
            assert p.wait(20) == 0, p.stderr.read()
            break
    finally:
        for s in servers:
            s.kill()
            s.wait()
    got = applied(venue)
    assert got == want
    assert partial >= 2, "the kills must land while the store is still behind"
    db = open_database(venue.cfg.store.url, readonly=True)
    check_equal(venue, db)  # every row once: the primary keys would have refused a duplicate anyway
    status = json.loads((venue.cfg.data_dir / "run" / "store.0.json").read_text())
    assert status["state"] == "stopped"
    venue.close()


def test_second_store_on_one_database_is_refused_and_info(tmp_path):
    venue = Venue(tmp_path, seed=2, orders=50)
    want = tips_of(venue)
    servers = start_servers(venue)
    try:
        p = store_proc(venue)
        deadline = time.monotonic() + 60
        while applied(venue) != want or not ready(venue, p.pid):
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.05)
        q = store_proc(venue)
        assert q.wait(30) == 3
        assert "another rsx store is writing" in q.stderr.read()
        p.send_signal(signal.SIGINT)
        assert p.wait(20) == 130  # Ctrl-C: an orderly stop, exit 130 (specs/cli.md)
    finally:
        for s in servers:
            s.kill()
            s.wait()
    out = subprocess.run([*RSX, "store", "info", "--config", str(venue.cfg_path), "--json"],
                         capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert {s["stream_id"]: s["applied_seq"] for s in info["streams"]} == want
    assert info["rows"]["fills"] > 0 and info["schema_version"] == SCHEMA_VERSION
    venue.close()


def test_a_bad_store_url_is_a_usage_error(tmp_path):
    cfg = tmp_path / "rsx.toml"
    cfg.write_text('version = 1\n[store]\nurl = "mysql://x/y"\n[[symbols]]\nid = 1\nname = "A"\n'
                   'price_decimals = 2\nqty_decimals = 2\ntick = "0.01"\nlot = "0.01"\n')
    r = subprocess.run([*RSX, "store", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "store.url" in r.stderr and "Traceback" not in r.stderr
