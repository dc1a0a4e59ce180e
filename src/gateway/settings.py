"""Gateway settings from ``TENSORGATE_*`` environment variables and CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every setting of the gateway; docs/configuration.md documents each one."""

    model_config = SettingsConfigDict(
        env_prefix="TENSORGATE_",
        env_nested_delimiter="__",
        use_attribute_docstrings=True,
        extra="ignore",
    )

    model_repository: Path = Path("models")
    """Directory holding ``<name>/<version>/model.onnx`` (and optional ``config.yaml``)."""
    host: str = "127.0.0.1"
    """Address ``tensorgate serve`` binds to."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    """Port ``tensorgate serve`` listens on."""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Worker processes of ``tensorgate serve``; each loads every model and has its own
    batchers. /metrics merges all workers (Prometheus multiprocess mode)."""
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    """Log level of the gateway and of uvicorn."""
    max_request_body_bytes: Annotated[int, Field(ge=1024)] = 16 * MIB
    """Largest request body accepted; larger ones get 413 before (or while) being read."""
    readiness_requires_all_models: bool = True
    """Server readiness needs every model in the repository ready; false: any one ready."""
