"""The recorder: daily UTC files, same bytes, batches, crash resume, loud failure."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import signal
import subprocess
import time

import numpy as np

from rsx_appliance.dxs import DxsServer
from rsx_appliance.recorder import DAY_NS, StreamRecorder, archive_files
from rsx_appliance.records import RecordType
from rsx_appliance.wal import WalWriter, consumer_get, read_file
from rsx_appliance.wal.tools import verify

from walutil import RSX, append_n, free_port, payloads, start_server, wait_for

DAY0 = 19_700 * DAY_NS        # 2023-12-09 00:00 UTC


def _wal_records(wal) -> dict[int, bytes]:
    out = {}
    for p in wal.glob("1_*.wal"):
        wf = read_file(p)
        data = p.read_bytes()
        for e in wf.index:
            out[int(e["seq"])] = data[int(e["offset"]):int(e["offset"]) + int(e["size"])]
    return out


def test_archives_one_file_per_utc_day_byte_for_byte(tmp_path):
    wal, archive = tmp_path / "wal", tmp_path / "archive"
    n = 3000
    ts = DAY0 + np.arange(1, n + 1, dtype=np.int64) * (3 * DAY_NS // n) - DAY_NS // 7
    ts[1500] = ts[1499] - DAY_NS        # a clock step back never moves a record to an older file
    with WalWriter(wal, 1, file_size=32 << 10) as w:
        w.append_batch(RecordType.ORDER_INSERTED, payloads(1, n, ts=ts))

    async def main():
        async with DxsServer(wal) as srv:
            rec = StreamRecorder(archive, 1, ("127.0.0.1", srv.port), flush_bytes=16 << 10,
                                 flush_ms=20)
            task = asyncio.create_task(rec.run())
            for _ in range(500):
                await asyncio.sleep(0.01)
                if rec.stats.archived_seq == n:
                    break
            await asyncio.sleep(1.2)      # one ack interval
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return rec

    rec = asyncio.run(main())
    assert rec.stats.archived_seq == n and rec.stats.flushes > 1
    files = archive_files(archive / "1", 1)
    days = [dt.date.fromisoformat(p.name[2:12]) for p in files]
    assert days == [dt.date(2023, 12, 8), dt.date(2023, 12, 9), dt.date(2023, 12, 10),
                    dt.date(2023, 12, 11)]
    original = _wal_records(wal)
    seq = 1
    for p in files:
        wf = read_file(p)
        assert wf.brk is None
        day = (dt.date.fromisoformat(p.name[2:12]) - dt.date(1970, 1, 1)).days
        ts_file = wf.view(RecordType.ORDER_INSERTED)["payload"]["ts_ns"].astype(np.int64)
        # each record is in its UTC day's file, or later (never earlier) after a clock step
        assert (ts_file // DAY_NS <= day).all()
        for e, s in zip(wf.index, wf.seqs):
            assert s == seq
            assert bytes(wf.raw[int(e["offset"]):int(e["offset"]) + int(e["size"])]) == original[seq]
            seq += 1
    assert seq == n + 1
    assert verify(archive / "1").ok
    assert consumer_get(wal, "recorder") == n          # acked after its fsync


def test_resumes_after_kill9_and_torn_tail(tmp_path):
    wal, archive = tmp_path / "wal", tmp_path / "archive"
    n = 40_000
    w = WalWriter(wal, 1, file_size=256 << 10)
    append_n(w, 10_000)
    w.flush()
    port = free_port()
    srv = start_server(wal, port)
    rng = random.Random(7)
    cmd = [*RSX, "recorder", "--archive", str(archive), "--stream", f"1=127.0.0.1:{port}",
           "--flush-bytes", "64k", "--flush-ms", "5"]
    seen = [0]
    torn = False

    def archived() -> int:
        files = archive_files(archive / "1", 1)
        return read_file(files[-1]).last_seq if files else 0

    try:
        for rnd in range(4):
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if w.next_seq <= n:
                append_n(w, 7_500)
                w.flush()
            # kill it at a random moment after it has archived something new
            wait_for(lambda: archived() > seen[-1], timeout=30)
            time.sleep(rng.uniform(0.0, 0.2))
            p.send_signal(signal.SIGKILL)
            p.wait()
            seen.append(archived())
            if not torn:
                newest = archive_files(archive / "1", 1)[-1]
                with open(newest, "ab") as f:
                    f.write(b"\x01\x00\x12\x00\x40\x00" + bytes(20))    # a torn record
                torn = True
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: verify(archive / "1").last_seq == w.durable_seq, timeout=30)
        p.terminate()
        p.wait(10)
    finally:
        srv.kill()
        srv.wait()
        w.close()
    assert seen == sorted(seen) and len(set(seen)) == 5, seen     # progress in every round
    rep = verify(archive / "1")
    assert rep.ok, rep.problems
    assert rep.first_seq == 1 and rep.records == rep.last_seq == 40_000    # no gap, no duplicate
    assert list((archive / "1").glob("*.cut-*")), "the torn tail was kept beside the file"


def test_exits_loudly_when_the_server_refuses(tmp_path):
    wal, archive = tmp_path / "wal", tmp_path / "archive"
    with WalWriter(wal, 1, file_size=16 << 10, retain_s=0) as w:
        append_n(w, 3000)
    port = free_port()
    srv = start_server(wal, port)
    try:
        r = subprocess.run([*RSX, "recorder", "--archive", str(archive), "--stream",
                            f"1=127.0.0.1:{port}", "--from", "1"],
                           capture_output=True, text=True, timeout=30)
    finally:
        srv.kill()
        srv.wait()
    assert r.returncode == 1
    assert "refused" in r.stdout + r.stderr and "GONE" in r.stdout + r.stderr


def test_bad_stream_argument_is_a_usage_error(tmp_path):
    r = subprocess.run([*RSX, "recorder", "--archive", str(tmp_path), "--stream", "nope"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "ID=HOST:PORT" in r.stderr
