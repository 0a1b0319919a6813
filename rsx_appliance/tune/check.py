"""`rsx tune check`: every knob as pass / warn / fail / unsupported, with current, wanted and why.

Read-only by construction: it uses the host model, the profile and (with a
topology) the plan, and never calls a writer. A knob the host cannot show is
``unsupported`` with the reason (absent on this kernel, read-only here,
unreadable without privileges, only visible on the live root), never silently
skipped.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from .cpus import format_list, format_mask, parse_list
from .errors import PlanError
from .host import Host
from .knobs import CATALOG, normalize, per_cpu_paths, read_only
from .plan import Plan, make_plan, resolve_knobs
from .profile import Profile
from .topology import Topology

__all__ = ["CheckResult", "run_check", "STATUSES"]

STATUSES = ("pass", "warn", "fail", "unsupported")


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: str
    current: str | None
    wanted: str | None
    reason: str
    reboot: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _unreadable(root, path: str) -> str:
    uid = os.geteuid()
    return f"{path} exists but cannot be read as uid {uid}" + ("" if uid == 0 else " (try as root)")


def _knob_rows(host: Host, profile: Profile, topo: Topology | None, housekeeping: list[int],
               rows: list[CheckResult]) -> None:
    root = host.root
    for kid, kw in resolve_knobs(profile, topo).items():
        kd = CATALOG[kid]
        want = format_mask(housekeeping, host.nr_cpu_ids) if kw.want == "housekeeping" else kw.want
        shown_want = f"{kw.want} ({format_list(housekeeping)})" if kw.want == "housekeeping" else kw.want
        if "{cpu}" in (kd.path or ""):
            files = {int(cid.rsplit(":cpu", 1)[1]): path for cid, path in per_cpu_paths(kd, root, host.online)}
            if not files:
                why = ("no /sys/devices/system/cpu/cpu*/cpufreq: the frequency is set by firmware or the "
                       "hypervisor, not by this kernel" if not any(c.governor for c in host.cpus.values()) else
                       f"the cpufreq driver ({host.cpufreq_driver or 'unknown'}) has no "
                       f"{kd.path.rsplit('/', 1)[1]} (only intel_pstate / amd-pstate in active mode)")
                rows.append(CheckResult(kid, "unsupported", None, want, why))
                continue
            values = {c: root.read(path) for c, path in files.items()}
            bad = sorted(c for c, v in values.items() if v != want)
            seen = sorted({v for v in values.values() if v})
            status = "pass" if not bad else kw.severity
            rows.append(CheckResult(kid, status, ",".join(seen), want,
                                    kd.why if not bad else f"CPUs {format_list(bad)} not at {want}: {kd.why}"))
            continue
        path = kd.path
        if not root.exists(path):
            why = kd.removed_in or "not present on this kernel"
            rows.append(CheckResult(kid, "unsupported", None, shown_want, f"/{path}: {why}"))
            continue
        current = root.read(path)
        if current is None:
            rows.append(CheckResult(kid, "unsupported", None, shown_want, _unreadable(root, path)))
            continue
        ok = normalize(kd.fmt, current) == normalize(kd.fmt, want)
        shown = normalize("select", current) if kd.fmt == "select" else current
        if kd.fmt == "mask":
            shown = f"{current} ({format_list(int(x) for x in (normalize('mask', current) or '').split(',') if x)})"
        if ok:
            rows.append(CheckResult(kid, "pass", shown, shown_want, kd.why))
        elif read_only(root, path):
            hint = "; set it on the kernel command line instead" if kid == "sysctl:kernel.nmi_watchdog" else ""
            rows.append(CheckResult(kid, "unsupported", shown, shown_want,
                                    f"/{path} is read-only on this host (writes fail with EACCES){hint}"))
        else:
            rows.append(CheckResult(kid, kw.severity, shown, shown_want, kd.why))


_CMDLINE_WHY = {
    "isolcpus": "the scheduler keeps other tasks (domain) and managed IRQs (managed_irq) off these CPUs",
    "nohz_full": "no scheduler tick on a CPU that runs one task",
    "rcu_nocbs": "RCU callbacks of these CPUs run on housekeeping CPUs",
    "irqaffinity": "IRQs start on the housekeeping CPUs from boot",
    "skew_tick": "per-CPU ticks at staggered times instead of all at once (less contention on jiffies)",
    "tsc": "tsc=reliable: no clocksource watchdog re-checking the TSC against a slower clock",
    "nosoftlockup": "no soft-lockup detector timer on every CPU (a spinning core looks locked up)",
    "nmi_watchdog": "no periodic NMI on every CPU (perf counter overflow)",
    "rcu_nocb_poll": "RCU callback kthreads poll instead of being woken by the isolated CPUs: no wake-up IPI "
                     "from an rcu_nocbs CPU",
}


def _cmdline_rows(host: Host, profile: Profile, plan: Plan | None, isolated: list[int],
                  rows: list[CheckResult]) -> None:
    no_nohz = ("/sys/devices/system/cpu/nohz_full is absent: this kernel has no CONFIG_NO_HZ_FULL, so "
               "isolated CPUs keep their scheduler tick; use a kernel built with it")
    if plan is not None:
        for arg in plan.cmdline["args"]:
            ok = arg["current"] == arg["wanted"]
            if arg["arg"] == "nohz_full" and host.nohz_full is None:
                rows.append(CheckResult("cmdline:nohz_full", "unsupported", arg["current"], arg["wanted"],
                                        no_nohz, reboot=True))
                continue
            why = _CMDLINE_WHY.get(arg["arg"])
            rows.append(CheckResult(f"cmdline:{arg['arg']}", "pass" if ok else "warn", arg["current"],
                                    arg["wanted"], (f"{why}: " if why else "")
                                    + ("boot-time: add it to the bootloader's kernel command line and reboot"
                                       if not ok else "on the kernel command line"), reboot=True))
        return
    if not isolated:
        rows.append(CheckResult("cmdline:isolcpus", "warn", host.cmdarg("isolcpus"), "isolcpus=<cores>",
                                "no CPU is isolated: every core is shared with the OS scheduler "
                                "(give a --topology to get the exact arguments)", reboot=True))
        if host.nohz_full is None:
            rows.append(CheckResult("cmdline:nohz_full", "unsupported", host.cmdarg("nohz_full"),
                                    "nohz_full=<cores>", no_nohz, reboot=True))
    else:
        rows.append(CheckResult("cmdline:isolcpus", "pass", format_list(isolated), None,
                                "CPUs isolated from the scheduler", reboot=True))
        for key in ("nohz_full", "rcu_nocbs"):
            have = host.cmdarg(key)
            try:
                covered = set(isolated) <= set(parse_list(have)) if have else False
            except ValueError:
                covered = False
            if key == "nohz_full" and host.nohz_full is None:
                rows.append(CheckResult(f"cmdline:{key}", "unsupported", have, format_list(isolated),
                                        no_nohz, reboot=True))
                continue
            rows.append(CheckResult(f"cmdline:{key}", "pass" if covered else "warn", have,
                                    format_list(isolated),
                                    f"{key} should cover every isolated CPU", reboot=True))
    for arg in profile.cmdline_extra:
        k, _, v = arg.partition("=")
        have = host.cmdarg(k)
        ok = have is not None and (have == v or (not v and have == ""))
        rows.append(CheckResult(f"cmdline:{k}", "pass" if ok else "warn",
                                None if have is None else (k if have == "" else f"{k}={have}"), arg,
                                _CMDLINE_WHY.get(k, "profile command-line argument")
                                + ("" if ok else ": add it and reboot"), reboot=True))


def _irq_rows(host: Host, plan: Plan | None, isolated: list[int], rows: list[CheckResult],
              refused: set[int]) -> None:
    """Movable IRQs are judged by the affinity they are allowed; kernel-managed ones (debugfs says so, or
    the kernel refused to move them when the plan was applied) by their effective affinity, since the
    kernel alone places them (isolcpus=managed_irq)."""
    iso = set(isolated)
    if not iso:
        return
    bad, managed_ok, managed_local, managed_bad = [], [], [], []
    managed_irq_flag = "managed_irq" in (host.cmdarg("isolcpus") or "").split(",")
    for n, irq in sorted(host.irqs.items()):
        if irq.affinity is None or not set(irq.affinity) & iso:
            continue
        if not (irq.managed or n in refused):
            bad.append(n)
        elif irq.effective is not None and not set(irq.effective) & iso:
            managed_ok.append(n)
        elif set(irq.affinity) <= iso and managed_irq_flag:
            managed_local.append(n)  # a queue of isolated CPUs only: fires for I/O issued there
        else:
            managed_bad.append(n)
    rows.append(CheckResult(
        "isolation:irqs", "fail" if bad else "pass",
        f"IRQs {','.join(map(str, bad))} may run on isolated CPUs" if bad else "none on isolated CPUs",
        f"no IRQ on CPUs {format_list(iso)}",
        "an interrupt on an isolated core stalls the process spinning there"
        + ("; `rsx tune apply` moves them" if bad else "")
        + (f" (kernel-managed IRQs {','.join(map(str, managed_ok))} judged by their effective affinity, "
           "which avoids them)" if managed_ok else "")))
    if managed_local or managed_bad:
        rows.append(CheckResult(
            "isolation:managed-irqs", "fail" if managed_bad else "warn",
            "; ".join(x for x in (
                f"IRQs {','.join(map(str, managed_bad))} effective on isolated CPUs" if managed_bad else "",
                f"IRQs {','.join(map(str, managed_local))} serve only isolated CPUs" if managed_local else "")
                if x),
            "effective affinity off isolated CPUs",
            ("kernel-managed IRQs cannot be moved at run time: boot with isolcpus=managed_irq,... "
             "(the plan's command line) so the kernel keeps them on housekeeping CPUs" if managed_bad else "")
            + ("; " if managed_bad and managed_local else "")
            + ("a managed queue whose CPUs are all isolated fires only for I/O submitted from those CPUs: "
               "keep I/O (WAL writes) on helper threads, which the plan puts on housekeeping CPUs"
               if managed_local else ""),
            reboot=bool(managed_bad)))
    if plan is None:
        return
    nic_irqs = [i for i in plan.irqs if i.nic_queue is not None]
    if nic_irqs:
        wrong = [i.irq for i in nic_irqs if i.irq not in host.irqs
                 or list(host.irqs[i.irq].affinity or []) != i.wanted]
        rows.append(CheckResult("isolation:nic-irqs", "warn" if wrong else "pass",
                                f"{len(wrong)} of {len(nic_irqs)} queue IRQs elsewhere" if wrong else
                                "every queue IRQ on its planned CPU",
                                "queue IRQs on housekeeping CPUs of the NIC's node",
                                "NIC queue interrupts belong on the NUMA node of their consumers, off "
                                "isolated cores"))


def run_check(host: Host, profile: Profile, topo: Topology | None = None, *, state: dict | None = None,
              plan_host: Host | None = None, placed: set[int] | frozenset = frozenset()) -> list[CheckResult]:
    """Every check row for ``host`` under ``profile`` (and the plan of ``topo`` when given).

    ``state`` is the applied tuning state, if any (IRQs the kernel refused to
    move are managed); ``placed`` the pids of the appliance's placed processes. ``plan_host``
    is the host to plan from (the original view of a tuned host,
    :func:`~rsx_appliance.tune.apply.original_view`); rows judge ``host``, as it is now.
    """
    rows: list[CheckResult] = []
    plan = None
    if topo is not None:
        try:
            plan = make_plan(plan_host or host, topo, profile)
        except PlanError as exc:
            rows.append(CheckResult("plan", "fail", None, None, str(exc)))
    isolated = plan.isolated if plan else host.isolated
    housekeeping = plan.housekeeping if plan else sorted(set(host.online) - set(host.isolated))
    if plan:
        pending = sum(not c.satisfied(host.root) for c in plan.runtime)
        rows.append(CheckResult("plan", "pass", None, None,
                                f"{len(plan.processes)} processes; isolated CPUs {format_list(plan.isolated) or 'none'}; "
                                f"{pending} runtime changes pending"))
    refused = {int(e["id"].split(":")[1]) for e in (state or {}).get("changes", [])
               if e.get("skipped") and e["id"].split(":")[0] == "irq" and e["id"].split(":")[1].isdigit()}
    _knob_rows(host, profile, topo, housekeeping, rows)
    _cmdline_rows(host, profile, plan, isolated, rows)
    _irq_rows(host, plan, isolated, rows, refused)
    _task_rows(host, isolated, housekeeping, rows, placed)

    if plan is not None:
        for hp in plan.hugepages:
            current = host.nodes[hp.node].hugepages.get(hp.size_kb, (0, 0))[0]  # now, not when planned
            ok = current >= hp.needed
            rows.append(CheckResult(f"hugepages:node{hp.node}:{hp.size_kb}kB", "pass" if ok else "fail",
                                    str(current), str(hp.needed),
                                    "hugepage pool for the slabs and buffers on this node"
                                    + ("" if ok else ": `rsx tune apply` reserves them")))
    else:
        pools = "; ".join(f"node{n.id}: " + ", ".join(f"{k} kB x{v[0]}" for k, v in sorted(n.hugepages.items()))
                          for n in host.nodes.values())
        rows.append(CheckResult("hugepages:pools", "pass", pools or "none", None,
                                "reserved hugepages per node (the plan sizes them from a topology)"))

    deepest = {}
    for c in host.cpus.values():
        enabled = [s for s in c.idle if not s.disabled]
        if enabled:
            deepest[c.id] = max(enabled, key=lambda s: s.latency_us)
    if not deepest:
        rows.append(CheckResult("cpuidle:states", "pass", "no cpuidle driver", None,
                                "no idle states to exit from"))
    else:
        worst = max(deepest.values(), key=lambda s: s.latency_us)
        ok = worst.latency_us <= profile.max_idle_latency_us
        rows.append(CheckResult("cpuidle:states", "pass" if ok else "warn",
                                f"{worst.name} ({worst.latency_us} us exit latency)",
                                f"<= {profile.max_idle_latency_us} us",
                                "waking from a deep C-state adds its exit latency to the next packet"
                                + ("" if ok else "; hold /dev/cpu_dma_latency at 0 while running, or boot "
                                   "with processor.max_cstate=1 / intel_idle.max_cstate=1")))
    if host.smt_active is None:
        rows.append(CheckResult("smt:active", "unsupported", None, None,
                                "/sys/devices/system/cpu/smt is absent (kernel without SMT control)"))
    else:
        sib = any(len(c.siblings) > 1 for c in host.cpus.values())
        rows.append(CheckResult("smt:active", "pass", f"{'on' if host.smt_active else 'off'} "
                                f"(control={host.smt_control})", None,
                                f"profile smt={profile.smt}: " +
                                ("siblings of isolated cores stay idle" if profile.smt == "reserve"
                                 else "siblings may host other processes") if sib else
                                "no SMT siblings on this host"))
    if host.irqbalance_pid:
        rows.append(CheckResult("irqbalance:running", "warn", f"pid {host.irqbalance_pid}", "stopped or banned",
                                "irqbalance moves IRQs back onto isolated CPUs unless they are banned "
                                "(IRQBALANCE_BANNED_CPULIST); its config cannot be verified from here"))
    else:
        rows.append(CheckResult("irqbalance:running", "pass", "not running", None,
                                "nothing rebalances IRQs behind the plan's back"))
    rows.append(CheckResult("swap:active", "warn" if host.swaps else "pass",
                            ",".join(host.swaps) or "none", "none",
                            "a swapped-out page costs milliseconds; the appliance mlocks, other processes "
                            "do not"))
    cs = host.clocksource
    rows.append(CheckResult("clocksource:current", "pass" if cs == "tsc" else
                            ("unsupported" if cs is None else "warn"), cs, "tsc",
                            "a non-TSC clocksource turns clock_gettime into a syscall"
                            if cs is not None else "no clocksource in sysfs"))
    cg = host.cgroups
    if cg.cpuset:
        rows.append(CheckResult("cgroup:cpuset", "pass", f"{cg.cpuset} at {cg.cpuset_mount}", None,
                                "isolated processes get exclusive cpusets"
                                + (" with cpuset.cpus.partition=isolated" if cg.cpuset == "v2" else "")))
    else:
        rows.append(CheckResult("cgroup:cpuset", "unsupported",
                                f"v1: {','.join(sorted(cg.v1)) or 'none'}; v2: "
                                f"{','.join(cg.v2_controllers) or 'none'}", "cpuset",
                                "no cpuset controller in cgroup v1 or v2: isolation relies on affinity "
                                "and isolcpus only"))
    _nic_rows(host, profile, topo, rows)
    _machine_rows(host, plan, rows)
    if host.virtual:
        rows = [_on_a_vm(r, host.virtual) for r in rows]
    return rows


# rows about the physical machine, which a guest kernel can neither see truly nor change
_HARDWARE = ("cpufreq:", "cpuidle:", "nic:", "smt:", "cpu:mitigations", "clocksource:")


def _on_a_vm(row: CheckResult, hypervisor: str) -> CheckResult:
    if not row.id.startswith(_HARDWARE) or row.status == "pass":
        return row
    return CheckResult(row.id, "warn" if row.status == "fail" else row.status, row.current, row.wanted,
                       f"{row.reason} (virtual machine, {hypervisor}: the hypervisor's host decides this; "
                       "tune it there)", row.reboot)


def _names(tasks) -> str:
    shown = ", ".join(f"{t.comm}[{t.pid}]" for t in tasks[:5])
    return shown + (f" and {len(tasks) - 5} more" if len(tasks) > 5 else "")


def _task_rows(host: Host, isolated: list[int], housekeeping: list[int], rows: list[CheckResult],
               placed: set[int]) -> None:
    """Who else may run on the isolated CPUs: user tasks (fail) and unbound kernel threads (warn)."""
    iso = set(isolated)
    if not iso or not host.tasks:
        return
    me = os.getpid() if host.root.is_live else -1
    users = [t for t in host.tasks if not t.kthread and t.pid not in (1, me) and t.pid not in placed
             and set(t.allowed) & iso]
    init = next((t for t in host.tasks if t.pid == 1 and set(t.allowed) & iso), None)
    status = "fail" if users else ("warn" if init else "pass")
    rows.append(CheckResult(
        "isolation:tasks", status,
        f"{len(users)} tasks may run on isolated CPUs: {_names(users)}" if users else
        ("init (pid 1) may run on isolated CPUs" if init else "only the appliance's processes"),
        f"every other task on CPUs {format_list(housekeeping)}",
        "a task the scheduler may put on an isolated core preempts the process spinning there"
        + ("; boot with the plan's isolcpus=, or `rsx tune apply` (kind tasks, cgroup v1) moves them"
           if users else "")
        + ("; services init starts later inherit its CPUs: systemd's CPUAffinity= (rsx deploy renders it)"
           if init else "")))
    unbound = [t for t in host.tasks if t.kthread and len(t.allowed) > 1 and set(t.allowed) & iso]
    rows.append(CheckResult(
        "isolation:kthreads", "warn" if unbound else "pass",
        f"{len(unbound)} unbound kernel threads may run on isolated CPUs: {_names(unbound)}" if unbound
        else "unbound kernel threads stay on housekeeping CPUs",
        f"CPUs {format_list(housekeeping)}",
        "unbound kernel threads (kswapd, writeback, workqueue workers) follow the housekeeping CPUs only "
        "with isolcpus=domain / nohz_full at boot; `rsx tune apply` (kind tasks, cgroup v1) moves the "
        "movable ones; per-CPU kernel threads are not counted (they run only for work queued there)"))


def _machine_rows(host: Host, plan: Plan | None, rows: list[CheckResult]) -> None:
    """The rows about the machine as a whole: virtualisation, frequency, limits, audit, mitigations."""
    if host.virtual:
        rows.append(CheckResult("host:virtual", "warn", host.virtual, "bare metal",
                                f"a virtual machine ({host.virtual_evidence}): the hypervisor can preempt any "
                                "vCPU, so isolation and jitter only hold inside the guest; frequency, C-states, "
                                "NIC rings and coalescing belong to the host (rows about them are warnings "
                                "here)"))
    else:
        rows.append(CheckResult("host:virtual", "pass", "bare metal", None,
                                "no hypervisor in DMI, /sys/hypervisor or the CPU flags"))
    drv = host.cpufreq_driver
    rows.append(CheckResult("cpufreq:driver", "pass" if drv else "unsupported", drv, None,
                            "the frequency driver: intel_pstate / amd-pstate (active) follow "
                            "energy_performance_preference; acpi-cpufreq follows the governor" if drv else
                            "no cpufreq driver: the frequency is set by firmware or the hypervisor"))
    if host.boost is None:
        rows.append(CheckResult("cpufreq:boost", "unsupported", None, None,
                                "no intel_pstate/no_turbo or cpufreq/boost: turbo is firmware's (or the "
                                "hypervisor's)"))
    else:
        rows.append(CheckResult("cpufreq:boost", "pass", f"turbo {host.boost[1]} ({host.boost[0]})", None,
                                "turbo raises the clock but makes it vary with temperature and with how many "
                                "cores are busy; rsx leaves it: disable it in firmware (or there) for the "
                                "steadiest latency"))
    limits = host.root.read("proc/self/limits") if host.root.is_live else None
    if limits is None:
        rows.append(CheckResult("limits:memlock", "unsupported", None, "unlimited or CAP_IPC_LOCK",
                                "RLIMIT_MEMLOCK is a process's own: only read on the live root"))
    else:
        line = next((ln for ln in limits.splitlines() if ln.startswith("Max locked memory")), "")
        soft = line.split()[3] if len(line.split()) > 3 else "?"
        capeff = int(next((ln.split()[1] for ln in (host.root.read("proc/self/status") or "").splitlines()
                           if ln.startswith("CapEff:")), "0"), 16)
        ipc_lock = bool(capeff >> 14 & 1)
        ok = soft == "unlimited" or ipc_lock
        need = max((p.hugepages_mib for p in plan.processes if p.role == "me"), default=0) if plan else 0
        rows.append(CheckResult(
            "limits:memlock", "pass" if ok else "warn",
            f"{soft if soft == 'unlimited' else f'{int(soft) // 1024} KiB'}" + (", CAP_IPC_LOCK" if ipc_lock else ""),
            "unlimited or CAP_IPC_LOCK",
            "the matching engine locks its memory (mlockall: book, dedup table, rings"
            + (f", {need} MiB of slabs and buffers" if need else "") + "); processes started from this shell "
            + ("can" if ok else "cannot") + "; rsx deploy units set LimitMEMLOCK=infinity"))
    audit = host.cmdarg("audit")
    if audit == "0":
        rows.append(CheckResult("audit:enabled", "pass", "audit=0", None, "kernel auditing is off"))
    else:
        rows.append(CheckResult("audit:enabled", "warn" if host.auditd_pid else "pass",
                                f"auditd pid {host.auditd_pid}" if host.auditd_pid else "no auditd", "audit=0",
                                "with audit rules loaded every system call of every process is matched "
                                "against them (syscall entry and exit work): boot with audit=0, or keep the "
                                "rules off the appliance's user" if host.auditd_pid else
                                "no audit daemon: the kernel keeps no rules (audit=0 makes it certain)"))
    if not host.mitigations:
        rows.append(CheckResult("cpu:mitigations", "unsupported", None, None,
                                "no /sys/devices/system/cpu/vulnerabilities on this kernel"))
    else:
        active = sorted(k for k, v in host.mitigations.items() if v.startswith("Mitigation"))
        vulnerable = sorted(k for k, v in host.mitigations.items() if v.startswith("Vulnerable"))
        rows.append(CheckResult(
            "cpu:mitigations", "pass",
            f"{len(active)} mitigated" + (f", vulnerable: {','.join(vulnerable)}" if vulnerable else "")
            + (f"; cmdline mitigations={host.cmdarg('mitigations')}" if host.cmdarg("mitigations") else ""),
            None,
            "speculative-execution mitigations cost time on every syscall and context switch; "
            "mitigations=off removes it at a security cost no multi-tenant host should take; rsx never changes it"))


def _nic_rows(host: Host, profile: Profile, topo: Topology | None, rows: list[CheckResult]) -> None:
    names = [topo.nic] if topo and topo.nic in host.nics else sorted(host.nics)
    for name in names:
        nic = host.nics[name]
        if nic.node is None and len(host.nodes) > 1:
            rows.append(CheckResult(f"nic:{name}:node", "warn", "unknown (numa_node=-1)", None,
                                    "the kernel does not know the NIC's node; set nic.node in the topology"))
        if nic.xps:
            set_on = [q for q, m in nic.xps.items() if normalize("mask", m)]
            rows.append(CheckResult(f"nic:{name}:xps", "pass",
                                    f"{len(set_on)} of {len(nic.xps)} tx queues mapped", None,
                                    "XPS picks the tx queue from the sending CPU; completions still interrupt "
                                    "the queue's IRQ CPU (housekeeping), so either way is fine for isolation"))
        flows = {q: n for q, n in nic.rfs.items() if n}
        if nic.rfs:
            rows.append(CheckResult(f"nic:{name}:rfs", "warn" if flows else "pass",
                                    f"rps_flow_cnt set on rx queues {','.join(map(str, flows))}" if flows
                                    else "off", "off",
                                    "RFS steers a flow's packet processing to the CPU of its reading thread: "
                                    "the isolated core" + ("; write 0 to rx-*/rps_flow_cnt" if flows else "")))
        if nic.rings is not None:
            r = nic.rings
            rows.append(CheckResult(f"nic:{name}:rings", "pass",
                                    f"rx {r.get('rx')} of {r.get('rx_max')}, tx {r.get('tx')} of {r.get('tx_max')}",
                                    None, "ring sizes: larger absorbs bursts, smaller keeps the cache warm; "
                                    "rsx reports and does not change them (ethtool -G)"))
        else:
            rows.append(CheckResult(f"nic:{name}:rings", "unsupported", None, None,
                                    "ring sizes are read over netlink (ethtool -g) only on the live root"
                                    if not host.root.is_live else
                                    f"{nic.driver or 'the driver'} reports no ring sizes"))
        busy = [q for q, m in nic.rps.items() if normalize("mask", m)]
        rows.append(CheckResult(f"nic:{name}:rps", "warn" if busy else "pass",
                                f"rx queues {','.join(map(str, busy))} steer to other CPUs" if busy else "off",
                                "off", "RPS moves packet processing away from the queue's IRQ CPU"))
        if nic.coalesce is None:
            why = ("ethtool coalescing is read over netlink only on the live root"
                   if not host.root.is_live else f"{nic.driver or 'the driver'} has no coalescing settings")
            rows.append(CheckResult(f"nic:{name}:coalesce", "unsupported", None,
                                    f"rx-usecs <= {profile.nic_rx_usecs}", why))
        else:
            c = nic.coalesce
            adaptive = bool(c.get("use_adaptive_rx_coalesce"))
            usecs = c.get("rx_coalesce_usecs", 0)
            ok = not adaptive and usecs <= profile.nic_rx_usecs
            rows.append(CheckResult(f"nic:{name}:coalesce", "pass" if ok else "warn",
                                    f"adaptive-rx {'on' if adaptive else 'off'} rx-usecs {usecs}",
                                    f"adaptive-rx off rx-usecs <= {profile.nic_rx_usecs}",
                                    "interrupt coalescing delays every packet" +
                                    ("" if ok else f"; advice (not applied): ethtool -C {name} adaptive-rx off "
                                     f"rx-usecs {profile.nic_rx_usecs}")))
