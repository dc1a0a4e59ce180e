"""The gRPC tensor codec: raw and typed contents in, raw contents out, REST's refusals."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.base import ModelSignature, TensorSpec
from gateway.dataplane.codecs import DecodingRules
from gateway.errors import InvalidInput, PayloadTooLarge
from gateway.grpc.streams import stream_answer
from gateway.grpc.tensors import decode_infer_request
from gateway.proto import grpc_service_pb2 as pb

ADDER = ModelSignature(
    inputs=(
        TensorSpec("a", np.dtype(np.float32), (None, 3)),
        TensorSpec("b", np.dtype(np.float32), (None, 3)),
    ),
    outputs=(TensorSpec("sum", np.dtype(np.float32), (None, 3)),),
)
TEXT = ModelSignature(
    inputs=(TensorSpec("text", np.dtype(object), (None,)),),
    outputs=(TensorSpec("echo", np.dtype(object), (None,)),),
)
SCORES = ModelSignature(
    inputs=(TensorSpec("x", np.dtype(np.int8), (None, 2)),),
    outputs=(TensorSpec("scores", np.dtype(np.float32), (None, 4)),),
)


def _request(model: str = "adder") -> pb.ModelInferRequest:
    return pb.ModelInferRequest(model_name=model, id="r-1")


def _raw_adder(a: np.ndarray, b: np.ndarray) -> pb.ModelInferRequest:
    request = _request()
    for name, array in (("a", a), ("b", b)):
        request.inputs.add(name=name, datatype="FP32", shape=array.shape)
        request.raw_input_contents.append(array.astype("<f4").tobytes())
    return request


def test_raw_contents_decode_to_the_arrays_sent() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    decoded = decode_infer_request(_raw_adder(a, a * 2), DecodingRules(ADDER))
    np.testing.assert_array_equal(decoded.inputs["a"], a)
    np.testing.assert_array_equal(decoded.inputs["b"], a * 2)
    assert decoded.outputs == ["sum"]
    answer = pb.ModelInferResponse.FromString(decoded.encode("adder", 3, {"sum": a + a * 2}))
    assert (answer.model_name, answer.model_version, answer.id) == ("adder", "3", "r-1")
    assert [(o.name, o.datatype, list(o.shape)) for o in answer.outputs] == [
        ("sum", "FP32", [2, 3])
    ]
    got = np.frombuffer(answer.raw_output_contents[0], "<f4").reshape(2, 3)
    np.testing.assert_array_equal(got, a * 3)


def test_typed_contents_decode_as_json_data_would() -> None:
    request = _request()
    for name in ("a", "b"):
        tensor = request.inputs.add(name=name, datatype="FP32", shape=[1, 3])
        tensor.contents.fp32_contents.extend([1.0, 2.0, 3.5])
    decoded = decode_infer_request(request, DecodingRules(ADDER))
    assert decoded.inputs["a"].tolist() == [[1.0, 2.0, 3.5]]


def test_bytes_both_ways_and_bad_utf8_is_refused() -> None:
    request = _request("text")
    tensor = request.inputs.add(name="text", datatype="BYTES", shape=[2])
    tensor.contents.bytes_contents.extend([b"hello", "h\u00e9".encode()])
    decoded = decode_infer_request(request, DecodingRules(TEXT))
    assert decoded.inputs["text"].tolist() == ["hello", "h\u00e9"]
    answer = pb.ModelInferResponse.FromString(
        decoded.encode("text", 1, {"echo": decoded.inputs["text"]})
    )
    raw = answer.raw_output_contents[0]
    assert raw == struct.pack("<I", 5) + b"hello" + struct.pack("<I", 3) + "h\u00e9".encode()
    tensor.contents.bytes_contents[1] = b"\xff\xfe"
    with pytest.raises(InvalidInput, match="BYTES element 1 is not UTF-8 text"):
        decode_infer_request(request, DecodingRules(TEXT))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.raw_input_contents.append(b"\0" * 12), "3 raw_input_contents for 2 inputs"),
        (lambda r: r.raw_input_contents.__setitem__(0, b"\0" * 8), "binary_data_size is 8"),
        (lambda r: setattr(r.inputs[1], "name", "c"), "unknown input 'c'"),
        (lambda r: setattr(r.inputs[1], "datatype", "FP64"), "datatype FP64 does not match"),
        (lambda r: r.outputs.add(name="nope"), "unknown output 'nope'"),
        (lambda r: r.inputs.add(name="a", datatype="FP32", shape=[1, 3]), "has 3 inputs"),
        (  # Triton's words, which its qa tests match on
            lambda r: r.inputs[1].contents.fp32_contents.append(1.0),
            "^contents field must not be specified when using raw_input_contents for 'b' "
            "for model 'adder'",
        ),
    ],
)
def test_what_rest_refuses_grpc_refuses(change: object, expected: str) -> None:
    request = _raw_adder(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32))
    change(request)  # type: ignore[operator]
    with pytest.raises(InvalidInput, match=expected):
        decode_infer_request(request, DecodingRules(ADDER))


def test_unknown_parameters_are_refused_and_timeout_is_read() -> None:
    request = _raw_adder(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32))
    request.parameters["timeout"].int64_param = 2500
    assert decode_infer_request(request, DecodingRules(ADDER)).parameters == {"timeout": 2500}
    request.parameters["sequence_id"].int64_param = 7
    with pytest.raises(InvalidInput, match="parameter 'sequence_id' is not supported"):
        decode_infer_request(request, DecodingRules(ADDER))


def test_rows_past_the_queue_are_too_large() -> None:
    a = np.zeros((5, 3), np.float32)
    with pytest.raises(PayloadTooLarge):
        decode_infer_request(_raw_adder(a, a), DecodingRules(ADDER, max_rows=4))


def test_classification_answers_top_classes_as_bytes() -> None:
    request = _request("scores")
    tensor = request.inputs.add(name="x", datatype="INT8", shape=[1, 2])
    tensor.contents.int_contents.extend([1, -2])
    out = request.outputs.add(name="scores")
    out.parameters["classification"].int64_param = 2
    decoded = decode_infer_request(request, DecodingRules(SCORES))
    scores = np.array([[0.1, 0.7, 0.05, 0.15]], np.float32)
    answer = pb.ModelInferResponse.FromString(decoded.encode("scores", 1, {"scores": scores}))
    assert answer.outputs[0].datatype == "BYTES"
    raw = answer.raw_output_contents[0]
    first = raw[4 : 4 + struct.unpack_from("<I", raw)[0]]
    assert first == b"0.700000:1"


def test_typed_contents_of_another_type_and_out_of_range_ints_are_refused() -> None:
    request = _request("scores")
    tensor = request.inputs.add(name="x", datatype="INT8", shape=[1, 2])
    tensor.contents.fp32_contents.extend([1.0, 2.0])
    with pytest.raises(InvalidInput, match=r"INT8 data goes in contents\.int_contents"):
        decode_infer_request(request, DecodingRules(SCORES))
    tensor.ClearField("contents")
    tensor.contents.int_contents.extend([1, 300])
    with pytest.raises(InvalidInput, match="out of range for INT8"):
        decode_infer_request(request, DecodingRules(SCORES))


@given(st.text(max_size=40), st.binary(max_size=70_000))
def test_a_stream_answer_is_the_message_holding_the_response(name: str, data: bytes) -> None:
    response = pb.ModelInferResponse(model_name=name, raw_output_contents=[data])
    wrapped = pb.ModelStreamInferResponse.FromString(stream_answer(response.SerializeToString()))
    assert wrapped.infer_response == response
    assert wrapped.error_message == ""
