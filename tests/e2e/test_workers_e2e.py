"""``tensorgate serve --workers 2``: one port, one dev secret, one merged /metrics."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from support.paths import DEMO_MODELS

STARTUP_GUARD_S = 120  # hang guard: two processes load ONNX Runtime on a busy 2-core box


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_workers(stream: asyncio.StreamReader, workers: int) -> None:
    started = 0
    while started < workers:
        line = await stream.readline()
        if not line:
            raise RuntimeError("tensorgate exited before its workers started")
        started += b"Application startup complete" in line


@pytest.mark.e2e
async def test_two_workers_share_the_dev_secret_and_merge_metrics(tmp_path: Path) -> None:
    port = free_port()
    exe = Path(sys.executable).with_name("tensorgate")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENSORGATE_")}
    env["TENSORGATE_AUTH__STATE_DIR"] = str(tmp_path / "state")  # dev mode: a fresh secret
    process = await asyncio.create_subprocess_exec(
        str(exe), "serve", "--models", str(DEMO_MODELS), "--port", str(port),
        "--workers", "2", "--log-level", "info",
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        await asyncio.wait_for(wait_for_workers(process.stderr, 2), STARTUP_GUARD_S)
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
        served = re.search(
            r'tensorgate_inference_requests_total\{model="digits",status="200"\} (\S+)', metrics
        )
        assert served is not None
        assert float(served.group(1)) == 12.0  # whichever worker answered the scrape
        assert openapi[0] == openapi[1]
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), STARTUP_GUARD_S)
    drain.cancel()
