"""The model repository extension: load, reload and unload models while the server runs.

Triton's ``POST /v2/repository/models/<m>/load`` may carry a model configuration
(``{"parameters": {"config": "<JSON>"}}``, Triton's ``extension_model_repository.md``):
the fields that have a counterpart in ``config.yaml`` override it for this load, every
other field is refused with a 400 naming it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.errors import InvalidInput, RepositoryPollFailed
from gateway.repository.config import ConfigError, ModelConfig, read_config_files
from gateway.repository.registry import ModelRegistry, ModelVersion
from gateway.repository.scanning import ModelSource, is_valid_model_name, read_model
from gateway.repository.triton_config import map_triton
from gateway.repository.triton_fields import TritonConfigError
from gateway.repository.versions import parse_version
from gateway.validation import describe_errors, shown


def _check_name(name: str) -> None:
    if not is_valid_model_name(name):
        raise InvalidInput(
            f"'{shown(name)}' is not a valid model name: letters, digits, '_', '.', '-', "
            "at most 128 characters"
        )


def _parameters(body: dict[str, Any] | None, allowed: set[str]) -> dict[str, Any]:
    if body is None:
        return {}
    unknown = sorted(set(body) - {"parameters"})
    if unknown:
        raise InvalidInput(f"unsupported field(s) in the request: {', '.join(unknown)}")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("'parameters' must be an object")
    files = sorted(key for key in parameters if key.startswith("file:"))
    if files:
        raise InvalidInput(
            f"model files in the load request ({', '.join(files)}) are not supported: "
            "place them in the model repository"
        )
    refused = sorted(set(parameters) - allowed)
    if refused:
        raise InvalidInput(f"unsupported parameter(s): {', '.join(refused)}")
    return parameters


def config_override(name: str, raw: str, base: ModelConfig) -> ModelConfig:
    """``base`` with the fields of a Triton JSON model configuration applied
    (``gateway.repository.triton_config``); its class labels are read by the caller."""
    try:
        triton = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"parameters.config is not a JSON object: {exc}") from None
    if not isinstance(triton, dict):
        raise InvalidInput("parameters.config must be a JSON object")
    try:
        mapped = map_triton(triton, base.model_dump(), model=name, complete=False)
        config = ModelConfig.model_validate(mapped.fields)
    except TritonConfigError as exc:
        raise InvalidInput(str(exc)) from None
    except ValidationError as exc:
        raise InvalidInput(f"parameters.config: {describe_errors(exc.errors())}") from None
    config.declare(mapped.declaration or base.declaration)
    return config


async def load_model(
    registry: ModelRegistry, root: Path, name: str, body: dict[str, Any] | None
) -> None:
    """Load (or reload) ``<root>/<name>``; a 400 naming what failed, the old one serving."""
    _check_name(name)
    parameters = _parameters(body, {"config"})
    directory = root / name
    if not await asyncio.to_thread(directory.is_dir):
        raise RepositoryPollFailed(
            f"failed to load '{name}', failed to poll from model repository: no directory "
            f"'{name}' in it"
        )
    source = await asyncio.to_thread(read_model, directory)
    if "config" in parameters:
        try:
            config = config_override(name, parameters["config"], source.config)
        except InvalidInput as exc:
            raise InvalidInput(f"failed to load '{name}': {exc.message}") from None
        source = await asyncio.to_thread(_with_config, source, config)
        try:
            await asyncio.to_thread(read_config_files, config, directory, "parameters.config")
        except ConfigError as exc:
            raise InvalidInput(f"failed to load '{name}': {exc}") from None
    if source.problem:
        raise InvalidInput(f"failed to load '{name}': {source.problem}")
    failed = [v for v in await registry.add_model(source) if not v.ready]
    if failed:
        raise InvalidInput(f"failed to load '{name}': {_reasons(failed)}")


def _with_config(source: ModelSource, config: ModelConfig) -> ModelSource:
    """``source`` with versions selected by ``config``'s policy (it may override it)."""
    available = [
        number
        for child in source.directory.iterdir()
        if child.is_dir() and (number := parse_version(child.name)) is not None
    ]
    selected = config.select_versions(available)
    problem = None if selected else "version_policy selects none of the versions present"
    return ModelSource(source.name, source.directory, config, tuple(selected), problem)


def _reasons(failed: list[ModelVersion]) -> str:
    return "; ".join(f"version {v.version}: {v.reason}" for v in failed)


async def unload_model(registry: ModelRegistry, name: str, body: dict[str, Any] | None) -> None:
    """Stop serving ``name``: each version's queue drains first, then its backend closes."""
    _check_name(name)
    _parameters(body, {"unload_dependents"})  # no ensembles here: nothing depends on a model
    await registry.unload_model(name)
