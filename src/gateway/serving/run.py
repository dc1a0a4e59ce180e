"""Runs the gateway under uvicorn: one process, or several worker processes."""

from __future__ import annotations

import logging
import os
import tempfile

import uvicorn

from gateway.api.app import create_app
from gateway.metrics import MULTIPROC_ENV
from gateway.serving.heap import settle_heap
from gateway.serving.options import uvicorn_options
from gateway.serving.workers import ENV_PREFIX, settings_environment
from gateway.settings import Settings

logger = logging.getLogger("gateway")


def run_server(settings: Settings) -> None:
    """Serve until uvicorn stops (a signal); several processes when ``settings.workers > 1``."""
    if settings.workers > 1:
        _run_workers(settings)
    else:
        uvicorn.run(create_app(settings, on_ready=settle_heap), **uvicorn_options(settings))


def _run_workers(settings: Settings) -> None:
    """Settings (the dev secret included) travel as environment variables, metrics
    through a shared directory removed on exit."""
    with tempfile.TemporaryDirectory(prefix="tensorgate-metrics-") as metrics_dir:
        os.environ.update(settings_environment(settings))
        os.environ[MULTIPROC_ENV] = metrics_dir
        logger.info("starting %d worker processes (%s*)", settings.workers, ENV_PREFIX)
        uvicorn.run(
            "gateway.serving.workers:create_worker_app",
            factory=True,
            workers=settings.workers,
            **uvicorn_options(settings),
        )
