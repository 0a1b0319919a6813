"""The write-ahead log of one stream (specs/wal.md).

Writer: :class:`WalWriter` (group commit in C; durable watermark). Readers:
:func:`read_file` (one file, zero-copy numpy), :class:`WalReader` /
:class:`WalSet` (a directory by seq), :func:`read_tip`. Blocks of records:
:class:`Batch`, :func:`scan`. Consumer registry: :func:`consumer_set`,
:func:`consumer_get`, :func:`consumer_drop`, :func:`consumers`.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from .._native import ffi, lib
from ..codes import ErrorCode
from ..errors import InvalidArgumentError, check
from .block import ENTRY_DTYPE, Batch, Block, ScanResult, Stop, scan
from .reader import (Break, SetInfo, Tip, WalBreakError, WalFile, WalReader, WalSet, read_file,
                     read_tip)
from .writer import WalStats, WalWriter, loss_evidence

__all__ = [
    "ENTRY_DTYPE", "Batch", "Block", "ScanResult", "Stop", "scan", "Break", "SetInfo", "Tip",
    "WalBreakError", "WalFile", "WalReader", "WalSet", "read_file", "read_tip", "WalStats",
    "WalWriter", "consumer_set", "consumer_get", "consumer_drop", "consumers", "consumer_name_ok",
    "Published", "published",
]


@dataclass(frozen=True)
class Published:
    """The highest seq a stream directory says was reported durable (specs/wal.md 2.7)."""

    seq: int             # max of the two below (0 = nothing known)
    tip_seq: int         # the writer tip's durable seq (0 = no tip)
    consumer_seq: int    # the highest position a registered consumer stored (0 = none)
    consumer: str        # ... and its name
    evidence: str        # who said so, in words


def published(directory: str | os.PathLike, stream_id: int) -> Published:
    """What ``directory``'s writer and consumers left as the highest durable seq of ``stream_id``."""
    out = ffi.new("struct rsx_wal_loss *")
    check(lib.rsx_wal_published(os.fsencode(directory), stream_id, out), f"read {directory}")
    return Published(int(out.published_seq), int(out.tip_seq), int(out.consumer_seq),
                     ffi.string(out.consumer).decode(errors="replace"), loss_evidence(out))


def consumer_name_ok(name: str) -> bool:
    """Whether ``name`` may be registered (1..63 of [A-Za-z0-9._-], no leading '.', no '.tmp' end)."""
    try:
        raw = name.encode("ascii")
    except UnicodeEncodeError:
        return False
    return b"\0" not in raw and lib.rsx_wal_consumer_name_check(raw) == 0


def consumer_set(directory: str | os.PathLike, name: str, seq: int) -> None:
    """Register consumer ``name`` (or move it) at ``seq``: retention keeps every seq > seq.

    Raises InvalidArgumentError for a name :func:`consumer_name_ok` refuses.
    """
    if not consumer_name_ok(name):
        raise InvalidArgumentError(ErrorCode.INVALID, f"consumer name {name!r}: 1..63 of A-Z a-z 0-9 . _ -, "
                                                      f"not starting with '.', not ending in '.tmp'")
    check(lib.rsx_wal_consumer_set(os.fsencode(directory), name.encode(), seq),
          f"register consumer {name!r}")


def consumer_get(directory: str | os.PathLike, name: str) -> int | None:
    """The position of consumer ``name`` (any name retention honours), or None if not registered."""
    out = ffi.new("uint64_t *")
    rc = lib.rsx_wal_consumer_get(os.fsencode(directory), os.fsencode(name), out)
    if rc == -errno.ENOENT:
        return None
    check(rc, f"read consumer {name!r}")
    return int(out[0])


def consumer_drop(directory: str | os.PathLike, name: str) -> None:
    """Unregister consumer ``name``; raises FileNotFoundError if it is not registered."""
    check(lib.rsx_wal_consumer_drop(os.fsencode(directory), os.fsencode(name)),
          f"drop consumer {name!r}")


def consumers(directory: str | os.PathLike) -> dict[str, int | None]:
    """Every registered consumer and its position: what retention honours (None = unreadable,
    which holds every file)."""
    d = Path(directory) / "consumers"
    out: dict[str, int | None] = {}
    if d.is_dir():
        for p in sorted(d.iterdir()):
            if p.name.endswith(".tmp"):
                continue
            try:
                out[p.name] = consumer_get(directory, p.name)
            except InvalidArgumentError:
                out[p.name] = None
    return out
