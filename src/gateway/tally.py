"""Prometheus observations counted in plain Python and added to the collectors once per
event-loop turn: the fenced speed trick of the metrics (``metrics_tally``, on by default).

prometheus_client takes a lock for every increment and walks a histogram's buckets in
Python for every observation: one inference request cost 14 locked increments and 4
bucket walks (counted with cProfile), about a tenth of the gateway's own Python per
request. Here each request adds to plain integers and floats (a histogram's bucket found
by ``bisect``), and the sums reach the collectors in one step per labelled series, from a
callback at the end of the loop turn: under load, one step for all the requests answered
in that turn. ``/metrics`` flushes first, and a flushed sample is what the collector would
hold had each request been observed on its own (multiprocess files included), so what a
scrape shows does not change.

It relies on prometheus_client's children keeping their values as objects with
``inc(amount)``: a Counter's ``_value``, a Summary's ``_count`` and ``_sum``, a
Histogram's ``_sum`` and ``_buckets`` (one per ``_upper_bounds`` entry, ``+Inf`` last,
not cumulative). pyproject.toml pins prometheus-client below the next minor release not
yet tested, tests/gateway/test_tally.py fails loudly when those names move, and
``metrics_tally: false`` observes every request directly instead. Nothing else touches
those names.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram, Summary


class _Pending(Protocol):
    def flush(self) -> None:
        """Add what was counted to the collector, and start again from zero."""


class TallyBook:
    """The tallies holding counts not yet added to their collectors; flushes them at the
    end of the loop turn in which the first of them was counted (``direct``: at once)."""

    __slots__ = ("_pending", "_scheduled", "direct")

    def __init__(self, *, direct: bool = False) -> None:
        self.direct = direct
        self._pending: list[_Pending] = []
        self._scheduled = False

    def touch(self, tally: _Pending) -> None:
        """``tally`` holds counts now: flush it with the others."""
        self._pending.append(tally)
        if self.direct:
            self.flush()
        elif not self._scheduled:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a synchronous caller): nothing to wait for
                self.flush()
                return
            self._scheduled = True

    def flush(self) -> None:
        """Add every pending count to its collector."""
        self._scheduled = False
        pending, self._pending = self._pending, []
        for tally in pending:
            tally.flush()


class GaugeTally:
    """The last value given to one gauge child, set on it once per loop turn (a queue's
    depth changes with every arrival; a scrape only ever reads the last value)."""

    __slots__ = ("_book", "_child", "_pending", "_value")

    def __init__(self, child: Gauge, book: TallyBook) -> None:
        self._child = child
        self._book = book
        self._value = 0.0
        self._pending = False

    def set(self, value: float) -> None:
        """Set the gauge to ``value`` (from the end of the loop turn)."""
        self._value = value
        if not self._pending:
            self._pending = True
            self._book.touch(self)

    def flush(self) -> None:
        """Set the child to the last value."""
        self._pending = False
        self._child.set(self._value)


class CounterTally:
    """Increments of one counter child."""

    __slots__ = ("_book", "_child", "_count")

    def __init__(self, child: Counter, book: TallyBook) -> None:
        self._child: Any = child
        self._book = book
        self._count = 0

    def inc(self) -> None:
        """Count one."""
        self._count += 1
        if self._count == 1:
            self._book.touch(self)

    def flush(self) -> None:
        """Add the count to the child."""
        count, self._count = self._count, 0
        if count:
            self._child._value.inc(count)


class SummaryTally:
    """Observations of one summary child (a count and a sum)."""

    __slots__ = ("_book", "_child", "_count", "_sum")

    def __init__(self, child: Summary, book: TallyBook) -> None:
        self._child: Any = child
        self._book = book
        self._count = 0
        self._sum = 0.0

    def observe(self, value: float) -> None:
        """Observe ``value``."""
        self._count += 1
        self._sum += value
        if self._count == 1:
            self._book.touch(self)

    def flush(self) -> None:
        """Add the count and the sum to the child."""
        count, self._count = self._count, 0
        if count:
            self._child._count.inc(count)
            self._child._sum.inc(self._sum)
        self._sum = 0.0


class HistogramTally:
    """Observations of one histogram child, counted by bucket."""

    __slots__ = ("_book", "_bounds", "_child", "_count", "_counts", "_sum")

    def __init__(self, child: Histogram, book: TallyBook) -> None:
        self._child: Any = child
        self._book = book
        self._bounds: list[float] = list(self._child._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._count = 0
        self._sum = 0.0

    def observe(self, value: float) -> None:
        """Observe ``value`` (in the first bucket whose bound is not below it)."""
        self._count += 1
        self._sum += value
        self._counts[bisect_left(self._bounds, value)] += 1
        if self._count == 1:
            self._book.touch(self)

    def flush(self) -> None:
        """Add the bucket counts and the sum to the child."""
        if not self._count:
            return
        self._count = 0
        buckets = self._child._buckets
        counts = self._counts
        for index, count in enumerate(counts):
            if count:
                buckets[index].inc(count)
                counts[index] = 0
        self._child._sum.inc(self._sum)
        self._sum = 0.0


class RequestTally:
    """One kind of request's series, counted together: counters (one each per request),
    summaries (one size each) and histograms (its duration), each child of one label set.
    A request costs one call and, once per loop turn, one touch; the flush adds to every
    child what ``CounterTally``, ``SummaryTally`` and ``HistogramTally`` would."""

    __slots__ = (
        "_book",
        "_bounds",
        "_count",
        "_counters",
        "_counts",
        "_durations",
        "_seconds",
        "_size_sums",
        "_sizes",
    )

    def __init__(
        self,
        book: TallyBook,
        counters: list[Counter],
        sizes: list[Summary],
        durations: list[Histogram],
    ) -> None:
        self._book = book
        self._counters: list[Any] = list(counters)
        self._sizes: list[Any] = list(sizes)
        self._durations: list[Any] = list(durations)
        self._bounds: list[list[float]] = [list(child._upper_bounds) for child in self._durations]
        self._counts = [[0] * len(bounds) for bounds in self._bounds]
        self._size_sums = [0.0] * len(self._sizes)
        self._count = 0
        self._seconds = 0.0

    def add(self, seconds: float, sizes: tuple[float, ...]) -> None:
        """Count one request of ``seconds`` whose sizes are ``sizes`` (one per summary)."""
        self._count += 1
        self._seconds += seconds
        for counts, bounds in zip(self._counts, self._bounds, strict=True):
            counts[bisect_left(bounds, seconds)] += 1
        sums = self._size_sums
        for index, size in enumerate(sizes):
            sums[index] += size
        if self._count == 1:
            self._book.touch(self)

    def flush(self) -> None:
        """Add every count and sum to its child."""
        count, self._count = self._count, 0
        if not count:
            return
        for counter in self._counters:
            counter._value.inc(count)
        for summary, total in zip(self._sizes, self._size_sums, strict=True):
            summary._count.inc(count)
            summary._sum.inc(total)
        self._size_sums = [0.0] * len(self._sizes)
        for histogram, counts in zip(self._durations, self._counts, strict=True):
            buckets = histogram._buckets
            for index, bucket_count in enumerate(counts):
                if bucket_count:
                    buckets[index].inc(bucket_count)
                    counts[index] = 0
            histogram._sum.inc(self._seconds)
        self._seconds = 0.0
