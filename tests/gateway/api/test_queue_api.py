"""The inference routes with the queue: 504, 503 + Retry-After, 500, disconnects, guard."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from gateway.api.app import create_app
from gateway.auth.principal import MODELS_INFER
from support.app import bearer, make_settings, post_scope
from support.fake_backend import FakeLoader

GUARD_S = 10  # hang guard only


def body(tag: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [tag] * 4}],
        **extra,
    }


TYPED_BODY = {"inputs": {"x": [[7.0] * 4]}}  # the same echo model, on its typed route


def repository(tmp_path: Path, config: str, names: tuple[str, ...] = ("echo",)) -> Path:
    for name in names:
        (tmp_path / name / "1").mkdir(parents=True)
        (tmp_path / name / "1" / "model.onnx").write_bytes(b"fake")
        (tmp_path / name / "config.yaml").write_text(config)
    return tmp_path


@pytest.fixture
def fakes() -> FakeLoader:
    """The loader of every test's app: one FakeBackend per model, kept by name."""
    return FakeLoader()


@asynccontextmanager
async def started(
    app: FastAPI, authorization: str | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Callable[..., Any]]]:
    headers = {"Authorization": authorization or bearer(app.state.settings)}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=headers
        ) as client:
            yield client, manager.app


def make_app(tmp_path: Path, fakes: FakeLoader, config: str, **kwargs: Any) -> FastAPI:
    settings = make_settings(repository(tmp_path, config, ("echo", "other")))
    app = create_app(settings, fakes, **kwargs)
    app.state.settings = settings  # for minting the tests' tokens
    return app


async def test_expired_before_its_batch_starts_is_504_and_never_run(
    tmp_path: Path, fakes: FakeLoader
) -> None:
    ticks = itertools.count()  # every clock reading is one second after the previous one
    app = make_app(tmp_path, fakes, "{}", clock=lambda: float(next(ticks)))
    async with started(app) as (client, _):
        url = "/v2/models/echo/infer"
        timeout_header = {"X-Request-Timeout-Ms": "0.5"}
        by_param = await client.post(url, json=body(parameters={"timeout": 1}))
        by_header = await client.post(url, json=body(), headers=timeout_header)
        # The typed route has no parameters: the header is its way to set a deadline.
        typed = await client.post("/models/echo/predict", json=TYPED_BODY, headers=timeout_header)
        for response in (by_param, by_header, typed):
            assert response.status_code == 504
            assert "deadline passed" in response.json()["error"]
        assert fakes.backends["echo"].batches == []
        metrics = (await client.get("/metrics")).text
        assert 'tensorgate_expired_total{model="echo",version="1"} 3.0' in metrics


async def test_bad_timeouts_are_400(tmp_path: Path, fakes: FakeLoader) -> None:
    app = make_app(tmp_path, fakes, "{}")
    async with started(app) as (client, _):
        url = "/v2/models/echo/infer"
        response = await client.post(url, json=body(parameters={"timeout": -3}))
        assert response.status_code == 400
        assert "microseconds" in response.json()["error"]
        soon = {"X-Request-Timeout-Ms": "soon"}
        for path, document in ((url, body()), ("/models/echo/predict", TYPED_BODY)):
            response = await client.post(path, json=document, headers=soon)
            assert response.status_code == 400
            assert "X-Request-Timeout-Ms" in response.json()["error"]
        assert fakes.backends["echo"].batches == []


async def test_full_queue_is_503_with_retry_after_and_others_still_served(
    tmp_path: Path, fakes: FakeLoader
) -> None:
    config = "batching: {max_queue_size: 1, max_batch_size: 1}\n"
    app = make_app(tmp_path, fakes, config)
    async with started(app) as (client, _):
        echo = fakes.backends["echo"]
        echo.hold = True
        url = "/v2/models/echo/infer"
        running = asyncio.ensure_future(client.post(url, json=body(1)))
        await echo.started.wait()
        # Queue holds one: of two more requests one waits and the other is refused at once.
        contenders = {asyncio.ensure_future(client.post(url, json=body(t))) for t in (2, 3)}
        done, waiting = await asyncio.wait(contenders, return_when=asyncio.FIRST_COMPLETED)
        refused = done.pop().result()
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert "overloaded" in refused.json()["error"]
        other = await client.post("/v2/models/other/infer", json=body(5))
        assert other.status_code == 200  # another model is untouched
        echo.release.set()
        assert (await running).status_code == 200
        assert (await waiting.pop()).status_code == 200
        assert echo.batch_sizes == [1, 1]
        metrics = (await client.get("/metrics")).text
        assert 'tensorgate_rejected_total{model="echo",version="1"} 1.0' in metrics


async def test_failed_batch_is_500_naming_the_model_and_the_batcher_keeps_serving(
    tmp_path: Path, fakes: FakeLoader
) -> None:
    app = make_app(tmp_path, fakes, "{}")
    async with started(app) as (client, _):
        fakes.backends["echo"].fail_when = [13.0]
        failed = await client.post("/v2/models/echo/infer", json=body(13))
        assert failed.status_code == 500
        assert failed.json() == {"error": "inference failed in model 'echo' version 1 (Fail)"}
        ok = await client.post("/v2/models/echo/infer", json=body(2))
        assert ok.status_code == 200
        assert ok.json()["outputs"][0]["data"] == [2.0] * 4


async def test_rows_beyond_max_batch_size_are_split(tmp_path: Path, fakes: FakeLoader) -> None:
    app = make_app(tmp_path, fakes, "batching: {max_batch_size: 2}\n")
    async with started(app) as (client, _):
        data = [float(i) for i in range(20)]
        request = {"inputs": [{"name": "x", "shape": [5, 4], "datatype": "FP32", "data": data}]}
        response = await client.post("/v2/models/echo/infer", json=request)
        assert response.status_code == 200
        outputs = {out["name"]: out for out in response.json()["outputs"]}
        assert outputs["y"]["shape"] == [5, 4]
        assert outputs["y"]["data"] == data
        assert fakes.backends["echo"].batch_sizes == [2, 2, 1]


@pytest.mark.parametrize(
    ("path", "document"),
    [("/v2/models/echo/infer", body(7)), ("/models/echo/predict", TYPED_BODY)],
    ids=["protocol", "typed"],
)
async def test_a_client_that_disconnects_is_removed_from_the_queue(
    tmp_path: Path, fakes: FakeLoader, path: str, document: dict[str, Any]
) -> None:
    app = make_app(tmp_path, fakes, "{}")
    async with started(app) as (client, asgi):
        echo = fakes.backends["echo"]
        echo.hold = True
        running = asyncio.ensure_future(client.post("/v2/models/echo/infer", json=body(1)))
        await echo.started.wait()
        queued, gone = asyncio.Event(), asyncio.Event()
        payload = httpx.Request("POST", "http://x", json=document).content
        calls = 0
        sent: list[Mapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": payload, "more_body": False}
            queued.set()  # asked again: the request is queued, its watcher is listening
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            sent.append(message)

        scope = post_scope(path, bearer(app.state.settings))
        abandoned = asyncio.ensure_future(asgi(scope, receive, send))
        await asyncio.wait_for(queued.wait(), GUARD_S)
        gone.set()
        await asyncio.wait_for(abandoned, GUARD_S)
        echo.release.set()
        assert (await running).status_code == 200
        assert [float(b[0, 0]) for b in echo.batches] == [1.0]  # 7 was never computed
        # Both routes answer a vanished client alike: nothing sent, a 499 recorded.
        assert sent == []
        metrics = (await client.get("/metrics")).text
        assert (
            'tensorgate_inference_requests_total{model="echo",protocol="http",'
            'status="499",version="1"} 1.0' in metrics
        )


async def test_credentials_are_checked_before_the_body_is_read(
    tmp_path: Path, fakes: FakeLoader
) -> None:
    app = make_app(tmp_path, fakes, "{}")
    settings = app.state.settings
    async with started(app) as (client, _):
        url = "/v2/models/echo/versions/1/infer"
        missing = await client.post(url, json=body(), headers={"Authorization": ""})
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith('Bearer realm="tensorgate"')
        forged = await client.post(url, json=body(), headers={"Authorization": "Bearer a.b.c"})
        assert forged.status_code == 401
        other_only = bearer(settings, scopes=(f"{MODELS_INFER}:other",))
        refused = await client.post(url, json=body(), headers={"Authorization": other_only})
        assert refused.status_code == 403
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
        echo_only = bearer(settings, scopes=(f"{MODELS_INFER}:echo",))
        allowed = await client.post(url, json=body(), headers={"Authorization": echo_only})
        assert allowed.status_code == 200
        assert fakes.backends["echo"].batch_sizes == [1]  # refused requests cost no work
        assert fakes.backends["other"].batches == []
        made_up = await client.post(
            "/v2/models/made-up-1/infer", json=body(), headers={"Authorization": ""}
        )
        assert made_up.status_code == 401
        metrics = (await client.get("/metrics")).text
        # Names that are not models share one label, so clients cannot grow the series.
        assert (
            'tensorgate_inference_requests_total{model="(unknown)",protocol="http",'
            'status="401",version=""} 1.0' in metrics
        )
        assert (
            'tensorgate_inference_requests_total{model="echo",protocol="http",'
            'status="403",version=""} 1.0' in metrics
        )


async def test_other_methods_and_paths_still_reach_fastapi(
    tmp_path: Path, fakes: FakeLoader
) -> None:
    app = make_app(tmp_path, fakes, "{}")
    async with started(app) as (client, _):
        assert (await client.get("/v2/models/echo/infer")).status_code == 405
        assert (await client.post("/v2/models/echo/versions//infer")).status_code == 404
        document = (await client.get("/openapi.json")).json()
        responses = document["paths"]["/v2/models/{model_name}/infer"]["post"]["responses"]
        assert {"400", "404", "413", "500", "503", "504"} <= set(responses)
        assert "Retry-After" in responses["503"]["headers"]
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert "tensorgate_queue_depth" in metrics.text
        assert "http_requests_total" in metrics.text


async def test_body_limit_applies_to_the_inference_endpoint(
    tmp_path: Path, fakes: FakeLoader
) -> None:
    settings = make_settings(repository(tmp_path, "{}"), max_request_body_bytes=1024)
    app = create_app(settings, fakes)
    async with started(app, bearer(settings)) as (client, _):
        big = body(parameters={"padding": "x" * 2000})
        response = await client.post("/v2/models/echo/infer", json=big)
        assert response.status_code == 413
        assert "exceeds the limit of 1024 bytes" in response.json()["error"]

        async def chunks() -> AsyncIterator[bytes]:
            yield b"{" * 700  # no Content-Length: the limit counts bytes as they arrive
            yield b" " * 700

        streamed = await client.post("/v2/models/echo/infer", content=chunks())
        assert streamed.status_code == 413
        assert fakes.backends["echo"].batches == []
