"""``tensorgate serve --workers 2`` with the limits' buckets in a real Redis: a limit holds
for the whole server, whichever worker each request reaches; with Redis gone, requests are
still answered (each worker keeping to its even share) and the failures are counted."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from support.redis_server import RedisServer
from support.workers import (
    Answer,
    ask_on_a_new_connection,
    free_port,
    spawn_workers,
    workers_started,
)

pytestmark = pytest.mark.e2e

GUARD_S = 120  # hang guard: two processes load ONNX Runtime on a busy 2-core box
BURST = 20
MLP_ROW = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 256], "datatype": "FP32", "data": [0.5] * 256}]}
).encode()
DIGITS_ROW = json.dumps(
    {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
).encode()
# One bucket per model, so that each scene starts full; no refill to speak of meanwhile.
# "spare" is no model at all: its requests, once let through, are answered 404.
RULES = [
    {"name": f"{model}-burst", "key": "shared", "match": {"models": [model]},
     "rate_per_s": 0.001, "burst": BURST}
    for model in ("mlp", "digits", "spare")
]  # fmt: skip


@dataclass
class Server:
    port: int
    process: asyncio.subprocess.Process
    redis: RedisServer

    async def ask(self, path: str, body: bytes) -> Answer:
        return await ask_on_a_new_connection(self.port, self.process.pid, "POST", path, body)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    with RedisServer() as redis:
        port = free_port()
        env = {
            "TENSORGATE_LIMITS__RULES": json.dumps(RULES),
            "TENSORGATE_LIMITS__REDIS__URL": redis.url,
            "TENSORGATE_REFUSAL_PACING_MAX_MS": "0",
        }
        process = await spawn_workers(port, "--no-auth", env=env)
        assert process.stderr is not None
        try:
            await asyncio.wait_for(workers_started(process.stderr, 2), GUARD_S)
            yield Server(port, process, redis)
        finally:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.communicate(), GUARD_S)


async def test_the_limit_holds_for_the_whole_server_then_redis_goes_away(server: Server) -> None:
    # New connections, which the kernel spreads over both workers: 20 pass in all, where
    # each worker's even share alone would have let 10 through each.
    answers = [await server.ask("/v2/models/mlp/infer", MLP_ROW) for _ in range(3 * BURST)]
    assert [a.status for a in answers].count(200) == BURST
    assert {a.status for a in answers} == {200, 429}
    assert len({a.worker for a in answers}) == 2, "one worker took every connection"
    refused = next(a for a in answers if a.status == 429)
    assert b"rate limit 'mlp-burst' exceeded" in refused.body

    # One kept-alive connection reaches one worker: it still gets the whole burst.
    url = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=url, timeout=GUARD_S) as client:
        statuses = [
            (await client.post("/v2/models/digits/infer", content=DIGITS_ROW)).status_code
            for _ in range(2 * BURST)
        ]
        assert statuses == [200] * BURST + [429] * BURST
        metrics = (await client.get("/metrics")).text
        assert _sample(metrics, 'kind="rate",model="mlp",rule="mlp-burst"') == 2 * BURST
        assert _sample(metrics, 'kind="rate",model="digits",rule="digits-burst"') == BURST

        # Redis gone: nothing fails, each worker keeps to its even share of a fresh bucket.
        server.redis.stop()
        spare = [
            (await client.post("/v2/models/spare/infer", content=DIGITS_ROW)).status_code
            for _ in range(BURST)
        ]
        assert spare == [404] * (BURST // 2) + [429] * (BURST // 2)
        metrics = (await client.get("/metrics")).text
        assert _sample(metrics, 'operation="take"') >= 1
        assert _sample(metrics, 'kind="rate",model="(unknown)",rule="spare-burst"') == BURST // 2


def _sample(metrics: str, labels: str) -> float:
    """The value of the one sample whose labels are ``labels`` (in Prometheus' order)."""
    pattern = re.compile(r"^tensorgate_\w+_total\{" + re.escape(labels) + r"\} (\S+)$", re.M)
    found = pattern.findall(metrics)
    assert len(found) == 1, f"{labels}: {found}"
    return float(found[0])
