"""The token bucket: pure arithmetic on a clock the caller reads, so tests can drive it."""

from __future__ import annotations

_ONE = 1.0 - 1e-9
"""A token, less the rounding of float arithmetic: a caller back after exactly the wait
it was told finds its token there."""


class TokenBucket:
    """Holds up to ``burst`` tokens, refilled at ``rate`` per second; a request takes one.

    The rate and burst are passed on every call rather than kept, so that a rule changed
    by a reload applies to the buckets it already has (their tokens capped at the new
    burst). A new bucket is full.
    """

    __slots__ = ("stamp", "tokens")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float, rate: float, burst: float) -> float:
        """Take a token at ``now``: 0.0 when taken, else the seconds until one is there."""
        tokens = self.tokens
        if now > self.stamp:  # a clock read before the last call adds nothing
            tokens += (now - self.stamp) * rate
            self.stamp = now
        if tokens > burst:
            tokens = burst
        if tokens >= _ONE:
            self.tokens = tokens - 1.0 if tokens > 1.0 else 0.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / rate

    def give_back(self, burst: float) -> None:
        """Return the token of a request that another rule refused."""
        self.tokens = min(float(burst), self.tokens + 1.0)

    def full_at(self, rate: float, burst: float) -> float:
        """When the bucket is full again (a full bucket is the same as a new one)."""
        return self.stamp + max(0.0, burst - self.tokens) / rate
