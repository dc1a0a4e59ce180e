"""Reads a model repository laid out as ``<root>/<name>/<version>/model.onnx``."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from gateway.repository.config import (
    ROUTING_FIELDS,
    ConfigError,
    ModelConfig,
    load_model_config,
)
from gateway.repository.versions import parse_version

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True, slots=True)
class ModelSource:
    """One model directory: its config, the versions its policy selects, or what is wrong."""

    name: str
    directory: Path
    config: ModelConfig
    versions: tuple[int, ...]
    problem: str | None = None

    def model_path(self, version: int) -> Path:
        """Where the ONNX file of ``version`` lives."""
        return self.directory / str(version) / MODEL_FILE

    def fingerprints(self) -> dict[int, Fingerprint]:
        """What each selected version would be loaded from (blocking: run it in a thread);
        a version whose file cannot be read is left out."""
        settings = self.config.model_dump_json(exclude=set(ROUTING_FIELDS)) + repr(
            self.config.declaration
        )
        labels = tuple(sorted(self.config.class_labels.items()))
        found: dict[int, Fingerprint] = {}
        for version in self.versions:
            try:
                stat = self.model_path(version).stat()
            except OSError:
                continue
            found[version] = Fingerprint(stat.st_size, stat.st_mtime_ns, settings, labels)
        return found


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a version was loaded from: a change means it must be loaded again."""

    size: int
    mtime_ns: int
    settings: str
    """Its ``config.yaml`` settings, the routing ones left out."""
    labels: tuple[tuple[str, tuple[str, ...]], ...]


def is_valid_model_name(name: str) -> bool:
    """Names become URL path segments: letters, digits, ``_ . -``, at most 128 characters."""
    return bool(_MODEL_NAME.match(name))


def read_model(directory: Path) -> ModelSource:
    """Describe one model directory; problems are recorded, never raised."""
    name = directory.name
    try:
        config = load_model_config(directory)
    except ConfigError as exc:
        return ModelSource(name, directory, ModelConfig(), (), problem=str(exc))
    available = [
        number
        for child in directory.iterdir()
        if child.is_dir() and (number := parse_version(child.name)) is not None
    ]
    if not available:
        problem = f"no version directories: expected {directory}/<version>/{MODEL_FILE}"
        return ModelSource(name, directory, config, (), problem=problem)
    selected = config.select_versions(available)
    if not selected:
        problem = f"version_policy selects none of the versions present ({sorted(available)})"
        return ModelSource(name, directory, config, (), problem=problem)
    return ModelSource(name, directory, config, tuple(selected))


def scan_repository(root: Path) -> list[ModelSource]:
    """Every model directory under ``root``, sorted by name; hidden entries are skipped."""
    if not root.is_dir():
        logger.error("model repository %s does not exist or is not a directory", root)
        return []
    sources = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith((".", "_")):
            continue
        if not is_valid_model_name(child.name):
            logger.warning("skipping %s: model names use letters, digits, '_', '.', '-'", child)
            continue
        sources.append(read_model(child))
    return sources
