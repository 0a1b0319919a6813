"""Order ids the shard mints itself (liquidation rounds, ADL events).

RFC 9562 UUIDv7: 48-bit Unix milliseconds, version 7, then 74 bits that here
are not random but (shard id, counter), so a replayed or recovered shard mints
the same ids from the same state, and two shards never collide. A fresh id per
round is required: the ME deduplicates by (user, order id).
"""

from __future__ import annotations

__all__ = ["uuid7"]


def uuid7(ts_ns: int, shard_id: int, counter: int) -> bytes:
    """16 bytes: unix_ts_ms(48) | ver 7 (4) | counter high (12) | var 10 (2) | shard (16) | counter low (46)."""
    if not 0 <= counter < (1 << 58) or not 0 <= shard_id < (1 << 16):
        raise ValueError("uuid7: counter or shard id out of range")
    ms = (ts_ns // 1_000_000) & ((1 << 48) - 1)
    hi12 = (counter >> 46) & 0xFFF
    lo46 = counter & ((1 << 46) - 1)
    value = (ms << 80) | (0x7 << 76) | (hi12 << 64) | (0b10 << 62) | (shard_id << 46) | lo46
    return value.to_bytes(16, "big")
