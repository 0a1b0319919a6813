"""CMP from Python: the binding, typed errors, replay and fetch seams, batches as numpy (specs/cmp.md)."""

from __future__ import annotations

import errno
import socket
import time

import numpy as np
import pytest

from rsx_appliance import cmp
from rsx_appliance.errors import (
    InvalidArgumentError, NeedsReplay, RecordCrcError, RecordTypeError, SeqGapError, StreamMismatchError,
)
from rsx_appliance.records import RecordType, encode

STREAM = 11


def rec(seq: int, stream: int = STREAM) -> bytes:
    """Every 4th record a FILL (144 bytes), the rest BBO (80 bytes), content derived from seq."""
    if seq % 4 == 0:
        return encode(RecordType.FILL, seq=seq, stream_id=stream, price=seq * 5, qty=1)
    return encode(RecordType.BBO, seq=seq, stream_id=stream, bid_px=seq * 3, ask_px=seq * 3 + 1)


def mem_pair(fault: cmp.Fault | None = None, **rx_kw):
    a = cmp.Endpoint("mem", ("10.0.0.1", 9000), fault=fault)
    b = cmp.Endpoint("mem", ("10.0.0.2", 9001))
    a.link(b)
    return a, b


def pump(a, b, rx, want: int, seconds: float = 3.0) -> list[int]:
    """Poll both (single-threaded mem pair) until `want` records were read; returns their seqs."""
    got: list[int] = []
    end = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < end:
        while a.poll(0) + b.poll(0):
            pass
        got.extend(int(s) for s in rx.read(1024).seq)
        time.sleep(0.0001)
    return got


def test_records_arrive_in_batches_as_numpy():
    a, b = mem_pair()
    with a, b:
        tx = a.sender(STREAM, [("10.0.0.2", 9001)])
        rx = b.receiver(STREAM)
        buf = b"".join(rec(q) for q in range(1, 101))
        assert tx.send_batch(buf) == 100
        b.poll(0)
        b.poll(0)
        b.poll(0)
        b.poll(0)
        batch = rx.read(1000)
        assert len(batch) == 100
        assert batch.raw.shape == (100, cmp.RECORD_MAX) and batch.raw.dtype == np.uint8
        assert batch.seq.tolist() == list(range(1, 101))
        assert set(batch.type.tolist()) == {RecordType.BBO, RecordType.FILL}
        assert (batch.stream_id == STREAM).all()
        fills = batch.records(RecordType.FILL)
        assert fills["payload"]["seq"].tolist() == list(range(4, 101, 4))
        assert fills["payload"]["price"].tolist() == [q * 5 for q in range(4, 101, 4)]
        bbos = batch.records(RecordType.BBO)
        assert (bbos["payload"]["bid_px"] == bbos["payload"]["seq"].astype(np.int64) * 3).all()
        assert batch.record_bytes(3) == rec(4)
        assert [r.seq for r in list(batch)[:3]] == [1, 2, 3]
        assert rx.info.state is cmp.State.LIVE and rx.info.delivered == 100
        assert len(rx.read(10)) == 0


def test_sender_refuses_bad_records_and_changes_nothing():
    a, b = mem_pair()
    with a, b:
        tx = a.sender(STREAM, [("10.0.0.2", 9001)])
        assert tx.send(rec(1)) == 80
        with pytest.raises(SeqGapError):
            tx.send(rec(3))
        with pytest.raises(StreamMismatchError):
            tx.send(rec(2, stream=STREAM + 1))
        bad = bytearray(rec(2))
        bad[30] ^= 1
        with pytest.raises(RecordCrcError):
            tx.send(bytes(bad))
        with pytest.raises(RecordTypeError):
            tx.send(encode(RecordType.HEARTBEAT, stream_id=STREAM))
        assert tx.stats["records"] == 1 and tx.stats["last_seq"] == 1
        assert tx.send(rec(2)) == 80


def test_bad_configuration_is_refused_with_typed_errors():
    with pytest.raises(InvalidArgumentError):
        cmp.Endpoint("carrier-pigeon")
    with pytest.raises(InvalidArgumentError):
        cmp.Endpoint("udp", mode="nap")
    with pytest.raises(InvalidArgumentError):
        cmp.Endpoint("xdp", ("10.0.0.1", 9000))  # no interface
    with pytest.raises(InvalidArgumentError):
        cmp.Endpoint("udp", ("not-an-ip", 0))
    with pytest.raises(InvalidArgumentError):
        cmp.Endpoint("udp", fault=cmp.Fault(drop=1.5))
    with pytest.raises(InvalidArgumentError):
        cmp.Endpoint("udp", fault=cmp.Fault(rules=(cmp.Rule("explode"),)))
    with cmp.Endpoint("udp", ("127.0.0.1", 0)) as ep:
        with pytest.raises(InvalidArgumentError):
            ep.receiver(1, window=1000)          # not a power of two
        with pytest.raises(InvalidArgumentError):
            ep.sender(1, [])                     # no destination
        ep.receiver(1)
        with pytest.raises(InvalidArgumentError):
            ep.receiver(1)                       # one receiver per stream
        # A port is one socket's alone: no SO_REUSEPORT sharing.
        with pytest.raises(OSError) as e:
            cmp.Endpoint("udp", ep.local)
        assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(InvalidArgumentError):
        ep.poll(0)                               # closed


def test_gap_past_the_horizon_needs_replay_then_replay_completes():
    """Lost records the WAL no longer has: NEEDS_REPLAY, then a (fake) DXS replay fills it in."""
    wal_oldest = 500

    def fetch(seq: int):  # the WAL: rebuilds records down to wal_oldest, older ones are gone
        return rec(seq) if seq >= wal_oldest else None

    fault = cmp.Fault(rules=(cmp.Rule("drop", first=100, count=10),))
    a, b = mem_pair(fault)
    with a, b:
        tx = a.sender(STREAM, [("10.0.0.2", 9001)], ring_size=64, heartbeat_us=500, fetch=fetch)
        rx = b.receiver(STREAM, nak_retry_us=300, nak_max_retries=3)
        for q in range(1, 1001):
            tx.send(rec(q))
            if q % 500 == 0:
                a.poll(0)
                b.poll(0)
        delivered: list[int] = []
        end = time.monotonic() + 5
        with pytest.raises(NeedsReplay) as e:
            while time.monotonic() < end:
                a.poll(0)
                b.poll(0)
                delivered.extend(int(s) for s in rx.receive(1024, timeout=0.0002).seq)
        info = e.value.info
        assert info.state is cmp.State.NEEDS_REPLAY
        assert (info.gap_start, info.gap_end, info.expected) == (101, 110, 101)
        assert delivered == list(range(1, 101))
        assert tx.stats["retx_gone"] >= 10
        # DXS replays from a bit before `expected`; overlap is ignored, a skipped seq is refused.
        assert rx.replay(rec(100)) is False
        with pytest.raises(SeqGapError):
            rx.replay(rec(102))
        resumed = [rx.replay(rec(q)) for q in range(101, 111)]
        assert resumed == [False] * 9 + [True]
        delivered.extend(pump(a, b, rx, 900))
        assert delivered == list(range(1, 1001))
        st = rx.stats
        assert (st["faults"], st["resumes"], st["replayed"], st["delivered"]) == (1, 1, 10, 1000)


def test_python_fetch_serves_retransmits_from_the_wal():
    served: list[int] = []

    def fetch(seq: int):
        served.append(seq)
        return rec(seq)

    fault = cmp.Fault(rules=(cmp.Rule("drop", first=300, count=5),))
    a, b = mem_pair(fault)
    with a, b:
        tx = a.sender(STREAM, [("10.0.0.2", 9001)], ring_size=64, fetch=fetch)
        rx = b.receiver(STREAM)
        for q in range(1, 601):
            tx.send(rec(q))
            if q % 200 == 0:
                b.poll(0)
        assert pump(a, b, rx, 600) == list(range(1, 601))
        assert sorted(set(served)) == list(range(301, 306))   # a slow retransmit may be asked for twice
        assert tx.stats["retx_fetched"] >= 5 and tx.stats["retx_ring"] == 0


def test_fetch_that_raises_is_counted_not_fatal():
    def fetch(seq: int):
        raise RuntimeError("disk on fire")

    fault = cmp.Fault(rules=(cmp.Rule("drop", first=2, count=1),))
    a, b = mem_pair(fault)
    with a, b:
        tx = a.sender(STREAM, [("10.0.0.2", 9001)], ring_size=64, fetch=fetch)
        rx = b.receiver(STREAM)
        for q in range(1, 201):
            tx.send(rec(q))
            if q % 50 == 0:
                b.poll(0)
        # the sender answers that it cannot serve seq 3 (its tip says 3 exists): replay, without delay
        with pytest.raises(NeedsReplay) as e:
            pump(a, b, rx, 200, seconds=2)
        assert e.value.info.gap_start == 3 and rx.info.delivered == 2
        assert tx.stats["fetch_errors"] >= 1 and tx.stats["nak_replies"] >= 1


def test_malformed_datagrams_are_counted_and_dropped():
    with cmp.Endpoint("udp", ("127.0.0.1", 0)) as ep:
        rx = ep.receiver(STREAM)
        good = rec(1)
        bad_crc = bytearray(good)
        bad_crc[40] ^= 1
        wrong_len = bytearray(good)
        wrong_len[4] = 128
        unknown = bytearray(good)
        unknown[2] = 200
        sends = [good[:5], bytes(bad_crc), good + b"\0", bytes(wrong_len), bytes(unknown), rec(1, stream=99),
                 encode(RecordType.CAUGHT_UP, stream_id=STREAM), good]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for d in sends:
                s.sendto(d, ep.local)
        batch = rx.receive(10, timeout=2.0)
        assert batch.seq.tolist() == [1]
        st = ep.stats
        assert (st["rx_short"], st["rx_bad_crc"], st["rx_bad_length"], st["rx_bad_type"]) == (1, 1, 2, 1)
        assert (st["rx_unknown_stream"], st["rx_unexpected_type"], st["rx_datagrams"]) == (1, 1, 1)
        assert rx.stats["received"] == 1


def test_tail_loss_is_caught_by_heartbeat_over_udp():
    fault = cmp.Fault(rules=(cmp.Rule("drop", first=17, count=3),))   # seqs 18..20: the tail
    with cmp.Endpoint("udp", ("127.0.0.1", 0), fault=fault) as a, cmp.Endpoint("udp", ("127.0.0.1", 0)) as b:
        tx = a.sender(STREAM, [b.local], heartbeat_us=2000)
        rx = b.receiver(STREAM)
        for q in range(1, 21):
            tx.send(rec(q))
        got: list[int] = []
        end = time.monotonic() + 3
        while len(got) < 20 and time.monotonic() < end:
            a.poll(0)
            got.extend(int(s) for s in rx.receive(100, timeout=0.001).seq)
        assert got == list(range(1, 21))
        assert rx.stats["heartbeats"] >= 1 and rx.stats["recovered"] == 3


def test_one_sender_many_destinations_each_recovers_its_own_losses():
    """Same bytes to every consumer; a NAK is answered to its source only (reply to source)."""
    # Datagrams alternate b, c per record: ordinal 2k goes to b, 2k+1 to c. Drop two of c's.
    fault = cmp.Fault(rules=(cmp.Rule("drop", first=21, count=1), cmp.Rule("drop", first=41, count=1)))
    with cmp.Endpoint("udp", ("127.0.0.1", 0), fault=fault) as a, \
            cmp.Endpoint("udp", ("127.0.0.1", 0)) as b, cmp.Endpoint("udp", ("127.0.0.1", 0)) as c:
        tx = a.sender(STREAM, [b.local, c.local])
        rb, rc = b.receiver(STREAM), c.receiver(STREAM)
        for q in range(1, 51):
            tx.send(rec(q))
        got = {id(rb): [], id(rc): []}
        end = time.monotonic() + 3
        while (len(got[id(rb)]) < 50 or len(got[id(rc)]) < 50) and time.monotonic() < end:
            a.poll(0)
            for ep, r in ((b, rb), (c, rc)):
                ep.poll(0)
                got[id(r)].extend(int(s) for s in r.read(100).seq)
        assert got[id(rb)] == list(range(1, 51)) and got[id(rc)] == list(range(1, 51))
        assert rb.stats["naks_sent"] == 0 and rc.stats["recovered"] == 2
        assert tx.stats["retx_ring"] == 2


def test_start_seq_zero_joins_a_running_stream():
    a, b = mem_pair()
    with a, b:
        tx = a.sender(STREAM, [("10.0.0.2", 9001)])
        rx = b.receiver(STREAM, start_seq=0)
        for q in range(777, 790):
            tx.send(rec(q))
        assert pump(a, b, rx, 13) == list(range(777, 790))


def test_faults_are_reproducible_by_seed():
    def run(seed: int) -> dict[str, int]:
        fault = cmp.Fault(drop=0.1, dup=0.05, reorder=0.05, seed=seed)
        a, b = mem_pair(fault)
        with a, b:
            tx = a.sender(STREAM, [("10.0.0.2", 9001)], heartbeat_us=0)
            b.receiver(STREAM, nak_delay_us=10_000_000)
            for q in range(1, 2001):
                tx.send(rec(q))
            return a.fault_stats
    assert run(3) == run(3)
    assert run(3) != run(4)
    st = run(3)
    assert st["seen"] >= 2000 and 120 < st["dropped"] < 280


def test_a_full_ring_stalls_the_producer_and_nothing_is_lost():
    a, b = mem_pair()
    with a, b:
        tx = a.sender(STREAM, [("10.0.0.2", 9001)], ring_size=64)
        rx = b.receiver(STREAM, window=8192)
        q = 1
        with pytest.raises(BlockingIOError):     # -EAGAIN: the mem queue (4096) and then the ring (64) are full
            while True:
                tx.send(rec(q))
                q += 1
        assert q == 4096 + 64 + 1 and tx.stats["stalls"] == 1 and tx.stats["pending"] == 64
        got = pump(a, b, rx, q - 1)
        tx.send(rec(q))                          # the refused record goes through once the kernel caught up
        got += pump(a, b, rx, 1)
        assert got == list(range(1, q + 1))


def test_default_backend_follows_the_design():
    """DESIGN.md 7: io_uring where the kernel allows it, plain UDP otherwise."""
    from rsx_appliance._native import lib
    with cmp.Endpoint() as ep:
        assert ep.backend is (cmp.Backend.URING if lib.rsx_probe_io_uring() == 0 else cmp.Backend.UDP)


def test_needs_replay_over_udp_sockets():
    """The horizon path on real sockets: drop 5 records, the WAL no longer has them, replay fills them."""
    fault = cmp.Fault(rules=(cmp.Rule("drop", first=20, count=5),))
    with cmp.Endpoint("udp", ("127.0.0.1", 0), fault=fault) as a, cmp.Endpoint("udp", ("127.0.0.1", 0)) as b:
        tx = a.sender(STREAM, [b.local], ring_size=64, heartbeat_us=300, fetch=lambda seq: None)
        rx = b.receiver(STREAM, nak_retry_us=300, nak_max_retries=3)
        for q in range(1, 201):
            tx.send(rec(q))
        got: list[int] = []
        end = time.monotonic() + 5
        with pytest.raises(NeedsReplay) as e:
            while time.monotonic() < end:
                a.poll(0)
                got.extend(int(s) for s in rx.receive(256, timeout=0.0005).seq)
        assert got == list(range(1, 21)) and e.value.info.gap_start == 21 and e.value.info.gap_end == 25
        assert [rx.replay(rec(q)) for q in range(21, 26)] == [False] * 4 + [True]
        got.extend(int(s) for s in rx.receive(256, timeout=1.0).seq)
        assert got == list(range(1, 201))


def test_receive_with_timeout_zero_polls_the_socket_once():
    """timeout=0 is a non-blocking poll: what already sits in the socket buffer is delivered."""
    with cmp.Endpoint("udp", ("127.0.0.1", 0)) as a, cmp.Endpoint("udp", ("127.0.0.1", 0)) as b:
        tx = a.sender(STREAM, [b.local])
        rx = b.receiver(STREAM)
        for q in range(1, 6):
            tx.send(rec(q))
        time.sleep(0.05)                     # the datagrams are in b's socket buffer
        assert rx.receive(16, timeout=0).seq.tolist() == [1, 2, 3, 4, 5]
        assert len(rx.receive(16, timeout=0)) == 0


def test_fileno_polls_readable_when_datagrams_wait():
    """An event loop can sleep on the endpoint's descriptor (udp); mem and uring wait inside poll()."""
    import select

    with cmp.Endpoint("udp", ("127.0.0.1", 0)) as a, cmp.Endpoint("udp", ("127.0.0.1", 0)) as b:
        tx = a.sender(STREAM, [b.local], heartbeat_us=0)
        rx = b.receiver(STREAM)
        fd = b.fileno()
        assert select.select([fd], [], [], 0) == ([], [], [])      # nothing waits yet
        tx.send(rec(1))
        assert select.select([fd], [], [], 2)[0] == [fd]           # the datagram makes it readable
        b.poll(0)
        assert [int(s) for s in rx.read(10).seq] == [1]
        assert select.select([fd], [], [], 0)[0] == []             # drained by poll
    a, b = mem_pair()
    with a, b, pytest.raises(OSError) as exc:
        b.fileno()
    assert exc.value.errno == errno.EOPNOTSUPP
