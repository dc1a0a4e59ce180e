"""The app factory that ``tensorgate serve --workers N`` hands to each worker process."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from gateway.api.app import create_app
from gateway.cluster.group import WORKERS_DIR_ENV
from gateway.grpc.server import grpc_server
from gateway.serving.draining import on_serving_ready
from gateway.settings import Settings

ENV_PREFIX = "TENSORGATE_"


def settings_environment(settings: Settings) -> dict[str, str]:
    """The settings as ``TENSORGATE_*`` variables, so spawned workers rebuild them.

    Nested sections use the ``__`` delimiter; lists travel as JSON; unset values are left
    out; secrets are revealed, as workers need them (the environment stays in-process).
    """
    return dict(_flatten(ENV_PREFIX, settings.model_dump(mode="python")))


def _flatten(prefix: str, values: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in values.items():
        name = f"{prefix}{key.upper()}"
        if isinstance(value, dict):
            yield from _flatten(f"{name}__", value)
        elif isinstance(value, SecretStr):
            yield name, value.get_secret_value()
        elif isinstance(value, list | tuple):
            yield name, json.dumps(list(value), default=str)
        elif value is not None:
            yield name, str(value)


def create_worker_app() -> FastAPI:
    """Build one worker's app from the environment the parent process prepared."""
    settings = Settings()
    # Spawned workers start with a fresh interpreter: configure logging as the parent did.
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )
    workers_dir = os.environ.get(WORKERS_DIR_ENV)
    return create_app(
        settings,
        on_ready=on_serving_ready(settings),
        workers_dir=None if workers_dir is None else Path(workers_dir),
        # Every worker serves gRPC on the one port: the kernel spreads the connections.
        transports=partial(grpc_server, reuse_port=True),
    )
