"""Shared-memory regions on several workers, in one event loop: a registration reaches
every worker before it is answered, an unregister too, a worker started later registers
what is recorded, and a registration a sibling cannot make is undone everywhere."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.cluster.group import WorkerGroup
from gateway.cluster.regions_record import REGIONS_FILE
from gateway.errors import InvalidInput, WorkerSyncError
from gateway.protocol.shm_regions import RegionSpec
from gateway.protocol.shm_table import SharedMemoryTable
from gateway.repository.registry import ModelRegistry
from support.fake_backend import FakeLoader

GUARD_S = 10


@pytest.fixture
def shm_dir(tmp_path: Path) -> Path:
    """Stands for /dev/shm: one 128-byte object, ``obj``."""
    directory = tmp_path / "shm"
    directory.mkdir()
    (directory / "obj").write_bytes(bytes(128))
    return directory


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return directory


@contextlib.asynccontextmanager
async def worker(
    tmp_path: Path, run_dir: Path, shm_dir: Path, pid: int
) -> AsyncIterator[WorkerGroup]:
    registry = ModelRegistry(FakeLoader())
    (tmp_path / "models").mkdir(exist_ok=True)
    table = SharedMemoryTable(directory=shm_dir)
    try:
        group = WorkerGroup(
            registry, tmp_path / "models", run_dir, timeout_s=GUARD_S, pid=pid, regions=table
        )
        async with group:
            await group.load_repository()
            yield group
    finally:
        table.close()
        await registry.close()


def names(group: WorkerGroup, subject: str) -> list[object]:
    return [status["name"] for status in group.regions.status("system", subject, None)]


async def test_regions_reach_every_worker_and_one_started_later(
    tmp_path: Path, run_dir: Path, shm_dir: Path
) -> None:
    async with (
        worker(tmp_path, run_dir, shm_dir, 101) as first,
        worker(tmp_path, run_dir, shm_dir, 102) as second,
    ):
        await first.register_region("system", "alice", RegionSpec("a", "/obj", 0, 64))
        await second.register_region("system", "bob", RegionSpec("b", "/obj", 64, 64))
        assert names(first, "alice") == names(second, "alice") == ["a"]
        assert names(first, "bob") == names(second, "bob") == ["b"]
        recorded = json.loads((run_dir / REGIONS_FILE).read_text())["regions"]
        assert {(r["subject"], r["name"]) for r in recorded} == {("alice", "a"), ("bob", "b")}
        async with worker(tmp_path, run_dir, shm_dir, 103) as later:
            assert names(later, "alice") == ["a"]
            assert names(later, "bob") == ["b"]
            await later.unregister_region("system", "alice", None)
            assert names(first, "alice") == names(second, "alice") == names(later, "alice") == []
        recorded = json.loads((run_dir / REGIONS_FILE).read_text())["regions"]
        assert [(r["subject"], r["name"]) for r in recorded] == [("bob", "b")]


async def test_a_registration_a_sibling_cannot_make_is_undone_everywhere(
    tmp_path: Path, run_dir: Path, shm_dir: Path
) -> None:
    async with (
        worker(tmp_path, run_dir, shm_dir, 201) as first,
        worker(tmp_path, run_dir, shm_dir, 202) as second,
    ):
        second.regions.max_regions = 0  # the sibling refuses any region
        with pytest.raises(WorkerSyncError, match=r"shared_memory\.max_regions"):
            await first.register_region("system", "alice", RegionSpec("a", "/obj", 0, 64))
        assert names(first, "alice") == names(second, "alice") == []
        with pytest.raises(InvalidInput, match="Unable to open shared memory region"):
            await first.register_region("system", "alice", RegionSpec("a", "/gone", 0, 64))
