"""udp and io_uring backends end to end on loopback, through the C harness (every record checked in C)."""

from __future__ import annotations

import pytest

from rsx_appliance import cmp, cmpbench
from rsx_appliance._native import lib

BACKENDS = ["udp", pytest.param("uring", marks=pytest.mark.skipif(
    lib.rsx_probe_io_uring() != 0, reason="io_uring is not available on this kernel"))]


def side(backend: str, mode: str, fault: cmp.Fault | None = None) -> cmpbench.Side:
    return cmpbench.Side(backend=backend, mode=mode, fault=fault)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["busy", "sleep"])
def test_ping_pong(backend, mode):
    run = cmpbench.rtt(side(backend, mode), side(backend, mode), count=2000, warmup=200, timeout_ms=30_000)
    assert run.ok, run.error_text
    assert run.done == 2000 and len(run.samples) == 2000
    assert 0 < run.samples.min() < 10_000_000  # a round trip takes between 0 and 10 ms
    assert run.receiver["naks_sent"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["busy", "sleep"])
def test_one_way_in_order(backend, mode):
    run = cmpbench.oneway(side(backend, mode), side(backend, mode), count=100_000, payload=128,
                          timeout_ms=30_000)
    assert run.ok, run.error_text
    assert run.done == 100_000 and run.receiver["delivered"] == 100_000
    assert run.receiver["faults"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_way_under_loss(backend):
    fault = cmp.Fault(drop=0.05, dup=0.01, reorder=0.01, seed=9)
    run = cmpbench.oneway(side(backend, "busy", fault), side(backend, "busy"), count=50_000, timeout_ms=30_000)
    assert run.ok, run.error_text
    assert run.done == 50_000
    assert run.fault_a["dropped"] > 1500 and run.receiver["recovered"] > 1500
    assert run.receiver["duplicates"] > 0 and run.receiver["faults"] == 0


@pytest.mark.slow
def test_one_million_records_through_loss_complete_and_in_order():
    """5% drop, 1% duplication, 1% reordering on the data path, 5% drop on the NAK path, over UDP."""
    data_faults = cmp.Fault(drop=0.05, dup=0.01, reorder=0.01, seed=20261125)
    nak_faults = cmp.Fault(drop=0.05, seed=7)
    run = cmpbench.oneway(side("udp", "busy", data_faults), side("udp", "busy", nak_faults),
                          count=1_000_000, timeout_ms=80_000)
    assert run.ok, run.error_text
    assert run.done == 1_000_000 and run.order_errors == 0
    assert run.receiver["delivered"] == 1_000_000 and run.receiver["faults"] == 0
    assert run.fault_a["dropped"] > 45_000 and run.fault_a["duplicated"] > 8_000
    assert run.fault_a["reordered"] > 8_000 and run.receiver["duplicates"] > 8_000
