"""The statistics of several workers added up into the server's, in Triton's shape."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.protocol.triton_wire import (
    InferBatchStatistics,
    InferStatistics,
    ModelStatistics,
    ModelStatisticsResponse,
    StatDuration,
)

_INFER_FIELDS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")
_BATCH_FIELDS = ("compute_input", "compute_infer", "compute_output")


def _add(a: StatDuration, b: StatDuration) -> StatDuration:
    return StatDuration(count=a.count + b.count, ns=a.ns + b.ns)


def _add_batches(
    a: list[InferBatchStatistics], b: list[InferBatchStatistics]
) -> list[InferBatchStatistics]:
    sizes = {stats.batch_size: stats for stats in a}
    for stats in b:
        known = sizes.get(stats.batch_size)
        if known is None:
            sizes[stats.batch_size] = stats
            continue
        sums = {f: _add(getattr(known, f), getattr(stats, f)) for f in _BATCH_FIELDS}
        sizes[stats.batch_size] = InferBatchStatistics(batch_size=stats.batch_size, **sums)
    return [sizes[size] for size in sorted(sizes)]


def _add_versions(a: ModelStatistics, b: ModelStatistics) -> ModelStatistics:
    sums = {
        f: _add(getattr(a.inference_stats, f), getattr(b.inference_stats, f)) for f in _INFER_FIELDS
    }
    return ModelStatistics(
        name=a.name,
        version=a.version,
        last_inference=max(a.last_inference, b.last_inference),
        inference_count=a.inference_count + b.inference_count,
        execution_count=a.execution_count + b.execution_count,
        inference_stats=InferStatistics(**sums),
        batch_stats=_add_batches(a.batch_stats, b.batch_stats),
    )


def merge_statistics(responses: Iterable[ModelStatisticsResponse]) -> ModelStatisticsResponse:
    """One response counting every version of every response: counts and durations
    summed, the latest ``last_inference``; versions in the order first seen."""
    merged: dict[tuple[str, str], ModelStatistics] = {}
    for response in responses:
        for stats in response.model_stats:
            key = (stats.name, stats.version)
            known = merged.get(key)
            merged[key] = stats if known is None else _add_versions(known, stats)
    return ModelStatisticsResponse(model_stats=list(merged.values()))
