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

from .errors import ConfigError

__all__ = ["rsx_argv", "rsx_executable", "process_args", "UnknownRole"]


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


class UnknownRole(ConfigError):
    """A configured process whose role has no `rsx` command (exit 2)."""


def process_args(proc) -> list[str]:
    """The `rsx` subcommand that runs configured process ``proc`` (a ``config.ProcessSpec``), without
    ``--config``/``--data``: ``["me", "--symbol", "BTC-PERP"]``, ``["risk", "serve", "--shard", "0"]``.

    The one table of commands (DESIGN.md 11): `rsx up` starts these as its children and `rsx deploy` writes
    them into the systemd units, so both run the same processes the same way (specs/operations.md 1)."""
    suffix = proc.name.split(".", 1)[1]
    if proc.role == "me":
        return ["me", "--symbol", suffix]
    if proc.role == "risk":
        return ["risk", "serve", "--shard", str(proc.index)]
    if proc.role in ("gateway", "marketdata", "mark", "recorder"):
        return [proc.role, "--instance", str(proc.index)]
    if proc.role in ("store", "console"):
        return [proc.role]
    raise UnknownRole(f"{proc.name}: no command is known for role {proc.role!r} (specs/operations.md 1)")
