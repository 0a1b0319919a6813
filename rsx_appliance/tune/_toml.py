"""Strict reading of the small TOML files of this package (profiles, topologies).

Every problem is one exception naming the file, the dotted key and what is
wrong; unknown keys are errors (a misspelt key silently ignored is the worst
kind of tuning bug).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

_TYPE_NAMES = {bool: "a boolean", int: "an integer", str: "a string", list: "a list",
               dict: "a table", float: "a number"}


def load(path: Path, error: type[Exception]) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


class Table:
    """A view of one TOML table that remembers which keys were read, to refuse the rest."""

    def __init__(self, data: Any, where: str, error: type[Exception]) -> None:
        if not isinstance(data, dict):
            raise error(f"{where}: must be a table")
        self.data, self.where, self.error = data, where, error
        self.seen: set[str] = set()

    def fail(self, key: str, problem: str) -> Exception:
        return self.error(f"{self.where}.{key}: {problem}" if key else f"{self.where}: {problem}")

    def get(self, key: str, kind: type | tuple, default: Any = ..., *, required: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if required or default is ...:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; TOML keeps them apart, so do we.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            raise self.fail(key, f"must be {names}, not {value!r}")
        return value

    def count(self, key: str, default: int, minimum: int = 0) -> int:
        value = self.get(key, int, default)
        if value < minimum:
            raise self.fail(key, f"must be >= {minimum}, not {value}")
        return value

    def table(self, key: str) -> Table | None:
        self.seen.add(key)
        if key not in self.data:
            return None
        return Table(self.data[key], f"{self.where}.{key}", self.error)

    def done(self) -> None:
        extra = sorted(set(self.data) - self.seen)
        if extra:
            raise self.fail(extra[0], f"unknown key (known: {', '.join(sorted(self.seen))})")
