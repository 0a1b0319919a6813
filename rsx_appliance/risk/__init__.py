"""The risk engine: accounts, positions, cross margin, fees, funding, liquidation,
insurance fund and ADL (specs/risk.md).

A deterministic, replayable library meant to sit between the gateway and the
matching engines. Quick tour::

    from rsx_appliance.risk import RiskShard, MemoryJournal, WalJournal, Capacity

    shard = RiskShard.create(WalJournal("risk.journal", stream_id=0x80000000))
    shard.on_me(config_applied_record)          # the ME stream configures each symbol
    shard.deposit(user_id=7, amount=10_000_000_000, request_id=uuid.uuid4().bytes)
    out = shard.submit(new_order_records, now_ns)   # forwarded orders / ORDER_FAILED
    out = shard.on_me(me_records)               # fills, order events (exactly once by seq)
    out = shard.on_mark(mark_price_records, now_ns)
    out = shard.on_funding_rate(funding_rate_records, now_ns)   # settled on the boundary's positions
    out = shard.tick(now_ns)                    # marks, liquidation rounds, reconciliation

The process that runs a shard between the gateways and the MEs is
:mod:`rsx_appliance.risk.serve` (``rsx risk serve``).

Hot per-record paths are C (native/src/risk_*.c); this package orchestrates.
"""

from ._core import Capacity, vshard_of
from .enums import LiqKind, OrderFlag, Side, Stp, SymbolStatus, Tif
from .errors import (CapacityError, JournalCorruptError, JournalError, RiskError, SnapshotError,
                     StreamError, StreamGapError)
from .journal import WalJournal, Journal, MemoryJournal
from .params import Key, RiskParams, SymbolRiskParams, Tier
from .shard import Outputs, RiskShard, ShardLoop, shard_stream_id

__all__ = ["RiskShard", "ShardLoop", "Outputs", "Capacity", "RiskParams", "SymbolRiskParams", "Tier",
           "Key", "Journal", "WalJournal", "MemoryJournal", "RiskError", "StreamError",
           "StreamGapError", "CapacityError", "JournalError", "JournalCorruptError", "SnapshotError",
           "vshard_of", "shard_stream_id", "Side", "Tif", "OrderFlag", "Stp", "LiqKind", "SymbolStatus"]
