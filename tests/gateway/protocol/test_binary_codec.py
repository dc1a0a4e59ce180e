"""Unit tests for the binary tensor data extension: decoding in place, every malformed
request a 400 naming the input, and responses laid out as Triton lays them out."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest

from backends.base import ModelSignature, TensorSpec
from gateway.errors import InvalidInput
from gateway.protocol.binary_codec import BinaryBody
from gateway.protocol.request_codec import decode_protocol_request, encode_protocol_response

SIGNATURE = ModelSignature(
    inputs=(
        TensorSpec("x", np.dtype(np.float32), (None, 3), ("batch", None)),
        TensorSpec("words", np.dtype(object), (None,), ("batch",)),
        TensorSpec("flags", np.dtype(np.bool_), (None,), ("batch",)),
    ),
    outputs=(
        TensorSpec("y", np.dtype(np.float32), (None, 3)),
        TensorSpec("n", np.dtype(np.int64), (None,)),
    ),
)
X = np.arange(6, dtype=np.float32).reshape(2, 3)


def strings(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def binary_input(name: str, shape: list[int], datatype: str, size: int) -> dict[str, Any]:
    return {
        "name": name,
        "shape": shape,
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
    }


def request(
    inputs: list[dict[str, Any]], data: bytes, **extra: Any
) -> tuple[bytes, dict[str, str]]:
    header = orjson.dumps({"inputs": inputs, **extra})
    header += b" " * (-len(header) % 8)  # binary data aligned in the body
    return header + data, {"inference-header-content-length": str(len(header))}


def all_binary() -> tuple[bytes, dict[str, str]]:
    words = strings(b"ab", "é".encode())
    return request(
        [
            binary_input("x", [2, 3], "FP32", X.nbytes),
            binary_input("words", [2], "BYTES", len(words)),
            binary_input("flags", [2], "BOOL", 2),
        ],
        X.tobytes() + words + b"\x01\x00",
    )


def decode(body: bytes, headers: dict[str, str], allow: bool = False) -> Any:
    return decode_protocol_request(body, headers, SIGNATURE, allow_non_finite=allow)


def test_binary_inputs_decode_and_numeric_ones_are_views_on_the_body() -> None:
    body, headers = all_binary()
    decoded = decode(body, headers)
    np.testing.assert_array_equal(decoded.inputs["x"], X)
    assert np.shares_memory(decoded.inputs["x"], np.frombuffer(body, np.uint8))
    assert decoded.inputs["words"].tolist() == ["ab", "é"]
    assert decoded.inputs["flags"].tolist() == [True, False]
    assert decoded.binary_outputs == frozenset()


def test_json_and_binary_inputs_mix_in_one_request() -> None:
    body, headers = request(
        [
            binary_input("x", [2, 3], "FP32", X.nbytes),
            {"name": "words", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
            {"name": "flags", "shape": [2], "datatype": "BOOL", "data": [True, True]},
        ],
        X.tobytes(),
    )
    decoded = decode(body, headers)
    np.testing.assert_array_equal(decoded.inputs["x"], X)
    assert decoded.inputs["words"].tolist() == ["a", "b"]


def test_a_misplaced_buffer_is_copied_into_alignment() -> None:
    body, headers = request(
        [
            binary_input("flags", [2], "BOOL", 2),
            binary_input("x", [2, 3], "FP32", X.nbytes),
            {"name": "words", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
        ],
        b"\x01\x01" + X.tobytes(),
    )
    array = decode(body, headers).inputs["x"]
    assert array.flags.aligned
    np.testing.assert_array_equal(array, X)


def test_binary_outputs_follow_the_flags() -> None:
    body, headers = all_binary()
    named = {"outputs": [{"name": "y", "parameters": {"binary_data": True}}, {"name": "n"}]}
    decoded = decode(*request_with(body, headers, named))
    assert decoded.binary_outputs == frozenset({"y"})
    every = {"parameters": {"binary_data_output": True}}
    assert decode(*request_with(body, headers, every)).binary_outputs == {"y", "n"}
    overridden = {
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "y", "parameters": {"binary_data": False}}, {"name": "n"}],
    }
    assert decode(*request_with(body, headers, overridden)).binary_outputs == {"n"}


def request_with(
    body: bytes, headers: dict[str, str], extra: dict[str, Any]
) -> tuple[bytes, dict[str, str]]:
    length = int(headers["inference-header-content-length"])
    document = {**orjson.loads(body[:length]), **extra}
    return request(document["inputs"], body[length:], **extra)


def test_the_response_puts_binary_outputs_after_the_json_header() -> None:
    y = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    n = np.array([3, 4], np.int64)
    body = encode_protocol_response("m", 1, "r", ["y", "n"], {"y": y, "n": n}, frozenset({"y"}))
    assert isinstance(body, BinaryBody)
    header = orjson.loads(body[: body.header_length])
    assert header["outputs"][0] == {
        "name": "y",
        "datatype": "FP32",
        "shape": [2, 3],
        "parameters": {"binary_data_size": 24},
    }
    assert header["outputs"][1]["data"] == [3, 4]
    assert body[body.header_length :] == y.tobytes()


def test_bytes_outputs_are_length_prefixed() -> None:
    words = np.array(["ab", b"c"], dtype=object)
    body = encode_protocol_response("m", 1, None, ["w"], {"w": words}, frozenset({"w"}))
    assert isinstance(body, BinaryBody)
    assert body[body.header_length :] == strings(b"ab", b"c")


def test_an_all_json_response_stays_plain_json() -> None:
    body = encode_protocol_response("m", 1, None, ["n"], {"n": np.array([1])}, frozenset())
    assert not isinstance(body, BinaryBody)


def fp32_only(size: Any, payload: bytes, **input_extra: Any) -> tuple[bytes, dict[str, str]]:
    inputs = [
        {**binary_input("x", [2, 3], "FP32", size), **input_extra},
        {"name": "words", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
        {"name": "flags", "shape": [2], "datatype": "BOOL", "data": [True, True]},
    ]
    return request(inputs, payload)


def words_only(shape: list[int], data: bytes) -> tuple[bytes, dict[str, str]]:
    inputs = [
        {"name": "x", "shape": [shape[0], 3], "datatype": "FP32", "data": [0.0] * 3 * shape[0]},
        binary_input("words", shape, "BYTES", len(data)),
        {"name": "flags", "shape": shape, "datatype": "BOOL", "data": [True] * shape[0]},
    ]
    return request(inputs, data)


def with_header(body_headers: tuple[bytes, dict[str, str]], value: str) -> Any:
    return body_headers[0], {"inference-header-content-length": value}


MALFORMED: list[tuple[str, tuple[bytes, dict[str, str]], str]] = [
    (
        "header length past the body",
        with_header(fp32_only(24, X.tobytes()), "100000"),
        "Inference-Header-Content-Length is 100000, past the end of the",
    ),
    (
        "negative header length",
        with_header(fp32_only(24, X.tobytes()), "-5"),
        "Inference-Header-Content-Length must be a non-negative integer",
    ),
    (
        "non-integer header length",
        with_header(fp32_only(24, X.tobytes()), "1e3"),
        "Inference-Header-Content-Length must be a non-negative integer",
    ),
    (
        "negative binary size",
        fp32_only(-24, X.tobytes()),
        "input 'x': parameters.binary_data_size must be a non-negative integer",
    ),
    (
        "non-integer binary size",
        fp32_only("24", X.tobytes()),
        "input 'x': parameters.binary_data_size must be a non-negative integer",
    ),
    (
        "boolean binary size",
        fp32_only(True, X.tobytes()),
        "input 'x': parameters.binary_data_size must be a non-negative integer",
    ),
    (
        "short buffer",
        fp32_only(20, X.tobytes()[:20]),
        "input 'x': binary_data_size is 20 bytes; shape [2, 3] of FP32 needs 24 bytes",
    ),
    (
        "long buffer",
        fp32_only(28, X.tobytes() + b"\0" * 4),
        "input 'x': binary_data_size is 28 bytes; shape [2, 3] of FP32 needs 24 bytes",
    ),
    (
        "misaligned buffer",
        fp32_only(23, X.tobytes()[:23]),
        "input 'x': binary_data_size is 23 bytes; shape [2, 3] of FP32 needs 24 bytes",
    ),
    (
        "binary size past the end of the body",
        fp32_only(24, X.tobytes()[:10]),
        "input 'x': binary_data_size 24 runs past the end of the body",
    ),
    (
        "bytes left over after the inputs",
        fp32_only(24, X.tobytes() + b"extra"),
        "29 bytes of binary data after its JSON header, but the inputs' binary_data_size add "
        "up to 24",
    ),
    (
        "binary size on an input with data",
        fp32_only(24, X.tobytes(), data=X.ravel().tolist()),
        "input 'x' has both data and parameters.binary_data_size",
    ),
    (
        "binary size without the header",
        (fp32_only(24, b"")[0], {}),
        "input 'x' has parameters.binary_data_size but the request has no "
        "Inference-Header-Content-Length header",
    ),
    (
        "BYTES length prefix past the end",
        words_only([2], strings(b"ab") + struct.pack("<I", 99) + b"cd"),
        "input 'words': BYTES element 1 has length 99, past the end",
    ),
    (
        "BYTES elements missing",
        words_only([2], strings(b"abcdefgh")),
        "input 'words': BYTES element 1 has no 4-byte length",
    ),
    (
        "BYTES too short for its prefixes",
        words_only([2], b"\0\0\0"),
        "input 'words': binary_data_size is 3 bytes; 2 BYTES elements of shape [2] need at least 8",
    ),
    (
        "BYTES bytes left over",
        words_only([1], strings(b"a") + b"zz"),
        "input 'words': binary_data_size is 7 bytes but its 1 BYTES elements end at byte 5",
    ),
    (
        "BYTES not UTF-8",
        words_only([1], strings(b"\xff")),
        "input 'words': BYTES element 0 is not UTF-8 text",
    ),
    (
        "BOOL byte not 0 or 1",
        request(
            [
                {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [0.0, 0.0, 0.0]},
                {"name": "words", "shape": [1], "datatype": "BYTES", "data": ["a"]},
                binary_input("flags", [1], "BOOL", 1),
            ],
            b"\x07",
        ),
        "input 'flags': BOOL binary data must be bytes 0 or 1",
    ),
    (
        "non-finite binary values",
        fp32_only(24, np.array([np.nan, 0, 0, 0, 0, 0], np.float32).tobytes()),
        "input 'x': values must be finite",
    ),
    (
        "datatype that does not match",
        fp32_only(48, np.zeros(6).tobytes(), datatype="FP64"),
        "input 'x': datatype FP64 does not match the model, which expects FP32",
    ),
    (
        "JSON header cut short",
        with_header(fp32_only(24, X.tobytes()), "10"),
        "the JSON header (the first 10 bytes, as Inference-Header-Content-Length says)",
    ),
]


@pytest.mark.parametrize(
    ("case", "body_headers", "message"), MALFORMED, ids=[case[0] for case in MALFORMED]
)
def test_malformed_binary_requests_are_invalid_input_naming_what(
    case: str, body_headers: tuple[bytes, dict[str, str]], message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode(*body_headers)
    assert message in caught.value.message


def test_empty_tensors_decode() -> None:
    body, headers = request(
        [
            binary_input("x", [0, 3], "FP32", 0),
            binary_input("words", [0], "BYTES", 0),
            binary_input("flags", [0], "BOOL", 0),
        ],
        b"",
    )
    decoded = decode(body, headers)
    assert decoded.inputs["x"].shape == (0, 3)
    assert decoded.inputs["words"].shape == (0,)
