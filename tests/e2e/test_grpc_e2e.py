"""End to end: the official ``tritonclient.grpc`` (sync, ``aio`` and streaming), unchanged,
against a real ``tensorgate serve`` on its gRPC port: every datatype in raw and typed
contents, several inputs and outputs, ``digits`` as ONNX Runtime answers it,
classification as REST answers it, configuration, statistics, the repository, errors in
REST's words, deadlines, cancellation and authentication failures; REST and gRPC requests
in one batch (issue 21, "Tests"); test_grpc_shutdown_e2e.py has ``--workers 2`` and SIGTERM."""

from __future__ import annotations

import asyncio
import queue
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from demo_models import digits_split
from gateway.auth.principal import MODELS_INFER, MODELS_READ
from support.app import bearer, make_settings
from support.grpc_calls import (
    GUARD_S,
    Served,
    access_lines,
    auth,
    queue_depth,
    samples,
    serve,
    slow_input,
    tensor,
    until_queued,
)
from support.onnx_models import ONNX_TYPES, adder_model, identity_model, slow_model, write_model
from support.paths import DEMO_MODELS
from support.scrape import Samples, sample

pytestmark = pytest.mark.e2e

SETTINGS = make_settings(DEMO_MODELS)
DIGITS = DEMO_MODELS / "digits" / "1" / "model.onnx"
MIB = 1024 * 1024
PLUG_ROWS = 16384  # mlp rows: one backend call of a second or so on this 2-core machine
SHARED = 8  # requests of each transport in the shared batch

# One value per datatype of the identity model, extremes included; BYTES as UTF-8 text.
ARRAYS: dict[str, np.ndarray] = {
    "BOOL": np.array([[True, False], [False, True]]),
    "UINT8": np.array([[0, 255], [7, 8]], np.uint8),
    "UINT16": np.array([[0, 2**16 - 1], [7, 8]], np.uint16),
    "UINT32": np.array([[0, 2**32 - 1], [7, 8]], np.uint32),
    "UINT64": np.array([[0, 2**64 - 1], [7, 8]], np.uint64),
    "INT8": np.array([[-(2**7), 2**7 - 1], [0, -1]], np.int8),
    "INT16": np.array([[-(2**15), 2**15 - 1], [0, -1]], np.int16),
    "INT32": np.array([[-(2**31), 2**31 - 1], [0, -1]], np.int32),
    "INT64": np.array([[-(2**63), 2**63 - 1], [0, -1]], np.int64),
    "FP16": np.array([[0.5, -65504], [6e-8, -0.0]], np.float16),
    "FP32": np.array([[1.5, -3.4e38], [1e-45, -0.0]], np.float32),
    "FP64": np.array([[0.1, 1e308], [5e-324, -2.0]], np.float64),
    "BYTES": np.array([["é", ""], ["ab", "日本語"]], dtype=object),
}
# The typed contents field of each datatype that has one (FP16 has none).
TYPED_FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def repository(root: Path) -> Path:
    """digits and mlp from models/, identity over every datatype (``typed``: all but FP16,
    which has no typed field), the two-input adder, and a slow model for deadlines."""
    shutil.copytree(DEMO_MODELS / "digits", root / "digits")
    shutil.copytree(DEMO_MODELS / "mlp", root / "mlp")
    config = root / "mlp" / "config.yaml"
    # One batch at a time, big enough for the plug of the shared-batch test unsplit.
    config.write_text(config.read_text() + "instances: 1\nbatching: {max_batch_size: 65536}\n")
    write_model(root, "identity", identity_model())
    write_model(root, "typed", identity_model([dt for dt in ONNX_TYPES if dt != "FP16"]))
    write_model(root, "adder", adder_model())
    write_model(root, "slow", slow_model(1_000_000))  # about a second per call here
    (root / "slow" / "config.yaml").write_text("instances: 1\nbatching: {max_batch_size: 1}\n")
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = repository(tmp_path_factory.mktemp("models"))
    # Room for the plug of the shared-batch test (16 MiB of mlp rows and the envelope).
    process, port = serve(root, TENSORGATE_MAX_REQUEST_BODY_BYTES=str(64 * MIB))
    with process:
        yield Served(process, port)


@pytest.fixture
def client(served: Served) -> Iterator[triton.InferenceServerClient]:
    with served.client() as opened:
        yield opened


@pytest.fixture
async def aio(served: Served) -> AsyncIterator[triton_aio.InferenceServerClient]:
    opened = triton_aio.InferenceServerClient(served.url)
    try:
        yield opened
    finally:
        await opened.close()


def utf8(array: np.ndarray) -> list[bytes]:
    return [str(value).encode() for value in array.ravel()]


def assert_echoed(result: triton.InferResult, datatypes: list[str]) -> None:
    for datatype in datatypes:
        got = result.as_numpy(f"out_{datatype.lower()}")
        assert got is not None, datatype
        if datatype == "BYTES":
            assert [bytes(value) for value in got.ravel()] == utf8(ARRAYS[datatype])
        else:
            assert got.dtype == ARRAYS[datatype].dtype, datatype
            np.testing.assert_array_equal(got, ARRAYS[datatype], err_msg=datatype)


def test_every_datatype_round_trips_in_raw_contents(client: triton.InferenceServerClient) -> None:
    inputs = [tensor(f"in_{dt.lower()}", array, dt) for dt, array in ARRAYS.items()]
    result = client.infer("identity", inputs, headers=auth())
    assert_echoed(result, list(ARRAYS))
    assert {out.name for out in result.get_response().outputs} == {
        f"out_{dt.lower()}" for dt in ARRAYS
    }

    wanted = [triton.InferRequestedOutput(name) for name in ("out_bytes", "out_fp16")]
    subset = client.infer("identity", inputs, outputs=wanted, headers=auth())
    assert [out.name for out in subset.get_response().outputs] == ["out_bytes", "out_fp16"]
    assert_echoed(subset, ["BYTES", "FP16"])


def test_every_datatype_with_a_typed_field_round_trips_in_typed_contents(
    served: Served,
) -> None:
    request = service_pb2.ModelInferRequest(model_name="typed", id="typed-1")
    for datatype, field in TYPED_FIELD.items():
        array = ARRAYS[datatype]
        sent = request.inputs.add(name=f"in_{datatype.lower()}", datatype=datatype, shape=[2, 2])
        values = utf8(array) if datatype == "BYTES" else array.ravel().tolist()
        getattr(sent.contents, field).extend(values)
    with grpc.insecure_channel(served.url) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        response = stub.ModelInfer(request, metadata=tuple(auth().items()), timeout=GUARD_S)
    assert response.id == "typed-1"
    assert_echoed(triton.InferResult(response), list(TYPED_FIELD))


def test_two_inputs_one_output(client: triton.InferenceServerClient) -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.full((2, 3), 0.5, np.float32)
    result = client.infer(
        "adder",
        [tensor("a", a, "FP32"), tensor("b", b, "FP32")],
        outputs=[triton.InferRequestedOutput("sum")],
        headers=auth(),
    )
    np.testing.assert_array_equal(result.as_numpy("sum"), a + b)


def test_digits_answers_what_onnxruntime_answers(client: triton.InferenceServerClient) -> None:
    _, x_test, _, _ = digits_split()
    batch = x_test[:32]
    result = client.infer("digits", [tensor("pixels", batch, "FP32")], headers=auth())
    labels, probabilities = ort.InferenceSession(str(DIGITS)).run(None, {"pixels": batch})
    got = result.as_numpy("label")
    assert got is not None
    assert got.tolist() == labels.tolist()
    np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, rtol=1e-6)


async def test_classification_gives_the_top_classes_rest_gives(
    client: triton.InferenceServerClient, served: Served
) -> None:
    _, x_test, _, _ = digits_split()
    batch = x_test[:4]
    top3 = triton.InferRequestedOutput("probabilities", class_count=3)
    result = client.infer(
        "digits", [tensor("pixels", batch, "FP32")], outputs=[top3], headers=auth()
    )
    got = result.as_numpy("probabilities")
    assert got is not None
    assert got.shape == (4, 3)
    body = {
        "inputs": [
            {"name": "pixels", "shape": [4, 64], "datatype": "FP32", "data": batch.tolist()}
        ],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
    }
    async with served.http() as http:
        rest = (await http.post("/v2/models/digits/infer", json=body)).json()
    assert rest["outputs"][0]["shape"] == [4, 3]
    assert [value.decode() for value in got.ravel()] == rest["outputs"][0]["data"]


def test_config_statistics_and_index(client: triton.InferenceServerClient) -> None:
    config = client.get_model_config("digits", headers=auth()).config
    assert config.name == "digits"
    # Triton's form: the batch dimension is max_batch_size's, not one of the dims.
    assert (config.max_batch_size, config.platform) == (64, "onnxruntime_onnx")
    assert [(t.name, list(t.dims)) for t in config.input] == [("pixels", [64])]

    def successes() -> int:
        stats = client.get_inference_statistics("adder", headers=auth()).model_stats
        return sum(version.inference_stats.success.count for version in stats)

    before = successes()
    for _ in range(3):
        client.infer("adder", adder_inputs(), headers=auth())
    assert successes() == before + 3

    index = client.get_model_repository_index(headers=auth()).models
    assert {(m.name, m.version, m.state) for m in index} >= {
        (name, "1", "READY") for name in ("digits", "mlp", "identity", "typed", "adder", "slow")
    }


def adder_inputs(value: float = 1.0) -> list[triton.InferInput]:
    ones = np.full((1, 3), value, np.float32)
    return [tensor("a", ones, "FP32"), tensor("b", ones, "FP32")]


def test_unload_and_load_need_admin(client: triton.InferenceServerClient) -> None:
    reader = bearer(SETTINGS, scopes=(MODELS_READ, MODELS_INFER))
    with pytest.raises(InferenceServerException) as refused:
        client.unload_model("adder", headers=auth(reader))
    assert refused.value.status() == "StatusCode.PERMISSION_DENIED"
    assert client.is_model_ready("adder", headers=auth())

    client.unload_model("adder", headers=auth())
    assert not client.is_model_ready("adder", headers=auth())
    ones = np.ones((1, 3), np.float32)
    with pytest.raises(InferenceServerException) as unloaded:
        client.infer("adder", adder_inputs(), headers=auth())
    assert unloaded.value.status() == "StatusCode.NOT_FOUND"

    client.load_model("adder", headers=auth())
    assert client.is_model_ready("adder", headers=auth())
    again = client.infer("adder", adder_inputs(), headers=auth())
    np.testing.assert_array_equal(again.as_numpy("sum"), ones * 2)


async def test_an_unknown_model_is_not_found_in_rest_words(
    client: triton.InferenceServerClient, served: Served
) -> None:
    pixels = np.zeros((1, 64), np.float32)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("nope", [tensor("pixels", pixels, "FP32")], headers=auth())
    assert caught.value.status() == "StatusCode.NOT_FOUND"
    body = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]}
    async with served.http() as http:
        rest = await http.post("/v2/models/nope/infer", json=body)
    assert rest.status_code == 404
    assert caught.value.message() == rest.json()["error"]
    assert caught.value.message() == "Request for unknown model: 'nope' is not found"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "StatusCode.UNAUTHENTICATED"),
        ("Bearer not-a-jwt", "StatusCode.UNAUTHENTICATED"),
        (bearer(SETTINGS, scopes=(MODELS_READ,)), "StatusCode.PERMISSION_DENIED"),
        (bearer(SETTINGS, scopes=("models:infer:mlp",)), "StatusCode.PERMISSION_DENIED"),
    ],
    ids=["no-token", "bad-token", "read-only", "another-model"],
)
def test_auth_failures(client: triton.InferenceServerClient, token: str | None, code: str) -> None:
    pixels = tensor("pixels", np.zeros((1, 64), np.float32), "FP32")
    headers = None if token is None else auth(token)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("digits", [pixels], headers=headers)
    assert caught.value.status() == code


def test_a_stream_answers_in_order_with_errors_in_between(served: Served) -> None:
    _, x_test, _, _ = digits_split()
    labels = ort.InferenceSession(str(DIGITS)).run(None, {"pixels": x_test[:3]})[0]
    answers: queue.Queue[tuple[triton.InferResult | None, Exception | None]] = queue.Queue()
    with served.client() as client:
        client.start_stream(lambda result, error: answers.put((result, error)), headers=auth())
        for index, model in enumerate(["digits", "nope", "digits", "digits"]):
            row = x_test[index % 3 : index % 3 + 1]
            client.async_stream_infer(model, [tensor("pixels", row, "FP32")], request_id=str(index))
        client.stop_stream()  # waits for the answers still owed
    got = [answers.get(timeout=GUARD_S) for _ in range(4)]
    assert got[1][0] is None
    assert isinstance(got[1][1], InferenceServerException)
    assert got[1][1].message() == "Request for unknown model: 'nope' is not found"
    for index in (0, 2, 3):
        result, error = got[index]
        assert error is None
        assert result is not None
        assert result.get_response().id == str(index)
        assert result.as_numpy("label").tolist() == [labels[index % 3]]


async def slow_successes(aio: triton_aio.InferenceServerClient) -> int:
    stats = (await aio.get_inference_statistics("slow", headers=auth())).model_stats
    return sum(version.inference_stats.success.count for version in stats)


async def test_a_deadline_shorter_than_the_work_is_deadline_exceeded(
    aio: triton_aio.InferenceServerClient, served: Served
) -> None:
    """A call queued behind a running one, with a deadline that passes before its turn:
    DEADLINE_EXCEEDED, and the server computes nothing for it."""
    before = await slow_successes(aio)
    plug = asyncio.create_task(aio.infer("slow", [slow_input()], headers=auth()))
    late = asyncio.create_task(
        aio.infer("slow", [slow_input()], headers=auth(request_id="late"), client_timeout=0.3)
    )
    with pytest.raises(InferenceServerException) as caught:
        await late
    assert caught.value.status() == "StatusCode.DEADLINE_EXCEEDED"
    await asyncio.wait_for(plug, GUARD_S)
    line = access_lines(served.process, ["late"])["late"]
    assert line["path"] == "/inference.GRPCInferenceService/ModelInfer"
    # 504 as on REST (docs/grpc.md#errors), not 499: the client did not cancel it.
    assert (line["status"], line["batch_size"]) == (504, None)  # never in a batch
    assert await slow_successes(aio) == before + 1  # the plug alone
    assert await aio.is_server_ready()


async def test_a_cancelled_call_is_withdrawn(
    aio: triton_aio.InferenceServerClient, served: Served
) -> None:
    before = await slow_successes(aio)
    plug = asyncio.create_task(aio.infer("slow", [slow_input()], headers=auth()))
    cancelled = asyncio.create_task(
        aio.infer("slow", [slow_input()], headers=auth(request_id="cancelled"))
    )
    async with served.http() as http:
        await until_queued(http, "slow", 1)  # the plug runs, the other waits behind it
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await asyncio.wait_for(plug, GUARD_S)
        metrics = await samples(http)
    line = access_lines(served.process, ["cancelled"])["cancelled"]
    assert (line["status"], line["batch_size"]) == (499, None)
    assert await slow_successes(aio) == before + 1  # nothing computed for the cancelled one
    labels = {"model": "slow", "version": "1", "status": "499", "protocol": "grpc"}
    assert sample(metrics, "tensorgate_inference_requests_total", **labels) >= 1
    assert await aio.is_server_ready()


async def test_rest_and_grpc_requests_share_one_batch(
    aio: triton_aio.InferenceServerClient, served: Served
) -> None:
    """While one big mlp call runs (one instance), SHARED one-row requests over each
    transport wait in the queue; when the big call ends, everything queued is one batch.
    Proved by the /metrics queue depth reaching 2 * SHARED before that batch, every one of
    those requests' access-log lines (REST and gRPC) naming a batch of 2 * SHARED rows,
    and the batch-size histogram gaining one batch of 9 to 16 rows: there were only 16
    one-row requests, so that batch held all of them, both transports."""
    rows = np.full((1, 256), 0.25, np.float32)
    plug_rows = np.full((PLUG_ROWS, 256), 0.25, np.float32)
    body = {
        "inputs": [
            {"name": "input", "shape": [1, 256], "datatype": "FP32", "data": rows.ravel().tolist()}
        ]
    }

    def grpc_call(request_id: str) -> asyncio.Task[Any]:
        call = aio.infer(
            "mlp", [tensor("input", rows, "FP32")], headers=auth(request_id=request_id)
        )
        return asyncio.create_task(call)

    async with served.http() as http:
        before = await samples(http)
        plug = asyncio.create_task(
            aio.infer("mlp", [tensor("input", plug_rows, "FP32")], headers=auth())
        )
        # The first small call may overtake the plug (it is on the wire first); then it
        # runs alone, and another is sent, until one waits behind the running plug.
        tries = 0
        first = grpc_call(f"shared-grpc-{tries}")
        while (await queue_depth(http, "mlp")) < 1:
            if first.done():
                await first
                tries += 1
                first = grpc_call(f"shared-grpc-{tries}")
            assert not plug.done(), "the plug ended before a request queued behind it"
        ids = [f"shared-grpc-{tries + i}" for i in range(SHARED)]
        calls = [first, *(grpc_call(request_id) for request_id in ids[1:])]
        ids += [f"shared-rest-{i}" for i in range(SHARED)]
        calls += [
            asyncio.create_task(
                http.post("/v2/models/mlp/infer", json=body, headers={"X-Request-ID": request_id})
            )
            for request_id in ids[SHARED:]
        ]
        await until_queued(http, "mlp", 2 * SHARED)
        assert not plug.done(), "the plug ended before every request was queued"
        answers = await asyncio.wait_for(asyncio.gather(plug, *calls), GUARD_S)
        after = await samples(http)
    sys.stdout.write(f"small calls that overtook the plug: {tries}\n")  # -s shows it
    assert all(answer.status_code == 200 for answer in answers[1 + SHARED :])
    lines = access_lines(served.process, ids)
    assert {lines[i]["batch_size"] for i in ids} == {2 * SHARED}
    assert {lines[i]["path"] for i in ids} == {
        "/inference.GRPCInferenceService/ModelInfer",
        "/v2/models/mlp/infer",
    }

    def batches(values: Samples, le: str) -> float:
        return sample(values, "tensorgate_batch_size_bucket", model="mlp", version="1", le=le)

    def between_9_and_16(values: Samples) -> float:
        return batches(values, "16.0") - batches(values, "8.0")

    assert between_9_and_16(after) - between_9_and_16(before) == 1
