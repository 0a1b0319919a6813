"""`rsx bench ...`: benchmarks.

Each module in this package is one benchmark family (``rsx bench book``,
``rsx bench cmp``, ...) and defines ``register(subparsers)`` like the top-level
subcommands; modules are discovered, so adding one touches no other file.
Every benchmark prints a human summary by default and one JSON object with
``--json`` (bench/README.md lists them with their targets), shows a progress
bar on a terminal, and exits 1 only when a run failed its own checks (a
missed speed target is reported, not an error).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

from .._common import command_group


def register(sub: argparse._SubParsersAction) -> None:
    _, inner = command_group(sub, "bench", help="run a benchmark (text, or JSON with --json)",
                             description="Benchmarks of each component, with their targets (bench/README.md). "
                                         "Wall-clock figures on a shared machine are indicative; each benchmark "
                                         "says how it measured.")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}").register(inner)
