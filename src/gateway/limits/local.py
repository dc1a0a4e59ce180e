"""This process's buckets and in-flight counts: each rule's even share of the server
(``Rule.local_*``), bounded in memory."""

from __future__ import annotations

import logging

from gateway.limits.bucket import TokenBucket
from gateway.limits.rules import BucketId, Rule

logger = logging.getLogger(__name__)


class LocalLimits:
    """Token buckets and in-flight counts kept in this process.

    At most ``max_keys`` buckets are kept: past it, those untouched for longer than any
    rule takes to refill its burst are dropped (they are full, the same as new ones), then,
    if that is not enough, the least recently used half (those callers start again from a
    full bucket; a warning says so). In-flight counts are removed when they fall to 0.
    """

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self._buckets: dict[BucketId, TokenBucket] = {}
        self._inflight: dict[BucketId, int] = {}
        self.refill_s = 0.0
        """The longest time any rule's bucket takes to refill (set as rules change)."""

    def take(self, rule: Rule, bucket_id: BucketId, now: float) -> float:
        """Take a token of ``rule``'s local share: 0.0, else the seconds until one is there."""
        bucket = self._buckets.get(bucket_id)
        if bucket is None:
            bucket = self._new_bucket(bucket_id, rule.local_burst, now)
        return bucket.take(now, rule.local_rate, rule.local_burst)

    def give_back(self, rule: Rule, bucket_id: BucketId) -> None:
        """Return a token taken for a request that another rule then refused."""
        bucket = self._buckets.get(bucket_id)
        if bucket is not None:
            bucket.give_back(rule.local_burst)

    def acquire(self, bucket_id: BucketId, limit: int) -> bool:
        """Count one more request in flight, unless ``limit`` are already."""
        count = self._inflight.get(bucket_id, 0)
        if count >= limit:
            return False
        self._inflight[bucket_id] = count + 1
        return True

    def release(self, bucket_id: BucketId) -> None:
        """One request of ``bucket_id`` has ended."""
        count = self._inflight.get(bucket_id, 0) - 1
        if count > 0:
            self._inflight[bucket_id] = count
        else:
            self._inflight.pop(bucket_id, None)

    def in_flight(self, bucket_id: BucketId) -> int:
        """Requests of ``bucket_id`` in flight in this process."""
        return self._inflight.get(bucket_id, 0)

    def __len__(self) -> int:
        return len(self._buckets)

    def _new_bucket(self, bucket_id: BucketId, burst: float, now: float) -> TokenBucket:
        if len(self._buckets) >= self.max_keys:
            self._make_room(now)
        bucket = TokenBucket(burst, now)
        self._buckets[bucket_id] = bucket
        return bucket

    def _make_room(self, now: float) -> None:
        full_before = now - self.refill_s
        buckets = self._buckets
        for bucket_id in [b for b, bucket in buckets.items() if bucket.stamp <= full_before]:
            del buckets[bucket_id]
        if len(buckets) < self.max_keys:
            return
        by_age = sorted(buckets.items(), key=lambda item: item[1].stamp)
        for bucket_id, _ in by_age[: len(by_age) // 2]:
            del buckets[bucket_id]
        logger.warning(
            "limits.max_keys (%d) buckets are in use: the %d least recently used were reset",
            self.max_keys,
            len(by_age) // 2,
        )
