"""Poll mode: the repository directory is watched, and model directories that changed are
loaded, reloaded or unloaded.

A change is acted on only once it has stopped changing: a model directory's files (names,
sizes, modification times) must read the same on two polls in a row, so a ``model.onnx``
still being copied in is never loaded half-written. Versions whose file and settings did
not change keep serving; a changed or new one is loaded and warmed up beside the old one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from gateway.repository.registry import ModelRegistry
from gateway.repository.scanning import is_valid_model_name, read_model

logger = logging.getLogger(__name__)

MAX_FILES_PER_MODEL = 10_000
"""A model directory with more files than this is not watched (say, a dataset copied in
by mistake): reading it on every poll would cost more than the watch is worth."""

FileState = tuple[tuple[str, int, int], ...]
"""(path relative to the model directory, size, mtime in ns) of every file, sorted."""


def _model_files(directory: Path) -> FileState | None:
    files: list[tuple[str, int, int]] = []
    for folder, subfolders, names in os.walk(directory):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        for name in names:
            if name.startswith("."):
                continue
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:  # removed while we looked: the next poll sees the rest
                continue
            files.append((os.path.relpath(path, directory), stat.st_size, stat.st_mtime_ns))
            if len(files) > MAX_FILES_PER_MODEL:
                return None
    return tuple(sorted(files))


def snapshot(root: Path) -> dict[str, FileState | None]:
    """The files of every model directory under ``root`` (blocking: run it in a thread);
    None for a directory too large to watch."""
    try:
        children = sorted(root.iterdir())
    except OSError:
        return {}
    return {
        child.name: _model_files(child)
        for child in children
        if child.is_dir() and not child.name.startswith((".", "_"))
        if is_valid_model_name(child.name)
    }


class RepositoryWatcher:
    """Polls ``root`` every ``interval_s`` and applies settled changes to ``registry``."""

    def __init__(self, registry: ModelRegistry, root: Path, interval_s: float) -> None:
        self._registry = registry
        self._root = root
        self._interval_s = interval_s
        self._applied: Mapping[str, FileState | None] = {}
        self._seen: Mapping[str, FileState | None] = {}

    async def baseline(self) -> None:
        """Record the repository as it is now: call it just before the first load, so
        that what the load saw is not loaded again and later changes are not missed."""
        self._applied = self._seen = await asyncio.to_thread(snapshot, self._root)

    async def run(self) -> None:
        """Poll until cancelled; a failure in one poll is logged and the next one runs."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.poll()
            except Exception:
                logger.exception("polling the model repository %s failed", self._root)

    async def poll(self) -> list[str]:
        """Read the repository once and act on every model directory whose files differ
        from what was last acted on and read the same as on the previous poll; returns
        the names acted on."""
        current = await asyncio.to_thread(snapshot, self._root)
        settled = [
            name
            for name in sorted(set(current) | set(self._applied))
            if current.get(name) != self._applied.get(name)
            and (name in current) == (name in self._seen)
            and current.get(name) == self._seen.get(name)
        ]
        self._seen = current
        applied = dict(self._applied)
        for name in settled:
            if name in current and current[name] is None:
                logger.warning(
                    "model directory %s holds over %d files: not watched",
                    self._root / name,
                    MAX_FILES_PER_MODEL,
                )
            else:
                await self._apply(name, present=name in current)
            if name in current:
                applied[name] = current[name]
            else:
                applied.pop(name, None)
        self._applied = applied
        return settled

    async def _apply(self, name: str, *, present: bool) -> None:
        if not present:
            if self._registry.knows(name):
                logger.info("model directory %s was removed: unloading", self._root / name)
                await self._registry.unload_model(name)
            return
        logger.info("model directory %s changed: loading what changed", self._root / name)
        source = await asyncio.to_thread(read_model, self._root / name)
        await self._registry.add_model(source, changed_only=True)
