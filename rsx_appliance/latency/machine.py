"""The setup block of a run: what machine, how tuned, and who else used the CPUs.

Everything is read through :class:`~rsx_appliance.fsutil.Root` (``root="/"``)
so tests can point it at a fake /proc and /sys. A fact that cannot be read is recorded as ``None``
or ``"absent"``, never guessed.
"""

from __future__ import annotations

import os
import platform
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..fsutil import Root

__all__ = ["machine_setup", "CpuAccount", "cpu_snapshot"]

_SYSCTLS = {
    "net.core.busy_poll": "proc/sys/net/core/busy_poll",
    "net.core.busy_read": "proc/sys/net/core/busy_read",
    "kernel.sched_rt_runtime_us": "proc/sys/kernel/sched_rt_runtime_us",
    "kernel.timer_migration": "proc/sys/kernel/timer_migration",
    "kernel.numa_balancing": "proc/sys/kernel/numa_balancing",
    "kernel.watchdog": "proc/sys/kernel/watchdog",
    "vm.swappiness": "proc/sys/vm/swappiness",
    "vm.stat_interval": "proc/sys/vm/stat_interval",
    "vm.nr_hugepages": "proc/sys/vm/nr_hugepages",
}


def _read(root: str | Path, rel: str) -> str | None:
    return Root(root).read(rel)


def _cpuinfo(root: Path) -> dict[str, Any]:
    text = _read(root, "proc/cpuinfo") or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields.setdefault(k.strip(), v.strip())
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name"), "microcode": fields.get("microcode"),
            "smt": "ht" in flags and fields.get("siblings") != fields.get("cpu cores"),
            "invariant_tsc": {"constant_tsc", "nonstop_tsc"} <= flags}


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=2, check=False)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def machine_setup(root: str | Path = "/") -> dict[str, Any]:
    """Facts about this machine for a run's ``setup.machine`` (specs/latency.md 4.1)."""
    from .. import __version__
    from ..sysinfo import hugepage_pools, numa_nodes

    root = Path(root)
    governor = _read(root, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    uname = platform.uname()
    return {
        "host": socket.gethostname(),
        "cpu": _cpuinfo(root),
        "cpus_online": os.cpu_count(),
        "cpus_used": sorted(os.sched_getaffinity(0)),
        "cpus_isolated": _read(root, "sys/devices/system/cpu/isolated") or "",
        "nohz_full": _read(root, "sys/devices/system/cpu/nohz_full") or "absent",
        "numa_nodes": numa_nodes(root),
        "kernel": f"{uname.release} {uname.version}",
        "cmdline": _read(root, "proc/cmdline"),
        "clocksource": _read(root, "sys/devices/system/clocksource/clocksource0/current_clocksource"),
        "governor": governor or "absent",
        "thp": _read(root, "sys/kernel/mm/transparent_hugepage/enabled"),
        "hugepages": [{"size_kb": p.size_kb, "total": p.total, "free": p.free}
                      for p in hugepage_pools(root)],
        "sysctl": {k: _read(root, v) for k, v in _SYSCTLS.items()},
        "loadavg": _read(root, "proc/loadavg"),
        "python": sys.version.split()[0],
        "rsx_version": __version__,
        "commit": _git_commit(),
    }


@dataclass(frozen=True)
class CpuSnapshot:
    wall_ns: int
    busy_ticks: int    # user+nice+system+irq+softirq of all CPUs (guest is inside user)
    steal_ticks: int
    own_s: float       # this process (+ waited children) + registered pids


def _proc_stat(root: Path) -> tuple[int, int]:
    text = _read(root, "proc/stat") or ""
    for line in text.splitlines():
        if line.startswith("cpu "):
            f = [int(x) for x in line.split()[1:]]
            f += [0] * (8 - len(f))
            return f[0] + f[1] + f[2] + f[5] + f[6], f[7]
    return 0, 0


def _pid_cpu_s(root: Path, pid: int) -> float:
    text = _read(root, f"proc/{pid}/stat")
    if not text:
        return 0.0
    fields = text[text.rfind(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(own_pids: tuple[int, ...] = (), root: str | Path = "/") -> CpuSnapshot:
    root = Path(root)
    busy, steal = _proc_stat(root)
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    own += sum(_pid_cpu_s(root, p) for p in own_pids)
    return CpuSnapshot(time.monotonic_ns(), busy, steal, own)


@dataclass(frozen=True)
class CpuAccount:
    """CPU use between two snapshots: ours, everyone else's, the hypervisor's."""

    wall_s: float
    run_cpu_s: float
    others_cpu_s: float
    steal_s: float
    cpus: int

    @classmethod
    def between(cls, a: CpuSnapshot, b: CpuSnapshot) -> CpuAccount:
        hz = os.sysconf("SC_CLK_TCK")
        busy_s = (b.busy_ticks - a.busy_ticks) / hz
        own = max(0.0, b.own_s - a.own_s)
        # tick accounting is coarse (1/HZ per CPU): never report negative others
        return cls(wall_s=(b.wall_ns - a.wall_ns) / 1e9, run_cpu_s=round(own, 3),
                   others_cpu_s=round(max(0.0, busy_s - own), 3),
                   steal_s=round((b.steal_ticks - a.steal_ticks) / hz, 3), cpus=os.cpu_count() or 1)

    @property
    def others_share(self) -> float:
        """Others' CPU as a fraction of the machine's capacity during the run."""
        cap = self.wall_s * self.cpus
        return self.others_cpu_s / cap if cap > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall_s, 6), "run_cpu_s": self.run_cpu_s,
                "others_cpu_s": self.others_cpu_s, "steal_s": self.steal_s,
                "others_share": round(self.others_share, 4), "cpus": self.cpus}
