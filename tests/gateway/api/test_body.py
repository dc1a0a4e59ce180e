"""The request body: 413 from Content-Length before reading and while reading chunks; a
client that leaves mid-body."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import Message

from gateway.api.app import create_app
from gateway.api.body import ClientDisconnected, check_declared_length, read_body
from gateway.errors import InvalidInput, PayloadTooLarge
from support.app import bearer, make_settings, open_client, post_scope

LIMIT = 4096


@pytest.fixture
async def capped(repository: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(make_settings(repository, max_request_body_bytes=LIMIT)) as http:
        yield http


# Both inference routes are answered by the one pipeline (InferenceEndpoint); both
# enforce the same cap with the same answers.
ROUTES = pytest.mark.parametrize("path", ["/v2/models/digits/infer", "/models/digits/predict"])


@ROUTES
async def test_declared_length_over_the_cap_is_413(capped: httpx.AsyncClient, path: str) -> None:
    response = await capped.post(path, content=b" " * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json() == {
        "error": f"request body too large: Content-Length {LIMIT + 1} bytes exceeds the "
        f"limit of {LIMIT} bytes"
    }


@ROUTES
async def test_chunked_body_is_cut_at_the_cap(capped: httpx.AsyncClient, path: str) -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            sent.append(1024)
            yield b" " * 1024

    response = await capped.post(path, content=chunks())
    assert response.status_code == 413
    assert "exceeds the limit of 4096 bytes" in response.json()["error"]
    assert sum(sent) <= LIMIT + 1024  # reading stopped at the cap


async def test_body_at_the_cap_is_read(capped: httpx.AsyncClient) -> None:
    body = b'{"inputs": []}'.ljust(LIMIT)
    response = await capped.post("/v2/models/digits/infer", content=body)
    assert response.status_code == 400
    assert "at least 1 item" in response.json()["error"]


@ROUTES
async def test_malformed_content_length_is_400(capped: httpx.AsyncClient, path: str) -> None:
    response = await capped.post(path, content=b"{}", headers={"content-length": "-5"})
    assert response.status_code == 400
    assert "Content-Length" in response.json()["error"]


async def test_read_body_raises_client_disconnected_when_the_client_leaves_mid_body() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"inp', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    with pytest.raises(ClientDisconnected):
        await read_body(receive, LIMIT)


async def test_read_body_raises_client_disconnected_when_the_client_left_before_it() -> None:
    async def receive() -> Message:
        return {"type": "http.disconnect"}

    with pytest.raises(ClientDisconnected):
        await read_body(receive, LIMIT)


@pytest.mark.hostile
@ROUTES
async def test_a_client_leaving_mid_body_is_499_without_an_error_logged(
    repository: Path, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 10, item 12: nothing is sent, nothing is logged at ERROR, and the request is
    counted as 499 (client closed request), not as a 4xx or 5xx answer."""
    settings = make_settings(repository)
    app = create_app(settings)
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"inputs": {"pix', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    async with LifespanManager(app) as manager:
        await asyncio.wait_for(manager.app(post_scope(path, bearer(settings)), receive, send), 10)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            metrics = (await http.get("/metrics")).text
    assert sent == []
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert (
        'tensorgate_inference_requests_total{model="digits",protocol="http",'
        'status="499",version="1"} 1.0' in metrics
    )
    assert 'status="400"' not in metrics


@pytest.mark.parametrize(
    ("declared", "error"),
    [
        ("\u00b9", InvalidInput),  # isdigit() says yes, int() raises: was a 500
        ("12a", InvalidInput),
        ("1" * 5000, PayloadTooLarge),  # past int()'s 4,300-digit limit: was a 500
        ("1025", PayloadTooLarge),
        ("0001024", None),
        ("0", None),
    ],
)
def test_a_declared_length_is_ascii_digits_checked_without_converting_huge_ones(
    declared: str, error: type[Exception] | None
) -> None:
    scope = {"headers": [(b"content-length", declared.encode())]}
    if error is None:
        check_declared_length(scope, 1024)
    else:
        with pytest.raises(error):
            check_declared_length(scope, 1024)
