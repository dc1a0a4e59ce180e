"""The composition root: ``create_app(settings)`` and the lifespan that owns every model."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from backends.base import Backend
from backends.onnxruntime import OnnxRuntimeBackend
from gateway.api.body_limit import BodyLimitMiddleware
from gateway.api.docs import install_docs
from gateway.api.exception_handlers import install_exception_handlers
from gateway.api.infer_endpoint import InferenceEndpoint, InferGuard
from gateway.api.openapi import build_openapi
from gateway.api.routes import health, inference, metrics, models
from gateway.api.state import AppState
from gateway.batching import Batcher, BatchPolicy, Clock
from gateway.inference import InferenceService
from gateway.metrics import GatewayMetrics
from gateway.registry import BackendLoader, ModelRegistry, ModelVersion
from gateway.settings import Settings

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    loader: BackendLoader = OnnxRuntimeBackend.load,
    *,
    clock: Clock = time.monotonic,
    guard: InferGuard | None = None,
) -> FastAPI:
    """Build the gateway; models load when the lifespan starts, not here.

    ``clock`` times deadlines (tests inject one); ``guard`` checks credentials on the
    inference hot path.
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
            stack.push_async_callback(registry.close)
            await registry.load_repository(settings.model_repository)
            ready = sum(1 for v in registry.versions() if v.ready)
            logger.info(
                "serving %d ready model version(s) from %s", ready, settings.model_repository
            )
            yield AppState(
                settings=settings,
                registry=registry,
                inference=InferenceService(registry),
                metrics=collectors,
            )

    app = FastAPI(
        title="tensorgate",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(inference.router)
    app.include_router(metrics.router)
    install_docs(app)
    install_exception_handlers(app)
    Instrumentator(registry=collectors.registry, excluded_handlers=["/metrics"]).instrument(app)
    # Added last, so outermost: inference skips the HTTP metrics middleware (the queue
    # metrics cover it) but not the body limit, which wraps everything.
    app.add_middleware(InferenceEndpoint, guard=guard)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.openapi = partial(build_openapi, app)  # type: ignore[method-assign]
    return app
