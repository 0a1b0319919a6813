"""`rsx wal dump|stats|verify|follow|consumers` and `rsx bench wal`."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from rsx_appliance.cli import main
from rsx_appliance.wal import WalWriter, consumer_set

from walutil import RSX, TS0, append_n, write_stream


def rsx(capsys, *args) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def stream(tmp_path):
    write_stream(tmp_path, 2000, mixed=True, file_size=16 << 10)
    return tmp_path


def test_verify(stream, capsys, tmp_path_factory):
    rc, out, _ = rsx(capsys, "wal", "verify", str(stream))
    assert rc == 0 and "OK" in out and "seqs 1..2000" in out
    # a single file verifies on its own
    one = sorted(stream.glob("1_*_*.wal"))[0]
    assert rsx(capsys, "wal", "verify", str(one))[0] == 0
    # a flipped bit: exit 1, and where
    victim = sorted(stream.glob("1_*_*.wal"), key=lambda p: int(p.name.split("_")[1]))[3]
    data = bytearray(victim.read_bytes())
    data[500] ^= 0x40
    victim.write_bytes(bytes(data))
    rc, out, _ = rsx(capsys, "wal", "verify", str(stream))
    assert rc == 1 and "BREAK" in out and victim.name in out and "offset" in out
    # a missing path: usage error
    rc, _, err = rsx(capsys, "wal", "verify", str(stream / "nope"))
    assert rc == 2 and "no such file" in err
    # a seq gap between files: exit 1
    gap = tmp_path_factory.mktemp("gap")
    write_stream(gap, 100, file_size=1 << 20, prealloc=False)
    a = next(gap.glob("*_active.wal"))
    (gap / "1_1_100.wal").write_bytes(a.read_bytes())
    a.unlink()
    write_stream(gap, 50, file_size=1 << 20, prealloc=False, first_seq=1)   # continues at 101
    (gap / "1_101_active.wal").rename(gap / "1_103_active.wal")
    rc, out, _ = rsx(capsys, "wal", "verify", str(gap))
    assert rc == 1 and "seq" in out


def test_dump_filters(stream, capsys):
    rc, out, _ = rsx(capsys, "wal", "dump", str(stream), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and [r["seq"] for r in rows] == list(range(1, 2001))
    assert all(r["qty"] == r["seq"] for r in rows)
    assert {r["type"] for r in rows} == {"FILL", "ORDER_INSERTED"}

    def seqs(*args):
        rc, out, _ = rsx(capsys, "wal", "dump", str(stream), *args, "--json")
        assert rc == 0
        return [json.loads(line)["seq"] for line in out.splitlines()]

    fills = [r["seq"] for r in rows if r["type"] == "FILL"]
    assert seqs("--type", "fill") == fills
    assert seqs("--from", "1990") == list(range(1990, 2001))
    assert seqs("--from", "10", "--to", "12") == [10, 11, 12]
    assert seqs("--symbol", "2") == [r["seq"] for r in rows if r["symbol_id"] == 2]
    users = [r["seq"] for r in rows if 7 in (r.get("user_id"), r.get("taker_user_id"))]
    assert users == [7, 1007] and seqs("--user", "7") == users
    assert seqs("--since", str(TS0 + 1500), "--until", str(TS0 + 1502)) == [1500, 1501, 1502]
    iso = dt.datetime.fromtimestamp(TS0 // 10**9, dt.timezone.utc).replace(microsecond=1)
    assert seqs("--since", iso.replace(tzinfo=None).isoformat()) == list(range(1000, 2001))
    assert seqs("--until", iso.isoformat()) == list(range(1, 1001))
    assert seqs("--type", "BBO") == []
    assert seqs("--limit", "3") == [1, 2, 3]
    rc, _, err = rsx(capsys, "wal", "dump", str(stream), "--since", "yesterday")
    assert rc == 2 and "not a time" in err
    # text by default: one line per record, seq and type first
    rc, out, _ = rsx(capsys, "wal", "dump", str(stream), "--limit", "2")
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 2 and lines[0].startswith("1 ") and "qty=1" in lines[0]


def test_stats(stream, capsys):
    consumer_set(stream, "risk-0", 1500)
    rc, out, _ = rsx(capsys, "wal", "stats", "--json", str(stream))
    s = json.loads(out)
    assert rc == 0 and s["records"] == 2000 and s["first_seq"] == 1 and s["last_seq"] == 2000
    assert sum(s["types"].values()) == 2000 and s["gaps"] == [] and s["breaks"] == []
    assert s["writer"]["state"] == "closed" and s["writer"]["durable_seq"] == 2000
    assert s["consumers"] == {"risk-0": 1500}
    rc, out, _ = rsx(capsys, "wal", "stats", str(stream))
    assert rc == 0 and "2000 records" in out and "risk-0" in out


def test_stats_reports_gaps(tmp_path, capsys):
    d = tmp_path / "archive"
    d.mkdir()
    src = tmp_path / "src"
    write_stream(src, 300, file_size=1 << 20, prealloc=False)
    raw = next(src.glob("*_active.wal")).read_bytes()
    (d / "1_2023-01-01.wal").write_bytes(raw[:100 * 80])       # seqs 1..100
    (d / "1_2023-01-02.wal").write_bytes(raw[150 * 80:])       # seqs 151..300
    rc, out, _ = rsx(capsys, "wal", "stats", "--json", str(d))
    s = json.loads(out)
    assert s["gaps"][0]["after"] == 100 and s["gaps"][0]["next"] == 151
    assert s["gaps"][0]["missing"] == 50
    assert rsx(capsys, "wal", "verify", str(d))[0] == 1


def test_follow(tmp_path):
    w = WalWriter(tmp_path, 1, file_size=16 << 10)
    append_n(w, 20)
    w.flush()
    p = subprocess.Popen([*RSX, "wal", "follow", str(tmp_path), "-n", "3", "--poll-ms", "10", "--json"],
                         stdout=subprocess.PIPE, text=True)
    try:
        got = [json.loads(p.stdout.readline())["seq"] for _ in range(3)]
        assert got == [18, 19, 20]
        append_n(w, 2)
        w.flush()
        got = [json.loads(p.stdout.readline())["seq"] for _ in range(2)]
        assert got == [21, 22]
    finally:
        p.terminate()
        p.wait(10)
        w.close()


def test_consumers_cli(stream, capsys):
    consumer_set(stream, "a", 5)
    rc, out, _ = rsx(capsys, "wal", "consumers", str(stream))
    assert rc == 0 and out.strip() == "a\t5"
    assert rsx(capsys, "wal", "consumers", str(stream), "--drop", "a")[0] == 0
    assert rsx(capsys, "wal", "consumers", str(stream), "--drop", "a")[0] == 2
    rc, out, _ = rsx(capsys, "wal", "consumers", str(stream), "--json")
    assert rc == 0 and json.loads(out) == {"path": str(stream), "consumers": {}}


def test_garbage_input_is_refused(tmp_path, capsys):
    """A command must not find "nothing wrong" in a missing path, a text file or an empty directory."""
    (tmp_path / "notes.txt").write_text("hello world\n")
    (tmp_path / "empty").mkdir()
    for sub in ("consumers", "stats", "verify", "dump", "follow"):
        for bad in ("nope", "notes.txt", "empty"):
            if sub == "consumers" and bad == "notes.txt":
                want = "not a directory"
            else:
                want = {"nope": "no such file or directory", "notes.txt": "not a WAL file",
                        "empty": "not a WAL directory"}[bad]
            rc, out, err = rsx(capsys, "wal", sub, str(tmp_path / bad))
            assert rc == 2, (sub, bad, out, err)
            assert err.startswith(f"rsx wal {sub}: error: ") and want in err and err.count("\n") == 1, err
