"""Check the committed demo models against scripts/demo_models.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from numpy.typing import NDArray
from onnx import TensorProto, numpy_helper

import demo_models
from support.paths import DEMO_MODELS

DIGITS_PATH = DEMO_MODELS / "digits" / "1" / "model.onnx"
MLP_PATH = DEMO_MODELS / "mlp" / "1" / "model.onnx"

# (name, elem_type, shape); None marks a dynamic dimension, a str its symbolic name.
Signature = list[tuple[str, int, list[int | str | None]]]


def _signature(values: list[onnx.ValueInfoProto]) -> Signature:
    """Describe graph inputs or outputs as (name, dtype, shape) triples."""
    signature: Signature = []
    for value in values:
        tensor = value.type.tensor_type
        shape: list[int | str | None] = []
        for dim in tensor.shape.dim:
            if dim.HasField("dim_value"):
                shape.append(dim.dim_value)
            else:
                shape.append(dim.dim_param or None)
        signature.append((value.name, tensor.elem_type, shape))
    return signature


def _session(path: Path) -> ort.InferenceSession:
    """Open a CPU onnxruntime session on a committed model."""
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def digits_outputs() -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
    """Run the committed digits model on the held-out split: (label, probabilities, y)."""
    _, x_test, _, y_test = demo_models.digits_split()
    label, probabilities = _session(DIGITS_PATH).run(["label", "probabilities"], {"pixels": x_test})
    return label, probabilities, y_test


def test_digits_accuracy_on_held_out_split(
    digits_outputs: tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]],
) -> None:
    label, _, y_test = digits_outputs
    assert label.dtype == np.int64
    assert label.shape == y_test.shape
    assert float(np.mean(label == y_test)) >= 0.95


def test_digits_probabilities_agree_with_label(
    digits_outputs: tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]],
) -> None:
    label, probabilities, y_test = digits_outputs
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (len(y_test), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), label)


def test_digits_signature() -> None:
    model = onnx.load(DIGITS_PATH)
    onnx.checker.check_model(model)
    assert _signature(list(model.graph.input)) == [("pixels", TensorProto.FLOAT, [None, 64])]
    assert _signature(list(model.graph.output)) == [
        ("label", TensorProto.INT64, [None]),
        ("probabilities", TensorProto.FLOAT, [None, 10]),
    ]


def test_mlp_signature() -> None:
    model = onnx.load(MLP_PATH)
    onnx.checker.check_model(model)
    assert _signature(list(model.graph.input)) == [("input", TensorProto.FLOAT, ["batch", 256])]
    assert _signature(list(model.graph.output)) == [("logits", TensorProto.FLOAT, ["batch", 10])]


def test_committed_mlp_matches_build_mlp() -> None:
    committed = onnx.load(MLP_PATH)
    built = demo_models.build_mlp()
    assert committed.graph.node == built.graph.node
    committed_weights = {t.name: t.SerializeToString() for t in committed.graph.initializer}
    built_weights = {t.name: t.SerializeToString() for t in built.graph.initializer}
    assert committed_weights == built_weights
    assert committed.SerializeToString() == built.SerializeToString()


def test_mlp_output_matches_numpy_reference() -> None:
    model = demo_models.build_mlp()
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    x = np.random.default_rng(0).standard_normal((4, 256)).astype(np.float32)

    # Reference in float64: Gemm(transB=1) is x @ W.T + b.
    hidden = x.astype(np.float64)
    for layer in ("fc1", "fc2", "fc3"):
        hidden = hidden @ weights[f"{layer}.weight"].T.astype(np.float64) + weights[f"{layer}.bias"]
        if layer != "fc3":
            hidden = np.maximum(hidden, 0.0)

    (logits,) = _session(MLP_PATH).run(["logits"], {"input": x})
    assert logits.dtype == np.float32
    assert logits.shape == (4, 10)
    # A small atol keeps logits that happen to sit near zero from failing a pure rtol.
    np.testing.assert_allclose(logits, hidden, rtol=1e-4, atol=1e-5)
