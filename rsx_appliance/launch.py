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

import sys

__all__ = ["rsx_argv"]


def rsx_argv(*args: str) -> list[str]:
    """The argv of ``rsx ARGS...`` in a child process, e.g. ``subprocess.Popen(rsx_argv("dxs", "serve", ...))``."""
    return [sys.executable, "-P", "-m", "rsx_appliance.cli", *map(str, args)]
