"""Prometheus collectors of the gateway, kept in a registry object owned by the app.

With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set before the workers
start), every process writes its samples to that directory and ``exposition`` merges them,
so ``/metrics`` shows one view whichever worker answers. A worker killed outright cannot
remove its live gauges (``tensorgate_queue_depth`` would keep its last value forever), so
``exposition`` drops those of processes that no longer exist first, and merges again
without a worker found dead once its files were read (killed during the scrape).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from gateway.tally import GaugeTally, HistogramTally, TallyBook

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
VERSION_STATES = ("READY", "LOADING", "UNAVAILABLE")
"""The states ``tensorgate_model_version_state`` reports (the repository index's)."""
# prometheus_client names a live gauge's file gauge_<mode>_<pid>.db (livesum, liveall, ...).
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")

_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_SECONDS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 1, 2.5, 5,
)  # fmt: skip


class GatewayMetrics:
    """The queue and inference collectors, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None, *, tally: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.tallies = TallyBook(direct=not tally)
        """Where per-request and per-batch observations wait for the end of the loop turn
        (``gateway.tally``; ``tally=False``: observed at once)."""
        labels = ("model", "version")
        self.queue_depth = Gauge(
            "tensorgate_queue_depth",
            "Requests waiting in a model version's batching queue",
            labels,
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.queue_seconds = Histogram(
            "tensorgate_queue_seconds",
            "Time a request waited in the queue before its batch started",
            labels,
            registry=self.registry,
            buckets=_SECONDS,
        )
        self.batch_rows = Histogram(
            "tensorgate_batch_size",
            "Rows per backend call",
            labels,
            registry=self.registry,
            buckets=_BATCH_SIZES,
        )
        self.inference_seconds = Histogram(
            "tensorgate_inference_seconds",
            "Duration of one backend call (one batch)",
            labels,
            registry=self.registry,
            buckets=_SECONDS,
        )
        self.rejected_total = Counter(
            "tensorgate_rejected",
            "Requests refused with 503 because the queue was full",
            labels,
            registry=self.registry,
        )
        self.expired_total = Counter(
            "tensorgate_expired",
            "Requests whose deadline passed before their batch started (504)",
            labels,
            registry=self.registry,
        )
        self.failed_batches_total = Counter(
            "tensorgate_failed_batches",
            "Backend calls that raised",
            labels,
            registry=self.registry,
        )

        self.rate_limited_total = Counter(
            "tensorgate_rate_limited",
            "Inference requests refused with 429 by a limit rule, by rule name, model "
            "('(unknown)' for names no model has) and kind (rate or concurrency)",
            ("rule", "model", "kind"),
            registry=self.registry,
        )
        self.limits_redis_errors_total = Counter(
            "tensorgate_limits_redis_errors",
            "Redis operations of the shared limits that failed or timed out; each process "
            "then keeps to its even share of every limit for limits.redis.retry_after_failure_s",
            ("operation",),
            registry=self.registry,
        )

        self.requests_total = Counter(
            "tensorgate_inference_requests",
            "Inference requests answered, by model, version that answered (empty when none "
            "was chosen), HTTP status (for gRPC, the status its code maps from) and protocol "
            "(http or grpc)",
            ("model", "version", "status", "protocol"),
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "tensorgate_inference_request_seconds",
            "Time from the start of an inference request to its answer",
            ("model", "version"),
            registry=self.registry,
            buckets=_SECONDS,
        )
        self.version_state = Gauge(
            "tensorgate_model_version_state",
            "1 for the state each model version is in (READY, LOADING, UNAVAILABLE), 0 for "
            "the others; all 0 once unloaded",
            ("model", "version", "state"),
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.execution_provider = Gauge(
            "tensorgate_model_execution_provider",
            "1 for the ONNX Runtime execution provider a ready model version runs on",
            ("model", "version", "provider"),
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.provider_fallback = Gauge(
            "tensorgate_execution_provider_fallback",
            "1 while a model version runs on another execution provider than the first it "
            "asked for (no GPU, or not in this onnxruntime build), else 0",
            ("model", "version", "requested", "provider"),
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.build_info = Gauge(
            "tensorgate_build_info",
            "Always 1: the versions of tensorgate, Python and ONNX Runtime serving",
            ("version", "python", "onnxruntime"),
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def model_version_state(self, model: str, version: int, state: str) -> None:
        """Record the state a model version is now in (``UNLOADING``: it is gone)."""
        for known in VERSION_STATES:
            value = 1 if known == state else 0
            self.version_state.labels(model, str(version), known).set(value)

    def execution_provider_state(
        self, model: str, version: int, requested: str, provider: str, *, serving: bool
    ) -> None:
        """Record the provider a version runs on (and a fallback), or that it stopped."""
        value = 1 if serving else 0
        self.execution_provider.labels(model, str(version), provider).set(value)
        fallback = value if requested != provider else 0
        self.provider_fallback.labels(model, str(version), requested, provider).set(fallback)

    def build(self, version: str, python: str, onnxruntime: str) -> None:
        """Record what is serving, in ``tensorgate_build_info``."""
        self.build_info.labels(version, python, onnxruntime).set(1)

    def observer(self, model: str, version: int) -> QueueMetrics:
        """The batch observer of one model version."""
        return QueueMetrics(self, model, str(version))

    def limits_observer(self) -> LimitMetrics:
        """What the limits report refusals and Redis failures to."""
        return LimitMetrics(self)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition of every sample (all worker processes) and its media type."""
        self.tallies.flush()
        if directory := os.environ.get(MULTIPROC_ENV):
            merged = CollectorRegistry()
            merged.register(LiveProcessesCollector(Path(directory)))
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (killed, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc here: existing is all we know
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def _live_gauge_owner(path: Path) -> int | None:
    """The process id in a live gauge's file name; None for any other file."""
    match = _LIVE_GAUGE_FILE.fullmatch(path.name)
    return int(match.group(1)) if match else None


def forget_dead_processes(
    directory: Path, alive: Callable[[int], bool] = process_alive
) -> list[int]:
    """Remove the live gauges of worker processes that have died; returns their ids.

    The supervisor restarts a killed worker, but only a live process can clean up after
    the dead one: this runs before every merge, in whichever worker answers /metrics.
    """
    dead = {
        pid
        for path in directory.glob("gauge_live*_*.db")
        if (pid := _live_gauge_owner(path)) is not None and not alive(pid)
    }
    for pid in sorted(dead):
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]  # untyped upstream
    return sorted(dead)


def merge_live_processes(
    directory: Path, alive: Callable[[int], bool] = process_alive
) -> list[Metric]:
    """Merge the samples of ``directory``'s files, the live gauges of dead workers left out.

    A worker may die between the check and the read (killed during a scrape), so each
    owner of live gauges that were read is checked again after the merge; if one died
    meanwhile, its files are removed and the merge done again (each round forgets at least
    one more worker, so it ends).
    """
    while True:
        forget_dead_processes(directory, alive)
        files = sorted(directory.glob("*.db"))
        owners = {pid for path in files if (pid := _live_gauge_owner(path)) is not None}
        merged: list[Metric] = MultiProcessCollector.merge(  # type: ignore[no-untyped-call]
            [str(path) for path in files]
        )
        if all(alive(pid) for pid in owners):
            return merged


class LiveProcessesCollector:
    """Every worker's samples in ``directory``, merged by ``merge_live_processes``."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def collect(self) -> list[Metric]:
        """Merge the files as they are now."""
        return merge_live_processes(self._directory)


class QueueMetrics:
    """Feeds one model version's batcher events into the labelled collectors."""

    def __init__(self, metrics: GatewayMetrics, model: str, version: str) -> None:
        tallies = metrics.tallies
        self._depth = GaugeTally(metrics.queue_depth.labels(model, version), tallies)
        self._queue_seconds = HistogramTally(metrics.queue_seconds.labels(model, version), tallies)
        self._rows = HistogramTally(metrics.batch_rows.labels(model, version), tallies)
        self._inference = HistogramTally(metrics.inference_seconds.labels(model, version), tallies)
        self._rejected = metrics.rejected_total.labels(model, version)
        self._expired = metrics.expired_total.labels(model, version)
        self._failed = metrics.failed_batches_total.labels(model, version)

    def queue_depth(self, depth: int) -> None:
        """Set the depth gauge."""
        self._depth.set(depth)

    def rejected(self) -> None:
        """Count a 503."""
        self._rejected.inc()

    def expired(self) -> None:
        """Count a 504."""
        self._expired.inc()

    def batch_started(self, rows: int, waits_s: Sequence[float]) -> None:
        """Record the batch size and each request's time in queue."""
        self._rows.observe(rows)
        for wait in waits_s:
            self._queue_seconds.observe(wait)

    def batch_finished(self, seconds: float, *, failed: bool) -> None:
        """Record the backend call's duration."""
        self._inference.observe(seconds)
        if failed:
            self._failed.inc()


class LimitMetrics:
    """Counts the limits' refusals and Redis failures (``gateway.limits``)."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    def limited(self, rule: str, model: str, kind: str) -> None:
        """One request refused with 429."""
        self._metrics.rate_limited_total.labels(rule, model, kind).inc()

    def redis_failed(self, operation: str) -> None:
        """One Redis operation failed or timed out."""
        self._metrics.limits_redis_errors_total.labels(operation).inc()
