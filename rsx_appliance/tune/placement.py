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
from dataclasses import asdict, dataclass, field

from ..fsutil import Root, atomic_write
from .apply import StateStore, default_state_dir
from .cpus import parse_list
from .errors import PlacementError
from .plan import ProcessPlan

__all__ = ["Placement", "lookup", "place", "place_thread", "preexec", "placements", "live_view", "MEMPOLICY"]

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
    helpers: list[int] = field(default_factory=list)


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


def _cgroup_of(root: Root, pid: int, v2: bool) -> str | None:
    """The process's cgroup in the cpuset hierarchy (``/`` = its root), from /proc/PID/cgroup."""
    for line in (root.read(f"proc/{pid}/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and ((v2 and parts[0] == "0") or (not v2 and "cpuset" in parts[1].split(","))):
            return parts[2]
    return None


def _mount_of(plan: ProcessPlan) -> tuple[str, bool] | None:
    """(cpuset mount relative to the root, is v2) of the plan's cpuset."""
    if not plan.cpuset or not plan.cgroup_procs:
        return None
    return plan.cpuset.rsplit("/rsx/", 1)[0], plan.cgroup_procs.endswith("cgroup.procs")


def _writable(root: Root, rel: str) -> bool:
    """Whether a file under the root (or the directory it would be created in) can be written."""
    return _dir_writable(root / rel)


def _dir_writable(path) -> bool:
    """Whether files can be created in ``path`` (or in the nearest existing directory above it)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return os.access(path, os.W_OK)


def _record_matches(path, target: int, start_time: float, plan: ProcessPlan, root: Root) -> Placement | None:
    """The placement already recorded for this very process, if it still holds (a second place() call)."""
    import psutil

    try:
        rec = Placement(**json.loads(path.read_text()))
        live = sorted(psutil.Process(target).cpu_affinity())
    except (OSError, ValueError, TypeError, psutil.Error):
        return None
    if rec.start_time != start_time or live != sorted(plan.cpus):
        return None
    mount = _mount_of(plan)
    if mount and _cgroup_of(root, target, mount[1]) != "/" + plan.cpuset[len(mount[0]) + 1:]:
        return None
    return rec


def place(name: str, pid: int = 0, *, state_dir: str | os.PathLike | None = None,
          root: str | Root = "/") -> Placement:
    """Apply the plan's placement for ``name`` to ``pid`` (0: the calling process). See the module doc.

    All or nothing: every step is checked first (the process, the permission to
    set its affinity, the cgroup file to join, the CPUs its cgroup allows, the
    node, the record directory), so an unprivileged caller gets one
    :class:`PlacementError` naming what it may not do and nothing changed; a
    step that still fails undoes the steps before it. On success the record
    ``placements/<name>.<pid>.json`` is written. Calling it again for a process
    already placed changes nothing and returns the record.
    """
    import psutil

    from .._native import lib

    root = root if isinstance(root, Root) else Root(root)
    plan = lookup(name, state_dir=state_dir, root=root)
    me = os.getpid()
    target = pid or me
    try:
        proc = psutil.Process(target)
        start_time = proc.create_time()
        before_cpus = proc.cpu_affinity()
    except psutil.Error as exc:
        raise PlacementError(f"cannot place {name}: process {target}: {exc}") from None
    d = _store(state_dir, root).dir / "placements"
    record = d / f"{name}.{target}.json"
    again = _record_matches(record, target, start_time, plan, root)
    if again is not None:
        return again

    # -- check every step before changing anything ------------------------------------------
    cant = []
    try:
        proc.cpu_affinity(before_cpus)  # a no-op that needs the same permission as the real change
    except psutil.AccessDenied:
        cant.append(f"set the CPU affinity of pid {target} (another user's process: needs CAP_SYS_NICE)")
    except psutil.Error as exc:
        cant.append(f"set the CPU affinity of pid {target}: {exc}")
    mount = _mount_of(plan)
    old_cgroup = None
    if mount:
        old_cgroup = _cgroup_of(root, target, mount[1])
        member = old_cgroup == "/" + plan.cpuset[len(mount[0]) + 1:]
        if not member and not root.exists(plan.cgroup_procs):
            cant.append(f"join its cpuset: /{plan.cgroup_procs} does not exist (is the plan applied?)")
        elif not member and not _writable(root, plan.cgroup_procs):
            cant.append(f"join its cpuset: /{plan.cgroup_procs} is not writable by uid {os.geteuid()} "
                        "(root's; or read-only in this service's sandbox)")
    offline = sorted(set(plan.cpus) - set(range(os.cpu_count() or 1)))
    if offline:
        cant.append(f"run on CPUs {offline}: this machine has {os.cpu_count()} CPUs")
    if target == me and not os.path.isdir(f"/sys/devices/system/node/node{plan.node}") \
            and os.path.isdir("/sys/devices/system/node"):
        cant.append(f"bind its memory to node {plan.node}: this machine has no such NUMA node")
    if not _dir_writable(d):
        cant.append(f"record the placement: {d} is not writable by uid {os.geteuid()}")
    if cant:
        raise PlacementError(f"cannot place {name} (pid {target}); nothing was changed: it may not "
                             + "; nor ".join(cant))

    # -- the steps, each undone if a later one fails -----------------------------------------
    undo: list[tuple[str, Callable[[], None]]] = []

    def fail(step: str, exc: BaseException) -> PlacementError:
        left = []
        for what, action in reversed(undo):
            try:
                action()
            except (OSError, psutil.Error) as err:
                left.append(f"{what} ({err})")
        return PlacementError(f"cannot place {name} (pid {target}): {step} failed: {exc}; "
                              + ("every earlier step was undone" if not left
                                 else "could not undo: " + ", ".join(left)))

    if mount and not old_cgroup == "/" + plan.cpuset[len(mount[0]) + 1:]:
        try:
            root.write(plan.cgroup_procs, str(target))
        except OSError as exc:
            raise fail(f"joining /{plan.cpuset}", exc) from None
        if old_cgroup is not None:
            back = f"{mount[0]}{old_cgroup.rstrip('/')}/{'cgroup.procs' if mount[1] else 'tasks'}"
            undo.append((f"back to cgroup {old_cgroup}", lambda: root.write(back, str(target))))
    try:
        proc.cpu_affinity(plan.cpus)
    except (psutil.Error, OSError) as exc:
        raise fail(f"setting CPU affinity {plan.cpus}", exc) from None
    undo.append(("the CPU affinity", lambda: proc.cpu_affinity(before_cpus)))
    applied = False
    if target == me:
        mode, node = ffi_int_pair()
        had = lib.rsx_numa_get_mempolicy(mode, node) == 0
        rc = lib.rsx_numa_set_mempolicy(MEMPOLICY[plan.mempolicy], plan.node)
        if rc < 0:
            raise fail(f"set_mempolicy({plan.mempolicy}, node {plan.node})", OSError(-rc, os.strerror(-rc)))
        if had:
            old_mode, old_node = mode[0], node[0]
            undo.append(("the memory policy",
                         lambda: lib.rsx_numa_set_mempolicy(old_mode, max(old_node, 0))))
        applied = True
    rec = Placement(name, target, start_time, plan.cpus, plan.node, plan.mempolicy, applied, plan.cpuset,
                    plan.helpers)
    try:
        atomic_write(record, json.dumps(asdict(rec)) + "\n", make_parents=True)
    except OSError as exc:
        raise fail(f"writing {record}", exc) from None
    return rec


def ffi_int_pair():
    from .._native import ffi

    return ffi.new("int *"), ffi.new("int *")


def place_thread(name: str, kind: str = "helper", *, state_dir: str | os.PathLike | None = None,
                 root: str | Root = "/") -> list[int]:
    """Pin the calling thread: ``"helper"`` (WAL flusher, receivers, DXS, status) to the plan's
    helper CPUs, ``"hot"`` (the loop) to the process's CPUs. Returns the CPUs.

    A helper thread of a process inside a cgroup v1 cpuset that does not hold
    the helper CPUs first moves (its thread id) to the housekeeping cpuset, or
    the hierarchy's root: that needs root, and an unprivileged caller gets a
    :class:`PlacementError` with nothing changed (deployed units use no cpusets,
    specs/deploy.md 4.1).
    """
    import threading

    if kind not in ("helper", "hot"):
        raise ValueError(f"kind must be 'helper' or 'hot', not {kind!r}")
    root = root if isinstance(root, Root) else Root(root)
    plan = lookup(name, state_dir=state_dir, root=root)
    cpus = plan.cpus if kind == "hot" else (plan.helpers or plan.cpus)
    tid = threading.get_native_id()
    mount = _mount_of(plan)
    if kind == "helper" and mount and not mount[1] and not set(cpus) <= set(plan.cpus + plan.reserved) \
            and not set(cpus) <= set(_cpuset_cpus(root, plan)):
        hk = f"{mount[0]}/rsx-housekeeping/tasks"
        dest = hk if root.exists(hk) else f"{mount[0]}/tasks"
        if not _writable(root, dest):
            raise PlacementError(f"cannot place a helper thread of {name} on CPUs {cpus}: its cpuset "
                                 f"/{plan.cpuset} does not hold them and /{dest} is not writable by uid "
                                 f"{os.geteuid()}; nothing was changed")
        try:
            root.write(dest, str(tid))
        except OSError as exc:
            raise PlacementError(f"cannot move helper thread {tid} of {name} to /{dest}: {exc}") from None
    try:
        os.sched_setaffinity(0, cpus)  # 0: the calling thread
    except OSError as exc:
        raise PlacementError(f"cannot pin a {kind} thread of {name} to CPUs {cpus}: {exc}") from None
    return list(cpus)


def _cpuset_cpus(root: Root, plan: ProcessPlan) -> list[int]:
    return parse_list(root.read(f"{plan.cpuset}/cpuset.cpus") or "")


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
