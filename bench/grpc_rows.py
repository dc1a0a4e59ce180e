"""The gRPC rows of ``make bench``: unary ``ModelInfer`` calls from h2load, with the same
numbers as the binary rows' body, taking turns with them (bench/binary_rows.py).

h2load cannot read ``grpc-status``, so every run is checked on the server: the gRPC
answers its metrics counted, by status, before and after the run. Before the runs, one
call from a real gRPC client checks that the answer is the one HTTP gives.

The gRPC floor (bench/floor_grpc.py) gets the same calls; it has no metrics and answers
every call OK, so only h2load's statuses count there. One call checks beforehand that
its answer parses as a ``ModelInferResponse`` as large as tensorgate's.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from gateway.grpc.status import code_for
from gateway.proto import grpc_service_pb2 as pb
from h2load import GRPC_HEADERS, H2loadResult, grpc_frame, run_h2load
from servers import Server
from wrk import WrkResult

METHOD = "/inference.GRPCInferenceService/ModelInfer"
REQUESTS_TOTAL = "tensorgate_inference_requests"
"""The counter of answers by model, status (a gRPC code's HTTP status) and protocol."""
CANCELLED = 499
NOT_COUNTED = "2xx to h2load, no 200 counted by the server"
_NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}


def write_frame(path: Path, model: str, input_name: str, array: np.ndarray) -> None:
    """A ``ModelInferRequest`` for ``model`` with ``array`` in ``raw_input_contents`` (as
    ``tritonclient.grpc`` sends it), prefixed as one gRPC message."""
    request = pb.ModelInferRequest(model_name=model)
    tensor = request.inputs.add(name=input_name, datatype="FP32")
    tensor.shape.extend(array.shape)
    request.raw_input_contents.append(array.astype(np.float32).tobytes())
    path.write_bytes(grpc_frame(request.SerializeToString()))


def _metadata() -> tuple[tuple[str, str], ...]:
    token = os.environ.get("BENCH_BEARER_TOKEN")
    return (("authorization", f"Bearer {token}"),) if token else ()


def check_answer(server: Server, model: str, frame: Path, json_body: Path) -> None:
    """Call ``ModelInfer`` once with the frame, from a real gRPC client, and compare its
    outputs with what HTTP answers for the same numbers; raise when they differ."""
    with grpc.insecure_channel(server.grpc_target) as channel:
        infer: grpc.UnaryUnaryMultiCallable[bytes, pb.ModelInferResponse] = channel.unary_unary(
            METHOD, request_serializer=None, response_deserializer=pb.ModelInferResponse.FromString
        )
        answer: pb.ModelInferResponse = infer(
            frame.read_bytes()[5:], metadata=_metadata(), timeout=30
        )
    request = urllib.request.Request(
        f"{server.base}/v2/models/{model}/infer",
        data=json_body.read_bytes(),
        headers={"Content-Type": "application/json", **dict(_metadata())},
    )
    with urllib.request.urlopen(request, timeout=30) as http:
        expected = {out["name"]: out["data"] for out in json.load(http)["outputs"]}
    for tensor, raw in zip(answer.outputs, answer.raw_output_contents, strict=True):
        got = np.frombuffer(raw, _NUMPY[tensor.datatype])
        if not np.allclose(got, np.asarray(expected[tensor.name], got.dtype), rtol=1e-5):
            raise RuntimeError(f"gRPC and HTTP answer {model}'s {tensor.name} differently")
    if {t.name for t in answer.outputs} != set(expected):
        raise RuntimeError(f"gRPC and HTTP answer different outputs for {model}")


def check_floor(floor: Server, server: Server, frame: Path) -> None:
    """Call ``ModelInfer`` once on the floor and once on tensorgate with the frame; raise
    unless the floor's answer parses as a ``ModelInferResponse`` of as many bytes."""
    answers = []
    for target, metadata in ((floor.grpc_target, ()), (server.grpc_target, _metadata())):
        with grpc.insecure_channel(target) as channel:
            infer: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
            answers.append(infer(frame.read_bytes()[5:], metadata=metadata, timeout=30))
    ours, theirs = answers
    pb.ModelInferResponse.FromString(ours)
    if len(ours) != len(theirs):
        raise RuntimeError(f"the gRPC floor answers {len(ours)} bytes, tensorgate {len(theirs)}")


def answers_by_status(metrics: str, model: str) -> Counter[int]:
    """The gRPC answers for ``model`` the server counted so far, by HTTP status."""
    counts: Counter[int] = Counter()
    for family in text_string_to_metric_families(metrics):
        if family.name != REQUESTS_TOTAL:
            continue
        for sample in family.samples:
            labels = sample.labels
            wanted = labels.get("protocol") == "grpc" and labels.get("model") == model
            if wanted and sample.name.endswith("_total"):
                counts[int(labels["status"])] += int(sample.value)
    return counts


def not_ok(before: Counter[int], after: Counter[int], h2load: H2loadResult) -> Counter[str]:
    """The calls of one run that were not OK, by gRPC status. A cancelled call is forgiven
    up to the calls h2load abandoned in flight when its time was up (those end as
    ``CANCELLED`` on the server). h2load's 2xx answers the server did not count as 200
    nor as an error (a call refused before the pipeline, e.g. ``UNIMPLEMENTED``) are
    ``NOT_COUNTED``."""
    delta = after - before
    counts = h2load.counts
    abandoned = counts.started - counts.done
    failed: Counter[str] = Counter()
    for status, n in delta.items():
        left = n - min(n, abandoned) if status == CANCELLED else n
        if status != 200 and left:
            failed[f"{code_for(status).name} ({status})"] += left
    server_errors = sum(failed.values())
    unexplained = counts.status_2xx - delta[200] - server_errors
    if unexplained > 0:
        failed[NOT_COUNTED] += unexplained
    if counts.done > counts.status_2xx:
        failed["not HTTP 200 (h2load)"] += counts.done - counts.status_2xx
    return failed


def floor_run(
    floor: Server, frame: Path, conns: int, seconds: float, work: Path
) -> Callable[[], WrkResult]:
    """One h2load run against the gRPC floor per call of the result, with the headers
    tensorgate's runs send (the token too, which the floor ignores); an answer that is
    not HTTP 2xx is an error."""
    url = f"http://{floor.grpc_target}{METHOD}"
    headers = {**GRPC_HEADERS, **dict(_metadata())}

    return lambda: floor_result(run_h2load(url, frame, conns, seconds, work, headers))


def floor_result(result: H2loadResult) -> WrkResult:
    """One floor run as a wrk run: the calls h2load finished, those without a 2xx the
    errors."""
    counts = result.counts
    errors = counts.done - min(counts.done, counts.status_2xx)
    return WrkResult(result.answers_per_s, result.p50_ms, result.p99_ms, errors, counts.done)


def _metrics(server: Server) -> str:
    with urllib.request.urlopen(server.base + "/metrics", timeout=10) as answer:
        text: str = answer.read().decode()
        return text


def grpc_run(
    server: Server,
    model: str,
    frame: Path,
    conns: int,
    seconds: float,
    work: Path,
    failures: Counter[str],
) -> Callable[[], WrkResult]:
    """One h2load run per call of the result, as a wrk run is: its not-OK calls added to
    ``failures`` and counted as its errors."""
    url = f"http://{server.grpc_target}{METHOD}"
    headers = {**GRPC_HEADERS, **dict(_metadata())}

    def run() -> WrkResult:
        before = answers_by_status(_metrics(server), model)
        result = run_h2load(url, frame, conns, seconds, work, headers)
        failed = not_ok(before, answers_by_status(_metrics(server), model), result)
        failures.update(failed)
        return WrkResult(
            result.answers_per_s,
            result.p50_ms,
            result.p99_ms,
            min(result.counts.done, sum(failed.values())),
            result.counts.done,
        )

    return run
