"""Wait until a process serves: its status file says ``ready`` (specs/config.md, status files).

The units' ``ExecStartPost`` (specs/deploy.md 4.2): systemd's start job ends
only when the process is ready, so ``After=`` orders readiness, as ``rsx up``
does. A ``failed`` status, the process exiting, or the timeout end the wait
with the reason.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import RsxError

__all__ = ["NotReady", "wait_ready"]


class NotReady(RsxError):
    exit_code = 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_ready(data_dir: str | os.PathLike, name: str, *, pid: int | None = None, timeout: float = 120.0,
               poll: float = 0.1) -> dict:
    """The status document once it says ``ready`` (for ``pid`` when given). Raises :class:`NotReady`."""
    path = Path(data_dir) / "run" / f"{name}.json"
    deadline = time.monotonic() + timeout
    last = "no status file yet"
    while True:
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            doc = None
        except (OSError, ValueError) as exc:  # written by rename, so a partial read is a real problem
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
        if pid is not None and not _alive(pid):
            raise NotReady(f"{name} (pid {pid}) exited before it was ready ({last})")
        if time.monotonic() >= deadline:
            raise NotReady(f"{name} not ready after {timeout:g} s ({last}; {path})")
        time.sleep(poll)
