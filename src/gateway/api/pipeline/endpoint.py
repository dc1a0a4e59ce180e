"""The one inference pipeline, a bare ASGI handler in front of FastAPI (the hot path).

Profiling showed FastAPI's routing and dependency machinery costing more CPU per request
than the model itself (docs/benchmarks.md), so both inference route families are answered
here, in one sequence: method, declared length, authentication and scope (once),
admission (a full queue is refused before the body is read), the body (capped), the
route's codec, the queue, the disconnect watch, the answer, the request metrics. Only the
codec differs between ``POST /v2/models/.../infer`` and ``POST /models/.../predict``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from starlette.types import Receive, Scope, Send

from gateway.api.body import ClientDisconnected, check_declared_length, error_answer, read_body
from gateway.api.compression import chosen_coding, compress
from gateway.api.exception_handlers import METHOD_NOT_ALLOWED, method_not_allowed
from gateway.api.exchange import REQUEST_ID_HEADER, Exchange
from gateway.api.pipeline.disconnect import CLIENT_CLOSED_REQUEST, answer_unless_gone
from gateway.api.pipeline.sliced import submit_sliced
from gateway.api.pipeline.targets import InferenceTarget
from gateway.api.state import AppState, app_state
from gateway.auth.principal import Principal
from gateway.batching.observer import BatchTrace
from gateway.dataplane.fairness import UNSHARED
from gateway.errors import GatewayError, Overloaded, RateLimited
from gateway.protocol.binary_codec import BinaryBody
from gateway.repository.routing import STICKY_SUBJECT

logger = logging.getLogger(__name__)

# Headers the pipeline reads; others are not decoded at all.
_WANTED_HEADERS = frozenset(
    {
        b"authorization",
        b"x-request-timeout-ms",
        b"inference-header-content-length",
        b"content-encoding",
        b"accept-encoding",
    }
)
_JSON_HEADERS = [(b"content-type", b"application/json")]
_BINARY_TYPE = (b"content-type", b"application/octet-stream")
_UNKNOWN_MODEL = "(unknown)"
SERVER_REQUESTS = "tensorgate.server_requests"
"""Scope key of the collection of requests the server process is answering (this one
included), when the server provides it (``serving.connection_limits``)."""
CONNECTION_SHARE = "tensorgate.connection_share"
"""Scope key of the connection's record of its caller's share, when the server keeps one
(``serving.fair_reads``): the pipeline sets ``share`` on it once the caller is known."""
SHUTTING_DOWN = b'{"error":"the server is shutting down"}'
_CLOSE = ((b"connection", b"close"),)


class InferenceEndpoint:
    """Answers the inference routes (``inference_target``) as a bare ASGI handler."""

    def __init__(self, max_body_bytes: int, sliced_body_bytes: int | None = None) -> None:
        self.max_body_bytes = max_body_bytes
        # Longer bodies are decoded in slices (docs/protocol.md#large-json-bodies).
        self.sliced_body_bytes = max_body_bytes if sliced_body_bytes is None else sliced_body_bytes

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        target: InferenceTarget,
        exchange: Exchange,
    ) -> None:
        """Answer one inference request, recording it in ``exchange`` and the metrics."""
        started = time.perf_counter()
        state = app_state(scope)
        exchange.model = target.model
        try:
            if scope["method"] != "POST":
                exchange.failed(METHOD_NOT_ALLOWED)
                await method_not_allowed("POST")(scope, receive, exchange.wrap(send))
                return
            payload, accept_encoding = await self._answer(state, scope, receive, target, exchange)
        except GatewayError as exc:
            response = error_answer(exc)
            exchange.failed(exc.message)
            if isinstance(exc, Overloaded | RateLimited):
                await _pace_refusal(exc, state.settings.refusal_pacing_max_ms)
            await response(scope, receive, exchange.wrap(send))
        except ClientDisconnected:
            exchange.status = CLIENT_CLOSED_REQUEST  # left mid-body: nobody to answer
        except asyncio.CancelledError:
            # Only the server cancels a request: at the end of the shutdown grace period.
            exchange.failed("the server is shutting down")
            await send_json(exchange.wrap(send), 503, SHUTTING_DOWN, _CLOSE)
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            exchange.failed("internal server error")
            await send_json(exchange.wrap(send), 500, b'{"error":"internal server error"}')
        else:
            if payload is None:
                exchange.status = CLIENT_CLOSED_REQUEST  # nothing sent: nobody is listening
            else:
                await send_answer(send, payload, accept_encoding, exchange)
        finally:
            self._record(state, scope, target, exchange, started)

    @staticmethod
    def _record(
        state: AppState, scope: Scope, target: InferenceTarget, exchange: Exchange, started: float
    ) -> None:
        # Names clients make up would grow the label set without bound; they share one.
        model = target.model if state.registry.knows(target.model) else _UNKNOWN_MODEL
        seconds = time.perf_counter() - started
        key = (model, exchange.version or "", exchange.status, scope["method"], target.route)
        state.request_metrics.record(key, seconds, exchange.request_bytes, exchange.response_bytes)

    async def _answer(
        self,
        state: AppState,
        scope: Scope,
        receive: Receive,
        target: InferenceTarget,
        exchange: Exchange,
    ) -> tuple[bytes | None, str | None]:
        """The answer's body (None when the client left) and its ``Accept-Encoding``."""
        check_declared_length(scope, self.max_body_bytes)
        headers = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key in _WANTED_HEADERS
        }
        principal = await state.authenticator.authenticate(headers.get("authorization"))
        exchange.subject = principal.subject
        principal.require_infer(target.model)
        service = state.inference
        share = UNSHARED if service.shares is None else service.shares.of(principal)
        connection = scope.get(CONNECTION_SHARE)
        if connection is not None:  # the serving process's fair reads learn the caller
            connection.share = share
        limits = service.limits
        held = None
        if limits.active:  # the caller's limits: 429 before the queue and the body
            held = await limits.enter(principal, target.model)
        try:
            sticky = state.registry.sticky(target.model)
            key = None if sticky is None else _sticky_key(sticky, principal, scope)
            admission = service.admit(target.model, target.version, key, share)  # no body yet
            exchange.version = str(admission.model.version)
            body = await read_body(receive, self.max_body_bytes, headers.get("content-encoding"))
            exchange.trace = BatchTrace()
            if len(body) > self.sliced_body_bytes:
                pending = await submit_sliced(
                    state,
                    target.codec,
                    admission,
                    body,
                    headers,
                    exchange.trace,
                    receive,
                    principal.subject,
                )
            else:
                # Alone in the process: nothing could join its batch, which can start at once.
                busy = scope.get(SERVER_REQUESTS)
                alone = busy is not None and len(busy) <= 1
                pending = service.submit(
                    target.codec,
                    admission,
                    body,
                    headers,
                    exchange.trace,
                    alone=alone,
                    subject=principal.subject,
                )
            exchange.version = str(pending.model.version)
            try:
                payload = await answer_unless_gone(
                    pending, receive, state.settings.disconnect_watch
                )
            except asyncio.CancelledError:
                pending.cancel()  # withdrawn: nothing is computed for an answer never sent
                raise
        finally:
            if held is not None:  # in-flight slots, whatever ended the request
                limits.leave(held)
        return payload, headers.get("accept-encoding")


def _sticky_key(sticky: str, principal: Principal, scope: Scope) -> str | None:
    """The caller's key for a sticky traffic split: the token subject or a header."""
    if sticky == STICKY_SUBJECT:
        return principal.subject
    wanted = sticky.encode("latin-1")
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def refusal_delay_s(refusal: Overloaded | RateLimited, max_ms: float) -> float:
    """How long a full queue's 503 (or a limit's 429) is held back: the estimated drain
    time (the time until the caller's next token), at most ``max_ms`` (the
    ``refusal_pacing_max_ms`` setting; 0 turns pacing off).

    A client that ignores ``Retry-After`` and resends at once would otherwise spin on
    refusals: each is cheap, but a flood of them keeps the event loop (and the GIL) busy,
    and a model whose batches cannot grow (batching off) waits for the GIL between calls.
    Measured with bench/flood.py (docs/batching.md): batching off kept 24% of its capacity
    under a flood without pacing, 73-74% with it.
    """
    return max(0.0, min(refusal.retry_after_s, max_ms / 1000))


async def _pace_refusal(refusal: Overloaded | RateLimited, max_ms: float) -> None:
    delay_s = refusal_delay_s(refusal, max_ms)
    if delay_s <= 0:
        return
    # Cancelled only when shutting down: send the refusal now rather than nothing.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(delay_s)


async def send_answer(
    send: Send, payload: bytes, accept_encoding: str | None, exchange: Exchange
) -> None:
    """Send a 200 inference answer, compressed when ``accept_encoding`` asks for gzip or
    deflate (always, whatever its size: a client that asked may expect the header), with
    the request id; recorded in ``exchange``."""
    coding = chosen_coding(accept_encoding)
    headers: list[tuple[bytes, bytes]] = []
    if isinstance(payload, BinaryBody):
        headers.append(_BINARY_TYPE)
        # The JSON header's length within the decompressed body, as Triton sends it.
        headers.append((b"inference-header-content-length", str(payload.header_length).encode()))
    else:
        headers.extend(_JSON_HEADERS)
    body = payload
    if coding is not None:
        body = compress(payload, coding)
        headers += [(b"content-encoding", coding.encode()), (b"vary", b"accept-encoding")]
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((REQUEST_ID_HEADER, exchange.request_id))
    exchange.status = 200
    exchange.response_bytes = len(body)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, payload: bytes, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Send a complete JSON response."""
    length = (b"content-length", str(len(payload)).encode())
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, length, *extra_headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})
