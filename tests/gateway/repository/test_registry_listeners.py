"""Registry listeners hear about every load, failed load and unload, and cannot break them."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.base import Backend, RuntimeOptions
from backends.errors import ModelLoadError
from gateway.repository.config import ModelConfig
from gateway.repository.registry import ModelRegistry, ModelVersion, VersionState
from gateway.repository.scanning import read_model
from support.fake_backend import FakeBackend


def _loader(path: Path, options: RuntimeOptions, label: str) -> Backend:
    if path.name == "broken.onnx":
        raise ModelLoadError(f"{label}: cannot parse")
    return FakeBackend()


async def test_listeners_see_loads_failures_and_unloads_in_order() -> None:
    registry = ModelRegistry(_loader)
    seen: list[tuple[str, int, VersionState, bool]] = []

    def listener(version: ModelVersion) -> None:
        # The registry has already changed when a listener runs.
        known = (
            version.name in registry.names()
            and version.version in registry.entry(version.name).versions
        )
        seen.append((version.name, version.version, version.state, known))

    registry.add_listener(listener)
    await registry.load_version("a", 1, Path("model.onnx"), ModelConfig())
    await registry.load_version("a", 2, Path("broken.onnx"), ModelConfig())
    await registry.unload_version("a", 1)
    assert seen == [
        ("a", 1, VersionState.READY, True),
        ("a", 2, VersionState.FAILED, True),
        ("a", 1, VersionState.UNLOADING, False),
    ]


async def test_a_removed_listener_hears_nothing_more() -> None:
    registry = ModelRegistry(_loader)
    seen: list[int] = []
    remove = registry.add_listener(lambda version: seen.append(version.version))
    await registry.load_version("a", 1, Path("model.onnx"), ModelConfig())
    remove()
    await registry.load_version("a", 2, Path("model.onnx"), ModelConfig())
    assert seen == [1]


async def test_a_failing_listener_is_logged_and_loading_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ModelRegistry(_loader)
    seen: list[int] = []

    def broken(_: ModelVersion) -> None:
        raise RuntimeError("listener bug")

    registry.add_listener(broken)
    registry.add_listener(lambda version: seen.append(version.version))
    loaded = await registry.load_version("a", 1, Path("model.onnx"), ModelConfig())
    assert loaded.ready
    assert seen == [1]
    assert "registry listener" in caplog.text
    await registry.close()
    assert seen == [1, 1]


async def test_changed_limits_are_told_without_reloading_a_version(tmp_path: Path) -> None:
    (tmp_path / "a" / "1").mkdir(parents=True)
    (tmp_path / "a" / "1" / "model.onnx").write_bytes(b"fake")
    config = tmp_path / "a" / "config.yaml"
    config.write_text("limits: [{name: r, rate_per_s: 1}]\n")
    loads: list[str] = []

    def loader(path: Path, options: RuntimeOptions, label: str) -> Backend:
        loads.append(label)
        return FakeBackend()

    registry = ModelRegistry(loader)
    told: list[tuple[str, ...]] = []
    registry.add_listener(
        lambda version: told.append(tuple(r.name for r in registry.limit_rules(version.name)))
    )
    await registry.add_model(read_model(tmp_path / "a"))
    config.write_text("limits: [{name: r, rate_per_s: 1}, {name: s, concurrency: 2}]\n")
    await registry.add_model(read_model(tmp_path / "a"), changed_only=True)  # as polling does
    assert loads == ["a version 1"]  # the limits alone changed: nothing reloaded
    assert told == [("r",), ("r", "s")]
    assert registry.limit_rules("unknown") == ()
    await registry.close()
