"""A model's config and signature become its batcher's policy."""

from __future__ import annotations

import pytest

from backends.base import Backend
from gateway.batching.policy import BatchPolicy
from gateway.repository.config import ConfigError, ModelConfig, parse_model_config
from gateway.repository.registry import ModelVersion, batch_policy
from support.fake_backend import FakeBackend, echo_signature


def policy_for(config: ModelConfig, backend: Backend) -> BatchPolicy:
    return batch_policy(ModelVersion("m", 1, config), backend)


def test_defaults() -> None:
    policy = policy_for(parse_model_config(None, "test"), FakeBackend())
    assert policy == BatchPolicy(
        max_batch_size=64, max_queue_delay_s=0.002, max_queue_size=128, instances=1
    )


def test_config_section_is_applied() -> None:
    raw = {
        "instances": 2,
        "batching": {
            "max_batch_size": 8,
            "max_queue_delay_ms": 5,
            "max_queue_size": 3,
            "preferred_batch_sizes": [8, 4, 4],
        },
    }
    policy = policy_for(parse_model_config(raw, "test"), FakeBackend())
    assert policy.max_batch_size == 8
    assert policy.max_queue_delay_s == pytest.approx(0.005)
    assert policy.max_queue_size == 3
    assert policy.preferred_batch_sizes == (4, 8)
    assert policy.instances == 2
    assert policy.batching


def test_models_without_a_dynamic_batch_axis_or_with_batching_off_run_one_by_one() -> None:
    fixed = FakeBackend(echo_signature(batch=False))
    assert not policy_for(parse_model_config({}, "test"), fixed).batching
    off = parse_model_config({"batching": {"enabled": False}}, "test")
    assert not policy_for(off, FakeBackend()).batching


def test_bad_batching_config_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"batching\.max_batch_size"):
        parse_model_config({"batching": {"max_batch_size": 0}}, "test")
    with pytest.raises(ConfigError, match=r"batching\.surprise"):
        parse_model_config({"batching": {"surprise": 1}}, "test")
