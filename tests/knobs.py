"""Change a global kernel knob for the length of a test, and always put it back.

The machines running these tests are shared: a sysctl, the hugepage pool or a
cgroup file changed by a test must be restored even when the test fails, and
two test runs (or two worktrees) touching the same knob must not interleave.
Every change takes an exclusive flock on /tmp/rsx-knob-<name>.lock for as long
as the knob is changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path


def _lock_path(path: Path) -> str:
    return "/tmp/rsx-knob-" + re.sub(r"[^A-Za-z0-9_.-]", "_", str(path)) + ".lock"


@contextlib.contextmanager
def knob(path: str | os.PathLike, value: str | int | None = None) -> Iterator[str]:
    """Hold the lock on a /proc or /sys file, optionally write ``value``; restore on exit.

    Yields the original content (stripped). The original is written back even
    if the body raises.
    """
    path = Path(path)
    with open(_lock_path(path), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        original = path.read_text().strip()
        try:
            if value is not None:
                path.write_text(f"{value}\n")
            yield original
        finally:
            if path.read_text().strip() != original:
                path.write_text(f"{original}\n")


@contextlib.contextmanager
def extra_hugepages(count: int, size_kb: int = 2048) -> Iterator[int]:
    """Reserve ``count`` more hugepages of ``size_kb`` on top of the current pool; restore after.

    Yields how many extra pages the kernel actually granted (it may grant fewer).
    """
    nr = Path(f"/sys/kernel/mm/hugepages/hugepages-{size_kb}kB/nr_hugepages")
    with knob(nr) as original:
        nr.write_text(f"{int(original) + count}\n")
        yield int(nr.read_text()) - int(original)
