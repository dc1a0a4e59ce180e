"""What a batcher measures of its batches, and whom it tells: the statistics extension's
counters, the observer (metrics), each request's trace, the drain rate behind
``Retry-After`` and the call time that paces handing batches ahead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.batching.drain import CallTime, DrainRate
from gateway.batching.observer import BatchObserver
from gateway.batching.queue import Pending
from gateway.batching.statistics import BatchStatistics


@dataclass(slots=True, eq=False)
class BatchRun:
    """One batch handed to the backend: when it started running, and its request count."""

    started: float
    entries: int
    rows: int = 0
    arrived: float = 0.0  # the sum of the requests' arrival times
    input_s: float = 0.0  # merging the requests' inputs
    run_s: float | None = None  # the call's own duration, when the backend reports it


class BatchMeasures:
    """One batcher's measures, fed as its batches start and end."""

    __slots__ = ("_clock", "_instances", "call", "drain", "observer", "statistics")

    def __init__(self, observer: BatchObserver, clock: Callable[[], float], instances: int) -> None:
        self.observer = observer
        self.statistics = BatchStatistics()
        self.drain = DrainRate()
        self.call = CallTime()
        self._clock = clock
        self._instances = instances

    def started(self, batch: Sequence[Pending], run: BatchRun) -> None:
        """``batch`` starts: each request's time in queue, told to its trace too."""
        started, rows = run.started, run.rows
        waits = [started - item.enqueued for item in batch]
        self.observer.batch_started(rows, waits)
        for item, wait in zip(batch, waits, strict=True):
            if item.trace is not None:
                item.trace.started(wait, rows)
        waited = sum(waits)
        run.arrived = started * run.entries - waited
        self.statistics.queued(run.entries, waited)

    def expired(self, item: Pending) -> None:
        """``item``'s deadline passed before its batch started."""
        self.observer.expired()
        self.statistics.failed(1, self._clock() - item.enqueued)

    def failed(self, run: BatchRun, finished: float) -> None:
        """The batch's call raised (or its outputs did not fit the batch)."""
        self.observer.batch_finished(finished - run.started, failed=True)
        self.statistics.failed(run.entries, finished * run.entries - run.arrived)

    def succeeded(self, run: BatchRun, finished: float) -> None:
        """The batch's call returned at ``finished``; its rows are being handed out."""
        elapsed = finished - run.started  # a batch handed ahead: since it took a thread
        self.observer.batch_finished(elapsed, failed=False)
        # The thread's own measure: elapsed also holds the loop's delay in handing the
        # next batch over, the very wait that handing ahead removes.
        infer_s = elapsed if run.run_s is None else run.run_s
        now = self._clock()
        self.statistics.succeeded(
            entries=run.entries,
            rows=run.rows,
            input_s=run.input_s,
            infer_s=infer_s,
            output_s=now - finished,
            total_s=now * run.entries - run.arrived,
            wall_ms=time.time_ns() // 1_000_000,
        )
        self.drain.record(run.entries, elapsed, self._instances)
        self.call.record(infer_s)
