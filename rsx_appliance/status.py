"""Status files: ``D/run/<process>.json``, written atomically (specs/config.md, "Status files")."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .fsutil import atomic_write

__all__ = ["StatusFile"]


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
