"""What a batcher reports as it works; ``gateway.metrics`` turns it into Prometheus series."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class BatchObserver(Protocol):
    """Receives one batcher's events."""

    def queue_depth(self, depth: int) -> None:
        """The number of queued requests changed."""

    def rejected(self) -> None:
        """A request was refused because the queue was full."""

    def expired(self) -> None:
        """A request's deadline passed before its batch started."""

    def batch_started(self, rows: int, waits_s: Sequence[float]) -> None:
        """A batch of ``rows`` rows starts; ``waits_s`` is each request's time in queue."""

    def batch_finished(self, seconds: float, *, failed: bool) -> None:
        """A batch's backend call ended after ``seconds``."""


class BatchTrace:
    """What one request met in the batcher, for its access-log line: time in queue and the
    rows of the batch it ran in (a request split into parts: its longest wait, its last
    batch)."""

    __slots__ = ("batch_rows", "queue_s")

    def __init__(self) -> None:
        self.queue_s: float | None = None
        self.batch_rows: int | None = None

    def started(self, waited_s: float, rows: int) -> None:
        """The request's batch (or one part's) started after ``waited_s`` in the queue."""
        if self.queue_s is None or waited_s > self.queue_s:
            self.queue_s = waited_s
        self.batch_rows = rows


class NullObserver:
    """An observer that records nothing."""

    def queue_depth(self, depth: int) -> None:
        """Ignore."""

    def rejected(self) -> None:
        """Ignore."""

    def expired(self) -> None:
        """Ignore."""

    def batch_started(self, rows: int, waits_s: Sequence[float]) -> None:
        """Ignore."""

    def batch_finished(self, seconds: float, *, failed: bool) -> None:
        """Ignore."""
