"""The client side of the protocol: batches out, answers back, metadata into signatures."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backends.oip_client import (
    BINARY_HEADER,
    WireError,
    decode_response,
    encode_request,
    signature_from_metadata,
)

DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "bool"]


def as_response(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """Turn an encoded request into the answer a server would give (inputs as outputs)."""
    length = int(headers.get(BINARY_HEADER, len(body)))
    document = orjson.loads(body[:length])
    document["outputs"] = document.pop("inputs")
    header = orjson.dumps(document)
    if BINARY_HEADER in headers:
        return header + body[length:], {BINARY_HEADER: str(len(header))}
    return header, {}


@given(
    array=hnp.arrays(
        st.sampled_from(DTYPES), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)
    ).filter(lambda a: a.dtype.kind != "f" or bool(np.isfinite(a).all())),
    wire=st.sampled_from(["binary", "json"]),
)
def test_tensors_survive_the_round_trip(array: np.ndarray, wire: str) -> None:
    body, headers = encode_request({"x": array}, ["x"], wire)  # type: ignore[arg-type]
    outputs = decode_response(*as_response(body, headers))
    assert outputs["x"].dtype == array.dtype
    np.testing.assert_array_equal(outputs["x"], array)


@pytest.mark.parametrize("wire", ["binary", "json"])
def test_bytes_tensors_survive_the_round_trip(wire: str) -> None:
    words = np.array([["a", "ß"], ["", "long text"]], dtype=object)
    body, headers = encode_request({"w": words}, ["w"], wire)  # type: ignore[arg-type]
    decoded = decode_response(*as_response(body, headers))["w"]
    assert decoded.tolist() == words.tolist()


def test_a_binary_request_asks_for_binary_outputs() -> None:
    body, headers = encode_request({"x": np.ones((2, 3), np.float32)}, ["y"], "binary")
    header = orjson.loads(body[: int(headers[BINARY_HEADER])])
    assert header["outputs"] == [{"name": "y", "parameters": {"binary_data": True}}]
    assert header["inputs"][0]["parameters"] == {"binary_data_size": 24}
    assert headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"not json", {}, "not an inference response"),
        (b'{"outputs": [{"name": "y"}]}', {}, "not described properly"),
        (
            b'{"outputs": [{"name": "y", "datatype": "FP32", "shape": [2], "data": [1]}]}',
            {},
            "does not hold 2 values",
        ),
        (
            b'{"outputs": [{"name": "y", "datatype": "FP32", "shape": [2],'
            b' "parameters": {"binary_data_size": 8}}]}',
            {BINARY_HEADER: "999"},
            "Inference-Header-Content-Length",
        ),
    ],
)
def test_malformed_answers_are_wire_errors(
    body: bytes, headers: dict[str, str], message: str
) -> None:
    with pytest.raises(WireError, match=message):
        decode_response(body, headers)


def test_metadata_becomes_a_signature_with_dynamic_dimensions() -> None:
    signature = signature_from_metadata(
        {
            "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}],
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
        }
    )
    (pixels,) = signature.inputs
    assert (pixels.shape, pixels.dtype) == ((None, 64), np.dtype(np.float32))
    assert pixels.has_dynamic_batch
    with pytest.raises(WireError, match="not the protocol's"):
        signature_from_metadata({"inputs": [{"name": "x", "datatype": "BF16", "shape": [1]}]})
