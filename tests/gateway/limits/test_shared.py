"""The shared buckets: a real Redis holds one bucket for several processes, taken in
leases; Redis refusing, silent or gone never fails a check (the even share decides)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.auth.principal import Principal
from gateway.errors import RateLimited
from gateway.limits.limiter import Limiter
from gateway.limits.local import LocalLimits
from gateway.limits.redis_client import redis_client, redis_location, redis_password
from gateway.limits.shared import SharedBuckets
from gateway.settings import LimitRule, RedisSettings
from support.redis_server import RedisServer
from support.workers import free_port

GUARD_S = 10  # hang guard only


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class Failures:
    def __init__(self) -> None:
        self.operations: list[str] = []

    def redis_failed(self, operation: str) -> None:
        self.operations.append(operation)


def rule(**fields: Any) -> LimitRule:
    return LimitRule.model_validate({"name": "r", **fields})


OPEN: list[Limiter] = []


@pytest.fixture(autouse=True)
async def closed_after() -> AsyncIterator[None]:
    """Every limiter a test made has its Redis connections closed, pass or fail."""
    yield
    while OPEN:
        shared = OPEN.pop().shared
        assert shared is not None
        await shared.close()


def limiter(
    url: str,
    rules: list[LimitRule],
    *,
    processes: int = 1,
    clock: Clock | None = None,
    failures: Failures | None = None,
    lease_fraction: float = 0.05,
    timeout_ms: float = 200.0,
) -> Limiter:
    settings = RedisSettings(url=url, timeout_ms=timeout_ms, lease_fraction=lease_fraction)
    client = redis_client(settings)
    tick = clock or Clock()

    def shared(fallback: LocalLimits) -> SharedBuckets:
        return SharedBuckets(
            client,
            fallback,
            prefix="tg-test",
            lease_fraction=settings.lease_fraction,
            timeout_s=settings.timeout_ms / 1000,
            retry_after_failure_s=settings.retry_after_failure_s,
            observer=failures,
            clock=tick,
        )

    made = Limiter(rules, processes=processes, shared=shared, clock=tick)
    OPEN.append(made)
    return made


async def admitted(limiter: Limiter, subject: str = "alice", asked: int = 1) -> int:
    passed = 0
    for _ in range(asked):
        try:
            await limiter.enter(Principal(subject, frozenset()), "mlp")
        except RateLimited:
            continue
        passed += 1
    return passed


async def test_redis_refusing_connections_falls_back_to_the_even_share() -> None:
    clock, failures = Clock(), Failures()
    url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    rules = [rule(rate_per_s=1, burst=10)]
    check = limiter(url, rules, processes=2, clock=clock, failures=failures)
    assert await admitted(check, asked=8) == 5  # this process's half of the burst
    assert failures.operations == ["take"]  # asked once, then left alone for a while
    assert check.shared is not None
    assert not check.shared.available
    clock.now += 2.0  # limits.redis.retry_after_failure_s
    assert await admitted(check, asked=1) == 1
    assert failures.operations == ["take", "take"]
    assert not await check.shared.ping()


async def test_a_silent_redis_costs_one_timeout_then_the_even_share_decides() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads whatever comes, answers nothing, until closed
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    failures = Failures()
    check = limiter(f"redis://127.0.0.1:{port}/0", [rule(rate_per_s=1, burst=4)],
                    failures=failures, timeout_ms=50)  # fmt: skip
    async with server:
        assert await asyncio.wait_for(admitted(check, asked=6), GUARD_S) == 4
    assert failures.operations == ["take"]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.config_resetstat()
    yield client
    await client.aclose()


async def script_calls(redis: Redis) -> int:
    """Runs of the take script, each of which reads its bucket with one HMGET (EVALSHA's
    own count includes the first call, refused with NOSCRIPT and sent again)."""
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


@pytest.mark.e2e
async def test_two_processes_share_one_bucket_exactly(
    redis_server: RedisServer, redis: Redis
) -> None:
    rules = [rule(rate_per_s=0.001, burst=40)]  # no refill to speak of within the test
    # Each a "process" of a server of two: without Redis each would keep 20.
    first, second = (limiter(redis_server.url, rules, processes=2) for _ in range(2))
    passed = 0
    for _ in range(30):
        passed += await admitted(first) + await admitted(second)
    assert passed == 40
    keys = [key.decode() async for key in redis.scan_iter("tg-test:*")]
    assert len(keys) == 1
    assert re.fullmatch(r"tg-test:\{s:r:[0-9a-f]{24}\}:tb", keys[0])
    assert 0 < await redis.pttl(keys[0]) <= 40 / 0.001 * 1000 + 1000  # gone once full again
    assert "alice" not in keys[0]  # no subject stored in clear


@pytest.mark.e2e
async def test_a_process_takes_leases_and_remembers_an_empty_bucket(
    redis_server: RedisServer, redis: Redis
) -> None:
    clock = Clock()
    rules = [rule(rate_per_s=0.001, burst=1000)]
    check = limiter(redis_server.url, rules, clock=clock, lease_fraction=0.05)
    assert await admitted(check, asked=200) == 200
    assert await script_calls(redis) == 4  # leases of 50 tokens
    second_rule = [rule(rate_per_s=0.001, burst=1000)]
    other = limiter(redis_server.url, second_rule, clock=clock, lease_fraction=0.5)
    assert await admitted(other, asked=2000) == 800  # the rest of the bucket, shared
    calls = await script_calls(redis)
    # Empty: Redis said when the next token comes, and nobody asks again before then.
    assert await admitted(other, asked=50) == 0
    assert await script_calls(redis) == calls


@pytest.mark.e2e
async def test_redis_going_away_fails_no_check(redis_server: RedisServer) -> None:
    clock, failures = Clock(), Failures()
    check = limiter(redis_server.url, [rule(rate_per_s=0.001, burst=100)], processes=2,
                    clock=clock, failures=failures, lease_fraction=0.01)  # fmt: skip
    assert check.shared is not None
    assert await check.shared.ping()
    assert await admitted(check, asked=10) == 10
    redis_server.stop()
    assert await admitted(check, asked=60) == 50  # this process's share of the burst
    assert failures.operations == ["take"]


async def test_a_check_cancelled_while_redis_answers_gives_its_slot_back() -> None:
    asked = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        asked.set()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    check = limiter(f"redis://127.0.0.1:{port}/0", [rule(rate_per_s=1, burst=4, concurrency=1)],
                    timeout_ms=5000)  # fmt: skip
    async with server:
        waiting = asyncio.ensure_future(check.enter(Principal("alice", frozenset()), "mlp"))
        await asyncio.wait_for(asked.wait(), GUARD_S)
        waiting.cancel()  # as the server cancels requests at the end of its grace period
        with pytest.raises(asyncio.CancelledError):
            await waiting
    # Its in-flight slot is free again: the next check of alice gets it (Redis is gone by
    # now, so its rate is this process's share).
    assert await check.enter(Principal("alice", frozenset()), "mlp") is not None


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        ({"url": "http://cache:6379"}, "must start with redis://, rediss:// or unix://"),
        ({"url": "redis://c", "tls_ca_file": "ca.pem"}, "need a rediss:// URL"),
        ({"url": "rediss://c", "tls_certfile": "c.pem"}, "tls_certfile and tls_keyfile go"),
        ({"url": "redis://c", "password": "p", "password_file": "f"}, "not both"),
        ({"lease_fraction": 0.9}, "lease_fraction"),
    ],
)
def test_redis_settings_that_cannot_work_are_refused(redis: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisSettings.model_validate(redis)


def test_the_password_comes_from_its_file_and_the_location_is_logged_without_it(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text("s3cret\n")
    settings = RedisSettings(url="rediss://user@cache:6380/1", password_file=secret)
    assert redis_password(settings) == "s3cret"
    assert redis_location(settings) == "rediss://cache:6380/1"
