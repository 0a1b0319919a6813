"""Token buckets and connection counters (specs/ws-api.md 8).

A bucket holds at most one second of its rate, starts full and refills
continuously; ``take`` consumes one token or refuses. Rate 0 means no limit.
Buckets are keyed (per user, per IP) and idle full buckets are forgotten, so
memory follows the active keys only.
"""

from __future__ import annotations

import time

__all__ = ["TokenBucket", "KeyedBuckets", "Limits", "ConnectionCounts"]


class TokenBucket:
    __slots__ = ("rate", "tokens", "stamp")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = float(rate)
        self.tokens = float(rate)
        self.stamp = now

    def refill(self, now: float) -> float:
        t = self.tokens + (now - self.stamp) * self.rate
        self.tokens = t if t < self.rate else self.rate
        self.stamp = now
        return self.tokens

    def take(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        if self.refill(now) >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_s(self) -> float:
        """Seconds until one token is available (0 if one is)."""
        return 0.0 if self.rate <= 0 or self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


class KeyedBuckets:
    """One bucket per key, created full on first use, dropped once idle and full again."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._b: dict = {}
        self._sweep_at = 0.0

    def take(self, key, now: float) -> bool:
        if self.rate <= 0:
            return True
        b = self._b.get(key)
        if b is None:
            if now >= self._sweep_at:
                self._sweep(now)
            b = self._b[key] = TokenBucket(self.rate, now)
        return b.take(now)

    def _sweep(self, now: float) -> None:
        self._b = {k: b for k, b in self._b.items() if b.refill(now) < b.rate}
        self._sweep_at = now + 10.0

    def __len__(self) -> int:
        return len(self._b)


class Limits:
    """The order and cancel buckets of one gateway: per user, per IP, per instance.

    ``check(kind, user, ip)`` returns None when allowed, else the name of the
    bucket that refused ("user orders", ...). Buckets are consulted in the
    order IP, user, instance and the first refusal stops (the later buckets
    are not charged).
    """

    def __init__(self, g, clock=time.monotonic) -> None:
        now = clock()
        self.clock = clock
        self._sets = {
            "orders": (KeyedBuckets(g.order_rate_ip), KeyedBuckets(g.order_rate_user),
                       TokenBucket(g.order_rate_instance, now)),
            "cancels": (KeyedBuckets(g.cancel_rate_ip), KeyedBuckets(g.cancel_rate_user),
                        TokenBucket(g.cancel_rate_instance, now)),
        }
        self.refused: dict[str, int] = {}

    def check(self, kind: str, user: int, ip: str) -> str | None:
        now = self.clock()
        per_ip, per_user, instance = self._sets[kind]
        if not per_ip.take(ip, now):
            which = f"ip {kind}"
        elif not per_user.take(user, now):
            which = f"user {kind}"
        elif not instance.take(now):
            which = f"instance {kind}"
        else:
            return None
        self.refused[which] = self.refused.get(which, 0) + 1
        return which


class ConnectionCounts:
    """Open connections per user and per IP, with caps (checked before the upgrade)."""

    def __init__(self, per_user: int, per_ip: int, total: int) -> None:
        self.per_user, self.per_ip, self.total = per_user, per_ip, total
        self.users: dict[int, int] = {}
        self.ips: dict[str, int] = {}
        self.count = 0

    def refusal(self, user: int, ip: str) -> tuple[int, int, str] | None:
        """(http, E code, message) if one more connection is not allowed, else None."""
        if self.count >= self.total:
            return 503, 1104, f"gateway at its {self.total} connections"
        if self.users.get(user, 0) >= self.per_user:
            return 429, 1103, f"user {user} already has {self.per_user} connections"
        if self.ips.get(ip, 0) >= self.per_ip:
            return 429, 1103, f"address {ip} already has {self.per_ip} connections"
        return None

    def add(self, user: int, ip: str) -> None:
        self.users[user] = self.users.get(user, 0) + 1
        self.ips[ip] = self.ips.get(ip, 0) + 1
        self.count += 1

    def remove(self, user: int, ip: str) -> None:
        for table, key in ((self.users, user), (self.ips, ip)):
            n = table.get(key, 0) - 1
            if n > 0:
                table[key] = n
            else:
                table.pop(key, None)
        self.count -= 1
