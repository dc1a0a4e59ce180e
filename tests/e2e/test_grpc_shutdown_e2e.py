"""End to end: gRPC in every worker, and the shutdown: SIGTERM answers every unary call in
flight and every request a stream sent before it, then exits 0 (issue 21)."""

from __future__ import annotations

import asyncio
import queue
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc.aio as triton_aio
from tritonclient.utils import InferenceServerException

from gateway.grpc.streams import SHUTTING_DOWN
from support.grpc_calls import (
    GUARD_S,
    Served,
    access_lines,
    auth,
    serve,
    slow_input,
    tensor,
    until_queued,
)
from support.onnx_models import slow_model, write_model
from support.paths import DEMO_MODELS
from support.workers import connection_owner, worker_pids

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("workers")
    shutil.copytree(DEMO_MODELS / "digits", root / "digits")
    process, port = serve(root, "--workers", "2")
    with process:
        started = re.compile(r"Application startup complete")
        seen = sum(1 for line in process.lines if started.search(line))
        for _ in range(2 - seen):
            process.wait_for(started)
        yield Served(process, port)


def test_both_workers_answer_grpc_and_sigterm_exits_0(two_workers: Served) -> None:
    """Calls on fresh connections (a subchannel pool of their own each) are answered by
    both workers: the connection's server socket is found in each worker's descriptors."""
    workers = set(worker_pids(two_workers.process.pid))
    assert len(workers) == 2
    owners: set[int] = set()
    pixels = tensor("pixels", np.zeros((1, 64), np.float32), "FP32")
    for index in range(24):
        options = {"channel_args": [("grpc.use_local_subchannel_pool", 1)]}
        with two_workers.client(**options) as client:
            request_id = f"worker-{index}"
            result = client.infer("digits", [pixels], headers=auth(request_id=request_id))
            assert result.as_numpy("label") is not None
            line = access_lines(two_workers.process, [request_id])[request_id]
            client_port = int(line["client"].rsplit(":", 1)[1])
            owners.add(
                connection_owner(two_workers.process.pid, two_workers.grpc_port, client_port)
            )
        if owners == workers:
            break
    assert owners == workers
    assert two_workers.process.stop() == 0
    assert "Traceback" not in "".join(two_workers.process.lines)


async def test_sigterm_answers_every_call_in_flight_and_exits_0(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root, "slow", slow_model(300_000))  # half a second or so per call
    (root / "slow" / "config.yaml").write_text("instances: 1\nbatching: {max_batch_size: 1}\n")
    process, port = serve(root)
    calls = 4
    with process:
        served = Served(process, port)
        aio = triton_aio.InferenceServerClient(served.url)
        try:
            tasks = [
                asyncio.create_task(
                    aio.infer("slow", [slow_input()], headers=auth(request_id=f"drain-{i}"))
                )
                for i in range(calls)
            ]
            async with served.http() as http:
                await until_queued(http, "slow", calls - 1)  # one runs, the rest wait
            process.terminate()
            results = await asyncio.wait_for(asyncio.gather(*tasks), GUARD_S)
        finally:
            await aio.close()
        code = await asyncio.to_thread(process.stop)
    assert [r.as_numpy("y").tolist() for r in results] == [[[300_000.0]]] * calls
    log = "".join(process.lines)
    assert code == 0, log
    assert "Traceback" not in log, log


def test_a_stream_answers_what_it_sent_before_sigterm_then_ends_unavailable(
    tmp_path: Path,
) -> None:
    """Once the shutdown begins a stream is read no further: the answers it is owed are
    written, then it ends UNAVAILABLE saying so (a client knows to resend the rest)."""
    root = tmp_path / "models"
    write_model(root, "slow", slow_model(300_000))  # half a second or so per call
    (root / "slow" / "config.yaml").write_text("instances: 1\nbatching: {max_batch_size: 1}\n")
    process, port = serve(root)
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    with process:
        served = Served(process, port)
        with served.client() as client:
            client.start_stream(
                callback=lambda result, error: answers.put((result, error)), headers=auth()
            )
            for index in range(2):
                client.async_stream_infer("slow", [slow_input()], request_id=f"s-{index}")
            # The first request runs, the second waits: both were read.
            asyncio.run(_until_queued(served, 1))
            process.terminate()
            first, second, ended = (answers.get(timeout=GUARD_S) for _ in range(3))
            client.stop_stream()
        code = process.stop()
    assert [result.get_response().id for result, _ in (first, second)] == ["s-0", "s-1"]
    result, error = ended
    assert result is None
    assert isinstance(error, InferenceServerException)
    assert error.status() == "StatusCode.UNAVAILABLE"
    assert SHUTTING_DOWN in str(error.message())
    assert code == 0
    assert "Traceback" not in "".join(process.lines)


async def _until_queued(served: Served, depth: int) -> None:
    async with served.http() as http:
        await until_queued(http, "slow", depth)
