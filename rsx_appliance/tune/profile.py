"""Operator profiles: TOML files (``latency``, ``balanced`` ship in ``profiles/``).

A profile says which roles get isolated cores, how SMT siblings are used, how
many housekeeping cores each node keeps, the hugepage size, the command-line
extras and the wanted value and severity of every runtime knob. Profiles are
found by name in ``$RSX_TUNING_DIR``, ``/etc/rsx/tuning`` (an operator's
copy wins over the shipped one) and the profiles shipped inside this package
(``rsx_appliance/tune/profiles/``), or given as a path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import _toml
from .errors import ProfileError, UnknownKnobError
from .knobs import knob_def

__all__ = ["KnobWant", "Profile", "ROLES", "load_profile", "profile_dirs", "parse_knobs"]

ROLES = ("me", "risk", "gateway", "marketdata", "mark", "recorder")
SHIPPED = Path(__file__).resolve().parent / "profiles"  # package data: works after a plain `pip install .`
SEVERITIES = ("fail", "warn")


@dataclass(frozen=True)
class KnobWant:
    want: str
    severity: str  # "fail" | "warn"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    path: str
    isolate: tuple[str, ...]
    smt: str  # "reserve" | "share"
    housekeeping_cores: int
    mempolicy: str  # "bind" | "preferred"
    helpers: str  # "housekeeping" | "core": where an isolated process's helper threads run
    hugepage_kb: int
    headroom_pct: int
    isolcpus_flags: str
    cmdline_extra: tuple[str, ...]
    max_idle_latency_us: int
    nic_rx_usecs: int
    knobs: dict[str, KnobWant] = field(default_factory=dict)


def profile_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("RSX_TUNING_DIR"):
        dirs.append(Path(os.environ["RSX_TUNING_DIR"]))
    dirs.append(Path("/etc/rsx/tuning"))
    dirs.append(SHIPPED)
    return dirs


def _find(name: str) -> Path:
    if "/" in name or name.endswith(".toml"):
        return Path(name)
    for d in profile_dirs():
        if (d / f"{name}.toml").is_file():
            return d / f"{name}.toml"
    known = sorted({p.stem for d in profile_dirs() if d.is_dir() for p in d.glob("*.toml")})
    raise ProfileError(f"no profile named {name!r} (known: {', '.join(known) or 'none'}; "
                       f"searched {', '.join(map(str, profile_dirs()))})")


def parse_knobs(t: _toml.Table | None, *, allow_plain: bool) -> dict[str, KnobWant]:
    """``[knobs]``: ``id = {want, severity}`` (profiles) or ``id = "value"`` (topology overrides)."""
    out: dict[str, KnobWant] = {}
    if t is None:
        return out
    for key, value in t.data.items():
        t.seen.add(key)
        try:
            kd = knob_def(key)
        except UnknownKnobError as exc:
            raise type(exc)(f"{t.where}: {exc}") from None
        if isinstance(value, (str, int)) and not isinstance(value, bool) and allow_plain:
            out[key] = KnobWant(str(value), "fail")
            continue
        spec = _toml.Table(value, f"{t.where}.{key!r}", t.error)
        want = spec.get("want", (str, int), required=True)
        severity = spec.get("severity", str, "fail")
        spec.done()
        if severity not in SEVERITIES:
            raise spec.fail("severity", f"must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        if want == "housekeeping" and not kd.housekeeping:
            raise spec.fail("want", "'housekeeping' is only meaningful for CPU-mask knobs")
        out[key] = KnobWant(str(want), severity)
    return out


def load_profile(name: str) -> Profile:
    """Load and validate a profile by name or path. Raises :class:`ProfileError` / :class:`UnknownKnobError`."""
    path = _find(name)
    top = _toml.Table(_toml.load(path, ProfileError), str(path), ProfileError)
    version = top.get("version", int, required=True)
    if version != 1:
        raise top.fail("version", f"must be 1, not {version}")
    pname = top.get("name", str, path.stem)
    desc = top.get("description", str, "")
    pl = top.table("placement") or _toml.Table({}, f"{path}.placement", ProfileError)
    isolate = pl.get("isolate", list, ["me"])
    for role in isolate:
        if role not in ROLES:
            raise pl.fail("isolate", f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    smt = pl.get("smt", str, "reserve")
    if smt not in ("reserve", "share"):
        raise pl.fail("smt", f"must be 'reserve' or 'share', not {smt!r}")
    hk = pl.count("housekeeping_cores", 1, minimum=1)
    mempolicy = pl.get("mempolicy", str, "bind")
    if mempolicy not in ("bind", "preferred"):
        raise pl.fail("mempolicy", f"must be 'bind' or 'preferred', not {mempolicy!r}")
    helpers = pl.get("helpers", str, "housekeeping")
    if helpers not in ("housekeeping", "core"):
        raise pl.fail("helpers", f"must be 'housekeeping' or 'core', not {helpers!r}")
    pl.done()
    hp = top.table("hugepages") or _toml.Table({}, f"{path}.hugepages", ProfileError)
    size_kb = hp.get("size_kb", int, 2048)
    if size_kb not in (2048, 1048576):
        raise hp.fail("size_kb", f"must be 2048 or 1048576, not {size_kb}")
    headroom = hp.count("headroom_pct", 25)
    hp.done()
    cl = top.table("cmdline") or _toml.Table({}, f"{path}.cmdline", ProfileError)
    flags = cl.get("isolcpus_flags", str, "managed_irq,domain")
    extra = cl.get("extra", list, [])
    if not all(isinstance(a, str) and a and " " not in a for a in extra):
        raise cl.fail("extra", "must be a list of single kernel arguments (strings without spaces)")
    cl.done()
    lim = top.table("limits") or _toml.Table({}, f"{path}.limits", ProfileError)
    max_idle = lim.count("max_idle_latency_us", 10)
    rx_usecs = lim.count("nic_rx_usecs", 0)
    lim.done()
    knobs = parse_knobs(top.table("knobs"), allow_plain=False)
    top.done()
    return Profile(pname, desc, str(path), tuple(isolate), smt, hk, mempolicy, helpers, size_kb, headroom,
                   flags, tuple(extra), max_idle, rx_usecs, knobs)
