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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import Root, atomic_write
from .errors import ApplyError, RollbackError, TuneEnvironmentError, TuneInputError
from .knobs import KINDS, Change, normalize, restore_value
from .plan import Plan

__all__ = ["StateStore", "ApplyReport", "RollbackReport", "apply_plan", "rollback", "default_state_dir",
           "STATE_VERSION"]

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
        atomic_write(self.path, json.dumps(state, indent=1) + "\n", mode=0o600, make_parents=True)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass
class ApplyReport:
    executed: bool
    rows: list[dict] = field(default_factory=list)  # {id, path, current, wanted, result}
    previous: "RollbackReport | None" = None
    notes: list[str] = field(default_factory=list)

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


def _entries(root: Root, changes: list[Change]) -> list[dict]:
    """Read every original before anything is written; refuse a stale plan before touching the host."""
    created: list[str] = []
    entries = []
    for ch in changes:
        e = ch.to_dict() | {"done": False, "skipped": None, "inside": None, "original": None}
        parent = next((d for d in created if ch.path.startswith(d + "/")), None)
        if ch.op == "mkdir":
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
    ch = Change(**{k: e[k] for k in Change.__dataclass_fields__})
    if ch.satisfied(root):
        return None
    return root.read(ch.path) or "<unreadable>"


def apply_plan(root: Root, plan: Plan, store: StateStore, *, execute: bool = False,
               only: set[str] | None = None) -> ApplyReport:
    """Dry run (default) or execute the plan's runtime changes. See the module docstring.

    Raises :class:`ApplyError` after rolling back when a write or verify fails
    (``exit_code`` 3 when the kernel said EACCES/EPERM), :class:`RollbackError`
    when a previous state could not be restored first.
    """
    changes = _select(plan, only)
    if not execute:
        report = ApplyReport(False)
        state = store.load()
        if state:
            report.notes.append(f"a previous apply ({state['status']}, {len(state['changes'])} changes) "
                                "would be rolled back first")
        for ch in changes:
            cur = ch.current(root)
            result = "already" if ch.satisfied(root) else "would " + ("create" if ch.op == "mkdir" else "write")
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
        dirs = [c.path for c in changes if c.op == "mkdir"]
        todo = [c for c in changes if c.op == "mkdir" or any(c.path.startswith(d + "/") for d in dirs)
                or not c.satisfied(root)]
        entries = _entries(root, todo)
        state = {"version": STATE_VERSION, "status": "applying", "boot_id": boot_id,
                 "root": str(root.path), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "only": sorted(only) if only else None, "plan": plan.to_dict(), "changes": entries}
        store.save(state)  # the originals are on disk before the first write
        for e in entries:
            try:
                if e["op"] == "mkdir":
                    root.mkdir(e["path"])
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
            report.rows.append({"id": e["id"], "path": "/" + e["path"],
                                "current": e["original"].strip() if e["original"] else None,
                                "wanted": e["wanted"],
                                "result": f"skipped: {e['skipped']}" if e["skipped"] else
                                ("created" if e["op"] == "mkdir" else "written")})
        for ch in changes:
            if ch not in todo:
                report.rows.append({"id": ch.id, "path": "/" + ch.path, "current": ch.wanted,
                                    "wanted": ch.wanted, "result": "already"})
        return report


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
