"""Domain errors of the gateway, and the HTTP status of each (``STATUS_BY_ERROR``).

    GatewayError
    ├── InvalidInput          the request is malformed or does not fit the model (400)
    │   └── RepositoryPollFailed  a load names no directory in the repository (400)
    ├── PayloadTooLarge       the body is over the configured cap (413)
    ├── ModelNotFound         no such model or version (404)
    ├── RegionNotFound        no shared-memory region of that name (404)
    ├── ModelNotReady         the model or version exists but cannot serve now (503)
    ├── Overloaded            the queue is full; ``retry_after_s`` says when to retry (503)
    ├── RateLimited           the caller is over a limit rule; ``retry_after_s`` too (429)
    ├── DeadlineExceeded      the request's deadline passed before it ran (504)
    ├── Unauthorized          no valid credentials (401)
    ├── Forbidden             valid credentials without the needed scope (403)
    ├── BackendError          the runtime failed; the message is safe to show (500)
    ├── UpstreamError         a remote model's upstream failed or broke off (502)
    └── WorkerSyncError       a change or a query did not reach every worker process (500)

Messages are shown to clients: they name what was wrong and what was expected, and never
carry internals, tokens or keys.
"""


class GatewayError(Exception):
    """Base class of the gateway's domain errors; ``message`` is safe to show clients."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(GatewayError):
    """The request is malformed or does not match the model's signature."""


class RepositoryPollFailed(InvalidInput):
    """A load request names a model with no directory in the repository.

    REST answers 400 like any refused load; gRPC answers ``INTERNAL``, Triton's code for
    it, which its model-control clients expect (``gateway.grpc.status``).
    """


class PayloadTooLarge(GatewayError):
    """The request body is larger than the configured limit."""


class ModelNotFound(GatewayError):
    """No model or version of that name is known."""


class RegionNotFound(GatewayError):
    """No shared-memory region of that name is registered."""


class ModelNotReady(GatewayError):
    """The model or version is known but is not ready to serve."""


class Overloaded(GatewayError):
    """The model's queue is full; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimited(GatewayError):
    """The caller is over a limit rule (``gateway.limits``); retry after ``retry_after_s``.

    ``rule`` names it; ``quota`` and ``window_s`` are its policy as the ``RateLimit-Policy``
    header states it (``window_s`` None for a concurrency limit, whose ``unit`` is
    ``concurrent-requests``).
    """

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        retry_after_s: float,
        quota: int,
        window_s: int | None,
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.retry_after_s = retry_after_s
        self.quota = quota
        self.window_s = window_s

    @property
    def unit(self) -> str:
        """The quota's unit, in the draft's words: ``requests`` or ``concurrent-requests``."""
        return "requests" if self.window_s is not None else "concurrent-requests"


class DeadlineExceeded(GatewayError):
    """The request's deadline passed before its inference started."""


class Unauthorized(GatewayError):
    """Credentials are missing or invalid.

    ``challenge`` is the RFC 6750 error code (``invalid_token``, ``invalid_request``), or
    None when the request carried no credentials at all (RFC 6750 section 3.1).
    """

    def __init__(self, message: str, *, challenge: str | None = "invalid_token") -> None:
        super().__init__(message)
        self.challenge = challenge


class Forbidden(GatewayError):
    """Credentials are valid but lack ``scope``, the scope(s) the route needs."""

    def __init__(self, message: str, *, scope: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope


class BackendError(GatewayError):
    """Inference failed inside the runtime; the full error is logged, not shown."""


class UpstreamError(GatewayError):
    """A remote model's upstream answered with an error or broke off the call."""


class WorkerSyncError(GatewayError):
    """With several worker processes, some did not apply a repository change or answer a
    statistics query; the message names them and why."""


STATUS_BY_ERROR: dict[type[GatewayError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    ModelNotFound: 404,
    RegionNotFound: 404,
    PayloadTooLarge: 413,
    RateLimited: 429,
    BackendError: 500,
    ModelNotReady: 503,
    Overloaded: 503,
    DeadlineExceeded: 504,
    UpstreamError: 502,
    WorkerSyncError: 500,
}
"""The HTTP status of each error; gRPC codes map from it (``gateway.grpc.status``)."""


def status_for(error: GatewayError) -> int:
    """HTTP status of a domain error (most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500
