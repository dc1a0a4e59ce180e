"""The checks that stand in for h2load's blindness to ``grpc-status``: the server's gRPC
answers by status, and which calls of a run were not OK."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from gateway.proto import grpc_service_pb2 as pb
from grpc_rows import NOT_COUNTED, answers_by_status, floor_result, not_ok, write_frame
from h2load import H2loadCounts, H2loadResult

METRICS = """\
# HELP tensorgate_inference_requests_total Inference requests.
# TYPE tensorgate_inference_requests_total counter
tensorgate_inference_requests_total{model="mlp",protocol="grpc",status="200",version="1"} 90.0
tensorgate_inference_requests_total{model="mlp",protocol="grpc",status="200",version="2"} 10.0
tensorgate_inference_requests_total{model="mlp",protocol="grpc",status="503",version="1"} 3.0
tensorgate_inference_requests_total{model="mlp",protocol="http",status="200",version="1"} 500.0
tensorgate_inference_requests_total{model="image",protocol="grpc",status="200",version="1"} 7.0
# HELP tensorgate_inference_requests_created Inference requests.
# TYPE tensorgate_inference_requests_created gauge
tensorgate_inference_requests_created{model="mlp",protocol="grpc",status="200",version="1"} 1.7e9
"""


def test_the_grpc_answers_of_one_model_by_status() -> None:
    assert answers_by_status(METRICS, "mlp") == Counter({200: 100, 503: 3})
    assert answers_by_status(METRICS, "image") == Counter({200: 7})
    assert answers_by_status(METRICS, "wide") == Counter()


def _run(*, started: int, done: int, status_2xx: int) -> H2loadResult:
    return H2loadResult(H2loadCounts(2.0, started, done, status_2xx), 1.0, 2.0)


BEFORE = Counter({200: 1000, 503: 5})


def test_a_clean_run_has_no_failure() -> None:
    # Two calls abandoned in flight: the server answered one (200), cancelled the other.
    after = BEFORE + Counter({200: 801, 499: 1})
    assert not_ok(BEFORE, after, _run(started=802, done=800, status_2xx=800)) == Counter()


def test_grpc_errors_are_counted_by_status_though_h2load_saw_200() -> None:
    after = BEFORE + Counter({200: 790, 503: 8, 504: 2})
    failed = not_ok(BEFORE, after, _run(started=800, done=800, status_2xx=800))
    assert failed == Counter({"UNAVAILABLE (503)": 8, "DEADLINE_EXCEEDED (504)": 2})


def test_cancelled_calls_beyond_those_abandoned_are_failures() -> None:
    # Two were abandoned in flight; the other three h2load counted (200 headers, then a
    # CANCELLED trailer it does not read).
    after = BEFORE + Counter({200: 797, 499: 5})
    failed = not_ok(BEFORE, after, _run(started=802, done=800, status_2xx=800))
    assert failed == Counter({"CANCELLED (499)": 3})


def test_calls_the_server_never_counted_are_failures() -> None:
    # e.g. UNIMPLEMENTED for a wrong method: refused before the pipeline counts it.
    after = BEFORE + Counter({200: 700})
    failed = not_ok(BEFORE, after, _run(started=800, done=800, status_2xx=800))
    assert failed == Counter({NOT_COUNTED: 100})


def test_answers_that_were_not_http_200_are_failures() -> None:
    after = BEFORE + Counter({200: 790})
    failed = not_ok(BEFORE, after, _run(started=800, done=800, status_2xx=790))
    assert failed == Counter({"not HTTP 200 (h2load)": 10})


def test_the_frame_is_a_raw_tensor_request(tmp_path: Path) -> None:
    array = np.arange(6, dtype=np.float32).reshape(1, 6)
    path = tmp_path / "mlp.grpc"
    write_frame(path, "mlp", "input", array)
    frame = path.read_bytes()
    assert frame[:5] == b"\x00" + (len(frame) - 5).to_bytes(4, "big")
    request = pb.ModelInferRequest.FromString(frame[5:])
    assert request.model_name == "mlp"
    [tensor] = request.inputs
    assert (tensor.name, tensor.datatype, list(tensor.shape)) == ("input", "FP32", [1, 6])
    assert request.raw_input_contents == [array.tobytes()]


def test_a_floor_run_counts_answers_without_a_2xx_as_errors() -> None:
    result = floor_result(_run(started=802, done=800, status_2xx=797))
    assert (result.requests_per_s, result.errors, result.requests) == (400.0, 3, 800)
    assert (result.p50_ms, result.p99_ms) == (1.0, 2.0)
    assert floor_result(_run(started=10, done=10, status_2xx=10)).errors == 0
