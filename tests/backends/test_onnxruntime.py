"""The ONNX Runtime backend: signatures, inference, providers, failures."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from backends.base import Backend, RuntimeOptions
from backends.errors import InferenceError, ModelLoadError
from backends.onnxruntime import CPU_PROVIDER, OnnxRuntimeBackend, choose_providers
from support.onnx_models import adder_model, identity_model, write_model
from support.paths import DEMO_MODELS


def load(path: Path, **options: Any) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend.load(path, RuntimeOptions(**options), "test")


def test_signature_reports_names_dtypes_and_dynamic_dims() -> None:
    backend = load(DEMO_MODELS / "digits" / "1" / "model.onnx")
    assert isinstance(backend, Backend)
    (pixels,) = backend.signature.inputs
    assert (pixels.name, pixels.dtype, pixels.shape) == ("pixels", np.dtype(np.float32), (None, 64))
    assert pixels.has_dynamic_batch
    assert [o.name for o in backend.signature.outputs] == ["label", "probabilities"]
    assert backend.signature.output("probabilities") is not None
    assert backend.signature.output("nope") is None
    assert backend.metadata["execution_provider"] == CPU_PROVIDER


def test_symbolic_dimension_names_are_kept(tmp_path: Path) -> None:
    backend = load(write_model(tmp_path, "adder", adder_model()))
    assert backend.signature.inputs[0].dim_names == ("batch", None)


async def test_infer_matches_a_direct_session_and_selects_outputs() -> None:
    path = DEMO_MODELS / "mlp" / "1" / "model.onnx"
    backend = load(path)
    x = np.random.default_rng(1).standard_normal((5, 256)).astype(np.float32)
    (expected,) = ort.InferenceSession(str(path)).run(None, {"input": x})
    result = await backend.infer({"input": x})
    logits = result["logits"]
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits.astype(np.float32), expected, rtol=1e-5)
    digits = load(DEMO_MODELS / "digits" / "1" / "model.onnx")
    only = await digits.infer({"pixels": np.zeros((2, 64), np.float32)}, ["probabilities"])
    assert list(only) == ["probabilities"]
    await backend.close()
    await digits.close()


async def test_string_and_bool_tensors_round_trip(tmp_path: Path) -> None:
    backend = load(write_model(tmp_path, "identity", identity_model()))
    feed = {spec.name: np.zeros((1, 2), dtype=spec.dtype) for spec in backend.signature.inputs}
    feed["in_bytes"] = np.array([["a", "bé"]], dtype=object)
    feed["in_bool"] = np.array([[True, False]])
    result = await backend.infer(feed)
    assert result["out_bytes"].tolist() == [["a", "bé"]]
    assert result["out_bool"].tolist() == [[True, False]]


def test_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model file not found"):
        load(tmp_path / "missing.onnx")


def test_corrupt_file_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelLoadError, match=r"onnxruntime could not load model\.onnx"):
        load(path)


def test_bad_optimization_level_is_a_load_error() -> None:
    with pytest.raises(ModelLoadError, match="graph_optimization_level"):
        load(DEMO_MODELS / "digits" / "1" / "model.onnx", graph_optimization_level="max")


async def test_runtime_failure_is_an_inference_error_and_the_backend_keeps_working(
    tmp_path: Path,
) -> None:
    backend = load(write_model(tmp_path, "adder", adder_model()))
    with pytest.raises(InferenceError) as caught:
        await backend.infer({"a": np.zeros((2, 3), np.float32), "b": np.zeros((3, 3), np.float32)})
    assert caught.value.kind
    ok = await backend.infer({"a": np.ones((1, 3), np.float32), "b": np.ones((1, 3), np.float32)})
    assert ok["sum"].tolist() == [[2.0, 2.0, 2.0]]


async def test_closed_backend_refuses_work_and_close_is_idempotent() -> None:
    backend = load(DEMO_MODELS / "digits" / "1" / "model.onnx")
    await backend.close()
    await backend.close()
    with pytest.raises(InferenceError, match="closed"):
        await backend.infer({"pixels": np.zeros((1, 64), np.float32)})


def test_choose_providers_keeps_available_ones_in_order_with_cpu_last() -> None:
    # No GPU on the test machines: the "available" lists below stand in for CUDA builds.
    gpu_build = ["TensorrtExecutionProvider", "CUDAExecutionProvider", CPU_PROVIDER]
    choice = choose_providers(["CUDAExecutionProvider", CPU_PROVIDER], gpu_build)
    assert choice.providers == ("CUDAExecutionProvider", CPU_PROVIDER)
    assert choice.unavailable == ()
    cpu_build = [CPU_PROVIDER]
    choice = choose_providers(["CUDAExecutionProvider"], cpu_build)
    assert choice.providers == (CPU_PROVIDER,)
    assert choice.unavailable == ("CUDAExecutionProvider",)


def test_cuda_request_without_a_gpu_falls_back_to_cpu_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="backends.onnxruntime"):
        backend = load(
            DEMO_MODELS / "mlp" / "1" / "model.onnx",
            execution_providers=("CUDAExecutionProvider", CPU_PROVIDER),
        )
    assert backend.metadata["execution_provider"] == CPU_PROVIDER
    warnings = [r for r in caplog.records if "asked for CUDAExecutionProvider" in r.message]
    assert len(warnings) == 1
