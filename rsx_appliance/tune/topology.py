"""The topology file: which processes run on this host and where the NIC is (specs/tuning.md 5).

TOML, ``version = 1``. Parsing is strict and host-independent; whether the
host can hold it (the interface exists, the node exists, there are enough
cores) is the planner's question, except for the checks that need the host
and are cheap to make here (:meth:`Topology.validate_for`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import _toml
from .errors import TopologyError
from .profile import ROLES, KnobWant, parse_knobs

__all__ = ["Role", "Topology", "load_topology", "parse_topology"]

_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_DEFAULT_MIB = {"me": (64, 16), "risk": (0, 16), "gateway": (0, 8), "marketdata": (0, 8),
                "mark": (0, 0), "recorder": (0, 8)}


@dataclass(frozen=True)
class Role:
    role: str
    names: tuple[str, ...]  # process names, e.g. me.BTC-PERP, risk.0
    hugepages_mib: int  # per process
    isolate: bool | None  # None: the profile decides
    node: int | str  # "nic" or a node number


@dataclass(frozen=True)
class Topology:
    path: str
    profile: str | None
    nic: str | None
    nic_node: int | None
    roles: tuple[Role, ...]
    knobs: dict[str, KnobWant] = field(default_factory=dict)

    @property
    def processes(self) -> list[tuple[Role, str]]:
        return [(r, n) for r in self.roles for n in r.names]

    def to_dict(self) -> dict:
        return {"path": self.path, "profile": self.profile, "nic": self.nic,
                "roles": [{"role": r.role, "names": list(r.names), "hugepages_mib": r.hugepages_mib,
                           "isolate": r.isolate, "node": r.node} for r in self.roles]}


def _role(top: _toml.Table, role: str, table: str) -> Role:
    t = top.table(table)
    if t is None:  # an absent role table means its defaults: one instance
        if role == "me":
            raise top.fail(table, "is required: a topology without matching engines plans nothing")
        t = _toml.Table({}, f"{top.where}.{table}", TopologyError)
    slab_default, buf_default = _DEFAULT_MIB[role]
    if role == "me":
        symbols = t.get("symbols", list, required=True)
        if not symbols:
            raise t.fail("symbols", "must name at least one symbol")
        for s in symbols:
            if not isinstance(s, str) or not _SYMBOL.fullmatch(s):
                raise t.fail("symbols", f"{s!r} is not a symbol (1-32 of A-Z a-z 0-9 . _ -)")
        dup = sorted({s for s in symbols if symbols.count(s) > 1})
        if dup:
            raise t.fail("symbols", f"duplicate symbol {dup[0]!r}")
        names = tuple(f"me.{s}" for s in symbols)
        mib = t.count("slab_mib", slab_default, minimum=1) + t.count("buffers_mib", buf_default)
    elif role == "risk":
        names = tuple(f"risk.{i}" for i in range(t.count("shards", 1)))
        mib = t.count("buffers_mib", buf_default)
    else:
        names = tuple(f"{role}.{i}" for i in range(t.count("instances", 1)))
        mib = t.count("buffers_mib", buf_default)
    isolate = t.get("isolate", bool, None)
    node = t.get("node", (int, str), "nic")
    if isinstance(node, str) and node != "nic":
        raise t.fail("node", f"must be \"nic\" or a node number, not {node!r}")
    if isinstance(node, int) and node < 0:
        raise t.fail("node", f"must be >= 0, not {node}")
    t.done()
    return Role(role, names, mib, isolate, node)


def parse_topology(data: dict, where: str) -> Topology:
    top = _toml.Table(data, where, TopologyError)
    version = top.get("version", int, required=True)
    if version != 1:
        raise top.fail("version", f"must be 1, not {version}")
    profile = top.get("profile", str, None)
    nic = nic_node = None
    nt = top.table("nic")
    if nt is not None:
        nic = nt.get("interface", str, required=True)
        if not re.fullmatch(r"[^/\s]{1,15}", nic):
            raise nt.fail("interface", f"{nic!r} is not an interface name")
        nic_node = nt.get("node", int, None)
        if nic_node is not None and nic_node < 0:
            raise nt.fail("node", f"must be >= 0, not {nic_node}")
        nt.done()
    roles = []
    for role in ROLES:
        r = _role(top, role, "engines" if role == "me" else role)
        if r.names:
            roles.append(r)
    knobs = parse_knobs(top.table("knobs"), allow_plain=True)
    top.done()
    return Topology(where, profile, nic, nic_node, tuple(roles), knobs)


def load_topology(path: str | Path, host: str | None = None) -> Topology:
    """Parse a topology file, or an exchange configuration (its superset, specs/config.md).

    An exchange configuration is recognised by its ``[[symbols]]``; its topology is
    the one of ``host`` (needed when the file places roles on several hosts) and
    its profile the configuration's. Raises :class:`TopologyError` (or
    UnknownKnobError) naming the file, the key and the problem.
    """
    path = Path(path)
    data = _toml.load(path, TopologyError)
    if "symbols" not in data:
        if host is not None:
            raise TopologyError(f"{path}: --host {host!r} needs an exchange configuration with [hosts]; "
                                "a topology file describes one host")
        return parse_topology(data, str(path))
    from ..config import parse_config
    from ..errors import ConfigError

    try:
        cfg = parse_config(data, str(path), data_dir="/nonexistent", file_dir=path.absolute().parent)
        if host is None:
            if len(cfg.hosts) > 1:
                raise TopologyError(f"{path}: the configuration places roles on hosts "
                                    f"{', '.join(h.name for h in cfg.hosts)}: give --host NAME")
            host = cfg.hosts[0].name
        return cfg.topology_for(host)
    except ConfigError as exc:
        raise TopologyError(str(exc)) from None
