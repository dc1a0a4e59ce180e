"""The ASGI entry: a request the server cancels at the end of the shutdown grace period is
answered 503, on FastAPI's side as on the pipeline's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from asgi_lifespan import LifespanManager
from starlette.types import Message

from gateway.api.app import create_app
from support.app import make_settings, post_scope

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
