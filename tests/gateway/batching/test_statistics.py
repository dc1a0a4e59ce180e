"""What the batcher counts for the statistics extension, timed by an injected clock."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from backends.base import Array
from backends.errors import InferenceError
from gateway.batching.batcher import Batcher
from gateway.batching.policy import BatchPolicy
from gateway.errors import DeadlineExceeded
from support.fake_backend import FakeBackend

GUARD_S = 10  # hang guard only


class ManualClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rows(count: int) -> dict[str, Array]:
    return {"x": np.ones((count, 4), dtype=np.float32)}


async def test_a_held_batch_is_timed_from_arrival_to_answer() -> None:
    backend, clock = FakeBackend(), ManualClock()
    batcher = Batcher("m", backend.infer, BatchPolicy(), None, clock)
    batcher.start()
    backend.hold = True
    before_ms = time.time_ns() // 1_000_000
    future = batcher.submit(rows(3), ["y"])  # idle: dispatched at once, at t=100
    await asyncio.wait_for(backend.started.wait(), GUARD_S)
    clock.now = 100.25
    backend.release.set()
    await asyncio.wait_for(future, GUARD_S)
    await batcher.close()

    stats = batcher.statistics
    assert (stats.inference_count, stats.execution_count) == (3, 1)
    assert before_ms <= stats.last_inference_ms <= time.time_ns() // 1_000_000
    assert (stats.success.count, stats.success.ns) == (1, 250_000_000)
    assert (stats.queue.count, stats.queue.ns) == (1, 0)
    assert (stats.compute_infer.count, stats.compute_infer.ns) == (1, 250_000_000)
    assert (stats.fail.count, stats.compute_input.count, stats.compute_output.count) == (0, 1, 1)
    assert list(stats.batch_sizes) == [3]
    assert stats.batch_sizes[3].compute_infer.count == 1


async def test_merged_requests_count_once_each_and_the_batch_once() -> None:
    backend, clock = FakeBackend(), ManualClock()
    batcher = Batcher("m", backend.infer, BatchPolicy(max_batch_size=4), None, clock)
    batcher.start()
    backend.hold = True
    first = batcher.submit(rows(1), ["y"])
    await asyncio.wait_for(backend.started.wait(), GUARD_S)
    queued = [batcher.submit(rows(2), ["y"]), batcher.submit(rows(2), ["y"])]  # one full batch
    clock.now = 101.0
    backend.release.set()
    await asyncio.wait_for(asyncio.gather(first, *queued), GUARD_S)
    await batcher.close()

    stats = batcher.statistics
    assert backend.batch_sizes == [1, 4]
    assert (stats.inference_count, stats.execution_count, stats.success.count) == (5, 2, 3)
    assert (stats.queue.count, stats.queue.ns) == (3, 2_000_000_000)  # two waited 1 s each
    assert sorted(stats.batch_sizes) == [1, 4]


async def test_failures_and_expired_requests_count_as_fail() -> None:
    backend, clock = FakeBackend(), ManualClock()
    batcher = Batcher("m", backend.infer, BatchPolicy(), None, clock)
    batcher.start()
    backend.fail_next.append(InferenceError("boom", kind="Fail"))
    with pytest.raises(InferenceError):
        await asyncio.wait_for(batcher.submit(rows(1), ["y"]), GUARD_S)
    backend.hold = True
    backend.started.clear()
    running = batcher.submit(rows(1), ["y"])
    await asyncio.wait_for(backend.started.wait(), GUARD_S)
    doomed = batcher.submit(rows(1), ["y"], timeout_s=0.5)
    clock.now = 102.0  # past the queued request's deadline
    backend.release.set()
    await asyncio.wait_for(running, GUARD_S)
    with pytest.raises(DeadlineExceeded):
        await asyncio.wait_for(doomed, GUARD_S)
    await batcher.close()

    stats = batcher.statistics
    assert (stats.fail.count, stats.fail.ns) == (2, 2_000_000_000)
    assert (stats.success.count, stats.execution_count) == (1, 1)
