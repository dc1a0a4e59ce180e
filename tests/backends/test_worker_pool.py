"""The worker pool: results and errors reach the caller, work runs off the loop, close drains."""

from __future__ import annotations

import asyncio
import functools
import threading

import pytest

from backends.worker_pool import WorkerPool


async def test_calls_run_on_pool_threads_and_return_their_results() -> None:
    pool = WorkerPool(2, name="test")
    loop_thread = threading.get_ident()
    idents = await asyncio.gather(*(pool.submit(threading.get_ident) for _ in range(8)))
    assert loop_thread not in idents
    assert await pool.submit(lambda: 6 * 7) == 42
    await pool.close()


async def test_exceptions_reach_the_caller_and_the_pool_keeps_working() -> None:
    pool = WorkerPool(1, name="test")

    def boom() -> None:
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        await pool.submit(boom)
    assert await pool.submit(lambda: "still alive") == "still alive"
    await pool.close()


async def test_instances_bound_the_calls_running_at_once() -> None:
    pool = WorkerPool(2, name="test")
    changed = threading.Condition()
    running, peak = 0, 0
    release = threading.Event()

    def work() -> None:
        nonlocal running, peak
        with changed:
            running += 1
            peak = max(peak, running)
            changed.notify_all()
        release.wait(timeout=10)
        with changed:
            running -= 1

    def two_running() -> bool:
        with changed:
            return changed.wait_for(lambda: running == 2, timeout=10)

    calls = [asyncio.ensure_future(pool.submit(work)) for _ in range(4)]
    await asyncio.sleep(0)
    assert await asyncio.to_thread(two_running)
    release.set()
    await asyncio.gather(*calls)
    assert peak == 2
    await pool.close()


async def test_a_cancelled_caller_does_not_break_the_pool() -> None:
    pool = WorkerPool(1, name="test")
    gate = threading.Event()
    waiting = asyncio.ensure_future(pool.submit(lambda: gate.wait(10)))
    await asyncio.sleep(0)
    waiting.cancel()
    gate.set()
    assert await pool.submit(lambda: "next") == "next"
    await pool.close()


async def test_close_finishes_queued_work_then_refuses_more() -> None:
    pool = WorkerPool(1, name="test")
    done: list[int] = []
    queued = [
        asyncio.ensure_future(pool.submit(functools.partial(done.append, n))) for n in range(3)
    ]
    await asyncio.sleep(0)
    await pool.close()
    await asyncio.gather(*queued)
    assert done == [0, 1, 2]
    await pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        await pool.submit(lambda: None)


async def test_settled_callbacks_run_in_the_turn_the_outcome_arrives() -> None:
    """Done-callbacks wait for the next loop turn; ``on_settled`` callbacks do not."""
    pool = WorkerPool(1, name="test")
    order: list[str] = []
    future = pool.submit(lambda: 7)
    future.add_done_callback(lambda _: order.append("done-callback"))
    future.on_settled(lambda settled: order.append(f"settled {settled.result()}"))
    assert await future == 7
    await asyncio.sleep(0)  # the turn in which asyncio runs done-callbacks
    assert order == ["settled 7", "done-callback"]

    def boom() -> None:
        raise ValueError("bad batch")

    failed = pool.submit(boom)
    errors: list[BaseException | None] = []
    failed.on_settled(lambda settled: errors.append(settled.exception()))
    with pytest.raises(ValueError, match="bad batch"):
        await failed
    assert isinstance(errors[0], ValueError)
    late: list[int] = []
    future.on_settled(lambda settled: late.append(settled.result()))  # already settled
    await asyncio.sleep(0)
    assert late == [7]
    await pool.close()


async def test_a_cancelled_job_still_reports_that_it_settled() -> None:
    pool = WorkerPool(1, name="test")
    release = threading.Event()
    future = pool.submit(release.wait)
    seen: list[bool] = []
    future.on_settled(lambda settled: seen.append(settled.cancelled()))
    future.cancel()  # the caller gave up; the thread is still running the call
    release.set()
    await pool.close()  # the call finished and its outcome was delivered
    assert seen == [True]


async def test_the_future_carries_how_long_the_call_ran_on_its_thread() -> None:
    # The batcher sizes what it hands ahead from this, not from the time until the loop
    # handled the outcome (which holds the loop's delay).
    pool = WorkerPool(1, "test")
    gate = threading.Event()

    def call() -> int:
        gate.wait(timeout=30)  # a hang guard: the test sets it at once
        return 1

    future = pool.submit(call)
    assert future.run_s is None
    gate.set()
    assert await future == 1
    assert future.run_s is not None
    assert future.run_s >= 0
    await pool.close()
