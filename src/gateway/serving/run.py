"""Runs the gateway under uvicorn: one process, or several worker processes."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from gateway.api.app import create_app
from gateway.cluster.group import WORKERS_DIR_ENV
from gateway.grpc.server import grpc_server
from gateway.metrics import MULTIPROC_ENV
from gateway.serving.cpus import process_count
from gateway.serving.descriptors import raise_descriptor_limit
from gateway.serving.draining import on_serving_ready
from gateway.serving.listening import OnListening, serve_one, serve_workers
from gateway.serving.options import uvicorn_options
from gateway.serving.workers import ENV_PREFIX, settings_environment
from gateway.settings import Settings

logger = logging.getLogger("gateway")


def worker_count(settings: Settings) -> int:
    """The number of worker processes: ``workers``, or with ``auto`` one per CPU this
    process may use (``gateway.serving.cpus``), at most ``MAX_WORKERS``."""
    return process_count(settings.workers)


def run_server(settings: Settings, on_listening: OnListening) -> None:
    """Serve until SIGTERM or SIGINT; several processes when ``worker_count`` is over 1.

    ``on_listening`` is told the port bound (``--port 0`` asks for any free one) as soon as
    it is known (``gateway.serving.listening``). Either mode shuts down within
    ``shutdown_grace_s`` and exits with status 0 on SIGTERM.
    """
    workers = worker_count(settings)
    settings = settings.model_copy(update={"workers": workers})
    # Each shared-memory region keeps a descriptor open: room for them beside connections.
    raise_descriptor_limit(settings.max_connections + settings.shared_memory.max_regions_total)
    if workers > 1:
        _run_workers(settings, workers, on_listening)
        return
    with sigterm_exits_0():
        app = create_app(settings, on_ready=on_serving_ready(settings), transports=grpc_server)
        serve_one(app, uvicorn_options(settings), on_listening)


@contextlib.contextmanager
def sigterm_exits_0() -> Iterator[None]:
    """SIGTERM raises ``SystemExit(0)``, once.

    uvicorn re-raises the signal it shut down on once it is done, so that the process
    dies of it (status -15). SIGTERM is how an orchestrator stops a healthy server: after
    the graceful shutdown it ends with status 0, as the --workers supervisor does. From
    then on SIGTERM is ignored: a second one (``docker stop`` and a supervisor both
    sending it) would otherwise interrupt the event loop's last clean-up, which then
    closes the loop under the thread shutting its executor down (a traceback, status 1).
    The handler found is put back only if SIGTERM never came.
    """
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is _exit_cleanly:
            signal.signal(signal.SIGTERM, previous)


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(0)


def _run_workers(settings: Settings, workers: int, on_listening: OnListening) -> None:
    """Settings (the dev secret included) travel as environment variables; metrics and the
    workers' control sockets and recorded changes live in a run directory (mode 0700)
    removed on exit."""
    with tempfile.TemporaryDirectory(prefix="tensorgate-") as run_dir:
        metrics_dir, workers_dir = Path(run_dir, "metrics"), Path(run_dir, "workers")
        metrics_dir.mkdir(mode=0o700)
        workers_dir.mkdir(mode=0o700)
        os.environ.update(settings_environment(settings))
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
        os.environ[WORKERS_DIR_ENV] = str(workers_dir)
        logger.info("starting %d worker processes (%s*)", workers, ENV_PREFIX)
        serve_workers(
            "gateway.serving.workers:create_worker_app",
            workers,
            uvicorn_options(settings),
            on_listening,
        )
