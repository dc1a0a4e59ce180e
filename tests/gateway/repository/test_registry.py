"""The model registry: loading, failures, version resolution, readiness, unloading."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backends.onnxruntime import OnnxRuntimeBackend
from gateway.errors import GatewayError, InvalidInput, ModelNotFound, ModelNotReady
from gateway.repository.config import ModelConfig
from gateway.repository.registry import ModelRegistry, VersionState
from support.paths import DEMO_MODELS


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    for version in ("1", "2"):
        (root / "digits" / version).mkdir(parents=True)
        shutil.copy(DEMO_MODELS / "digits" / "1" / "model.onnx", root / "digits" / version)
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "model.onnx").write_bytes(b"corrupt")
    return root


async def test_broken_model_is_reported_and_others_serve(repo: Path) -> None:
    registry = ModelRegistry(OnnxRuntimeBackend.load)
    await registry.load_repository(repo)
    broken = registry.find("broken", "1")
    assert broken.state is VersionState.FAILED
    assert "could not load" in broken.reason
    assert registry.resolve("digits", None).version == 2
    with pytest.raises(ModelNotReady, match="broken"):
        registry.resolve("broken", None)
    assert not registry.is_ready(require_all=True)
    assert registry.is_ready(require_all=False)
    await registry.close()


async def test_version_resolution(repo: Path) -> None:
    registry = ModelRegistry(OnnxRuntimeBackend.load)
    await registry.load_repository(repo)
    assert registry.resolve("digits", "1").version == 1
    with pytest.raises(
        ModelNotFound,
        match=r"^Request for unknown model: 'digits' version 7 is not found; known versions: 1, 2",
    ):
        registry.resolve("digits", "7")
    with pytest.raises(
        ModelNotFound,  # the form of a label, undefined
        match=r"^failed to get model version from specified version string 'x': it is not a "
        r"version of model 'digits'",
    ):
        registry.resolve("digits", "x")
    with pytest.raises(InvalidInput, match=r"^failed to get model version .* '1\.5'"):
        registry.resolve("digits", "1.5")
    with pytest.raises(ModelNotFound, match=r"^Request for unknown model: 'nope' is not found$"):
        registry.resolve("nope", None)
    await registry.close()


@pytest.mark.parametrize(
    ("version", "shown", "error"),
    [
        ("01", "01", ModelNotFound),
        ("\uff11", "\\uff11", InvalidInput),  # fullwidth one
        ("\u0661", "\\u0661", InvalidInput),  # Arabic-Indic one
        ("\u00b9", "\\xb9", InvalidInput),  # superscript one: int() raised ValueError (a 500)
        ("1" * 5000, "1" * 32 + "...", ModelNotFound),  # past int()'s 4,300 digits: a 500 too
        ("0", "0", ModelNotFound),
        ("+1", "+1", InvalidInput),
        (" 1", " 1", InvalidInput),
        ("1\n", "1\\x0a", InvalidInput),
    ],
)
async def test_only_plain_ascii_versions_resolve(
    repo: Path, version: str, shown: str, error: type[GatewayError]
) -> None:
    # Fails before: "01", fullwidth and Arabic-Indic digits resolved to version 1, and the
    # superscript and the 5,000 digits raised ValueError. ASCII digits that name no version
    # are a 404; anything else is not a number, a 400 in Triton's words.
    registry = ModelRegistry(OnnxRuntimeBackend.load)
    await registry.load_repository(repo)
    with pytest.raises(error) as raised:
        registry.find("digits", version)
    expected = (
        f"Request for unknown model: 'digits' version '{shown}' is not found: '{shown}'"
        if error is ModelNotFound
        else f"failed to get model version from specified version string '{shown}': it"
    )
    assert raised.value.message.startswith(f"{expected} is not a version of model 'digits'")
    assert "a version is a positive whole number in ASCII digits" in raised.value.message
    await registry.close()


async def test_highest_ready_version_wins_and_unload_moves_traffic(repo: Path) -> None:
    registry = ModelRegistry(OnnxRuntimeBackend.load)
    await registry.load_repository(repo)
    await registry.unload_version("digits", 2)
    assert registry.resolve("digits", None).version == 1
    with pytest.raises(ModelNotFound):
        await registry.unload_version("digits", 2)
    await registry.unload_version("digits", 1)
    assert "digits" not in registry.names()
    await registry.close()


async def test_reloading_a_version_replaces_its_backend(repo: Path) -> None:
    registry = ModelRegistry(OnnxRuntimeBackend.load)
    await registry.load_repository(repo)
    old = registry.resolve("digits", "1").backend
    path = repo / "digits" / "1" / "model.onnx"
    fresh = await registry.load_version("digits", 1, path, ModelConfig())
    assert fresh.ready
    assert fresh.backend is not old
    await registry.close()


async def test_no_models_is_never_ready(tmp_path: Path) -> None:
    registry = ModelRegistry(OnnxRuntimeBackend.load)
    await registry.load_repository(tmp_path)
    assert not registry.is_ready(require_all=True)
    assert not registry.is_ready(require_all=False)
