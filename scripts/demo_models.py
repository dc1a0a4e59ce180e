"""Build the two demo ONNX models (digits classifier, benchmark MLP) deterministically."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

# Opset 17 / IR 8 is what onnx.helper.VERSION_TABLE pairs with onnx 1.12; every
# onnxruntime >= 1.14 loads it, so the committed files stay usable across upgrades.
OPSET = 17
ML_OPSET = 1
IR_VERSION = 8
PRODUCER = "tensorgate-demo"

MLP_SEED = 20261121
MLP_LAYERS = (256, 1024, 1024, 10)

DIGITS_DOC = (
    "8x8 handwritten digit classifier (StandardScaler + LogisticRegression) trained on "
    "scikit-learn's bundled digits data set; input 'pixels' float32 [N, 64] with values "
    "0-16, outputs 'label' int64 [N] and 'probabilities' float32 [N, 10]."
)
MLP_DOC = (
    "Fixed-seed benchmark MLP (untrained): input float32 [batch, 256] -> Gemm 1024 -> Relu "
    "-> Gemm 1024 -> Relu -> Gemm 10 -> logits float32 [batch, 10]."
)

Float32Array = NDArray[np.float32]
Int64Array = NDArray[np.int64]


def digits_split() -> tuple[Float32Array, Float32Array, Int64Array, Int64Array]:
    """Return the fixed (X_train, X_test, y_train, y_test) split of the digits data set."""
    features, target = load_digits(return_X_y=True)
    x = np.asarray(features, dtype=np.float32)
    y = np.asarray(target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    return x_train, x_test, y_train, y_test


def train_digits() -> Pipeline:
    """Fit the digits classifier on the training half of `digits_split()`."""
    x_train, _, y_train, _ = digits_split()
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(max_iter=1000, random_state=0)),
        ]
    )
    pipeline.fit(x_train, y_train)
    return pipeline


def build_digits() -> onnx.ModelProto:
    """Train the digits classifier and convert it to ONNX."""
    pipeline = train_digits()
    model: onnx.ModelProto = convert_sklearn(
        pipeline,
        # An explicit name: skl2onnx defaults the graph name to a random uuid.
        name="digits",
        initial_types=[("pixels", FloatTensorType([None, 64]))],
        doc_string=DIGITS_DOC,
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        options={"zipmap": False},
    )
    # skl2onnx lists the default domain twice; keep one entry per domain.
    opsets = {opset.domain: opset.version for opset in model.opset_import}
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(opsets.items()))
    model.ir_version = IR_VERSION
    model.producer_name = PRODUCER
    model.graph.doc_string = DIGITS_DOC
    onnx.checker.check_model(model, full_check=True)
    return model


def _gemm_params(
    rng: np.random.Generator, name: str, fan_in: int, fan_out: int
) -> list[onnx.TensorProto]:
    """Make He-initialised weights ([out, in], used with transB=1) and small biases."""
    weight = rng.standard_normal((fan_out, fan_in)) * np.sqrt(2.0 / fan_in)
    bias = rng.standard_normal(fan_out) * 0.01
    return [
        numpy_helper.from_array(weight.astype(np.float32), f"{name}.weight"),
        numpy_helper.from_array(bias.astype(np.float32), f"{name}.bias"),
    ]


def build_dense(name: str, widths: Sequence[int], seed: int, doc: str) -> onnx.ModelProto:
    """A fixed-seed ReLU network: float32 ``input`` [batch, widths[0]] through Gemm layers
    of the given widths to ``logits`` [batch, widths[-1]]."""
    rng = np.random.default_rng(seed)
    initializers: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    current = "input"
    last = len(widths) - 2
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        layer = f"fc{index + 1}"
        initializers += _gemm_params(rng, layer, fan_in, fan_out)
        gemm_out = "logits" if index == last else f"{layer}.out"
        nodes.append(
            helper.make_node(
                "Gemm",
                [current, f"{layer}.weight", f"{layer}.bias"],
                [gemm_out],
                name=layer,
                transB=1,
            )
        )
        current = gemm_out
        if index != last:
            current = f"relu{index + 1}.out"
            nodes.append(helper.make_node("Relu", [gemm_out], [current], name=f"relu{index + 1}"))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", widths[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", widths[-1]])],
        initializer=initializers,
        doc_string=doc,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name=PRODUCER,
        doc_string=doc,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def build_mlp() -> onnx.ModelProto:
    """Build the fixed-seed benchmark MLP."""
    return build_dense("mlp", MLP_LAYERS, MLP_SEED, MLP_DOC)


def write_model(model: onnx.ModelProto, path: Path) -> None:
    """Serialise `model` to `path`, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())


def main() -> None:
    """Write models/digits/1/model.onnx and models/mlp/1/model.onnx under --out."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"), help="model repository")
    args = parser.parse_args()
    out: Path = args.out
    for name, model in (("digits", build_digits()), ("mlp", build_mlp())):
        path = out / name / "1" / "model.onnx"
        write_model(model, path)
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
