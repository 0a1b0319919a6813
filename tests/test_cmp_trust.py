"""What CMP trusts (specs/cmp.md section 12), over real UDP sockets on loopback.

Before: one NAK from any address got up to a ring of records back (history included): data exposure
and amplification. Now only the stream's destinations get retransmits; a keyed stream (a shared
16-byte key per stream) drops every datagram without a valid tag."""

from __future__ import annotations

import socket
import time

import pytest

from rsx_appliance import cmp
from rsx_appliance.errors import InvalidArgumentError
from rsx_appliance.records import RecordType, encode

STREAM = 31
KEY = bytes(range(100, 116))


def rec(seq: int) -> bytes:
    return encode(RecordType.BBO, seq=seq, stream_id=STREAM, bid_px=seq)


def drain(tx_ep, rx, want: int, seconds: float = 2.0) -> list[int]:
    got: list[int] = []
    end = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < end:
        tx_ep.poll(0)
        got.extend(int(s) for s in rx.receive(256, timeout=0.0005).seq)
    return got


def test_a_nak_from_a_stranger_gets_nothing_back():
    with cmp.Endpoint("udp", ("127.0.0.1", 0)) as a, cmp.Endpoint("udp", ("127.0.0.1", 0)) as b, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        tx = a.sender(STREAM, [b.local])
        rx = b.receiver(STREAM)
        for q in range(1, 101):
            tx.send(rec(q))
        assert drain(a, rx, 100) == list(range(1, 101))
        stranger.bind(("127.0.0.1", 0))
        stranger.settimeout(0.2)
        stranger.sendto(encode(RecordType.NAK, stream_id=STREAM, from_seq=1, count=100), a.local)
        a.poll(0.05)
        with pytest.raises(socket.timeout):
            stranger.recvfrom(4096)                 # not one record of the stream
        assert tx.stats["naks_unknown"] == 1 and tx.stats["retx_ring"] == 0


def test_a_keyed_stream_delivers_and_drops_forgeries():
    fault = cmp.Fault(rules=(cmp.Rule("drop", first=5, count=3),))     # recovered with tagged NAKs
    with cmp.Endpoint("udp", ("127.0.0.1", 0), fault=fault) as a, cmp.Endpoint("udp", ("127.0.0.1", 0)) as b:
        tx = a.sender(STREAM, [b.local], key=KEY, heartbeat_us=2000)
        rx = b.receiver(STREAM, key=KEY)
        for q in range(1, 51):
            tx.send(rec(q))
        assert drain(a, rx, 50) == list(range(1, 51))
        assert rx.stats["recovered"] == 3 and b.stats["rx_bad_mac"] == 0
        # a forger who knows the record format but not the key
        a.send_raw(rec(51), b.local)
        a.send_raw(rec(51) + bytes(16), b.local)
        time.sleep(0.02)
        b.poll(0)
        assert b.stats["rx_bad_mac"] == 2 and rx.info.delivered == 50


def test_a_key_must_be_16_bytes():
    with cmp.Endpoint("mem", ("10.0.0.1", 9000)) as a:
        with pytest.raises(InvalidArgumentError):
            a.sender(STREAM, [("10.0.0.2", 9001)], key=b"short")
        with pytest.raises(InvalidArgumentError):
            a.receiver(STREAM, key="0123456789abcdef")
