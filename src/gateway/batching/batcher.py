"""The micro-batcher: one queue and one consumer task per model version.

Callers ``submit`` a request's arrays and get a future. The consumer task cuts batches
from the queue (same non-batch shapes, at most ``max_batch_size`` rows), drops requests
that were cancelled or whose deadline passed, runs up to ``instances`` batches at once and
resolves every caller's future with its own rows. An idle batcher dispatches at once; it
waits up to ``max_queue_delay_s`` for company only while another batch is running. A batch
the runtime is measured to finish in under ``inline_max_s`` runs on the event loop itself
(``batching.inline``); when a lone request's call is that fast, the batch is cut at the end
of the loop turn instead, so that the requests that arrived in the same turn join it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from backends.base import CALL_TIMEOUT_S, Array
from backends.worker_pool import SettledFuture
from gateway.batching.drain import CallTime, DrainRate
from gateway.batching.inline import InlineCosts
from gateway.batching.joining import join_futures
from gateway.batching.observer import BatchObserver, BatchTrace, NullObserver
from gateway.batching.policy import BatchPolicy
from gateway.batching.queue import Parts, Pending, take_batch
from gateway.batching.statistics import BatchStatistics
from gateway.batching.tensors import (
    batch_rows,
    concatenate,
    shape_key,
    split,
    split_rows,
)
from gateway.errors import DeadlineExceeded, ModelNotReady, Overloaded

logger = logging.getLogger(__name__)

InferFn = Callable[[Mapping[str, Array], Sequence[str]], Awaitable[dict[str, Array]]]
"""Runs one batch: the backend's ``infer`` (inputs, output names) -> outputs."""

InlineFn = Callable[[Mapping[str, Array], Sequence[str]], dict[str, Array]]
"""Runs one batch on the calling thread (the backend's ``infer_now``), blocking."""

Clock = Callable[[], float]


@dataclass(slots=True, eq=False)
class _Run:
    """One batch handed to the backend: when it started running, and its request count."""

    started: float
    entries: int
    rows: int = 0
    arrived: float = 0.0  # the sum of the requests' arrival times
    input_s: float = 0.0  # merging the requests' inputs
    run_s: float | None = None  # the call's own duration, when the backend reports it


class Batcher:
    """Merges concurrent requests for one model version into batched backend calls."""

    def __init__(
        self,
        name: str,
        infer: InferFn,
        policy: BatchPolicy,
        observer: BatchObserver | None = None,
        clock: Clock = time.monotonic,
        infer_now: InlineFn | None = None,
    ) -> None:
        self._name = name
        self._infer = infer
        self._infer_now = infer_now if policy.inline_max_s > 0 else None
        self._inline = InlineCosts(policy.inline_max_s)
        self._launch_soon = False  # a launch is scheduled for the end of this loop turn
        self._policy = policy
        self._observer = observer or NullObserver()
        self._clock = clock
        self._queue: deque[Pending] = deque()
        self._rows_queued = 0  # kept with the queue: read on every arrival
        self._wakeup = asyncio.Event()
        self._free = policy.instances  # instances not running a batch
        self._running: set[asyncio.Future[dict[str, Array]]] = set()
        self._in_flight = 0
        # Batches handed to the backend beyond the ones running: their request counts,
        # oldest first, and the sum of those counts (they count against the queue bound).
        self._ahead: deque[_Run] = deque()
        self._ahead_entries = 0
        self._call = CallTime()
        self._drain = DrainRate()
        self._consumer: asyncio.Task[None] | None = None
        self._closing = False
        self._statistics = BatchStatistics()
        self._split: list[Parts] = []  # split requests with parts still to queue

    @property
    def policy(self) -> BatchPolicy:
        """How this batcher forms batches."""
        return self._policy

    @property
    def statistics(self) -> BatchStatistics:
        """What this batcher has counted since it started (the statistics extension)."""
        return self._statistics

    @property
    def depth(self) -> int:
        """Requests waiting: in the queue (cancelled ones until they are skipped) and in
        batches handed to the backend ahead of the running ones."""
        return len(self._queue) + self._ahead_entries

    def start(self) -> None:
        """Start the consumer task; call once, from the event loop that will serve."""
        if self._consumer is None:
            self._consumer = asyncio.get_running_loop().create_task(
                self._consume(), name=f"batcher {self._name}"
            )

    def submit(
        self,
        inputs: Mapping[str, Array],
        outputs: Sequence[str],
        timeout_s: float | None = None,
        trace: BatchTrace | None = None,
        *,
        alone: bool = False,
    ) -> asyncio.Future[dict[str, Array]]:
        """Queue one request; its future resolves to that request's outputs; ``trace``
        (optional) learns its time in queue and batch size. ``alone``: the caller knows
        no other request is on its way, so a batch fast enough for the event loop runs at
        once (done when this returns) instead of at the end of the loop turn.

        A request with more rows than ``max_batch_size`` is split into parts of at most
        that many rows and joined back in order; ``instances`` of its parts are queued at
        once, and each part whose batch has run queues the next (``queue.Parts``). Raises
        at once, before any work: ``Overloaded`` when the queue cannot hold the request
        (all its parts), ``ModelNotReady`` once the batcher is closing. Cancel the future
        to withdraw.
        """
        self.check_admission()
        rows = batch_rows(inputs)
        limit = self._policy.max_batch_size
        parts = 1 if not self._policy.batching or rows <= limit else -(-rows // limit)
        if parts > 1:
            self.check_admission(parts)
        now = self._clock()
        deadline = math.inf if timeout_s is None else now + timeout_s
        if parts > 1:
            return self._enqueue_parts(split_rows(inputs, limit), outputs, deadline, now, trace)
        return self._enqueue(inputs, outputs, deadline, now, trace, alone=alone)

    def _enqueue_parts(
        self,
        pieces: list[dict[str, Array]],
        outputs: Sequence[str],
        deadline: float,
        now: float,
        trace: BatchTrace | None,
    ) -> asyncio.Future[dict[str, Array]]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in pieces]
        joined = join_futures(futures)
        parts = Parts(deque(zip(pieces, futures, strict=True)), joined)
        self._split.append(parts)
        for _ in range(min(self._policy.instances, len(pieces))):
            piece, future = parts.pieces.popleft()
            self._enqueue(piece, outputs, deadline, now, trace, future, parts)
        return joined

    def _queue_next_part(self, item: Pending) -> None:
        """``item``'s batch has run: queue the next part of its request, at the back."""
        parts = item.parts
        assert parts is not None
        if not parts.pieces or parts.joined.done():
            return
        piece, future = parts.pieces.popleft()
        rows = batch_rows(piece)
        key = shape_key(piece) if self._policy.batching else None
        now = self._clock()
        part = Pending(piece, item.outputs, rows, key, item.deadline, now, future, item.trace)
        part.parts = parts
        self._queue.append(part)
        self._rows_queued += rows

    def _unqueued_parts(self) -> int:
        """Parts of split requests waiting for their turn to queue: they count as queued."""
        self._split = [parts for parts in self._split if parts.pieces and not parts.joined.done()]
        return sum(len(parts.pieces) for parts in self._split)

    def _enqueue(
        self,
        inputs: Mapping[str, Array],
        outputs: Sequence[str],
        deadline: float,
        now: float,
        trace: BatchTrace | None,
        future: asyncio.Future[dict[str, Array]] | None = None,
        parts: Parts | None = None,
        *,
        alone: bool = False,
    ) -> asyncio.Future[dict[str, Array]]:
        if future is None:
            future = asyncio.get_running_loop().create_future()
        key = shape_key(inputs) if self._policy.batching else None
        rows = batch_rows(inputs)
        self._queue.append(Pending(inputs, outputs, rows, key, deadline, now, future, trace, parts))
        self._rows_queued += rows
        company_useful = self._policy.batching and self._in_flight > 0
        if self._free > 0 and len(self._queue) == 1 and not company_useful:
            if alone or self._infer_now is None or not self._inline.fits(_elements(inputs)):
                # Nothing to wait for: run it now rather than wake the consumer (a loop turn
                # less latency, and under a flood of arrivals loop turns are what is scarce).
                self._launch(self._take_batch())
            else:
                # Fast enough for the loop: cut the batch once this turn's arrivals are in.
                self._launch_at_turn_end()
            return future
        if self._complete():
            self._dispatch_ahead()
        self._observer.queue_depth(self.depth)
        # Wake the consumer only when it has something new to decide: work after an empty
        # queue, or a full batch. Waking it on every arrival cost a timer and a task each.
        if len(self._queue) == 1 or self._rows_queued >= self._policy.max_batch_size:
            self._wakeup.set()
        return future

    @property
    def accepting(self) -> bool:
        """False once closing (or before starting): ``submit`` would refuse."""
        return not self._closing and self._consumer is not None

    def check_admission(self, entries: int = 1) -> None:
        """Raise what ``submit`` would for a full queue or a closing batcher; costs nothing.

        Callers check before reading and decoding a body, so that refusing is cheap.
        """
        if not self.accepting:
            raise ModelNotReady(f"{self._name} is not accepting requests")
        waiting = len(self._queue) + self._ahead_entries + entries
        if self._split:
            waiting += self._unqueued_parts()
        if waiting > self._policy.max_queue_size:
            self._observer.rejected()
            retry = self.retry_after_s()
            raise Overloaded(
                f"{self._name} is overloaded: its queue holds "
                f"{self._policy.max_queue_size} requests; retry in about {retry:.3f} s",
                retry_after_s=retry,
            )

    def retry_after_s(self) -> float:
        """Estimated seconds until the queue has drained, from the measured rate."""
        return self._drain.seconds_to_drain(self.depth)

    async def close(self) -> None:
        """Stop accepting, finish the queued and running batches, then stop the task."""
        self._closing = True
        self._wakeup.set()
        if self._consumer is not None:
            await self._consumer
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _consume(self) -> None:
        while True:
            while not self._queue or not self._free:
                if self._closing and not self._queue:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._gather_company()
            self._launch(self._take_batch())

    def _launch_at_turn_end(self) -> None:
        if not self._launch_soon:
            self._launch_soon = True
            asyncio.get_running_loop().call_soon(self._launch_queued)

    def _launch_queued(self) -> None:
        self._launch_soon = False
        if self._queue and self._free > 0:
            self._launch(self._take_batch())

    def _launch(self, batch: list[Pending]) -> None:
        """Start running ``batch`` on a free instance, now: the backend call is made in
        this loop turn, and ``_finish`` runs from its completion (no Task in between,
        each of which cost a loop turn per batch under load); for the worker pool's
        ``SettledFuture``, in the very turn the outcome arrives."""
        if not batch:
            return
        started = self._clock()
        rows = sum(item.rows for item in batch)
        run = _Run(started, len(batch), rows)
        inline = self._infer_now is not None and self._free > 0  # never a batch handed ahead
        if self._free > 0:
            self._free -= 1
        else:  # handed ahead: it waits in the backend's queue for a running batch to end
            self._ahead.append(run)
            self._ahead_entries += run.entries
        self._in_flight += 1
        waits = [started - item.enqueued for item in batch]
        self._observer.batch_started(rows, waits)
        for item, wait in zip(batch, waits, strict=True):
            if item.trace is not None:
                item.trace.started(wait, rows)
        waited = sum(waits)
        run.arrived = started * run.entries - waited
        self._statistics.queued(run.entries, waited)
        try:
            outputs = sorted({name for item in batch for name in item.outputs})
            merged = concatenate([item.inputs for item in batch])
            run.input_s = self._clock() - started
            elements = _elements(merged) if inline else 0
            running = (
                None
                if inline and self._inline.fits(elements)
                else self._start(batch, merged, outputs, started)
            )
        except Exception as exc:
            # Finished from the next loop turn: _finish may launch again, and a run of
            # batches failing at once must not recurse through the whole queue.
            asyncio.get_running_loop().call_soon(self._finish, batch, run, exc)
            return
        if running is None:
            self._run_inline(batch, run, merged, outputs, elements)
        elif isinstance(running, SettledFuture):  # finish in the turn the outcome arrives
            self._running.add(running)
            running.on_settled(partial(self._finished, batch, run))
        else:
            self._running.add(running)
            running.add_done_callback(partial(self._finished, batch, run))

    def _start(
        self,
        batch: list[Pending],
        merged: Mapping[str, Array],
        outputs: Sequence[str],
        started: float,
    ) -> asyncio.Future[dict[str, Array]]:
        """Hand ``merged`` to the backend, the batch's latest deadline as its budget."""
        latest = max(item.deadline for item in batch)
        budget = None if latest == math.inf else max(0.0, latest - started)
        token = CALL_TIMEOUT_S.set(budget)
        try:
            return asyncio.ensure_future(self._infer(merged, outputs))
        finally:
            CALL_TIMEOUT_S.reset(token)

    def _run_inline(
        self,
        batch: list[Pending],
        run: _Run,
        merged: Mapping[str, Array],
        outputs: Sequence[str],
        elements: int,
    ) -> None:
        """Run ``batch`` on the loop, now, and hand out its rows."""
        assert self._infer_now is not None
        began = time.perf_counter()
        outcome: dict[str, Array] | BaseException
        try:
            outcome = self._infer_now(merged, outputs)
        except Exception as exc:
            outcome = exc
        run.run_s = time.perf_counter() - began
        self._inline.record(elements, run.run_s)
        self._finish(batch, run, outcome, inline=True)

    def _finished(
        self, batch: list[Pending], run: _Run, running: asyncio.Future[dict[str, Array]]
    ) -> None:
        self._running.discard(running)
        if isinstance(running, SettledFuture):
            run.run_s = running.run_s
            if run.run_s is not None and self._infer_now is not None:
                self._inline.record(_elements_of(batch), run.run_s)
        if running.cancelled():
            self._finish(batch, run, asyncio.CancelledError())
            return
        error = running.exception()
        self._finish(batch, run, running.result() if error is None else error)

    def _complete(self) -> bool:
        """True when the batch at the head of the queue cannot grow any more."""
        policy = self._policy
        return not policy.batching or self._rows_queued >= policy.max_batch_size

    def _dispatch_ahead(self) -> None:
        """Hand the backend the batches that cannot grow any more, up to ``dispatch_ahead``
        beyond the running ones, so that its threads start the next call the moment one
        ends: a batch launched from ``_finish`` reaches them only after a loop turn, and
        under a flood of rejected requests a turn lasts many calls (docs/batching.md)."""
        limit = int(self._policy.dispatch_ahead_s / max(self._call.seconds, 1e-6))
        while self._queue and not self._free and len(self._ahead) < limit and self._complete():
            batch = self._take_batch()
            if not batch:
                return
            self._launch(batch)

    async def _gather_company(self) -> None:
        """While another batch runs, wait up to the delay for the queue to fill."""
        policy = self._policy
        if not policy.batching or policy.max_queue_delay_s <= 0:
            return
        start = self._queue[0].enqueued if self._queue else self._clock()
        while self._in_flight and not self._closing and self._rows_queued < policy.max_batch_size:
            remaining = start + policy.max_queue_delay_s - self._clock()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _take_batch(self) -> list[Pending]:
        """Pop the next batch (``batching.queue``), keeping the counts in step."""
        batch = take_batch(self._queue, self._policy, self._clock(), self._expire)
        self._rows_queued = sum(item.rows for item in self._queue)
        self._observer.queue_depth(len(self._queue) + self._ahead_entries)
        return batch

    def _expire(self, item: Pending) -> None:
        self._observer.expired()
        self._statistics.failed(1, self._clock() - item.enqueued)
        item.future.set_exception(
            DeadlineExceeded(f"the request's deadline passed while it waited for {self._name}")
        )

    def _finish(
        self,
        batch: list[Pending],
        run: _Run,
        outcome: dict[str, Array] | BaseException,
        *,
        inline: bool = False,
    ) -> None:
        """Hand every caller its rows (or the batch's error), then start the next batch
        (after an ``inline`` one, from the end of the loop turn: the loop gets to answer
        and read between two inline batches)."""
        now = self._clock()
        try:
            elapsed = now - run.started  # a batch handed ahead: since it took a thread
            pieces = None
            if not isinstance(outcome, BaseException):
                try:
                    pieces = split(outcome, [item.rows for item in batch])
                except Exception as exc:  # outputs that do not match the batch
                    outcome = exc
            self._observer.batch_finished(elapsed, failed=pieces is None)
            if pieces is None:
                assert isinstance(outcome, BaseException)
                self._statistics.failed(run.entries, now * run.entries - run.arrived)
                for item in batch:
                    _fail(item.future, outcome)
            else:
                self._record_success(run, now, elapsed)
                self._drain.record(len(batch), elapsed, self._policy.instances)
                # The thread's own measure: elapsed also holds the loop's delay in handing
                # the next batch over, the very wait that handing ahead removes.
                self._call.record(elapsed if run.run_s is None else run.run_s)
                for item, piece in zip(batch, pieces, strict=True):
                    if not item.future.done():
                        item.future.set_result({name: piece[name] for name in item.outputs})
                    if item.parts is not None:
                        self._queue_next_part(item)
        finally:
            self._release(now, inline=inline)

    def _release(self, now: float, *, inline: bool) -> None:
        """A batch ended: its instance goes to a batch handed ahead, or is free; start what
        the queue holds."""
        self._in_flight -= 1
        if self._ahead:  # the oldest batch handed ahead took this one's thread
            promoted = self._ahead.popleft()
            self._ahead_entries -= promoted.entries
            promoted.started = now
        else:
            self._free += 1
        if self._in_flight == 0 and self._queue and not self._closing:
            if inline:
                self._launch_at_turn_end()
            else:
                # The next batch filled while this one ran: start it in this loop turn
                # instead of waking the consumer to do it in a later one.
                self._launch(self._take_batch())
        self._dispatch_ahead()
        if self._queue or self._closing:  # an empty queue has nothing for the consumer
            self._wakeup.set()

    def _record_success(self, run: _Run, finished: float, elapsed: float) -> None:
        """Count an answered batch: the call, the split (``finished`` to now), each wait."""
        now = self._clock()
        infer_s = elapsed if run.run_s is None else run.run_s
        self._statistics.succeeded(
            entries=run.entries,
            rows=run.rows,
            input_s=run.input_s,
            infer_s=infer_s,
            output_s=now - finished,
            total_s=now * run.entries - run.arrived,
            wall_ms=time.time_ns() // 1_000_000,
        )


def _elements(inputs: Mapping[str, Array]) -> int:
    """The element count of a request's or a batch's inputs: what an inline call is
    judged by."""
    return sum(array.size for array in inputs.values())


def _elements_of(batch: list[Pending]) -> int:
    return sum(_elements(item.inputs) for item in batch)


def _fail(future: asyncio.Future[dict[str, Array]], error: BaseException) -> None:
    """Fail one caller's future with a batch's error; a cancelled batch cancels it."""
    if future.done():
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(error)
