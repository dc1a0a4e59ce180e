"""Execution providers configured per model: CUDA options, the unavailable-provider policy,
I/O binding. No GPU here: the CUDA path runs against stand-in provider lists and a
stand-in session that records what it was given (said in each such test); the CPU path
and I/O binding run on the real ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort
import pytest

from backends.base import RuntimeOptions
from backends.errors import ModelLoadError
from backends.onnxruntime import CPU_PROVIDER, OnnxRuntimeBackend
from gateway.repository.config import ModelConfig
from support.paths import DEMO_MODELS

DIGITS = DEMO_MODELS / "digits" / "1" / "model.onnx"
CUDA = "CUDAExecutionProvider"
REAL_SESSION = ort.InferenceSession


def options(config: dict[str, Any]) -> RuntimeOptions:
    """The runtime options a ``config.yaml`` document asks for."""
    return ModelConfig.model_validate(config).runtime_options()


def test_cuda_settings_become_onnx_runtime_provider_options() -> None:
    runtime = options(
        {
            "execution_providers": ["cuda", "cpu"],
            "cuda": {
                "device_id": 1,
                "memory_limit_mb": 2048,
                "arena_extend_strategy": "same_as_requested",
                "cudnn_conv_algo_search": "heuristic",
            },
        }
    )
    assert runtime.provider_options[CUDA] == {
        "device_id": "1",
        "gpu_mem_limit": str(2048 * 1024 * 1024),
        "arena_extend_strategy": "kSameAsRequested",
        "cudnn_conv_algo_search": "HEURISTIC",
    }
    assert runtime.provider_options["TensorrtExecutionProvider"] == {"device_id": "1"}
    assert not runtime.require_provider


def test_a_missing_provider_falls_back_to_the_cpu_by_default() -> None:
    # This machine's onnxruntime has no CUDA provider: the real fallback path.
    backend = OnnxRuntimeBackend.load(DIGITS, options({"execution_providers": ["cuda"]}), "m")
    assert backend.metadata["execution_provider"] == CPU_PROVIDER
    assert backend.metadata["execution_provider_requested"] == CUDA


def test_the_fail_policy_refuses_a_missing_provider() -> None:
    config = {"execution_providers": ["cuda"], "when_provider_unavailable": "fail"}
    with pytest.raises(ModelLoadError, match="CUDAExecutionProvider is not available in this"):
        OnnxRuntimeBackend.load(DIGITS, options(config), "m")


class StandInSession:
    """Stands in for ``ort.InferenceSession`` on a machine without a GPU: records the
    providers it is given and reports ``started`` as the providers in use."""

    started: ClassVar[list[str]] = []
    made: ClassVar[list[list[Any]]] = []

    def __init__(self, path: str, sess_options: Any = None, providers: Any = None) -> None:
        self.made.append(providers)
        self._real = REAL_SESSION(path, sess_options, providers=[CPU_PROVIDER])
        self._providers = providers

    def get_providers(self) -> list[str]:
        return list(self.started)

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        return {name: opts for name, opts in self._providers if name in self.started}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> type[StandInSession]:
    """A CUDA-capable onnxruntime build, as far as the backend can tell (no GPU here)."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU_PROVIDER])
    monkeypatch.setattr(ort, "InferenceSession", StandInSession)
    StandInSession.made = []
    return StandInSession


def test_cuda_is_asked_for_with_its_options_and_reported(stand_in: type[StandInSession]) -> None:
    stand_in.started = [CUDA, CPU_PROVIDER]
    config = {"execution_providers": ["cuda", "cpu"], "cuda": {"device_id": 1}}
    backend = OnnxRuntimeBackend.load(DIGITS, options(config), "m")
    [providers] = stand_in.made
    assert [name for name, _ in providers] == [CUDA, CPU_PROVIDER]
    assert providers[0][1]["device_id"] == "1"
    assert backend.metadata["execution_provider"] == CUDA
    assert backend.metadata["device_id"] == "1"


def test_cuda_that_fails_to_start_is_a_fallback_or_a_failure_by_policy(
    stand_in: type[StandInSession],
) -> None:
    # In the build, yet ONNX Runtime starts only the CPU (no device, or no CUDA libraries).
    stand_in.started = [CPU_PROVIDER]
    fallback = OnnxRuntimeBackend.load(DIGITS, options({"execution_providers": ["cuda"]}), "m")
    assert fallback.metadata["execution_provider"] == CPU_PROVIDER
    config = {"execution_providers": ["cuda"], "when_provider_unavailable": "fail"}
    with pytest.raises(ModelLoadError, match="asked for CUDAExecutionProvider but ONNX Runtime"):
        OnnxRuntimeBackend.load(DIGITS, options(config), "m")


async def test_io_binding_gives_the_same_answers_as_a_plain_run() -> None:
    bound = OnnxRuntimeBackend.load(DIGITS, options({"cuda": {"io_binding": True}}), "m")
    plain = OnnxRuntimeBackend.load(DIGITS, options({}), "m")
    pixels = np.random.default_rng(3).uniform(0, 16, (5, 64)).astype(np.float32)
    got, want = await bound.infer({"pixels": pixels}), await plain.infer({"pixels": pixels})
    assert set(got) == set(want) == {"label", "probabilities"}
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    only = await bound.infer({"pixels": pixels}, ["label"])
    assert list(only) == ["label"]
    await bound.close()
    await plain.close()


def test_unknown_policy_and_bad_cuda_values_are_refused() -> None:
    with pytest.raises(ValueError, match="when_provider_unavailable"):
        ModelConfig.model_validate({"when_provider_unavailable": "maybe"})
    with pytest.raises(ValueError, match="memory_limit_mb"):
        ModelConfig.model_validate({"cuda": {"memory_limit_mb": 0}})


def test_paths_are_not_touched(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelLoadError, match="model file not found"):
        OnnxRuntimeBackend.load(missing, options({}), "m")
