"""Status files: ``D/run/<process>.json``, written atomically (specs/config.md, "Status files").

:class:`StatusFile` writes one process's file; :func:`read_status` reads one,
:func:`read_status_dir` every file of a run directory, and :func:`wait_ready`
waits until a process says it serves: the readiness signal of `rsx up` and of
the deployed units (`rsx deploy wait-ready`, specs/operations.md 1,
specs/deploy.md 4.2). `rsx status` and the console's operate page read them
(specs/console.md 5.2).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from .errors import RsxError
from .fsutil import atomic_write

__all__ = ["StatusFile", "NotReady", "read_status", "read_status_dir", "wait_ready", "pid_alive"]


class StatusFile:
    """The status file of one process: ``write(state, ...)`` on every change and about once a second."""

    def __init__(self, path: str | os.PathLike, name: str, role: str) -> None:
        self.path = Path(path)
        self.name, self.role = name, role
        self.started_ns = time.time_ns()

    def write(self, state: str, *, streams: dict | None = None, counters: dict | None = None,
              error: str | None = None, extra: dict | None = None) -> None:
        doc = {"name": self.name, "pid": os.getpid(), "role": self.role, "state": state,
               "started_ns": self.started_ns, "updated_ns": time.time_ns(),
               "streams": streams or {}, "counters": counters or {}}
        if error:
            doc["error"] = error
        if extra:
            doc.update(extra)
        # not fsynced: rewritten every second, it describes a live process (a reader never sees a mix)
        atomic_write(self.path, json.dumps(doc, default=int), make_parents=True, durable=False)


class NotReady(RsxError):
    """A process did not become ready: it failed, exited, or the time ran out (exit 1)."""

    exit_code = 1


def read_status(path: str | os.PathLike) -> dict | None:
    """One status document; None when the file does not exist. A file that is not a JSON object raises
    ValueError (it is written by rename, so a partial read is a real problem)."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a JSON object")
    return doc


def read_status_dir(run_dir: str | os.PathLike) -> dict[str, dict]:
    """{process name: its status document} for every ``*.json`` in ``run_dir``.

    A file that is not a JSON object (a partial copy from elsewhere, a foreign
    file) is reported as ``{"name", "state": "unreadable", "error"}`` rather
    than skipped. A missing directory is an empty result (nothing has run).
    """
    out: dict[str, dict] = {}
    try:
        paths = sorted(Path(run_dir).glob("*.json"))
    except OSError:
        return out
    for path in paths:
        try:
            doc = read_status(path)
        except (OSError, ValueError) as exc:
            doc = {"name": path.stem, "state": "unreadable", "error": f"{path.name}: {exc}"}
        if doc is None:     # removed between the listing and the read
            continue
        out[str(doc.get("name") or path.stem)] = doc
    return out


def pid_alive(pid: int) -> bool:
    """The process exists (a zombie counts: its parent has not reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_ready(data_dir: str | os.PathLike, name: str, *, pid: int | None = None, timeout: float = 120.0,
               poll: float = 0.1, alive: Callable[[], bool] | None = None) -> dict:
    """The status document of ``name`` once it says ``ready`` (written by ``pid`` when given).

    Raises :class:`NotReady` when it says ``failed``, when the process is gone
    (``alive()`` false, else ``pid`` no longer exists) or after ``timeout`` seconds.
    """
    path = Path(data_dir) / "run" / f"{name}.json"
    deadline = time.monotonic() + timeout
    last = "no status file yet"
    while True:
        try:
            doc = read_status(path)
        except (OSError, ValueError) as exc:
            doc, last = None, f"unreadable status file ({exc})"
        if doc is not None and (pid is None or doc.get("pid") == pid):
            state = doc.get("state")
            if state == "ready":
                return doc
            if state == "failed":
                raise NotReady(f"{name} failed: {doc.get('error') or 'no reason given'}")
            last = f"state {state!r}"
        elif doc is not None:
            last = f"status file of pid {doc.get('pid')}, not {pid}"
        gone = (alive is not None and not alive()) or (alive is None and pid is not None and not pid_alive(pid))
        if gone:
            raise NotReady(f"{name} (pid {pid}) exited before it was ready ({last})")
        if time.monotonic() >= deadline:
            raise NotReady(f"{name} not ready after {timeout:g} s ({last}; {path})")
        time.sleep(poll)
