"""A stream's three recovery tiers with the real components: CMP hot ring -> WAL -> DXS replay.

DESIGN.md section 5: a receiver that misses datagrams NAKs them; the sender
retransmits from its hot ring, then from the WAL; beyond that the receiver
falls back to DXS replay from its tip. Here the records come out of a real
WAL writer, the sender's deep retransmit source is the WAL itself
(rsx_cmp_wal_fetch, C to C), and the last tier is a real DXS server and
consumer over loopback TCP.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from rsx_appliance import cmp
from rsx_appliance.dxs import DxsConsumer, DxsServer
from rsx_appliance.errors import NeedsReplay
from rsx_appliance.records import RecordType
from rsx_appliance.wal import WalReader, WalWriter

STREAM = 21
N = 3000


def write_stream(directory, n: int = N) -> list[bytes]:
    """Append n FILLs (qty = seq) through the WAL; return the exact framed bytes it made durable."""
    with WalWriter(directory, STREAM) as w:
        for i in range(1, n + 1):
            w.append(RecordType.FILL, symbol_id=STREAM, price=100 + i, qty=i)
        w.wait_durable(n, timeout=10)
    out: list[bytes] = []
    with WalReader(directory, STREAM) as r:
        for batch in r:
            raw = bytes(batch.raw)
            out.extend(raw[int(e["offset"]):int(e["offset"]) + int(e["size"])] for e in batch.index)
            if len(out) >= n:
                break
    assert [int.from_bytes(b[16:24], "little") for b in out] == list(range(1, n + 1))
    return out


def mem_pair(fault: cmp.Fault, rx_fault: cmp.Fault | None = None):
    a = cmp.Endpoint("mem", ("10.0.0.1", 9000), fault=fault)
    b = cmp.Endpoint("mem", ("10.0.0.2", 9001), fault=rx_fault)
    a.link(b)
    return a, b


def test_naks_past_the_hot_ring_are_served_from_the_wal(tmp_path):
    records = write_stream(tmp_path)
    # Drop 40 records early in the stream: by the time they are NAKed the
    # 64-slot hot ring has moved thousands of seqs on, so only the WAL has them.
    fault = cmp.Fault(rules=(cmp.Rule("drop", first=100, count=40),))
    a, b = mem_pair(fault)
    with a, b, WalReader(tmp_path, STREAM) as wal:
        tx = a.sender(STREAM, [("10.0.0.2", 9001)], ring_size=64, fetch=wal)
        rx = b.receiver(STREAM, window=8192)
        for rec in records:
            tx.send(rec)
        got: list[bytes] = []
        end = time.monotonic() + 10
        while len(got) < N and time.monotonic() < end:
            a.poll(0)
            b.poll(0)
            batch = rx.read(1024)
            got.extend(batch.record_bytes(i) for i in range(len(batch)))
        assert got == records                      # every record, once, in order, byte for byte
        st = tx.stats
        assert st["retx_fetched"] >= 40 and st["retx_gone"] == 0 and st["fetch_errors"] == 0
        assert rx.info.state is cmp.State.LIVE


def test_a_gap_naks_cannot_fill_is_replayed_through_dxs(tmp_path):
    records = write_stream(tmp_path)
    # Seqs 501..520 are lost and so is every NAK the receiver sends: NAK retries
    # run out, the receiver says NEEDS_REPLAY, and the caller completes the
    # stream from DXS.
    a, b = mem_pair(cmp.Fault(rules=(cmp.Rule("drop", first=500, count=20),)),
                    cmp.Fault(rules=(cmp.Rule("drop", cls="control", first=0, count=10**9),)))

    async def scenario():
        server = DxsServer(tmp_path, STREAM)
        await server.start()
        try:
            with a, b, WalReader(tmp_path, STREAM) as wal:
                tx = a.sender(STREAM, [("10.0.0.2", 9001)], ring_size=64, heartbeat_us=300, fetch=wal)
                rx = b.receiver(STREAM, window=8192, nak_retry_us=300, nak_max_retries=3)
                for rec in records:
                    tx.send(rec)
                got: list[bytes] = []
                end = time.monotonic() + 10
                with pytest.raises(NeedsReplay) as exc:
                    while time.monotonic() < end:
                        a.poll(0)
                        b.poll(0)
                        batch = rx.receive(1024, timeout=0.0002)
                        got.extend(batch.record_bytes(i) for i in range(len(batch)))
                        await asyncio.sleep(0)
                info = exc.value.info
                assert (info.gap_start, info.expected) == (501, 501)
                assert got == records[:500]        # nothing past the gap leaked out, nothing skipped
                # Replay from the receiver's tip through a real DXS consumer.
                async with DxsConsumer(("127.0.0.1", server.port), STREAM,
                                       from_seq=info.expected) as dxs:
                    async for batch in dxs:
                        raw = bytes(batch.raw)
                        for e in batch.index:
                            rx.replay(raw[int(e["offset"]):int(e["offset"]) + int(e["size"])])
                        if rx.info.state is cmp.State.LIVE:
                            break
                end = time.monotonic() + 10
                while len(got) < N and time.monotonic() < end:
                    a.poll(0)
                    b.poll(0)
                    batch = rx.read(1024)
                    got.extend(batch.record_bytes(i) for i in range(len(batch)))
                assert got == records               # complete, in order, no duplicate
                st = rx.stats
                assert st["faults"] == 1 and st["resumes"] == 1 and st["replayed"] >= 20
        finally:
            await server.close()

    asyncio.run(scenario())
