"""Token buckets in Redis, shared by every process of every replica, taken in leases.

Each bucket is one Redis hash (tokens, time of the last refill), changed only by one Lua
script that refills it by the time elapsed (Redis's own clock, so the gateways' clocks do
not matter) and takes up to a lease of tokens at once. The key is
``<prefix>:{<namespace>:<digest of the caller's key>}:tb``: one key per script call, so a
Redis Cluster proxy never needs a cross-slot operation, no subject stored in clear, and
each key expires once its bucket would be full again (a full bucket is a new one).

A process keeps what a lease gave it and takes from it without a round trip; only when
it is used up (or older than ``LEASE_S``) does it ask Redis again, one request asking at a
time per bucket while the others of that bucket wait for its answer. A lease is at most
``lease_fraction`` of the burst (at least one token): over any window the service admits
at most the rule's rate times the window, plus its burst, plus one lease per process.
When the bucket is empty, the wait Redis computed is remembered, and the process refuses
that caller without asking again until then.

Redis down, slow (past ``timeout_ms``) or answering an error never fails a request: the
check falls back to the process's even share (``LocalLimits``), counted in
``tensorgate_limits_redis_errors_total``, and Redis is asked again after
``retry_after_failure_s``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.limits.local import LocalLimits
from gateway.limits.rules import BucketId, Rule

logger = logging.getLogger(__name__)

LEASE_S = 1.0
"""Tokens leased and not used within this long are dropped, so that no process hoards
them (they would let a burst through later)."""

TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
end
if now > stamp then
  tokens = tokens + (now - stamp) * rate
  stamp = now
end
if tokens > burst then
  tokens = burst
end
local granted = math.floor(tokens)
if granted > want then
  granted = want
end
tokens = tokens - granted
redis.call('HSET', KEYS[1], 't', string.format('%.6f', tokens), 's', string.format('%.6f', stamp))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
if granted > 0 then
  return {granted, '0'}
end
return {0, string.format('%.6f', (1 - tokens) / rate)}
"""
"""KEYS[1]: the bucket; ARGV: rate per second, burst, tokens wanted. Returns the tokens
granted and, when none, the seconds until one is there."""


class RedisObserver(Protocol):
    """Told about each failed Redis operation (metrics implement it)."""

    def redis_failed(self, operation: str) -> None:
        """One operation failed or timed out."""


class _Lease:
    __slots__ = ("blocked_until", "expires", "pending", "tokens")

    def __init__(self) -> None:
        self.tokens = 0
        self.expires = 0.0
        self.blocked_until = 0.0
        self.pending: asyncio.Future[None] | None = None


class SharedBuckets:
    """The rate half of every rule, kept in Redis for the whole service."""

    def __init__(
        self,
        client: Redis,
        fallback: LocalLimits,
        *,
        prefix: str,
        lease_fraction: float,
        timeout_s: float,
        retry_after_failure_s: float,
        observer: RedisObserver | None = None,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._fallback = fallback
        self._prefix = prefix
        self._lease_fraction = lease_fraction
        self._timeout_s = timeout_s
        self._retry_after_failure_s = retry_after_failure_s
        self._observer = observer
        self._clock = clock
        self._script = client.register_script(TAKE_SCRIPT)
        self._leases: dict[BucketId, _Lease] = {}
        self._keys: dict[BucketId, str] = {}
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        """False while the last operation failed and Redis is not asked (the even share)."""
        return self._clock() >= self._down_until

    async def take(self, rule: Rule, bucket_id: BucketId, now: float) -> float:
        """Take a token: 0.0 when taken, else the seconds until one is there."""
        lease = self._leases.get(bucket_id)
        if lease is None:
            lease = self._new_lease(bucket_id, now)
        answer = self._without_asking(rule, bucket_id, lease, now)
        if answer is None and lease.pending is not None:
            await asyncio.shield(lease.pending)  # another request of this bucket is asking
            answer = self._without_asking(rule, bucket_id, lease, self._clock())
        return answer if answer is not None else await self._ask(rule, bucket_id, lease)

    def _without_asking(
        self, rule: Rule, bucket_id: BucketId, lease: _Lease, now: float
    ) -> float | None:
        """What the lease, a remembered empty bucket or Redis being down answers (as
        ``take``), or None: Redis is to be asked."""
        if lease.tokens > 0 and now < lease.expires:
            lease.tokens -= 1
            return 0.0
        if now < lease.blocked_until:
            return lease.blocked_until - now
        if now < self._down_until:
            return self._fallback.take(rule, bucket_id, now)
        return None

    def give_back(self, rule: Rule, bucket_id: BucketId) -> None:
        """Return a token taken for a request that another rule then refused."""
        lease = self._leases.get(bucket_id)
        if lease is not None and self._clock() < lease.expires:
            lease.tokens += 1
        else:
            self._fallback.give_back(rule, bucket_id)

    async def ping(self) -> bool:
        """Whether Redis answers now (at start-up: logged, never fatal)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("ping", exc)
            return False
        return True

    async def close(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    async def _ask(self, rule: Rule, bucket_id: BucketId, lease: _Lease) -> float:
        assert rule.rate is not None
        want = max(1, math.floor(rule.burst * self._lease_fraction))
        pending = asyncio.get_running_loop().create_future()
        lease.pending = pending
        try:
            async with asyncio.timeout(self._timeout_s):
                granted, wait = await self._script(
                    keys=[self._key(rule, bucket_id)], args=[rule.rate, rule.burst, want]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("take", exc)
            return self._fallback.take(rule, bucket_id, self._clock())
        finally:
            lease.pending = None
            pending.set_result(None)
        now = self._clock()
        if int(granted) > 0:
            kept = lease.tokens if now < lease.expires else 0  # an older lease lapses
            lease.tokens = kept + int(granted) - 1
            lease.expires = now + LEASE_S
            return 0.0
        wait_s = float(wait)
        lease.blocked_until = now + wait_s
        return wait_s

    def _key(self, rule: Rule, bucket_id: BucketId) -> str:
        key = self._keys.get(bucket_id)
        if key is None:
            digest = hashlib.blake2b(bucket_id[1].encode(), digest_size=12).hexdigest()
            key = f"{self._prefix}:{{{rule.namespace}:{digest}}}:tb"
            self._keys[bucket_id] = key
        return key

    def _new_lease(self, bucket_id: BucketId, now: float) -> _Lease:
        if len(self._leases) >= self._fallback.max_keys:
            for stale in [b for b, lease in self._leases.items() if _idle(lease, now)]:
                del self._leases[stale]
                self._keys.pop(stale, None)
        lease = _Lease()
        self._leases[bucket_id] = lease
        return lease

    def _failed(self, operation: str, exc: BaseException) -> None:
        if self._observer is not None:
            self._observer.redis_failed(operation)
        now = self._clock()
        if now >= self._down_until:
            logger.warning(
                "limits: Redis %s failed (%s); each process keeps to its even share of the "
                "limits for %g s, then asks again",
                operation,
                type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
                self._retry_after_failure_s,
            )
        self._down_until = now + self._retry_after_failure_s


def _idle(lease: _Lease, now: float) -> bool:
    return lease.pending is None and now >= lease.expires and now >= lease.blocked_until
