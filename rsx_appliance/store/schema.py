"""The store's schema and its forward migrations (specs/store.md 3).

One DDL text per migration, written once with three type words that each
dialect fills in: ``{INT}`` (SQLite INTEGER, PostgreSQL BIGINT), ``{BLOB}``
(BLOB / BYTEA) and ``{NOROWID}`` (SQLite's WITHOUT ROWID for tables whose key
is their primary key; nothing on PostgreSQL). Each migration runs in its own
transaction together with its ``schema_version`` row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .db import Database
from .errors import StoreSchemaError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version", "check_schema", "TABLES"]

_TYPES = {"sqlite": {"INT": "INTEGER", "BLOB": "BLOB", "NOROWID": "WITHOUT ROWID"},
          "postgresql": {"INT": "BIGINT", "BLOB": "BYTEA", "NOROWID": ""}}


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    ddl: str

    def statements(self, dialect: str) -> list[str]:
        text = self.ddl.format(**_TYPES[dialect])
        return [s.strip() for s in text.split(";") if s.strip()]


_V1 = """
CREATE TABLE stream_tips (
    stream_id {INT} PRIMARY KEY, applied_seq {INT} NOT NULL, applied_ts_ns {INT} NOT NULL,
    updated_ns {INT} NOT NULL);
CREATE TABLE symbol_configs (
    symbol_id {INT} NOT NULL, seq {INT} NOT NULL, ts_ns {INT} NOT NULL, config_version {INT} NOT NULL,
    price_decimals {INT} NOT NULL, qty_decimals {INT} NOT NULL, tick_size {INT} NOT NULL,
    lot_size {INT} NOT NULL, min_qty {INT} NOT NULL, max_qty {INT} NOT NULL, status {INT} NOT NULL,
    maker_fee_bps {INT} NOT NULL, taker_fee_bps {INT} NOT NULL, initial_margin_bps {INT} NOT NULL,
    maintenance_margin_bps {INT} NOT NULL, funding_interval_s {INT} NOT NULL,
    max_funding_rate_bps {INT} NOT NULL,
    PRIMARY KEY (symbol_id, seq)) {NOROWID};
CREATE TABLE fills (
    symbol_id {INT} NOT NULL, seq {INT} NOT NULL, ts_ns {INT} NOT NULL,
    taker_user_id {INT} NOT NULL, maker_user_id {INT} NOT NULL,
    taker_order_id {BLOB} NOT NULL, maker_order_id {BLOB} NOT NULL,
    price {INT} NOT NULL, qty {INT} NOT NULL, taker_side {INT} NOT NULL,
    taker_flags {INT} NOT NULL, maker_flags {INT} NOT NULL,
    taker_remaining {INT} NOT NULL, maker_remaining {INT} NOT NULL,
    value {INT}, taker_fee {INT}, maker_fee {INT},
    PRIMARY KEY (symbol_id, seq)) {NOROWID};
CREATE INDEX fills_taker ON fills (taker_user_id, ts_ns);
CREATE INDEX fills_maker ON fills (maker_user_id, ts_ns);
CREATE TABLE orders (
    symbol_id {INT} NOT NULL, order_id {BLOB} NOT NULL, user_id {INT}, side {INT}, tif {INT},
    flags {INT}, stp {INT}, price {INT}, qty {INT}, client_id TEXT, status {INT}, reason {INT},
    filled_qty {INT} NOT NULL, remaining_qty {INT}, created_ns {INT}, updated_ns {INT} NOT NULL,
    accepted_seq {INT}, last_seq {INT} NOT NULL,
    PRIMARY KEY (symbol_id, order_id)) {NOROWID};
CREATE INDEX orders_user ON orders (user_id, created_ns);
CREATE TABLE funding_payments (
    stream_id {INT} NOT NULL, seq {INT} NOT NULL, ts_ns {INT} NOT NULL, symbol_id {INT} NOT NULL,
    user_id {INT} NOT NULL, interval_id {INT} NOT NULL, amount {INT} NOT NULL, position {INT} NOT NULL,
    mark_px {INT} NOT NULL, rate_e8 {INT},
    PRIMARY KEY (stream_id, seq)) {NOROWID};
CREATE INDEX funding_payments_user ON funding_payments (user_id, ts_ns);
CREATE TABLE funding_rates (
    stream_id {INT} NOT NULL, seq {INT} NOT NULL, ts_ns {INT} NOT NULL, symbol_id {INT} NOT NULL,
    interval_id {INT} NOT NULL, rate_e8 {INT} NOT NULL, mark_px {INT} NOT NULL, index_px {INT} NOT NULL,
    PRIMARY KEY (stream_id, seq)) {NOROWID};
CREATE INDEX funding_rates_symbol ON funding_rates (symbol_id, interval_id);
CREATE TABLE liquidations (
    stream_id {INT} NOT NULL, seq {INT} NOT NULL, ts_ns {INT} NOT NULL, symbol_id {INT} NOT NULL,
    user_id {INT} NOT NULL, kind {INT} NOT NULL, side {INT} NOT NULL, round {INT} NOT NULL,
    slippage_bps {INT} NOT NULL, order_id {BLOB} NOT NULL, qty {INT} NOT NULL, price {INT} NOT NULL,
    mark_px {INT} NOT NULL, equity {INT} NOT NULL, maintenance_margin {INT} NOT NULL,
    shortfall {INT} NOT NULL, counterparty_user_id {INT} NOT NULL, fill_tip {INT},
    PRIMARY KEY (stream_id, seq)) {NOROWID};
CREATE INDEX liquidations_user ON liquidations (user_id, ts_ns);
CREATE INDEX liquidations_counterparty ON liquidations (counterparty_user_id, ts_ns);
CREATE TABLE balance_changes (
    stream_id {INT} NOT NULL, seq {INT} NOT NULL, user_id {INT} NOT NULL, ts_ns {INT} NOT NULL,
    kind {INT} NOT NULL, amount {INT} NOT NULL, balance_after {INT}, symbol_id {INT},
    request_id {BLOB},
    PRIMARY KEY (stream_id, seq, user_id)) {NOROWID};
CREATE INDEX balance_changes_user ON balance_changes (user_id, ts_ns);
CREATE TABLE risk_params (
    stream_id {INT} NOT NULL, seq {INT} NOT NULL, ts_ns {INT} NOT NULL, symbol_id {INT} NOT NULL,
    key {INT} NOT NULL, value {INT} NOT NULL, fill_tip {INT},
    PRIMARY KEY (stream_id, seq)) {NOROWID}
"""

MIGRATIONS = (
    Migration(1, "stream tips, symbol configs, fills, orders, funding, liquidations, balance changes, "
                 "risk parameters", _V1),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
#: every table the store writes, for `rsx store info`
TABLES = ("stream_tips", "symbol_configs", "fills", "orders", "funding_payments", "funding_rates",
          "liquidations", "balance_changes", "risk_params")

_VERSION_DDL = ("CREATE TABLE IF NOT EXISTS schema_version (version {INT} PRIMARY KEY, "
                "applied_ns {INT} NOT NULL, description TEXT NOT NULL)")


def schema_version(db: Database) -> int:
    """The newest applied migration, 0 for a database without the store schema."""
    if db.dialect == "sqlite":
        have = db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
    else:
        have = db.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version' "
                        "AND table_schema = current_schema()")
    if not have:
        return 0
    (v,) = db.query("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0]
    return int(v)


def check_schema(db: Database, *, need: int = SCHEMA_VERSION) -> int:
    """The database's version; StoreSchemaError when it has no schema or a newer one than this code."""
    v = schema_version(db)
    if v > SCHEMA_VERSION:
        raise StoreSchemaError(f"{db.url.redacted}: schema version {v} is newer than this rsx "
                               f"(knows up to {SCHEMA_VERSION}); upgrade rsx-appliance")
    if v < need:
        raise StoreSchemaError(f"{db.url.redacted}: schema version {v}, needs {need}: run `rsx store "
                               f"migrate` (or start `rsx store`)")
    return v


def migrate(db: Database) -> list[int]:
    """Apply every migration above the database's version, each in one transaction; returns them."""
    current = check_schema(db, need=0)
    done = []
    for m in MIGRATIONS:
        if m.version <= current:
            continue
        db.begin()
        try:
            db.execute(_VERSION_DDL.format(**_TYPES[db.dialect]))
            for stmt in m.statements(db.dialect):
                db.execute(stmt)
            db.execute("INSERT INTO schema_version (version, applied_ns, description) VALUES (?, ?, ?)",
                       (m.version, time.time_ns(), m.description))
            db.commit()
        except BaseException:
            db.rollback()
            raise
        done.append(m.version)
    return done
