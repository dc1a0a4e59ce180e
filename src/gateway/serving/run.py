"""Runs the gateway under uvicorn: one process, or several worker processes."""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from types import FrameType

import uvicorn

from gateway.api.app import create_app
from gateway.metrics import MULTIPROC_ENV
from gateway.serving.descriptors import raise_descriptor_limit
from gateway.serving.draining import on_serving_ready
from gateway.serving.options import uvicorn_options
from gateway.serving.workers import ENV_PREFIX, settings_environment
from gateway.settings import Settings

logger = logging.getLogger("gateway")


def run_server(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; several processes when ``settings.workers > 1``.

    Either mode shuts down within ``shutdown_grace_s`` and exits with status 0 on SIGTERM.
    """
    raise_descriptor_limit(settings.max_connections)
    if settings.workers > 1:
        _run_workers(settings)
        return
    # uvicorn re-raises the signal it shut down on once it is done, so that the process
    # dies of it (status -15). SIGTERM is how an orchestrator stops a healthy server:
    # after the graceful shutdown it ends with status 0, as the --workers supervisor does.
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(
            create_app(settings, on_ready=on_serving_ready(settings)), **uvicorn_options(settings)
        )
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


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
