"""The circuit breaker toward one risk shard (specs/ws-api.md 9).

CLOSED -> OPEN after ``failures`` failures within ``window_s``; OPEN refuses
everything for ``cooldown_s``; then HALF_OPEN admits exactly one probe: its
answer closes the breaker, its failure reopens it. Every non-terminal state
has an exit (RSX lesson: a half-open state that admits nothing is an outage).
"""

from __future__ import annotations

import collections
import enum
import logging
import time

__all__ = ["Breaker", "BreakerState"]

log = logging.getLogger("rsx.gateway")


class BreakerState(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class Breaker:
    def __init__(self, name: str, failures: int, window_s: float, cooldown_s: float,
                 clock=time.monotonic) -> None:
        self.name = name
        self.threshold, self.window_s, self.cooldown_s = failures, window_s, cooldown_s
        self.clock = clock
        self.state = BreakerState.CLOSED
        self._failures: collections.deque[float] = collections.deque()
        self._opened_at = 0.0
        self._probe_out = False
        self.opens = 0
        self.refused = 0

    def allow(self) -> bool:
        """May a request go now? In HALF_OPEN, True once (that request is the probe)."""
        if self.state is BreakerState.CLOSED:
            return True
        now = self.clock()
        if self.state is BreakerState.OPEN and now - self._opened_at >= self.cooldown_s:
            self._set(BreakerState.HALF_OPEN)
            self._probe_out = False
        if self.state is BreakerState.HALF_OPEN and not self._probe_out:
            self._probe_out = True
            return True
        self.refused += 1
        return False

    def retry_in(self) -> float:
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.cooldown_s - (self.clock() - self._opened_at))

    def success(self) -> None:
        if self.state is not BreakerState.CLOSED:
            self._failures.clear()
            self._set(BreakerState.CLOSED)

    def failure(self) -> None:
        now = self.clock()
        if self.state is BreakerState.HALF_OPEN:
            self._open(now)
            return
        if self.state is BreakerState.OPEN:
            return
        f = self._failures
        f.append(now)
        while f and now - f[0] > self.window_s:
            f.popleft()
        if len(f) >= self.threshold:
            self._open(now)

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._failures.clear()
        self.opens += 1
        self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is not self.state:
            log.warning("circuit breaker %s: %s -> %s", self.name, self.state.name, state.name)
            self.state = state
