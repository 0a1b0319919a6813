"""What this machine offers the appliance: the facts `rsx version` prints.

Files are read through one root path (``root="/"`` by default) so tests can
point it at a fake /sys and /proc tree. Kernel mechanisms (io_uring, AF_XDP,
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

__all__ = ["Root", "HugepagePool", "Probe", "MachineInfo", "hugepage_pools", "numa_nodes",
           "probe_io_uring", "probe_af_xdp", "collect"]


class Root:
    """A live system's files under one directory: ``Root("/")`` is this host.

    Every reader of /proc and /sys in the package goes through this class, so
    a test (or an operator planning offline) points it at a copied or fake
    tree. Paths are given as on a live system (``"proc/cmdline"`` or
    ``"/proc/cmdline"``). Reads never raise: a missing or unreadable file is
    ``None``. Writes and directory changes raise ``OSError`` as the kernel
    reports it; subclasses (the tests' fake kernel) override them to emulate
    kernel file semantics.
    """

    def __init__(self, path: str | os.PathLike = "/") -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Root({str(self.path)!r})"

    @property
    def is_live(self) -> bool:
        """True when this root is the running system's own ``/``."""
        return self.path.resolve() == Path("/")

    def __truediv__(self, rel: str) -> Path:
        return self.path / str(rel).lstrip("/")

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            return (self / rel).read_bytes()
        except OSError:
            return None

    def read(self, rel: str) -> str | None:
        """The file's text, stripped; ``None`` when it is absent or unreadable."""
        data = self.read_bytes(rel)
        return None if data is None else data.decode(errors="replace").strip()

    def read_int(self, rel: str, default: int | None = 0) -> int | None:
        text = self.read(rel)
        return int(text) if text and text.lstrip("-").isdigit() else default

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self / rel)

    def is_dir(self, rel: str) -> bool:
        return (self / rel).is_dir()

    def listdir(self, rel: str) -> list[str]:
        try:
            return sorted(os.listdir(self / rel))
        except OSError:
            return []

    def realpath(self, rel: str) -> str | None:
        """Resolve symlinks inside the root; the result is relative to the root."""
        try:
            real = (self / rel).resolve(strict=True)
            return "/" + str(real.relative_to(self.path.resolve()))
        except (OSError, ValueError):
            return None

    def writable(self, rel: str) -> bool:
        return os.access(self / rel, os.W_OK)

    def write(self, rel: str, data: str) -> None:
        """One ``write()`` of ``data`` (sysfs and procfs take a value per write call)."""
        fd = os.open(self / rel, os.O_WRONLY | os.O_TRUNC)  # never creates: a missing knob is ENOENT
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)

    def mkdir(self, rel: str) -> None:
        os.mkdir(self / rel)

    def rmdir(self, rel: str) -> None:
        os.rmdir(self / rel)


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


def _read(root: Path, rel: str) -> str | None:
    return Root(root).read(rel)


def _int(root: Path, rel: str) -> int:
    return Root(root).read_int(rel)


def hugepage_pools(root: str | Path = "/") -> list[HugepagePool]:
    """Every hugepage size the kernel offers, with its reserved and free counts."""
    root = Path(root)
    base = root / "sys/kernel/mm/hugepages"
    pools = []
    for d in sorted(base.glob("hugepages-*kB")) if base.is_dir() else []:
        m = re.fullmatch(r"hugepages-(\d+)kB", d.name)
        if not m:
            continue
        rel = f"sys/kernel/mm/hugepages/{d.name}"
        pools.append(HugepagePool(int(m.group(1)), _int(root, f"{rel}/nr_hugepages"),
                                  _int(root, f"{rel}/free_hugepages"),
                                  _int(root, f"{rel}/resv_hugepages"),
                                  _int(root, f"{rel}/surplus_hugepages")))
    return sorted(pools, key=lambda p: p.size_kb)


def numa_nodes(root: str | Path = "/") -> list[int]:
    base = Path(root) / "sys/devices/system/node"
    nodes = [int(m.group(1)) for d in (base.iterdir() if base.is_dir() else [])
             if (m := re.fullmatch(r"node(\d+)", d.name))]
    return sorted(nodes)


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
