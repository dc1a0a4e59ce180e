"""Shared fixtures: model repositories, settings with a test secret, in-process clients."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from backends.onnxruntime import OnnxRuntimeBackend
from gateway.api.app import create_app
from gateway.auth.minting import mint_token, signing_key
from gateway.auth.principal import ADMIN, METRICS_READ, MODELS_INFER, MODELS_READ
from gateway.repository.registry import BackendLoader
from gateway.settings import AuthSettings, Settings
from onnx_models import adder_model, fixed_shape_model, identity_model, write_model

ROOT = Path(__file__).resolve().parent.parent
DEMO_MODELS = ROOT / "models"
TEST_SECRET = secrets.token_urlsafe(48)
ALL_SCOPES = (MODELS_READ, MODELS_INFER, METRICS_READ, ADMIN)

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def make_settings(repository: Path, **overrides: object) -> Settings:
    """Settings for ``repository`` with auth on, signed by the tests' own secret."""
    auth = AuthSettings(secret=SecretStr(TEST_SECRET))
    return Settings(model_repository=repository, auth=auth, **overrides)  # type: ignore[arg-type]


def bearer(settings: Settings, scopes: tuple[str, ...] = ALL_SCOPES, subject: str = "tests") -> str:
    """An ``Authorization`` header value with a fresh token for ``settings``' key."""
    token = mint_token(signing_key(settings.auth), subject=subject, scopes=scopes, ttl_s=600)
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


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A repository with copies of the demo models plus small test models."""
    root = tmp_path / "models"
    shutil.copytree(DEMO_MODELS, root)
    write_model(root, "identity", identity_model())
    write_model(root, "adder", adder_model())
    write_model(root, "fixed", fixed_shape_model())
    return root


@pytest.fixture
def settings(repository: Path) -> Settings:
    """Settings pointing at the test repository."""
    return make_settings(repository)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client with an all-scopes token, lifespan running."""
    async with open_client(settings) as http:
        yield http
