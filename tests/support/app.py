"""In-process gateways: settings signed with the tests' secret, tokens for them, ASGI clients."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from backends.onnxruntime import OnnxRuntimeBackend
from gateway.api.app import create_app
from gateway.auth.minting import mint_token, signing_key
from gateway.auth.principal import ADMIN, METRICS_READ, MODELS_INFER, MODELS_READ
from gateway.repository.registry import BackendLoader
from gateway.settings import AuthSettings, Settings

TEST_SECRET = secrets.token_urlsafe(48)
ALL_SCOPES = (MODELS_READ, MODELS_INFER, METRICS_READ, ADMIN)


def make_settings(repository: Path, **overrides: Any) -> Settings:
    """Settings for ``repository`` with auth on, signed by the tests' own secret."""
    auth = AuthSettings(secret=SecretStr(TEST_SECRET))
    return Settings(model_repository=repository, auth=auth, **overrides)


def bearer(settings: Settings, scopes: tuple[str, ...] = ALL_SCOPES, subject: str = "tests") -> str:
    """An ``Authorization`` header value with a fresh token for ``settings``' key, valid an
    hour: e2e modules mint theirs at import, and a loaded machine's run takes over 20 min."""
    token = mint_token(signing_key(settings.auth), subject=subject, scopes=scopes, ttl_s=3600)
    return f"Bearer {token}"


@asynccontextmanager
async def open_client(
    settings: Settings, loader: BackendLoader = OnnxRuntimeBackend.load
) -> AsyncIterator[httpx.AsyncClient]:
    """A client talking to a fresh app through ASGI with its lifespan running and a token."""
    app = create_app(settings, loader=loader)
    headers = {"Authorization": bearer(settings)} if settings.auth.enabled else {}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=headers
        ) as http:
            yield http


def post_scope(path: str, authorization: str) -> dict[str, Any]:
    """The ASGI scope of ``POST path`` with a JSON body and this ``Authorization``, for
    tests that drive the app's ``receive`` and ``send`` themselves."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"authorization", authorization.encode()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
