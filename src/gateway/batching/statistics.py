"""What one batcher counts for the statistics extension: plain counters, no locks.

The batcher adds to these on the event loop only (one thread), a few integer and float
additions per batch, so the hot path pays nothing measurable. Durations are kept in
seconds of the batcher's clock and turned into nanoseconds when read.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Duration:
    """How many times something happened and how long it took in all."""

    count: int = 0
    seconds: float = 0.0

    @property
    def ns(self) -> int:
        """The total duration in whole nanoseconds."""
        return round(self.seconds * 1e9)


@dataclass(slots=True)
class BatchSizeStatistics:
    """The backend calls made with one batch size (in rows)."""

    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


@dataclass(slots=True)
class BatchStatistics:
    """Counters of one model version's batcher since it started.

    Requests are what the batcher queued: a request split over several batches counts once
    per part. ``success`` and ``fail`` time a request from its arrival in the queue to its
    answer; ``queue`` from its arrival to the start of its batch; ``compute_*`` are per
    request too (each request of a batch is charged the batch's whole time, as Triton does).
    """

    inference_count: int = 0
    """Rows answered successfully (each row of a batched request counts)."""
    execution_count: int = 0
    """Backend calls that succeeded."""
    last_inference_ms: int = 0
    """Wall-clock time of the last successful batch, milliseconds since the epoch; 0: none."""
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)
    batch_sizes: dict[int, BatchSizeStatistics] = field(default_factory=dict)

    def queued(self, entries: int, waits_s: float) -> None:
        """``entries`` requests left the queue for a batch after ``waits_s`` in all."""
        self.queue.count += entries
        self.queue.seconds += waits_s

    def failed(self, entries: int, seconds: float) -> None:
        """``entries`` requests failed (batch error or deadline) after ``seconds`` in all."""
        self.fail.count += entries
        self.fail.seconds += seconds

    def succeeded(
        self,
        *,
        entries: int,
        rows: int,
        input_s: float,
        infer_s: float,
        output_s: float,
        total_s: float,
        wall_ms: int,
    ) -> None:
        """A batch of ``entries`` requests and ``rows`` rows was answered."""
        self.inference_count += rows
        self.execution_count += 1
        self.last_inference_ms = wall_ms
        self.success.count += entries
        self.success.seconds += total_s
        self.compute_input.count += entries
        self.compute_input.seconds += input_s * entries
        self.compute_infer.count += entries
        self.compute_infer.seconds += infer_s * entries
        self.compute_output.count += entries
        self.compute_output.seconds += output_s * entries
        size = self.batch_sizes.get(rows)
        if size is None:
            size = self.batch_sizes[rows] = BatchSizeStatistics()
        size.compute_input.count += 1
        size.compute_input.seconds += input_s
        size.compute_infer.count += 1
        size.compute_infer.seconds += infer_s
        size.compute_output.count += 1
        size.compute_output.seconds += output_s
