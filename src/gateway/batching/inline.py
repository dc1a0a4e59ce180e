"""Which batches run on the event loop itself: those the runtime finishes sooner than a
hand-over to its thread would take.

Handing a batch to the runtime's thread and getting the outcome back costs about 185 us
of wake-ups and loop turns on the development machine (``backends/worker_pool.py``), more
than the whole call of a small model: a lone ``digits`` request waited longer for the
hand-over than for the model. So a batch whose measured call time is under
``inline_max_ms`` runs on the loop, which is then blocked for at most that long.

Calls are timed by the size of their inputs (a power-of-two bucket of the element count,
so that a request with a large dynamic dimension is not judged by small ones); a bucket
never measured goes to the thread, which times it, and the smoothed time decides from then
on, both ways.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from backends.base import Array
from gateway.batching.drain import RATE_SMOOTHING
from gateway.batching.queue import Pending

_BUCKETS = 64  # int.bit_length() of any element count numpy can hold


class InlineCosts:
    """Smoothed call time by input size; ``fits`` says whether a call may run inline."""

    __slots__ = ("_limit_s", "_seconds")

    def __init__(self, limit_s: float) -> None:
        self._limit_s = limit_s
        self._seconds = [math.inf] * _BUCKETS

    @property
    def enabled(self) -> bool:
        """False when the limit is 0: every batch goes to the runtime's threads."""
        return self._limit_s > 0

    def record(self, elements: int, seconds: float) -> None:
        """One call over ``elements`` input elements took ``seconds``."""
        bucket = min(elements.bit_length(), _BUCKETS - 1)
        old = self._seconds[bucket]
        self._seconds[bucket] = (
            seconds if math.isinf(old) else old + RATE_SMOOTHING * (seconds - old)
        )

    def fits(self, elements: int) -> bool:
        """True when calls of this size were measured to take at most the limit."""
        return self._seconds[min(elements.bit_length(), _BUCKETS - 1)] <= self._limit_s


def input_elements(inputs: Mapping[str, Array]) -> int:
    """The element count of a request's or a batch's inputs: what a call is judged by."""
    return sum(array.size for array in inputs.values())


def batch_elements(batch: Sequence[Pending]) -> int:
    """The element count of every request of ``batch``."""
    return sum(input_elements(item.inputs) for item in batch)
