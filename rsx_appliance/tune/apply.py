"""Apply the plan's runtime changes, remember every original, and put everything back.

tuned's discipline (specs/tuning.md section 7): for every change, **read** the
original bytes, **remember** them in the state file (written and fsynced
before the first write), **write**, **verify** by reading back, and on
rollback **restore** and check the file is byte-identical to what was
remembered. An apply that fails midway rolls back what it did; an apply that
dies midway (kill -9, power cut of the process) leaves ``status = applying``
and the next ``apply`` or ``rollback`` restores every recorded change, so a
host is never left half-tuned.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import Root, atomic_write
from .errors import ApplyError, RollbackError, TuneEnvironmentError, TuneInputError
from .knobs import KINDS, Change, normalize, restore_value
from .plan import Plan

__all__ = ["StateStore", "ApplyReport", "RollbackReport", "apply_plan", "rollback", "default_state_dir",
           "original_view", "STATE_VERSION"]

STATE_VERSION = 1
# The kernel refuses to move managed IRQs (EIO) and some platform IRQs (EPERM, EINVAL):
# those are reported as skipped, never fatal (isolcpus=managed_irq handles them at boot).
_IRQ_REFUSED = (errno.EIO, errno.EPERM, errno.EINVAL)


def default_state_dir(root: Root) -> Path:
    env = os.environ.get("RSX_TUNE_STATE_DIR")
    return Path(env) if env else root / "run/rsx/tune"


class StateStore:
    """``state.json`` and its lock in one directory; every save is atomic (temp, fsync, rename, fsync dir)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)
        self.path = self.dir / "state.json"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock: one apply or rollback at a time on this state directory."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise TuneEnvironmentError(f"cannot use state directory {self.dir}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def load(self) -> dict | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TuneEnvironmentError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            state = json.loads(text)
            if state.get("version") != STATE_VERSION or not isinstance(state.get("changes"), list):
                raise ValueError("unknown version or no changes list")
            return state
        except ValueError as exc:
            raise RollbackError(f"{self.path} is corrupt ({exc}); it lists the original values of a "
                                "previous apply: inspect it, restore by hand, then delete it") from None

    def save(self, state: dict) -> None:
        # world-readable: processes running as another user read their placement from it (specs/deploy.md 3);
        # it holds kernel values anyone can read anyway
        atomic_write(self.path, json.dumps(state, indent=1) + "\n", mode=0o644, make_parents=True)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass
class ApplyReport:
    executed: bool
    rows: list[dict] = field(default_factory=list)  # {id, path, current, wanted, result}
    previous: "RollbackReport | None" = None
    notes: list[str] = field(default_factory=list)
    plan: Plan | None = None  # the plan applied (made after the rollback when given as a function)

    def to_dict(self) -> dict:
        return {"executed": self.executed, "changes": self.rows,
                "previous": self.previous.to_dict() if self.previous else None, "notes": self.notes}


@dataclass
class RollbackReport:
    status: str  # "none" | "restored" | "discarded" | "failed"
    rows: list[dict] = field(default_factory=list)  # {id, path, result}
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"status": self.status, "changes": self.rows, "notes": self.notes}


def _select(plan: Plan, only: set[str] | None) -> list[Change]:
    if only:
        unknown = sorted(only - set(KINDS))
        if unknown:
            raise TuneInputError(f"--only: unknown kind {unknown[0]!r} (kinds: {', '.join(KINDS)})")
    return [c for c in plan.runtime if not only or c.kind in only]


class _OriginalView(Root):
    """The host as it was before a recorded apply: read-only, for planning (specs/tuning.md 7)."""

    def __init__(self, inner: Root, state: dict) -> None:
        super().__init__(inner.path)
        self.inner = inner
        self.originals = {e["path"]: e["original"].encode() for e in state["changes"]
                          if e["op"] == "write" and e.get("original") is not None and not e.get("inside")}
        self.created = [e["path"] for e in state["changes"] if e["op"] == "mkdir"]

    @property
    def is_live(self) -> bool:
        return self.inner.is_live

    def _made(self, rel: str) -> bool:
        rel = rel.lstrip("/")
        return any(rel == d or rel.startswith(d + "/") for d in self.created)

    def read_bytes(self, rel: str) -> bytes | None:
        rel = rel.lstrip("/")
        if rel in self.originals:
            return self.originals[rel]
        return None if self._made(rel) else self.inner.read_bytes(rel)

    def exists(self, rel: str) -> bool:
        return not self._made(rel) and self.inner.exists(rel)

    def is_dir(self, rel: str) -> bool:
        return not self._made(rel) and self.inner.is_dir(rel)

    def listdir(self, rel: str) -> list[str]:
        rel = rel.strip("/")
        return [n for n in self.inner.listdir(rel) if not self._made(f"{rel}/{n}")]

    def realpath(self, rel: str) -> str | None:
        return None if self._made(rel) else self.inner.realpath(rel)

    def writable(self, rel: str) -> bool:
        return self.inner.writable(rel)

    def write(self, rel: str, data: str) -> None:
        raise PermissionError(f"/{rel.lstrip('/')}: the original view of the host is read-only")

    mkdir = rmdir = write


def original_view(root: Root, store: StateStore) -> Root:
    """``root`` as it was before the apply recorded in ``store`` (``root`` itself when there is none).

    Plans are made from it, so a second apply, or one after an interrupted
    apply, plans from the host's original values and not from the values the
    first apply wrote (which would leave out every knob it had already set).
    A state from another boot describes nothing that still holds: ``root``.
    """
    try:
        state = store.load()
    except (RollbackError, TuneEnvironmentError):
        return root  # apply/rollback will report it; a plan from the live values is all we can show
    if state is None or state.get("root") != str(root.path):
        return root
    boot_id = root.read("proc/sys/kernel/random/boot_id")
    if state.get("boot_id") and boot_id and state["boot_id"] != boot_id:
        return root
    return _OriginalView(root, state)


def _applied_plan(plan: Plan, kinds: list[str]) -> dict:
    """The plan as recorded: processes keep their cpuset only when the cpusets were really made."""
    data = plan.to_dict()
    if "cpuset" not in kinds:
        for p in data["processes"]:
            p["cpuset"] = p["cgroup_procs"] = None
    return data


def _entries(root: Root, changes: list[Change]) -> list[dict]:
    """Read every original before anything is written; refuse a stale plan before touching the host."""
    created: list[str] = []
    entries = []
    for ch in changes:
        e = ch.to_dict() | {"done": False, "skipped": None, "inside": None, "original": None}
        parent = next((d for d in created if ch.path.startswith(d + "/")), None)
        if ch.op == "migrate":
            e["inside"] = parent  # the tasks go back when their directory is removed
            e["moved"], e["refused"] = [], []
        elif ch.op == "mkdir":
            if root.exists(ch.path):
                raise ApplyError(f"{ch.id}: /{ch.path} already exists; the plan is stale (plan again)")
            created.append(ch.path)
            e["inside"] = parent
        elif parent is not None:
            e["inside"] = parent  # appears with the directory; removed with it
        else:
            data = root.read_bytes(ch.path)
            if data is None:
                raise ApplyError(f"{ch.id}: /{ch.path} cannot be read (absent or unreadable); "
                                 "nothing was changed")
            e["original"] = data.decode()
        entries.append(e)
    return entries


def _verify(root: Root, e: dict) -> str | None:
    """None when the file holds the wanted value, else what it holds."""
    if e["op"] == "migrate":  # every moved task is in its new cgroup (or has exited)
        there = set((root.read(e["path"]) or "").split())
        lost = [p for p in e["moved"] if str(p) not in there and root.exists(f"proc/{p}")]
        return None if not lost else f"tasks {lost} are not in /{e['path']}"
    ch = Change(**{k: e[k] for k in Change.__dataclass_fields__})
    if ch.satisfied(root):
        return None
    return root.read(ch.path) or "<unreadable>"


def apply_plan(root: Root, plan: Plan | Callable[[], Plan], store: StateStore, *, execute: bool = False,
               only: set[str] | None = None) -> ApplyReport:
    """Dry run (default) or execute the plan's runtime changes. See the module docstring.

    ``plan`` may be a function that makes the plan: it is called after a
    previous apply has been rolled back, so the plan is made from the host's
    original values (specs/tuning.md 7); a plan made while the host was still
    tuned would leave out everything that apply had already set.

    Raises :class:`ApplyError` after rolling back when a write or verify fails
    (``exit_code`` 3 when the kernel said EACCES/EPERM), :class:`RollbackError`
    when a previous state could not be restored first.
    """
    if not execute:
        plan = plan() if callable(plan) else plan
        changes = _select(plan, only)
        report = ApplyReport(False, plan=plan)
        state = store.load()
        if state:
            report.notes.append(f"a previous apply ({state['status']}, {len(state['changes'])} changes) "
                                "would be rolled back first")
        for ch in changes:
            cur = ch.current(root)
            result = "already" if ch.satisfied(root) else "would " + {"mkdir": "create", "migrate": "move tasks"}.get(ch.op, "write")
            report.rows.append({"id": ch.id, "path": "/" + ch.path, "current": cur, "wanted": ch.wanted,
                                "result": result})
        return report

    boot_id = root.read("proc/sys/kernel/random/boot_id")
    with store.lock():
        report = ApplyReport(True)
        previous = store.load()
        if previous is not None:
            report.previous = _rollback_locked(root, store, previous)
            if report.previous.status == "failed":
                raise RollbackError("the previous apply could not be fully rolled back; nothing new "
                                    "was applied: " + "; ".join(r["result"] for r in report.previous.rows
                                                                if r["result"].startswith("failed")))
        if callable(plan):
            plan = plan()
        report.plan = plan
        changes = _select(plan, only)
        dirs = [c.path for c in changes if c.op == "mkdir"]
        todo = [c for c in changes if c.op == "mkdir" or any(c.path.startswith(d + "/") for d in dirs)
                or not c.satisfied(root)]
        entries = _entries(root, todo)
        kinds = sorted(only) if only else list(KINDS)
        state = {"version": STATE_VERSION, "status": "applying", "boot_id": boot_id,
                 "root": str(root.path), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "only": sorted(only) if only else None, "plan": _applied_plan(plan, kinds),
                 "changes": entries}
        store.save(state)  # the originals are on disk before the first write
        for e in entries:
            try:
                if e["op"] == "mkdir":
                    root.mkdir(e["path"])
                elif e["op"] == "migrate":
                    _migrate(root, e)
                else:
                    root.write(e["path"], e["wanted"])
                bad = _verify(root, e)
                if bad is not None:
                    raise ApplyError(f"{e['id']}: wrote {e['wanted']!r} to /{e['path']} but it reads "
                                     f"back {bad!r}" + (" (the kernel granted fewer hugepages than asked: "
                                                        "free memory, or reserve them at boot)"
                                                        if e["kind"] == "hugepages" else ""))
                e["done"] = True
            except OSError as exc:
                if e["optional"] and exc.errno in _IRQ_REFUSED:
                    e["skipped"] = f"kernel refused ({errno.errorcode.get(exc.errno, exc.errno)}): " \
                                   "a managed or fixed IRQ; isolcpus=managed_irq keeps it off isolated CPUs"
                    store.save(state)
                    continue
                fatal = ApplyError(f"{e['id']}: writing /{e['path']} failed: {exc.strerror or exc}; "
                                   "every change made so far was rolled back",
                                   3 if exc.errno in (errno.EACCES, errno.EPERM) else 1)
                _abort(root, store, state, fatal)
            except ApplyError as exc:
                e["done"] = True  # the value changed (partly): restore it too
                _abort(root, store, state, exc)
            store.save(state)
        state["status"] = "applied"
        store.save(state)
        for e in entries:
            result = f"skipped: {e['skipped']}" if e["skipped"] else \
                ("created" if e["op"] == "mkdir" else "written")
            if e["op"] == "migrate":
                result = f"moved {len(e['moved'])} tasks" + (
                    f"; the kernel kept {len(e['refused'])} (pids {', '.join(map(str, e['refused'][:8]))}"
                    f"{' ...' if len(e['refused']) > 8 else ''}: CPU-bound kernel threads)" if e["refused"] else "")
            report.rows.append({"id": e["id"], "path": "/" + e["path"],
                                "current": e["original"].strip() if e["original"] else None,
                                "wanted": e["wanted"], "result": result})
        for ch in changes:
            if ch not in todo:
                report.rows.append({"id": ch.id, "path": "/" + ch.path, "current": ch.wanted,
                                    "wanted": ch.wanted, "result": "already"})
        return report


def _migrate(root: Root, e: dict) -> None:
    """Move every movable task of the cgroup file ``wanted`` into ``path``; a task that exits meanwhile
    (ESRCH) or that the kernel keeps (EINVAL: bound to its CPUs) is left, and recorded."""
    for pid in Change(**{k: e[k] for k in Change.__dataclass_fields__}).tasks(root):
        try:
            root.write(e["path"], str(pid))
            e["moved"].append(pid)
        except OSError as exc:
            if exc.errno not in (errno.ESRCH, errno.EINVAL):
                raise
            if exc.errno == errno.EINVAL:
                e["refused"].append(pid)


def _abort(root: Root, store: StateStore, state: dict, exc: ApplyError) -> None:
    rb = _rollback_locked(root, store, state)
    if rb.status == "failed":
        raise RollbackError(f"{exc}; AND the rollback failed, state kept in {store.path}: "
                            + "; ".join(r["result"] for r in rb.rows if r["result"].startswith("failed")))
    raise exc


def rollback(root: Root, store: StateStore) -> RollbackReport:
    """Restore every change of the applied (or interrupted) state. See the module docstring."""
    with store.lock():
        state = store.load()
        if state is None:
            return RollbackReport("none", notes=["nothing to roll back: no state in " + str(store.dir)])
        return _rollback_locked(root, store, state)


def _restore_write(root: Root, e: dict) -> str:
    original = e["original"]
    if root.read_bytes(e["path"]) == original.encode():
        return "unchanged"
    try:
        root.write(e["path"], restore_value(e["fmt"], original, e["wanted"]))
    except OSError as exc:
        return f"failed: writing /{e['path']}: {exc.strerror or exc}"
    after = root.read_bytes(e["path"])
    if after != original.encode():
        same = normalize(e["fmt"], (after or b"").decode()) == normalize(e["fmt"], original)
        return (f"failed: /{e['path']} reads {after!r}, was {original.encode()!r}"
                + (" (same value, different text)" if same else ""))
    return "restored"


def _remove_dir(root: Root, e: dict) -> str:
    path = e["path"]
    if not root.is_dir(path):
        return "absent"
    parent = path.rsplit("/", 1)[0]
    for procs in ("tasks", "cgroup.procs"):
        pids = (root.read(f"{path}/{procs}") or "").split()
        for pid in pids:
            with contextlib.suppress(OSError):  # the task may have exited meanwhile
                root.write(f"{parent}/{procs}", pid)
        if pids:
            break
    try:
        root.rmdir(path)
    except OSError as exc:
        return f"failed: removing /{path}: {exc.strerror or exc}"
    return "removed"


def _rollback_locked(root: Root, store: StateStore, state: dict) -> RollbackReport:
    if state.get("root") != str(root.path):
        raise TuneInputError(f"{store.path} belongs to root {state.get('root')!r}, not {str(root.path)!r}")
    boot_id = root.read("proc/sys/kernel/random/boot_id")
    if state.get("boot_id") and boot_id and state["boot_id"] != boot_id:
        store.clear()
        return RollbackReport("discarded", notes=[
            f"the state was written in another boot ({state['boot_id']}); runtime changes ended with "
            "that boot, so there is nothing to restore: state discarded"])
    interrupted = state["status"] != "applied"
    state["status"] = "rolling-back"
    store.save(state)
    report = RollbackReport("restored")
    if interrupted:
        report.notes.append("the previous apply was interrupted midway; every recorded change is restored")
    failed = []
    for e in reversed(state["changes"]):
        if e.get("skipped"):
            result = "skipped at apply"
        elif e["op"] == "mkdir":
            result = _remove_dir(root, e)
        elif e["inside"]:
            result = "removed with its directory"
        else:
            result = _restore_write(root, e)
        report.rows.append({"id": e["id"], "path": "/" + e["path"], "result": result})
        if result.startswith("failed"):
            failed.append(e)
    if failed:
        state["changes"] = [e for e in state["changes"] if e in failed]
        store.save(state)
        report.status = "failed"
        return report
    store.clear()
    return report


def state_rows(root: Root, state: dict) -> list[dict]:
    """Every change of the applied plan against the host now, for ``rsx tune show``.

    The changes the apply made (with their original), and the ones the host
    already satisfied then (``already``): both are watched, so a value changed
    behind the plan's back is reported as drift whichever it was.
    """
    kinds = set(state.get("only") or KINDS)
    made = {e["id"]: e for e in state["changes"]}
    rows = []
    planned = [c for c in state["plan"].get("runtime", []) if c["kind"] in kinds]
    for c in planned + [e for e in state["changes"] if e["id"] not in {p["id"] for p in planned}]:
        e = made.get(c["id"])
        ch = Change(**{k: c[k] for k in Change.__dataclass_fields__})
        if e is not None and e.get("skipped"):
            drift, result = False, "skipped"
        elif e is not None and not e["done"]:
            drift, result = False, "pending"
        else:
            drift = ch.op != "migrate" and not ch.satisfied(root)
            result = "ok" if e is not None else "already"
        rows.append({"id": c["id"], "path": "/" + c["path"],
                     "original": e["original"].strip() if e is not None and e.get("original") else None,
                     "wanted": c["wanted"], "current": ch.current(root), "done": e is not None and e["done"],
                     "skipped": e.get("skipped") if e is not None else None, "state": result, "drift": drift})
    return rows
