"""Per-process placement: the plan's CPUs, memory node and cpuset, applied when a process starts.

Later issues call this from every appliance process (or from the launcher)::

    from rsx_appliance.tune import placement
    placement.place("me.BTC-PERP")                    # in the process itself, first thing
    subprocess.Popen(cmd, preexec_fn=placement.preexec("risk.0"))   # from a launcher

:func:`place` reads the applied plan from the state file (specs/tuning.md
section 7), sets the CPU affinity (psutil / sched_setaffinity), the memory
policy (set_mempolicy through the C core: only a process can set its own, so
``pid`` other than the caller gets affinity and cpuset only), joins the
cpuset the plan created, and records ``placements/<name>.<pid>.json`` so that
``rsx tune show`` can compare what was planned with what the process has.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..errors import check
from ..fsutil import Root, atomic_write
from .apply import StateStore, default_state_dir
from .cpus import parse_list
from .errors import PlacementError
from .plan import ProcessPlan

__all__ = ["Placement", "lookup", "place", "preexec", "placements", "live_view", "MEMPOLICY"]

MEMPOLICY = {"default": 0, "preferred": 1, "bind": 2}
_MODE_NAMES = {v: k for k, v in MEMPOLICY.items()}


@dataclass(frozen=True)
class Placement:
    name: str
    pid: int
    start_time: float | None  # psutil create_time: tells a reused pid apart
    cpus: list[int]
    node: int
    mempolicy: str
    mempolicy_applied: bool
    cgroup: str | None


def _store(state_dir, root: Root) -> StateStore:
    return StateStore(state_dir if state_dir is not None else default_state_dir(root))


def lookup(name: str, *, state_dir: str | os.PathLike | None = None, root: str | Root = "/") -> ProcessPlan:
    """The applied plan's entry for ``name``. Raises :class:`PlacementError` when there is none."""
    root = root if isinstance(root, Root) else Root(root)
    store = _store(state_dir, root)
    state = store.load()
    if state is None or state.get("status") != "applied":
        raise PlacementError(f"no applied tuning plan in {store.dir} "
                             + ("" if state is None else f"(state is {state.get('status')!r}) ")
                             + f"to place {name!r}: run `rsx tune apply --execute` first")
    for p in state["plan"]["processes"]:
        if p["name"] == name:
            return ProcessPlan(**p)
    names = ", ".join(p["name"] for p in state["plan"]["processes"])
    raise PlacementError(f"the applied plan has no process {name!r} (it has: {names})")


def place(name: str, pid: int = 0, *, state_dir: str | os.PathLike | None = None,
          root: str | Root = "/") -> Placement:
    """Apply the plan's placement for ``name`` to ``pid`` (0: the calling process). See the module doc."""
    import psutil

    from .._native import lib

    root = root if isinstance(root, Root) else Root(root)
    plan = lookup(name, state_dir=state_dir, root=root)
    me = os.getpid()
    target = pid or me
    proc = psutil.Process(target)
    proc.cpu_affinity(plan.cpus)
    applied = False
    if target == me:
        check(lib.rsx_numa_set_mempolicy(MEMPOLICY[plan.mempolicy], plan.node),
              f"set_mempolicy({plan.mempolicy}, node {plan.node})")
        applied = True
    if plan.cgroup_procs:
        root.write(plan.cgroup_procs, str(target))
    rec = Placement(name, target, proc.create_time(), plan.cpus, plan.node, plan.mempolicy, applied,
                    plan.cpuset)
    d = _store(state_dir, root).dir / "placements"
    atomic_write(d / f"{name}.{target}.json", json.dumps(asdict(rec)) + "\n", make_parents=True)
    return rec


def preexec(name: str, **kwargs) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that places the child before it execs."""

    def _run() -> None:
        place(name, 0, **kwargs)

    return _run


def placements(*, state_dir: str | os.PathLike | None = None, root: str | Root = "/",
               prune: bool = True) -> list[Placement]:
    """Recorded placements of live processes; records of dead (or reused) pids are deleted."""
    import psutil

    root = root if isinstance(root, Root) else Root(root)
    d = _store(state_dir, root).dir / "placements"
    out = []
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            rec = Placement(**json.loads(f.read_text()))
        except (ValueError, TypeError):
            continue
        try:
            alive = psutil.Process(rec.pid).create_time() == rec.start_time
        except psutil.Error:
            alive = False
        if alive:
            out.append(rec)
        elif prune:
            f.unlink(missing_ok=True)
    return out


def live_view(pid: int, root: Root | str = "/") -> dict:
    """What a process has now: CPU affinity, allowed memory nodes, first mapping's NUMA policy, cpuset."""
    import psutil

    root = root if isinstance(root, Root) else Root(root)
    view: dict = {"pid": pid}
    try:
        view["cpus"] = sorted(psutil.Process(pid).cpu_affinity())
    except psutil.Error as exc:
        view["error"] = str(exc)
        return view
    m = re.search(r"Mems_allowed_list:\s*(\S+)", root.read(f"proc/{pid}/status") or "")
    view["mems_allowed"] = parse_list(m.group(1)) if m else None
    first = (root.read(f"proc/{pid}/numa_maps") or "").split("\n", 1)[0].split()
    view["mempolicy"] = first[1] if len(first) > 1 else None
    try:
        cg = (root.read(f"proc/{pid}/cgroup") or "").splitlines()
        view["cpuset"] = next((ln.split(":", 2)[2] for ln in cg
                               if ln.split(":")[1] in ("cpuset", "")), None)
    except IndexError:
        view["cpuset"] = None
    return view
