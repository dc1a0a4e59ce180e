"""The ASGI entry: inference paths to the pipeline, everything else to FastAPI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from gateway.api.body import BodyLimitMiddleware
from gateway.api.pipeline.endpoint import InferenceEndpoint
from gateway.api.pipeline.targets import inference_target


class Gateway(FastAPI):
    """FastAPI behind the body limit, and the inference pipeline beside it.

    Profiling put FastAPI's own per-request work (telemetry hooks, middleware layers) at
    about a quarter of the CPU of one inference request, so the inference paths are
    answered by ``InferenceEndpoint`` without entering FastAPI or any middleware
    (docs/architecture.md); every other request goes through them.
    """

    def __init__(self, *, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._inference = InferenceEndpoint(max_body_bytes)
        self._rest = BodyLimitMiddleware(self._fastapi, max_bytes=max_body_bytes)

    async def _fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Inference paths to the pipeline, the rest through the body limit to FastAPI."""
        target = inference_target(scope)
        if target is None:
            await self._rest(scope, receive, send)
        else:
            await self._inference.serve(scope, receive, send, target)
