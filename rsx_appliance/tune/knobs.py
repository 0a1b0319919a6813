"""The knob catalog and the one primitive every runtime change goes through.

A knob is a file under the root (specs/tuning.md section 3). The catalog is
closed: :func:`knob_def` refuses an id it does not know, suggesting the closest
one, so a typo in a profile is an error, never a silently ignored setting.

:class:`Change` is one planned write. It knows how to read the file's current
bytes, compare them with what is wanted in the file's own format (a number, a
``[selected]`` word, a hex mask, a CPU list), what to write back to restore the
original, and how to tell whether the restore was byte-exact.
"""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import asdict, dataclass

from ..fsutil import Root
from .cpus import parse_list, parse_mask
from .errors import UnknownKnobError

__all__ = ["KnobDef", "Change", "CATALOG", "KINDS", "knob_def", "normalize", "restore_value",
           "read_only", "sysctl_path"]

# Every kind of runtime change apply can make, in the order apply makes them
# (memory first, so a failed hugepage grant aborts before anything moves; the
# other tasks move off the isolated CPUs last, once their cpuset exists).
KINDS = ("hugepages", "sysctl", "thp", "ksm", "cpufreq", "workqueue", "writeback", "irq", "rps",
         "cpuset", "tasks")


@dataclass(frozen=True)
class KnobDef:
    id: str
    kind: str
    path: str | None  # "{cpu}" in it: one file per online CPU that has it; None: computed
    fmt: str  # "text" | "select" | "mask" | "list"
    why: str
    settable: bool = True  # may a profile or topology [knobs] set it
    housekeeping: bool = False  # its want may be "housekeeping"
    removed_in: str | None = None  # why it may be absent on a modern kernel


def sysctl_path(name: str) -> str:
    return "proc/sys/" + name.replace(".", "/")


_SYSCTLS = {
    "kernel.timer_migration": "0 keeps a timer on the CPU that armed it, off isolated CPUs",
    "kernel.watchdog": "the lockup detector fires a per-CPU hrtimer every few seconds",
    "kernel.nmi_watchdog": "the NMI watchdog interrupts every CPU periodically",
    "kernel.numa_balancing": "automatic NUMA balancing migrates pages under pinned processes",
    "kernel.hung_task_timeout_secs": "tuned network-latency raises it to 600",
    "kernel.sched_rt_runtime_us": "RT throttling; -1 only for SCHED_FIFO spinners",
    "kernel.sched_min_granularity_ns": "tuned latency-performance scheduler granularity",
    "kernel.sched_migration_cost_ns": "tuned latency-performance migration cost",
    "vm.stat_interval": "vmstat per-CPU updates; 10 s per kernel-per-CPU-kthreads.rst",
    "vm.swappiness": "swapping out appliance pages costs milliseconds",
    "vm.dirty_ratio": "bounded dirty memory keeps writeback bursts short",
    "vm.dirty_background_ratio": "start background writeback early",
    "net.core.busy_poll": "socket busy polling in poll/select (microseconds)",
    "net.core.busy_read": "socket busy polling in read/recv (microseconds)",
    "net.core.rmem_max": "CMP asks for large UDP receive buffers; SO_RCVBUF is capped here (RSX overran "
                         "its receive buffers under maker load)",
    "net.core.wmem_max": "CMP asks for large UDP send buffers; SO_SNDBUF is capped here",
    "net.core.rps_sock_flow_entries": "RFS steers packet processing to the CPU of the reading thread: "
                                      "onto the isolated cores; 0 turns it off",
}
_SCHED_DEBUGFS = "moved to /sys/kernel/debug/sched in Linux 5.13"

CATALOG: dict[str, KnobDef] = {}
for _name, _why in _SYSCTLS.items():
    CATALOG[f"sysctl:{_name}"] = KnobDef(
        f"sysctl:{_name}", "sysctl", sysctl_path(_name), "text", _why,
        removed_in=_SCHED_DEBUGFS if "sched_m" in _name else None)
for _kd in (
    KnobDef("thp:enabled", "thp", "sys/kernel/mm/transparent_hugepage/enabled", "select",
            "THP 'always' lets khugepaged collapse pages under the appliance; the C core asks "
            "for THP itself with madvise"),
    KnobDef("thp:defrag", "thp", "sys/kernel/mm/transparent_hugepage/defrag", "select",
            "defrag 'always' stalls page faults in direct compaction"),
    KnobDef("thp:khugepaged_defrag", "thp", "sys/kernel/mm/transparent_hugepage/khugepaged/defrag", "text",
            "khugepaged compacts memory to collapse pages: CPU time and lock hold times behind the appliance"),
    KnobDef("ksm:run", "ksm", "sys/kernel/mm/ksm/run", "text",
            "KSM scans and merges pages in a kthread (tuned cpu-partitioning disables it)"),
    KnobDef("cpufreq:governor", "cpufreq", "sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor", "text",
            "a dynamic governor ramps frequency after the burst has started"),
    KnobDef("cpufreq:energy_performance_preference", "cpufreq",
            "sys/devices/system/cpu/cpu{cpu}/cpufreq/energy_performance_preference", "text",
            "the hardware P-state controller (intel_pstate, amd-pstate active) trades latency for power "
            "unless told 'performance' (tuned latency-performance: energy_perf_bias=performance)"),
    KnobDef("workqueue:cpumask", "workqueue", "sys/devices/virtual/workqueue/cpumask", "mask",
            "unbound workqueue work runs only on these CPUs", housekeeping=True),
    KnobDef("writeback:cpumask", "writeback", "sys/bus/workqueue/devices/writeback/cpumask", "mask",
            "page writeback workers run only on these CPUs", housekeeping=True),
    KnobDef("irq:default", "irq", "proc/irq/default_smp_affinity", "mask",
            "IRQs registered later start on these CPUs", housekeeping=True),
):
    CATALOG[_kd.id] = _kd
# Plan-computed families: listed so a profile naming them gets a precise refusal.
_COMPUTED = {"irq:N": "irq", "rps:IF:rx-Q": "rps", "hugepages:nodeN:SIZEkB": "hugepages",
             "cpuset:PATH": "cpuset", "tasks:PATH": "tasks"}


def per_cpu_paths(kd: KnobDef, root: Root, cpus) -> list[tuple[str, str]]:
    """``(change id, path)`` for every CPU whose file exists; one ``(id, path)`` for a plain knob."""
    if "{cpu}" not in (kd.path or ""):
        return [(kd.id, kd.path)]
    return [(f"{kd.id}:cpu{c}", kd.path.format(cpu=c)) for c in cpus if root.exists(kd.path.format(cpu=c))]


def knob_def(knob_id: str, *, settable: bool = True) -> KnobDef:
    """The catalog entry for ``knob_id``.

    Raises :class:`UnknownKnobError` for an id not in the catalog (with the
    closest known ids) or, with ``settable``, for a plan-computed knob.
    """
    kd = CATALOG.get(knob_id)
    if kd is not None and (kd.settable or not settable):
        return kd
    family = knob_id.split(":", 1)[0]
    computed = [k for k, kind in _COMPUTED.items() if kind == family]
    if kd is None and computed and knob_id != "irq:default":
        raise UnknownKnobError(f"knob {knob_id!r} is computed by the plan from the topology "
                               f"({computed[0]}); it cannot be set in a profile")
    close = difflib.get_close_matches(knob_id, list(CATALOG), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        f"; known knobs: {', '.join(sorted(CATALOG))}"
    raise UnknownKnobError(f"unknown knob {knob_id!r}{hint}")


def normalize(fmt: str, text: str | None) -> str | None:
    """The comparable value of a file's text in its format (None stays None)."""
    if text is None:
        return None
    text = text.strip()
    if fmt == "select":
        start, end = text.find("["), text.find("]")
        return text[start + 1:end] if start >= 0 < end else text
    if fmt == "mask":
        return ",".join(map(str, parse_mask(text)))
    if fmt == "list":
        return ",".join(map(str, parse_list(text)))
    if fmt == "subtree":  # cgroup.subtree_control: a set of controller names
        return " ".join(sorted(text.split()))
    return " ".join(text.split())


def restore_value(fmt: str, original: str, wanted: str = "") -> str:
    """What to write to bring a file back to ``original`` (the exact bytes it held).

    ``select`` files take the selected word; ``subtree`` files take the inverse
    of what was enabled (``+cpuset`` -> ``-cpuset``) for controllers that were
    not in the original; everything else takes the original text.
    """
    if fmt == "select":
        return normalize("select", original) or ""
    if fmt == "subtree":
        had = set(original.split())
        return " ".join(f"-{w[1:]}" for w in wanted.split() if w.startswith("+") and w[1:] not in had)
    return original.strip()


def read_only(root: Root, rel: str) -> bool:
    """True when nobody may write the file (mode has no w bit: procfs read-only sysctls)."""
    try:
        return not os.stat(root / rel).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    except OSError:
        return False


@dataclass
class Change:
    """One planned runtime write (or directory creation) with everything needed to undo it.

    ``op`` is ``"write"`` (set ``path`` to ``wanted``), ``"mkdir"`` (create the
    directory ``path``; rollback moves its tasks to the parent and removes it) or
    ``"migrate"`` (move every movable task listed in the cgroup file ``wanted``
    into the cgroup file ``path``; rollback moves them back, specs/tuning.md 3.4).
    """

    id: str
    kind: str
    path: str
    wanted: str
    fmt: str = "text"
    op: str = "write"
    why: str = ""
    optional: bool = False  # an irq the kernel may refuse to move (managed): skipped, not fatal

    def current(self, root: Root) -> str | None:
        if self.op == "mkdir":
            return "present" if root.is_dir(self.path) else None
        if self.op == "migrate":
            return f"{len(self.tasks(root))} movable tasks in /{self.wanted}"
        return root.read(self.path)

    def satisfied(self, root: Root) -> bool:
        """Whether the file already holds the wanted value (in its format)."""
        if self.op == "mkdir":
            return root.is_dir(self.path)
        if self.op == "migrate":
            return not self.tasks(root)
        current = root.read(self.path)
        if self.fmt == "subtree":
            have = set((current or "").split())
            return all((w[1:] in have) == w.startswith("+") for w in self.wanted.split())
        return normalize(self.fmt, current) == normalize(self.fmt, self.wanted)

    def tasks(self, root: Root) -> list[int]:
        """migrate: the tasks of ``wanted`` that may run outside the CPUs of the cgroup ``path`` is in."""
        cpus = root.read(self.path.rsplit("/", 1)[0] + "/cpuset.cpus")
        return movable_tasks(root, self.wanted, parse_list(cpus) if cpus else None)

    def to_dict(self) -> dict:
        return asdict(self)


def movable_tasks(root: Root, procs_file: str, within: list[int] | None = None) -> list[int]:
    """Processes listed in a cgroup's ``cgroup.procs`` that a tasks migration moves: every one
    but init (pid 1: the services it starts later must be free to use any CPU, specs/tuning.md
    3.4), kernel threads that are bound to a CPU (kthreadd's children with one allowed CPU), and
    tasks already kept ``within`` the given CPUs (booted with isolcpus: moving them back on
    rollback would widen their affinity)."""
    out = []
    for tok in (root.read(procs_file) or "").split():
        if not tok.isdigit() or tok == "1":
            continue
        status = root.read(f"proc/{tok}/status") or ""
        ppid = _status_field(status, "PPid")
        allowed = _status_field(status, "Cpus_allowed_list")
        if ppid == "2" and allowed is not None and len(parse_list(allowed)) <= 1:
            continue
        if within is not None and allowed is not None and set(parse_list(allowed)) <= set(within):
            continue
        out.append(int(tok))
    return out


def _status_field(status: str, key: str) -> str | None:
    for line in status.splitlines():
        k, _, v = line.partition(":")
        if k == key:
            return v.strip()
    return None
