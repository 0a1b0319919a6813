"""Render one bundle per host from the configuration and each host's model (specs/deploy.md 2, 3).

A bundle is a directory that mirrors the target file system (``etc/...``) plus
``bundle.json``, its manifest. :func:`render_host` computes the files in
memory (nothing here reads the clock or the environment, so the same inputs
give the same bytes); :func:`write_bundle` puts them on disk atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, load_config
from ..fsutil import Root, atomic_write, make_dirs, replace_dir
from ..tune.cpus import format_list
from ..tune.host import Host, discover
from ..tune.plan import Plan, ProcessPlan, host_summary, make_plan
from ..tune.profile import Profile, load_profile
from . import units as U
from .errors import DeployError

__all__ = ["Bundle", "BUNDLE_FORMAT", "render", "render_host", "write_bundle", "default_exec", "placement_doc",
           "load_bundle"]

BUNDLE_FORMAT = 1


@dataclass
class Bundle:
    host: str
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path (no leading /) -> (bytes, mode)
    units: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    cmdline: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, path: str, text: str | bytes, mode: int = 0o644) -> None:
        self.files[path] = (text.encode() if isinstance(text, str) else text, mode)

    def manifest(self) -> dict:
        return {"format": BUNDLE_FORMAT, "host": self.host, "processes": self.processes, "units": self.units,
                "cmdline": {"add": self.cmdline.get("add", []), "remove": self.cmdline.get("remove", [])},
                "files": [{"path": p, "mode": f"{m:04o}", "sha256": hashlib.sha256(b).hexdigest()}
                          for p, (b, m) in sorted(self.files.items())],
                "activate": activation(), "notes": self.notes}


def activation() -> list[str]:
    return ["systemd-sysusers /etc/sysusers.d/rsx.conf",
            "systemd-tmpfiles --create /etc/tmpfiles.d/rsx.conf",
            "systemctl daemon-reload",
            "add the arguments of /etc/rsx/kernel-cmdline to the bootloader and reboot (see that file)",
            "systemctl enable --now rsx.target"]


def default_exec() -> str:
    """The `rsx` of this installation (launch.rsx_executable): what the units run unless --exec says."""
    from ..launch import rsx_executable

    found = rsx_executable()
    if found is None:
        raise DeployError("no `rsx` executable next to this interpreter or on $PATH: give --exec PATH")
    return found


def _profile(cfg: Config, bundle: Bundle) -> tuple[str, Profile]:
    """(what the tuning unit names, the profile): a shipped name, or a copy under /etc/rsx/tuning.

    An unknown name or a bad profile is refused now, not at boot. A path is
    relative to the configuration file's directory.
    """
    name = cfg.profile
    if "/" not in name and not name.endswith(".toml"):
        return name, load_profile(name)
    src = Path(name)
    if not src.is_absolute() and cfg.path != "<default>":
        src = Path(cfg.path).absolute().parent / src
    profile = load_profile(str(src))
    bundle.add(f"etc/rsx/tuning/{src.stem}.toml", src.read_bytes())
    return f"{U.ETC}/tuning/{src.stem}.toml", profile


def placement(plan: Plan, name: str, role: str) -> ProcessPlan:
    """The plan's placement of a process. A role the tuning topology does not place (the history store and
    the web console: no hot loop, off the order path) runs on the housekeeping CPUs, preferring node 0's
    memory."""
    return plan.process(name) or ProcessPlan(name, role, list(plan.housekeeping), 0, False, "preferred", None,
                                             None, 0, [], list(plan.housekeeping))


def placement_doc(cfg: Config, host_name: str, host: Host, plan: Plan, profile: str) -> dict:
    """``/etc/rsx/placement.json``: what the units encode, and every process's addresses."""
    def addr(a):
        return None if a is None else f"{a[0]}:{a[1]}"

    mine = {p.name for p in cfg.processes_on(host_name)}
    procs = []
    for spec in cfg.processes_on(host_name):
        pp = placement(plan, spec.name, spec.role)
        procs.append({"name": spec.name, "role": spec.role, "unit": U.unit_name(spec), "cpus": format_list(pp.cpus),
                      "reserved": format_list(pp.reserved), "helpers": format_list(pp.helpers), "node": pp.node,
                      "mempolicy": pp.mempolicy,
                      "isolated": pp.isolated, "hugepages_mib": pp.hugepages_mib,
                      "cmp": addr(spec.cmp), "dxs": addr(spec.dxs), "ws": addr(spec.ws)})
    return {"version": 1, "host": host_name, "address": cfg.host(host_name).address, "profile": profile,
            "model": {"cpus": host_summary(host)["cpus"], "nodes": host_summary(host)["nodes"],
                      "cgroup_cpuset": host.cgroups.cpuset},
            "housekeeping": format_list(plan.housekeeping), "isolated": format_list(plan.isolated),
            "processes": procs,
            "peers": [{"name": p.name, "host": p.host, "cmp": addr(p.cmp), "dxs": addr(p.dxs)}
                      for p in cfg.processes if p.name not in mine],
            "cmdline": {"add": plan.cmdline["add"], "remove": plan.cmdline["remove"]}}


def _cmdline_text(host_name: str, cmdline: dict) -> str:
    add, remove = " ".join(cmdline["add"]), " ".join(cmdline["remove"])
    return "\n".join([
        f"# rsx-appliance: the kernel command line of host {host_name} (rendered by `rsx deploy render`).",
        "# Nothing applies it: a bootloader change is the operator's, and takes effect at the next boot.",
        "", "# add:", add or "# (nothing)", "", "# remove:", remove or "# (nothing)", "",
        "# the whole line, as /proc/cmdline showed it when rendered, with the changes:", cmdline["line"], "",
        "# GRUB (Debian, Ubuntu): append the 'add' arguments to GRUB_CMDLINE_LINUX in /etc/default/grub,",
        "#   remove the 'remove' ones, run update-grub, reboot.",
        f"# GRUB (RHEL, Fedora): grubby --update-kernel=ALL --args=\"{add}\""
        + (f" --remove-args=\"{remove}\"" if remove else "") + ", reboot.",
        "# systemd-boot: edit /etc/kernel/cmdline the same way, run kernel-install (or bootctl update), reboot.",
        ""])


def _tmpfiles(cfg: Config, host_name: str) -> str:
    lines = ["# rsx-appliance: the data layout (specs/deploy.md 3), created by systemd-tmpfiles",
             f"d {U.DATA} 0750 rsx rsx -", f"d {U.DATA}/run 0750 rsx rsx -", f"d {U.DATA}/log 0750 rsx rsx -",
             f"d {U.DATA}/auth 0700 rsx rsx -"]
    dirs = set()
    for p in cfg.processes_on(host_name):
        rel = p.data_dir.relative_to(cfg.data_dir)
        dirs.add(str(rel.parent))
        dirs.add(str(rel))
    lines += [f"d {U.DATA}/{d} 0750 rsx rsx -" for d in sorted(dirs, key=lambda d: (d.count("/"), d))]
    lines += ["# the tuning state (root's) and the placement records the processes write",
              "d /run/rsx 0755 root root -", f"d {U.STATE_DIR} 0755 root root -",
              f"d {U.STATE_DIR}/placements 0775 root rsx -", ""]
    return "\n".join(lines)


def render_host(cfg: Config, config_bytes: bytes, host_name: str, model: Root, exe: str) -> Bundle:
    """The bundle of one host. Raises PlanError (the host cannot hold its processes), DeployError."""
    if not exe.startswith("/"):
        raise DeployError(f"--exec {exe!r} must be an absolute path (systemd runs it as is)")
    host = discover(model)
    multi = len(cfg.hosts) > 1
    b = Bundle(host_name)
    profile_arg, profile = _profile(cfg, b)
    plan = make_plan(host, cfg.topology_for(host_name), profile)
    procs = sorted(cfg.processes_on(host_name), key=lambda p: (U.role_rank(p.role), cfg.processes.index(p)))
    if not procs:
        raise DeployError(f"host {host_name!r} runs no process of {cfg.path}")
    unit_of = {p.name: U.unit_name(p) for p in procs}
    b.units = [U.TUNE_UNIT] + [unit_of[p.name] for p in procs]
    b.processes = [p.name for p in procs]
    b.cmdline = plan.cmdline
    b.notes = list(plan.notes)
    for p in procs:
        after = [unit_of[q.name] for q in procs if U.role_rank(q.role) < U.role_rank(p.role)]
        b.add(f"etc/systemd/system/{unit_of[p.name]}",
              U.process_unit(p, placement(plan, p.name, p.role), exe=exe, backend=cfg.network.cmp_backend, after=after,
                             has_tune=True))
    b.add(f"etc/systemd/system/{U.TUNE_UNIT}",
          U.tune_unit(exe=exe, profile=profile_arg, host=host_name if multi else None,
                      units=[unit_of[p.name] for p in procs]))
    b.add(f"etc/systemd/system/{U.TARGET}", U.target_unit(b.units))
    if plan.isolated:
        b.add("etc/systemd/system.conf.d/50-rsx-cpuaffinity.conf",
              "# rsx-appliance: every service starts on the housekeeping CPUs; the exchange's units set their own\n"
              f"# (tuned cpu-partitioning's [systemd] cpu_affinity; read when systemd starts: reboot)\n"
              f"[Manager]\nCPUAffinity={format_list(plan.housekeeping)}\n")
        b.add("etc/systemd/system/irqbalance.service.d/50-rsx.conf",
              "# rsx-appliance: irqbalance leaves the isolated CPUs alone (irqbalance >= 1.8)\n"
              f"[Service]\nEnvironment=IRQBALANCE_BANNED_CPULIST={format_list(plan.isolated)}\n")
    b.add("etc/rsx/rsx.toml", config_bytes)
    b.add("etc/rsx/placement.json", json.dumps(placement_doc(cfg, host_name, host, plan, profile_arg), indent=1,
                                               sort_keys=True) + "\n")
    b.add("etc/rsx/kernel-cmdline", _cmdline_text(host_name, plan.cmdline))
    b.add("etc/sysusers.d/rsx.conf", "# rsx-appliance: the exchange's system user (no login)\n"
                                     f"u rsx - \"rsx-appliance exchange\" {U.DATA} /usr/sbin/nologin\n")
    b.add("etc/tmpfiles.d/rsx.conf", _tmpfiles(cfg, host_name))
    return b


def write_bundle(out: Path, bundle: Bundle) -> Path:
    """Write ``out/<host>`` atomically: beside it first, then renamed over a previous bundle."""
    make_dirs(out)
    dest = out / bundle.host
    if dest.exists() and not (dest / "bundle.json").is_file():
        raise DeployError(f"{dest} exists and is not a bundle rendered before (no bundle.json): "
                          "choose another --out")
    tmp = Path(tempfile.mkdtemp(prefix=f".{bundle.host}.", dir=out))
    try:
        for rel, (data, mode) in sorted(bundle.files.items()):
            atomic_write(tmp / rel, data, mode=mode, make_parents=True)
        atomic_write(tmp / "bundle.json", json.dumps(bundle.manifest(), indent=1, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def render(config: str | os.PathLike, out: str | os.PathLike, *, hosts: list[str] | None = None,
           host_roots: dict[str, str] | None = None, root: str = "/", exe: str | None = None) -> list[Path]:
    """Render the bundles of ``hosts`` (default: all) into ``out``. See specs/deploy.md 1.

    Every bundle is computed before any is written, so a refusal (a host
    without a model, a plan that does not fit) writes nothing.
    """
    cfg_path = Path(config)
    cfg = load_config(cfg_path, data_dir=U.DATA)
    config_bytes = cfg_path.read_bytes()
    names = [h.name for h in cfg.hosts]
    host_roots = dict(host_roots or {})
    for h in list(host_roots) + list(hosts or []):
        if h not in names:
            raise DeployError(f"{cfg_path}: no host {h!r} (hosts: {', '.join(names)})")
    chosen = hosts or names
    models = {}
    for h in chosen:
        if h in host_roots:
            models[h] = Root(host_roots[h])
        elif len(chosen) == 1:
            models[h] = Root(root)
        else:
            raise DeployError(f"host {h!r}: no host model: give --host-root {h}=DIR (a copy of its /proc and "
                              f"/sys), or render it on that host with --host {h}")
    exe = exe or default_exec()
    bundles = [render_host(cfg, config_bytes, h, models[h], exe) for h in chosen]
    return [write_bundle(Path(out), b) for b in bundles]


def load_bundle(path: str | os.PathLike) -> tuple[Path, dict]:
    """A rendered host bundle and its manifest; checks every file against it."""
    d = Path(path)
    try:
        manifest = json.loads((d / "bundle.json").read_text())
    except FileNotFoundError:
        subs = sorted(p.name for p in d.iterdir() if (p / "bundle.json").is_file()) if d.is_dir() else []
        hint = f" (it holds the bundles of hosts {', '.join(subs)}: give {d}/<host>)" if subs else ""
        raise DeployError(f"{d}: not a bundle (no bundle.json){hint}") from None
    except (OSError, ValueError) as exc:
        raise DeployError(f"{d}/bundle.json: unreadable: {exc}") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise DeployError(f"{d}/bundle.json: format {manifest.get('format')!r}, this rsx reads {BUNDLE_FORMAT}")
    for f in manifest["files"]:
        p = d / f["path"]
        if ".." in Path(f["path"]).parts or Path(f["path"]).is_absolute():
            raise DeployError(f"{d}/bundle.json: {f['path']!r} points outside the bundle")
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise DeployError(f"{p}: {exc.strerror}: the bundle is incomplete") from None
        if hashlib.sha256(data).hexdigest() != f["sha256"]:
            raise DeployError(f"{p}: its SHA-256 does not match bundle.json (changed since rendered): render again")
    return d, manifest
