"""Status files: ``D/run/<process>.json``, written atomically (specs/config.md, "Status files")."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["StatusFile", "write_atomic"]


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file in the same directory, then rename.

    A reader sees the old or the new content, never a mix. Not fsynced: a status
    file is rewritten every second and describes a live process.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


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
        write_atomic(self.path, json.dumps(doc, default=int).encode())
