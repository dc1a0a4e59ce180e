"""Shared fixtures: model repositories and an in-process client with the app's lifespan."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.api.app import create_app
from gateway.settings import Settings
from onnx_models import adder_model, fixed_shape_model, identity_model, write_model

ROOT = Path(__file__).resolve().parent.parent
DEMO_MODELS = ROOT / "models"

ClientFactory = Callable[..., AsyncIterator[httpx.AsyncClient]]


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
    return Settings(model_repository=repository)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app through ASGI, lifespan running."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http
