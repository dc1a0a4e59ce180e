"""The ASGI entry: inference paths to the pipeline, everything else to FastAPI."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from gateway.api.body import BodyLimitMiddleware
from gateway.api.exchange import begin_exchange, note_error
from gateway.api.pipeline.endpoint import SHUTTING_DOWN, InferenceEndpoint, send_json
from gateway.api.pipeline.targets import inference_target
from gateway.api.state import app_state


class Gateway(FastAPI):
    """FastAPI behind the body limit, and the inference pipeline beside it.

    Profiling put FastAPI's own per-request work (telemetry hooks, middleware layers) at
    about a quarter of the CPU of one inference request, so the inference paths are
    answered by ``InferenceEndpoint`` without entering FastAPI or any middleware
    (docs/architecture.md); every other request goes through them.
    """

    def __init__(
        self, *, max_body_bytes: int, sliced_body_bytes: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._inference = InferenceEndpoint(max_body_bytes, sliced_body_bytes)
        self._rest = BodyLimitMiddleware(self._fastapi, max_bytes=max_body_bytes)

    async def _fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Inference paths to the pipeline, the rest through the body limit to FastAPI;
        every HTTP request gets a request id and one access-log line."""
        if scope["type"] != "http":
            await self._rest(scope, receive, send)  # the lifespan
            return
        started = time.perf_counter()
        exchange = begin_exchange(scope)
        target = inference_target(scope)
        try:
            if target is None:
                await self._rest_until_shutdown(scope, receive, exchange.wrap(send))
            else:  # the pipeline records its answers in the exchange itself
                await self._inference.serve(scope, receive, send, target, exchange)
        except BaseException:
            if exchange.status == 0:
                exchange.status = 500  # uvicorn answers 500 to what escapes the app
            raise
        finally:
            access_log = app_state(scope).access_log
            if access_log is not None:
                access_log.record(scope, exchange, time.perf_counter() - started)

    async def _rest_until_shutdown(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The rest, answered 503 if the server cancels it at the end of the shutdown grace
        period before it answered (uvicorn would log an error and answer 500)."""
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._rest(scope, receive, watched_send)
        except asyncio.CancelledError:
            if started or scope["type"] != "http":
                raise
            note_error(scope, "the server is shutting down")
            await send_json(send, 503, SHUTTING_DOWN, ((b"connection", b"close"),))
