"""``tensorgate serve --workers 2`` behaves as one server (issue 18, item 3): a load or an
unload reaches every worker before it answers, statistics count every worker, and a worker
the supervisor restarts comes up with the changes made through the API.

Each check asks on new connections and reads from /proc which worker answered each, and
asks until both have answered at least once: a worker that missed a change is found."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.paths import DEMO_MODELS
from support.workers import (
    Answer,
    ask_on_a_new_connection,
    free_port,
    spawn_workers,
    worker_pids,
    workers_started,
)

pytestmark = pytest.mark.e2e

GUARD_S = 120  # hang guard: two processes load ONNX Runtime on a busy 2-core box
CONNECTIONS = 12
MAX_CONNECTIONS = 200  # asked until both workers answered: the kernel picks who accepts
ROW = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 256], "datatype": "FP32", "data": [0.5] * 256}]}
).encode()


@dataclass
class Workers:
    """A running ``tensorgate serve --workers 2`` without authentication."""

    port: int
    process: asyncio.subprocess.Process
    models: Path

    async def ask(self, method: str, path: str, body: bytes = b"") -> Answer:
        """One request on a new connection."""
        return await ask_on_a_new_connection(self.port, self.process.pid, method, path, body)

    async def ask_everyone(self, method: str, path: str) -> list[Answer]:
        """``CONNECTIONS`` requests on new connections, more until both workers answered."""
        answers = [await self.ask(method, path) for _ in range(CONNECTIONS)]
        while len({a.worker for a in answers}) < 2 and len(answers) < MAX_CONNECTIONS:
            answers.append(await self.ask(method, path))
        assert len({a.worker for a in answers}) == 2, "one worker took every connection"
        return answers


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[Workers]:
    models = tmp_path / "models"
    shutil.copytree(DEMO_MODELS, models)
    port = free_port()
    process = await spawn_workers(port, "--no-auth", models=models)
    assert process.stderr is not None
    try:
        await asyncio.wait_for(workers_started(process.stderr, 2), GUARD_S)
        yield Workers(port, process, models)
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), GUARD_S)


async def test_a_load_and_an_unload_reach_every_worker(workers: Workers) -> None:
    shutil.copytree(workers.models / "mlp" / "1", workers.models / "mlp" / "2")
    assert (await workers.ask("POST", "/v2/repository/models/mlp/load")).status == 200
    ready = await workers.ask_everyone("GET", "/v2/models/mlp/versions/2/ready")
    assert [a.status for a in ready] == [200] * len(ready)

    assert (await workers.ask("POST", "/v2/repository/models/digits/unload")).status == 200
    gone = await workers.ask_everyone("GET", "/v2/models/digits/ready")
    assert all(a.status != 200 for a in gone), [a.status for a in gone]


async def test_statistics_count_every_worker(workers: Workers) -> None:
    served = [await workers.ask("POST", "/v2/models/mlp/infer", ROW) for _ in range(CONNECTIONS)]
    assert [a.status for a in served] == [200] * CONNECTIONS
    for path in ("/v2/models/stats", "/v2/models/mlp/stats", "/v2/models/mlp/versions/1/stats"):
        for answer in await workers.ask_everyone("GET", path):
            assert answer.status == 200
            counts = {
                s["name"]: s["inference_count"] for s in json.loads(answer.body)["model_stats"]
            }
            assert counts["mlp"] == CONNECTIONS, (path, answer.worker, counts)


async def test_a_restarted_worker_keeps_an_unload(workers: Workers) -> None:
    assert (await workers.ask("POST", "/v2/repository/models/digits/unload")).status == 200
    before = worker_pids(workers.process.pid)
    assert workers.process.stderr is not None
    os.kill(before[0], signal.SIGKILL)
    # The replacement announces itself like the first two did.
    await asyncio.wait_for(workers_started(workers.process.stderr, 1), GUARD_S)
    drain = asyncio.ensure_future(workers.process.stderr.read())  # keep the pipe from filling
    try:
        gone = await workers.ask_everyone("GET", "/v2/models/digits/ready")
        assert before[0] not in {a.worker for a in gone}
        assert all(a.status != 200 for a in gone), [(a.worker, a.status) for a in gone]
        ready = await workers.ask_everyone("GET", "/v2/models/mlp/ready")
        assert [a.status for a in ready] == [200] * len(ready)
    finally:
        drain.cancel()
