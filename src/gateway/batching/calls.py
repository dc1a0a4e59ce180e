"""How a batch's backend call is made: on the event loop when calls of its size are
measured faster than a hand-over to a thread (``batching.inline``), else on the runtime's
threads with the batch's latest deadline as its budget; either way the call is timed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial

from backends.base import CALL_TIMEOUT_S, Array
from backends.worker_pool import SettledFuture
from gateway.batching.inline import InlineCosts, batch_elements, input_elements
from gateway.batching.measures import BatchRun
from gateway.batching.queue import Pending

InferFn = Callable[[Mapping[str, Array], Sequence[str]], Awaitable[dict[str, Array]]]
"""Runs one batch: the backend's ``infer`` (inputs, output names) -> outputs."""

InlineFn = Callable[[Mapping[str, Array], Sequence[str]], dict[str, Array]]
"""Runs one batch on the calling thread (the backend's ``infer_now``), blocking."""

Outcome = dict[str, Array] | BaseException
Finish = Callable[[list[Pending], BatchRun, Outcome], None]
"""Called with a batch's outputs, or what its call raised (``CancelledError`` included)."""


class BackendCalls:
    """One version's backend calls, and the measured time that decides where they run."""

    __slots__ = ("_costs", "_infer", "_infer_now", "_running")

    def __init__(self, infer: InferFn, infer_now: InlineFn | None, inline_max_s: float) -> None:
        self._infer = infer
        self._infer_now = infer_now if inline_max_s > 0 else None
        self._costs = InlineCosts(inline_max_s)
        self._running: set[asyncio.Future[dict[str, Array]]] = set()

    def fits_inline(self, inputs: Mapping[str, Array]) -> bool:
        """True when a call over ``inputs`` may run on the event loop."""
        return self._infer_now is not None and self._costs.fits(input_elements(inputs))

    def inline_elements(self, merged: Mapping[str, Array]) -> int | None:
        """The element count of ``merged`` when its call may run on the loop, else None."""
        if self._infer_now is None:
            return None
        elements = input_elements(merged)
        return elements if self._costs.fits(elements) else None

    def run_inline(
        self, merged: Mapping[str, Array], outputs: Sequence[str], run: BatchRun, elements: int
    ) -> Outcome:
        """Run the call on this thread, now: its outputs, or what it raised."""
        assert self._infer_now is not None
        began = time.perf_counter()
        outcome: Outcome
        try:
            outcome = self._infer_now(merged, outputs)
        except Exception as exc:
            outcome = exc
        run.run_s = time.perf_counter() - began
        self._costs.record(elements, run.run_s)
        return outcome

    def start(
        self,
        batch: list[Pending],
        merged: Mapping[str, Array],
        outputs: Sequence[str],
        run: BatchRun,
        finish: Finish,
    ) -> None:
        """Hand the call to the backend now; ``finish`` runs from its outcome (for the
        worker pool's ``SettledFuture``, in the very loop turn the outcome arrives)."""
        latest = max(item.deadline for item in batch)
        budget = None if latest == math.inf else max(0.0, latest - run.started)
        token = CALL_TIMEOUT_S.set(budget)
        try:
            running = asyncio.ensure_future(self._infer(merged, outputs))
        finally:
            CALL_TIMEOUT_S.reset(token)
        self._running.add(running)
        done = partial(self._finished, batch, run, finish)
        if isinstance(running, SettledFuture):
            running.on_settled(done)
        else:
            running.add_done_callback(done)

    def _finished(
        self,
        batch: list[Pending],
        run: BatchRun,
        finish: Finish,
        running: asyncio.Future[dict[str, Array]],
    ) -> None:
        self._running.discard(running)
        if isinstance(running, SettledFuture):
            run.run_s = running.run_s
            if run.run_s is not None and self._infer_now is not None:
                self._costs.record(batch_elements(batch), run.run_s)
        if running.cancelled():
            finish(batch, run, asyncio.CancelledError())
            return
        error = running.exception()
        finish(batch, run, running.result() if error is None else error)

    async def wait(self) -> None:
        """Until every call handed to the backend has ended."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
