"""Status files: ``D/run/<process>.json``, written atomically (specs/config.md, "Status files").

:class:`StatusFile` writes one process's file; :func:`read_status_dir` reads
every file of a run directory (the console's operate page, specs/console.md 5.2).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .fsutil import atomic_write

__all__ = ["StatusFile", "read_status_dir"]


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
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:   # removed between the listing and the read
            continue
        except (OSError, ValueError) as exc:
            doc = {"name": path.stem, "state": "unreadable", "error": f"{path.name}: {exc}"}
        out[str(doc.get("name") or path.stem)] = doc
    return out
