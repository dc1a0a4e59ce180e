"""The request body cap: 413 from Content-Length before reading, and while reading chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from support.app import make_settings, open_client

LIMIT = 4096


@pytest.fixture
async def capped(repository: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(make_settings(repository, max_request_body_bytes=LIMIT)) as http:
        yield http


# The protocol route is served by InferenceEndpoint, the typed one by FastAPI behind
# BodyLimitMiddleware: both enforce the same cap with the same answers.
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
