"""The ``tensorgate`` command: ``serve`` and ``openapi``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.model_config import config_json_schema
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
    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.add_argument(
        "--model-repository", "--models", type=Path, help="model repository (default: models)"
    )
    openapi.add_argument("--output", "-o", type=Path, help="write to a file instead of stdout")
    config_schema = commands.add_parser(
        "config-schema", help="print the JSON Schema of a model's config.yaml"
    )
    config_schema.add_argument(
        "--output", "-o", type=Path, help="write to a file instead of stdout"
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        key: value
        for key in ("model_repository", "host", "port", "log_level")
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
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        lifespan="on",
    )
    return 0


def _write_json(document: Any, output: Path | None) -> int:
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if output is None:
        sys.stdout.buffer.write(text)
        sys.stdout.flush()
    else:
        output.write_bytes(text)
    return 0


def _openapi(settings: Settings, output: Path | None) -> int:
    import asyncio

    from gateway.api.openapi_export import export_openapi

    return _write_json(asyncio.run(export_openapi(settings)), output)


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
    if args.command == "config-schema":
        return _write_json(config_json_schema(), args.output)
    return _openapi(settings, args.output)


if __name__ == "__main__":
    sys.exit(main())
