"""The `rsx` command.

Subcommands live one per module in this package; each module defines
``register(subparsers)``, which adds its parser and sets ``func`` (called with
the parsed args; returns the exit code). Modules are discovered, so adding a
subcommand touches no other file. Import heavy dependencies inside ``func``,
not at module level, to keep `rsx --help` fast.

Exit codes (specs/cli.md): 0 success, 1 the command ran and found a failure,
2 bad usage or bad input (a typed error), 3 the environment refused
(permissions, missing kernel feature).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rsx",
        description="rsx-appliance: a perpetual-futures exchange on one bare-metal Linux box.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..errors import RsxError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except RsxError as exc:
        print(f"rsx {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USAGE)
    except PermissionError as exc:
        print(f"rsx {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except BrokenPipeError:  # `rsx ... | head`
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
