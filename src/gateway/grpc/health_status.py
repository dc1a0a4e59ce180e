"""The standard ``grpc.health.v1`` service kept in step with the server's readiness.

``SERVING`` exactly when ``ServerReady`` (and ``GET /v2/health/ready``) would answer ready:
the models the repository asks for are ready (``readiness_requires_all_models``), and no
shutdown has begun; from the moment one begins, ``NOT_SERVING`` for good. Readiness is
looked at again after every load and unload, never per probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from grpc_health.v1 import health, health_pb2

from gateway.api.state import AppState
from gateway.dataplane.metadata import check_server_ready
from gateway.errors import ModelNotReady
from gateway.grpc.calls import SERVICE

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthStatus:
    """Sets ``servicer``'s status for the whole server ("") and for the inference service."""

    def __init__(self, servicer: health.aio.HealthServicer, state: AppState) -> None:
        self._servicer = servicer
        self._state = state
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._remove_listener: Callable[[], None] | None = None

    async def start(self) -> None:
        """Set the status now and follow readiness from now on."""
        self._remove_listener = self._state.registry.add_listener(lambda _: self._refresh())
        self._state.lifecycle.on_draining(self._draining)
        await self._set(self._ready())

    async def stop(self) -> None:
        """``NOT_SERVING`` for good (the server is stopping)."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        await self._servicer.enter_graceful_shutdown()

    def _ready(self) -> bool:
        state = self._state
        if state.lifecycle.draining:
            return False
        try:
            check_server_ready(
                state.registry, require_all=state.settings.readiness_requires_all_models
            )
        except ModelNotReady:
            return False
        return True

    def _refresh(self) -> None:
        self._spawn(self._set(self._ready()))

    def _draining(self) -> None:
        """From a signal handler: hand it to the loop."""
        self._loop.call_soon_threadsafe(self._spawn, self._servicer.enter_graceful_shutdown())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _set(self, ready: bool) -> None:
        status = _SERVING if ready else _NOT_SERVING
        for name in ("", SERVICE):
            await self._servicer.set(name, status)
