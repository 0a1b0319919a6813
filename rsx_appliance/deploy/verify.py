"""`rsx deploy check`: the units pass systemd-analyze, and the bundle still fits the host (specs/deploy.md 6).

Read-only. Rows like ``rsx tune check``: ``id``, ``status`` (pass, warn,
fail, unsupported), ``detail``. A bundle is checked where it was rendered
(``--bundle DIR``) or where it was installed (``--root ROOT``: ``ROOT/etc/rsx``
and ``ROOT/etc/systemd/system``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import load_config
from ..errors import RsxError
from ..fsutil import Root
from ..tune.apply import StateStore, default_state_dir, original_view
from ..tune.cpus import format_list, parse_list
from ..tune.host import discover
from ..tune.plan import host_summary, make_plan
from .bundle import placement
from ..tune.profile import load_profile
from . import units as U
from .errors import DeployError

__all__ = ["Row", "check", "verify_units", "SYSTEMD_ANALYZE_PACKAGE"]

SYSTEMD_ANALYZE_PACKAGE = "systemd"  # the Debian package that ships systemd-analyze


@dataclass(frozen=True)
class Row:
    id: str
    status: str
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def verify_units(files: list[Path]) -> Row:
    """``systemd-analyze verify`` on the unit files: nothing printed about them and exit 0 is a pass."""
    exe = shutil.which("systemd-analyze")
    if exe is None:
        return Row("units:verify", "unsupported", "systemd-analyze is not installed (Debian package "
                                                  f"{SYSTEMD_ANALYZE_PACKAGE!r}): the units were not verified")
    try:
        out = subprocess.run([exe, "verify", *map(str, files)], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Row("units:verify", "fail", f"systemd-analyze verify did not run: {exc}")
    names = {f.name for f in files}
    said = [ln for ln in (out.stdout + out.stderr).splitlines()
            if ln.strip() and any(n in ln for n in names)]
    if out.returncode != 0 or said:
        return Row("units:verify", "fail", "; ".join(said or (out.stdout + out.stderr).splitlines()[-3:])
                   or f"systemd-analyze verify exited {out.returncode}")
    return Row("units:verify", "pass", f"systemd-analyze verify: {len(files)} units, no complaint")


def _where(bundle: str | None, root: str | None) -> tuple[Path, Path]:
    """(the etc/rsx directory, the etc/systemd/system directory) of a bundle or an installed root."""
    base = Path(bundle if bundle is not None else (root or "/"))
    if bundle is not None and not (base / "bundle.json").is_file():
        raise DeployError(f"{base}: not a bundle (no bundle.json)")
    etc = base / U.ETC.lstrip("/")
    if not (etc / "placement.json").is_file():
        raise DeployError(f"{etc}/placement.json: absent: nothing rendered or installed there")
    return etc, base / "etc/systemd/system"


def check(*, bundle: str | None = None, root: str | None = None, host_root: str = "/", verify: bool = True,
          placement_only: bool = False) -> list[Row]:
    """Every row of ``rsx deploy check``. Raises DeployError when there is no bundle to check."""
    etc, systemd = _where(bundle, root)
    placed = json.loads((etc / "placement.json").read_text())
    rows: list[Row] = []
    if verify and not placement_only:
        units = sorted(systemd.glob("rsx*.service")) + sorted(systemd.glob("rsx.target"))
        rows.append(verify_units(units) if units else Row("units:verify", "fail", f"no rsx units in {systemd}"))
    rows += _placement_rows(etc, placed, host_root)
    if placement_only:
        return rows
    if root is not None and bundle is None:
        rows.append(_secret_row(etc, Path(root)))
    if Root(host_root).is_live and placed.get("peers"):
        rows.append(_address_row(placed))
    return rows


def _placement_rows(etc: Path, placed: dict, host_root: str) -> list[Row]:
    rows = []
    try:
        model = Root(host_root)
        host = discover(model)
        cfg = load_config(etc / "rsx.toml", data_dir=U.DATA)
        profile = placed["profile"]  # a shipped name, or /etc/rsx/tuning/<name>.toml (in this bundle or root)
        prof = load_profile(str(etc / profile[len(U.ETC) + 1:]) if profile.startswith(U.ETC + "/") else profile)
        view = original_view(model, StateStore(default_state_dir(model)))
        plan_host = host if view is model else discover(view)
        plan = make_plan(plan_host, cfg.topology_for(placed["host"]), prof)
    except RsxError as exc:
        return [Row("placement:host", "fail", f"cannot plan this host from {etc}/rsx.toml: {exc}")]
    summary = host_summary(host)
    model_now = {"cpus": summary["cpus"], "nodes": summary["nodes"]}
    model_then = {k: placed["model"][k] for k in ("cpus", "nodes")}
    def text(m: dict) -> str:
        return f"CPUs {m['cpus']}, nodes " + "; ".join(f"{n}: {c}" for n, c in sorted(m["nodes"].items()))

    rows.append(Row("placement:host", "pass" if model_now == model_then else "fail",
                    text(model_now) if model_now == model_then else
                    f"rendered for {text(model_then)}; this host has {text(model_now)}: render again on it"))
    cores: dict[tuple, str] = {}
    for p in placed["processes"]:
        fresh = placement(plan, p["name"], p["role"])
        want = {"cpus": p["cpus"], "helpers": p["helpers"], "node": p["node"], "mempolicy": p["mempolicy"]}
        have = None if fresh is None else {"cpus": format_list(fresh.cpus), "helpers": format_list(fresh.helpers),
                                           "node": fresh.node, "mempolicy": fresh.mempolicy}
        problems = []
        if have != want:
            problems.append(f"the units say {want}, a plan of this host now says "
                            f"{have if have else 'no such process'}: render again")
        if p["isolated"]:
            for c in parse_list(p["cpus"]):
                core = tuple(host.cpus[c].siblings) if c in host.cpus else (c,)
                if core in cores:
                    problems.append(f"shares isolated core {format_list(core)} with {cores[core]}")
                cores[core] = p["name"]
        rows.append(Row(f"placement:{p['name']}", "fail" if problems else "pass",
                        "; ".join(problems) or f"CPUs {p['cpus']} (helpers {p['helpers']}), node {p['node']}, "
                                               f"{p['mempolicy']}"))
    return rows


def _secret_row(etc: Path, root: Path) -> Row:
    cfg = load_config(etc / "rsx.toml", data_dir=U.DATA)
    if cfg.auth.algorithm != "HS256":
        key = cfg.resolve(cfg.auth.public_key_file)
        ok = (root / str(key).lstrip("/")).is_file()
        return Row("auth:secret", "pass" if ok else "warn", f"{key}: " + ("present" if ok else "absent"))
    path = cfg.resolve(cfg.auth.secret_file)
    full = root / str(path).lstrip("/")
    if not full.is_file():
        return Row("auth:secret", "pass", f"{path} is absent: the gateway creates it (32 random bytes, "
                                          "mode 0600) when it first starts")
    mode = full.stat().st_mode & 0o777
    return Row("auth:secret", "pass" if mode == 0o600 else "fail",
               f"{path}: mode {mode:04o}" + ("" if mode == 0o600 else ": must be 0600"))


def _address_row(placed: dict) -> Row:
    import psutil

    mine = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    addr = placed["address"]
    return Row("host:address", "pass" if addr in mine else "fail",
               f"{addr} is configured here" if addr in mine else
               f"{addr} (host {placed['host']}'s CMP address) is on no interface of this machine: wrong host, "
               "or the private network is not up")

