"""The CMP benchmark harness from Python (native/bench/driver/cmp_bench.c, module rsx_appliance._bench).

Two C threads, pinned to two CPUs, each driving its own endpoint; every
delivered record is checked in C. Used by ``rsx bench cmp`` and by the
end-to-end tests. Latency samples come back as a numpy array of ns and are
summarised through rsx_appliance.latency (the C log-linear histogram), so a
run can be saved for ``rsx report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._bench import ffi, lib  # the benchmark driver (native/bench), not the production library
from .cmp import Backend, Fault, Mode, _addr, _enum, _struct_dict
from .codes import ErrorCode
from .errors import InvalidArgumentError, check, error_for

__all__ = ["Side", "Run", "rtt", "oneway"]


@dataclass(frozen=True)
class Side:
    """One side's endpoint: backend, mode, address, optional interface/netns/fault."""

    backend: str = "udp"
    mode: str = "busy"
    ip: str = "127.0.0.1"
    port: int = 0
    ifname: str = ""
    netns: str = ""
    fault: Fault | None = None
    mac: str = ""          # how the *other* side addresses this one over AF_XDP ("" = neighbour table)


@dataclass
class Run:
    """What one harness run measured (counters as dicts, samples in ns)."""

    error: int
    done: int
    elapsed_ns: int
    order_errors: int
    pinned: bool
    sender: dict[str, int]
    receiver: dict[str, int]
    endpoint_a: dict[str, int]
    endpoint_b: dict[str, int]
    fault_a: dict[str, int]
    fault_b: dict[str, int]
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))

    @property
    def ok(self) -> bool:
        return self.error == 0 and self.order_errors == 0

    @property
    def error_text(self) -> str:
        return "" if self.error == 0 else str(error_for(self.error))

    @property
    def rate(self) -> float:
        """Records (or round trips) per second."""
        return self.done * 1e9 / self.elapsed_ns if self.elapsed_ns else 0.0


def _side(c, s: Side) -> None:
    c.backend = _enum(Backend, s.backend, "backend")
    c.mode = _enum(Mode, s.mode, "mode")
    _addr(ffi.addressof(c, "local"), s.ip, s.port)
    c.ifname = s.ifname.encode()
    c.netns = s.netns.encode()
    if s.fault is not None:
        c.fault_enabled = 1
        s.fault._fill(ffi.addressof(c, "fault"))


def _config(a: Side, b: Side, **kw: Any):
    c = ffi.new("struct rsx_cmp_bench_config *")
    lib.rsx_cmp_bench_config_init(c)
    _side(ffi.addressof(c, "a"), a)
    _side(ffi.addressof(c, "b"), b)
    _addr(ffi.addressof(c, "a_to_b"), b.ip, b.port, b.mac or None)
    _addr(ffi.addressof(c, "b_to_a"), a.ip, a.port, a.mac or None)
    for k, v in kw.items():
        if v is None:
            continue
        if not hasattr(c, k):
            raise InvalidArgumentError(ErrorCode.INVALID, f"unknown harness setting {k}")
        setattr(c, k, v)
    return c


def _run(c, res, samples=None) -> Run:
    return Run(
        error=int(res.error), done=int(res.done), elapsed_ns=int(res.elapsed_ns),
        order_errors=int(res.order_errors), pinned=bool(res.pinned),
        sender=_struct_dict(res.sender, "struct rsx_cmp_sender_stats"),
        receiver=_struct_dict(res.receiver, "struct rsx_cmp_receiver_stats"),
        endpoint_a=_struct_dict(res.ep_a, "struct rsx_cmp_endpoint_stats"),
        endpoint_b=_struct_dict(res.ep_b, "struct rsx_cmp_endpoint_stats"),
        fault_a=_struct_dict(res.fault_a, "struct rsx_cmp_fault_stats"),
        fault_b=_struct_dict(res.fault_b, "struct rsx_cmp_fault_stats"),
        samples=samples[:int(res.done)] if samples is not None else np.zeros(0, dtype=np.uint64),
    )


def rtt(a: Side, b: Side, *, count: int = 10_000, warmup: int = 1_000, payload: int = 64,
        cpu_a: int = 0, cpu_b: int = 1, timeout_ms: int = 60_000) -> Run:
    """Ping-pong: A sends, B echoes, A times each round trip (ns samples in ``Run.samples``)."""
    c = _config(a, b, count=count, warmup=warmup, payload=payload, cpu_a=cpu_a, cpu_b=cpu_b,
                timeout_ms=timeout_ms)
    samples = np.zeros(count, dtype=np.uint64)
    res = ffi.new("struct rsx_cmp_bench_result *")
    check(lib.rsx_cmp_bench_rtt(c, ffi.cast("uint64_t *", ffi.from_buffer(samples)), res), "rtt benchmark")
    return _run(c, res, samples)


def oneway(a: Side, b: Side, *, count: int = 200_000, payload: int = 64, batch: int = 32, rate: int = 0,
           inflight: int = 2048, window: int = 0, ring: int = 0, fetch_all: bool = True,
           cpu_a: int = 0, cpu_b: int = 1, timeout_ms: int = 60_000) -> Run:
    """One stream A -> B: ``count`` records, every one checked in order at B.

    ``rate`` > 0 offers that many records/s (open loop); ``inflight`` > 0 keeps
    A at most that many records ahead of B's delivery (capacity mode).
    ``fetch_all`` gives A a WAL that can rebuild any seq.
    """
    c = _config(a, b, count=count, payload=payload, batch=batch, rate=rate, inflight=inflight, window=window,
                ring=ring, fetch_all=int(fetch_all), cpu_a=cpu_a, cpu_b=cpu_b, timeout_ms=timeout_ms)
    res = ffi.new("struct rsx_cmp_bench_result *")
    check(lib.rsx_cmp_bench_oneway(c, res), "one-way benchmark")
    return _run(c, res)

