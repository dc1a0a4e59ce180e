"""The long-lived objects the lifespan creates and hands to every request."""

from __future__ import annotations

from typing import TypedDict

from gateway.auth import Authenticator
from gateway.inference import InferenceService
from gateway.registry import ModelRegistry
from gateway.settings import Settings


class AppState(TypedDict):
    """Lifespan state; Starlette copies it into each ``request.state``."""

    settings: Settings
    registry: ModelRegistry
    inference: InferenceService
    authenticator: Authenticator
