"""Batches run on the event loop when the runtime is measured to be faster than a hand-over."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence

import numpy as np
import pytest

from backends.base import Array, inline_infer
from backends.errors import InferenceError
from backends.worker_pool import SettledFuture, WorkerPool
from gateway.batching.batcher import Batcher
from gateway.batching.inline import InlineCosts
from gateway.batching.policy import BatchPolicy
from gateway.repository.config import ModelConfig

GUARD_S = 10  # hang guard only


class EchoBackend:
    """Echoes ``x`` as ``y``, on a worker thread (``infer``) or the caller's (``infer_now``);
    ``calls`` records where each batch ran and its rows."""

    def __init__(self) -> None:
        self.pool = WorkerPool(1, "echo")
        self.calls: list[tuple[str, int]] = []
        self.fail_inline = False

    def _echo(self, inputs: Mapping[str, Array], where: str) -> dict[str, Array]:
        self.calls.append((where, len(inputs["x"])))
        return {"y": inputs["x"].copy()}

    def infer(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> SettledFuture[dict[str, Array]]:
        return self.pool.submit(lambda: self._echo(inputs, "thread"))

    def infer_now(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> dict[str, Array]:
        if self.fail_inline:
            raise InferenceError("the runtime failed on purpose", kind="Fail")
        return self._echo(inputs, "loop")


def request(tag: float, count: int = 1) -> dict[str, Array]:
    return {"x": np.full((count, 4), tag, dtype=np.float32)}


def make(backend: EchoBackend, limit_s: float = 10.0, **policy: int) -> Batcher:
    batcher = Batcher(
        "model 'echo' version 1",
        backend.infer,
        BatchPolicy(inline_max_s=limit_s, **policy),  # type: ignore[arg-type]
        infer_now=inline_infer(backend),
    )
    batcher.start()
    return batcher


def run(
    limit_s: float,
    scenario: Callable[[Batcher], Awaitable[None]],
    backend: EchoBackend | None = None,
    **policy: int,
) -> EchoBackend:
    """Run ``scenario`` against a started batcher over ``backend``; close both after."""
    backend = backend or EchoBackend()

    async def main() -> None:
        batcher = make(backend, limit_s, **policy)
        try:
            await asyncio.wait_for(scenario(batcher), GUARD_S)
        finally:
            await batcher.close()
            await backend.pool.close()

    asyncio.run(main())
    return backend


async def one(batcher: Batcher, tag: float, count: int = 1) -> Array:
    return (await batcher.submit(request(tag, count), ["y"]))["y"]


def test_costs_decide_by_measured_time_per_input_size() -> None:
    costs = InlineCosts(0.001)
    assert costs.enabled
    assert not costs.fits(64)  # never measured: the thread goes first
    costs.record(64, 0.0002)
    assert costs.fits(64)
    assert costs.fits(100)  # same power-of-two bucket
    assert not costs.fits(128)  # a larger bucket is measured on its own
    for _ in range(30):  # the runtime got slower: back to the thread
        costs.record(64, 0.01)
    assert not costs.fits(64)
    assert not InlineCosts(0).enabled


def test_after_its_first_call_on_the_thread_a_fast_model_runs_on_the_loop() -> None:
    async def scenario(batcher: Batcher) -> None:
        first = await one(batcher, 1)
        second = await one(batcher, 2)
        assert first[0, 0] == 1
        assert second[0, 0] == 2

    backend = run(10.0, scenario)
    assert backend.calls == [("thread", 1), ("loop", 1)]


def test_a_model_slower_than_the_limit_stays_on_the_thread() -> None:
    async def scenario(batcher: Batcher) -> None:
        for tag in range(3):
            await one(batcher, tag)

    backend = run(1e-12, scenario)
    assert [where for where, _ in backend.calls] == ["thread"] * 3


def test_requests_arriving_in_one_loop_turn_share_one_inline_batch() -> None:
    async def scenario(batcher: Batcher) -> None:
        await one(batcher, 0)  # measures one-row calls
        for round_ in range(2):  # the first five-row batch is measured on the thread
            futures = [batcher.submit(request(tag), ["y"]) for tag in range(5)]
            results = await asyncio.gather(*futures)
            assert [int(r["y"][0, 0]) for r in results] == list(range(5)), round_

    backend = run(10.0, scenario)
    assert backend.calls == [("thread", 1), ("thread", 5), ("loop", 5)]


def test_an_inline_failure_fails_its_batch_and_the_next_batch_runs() -> None:
    async def scenario(batcher: Batcher) -> None:
        await one(batcher, 0)
        backend.fail_inline = True
        with pytest.raises(InferenceError):
            await one(batcher, 1)
        backend.fail_inline = False
        assert (await one(batcher, 2))[0, 0] == 2

    backend = EchoBackend()
    run(10.0, scenario, backend)
    assert backend.calls == [("thread", 1), ("loop", 1)]


def test_an_inline_batch_never_starts_the_next_from_inside_its_own_finish() -> None:
    """A queue of inline batches is run one loop callback each, not as a recursion that
    would hold the loop for the whole queue."""
    nested: list[int] = []

    class StackWatching(EchoBackend):
        def infer_now(
            self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
        ) -> dict[str, Array]:
            frame, depth = sys._getframe(), 0
            while frame is not None:
                depth += frame.f_code.co_name == "_finish"
                frame = frame.f_back  # type: ignore[assignment]
            nested.append(depth)
            return super().infer_now(inputs, output_names)

    async def scenario(batcher: Batcher) -> None:
        await one(batcher, 0, 2)  # measures batches of 2 rows on the thread
        await asyncio.gather(*[batcher.submit(request(tag, 2), ["y"]) for tag in range(4)])

    backend = run(10.0, scenario, StackWatching(), max_batch_size=2)
    assert backend.calls == [("thread", 2)] + [("loop", 2)] * 4
    assert nested == [0, 0, 0, 0]


def test_a_remote_style_backend_without_infer_now_never_runs_inline() -> None:
    class ThreadOnly:
        def infer(self) -> None:
            """Only the awaitable call."""

    assert inline_infer(ThreadOnly()) is None
    assert inline_infer(EchoBackend()) is not None


def test_inline_max_ms_reaches_the_policy_and_zero_turns_it_off() -> None:
    assert ModelConfig().batch_policy(stackable=True).inline_max_s == pytest.approx(0.0005)
    off = ModelConfig.model_validate({"batching": {"inline_max_ms": 0}})
    assert off.batch_policy(stackable=True).inline_max_s == 0

    async def scenario(batcher: Batcher) -> None:
        for tag in range(3):
            await one(batcher, tag)

    backend = run(0, scenario)
    assert [where for where, _ in backend.calls] == ["thread"] * 3


def test_a_request_known_to_be_alone_runs_before_submit_returns() -> None:
    async def scenario(batcher: Batcher) -> None:
        await one(batcher, 0)  # measured on the thread
        future = batcher.submit(request(7), ["y"], alone=True)
        assert future.done()  # no loop turn in between: nothing could have joined it
        assert future.result()["y"][0, 0] == 7
        later = batcher.submit(request(8), ["y"])  # not known to be alone: end of the turn
        assert not later.done()
        assert (await later)["y"][0, 0] == 8

    backend = run(10.0, scenario)
    assert backend.calls == [("thread", 1), ("loop", 1), ("loop", 1)]
