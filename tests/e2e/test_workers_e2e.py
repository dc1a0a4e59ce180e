"""``tensorgate serve --workers 2``: one port, one dev secret, one merged /metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from gateway.serving.cpus import available_cpus
from support.scrape import parse_samples, sample
from support.workers import free_port, spawn_workers, worker_pids, workers_started

STARTUP_GUARD_S = 120  # hang guard: two processes load ONNX Runtime on a busy 2-core box


@pytest.mark.e2e
async def test_two_workers_share_the_dev_secret_and_merge_metrics(tmp_path: Path) -> None:
    port = free_port()
    # Dev mode: a fresh secret in a state directory of the test's own.
    state = {"TENSORGATE_AUTH__STATE_DIR": str(tmp_path / "state")}
    process = await spawn_workers(port, env=state)
    # `tensorgate token` below reads the same state directory, nothing else of ours.
    exe = Path(sys.executable).with_name("tensorgate")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENSORGATE_")} | state
    assert process.stderr is not None
    try:
        await asyncio.wait_for(workers_started(process.stderr, 2), STARTUP_GUARD_S)
        drain = asyncio.ensure_future(process.stderr.read())  # keep the pipe from filling
        minted = await asyncio.create_subprocess_exec(
            str(exe), "token", stdout=asyncio.subprocess.PIPE, env=env
        )
        token = (await minted.communicate())[0].decode().strip()
        headers = {"Authorization": f"Bearer {token}"}
        body = {
            "inputs": [
                {"name": "pixels", "shape": [2, 64], "datatype": "FP32", "data": [0.5] * 128}
            ]
        }
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, headers=headers) as client:
            # Concurrent connections, so both workers take requests; each checks the token
            # with the dev secret the parent created and passed on.
            answers = await asyncio.gather(
                *[client.post("/v2/models/digits/infer", json=body) for _ in range(12)]
            )
            assert [a.status_code for a in answers] == [200] * 12
            assert answers[0].json()["outputs"][0]["shape"] == [2]
            metrics = (await client.get("/metrics")).text
            openapi = [(await client.get("/openapi.json")).json() for _ in range(2)]
        served = sample(
            parse_samples(metrics),
            "tensorgate_inference_requests_total",
            model="digits",
            protocol="http",
            status="200",
            version="1",
        )
        assert served == 12.0  # whichever worker answered the scrape
        assert openapi[0] == openapi[1]
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), STARTUP_GUARD_S)
    drain.cancel()


@pytest.mark.e2e
async def test_auto_starts_one_worker_per_cpu_this_process_may_use() -> None:
    port = free_port()
    process = await spawn_workers(port, "--no-auth", workers="auto")
    assert process.stderr is not None
    expected = available_cpus()  # this test runs in the same cgroup, with the same affinity
    try:
        await asyncio.wait_for(workers_started(process.stderr, expected), STARTUP_GUARD_S)
        assert len(worker_pids(process.pid)) == (expected if expected > 1 else 0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/v2/health/ready")).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), STARTUP_GUARD_S)
