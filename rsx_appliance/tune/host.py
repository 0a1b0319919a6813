"""The host model: what /proc and /sys say about CPUs, memory, IRQs, NICs and cgroups.

:func:`discover` reads everything through one :class:`~rsx_appliance.fsutil.Root`
(specs/tuning.md section 2), so the same code runs on this machine and on the
tests' fake two-node tree. Reading never changes anything and never needs
privileges: a file that cannot be read leaves its field empty (``None``), and
``check`` reports that knob as unsupported with the reason.

Netlink (pyroute2: queue counts, ethtool coalescing and GRO) is consulted only
when the root is the live ``/``; sysfs stays the authority for everything a
fake tree can show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import sysinfo
from ..fsutil import Root
from .cpus import parse_list, parse_mask
from .errors import TuneEnvironmentError

__all__ = ["IdleState", "Cpu", "Node", "Irq", "Nic", "Cgroups", "Task", "Host", "discover",
           "parse_cmdline", "host_dict"]


@dataclass(frozen=True)
class IdleState:
    name: str
    latency_us: int
    disabled: bool


@dataclass(frozen=True)
class Cpu:
    id: int
    node: int
    package: int
    core_id: int
    siblings: tuple[int, ...]  # the physical core: every hardware thread of it, this one included
    governor: str | None  # None: no cpufreq directory (fixed by firmware or hypervisor)
    idle: tuple[IdleState, ...]


@dataclass(frozen=True)
class Node:
    id: int
    cpus: tuple[int, ...]
    distance: tuple[int, ...]
    mem_total_kb: int
    mem_free_kb: int
    hugepages: dict[int, tuple[int, int]]  # size_kb -> (nr_hugepages, free_hugepages)


@dataclass(frozen=True)
class Irq:
    number: int
    chip: str
    name: str  # the action names (device-queue), as /proc/interrupts prints them
    counts: tuple[int, ...]  # per online CPU column
    affinity: tuple[int, ...] | None  # smp_affinity_list; None when unreadable
    effective: tuple[int, ...] | None
    node: int | None
    managed: bool | None = None  # kernel-managed affinity (debugfs IRQD_AFFINITY_MANAGED); None: unknown


@dataclass(frozen=True)
class Nic:
    name: str
    driver: str | None
    device: str | None  # the device directory, relative to the root
    node: int | None  # None: the kernel does not know (numa_node = -1)
    rx_queues: tuple[int, ...]
    tx_queues: tuple[int, ...]
    rps: dict[int, str]  # rx queue -> rps_cpus mask text
    queue_irqs: dict[int, int]  # irq -> queue number
    other_irqs: tuple[int, ...]  # the device's non-queue vectors (config, async, misc)
    coalesce: dict | None = None  # ethtool -c (live root only)
    gro: bool | None = None  # ethtool -k generic-receive-offload (live root only)
    xps: dict[int, str] = field(default_factory=dict)  # tx queue -> xps_cpus mask text
    rfs: dict[int, int] = field(default_factory=dict)  # rx queue -> rps_flow_cnt
    rings: dict | None = None  # ethtool -g: {rx, rx_max, tx, tx_max} (live root only)


@dataclass(frozen=True)
class Cgroups:
    v1: dict[str, str]  # controller -> mount point (relative to the root)
    v2: str | None  # the cgroup2 mount point
    v2_controllers: tuple[str, ...]
    v2_subtree: tuple[str, ...]  # the v2 root's cgroup.subtree_control

    @property
    def cpuset(self) -> str | None:
        """Which hierarchy offers cpusets: ``"v2"``, ``"v1"`` or ``None``."""
        if self.v2 and "cpuset" in self.v2_controllers:
            return "v2"
        if "cpuset" in self.v1:
            return "v1"
        return None

    @property
    def cpuset_mount(self) -> str | None:
        return {"v2": self.v2, "v1": self.v1.get("cpuset")}.get(self.cpuset or "")


@dataclass(frozen=True)
class Task:
    """A process as /proc/PID/status shows it: enough to say who may run on the isolated CPUs."""

    pid: int
    comm: str
    kthread: bool  # kthreadd or one of its children
    allowed: tuple[int, ...]  # Cpus_allowed_list


@dataclass
class Host:
    root: Root
    kernel: str
    cmdline: str
    cmdargs: list[tuple[str, str | None]]
    boot_id: str | None
    vendor: str
    online: list[int]
    nr_cpu_ids: int
    cpus: dict[int, Cpu]
    nodes: dict[int, Node]
    caches: dict[int, list[tuple[int, ...]]]  # level -> distinct shared CPU groups
    smt_active: bool | None
    smt_control: str | None
    isolated: list[int]
    nohz_full: list[int] | None
    irqs: dict[int, Irq]
    default_affinity: list[int] | None
    nics: dict[str, Nic]
    cgroups: Cgroups
    thp_enabled: str | None
    thp_defrag: str | None
    clocksource: str | None
    irqbalance_pid: int | None
    swaps: list[str]
    sysctls: dict[str, str | None] = field(default_factory=dict)  # the catalog's sysctls (None: absent)
    virtual: str | None = None  # the hypervisor ("kvm", "xen", "microsoft", ...) or None on bare metal
    virtual_evidence: str = ""
    tasks: list[Task] = field(default_factory=list)
    cpufreq_driver: str | None = None
    boost: tuple[str, str] | None = None  # (file, "on"/"off") from intel_pstate/no_turbo or cpufreq/boost
    auditd_pid: int | None = None
    mitigations: dict[str, str] = field(default_factory=dict)  # vulnerability -> kernel's status line

    def cmdarg(self, key: str) -> str | None:
        """The value of the last ``key=value`` on the command line; ``""`` for a bare flag; None if absent."""
        found = None
        for k, v in self.cmdargs:
            if k == key:
                found = "" if v is None else v
        return found

    def cores(self, node: int | None = None) -> list[tuple[int, ...]]:
        """Physical cores (sibling tuples), ordered by their first CPU; optionally of one node."""
        seen: dict[tuple[int, ...], None] = {}
        for cpu in sorted(self.cpus.values(), key=lambda c: c.id):
            if node is None or cpu.node == node:
                seen.setdefault(cpu.siblings, None)
        return sorted(seen, key=lambda s: s[0])

    def node_of(self, cpu: int) -> int:
        return self.cpus[cpu].node

    def node_distance(self, a: int, b: int) -> int:
        d = self.nodes[a].distance
        return d[b] if b < len(d) else (10 if a == b else 20)


def parse_cmdline(text: str) -> list[tuple[str, str | None]]:
    """Kernel arguments before a ``--`` (the rest belongs to init): ``[(key, value or None)]``."""
    args: list[tuple[str, str | None]] = []
    for token in text.split():
        if token == "--":
            break
        key, sep, value = token.partition("=")
        args.append((key, value if sep else None))
    return args


def _selected(text: str | None) -> str | None:
    if text is None:
        return None
    m = re.search(r"\[([^\]]+)\]", text)
    return m.group(1) if m else text.strip()


def _nodes(root: Root, online: list[int]) -> dict[int, Node]:
    nodes: dict[int, Node] = {}
    for name in root.listdir("sys/devices/system/node"):
        m = re.fullmatch(r"node(\d+)", name)
        if not m:
            continue
        n = int(m.group(1))
        base = f"sys/devices/system/node/{name}"
        meminfo = root.read(f"{base}/meminfo") or ""
        mem = {k: int(v) for k, v in re.findall(r"Node \d+ (\w+):\s+(\d+) kB", meminfo)}
        pools = {}
        for pool in root.listdir(f"{base}/hugepages"):
            pm = re.fullmatch(r"hugepages-(\d+)kB", pool)
            if pm:
                pools[int(pm.group(1))] = (root.read_int(f"{base}/hugepages/{pool}/nr_hugepages"),
                                           root.read_int(f"{base}/hugepages/{pool}/free_hugepages"))
        dist = tuple(int(x) for x in (root.read(f"{base}/distance") or "").split())
        nodes[n] = Node(n, tuple(parse_list(root.read(f"{base}/cpulist"))), dist,
                        mem.get("MemTotal", 0), mem.get("MemFree", 0), pools)
    if not nodes:  # no NUMA support compiled in: one node holds everything
        meminfo = root.read("proc/meminfo") or ""
        mem = {k: int(v) for k, v in re.findall(r"(\w+):\s+(\d+) kB", meminfo)}
        pools = {p.size_kb: (p.total, p.free) for p in sysinfo.hugepage_pools(root.path)}
        nodes[0] = Node(0, tuple(online), (10,), mem.get("MemTotal", 0), mem.get("MemFree", 0), pools)
    return nodes


def _cpus(root: Root, online: list[int], nodes: dict[int, Node]) -> dict[int, Cpu]:
    node_of = {c: n.id for n in nodes.values() for c in n.cpus}
    cpus = {}
    for c in online:
        base = f"sys/devices/system/cpu/cpu{c}"
        siblings = tuple(parse_list(root.read(f"{base}/topology/thread_siblings_list"))) or (c,)
        idle = []
        for st in root.listdir(f"{base}/cpuidle"):
            if st.startswith("state"):
                idle.append(IdleState(root.read(f"{base}/cpuidle/{st}/name") or st,
                                      root.read_int(f"{base}/cpuidle/{st}/latency"),
                                      root.read(f"{base}/cpuidle/{st}/disable") == "1"))
        cpus[c] = Cpu(c, node_of.get(c, 0), root.read_int(f"{base}/topology/physical_package_id"),
                      root.read_int(f"{base}/topology/core_id"), siblings,
                      root.read(f"{base}/cpufreq/scaling_governor"), tuple(idle))
    return cpus


def _caches(root: Root, online: list[int]) -> dict[int, list[tuple[int, ...]]]:
    groups: dict[int, set[tuple[int, ...]]] = {}
    for c in online:
        base = f"sys/devices/system/cpu/cpu{c}/cache"
        for idx in root.listdir(base):
            if not idx.startswith("index") or root.read(f"{base}/{idx}/type") == "Instruction":
                continue
            level = root.read_int(f"{base}/{idx}/level")
            shared = tuple(parse_list(root.read(f"{base}/{idx}/shared_cpu_list")))
            if level and shared:
                groups.setdefault(level, set()).add(shared)
    return {lvl: sorted(g) for lvl, g in sorted(groups.items())}


def _irqs(root: Root) -> dict[int, Irq]:
    text = root.read("proc/interrupts") or ""
    lines = text.splitlines()
    if not lines:
        return {}
    ncol = len(lines[0].split())
    irqs = {}
    for line in lines[1:]:
        head, _, rest = line.partition(":")
        if not head.strip().isdigit():
            continue
        n = int(head)
        tokens = rest.split()
        counts = tuple(int(t) for t in tokens[:ncol] if t.isdigit())
        tail = tokens[len(counts):]
        chip = tail[0] if tail else ""
        name = " ".join(tail[2:]) if len(tail) >= 3 else (tail[1] if len(tail) == 2 else "")
        aff = root.read(f"proc/irq/{n}/smp_affinity_list")
        eff = root.read(f"proc/irq/{n}/effective_affinity_list")
        node = root.read(f"proc/irq/{n}/node")
        debug = root.read(f"sys/kernel/debug/irq/irqs/{n}")
        irqs[n] = Irq(n, chip, name, counts,
                      tuple(parse_list(aff)) if aff is not None else None,
                      tuple(parse_list(eff)) if eff is not None else None,
                      int(node) if node and node.lstrip("-").isdigit() and int(node) >= 0 else None,
                      None if debug is None else "IRQD_AFFINITY_MANAGED" in debug)
    return irqs


_NOT_QUEUE = re.compile(r"config|async|misc|mgmt|ctrl|control|event|admin|fw|link|lsc|other", re.I)


def _queue_of(name: str) -> int | None:
    """The queue number in an IRQ's action name, or None for a non-queue vector."""
    base = name.split("@")[0]
    if _NOT_QUEUE.search(base):
        return None
    m = re.search(r"[-_.a-zA-Z](\d+)$", base)
    return int(m.group(1)) if m else None


def _nics(root: Root, irqs: dict[int, Irq]) -> dict[str, Nic]:
    nics = {}
    for name in root.listdir("sys/class/net"):
        base = f"sys/class/net/{name}"
        device = root.realpath(f"{base}/device")
        if device is None:  # lo, bridges, veth, ifb: no hardware queues or IRQs
            continue
        driver = root.realpath(f"{device}/driver")
        node = None
        vectors: set[int] = set()
        probe = device
        for _ in range(3):  # virtio: the net device hangs below its PCI function
            if node is None:
                raw = root.read(f"{probe}/numa_node")
                if raw is not None and raw.lstrip("-").isdigit() and int(raw) >= 0:
                    node = int(raw)
            vectors |= {int(v) for v in root.listdir(f"{probe}/msi_irqs") if v.isdigit()}
            probe = probe.rsplit("/", 1)[0] or "/"
        queues = root.listdir(f"{base}/queues")
        rx = sorted(int(q[3:]) for q in queues if q.startswith("rx-") and q[3:].isdigit())
        tx = sorted(int(q[3:]) for q in queues if q.startswith("tx-") and q[3:].isdigit())
        rps = {q: root.read(f"{base}/queues/rx-{q}/rps_cpus") or "" for q in rx}
        xps = {q: v for q in tx if (v := root.read(f"{base}/queues/tx-{q}/xps_cpus")) is not None}
        rfs = {q: root.read_int(f"{base}/queues/rx-{q}/rps_flow_cnt") for q in rx
               if root.exists(f"{base}/queues/rx-{q}/rps_flow_cnt")}
        if not vectors:  # no msi_irqs directory: match the interface name in /proc/interrupts
            vectors = {n for n, irq in irqs.items() if re.search(rf"\b{re.escape(name)}\b", irq.name)}
        queue_irqs, other = {}, []
        for v in sorted(vectors):
            if v not in irqs:
                continue
            q = _queue_of(irqs[v].name)
            if q is None:
                other.append(v)
            else:
                queue_irqs[v] = q
        nics[name] = Nic(name, driver.rsplit("/", 1)[-1] if driver else None, device, node,
                         tuple(rx), tuple(tx), rps, queue_irqs, tuple(other), xps=xps, rfs=rfs)
    return nics


def _ethtool(nics: dict[str, Nic]) -> dict[str, Nic]:
    """Add ethtool coalescing and GRO (read-only) from the live kernel, where the driver answers."""
    try:
        from pyroute2.ethtool import Ethtool
    except ImportError:  # pragma: no cover - pyroute2 is a dependency
        return nics
    out = dict(nics)
    try:
        eth = Ethtool()
    except Exception:  # netlink refused (namespaced sandbox): sysfs facts stay
        return nics
    try:
        for name, nic in nics.items():
            coalesce = gro = rings = None
            try:
                r = eth.get_rings(name)  # a named tuple (pyroute2 >= 0.7)
                rings = {k: getattr(r, k) for k in ("rx", "rx_max", "tx", "tx_max")}
            except Exception:  # EOPNOTSUPP: the driver reports no rings
                pass
            try:
                c = eth.get_coalesce(name)
                coalesce = {k: c[k] for k in ("rx_coalesce_usecs", "rx_max_coalesced_frames",
                                              "use_adaptive_rx_coalesce") if k in c}
            except Exception:  # EOPNOTSUPP: the driver has no coalescing
                pass
            try:
                gro = bool(eth.get_features(name).offload_flags.get("generic-receive-offload"))
            except Exception:
                pass
            out[name] = Nic(**{**nic.__dict__, "coalesce": coalesce, "gro": gro, "rings": rings})
    finally:
        eth.close()
    return out


def _cgroups(root: Root) -> Cgroups:
    v1: dict[str, str] = {}
    v2 = None
    for line in (root.read("proc/mounts") or "").splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        _, mnt, fstype, opts = parts[:4]
        if fstype == "cgroup2":
            v2 = mnt
        elif fstype == "cgroup":
            for opt in opts.split(","):
                if opt in ("cpuset", "cpu", "cpuacct", "memory", "hugetlb", "pids", "freezer",
                           "devices", "blkio", "net_cls", "perf_event"):
                    v1[opt] = mnt
    ctrl = tuple((root.read(f"{v2}/cgroup.controllers") or "").split()) if v2 else ()
    sub = tuple((root.read(f"{v2}/cgroup.subtree_control") or "").split()) if v2 else ()
    return Cgroups(v1, v2, ctrl, sub)


def _daemon(root: Root, comm: str) -> int | None:
    for pid in root.listdir("proc"):
        if pid.isdigit() and root.read(f"proc/{pid}/comm") == comm:
            return int(pid)
    return None


def _tasks(root: Root) -> list[Task]:
    out = []
    for pid in root.listdir("proc"):
        if not pid.isdigit():
            continue
        status = root.read(f"proc/{pid}/status")
        if status is None:  # exited meanwhile, or a fake tree without it
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        allowed = fields.get("Cpus_allowed_list", "").strip()
        try:
            cpus = tuple(parse_list(allowed))
        except ValueError:
            continue
        ppid = fields.get("PPid", "").strip()
        out.append(Task(int(pid), fields.get("Name", "").strip(), pid == "2" or ppid == "2", cpus))
    return out


_HYPERVISORS = {"kvm": "kvm", "qemu": "kvm", "vmware": "vmware", "virtualbox": "virtualbox",
                "xen": "xen", "microsoft corporation": "microsoft", "amazon ec2": "kvm (ec2)",
                "google": "kvm (gce)", "firecracker": "kvm (firecracker)", "cloud hypervisor": "kvm",
                "bochs": "kvm", "openstack": "kvm", "parallels": "parallels"}


def _virtual(root: Root, cpuinfo: str) -> tuple[str | None, str]:
    """The hypervisor, if any, and what said so: DMI vendor/product, /sys/hypervisor, the CPU flag."""
    for f in ("sys/class/dmi/id/sys_vendor", "sys/class/dmi/id/product_name", "sys/class/dmi/id/board_vendor"):
        v = (root.read(f) or "").lower()
        for key, name in _HYPERVISORS.items():
            if key in v:
                return name, f"/{f}: {root.read(f)}"
    hv = root.read("sys/hypervisor/type")
    if hv:
        return hv, f"/sys/hypervisor/type: {hv}"
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo, re.M)
    if flags and "hypervisor" in flags.group(1).split():
        return "unknown hypervisor", "/proc/cpuinfo flags: hypervisor"
    return None, ""


def _boost(root: Root) -> tuple[str, str] | None:
    no_turbo = root.read("sys/devices/system/cpu/intel_pstate/no_turbo")
    if no_turbo is not None:
        return "/sys/devices/system/cpu/intel_pstate/no_turbo", "off" if no_turbo == "1" else "on"
    boost = root.read("sys/devices/system/cpu/cpufreq/boost")
    if boost is not None:
        return "/sys/devices/system/cpu/cpufreq/boost", "on" if boost == "1" else "off"
    return None


def discover(root: str | Root = "/", *, netlink: bool | None = None) -> Host:
    """Read the host under ``root``. ``netlink`` (default: only for the live root) adds ethtool facts.

    Raises :class:`TuneEnvironmentError` when the root has no readable /proc and /sys
    (a wrong ``--root``): nothing useful can be said then.
    """
    root = root if isinstance(root, Root) else Root(root)
    online_text = root.read("sys/devices/system/cpu/online")
    if online_text is None or root.read("proc/cmdline") is None:
        raise TuneEnvironmentError(f"{root.path}: no readable proc/cmdline and "
                                   "sys/devices/system/cpu/online; is this a system root?")
    online = parse_list(online_text)
    possible = parse_list(root.read("sys/devices/system/cpu/possible")) or online
    nodes = _nodes(root, online)
    irqs = _irqs(root)
    nics = _nics(root, irqs)
    if netlink if netlink is not None else root.is_live:
        nics = _ethtool(nics)
    cpuinfo = root.read("proc/cpuinfo") or ""
    vm = re.search(r"vendor_id\s*:\s*(\S+)", cpuinfo)
    smt = root.read("sys/devices/system/cpu/smt/active")
    nohz = root.read("sys/devices/system/cpu/nohz_full")
    default = root.read("proc/irq/default_smp_affinity")
    swaps = [ln.split()[0] for ln in (root.read("proc/swaps") or "").splitlines()[1:] if ln.split()]
    cmdline = root.read("proc/cmdline") or ""
    virtual, evidence = _virtual(root, cpuinfo)
    return Host(
        root=root,
        kernel=root.read("proc/sys/kernel/osrelease") or "",
        cmdline=cmdline,
        cmdargs=parse_cmdline(cmdline),
        boot_id=root.read("proc/sys/kernel/random/boot_id"),
        vendor=vm.group(1) if vm else "unknown",
        online=online,
        nr_cpu_ids=max(possible) + 1,
        cpus=_cpus(root, online, nodes),
        nodes=nodes,
        caches=_caches(root, online),
        smt_active=None if smt is None else smt == "1",
        smt_control=root.read("sys/devices/system/cpu/smt/control"),
        isolated=parse_list(root.read("sys/devices/system/cpu/isolated")),
        nohz_full=None if nohz is None else parse_list(nohz.replace("(null)", "")),
        irqs=irqs,
        default_affinity=parse_mask(default) if default is not None else None,
        nics=nics,
        cgroups=_cgroups(root),
        thp_enabled=_selected(root.read("sys/kernel/mm/transparent_hugepage/enabled")),
        thp_defrag=_selected(root.read("sys/kernel/mm/transparent_hugepage/defrag")),
        clocksource=root.read("sys/devices/system/clocksource/clocksource0/current_clocksource"),
        irqbalance_pid=_daemon(root, "irqbalance"),
        swaps=swaps,
        sysctls=_sysctls(root),
        virtual=virtual,
        virtual_evidence=evidence,
        tasks=_tasks(root),
        cpufreq_driver=root.read(f"sys/devices/system/cpu/cpu{online[0]}/cpufreq/scaling_driver") if online else None,
        boost=_boost(root),
        auditd_pid=_daemon(root, "auditd"),
        mitigations={v: root.read(f"sys/devices/system/cpu/vulnerabilities/{v}") or ""
                     for v in root.listdir("sys/devices/system/cpu/vulnerabilities")},
    )


def _sysctls(root: Root) -> dict[str, str | None]:
    from .knobs import CATALOG

    return {kd.id.split(":", 1)[1]: root.read(kd.path) for kd in CATALOG.values() if kd.kind == "sysctl"}


def host_dict(host: Host) -> dict:
    """The host model as JSON-ready data (`rsx tune host --json`)."""
    from .cpus import format_list

    return {
        "root": str(host.root.path), "kernel": host.kernel, "vendor": host.vendor, "cmdline": host.cmdline,
        "boot_id": host.boot_id, "cpus": format_list(host.online), "nr_cpu_ids": host.nr_cpu_ids,
        "smt": {"active": host.smt_active, "control": host.smt_control},
        "cores": [list(c) for c in host.cores()],
        "nodes": [{"id": n.id, "cpus": format_list(n.cpus), "distance": list(n.distance),
                   "mem_total_kb": n.mem_total_kb, "mem_free_kb": n.mem_free_kb,
                   "hugepages": {str(k): {"total": v[0], "free": v[1]} for k, v in sorted(n.hugepages.items())}}
                  for n in host.nodes.values()],
        "caches": {str(lvl): [format_list(g) for g in groups] for lvl, groups in host.caches.items()},
        "isolated": format_list(host.isolated),
        "nohz_full": None if host.nohz_full is None else format_list(host.nohz_full),
        "governors": sorted({c.governor for c in host.cpus.values() if c.governor}),
        "idle_states": sorted({f"{s.name} ({s.latency_us} us)" for c in host.cpus.values() for s in c.idle}),
        "irqs": [{"irq": i.number, "name": i.name, "affinity": None if i.affinity is None else
                  format_list(i.affinity), "effective": None if i.effective is None else format_list(i.effective),
                  "count": sum(i.counts), "managed": i.managed} for i in host.irqs.values()],
        "default_irq_affinity": None if host.default_affinity is None else format_list(host.default_affinity),
        "nics": [{"name": n.name, "driver": n.driver, "node": n.node, "rx_queues": len(n.rx_queues),
                  "tx_queues": len(n.tx_queues), "queue_irqs": {str(k): v for k, v in n.queue_irqs.items()},
                  "other_irqs": list(n.other_irqs), "coalesce": n.coalesce, "gro": n.gro}
                 for n in host.nics.values()],
        "cgroups": {"v1": host.cgroups.v1, "v2": host.cgroups.v2, "v2_controllers": list(host.cgroups.v2_controllers),
                    "cpuset": host.cgroups.cpuset},
        "thp": {"enabled": host.thp_enabled, "defrag": host.thp_defrag},
        "clocksource": host.clocksource, "irqbalance_pid": host.irqbalance_pid, "swaps": host.swaps,
        "sysctls": host.sysctls, "virtual": host.virtual, "virtual_evidence": host.virtual_evidence,
        "cpufreq_driver": host.cpufreq_driver, "boost": None if host.boost is None else host.boost[1],
        "auditd_pid": host.auditd_pid, "mitigations": host.mitigations,
    }
