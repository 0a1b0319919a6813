"""CMP link receivers (specs/cmp.md 4.6): streams that are not journaled, over real UDP sockets.

A process restart is a new socket on the same port: the receiver's process
(it must join the running sender) or the sender's (it starts again at seq 1
with new record contents). Each case runs the ordinary receiver first, to show
what goes wrong without ``link=True``.
"""

from __future__ import annotations

import time

import pytest

from rsx_appliance import cmp
from rsx_appliance.errors import InvalidArgumentError, NeedsReplay
from rsx_appliance.records import RecordType, encode

STREAM = 23


def req(seq: int, incarnation: int = 1) -> bytes:
    """A request of one incarnation of the sender: the same seq in another incarnation has other bytes."""
    return encode(RecordType.BBO, seq=seq, stream_id=STREAM, ts_ns=incarnation * 10**9 + seq, bid_px=seq)


def incarnation(batch: cmp.Batch) -> list[tuple[int, int]]:
    ts = batch.records(RecordType.BBO)["payload"]["ts_ns"]
    return [(int(s), int(t) // 10**9) for s, t in zip(batch.seq, ts)]


def collect(tx_ep: cmp.Endpoint, rx: cmp.Receiver, want: int, seconds: float = 2.0) -> list[tuple[int, int]]:
    got: list[tuple[int, int]] = []
    end = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < end:
        tx_ep.poll(0)
        got.extend(incarnation(rx.receive(256, timeout=0.0005)))
    return got


def free_port() -> int:
    with cmp.Endpoint("udp", ("127.0.0.1", 0)) as ep:
        return ep.local[1]


@pytest.mark.parametrize("link", [False, True])
def test_receiver_restart_joins_the_running_sender(link):
    port = free_port()
    with cmp.Endpoint("udp", ("127.0.0.1", 0)) as a:
        tx = a.sender(STREAM, [("127.0.0.1", port)], ring_size=64, heartbeat_us=1000)
        with cmp.Endpoint("udp", ("127.0.0.1", port)) as b:
            rx = b.receiver(STREAM, link=link, nak_retry_us=300, nak_max_retries=3)
            for q in range(1, 101):
                tx.send(req(q))
            assert collect(a, rx, 100) == [(q, 1) for q in range(1, 101)]
        for q in range(101, 5001):            # the receiver's process is down; the sender runs on
            tx.send(req(q))
            a.poll(0)
        with cmp.Endpoint("udp", ("127.0.0.1", port)) as b:   # ... and starts again
            rx = b.receiver(STREAM, link=link, nak_retry_us=300, nak_max_retries=3)
            for q in range(5001, 5011):
                tx.send(req(q))
            if not link:
                with pytest.raises(NeedsReplay):       # it waits for seq 1, which nobody can resend
                    collect(a, rx, 10)
                return
            assert collect(a, rx, 10) == [(q, 1) for q in range(5001, 5011)]
            assert rx.info.state is cmp.State.LIVE and rx.info.link
            assert rx.stats["link_losses"] == 0 and rx.stats["naks_sent"] == 0


@pytest.mark.parametrize("link", [False, True])
def test_sender_restart_is_followed(link):
    port = free_port()
    with cmp.Endpoint("udp", ("127.0.0.1", 0)) as b:
        rx = b.receiver(STREAM, link=link)
        with cmp.Endpoint("udp", ("127.0.0.1", port)) as a:
            tx = a.sender(STREAM, [b.local], heartbeat_us=1000)
            for q in range(1, 51):
                tx.send(req(q))
            assert collect(a, rx, 50) == [(q, 1) for q in range(1, 51)]
        with cmp.Endpoint("udp", ("127.0.0.1", port)) as a:   # the sender's process restarted: seq 1 again
            tx = a.sender(STREAM, [b.local], heartbeat_us=1000)
            for q in range(1, 11):
                tx.send(req(q, incarnation=2))
            got = collect(a, rx, 10, seconds=0.3 if not link else 2.0)
            if not link:
                assert got == [] and rx.stats["duplicates"] == 10   # dead until seq 51
                return
            assert got == [(q, 2) for q in range(1, 11)]
            assert rx.stats["resyncs"] == 1 and rx.stats["link_losses"] == 0


def test_silent_restarted_sender_is_followed_by_its_heartbeat():
    port = free_port()
    with cmp.Endpoint("udp", ("127.0.0.1", 0)) as b:
        rx = b.receiver(STREAM, link=True)
        with cmp.Endpoint("udp", ("127.0.0.1", port)) as a:
            tx = a.sender(STREAM, [b.local], heartbeat_us=1000)
            for q in range(1, 31):
                tx.send(req(q))
            assert len(collect(a, rx, 30)) == 30
        with cmp.Endpoint("udp", ("127.0.0.1", port)) as a:
            tx = a.sender(STREAM, [b.local], heartbeat_us=1000)   # sends nothing: heartbeats say 0
            end = time.monotonic() + 2
            while rx.stats["resyncs"] == 0 and time.monotonic() < end:
                a.poll(0)
                rx.receive(16, timeout=0.001)
            assert rx.stats["resyncs"] == 1 and rx.info.delivered == 0
            tx.send(req(1, incarnation=2))
            assert collect(a, rx, 1) == [(1, 2)]


def test_unrecoverable_hole_is_skipped_and_counted():
    fault = cmp.Fault(rules=(cmp.Rule("drop", first=9, count=3),))    # seqs 10..12
    with cmp.Endpoint("udp", ("127.0.0.1", 0), fault=fault) as a, cmp.Endpoint("udp", ("127.0.0.1", 0)) as b:
        tx = a.sender(STREAM, [b.local], ring_size=64, heartbeat_us=1000)   # no WAL behind the ring
        rx = b.receiver(STREAM, link=True, nak_retry_us=300, nak_max_retries=3)
        for q in range(1, 201):
            tx.send(req(q))
        got = collect(a, rx, 197, seconds=3)
        assert [s for s, _ in got] == list(range(1, 10)) + list(range(13, 201))
        assert rx.stats["link_losses"] == 3 and rx.stats["faults"] == 0
        assert rx.info.state is cmp.State.LIVE
        with pytest.raises(InvalidArgumentError):
            rx.replay(req(201))


def test_link_configuration_is_checked():
    with cmp.Endpoint("mem", ("10.0.0.2", 9001)) as b:
        with pytest.raises(InvalidArgumentError):
            b.receiver(STREAM, link=True, start_seq=5)
        with pytest.raises(InvalidArgumentError):
            b.receiver(STREAM, link="yes")
        rx = b.receiver(STREAM, link=True)
        assert rx.info.link and rx.stats["resyncs"] == 0 and rx.stats["link_losses"] == 0
        assert not b.receiver(STREAM + 1).info.link
