"""What every `rsx` command shares (specs/cli.md): the parser, errors, JSON output, progress.

A command module uses these and nothing from another command module:

- :class:`CliError` (exit 2, bad usage or input), :class:`EnvironmentRefused` (exit 3):
  raise them; ``rsx.cli.main`` prints the one error line and exits with the code.
- :func:`command_group` for a command with subcommands, :func:`add_json` for ``--json``.
- :func:`print_json` / :func:`print_json_line` for stdout, :func:`warn` for stderr.
- :func:`existing` to refuse a missing or wrong-kind path before doing anything.
- :class:`Progress`: a progress bar on stderr, drawn only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, TextIO

from ..errors import RsxError

__all__ = [
    "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_ENVIRONMENT", "EXIT_INTERNAL", "EXIT_INTERRUPTED",
    "CliError", "EnvironmentRefused", "RsxArgumentParser", "command_group", "add_config_args", "add_json",
    "print_json",
    "print_json_line", "print_text", "warn", "existing", "wal_input", "Progress", "one_line",
]

EXIT_OK = 0
EXIT_FAILURE = 1        # the command ran and found a failure (a check failed, a stream breaks)
EXIT_USAGE = 2          # bad usage or bad input
EXIT_ENVIRONMENT = 3    # the environment refused (permissions, kernel feature, disk full)
EXIT_INTERNAL = 4       # a bug: an exception nobody expected
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), after an orderly stop


class CliError(RsxError, ValueError):
    """Bad usage or bad input, said in one line (exit 2). ``command`` is set by the parser that saw it."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class EnvironmentRefused(CliError):
    """The machine refused: a permission, a kernel feature, a device (exit 3)."""

    exit_code = EXIT_ENVIRONMENT


def one_line(text: str) -> str:
    """A message on one line (an error line never spans two)."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip()) or "(no message)"


class RsxArgumentParser(argparse.ArgumentParser):
    """argparse with the rsx style: a usage error is one line naming the command, exit 2.

    Every parser (subcommands included, argparse makes them of the parent's class) records its
    ``prog`` ("rsx wal dump") as ``args._command``, so errors raised later name the command too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.set_defaults(_command=self.prog)

    def error(self, message: str):  # type: ignore[override]
        raise CliError(f"{message} (see {self.prog} --help)", command=self.prog)


def command_group(sub: argparse._SubParsersAction, name: str, *, help: str, description: str,
                  **kwargs: Any) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """A command whose work is done by subcommands (``rsx wal``): returns (parser, their subparsers).

    Run without a subcommand it fails with one line listing them (exit 2).
    """
    parser = sub.add_parser(name, help=help, description=description, **kwargs)
    inner = parser.add_subparsers(dest=f"_{name}_command", metavar="COMMAND", title="commands")

    def missing(args: argparse.Namespace) -> int:
        names = list(inner.choices)
        listed = ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1] if names else "none"
        raise CliError(f"missing command: {listed} (see {parser.prog} --help)", command=parser.prog)

    parser.set_defaults(func=missing)
    return parser, inner


def add_config_args(p: argparse.ArgumentParser) -> None:
    """--config and --data, the same on every command that runs or inspects the exchange."""
    p.add_argument("--config", metavar="FILE", help="exchange configuration (default: the embedded demo)")
    p.add_argument("--data", metavar="DIR", help="data directory (default: the file's data_dir, "
                                                  "$RSX_DATA, ./rsx-data)")


def add_json(parser: argparse.ArgumentParser, what: str = "print one JSON object instead of text") -> None:
    parser.add_argument("--json", action="store_true", help=what)


def print_json(obj: Any, stream: TextIO | None = None) -> None:
    """One JSON object on stdout (specs/cli.md: snake_case keys, no NaN)."""
    stream = stream or sys.stdout
    stream.write(json.dumps(obj, indent=2, allow_nan=False, ensure_ascii=False) + "\n")


def print_json_line(obj: Any, stream: TextIO | None = None) -> None:
    """One JSON object on one line (commands that stream records or events)."""
    stream = stream or sys.stdout
    stream.write(json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":")) + "\n")


def print_text(obj: Any, stream: TextIO | None = None, indent: int = 0) -> None:
    """A result object as indented ``key: value`` lines (the text form of a benchmark's JSON)."""
    stream = stream or sys.stdout
    pad = "  " * indent
    for key, value in obj.items():
        if isinstance(value, dict):
            stream.write(f"{pad}{key}:\n")
            print_text(value, stream, indent + 1)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            stream.write(f"{pad}{key}:\n")
            for i, v in enumerate(value):
                stream.write(f"{pad}  - [{i}]\n")
                print_text(v, stream, indent + 2)
        else:
            text = ", ".join(map(_plain, value)) if isinstance(value, list) else _plain(value)
            stream.write(f"{pad}{key}: {text}\n")


def _plain(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 1e15 else f"{v:g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def warn(command: str, message: str) -> None:
    print(f"{command}: warning: {one_line(message)}", file=sys.stderr)


def existing(path: str, kind: str = "any") -> str:
    """``path`` if it exists and is of ``kind`` ("file", "dir" or "any"); else CliError (exit 2)."""
    if not os.path.exists(path):
        raise CliError(f"{path}: no such file or directory")
    if kind == "file" and os.path.isdir(path):
        raise CliError(f"{path}: is a directory, a file is needed")
    if kind == "dir" and not os.path.isdir(path):
        raise CliError(f"{path}: not a directory")
    if not os.access(path, os.R_OK):
        raise EnvironmentRefused(f"{path}: permission denied")
    return path


def wal_input(path: str, stream_id: int = 0) -> str:
    """A PATH `rsx wal` and `rsx risk inspect` can read: a directory holding WAL files, or one WAL file
    (named ``*.wal``, or whose first bytes are a record). Anything else is bad input (CliError):
    a command must not report "no records, nothing wrong" about a text file or an empty directory."""
    existing(path)
    from ..wal import read_file
    from ..wal.tools import stream_files

    if os.path.isdir(path):
        if not stream_files(path, stream_id)[0]:
            raise CliError(f"{path}: not a WAL directory (no <stream>_<seq>_*.wal files in it)")
    elif not path.endswith(".wal") and not len(read_file(path, check_seq=False)):
        raise CliError(f"{path}: not a WAL file (its first bytes are not a record)")
    return path


class Progress:
    """A progress bar on stderr for long work, drawn only when stderr is a terminal.

    ``with Progress("verify", total=n, unit="files") as bar: bar.update(i)``; ``total=None``
    shows a count without a bar. Redrawn at most 10 times a second, erased when done, so
    nothing of it stays in the terminal or reaches a pipe or a log. ``RSX_PROGRESS=0`` turns
    it off.
    """

    def __init__(self, label: str, total: float | None = None, unit: str = "", *,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.label, self.total, self.unit = label, total, unit
        self.done = 0.0
        self.enabled = _isatty(self.stream) and os.environ.get("RSX_PROGRESS", "1") != "0"
        self._t0 = time.monotonic()
        self._drawn = 0.0
        self._width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, done: float, total: float | None = None, label: str | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if label is not None:
            self.label = label
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.1:
            self._drawn = now
            self._draw(now)

    def advance(self, n: float = 1) -> None:
        self.update(self.done + n)

    def _draw(self, now: float) -> None:
        elapsed = f"{now - self._t0:.1f} s"
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            share = min(max(self.done / self.total, 0.0), 1.0)
            bar = "#" * int(share * 24)
            text = (f"{self.label} [{bar:<24}] {share * 100:3.0f}% "
                    f"{_num(self.done)}/{_num(self.total)}{unit}  {elapsed}")
        else:
            text = f"{self.label} {_num(self.done)}{unit}  {elapsed}"
        width = _columns() - 1
        text = text[:width]
        self.stream.write("\r" + text + " " * max(0, self._width - len(text)))
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns() -> int:
    try:
        return os.get_terminal_size(2).columns
    except OSError:
        return 80


def _num(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"
