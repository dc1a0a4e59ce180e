"""One table from domain errors to HTTP answers, all in the protocol's ``{"error": ...}`` shape."""

from __future__ import annotations

import logging
import math

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.auth import bearer_challenge
from gateway.errors import (
    BackendError,
    DeadlineExceeded,
    Forbidden,
    GatewayError,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    Overloaded,
    PayloadTooLarge,
    Unauthorized,
)

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[GatewayError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    ModelNotFound: 404,
    PayloadTooLarge: 413,
    BackendError: 500,
    ModelNotReady: 503,
    Overloaded: 503,
    DeadlineExceeded: 504,
}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one error body shape."""
    return Response(
        orjson.dumps({"error": message}),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def status_for(error: GatewayError) -> int:
    """HTTP status of a domain error (most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


async def _gateway_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    headers: dict[str, str] = {}
    if isinstance(exc, Overloaded):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    if isinstance(exc, Unauthorized | Forbidden):
        headers["WWW-Authenticate"] = bearer_challenge(exc)
    return error_response(status_for(exc), exc.message, headers or None)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = {404: "no such route", 405: "method not allowed on this route"}.get(
        exc.status_code, str(exc.detail)
    )
    return error_response(exc.status_code, message, dict(exc.headers or {}) or None)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for item in exc.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()))
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return error_response(400, "invalid request: " + "; ".join(parts))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error")


def install_exception_handlers(app: FastAPI) -> None:
    """Register every handler on ``app``."""
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
