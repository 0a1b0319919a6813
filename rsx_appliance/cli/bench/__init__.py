"""`rsx bench ...`: benchmarks that print JSON.

Each module in this package is one benchmark family (``rsx bench book``,
``rsx bench cmp``, ...) and defines ``register(subparsers)`` like the top-level
subcommands; modules are discovered, so adding one touches no other file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print JSON",
                       description="Benchmarks; each prints one JSON object on stdout.")
    inner = p.add_subparsers(dest="bench", metavar="BENCH")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}").register(inner)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
