"""Several workers as one server, in one event loop: each ``WorkerGroup`` has its own
registry (fake backends) and all share a run directory, as worker processes do."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from backends.base import RuntimeOptions
from backends.errors import ModelLoadError
from gateway.cluster.changes import CHANGES_FILE
from gateway.cluster.endpoint import socket_path
from gateway.cluster.group import WorkerGroup
from gateway.cluster.siblings import Siblings
from gateway.errors import ModelNotFound, WorkerSyncError
from gateway.repository.registry import ModelRegistry
from support.fake_backend import FakeBackend, FakeLoader

GUARD_S = 10


def write_model(root: Path, name: str, *versions: int) -> None:
    """``root/name/<v>/model.onnx`` (the fake loader never reads it)."""
    for version in versions:
        (root / name / str(version)).mkdir(parents=True, exist_ok=True)
        (root / name / str(version) / "model.onnx").write_bytes(b"fake")


class RefusingLoader(FakeLoader):
    """Fails to load the versions in ``refused``."""

    def __init__(self, refused: set[int]) -> None:
        super().__init__()
        self.refused = refused

    def __call__(self, path: Path, options: RuntimeOptions, label: str) -> FakeBackend:
        if int(path.parent.name) in self.refused:
            raise ModelLoadError("out of memory on purpose")
        return super().__call__(path, options, label)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_model(root, "m", 1)
    write_model(root, "n", 1)
    return root


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return directory


@contextlib.asynccontextmanager
async def joined(
    root: Path, run_dir: Path, pid: int, loader: FakeLoader | None = None, *, load: bool = True
) -> AsyncIterator[WorkerGroup]:
    """A started worker (``load=False``: listening, its repository not loaded yet)."""
    registry = ModelRegistry(loader or FakeLoader())
    try:
        async with WorkerGroup(registry, root, run_dir, timeout_s=GUARD_S, pid=pid) as group:
            if load:
                await group.load_repository()
            yield group
    finally:
        await registry.close()


def ready_versions(group: WorkerGroup, name: str) -> list[int]:
    if not group.registry.knows(name):
        return []
    return sorted(v.version for v in group.registry.entry(name).ready_versions())


async def test_a_load_reaches_every_worker_before_it_returns(
    repository: Path, run_dir: Path
) -> None:
    async with joined(repository, run_dir, 1) as a, joined(repository, run_dir, 2) as b:
        write_model(repository, "m", 2)
        (repository / "m" / "config.yaml").write_text("version_policy: all\n")
        await asyncio.wait_for(a.load("m", None), GUARD_S)
        assert ready_versions(a, "m") == ready_versions(b, "m") == [1, 2]
        assert os.stat(socket_path(run_dir, 1)).st_mode & 0o777 == 0o600


async def test_an_unload_reaches_every_worker_and_one_started_later(
    repository: Path, run_dir: Path
) -> None:
    async with joined(repository, run_dir, 1) as a, joined(repository, run_dir, 2) as b:
        await asyncio.wait_for(b.unload("m", None), GUARD_S)
        assert not a.registry.knows("m")
        assert not b.registry.knows("m")
        async with joined(repository, run_dir, 3) as restarted:
            assert not restarted.registry.knows("m")
            assert ready_versions(restarted, "n") == [1]


async def test_a_load_with_a_config_is_replayed_by_a_worker_started_later(
    repository: Path, run_dir: Path
) -> None:
    write_model(repository, "m", 2)
    (repository / "m" / "config.yaml").write_text("version_policy: {latest: 1}\n")
    body = {"parameters": {"config": '{"version_policy": {"specific": {"versions": [1]}}}'}}
    async with joined(repository, run_dir, 1) as a:
        assert ready_versions(a, "m") == [2]
        await asyncio.wait_for(a.load("m", body), GUARD_S)
        assert ready_versions(a, "m") == [1]
        async with joined(repository, run_dir, 2) as restarted:
            assert ready_versions(restarted, "m") == [1]


async def test_a_change_sent_while_a_worker_starts_is_applied_before_it_serves(
    repository: Path, run_dir: Path
) -> None:
    async with (
        joined(repository, run_dir, 1) as a,
        joined(repository, run_dir, 2, load=False) as starting,
    ):
        await asyncio.wait_for(a.unload("m", None), GUARD_S)
        (run_dir / CHANGES_FILE).unlink()  # only the change it was sent can tell it now
        await starting.load_repository()
        assert not starting.registry.knows("m")
        assert ready_versions(starting, "n") == [1]


async def test_a_worker_that_fails_a_change_is_named(repository: Path, run_dir: Path) -> None:
    async with (
        joined(repository, run_dir, 1) as a,
        joined(repository, run_dir, 2, RefusingLoader({2})),
    ):
        write_model(repository, "m", 2)
        with pytest.raises(WorkerSyncError) as failed:
            await asyncio.wait_for(a.load("m", None), GUARD_S)
        message = failed.value.message
        assert message.startswith("model 'm' loaded on worker 1 and 0 other worker(s)")
        assert "but not on 1: worker 2: failed to load 'm': version 2:" in message
        assert "out of memory on purpose" in message


async def test_a_failed_local_change_goes_nowhere(repository: Path, run_dir: Path) -> None:
    async with joined(repository, run_dir, 1) as a, joined(repository, run_dir, 2) as b:
        with pytest.raises(ModelNotFound):
            await a.unload("nope", None)
        assert ready_versions(b, "m") == [1]
        assert not (run_dir / CHANGES_FILE).exists()


async def test_statistics_add_up_every_workers_counts(repository: Path, run_dir: Path) -> None:
    async with joined(repository, run_dir, 1) as a, joined(repository, run_dir, 2) as b:
        for group, rows in ((a, 1), (b, 2), (b, 1)):
            batcher = group.registry.resolve("m", None).batcher
            assert batcher is not None
            rows_in = {"x": np.zeros((rows, 4), np.float32)}
            await asyncio.wait_for(batcher.submit(rows_in, ["y"]), GUARD_S)
        for group in (a, b):
            [stats] = (await group.statistics("m", "1")).model_stats
            assert stats.inference_count == 4
            assert stats.execution_count == 3
        everything = await a.statistics(None, None)
        assert {(s.name, s.inference_count) for s in everything.model_stats} == {("m", 4), ("n", 0)}
        with pytest.raises(ModelNotFound):
            await a.statistics("nope", None)


async def test_a_dead_workers_socket_is_skipped_and_removed(
    repository: Path, run_dir: Path
) -> None:
    dead = socket_path(run_dir, 99)
    with socket.socket(socket.AF_UNIX) as listener:  # bound, then closed: nobody listens
        listener.bind(str(dead))
    async with joined(repository, run_dir, 1) as a, joined(repository, run_dir, 2) as b:
        await asyncio.wait_for(a.unload("m", None), GUARD_S)
        assert not b.registry.knows("m")
        assert not dead.exists()


async def test_a_silent_worker_times_out_by_name(repository: Path, run_dir: Path) -> None:
    silent = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await silent.wait()
        writer.close()

    server = await asyncio.start_unix_server(never_answer, path=socket_path(run_dir, 7))
    try:
        siblings = Siblings(run_dir, socket_path(run_dir, 1), timeout_s=0.05)
        [reply] = await siblings.ask_all({"op": "statistics"})
        assert reply.worker == "worker 7"
        assert reply.error == "no answer within 0.05 s"
    finally:
        silent.set()
        server.close()
        await server.wait_closed()


async def test_unknown_or_malformed_requests_are_answered_with_an_error(
    repository: Path, run_dir: Path
) -> None:
    async with joined(repository, run_dir, 1):
        siblings = Siblings(run_dir, socket_path(run_dir, 2), timeout_s=GUARD_S)
        [unknown] = await siblings.ask_all({"op": "explode"})
        assert unknown.error == "unknown operation 'explode'"
        [malformed] = await siblings.ask_all({"op": "load", "model": 3})
        assert malformed.error == "a change needs a model name and an optional body object"
        [odd] = await siblings.ask_all({"op": "statistics", "model": ["m"]})
        assert odd.result == {"model_stats": []}


async def test_concurrent_changes_on_two_workers_leave_them_agreeing(
    repository: Path, run_dir: Path
) -> None:
    async with joined(repository, run_dir, 1) as a, joined(repository, run_dir, 2) as b:
        changes = [a.unload("m", None), b.load("m", None), a.load("m", None), b.unload("m", None)]
        outcomes = await asyncio.wait_for(asyncio.gather(*changes, return_exceptions=True), GUARD_S)
        # One at a time for the whole server: an unload after an unload finds nothing (404).
        assert all(o is None or isinstance(o, ModelNotFound) for o in outcomes), outcomes
        assert ready_versions(a, "m") == ready_versions(b, "m")
