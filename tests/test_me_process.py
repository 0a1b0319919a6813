"""`rsx me` as a process: SIGKILL under load at random points, a clean stop, the status file, and
consumers that lose datagrams (recovered by NAK, then by DXS replay). specs/me.md 7, 8, 10."""

from __future__ import annotations

import asyncio
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from rsx_appliance import cmp
from rsx_appliance.codes import Reason
from rsx_appliance.config import load_config, streams
from rsx_appliance.dxs import DxsConsumer, DxsServer
from rsx_appliance.errors import NeedsReplay
from rsx_appliance.me import MatchingEngine, MeOptions, MeStats, verify
from rsx_appliance.launch import rsx_argv
from rsx_appliance.records import RecordType, decode, encode

from cliutil import check
from me_util import new_order, options, stream_bytes

RSX = rsx_argv()
LINK = streams.risk_to_me(0, 1)
T = RecordType
TICK, LOT, MID = 50, 1000, 6_000_000  # BTC-PERP of the embedded configuration (raw units)


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path) -> Path:
    text = subprocess.run([*RSX, "config", "default"], capture_output=True, text=True, check=True).stdout
    text = text.replace('durability = "fsync"            # fills leave only after their batch is fsynced',
                        'durability = "fsync"\nsnapshot_records = 3000\nsnapshot_seconds = 1\n'
                        'dedup_capacity = 65536\nmax_orders = 100000')
    cfg = path / "rsx.toml"
    cfg.write_text(text)
    return cfg


class MeProcess:
    """One `rsx me` run; ``start()`` returns its ready line."""

    def __init__(self, cfg: Path, data: Path, me_port: int, subscriber: int, dxs_port: int) -> None:
        self.args = [*RSX, "me", "--config", str(cfg), "--data", str(data), "--symbol", "BTC-PERP",
                     "--cmp", f"127.0.0.1:{me_port}", "--subscriber", f"127.0.0.1:{subscriber}",
                     "--risk-shards", "1", "--dxs", f"127.0.0.1:{dxs_port}", "--no-mlock", "--backend", "udp", "--json"]
        self.p: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> dict:
        self.p = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        assert ready, "rsx me did not get ready"
        line = self.p.stdout.readline()
        if not line:
            raise AssertionError(f"rsx me exited {self.p.wait()}: {self.p.stderr.read()}")
        return json.loads(line)

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)

    def stop(self) -> int:
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(30)
        self.err = self.p.stderr.read()
        return rc


class Load:
    """A risk shard's link to the ME, and a consumer of the ME's stream, in this process."""

    def __init__(self, me_port: int, seed: int) -> None:
        self.ep = cmp.Endpoint("udp", ("127.0.0.1", 0), mode="busy")
        self.tx = self.ep.sender(LINK, [("127.0.0.1", me_port)], ring_size=1 << 14, heartbeat_us=0)
        self.rx = self.ep.receiver(1, window=1 << 16, start_seq=1)
        self.rng = random.Random(seed)
        self.link_seq = 0
        self.k = 0
        self.sent: list[tuple[int, int, bytes]] = []  # (user, k, record) of every NEW_ORDER sent
        self.got: dict[int, bytes] = {}
        self.resent = 0

    @property
    def port(self) -> int:
        return self.ep.local[1]

    def _send(self, rec: bytearray) -> None:
        self.link_seq += 1
        rec[16:24] = self.link_seq.to_bytes(8, "little")
        from rsx_appliance.records import seal
        seal(rec)
        self.tx.send(bytes(rec))

    def burst(self, n: int) -> None:
        r = self.rng
        for _ in range(n):
            if self.sent and r.random() < 0.05:  # a client's retry: the same (user, order id) again
                user, k, _ = self.sent[r.randrange(len(self.sent))]
                self.resent += 1
            else:
                self.k += 1
                user, k = r.randint(1, 10), self.k
            rec = bytearray(encode(T.NEW_ORDER, seq=1, stream_id=LINK, symbol_id=1, user_id=user,
                                   side=r.randint(0, 1), stp=3, order_id=k.to_bytes(16, "big"),
                                   price=MID + TICK * r.randint(-10, 10), qty=LOT * r.randint(1, 4)))
            self.sent.append((user, k, bytes(rec)))
            self._send(rec)
            if r.random() < 0.05:
                cu, ck, _ = self.sent[r.randrange(len(self.sent))]
                self._send(bytearray(encode(T.CANCEL_ORDER, seq=1, stream_id=LINK, symbol_id=1, user_id=cu,
                                            order_id=ck.to_bytes(16, "big"))))

    def pump(self) -> None:
        self.ep.poll(0)
        batch = self.rx.read(8192)
        for i in range(len(batch)):
            b = batch.record_bytes(i)
            self.got[int.from_bytes(b[16:24], "little")] = b

    def run(self, seconds: float, rate_per_burst: int = 20) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.burst(rate_per_burst)
            for _ in range(5):
                self.pump()
            time.sleep(0.002)

    def close(self) -> None:
        self.ep.close()


def me_options(cfg: Path, data: Path) -> MeOptions:
    return MeOptions.from_config(load_config(cfg, data), "BTC-PERP")


def crash_cycles(tmp_path: Path, kills: int, seed: int) -> None:
    cfg = write_config(tmp_path)
    data = tmp_path / "data"
    me_port, dxs_port = free_port(), free_port(socket.SOCK_STREAM)
    load = Load(me_port, seed)
    proc = MeProcess(cfg, data, me_port, load.port, dxs_port)
    opts = me_options(cfg, data)
    rng = random.Random(seed)
    completed = 0
    try:
        for cycle in range(kills):
            ready = proc.start()
            assert ready["process"] == "me.BTC-PERP"
            load.run(rng.uniform(0.03, 0.35))
            proc.kill()  # SIGKILL: anywhere in the loop, the WAL's flusher or the snapshot thread
            rep = verify(opts)  # what the next start will recover from: snapshot + tail == seq 1 onward
            assert rep["ok"], (cycle, rep)
            completed += rep["open_at_end"]
        proc.start()
        deadline = time.monotonic() + 30
        tip = 0
        while time.monotonic() < deadline:
            load.pump()
            tip = MeStats(opts.directory).counters()["durable_seq"]
            if tip and len(load.got) >= tip and max(load.got) >= tip:
                break
            time.sleep(0.005)
        assert proc.stop() == 0, proc.err
    finally:
        if proc.p and proc.p.poll() is None:
            proc.p.kill()
        load.close()

    wal = stream_bytes(opts.directory)
    seqs = sorted(load.got)
    # every record that left the ME is in its WAL, byte for byte: no seq was ever reused
    assert all(load.got[s] == wal[s - 1] for s in seqs)
    # and the consumer, through restarts, NAKs and WAL retransmits, has all of it
    assert seqs == list(range(1, len(wal) + 1))
    recs = [decode(b) for b in wal]
    accepted = Counter((r.user_id, r.order_id) for r in recs if r.type == T.ORDER_ACCEPTED)
    assert accepted and max(accepted.values()) == 1  # a resent order never executed twice
    dups = sum(1 for r in recs if r.type == T.ORDER_FAILED and r.reason == Reason.DUPLICATE_ORDER_ID)
    assert load.resent == 0 or dups > 0
    rep = verify(opts)
    assert rep["ok"] and rep["open_at_end"] == 0, rep


def test_sigkill_under_load_5_times(tmp_path):
    crash_cycles(tmp_path, 5, seed=11)


@pytest.mark.slow
def test_sigkill_under_load_50_times(tmp_path):
    crash_cycles(tmp_path, 50, seed=7)


def test_clean_stop_status_file_and_control(tmp_path):
    cfg = write_config(tmp_path)
    data = tmp_path / "data"
    me_port, dxs_port = free_port(), free_port(socket.SOCK_STREAM)
    load = Load(me_port, 3)
    proc = MeProcess(cfg, data, me_port, load.port, dxs_port)
    try:
        ready = proc.start()
        assert ready["cmp"] == f"127.0.0.1:{me_port}" and ready["dxs"] == f"127.0.0.1:{dxs_port}"
        check("me", json.dumps(ready))
        load.run(0.2)
        out = subprocess.run([*RSX, "me", "control", "--config", str(cfg), "--data", str(data), "--symbol",
                              "BTC-PERP", "close-only"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "status 3" in out.stdout, out.stderr
        out = subprocess.run([*RSX, "me", "control", "--dir", str(data / "me" / "BTC-PERP"), "set",
                              "--taker-fee-bps", "6", "--json"], capture_output=True, text=True, timeout=30)
        assert check("me-control", out.stdout)[0]["taker_fee_bps"] == 6
        out = subprocess.run([*RSX, "me", "control", "--dir", str(data / "me" / "BTC-PERP"), "set",
                              "--tick", "0.333"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 2 and "at most 2 decimals" in out.stderr
        out = subprocess.run([*RSX, "me", "control", "--dir", str(data / "me" / "BTC-PERP"), "set",
                              "--max-funding-rate-bps", "20000"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 1 and "incoherent" in out.stderr, out.stderr
        st = json.loads(subprocess.run([*RSX, "me", "status", "--dir", str(data / "me" / "BTC-PERP"), "--json",
                                        "--latency"], capture_output=True, text=True, check=True).stdout)
        assert st["state"] == "running" and st["status"] == "close_only"
        assert st["counters"]["req_new"] > 0 and st["latency"]["me_to_durable"]["count"] > 0
        time.sleep(1.2)
        doc = json.loads((data / "run" / "me.BTC-PERP.json").read_text())
        assert doc["state"] == "ready" and doc["streams"]["me 1"]["stream_id"] == 1
        assert proc.stop() == 0, proc.err
        doc = json.loads((data / "run" / "me.BTC-PERP.json").read_text())
        assert doc["state"] == "stopping"
        out = subprocess.run([*RSX, "me", "status", "--dir", str(data / "me" / "BTC-PERP")],
                             capture_output=True, text=True)
        assert out.returncode == 1 and "stopped" in out.stdout  # not running: exit 1
        check("me-status", subprocess.run([*RSX, "me", "status", "--dir", str(data / "me" / "BTC-PERP"), "--json"],
                                          capture_output=True, text=True).stdout)
    finally:
        if proc.p and proc.p.poll() is None:
            proc.p.kill()
        load.close()


def test_cli_errors_are_typed(tmp_path):
    out = subprocess.run([*RSX, "me", "--data", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("rsx me: error: --symbol is required")
    out = subprocess.run([*RSX, "me", "--data", str(tmp_path), "--symbol", "NOPE"], capture_output=True, text=True)
    assert out.returncode == 2 and "no symbol 'NOPE'" in out.stderr
    out = subprocess.run([*RSX, "me", "status", "--dir", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and "never ran" in out.stderr
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
        out = subprocess.run([*RSX, "me", "--data", str(tmp_path), "--symbol", "BTC-PERP", "--no-mlock",
                              "--cmp", f"127.0.0.1:{port}", "--backend", "udp", "--dxs", "127.0.0.1:0", "--json"],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 3 and "in use" in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.startswith("rsx me: error: ") and out.stderr.count("\n") == 1


def test_consumers_that_lose_datagrams_recover_by_nak_then_dxs(tmp_path):
    """Two subscribers; the ME drops 5% of what it sends. A recovers every record by NAK; B never gets
    a NAK out, so its holes exhaust, it needs replay, and DXS fills the gap."""
    a = cmp.Endpoint("udp", ("127.0.0.1", 0), mode="sleep")
    b = cmp.Endpoint("udp", ("127.0.0.1", 0), mode="sleep",
                     fault=cmp.Fault(rules=(cmp.Rule("drop", cls="control", first=0, count=10**9),)))
    me_ep = cmp.Endpoint("udp", ("127.0.0.1", 0), mode="sleep", fault=cmp.Fault(drop=0.05, seed=5, cls="data"))
    opts = options(tmp_path, subscribers=(a.local, b.local), links=(LINK,), sender_ring=256)
    me = MatchingEngine(opts)
    me.attach(me_ep)
    link = cmp.Endpoint("udp", ("127.0.0.1", 0))
    tx = link.sender(LINK, [me_ep.local], ring_size=8192)
    # A's NAK budget is generous: on this shared 2-core machine the ME's thread may not run for the
    # default 8 ms while bursts of requests queue ahead of the NAKs (B shows what happens then)
    ra = a.receiver(1, window=1 << 15, nak_max_retries=200)
    rb = b.receiver(1, window=1 << 15, nak_retry_us=500, nak_max_retries=3)
    loop = threading.Thread(target=me.run)
    loop.start()
    got_a: list[bytes] = []
    errors: list[str] = []
    done = threading.Event()

    def consumer_a() -> None:  # a consumer with its own thread, as a real one has
        while not done.is_set():
            try:
                batch = ra.receive(4096, timeout=0.001)
            except NeedsReplay as exc:
                errors.append(f"A needs replay: {exc.info!r} {ra.stats!r} {MeStats(me.stats_path).counters()!r}")
                return
            got_a.extend(batch.record_bytes(i) for i in range(len(batch)))

    ta = threading.Thread(target=consumer_a)
    ta.start()

    async def scenario() -> tuple[list[bytes], int]:
        server = DxsServer(tmp_path / "wal", 1)
        await server.start()
        got_b: list[bytes] = []
        replays = 0
        try:
            for k in range(1, 3001):
                tx.send(new_order(1 + k % 5, k, k & 1, 50_000 + k % 7, 1 + k % 3, seq=k))
                if k % 50 == 0:
                    link.poll(0)
                    await asyncio.sleep(0.001)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                link.poll(0)
                try:
                    batch = rb.receive(4096, timeout=0.0005)
                    got_b.extend(batch.record_bytes(i) for i in range(len(batch)))
                except NeedsReplay as exc:
                    replays += 1
                    async with DxsConsumer(("127.0.0.1", server.port), 1, from_seq=exc.info.expected) as dxs:
                        async for batch in dxs:
                            for i in range(len(batch)):
                                rb.replay(batch.record_bytes(i))
                            if rb.info.state is not cmp.State.NEEDS_REPLAY or batch.caught_up:
                                break
                info = me.info
                if info.in_flight == 0 and len(got_a) == len(got_b) == info.next_seq - 1 and info.next_seq > 3000:
                    break
                if errors:
                    break
                await asyncio.sleep(0)
        finally:
            await server.close()
        return got_b, replays

    try:
        got_b, replays = asyncio.run(scenario())
    finally:
        done.set()
        ta.join(10)
        me.stop()
        loop.join(30)
        me_ep.close()
        me.close()
    wal = stream_bytes(tmp_path)
    assert not errors, errors
    assert got_a == wal and got_b == wal  # every record, once, in order, byte for byte
    assert ra.stats["recovered"] > 0 and ra.stats["faults"] == 0
    assert replays >= 1 and rb.stats["faults"] >= 1 and rb.stats["replayed"] > 0
    for ep in (a, b, link):
        ep.close()
