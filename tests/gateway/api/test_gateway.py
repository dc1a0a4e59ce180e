"""The ASGI entry: a request the server cancels at the end of the shutdown grace period is
answered 503, on FastAPI's side as on the pipeline's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from starlette.types import Message

from gateway.api.app import create_app
from support.app import bearer, make_settings, post_scope
from support.fake_backend import FakeLoader

pytestmark = pytest.mark.hostile  # SIGTERM with in-flight clients

GUARD_S = 10  # hang guard only


async def test_a_fastapi_request_cancelled_before_answering_is_503_and_closes(
    repository: Path,
) -> None:
    app = create_app(make_settings(repository))
    entered = asyncio.Event()

    async def hang() -> None:
        entered.set()
        await asyncio.Event().wait()

    app.add_api_route("/hang", hang, methods=["POST"])
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async with LifespanManager(app) as manager:
        request = asyncio.ensure_future(manager.app(post_scope("/hang", ""), receive, send))
        await asyncio.wait_for(entered.wait(), GUARD_S)
        request.cancel()  # what uvicorn does when the grace period ends
        await asyncio.wait_for(request, GUARD_S)
    assert sent[0]["status"] == 503
    assert (b"connection", b"close") in sent[0]["headers"]
    assert sent[1]["body"] == b'{"error":"the server is shutting down"}'


async def test_a_queued_inference_cancelled_at_the_end_of_the_grace_is_503_and_withdrawn(
    tmp_path: Path,
) -> None:
    (tmp_path / "echo" / "1").mkdir(parents=True)
    (tmp_path / "echo" / "1" / "model.onnx").write_bytes(b"fake")
    (tmp_path / "echo" / "config.yaml").write_text("batching: {max_batch_size: 1}\n")
    settings = make_settings(tmp_path)
    echo = FakeLoader()
    app = create_app(settings, echo)
    payload = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}'
    path, token = "/v2/models/echo/infer", bearer(settings)

    def receiver(listening: asyncio.Event) -> Any:
        reads: list[None] = []

        async def receive() -> Message:
            reads.append(None)
            if len(reads) == 1:
                return {"type": "http.request", "body": payload, "more_body": False}
            listening.set()  # asked again: the request waits, its disconnect watch listens
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        return receive

    async with LifespanManager(app) as manager:
        backend = echo.backends["echo"]
        backend.hold = True
        first_sent: list[Message] = []
        first = asyncio.ensure_future(
            manager.app(post_scope(path, token), receiver(asyncio.Event()), _into(first_sent))
        )
        await asyncio.wait_for(backend.started.wait(), GUARD_S)
        queued = asyncio.Event()
        sent: list[Message] = []
        second = asyncio.ensure_future(
            manager.app(post_scope(path, token), receiver(queued), _into(sent))
        )
        await asyncio.wait_for(queued.wait(), GUARD_S)
        second.cancel()  # what uvicorn does when the grace period ends
        try:
            await asyncio.wait_for(second, GUARD_S)
        finally:
            backend.release.set()
            await asyncio.wait_for(first, GUARD_S)
    assert sent[0]["status"] == 503
    assert (b"connection", b"close") in sent[0]["headers"]
    assert first_sent[0]["status"] == 200
    assert backend.batch_sizes == [1]  # the cancelled one was withdrawn, never computed


def _into(sent: list[Message]) -> Any:
    async def send(message: Message) -> None:
        sent.append(message)

    return send
