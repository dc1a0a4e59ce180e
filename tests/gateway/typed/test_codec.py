"""Typed bodies decode through the protocol's strict codec and encode outputs by name."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from backends.base import ModelSignature, TensorSpec
from gateway.errors import InvalidInput
from gateway.protocol.json_codec import decode_inputs
from gateway.protocol.wire import RequestInput
from gateway.typed.codec import decode_typed_request, encode_typed_response

SIGNATURE = ModelSignature(
    inputs=(
        TensorSpec("pixels", np.dtype(np.float32), (None, 4), ("batch", None)),
        TensorSpec("mask", np.dtype(np.bool_), (None,), ("batch",)),
    ),
    outputs=(
        TensorSpec("label", np.dtype(np.int64), (None,)),
        TensorSpec("name", np.dtype(np.object_), (None,)),
    ),
)
ROW = [0.5, 1, 2.0, 3.0]


def _decode(document: Any, signature: ModelSignature = SIGNATURE) -> tuple[Any, list[str]]:
    return decode_typed_request(orjson.dumps(document), signature, allow_non_finite=False)


def test_decodes_nested_lists_to_arrays_of_the_model_dtype() -> None:
    arrays, outputs = _decode({"inputs": {"pixels": [ROW, ROW], "mask": [True, False]}})
    assert arrays["pixels"].dtype == np.float32
    assert arrays["pixels"].shape == (2, 4)
    np.testing.assert_array_equal(arrays["mask"], [True, False])
    assert outputs == ["label", "name"]


def test_requested_outputs_are_kept_in_request_order() -> None:
    _, outputs = _decode({"inputs": {"pixels": [ROW], "mask": [True]}, "outputs": ["name"]})
    assert outputs == ["name"]


def test_an_empty_batch_is_a_batch_of_zero() -> None:
    arrays, _ = _decode({"inputs": {"pixels": [], "mask": []}})
    assert arrays["pixels"].shape == (0, 4)


def test_a_scalar_input_is_a_bare_value() -> None:
    scalar = ModelSignature((TensorSpec("t", np.dtype(np.float64), ()),), ())
    arrays, _ = _decode({"inputs": {"t": 2.5}}, scalar)
    assert arrays["t"].shape == ()
    assert arrays["t"] == 2.5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1], "request body must be a JSON object, got list"),
        ({"inputs": []}, "invalid request: inputs: Input should be a valid dictionary"),
        ({"input": {}}, "inputs: Field required"),
        ({"inputs": {}, "extra": 1}, "extra: Extra inputs are not permitted"),
        ({"inputs": {}, "outputs": "label"}, "outputs: Input should be a valid list"),
        ({"inputs": {"pixels": [ROW]}}, "missing input 'mask' (BOOL, shape [-1])"),
        ({"inputs": {"pixels": [ROW], "x": [1]}}, "unknown input 'x'"),
        (
            {"inputs": {"pixels": [ROW], "mask": [True], "x": [1]}},
            "request has 3 inputs; the model has 2 (pixels, mask), so a request names at most 2",
        ),
        ({"inputs": {"pixels": ROW, "mask": [True]}}, "expected lists nested 2 deep"),
        ({"inputs": {"pixels": "abc", "mask": [True]}}, "got a string at depth 0"),
        (
            {"inputs": {"pixels": [ROW[:3]], "mask": [True]}},
            "dimension 1 is 3; the model expects 4",
        ),
        ({"inputs": {"pixels": [ROW, ROW[:3]], "mask": [True] * 2}}, "expected 4 elements"),
        ({"inputs": {"pixels": [[*ROW[:3], "x"]], "mask": [True]}}, "FP32 data must be numbers"),
        ({"inputs": {"pixels": [ROW], "mask": [1]}}, "BOOL data must be true/false"),
        ({"inputs": {"pixels": [ROW], "mask": [True, True]}}, "disagree on dimension 'batch'"),
        ({"inputs": {"pixels": [ROW], "mask": [True]}, "outputs": ["nope"]}, "unknown output"),
        (
            {"inputs": {"pixels": [ROW], "mask": [True]}, "outputs": ["label", "label"]},
            "requested more than once",
        ),
    ],
)
def test_bad_bodies_are_invalid_input_naming_the_problem(body: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _decode(body)
    assert message in caught.value.message


def test_non_finite_numbers_follow_the_model_config() -> None:
    body = b'{"inputs": {"pixels": [[NaN, 1, 2, 3]], "mask": [true]}}'
    with pytest.raises(InvalidInput, match="non-finite"):
        decode_typed_request(body, SIGNATURE, allow_non_finite=False)
    arrays, _ = decode_typed_request(body, SIGNATURE, allow_non_finite=True)
    assert np.isnan(arrays["pixels"][0, 0])


def test_errors_match_the_protocol_codec_word_for_word() -> None:
    """Both routes share gateway.protocol.json_codec, so one mistake reads the same on both."""
    bad = [[1.0, 2.0, 3.0, "x"]]
    with pytest.raises(InvalidInput) as typed:
        _decode({"inputs": {"pixels": bad, "mask": [True]}})
    protocol = [
        RequestInput(name="pixels", shape=[1, 4], datatype="FP32", data=bad),
        RequestInput(name="mask", shape=[1], datatype="BOOL", data=[True]),
    ]
    with pytest.raises(InvalidInput) as wire:
        decode_inputs(protocol, SIGNATURE, allow_non_finite=False)
    assert typed.value.message == wire.value.message


def test_encodes_outputs_by_name_as_nested_lists() -> None:
    results = {
        "label": np.array([3, 1], dtype=np.int64),
        "name": np.array([b"three", "one"], dtype=object),
        "grid": np.arange(6, dtype=np.float32).reshape(2, 3),
        "scalar": np.array(7, dtype=np.int32),
    }
    body = orjson.loads(encode_typed_response("m", 2, results, ["label", "name", "grid", "scalar"]))
    assert body == {
        "model_name": "m",
        "model_version": "2",
        "outputs": {
            "label": [3, 1],
            "name": ["three", "one"],
            "grid": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]],
            "scalar": 7,
        },
    }
