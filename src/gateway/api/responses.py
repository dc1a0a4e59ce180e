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
TOO_LARGE: Responses = {
    413: _error(
        "The request body is over the configured limit (max_request_body_bytes; the connection "
        "is closed), or it has more rows than the model can ever queue at once "
        "(max_queue_size x max_batch_size of its batching config): not worth retrying"
    )
}
FAILED: Responses = {500: _error("Inference failed inside the runtime, or an unexpected error")}
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
LIMITED: Responses = {
    429: {
        **_error(
            "The caller is over a limit rule of the deployment (docs/limits.md); the message "
            "names the rule: retry after the Retry-After header's seconds"
        ),
        "headers": {
            "Retry-After": {
                "description": "Whole seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 1},
            },
            "RateLimit-Policy": {
                "description": "The rule that refused, as draft-ietf-httpapi-ratelimit-headers-11 "
                'states a quota policy: "name";q=3;w=60, or "name";q=8;qu="concurrent-requests"',
                "schema": {"type": "string"},
            },
            "RateLimit": {
                "description": 'Its service limit now: "name";r=0;t=<seconds to wait>',
                "schema": {"type": "string"},
            },
        },
    }
}
TIMED_OUT: Responses = {504: _error("The request's deadline passed before its batch started")}

# Statuses every operation can answer, added to each by ``gateway.api.openapi``: any
# request with a body over the cap (the body limit wraps every route), any unexpected
# exception (logged; the body never says more).
EVERY_ROUTE: Responses = {
    413: _error("The request body is over the configured limit (max_request_body_bytes)"),
    500: _error("An unexpected error; it is logged, and the answer says no more"),
}
METRICS_AUTH: Responses = {
    401: _error("No valid bearer token, when the deployment protects /metrics"),
    403: _error("The token lacks metrics:read, when the deployment protects /metrics"),
}

MODEL_ROUTE: Responses = {**AUTH, **NOT_FOUND, **NOT_READY}
VERSION_ROUTE: Responses = {
    **MODEL_ROUTE,
    400: _error(
        "The version is neither a number nor a label (Triton's words: failed to get model "
        "version from specified version string ...)"
    ),
}
INFER_ROUTE: Responses = {
    **BAD_REQUEST,
    **AUTH,
    **NOT_FOUND,
    **TOO_LARGE,
    **FAILED,
    **BUSY,
    **LIMITED,
    **TIMED_OUT,
}
