"""A realistic fake /proc + /sys tree, and a fake kernel that gives its files their kernel semantics.

``build(tmp_path, ...)`` lays out a dual-socket server: 2 NUMA nodes, 8 cores
per node with 2 threads each (32 CPUs, Intel numbering: CPU c and c+16 are
siblings), a 16-queue i40e NIC (ens1f0) on node 1 with one MSI-X vector per
queue plus a misc vector, a 4-queue management NIC on node 0, NVMe queues with
kernel-managed IRQs, cpufreq with the powersave governor, deep C-states, and a
cgroup layout that is v1, v2 or hybrid. ``isolcpus`` puts isolcpus, nohz_full
and rcu_nocbs on the command line and in sysfs.

:class:`FakeKernel` is a :class:`~rsx_appliance.fsutil.Root` whose writes
behave like the kernel's: ``smp_affinity_list`` updates ``smp_affinity`` and
``effective_affinity_list`` and refuses managed IRQs (EIO) and offline CPUs
(EINVAL); masks are reformatted to the kernel's width; ``[selected]`` files
move the brackets; per-node ``nr_hugepages`` grants at most what the node
can give; cgroup ``mkdir`` populates control files and ``rmdir`` refuses a
cgroup with tasks. Faults can be injected: an OSError on a given path, or a
simulated crash (a BaseException that no ``except Exception`` stops) after N
writes.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

from rsx_appliance.fsutil import Root
from rsx_appliance.tune.cpus import format_list, format_mask, parse_list, parse_mask

NODES = 2
CORES_PER_NODE = 8
THREADS = 2
NCPU = NODES * CORES_PER_NODE * THREADS  # 32
NIC = "ens1f0"
NIC_NODE = 1
NIC_QUEUES = 16
NIC_IRQ0 = 100  # queue q -> IRQ 100 + q; misc vector 99
MGMT_IRQ0 = 60  # eno1 queues -> 60..63, node 0
NVME_IRQ0 = 40  # nvme0q0..q7 -> 40..47 (managed)
ISOLATED_CPUS = "9-15,25-31"  # node 1 minus its first core (8, 24)
# processes: pid -> (name, ppid, bound CPU or None); 3 is a per-CPU kernel thread, 10 an unbound one
TASKS = {1: ("systemd", 0, None), 2: ("kthreadd", 0, None), 3: ("kworker/0:0", 2, 0), 10: ("kswapd0", 2, None),
         100: ("sshd", 1, None), 200: ("postgres", 1, None)}


def cpu_node(c: int) -> int:
    return (c % (NCPU // THREADS)) // CORES_PER_NODE


def node_cpus(n: int) -> list[int]:
    return [c for c in range(NCPU) if cpu_node(c) == n]


def siblings(c: int) -> list[int]:
    first = c % (NCPU // THREADS)
    return [first + t * (NCPU // THREADS) for t in range(THREADS)]


class Crash(BaseException):
    """A simulated kill -9 in the middle of a write sequence."""


def _w(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text if text.endswith("\n") or text == "" else text + "\n")


def _link(root: Path, rel: str, target: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, p)


# the tests' topology: three engines and two risk shards on the node of the fake NIC
TOPOLOGY = """version = 1
[nic]
interface = "ens1f0"
[engines]
symbols = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
slab_mib = 256
[risk]
shards = 2
"""


def housekeeping_of(isolated: str) -> list[int]:
    iso = set(parse_list(isolated))
    return [c for c in range(NCPU) if c not in iso]


def build(root: Path, *, isolcpus: bool | str = False, cgroup: str = "hybrid", irqbalance: bool = False,
          nic_node: int = NIC_NODE, thp: str = "always", debugfs: bool = False, virtual: bool = False,
          cmdline_extra: str = "") -> Path:
    """Lay out the fake host under ``root`` and return ``root``. ``cgroup``: "v1", "v2" or "hybrid".

    ``isolcpus``: True boots with ISOLATED_CPUS isolated, a CPU list string with
    those (isolcpus=managed_irq,domain, nohz_full, rcu_nocbs): tasks are then
    allowed only the housekeeping CPUs and kernel-managed IRQs are effective on
    a housekeeping CPU of their mask when it has one, as the kernel does.
    ``debugfs``: /sys/kernel/debug/irq/irqs/N says which IRQs are managed.
    ``virtual``: a KVM guest (DMI, the CPU's hypervisor flag).
    """
    isolated = ISOLATED_CPUS if isolcpus is True else (isolcpus or "")
    isolcpus = bool(isolated)
    root.mkdir(parents=True, exist_ok=True)
    allcpus = f"0-{NCPU - 1}"
    mask = format_mask(range(NCPU), NCPU)
    cmd = "BOOT_IMAGE=/vmlinuz-6.8.0 root=/dev/nvme0n1p2 ro quiet splash"
    if isolcpus:
        cmd += f" isolcpus=managed_irq,domain,{isolated} nohz_full={isolated} rcu_nocbs={isolated}"
    if cmdline_extra:
        cmd += " " + cmdline_extra
    _w(root, "proc/cmdline", cmd)
    _w(root, "proc/sys/kernel/osrelease", "6.8.0-fake")
    _w(root, "proc/sys/kernel/random/boot_id", "6f1c2e0a-1111-4222-8333-944455556666")
    flags = "fpu vme de pse tsc msr pae constant_tsc nonstop_tsc" + (" hypervisor" if virtual else "")
    _w(root, "proc/cpuinfo", "".join(f"processor\t: {c}\nvendor_id\t: GenuineIntel\n"
                                     f"physical id\t: {cpu_node(c)}\nflags\t\t: {flags}\n\n"
                                     for c in range(NCPU)))
    if virtual:
        _w(root, "sys/class/dmi/id/sys_vendor", "QEMU")
        _w(root, "sys/class/dmi/id/product_name", "Standard PC (Q35 + ICH9, 2009)")
    else:
        _w(root, "sys/class/dmi/id/sys_vendor", "Supermicro")
        _w(root, "sys/class/dmi/id/product_name", "SYS-1029U-TRT")
    hk = housekeeping_of(isolated)
    for pid, (name, ppid, bound) in TASKS.items():
        allowed = [bound] if bound is not None else (hk if isolcpus and ppid != 2 or pid == 1 and isolcpus
                                                     else list(range(NCPU)))
        _w(root, f"proc/{pid}/status", f"Name:\t{name}\nPid:\t{pid}\nPPid:\t{ppid}\n"
                                       f"Cpus_allowed_list:\t{format_list(allowed)}\n")
    for v, text in (("meltdown", "Not affected"), ("spectre_v2", "Mitigation: Enhanced / Automatic IBRS"),
                    ("mds", "Not affected"), ("retbleed", "Vulnerable")):
        _w(root, f"sys/devices/system/cpu/vulnerabilities/{v}", text)
    _w(root, "sys/devices/system/cpu/intel_pstate/no_turbo", "0")
    _w(root, "proc/meminfo", "MemTotal:       263856000 kB\nMemFree:        250000000 kB\n")
    _w(root, "proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
    cpu = "sys/devices/system/cpu"
    for f in ("online", "possible", "present"):
        _w(root, f"{cpu}/{f}", allcpus)
    _w(root, f"{cpu}/isolated", isolated)
    _w(root, f"{cpu}/nohz_full", isolated if isolcpus else "(null)")
    _w(root, f"{cpu}/smt/active", "1")
    _w(root, f"{cpu}/smt/control", "on")
    for c in range(NCPU):
        b = f"{cpu}/cpu{c}"
        sib = format_list(siblings(c))
        _w(root, f"{b}/topology/physical_package_id", str(cpu_node(c)))
        _w(root, f"{b}/topology/core_id", str(c % CORES_PER_NODE))
        _w(root, f"{b}/topology/thread_siblings_list", sib)
        _w(root, f"{b}/topology/core_cpus_list", sib)
        for i, (lvl, typ, size, shared) in enumerate((
                (1, "Data", "48K", sib), (1, "Instruction", "32K", sib), (2, "Unified", "2048K", sib),
                (3, "Unified", "30720K", format_list(node_cpus(cpu_node(c)))))):
            for k, v in (("level", lvl), ("type", typ), ("size", size), ("shared_cpu_list", shared)):
                _w(root, f"{b}/cache/index{i}/{k}", str(v))
        _w(root, f"{b}/cpufreq/scaling_governor", "powersave")
        _w(root, f"{b}/cpufreq/scaling_driver", "intel_pstate")
        _w(root, f"{b}/cpufreq/energy_performance_preference", "balance_performance")
        _w(root, f"{b}/cpufreq/scaling_available_governors", "performance powersave")
        for i, (name, lat) in enumerate((("POLL", 0), ("C1", 2), ("C1E", 10), ("C6", 133))):
            _w(root, f"{b}/cpuidle/state{i}/name", name)
            _w(root, f"{b}/cpuidle/state{i}/latency", str(lat))
            _w(root, f"{b}/cpuidle/state{i}/disable", "0")
    for n in range(NODES):
        b = f"sys/devices/system/node/node{n}"
        _w(root, f"{b}/cpulist", format_list(node_cpus(n)))
        _w(root, f"{b}/distance", " ".join("10" if m == n else "21" for m in range(NODES)))
        _w(root, f"{b}/meminfo", f"Node {n} MemTotal:       131928000 kB\nNode {n} MemFree:        "
                                 f"125000000 kB\n")
        for size in (2048, 1048576):
            for f in ("nr_hugepages", "free_hugepages", "surplus_hugepages"):
                _w(root, f"{b}/hugepages/hugepages-{size}kB/{f}", "0")
    for size in (2048, 1048576):
        for f in ("nr_hugepages", "free_hugepages", "resv_hugepages", "surplus_hugepages"):
            _w(root, f"sys/kernel/mm/hugepages/hugepages-{size}kB/{f}", "0")
    thp_words = ["always", "madvise", "never"]
    _w(root, "sys/kernel/mm/transparent_hugepage/enabled",
       " ".join(f"[{w}]" if w == thp else w for w in thp_words))
    _w(root, "sys/kernel/mm/transparent_hugepage/defrag",
       "always defer defer+madvise [madvise] never")
    _w(root, "sys/kernel/mm/ksm/run", "0")
    _w(root, "sys/kernel/mm/transparent_hugepage/khugepaged/defrag", "1")
    _w(root, "sys/devices/virtual/workqueue/cpumask", mask)
    _w(root, "sys/bus/workqueue/devices/writeback/cpumask", mask)
    _w(root, "sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc")
    for name, value in {"kernel/timer_migration": 1, "kernel/watchdog": 1, "kernel/nmi_watchdog": 1,
                        "kernel/numa_balancing": 1, "kernel/hung_task_timeout_secs": 120,
                        "kernel/sched_rt_runtime_us": 950000, "vm/stat_interval": 1,
                        "vm/swappiness": 60, "vm/dirty_ratio": 20, "vm/dirty_background_ratio": 10,
                        "net/core/busy_poll": 0, "net/core/busy_read": 0, "vm/nr_hugepages": 0,
                        "net/core/rmem_max": 212992, "net/core/wmem_max": 212992,
                        "net/core/rps_sock_flow_entries": 0}.items():
        _w(root, f"proc/sys/{name}", str(value))

    # IRQs: name, chip, initial affinity
    irqs: dict[int, tuple[str, str, str]] = {
        0: ("timer", "IO-APIC   2-edge", "0"), 1: ("i8042", "IO-APIC   1-edge", allcpus),
        8: ("rtc0", "IO-APIC   8-edge", allcpus), 9: ("acpi", "IO-APIC   9-fasteoi", allcpus)}
    for q in range(8):
        irqs[NVME_IRQ0 + q] = (f"nvme0q{q}", "PCI-MSIX-0000:01:00.0", format_list([q * 4, q * 4 + 1]))
    for q in range(4):
        irqs[MGMT_IRQ0 + q] = (f"eno1-TxRx-{q}", "PCI-MSIX-0000:02:00.0", allcpus)
    irqs[NIC_IRQ0 - 1] = ("i40e-0000:81:00.0:misc", "PCI-MSIX-0000:81:00.0", allcpus)
    for q in range(NIC_QUEUES):
        irqs[NIC_IRQ0 + q] = (f"i40e-{NIC}-TxRx-{q}", "PCI-MSIX-0000:81:00.0", allcpus)
    header = " " * 4 + "".join(f"CPU{c:<8}" for c in range(NCPU)).rstrip()
    lines = [header]
    for n, (name, chip, aff) in sorted(irqs.items()):
        counts = " ".join(f"{(n * 7 + c) % 1000:10d}" for c in range(NCPU))
        lines.append(f"{n:4d}: {counts}  {chip}  {name}")
        b = f"proc/irq/{n}"
        cpus = parse_list(aff)
        _w(root, f"{b}/smp_affinity_list", aff)
        _w(root, f"{b}/smp_affinity", format_mask(cpus, NCPU))
        managed = NVME_IRQ0 <= n < NVME_IRQ0 + 8
        eff = cpus[0]
        if managed and isolcpus:  # isolcpus=managed_irq: a housekeeping CPU of the mask, if it has one
            eff = next((c for c in cpus if c in hk), cpus[0])
        _w(root, f"{b}/effective_affinity_list", str(eff))
        if debugfs:
            _w(root, f"sys/kernel/debug/irq/irqs/{n}",
               f"handler:  handle_edge_irq\ndstate:   0x3600200\n            IRQD_ACTIVATED\n"
               + ("            IRQD_AFFINITY_MANAGED\n" if managed else "") + "node:     0\n")
        _w(root, f"{b}/node", str(NIC_NODE if n >= NIC_IRQ0 - 1 else 0))
    lines += [" NMI: " + " ".join("%10d" % 0 for _ in range(NCPU)) + "   Non-maskable interrupts",
              " LOC: " + " ".join("%10d" % 1000 for _ in range(NCPU)) + "   Local timer interrupts"]
    _w(root, "proc/interrupts", "\n".join(lines))
    _w(root, "proc/irq/default_smp_affinity", mask)

    # NICs: ens1f0 (node nic_node, 16 queues), eno1 (node 0, 4 queues), lo (no device)
    for ifname, pci, node, nq, first, misc, drv in (
            (NIC, "pci0000:80/0000:81:00.0", nic_node, NIC_QUEUES, NIC_IRQ0, NIC_IRQ0 - 1, "i40e"),
            ("eno1", "pci0000:00/0000:02:00.0", 0, 4, MGMT_IRQ0, None, "igb")):
        dev = f"sys/devices/{pci}"
        _w(root, f"{dev}/numa_node", str(node))
        for v in [*range(first, first + nq), *([misc] if misc else [])]:
            _w(root, f"{dev}/msi_irqs/{v}", "msix")
        (root / "sys/bus/pci/drivers" / drv).mkdir(parents=True, exist_ok=True)
        _link(root, f"{dev}/driver", os.path.relpath(root / "sys/bus/pci/drivers" / drv, root / dev))
        for q in range(nq):
            _w(root, f"{dev}/net/{ifname}/queues/rx-{q}/rps_cpus", format_mask([], NCPU))
            _w(root, f"{dev}/net/{ifname}/queues/rx-{q}/rps_flow_cnt", "0")
            _w(root, f"{dev}/net/{ifname}/queues/tx-{q}/xps_cpus", format_mask([], NCPU))
        _link(root, f"{dev}/net/{ifname}/device", "../../../" + pci.split("/")[-1])
        _link(root, f"sys/class/net/{ifname}", f"../../devices/{pci}/net/{ifname}")
    _w(root, "sys/devices/virtual/net/lo/queues/rx-0/rps_cpus", format_mask([], NCPU))
    _link(root, "sys/class/net/lo", "../../devices/virtual/net/lo")

    # cgroups
    mounts = ["/dev/nvme0n1p2 / ext4 rw,relatime 0 0", "proc /proc proc rw 0 0", "sysfs /sys sysfs rw 0 0"]
    if cgroup in ("v1", "hybrid"):
        mounts.append("tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0")
        for ctrl in ("cpuset", "cpu,cpuacct", "memory", "pids"):
            mounts.append(f"cgroup /sys/fs/cgroup/{ctrl} cgroup rw,nosuid,nodev,noexec,relatime,{ctrl} 0 0")
        cs = "sys/fs/cgroup/cpuset"
        for f, v in (("cpuset.cpus", allcpus), ("cpuset.mems", "0-1"), ("cpuset.cpu_exclusive", "1"),
                     ("cpuset.mem_exclusive", "1"), ("cpuset.sched_load_balance", "1"),
                     ("cpuset.effective_cpus", allcpus),
                     ("tasks", "\n".join(map(str, sorted(TASKS)))),
                     ("cgroup.procs", "\n".join(map(str, sorted(TASKS))))):
            _w(root, f"{cs}/{f}", v)
        if cgroup == "hybrid":
            mounts.append("cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0")
            _w(root, "sys/fs/cgroup/unified/cgroup.controllers", "")
            _w(root, "sys/fs/cgroup/unified/cgroup.subtree_control", "")
    else:
        mounts.append("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0")
        _w(root, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc")
        _w(root, "sys/fs/cgroup/cgroup.subtree_control", "cpu io memory pids")
        _w(root, "sys/fs/cgroup/cpuset.cpus.effective", allcpus)
        _w(root, "sys/fs/cgroup/cgroup.procs", "1\n100")
    _w(root, "proc/mounts", "\n".join(mounts))
    for pid, (comm, _, _) in TASKS.items():
        _w(root, f"proc/{pid}/comm", comm)
    if irqbalance:
        _w(root, "proc/731/comm", "irqbalance")
    return root


class FakeKernel(Root):
    """The fake tree with kernel write semantics, write logging and fault injection."""

    def __init__(self, path, *, managed_irqs=frozenset(range(NVME_IRQ0, NVME_IRQ0 + 8)),
                 readonly=(), hugepage_limit: int | None = None) -> None:
        super().__init__(path)
        self.managed = set(managed_irqs)
        self.readonly = set(readonly)
        self.hugepage_limit = hugepage_limit  # most pages a node grants per size (None: all)
        self.writes: list[tuple[str, str]] = []
        self.fail_on: dict[str, OSError] = {}
        self.crash_after: int | None = None

    @property
    def is_live(self) -> bool:
        return False

    def _fault(self, rel: str) -> None:
        if self.crash_after is not None and len(self.writes) >= self.crash_after:
            raise Crash(f"simulated crash before writing {rel}")
        if rel in self.fail_on:
            raise self.fail_on[rel]

    def _store(self, rel: str, text: str) -> None:
        (self / rel).write_text(text + "\n")

    def write(self, rel: str, data: str) -> None:
        rel = rel.lstrip("/")
        self._fault(rel)
        p = self / rel
        if not p.is_file():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(p))
        if rel in self.readonly:
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        self.writes.append((rel, data))
        value = data.strip()
        m = re.fullmatch(r"proc/irq/(\d+)/smp_affinity_list", rel)
        if m:
            irq = int(m.group(1))
            if irq in self.managed:
                raise OSError(errno.EIO, "Input/output error", str(p))
            cpus = parse_list(value)
            if not cpus or max(cpus) >= NCPU:
                raise OSError(errno.EINVAL, "Invalid argument", str(p))
            self._store(rel, format_list(cpus))
            self._store(f"proc/irq/{irq}/smp_affinity", format_mask(cpus, NCPU))
            self._store(f"proc/irq/{irq}/effective_affinity_list", str(cpus[0]))
            return
        if rel.endswith(("smp_affinity", "cpumask", "rps_cpus", "xps_cpus")):
            cpus = parse_mask(value)
            if rel.endswith(("smp_affinity", "cpumask")) and not cpus:
                raise OSError(errno.EINVAL, "Invalid argument", str(p))
            self._store(rel, format_mask(cpus, NCPU))
            return
        if rel in ("sys/kernel/mm/transparent_hugepage/enabled", "sys/kernel/mm/transparent_hugepage/defrag"):
            words = p.read_text().replace("[", "").replace("]", "").split()
            if value not in words:
                raise OSError(errno.EINVAL, "Invalid argument", str(p))
            self._store(rel, " ".join(f"[{w}]" if w == value else w for w in words))
            return
        m = re.fullmatch(r"sys/devices/system/node/node(\d+)/hugepages/hugepages-(\d+)kB/nr_hugepages", rel)
        if m:
            granted = int(value) if self.hugepage_limit is None else min(int(value), self.hugepage_limit)
            self._store(rel, str(granted))
            self._store(rel.replace("nr_hugepages", "free_hugepages"), str(granted))
            total = sum(int((self / f"sys/devices/system/node/node{n}/hugepages/hugepages-{m.group(2)}kB"
                                    f"/nr_hugepages").read_text()) for n in range(NODES))
            self._store(f"sys/kernel/mm/hugepages/hugepages-{m.group(2)}kB/nr_hugepages", str(total))
            return
        if rel.endswith("cgroup.subtree_control"):
            have = p.read_text().split()
            for tok in value.split():
                name = tok[1:]
                if tok[0] == "+" and name not in have:
                    have.append(name)
                elif tok[0] == "-" and name in have:
                    have.remove(name)
            self._store(rel, " ".join(have))
            return
        if rel.endswith(("/tasks", "/cgroup.procs")):  # the kernel moves the task: out of its old cgroup
            pid = int(value)
            if pid in TASKS and TASKS[pid][2] is not None:
                raise OSError(errno.EINVAL, "Invalid argument", str(p))  # a per-CPU kernel thread
            names = ("tasks", "cgroup.procs")
            for f in (self / "sys/fs/cgroup").rglob("*"):
                if f.name in names and f.parent != p.parent:
                    pids = f.read_text().split()
                    if value in pids:
                        pids.remove(value)
                        f.write_text("".join(x + "\n" for x in pids))
            for name in names:  # single-threaded fakes: the thread list and the process list agree
                q = p.parent / name
                if q.exists():
                    pids = sorted({int(x) for x in q.read_text().split()} | {pid})
                    q.write_text("\n".join(map(str, pids)) + "\n")
            status = self / f"proc/{pid}/status"
            cpus_file = p.parent / "cpuset.cpus"
            if status.exists() and cpus_file.exists():  # the task now runs where its cpuset allows
                cpus = cpus_file.read_text().strip() or format_list(range(NCPU))
                status.write_text(re.sub(r"Cpus_allowed_list:\t.*", f"Cpus_allowed_list:\t{cpus}",
                                         status.read_text()))
            return
        self._store(rel, value)

    def mkdir(self, rel: str) -> None:
        rel = rel.lstrip("/")
        self._fault(rel)
        self.writes.append((rel, "<mkdir>"))
        p = self / rel
        p.mkdir()
        if "cgroup" in rel:
            v2 = (p.parent / "cgroup.controllers").exists()
            files = ({"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.partition": "member",
                      "cgroup.procs": "", "cgroup.subtree_control": "",
                      "cgroup.controllers": (p.parent / "cgroup.subtree_control").read_text().strip()}
                     if v2 else
                     {"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpu_exclusive": "0",
                      "cpuset.sched_load_balance": "1", "tasks": "", "cgroup.procs": ""})
            for f, v in files.items():
                (p / f).write_text(v + "\n" if v else "")

    def rmdir(self, rel: str) -> None:
        rel = rel.lstrip("/")
        self._fault(rel)
        p = self / rel
        if not p.is_dir():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(p))
        if any(d.is_dir() for d in p.iterdir()):
            raise OSError(errno.EBUSY, "Device or resource busy", str(p))
        for f in ("tasks", "cgroup.procs"):
            if (p / f).exists() and (p / f).read_text().strip():
                raise OSError(errno.EBUSY, "Device or resource busy", str(p))
        self.writes.append((rel, "<rmdir>"))
        shutil.rmtree(p)


def snapshot(root: Path, skip: tuple[str, ...] = ("run",)) -> dict[str, bytes | str]:
    """Every file's bytes, every directory and symlink under ``root`` (minus ``skip`` top dirs)."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir.split(os.sep)[0] in skip:
            dirnames[:] = []
            continue
        out[rel_dir + "/"] = "<dir>"
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            out[rel] = f"<link {os.readlink(full)}>" if os.path.islink(full) else Path(full).read_bytes()
    return out


def diff(before: dict, after: dict) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in keys if before.get(k) != after.get(k)]
