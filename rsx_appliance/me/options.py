"""What one matching engine runs with (specs/me.md): built from the exchange configuration or by hand."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import Config, streams
from ..errors import ConfigError
from ..numbers import SymbolConfig

__all__ = ["MeOptions", "DURABILITY", "WAIT_MODES"]

DURABILITY = ("fsync", "async")
WAIT_MODES = ("auto", "spin", "backoff", "block")
HUGEPAGES = ("auto", "never", "require")


@dataclass(frozen=True)
class MeOptions:
    """Everything `rsx me` needs. Sizes are raw units; times as named.

    ``from_config(cfg, "BTC-PERP")`` fills it from ``rsx_appliance.config``;
    tests and benchmarks build it directly. ``directory`` is the ME's own
    directory (``<data>/me/<SYMBOL>``: ``wal/``, ``snapshots/``, ``me.stats``).
    """

    name: str
    symbol: SymbolConfig
    directory: Path
    funding_interval_s: int = 28800
    max_funding_rate_bps: int = 75
    reference_price: int | None = None  # raw; None: 10^6 ticks
    # durability and group commit (specs/me.md 6)
    durability: str = "fsync"
    batch_records: int = 1
    batch_us: int = 0
    wait: str = "auto"
    # book and memory
    capacity: int = 1 << 20
    max_users: int = 1 << 16
    hugepages: str = "auto"
    # dedup and stale orders (specs/me.md 3, 4)
    dedup_window_s: int = 3600
    dedup_capacity: int = 1 << 22
    order_timeout_ms: int = 5000
    # snapshots (specs/me.md 7)
    snapshots: bool = True
    snapshot_records: int = 1_000_000
    snapshot_seconds: float = 60.0
    snapshots_kept: int = 3
    # WAL
    wal_file_size: int = 0  # 0: the WAL's default
    retain_s: float = 0.0  # 0: the WAL's default (4 h)
    unsafe_nosync: bool = False  # benchmarks of the in-memory path only
    # loop
    read_batch: int = 256
    out_bytes: int = 64 << 20
    request_slots: int = 1 << 18
    stats_in_dir: bool = False
    # transport: the ME's endpoint, its subscribers and input links, its DXS server
    cmp: tuple[str, int] | None = None
    backend: str | None = None  # None / "auto": the CMP default
    subscribers: tuple[tuple[str, int], ...] = ()
    links: tuple[int, ...] = ()
    dxs: tuple[str, int] | None = None
    sender_ring: int = 4096
    heartbeat_us: int = 10_000
    heartbeat_idle_us: int = 50_000  # idle heartbeats back off to this (specs/cmp.md 3.5)
    window: int = 4096
    run_dir: Path | None = None  # D/run: the process status file (specs/config.md 5)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.durability not in DURABILITY:
            raise ConfigError(f"durability must be one of {', '.join(DURABILITY)}, not {self.durability!r}")
        if self.wait not in WAIT_MODES:
            raise ConfigError(f"wait must be one of {', '.join(WAIT_MODES)}, not {self.wait!r}")
        if self.hugepages not in HUGEPAGES:
            raise ConfigError(f"hugepages must be one of {', '.join(HUGEPAGES)}, not {self.hugepages!r}")
        if not 1 <= self.symbol.symbol_id <= 0xFFFF:
            raise ConfigError(f"symbol id {self.symbol.symbol_id} is not in 1..65535")
        if len(self.subscribers) > 8:
            raise ConfigError(f"{len(self.subscribers)} subscribers: one ME stream sender serves at most 8")
        for name in ("capacity", "max_users", "dedup_window_s", "snapshots_kept", "read_batch", "batch_records"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, not {getattr(self, name)}")
        if self.dedup_capacity < 64 or self.dedup_capacity & (self.dedup_capacity - 1):
            raise ConfigError(f"dedup_capacity must be a power of two >= 64, not {self.dedup_capacity}")

    @property
    def ref_price(self) -> int:
        return self.reference_price or self.symbol.tick_size * 1_000_000

    @property
    def stream_id(self) -> int:
        return self.symbol.symbol_id

    def with_(self, **changes: Any) -> "MeOptions":
        return replace(self, **changes)

    @classmethod
    def from_config(cls, cfg: Config, symbol: str, **overrides: Any) -> "MeOptions":
        """The options of process ``me.<symbol>`` of ``cfg`` (specs/config.md), with ``overrides``."""
        spec = cfg.symbol(symbol)
        proc = cfg.process(f"me.{spec.name}")
        e = cfg.engines
        backend = None if cfg.network.cmp_backend == "auto" else cfg.network.cmp_backend
        kw: dict[str, Any] = dict(
            name=spec.name, symbol=spec.numbers, directory=proc.data_dir,
            funding_interval_s=spec.funding_interval_s, max_funding_rate_bps=spec.max_funding_rate_bps,
            reference_price=spec.reference_price, durability=e.durability, batch_records=e.batch_records,
            batch_us=e.batch_us, wait=e.wait, capacity=e.max_orders, dedup_window_s=e.dedup_window_s,
            dedup_capacity=e.dedup_capacity, order_timeout_ms=e.order_timeout_ms,
            snapshot_records=e.snapshot_records, snapshot_seconds=e.snapshot_seconds,
            snapshots_kept=e.snapshots_kept, cmp=proc.cmp, backend=backend,
            subscribers=tuple(cfg.cmp_consumers(proc.name)),
            links=tuple(streams.risk_to_me(s, spec.id) for s in range(cfg.risk.shards)),
            dxs=proc.dxs, run_dir=cfg.data_dir / "run")
        kw.update(overrides)
        return cls(**kw)
