"""``--workers 2``: a worker killed under load leaves no stale queue depth (issue 10, item 11),
however the kill falls: the scene repeated, one worker killed per round (issue 20, item 4)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time

import httpx
import pytest

from support.workers import free_port, spawn_workers, worker_pids, workers_started

GUARD_S = 120  # hang guard: a worker loads ONNX Runtime on a busy 2-core box
ROUNDS = 20
ROUNDS_GUARD_S = 600  # all the rounds together: a bound on the loop, not a wait
LOAD_CONNECTIONS = 48
AFTER_THE_KILL = 2 * LOAD_CONNECTIONS  # answers the survivor gives before the load stops
# A whole batch per request (mlp's max_batch_size): whatever queues is handed to the
# backend ahead while a batch runs, the case that once left its count in the gauge.
ROWS = 64
BODY = {
    "inputs": [
        {"name": "input", "shape": [ROWS, 256], "datatype": "FP32", "data": [0.5] * ROWS * 256}
    ]
}
DEPTH = re.compile(r"^tensorgate_queue_depth\{([^}]*)\} (\S+)$", re.MULTILINE)


class Load:
    """``LOAD_CONNECTIONS`` clients posting to ``mlp`` until stopped, counting answers."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self._stop = asyncio.Event()
        self._answered = 0
        self._target = 0
        self._reached = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._post()) for _ in range(LOAD_CONNECTIONS)]

    async def _post(self) -> None:
        while not self._stop.is_set():
            try:
                await self._client.post("/v2/models/mlp/infer", json=BODY)
            except httpx.TransportError:  # the killed worker's connections
                continue
            self._answered += 1
            if self._answered >= self._target:
                self._reached.set()

    async def more(self, count: int) -> None:
        """Wait until ``count`` more answers have come back (guarded)."""
        self._target = self._answered + count
        self._reached.clear()
        await asyncio.wait_for(self._reached.wait(), GUARD_S)

    async def stop(self) -> None:
        """Stop the clients once each has its current answer: the server is then idle."""
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), GUARD_S)


async def kill_one_under_load(client: httpx.AsyncClient, parent: int, turn: int) -> int:
    """Kill one of the two workers while the load flows; the survivor takes the killed
    one's clients too for a while; return once the load has stopped."""
    load = Load(client)
    try:
        await load.more(LOAD_CONNECTIONS)  # the load flows to both workers
        victim = sorted(worker_pids(parent))[turn % 2]
        os.kill(victim, signal.SIGKILL)
        await load.more(AFTER_THE_KILL)
    finally:
        await load.stop()
    return victim


@pytest.mark.e2e
@pytest.mark.hostile
async def test_a_killed_workers_queue_depth_never_stays_in_the_gauge() -> None:
    port = free_port()
    process = await spawn_workers(port, "--no-auth")
    assert process.stderr is not None
    stale: list[tuple[int, list[tuple[str, str]]]] = []
    try:
        await asyncio.wait_for(workers_started(process.stderr, 2), GUARD_S)
        limits = httpx.Limits(max_connections=LOAD_CONNECTIONS)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=GUARD_S) as client:
            deadline = time.monotonic() + ROUNDS_GUARD_S
            for turn in range(ROUNDS):
                victim = await kill_one_under_load(client, process.pid, turn)
                scrape = await client.get("/metrics")
                depths = DEPTH.findall(scrape.text)
                assert depths, f"{scrape.status_code}: {scrape.text}"
                if any(float(value) != 0 for _, value in depths):
                    stale.append((turn, depths))
                # The replacement announces itself as the first two did.
                await asyncio.wait_for(workers_started(process.stderr, 1), GUARD_S)
                assert victim not in worker_pids(process.pid)
                assert time.monotonic() < deadline, f"{turn + 1} rounds took too long"
    finally:
        drain = asyncio.ensure_future(process.stderr.read())  # keep the pipe from filling
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), GUARD_S)
        await asyncio.wait_for(drain, GUARD_S)
    assert stale == [], f"stale queue depths on an idle server (round, series): {stale}"
