"""The gRPC service in process, through the official ``tritonclient.grpc.aio`` client: the
same app (lifespan, registry, batchers) as the REST tests, its gRPC server on a loopback
port, the fake backend where a test needs to hold a batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc.aio as triton
from asgi_lifespan import LifespanManager
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from gateway.api.app import create_app
from gateway.auth.principal import MODELS_READ
from gateway.grpc.server import grpc_server
from gateway.listener_settings import GrpcSettings
from gateway.settings import Settings
from support.app import bearer, make_settings
from support.fake_backend import FakeLoader
from support.workers import free_port

GUARD_S = 10  # hang guard only


def repository(tmp_path: Path, config: str = "") -> Path:
    for name in ("echo", "other"):
        (tmp_path / name / "1").mkdir(parents=True)
        (tmp_path / name / "1" / "model.onnx").write_bytes(b"fake")
        (tmp_path / name / "config.yaml").write_text(config)
    return tmp_path


class Gateway:
    """A started app with its gRPC server: a client for each transport."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, loader: FakeLoader) -> None:
        self.settings = settings
        self.http = http
        self.loader = loader
        self.url = f"127.0.0.1:{settings.grpc.port}"
        self.headers = {"authorization": bearer(settings)}
        self.client = triton.InferenceServerClient(self.url)


@asynccontextmanager
async def gateway(tmp_path: Path, config: str = "", **overrides: Any) -> AsyncIterator[Gateway]:
    loader = FakeLoader()
    settings = make_settings(
        repository(tmp_path, config), grpc=GrpcSettings(port=free_port()), **overrides
    )
    app = create_app(settings, loader=loader, transports=grpc_server)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        headers = {"Authorization": bearer(settings)}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=headers
        ) as http:
            found = Gateway(settings, http, loader)
            try:
                yield found
            finally:
                await found.client.close()


def echo_input(rows: int = 1, value: float = 1.0) -> triton.InferInput:
    tensor = triton.InferInput("x", [rows, 4], "FP32")
    tensor.set_data_from_numpy(np.full((rows, 4), value, np.float32))
    return tensor


async def test_health_metadata_config_and_index(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        client, headers = gw.client, gw.headers
        assert await client.is_server_live()
        assert await client.is_server_ready()
        assert await client.is_model_ready("echo", headers=headers)
        assert not await client.is_model_ready("nope", headers=headers)
        server = await client.get_server_metadata(as_json=True)
        assert server["name"] == "tensorgate"
        assert "model_repository" in server["extensions"]
        metadata = await client.get_model_metadata("echo", headers=headers, as_json=True)
        assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": ["-1", "4"]}]
        config = (await client.get_model_config("echo", headers=headers, as_json=True))["config"]
        assert config["name"] == "echo"
        assert config["input"][0]["data_type"] == "TYPE_FP32"
        index = await client.get_model_repository_index(headers=headers, as_json=True)
        assert {m["name"] for m in index["models"]} == {"echo", "other"}


async def test_infer_answers_the_backend_outputs(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        result = await gw.client.infer("echo", [echo_input(2, 3.0)], headers=gw.headers)
        np.testing.assert_array_equal(result.as_numpy("y"), np.full((2, 4), 3.0, np.float32))
        np.testing.assert_array_equal(result.as_numpy("total"), [12.0, 12.0])
        response = result.get_response()
        assert (response.model_name, response.model_version) == ("echo", "1")


async def test_errors_carry_the_mapped_codes_and_rest_words(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        client = gw.client
        cases = [
            (client.infer("nope", [echo_input()], headers=gw.headers), "StatusCode.NOT_FOUND"),
            (client.infer("echo", [echo_input()]), "StatusCode.UNAUTHENTICATED"),
            (
                client.infer(
                    "echo",
                    [echo_input()],
                    headers={"authorization": bearer(gw.settings, scopes=(MODELS_READ,))},
                ),
                "StatusCode.PERMISSION_DENIED",
            ),
        ]
        for call, code in cases:
            with pytest.raises(InferenceServerException) as caught:
                await call
            assert caught.value.status() == code
        bad = triton.InferInput("x", [1, 5], "FP32")
        bad.set_data_from_numpy(np.zeros((1, 5), np.float32))
        with pytest.raises(InferenceServerException) as caught:
            await client.infer("echo", [bad], headers=gw.headers)
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
        rest = await gw.http.post(
            "/v2/models/echo/infer",
            json={"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP32", "data": [0] * 5}]},
        )
        assert rest.status_code == 400
        assert caught.value.message() == rest.json()["error"]


async def test_tritons_words_and_codes_where_its_clients_match_on_them(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        with pytest.raises(InferenceServerException) as caught:
            await gw.client.load_model("absent", headers=gw.headers)
        assert caught.value.status() == "StatusCode.INTERNAL"
        assert caught.value.message().startswith(
            "failed to load 'absent', failed to poll from model repository"
        )
        with pytest.raises(InferenceServerException) as caught:
            await gw.client.infer("echo", [echo_input()], model_version="1.5", headers=gw.headers)
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert caught.value.message().startswith(
            "failed to get model version from specified version string '1.5'"
        )


async def test_rest_and_grpc_requests_share_a_batch(tmp_path: Path) -> None:
    config = "batching:\n  max_batch_size: 8\n  max_queue_delay_ms: 1000\n"
    async with gateway(tmp_path, config) as gw:
        backend = gw.loader.backends["echo"]
        backend.hold = True
        first = asyncio.create_task(gw.client.infer("echo", [echo_input()], headers=gw.headers))
        await asyncio.wait_for(backend.started.wait(), GUARD_S)  # the first batch runs alone
        rest = [
            asyncio.create_task(
                gw.http.post(
                    "/v2/models/echo/infer",
                    json={
                        "inputs": [
                            {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [2.0] * 4}
                        ]
                    },
                )
            )
            for _ in range(2)
        ]
        grpc_calls = [
            asyncio.create_task(gw.client.infer("echo", [echo_input(1, 5.0)], headers=gw.headers))
            for _ in range(2)
        ]
        # The four wait in the queue behind the held batch; released, they run as one.
        depth = 'tensorgate_queue_depth{model="echo",version="1"} 4.0'
        for _ in range(500):
            if depth in (await gw.http.get("/metrics")).text:
                break
            await asyncio.sleep(0.01)
        backend.release.set()
        await asyncio.wait_for(asyncio.gather(first, *rest, *grpc_calls), GUARD_S)
        assert backend.batch_sizes == [1, 4]
        assert sorted(backend.batches[1][:, 0].tolist()) == [2.0, 2.0, 5.0, 5.0]


async def test_a_stream_answers_in_order_with_errors_in_place(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:

        async def requests() -> AsyncIterator[dict[str, Any]]:
            for index, model in enumerate(("echo", "nope", "echo")):
                yield {
                    "model_name": model,
                    "inputs": [echo_input(1, float(index))],
                    "request_id": str(index),
                }

        answers = []
        async for result, error in gw.client.stream_infer(requests(), headers=gw.headers):
            answers.append((result, error))
            if len(answers) == 3:
                break
        assert answers[0][1] is None
        assert answers[0][0].get_response().id == "0"
        assert answers[1][0] is None
        assert "nope" in answers[1][1].message()
        assert answers[2][0].as_numpy("y").tolist() == [[2.0] * 4]


async def test_a_cancelled_call_withdraws_its_request(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        backend = gw.loader.backends["echo"]
        backend.hold = True
        held = asyncio.create_task(gw.client.infer("echo", [echo_input()], headers=gw.headers))
        await asyncio.wait_for(backend.started.wait(), GUARD_S)
        with pytest.raises(InferenceServerException) as caught:
            await gw.client.infer(
                "echo", [echo_input(1, 9.0)], headers=gw.headers, client_timeout=0.2
            )
        assert caught.value.status() == "StatusCode.DEADLINE_EXCEEDED"
        backend.release.set()
        await asyncio.wait_for(held, GUARD_S)
        stats = await gw.client.get_inference_statistics("echo", headers=gw.headers, as_json=True)
        model = stats["model_stats"][0]
        # The expired request never ran: only the held one was computed.
        assert all(9.0 not in batch for batch in backend.batches)
        assert model["inference_stats"]["success"]["count"] == "1"


async def test_metrics_count_grpc_requests_by_protocol(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        await gw.client.infer("echo", [echo_input()], headers=gw.headers)
        with pytest.raises(InferenceServerException):
            await gw.client.infer("nope", [echo_input()], headers=gw.headers)
        text = (await gw.http.get("/metrics")).text
        assert (
            'tensorgate_inference_requests_total{model="echo",protocol="grpc",status="200",'
            'version="1"} 1.0'
        ) in text
        assert (
            'tensorgate_inference_requests_total{model="(unknown)",protocol="grpc",'
            'status="404",version=""} 1.0'
        ) in text


async def test_standard_health_service_serves(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw, grpc.aio.insecure_channel(gw.url) as channel:
        # typeshed types the stub for a sync channel only: its methods are looked up here.
        check = health_pb2_grpc.HealthStub(channel).Check  # type: ignore[attr-defined]
        for service in ("", "inference.GRPCInferenceService"):
            answer = await check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


class BreakingLoader(FakeLoader):
    """Fails to load the model ``broken`` while ``broken`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def __call__(self, path: Path, options: Any, label: str) -> Any:
        if self.broken and path.parent.parent.name == "broken":
            raise RuntimeError("a broken model file")
        return super().__call__(path, options, label)


async def test_health_follows_readiness(tmp_path: Path) -> None:
    loader = BreakingLoader()
    settings = make_settings(repository(tmp_path), grpc=GrpcSettings(port=free_port()))
    app = create_app(settings, loader=loader, transports=grpc_server)
    async with (
        LifespanManager(app),
        grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc.port}") as channel,
    ):
        check = health_pb2_grpc.HealthStub(channel).Check  # type: ignore[attr-defined]
        client = triton.InferenceServerClient(f"127.0.0.1:{settings.grpc.port}")
        headers = {"authorization": bearer(settings)}

        async def until(status: int) -> None:
            for _ in range(200):
                answer = await check(health_pb2.HealthCheckRequest(service=""))
                if answer.status == status:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"health never became {status}")

        try:
            await until(health_pb2.HealthCheckResponse.SERVING)
            (tmp_path / "broken" / "1").mkdir(parents=True)
            (tmp_path / "broken" / "1" / "model.onnx").write_bytes(b"fake")
            with pytest.raises(InferenceServerException, match="failed to load 'broken'"):
                await client.load_model("broken", headers=headers)
            # Every model of the repository must be ready (the default): one is not.
            await until(health_pb2.HealthCheckResponse.NOT_SERVING)
            assert not await client.is_server_ready()
            loader.broken = False
            await client.load_model("broken", headers=headers)
            await until(health_pb2.HealthCheckResponse.SERVING)
            assert await client.is_server_ready()
        finally:
            await client.close()


async def test_a_stream_without_a_valid_token_is_refused_with_its_code(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:

        async def requests() -> AsyncIterator[dict[str, Any]]:
            yield {"model_name": "echo", "inputs": [echo_input()]}

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in gw.client.stream_infer(
                requests(), headers={"authorization": "Bearer nope"}
            ):
                pass
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "token is not a JWT" in str(caught.value.details())


async def test_version_labels_and_the_traffic_split_apply(tmp_path: Path) -> None:
    for version in (1, 2):
        (tmp_path / "m" / str(version)).mkdir(parents=True)
        (tmp_path / "m" / str(version) / "model.onnx").write_bytes(b"fake")
    (tmp_path / "m" / "config.yaml").write_text(
        "version_labels: {stable: 1, canary: 2}\ntraffic:\n  split: {stable: 50, canary: 50}\n"
    )
    settings = make_settings(tmp_path, grpc=GrpcSettings(port=free_port()))
    app = create_app(settings, loader=FakeLoader(), transports=grpc_server)
    async with LifespanManager(app):
        client = triton.InferenceServerClient(f"127.0.0.1:{settings.grpc.port}")
        headers = {"authorization": bearer(settings)}
        try:
            labelled = await client.infer(
                "m", [echo_input()], model_version="canary", headers=headers
            )
            assert labelled.get_response().model_version == "2"
            answers = await asyncio.gather(
                *(client.infer("m", [echo_input()], headers=headers) for _ in range(40))
            )
            # Unversioned calls follow the split: both versions answer some of 40.
            assert {a.get_response().model_version for a in answers} == {"1", "2"}
        finally:
            await client.close()
