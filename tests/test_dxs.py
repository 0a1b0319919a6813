"""DXS: replay from any seq, CAUGHT_UP, live tail, rejects, resume after killing
the service and after killing the consumer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from rsx_appliance.codes import ErrorCode
from rsx_appliance.dxs import DxsConsumer, DxsRejected, DxsServer, TipFile
from rsx_appliance.dxs import protocol as P
from rsx_appliance.records import RecordType, encode
from rsx_appliance.wal import WalWriter, consumer_get, consumer_set, read_file

from walutil import append_n, free_port, qty_of_all, start_server, write_stream


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def collect(addr, stream, from_seq, until_seq=None, name="", stop_at_caught_up=True):
    """Consume until CAUGHT_UP (or until_seq); returns (seqs, batches, consumer)."""
    c = DxsConsumer(addr, stream, from_seq=from_seq, name=name, backoff=(0.02, 0.2))
    seqs, batches = [], []
    async for b in c:
        batches.append(b)
        if len(b):
            seqs.append(b.seqs.copy())
            assert (qty_of_all(b) == b.seqs.astype(np.int64)).all()
        if until_seq is not None and c.tip >= until_seq:
            break
        if until_seq is None and stop_at_caught_up and b.caught_up:
            break
    await c.close()
    return (np.concatenate(seqs) if seqs else np.empty(0, np.uint64)), batches, c


@pytest.mark.parametrize("start", [0, 1, 777, 2999, 3000, 3001])
def test_replay_from_any_seq_then_caught_up(tmp_path, start):
    write_stream(tmp_path, 3000, mixed=True, file_size=16 << 10)

    async def main():
        async with DxsServer(tmp_path) as srv:
            return await collect(("127.0.0.1", srv.port), 1, start)

    seqs, batches, c = run(main())
    first = max(start, 1)
    assert seqs.tolist() == list(range(first, 3001))
    assert batches[-1].caught_up and sum(b.caught_up for b in batches) == 1
    # live_seq = last seq delivered, inclusive (from_seq - 1 when nothing was replayed)
    assert c.live_seq == 3000 and c.tip == 3000


def test_live_tail_after_caught_up(tmp_path):
    w = WalWriter(tmp_path, 1, file_size=16 << 10)
    append_n(w, 100)
    w.flush()

    async def main():
        async with DxsServer(tmp_path, poll_s=0.001) as srv:
            c = DxsConsumer(("127.0.0.1", srv.port), 1, from_seq=50)
            got = []
            async for b in c:
                got.extend(b.seqs.tolist())
                if b.caught_up:
                    # the writer goes on; records arrive as they become durable
                    await asyncio.to_thread(lambda: (append_n(w, 900), w.flush()))
                if c.tip == 1000:
                    break
            await c.close()
            return got

    got = run(main())
    w.close()
    assert got == list(range(50, 1001))


def test_rejects(tmp_path):
    with WalWriter(tmp_path, 1, file_size=16 << 10, retain_s=0) as w:
        append_n(w, 3000)
        w.flush()
        oldest = w.stats().oldest_seq
    assert oldest > 1

    async def main():
        async with DxsServer(tmp_path) as srv:
            addr = ("127.0.0.1", srv.port)
            out = {}
            for label, stream, seq in [("gone", 1, 1), ("ahead", 1, 3002), ("stream", 2, 1)]:
                with pytest.raises(DxsRejected) as e:
                    await collect(addr, stream, seq)
                out[label] = e.value
            # 3001 (tip + 1) is fine: nothing to replay, CAUGHT_UP at once
            seqs, batches, c = await collect(addr, 1, 3001)
            assert len(seqs) == 0 and batches[0].caught_up and c.live_seq == 3000
            return out

    out = run(main())
    assert out["gone"].code == ErrorCode.GONE and out["gone"].first_seq == oldest
    assert out["gone"].last_seq == 3000 and "refused" in str(out["gone"])
    assert out["ahead"].code == ErrorCode.AHEAD
    assert out["stream"].code == ErrorCode.STREAM


def _archive(wal, archive, upto):
    """An archive day file holding seqs 1..upto, copied from the WAL's files (as the recorder would)."""
    keep = bytearray()
    for p in sorted(wal.glob("1_*.wal"), key=lambda p: int(p.name.split("_")[1])):
        wf = read_file(p)
        data = p.read_bytes()
        for e in wf.index[wf.seqs <= upto]:
            keep += data[int(e["offset"]):int(e["offset"]) + int(e["size"])]
    (archive / "1").mkdir(parents=True, exist_ok=True)
    (archive / "1" / "1_2023-11-14.wal").write_bytes(bytes(keep))


def test_archive_serves_what_the_wal_no_longer_holds(tmp_path):
    wal, archive, short = tmp_path / "wal", tmp_path / "archive", tmp_path / "short"
    with WalWriter(wal, 1, file_size=16 << 10, retain_s=None) as w:
        append_n(w, 3000)
    _archive(wal, archive, 3000)
    _archive(wal, short, 100)                # an archive that does not reach the WAL
    consumer_set(wal, "recorder", 2500)      # the recorder archived up to 2500
    with WalWriter(wal, 1, file_size=16 << 10, retain_s=0) as w:
        append_n(w, 600)                     # rotations delete what the recorder holds
        w.flush()
        oldest = w.stats().oldest_seq
    assert 100 < oldest <= 2501

    async def main():
        async with DxsServer(wal, archive_dir=archive) as srv:
            addr = ("127.0.0.1", srv.port)
            a = await collect(addr, 1, 5)
            b = await collect(addr, 1, 0)
        async with DxsServer(wal, archive_dir=short) as srv:   # a gap between archive and WAL
            with pytest.raises(DxsRejected) as e1:
                await collect(("127.0.0.1", srv.port), 1, 5)
        async with DxsServer(wal) as srv:                       # no archive at all
            with pytest.raises(DxsRejected) as e2:
                await collect(("127.0.0.1", srv.port), 1, 5)
        return a, b, e1.value, e2.value

    (a, _, _), (b, _, _), rej1, rej2 = run(main())
    assert a.tolist() == list(range(5, 3601))   # seamless archive -> WAL hand-off
    assert b.tolist() == list(range(1, 3601))   # 0 = the oldest anywhere, the archive's
    assert rej1.code == ErrorCode.GONE and rej2.code == ErrorCode.GONE
    assert rej2.first_seq == oldest


def test_bad_first_record_closes_the_connection(tmp_path):
    write_stream(tmp_path, 10)

    async def main():
        async with DxsServer(tmp_path, request_timeout_s=0.3) as srv:
            results = []
            for payload in [b"garbage" * 20, encode(RecordType.HEARTBEAT, stream_id=1),
                            bytearray(P.request(1, 1))]:
                if isinstance(payload, bytearray):
                    payload[30] ^= 1                       # a bad CRC
                r, w = await asyncio.open_connection("127.0.0.1", srv.port)
                w.write(bytes(payload)[:80])
                await w.drain()
                results.append(await asyncio.wait_for(r.read(), 5))
                w.close()
            r, w = await asyncio.open_connection("127.0.0.1", srv.port)   # silence: timeout
            results.append(await asyncio.wait_for(r.read(), 5))
            w.close()
            return results

    assert run(main()) == [b"", b"", b"", b""]      # closed, nothing sent


def test_named_consumer_is_registered_and_acks_move_it(tmp_path):
    write_stream(tmp_path, 500)

    async def main():
        async with DxsServer(tmp_path) as srv:
            c = DxsConsumer(("127.0.0.1", srv.port), 1, from_seq=100, name="risk-0",
                            ack_interval=0.05)
            async for b in c:
                if b.caught_up:
                    break
            assert consumer_get(tmp_path, "risk-0") == 99    # registered at from_seq - 1
            c.ack(450)
            for _ in range(200):
                await asyncio.sleep(0.02)
                if consumer_get(tmp_path, "risk-0") == 450:
                    break
            await c.close()

    run(main())
    assert consumer_get(tmp_path, "risk-0") == 450


def test_consumer_validates_names_and_seqs():
    with pytest.raises(ValueError):
        DxsConsumer(("127.0.0.1", 1), 1, name="x" * 17)
    with pytest.raises(ValueError):
        DxsConsumer(("127.0.0.1", 1), 1, from_seq=-1)


def test_resume_after_killing_the_service(tmp_path):
    """kill -9 the server mid-stream, twice; the consumer resumes at tip + 1: no gap, no duplicate."""
    wal = tmp_path / "wal"
    w = WalWriter(wal, 1, file_size=64 << 10)
    append_n(w, 20_000)
    w.flush()
    port = free_port()
    srv = start_server(wal, port)
    stop = threading.Event()

    def writer():
        while not stop.is_set() and w.next_seq <= 60_000:
            append_n(w, 500)
            time.sleep(0.005)

    t = threading.Thread(target=writer)
    t.start()
    kills = []

    async def main():
        nonlocal srv
        c = DxsConsumer(("127.0.0.1", port), 1, from_seq=1, backoff=(0.02, 0.2), idle_timeout=2)
        seqs = []
        async for b in c:
            seqs.append(b.seqs.copy())
            # kill the server each connection is talking to (data already in the socket
            # buffers is still read after the kill: wait for the next connection first)
            if len(kills) < 2 and c.connects == len(kills) + 1 and c.tip > 10_000 * (len(kills) + 1):
                srv.send_signal(signal.SIGKILL)
                srv.wait()
                kills.append(c.tip)
                await asyncio.sleep(0.2)
                srv = start_server(wal, port)
            if c.tip >= 60_000:
                break
        connects = c.connects
        await c.close()
        return np.concatenate(seqs), connects

    try:
        seqs, connects = run(main(), timeout=60)
    finally:
        stop.set()
        t.join()
        srv.kill()
        srv.wait()
        w.close()
    assert len(kills) == 2 and connects >= 3
    assert seqs.tolist() == list(range(1, len(seqs) + 1)) and seqs[-1] >= 60_000


CONSUMER = r"""
import asyncio, sys
sys.path.insert(0, {tests!r})
from rsx_appliance.dxs import DxsConsumer
from rsx_appliance.recorder import resume_point
from pathlib import Path
out = Path({out!r})
# the consumer's own state is its output file: resume after its last whole record
last, _ = resume_point(out.parent, 1)
async def main():
    c = DxsConsumer(("127.0.0.1", {port}), 1, from_seq=last + 1, backoff=(0.02, 0.2),
                    max_batch_bytes=8192)
    print("from", last + 1, flush=True)
    with open(out, "ab") as f:
        async for b in c:
            # write in two pieces so that a kill can tear a record
            raw = bytes(b.raw); h = len(raw) // 2 + 7
            f.write(raw[:h]); f.flush(); f.write(raw[h:]); f.flush()
            await asyncio.sleep(0.002)
            print(b.last_seq, flush=True)
            if c.tip >= {total}:
                break
    await c.close()
asyncio.run(main())
"""


def test_resume_after_killing_the_consumer(tmp_path):
    wal = tmp_path / "wal"
    write_stream(wal, 30_000, file_size=64 << 10)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "1_2023-11-14.wal"

    async def main():
        async with DxsServer(wal) as srv:
            starts = []
            for i in range(4):
                code = CONSUMER.format(tests=os.path.dirname(__file__), out=str(out),
                                       port=srv.port, total=30_000)
                p = await asyncio.create_subprocess_exec(sys.executable, "-c", code,
                                                         stdout=subprocess.PIPE)
                starts.append(int((await p.stdout.readline()).split()[1]))
                if i < 3:
                    await asyncio.sleep(0.05 + 0.05 * i)
                    p.send_signal(signal.SIGKILL)
                await p.wait()
            return starts

    starts = run(main(), timeout=60)
    assert starts[0] == 1 and all(a < b for a, b in zip(starts, starts[1:])), starts
    wf = read_file(out)
    # a kill mid-write leaves at most a torn tail, which resume_point cut before resuming
    assert wf.brk is None
    assert wf.seqs.tolist() == list(range(1, 30_001))     # no gap, no duplicate


def test_tip_file(tmp_path):
    tip = TipFile(tmp_path / "risk.tip")
    assert tip.load() == 0                      # missing: start from the beginning
    tip.store(12345)
    assert tip.load() == 12345
    tip.store(2**63)
    assert tip.load() == 2**63
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "risk.tip").write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError):
        tip.load()                              # never silently 0


@pytest.mark.parametrize("name", ["a.tmp", ".hidden", "bad name"])
def test_a_consumer_name_retention_could_not_keep_is_rejected_with_a_reason(tmp_path, name):
    """The server refuses to register it (REPLAY_REJECT INVALID) instead of closing without a word."""
    write_stream(tmp_path, 10)

    async def main():
        async with DxsServer(tmp_path) as srv:
            req = encode(RecordType.REPLAY_REQUEST, stream_id=1, from_seq=1, consumer=name.encode())
            r, w = await asyncio.open_connection("127.0.0.1", srv.port)
            w.write(req)
            await w.drain()
            answer = await asyncio.wait_for(r.read(), 5)
            w.close()
            return answer

    from rsx_appliance.records import decode
    rec = decode(run(main()))
    assert rec.type == RecordType.REPLAY_REJECT and rec.error == ErrorCode.INVALID
    assert not (tmp_path / "consumers").exists()
    with pytest.raises(ValueError):
        DxsConsumer(("127.0.0.1", 1), 1, name=name)         # refused before it is even sent


@pytest.mark.parametrize("rotated", [False, True])
def test_a_file_that_shrinks_under_the_server_is_a_reject_not_a_crash(tmp_path, rotated):
    """The server maps a file; the file is cut short (a lost tail, an operator's mistake). The consumer
    gets REPLAY_REJECT with a reason; the server (its own process) survives for everyone else."""
    wal = tmp_path / "wal"
    n = 200_000                                       # 16 MB in one file: more than the socket buffers
    with WalWriter(wal, 1, file_size=64 << 20, prealloc=False) as w:
        append_n(w, n)
    victim = next(wal.glob("*_active.wal"))
    if rotated:                                       # the same bytes under a rotated file's name
        victim = victim.rename(wal / f"1_1_{n}.wal")
        with WalWriter(wal, 1, file_size=64 << 20, prealloc=False):
            pass
    port = free_port()
    srv = start_server(wal, port)

    async def main():
        c = DxsConsumer(("127.0.0.1", port), 1, from_seq=1, max_batch_bytes=64 << 10,
                        backoff=(0.02, 0.2))
        got = 0
        with pytest.raises(DxsRejected) as e:
            async for b in c:
                got = c.tip
                if got and victim.stat().st_size > 1 << 20:
                    await asyncio.sleep(0.3)          # let the server fill the socket and stall
                    os.truncate(victim, 1 << 20)      # then cut the file it has mapped
        await c.close()
        return got, e.value

    try:
        got, rej = run(main(), timeout=60)
        assert rej.code == ErrorCode.LOST, rej
        assert rej.from_seq == got + 1 and 0 < got < n        # what it read before the cut was whole
        assert srv.poll() is None, "the server died"
        # and it still serves: a fresh consumer gets the records that are left, then the same reject
        with pytest.raises(DxsRejected):
            run(collect(("127.0.0.1", port), 1, 1))
        assert srv.poll() is None
    finally:
        srv.kill()
        srv.wait()
