"""OpenAPI descriptions of the error answers routes can give."""

from __future__ import annotations

from typing import Any

from gateway.protocol.wire import ErrorResponse

Responses = dict[int | str, dict[str, Any]]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


BAD_REQUEST: Responses = {400: _error("The request is malformed or does not match the model")}
NOT_FOUND: Responses = {404: _error("No model or version of that name")}
NOT_READY: Responses = {503: _error("The model, version or server is not ready")}
TOO_LARGE: Responses = {413: _error("The request body is over the configured limit")}
FAILED: Responses = {500: _error("Inference failed inside the runtime")}
AUTH: Responses = {
    401: _error("No valid bearer token; WWW-Authenticate says what was wrong"),
    403: _error("The token lacks the scope this route needs"),
}
BUSY: Responses = {
    503: {
        **_error(
            "The model or server is not ready, or the model's queue is full: retry after "
            "the Retry-After header's seconds"
        ),
        "headers": {
            "Retry-After": {
                "description": "Whole seconds to wait before retrying (queue full only)",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    }
}
TIMED_OUT: Responses = {504: _error("The request's deadline passed before its batch started")}

MODEL_ROUTE: Responses = {**AUTH, **NOT_FOUND, **NOT_READY}
INFER_ROUTE: Responses = {
    **BAD_REQUEST,
    **AUTH,
    **NOT_FOUND,
    **TOO_LARGE,
    **FAILED,
    **BUSY,
    **TIMED_OUT,
}
