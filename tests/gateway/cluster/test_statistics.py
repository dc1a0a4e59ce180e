"""Adding up the statistics of several workers."""

from __future__ import annotations

from gateway.cluster.statistics import merge_statistics
from gateway.protocol.triton_wire import ModelStatisticsResponse


def _stats(version: str, count: int, last: int, batches: dict[int, int]) -> dict[str, object]:
    duration = {"count": count, "ns": count * 1000}
    return {
        "name": "mlp",
        "version": version,
        "last_inference": last,
        "inference_count": count,
        "execution_count": count,
        "inference_stats": dict.fromkeys(
            ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output"),
            duration,
        ),
        "batch_stats": [
            {
                "batch_size": size,
                "compute_input": {"count": calls, "ns": calls},
                "compute_infer": {"count": calls, "ns": calls},
                "compute_output": {"count": calls, "ns": calls},
            }
            for size, calls in batches.items()
        ],
    }


def test_counts_and_durations_add_up_and_the_latest_inference_wins() -> None:
    one = ModelStatisticsResponse.model_validate(
        {"model_stats": [_stats("1", 3, 100, {1: 3}), _stats("2", 1, 50, {1: 1})]}
    )
    two = ModelStatisticsResponse.model_validate(
        {"model_stats": [_stats("1", 4, 200, {1: 2, 2: 1})]}
    )
    merged = merge_statistics([one, two]).model_stats
    assert [(s.version, s.inference_count, s.last_inference) for s in merged] == [
        ("1", 7, 200),
        ("2", 1, 50),
    ]
    first = merged[0]
    assert first.inference_stats.success.count == 7
    assert first.inference_stats.queue.ns == 7000
    assert [(b.batch_size, b.compute_infer.count) for b in first.batch_stats] == [(1, 5), (2, 1)]


def test_nothing_to_merge_is_no_statistics() -> None:
    assert merge_statistics([]).model_stats == []
    empty = ModelStatisticsResponse(model_stats=[])
    assert merge_statistics([empty, empty]).model_stats == []
