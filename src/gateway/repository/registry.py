"""The model registry: which model versions exist, their state, and their backends.

Loading and closing a version are first-class operations so that versions can be added
and removed while the server runs. Lookups are synchronous and cheap (the hot path).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from backends.base import Backend, RuntimeOptions, inline_infer
from backends.errors import ModelLoadError
from gateway.batching.batcher import Batcher
from gateway.batching.policy import BatchPolicy
from gateway.errors import ModelNotFound, ModelNotReady
from gateway.repository.config import ModelConfig
from gateway.repository.lookup_errors import unknown_model, version_not_found
from gateway.repository.reshaped import with_reshapes
from gateway.repository.routing import Routing
from gateway.repository.scanning import Fingerprint, ModelSource, scan_repository
from gateway.repository.warmup import WarmupError, warm_up_version
from gateway.settings import LimitRule

logger = logging.getLogger(__name__)

BackendLoader = Callable[[Path, RuntimeOptions, str], Backend]
"""Creates a backend from a model file; blocking, so the registry calls it in a thread."""

RegistryListener = Callable[["ModelVersion"], None]
"""Told about a version whose state changed (loaded, failed or unloaded); quick, no I/O."""


def _check_declaration(version: ModelVersion, backend: Backend) -> None:
    """``ModelLoadError`` when the model does not fit the tensors its config declares."""
    declaration = version.config.declaration
    mismatch = declaration.mismatch(backend.signature) if declaration else None
    if mismatch is not None:
        logger.error("%s does not fit its config: %s", version.label, mismatch)
        raise ModelLoadError(mismatch)


def batch_policy(version: ModelVersion, backend: Backend) -> BatchPolicy:
    """The policy of ``version``'s batcher: its config, and whether its inputs stack."""
    stackable = all(spec.has_dynamic_batch for spec in backend.signature.inputs)
    return version.config.batch_policy(stackable=stackable)


def plain_batcher(version: ModelVersion, backend: Backend) -> Batcher:
    """A batcher for ``version`` with its configured policy and no metrics."""
    policy = batch_policy(version, backend)
    return Batcher(version.label, backend.infer, policy, infer_now=inline_infer(backend))


BatcherFactory = Callable[["ModelVersion", Backend], Batcher]
"""Makes the batcher of a freshly loaded version (the app adds metrics this way)."""


class VersionState(enum.StrEnum):
    """Lifecycle of one model version."""

    LOADING = "LOADING"
    READY = "READY"
    FAILED = "UNAVAILABLE"
    UNLOADING = "UNLOADING"


@dataclass(slots=True)
class ModelVersion:
    """One version of a model; ``backend`` and ``batcher`` are set only while READY."""

    name: str
    version: int
    config: ModelConfig
    state: VersionState = VersionState.LOADING
    reason: str = ""
    backend: Backend | None = None
    batcher: Batcher | None = None
    fingerprint: Fingerprint | None = None
    """What it was loaded from (file size and time, config); None: not from a repository."""

    @property
    def ready(self) -> bool:
        """True when the version can serve inference."""
        return self.state is VersionState.READY and self.batcher is not None

    @property
    def accepting(self) -> bool:
        """True while new requests may be queued: ready, and not being swapped out."""
        return self.batcher is not None and self.batcher.accepting

    @property
    def label(self) -> str:
        """How messages name this version: ``model 'mlp' version 1``."""
        return f"model '{self.name}' version {self.version}"

    async def release(self) -> None:
        """Drain and stop the batcher, then close the backend."""
        batcher, self.batcher = self.batcher, None
        backend, self.backend = self.backend, None
        if batcher is not None:
            await batcher.close()
        if backend is not None:
            await backend.close()


@dataclass(slots=True)
class ModelEntry:
    """A model and its versions; ``problem`` says why a model has none to serve."""

    name: str
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    problem: str | None = None
    routing: Routing = field(default_factory=Routing)
    limits: tuple[LimitRule, ...] = ()
    """The limit rules of its ``config.yaml`` (``gateway.limits``)."""

    def ready_versions(self) -> list[ModelVersion]:
        """Ready versions, highest first."""
        ready = [v for v in self.versions.values() if v.ready]
        if len(ready) > 1:  # the hot path usually has one version: skip the sort
            ready.sort(key=lambda v: -v.version)
        return ready

    def ready_version(self, number: int) -> ModelVersion | None:
        """Version ``number`` if it is ready."""
        found = self.versions.get(number)
        return found if found is not None and found.ready else None


class ModelRegistry:
    """Holds every model version the server knows and resolves requests to one."""

    def __init__(self, loader: BackendLoader, batchers: BatcherFactory = plain_batcher) -> None:
        self._loader = loader
        self._batchers = batchers
        self._models: dict[str, ModelEntry] = {}
        self._listeners: list[RegistryListener] = []
        # Loads and unloads of one model run one at a time; other models are not held up.
        self._control: dict[str, asyncio.Lock] = {}

    def add_listener(self, listener: RegistryListener) -> Callable[[], None]:
        """Call ``listener`` after every load or unload; returns a function removing it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, model_version: ModelVersion) -> None:
        # A failing listener (say, the OpenAPI layer) must not break loading or unloading.
        for listener in list(self._listeners):
            try:
                listener(model_version)
            except Exception:
                logger.exception("registry listener %r failed", listener)

    async def load_repository(self, root: Path) -> None:
        """Load every model version the repository at ``root`` asks for."""
        for source in scan_repository(root):
            await self.add_model(source)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._control.setdefault(name, asyncio.Lock())

    async def add_model(
        self, source: ModelSource, *, changed_only: bool = False
    ) -> list[ModelVersion]:
        """Register a model directory and load the versions its policy selects (a reload
        when it is known: the versions it no longer selects are unloaded); returns the
        outcome of each load. ``changed_only`` keeps ready versions whose file and config
        are unchanged (repository polling); otherwise each selected version is reloaded.

        A source with a problem (say, a broken ``config.yaml``) leaves the versions that
        serve as they are: the problem is reported, nothing is unloaded.
        """
        async with self._lock(source.name):
            entry = self._models.setdefault(source.name, ModelEntry(source.name))
            entry.problem = source.problem
            if source.problem:
                logger.error("model %s cannot be served: %s", source.name, source.problem)
                if entry.ready_versions():
                    return []
            routing = Routing.of(source.config)
            limits = tuple(source.config.limits)
            if routing != entry.routing or limits != entry.limits:
                entry.routing, entry.limits = routing, limits
                for known in entry.versions.values():
                    self._notify(known)  # labels or limits changed, even if nothing reloads
            fingerprints = await asyncio.to_thread(source.fingerprints)
            loaded = []
            for version in source.versions:
                current = entry.versions.get(version)
                fingerprint = fingerprints.get(version)
                unchanged = current is not None and current.fingerprint == fingerprint
                if changed_only and unchanged and current is not None and current.ready:
                    continue
                loaded.append(
                    await self.load_version(
                        source.name,
                        version,
                        source.model_path(version),
                        source.config,
                        fingerprint,
                    )
                )
            for version in sorted(set(entry.versions) - set(source.versions)):
                await self.unload_version(source.name, version)
            return loaded

    async def load_version(
        self,
        name: str,
        version: int,
        path: Path,
        config: ModelConfig,
        fingerprint: Fingerprint | None = None,
    ) -> ModelVersion:
        """Load and warm up one version; a failure is recorded in its state, never raised.

        Reloading a ready version loads and warms up the new backend beside the old one,
        which keeps serving until the swap (and keeps serving if the new one fails); the
        old one's queue is then drained, so no request fails because of a reload.
        """
        entry = self._models.setdefault(name, ModelEntry(name))
        previous = entry.versions.get(version)
        model_version = ModelVersion(name, version, config, fingerprint=fingerprint)
        keep_previous = previous is not None and previous.ready
        if not keep_previous:
            entry.versions[version] = model_version
        try:
            backend = await asyncio.to_thread(
                self._loader, path, config.runtime_options(name), f"{name} version {version}"
            )
        except ModelLoadError as exc:
            model_version.state, model_version.reason = VersionState.FAILED, str(exc)
            logger.error("model %s version %d failed to load: %s", name, version, exc)
        except Exception as exc:
            model_version.state = VersionState.FAILED
            model_version.reason = f"unexpected {type(exc).__name__} while loading"
            logger.exception("model %s version %d failed to load", name, version)
        else:
            try:
                _check_declaration(model_version, backend)
                backend = with_reshapes(backend, model_version.config.declaration)
                await warm_up_version(
                    model_version.config.warmup, backend, path.parent.parent, model_version.label
                )
            except (WarmupError, ModelLoadError) as exc:
                model_version.state, model_version.reason = VersionState.FAILED, str(exc)
                await backend.close()
            else:
                batcher = self._batchers(model_version, backend)
                batcher.start()
                model_version.backend, model_version.batcher = backend, batcher
                model_version.state = VersionState.READY
                logger.info(
                    "model %s version %d is ready (%s)", name, version, dict(backend.metadata)
                )
        if keep_previous and not model_version.ready:
            assert previous is not None
            previous.reason = (
                f"reload failed, the version loaded before serves: {model_version.reason}"
            )
            self._notify(previous)
            return model_version
        entry.versions[version] = model_version
        self._notify(model_version)
        if previous is not None:
            await previous.release()
        return model_version

    async def unload_version(self, name: str, version: int) -> None:
        """Stop serving a version and release its backend."""
        entry = self._models.get(name)
        model_version = entry.versions.pop(version, None) if entry else None
        if model_version is None:
            raise ModelNotFound(unknown_model(name, version))
        model_version.state = VersionState.UNLOADING
        if entry is not None and not entry.versions and entry.problem is None:
            del self._models[name]
        self._notify(model_version)
        # Drains the queue (queued requests still get answers), then closes the backend.
        await model_version.release()

    async def unload_model(self, name: str) -> None:
        """Stop serving every version of ``name`` (each queue drained) and forget it."""
        async with self._lock(name):
            entry = self.entry(name)
            for version in sorted(entry.versions, reverse=True):
                await self.unload_version(name, version)
            self._models.pop(name, None)

    async def close(self) -> None:
        """Close every backend, newest models last loaded first."""
        for entry in reversed(list(self._models.values())):
            for version in sorted(entry.versions, reverse=True):
                await self.unload_version(entry.name, version)
        self._models.clear()

    def knows(self, name: str) -> bool:
        """True when a model of that name is in the registry (ready or not)."""
        return name in self._models

    def names(self) -> list[str]:
        """Names of every known model, sorted."""
        return sorted(self._models)

    def entry(self, name: str) -> ModelEntry:
        """The model called ``name``; ModelNotFound otherwise."""
        entry = self._models.get(name)
        if entry is None:
            raise ModelNotFound(unknown_model(name))
        return entry

    def versions(self) -> Iterator[ModelVersion]:
        """Every model version, by model name then version."""
        for name in self.names():
            entry = self._models[name]
            for version in sorted(entry.versions):
                yield entry.versions[version]

    def find(self, name: str, version: str | None) -> ModelVersion:
        """The version a request names by number or label, ready or not; unversioned, the
        highest ready version (ModelNotReady when there is none)."""
        entry = self.entry(name)
        if version is None:
            return _newest_ready(entry)
        number = entry.routing.version_of(version)
        found = entry.versions.get(number) if number is not None else None
        if found is None:
            raise version_not_found(name, version, number, entry.versions, entry.routing.labels)
        return found

    def resolve(self, name: str, version: str | None) -> ModelVersion:
        """The ready version ``find`` names; 404 or 503 errors otherwise."""
        return _ready(self.find(name, version))

    def route(self, name: str, version: str | None, key: str | None) -> ModelVersion:
        """The ready version an inference request runs on: the one it names, else the
        traffic split's pick (``key``: the caller's sticky key), else the highest ready."""
        entry = self.entry(name)
        if version is None:
            if entry.routing.split:
                chosen = entry.routing.choose(entry.ready_version, key)
                if chosen is not None:
                    return chosen
            return _newest_ready(entry)  # the versions it picks from are all ready
        return _ready(self.find(name, version))

    def sticky(self, name: str) -> str | None:
        """What makes ``name``'s traffic split sticky: ``subject``, a lower-case header
        name, or None (no split, or not sticky; also for an unknown model)."""
        entry = self._models.get(name)
        return entry.routing.sticky if entry is not None else None

    def limit_rules(self, name: str) -> tuple[LimitRule, ...]:
        """The limit rules of model ``name``'s config (none for an unknown model)."""
        entry = self._models.get(name)
        return entry.limits if entry is not None else ()

    def is_ready(self, *, require_all: bool) -> bool:
        """Server readiness: every model (or any, when relaxed) has a ready version; never
        with no models."""
        if not self._models:
            return False
        ready = [bool(entry.ready_versions()) for entry in self._models.values()]
        return all(ready) if require_all else any(ready)


def _newest_ready(entry: ModelEntry) -> ModelVersion:
    ready = entry.ready_versions()
    if ready:
        return ready[0]
    why = entry.problem or "; ".join(
        f"version {v.version} is {v.state.value}" for v in entry.versions.values()
    )
    raise ModelNotReady(f"model '{entry.name}' has no ready version ({why})")


def _ready(found: ModelVersion) -> ModelVersion:
    if not found.ready:
        raise ModelNotReady(
            f"model '{found.name}' version {found.version} is not ready ({found.state.value})"
        )
    return found
