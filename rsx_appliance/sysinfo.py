"""What this machine offers the appliance: the facts `rsx version` prints.

Files are read through :class:`~rsx_appliance.fsutil.Root` (``root="/"`` by
default) so tests can point it at a fake /sys and /proc tree. Kernel mechanisms (io_uring, AF_XDP,
hugetlb mappings) are probed for real by the C core: reading a config file
cannot tell whether a seccomp filter or a missing capability will refuse them.
"""

from __future__ import annotations

import errno
import os
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ._native import lib
from .fsutil import Root  # the one reader of /proc and /sys (re-exported here for older imports)

__all__ = ["Root", "HugepagePool", "Probe", "MachineInfo", "hugepage_pools", "numa_nodes",
           "probe_io_uring", "probe_af_xdp", "collect"]


@dataclass(frozen=True)
class HugepagePool:
    size_kb: int
    total: int  # nr_hugepages: reserved for hugetlb
    free: int
    reserved: int  # promised to mappings, not yet faulted in
    surplus: int


@dataclass(frozen=True)
class Probe:
    available: bool
    detail: str


@dataclass(frozen=True)
class MachineInfo:
    version: str
    kernel: str
    machine: str
    cpus_online: int
    cpus_usable: list[int]
    numa_nodes: list[int]
    hugepages: list[HugepagePool]
    thp_enabled: str
    io_uring: Probe
    af_xdp: Probe
    crc32c_hw: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _read(root: str | Path, rel: str) -> str | None:
    return Root(root).read(rel)


def hugepage_pools(root: str | Path = "/") -> list[HugepagePool]:
    """Every hugepage size the kernel offers, with its reserved and free counts."""
    r = Root(root)
    pools = []
    for name in r.listdir("sys/kernel/mm/hugepages"):
        m = re.fullmatch(r"hugepages-(\d+)kB", name)
        if not m:
            continue
        rel = f"sys/kernel/mm/hugepages/{name}"
        pools.append(HugepagePool(int(m.group(1)), r.read_int(f"{rel}/nr_hugepages"),
                                  r.read_int(f"{rel}/free_hugepages"),
                                  r.read_int(f"{rel}/resv_hugepages"),
                                  r.read_int(f"{rel}/surplus_hugepages")))
    return sorted(pools, key=lambda p: p.size_kb)


def numa_nodes(root: str | Path = "/") -> list[int]:
    return sorted(int(m.group(1)) for name in Root(root).listdir("sys/devices/system/node")
                  if (m := re.fullmatch(r"node(\d+)", name)))


def _thp(root: Path) -> str:
    text = _read(root, "sys/kernel/mm/transparent_hugepage/enabled") or "unknown"
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m else text


def _explain(rc: int, what: str) -> str:
    err = -rc
    name = errno.errorcode.get(err, str(err))
    hints = {
        errno.ENOSYS: "not compiled into this kernel",
        errno.EPERM: "refused (needs root or CAP_NET_RAW / CAP_SYS_ADMIN, or disabled by sysctl)",
        errno.EACCES: "refused by policy",
        errno.EAFNOSUPPORT: "address family not supported by this kernel",
    }
    return f"{what}: {name}, {hints.get(err, os.strerror(err))}"


def probe_io_uring(root: str | Path = "/") -> Probe:
    disabled = _read(Path(root), "proc/sys/kernel/io_uring_disabled")
    rc = lib.rsx_probe_io_uring()
    if rc == 0:
        return Probe(True, "io_uring_setup works" + (f", io_uring_disabled={disabled}" if disabled else ""))
    detail = _explain(rc, "io_uring_setup")
    if disabled and disabled != "0":
        detail += f"; kernel.io_uring_disabled={disabled}"
    return Probe(False, detail)


def probe_af_xdp() -> Probe:
    rc = lib.rsx_probe_af_xdp()
    if rc == 0:
        return Probe(True, "AF_XDP socket created; copy mode on any driver, zero-copy needs NIC support")
    return Probe(False, _explain(rc, "socket(AF_XDP)"))


def collect(root: str | Path = "/") -> MachineInfo:
    from . import __version__

    root = Path(root)
    uname = platform.uname()
    return MachineInfo(
        version=__version__,
        kernel=uname.release,
        machine=uname.machine,
        cpus_online=os.cpu_count() or 0,
        cpus_usable=sorted(os.sched_getaffinity(0)),
        numa_nodes=numa_nodes(root),
        hugepages=hugepage_pools(root),
        thp_enabled=_thp(root),
        io_uring=probe_io_uring(root),
        af_xdp=probe_af_xdp(),
        crc32c_hw=bool(lib.rsx_crc32c_hw_available()),
    )
