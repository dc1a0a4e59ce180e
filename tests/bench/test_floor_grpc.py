"""The gRPC floor's fixed answer, and the rounds it joins."""

from __future__ import annotations

import numpy as np

from binary_rows import BINARY_CONNECTIONS, IMAGE_CONNECTIONS, ROWS, rows_of, run_count
from floor_grpc import answer
from gateway.grpc.tensors import encode_infer_response
from gateway.proto import grpc_service_pb2 as pb
from results import GRPC_FLOOR, SHM


def test_the_floor_answers_one_mlp_row() -> None:
    response = pb.ModelInferResponse.FromString(answer())
    assert (response.model_name, response.model_version) == ("mlp", "1")
    [output] = response.outputs
    assert (output.name, output.datatype, list(output.shape)) == ("logits", "FP32", [1, 10])
    assert len(response.raw_output_contents[0]) == 40


def test_the_floor_answers_as_many_bytes_as_tensorgate() -> None:
    logits = np.random.default_rng(0).standard_normal((1, 10)).astype(np.float32)
    ours = encode_infer_response("mlp", 1, "", ["logits"], {"logits": logits}, {}, None)
    assert len(answer()) == len(ours)


def test_the_floor_takes_turns_in_mlps_rounds_only() -> None:
    assert rows_of("mlp") == (*ROWS, GRPC_FLOOR)
    assert rows_of("image") == (*ROWS, SHM)
    per_model = len(ROWS) + 1  # the floor on mlp, shared memory on image
    assert run_count(5) == 5 * per_model * (len(BINARY_CONNECTIONS) + len(IMAGE_CONNECTIONS))
