"""The writer's SQLite connection in C (rsx/sqlite.h): numpy rows bound with no Python object per value.

``connect(path)`` returns a :class:`NativeSqlite`, or None where this Python's sqlite3 module does not
use a shared libsqlite3 (the C side then has no safe copy of SQLite to use, and the writer keeps the
sqlite3 module). A NativeSqlite answers the part of ``sqlite3.Connection`` the store uses
(``execute(...).fetchall()``, ``executemany``, ``close``) and raises the sqlite3 module's own
exceptions, so :class:`~.db.Database` treats both alike; :meth:`NativeSqlite.bind_rows` is the bulk
path the writer's fills and orders take.
"""

from __future__ import annotations

import errno
import logging
# imported before any connection: it loads the libsqlite3 the C side then shares (two copies of SQLite
# in one process would keep two sets of POSIX lock bookkeeping on the same file)
import sqlite3
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .._native import ffi, lib

__all__ = ["NativeSqlite", "connect"]

log = logging.getLogger("rsx.store")

_CONSTRAINT = 19  # SQLite's primary result code SQLITE_CONSTRAINT


def connect(path: str, timeout: float = 5.0) -> NativeSqlite | None:
    """A read-write connection to the SQLite file at path, or None (no shared libsqlite3 here)."""
    out = ffi.new("struct rsx_sqlite **")
    rc = lib.rsx_sqlite_open(path.encode(), lib.RSX_SQLITE_LOADED, int(timeout * 1000), out)
    if rc == -errno.ENOENT:
        log.info("store: this Python's sqlite3 uses no shared libsqlite3: rows bound through the sqlite3 module")
        return None
    conn = NativeSqlite(out[0])
    if rc < 0:
        exc = conn._error(rc, f"open {path}")
        conn.close()
        raise exc
    return conn


class _Rows:
    """What ``execute`` returns: the statement's rows, already read."""

    def __init__(self, rows: list[tuple]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple]:
        return self._rows


class NativeSqlite:
    """One connection, confined to the thread that uses it (SQLite's per-connection mutex is off)."""

    def __init__(self, c) -> None:
        self._c = c
        self._stmts: dict[str, Any] = {}

    def _error(self, rc: int, what: str) -> Exception:
        if rc != -errno.EIO:
            return OSError(-rc, f"{what}: {errno.errorcode.get(-rc, rc)}")
        msg = ffi.string(lib.rsx_sqlite_errmsg(self._c)).decode(errors="replace")
        if lib.rsx_sqlite_errcode(self._c) & 0xFF == _CONSTRAINT:
            return sqlite3.IntegrityError(msg)
        return sqlite3.OperationalError(msg)  # as the sqlite3 module reports busy, I/O, full, syntax ...

    def _stmt(self, sql: str):
        s = self._stmts.get(sql)
        if s is None:
            out = ffi.new("struct rsx_sqlite_stmt **")
            rc = lib.rsx_sqlite_prepare(self._c, sql.encode(), out)
            if rc < 0:
                raise self._error(rc, "prepare") if rc != -errno.EINVAL else sqlite3.ProgrammingError(
                    f"no statement in {sql!r}")
            s = self._stmts[sql] = out[0]
        return s

    def _bind(self, s, params: Sequence[Any]) -> list:
        n = lib.rsx_sqlite_params(s)
        if len(params) != n:
            raise sqlite3.ProgrammingError(f"the statement takes {n} parameters, {len(params)} given")
        keep = []  # blobs and texts are bound without a copy: alive until the step
        for i, v in enumerate(params, 1):
            if v is None:
                rc = lib.rsx_sqlite_bind_null(s, i)
            elif isinstance(v, (int, np.integer)):
                rc = lib.rsx_sqlite_bind_i64(s, i, int(v))
            elif isinstance(v, float):
                rc = lib.rsx_sqlite_bind_f64(s, i, v)
            elif isinstance(v, str):
                b = ffi.from_buffer(v.encode())
                keep.append(b)
                rc = lib.rsx_sqlite_bind_text(s, i, b, len(b))
            elif isinstance(v, (bytes, bytearray, memoryview)):
                b = ffi.from_buffer(v)
                keep.append(b)
                rc = lib.rsx_sqlite_bind_blob(s, i, b, len(b))
            else:
                raise sqlite3.ProgrammingError(f"parameter {i}: type {type(v).__name__} is not supported")
            if rc < 0:
                raise self._error(rc, "bind")
        return keep

    def _row(self, s, n: int) -> tuple:
        out = []
        size = ffi.new("size_t *")
        for i in range(n):
            t = lib.rsx_sqlite_column_type(s, i)
            if t == lib.RSX_SQLITE_INTEGER:
                out.append(int(lib.rsx_sqlite_column_i64(s, i)))
            elif t == lib.RSX_SQLITE_NULL:
                out.append(None)
            elif t == lib.RSX_SQLITE_FLOAT:
                out.append(float(lib.rsx_sqlite_column_f64(s, i)))
            else:
                p = lib.rsx_sqlite_column_bytes(s, i, size)
                raw = bytes(ffi.buffer(p, size[0])) if size[0] else b""
                out.append(raw.decode() if t == lib.RSX_SQLITE_TEXT else raw)
        return tuple(out)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Rows:
        s = self._stmt(sql)
        try:
            keep = self._bind(s, params)
            rows, n = [], lib.rsx_sqlite_columns(s)
            while True:
                rc = lib.rsx_sqlite_step(s)
                if rc < 0:
                    raise self._error(rc, "step")
                if rc == 0:
                    break
                rows.append(self._row(s, n))
            del keep
            return _Rows(rows)
        finally:
            lib.rsx_sqlite_reset(s)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        for r in rows:
            self.execute(sql, r)

    def bind_rows(self, sql: str, arr: np.ndarray, columns: Sequence[str],
                  nulls: Mapping[str, str] | None = None) -> None:
        """Execute sql once per row of the structured array arr, parameter k + 1 from field columns[k]
        (int64 fields as integers, byte fields as blobs); ``nulls[c]``: an int64 field, not 0 binds NULL
        for column c."""
        if not len(arr):
            return
        arr = np.ascontiguousarray(arr)
        cols = ffi.new("struct rsx_sqlite_col[]", len(columns))
        for k, name in enumerate(columns):
            dt, off = arr.dtype.fields[name][:2]
            col = cols[k]
            col.offset = off
            if dt.kind in "iu" and dt.itemsize == 8:
                col.type, col.size = lib.RSX_SQLITE_INTEGER, 8
            elif dt.kind == "V":
                col.type, col.size = lib.RSX_SQLITE_BLOB, dt.itemsize
            else:
                raise TypeError(f"column {name}: dtype {dt} cannot be bound (int64 or bytes)")
            col.len_offset = -1
            flag = (nulls or {}).get(name)
            col.null_offset = arr.dtype.fields[flag][1] if flag else -1
        s = self._stmt(sql)
        rc = lib.rsx_sqlite_rows(s, ffi.cast("void *", arr.ctypes.data), arr.dtype.itemsize, len(arr), cols,
                                 len(columns))
        if rc < 0:
            raise self._error(rc, "rows")

    def close(self) -> None:
        if self._c is None:
            return
        for s in self._stmts.values():
            lib.rsx_sqlite_finalize(s)
        self._stmts.clear()
        lib.rsx_sqlite_close(self._c)
        self._c = None
