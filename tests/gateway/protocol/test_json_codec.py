"""Unit tests for the tensor codec: strict decoding, every bad input, and encoding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backends.base import ModelSignature, TensorSpec
from backends.datatypes import DATATYPES, from_numpy, to_numpy
from gateway.errors import InvalidInput
from gateway.protocol.json_codec import (
    decode_inputs,
    decode_tensor,
    dumps,
    encode_tensor,
    parse_json,
)
from gateway.protocol.wire import RequestInput

FP32_SPEC = TensorSpec("x", np.dtype(np.float32), (None, 3), ("batch", None))


def tensor(data: Any, shape: list[int], datatype: str = "FP32", name: str = "x") -> RequestInput:
    return RequestInput(name=name, shape=shape, datatype=datatype, data=data)


def decode(inp: RequestInput, spec: TensorSpec = FP32_SPEC, allow: bool = False) -> np.ndarray:
    return decode_tensor(inp, spec, allow_non_finite=allow)


def test_flat_and_nested_data_decode_to_the_same_array() -> None:
    flat = decode(tensor([1, 2, 3, 4.5, 5, 6], [2, 3]))
    nested = decode(tensor([[1, 2, 3], [4.5, 5, 6]], [2, 3]))
    assert flat.dtype == np.float32
    assert flat.shape == (2, 3)
    np.testing.assert_array_equal(flat, nested)


def test_zero_rows_are_allowed() -> None:
    assert decode(tensor([], [0, 3])).shape == (0, 3)


@pytest.mark.parametrize(
    ("inp", "message"),
    [
        (tensor([1.0, 2.0], [1, 3]), "data has 2 elements; shape [1, 3] needs 3"),
        (tensor([1.0] * 3, [3]), "has rank 1; the model expects rank 2"),
        (tensor([1.0] * 4, [1, 4]), "dimension 1 is 4; the model expects 3"),
        (tensor([1.0] * 3, [-1, 3]), "negative dimension"),
        (tensor([], [0, 3, 2**40]), "absurd"),
        (tensor([], [0] + [1] * 20), "absurd"),
        (tensor([1.0, "2", 3.0], [1, 3]), "FP32 data must be numbers; got string"),
        (tensor([1.0, True, 3.0], [1, 3]), "FP32 data must be numbers; got boolean"),
        (tensor([1.0, None, 3.0], [1, 3]), "got null"),
        (tensor([1.0, {"a": 1}, 3.0], [1, 3]), "got object"),
        (tensor([[1.0, 2.0], [3.0]], [2, 3]), "nested data does not match shape [2, 3]"),
        (tensor([[1.0, 2.0, 3.0], 4.0], [2, 3]), "got number"),
        (tensor([[[1.0], [2.0], [3.0]]], [1, 3]), "got array"),
        (
            tensor([1.0] * 3, [1, 3], "FP64"),
            "datatype FP64 does not match the model, which expects FP32",
        ),
        (tensor([1.0] * 3, [1, 3], "FP8"), "unknown datatype 'FP8'"),
        (tensor([1.0, float("nan"), 3.0], [1, 3]), "values must be finite"),
        (tensor([1.0, float("inf"), 3.0], [1, 3]), "values must be finite"),
        (tensor([1.0, 1e39, 3.0], [1, 3]), "within FP32 range"),
        (tensor([1.0, 10**400, 3.0], [1, 3]), "out of range for FP32"),
    ],
)
def test_bad_fp32_input_is_rejected_with_a_message_naming_it(
    inp: RequestInput, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode(inp)
    assert message in caught.value.message
    assert "input 'x'" in caught.value.message


def test_non_finite_values_pass_when_the_model_allows_them() -> None:
    array = decode(tensor([1.0, float("nan"), float("inf")], [1, 3]), allow=True)
    assert np.isnan(array[0, 1])
    assert np.isinf(array[0, 2])


@pytest.mark.parametrize(("datatype", "huge"), [("FP16", 70000.0), ("FP32", 1e39)])
def test_out_of_range_floats_become_infinite_when_the_model_allows_it(
    datatype: str, huge: float
) -> None:
    spec = TensorSpec("x", to_numpy(datatype), (None, 3))
    array = decode(tensor([0.5, huge, -huge], [1, 3], datatype), spec, allow=True)
    assert array.dtype == to_numpy(datatype)
    assert array.ravel().tolist() == [0.5, float("inf"), float("-inf")]


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=12))
def test_finite_fp32_values_decode_exactly(values: list[float]) -> None:
    array = decode(tensor(values, [len(values)]), TensorSpec("x", np.dtype(np.float32), (None,)))
    assert array.tolist() == values


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("INT8", [1, 300], "out of range for INT8"),
        ("UINT8", [1, -1], "out of range for UINT8"),
        ("INT64", [1, 2**63], "out of range for INT64"),
        ("UINT64", [1, 2**64], "out of range for UINT64"),
        ("INT32", [1, 2.5], "INT32 data must be integers; got number"),
        ("INT32", [1, True], "got boolean"),
        ("BOOL", [True, 1], "BOOL data must be true/false; got integer"),
        ("BYTES", ["a", 1], "BYTES data must be strings; got integer"),
        ("FP16", [1.0, 70000.0], "within FP16 range"),
    ],
)
def test_strict_types_and_ranges_for_every_datatype(
    datatype: str, data: list[Any], message: str
) -> None:
    spec = TensorSpec("x", to_numpy(datatype), (None, 2))
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode(tensor(data, [1, 2], datatype), spec)


@pytest.mark.parametrize("datatype", DATATYPES)
def test_every_datatype_decodes_to_its_numpy_dtype(datatype: str) -> None:
    samples: dict[str, list[Any]] = {
        "BOOL": [True, False],
        "BYTES": ["héllo", ""],
        "FP16": [0.5, -2.0],
        "FP32": [0.5, -2.0],
        "FP64": [0.5, -2.0],
    }
    data = samples.get(datatype, [0, 7])
    spec = TensorSpec("x", to_numpy(datatype), (None, 2))
    array = decode(tensor(data, [1, 2], datatype), spec)
    assert array.dtype == to_numpy(datatype)
    assert array.ravel().tolist() == data
    assert from_numpy(array.dtype) == datatype


SIGNATURE = ModelSignature(
    inputs=(
        TensorSpec("a", np.dtype(np.float32), (None, 3), ("batch", None)),
        TensorSpec("b", np.dtype(np.float32), (None, 3), ("batch", None)),
    ),
    outputs=(TensorSpec("sum", np.dtype(np.float32), (None, 3), ("batch", None)),),
)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["a"], "missing input 'b' (FP32, shape [-1, 3])"),
        (["a", "b", "c"], "unknown input 'c'; the model's inputs are: a, b"),
        (["a", "a", "b"], "input 'a' is given more than once"),
    ],
)
def test_input_names_are_checked(names: list[str], message: str) -> None:
    inputs = [tensor([0.0] * 3, [1, 3], name=n) for n in names]
    with pytest.raises(InvalidInput) as caught:
        decode_inputs(inputs, SIGNATURE, allow_non_finite=False)
    assert message in caught.value.message


def test_inputs_sharing_a_batch_dimension_must_agree() -> None:
    inputs = [tensor([0.0] * 3, [1, 3], name="a"), tensor([0.0] * 6, [2, 3], name="b")]
    with pytest.raises(InvalidInput, match="disagree on dimension 'batch': 1 vs 2"):
        decode_inputs(inputs, SIGNATURE, allow_non_finite=False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "request body is empty"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"a": NaN}', "non-finite number"),
        (b'{"a": [1e999]}', "non-finite number"),
        (b'{"a": -Infinity}', "non-finite number"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"a": "\xed\xa0\x80"}', "not UTF-8 text"),
    ],
)
def test_parse_json_rejects_bad_bodies(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_json(body, allow_non_finite=False)


@pytest.mark.parametrize("allow", [True, False])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (rb'{"a": "\ud800"}', "lone UTF-16 surrogate escape"),
        (rb'{"\udfff": 1}', "lone UTF-16 surrogate escape"),
        (rb'{"a": [NaN], "b": ["\ud800"]}', "lone UTF-16 surrogate escape"),
        (b'{"a": [1' + b"0" * 400 + b"]}", "integer literal beyond the range of a double"),
        (b'{"a": [NaN, -1' + b"0" * 5000 + b"]}", "integer literal beyond the range of a double"),
    ],
)
def test_parse_json_says_what_is_wrong(body: bytes, message: str, allow: bool) -> None:
    # Fails before: "non-finite number" for all of them, and with allow_non_finite the
    # stdlib's document came back holding the surrogate or the integer.
    with pytest.raises(InvalidInput, match=message):
        parse_json(body, allow_non_finite=allow)


def test_parse_json_reads_past_orjson_as_orjson_does() -> None:
    parsed = parse_json(
        rb'{"a": [NaN, 18446744073709551616, 7], "b": "\ud83d\ude00 \\ud800"}',
        allow_non_finite=True,
    )
    assert parsed["a"][1:] == [2.0**64, 7]
    assert type(parsed["a"][2]) is int
    assert parsed["b"] == "\U0001f600 \\ud800"


def test_parse_json_accepts_non_finite_literals_when_allowed() -> None:
    parsed = parse_json(b'{"a": [NaN, Infinity, 1e999]}', allow_non_finite=True)
    values = parsed["a"]
    assert np.isnan(values[0])
    assert values[1] == values[2] == float("inf")


def test_encode_keeps_shape_datatype_and_strings() -> None:
    strings = encode_tensor("s", np.array([["a", "b"]], dtype=object))
    assert strings == {"name": "s", "datatype": "BYTES", "shape": [1, 2], "data": ["a", "b"]}
    numbers = dumps(encode_tensor("n", np.arange(4, dtype=np.int64).reshape(2, 2)))
    assert numbers == b'{"name":"n","datatype":"INT64","shape":[2,2],"data":[0,1,2,3]}'


NUMERIC = [dt for dt in DATATYPES if dt not in ("BYTES", "BOOL")]


@given(
    st.sampled_from(NUMERIC).flatmap(
        lambda dt: hnp.arrays(
            to_numpy(dt),
            hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
            elements={"allow_nan": False, "allow_infinity": False}
            if to_numpy(dt).kind == "f"
            else None,
        )
    ),
    st.booleans(),
)
def test_round_trip_through_json_is_exact(array: np.ndarray, nested: bool) -> None:
    """Encoding a tensor to JSON and decoding it against its own spec gives it back."""
    encoded = encode_tensor("x", array)
    body = dumps({"data": encoded["data"]})
    data = parse_json(body, allow_non_finite=False)["data"]
    if nested and array.size:
        data = array.tolist()
    spec = TensorSpec("x", array.dtype, tuple(None for _ in array.shape))
    datatype = from_numpy(array.dtype)
    decoded = decode(tensor(data, list(array.shape), datatype), spec)
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)
