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
from gateway.repository.config import ModelConfig
from gateway.repository.registry import ModelRegistry, ModelVersion
from gateway.repository.scanning import ModelSource, is_valid_model_name, read_model
from gateway.repository.versions import parse_version
from gateway.validation import describe_errors, shown

# Triton fields that describe what the ONNX file already says, accepted when they agree.
_PLATFORMS = {"platform": "onnxruntime_onnx", "backend": "onnxruntime"}
_DYNAMIC_BATCHING = {
    "preferred_batch_size": "preferred_batch_sizes",
    "max_queue_delay_microseconds": "max_queue_delay_ms",
}


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


def _version_policy(policy: Any) -> Any:
    if not isinstance(policy, dict) or len(policy) != 1:
        raise InvalidInput("config.version_policy must have one of all, latest, specific")
    ((kind, value),) = policy.items()
    value = value if isinstance(value, dict) else {}
    if kind == "all":
        return "all"
    if kind == "latest":
        return {"latest": value.get("num_versions")}
    if kind == "specific":
        return {"specific": value.get("versions")}
    raise InvalidInput(f"unsupported field config.version_policy.{kind}")


def _batching(triton: dict[str, Any], batching: dict[str, Any]) -> None:
    if "max_batch_size" in triton:
        size = triton["max_batch_size"]
        if size == 0:
            batching["enabled"] = False
        else:
            batching["max_batch_size"] = size
    dynamic = triton.get("dynamic_batching")
    if dynamic is None:
        return
    if not isinstance(dynamic, dict):
        raise InvalidInput("config.dynamic_batching must be an object")
    for key, value in dynamic.items():
        if key not in _DYNAMIC_BATCHING:
            raise InvalidInput(f"unsupported field config.dynamic_batching.{key}")
        if key == "max_queue_delay_microseconds":
            # Protobuf's JSON mapping writes 64-bit integers as strings ("2000").
            if isinstance(value, str) and value.isascii() and value.isdigit():
                value = int(value)
            value = value / 1000 if isinstance(value, int) else value
        batching[_DYNAMIC_BATCHING[key]] = value


def _instances(groups: Any) -> int:
    if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
        raise InvalidInput("config.instance_group must hold exactly one group")
    group = groups[0]
    for key in sorted(set(group) - {"count", "kind", "name"}):
        raise InvalidInput(f"unsupported field config.instance_group.{key}")
    if group.get("kind", "KIND_CPU") not in ("KIND_CPU", "KIND_AUTO"):
        raise InvalidInput(f"unsupported instance kind {group['kind']!r}: KIND_CPU only")
    return group.get("count", 1)  # type: ignore[no-any-return]


_MAPPED = {"name", "max_batch_size", "dynamic_batching", "instance_group", "version_policy"}


def config_override(name: str, raw: str, base: ModelConfig) -> ModelConfig:
    """``base`` with the fields of a Triton JSON model configuration that map onto it."""
    try:
        triton = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"parameters.config is not a JSON object: {exc}") from None
    if not isinstance(triton, dict):
        raise InvalidInput("parameters.config must be a JSON object")
    for key, value in triton.items():
        if key in _PLATFORMS and value != _PLATFORMS[key]:
            raise InvalidInput(f"config.{key} {value!r} is not served: {_PLATFORMS[key]} only")
        if key not in _MAPPED and key not in _PLATFORMS:
            raise InvalidInput(f"unsupported field config.{key} (no counterpart in config.yaml)")
    if triton.get("name", name) != name:
        raise InvalidInput(f"config.name {triton['name']!r} is not the model loaded ('{name}')")
    merged = base.model_dump()
    _batching(triton, merged["batching"])
    if "instance_group" in triton:
        merged["instances"] = _instances(triton["instance_group"])
    if "version_policy" in triton:
        merged["version_policy"] = _version_policy(triton["version_policy"])
    try:
        config = ModelConfig.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(f"parameters.config: {describe_errors(exc.errors())}") from None
    config.class_labels.update(base.class_labels)  # read from config.yaml's labels files
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
        config = config_override(name, parameters["config"], source.config)
        source = await asyncio.to_thread(_with_config, source, config)
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
