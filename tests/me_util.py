"""Helpers for the matching-engine tests: small options, request records, the stream read back."""

from __future__ import annotations

import uuid
from pathlib import Path

from rsx_appliance.config import streams
from rsx_appliance.me import MeOptions
from rsx_appliance.numbers import SymbolConfig
from rsx_appliance.records import RecordType, decode, encode
from rsx_appliance.wal import WalReader

SYMBOL = SymbolConfig(symbol_id=1, price_decimals=2, qty_decimals=3, tick_size=1, lot_size=1,
                      max_qty=1_000_000_000, maker_fee_bps=1, taker_fee_bps=5)
LINK = streams.risk_to_me(0, 1)


def options(directory: Path, **kw) -> MeOptions:
    base = dict(name="TEST", symbol=SYMBOL, directory=Path(directory), reference_price=50_000, capacity=8192,
                max_users=1024, dedup_capacity=1 << 14, hugepages="never", snapshots=False, stats_in_dir=True,
                out_bytes=8 << 20, request_slots=1 << 12, wait="block")
    base.update(kw)
    return MeOptions(**base)


def oid(k: int) -> uuid.UUID:
    return uuid.UUID(int=k)


def new_order(user: int, k: int, side: int, price: int, qty: int, *, seq: int = 1, stream: int = LINK,
              symbol: int = 1, tif: int = 0, flags: int = 0, stp: int = 3, risk_out_ts_ns: int = 0) -> bytes:
    return encode(RecordType.NEW_ORDER, seq=seq, ts_ns=1, stream_id=stream, symbol_id=symbol, user_id=user,
                  side=side, tif=tif, flags=flags, stp=stp, order_id=oid(k), price=price, qty=qty,
                  risk_out_ts_ns=risk_out_ts_ns)


def cancel(user: int, k: int, *, seq: int = 1, stream: int = LINK, symbol: int = 1) -> bytes:
    return encode(RecordType.CANCEL_ORDER, seq=seq, ts_ns=1, stream_id=stream, symbol_id=symbol, user_id=user,
                  order_id=oid(k))


def stream_bytes(directory: Path, stream_id: int = 1) -> list[bytes]:
    """Every durable record of the ME's stream, framed bytes in seq order."""
    out: list[bytes] = []
    with WalReader(Path(directory) / "wal", stream_id) as r:
        for batch in r:
            out.extend(batch.record_bytes(i) for i in range(len(batch)))
    return out


def stream_records(directory: Path, stream_id: int = 1):
    return [decode(b) for b in stream_bytes(directory, stream_id)]
