"""Mapping a Triton model configuration onto config.yaml's ModelConfig."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.dataplane.repository import config_override
from gateway.errors import InvalidInput
from gateway.repository.config import LatestVersions, ModelConfig, SpecificVersions


def override(triton: dict[str, Any], base: ModelConfig | None = None) -> ModelConfig:
    return config_override("m", json.dumps(triton), base or ModelConfig())


def test_the_mapped_fields_override_the_base() -> None:
    base = ModelConfig(allow_non_finite=True)
    config = override(
        {
            "name": "m",
            "platform": "onnxruntime_onnx",
            "max_batch_size": 16,
            "dynamic_batching": {
                "preferred_batch_size": [8, 4],
                "max_queue_delay_microseconds": 1500,
            },
            "instance_group": [{"count": 2, "kind": "KIND_CPU"}],
            "version_policy": {"specific": {"versions": [2]}},
        },
        base,
    )
    assert config.batching.max_batch_size == 16
    assert config.batching.preferred_batch_sizes == [4, 8]
    assert config.batching.max_queue_delay_ms == 1.5
    assert config.instances == 2
    assert config.version_policy == SpecificVersions(specific=[2])
    assert config.allow_non_finite  # what the body does not name stays as config.yaml says


def test_max_batch_size_zero_turns_batching_off_and_latest_maps() -> None:
    config = override({"max_batch_size": 0, "version_policy": {"latest": {"num_versions": 2}}})
    assert not config.batching.enabled
    assert config.version_policy == LatestVersions(latest=2)
    assert override({"version_policy": {"all": {}}}).version_policy == "all"
    delay = {"dynamic_batching": {"max_queue_delay_microseconds": "2000"}}
    assert override(delay).batching.max_queue_delay_ms == 2.0  # protobuf JSON's int64


@pytest.mark.parametrize(
    ("triton", "named"),
    [
        ({"output": []}, "config.output"),
        ({"sequence_batching": {}}, "config.sequence_batching"),
        ({"backend": "python"}, "config.backend"),
        ({"instance_group": [{"count": 1, "kind": "KIND_GPU"}]}, "KIND_GPU"),
        ({"instance_group": [{"count": 1, "gpus": [0]}]}, "config.instance_group.gpus"),
        ({"instance_group": [{"count": 1}, {"count": 1}]}, "exactly one group"),
        ({"version_policy": {"newest": {}}}, "config.version_policy.newest"),
        ({"instance_group": [{"count": 0}]}, "parameters.config"),
        ({"dynamic_batching": {"max_queue_delay_microseconds": "soon"}}, "max_queue_delay_ms"),
        ([], "must be a JSON object"),
    ],
)
def test_what_does_not_map_is_refused_naming_it(triton: Any, named: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        config_override("m", json.dumps(triton), ModelConfig())
    assert named in refused.value.message
