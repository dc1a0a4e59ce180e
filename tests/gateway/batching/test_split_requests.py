"""A request split into parts takes turns with the requests that arrive after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from backends.base import Array
from backends.errors import InferenceError
from gateway.batching.batcher import Batcher
from gateway.batching.policy import BatchPolicy
from gateway.errors import Overloaded
from support.fake_backend import FakeBackend

GUARD_S = 10  # hang guard only


def rows(tag: int, count: int) -> dict[str, Array]:
    return {"x": np.full((count, 4), tag, dtype=np.float32)}


def scenario_with(
    backend: FakeBackend, scenario: Callable[[Batcher], Awaitable[None]], **policy: int
) -> None:
    async def main() -> None:
        batcher = Batcher(
            "model 'fake' version 1",
            backend.infer,
            BatchPolicy(max_batch_size=2, max_queue_delay_s=0, **policy),  # type: ignore[arg-type]
        )
        batcher.start()
        try:
            await asyncio.wait_for(scenario(batcher), GUARD_S)
        finally:
            await batcher.close()

    asyncio.run(main())


def tags(backend: FakeBackend) -> list[list[int]]:
    return [[int(row[0]) for row in batch] for batch in backend.batches]


def test_requests_arriving_after_a_split_one_run_between_its_parts() -> None:
    backend = FakeBackend()
    backend.hold = True

    async def scenario(batcher: Batcher) -> None:
        large = batcher.submit(rows(1, 6), ["y"])  # three parts of two rows
        await backend.started.wait()  # its first part runs, held
        small = [batcher.submit(rows(tag, 1), ["y"]) for tag in (2, 3)]
        backend.release.set()
        answer = await large
        assert answer["y"].shape == (6, 4)
        assert [int(v) for v in answer["y"][:, 0]] == [1] * 6
        assert [int((await s)["y"][0, 0]) for s in small] == [2, 3]

    scenario_with(backend, scenario)
    # Before: [[1, 1], [1, 1], [1, 1], [2, 3]]: the small requests waited for every part.
    assert tags(backend) == [[1, 1], [2, 3], [1, 1], [1, 1]]


def test_parts_not_yet_queued_count_against_the_queue_bound() -> None:
    backend = FakeBackend()
    backend.hold = True

    async def scenario(batcher: Batcher) -> None:
        large = batcher.submit(rows(1, 6), ["y"])
        await backend.started.wait()
        first = batcher.submit(rows(2, 1), ["y"])  # one queued + two parts to come: 3
        with pytest.raises(Overloaded):
            batcher.submit(rows(3, 1), ["y"])
        backend.release.set()
        await asyncio.gather(large, first)

    scenario_with(backend, scenario, max_queue_size=3)


def test_a_failed_part_stops_the_parts_after_it() -> None:
    backend = FakeBackend()
    backend.fail_next = [InferenceError("the fake runtime failed on purpose", kind="Fail")]

    async def scenario(batcher: Batcher) -> None:
        with pytest.raises(InferenceError):
            await batcher.submit(rows(1, 6), ["y"])
        assert (await batcher.submit(rows(2, 1), ["y"]))["y"][0, 0] == 2

    scenario_with(backend, scenario)
    assert tags(backend) == [[1, 1], [2]]


def test_with_two_instances_two_parts_run_at_once() -> None:
    backend = FakeBackend()
    backend.hold = True

    async def scenario(batcher: Batcher) -> None:
        large = batcher.submit(rows(1, 8), ["y"])
        await backend.started.wait()
        for _ in range(GUARD_S * 1000):  # both instances take a part before any returns
            if len(backend.batches) == 2:
                break
            await asyncio.sleep(0)
        assert len(backend.batches) == 2
        backend.release.set()
        assert (await large)["y"].shape == (8, 4)

    scenario_with(backend, scenario, instances=2)
    assert tags(backend) == [[1, 1]] * 4
