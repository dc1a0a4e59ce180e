"""``--workers 2``: a worker killed under load leaves no stale queue depth (issue 10, item 11)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from support.workers import free_port, spawn_workers, worker_pids, workers_started

GUARD_S = 120  # hang guard: two processes load ONNX Runtime on a busy 2-core box
LOAD_CONNECTIONS = 48
BODY = {"inputs": [{"name": "input", "shape": [4, 256], "datatype": "FP32", "data": [0.5] * 1024}]}


async def hammer(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await client.post("/v2/models/mlp/infer", json=BODY)
        except httpx.TransportError:  # the killed worker's connections
            continue


@pytest.mark.e2e
@pytest.mark.hostile
async def test_a_killed_workers_queue_depth_does_not_stay_in_the_gauge(tmp_path: Path) -> None:
    port = free_port()
    process = await spawn_workers(port, "--no-auth")
    assert process.stderr is not None
    try:
        await asyncio.wait_for(workers_started(process.stderr, 2), GUARD_S)
        limits = httpx.Limits(max_connections=LOAD_CONNECTIONS)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=GUARD_S) as client:
            stop = asyncio.Event()
            load = [asyncio.ensure_future(hammer(client, stop)) for _ in range(LOAD_CONNECTIONS)]
            await client.post("/v2/models/mlp/infer", json=BODY)  # the load is flowing
            # Both, so that a queue that was not empty at that instant is killed for sure.
            victims = worker_pids(process.pid)
            for victim in victims:
                os.kill(victim, signal.SIGKILL)
            # The replacements announce themselves like the first two did.
            await asyncio.wait_for(workers_started(process.stderr, len(victims)), GUARD_S)
            drain = asyncio.ensure_future(process.stderr.read())  # keep the pipe from filling
            stop.set()
            await asyncio.wait_for(asyncio.gather(*load), GUARD_S)
            metrics = (await client.get("/metrics")).text
        depths = re.findall(r"tensorgate_queue_depth\{[^}]*\} (\S+)", metrics)
        assert depths
        assert [float(d) for d in depths] == [0.0] * len(depths), metrics
        assert not set(victims) & set(worker_pids(process.pid))
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), GUARD_S)
    await asyncio.wait_for(drain, GUARD_S)
