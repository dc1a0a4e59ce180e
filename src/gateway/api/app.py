"""The composition root: ``create_app(settings)`` and the lifespan that owns every model."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

from fastapi import FastAPI

from backends.onnxruntime import OnnxRuntimeBackend
from gateway.api.body_limit import BodyLimitMiddleware
from gateway.api.docs import install_docs
from gateway.api.exception_handlers import install_exception_handlers
from gateway.api.openapi import build_openapi
from gateway.api.routes import health, inference, models
from gateway.api.routes.typed import TypedRoutes
from gateway.api.state import AppState
from gateway.inference import InferenceService
from gateway.registry import BackendLoader, ModelRegistry
from gateway.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings, loader: BackendLoader = OnnxRuntimeBackend.load) -> FastAPI:
    """Build the gateway; models load when the lifespan starts, not here."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[AppState]:
        async with AsyncExitStack() as stack:
            registry = ModelRegistry(loader)
            # Registered before close, so closing still removes the typed routes.
            stack.callback(typed_routes.watch(registry))
            stack.push_async_callback(registry.close)
            await registry.load_repository(settings.model_repository)
            ready = sum(1 for v in registry.versions() if v.ready)
            logger.info(
                "serving %d ready model version(s) from %s", ready, settings.model_repository
            )
            yield AppState(
                settings=settings, registry=registry, inference=InferenceService(registry)
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
    typed_routes = TypedRoutes(app)
    install_docs(app)
    install_exception_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.openapi = partial(build_openapi, app, typed_routes)  # type: ignore[method-assign]
    return app
