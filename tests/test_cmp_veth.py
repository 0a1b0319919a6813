"""AF_XDP and kernel UDP across a veth pair between two network namespaces the test creates.

Both ends live in namespaces made here (names carry the pid) and are removed
at teardown; nothing touches the machine's own interfaces.
"""

from __future__ import annotations

import os
import time

import pytest

from rsx_appliance import cmp, cmpbench
from rsx_appliance.netns import VethPair, available
from rsx_appliance.records import RecordType, encode

_ok, _why = available()
pytestmark = [pytest.mark.privileged, pytest.mark.skipif(not _ok, reason=_why)]

PORT_A, PORT_B = 9100, 9200


@pytest.fixture
def veth():
    with VethPair() as vp:
        yield vp
    assert not os.path.exists(vp.a.netns) and not os.path.exists(vp.b.netns)


def side(vp_side, backend: str, port: int, mode: str = "busy", fault=None) -> cmpbench.Side:
    return cmpbench.Side(backend=backend, mode=mode, ip=vp_side.ip, port=port, ifname=vp_side.ifname,
                         netns=vp_side.netns, fault=fault)


def test_fixture_switches_tx_checksum_offload_off(veth):
    assert VethPair.tx_checksum(veth.a) is False and VethPair.tx_checksum(veth.b) is False
    VethPair.set_tx_checksum(veth.a, True)
    assert VethPair.tx_checksum(veth.a) is True


@pytest.mark.parametrize("a_backend,b_backend", [("xdp", "xdp"), ("udp", "udp"), ("xdp", "udp"), ("udp", "xdp")])
def test_ping_pong_across_namespaces(veth, a_backend, b_backend):
    run = cmpbench.rtt(side(veth.a, a_backend, PORT_A), side(veth.b, b_backend, PORT_B), count=2000, warmup=200,
                       timeout_ms=30_000)
    assert run.ok, run.error_text
    assert run.done == 2000 and 0 < run.samples.min() < 10_000_000


@pytest.mark.parametrize("a_backend,b_backend", [("xdp", "xdp"), ("udp", "udp"), ("udp", "xdp")])
@pytest.mark.parametrize("mode", ["busy", "sleep"])
def test_one_way_across_namespaces(veth, a_backend, b_backend, mode):
    run = cmpbench.oneway(side(veth.a, a_backend, PORT_A, mode), side(veth.b, b_backend, PORT_B, mode),
                          count=50_000, payload=128, timeout_ms=30_000)
    assert run.ok, run.error_text
    assert run.done == 50_000 and run.receiver["faults"] == 0


def test_xdp_one_way_under_loss(veth):
    fault = cmp.Fault(drop=0.05, dup=0.01, reorder=0.01, seed=4)
    run = cmpbench.oneway(side(veth.a, "xdp", PORT_A, fault=fault), side(veth.b, "xdp", PORT_B), count=50_000,
                          timeout_ms=30_000)
    assert run.ok, run.error_text
    assert run.done == 50_000 and run.receiver["recovered"] > 1500


def test_kernel_socket_to_xsk_with_checksum_offload_on(veth):
    """The XSK never trusts the UDP checksum (CRC32C is the check) and writes a full one itself."""
    VethPair.set_tx_checksum(veth.a, True)
    VethPair.set_tx_checksum(veth.b, True)
    run = cmpbench.rtt(side(veth.a, "udp", PORT_A), side(veth.b, "xdp", PORT_B), count=500, warmup=50,
                       timeout_ms=30_000)
    assert run.ok, run.error_text


def test_xdp_counts_malformed_and_passes_other_traffic_to_the_kernel(veth):
    rec = encode(RecordType.BBO, seq=1, stream_id=5)
    with cmp.Endpoint("xdp", (veth.b.ip, PORT_B), ifname=veth.b.ifname, netns=veth.b.netns) as xb, \
            cmp.Endpoint("udp", (veth.b.ip, PORT_B + 1), netns=veth.b.netns) as kb, \
            cmp.Endpoint("udp", (veth.a.ip, PORT_A), netns=veth.a.netns) as ua:
        rx = xb.receiver(5)
        bad = bytearray(rec)
        bad[33] ^= 0x10
        for d in (rec[:7], bytes(bad), rec + b"xyz", rec):
            ua.send_raw(d, (veth.b.ip, PORT_B))
        ua.send_raw(rec, (veth.b.ip, PORT_B + 1))   # another port: XDP passes it, the kernel socket gets it
        batch = rx.receive(10, timeout=2.0)
        assert batch.seq.tolist() == [1]
        end = time.monotonic() + 2
        while kb.stats["rx_unknown_stream"] == 0 and time.monotonic() < end:
            kb.poll(0.01)
        st = xb.stats
        assert (st["rx_short"], st["rx_bad_crc"], st["rx_bad_length"], st["rx_datagrams"]) == (1, 1, 1, 1)
        assert st["rx_not_ours"] == 0
        assert kb.stats["rx_unknown_stream"] == 1   # it reached the kernel socket (no receiver for stream 5)


def test_xdp_program_detaches_and_the_queue_can_be_bound_again(veth):
    for _ in range(3):
        with cmp.Endpoint("xdp", (veth.b.ip, PORT_B), ifname=veth.b.ifname, netns=veth.b.netns):
            pass


def test_xdp_refuses_a_second_program_on_the_interface(veth):
    with cmp.Endpoint("xdp", (veth.b.ip, PORT_B), ifname=veth.b.ifname, netns=veth.b.netns):
        with pytest.raises(OSError):
            cmp.Endpoint("xdp", (veth.b.ip, PORT_B + 1), ifname=veth.b.ifname, netns=veth.b.netns, queue=0)


def test_xdp_unknown_interface_is_an_os_error(veth):
    with pytest.raises(OSError):
        cmp.Endpoint("xdp", (veth.b.ip, PORT_B), ifname="nosuchif0", netns=veth.b.netns)


def test_xdp_sender_learns_the_peer_mac_by_arp(veth):
    """No neighbour entry: the XDP program passes ARP to the kernel, which resolves the MAC for the sender."""
    from pyroute2 import NetNS

    with NetNS(veth.a.name) as ns:
        idx = ns.link_lookup(ifname=veth.a.ifname)[0]
        ns.neigh("del", dst=veth.b.ip, lladdr=veth.b.mac, ifindex=idx)
    with cmp.Endpoint("xdp", (veth.a.ip, PORT_A), ifname=veth.a.ifname, netns=veth.a.netns) as xa, \
            cmp.Endpoint("udp", (veth.b.ip, PORT_B), netns=veth.b.netns) as ub:
        tx = xa.sender(3, [(veth.b.ip, PORT_B)])
        rx = ub.receiver(3)
        tx.send(encode(RecordType.BBO, seq=1, stream_id=3))
        assert rx.receive(1, timeout=2.0).seq.tolist() == [1]


def test_xdp_sender_to_an_unreachable_peer_is_an_os_error(veth):
    import errno

    with cmp.Endpoint("xdp", (veth.a.ip, PORT_A), ifname=veth.a.ifname, netns=veth.a.netns) as xa:
        with pytest.raises(OSError) as e:
            xa.sender(3, [(veth.a.ip.rsplit(".", 1)[0] + ".99", PORT_B)])   # nobody has that address
        assert e.value.errno == errno.EHOSTUNREACH
