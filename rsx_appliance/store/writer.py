"""One transaction per run of batches: rows, order state and stream tips together (specs/store.md 4).

:meth:`Writer.write` stores a :class:`~.ingest.Tables` atomically: the event
rows, the folded order state, the re-applied liquidation fees and the new tip
of every stream in it commit together or not at all. A failure the database
may recover from raises :class:`~.errors.StoreUnavailableError` after a
rollback; the caller retries the very same Tables.
"""

from __future__ import annotations

import time

import numpy as np

from .._native import ffi, lib
from ..codes import OrderFlag
from .db import Database, DuplicateRowError
from .ingest import FILL_COLUMNS, ORDER_STAGE, Tables

__all__ = ["Writer"]

_ORDER_COLS = ORDER_STAGE.names
_CREATE = ("side", "tif", "flags", "stp", "qty", "client_id", "created_ns", "accepted_seq")
_ORDER_TABLE = ("symbol_id", "order_id", "user_id", "side", "tif", "flags", "stp", "price", "qty", "client_id",
                "status", "reason", "filled_qty", "remaining_qty", "created_ns", "updated_ns", "accepted_seq",
                "last_seq")
_STAGE_DDL = "CREATE TEMP TABLE IF NOT EXISTS orders_in ({}) ON COMMIT DELETE ROWS"


def _stage_columns() -> str:
    return ", ".join(f"{c} {'BYTEA' if c in ('order_id', 'client_id') else 'BIGINT'}" for c in _ORDER_COLS)


_NEW_ORDER = np.dtype([(c, "V16" if c == "order_id" else "V24" if c == "client_id" else "<i8")
                       for c in _ORDER_TABLE] + [("client_len", "<i8"), ("client_odd", "<i8")])


def _new_order_rows(rows: np.ndarray) -> np.ndarray:
    """Folded rows of orders accepted in this transaction as orders rows (every field present)."""
    out = np.empty(len(rows), dtype=_NEW_ORDER)
    for c in _NEW_ORDER.names:
        if c not in ("filled_qty", "client_odd"):
            out[c] = rows[c]
    out["client_odd"] = rows["client_plain"] == 0  # not plain ASCII: NULL here, escaped text after
    out["filled_qty"] = np.where(rows["has_filled"] != 0, rows["filled_qty"], 0) + rows["fill_add"]
    return out


def client_text(raw: bytes) -> str:
    """A client id as text: the 20 bytes without the NUL padding; bytes outside 0x01..0x7f as \\xNN."""
    return "".join(chr(b) if 0 < b < 0x80 else f"\\x{b:02x}" for b in raw[:20].rstrip(b"\0"))


def _merge_sql() -> tuple[str, str]:
    """PostgreSQL: the orders copied into orders_in, merged into orders by two INSERT .. ON CONFLICT.

    A conflict branch sees only the proposed row (``excluded``), so the flags travel as NULLs there:
    a field the records did not carry is NULL (the partial row of a new order, "keep" for a known one).
    Only "the ME's total or a sum" cannot be a NULL, so rows with an ORDER_DONE (has_filled) and rows
    without go through one statement each. Each folded row is inserted or updated exactly once.
    """
    client = ("CASE WHEN i.client_plain = 1 THEN "
              "convert_from(substring(i.client_id from 1 for i.client_len::int), 'UTF8') END")

    def when(flag: str, col: str) -> str:
        return f"CASE WHEN i.{flag} = 1 THEN {col} END"

    select = (f"SELECT i.symbol_id, i.order_id, i.user_id, {when('has_create', 'i.side')}, "
              f"{when('has_create', 'i.tif')}, {when('has_create', 'i.flags')}, {when('has_create', 'i.stp')}, "
              f"{when('has_price', 'i.price')}, {when('has_create', 'i.qty')}, {when('has_create', client)}, "
              f"{when('has_status', 'i.status')}, {when('has_status', 'i.reason')}, i.filled_qty + i.fill_add, "
              f"{when('has_remaining', 'i.remaining_qty')}, i.created_ns, i.updated_ns, "
              f"{when('has_create', 'i.accepted_seq')}, i.last_seq FROM orders_in AS i")
    created = "excluded.accepted_seq IS NOT NULL"
    sets = [f"{c} = CASE WHEN {created} THEN excluded.{c} ELSE orders.{c} END" for c in _CREATE]
    sets += [f"{c} = COALESCE(excluded.{c}, orders.{c})" for c in ("user_id", "price", "remaining_qty", "status")]
    sets += ["reason = CASE WHEN excluded.status IS NOT NULL THEN excluded.reason ELSE orders.reason END",
             "updated_ns = excluded.updated_ns", "last_seq = excluded.last_seq"]
    head = f"INSERT INTO orders ({', '.join(_ORDER_TABLE)}) {select}"
    tail = "ON CONFLICT (symbol_id, order_id) DO UPDATE SET {} WHERE excluded.last_seq > orders.last_seq"
    done = (f"{head} WHERE i.has_filled = 1 "
            + tail.format(", ".join(sets + ["filled_qty = excluded.filled_qty"])))
    open_ = (f"{head} WHERE i.has_filled = 0 " + tail.format(", ".join(sets + [
        f"filled_qty = CASE WHEN {created} THEN 0 ELSE orders.filled_qty END + excluded.filled_qty"])))
    return done, open_


def _upsert_sql() -> str:
    """SQLite: one INSERT .. ON CONFLICT DO UPDATE per folded order, the ORDER_STAGE row bound as is.

    Numbered parameters let the conflict branch read the has_* flags the row carries: an order new to
    the database is inserted directly (absent fields NULL: a partial row), a known one gets only the
    fields its records carry.
    """
    at = {c: f"?{i + 1}" for i, c in enumerate(_ORDER_COLS)}

    def when(flag: str, col: str) -> str:
        return f"CASE WHEN {at[flag]} THEN {at[col]} END"

    def keep(flag: str, col: str) -> str:
        return f"{col} = CASE WHEN {at[flag]} THEN {at[col]} ELSE {col} END"

    values = [at["symbol_id"], at["order_id"], at["user_id"]] + [when("has_create", c) for c in
                                                                 ("side", "tif", "flags", "stp")]
    client = (f"CASE WHEN {at['has_create']} AND {at['client_plain']} THEN "
              f"CAST(substr({at['client_id']}, 1, {at['client_len']}) AS TEXT) END")
    values += [when("has_price", "price"), when("has_create", "qty"), client,
               when("has_status", "status"), when("has_status", "reason"),
               f"{at['filled_qty']} + {at['fill_add']}", when("has_remaining", "remaining_qty"),
               at["created_ns"], at["updated_ns"], when("has_create", "accepted_seq"), at["last_seq"]]
    sets = [f"user_id = {at['user_id']}"] + [keep("has_create", c) for c in _CREATE if c != "client_id"]
    sets.append(f"client_id = CASE WHEN {at['has_create']} THEN {client} ELSE client_id END")
    sets += [keep("has_price", "price"), keep("has_remaining", "remaining_qty"), keep("has_status", "status"),
             keep("has_status", "reason"),
             f"filled_qty = CASE WHEN {at['has_filled']} THEN {at['filled_qty']} WHEN {at['has_create']} THEN 0 "
             f"ELSE filled_qty END + {at['fill_add']}",
             f"updated_ns = {at['updated_ns']}", f"last_seq = {at['last_seq']}"]
    return (f"INSERT INTO orders ({', '.join(_ORDER_TABLE)}) VALUES ({', '.join(values)}) "
            f"ON CONFLICT (symbol_id, order_id) DO UPDATE SET {', '.join(sets)} "
            f"WHERE {at['last_seq']} > last_seq")


_TIPS_SQL = ("INSERT INTO stream_tips (stream_id, applied_seq, applied_ts_ns, updated_ns) VALUES (?, ?, ?, ?) "
             "ON CONFLICT (stream_id) DO UPDATE SET applied_seq = excluded.applied_seq, "
             "applied_ts_ns = excluded.applied_ts_ns, updated_ns = excluded.updated_ns")
_INSERTS = {
    "symbol_configs": ("symbol_id", "seq", "ts_ns", "config_version", "price_decimals", "qty_decimals",
                       "tick_size", "lot_size", "min_qty", "max_qty", "status", "maker_fee_bps",
                       "taker_fee_bps", "initial_margin_bps", "maintenance_margin_bps",
                       "funding_interval_s", "max_funding_rate_bps"),
    "funding_payments": ("stream_id", "seq", "ts_ns", "symbol_id", "user_id", "interval_id", "amount",
                         "position", "mark_px", "rate_e8"),
    "funding_rates": ("stream_id", "seq", "ts_ns", "symbol_id", "interval_id", "rate_e8", "mark_px",
                      "index_px"),
    "liquidations": ("stream_id", "seq", "ts_ns", "symbol_id", "user_id", "kind", "side", "round",
                     "slippage_bps", "order_id", "qty", "price", "mark_px", "equity", "maintenance_margin",
                     "shortfall", "counterparty_user_id", "fill_tip"),
    "balance_changes": ("stream_id", "seq", "user_id", "ts_ns", "kind", "amount", "balance_after",
                        "symbol_id", "request_id"),
    "risk_params": ("stream_id", "seq", "ts_ns", "symbol_id", "key", "value", "fill_tip"),
}


class Writer:
    """Writes Tables into one database connection (the writer thread's)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._merge = _merge_sql()
        self._upsert = _upsert_sql()
        self._staged = False
        self.transactions = 0

    def _stage(self) -> None:
        """PostgreSQL: the temporary table the orders are copied into before the merge."""
        if not self._staged:
            self.db.execute(_STAGE_DDL.format(_stage_columns()))
            self._staged = True

    def write(self, t: Tables) -> None:
        """Store t in one transaction; on any error roll back and raise (t can be written again)."""
        db = self.db
        try:
            db.begin()
            self._fills(t)
            self._orders(t)
            for table, cols in _INSERTS.items():
                rows = getattr(t, table)
                if rows:
                    db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                                   f"({', '.join('?' * len(cols))})", rows)
            self._refee(t)
            now = time.time_ns()
            db.executemany(_TIPS_SQL, [(s, q, ts, now) for s, (q, ts) in sorted(t.tips.items())])
            db.commit()
        except BaseException:
            db.rollback()
            raise
        self.transactions += 1

    def _fills(self, t: Tables) -> None:
        self.db.insert_rows("fills", FILL_COLUMNS, t.fill_rows(),
                            nulls={c: "unvalued" for c in ("value", "taker_fee", "maker_fee")})

    def _orders(self, t: Tables) -> None:
        rows = t.orders
        if not len(rows):
            return
        if self.db.dialect == "sqlite":
            self.db.bind_rows(self._upsert, rows, _ORDER_COLS)
        else:
            self._pg_orders(rows)
        odd = rows[(rows["has_create"] != 0) & (rows["client_plain"] == 0)]
        if len(odd):  # client ids that are not plain ASCII: escaped here (rare)
            self.db.executemany("UPDATE orders SET client_id = ? WHERE symbol_id = ? AND order_id = ? "
                                "AND accepted_seq = ?", [(client_text(r["client_id"].tobytes()), int(r["symbol_id"]),
                                                          r["order_id"].tobytes(), int(r["accepted_seq"]))
                                                         for r in odd])

    def _pg_orders(self, rows: np.ndarray) -> None:
        """Orders accepted in this transaction: one COPY into orders (no merge: they are new, unless an id
        was used before, then the COPY fails and they are merged like the rest); the others: COPY into
        orders_in, then merged."""
        db = self.db
        create = rows["has_create"] != 0
        merge = rows[~create]
        if create.any():
            new = _new_order_rows(rows[create])
            db.execute("SAVEPOINT new_orders")
            try:
                db.insert_rows("orders", _ORDER_TABLE, new, widths={"client_id": new["client_len"]},
                               nulls={"client_id": "client_odd"})
                db.execute("RELEASE SAVEPOINT new_orders")
            except DuplicateRowError:
                db.execute("ROLLBACK TO SAVEPOINT new_orders")
                merge = rows
        if len(merge):
            self._stage()
            db.insert_rows("orders_in", _ORDER_COLS, merge)
            for statement in self._merge:
                db.execute(statement)

    def _refee(self, t: Tables) -> None:
        """Re-apply liquidation fees to stored liquidation fills after a fee parameter arrived."""
        liq = int(OrderFlag.LIQUIDATION)
        for sym, tip in t.refee:
            rows = self.db.query("SELECT seq, taker_user_id, value FROM fills WHERE symbol_id = ? AND seq > ? "
                                 f"AND (taker_flags & {liq}) != 0 AND value IS NOT NULL", (sym, tip))
            if not rows:
                continue
            seqs = [r[0] for r in rows]
            value = np.array([r[2] for r in rows], dtype=np.int64)
            bps = np.array([t.fees.liquidation_fee_bps(r[1], sym, r[0]) for r in rows], dtype=np.int32)
            n = len(rows)
            one = np.ones(n, dtype=np.int64)
            out_v, out_t, out_m = (np.empty(n, np.int64) for _ in range(3))
            ok = np.empty(n, np.uint8)
            i64 = lambda a: ffi.cast("int64_t *", a.ctypes.data)  # noqa: E731
            i32 = lambda a: ffi.cast("int32_t *", a.ctypes.data)  # noqa: E731
            # fee(value, bps): the value is already V(p, q), so price = value, qty = 1, divisor = 1
            lib.rsx_ledger_fill_fees(n, i64(value), i64(one), i64(one), i32(bps), i32(bps), i64(out_v),
                                     i64(out_t), i64(out_m), ffi.cast("uint8_t *", ok.ctypes.data))
            self.db.executemany("UPDATE fills SET taker_fee = ? WHERE symbol_id = ? AND seq = ?",
                                [(int(f), sym, s) for f, s in zip(out_t, seqs)])
