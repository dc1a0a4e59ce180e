"""The protocol and typed inference routes are one pipeline: only the codec differs.

Admission before the body, request metrics, the answer to other methods, and the
inference operations declared for OpenAPI but never routed through FastAPI.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message

from gateway.api.app import create_app
from gateway.api.pipeline.endpoint import refusal_delay_s
from gateway.errors import Overloaded
from gateway.settings import Settings
from support.app import bearer, make_settings, post_scope
from support.fake_backend import FakeLoader

GUARD_S = 10  # hang guard only

PROTOCOL = ("/v2/models/echo/infer", b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32",'
            b'"data":[1,2,3,4]}]}')  # fmt: skip
TYPED = ("/models/echo/predict", b'{"inputs":{"x":[[1,2,3,4]]}}')
ROUTES = pytest.mark.parametrize(("path", "payload"), [PROTOCOL, TYPED], ids=["protocol", "typed"])


def echo_settings(tmp_path: Path, config: str, **overrides: Any) -> Settings:
    (tmp_path / "echo" / "1").mkdir(parents=True)
    (tmp_path / "echo" / "1" / "model.onnx").write_bytes(b"fake")
    (tmp_path / "echo" / "config.yaml").write_text(config)
    return make_settings(tmp_path, **overrides)


@asynccontextmanager
async def serving(
    settings: Settings, echo: FakeLoader
) -> AsyncIterator[tuple[httpx.AsyncClient, ASGIApp, list[BaseRoute]]]:
    app = create_app(settings, echo)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        headers = {"Authorization": bearer(settings)}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=headers
        ) as client:
            yield client, manager.app, app.router.routes


@ROUTES
async def test_a_full_queue_is_refused_before_the_body_is_read(
    tmp_path: Path, path: str, payload: bytes
) -> None:
    settings = echo_settings(tmp_path, "batching: {max_queue_size: 1, max_batch_size: 1}\n")
    echo = FakeLoader()
    async with serving(settings, echo) as (client, asgi, _):
        backend = echo.backends["echo"]
        backend.hold = True
        running = asyncio.ensure_future(client.post(path, content=payload))
        await asyncio.wait_for(backend.started.wait(), GUARD_S)

        # The queue's one place: a request whose body was read and that now waits.
        queued = asyncio.Event()
        first_reads: list[None] = []

        async def queued_receive() -> Message:
            first_reads.append(None)
            if len(first_reads) == 1:
                return {"type": "http.request", "body": payload, "more_body": False}
            queued.set()  # asked again: queued, its disconnect watch is listening
            await asyncio.Event().wait()  # never disconnects
            raise AssertionError("unreachable")

        waiting_sent: list[Mapping[str, Any]] = []
        waiting = asyncio.ensure_future(
            asgi(post_scope(path, bearer(settings)), queued_receive, _into(waiting_sent))
        )
        await asyncio.wait_for(queued.wait(), GUARD_S)

        # The refused one: its body must never be asked for.
        reads: list[None] = []

        async def refused_receive() -> Message:
            reads.append(None)
            return {"type": "http.request", "body": payload, "more_body": False}

        sent: list[Mapping[str, Any]] = []
        await asyncio.wait_for(
            asgi(post_scope(path, bearer(settings)), refused_receive, _into(sent)), GUARD_S
        )
        start = sent[0]
        assert start["status"] == 503
        assert (b"retry-after", b"1") in start["headers"]
        assert b"overloaded" in sent[1]["body"]
        assert reads == []

        backend.release.set()
        assert (await running).status_code == 200
        await asyncio.wait_for(waiting, GUARD_S)
        assert waiting_sent[0]["status"] == 200
        assert backend.batch_sizes == [1, 1]


def _into(sent: list[Mapping[str, Any]]) -> Any:
    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    return send


async def test_typed_requests_are_counted_in_the_request_metrics(tmp_path: Path) -> None:
    settings = echo_settings(tmp_path, "{}")
    async with serving(settings, FakeLoader()) as (client, _, _routes):
        assert (await client.post(TYPED[0], content=TYPED[1])).status_code == 200
        assert (await client.post(TYPED[0], content=b'{"inputs": {}}')).status_code == 400
        assert (await client.post(PROTOCOL[0], content=PROTOCOL[1])).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert (
        'tensorgate_inference_requests_total{model="echo",protocol="http",'
        'status="200",version="1"} 2.0' in metrics
    )
    assert (
        'tensorgate_inference_requests_total{model="echo",protocol="http",'
        'status="400",version="1"} 1.0' in metrics
    )
    assert 'tensorgate_inference_request_seconds_count{model="echo",version="1"} 3.0' in metrics


@ROUTES
async def test_other_methods_are_405_naming_post(tmp_path: Path, path: str, payload: bytes) -> None:
    settings = echo_settings(tmp_path, "{}")
    async with serving(settings, FakeLoader()) as (client, _, _routes):
        for method in ("GET", "PUT", "DELETE"):
            response = await client.request(method, path)
            assert response.status_code == 405
            assert response.headers["Allow"] == "POST"
            assert response.json() == {"error": "method not allowed on this route"}
        assert (await client.post(path, content=payload)).status_code == 200


async def test_inference_operations_are_declared_for_openapi_but_never_routed_by_fastapi(
    tmp_path: Path,
) -> None:
    settings = echo_settings(tmp_path, "{}")
    async with serving(settings, FakeLoader()) as (client, _, routes):
        document = (await client.get("/openapi.json")).json()
    declared = {"/v2/models/{model_name}/infer", "/models/echo/predict"}
    assert declared <= set(document["paths"])
    routed = {getattr(route, "path", "") for route in routes}
    assert not {path for path in routed if path.endswith(("/infer", "/predict"))}


@pytest.mark.parametrize(
    ("retry_after_s", "max_ms", "delay_s"),
    [(0.05, 100.0, 0.05), (1.0, 100.0, 0.1), (1.0, 0.0, 0.0), (0.001, 10_000.0, 0.001)],
)
def test_a_refusal_waits_out_the_drain_estimate_at_most_the_setting(
    retry_after_s: float, max_ms: float, delay_s: float
) -> None:
    refusal = Overloaded("full", retry_after_s=retry_after_s)
    assert refusal_delay_s(refusal, max_ms) == pytest.approx(delay_s)


async def test_a_refusal_is_held_back_before_it_is_sent(tmp_path: Path) -> None:
    # Fails before: the 503 went out at once, so a client ignoring Retry-After could spin
    # on refusals (bench/flood.py: batching off kept 24% of capacity under a flood).
    config = "batching: {max_queue_size: 1, max_batch_size: 1}\n"
    settings = echo_settings(tmp_path, config, refusal_pacing_max_ms=250.0)
    loader = FakeLoader()
    async with serving(settings, loader) as (client, _, _routes):
        backend = loader.backends["echo"]
        backend.hold = True
        path, payload = PROTOCOL
        running = asyncio.ensure_future(client.post(path, content=payload))
        await asyncio.wait_for(backend.started.wait(), GUARD_S)
        # The queue holds one: of two more requests one waits and the other is refused.
        sent = time.monotonic()
        contenders = {asyncio.ensure_future(client.post(path, content=payload)) for _ in "ab"}
        done, waiting = await asyncio.wait(contenders, return_when=asyncio.FIRST_COMPLETED)
        refused_after_s = time.monotonic() - sent
        refused = done.pop().result()
        backend.release.set()
        assert (await running).status_code == (await waiting.pop()).status_code == 200
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    # Nothing has drained yet, so the estimate is its default (1 s), capped by the setting.
    # A lower bound only: a sleep never ends early.
    assert refused_after_s >= 0.25
