"""One database connection, SQLite or PostgreSQL, behind the few operations the store needs.

The store speaks one SQL (``?`` placeholders, written for both dialects) and
two bulk paths: ``executemany`` of row tuples (SQLite) and binary ``COPY`` of
fixed-width numpy rows (PostgreSQL). Every driver failure that may pass (the
server is down, the file is locked, the disk is full) becomes
:class:`StoreUnavailableError`, which the writer retries; anything else is a
bug and propagates.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..fsutil import make_dirs
from . import sqlite_native
from .errors import StoreLockedError, StoreUnavailableError

__all__ = ["Database", "DuplicateRowError", "StoreUrl", "parse_url", "open_database", "pg_copy_binary",
           "WRITER_LOCK_KEY"]

#: the writer's SQLite settings, in this order (specs/store.md 4):
#: page_size - 16 KiB pages for a new file (fewer, shallower B-tree pages for the user indexes; no effect
#:   on an existing file); journal_mode=WAL - readers (gateway, rsx history) never block the writer;
#: synchronous=FULL - every commit fsyncs the WAL, so a commit (and the ack that follows it) is on disk;
#: wal_autocheckpoint - checkpoint every 4096 pages (64 MiB) instead of 1000, fewer copies of the same hot
#:   index pages; cache_size - 256 MiB of page cache for the writer
SQLITE_WRITER_PRAGMAS = ("page_size=16384", "journal_mode=WAL", "synchronous=FULL", "wal_autocheckpoint=4096",
                         "cache_size=-262144")
#: pg_advisory_lock key of the one writer per PostgreSQL database ("RSXS")
WRITER_LOCK_KEY = 0x52535853
_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_PG_TRAILER = b"\xff\xff"


@dataclass(frozen=True)
class StoreUrl:
    dialect: str  # "sqlite" or "postgresql"
    target: str  # the SQLite file, or the libpq URI
    url: str

    @property
    def redacted(self) -> str:
        """The URL without its password (for logs and status files)."""
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", self.url)


def parse_url(url: str, base: str | os.PathLike | None = None) -> StoreUrl:
    """``sqlite:PATH`` (relative to ``base`` or the working directory), ``sqlite:///ABS``,
    ``postgresql://...`` or ``postgres://...``; anything else is a ValueError."""
    if url.startswith(("postgresql://", "postgres://")):
        return StoreUrl("postgresql", url, url)
    if url.startswith("sqlite:"):
        path = url[len("sqlite:"):]
        path = path[2:] if path.startswith("///") else path
        if not path or path.startswith("//"):
            raise ValueError(f"{url!r}: no database file")
        p = Path(path)
        if not p.is_absolute():
            p = Path(base or os.getcwd()) / p
        return StoreUrl("sqlite", str(p), f"sqlite:{p}")
    raise ValueError(f"{url!r}: expected sqlite:PATH, sqlite:///ABS/PATH or postgresql://...")


class DuplicateRowError(Exception):
    """A row's key is already in its table (the caller decides: merge instead, or it is a bug)."""


def _unavailable(exc: BaseException, url: StoreUrl) -> StoreUnavailableError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreUnavailableError(f"database {url.redacted}: {first}")


class Database:
    """A connection in autocommit mode; transactions are explicit (:meth:`begin`/:meth:`commit`).

    Thread-confined: use it from the thread that opened it.
    """

    def __init__(self, url: StoreUrl, conn: Any) -> None:
        self.url = url
        self.dialect = url.dialect
        self.conn = conn
        self._lock_fd: int | None = None
        if self.dialect == "postgresql":
            import psycopg

            self._transient = (psycopg.OperationalError, psycopg.errors.DiskFull,
                               psycopg.errors.AdminShutdown, psycopg.errors.LockNotAvailable)
            self._duplicate = (psycopg.errors.UniqueViolation,)
        else:
            self._transient = (sqlite3.OperationalError,)
            self._duplicate = (sqlite3.IntegrityError,)

    # -- statements ---------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except self._duplicate as exc:
            if self.dialect == "sqlite" and "UNIQUE" not in str(exc):
                raise  # NOT NULL, CHECK: a bug
            raise DuplicateRowError(f"{self.url.redacted}: {str(exc).strip().splitlines()[0]}") from exc
        except self._transient as exc:
            raise _unavailable(exc, self.url) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._guard(lambda: self.conn.execute(self._sql(sql), params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        def run():
            cur = self.conn.execute(self._sql(sql), params)
            rows = cur.fetchall()
            return [tuple(r) for r in rows]
        return self._guard(run)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return
        if self.dialect == "postgresql":
            def run():
                with self.conn.cursor() as cur:
                    cur.executemany(self._sql(sql), rows)
            self._guard(run)
        else:
            self._guard(lambda: self.conn.executemany(sql, rows))

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        try:
            self.conn.rollback() if self.dialect == "postgresql" else self.conn.execute("ROLLBACK")
        except Exception:  # the connection is gone: nothing to roll back
            pass

    # -- bulk ----------------------------------------------------------------------

    def insert_rows(self, table: str, columns: Sequence[str], arr: np.ndarray, *,
                    widths: Mapping[str, np.ndarray] | None = None,
                    nulls: Mapping[str, str] | None = None) -> None:
        """Insert a numpy structured array whose fields are ``columns`` (int64 or bytes fields).

        ``nulls[c]``: the name of an int64 field of arr; where it is not 0, column c is NULL.
        PostgreSQL: one binary COPY built by numpy (``widths``: :func:`pg_copy_binary`); SQLite:
        :meth:`bind_rows`. A row whose key is already there raises :class:`DuplicateRowError` (the
        transaction is then aborted on PostgreSQL: roll back to a savepoint).
        """
        if len(arr) == 0:
            return
        if self.dialect == "postgresql":
            masks = {c: arr[f] != 0 for c, f in (nulls or {}).items()}
            data = pg_copy_binary(arr, columns, widths=widths, nulls=masks)
            cols = ", ".join(columns)

            def run():
                with self.conn.cursor() as cur:
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as cp:
                        cp.write(data)
            self._guard(run)
        else:
            if widths:
                raise TypeError("widths: PostgreSQL only")
            self.bind_rows(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                           arr, columns, nulls)

    def bind_rows(self, sql: str, arr: np.ndarray, columns: Sequence[str],
                  nulls: Mapping[str, str] | None = None) -> None:
        """SQLite: execute sql once per row of arr, parameter k + 1 from field columns[k] (``nulls`` as
        for :meth:`insert_rows`). In C when the connection is native (no Python object per value),
        else through the sqlite3 module."""
        if len(arr) == 0:
            return
        if hasattr(self.conn, "bind_rows"):
            self._guard(lambda: self.conn.bind_rows(sql, arr, columns, nulls))
            return
        rows = arr[list(columns)].tolist() if list(arr.dtype.names) != list(columns) else arr.tolist()
        for c, flag in (nulls or {}).items():
            k = list(columns).index(c)
            for i in np.flatnonzero(arr[flag]):
                rows[i] = rows[i][:k] + (None,) + rows[i][k + 1:]
        self._guard(lambda: self.conn.executemany(sql, rows))

    # -- the one writer ------------------------------------------------------------

    def lock_writer(self) -> None:
        """Take the writer lock for the life of this connection, or StoreLockedError."""
        if self.dialect == "postgresql":
            (got,) = self.query("SELECT pg_try_advisory_lock(?)", (WRITER_LOCK_KEY,))[0]
            if not got:
                raise StoreLockedError(f"{self.url.redacted}: another rsx store is writing to this "
                                       f"database (advisory lock {WRITER_LOCK_KEY:#x} is held)")
            return
        path = self.url.target + ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(f"{self.url.target}: another rsx store is writing to this database "
                                   f"({path} is locked)") from None
        self._lock_fd = fd

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def pg_copy_binary(arr: np.ndarray, columns: Sequence[str], *, widths: Mapping[str, np.ndarray] | None = None,
                   nulls: Mapping[str, np.ndarray] | None = None) -> bytes:
    """PostgreSQL binary COPY data for numpy rows, built by numpy (no Python per row).

    Integer fields become int8 (bigint), byte fields (``V``) bytea, or text when the target column is
    text (the bytes must then be UTF-8). ``widths[c]``: per row, how many leading bytes of byte field c
    to send (the rest is padding); ``nulls[c]``: per row, True where column c is NULL. Rows are grouped
    by their widths and NULLs (each group one fixed layout), so row order is not kept.
    """
    widths, nulls = dict(widths or {}), dict(nulls or {})
    n = len(arr)
    key = np.zeros(n, dtype=np.int64)
    for c in nulls:
        key = key * 2 + nulls[c].astype(np.int64)
    for c in widths:
        key = key * (arr.dtype[c].itemsize + 1) + widths[c].astype(np.int64)
    parts = []
    for k in np.unique(key) if (widths or nulls) else [None]:
        rows = arr if k is None else arr[key == k]
        first = 0 if k is None else int(np.flatnonzero(key == k)[0])
        names, formats, fill = ["n"], [">i2"], []
        for c in columns:
            kind = arr.dtype[c]
            if c in nulls and nulls[c][first]:
                names.append(f"l_{c}")
                formats.append(">i4")
                fill.append((c, -1, None))
                continue
            names += [f"l_{c}", f"v_{c}"]
            if kind.kind in "iu":
                formats += [">i4", ">i8"]
                fill.append((c, 8, None))
            elif kind.kind == "V":
                w = int(widths[c][first]) if c in widths else kind.itemsize
                formats += [">i4", f"V{w}"] if w else [">i4"]
                if not w:
                    names.pop()
                fill.append((c, w, w))
            else:
                raise TypeError(f"column {c}: no binary COPY for dtype {kind}")
        out = np.empty(len(rows), dtype=np.dtype({"names": names, "formats": formats}))
        out["n"] = len(columns)
        for c, length, width in fill:
            out[f"l_{c}"] = length
            if length > 0:
                src = rows[c]
                if width is not None and width != src.dtype.itemsize:
                    src = np.ascontiguousarray(src).view(np.uint8).reshape(len(rows), -1)[:, :width]
                    src = np.ascontiguousarray(src).view(f"V{width}").ravel()
                out[f"v_{c}"] = src
        parts.append(out.tobytes())
    return _PG_HEADER + b"".join(parts) + _PG_TRAILER


def open_database(url: str | StoreUrl, *, readonly: bool = False, base: str | None = None,
                  connect_timeout: float = 5.0) -> Database:
    """Connect; raises StoreUnavailableError when the database cannot be reached or opened."""
    u = url if isinstance(url, StoreUrl) else parse_url(url, base)
    if u.dialect == "postgresql":
        try:
            import psycopg
        except ImportError:
            raise StoreUnavailableError(f"{u.redacted}: PostgreSQL needs the psycopg driver: "
                                        "pip install 'rsx-appliance[postgres]'") from None
        try:
            conn = psycopg.connect(u.target, autocommit=True, connect_timeout=max(1, int(connect_timeout)))
        except psycopg.Error as exc:
            raise _unavailable(exc, u) from exc
        if readonly:
            conn.execute("SET default_transaction_read_only = on")
        return Database(u, conn)
    path = Path(u.target)
    try:
        if readonly:
            if not path.exists():
                raise StoreUnavailableError(f"{path}: no store database here (has `rsx store` run?)")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                   timeout=connect_timeout)
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache per reader
        else:
            make_dirs(path.parent)
            conn = sqlite_native.connect(str(path), connect_timeout) or sqlite3.connect(
                path, isolation_level=None, timeout=connect_timeout)
            for pragma in SQLITE_WRITER_PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
    except (sqlite3.Error, OSError) as exc:
        raise _unavailable(exc, u) from exc
    return Database(u, conn)
