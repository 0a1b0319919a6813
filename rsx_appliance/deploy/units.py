"""The systemd unit files of one host (specs/deploy.md section 4).

Pure text from data: :func:`process_unit`, :func:`tune_unit` and
:func:`target_unit` take what the bundle decided (the configuration's
processes, the tuning plan's placement, the ``rsx`` executable) and return
the unit file's text, deterministically, so rendering twice gives the same
bytes. What each process may do is stated once, in :func:`capabilities`, from
what its code really does.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..config import PROCESS_ORDER, ProcessSpec
from ..launch import UnknownRole, process_args
from ..tune.cpus import format_list
from ..tune.knobs import KINDS
from ..tune.plan import ProcessPlan
from .errors import DeployError

__all__ = ["ETC", "DATA", "STATE_DIR", "CONFIG", "TUNE_UNIT", "TARGET", "DEPLOY_KINDS", "unit_name",
           "command", "capabilities", "process_unit", "tune_unit", "target_unit",
           "tune_capabilities"]

ETC = "/etc/rsx"
CONFIG = f"{ETC}/rsx.toml"
DATA = "/var/lib/rsx"
STATE_DIR = "/run/rsx/tune"
TUNE_UNIT = "rsx-tune.service"
TARGET = "rsx.target"
USER = "rsx"
# a deployed box isolates at boot; cgroups the processes could not join are left to `rsx tune` by hand (4.1)
DEPLOY_KINDS = tuple(k for k in KINDS if k not in ("cpuset", "tasks"))
_WAL_ROLES = ("me", "risk", "mark")  # they fsync a write-ahead log
_ORDER_PATH = ("risk", "gateway")  # on the order path besides the ME


def unit_name(proc: ProcessSpec) -> str:
    """``me.BTC-PERP`` -> ``rsx-me-BTC-PERP.service``."""
    return f"rsx-{proc.role}-{proc.name.split('.', 1)[1]}.service"


def command(proc: ProcessSpec) -> list[str]:
    """The subcommand that runs the process (the table `rsx up` uses too: launch.process_args)."""
    try:
        args = process_args(proc)
    except UnknownRole as exc:
        raise DeployError(f"{exc} (specs/deploy.md 4.2)") from None
    return args + ["--config", CONFIG, "--data", DATA]


@dataclass(frozen=True)
class Privileges:
    capabilities: tuple[str, ...]
    memlock: str  # LimitMEMLOCK=
    families: tuple[str, ...]  # RestrictAddressFamilies=
    why: tuple[str, ...]


def capabilities(proc: ProcessSpec, backend: str) -> Privileges:
    """What the process may do, from what its code does (specs/deploy.md 4.3)."""
    caps: list[str] = []
    why: list[str] = []
    memlock = "8M"
    families = ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"]
    if proc.role == "me":
        memlock = "infinity"
        why.append("mlockall(MCL_CURRENT) of the book, dedup table and rings: LimitMEMLOCK, not CAP_IPC_LOCK")
    if backend == "xdp" and proc.cmp is not None:
        caps += ["CAP_NET_RAW", "CAP_BPF", "CAP_NET_ADMIN"]
        memlock = "infinity"
        families.append("AF_XDP")
        why.append("AF_XDP socket (CAP_NET_RAW), XDP program and XSKMAP (CAP_BPF, CAP_NET_ADMIN), UMEM pinning "
                   "(LimitMEMLOCK)")
    if proc.ws is not None and proc.ws[1] < 1024:
        caps.append("CAP_NET_BIND_SERVICE")
        why.append(f"public port {proc.ws[1]} < 1024")
    return Privileges(tuple(sorted(set(caps))), memlock, tuple(families), tuple(why))


def tune_capabilities(kinds) -> tuple[str, ...]:
    """What `rsx tune apply --execute` needs for these kinds as uid 0 (specs/deploy.md 4.1)."""
    caps = set()
    if "sysctl" in kinds:
        caps.add("CAP_SYS_ADMIN")  # the kernel.numa_balancing handler checks it
    if "rps" in kinds:
        caps.add("CAP_NET_ADMIN")  # rps_cpus' store checks it
    if "cpuset" in kinds or "tasks" in kinds:
        caps.add("CAP_SYS_NICE")  # moving another user's task into a cpuset is a setscheduler check
    return tuple(sorted(caps))


def _unit(sections: list[tuple[str, list[tuple[str, str] | str]]]) -> str:
    out = []
    for name, entries in sections:
        out.append(f"[{name}]")
        for e in entries:
            out.append(e if isinstance(e, str) else f"{e[0]}={e[1]}")
        out.append("")
    return "\n".join(out)


_HARDENING = [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
              ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("ProtectKernelModules", "yes"),
              ("ProtectKernelLogs", "yes"), ("ProtectClock", "yes"), ("ProtectHostname", "yes"),
              ("RestrictNamespaces", "yes"), ("RestrictSUIDSGID", "yes"), ("LockPersonality", "yes"),
              ("SystemCallArchitectures", "native"), ("UMask", "0027")]


def _caps(caps) -> list[tuple[str, str]]:
    return [("CapabilityBoundingSet", " ".join(caps)), ("AmbientCapabilities", " ".join(caps))]


def process_unit(proc: ProcessSpec, place: ProcessPlan, *, exe: str, backend: str, after: list[str],
                 has_tune: bool) -> str:
    """The unit of one process (specs/deploy.md 4.2)."""
    priv = capabilities(proc, backend)
    argv = shlex.join([exe, *command(proc)])
    nice = -10 if place.isolated else (-5 if proc.role in _ORDER_PATH else 0)
    unit: list = [("Description", f"rsx-appliance {proc.name}"), ("PartOf", TARGET)]
    if has_tune:
        unit.append(("Requires", TUNE_UNIT))
    unit += [("After", " ".join([TUNE_UNIT] * has_tune + ["network-online.target"] + after)),
             ("Wants", "network-online.target"), ("StartLimitIntervalSec", "60"), ("StartLimitBurst", "10")]
    service: list = [
        "# what the process runs (specs/config.md) and when it is ready: its status file says so",
        ("Type", "exec"), ("User", USER), ("Group", USER), ("ExecStart", argv),
        ("ExecStartPost", shlex.join([exe, "deploy", "wait-ready", "--process", proc.name, "--data", DATA,
                                      "--timeout", "120"]) + " --pid $MAINPID"),
        ("Restart", "always"), ("RestartSec", "1s"), ("TimeoutStartSec", "180"), ("TimeoutStopSec", "30"),
        ("KillMode", "mixed"),
        ("Environment", f"RSX_TUNE_STATE_DIR={STATE_DIR}"), ("Environment", "PYTHONUNBUFFERED=1"),
        f"# placement from the tuning plan: {'an isolated core' if place.isolated else 'housekeeping CPUs'}"
        f" on node {place.node}; helper threads on CPUs {format_list(place.helpers) or '-'}",
        ("CPUAffinity", format_list(place.cpus)),
        ("NUMAPolicy", place.mempolicy), ("NUMAMask", str(place.node)),
        ("Nice", str(nice)),
    ]
    if proc.role in _WAL_ROLES:
        service += [("IOSchedulingClass", "best-effort"), ("IOSchedulingPriority", "0")]
    service.append(f"# privileges: {'; '.join(priv.why) or 'none needed'}")
    service.append(("LimitMEMLOCK", priv.memlock))
    service += _caps(priv.capabilities)
    service += _HARDENING + [
        ("ProtectKernelTunables", "yes"), ("ProtectControlGroups", "yes"), ("RestrictRealtime", "yes"),
        ("RestrictAddressFamilies", " ".join(priv.families)),
        ("StateDirectory", "rsx"), ("StateDirectoryMode", "0750"), ("ConfigurationDirectory", "rsx"),
        ("ReadWritePaths", f"-{STATE_DIR}/placements")]
    return _unit([("Unit", unit), ("Service", service), ("Install", [("WantedBy", TARGET)])])


def tune_unit(*, exe: str, profile: str, host: str | None, units: list[str]) -> str:
    """The unit that applies the tuning plan before the exchange and rolls it back after (4.1)."""
    host_args = ["--host", host] if host else []
    kinds = ",".join(DEPLOY_KINDS)
    apply = [exe, "tune", "apply", "--topology", CONFIG, *host_args, "--profile", profile, "--only", kinds,
             "--state-dir", STATE_DIR, "--execute"]
    caps = tune_capabilities(DEPLOY_KINDS)
    service: list = [
        ("Type", "oneshot"), ("RemainAfterExit", "yes"), ("User", "root"),
        "# refuse to tune (and so to start the exchange) when the host no longer matches the bundle",
        ("ExecStartPre", shlex.join([exe, "deploy", "check", "--root", "/", "--no-verify", "--placement-only"])),
        ("ExecStart", shlex.join(apply)),
        ("ExecStop", shlex.join([exe, "tune", "rollback", "--state-dir", STATE_DIR])),
        ("Environment", "PYTHONUNBUFFERED=1"),
        f"# {', '.join(caps)}: what writing the {kinds} knobs needs as uid 0 (specs/deploy.md 4.1)",
        *_caps(caps), *_HARDENING, ("ReadWritePaths", "/run/rsx")]
    unit = [("Description", "rsx-appliance: host tuning for the exchange (specs/tuning.md)"),
            ("PartOf", TARGET), ("Before", " ".join([TARGET, *units])),
            ("After", "local-fs.target systemd-tmpfiles-setup.service")]
    return _unit([("Unit", unit), ("Service", service), ("Install", [("WantedBy", TARGET)])])


def target_unit(units: list[str]) -> str:
    """The exchange: every unit of the host, pulled in by Wants= (no enable symlinks, specs/deploy.md 4.4)."""
    return _unit([("Unit", [("Description", "rsx-appliance: the exchange"), ("Wants", " ".join(units)),
                            ("After", " ".join(units))]),
                  ("Install", [("WantedBy", "multi-user.target")])])


def role_rank(role: str) -> int:
    """Start order of a role (specs/config.md 5): PROCESS_ORDER, then any other role."""
    return PROCESS_ORDER.index(role) if role in PROCESS_ORDER else len(PROCESS_ORDER)
