"""Invariants of the micro-batcher, driven by events and an injected clock (no sleeps)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.base import Array
from backends.errors import InferenceError
from backends.worker_pool import SettledFuture, WorkerPool
from gateway.batching.batcher import Batcher
from gateway.batching.observer import NullObserver
from gateway.batching.policy import BatchPolicy
from gateway.errors import DeadlineExceeded, ModelNotReady, Overloaded
from support.batching import ManualClock, make, rows, run
from support.fake_backend import FakeBackend


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=24),
    limit=st.integers(min_value=3, max_value=16),
    instances=st.integers(min_value=1, max_value=3),
)
def test_every_caller_gets_its_own_rows_once_and_batches_respect_the_limit(
    sizes: list[int], limit: int, instances: int
) -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        batcher = make(backend, max_batch_size=limit, instances=instances, max_queue_size=200)
        requests = [rows(tag, n) for tag, n in enumerate(sizes)]
        futures = [batcher.submit(r, ["y"]) for r in requests]
        results = await asyncio.gather(*futures)
        await batcher.close()
        for request, result in zip(requests, results, strict=True):
            np.testing.assert_array_equal(result["y"], request["x"])
            assert set(result) == {"y"}
        assert all(size <= limit for size in backend.batch_sizes)
        seen = np.concatenate(backend.batches)
        assert len(seen) == sum(sizes)  # each row computed exactly once
        assert len({row.tobytes() for row in seen}) == sum(sizes)

    run(scenario)


@settings(max_examples=30, deadline=None)
@given(
    timeouts=st.lists(st.one_of(st.none(), st.floats(0.5, 20)), min_size=1, max_size=12),
    cancel=st.lists(st.booleans(), min_size=12, max_size=12),
    advance=st.floats(0, 25),
)
def test_expired_or_cancelled_requests_never_reach_the_backend(
    timeouts: list[float | None], cancel: list[bool], advance: float
) -> None:
    async def scenario() -> None:
        backend, clock = FakeBackend(), ManualClock()
        backend.hold = True
        batcher = make(backend, clock, max_batch_size=64)
        blocker = batcher.submit(rows(999, 1), ["y"])
        await backend.started.wait()  # the first batch runs; everything else queues
        futures = [batcher.submit(rows(tag, 1), ["y"], t) for tag, t in enumerate(timeouts)]
        for future, drop in zip(futures, cancel, strict=False):
            if drop:
                future.cancel()
        clock.now += advance
        backend.release.set()
        await blocker
        await batcher.close()
        computed = {float(row[0]) // 1000 for batch in backend.batches[1:] for row in batch}
        for tag, (future, timeout) in enumerate(zip(futures, timeouts, strict=True)):
            expired = timeout is not None and timeout <= advance
            if future.cancelled():
                assert tag not in computed
            elif expired:
                assert tag not in computed
                with pytest.raises(DeadlineExceeded):
                    future.result()
            else:
                assert tag in computed
                assert future.result()["y"][0, 0] == tag * 1000

    run(scenario)


@settings(max_examples=30, deadline=None)
@given(poisoned=st.lists(st.booleans(), min_size=2, max_size=16), limit=st.integers(1, 6))
def test_a_failing_batch_fails_only_its_callers(poisoned: list[bool], limit: int) -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        backend.fail_when = [float(tag * 1000) for tag, bad in enumerate(poisoned) if bad]
        batcher = make(backend, max_batch_size=limit)
        futures = [batcher.submit(rows(tag, 1), ["y"]) for tag in range(len(poisoned))]
        await asyncio.gather(*futures, return_exceptions=True)
        failed_tags = set()
        for batch in backend.batches:
            tags = {int(row[0] // 1000) for row in batch}
            if any(poisoned[t] for t in tags):
                failed_tags |= tags
        for tag, future in enumerate(futures):
            if tag in failed_tags:
                assert isinstance(future.exception(), InferenceError)
            else:
                assert future.result()["y"][0, 0] == tag * 1000
        after = await batcher.submit(rows(77, 1), ["y"])  # the batcher keeps serving
        assert after["y"][0, 0] == 77000
        await batcher.close()

    run(scenario)


def test_an_idle_batcher_dispatches_at_once_despite_a_long_delay() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        batcher = Batcher("m", backend.infer, BatchPolicy(max_queue_delay_s=3600, instances=2))
        batcher.start()
        result = await batcher.submit(rows(1, 1), ["y"])
        assert result["y"].shape == (1, 4)
        await batcher.close()

    run(scenario)


def test_requests_gather_while_a_batch_runs() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        backend.hold = True
        batcher = Batcher("m", backend.infer, BatchPolicy(max_queue_delay_s=3600, instances=2))
        batcher.start()
        first = batcher.submit(rows(0, 1), ["y"])
        await backend.started.wait()
        rest = [batcher.submit(rows(tag, 1), ["y"]) for tag in (1, 2, 3)]
        backend.release.set()  # the running batch ends: the waiting ones go as one batch
        await asyncio.gather(first, *rest)
        assert backend.batch_sizes == [1, 3]
        await batcher.close()

    run(scenario)


def test_different_non_batch_shapes_are_never_concatenated() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        batcher = make(backend)
        backend.hold = True
        blocker = batcher.submit(rows(9, 1, width=4), ["y"])
        await backend.started.wait()
        futures = [batcher.submit(rows(tag, 1, width=2 + tag % 2), ["y"]) for tag in range(6)]
        backend.release.set()
        results = await asyncio.gather(blocker, *futures)
        assert [r["y"].shape[1] for r in results] == [4, 2, 3, 2, 3, 2, 3]
        assert backend.batch_sizes == [1, 3, 3]
        assert [b.shape[1] for b in backend.batches] == [4, 2, 3]
        await batcher.close()

    run(scenario)


def test_preferred_batch_sizes_cut_batches() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        batcher = make(backend, preferred_batch_sizes=(4,))
        backend.hold = True
        blocker = batcher.submit(rows(9, 1), ["y"])
        await backend.started.wait()
        futures = [batcher.submit(rows(t, 1), ["y"]) for t in range(6)]
        backend.release.set()
        await asyncio.gather(blocker, *futures)
        assert backend.batch_sizes == [1, 4, 2]
        await batcher.close()

    run(scenario)


def test_without_batching_each_request_is_its_own_call() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        batcher = make(backend, batching=False, max_batch_size=2)
        await asyncio.gather(*[batcher.submit(rows(t, 3), ["y"]) for t in range(3)])
        assert backend.batch_sizes == [3, 3, 3]
        await batcher.close()

    run(scenario)


def test_full_queue_is_refused_at_once_with_an_estimate_from_the_drain_rate() -> None:
    async def scenario() -> None:
        backend, clock = FakeBackend(), ManualClock()

        async def half_second_calls(
            inputs: Mapping[str, Array], names: Sequence[str]
        ) -> dict[str, Array]:
            clock.now += 0.5
            return await backend.infer(inputs, names)

        policy = BatchPolicy(max_queue_size=2, max_batch_size=1)
        batcher = Batcher("m", half_second_calls, policy, None, clock)
        batcher.start()
        assert batcher.retry_after_s() == 1.0  # nothing measured yet
        backend.hold = True
        running = batcher.submit(rows(0, 1), ["y"])
        await backend.started.wait()
        queued = [batcher.submit(rows(t, 1), ["y"]) for t in (1, 2)]
        with pytest.raises(Overloaded, match=r"retry in about 1\.000 s") as refused:
            batcher.submit(rows(3, 1), ["y"])
        assert refused.value.retry_after_s == 1.0
        assert len(backend.batches) == 1  # the refused request cost no work
        backend.release.set()
        await asyncio.gather(running, *queued)
        # 2 requests per second measured; an empty queue (+1 newcomer) drains in 0.5 s
        assert batcher.retry_after_s() == pytest.approx(0.5)
        await batcher.close()

    run(scenario)


def test_oversized_requests_are_split_and_joined_in_order() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        batcher = make(backend, max_batch_size=4, max_queue_size=3)
        request = rows(0, 10)
        result = await batcher.submit(request, ["y", "total"])
        np.testing.assert_array_equal(result["y"], request["x"])
        assert result["total"].shape == (10,)
        assert backend.batch_sizes == [4, 4, 2]
        with pytest.raises(Overloaded):  # 4 parts do not fit a queue of 3
            batcher.submit(rows(1, 13), ["y"])
        backend.fail_when = [float(rows(2, 6)["x"][5, 0])]  # a row of the second part
        with pytest.raises(InferenceError):
            await batcher.submit(rows(2, 6), ["y"])
        await batcher.close()

    run(scenario)


def test_cancelling_a_split_request_withdraws_its_parts() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        backend.hold = True
        batcher = make(backend, max_batch_size=2)
        blocker = batcher.submit(rows(9, 1), ["y"])
        await backend.started.wait()
        split = batcher.submit(rows(1, 5), ["y"])
        split.cancel()
        backend.release.set()
        await blocker
        await batcher.close()
        assert backend.batch_sizes == [1]

    run(scenario)


def test_closed_batchers_refuse_after_draining() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        batcher = make(backend, max_batch_size=4)
        pending = batcher.submit(rows(1, 2), ["y"])
        await batcher.close()  # drains what was queued
        assert pending.result()["y"].shape == (2, 4)
        with pytest.raises(ModelNotReady):
            batcher.submit(rows(2, 1), ["y"])
        assert backend.batch_sizes == [2]

    run(scenario)


def test_clock_default_is_monotonic_and_counts_are_exposed() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        batcher = Batcher("m", backend.infer, BatchPolicy(max_batch_size=3))
        assert batcher.policy.max_batch_size == 3
        batcher.start()
        backend.hold = True
        first = batcher.submit(rows(0, 1), ["y"], timeout_s=60)
        await backend.started.wait()
        batcher.submit(rows(1, 1), ["y"]).cancel()
        assert batcher.depth == 1
        backend.release.set()
        await first
        await batcher.close()
        assert batcher.depth == 0

    run(scenario)


def test_ticks() -> None:
    # itertools.count as a clock: every reading is later than the one before.
    async def scenario() -> None:
        ticks = itertools.count()
        backend = FakeBackend()
        batcher = Batcher("m", backend.infer, BatchPolicy(), None, lambda: float(next(ticks)))
        batcher.start()
        with pytest.raises(DeadlineExceeded):
            await batcher.submit(rows(0, 1), ["y"], timeout_s=0.5)
        assert backend.batches == []
        await batcher.close()

    run(scenario)


def test_a_batch_reaches_the_backend_in_the_loop_turn_that_formed_it() -> None:
    """A backend that starts work at once (returns a future) gets the batch before any
    other coroutine runs: no Task stands between forming a batch and running it."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        calls: list[int] = []

        def infer(inputs: Mapping[str, Array], outputs: Sequence[str]) -> asyncio.Future[Any]:
            calls.append(len(inputs["x"]))
            done: asyncio.Future[Any] = loop.create_future()
            done.set_result({"y": inputs["x"] * 2})
            return done

        batcher = Batcher("m", infer, BatchPolicy())
        batcher.start()
        pending = batcher.submit(rows(1, 2), ["y"])
        assert calls == [2]
        np.testing.assert_array_equal((await pending)["y"], rows(1, 2)["x"] * 2)
        await batcher.close()

    run(scenario)


def test_a_cancelled_backend_call_cancels_its_callers_and_serving_goes_on() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        backend = FakeBackend()

        def infer(inputs: Mapping[str, Array], outputs: Sequence[str]) -> Awaitable[Any]:
            if len(inputs["x"]) == 3:  # the first batch: its call is cancelled
                cancelled: asyncio.Future[Any] = loop.create_future()
                cancelled.cancel()
                return cancelled
            return backend.infer(inputs, outputs)

        batcher = Batcher("m", infer, BatchPolicy())
        batcher.start()
        doomed = batcher.submit(rows(1, 3), ["y"])
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert (await batcher.submit(rows(2, 1), ["y"]))["y"].shape == (1, 4)
        await batcher.close()

    run(scenario)


def test_a_backend_that_raises_at_once_fails_every_batch_without_recursing() -> None:
    """Each failed batch launches the next; thousands failing in a row must neither
    recurse nor stop the batcher."""

    async def scenario() -> None:
        first: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        calls = 0

        def infer(inputs: Mapping[str, Array], outputs: Sequence[str]) -> Awaitable[Any]:
            nonlocal calls
            calls += 1
            if calls == 1:
                return first  # held while the others queue up behind it
            raise InferenceError("no runtime today", kind="Gone")

        batcher = Batcher("m", infer, BatchPolicy(max_batch_size=1, max_queue_size=5000))
        batcher.start()
        pending = [batcher.submit(rows(tag, 1), ["y"]) for tag in range(3000)]
        first.set_exception(InferenceError("no runtime today", kind="Gone"))
        results = await asyncio.gather(*pending, return_exceptions=True)
        assert all(isinstance(result, InferenceError) for result in results)
        assert calls == 3000
        await batcher.close()

    run(scenario)


def test_the_next_batch_starts_in_the_turn_the_previous_outcome_arrives() -> None:
    """With the worker pool's futures, finishing a batch and starting the next happen in
    the loop turn its outcome arrives, not a turn later (each turn is milliseconds under
    load, during which the runtime would sit idle)."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        pool = WorkerPool(1, name="test")
        turn = 0

        def tick() -> None:
            nonlocal turn
            turn += 1
            loop.call_soon(tick)

        loop.call_soon(tick)
        started_in: list[int] = []
        futures: list[SettledFuture[Any]] = []

        def infer(inputs: Mapping[str, Array], outputs: Sequence[str]) -> SettledFuture[Any]:
            started_in.append(turn)
            futures.append(pool.submit(lambda: {"y": np.asarray(inputs["x"]) + 1}))
            return futures[-1]

        batcher = Batcher("m", infer, BatchPolicy())
        batcher.start()
        first = batcher.submit(rows(1, 1), ["y"])
        later = [batcher.submit(rows(tag, 1), ["y"]) for tag in (2, 3)]
        settled_in: list[int] = []
        futures[0].on_settled(lambda _: settled_in.append(turn))
        await asyncio.gather(first, *later)
        assert len(started_in) == 2  # the two later requests went as one batch
        assert started_in[1] == settled_in[0]
        await batcher.close()
        await pool.close()

    run(scenario)


def _counting(backend: FakeBackend, calls: list[int]) -> Callable[..., Awaitable[dict[str, Array]]]:
    """The backend's ``infer``, recording each call's rows at the moment it is made."""

    def infer(inputs: Mapping[str, Array], names: Sequence[str]) -> Awaitable[dict[str, Array]]:
        calls.append(len(inputs["x"]))
        return backend.infer(inputs, names)

    return infer


@pytest.mark.parametrize(("ahead_s", "handed_over"), [(0.05, 4), (0.0, 1)])
def test_batches_that_cannot_grow_are_handed_to_the_backend_while_one_runs(
    ahead_s: float, handed_over: int
) -> None:
    # Issue 10 item 8: a batch launched from the previous one's completion reaches the
    # runtime a loop turn later; under a flood of rejections that turn lasts many calls.
    async def scenario() -> None:
        backend, calls = FakeBackend(), list[int]()
        policy = BatchPolicy(batching=False, max_queue_size=3, dispatch_ahead_s=ahead_s)
        batcher = Batcher("m", _counting(backend, calls), policy, None, ManualClock())
        batcher.start()
        await batcher.submit(rows(0, 1), ["y"])  # one call measured: how long calls take
        backend.hold = True
        waiting = [batcher.submit(rows(t, 1), ["y"]) for t in (1, 2, 3, 4)]
        assert len(calls) == 1 + handed_over  # in the very turn they were submitted
        assert batcher.depth == 3  # handed ahead or queued, both count against the bound
        with pytest.raises(Overloaded):
            batcher.submit(rows(5, 1), ["y"])
        backend.release.set()
        answers = await asyncio.gather(*waiting)
        for tag, answer in zip((1, 2, 3, 4), answers, strict=True):
            np.testing.assert_array_equal(answer["y"], rows(tag, 1)["x"])
        assert batcher.depth == 0
        await batcher.close()

    run(scenario)


class DepthRecorder(NullObserver):
    """An observer that keeps every queue depth the batcher reports."""

    def __init__(self) -> None:
        self.depths: list[int] = []

    def queue_depth(self, depth: int) -> None:
        self.depths.append(depth)


def test_the_depth_reported_falls_to_zero_as_batches_handed_ahead_run() -> None:
    # Issue 20 item 4: batches handed ahead with nothing queued behind them left the gauge
    # at their count (8 on an idle server): no later batch was cut to report the depth.
    async def scenario() -> None:
        backend, observer = FakeBackend(), DepthRecorder()
        policy = BatchPolicy(batching=False, max_queue_size=16, dispatch_ahead_s=0.05)
        batcher = Batcher("m", backend.infer, policy, observer, ManualClock())
        batcher.start()
        await batcher.submit(rows(0, 1), ["y"])  # one call measured: how long calls take
        backend.hold = True
        waiting = [batcher.submit(rows(tag, 1), ["y"]) for tag in range(1, 10)]
        assert observer.depths[-1] == batcher.depth == 8  # all handed ahead, none queued
        backend.release.set()
        await asyncio.gather(*waiting)
        assert batcher.depth == 0
        assert observer.depths[-1] == 0
        await batcher.close()

    run(scenario)
