"""Model lifecycle in the registry: warm-up before traffic, failed loads and warm-ups that
never serve, reloads of what changed only, labels, one slow load holding up no other."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from backends.base import RuntimeOptions
from backends.errors import InferenceError
from gateway.errors import ModelNotFound
from gateway.repository.registry import ModelRegistry, ModelVersion, VersionState
from gateway.repository.scanning import read_model
from support.fake_backend import FakeBackend, FakeLoader

GUARD_S = 10


def write_model(root: Path, name: str, *versions: int, config: str = "") -> Path:
    """``root/name/<v>/model.onnx`` (the fake loader never reads it) and a config."""
    for version in versions:
        (root / name / str(version)).mkdir(parents=True, exist_ok=True)
        (root / name / str(version) / "model.onnx").write_bytes(b"fake")
    (root / name / "config.yaml").write_text(config)
    return root / name


class FailingWarmupLoader(FakeLoader):
    """Backends of the versions in ``failing`` raise on their first call."""

    def __init__(self, failing: set[int]) -> None:
        super().__init__()
        self.failing = failing

    def __call__(self, path: Path, options: RuntimeOptions, label: str) -> FakeBackend:
        backend = super().__call__(path, options, label)
        if int(path.parent.name) in self.failing:
            backend.fail_next.append(InferenceError("kernel exploded", kind="Fail"))
        return backend


async def test_warm_up_runs_before_the_version_is_ready(tmp_path: Path) -> None:
    loader = FakeLoader()
    registry = ModelRegistry(loader)
    calls_when_ready: list[list[int]] = []

    def on_change(version: ModelVersion) -> None:
        if version.ready:
            calls_when_ready.append(loader.by_version[(version.name, version.version)].batch_sizes)

    registry.add_listener(on_change)
    directory = write_model(tmp_path, "m", 1, config="warmup: {runs: 2, batch_sizes: [1, 4]}\n")
    [loaded] = await registry.add_model(read_model(directory))
    assert loaded.ready
    assert calls_when_ready == [[1, 1, 4, 4]]
    await registry.close()


async def test_warm_up_inputs_come_from_npy_files(tmp_path: Path) -> None:
    loader = FakeLoader()
    registry = ModelRegistry(loader)
    directory = write_model(tmp_path, "m", 1, config="warmup: {inputs: {x: x.npy}}\n")
    sample = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(directory / "x.npy", sample)
    [loaded] = await registry.add_model(read_model(directory))
    assert loaded.ready
    np.testing.assert_array_equal(loader.by_version[("m", 1)].batches[0], sample)
    await registry.close()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"x.npy": np.zeros((2, 4), np.float64)}, "holds float64 [2, 4], the input takes float32"),
        ({"x.npy": np.zeros((2, 5), np.float32)}, "holds float32 [2, 5]"),
        ({}, "cannot read"),
    ],
)
async def test_bad_warm_up_files_fail_the_version(
    tmp_path: Path, files: dict[str, np.ndarray], message: str
) -> None:
    loader = FakeLoader()
    registry = ModelRegistry(loader)
    directory = write_model(tmp_path, "m", 1, config="warmup: {inputs: {x: x.npy}}\n")
    for name, array in files.items():
        np.save(directory / name, array)
    [loaded] = await registry.add_model(read_model(directory))
    assert loaded.state is VersionState.FAILED
    assert message in loaded.reason
    assert loader.by_version[("m", 1)].closed
    await registry.close()


async def test_a_version_whose_warm_up_fails_never_serves(tmp_path: Path) -> None:
    registry = ModelRegistry(FailingWarmupLoader({2}))
    directory = write_model(tmp_path, "m", 1, 2, config="warmup: {runs: 1}\n")
    await registry.add_model(read_model(directory))
    failed = registry.find("m", "2")
    assert failed.state is VersionState.FAILED
    assert "warm-up call with 1 row(s) failed" in failed.reason
    assert "kernel exploded" in failed.reason
    assert registry.resolve("m", None).version == 1
    assert registry.is_ready(require_all=True)  # a model is ready when one version is
    await registry.close()


async def test_a_reload_that_fails_its_warm_up_keeps_the_old_one_and_says_why(
    tmp_path: Path,
) -> None:
    loader = FailingWarmupLoader(set())
    registry = ModelRegistry(loader)
    directory = write_model(tmp_path, "m", 1, config="warmup: {runs: 1}\n")
    await registry.add_model(read_model(directory))
    serving = loader.by_version[("m", 1)]
    loader.failing.add(1)
    [attempt] = await registry.add_model(read_model(directory))
    assert attempt.state is VersionState.FAILED
    current = registry.resolve("m", "1")
    assert loader.by_version[("m", 1)] is not serving
    assert current.backend is serving
    assert current.reason.startswith("reload failed, the version loaded before serves:")
    await registry.close()


async def test_changed_only_reloads_only_versions_whose_files_changed(tmp_path: Path) -> None:
    loader = FakeLoader()
    registry = ModelRegistry(loader)
    directory = write_model(tmp_path, "m", 1, 2)
    await registry.add_model(read_model(directory))
    assert loader.loads == [("m", 1), ("m", 2)]
    await registry.add_model(read_model(directory), changed_only=True)
    assert loader.loads == [("m", 1), ("m", 2)]
    model_file = directory / "2" / "model.onnx"
    model_file.write_bytes(b"changed weights")
    await registry.add_model(read_model(directory), changed_only=True)
    assert loader.loads == [("m", 1), ("m", 2), ("m", 2)]
    # A routing change alone reloads nothing; a batching change reloads every version.
    (directory / "config.yaml").write_text("version_labels: {stable: 1}\n")
    await registry.add_model(read_model(directory), changed_only=True)
    assert registry.resolve("m", "stable").version == 1
    assert len(loader.loads) == 3
    (directory / "config.yaml").write_text("batching: {max_batch_size: 8}\n")
    await registry.add_model(read_model(directory), changed_only=True)
    assert loader.loads[3:] == [("m", 1), ("m", 2)]
    # Without changed_only (the repository API's load), every version is reloaded.
    await registry.add_model(read_model(directory))
    assert loader.loads[5:] == [("m", 1), ("m", 2)]
    os.utime(model_file, ns=(1, 1))
    await registry.add_model(read_model(directory), changed_only=True)
    assert loader.loads[7:] == [("m", 2)]
    await registry.close()


async def test_a_broken_config_keeps_the_serving_versions_and_reports_it(tmp_path: Path) -> None:
    registry = ModelRegistry(FakeLoader())
    directory = write_model(tmp_path, "m", 1)
    await registry.add_model(read_model(directory))
    (directory / "config.yaml").write_text("batching: {max_batch_size: -3}\n")
    assert await registry.add_model(read_model(directory), changed_only=True) == []
    assert registry.resolve("m", None).version == 1
    problem = registry.entry("m").problem
    assert problem is not None
    assert "max_batch_size" in problem
    await registry.close()


async def test_labels_name_versions_and_unknown_ones_say_what_exists(tmp_path: Path) -> None:
    registry = ModelRegistry(FakeLoader())
    config = "version_labels: {stable: 1, canary: 2, next: 3}\n"
    await registry.add_model(read_model(write_model(tmp_path, "m", 1, 2, config=config)))
    assert registry.resolve("m", "canary").version == 2
    with pytest.raises(ModelNotFound, match=r"version 3 is not found \(label 'next'\)"):
        registry.resolve("m", "next")
    with pytest.raises(ModelNotFound, match=r"or a label \(canary=2, next=3, stable=1\)"):
        registry.resolve("m", "beta")
    await registry.close()


class GatedLoader(FakeLoader):
    """Loading model ``slow`` blocks (in its loading thread) until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.slow_started = threading.Event()

    def __call__(self, path: Path, options: RuntimeOptions, label: str) -> FakeBackend:
        if path.parent.parent.name == "slow":
            self.slow_started.set()
            assert self.gate.wait(GUARD_S)
        return super().__call__(path, options, label)


async def test_a_slow_load_holds_up_no_other_model(tmp_path: Path) -> None:
    loader = GatedLoader()
    registry = ModelRegistry(loader)
    await registry.add_model(read_model(write_model(tmp_path, "fast", 1)))
    slow = asyncio.create_task(registry.add_model(read_model(write_model(tmp_path, "slow", 1))))
    assert await asyncio.to_thread(loader.slow_started.wait, GUARD_S)
    # While "slow" loads, "fast" serves and reloads, and the event loop is free.
    assert registry.resolve("fast", None).ready
    await asyncio.wait_for(registry.add_model(read_model(tmp_path / "fast")), GUARD_S)
    assert not slow.done()
    loader.gate.set()
    [loaded] = await asyncio.wait_for(slow, GUARD_S)
    assert loaded.ready
    await registry.close()
