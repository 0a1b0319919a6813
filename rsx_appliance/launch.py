"""Starting `rsx` child processes that run the installed package (specs/cli.md, child processes).

A child started as ``python -c "import rsx_appliance ..."`` or ``python -m ...``
gets the current directory at the front of ``sys.path``: run from a checkout
after ``pip install .``, it imports the source tree (without its compiled
module) instead of the installed package and fails. :func:`rsx_argv` is the
one way to start one: ``-P`` (Python 3.11+) keeps the current directory off
``sys.path``, and ``-m rsx_appliance.cli`` is the `rsx` console script's own
entry point.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["rsx_argv", "rsx_executable"]


def rsx_argv(*args: str) -> list[str]:
    """The argv of ``rsx ARGS...`` in a child process, e.g. ``subprocess.Popen(rsx_argv("dxs", "serve", ...))``."""
    return [sys.executable, "-P", "-m", "rsx_appliance.cli", *map(str, args)]


def rsx_executable() -> str | None:
    """The absolute path of the `rsx` console script of this installation (next to the interpreter, as
    `pip install .` puts it in a venv), else the one on ``$PATH``; None when there is none. For what
    starts `rsx` outside this process tree: the systemd units of `rsx deploy` (specs/deploy.md 1)."""
    here = Path(sys.executable).parent / "rsx"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here.absolute())
    found = shutil.which("rsx")
    return str(Path(found).absolute()) if found else None
