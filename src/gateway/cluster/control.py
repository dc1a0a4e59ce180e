"""What the repository, statistics and shared-memory routes call: load, unload,
statistics, and registering shared-memory regions.

``RepositoryControl`` acts on this process's registry alone, which is the whole server
with one process; ``gateway.cluster.group.WorkerGroup`` extends it to every worker.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from gateway.dataplane import repository
from gateway.dataplane.statistics import model_statistics
from gateway.errors import ModelNotFound
from gateway.protocol.shm_regions import RegionSpec
from gateway.protocol.shm_table import Kind, SharedMemoryTable
from gateway.protocol.triton_wire import ModelStatisticsResponse
from gateway.repository.registry import ModelRegistry


class RepositoryControl:
    """Loads, unloads and counts the models of one process's registry, and registers its
    shared-memory regions."""

    def __init__(
        self, registry: ModelRegistry, root: Path, regions: SharedMemoryTable | None = None
    ) -> None:
        self.registry = registry
        self.root = root
        self.regions = SharedMemoryTable() if regions is None else regions
        """The callers' shared-memory regions, as the inference requests find them."""

    async def load_repository(self) -> None:
        """Load what the repository holds, at start-up."""
        await self.registry.load_repository(self.root)

    async def load(self, name: str, body: dict[str, Any] | None) -> None:
        """Load (or reload) a model: the repository extension's load, with its body."""
        await self.load_here(name, body)

    async def unload(self, name: str, body: dict[str, Any] | None) -> None:
        """Unload a model: the repository extension's unload, with its body."""
        await self.unload_here(name, body)

    async def statistics(self, name: str | None, version: str | None) -> ModelStatisticsResponse:
        """The statistics extension's answer (``model_statistics`` says which versions)."""
        return self.statistics_here(name, version)

    async def register_region(self, kind: Kind, subject: str, spec: RegionSpec) -> None:
        """Register a shared-memory region for ``subject`` (``InvalidInput`` saying why not)."""
        self.regions.register(kind, subject, spec)

    async def unregister_region(self, kind: Kind, subject: str, name: str | None) -> None:
        """Unregister ``subject``'s region ``name``, or all of them."""
        self.regions.unregister(kind, subject, name)

    async def load_here(self, name: str, body: dict[str, Any] | None) -> None:
        """Load in this process only."""
        await repository.load_model(self.registry, self.root, name, body)

    async def unload_here(
        self, name: str, body: dict[str, Any] | None, *, missing_ok: bool = False
    ) -> None:
        """Unload in this process only; ``missing_ok``: a model not loaded is no error."""
        if not missing_ok:
            await repository.unload_model(self.registry, name, body)
            return
        with contextlib.suppress(ModelNotFound):
            await repository.unload_model(self.registry, name, body)

    def statistics_here(self, name: str | None, version: str | None) -> ModelStatisticsResponse:
        """This process's statistics only."""
        return model_statistics(self.registry, name, version)
