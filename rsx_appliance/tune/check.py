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
from .knobs import CATALOG, normalize, read_only
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
        if kd.kind == "cpufreq":
            govs = {c: cpu.governor for c, cpu in host.cpus.items()}
            if all(g is None for g in govs.values()):
                rows.append(CheckResult(kid, "unsupported", None, want,
                                        "no /sys/devices/system/cpu/cpu*/cpufreq: the frequency is set by "
                                        "firmware or the hypervisor, not by this kernel"))
                continue
            bad = sorted(c for c, g in govs.items() if g is not None and g != want)
            seen = sorted({g for g in govs.values() if g})
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
            rows.append(CheckResult(f"cmdline:{arg['arg']}", "pass" if ok else "warn", arg["current"],
                                    arg["wanted"], "boot-time: add it to the bootloader's kernel command "
                                    "line and reboot" if not ok else "on the kernel command line",
                                    reboot=True))
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
                                "profile command-line argument" + ("" if ok else ": add it and reboot"),
                                reboot=True))


def _irq_rows(host: Host, plan: Plan | None, isolated: list[int], rows: list[CheckResult]) -> None:
    iso = set(isolated)
    if not iso:
        return
    bad = sorted(n for n, irq in host.irqs.items()
                 if irq.affinity is not None and set(irq.affinity) & iso)
    rows.append(CheckResult(
        "isolation:irqs", "fail" if bad else "pass",
        f"IRQs {','.join(map(str, bad))} may run on isolated CPUs" if bad else "none on isolated CPUs",
        f"no IRQ on CPUs {format_list(iso)}",
        "an interrupt on an isolated core stalls the process spinning there"
        + ("; `rsx tune apply` moves the movable ones (managed IRQs need isolcpus=managed_irq)"
           if bad else "")))
    if plan is None:
        return
    nic_irqs = [i for i in plan.irqs if i.nic_queue is not None]
    if nic_irqs:
        wrong = [i.irq for i in nic_irqs if i.current != i.wanted]
        rows.append(CheckResult("isolation:nic-irqs", "warn" if wrong else "pass",
                                f"{len(wrong)} of {len(nic_irqs)} queue IRQs elsewhere" if wrong else
                                "every queue IRQ on its planned CPU",
                                "queue IRQs on housekeeping CPUs of the NIC's node",
                                "NIC queue interrupts belong on the NUMA node of their consumers, off "
                                "isolated cores"))


def run_check(host: Host, profile: Profile, topo: Topology | None = None) -> list[CheckResult]:
    """Every check row for ``host`` under ``profile`` (and the plan of ``topo`` when given)."""
    rows: list[CheckResult] = []
    plan = None
    if topo is not None:
        try:
            plan = make_plan(host, topo, profile)
        except PlanError as exc:
            rows.append(CheckResult("plan", "fail", None, None, str(exc)))
    isolated = plan.isolated if plan else host.isolated
    housekeeping = plan.housekeeping if plan else sorted(set(host.online) - set(host.isolated))
    if plan:
        rows.append(CheckResult("plan", "pass", None, None,
                                f"{len(plan.processes)} processes; isolated CPUs {format_list(plan.isolated) or 'none'}; "
                                f"{len(plan.runtime)} runtime changes pending"))
    _knob_rows(host, profile, topo, housekeeping, rows)
    _cmdline_rows(host, profile, plan, isolated, rows)
    _irq_rows(host, plan, isolated, rows)

    if plan is not None:
        for hp in plan.hugepages:
            ok = hp.current >= hp.needed
            rows.append(CheckResult(f"hugepages:node{hp.node}:{hp.size_kb}kB", "pass" if ok else "fail",
                                    str(hp.current), str(hp.needed),
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
    return rows


def _nic_rows(host: Host, profile: Profile, topo: Topology | None, rows: list[CheckResult]) -> None:
    names = [topo.nic] if topo and topo.nic in host.nics else sorted(host.nics)
    for name in names:
        nic = host.nics[name]
        if nic.node is None and len(host.nodes) > 1:
            rows.append(CheckResult(f"nic:{name}:node", "warn", "unknown (numa_node=-1)", None,
                                    "the kernel does not know the NIC's node; set nic.node in the topology"))
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
