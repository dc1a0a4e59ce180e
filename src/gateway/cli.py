"""The ``tensorgate`` command: ``serve`` (one or several worker processes) and ``openapi``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.settings import Settings

logger = logging.getLogger("gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tensorgate", description="An async inference gateway for ONNX models."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a model repository over HTTP")
    serve.add_argument(
        "--model-repository", "--models", type=Path, help="model repository (default: models)"
    )
    serve.add_argument("--host", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: 8000)")
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--workers", type=int, help="worker processes (default: 1)")
    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.add_argument(
        "--model-repository", "--models", type=Path, help="model repository (default: models)"
    )
    openapi.add_argument("--output", "-o", type=Path, help="write to a file instead of stdout")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        key: value
        for key in ("model_repository", "host", "port", "log_level", "workers")
        if (value := getattr(args, key, None)) is not None
    }
    return Settings(**overrides)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _serve(settings: Settings) -> int:
    import uvicorn

    from gateway.api.app import create_app

    if not settings.model_repository.is_dir():
        logger.error("model repository %s does not exist", settings.model_repository)
        return 2
    base = f"http://{settings.host}:{settings.port}"
    logger.info(
        "tensorgate serving %s on %s (Swagger UI: %s/docs)", settings.model_repository, base, base
    )
    if settings.workers == 1:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            lifespan="on",
        )
        return 0
    return _serve_workers(settings)


def _serve_workers(settings: Settings) -> int:
    """Several processes: settings travel as environment, metrics through a shared dir."""
    import uvicorn

    from gateway.api.worker import ENV_PREFIX, settings_environment
    from gateway.metrics import MULTIPROC_ENV

    with tempfile.TemporaryDirectory(prefix="tensorgate-metrics-") as metrics_dir:
        os.environ.update(settings_environment(settings))
        os.environ[MULTIPROC_ENV] = metrics_dir
        logger.info("starting %d worker processes (%s*)", settings.workers, ENV_PREFIX)
        uvicorn.run(
            "gateway.api.worker:create_worker_app",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            lifespan="on",
        )
    return 0


def _openapi(settings: Settings, output: Path | None) -> int:
    import asyncio

    from gateway.api.openapi_export import export_openapi

    document = asyncio.run(export_openapi(settings))
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if output is None:
        sys.stdout.buffer.write(text)
    else:
        output.write_bytes(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        sys.stderr.write(f"tensorgate: invalid settings: {exc}\n")
        return 2
    _configure_logging(settings.log_level)
    if args.command == "serve":
        return _serve(settings)
    return _openapi(settings, args.output)


if __name__ == "__main__":
    sys.exit(main())
