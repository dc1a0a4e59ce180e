"""The composition root: ``create_app(settings)`` and the lifespan that owns every model."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import onnxruntime
from fastapi import FastAPI

from backends.base import Backend, inline_infer
from backends.loading import load_backend
from gateway.api.access_log import AccessLog, chosen_format
from gateway.api.dependencies import DOCS_ACCESS
from gateway.api.docs import install_docs
from gateway.api.exception_handlers import install_exception_handlers
from gateway.api.gateway import Gateway
from gateway.api.http_metrics import HttpMetrics
from gateway.api.openapi import build_openapi
from gateway.api.request_metrics import InferenceRequestMetrics
from gateway.api.routes import (
    health,
    metrics,
    model_config,
    models,
    repository,
    shared_memory,
    statistics,
)
from gateway.api.routes.health import server_version
from gateway.api.routes.typed import TypedRoutes
from gateway.api.state import AppState, Lifecycle
from gateway.auth.authenticator import Authenticator
from gateway.auth.keyring import KeyRing, build_key_ring
from gateway.batching.batcher import Batcher, Clock
from gateway.cluster.control import RepositoryControl
from gateway.cluster.group import WorkerGroup
from gateway.dataplane.fairness import FairShares
from gateway.dataplane.inference import InferenceService
from gateway.limits.limiter import Limiter
from gateway.limits.local import LocalLimits
from gateway.limits.redis_client import redis_client, redis_location
from gateway.limits.shared import SharedBuckets
from gateway.metrics import GatewayMetrics, LimitMetrics
from gateway.protocol.shm_table import SharedMemoryTable
from gateway.repository.polling import RepositoryWatcher
from gateway.repository.registry import (
    BackendLoader,
    ModelRegistry,
    ModelVersion,
    batch_policy,
)
from gateway.settings import AuthSettings, LimitsSettings, RedisSettings, Settings

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    loader: BackendLoader = load_backend,
    *,
    clock: Clock = time.monotonic,
    limits_clock: Clock = time.monotonic,
    on_ready: Callable[[AppState], None] | None = None,
    workers_dir: Path | None = None,
    transports: Callable[[AppState], AbstractAsyncContextManager[object]] | None = None,
) -> FastAPI:
    """Build the gateway; models load when the lifespan starts, not here.

    ``clock`` times the queue's deadlines, ``limits_clock`` the limits' token buckets
    (tests inject them). ``on_ready`` runs once the
    models are loaded, before the first request: ``tensorgate serve`` tunes the garbage
    collector and hooks its shutdown signals there (``gateway.serving``), never tests,
    which build hundreds of apps in one process. ``workers_dir``: this app is one of
    several worker processes sharing that run directory (``gateway.cluster.group``).
    ``transports``: the other transports serving this state beside HTTP (the gRPC server,
    ``gateway.grpc.server``), entered once the models are loaded and left first at
    shutdown.
    """
    collectors = GatewayMetrics(tally=settings.metrics_tally)
    collectors.build(server_version(), platform.python_version(), onnxruntime.__version__)
    http_metrics = HttpMetrics(collectors.registry, collectors.tallies)

    def make_batcher(version: ModelVersion, backend: Backend) -> Batcher:
        policy = batch_policy(version, backend)
        observer = collectors.observer(version.name, version.version)
        return Batcher(version.label, backend.infer, policy, observer, clock, inline_infer(backend))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        async with AsyncExitStack() as stack:
            access_log = None
            if settings.access_log:
                access_log = AccessLog(chosen_format(settings.access_log_format))
                stack.callback(access_log.flush)  # the last lines, at shutdown
            registry = ModelRegistry(loader, make_batcher)
            registry.add_listener(partial(_record_version, collectors))
            # Registered before close, so closing still removes the typed routes.
            stack.callback(typed_routes.watch(registry))
            stack.push_async_callback(registry.close)
            watcher = None
            if settings.repository_poll_s is not None:
                watcher = RepositoryWatcher(
                    registry, settings.model_repository, settings.repository_poll_s
                )
                await watcher.baseline()
            regions = SharedMemoryTable(
                enabled=settings.shared_memory.system,
                max_regions=settings.shared_memory.max_regions,
                max_regions_total=settings.shared_memory.max_regions_total,
                max_read_bytes=settings.max_request_body_bytes,
            )
            stack.callback(regions.close)  # every region unmapped at shutdown
            control = await _control(registry, settings, workers_dir, stack, regions)
            limiter = await _limiter(
                settings, registry, collectors, workers_dir, stack, limits_clock
            )
            await control.load_repository()
            if watcher is not None:
                # Stopped before the registry closes (the stack unwinds in reverse).
                stack.push_async_callback(_cancel, asyncio.create_task(watcher.run()))
            ready = sum(1 for v in registry.versions() if v.ready)
            logger.info(
                "serving %d ready model version(s) from %s", ready, settings.model_repository
            )
            state = AppState(
                settings=settings,
                registry=registry,
                control=control,
                inference=InferenceService(
                    registry, FairShares(settings.fair_share), limiter, regions
                ),
                metrics=collectors,
                authenticator=await _authenticator(settings.auth, stack),
                lifecycle=Lifecycle(),
                access_log=access_log,
                http_metrics=http_metrics,
                request_metrics=InferenceRequestMetrics(collectors, http_metrics),
            )
            if transports is not None:
                await stack.enter_async_context(transports(state))
            if on_ready is not None:
                on_ready(state)
            yield state.as_lifespan_state()

    app = Gateway(
        max_body_bytes=settings.max_request_body_bytes,
        sliced_body_bytes=settings.json_slicing_min_bytes if settings.json_slicing else None,
        title="tensorgate",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(health.router)
    app.include_router(statistics.router)  # before models: /v2/models/stats
    app.include_router(models.router)
    app.include_router(repository.router)
    app.include_router(shared_memory.router)
    app.include_router(model_config.router)
    app.include_router(metrics.router)
    typed_routes = TypedRoutes(app)
    install_docs(app, dependencies=[DOCS_ACCESS])
    install_exception_handlers(app)
    # The instrumentator's middleware records FastAPI's requests; the pipeline records the
    # inference requests (which never reach FastAPI) into the same collectors.
    http_metrics.install(app)
    app.openapi = partial(build_openapi, app, typed_routes)  # type: ignore[method-assign]
    return app


def _record_version(collectors: GatewayMetrics, version: ModelVersion) -> None:
    """A version's state, and while ready the execution provider it runs on."""
    collectors.model_version_state(version.name, version.version, version.state.value)
    if version.backend is not None:  # also while unloading: told before it is released
        facts = version.backend.metadata
        provider = facts.get("execution_provider")
        if provider is not None:
            collectors.execution_provider_state(
                version.name,
                version.version,
                facts.get("execution_provider_requested", provider),
                provider,
                serving=version.ready,
            )


async def _control(
    registry: ModelRegistry,
    settings: Settings,
    workers_dir: Path | None,
    stack: AsyncExitStack,
    regions: SharedMemoryTable,
) -> RepositoryControl:
    """This process's registry and regions alone, or (several workers) this worker's
    group membership, its endpoint closed before the registry."""
    if workers_dir is None:
        return RepositoryControl(registry, settings.model_repository, regions)
    group = WorkerGroup(
        registry,
        settings.model_repository,
        workers_dir,
        timeout_s=settings.workers_sync_timeout_s,
        regions=regions,
    )
    return await stack.enter_async_context(group)


async def _limiter(
    settings: Settings,
    registry: ModelRegistry,
    collectors: GatewayMetrics,
    workers_dir: Path | None,
    stack: AsyncExitStack,
    clock: Clock,
) -> Limiter:
    """The limit rules: the server's now, each model's as its config is loaded (a listener
    of the registry); an even share per worker process, or Redis's shared buckets."""
    limits: LimitsSettings = settings.limits
    workers = settings.workers if isinstance(settings.workers, int) else 1
    observer = collectors.limits_observer()
    limiter = Limiter(
        limits.rules,
        processes=workers if workers_dir is not None else 1,
        max_keys=limits.max_keys,
        shared=_shared_buckets(limits.redis, observer, clock),
        observer=observer,
        knows=registry.knows,
        clock=clock,
    )

    def model_rules(version: ModelVersion) -> None:
        limiter.set_model_rules(version.name, registry.limit_rules(version.name))

    registry.add_listener(model_rules)
    shared = limiter.shared
    if shared is not None:
        stack.push_async_callback(shared.close)
        if await shared.ping():
            logger.info("limits: shared buckets in Redis at %s", redis_location(limits.redis))
    return limiter


def _shared_buckets(
    redis: RedisSettings, observer: LimitMetrics, clock: Clock
) -> Callable[[LocalLimits], SharedBuckets] | None:
    if redis.url is None:
        return None
    client = redis_client(redis)

    def shared(fallback: LocalLimits) -> SharedBuckets:
        return SharedBuckets(
            client,
            fallback,
            prefix=redis.key_prefix,
            lease_fraction=redis.lease_fraction,
            timeout_s=redis.timeout_ms / 1000,
            retry_after_failure_s=redis.retry_after_failure_s,
            observer=observer,
            clock=clock,
        )

    return shared


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _authenticator(auth: AuthSettings, stack: AsyncExitStack) -> Authenticator:
    if not auth.enabled:
        logger.warning(
            "AUTHENTICATION IS DISABLED (auth.enabled=false): every route is open to anyone "
            "who can reach this server; never run like this outside a trusted machine"
        )
        return Authenticator.from_settings(auth, KeyRing([]))
    client = None
    if auth.jwks_url is not None:
        client = await stack.enter_async_context(
            httpx.AsyncClient(timeout=auth.jwks_timeout_s, follow_redirects=False)
        )
    keys = build_key_ring(auth, client)
    if keys.remote is not None:
        await keys.remote.refresh()
    if keys.empty:
        logger.error(
            "no token verification key is configured (auth.secret, auth.public_key_file, "
            "auth.jwks_file or auth.jwks_url): every protected route will answer 401"
        )
    return Authenticator.from_settings(auth, keys)
