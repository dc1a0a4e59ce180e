"""Poll mode: settled changes to the repository are loaded, half-copied files never are.

Each test calls ``poll()`` itself between file changes, so the order of events is exact;
``run()``'s timer is tested apart.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from backends.base import Backend, RuntimeOptions
from backends.onnxruntime import OnnxRuntimeBackend
from gateway.repository.polling import RepositoryWatcher
from gateway.repository.registry import ModelRegistry, VersionState
from support.paths import DEMO_MODELS

DIGITS = DEMO_MODELS / "digits" / "1" / "model.onnx"
GUARD_S = 10


class CountingLoader:
    """ONNX Runtime's loader, counting successful loads by (model, version)."""

    def __init__(self) -> None:
        self.loaded: list[tuple[str, int]] = []

    def __call__(self, path: Path, options: RuntimeOptions, label: str) -> Backend:
        backend = OnnxRuntimeBackend.load(path, options, label)
        self.loaded.append((path.parent.parent.name, int(path.parent.name)))
        return backend


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "digits" / "1").mkdir(parents=True)
    shutil.copy(DIGITS, tmp_path / "digits" / "1" / "model.onnx")
    return tmp_path


async def started(repo: Path) -> tuple[ModelRegistry, RepositoryWatcher, CountingLoader]:
    loader = CountingLoader()
    registry = ModelRegistry(loader)
    watcher = RepositoryWatcher(registry, repo, interval_s=60)
    await watcher.baseline()
    await registry.load_repository(repo)
    return registry, watcher, loader


async def test_a_file_copied_in_slowly_is_loaded_once_when_complete(repo: Path) -> None:
    registry, watcher, loader = await started(repo)
    data = DIGITS.read_bytes()
    target = repo / "digits" / "2" / "model.onnx"
    target.parent.mkdir()
    chunk = len(data) // 5 + 1
    with target.open("wb") as copy:
        for start in range(0, len(data), chunk):
            copy.write(data[start : start + chunk])
            copy.flush()
            assert await watcher.poll() == []  # still changing: not acted on
    assert await watcher.poll() == ["digits"]  # unchanged since the last poll: settled
    assert registry.resolve("digits", None).version == 2
    assert await watcher.poll() == []
    assert loader.loaded == [("digits", 1), ("digits", 2)]
    await registry.close()


async def test_a_changed_version_is_reloaded_and_the_others_keep_serving(repo: Path) -> None:
    (repo / "digits" / "2").mkdir()
    shutil.copy(DIGITS, repo / "digits" / "2" / "model.onnx")
    registry, watcher, loader = await started(repo)
    first = registry.resolve("digits", "1").backend
    (repo / "digits" / "2" / "model.onnx").write_bytes(DIGITS.read_bytes())  # new mtime
    assert await watcher.poll() == []
    assert await watcher.poll() == ["digits"]
    assert loader.loaded == [("digits", 1), ("digits", 2), ("digits", 2)]
    assert registry.resolve("digits", "1").backend is first
    await registry.close()


async def test_a_corrupt_version_never_serves_and_the_index_says_why(repo: Path) -> None:
    registry, watcher, _ = await started(repo)
    (repo / "digits" / "3").mkdir()
    (repo / "digits" / "3" / "model.onnx").write_bytes(b"not a model")
    assert await watcher.poll() == []
    assert await watcher.poll() == ["digits"]
    corrupt = registry.find("digits", "3")
    assert corrupt.state is VersionState.FAILED
    assert corrupt.reason
    assert registry.resolve("digits", None).version == 1
    await registry.close()


async def test_new_and_removed_model_directories_are_loaded_and_unloaded(repo: Path) -> None:
    registry, watcher, _ = await started(repo)
    (repo / "other" / "1").mkdir(parents=True)
    shutil.copy(DIGITS, repo / "other" / "1" / "model.onnx")
    assert await watcher.poll() == []
    assert await watcher.poll() == ["other"]
    assert registry.resolve("other", None).ready
    shutil.rmtree(repo / "other")
    assert await watcher.poll() == []
    assert await watcher.poll() == ["other"]
    assert not registry.knows("other")
    assert registry.resolve("digits", None).ready
    await registry.close()


async def test_a_broken_config_leaves_the_model_serving(repo: Path) -> None:
    registry, watcher, _ = await started(repo)
    (repo / "digits" / "config.yaml").write_text("batching: [oops\n")
    await watcher.poll()
    assert await watcher.poll() == ["digits"]
    assert registry.resolve("digits", None).ready
    problem = registry.entry("digits").problem
    assert problem is not None
    assert "cannot read YAML" in problem
    await registry.close()


async def test_run_keeps_polling_after_a_failed_poll(
    repo: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registry = ModelRegistry(CountingLoader())
    watcher = RepositoryWatcher(registry, repo, interval_s=0.001)
    polls: list[int] = []
    twice = asyncio.Event()

    async def failing_poll() -> list[str]:
        polls.append(1)
        if len(polls) >= 2:
            twice.set()
        raise OSError("disk went away")

    monkeypatch.setattr(watcher, "poll", failing_poll)
    task = asyncio.create_task(watcher.run())
    await asyncio.wait_for(twice.wait(), GUARD_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "polling the model repository" in caplog.text
    await registry.close()
