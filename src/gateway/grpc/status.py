"""Domain errors as gRPC status codes (docs/grpc.md#errors has the table).

Each error maps from its HTTP status (``gateway.errors.status_for``), so that REST and
gRPC always agree on what an error is; the one exception is a load naming no model
directory, ``INTERNAL`` as Triton answers it (``CODE_BY_ERROR``). A refusal that says
when to come back (a full queue, a rate limit) carries it in the trailing metadata twice:
``retry-after`` in seconds, as on REST, and ``grpc-retry-pushback-ms``, which gRPC's own
retry policy reads.
"""

from __future__ import annotations

import math

import grpc

from gateway.errors import GatewayError, Overloaded, RateLimited, RepositoryPollFailed, status_for

CODE_BY_STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    500: grpc.StatusCode.INTERNAL,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def code_for(status: int) -> grpc.StatusCode:
    """The gRPC code of an HTTP status (``INTERNAL`` for one not in the table)."""
    return CODE_BY_STATUS.get(status, grpc.StatusCode.INTERNAL)


def retry_metadata(error: GatewayError) -> tuple[tuple[str, str], ...]:
    """The trailing metadata telling a refused caller when to retry (none for others)."""
    if not isinstance(error, Overloaded | RateLimited):
        return ()
    seconds = error.retry_after_s
    return (
        ("retry-after", str(max(1, math.ceil(seconds)))),
        ("grpc-retry-pushback-ms", str(max(0, round(seconds * 1000)))),
    )


CODE_BY_ERROR: dict[type[GatewayError], grpc.StatusCode] = {
    RepositoryPollFailed: grpc.StatusCode.INTERNAL,
}
"""The errors whose gRPC code is Triton's rather than their HTTP status's."""


def error_status(error: GatewayError) -> tuple[int, grpc.StatusCode]:
    """The HTTP status and the gRPC code of a domain error."""
    status = status_for(error)
    return status, CODE_BY_ERROR.get(type(error)) or code_for(status)
