"""From a topology, a profile and the host: who runs where, and every change that makes it so.

The planner (specs/tuning.md section 6) is pure: it reads the :class:`Host`
model and returns a :class:`Plan`; nothing is written. The plan carries the
runtime :class:`~rsx_appliance.tune.knobs.Change` list that ``apply`` executes,
the kernel command line to add (boot-time, never applied), and the placement
of every process that the placement API enforces when the process starts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .cpus import format_list, format_mask, parse_list
from .errors import PlanError, PlanFileError, TopologyError
from .host import Host
from .knobs import CATALOG, KINDS, Change, per_cpu_paths, read_only, restore_value  # noqa: F401
from .profile import KnobWant, Profile
from .topology import Topology

__all__ = ["ProcessPlan", "IrqPlan", "HugepagePlan", "Plan", "make_plan", "plan_from_dict",
           "resolve_knobs", "PLAN_VERSION"]

PLAN_VERSION = 1


@dataclass(frozen=True)
class ProcessPlan:
    name: str
    role: str
    cpus: list[int]
    node: int
    isolated: bool
    mempolicy: str  # "bind" | "preferred"
    cpuset: str | None  # cgroup directory (relative to the root) the process joins, if any
    cgroup_procs: str | None  # the file a pid is written to: tasks (v1) or cgroup.procs (v2)
    hugepages_mib: int
    reserved: list[int] = field(default_factory=list)  # idle isolated siblings kept for it
    helpers: list[int] = field(default_factory=list)  # CPUs of its helper threads (placement.place_thread)


@dataclass(frozen=True)
class IrqPlan:
    irq: int
    name: str
    current: list[int] | None
    wanted: list[int]
    nic_queue: int | None


@dataclass(frozen=True)
class HugepagePlan:
    node: int
    size_kb: int
    current: int
    needed: int
    wanted: int


@dataclass
class Plan:
    profile: str
    topology: str | None
    host: dict
    housekeeping: list[int]
    isolated: list[int]
    processes: list[ProcessPlan]
    irqs: list[IrqPlan]
    hugepages: list[HugepagePlan]
    cmdline: dict
    runtime: list[Change]
    notes: list[str]
    version: int = PLAN_VERSION

    def process(self, name: str) -> ProcessPlan | None:
        return next((p for p in self.processes if p.name == name), None)

    def to_dict(self) -> dict:
        return {
            "version": self.version, "profile": self.profile, "topology": self.topology,
            "host": self.host, "housekeeping": self.housekeeping, "isolated": self.isolated,
            "processes": [asdict(p) for p in self.processes],
            "irqs": [asdict(i) for i in self.irqs],
            "hugepages": [asdict(h) for h in self.hugepages],
            "cmdline": self.cmdline,
            "runtime": [c.to_dict() for c in self.runtime],
            "notes": self.notes,
        }


def host_summary(host: Host) -> dict:
    return {"cpus": format_list(host.online), "nr_cpu_ids": host.nr_cpu_ids,
            "nodes": {str(n.id): format_list(n.cpus) for n in host.nodes.values()},
            "kernel": host.kernel}


def plan_from_dict(data: dict, host: Host) -> Plan:
    """Rebuild a saved plan (``plan --json``) for ``apply --plan``; it must describe this host.

    Raises :class:`PlanFileError` for a malformed plan, one made for another host,
    or one whose changes point outside /proc and /sys.
    """
    try:
        if data.get("version") != PLAN_VERSION:
            raise PlanFileError(f"plan version {data.get('version')!r} is not {PLAN_VERSION}")
        if data["host"].get("cpus") != format_list(host.online) or \
                data["host"].get("nodes") != host_summary(host)["nodes"]:
            raise PlanFileError(f"plan was made for another host (cpus {data['host'].get('cpus')}, "
                                f"nodes {data['host'].get('nodes')}); this host has cpus "
                                f"{format_list(host.online)}, nodes {host_summary(host)['nodes']}")
        runtime = []
        for c in data["runtime"]:
            ch = Change(**c)
            if ".." in ch.path.split("/") or not ch.path.startswith(("proc/sys/", "proc/irq/", "sys/")):
                raise PlanFileError(f"plan change {ch.id!r} points outside /proc/sys, /proc/irq "
                                    f"and /sys: {ch.path!r}")
            if ch.kind not in KINDS or ch.op not in ("write", "mkdir", "migrate"):
                raise PlanFileError(f"plan change {ch.id!r} has unknown kind {ch.kind!r} or op {ch.op!r}")
            if ch.op == "migrate" and (".." in ch.wanted.split("/") or not ch.wanted.startswith("sys/fs/cgroup/")):
                raise PlanFileError(f"plan change {ch.id!r} migrates from outside sys/fs/cgroup: {ch.wanted!r}")
            runtime.append(ch)
        return Plan(
            profile=data["profile"], topology=data.get("topology"), host=data["host"],
            housekeeping=list(data["housekeeping"]), isolated=list(data["isolated"]),
            processes=[ProcessPlan(**p) for p in data["processes"]],
            irqs=[IrqPlan(**i) for i in data["irqs"]],
            hugepages=[HugepagePlan(**h) for h in data["hugepages"]],
            cmdline=data["cmdline"], runtime=runtime, notes=list(data.get("notes", [])))
    except PlanFileError:
        raise
    except (KeyError, TypeError, AttributeError) as exc:
        raise PlanFileError(f"not a plan made by `rsx tune plan --json`: {exc!r}") from None


def resolve_knobs(profile: Profile, topo: Topology | None) -> dict[str, KnobWant]:
    """The profile's knobs with the topology's ``[knobs]`` overrides (keeping the profile's severity)."""
    knobs = dict(profile.knobs)
    for kid, kw in (topo.knobs if topo else {}).items():
        sev = knobs[kid].severity if kid in knobs else kw.severity
        knobs[kid] = KnobWant(kw.want, sev)
    return knobs


# -- CPU allocation ---------------------------------------------------------------------------

def _housekeeping_cores(host: Host, profile: Profile) -> dict[int, list[tuple[int, ...]]]:
    hk = {}
    for n in sorted(host.nodes):
        cores = host.cores(n)
        if cores:
            hk[n] = cores[:profile.housekeeping_cores]
    return hk


def _slots(host: Host, node: int, taken: set[int], hk: set[int], smt: str) -> list[tuple[int, ...]]:
    """Free isolation slots on a node: whole cores (reserve) or single threads, first threads first (share).

    Cores the kernel already isolates (isolcpus) come first, so a host booted
    with isolation needs no new command line when the topology fits in it.
    """
    booted = set(host.isolated)
    order = sorted(host.cores(node), key=lambda c: (not set(c) <= booted, c[0]))
    cores = [c for c in order if not (set(c) & (taken | hk))]
    if smt == "reserve":
        return cores
    free = [c for c in order if not set(c) & hk]
    depth = max((len(c) for c in free), default=0)
    return [(c[i],) for i in range(depth) for c in free if i < len(c) and c[i] not in taken]


def _resolve_node(host: Host, topo: Topology, node: int | str, nic_node: int) -> int:
    if node == "nic":
        return nic_node
    if node not in host.nodes or not host.nodes[node].cpus:
        raise TopologyError(f"{topo.path}: node {node} is not a NUMA node with CPUs on this host "
                            f"(nodes: {', '.join(str(n) for n in sorted(host.nodes))})")
    return int(node)


# -- the plan ---------------------------------------------------------------------------------

def make_plan(host: Host, topo: Topology, profile: Profile) -> Plan:
    """Plan ``topo`` on ``host`` with ``profile``. Raises :class:`PlanError` when it cannot fit."""
    notes: list[str] = []
    nic = None
    nic_node = 0
    if topo.nic is not None:
        nic = host.nics.get(topo.nic)
        if nic is None:
            raise TopologyError(f"{topo.path}: nic.interface {topo.nic!r} is not a physical NIC on this "
                                f"host (NICs with a device: {', '.join(sorted(host.nics)) or 'none'})")
        if topo.nic_node is not None:
            nic_node = _resolve_node(host, topo, topo.nic_node, 0)
        elif nic.node is not None:
            nic_node = nic.node
        else:
            notes.append(f"{nic.name}: the kernel does not know its NUMA node (numa_node=-1); "
                         "assuming node 0 (set nic.node to override)")
    else:
        notes.append("no [nic] in the topology: processes prefer node 0 and no NIC IRQ is pinned")
    if nic_node not in host.nodes:
        nic_node = min(host.nodes)

    hk_cores = _housekeeping_cores(host, profile)
    hk_reserved = {c for cores in hk_cores.values() for core in cores for c in core}
    taken: set[int] = set()
    processes: list[ProcessPlan] = []
    isolated_cpus: set[int] = set()
    demand = [(r, n) for r, n in topo.processes
              if (r.isolate if r.isolate is not None else r.role in profile.isolate)]
    per_process = 2 if profile.helpers == "core" else 1  # its own core for the helper threads

    def take(name: str, want_node: int) -> tuple[int, tuple[int, ...]]:
        order = sorted(host.nodes, key=lambda n: (host.node_distance(want_node, n), n))
        for node in order:
            slots = _slots(host, node, taken, hk_reserved, profile.smt)
            if slots:
                break
        else:
            free = sum(len(_slots(host, n, set(), hk_reserved, profile.smt)) for n in host.nodes)
            unit = "core" if profile.smt == "reserve" else "thread"
            raise PlanError(
                f"{len(demand)} processes need "
                + (f"an isolated {unit}" if per_process == 1 else f"{per_process} isolated {unit}s each")
                + " "
                f"({', '.join(n for _, n in demand)}) but this host has {free} after keeping "
                f"{profile.housekeeping_cores} housekeeping core(s) per node; two processes never share an "
                "isolated core: reduce the topology, isolate fewer roles, or use a profile with "
                "smt = \"share\"" + (" or helpers = \"housekeeping\"" if per_process > 1 else ""))
        slot = slots[0]
        if node != want_node:
            notes.append(f"{name}: no free core on node {want_node}; placed on node {node} "
                         f"(distance {host.node_distance(want_node, node)})")
        taken.update(slot)
        isolated_cpus.update(slot)
        return node, slot

    for role, name in demand:
        node, slot = take(name, _resolve_node(host, topo, role.node, nic_node))
        helpers: list[int] = []
        if per_process > 1:
            _, hslot = take(f"{name} (helper threads)", node)
            helpers = list(hslot)
        processes.append(ProcessPlan(name, role.role, [slot[0]], node, True, profile.mempolicy, None,
                                     None, role.hugepages_mib, list(slot[1:]), helpers))
    kept = set(host.isolated) - isolated_cpus
    if kept:  # isolated at boot but not needed: keep them isolated rather than ask for a reboot
        notes.append(f"CPUs {format_list(kept)} are isolated by the command line but host no process; "
                     "they stay isolated")
        isolated_cpus |= kept & set(host.online)
    housekeeping = sorted(set(host.online) - isolated_cpus)

    def node_housekeeping(node: int) -> list[int]:
        return sorted(c for c in host.nodes[node].cpus if c in housekeeping) or housekeeping

    processes = [p if p.helpers else ProcessPlan(**{**asdict(p), "helpers": node_housekeeping(p.node)})
                 for p in processes]
    for role, name in topo.processes:
        if any(p.name == name for p in processes):
            continue
        node = _resolve_node(host, topo, role.node, nic_node)
        cpus = node_housekeeping(node)
        processes.append(ProcessPlan(name, role.role, cpus, node, False, "preferred", None, None,
                                     role.hugepages_mib, [], list(cpus)))
    processes.sort(key=lambda p: [r.role for r in topo.roles].index(p.role))
    isolated = sorted(isolated_cpus)

    runtime: list[Change] = []
    hugepages = _plan_hugepages(host, profile, processes, runtime, notes)
    knobs = resolve_knobs(profile, topo)
    _plan_knobs(host, knobs, housekeeping, runtime)
    irqs = _plan_irqs(host, nic, nic_node, housekeeping, isolated, runtime, notes)
    processes = _plan_cpusets(host, processes, isolated, housekeeping, profile, runtime, notes)
    cmdline = _plan_cmdline(host, profile, isolated, housekeeping, hugepages)
    if host.cpus and any(len(c.siblings) > 1 for c in host.cpus.values()) and profile.smt == "share":
        notes.append("smt = share: an isolated thread's sibling may run another process; "
                     "use the latency profile to keep siblings idle")
    runtime.sort(key=lambda c: KINDS.index(c.kind))  # stable: keeps each kind's own order
    return Plan(profile.name, topo.path, host_summary(host), housekeeping, isolated, processes, irqs,
                hugepages, cmdline, runtime, notes)


def _plan_hugepages(host: Host, profile: Profile, processes: list[ProcessPlan],
                    runtime: list[Change], notes: list[str]) -> list[HugepagePlan]:
    size = profile.hugepage_kb
    out = []
    per_node: dict[int, int] = {}
    for p in processes:
        per_node[p.node] = per_node.get(p.node, 0) + p.hugepages_mib
    for node, mib in sorted(per_node.items()):
        if mib == 0:
            continue
        pools = host.nodes[node].hugepages
        if size not in pools:
            notes.append(f"node {node}: the kernel offers no {size} kB hugepages "
                         f"(sizes: {', '.join(map(str, sorted(pools))) or 'none'}); slabs will use THP")
            continue
        needed = math.ceil(mib * 1024 * (100 + profile.headroom_pct) / 100 / size)
        current = pools[size][0]
        wanted = max(current, needed)
        n = host.nodes[node]
        available_kb = n.mem_free_kb + current * size  # pages already reserved are not in MemFree
        if n.mem_total_kb and (wanted - current) * size > n.mem_free_kb:
            raise PlanError(
                f"node {node} needs {wanted} x {size} kB hugepages ({wanted * size // 1024} MiB: {mib} MiB of "
                f"slabs and buffers +{profile.headroom_pct}%) but has {available_kb // 1024} MiB for them "
                f"({n.mem_free_kb // 1024} MiB free + {current * size // 1024} MiB already reserved); "
                "lower slab_mib/buffers_mib, place processes on another node, or free memory")
        out.append(HugepagePlan(node, size, current, needed, wanted))
        if wanted != current:
            runtime.append(Change(
                f"hugepages:node{node}:{size}kB", "hugepages",
                f"sys/devices/system/node/node{node}/hugepages/hugepages-{size}kB/nr_hugepages",
                str(wanted), why=f"{mib} MiB of slabs and buffers on node {node} "
                                 f"+{profile.headroom_pct}% headroom"))
    return out


def _plan_knobs(host: Host, knobs: dict[str, KnobWant], housekeeping: list[int],
                runtime: list[Change]) -> None:
    root = host.root
    for kid, kw in knobs.items():
        kd = CATALOG[kid]
        want = format_mask(housekeeping, host.nr_cpu_ids) if kw.want == "housekeeping" else kw.want
        for cid, path in per_cpu_paths(kd, root, host.online):
            if not root.exists(path) or read_only(root, path):
                continue  # check reports these as unsupported, with the reason
            # kept when already satisfied: apply skips it ("already"), show watches it for drift
            runtime.append(Change(cid, kd.kind, path, want, kd.fmt, why=kd.why))


def _plan_irqs(host: Host, nic, nic_node: int, housekeeping: list[int], isolated: list[int],
               runtime: list[Change], notes: list[str]) -> list[IrqPlan]:
    out = []
    iso = set(isolated)
    node_hk = [c for c in housekeeping if host.cpus[c].node == nic_node] or housekeeping
    queue_irqs = sorted((nic.queue_irqs.items() if nic else []), key=lambda kv: (kv[1], kv[0]))
    spread = {irq: [node_hk[i % len(node_hk)]] for i, (irq, _q) in enumerate(queue_irqs)}
    managed = []
    for n, irq in sorted(host.irqs.items()):
        if irq.affinity is None:
            continue
        if irq.managed and set(irq.affinity) & iso:
            managed.append(n)  # the kernel refuses to move it: isolcpus=managed_irq keeps it off
            continue
        if n in spread:
            wanted = spread[n]
        elif set(irq.affinity) & iso:
            wanted = housekeeping
        else:
            continue
        queue = nic.queue_irqs.get(n) if nic else None
        out.append(IrqPlan(n, irq.name, list(irq.affinity), wanted, queue))
        if list(irq.affinity) != wanted:
            runtime.append(Change(f"irq:{n}", "irq", f"proc/irq/{n}/smp_affinity_list",
                                  format_list(wanted), "list", optional=True,
                                  why=f"{irq.name}: " + (f"queue {queue} of {nic.name} on node {nic_node}"
                                                         if queue is not None else "off isolated CPUs")))
    if managed:
        notes.append(f"IRQs {', '.join(map(str, managed))} are kernel-managed (debugfs): the kernel refuses to "
                     "move them; isolcpus=managed_irq on the command line keeps their effective affinity off "
                     "the isolated CPUs")
    if nic:
        for q in sorted(nic.rps):
            path = f"sys/class/net/{nic.name}/queues/rx-{q}/rps_cpus"
            ch = Change(f"rps:{nic.name}:rx-{q}", "rps", path, "0", "mask",
                        why="no RPS: packets are processed where the queue IRQ runs")
            if not ch.satisfied(host.root):
                runtime.append(ch)
    if host.irqbalance_pid:
        notes.append(f"irqbalance (pid {host.irqbalance_pid}) is running and will move IRQs back: stop "
                     f"it or ban CPUs {format_list(isolated)} (IRQBALANCE_BANNED_CPULIST)")
    return out


def _plan_cpusets(host: Host, processes: list[ProcessPlan], isolated: list[int], housekeeping: list[int],
                  profile: Profile, runtime: list[Change], notes: list[str]) -> list[ProcessPlan]:
    cg = host.cgroups
    iso_procs = [p for p in processes if p.isolated]
    if not iso_procs:
        return processes
    if cg.cpuset is None:
        notes.append("no cpuset controller (cgroup v1 or v2): isolated processes are kept apart by "
                     "affinity and isolcpus only")
        return processes
    mnt = cg.cpuset_mount.lstrip("/")
    v2 = cg.cpuset == "v2"
    parent = f"{mnt}/rsx"
    mems = format_list(sorted({p.node for p in iso_procs}))

    def w(cid: str, path: str, value: str, fmt: str = "text", kind: str = "cpuset") -> None:
        runtime.append(Change(cid, kind, path, value, fmt))

    if v2 and "cpuset" not in cg.v2_subtree:
        w("cpuset:subtree_control", f"{mnt}/cgroup.subtree_control", "+cpuset", "subtree")
    if host.root.is_dir(parent):
        notes.append(f"/{parent} already exists: cpusets are not planned (remove it or roll back)")
        return processes
    runtime.append(Change("cpuset:rsx", "cpuset", parent, "", op="mkdir",
                          why="parent cpuset of the isolated processes"))
    w("cpuset:rsx:cpus", f"{parent}/cpuset.cpus", format_list(isolated), "list")
    w("cpuset:rsx:mems", f"{parent}/cpuset.mems", mems, "list")
    if v2:
        w("cpuset:rsx:partition", f"{parent}/cpuset.cpus.partition", "root")
        w("cpuset:rsx:subtree_control", f"{parent}/cgroup.subtree_control", "+cpuset", "subtree")
    else:
        w("cpuset:rsx:cpu_exclusive", f"{parent}/cpuset.cpu_exclusive", "1")
        w("cpuset:rsx:sched_load_balance", f"{parent}/cpuset.sched_load_balance", "0")
    if not v2:
        _plan_shield(host, mnt, isolated, housekeeping, runtime)
    elif profile.helpers == "housekeeping":
        notes.append("cgroup v2: every thread of a process shares its partition, so helper threads of an "
                     "isolated process run on its own core (helpers = \"core\" gives them a core of their own)")
    out = []
    for p in processes:
        if not p.isolated:
            out.append(p)
            continue
        d = f"{parent}/{p.name}"
        own = p.cpus + p.reserved + (p.helpers if profile.helpers == "core" else [])
        runtime.append(Change(f"cpuset:rsx/{p.name}", "cpuset", d, "", op="mkdir",
                              why=f"cpuset of {p.name}"))
        w(f"cpuset:rsx/{p.name}:cpus", f"{d}/cpuset.cpus", format_list(own), "list")
        w(f"cpuset:rsx/{p.name}:mems", f"{d}/cpuset.mems", str(p.node), "list")
        if v2:
            w(f"cpuset:rsx/{p.name}:partition", f"{d}/cpuset.cpus.partition", "isolated")
        else:
            w(f"cpuset:rsx/{p.name}:cpu_exclusive", f"{d}/cpuset.cpu_exclusive", "1")
        helpers = p.helpers if not v2 or profile.helpers == "core" else sorted(p.cpus + p.reserved)
        out.append(ProcessPlan(**{**asdict(p), "cpuset": d, "helpers": helpers,
                                  "cgroup_procs": f"{d}/{'cgroup.procs' if v2 else 'tasks'}"}))
    return out


def _plan_shield(host: Host, mnt: str, isolated: list[int], housekeeping: list[int],
                 runtime: list[Change]) -> None:
    """cgroup v1: every other task off the isolated CPUs (cset shield's model; specs/tuning.md 3.4).

    A sibling cpuset ``rsx-housekeeping`` holds the housekeeping CPUs and every
    movable task of the root cpuset (not init, not CPU-bound kernel threads);
    the root stops load balancing, so the isolated CPUs leave the scheduler
    domains as with ``isolcpus=domain``. Kind ``tasks``: ``--only`` can leave it out.
    Not planned when the kernel was booted with every planned CPU isolated
    (``isolcpus``): tasks already keep off them, and moving them back on
    rollback would widen their affinity.
    """
    if set(isolated) <= set(host.isolated):
        return
    d = f"{mnt}/rsx-housekeeping"
    nodes = format_list(sorted(host.nodes))
    runtime.append(Change("tasks:rsx-housekeeping", "tasks", d, "", op="mkdir",
                          why="cpuset for every task that is not the appliance's"))
    runtime.append(Change("tasks:rsx-housekeeping:cpus", "tasks", f"{d}/cpuset.cpus", format_list(housekeeping),
                          "list"))
    runtime.append(Change("tasks:rsx-housekeeping:mems", "tasks", f"{d}/cpuset.mems", nodes, "list"))
    runtime.append(Change("tasks:rsx-housekeeping:procs", "tasks", f"{d}/cgroup.procs", f"{mnt}/cgroup.procs",
                          op="migrate", why="move every movable task off the isolated CPUs"))
    runtime.append(Change("tasks:root:sched_load_balance", "tasks", f"{mnt}/cpuset.sched_load_balance", "0",
                          why="isolated CPUs leave the load-balancing domains (like isolcpus=domain)"))


def _norm_arg(key: str, value: str | None) -> str | None:
    if value is None:
        return None
    if key in ("nohz_full", "rcu_nocbs", "irqaffinity"):
        try:
            return format_list(parse_list(value))
        except ValueError:
            return value
    if key == "isolcpus":
        parts = value.split(",")
        flags = sorted(p for p in parts if p and not p[0].isdigit())
        cpus = ",".join(p for p in parts if p and p[0].isdigit())
        try:
            return ",".join(flags + ([format_list(parse_list(cpus))] if cpus else []))
        except ValueError:
            return value
    return value


def _plan_cmdline(host: Host, profile: Profile, isolated: list[int], housekeeping: list[int],
                  hugepages: list[HugepagePlan]) -> dict:
    want: list[tuple[str, str | None]] = []
    if isolated:
        iso = format_list(isolated)
        flags = [f for f in profile.isolcpus_flags.split(",") if f]
        want += [("isolcpus", ",".join(flags + [iso])), ("nohz_full", iso), ("rcu_nocbs", iso),
                 ("irqaffinity", format_list(housekeeping))]
    gig = [h for h in hugepages if h.size_kb == 1048576]
    if gig:
        want += [("hugepagesz", "1G"), ("hugepages", ",".join(f"{h.node}:{h.wanted}" for h in gig))]
    for arg in profile.cmdline_extra:
        k, sep, v = arg.partition("=")
        want.append((k, v if sep else None))
    current = dict(host.cmdargs)
    add, remove, rows = [], [], []
    for k, v in want:
        text = k if v is None else f"{k}={v}"
        have = current.get(k, ...) if k in current else ...
        if have is ... :
            add.append(text)
            rows.append({"arg": k, "current": None, "wanted": text})
        elif _norm_arg(k, have) != _norm_arg(k, v):
            old = k if have is None else f"{k}={have}"
            remove.append(old)
            add.append(text)
            rows.append({"arg": k, "current": old, "wanted": text})
        else:
            rows.append({"arg": k, "current": text, "wanted": text})
    kept = [k if v is None else f"{k}={v}" for k, v in host.cmdargs
            if (k if v is None else f"{k}={v}") not in remove]
    tokens = host.cmdline.split()
    init = tokens[tokens.index("--"):] if "--" in tokens else []  # arguments for init stay last
    return {"add": add, "remove": remove, "line": " ".join(kept + add + init), "args": rows}
