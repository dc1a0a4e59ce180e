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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from backends.base import Array
from gateway.batching.calls import BackendCalls, InferFn, InlineFn
from gateway.batching.fair_queue import insert_in_tag_order, victim_flow
from gateway.batching.joining import Parts, SplitRequests
from gateway.batching.measures import BatchMeasures, BatchRun
from gateway.batching.observer import BatchObserver, BatchTrace, NullObserver
from gateway.batching.policy import BatchPolicy
from gateway.batching.queue import Pending, PendingQueue, settle
from gateway.batching.statistics import BatchStatistics
from gateway.batching.tensors import (
    batch_rows,
    concatenate,
    shape_key,
    split_rows,
)
from gateway.errors import DeadlineExceeded, ModelNotReady, Overloaded

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


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
        self._calls = BackendCalls(infer, infer_now, policy.inline_max_s)
        self._launch_soon = False  # a launch is scheduled for the end of this loop turn
        self._policy = policy
        self._measures = BatchMeasures(observer or NullObserver(), clock, policy.instances)
        self._observer = self._measures.observer
        self._clock = clock
        self._queue = PendingQueue()
        self._wakeup = asyncio.Event()
        self._free = policy.instances  # instances not running a batch
        self._in_flight = 0
        # Batches handed to the backend beyond the ones running: their request counts,
        # oldest first, and the sum of those counts (they count against the queue bound).
        self._ahead: deque[BatchRun] = deque()
        self._ahead_entries = 0
        self._consumer: asyncio.Task[None] | None = None
        self._closing = False
        self._split = SplitRequests()

    @property
    def policy(self) -> BatchPolicy:
        """How this batcher forms batches."""
        return self._policy

    @property
    def statistics(self) -> BatchStatistics:
        """What this batcher has counted since it started (the statistics extension)."""
        return self._measures.statistics

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
        flow: str = "",
        weight: float = 1.0,
    ) -> asyncio.Future[dict[str, Array]]:
        """Queue one request; its future resolves to that request's outputs; ``trace``
        (optional) learns its time in queue and batch size. ``alone``: the caller knows
        no other request is on its way, so a batch fast enough for the event loop runs at
        once (done when this returns) instead of at the end of the loop turn. ``flow``
        and ``weight``: the caller's share of the queue (``batching.fair_queue``); a full
        queue makes room for a flow under its share by refusing the newest request of the
        flow most over it.

        A request with more rows than ``max_batch_size`` is split into parts of at most
        that many rows and joined back in order; ``instances`` of its parts are queued at
        once, and each part whose batch has run queues the next (``queue.Parts``). Raises
        at once, before any work: ``Overloaded`` when the queue cannot hold the request
        (all its parts), ``ModelNotReady`` once the batcher is closing. Cancel the future
        to withdraw.
        """
        crowded = self.check_admission(1, flow)
        rows = batch_rows(inputs)
        limit = self._policy.max_batch_size
        parts = 1 if not self._policy.batching or rows <= limit else -(-rows // limit)
        if parts > 1:
            self.check_admission(parts)
        now = self._clock()
        deadline = math.inf if timeout_s is None else now + timeout_s
        if parts > 1:
            pieces = split_rows(inputs, limit)
            split = self._split.split(pieces)
            for _ in range(min(self._policy.instances, len(pieces))):
                piece, future = split.pieces.popleft()
                self._enqueue(
                    piece, outputs, deadline, now, trace, future, split, flow=flow, weight=weight
                )
            return split.joined
        if crowded:  # let in: the flow most over its share gives way (503), if any still is
            if self._queue.make_room(flow, self._name, self.retry_after_s()):
                self._observer.rejected()
            else:
                self.check_admission()  # raises while the queue is full
        return self._enqueue(
            inputs, outputs, deadline, now, trace, alone=alone, flow=flow, weight=weight
        )

    def _queue_next_part(self, item: Pending) -> None:
        """``item``'s batch has run: queue the next part of its request, at the back."""
        assert item.parts is not None
        part = item.parts.next()
        if part is None:
            return
        piece, future = part
        rows = batch_rows(piece)
        key = shape_key(piece) if self._policy.batching else None
        following = replace(item, inputs=piece, rows=rows, key=key, future=future)
        following.enqueued = self._clock()
        self._queue.add(following)

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
        flow: str = "",
        weight: float = 1.0,
    ) -> asyncio.Future[dict[str, Array]]:
        if future is None:
            future = asyncio.get_running_loop().create_future()
        key = shape_key(inputs) if self._policy.batching else None
        rows = batch_rows(inputs)
        queue = self._queue
        tag = queue.tags.tag(flow, rows, weight)
        item = Pending(inputs, outputs, rows, key, deadline, now, future, trace, parts, flow)
        item.weight, item.tag = weight, tag
        if not queue or queue[-1].tag <= tag:  # as PendingQueue.add, inline: every arrival
            queue.append(item)
        else:
            insert_in_tag_order(queue, item)
        queue.rows += rows
        company_useful = self._policy.batching and self._in_flight > 0
        if self._free > 0 and len(self._queue) == 1 and not company_useful:
            if alone or not self._calls.fits_inline(inputs):
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
        if len(self._queue) == 1 or self._queue.rows >= self._policy.max_batch_size:
            self._wakeup.set()
        return future

    @property
    def accepting(self) -> bool:
        """False once closing (or before starting): ``submit`` would refuse."""
        return not self._closing and self._consumer is not None

    def check_admission(self, entries: int = 1, flow: str | None = None) -> bool:
        """Raise what ``submit`` would for a full queue or a closing batcher; costs nothing
        while the queue has room. ``flow``: a one-part request of that caller, let in
        when the queue is full but holds fewer of its requests than of another's (per
        unit of weight): True then, the other's newest request is to make room.

        Callers check before reading and decoding a body, so that refusing is cheap.
        """
        if self._closing or self._consumer is None:  # not accepting
            raise ModelNotReady(f"{self._name} is not accepting requests")
        waiting = len(self._queue) + self._ahead_entries + entries
        if self._split:
            waiting += self._split.unqueued()
        if waiting > self._policy.max_queue_size:
            if flow is not None and victim_flow(self._queue, flow) is not None:
                return True
            self._observer.rejected()
            retry = self.retry_after_s()
            raise Overloaded(
                f"{self._name} is overloaded: its queue holds "
                f"{self._policy.max_queue_size} requests; retry in about {retry:.3f} s",
                retry_after_s=retry,
            )
        return False

    def retry_after_s(self) -> float:
        """Estimated seconds until the queue has drained, from the measured rate."""
        return self._measures.drain.seconds_to_drain(self.depth)

    async def close(self) -> None:
        """Stop accepting, finish the queued and running batches, then stop the task."""
        self._closing = True
        self._wakeup.set()
        if self._consumer is not None:
            await self._consumer
        await self._calls.wait()

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
        run = BatchRun(started, len(batch), rows)
        free = self._free > 0  # a batch handed ahead never runs inline
        if self._free > 0:
            self._free -= 1
        else:  # handed ahead: it waits in the backend's queue for a running batch to end
            self._ahead.append(run)
            self._ahead_entries += run.entries
            self._observer.queue_depth(len(self._queue) + self._ahead_entries)
        self._in_flight += 1
        self._measures.started(batch, run)
        try:
            outputs = sorted({name for item in batch for name in item.outputs})
            merged = concatenate([item.inputs for item in batch])
            run.input_s = self._clock() - started
            elements = self._calls.inline_elements(merged) if free else None
            if elements is None:
                self._calls.start(batch, merged, outputs, run, self._finish)
        except Exception as exc:
            # Finished from the next loop turn: _finish may launch again, and a run of
            # batches failing at once must not recurse through the whole queue.
            asyncio.get_running_loop().call_soon(self._finish, batch, run, exc)
            return
        if elements is not None:
            outcome = self._calls.run_inline(merged, outputs, run, elements)
            self._finish(batch, run, outcome, inline=True)

    def _complete(self) -> bool:
        """True when the batch at the head of the queue cannot grow any more."""
        policy = self._policy
        return not policy.batching or self._queue.rows >= policy.max_batch_size

    def _dispatch_ahead(self) -> None:
        """Hand the backend the batches that cannot grow any more, up to ``dispatch_ahead``
        beyond the running ones, so that its threads start the next call the moment one
        ends: a batch launched from ``_finish`` reaches them only after a loop turn, and
        under a flood of rejected requests a turn lasts many calls (docs/batching.md)."""
        limit = int(self._policy.dispatch_ahead_s / max(self._measures.call.seconds, 1e-6))
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
        while self._in_flight and not self._closing and self._queue.rows < policy.max_batch_size:
            remaining = start + policy.max_queue_delay_s - self._clock()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _take_batch(self) -> list[Pending]:
        """Pop the next batch (``batching.queue``), keeping the counts in step."""
        batch = self._queue.take(self._policy, self._clock(), self._expire)
        self._observer.queue_depth(len(self._queue) + self._ahead_entries)
        return batch

    def _expire(self, item: Pending) -> None:
        self._measures.expired(item)
        item.future.set_exception(
            DeadlineExceeded(f"the request's deadline passed while it waited for {self._name}")
        )

    def _finish(
        self,
        batch: list[Pending],
        run: BatchRun,
        outcome: dict[str, Array] | BaseException,
        *,
        inline: bool = False,
    ) -> None:
        """Hand every caller its rows (or the batch's error), then start the next batch
        (after an ``inline`` one, from the end of the loop turn: the loop gets to answer
        and read between two inline batches)."""
        now = self._clock()
        try:
            if settle(batch, outcome):
                self._measures.succeeded(run, now)
                for item in batch:
                    if item.parts is not None:
                        self._queue_next_part(item)
            else:
                self._measures.failed(run, now)
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
            # Nothing queued behind it may ever cut a batch to set the gauge: set it now.
            self._observer.queue_depth(len(self._queue) + self._ahead_entries)
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
