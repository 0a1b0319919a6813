"""Risk parameters and their journal form, the RISK_PARAM record (specs/risk.md 8.2).

Shard-wide parameters live in :class:`RiskParams`; per-symbol ones in
:class:`SymbolRiskParams` (margin tiers, liquidation fee, insurance share).
Every change is validated as a whole when it is set, journaled as RISK_PARAM
records (one per key) followed by the batch COMMIT, and applied as a whole
(:meth:`RiskParams.with_keys`): never key by key, whose intermediate states
could be invalid, so nothing journaled can fail to apply later.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import IntEnum

from .._native import ffi, lib
from ..errors import ConfigError

__all__ = ["Key", "RiskParams", "SymbolRiskParams", "Tier", "SHARD_WIDE", "tier_key",
           "MAX_TIERS", "MAX_POSITION_CAP"]

SHARD_WIDE = 0xFFFFFFFF
MAX_TIERS = 8
MAX_POSITION_CAP = 1 << 53


class Key(IntEnum):
    """RISK_PARAM.key."""

    COMMIT = 1
    FILL_BARRIER = 2
    MARK = 3                 # the mark in force for a symbol (value), journaled for recovery
    FUNDING_CUT = 4          # positions taken for funding interval `value` at tip `fill_tip`
    TIER_COUNT = 16
    LIQUIDATION_FEE_BPS = 17
    INSURANCE_FEE_SHARE_BPS = 18
    LIQ_BASE_DELAY_NS = 32
    LIQ_BASE_SLIP_BPS = 33
    LIQ_MAX_SLIP_BPS = 34
    LIQ_MAX_ROUNDS = 35
    ACK_TIMEOUT_NS = 36
    PRICE_STALE_NS = 37
    PREMIUM_SAMPLE_NS = 38
    PREMIUM_EMA_BPS = 39
    MARK_BAND_BPS = 40
    IMPACT_NOTIONAL = 41
    RETIRED_FUNDING_INTEREST_E8 = 42       # the mark process computes the funding rate now
    RETIRED_FUNDING_PREMIUM_CLAMP_E8 = 43
    DEFAULT_MAX_POSITION = 44
    RECONCILE_INTERVAL_NS = 45
    SNAPSHOT_INTERVAL_NS = 46
    DEFAULT_LIQ_FEE_BPS = 47
    DEFAULT_INS_SHARE_BPS = 48
    SOURCE_BAND_BPS = 49
    MARK_JOURNAL_NS = 50
    VSHARD_OWNER = 64
    TIER_BOUND = 0x100   # + tier index
    TIER_IMR = 0x200
    TIER_MMR = 0x300


def tier_key(base: Key, k: int) -> int:
    return int(base) + k


# field name -> (key, lower bound, upper bound)
_SHARD_KEYS = {
    "liq_base_delay_ns": (Key.LIQ_BASE_DELAY_NS, 0, 3600 * 10**9),
    "liq_base_slip_bps": (Key.LIQ_BASE_SLIP_BPS, 0, 10_000),
    "liq_max_slip_bps": (Key.LIQ_MAX_SLIP_BPS, 0, 10_000),
    "liq_max_rounds": (Key.LIQ_MAX_ROUNDS, 0, 1000),
    "ack_timeout_ns": (Key.ACK_TIMEOUT_NS, 1, 3600 * 10**9),
    "price_stale_ns": (Key.PRICE_STALE_NS, 1, 10**15),
    "premium_sample_ns": (Key.PREMIUM_SAMPLE_NS, 1, 3600 * 10**9),
    "premium_ema_bps": (Key.PREMIUM_EMA_BPS, 1, 10_000),
    "mark_band_bps": (Key.MARK_BAND_BPS, 0, 10_000),
    "impact_notional": (Key.IMPACT_NOTIONAL, 0, (1 << 62)),
    "default_max_position": (Key.DEFAULT_MAX_POSITION, 1, MAX_POSITION_CAP),
    "reconcile_interval_ns": (Key.RECONCILE_INTERVAL_NS, 1, 3600 * 10**9),
    "snapshot_interval_ns": (Key.SNAPSHOT_INTERVAL_NS, 1, 10**15),
    "default_liq_fee_bps": (Key.DEFAULT_LIQ_FEE_BPS, 0, 10_000),
    "default_ins_share_bps": (Key.DEFAULT_INS_SHARE_BPS, 0, 10_000),
    "source_band_bps": (Key.SOURCE_BAND_BPS, 1, 10_000),
    "mark_journal_ns": (Key.MARK_JOURNAL_NS, 1, 3600 * 10**9),
}
_BY_KEY = {int(k): name for name, (k, _, _) in _SHARD_KEYS.items()}
_RETIRED = {int(Key.RETIRED_FUNDING_INTEREST_E8), int(Key.RETIRED_FUNDING_PREMIUM_CLAMP_E8)}


@dataclass(frozen=True)
class RiskParams:
    """Shard-wide parameters (defaults in specs/risk.md 5-7)."""

    liq_base_delay_ns: int = 1_000_000_000
    liq_base_slip_bps: int = 10
    liq_max_slip_bps: int = 500
    liq_max_rounds: int = 10
    ack_timeout_ns: int = 5_000_000_000
    price_stale_ns: int = 10_000_000_000
    premium_sample_ns: int = 1_000_000_000
    premium_ema_bps: int = 1000
    mark_band_bps: int = 500
    impact_notional: int = 0
    default_max_position: int = MAX_POSITION_CAP
    reconcile_interval_ns: int = 1_000_000_000
    snapshot_interval_ns: int = 60_000_000_000
    default_liq_fee_bps: int = 50
    default_ins_share_bps: int = 2000
    source_band_bps: int = 1000
    mark_journal_ns: int = 1_000_000_000

    def __post_init__(self) -> None:
        for name, (_, lo, hi) in _SHARD_KEYS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(f"RiskParams.{name}={v!r} is not an integer in [{lo}, {hi}]")
        if self.liq_base_slip_bps > self.liq_max_slip_bps:
            raise ConfigError("liq_base_slip_bps must be <= liq_max_slip_bps")

    def changes(self, other: "RiskParams") -> list[tuple[int, int]]:
        """(key, value) of every field where other differs from self."""
        return [(int(_SHARD_KEYS[f.name][0]), getattr(other, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(other, f.name)]

    def all_keys(self) -> list[tuple[int, int]]:
        return [(int(_SHARD_KEYS[f.name][0]), getattr(self, f.name)) for f in fields(self)]

    def with_keys(self, pairs: list[tuple[int, int]]) -> "RiskParams":
        """These parameters with a group of (key, value) changes applied at once (retired keys ignored)."""
        changes = {}
        for key, value in pairs:
            if int(key) in _RETIRED:
                continue
            name = _BY_KEY.get(int(key))
            if name is None:
                raise ConfigError(f"unknown shard-wide risk parameter key {key}")
            changes[name] = value
        return replace(self, **changes)

    @staticmethod
    def is_shard_key(key: int) -> bool:
        return int(key) in _BY_KEY or int(key) in _RETIRED


@dataclass(frozen=True)
class Tier:
    """One margin bracket: positions up to `max_notional` (collateral units)."""

    max_notional: int
    imr_bps: int
    mmr_bps: int


@dataclass(frozen=True)
class SymbolRiskParams:
    """Per-symbol risk parameters. tiers=None keeps CONFIG_APPLIED's single tier."""

    tiers: tuple[Tier, ...] | None = None
    liquidation_fee_bps: int | None = None
    insurance_fee_share_bps: int | None = None

    def __post_init__(self) -> None:
        if self.tiers is not None:
            t = tuple(self.tiers)
            object.__setattr__(self, "tiers", t)
            if not 1 <= len(t) <= MAX_TIERS:
                raise ConfigError(f"a tier table has 1..{MAX_TIERS} tiers, not {len(t)}")
            for k, tier in enumerate(t):
                for name, lo, hi in (("max_notional", 1, MAX_POSITION_CAP), ("imr_bps", 0, 10_000),
                                     ("mmr_bps", 0, 10_000)):
                    v = getattr(tier, name)
                    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                        raise ConfigError(f"tier {k}: {name}={v!r} is not an int in [{lo}, {hi}]")
            # the coherence rules are the C core's (the same check set_tiers applies)
            b = ffi.new("int64_t[]", [x.max_notional for x in t])
            i = ffi.new("uint32_t[]", [x.imr_bps for x in t])
            m = ffi.new("uint32_t[]", [x.mmr_bps for x in t])
            if lib.rsx_risk_tiers_check(len(t), b, i, m) < 0:
                raise ConfigError(f"incoherent tier table {t}: bounds must increase, rates must not "
                                  "decrease, mmr <= imr <= 10000 at every tier")
        for name in ("liquidation_fee_bps", "insurance_fee_share_bps"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10_000):
                raise ConfigError(f"{name}={v!r} is not an integer in [0, 10000]")

    def keys(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        if self.tiers is not None:
            out.append((int(Key.TIER_COUNT), len(self.tiers)))
            for k, t in enumerate(self.tiers):
                out += [(tier_key(Key.TIER_BOUND, k), t.max_notional),
                        (tier_key(Key.TIER_IMR, k), t.imr_bps), (tier_key(Key.TIER_MMR, k), t.mmr_bps)]
        if self.liquidation_fee_bps is not None:
            out.append((int(Key.LIQUIDATION_FEE_BPS), self.liquidation_fee_bps))
        if self.insurance_fee_share_bps is not None:
            out.append((int(Key.INSURANCE_FEE_SHARE_BPS), self.insurance_fee_share_bps))
        return out

    @classmethod
    def from_keys(cls, pairs: list[tuple[int, int]]) -> "SymbolRiskParams":
        """Rebuild from journaled (key, value) pairs of one symbol; ConfigError if incoherent."""
        d = dict(pairs)
        tiers = None
        if int(Key.TIER_COUNT) in d:
            n = d[int(Key.TIER_COUNT)]
            try:
                tiers = tuple(Tier(d[tier_key(Key.TIER_BOUND, k)], d[tier_key(Key.TIER_IMR, k)],
                                   d[tier_key(Key.TIER_MMR, k)]) for k in range(n))
            except KeyError as exc:
                raise ConfigError(f"tier table incomplete: missing key {exc}") from None
        known = {int(Key.TIER_COUNT), int(Key.LIQUIDATION_FEE_BPS), int(Key.INSURANCE_FEE_SHARE_BPS)}
        for k in d:
            if k not in known and not (0x100 <= k < 0x100 + MAX_TIERS or 0x200 <= k < 0x200 + MAX_TIERS
                                       or 0x300 <= k < 0x300 + MAX_TIERS):
                raise ConfigError(f"unknown per-symbol risk parameter key {k}")
        return cls(tiers=tiers, liquidation_fee_bps=d.get(int(Key.LIQUIDATION_FEE_BPS)),
                   insurance_fee_share_bps=d.get(int(Key.INSURANCE_FEE_SHARE_BPS)))
