"""Shared fixtures: a model repository, settings with the tests' secret, an in-process client."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.settings import Settings
from support.app import make_settings, open_client
from support.onnx_models import adder_model, fixed_shape_model, identity_model, write_model
from support.paths import DEMO_MODELS


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
