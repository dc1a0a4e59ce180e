"""The long-lived objects the lifespan creates, and the one accessor every request uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.api.access_log import AccessLog
from gateway.api.http_metrics import HttpMetrics
from gateway.api.request_metrics import InferenceRequestMetrics
from gateway.auth.authenticator import Authenticator
from gateway.cluster.control import RepositoryControl
from gateway.dataplane.inference import InferenceService
from gateway.metrics import GatewayMetrics
from gateway.repository.registry import ModelRegistry
from gateway.settings import Settings

_KEY = "tensorgate"


class Lifecycle:
    """Where the serving process is in its life: draining from the moment it is told to
    stop (readiness answers 503 from then on)."""

    __slots__ = ("_listeners", "draining")

    def __init__(self) -> None:
        self.draining = False
        self._listeners: list[Callable[[], None]] = []

    def on_draining(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` when draining begins (from a signal handler: it must only
        hand the news to its event loop, ``call_soon_threadsafe``)."""
        self._listeners.append(listener)

    def begin_draining(self) -> None:
        """Answer readiness with 503 from now on; safe to call from a signal handler."""
        if self.draining:
            return
        self.draining = True
        for listener in self._listeners:
            listener()


@dataclass(frozen=True, slots=True)
class AppState:
    """What the lifespan made; Starlette copies the lifespan state into every request."""

    settings: Settings
    registry: ModelRegistry
    control: RepositoryControl
    """Loads, unloads and counts models: in this process, or on every worker."""
    inference: InferenceService
    metrics: GatewayMetrics
    authenticator: Authenticator
    lifecycle: Lifecycle
    access_log: AccessLog | None
    """None when the ``access_log`` setting is off."""
    http_metrics: HttpMetrics
    request_metrics: InferenceRequestMetrics
    """What the inference pipeline records each answered request in."""

    def as_lifespan_state(self) -> dict[str, AppState]:
        """The mapping the lifespan yields."""
        return {_KEY: self}


def app_state(scope: Mapping[str, Any]) -> AppState:
    """The lifespan's state from an ASGI scope (``request.scope`` in FastAPI routes)."""
    state: AppState = scope["state"][_KEY]
    return state
