"""The inference routes as a bare ASGI handler in front of FastAPI (the hot path).

Profiling showed FastAPI's routing and dependency machinery costing more CPU per request
than the model itself (docs/benchmarks.md), so ``POST .../infer`` is answered here: check
the declared length, authorize, read the body, decode and queue it, watch for the client
going away, write the answer. The same routes stay declared on FastAPI
(``routes/inference.py``) so the OpenAPI document describes them; ``Gateway`` sends every
other request to FastAPI.
"""

from __future__ import annotations

import logging
import time

from starlette.types import Receive, Scope, Send

from gateway.api.body_limit import body_too_large, check_declared_length
from gateway.api.disconnect import CLIENT_CLOSED_REQUEST, answer_unless_gone
from gateway.api.exception_handlers import gateway_error_response
from gateway.auth import Authenticator
from gateway.errors import GatewayError, InvalidInput, Unauthorized
from gateway.inference import InferenceService
from gateway.metrics import GatewayMetrics
from gateway.registry import ModelRegistry
from gateway.scopes import Principal

logger = logging.getLogger(__name__)

access_log = logging.getLogger("gateway.access")

# Headers the inference path reads; others are not decoded at all.
_WANTED_HEADERS = frozenset(
    {b"authorization", b"x-request-timeout-ms", b"inference-header-content-length"}
)
_JSON_HEADERS = [(b"content-type", b"application/json")]


def infer_target(scope: Scope) -> tuple[str, str | None] | None:
    """(model, version) when ``scope`` is ``POST /v2/models/{m}[/versions/{v}]/infer``."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    parts = scope["path"].split("/")
    if parts[-1] != "infer" or parts[1:3] != ["v2", "models"] or not parts[3]:
        return None
    if len(parts) == 5:
        return parts[3], None
    if len(parts) == 7 and parts[4] == "versions" and parts[5]:
        return parts[3], parts[5]
    return None


class InferenceEndpoint:
    """Answers the inference routes (``infer_target``) as a bare ASGI handler."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, name: str, version: str | None
    ) -> None:
        """Answer one inference request and record it in the request metrics."""
        started = time.perf_counter()
        status = 200
        try:
            payload = await self._serve(scope, receive, name, version)
        except GatewayError as exc:
            response = gateway_error_response(exc)
            status = response.status_code
            await response(scope, receive, send)
        except Exception:
            logger.exception("unhandled error on POST %s", scope["path"])
            status = 500
            await send_json(send, status, b'{"error":"internal server error"}')
        else:
            if payload is None:
                status = CLIENT_CLOSED_REQUEST  # nothing was sent
            else:
                await send_json(send, status, payload)
        state = scope["state"]
        metrics: GatewayMetrics = state["metrics"]
        registry: ModelRegistry = state["registry"]
        # Names clients make up would grow the label set without bound; they share one.
        model = name if registry.knows(name) else "(unknown)"
        metrics.record_request(model, status, time.perf_counter() - started)

    async def _serve(
        self, scope: Scope, receive: Receive, name: str, version: str | None
    ) -> bytes | None:
        check_declared_length(scope, self.max_body_bytes)
        headers = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key in _WANTED_HEADERS
        }
        await authorize(scope, headers.get("authorization"), name)
        service: InferenceService = scope["state"]["inference"]
        service.check_admission(name, version)  # refuse before reading the body
        body = await read_body(receive, self.max_body_bytes)
        pending = service.submit_json(name, version, body, headers)
        return await answer_unless_gone(pending, receive)


async def authorize(scope: Scope, authorization: str | None, model: str) -> Principal:
    """The caller's principal, allowed to run ``model`` (``models:infer`` or
    ``models:infer:<model>``); the inference routes' equivalent of ``InferPrincipal``,
    checked before the body is read."""
    authenticator: Authenticator = scope["state"]["authenticator"]
    try:
        principal = await authenticator.authenticate(authorization)
    except Unauthorized as exc:
        access_log.info("POST %s refused: %s", scope["path"], exc.message)
        raise
    access_log.info("POST %s sub=%r", scope["path"], principal.subject)
    principal.require_infer(model)
    return principal


async def read_body(receive: Receive, max_bytes: int) -> bytes:
    """The whole request body; raises ``PayloadTooLarge`` once more than ``max_bytes``
    have arrived (a chunked body is not read further)."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if len(body) > max_bytes:
        raise body_too_large(len(body), max_bytes)
    if not message.get("more_body", False):
        return body
    chunks = [body]
    received = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("the client disconnected while sending the body")
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > max_bytes:
            raise body_too_large(received, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def send_json(send: Send, status: int, payload: bytes) -> None:
    """Send a complete JSON response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
