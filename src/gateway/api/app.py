"""The composition root: ``create_app(settings)`` and the lifespan that owns every model."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.types import Receive, Scope, Send

from backends.base import Backend
from backends.onnxruntime import OnnxRuntimeBackend
from gateway.api.body_limit import BodyLimitMiddleware
from gateway.api.dependencies import DOCS_ACCESS
from gateway.api.docs import install_docs
from gateway.api.exception_handlers import install_exception_handlers
from gateway.api.infer_endpoint import InferenceEndpoint, infer_target
from gateway.api.openapi import build_openapi
from gateway.api.routes import health, inference, metrics, models
from gateway.api.routes.typed import TypedRoutes
from gateway.api.state import AppState
from gateway.auth import Authenticator
from gateway.batching import Batcher, BatchPolicy, Clock
from gateway.heap import settle_heap
from gateway.inference import InferenceService
from gateway.keyring import KeyRing, build_key_ring
from gateway.metrics import GatewayMetrics
from gateway.registry import BackendLoader, ModelRegistry, ModelVersion
from gateway.settings import AuthSettings, Settings

logger = logging.getLogger(__name__)


class Gateway(FastAPI):
    """FastAPI behind the body limit, and the inference hot path beside it.

    Profiling put FastAPI's own per-request work (telemetry hooks, middleware layers) at
    about a quarter of the CPU of one inference request, so ``POST .../infer`` is answered
    by ``InferenceEndpoint`` without entering FastAPI or any middleware (docs/batching.md);
    every other request goes through them.
    """

    def __init__(self, *, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._inference = InferenceEndpoint(max_body_bytes)
        self._rest = BodyLimitMiddleware(self._fastapi, max_bytes=max_body_bytes)

    async def _fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Inference requests to the endpoint, the rest through the body limit to FastAPI."""
        target = infer_target(scope)
        if target is None:
            await self._rest(scope, receive, send)
        else:
            await self._inference.serve(scope, receive, send, *target)


def create_app(
    settings: Settings,
    loader: BackendLoader = OnnxRuntimeBackend.load,
    *,
    clock: Clock = time.monotonic,
    serving_process: bool = False,
) -> FastAPI:
    """Build the gateway; models load when the lifespan starts, not here.

    ``clock`` times the queue's deadlines (tests inject one). ``serving_process``: this
    process exists to serve this app (``tensorgate serve``), so once the models are
    loaded the garbage collector is tuned for it (``gateway.heap``); never in tests, which
    build hundreds of apps in one process.
    """
    collectors = GatewayMetrics()

    def make_batcher(version: ModelVersion, backend: Backend) -> Batcher:
        policy = BatchPolicy.for_model(version.config, backend)
        observer = collectors.observer(version.name, version.version)
        return Batcher(version.label, backend.infer, policy, observer, clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[AppState]:
        async with AsyncExitStack() as stack:
            registry = ModelRegistry(loader, make_batcher)
            # Registered before close, so closing still removes the typed routes.
            stack.callback(typed_routes.watch(registry))
            stack.push_async_callback(registry.close)
            await registry.load_repository(settings.model_repository)
            ready = sum(1 for v in registry.versions() if v.ready)
            logger.info(
                "serving %d ready model version(s) from %s", ready, settings.model_repository
            )
            state = AppState(
                settings=settings,
                registry=registry,
                inference=InferenceService(registry),
                metrics=collectors,
                authenticator=await _authenticator(settings.auth, stack),
            )
            if serving_process:
                settle_heap()
            yield state

    app = Gateway(
        max_body_bytes=settings.max_request_body_bytes,
        title="tensorgate",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(inference.router)
    app.include_router(metrics.router)
    typed_routes = TypedRoutes(app)
    install_docs(app, dependencies=[DOCS_ACCESS])
    install_exception_handlers(app)
    # Inference requests bypass this middleware; InferenceEndpoint records their own series.
    Instrumentator(registry=collectors.registry, excluded_handlers=["/metrics"]).instrument(app)
    app.openapi = partial(build_openapi, app, typed_routes)  # type: ignore[method-assign]
    return app


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
