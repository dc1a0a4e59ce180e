"""The worker processes of one server, acting as one: each repository change reaches
every worker before it is answered, and statistics add up every worker's counts.

``tensorgate serve --workers N`` makes a run directory (mode 0700) and names it in
``WORKERS_DIR_ENV``. Each worker listens there on a Unix domain socket
(``gateway.cluster.endpoint``). The worker that takes a load or unload call holds the
server-wide change lock (``gateway.cluster.changes``), applies the change, records it for
workers started later, and sends it to every sibling at once; it answers when all have
applied it, or with a ``WorkerSyncError`` naming those that did not. A statistics call
asks every sibling for its counts and adds them to its own. Requests on the inference
path never come here.

A worker that starts while others run (the supervisor replaced one that died) opens its
socket first, then reads the recorded changes and loads the repository by them. Changes
sent to it before it is done are acknowledged at once and applied, in order, before it
serves its first request: it never serves a state older than its siblings'.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from gateway.cluster.changes import Change, changes_lock, read_changes, record_change
from gateway.cluster.control import RepositoryControl
from gateway.cluster.endpoint import ControlEndpoint, socket_path
from gateway.cluster.regions_record import read_regions, record_regions
from gateway.cluster.siblings import Reply, Siblings
from gateway.cluster.statistics import merge_statistics
from gateway.cluster.wire import ProtocolError
from gateway.errors import GatewayError, WorkerSyncError
from gateway.protocol.shm_regions import RegionSpec
from gateway.protocol.shm_table import Kind, SharedMemoryTable
from gateway.protocol.triton_wire import ModelStatisticsResponse
from gateway.repository.registry import ModelRegistry
from gateway.repository.scanning import scan_repository

logger = logging.getLogger(__name__)

WORKERS_DIR_ENV = "TENSORGATE_WORKERS_DIR"
"""Names the run directory to each worker; set by ``tensorgate serve``, not by users."""

_EMPTY_STATISTICS: dict[str, Any] = {"model_stats": []}


class WorkerGroup(RepositoryControl):
    """This worker's membership of the group: its endpoint, its siblings, the changes.

    Use it as an async context manager: the endpoint listens from entry to exit.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        root: Path,
        directory: Path,
        *,
        timeout_s: float,
        pid: int | None = None,
        regions: SharedMemoryTable | None = None,
    ) -> None:
        super().__init__(registry, root, regions)
        self.directory = directory
        self.name = f"worker {os.getpid() if pid is None else pid}"
        path = socket_path(directory, os.getpid() if pid is None else pid)
        self._endpoint = ControlEndpoint(path, self._on_request)
        self._siblings = Siblings(directory, path, timeout_s=timeout_s)
        # One waiter per process on the change lock: each waits in a thread of the default
        # executor, which model loading (a sibling's change included) needs too.
        self._one_at_a_time = asyncio.Lock()
        self._pending: list[dict[str, Any]] | None = []
        """Changes received while starting (applied before serving); None once started."""

    async def __aenter__(self) -> WorkerGroup:
        await self._endpoint.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._endpoint.close()

    async def load_repository(self) -> None:
        """Load the repository as the recorded changes say, then the changes sent since."""
        changes = await asyncio.to_thread(read_changes, self.directory)
        await self._register_recorded_regions()
        for source in await asyncio.to_thread(scan_repository, self.root):
            change = changes.get(source.name)
            if change is None or (change.action == "load" and change.body is None):
                await self.registry.add_model(source)
            elif change.action == "unload":
                logger.info("model '%s' stays unloaded (unloaded through the API)", source.name)
            else:
                await self._load_recorded(source.name, change)
        while self._pending:
            request = self._pending.pop(0)
            try:
                await self._apply(request)
            except GatewayError as exc:  # its sender was told it was received
                logger.error("%s of model '%s': %s", request["op"], request["model"], exc.message)
        self._pending = None

    async def _load_recorded(self, name: str, change: Change) -> None:
        try:
            await self.load_here(name, change.body)
        except GatewayError as exc:
            logger.error("model '%s' as last loaded through the API: %s", name, exc.message)

    async def load(self, name: str, body: dict[str, Any] | None) -> None:
        """Load here, then on every sibling (the change lock held throughout)."""
        async with self._one_at_a_time, changes_lock(self.directory):
            await self.load_here(name, body)
            await asyncio.to_thread(record_change, self.directory, name, Change("load", body))
            replies = await self._siblings.ask_all({"op": "load", "model": name, "body": body})
            _check(replies, f"model '{name}' loaded on {self.name}")

    async def unload(self, name: str, body: dict[str, Any] | None) -> None:
        """Unload here, then on every sibling (the change lock held throughout)."""
        async with self._one_at_a_time, changes_lock(self.directory):
            await self.unload_here(name, body)
            await asyncio.to_thread(record_change, self.directory, name, Change("unload", body))
            replies = await self._siblings.ask_all({"op": "unload", "model": name, "body": body})
            _check(replies, f"model '{name}' unloaded on {self.name}")

    async def register_region(self, kind: Kind, subject: str, spec: RegionSpec) -> None:
        """Register here, then on every sibling, and record it for workers started later;
        undone everywhere if a sibling cannot."""
        async with self._one_at_a_time, changes_lock(self.directory):
            await super().register_region(kind, subject, spec)
            request = {"op": "register_region", "kind": kind, "subject": subject}
            replies = await self._siblings.ask_all({**request, **spec.status()})
            try:
                _check(replies, f"shared memory region '{spec.name}' registered on {self.name}")
            except WorkerSyncError:
                await self._unregister_everywhere(kind, subject, spec.name)
                raise
            finally:
                await self._record_regions()

    async def unregister_region(self, kind: Kind, subject: str, name: str | None) -> None:
        """Unregister here, then on every sibling, and record what remains."""
        async with self._one_at_a_time, changes_lock(self.directory):
            try:
                await self._unregister_everywhere(kind, subject, name)
            finally:
                await self._record_regions()

    async def _unregister_everywhere(self, kind: Kind, subject: str, name: str | None) -> None:
        await super().unregister_region(kind, subject, name)
        request = {"op": "unregister_region", "kind": kind, "subject": subject, "name": name}
        _check(await self._siblings.ask_all(request), f"unregistered on {self.name}")

    async def _record_regions(self) -> None:
        await asyncio.to_thread(record_regions, self.directory, self.regions.registrations())

    async def _register_recorded_regions(self) -> None:
        """The regions registered before this worker started (a sibling that died and was
        replaced); one whose object is gone is logged and left out."""
        for subject, spec in await asyncio.to_thread(read_regions, self.directory):
            try:
                self.regions.register("system", subject, spec)
            except GatewayError as exc:
                if "already in manager" not in exc.message:
                    logger.warning("recorded region left out: %s", exc.message)

    async def statistics(self, name: str | None, version: str | None) -> ModelStatisticsResponse:
        """This worker's statistics plus every sibling's."""
        own = self.statistics_here(name, version)  # an unknown model fails here, as alone
        request = {"op": "statistics", "model": name, "version": version}
        replies = await self._siblings.ask_all(request)
        _check(replies, "statistics counted on " + self.name)
        try:
            theirs = [ModelStatisticsResponse.model_validate(r.result) for r in replies]
        except ValidationError as exc:
            raise WorkerSyncError(
                f"a worker answered statistics in an unknown shape: {exc}"
            ) from None
        return merge_statistics([own, *theirs])

    async def _on_request(self, request: dict[str, Any]) -> Any:
        """A sibling's request: apply a change, or report this worker's statistics."""
        op = request.get("op")
        if op == "statistics":
            return self._statistics_reply(request)
        if op in ("register_region", "unregister_region"):
            self._apply_region(request)
            return None
        if op not in ("load", "unload"):
            raise ProtocolError(f"unknown operation {op!r}")
        name, body = request.get("model"), request.get("body")
        if not isinstance(name, str) or not (body is None or isinstance(body, dict)):
            raise ProtocolError("a change needs a model name and an optional body object")
        if self._pending is not None:
            self._pending.append(request)  # starting: applied before the first request
            return None
        await self._apply(request)
        return None

    def _apply_region(self, request: dict[str, Any]) -> None:
        """A sibling's registration (or unregistration) of a region, made here too."""
        try:
            kind, subject, name = request["kind"], request["subject"], request["name"]
            if request["op"] == "unregister_region":
                self.regions.unregister(kind, subject, name)
                return
            spec = RegionSpec(name, request["key"], request["offset"], request["byte_size"])
        except (KeyError, TypeError):
            raise ProtocolError(
                "a region change needs kind, subject, name, key, offset and byte_size"
            ) from None
        self.regions.register(kind, subject, spec)  # InvalidInput: the error replied

    def _statistics_reply(self, request: dict[str, Any]) -> Any:
        name, version = request.get("model"), request.get("version")
        if self._pending is not None or not _optional_text(name, version):
            return _EMPTY_STATISTICS  # starting: nothing served yet
        try:
            return self.statistics_here(name, version).model_dump(mode="json")
        except GatewayError:
            return _EMPTY_STATISTICS  # nothing counted here for that model or version

    async def _apply(self, request: dict[str, Any]) -> None:
        name, body = request["model"], request.get("body")
        if request["op"] == "load":
            await self.load_here(name, body)
        else:  # the change may already be in the recorded ones this worker started with
            await self.unload_here(name, body, missing_ok=True)


def _optional_text(*values: object) -> bool:
    return all(value is None or isinstance(value, str) for value in values)


def _check(replies: list[Reply], done: str) -> None:
    """Raise ``WorkerSyncError`` naming every sibling that failed, and why."""
    failed = [reply for reply in replies if reply.error is not None]
    if not failed:
        return
    reasons = "; ".join(f"{reply.worker}: {reply.error}" for reply in failed)
    agreed = len(replies) - len(failed)
    raise WorkerSyncError(
        f"{done} and {agreed} other worker(s), but not on {len(failed)}: {reasons}"
    )
