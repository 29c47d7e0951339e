"""Per-caller request budgets: a token bucket per API key (or client address), so one caller cannot
take the server's retrieval and generation time from everyone else."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """`per_minute` requests a minute per caller, with bursts of up to `per_minute`; 0 means no limit.

    Buckets that have refilled are forgotten once more than `max_callers` are kept, so memory stays
    bounded however many callers (addresses) come by; a forgotten bucket is the same as a full one.
    """

    def __init__(
        self, per_minute: int, *, max_callers: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_callers = max_callers
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, when counted)
        self._lock = threading.Lock()

    def wait(self, caller: str) -> float:
        """0 when `caller` may go now (one request is counted), else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens = self._tokens(caller, now)
            if tokens < 1:
                self._buckets[caller] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[caller] = (tokens - 1, now)
            if len(self._buckets) > self.max_callers:
                self._forget(now)
            return 0.0

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, caller: str, now: float) -> float:
        tokens, counted = self._buckets.get(caller, (self.capacity, now))
        return min(self.capacity, tokens + (now - counted) * self.rate)

    def _forget(self, now: float) -> None:
        """Drop full buckets; if that is not enough, keep the most recently used half."""
        self._buckets = {c: b for c, b in self._buckets.items() if self._tokens(c, now) < self.capacity}
        if len(self._buckets) > self.max_callers:
            recent = sorted(self._buckets.items(), key=lambda item: item[1][1])[-(self.max_callers // 2) :]
            self._buckets = dict(recent)
