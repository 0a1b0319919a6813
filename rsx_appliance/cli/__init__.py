"""The `rsx` command (specs/cli.md).

Subcommands live one per module in this package; each module defines
``register(subparsers)``, which adds its parser and sets ``func`` (called with
the parsed args; returns the exit code). Modules are discovered, so adding a
subcommand touches no other file. Import heavy dependencies inside ``func``,
not at module level, to keep `rsx --help` fast. What the modules share is in
``_common`` (errors, ``--json``, progress); a command module never imports
another one.

:func:`main` is the one place an exception becomes an exit code and one line
on stderr (``rsx <command>: error: <message>``), never a traceback:

====  ==================================================================
0     success
1     the command ran and found a failure (a check failed, a stream breaks)
2     bad usage or bad input (unknown option, missing or malformed file)
3     the environment refused (permission, kernel feature, disk full)
4     internal error (a bug; ``RSX_DEBUG=1`` adds the traceback)
130   interrupted by Ctrl-C, after an orderly stop
====  ==================================================================
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from ._common import (EXIT_ENVIRONMENT, EXIT_FAILURE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE,
                      CliError, RsxArgumentParser, one_line)

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_ENVIRONMENT",
           "EXIT_INTERNAL", "EXIT_INTERRUPTED"]

_EPILOG = ("exit codes: 0 success, 1 the command found a failure, 2 bad usage or input, "
           "3 the environment refused, 4 internal error, 130 interrupted. "
           "Add --json to a command for one JSON object on stdout.")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = RsxArgumentParser(
        prog="rsx",
        description="rsx-appliance: a perpetual-futures exchange on one bare-metal Linux box.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"rsx-appliance {__version__}",
                        help="print the package version and exit")
    sub = parser.add_subparsers(dest="_command_name", metavar="COMMAND", title="commands")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}").register(sub)

    def missing(args: argparse.Namespace) -> int:
        raise CliError(f"missing command: one of {', '.join(sub.choices)} (see rsx --help)", command="rsx")

    parser.set_defaults(func=missing)
    return parser


def _error(command: str, message: str) -> None:
    print(f"{command}: error: {one_line(message)}", file=sys.stderr)
    if os.environ.get("RSX_DEBUG") == "1":
        import traceback

        traceback.print_exc()


def _os_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _route_warnings(command: str):
    """Library warnings (the logging module, ``warnings.warn``) as ``rsx <cmd>: warning: ...`` lines.

    Services that log (``-v``) replace this with their own format (``logging.basicConfig(force=True)``).
    Returns a function that puts the previous handlers back (main called in-process, e.g. by tests).
    """
    import logging
    import warnings

    class Line(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kind = "error" if record.levelno >= logging.ERROR else "warning"
            try:
                print(f"{command}: {kind}: {one_line(record.getMessage())}", file=sys.stderr)
            except Exception:  # noqa: BLE001 - a log line must never break the command
                self.handleError(record)

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, warnings.showwarning)
    kept = [h for h in root.handlers if type(h).__module__.startswith("_pytest")]  # pytest's capture stays
    root.handlers = [Line(logging.WARNING), *kept]
    root.setLevel(logging.WARNING)
    warnings.showwarning = lambda message, category, *rest, **kw: print(
        f"{command}: warning: {one_line(str(message))}", file=sys.stderr)

    def restore() -> None:
        root.handlers, level, warnings.showwarning = saved
        root.setLevel(level)

    return restore


def main(argv: list[str] | None = None) -> int:
    from ..errors import RsxError

    command = "rsx"
    restore = None
    try:
        args = build_parser().parse_args(argv)
        command = getattr(args, "_command", "rsx")
        restore = _route_warnings(command)
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except SystemExit:  # --help, --version
        raise
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `rsx ... | head`: the reader is gone, there is nobody left to tell
        _silence_stdout()
        return EXIT_OK
    except CliError as exc:
        _error(exc.command or command, str(exc))
        return exc.exit_code
    except RsxError as exc:
        _error(command, str(exc))
        return getattr(exc, "exit_code", EXIT_USAGE)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        _error(command, _os_message(exc))
        return EXIT_USAGE
    except OSError as exc:  # permissions, ENOSPC, a missing kernel feature
        _error(command, _os_message(exc))
        return EXIT_ENVIRONMENT
    except ValueError as exc:  # a library refused an input value
        _error(command, str(exc))
        return EXIT_USAGE
    except Exception as exc:  # a bug: say so in one line, the traceback on request
        _error(command, f"internal error: {type(exc).__name__}: {exc} (run with RSX_DEBUG=1 for the "
                        "traceback and report it)")
        return EXIT_INTERNAL
    finally:
        if restore is not None:
            restore()


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
