"""The statistics extension: what each ready version's batcher counted, in Triton's shape."""

from __future__ import annotations

from gateway.batching.statistics import BatchStatistics, Duration
from gateway.protocol.triton_wire import (
    InferBatchStatistics,
    InferStatistics,
    ModelStatistics,
    ModelStatisticsResponse,
    StatDuration,
)
from gateway.repository.registry import ModelRegistry, ModelVersion


def _duration(duration: Duration) -> StatDuration:
    return StatDuration(count=duration.count, ns=duration.ns)


def _version_statistics(model: ModelVersion, counted: BatchStatistics) -> ModelStatistics:
    return ModelStatistics(
        name=model.name,
        version=str(model.version),
        last_inference=counted.last_inference_ms,
        inference_count=counted.inference_count,
        execution_count=counted.execution_count,
        inference_stats=InferStatistics(
            success=_duration(counted.success),
            fail=_duration(counted.fail),
            queue=_duration(counted.queue),
            compute_input=_duration(counted.compute_input),
            compute_infer=_duration(counted.compute_infer),
            compute_output=_duration(counted.compute_output),
        ),
        batch_stats=[
            InferBatchStatistics(
                batch_size=size,
                compute_input=_duration(stats.compute_input),
                compute_infer=_duration(stats.compute_infer),
                compute_output=_duration(stats.compute_output),
            )
            for size, stats in sorted(counted.batch_sizes.items())
        ],
    )


def _statistics(models: list[ModelVersion]) -> ModelStatisticsResponse:
    stats = [
        _version_statistics(model, model.batcher.statistics)
        for model in models
        if model.batcher is not None
    ]
    return ModelStatisticsResponse(model_stats=stats)


def model_statistics(
    registry: ModelRegistry, name: str | None, version: str | None
) -> ModelStatisticsResponse:
    """Every ready version's statistics, of one model (``name``) or of one version.

    Counters start when a version loads and go with it when it unloads. An unknown model
    or version is ``ModelNotFound``; a named version that is not ready, ``ModelNotReady``.
    """
    if name is None:
        return _statistics([v for v in registry.versions() if v.ready])
    if version is None:
        return _statistics(sorted(registry.entry(name).ready_versions(), key=lambda v: v.version))
    return _statistics([registry.resolve(name, version)])
