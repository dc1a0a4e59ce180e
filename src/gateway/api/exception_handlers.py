"""One table from domain errors to HTTP answers, all in the protocol's ``{"error": ...}`` shape."""

from __future__ import annotations

import logging
import math

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api.exchange import note_error
from gateway.auth.authenticator import bearer_challenge
from gateway.errors import (
    Forbidden,
    GatewayError,
    Overloaded,
    RateLimited,
    Unauthorized,
    status_for,
)
from gateway.validation import describe_errors

logger = logging.getLogger(__name__)

METHOD_NOT_ALLOWED = "method not allowed on this route"
_HTTP_MESSAGES = {404: "no such route", 405: METHOD_NOT_ALLOWED}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one error body shape."""
    try:
        body = orjson.dumps({"error": message})
    except orjson.JSONEncodeError:
        # A lone surrogate from a client reached a message; never let it turn a 4xx into
        # a 500 (the codec refuses them, this is the net under it).
        body = orjson.dumps({"error": message.encode("utf-8", "backslashreplace").decode()})
    return Response(
        body,
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def gateway_error_response(exc: GatewayError) -> Response:
    """The answer to a domain error, with ``Retry-After`` or ``WWW-Authenticate`` as due."""
    headers: dict[str, str] = {}
    if isinstance(exc, Overloaded):
        # RFC 9110 allows whole seconds only; the precise estimate is in the message.
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    if isinstance(exc, Unauthorized | Forbidden):
        headers["WWW-Authenticate"] = bearer_challenge(exc)
    if isinstance(exc, RateLimited):
        headers.update(rate_limit_headers(exc))
    return error_response(status_for(exc), exc.message, headers or None)


def rate_limit_headers(refusal: RateLimited) -> dict[str, str]:
    """``Retry-After`` and the ``RateLimit-Policy`` and ``RateLimit`` fields of
    draft-ietf-httpapi-ratelimit-headers-11 (Structured Field Lists of one Item: the rule's
    name as a String, its parameters as Integers) for the rule that refused.

    ``Retry-After`` and the effective window ``t`` name the same whole second (the draft
    asks that Retry-After be no earlier than the window's end); the available quota ``r``
    is 0. A rate rule states its quota ``q`` per window ``w``; a concurrency rule its
    requests in flight, with ``qu="concurrent-requests"`` and no window.
    """
    seconds = max(1, math.ceil(refusal.retry_after_s))
    name = f'"{refusal.rule}"'  # rule names are [a-z][a-z0-9_-]*: nothing to escape
    if refusal.window_s is None:
        policy = f'{name};q={refusal.quota};qu="{refusal.unit}"'
    else:
        policy = f"{name};q={refusal.quota};w={refusal.window_s}"
    return {
        "Retry-After": str(seconds),
        "RateLimit-Policy": policy,
        "RateLimit": f"{name};r=0;t={seconds}",
    }


def method_not_allowed(allowed: str) -> Response:
    """The 405 answer, naming the allowed method."""
    return error_response(405, _HTTP_MESSAGES[405], {"Allow": allowed})


# Each handler below also notes its message for the access log (an error answer's only).


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    note_error(request.scope, exc.message)
    return gateway_error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = _HTTP_MESSAGES.get(exc.status_code, str(exc.detail))
    note_error(request.scope, message)
    return error_response(exc.status_code, message, dict(exc.headers or {}) or None)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message = f"invalid request: {describe_errors(exc.errors())}"
    note_error(request.scope, message)
    return error_response(400, message)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    note_error(request.scope, "internal server error")
    return error_response(500, "internal server error")


def install_exception_handlers(app: FastAPI) -> None:
    """Register every handler on ``app``."""
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
